// Data movement: MOV (general, moffs, immediate, segment registers), MOVZX, MOVSX, LEA, XCHG,
// CBW/CWDE/CWD/CDQ, BSWAP, SETcc, CMOVcc, NOP (SDM vol. 2, each instruction's page).
import { OpKind, Reg, type Instruction } from '@ringshift/decoder';
import type { Handler } from '../cpu';
import { Fault, Vector } from '../fault';
import { OPSIZE } from '../handlers';
import { SEG_INDEX, SegReg } from '../registers';
import { loadDataSegment } from '../segments';
import { CONDITIONS } from './conditions';
import { CONDITION_SRC, all, ea, memPrologue, readOp, writeOp, type Emitter } from '../emit';

const mov: Handler = (cpu, ins) => {
  const size = OPSIZE[ins.form]!;
  cpu.writeOp(ins, 0, size, cpu.readOp(ins, 1, size));
};

/** MOV r/m, Sreg stores the selector; a 32-bit register destination gets it zero-extended. */
const movFromSreg: Handler = (cpu, ins) => {
  const v = cpu.sel[SEG_INDEX[ins.opRegs[1]!]!]!;
  if (ins.opKinds[0] === OpKind.Register) cpu.writeReg(ins.opRegs[0]!, v);
  else cpu.writeSized(cpu.segmentOf(ins), cpu.effectiveAddress(ins), 16, v);
};

const movToSreg: Handler = (cpu, ins) => {
  const seg = SEG_INDEX[ins.opRegs[0]!]!;
  const v = ins.opKinds[1] === OpKind.Register ? cpu.readReg(ins.opRegs[1]!) & 0xffff : cpu.readSized(cpu.segmentOf(ins), cpu.effectiveAddress(ins), 16);
  if (seg === SegReg.CS) throw new Fault(Vector.UD);
  loadDataSegment(cpu, seg, v);
  // MOV SS inhibits interrupts until after the next instruction (SDM vol. 3A §6.8.3).
  if (seg === SegReg.SS) cpu.inhibitInterrupts = true;
};

function extend(signed: boolean, from: 8 | 16): Handler {
  return (cpu, ins) => {
    const size = OPSIZE[ins.form]!;
    let v = cpu.readOp(ins, 1, from);
    if (signed) v = from === 8 ? (v << 24) >> 24 : (v << 16) >> 16;
    cpu.writeOp(ins, 0, size, v);
  };
}

const lea: Handler = (cpu, ins) => {
  const size = OPSIZE[ins.form]!;
  cpu.writeOp(ins, 0, size, cpu.effectiveAddress(ins));
};

/** XCHG: a memory operand is read with write intent (Cpu.readRmw32), so that neither write can fault once the other is done. */
const xchg: Handler = (cpu, ins) => {
  const size = OPSIZE[ins.form]!;
  const a = cpu.readOpRmw(ins, 0, size);
  const b = cpu.readOpRmw(ins, 1, size);
  cpu.writeOp(ins, 0, size, b);
  cpu.writeOp(ins, 1, size, a);
};

const nop: Handler = () => {};

const byForm: Record<string, Handler> = {
  Mov_rm16_Sreg: movFromSreg,
  Mov_r32m16_Sreg: movFromSreg,
  Mov_Sreg_rm16: movToSreg,
  Mov_Sreg_r32m16: movToSreg,
  Movzx_r16_rm8: extend(false, 8),
  Movzx_r32_rm8: extend(false, 8),
  Movzx_r16_rm16: extend(false, 16),
  Movzx_r32_rm16: extend(false, 16),
  Movsx_r16_rm8: extend(true, 8),
  Movsx_r32_rm8: extend(true, 8),
  Movsx_r16_rm16: extend(true, 16),
  Movsx_r32_rm16: extend(true, 16),
  Cbw: (cpu) => cpu.writeReg(regAX, ((cpu.regs[0]! << 24) >> 24) & 0xffff),
  Cwde: (cpu) => { cpu.regs[0] = (cpu.regs[0]! << 16) >> 16; },
  Cwd: (cpu) => cpu.writeReg(regDX, cpu.regs[0]! & 0x8000 ? 0xffff : 0),
  Cdq: (cpu) => { cpu.regs[2] = cpu.regs[0]! >> 31; },
  Bswap_r32: (cpu, ins: Instruction) => {
    const v = cpu.readReg(ins.opRegs[0]!);
    cpu.writeReg(ins.opRegs[0]!, ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24));
  },
};

const regAX = Reg.AX;
const regDX = Reg.AX + 2;

const byMnemonic: Record<string, Handler> = { mov, lea, xchg, nop };
for (const [cc, test] of Object.entries(CONDITIONS)) {
  byMnemonic[`set${cc}`] = (cpu, ins) => cpu.writeOp(ins, 0, 8, test(cpu) ? 1 : 0);
  // CMOVcc reads its source even when the condition is false (a fault is raised either way),
  // and with a 32-bit operand size always writes the destination in 64-bit mode only; in
  // 32-bit code the destination is unchanged when false (SDM CMOVcc "Operation").
  byMnemonic[`cmov${cc}`] = (cpu, ins) => {
    const size = OPSIZE[ins.form]!;
    const v = cpu.readOp(ins, 1, size);
    if (test(cpu)) cpu.writeOp(ins, 0, size, v);
  };
}

// The same, as source for the block compiler (emit.ts).
const extendSrc = (signed: boolean, from: 8 | 16): Emitter => (ins) => {
  const v = readOp(ins, 1, from);
  if (v === undefined) return undefined;
  return all(memPrologue(ins), `const v = ${v};`, writeOp(ins, 0, OPSIZE[ins.form]!, signed ? (from === 8 ? '(v << 24) >> 24' : '(v << 16) >> 16') : 'v'));
};

const jit: Record<string, Emitter> = {
  mov: (ins) => {
    const size = OPSIZE[ins.form]!;
    const v = readOp(ins, 1, size);
    return v === undefined ? undefined : all(memPrologue(ins), `const v = ${v};`, writeOp(ins, 0, size, 'v'));
  },
  lea: (ins) => {
    const a = ea(ins);
    return a === undefined ? undefined : writeOp(ins, 0, OPSIZE[ins.form]!, a);
  },
  nop: () => '',
  Movzx_r16_rm8: extendSrc(false, 8),
  Movzx_r32_rm8: extendSrc(false, 8),
  Movzx_r16_rm16: extendSrc(false, 16),
  Movzx_r32_rm16: extendSrc(false, 16),
  Movsx_r16_rm8: extendSrc(true, 8),
  Movsx_r32_rm8: extendSrc(true, 8),
  Movsx_r16_rm16: extendSrc(true, 16),
  Movsx_r32_rm16: extendSrc(true, 16),
  Cwde: () => 'r[0] = (r[0] << 16) >> 16;',
  Cdq: () => 'r[2] = r[0] >> 31;',
};
for (const [cc, test] of Object.entries(CONDITION_SRC)) {
  jit[`set${cc}`] = (ins) => all(memPrologue(ins), writeOp(ins, 0, 8, `${test} ? 1 : 0`));
  jit[`cmov${cc}`] = (ins) => {
    const size = OPSIZE[ins.form]!;
    const v = readOp(ins, 1, size);
    return v === undefined ? undefined : all(memPrologue(ins), `const v = ${v};`, `if (${test}) {`, writeOp(ins, 0, size, 'v'), '}');
  };
}

export const DATA = { byMnemonic, byForm, jit };
