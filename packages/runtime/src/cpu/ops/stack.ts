// Stack: PUSH, POP (registers, memory, immediates, segment registers), PUSHA/POPA, PUSHF/POPF
// with the IOPL/CPL rules, ENTER, LEAVE (SDM vol. 2; POPF "Operation" for the flag rules).
import { OpKind, type Instruction } from '@ringshift/decoder';
import type { Handler } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';
import { SEG_INDEX, SegReg } from '../registers';
import { loadDataSegment } from '../segments';
import { all, memPrologue, readOp, writeOp, type Emitter } from '../emit';

/** Operand size of a stack form: o16/o32 from the form, else the effective operand size. */
const size = (ins: Instruction): number => (ins.operandSize === 16 ? 16 : 32);

const push: Handler = (cpu, ins) => {
  const s = size(ins);
  if (SEG_INDEX[ins.opRegs[0]!]! >= 0 && ins.opKinds[0] === 0) {
    // PUSH Sreg with a 32-bit operand size writes the selector zero-extended (Intel processors
    // may write only the low 16 bits; this CPU writes all 32, as the SDM's "Operation" allows).
    cpu.push(s, cpu.sel[SEG_INDEX[ins.opRegs[0]!]!]!);
    return;
  }
  // PUSH ESP pushes the value before the decrement (SDM PUSH, "Operation").
  cpu.push(s, cpu.readOp(ins, 0, s));
};

const pop: Handler = (cpu, ins) => {
  const s = size(ins);
  const seg = ins.opKinds[0] === 0 ? SEG_INDEX[ins.opRegs[0]!]! : -1;
  if (seg >= 0) {
    if (seg === SegReg.CS) throw new Fault(Vector.UD);
    // Load before adjusting ESP, so a faulting load leaves ESP unchanged.
    const saved = cpu.regs[4]!;
    const v = cpu.pop(s) & 0xffff;
    try {
      loadDataSegment(cpu, seg, v);
    } catch (e) {
      cpu.regs[4] = saved;
      throw e;
    }
    if (seg === SegReg.SS) cpu.inhibitInterrupts = true;
    return;
  }
  if (ins.opKinds[0] === 0) {
    cpu.writeReg(ins.opRegs[0]!, cpu.pop(s));
    return;
  }
  // POP r/m with an ESP-based address uses ESP after the pop (SDM POP, "Operation").
  const saved = cpu.regs[4]!;
  const v = cpu.pop(s);
  try {
    cpu.writeOp(ins, 0, s, v);
  } catch (e) {
    cpu.regs[4] = saved;
    throw e;
  }
};

const pusha: Handler = (cpu, ins) => {
  const s = size(ins);
  const esp = cpu.regs[4]!;
  for (let i = 0; i < 8; i++) cpu.push(s, i === 4 ? esp : cpu.regs[i]!);
};

const popa: Handler = (cpu, ins) => {
  const s = size(ins);
  for (let i = 7; i >= 0; i--) {
    const v = cpu.pop(s);
    if (i === 4) continue; // the stored ESP is discarded
    if (s === 32) cpu.regs[i] = v;
    else cpu.regs[i] = (cpu.regs[i]! & ~0xffff) | (v & 0xffff);
  }
};

const pushf: Handler = (cpu, ins) => {
  if (cpu.v86 && ((cpu.eflags & F.IOPL) >>> 12) < 3) throw new Fault(Vector.GP, 0);
  // RF and VM are pushed as 0 (SDM PUSHF, "Operation").
  cpu.push(size(ins), cpu.eflags & ~(F.RF | F.VM));
};

const popf: Handler = (cpu, ins) => {
  const s = size(ins);
  const cur = cpu.eflags;
  const iopl = (cur & F.IOPL) >>> 12;
  if (cpu.v86 && iopl < 3) throw new Fault(Vector.GP, 0);
  const v = cpu.pop(s);
  // Which bits POPF may change (SDM POPF, "Operation"): VM, VIP, VIF and RF never; IOPL only at
  // CPL 0; IF only when CPL <= IOPL. A change that is not allowed is dropped without a fault.
  let writable = F.STATUS | F.TF | F.DF | F.NT | F.AC | F.ID;
  if (!cpu.protectedMode || cpu.cpl === 0) writable |= F.IOPL;
  if (!cpu.protectedMode || cpu.cpl <= iopl) writable |= F.IF;
  if (s === 16) writable &= 0xffff;
  cpu.eflags = (cur & ~writable) | (v & writable);
  // POPF clears RF (SDM POPF, "Operation").
  cpu.setFlagBits(F.RF, 0);
};

const leave: Handler = (cpu, ins) => {
  const s = size(ins);
  if (cpu.stackBits === 32) cpu.regs[4] = cpu.regs[5]!;
  else cpu.regs[4] = (cpu.regs[4]! & ~0xffff) | (cpu.regs[5]! & 0xffff);
  const v = cpu.pop(s);
  if (s === 32) cpu.regs[5] = v;
  else cpu.regs[5] = (cpu.regs[5]! & ~0xffff) | (v & 0xffff);
};

const enter: Handler = (cpu, ins) => {
  const s = size(ins);
  const frame = ins.imm & 0xffff;
  const level = ins.imm2 & 31;
  const stack32 = cpu.stackBits === 32;
  cpu.push(s, cpu.regs[5]!);
  const frameTemp = stack32 ? cpu.regs[4]! : cpu.regs[4]! & 0xffff;
  for (let i = 1; i < level; i++) {
    const bp = stack32 ? (cpu.regs[5]! - i * (s >>> 3)) | 0 : (cpu.regs[5]! - i * (s >>> 3)) & 0xffff;
    cpu.push(s, cpu.readSized(SegReg.SS, bp, s));
  }
  if (level > 0) cpu.push(s, frameTemp);
  if (s === 32) cpu.regs[5] = frameTemp;
  else cpu.regs[5] = (cpu.regs[5]! & ~0xffff) | (frameTemp & 0xffff);
  if (stack32) cpu.regs[4] = (cpu.regs[4]! - frame) | 0;
  else cpu.regs[4] = (cpu.regs[4]! & ~0xffff) | ((cpu.regs[4]! - frame) & 0xffff);
};

// PUSH and POP of general registers, memory (PUSH) and immediates, and LEAVE, as source for the
// block compiler (emit.ts); segment registers are left to the handlers.
const jit: Record<string, Emitter> = {
  push: (ins) => {
    const v = readOp(ins, 0, size(ins));
    return v === undefined ? undefined : all(memPrologue(ins), size(ins) === 32 ? `cpu.push32(${v});` : `cpu.push(16, ${v});`);
  },
  pop: (ins) => (ins.opKinds[0] !== OpKind.Register ? undefined
    : all(size(ins) === 32 ? 'const v = cpu.pop32();' : 'const v = cpu.pop(16);', writeOp(ins, 0, size(ins), 'v'))),
  leave: (ins) => (size(ins) !== 32 ? undefined
    : 'if (cpu.stackBits === 32) r[4] = r[5]; else r[4] = (r[4] & ~0xffff) | (r[5] & 0xffff); const v = cpu.pop32(); r[5] = v;'),
};

export const STACK = {
  byMnemonic: {
    push, pop, pusha, pushad: pusha, popa, popad: popa, pushf, pushfd: pushf, popf, popfd: popf, leave, enter,
  },
  jit,
};
