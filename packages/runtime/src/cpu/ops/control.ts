// Control transfer: JMP, Jcc, JCXZ/JECXZ, LOOP/LOOPE/LOOPNE, CALL, RET (near and far), INT n,
// INT3, INTO, IRET (SDM vol. 2; far transfers in protected mode: vol. 3A §5.8).
import { OpKind, type Instruction } from '@ringshift/decoder';
import type { Cpu, Handler } from '../cpu';
import { ATTR_CODE } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';
import { UnsupportedFeature } from '../interrupts';
import { SegReg } from '../registers';
import { type Descriptor, loadCodeSegment, loadDataSegment, loadSegmentReal, readDescriptor, readLinear32 } from '../segments';
import { TaskSource, taskSwitch, tssDescriptor } from '../task-switch';
import { callGate, nullInaccessibleSegments, restore, retOuter, snapshot } from './callgate';
import { CONDITIONS } from './conditions';
import { CONDITION_SRC, all, memPrologue, readOp, type Emitter } from '../emit';

/** Target of a near branch, checked against the CS limit (#GP(0), SDM JMP "Protected Mode Exceptions"). */
function jumpNear(cpu: Cpu, target: number, size: number): void {
  const t = size === 16 ? target & 0xffff : target | 0;
  if ((t >>> 0) > (cpu.segLimit[SegReg.CS]! >>> 0)) throw new Fault(Vector.GP, 0);
  cpu.nextEip = t;
}

/** Operand size of a branch: the form's (o16/o32) or the code size. */
const osize = (ins: Instruction): number => (ins.operandSize === 16 ? 16 : 32);

/** Near branch target from a relative, register or memory operand. */
function nearTarget(cpu: Cpu, ins: Instruction, s: number): number {
  const k = ins.opKinds[0]!;
  if (k === OpKind.NearBranch16 || k === OpKind.NearBranch32) return ins.target;
  return cpu.readOp(ins, 0, s);
}

/** JMP/CALL ptr16:16/32 or m16:16/32: performs the far transfer and returns true; false if near. */
function tryFar(cpu: Cpu, ins: Instruction, isCall: boolean): boolean {
  const k = ins.opKinds[0]!;
  if (k === OpKind.FarBranch16 || k === OpKind.FarBranch32) {
    farJump(cpu, ins.farSelector, ins.target, k === OpKind.FarBranch32 ? 32 : 16, isCall, ins.length);
    return true;
  }
  if (k !== OpKind.Memory || !ins.memSizeName.startsWith('SegPtr')) return false;
  // m16:16 / m16:32: the offset first, then the selector (SDM JMP, "Operation").
  const s = ins.memSizeName === 'SegPtr32' ? 32 : 16;
  const seg = cpu.segmentOf(ins), ea = cpu.effectiveAddress(ins);
  const off = cpu.readSized(seg, ea, s);
  const sel = cpu.read16(seg, (ea + (s >>> 3)) | 0);
  farJump(cpu, sel, off, s, isCall, ins.length);
  return true;
}

const jmp: Handler = (cpu, ins) => {
  if (tryFar(cpu, ins, false)) return;
  const s = osize(ins);
  jumpNear(cpu, nearTarget(cpu, ins, s), s);
};

const call: Handler = (cpu, ins) => {
  if (tryFar(cpu, ins, true)) return;
  const s = osize(ins);
  const target = nearTarget(cpu, ins, s);
  const t = s === 16 ? target & 0xffff : target | 0;
  if ((t >>> 0) > (cpu.segLimit[SegReg.CS]! >>> 0)) throw new Fault(Vector.GP, 0);
  cpu.push(s, cpu.nextEip);
  cpu.nextEip = t;
};

const retNear: Handler = (cpu, ins) => {
  const s = osize(ins);
  const saved = cpu.regs[4]!;
  const t = cpu.pop(s);
  try {
    jumpNear(cpu, t, s);
  } catch (e) {
    cpu.regs[4] = saved;
    throw e;
  }
  if (ins.opCount > 0) releaseStack(cpu, ins.imm & 0xffff);
};

function releaseStack(cpu: Cpu, n: number): void {
  if (cpu.stackBits === 32) cpu.regs[4] = (cpu.regs[4]! + n) | 0;
  else cpu.regs[4] = (cpu.regs[4]! & ~0xffff) | ((cpu.regs[4]! + n) & 0xffff);
}

/**
 * Far JMP/CALL to a code segment. Real mode: CS = selector. Protected mode: a direct transfer
 * to a conforming or non-conforming code segment at the same privilege (SDM vol. 3A §5.8.1), or
 * through a call gate (§5.8.3-5.8.5, callgate.ts), or a task switch through a TSS descriptor or
 * a task gate (task-switch.ts). A fault before a task switch's commit leaves CS, SS, ESP and CPL
 * as they were.
 */
function farJump(cpu: Cpu, selector: number, offset: number, size: number, isCall: boolean, length = 0): void {
  if (!cpu.protectedMode || cpu.v86) {
    if (isCall) {
      cpu.push(size, cpu.sel[SegReg.CS]!);
      cpu.push(size, cpu.nextEip);
    }
    loadSegmentReal(cpu, SegReg.CS, selector);
    cpu.nextEip = size === 16 ? offset & 0xffff : offset;
    return;
  }
  const saved = snapshot(cpu);
  const tr = cpu.trSel;
  try {
    farJumpProtected(cpu, selector, offset, size, isCall, length);
  } catch (e) {
    // A fault after a task switch's commit belongs to the new task (task-switch.ts).
    if (cpu.trSel === tr) restore(cpu, saved);
    throw e;
  }
}

function farJumpProtected(cpu: Cpu, selector: number, offset: number, size: number, isCall: boolean, length: number): void {
  if ((selector & 0xfffc) === 0) throw new Fault(Vector.GP, 0);
  const d = readDescriptor(cpu, selector);
  const err = selector & 0xfffc;
  if ((d.attr & 0x10) === 0) {
    const type = d.attr & 0xf;
    if (type === 0x4 || type === 0xc) {
      callGate(cpu, selector, d, isCall);
      return;
    }
    if (type === 0x1 || type === 0x5 || type === 0x9) {
      taskTransfer(cpu, selector, d, isCall, length);
      return;
    }
    throw new Fault(Vector.GP, err);
  }
  if ((d.attr & ATTR_CODE) === 0) throw new Fault(Vector.GP, err);
  const rpl = selector & 3;
  if (d.attr & 4) {
    if (d.dpl > cpu.cpl) throw new Fault(Vector.GP, err);
  } else if (rpl > cpu.cpl || d.dpl !== cpu.cpl) {
    throw new Fault(Vector.GP, err);
  }
  if ((d.attr & 0x80) === 0) throw new Fault(Vector.NP, err);
  const t = size === 16 ? offset & 0xffff : offset | 0;
  if ((t >>> 0) > (d.limit >>> 0)) throw new Fault(Vector.GP, 0);
  if (isCall) {
    cpu.push(size, cpu.sel[SegReg.CS]!);
    cpu.push(size, cpu.nextEip);
  }
  loadCodeSegment(cpu, selector, d, cpu.cpl);
  cpu.nextEip = t;
}

/**
 * JMP/CALL to a TSS descriptor or through a task gate (SDM JMP/CALL "TASK-STATE-SEGMENT" and
 * "TASK-GATE"): the DPL of the descriptor named must be >= CPL and >= RPL (#GP(selector)); a
 * task gate must be present (#NP(gate)) and name an available TSS in the GDT.
 */
function taskTransfer(cpu: Cpu, selector: number, d: Descriptor, isCall: boolean, length: number): void {
  const err = selector & 0xfffc;
  if (d.dpl < cpu.cpl || d.dpl < (selector & 3)) throw new Fault(Vector.GP, err);
  let tssSel = selector, tss = d;
  if ((d.attr & 0xf) === 0x5) {
    if ((d.attr & 0x80) === 0) throw new Fault(Vector.NP, err);
    tssSel = (d.lo >>> 16) & 0xffff;
    tss = tssDescriptor(cpu, tssSel, false, Vector.GP);
  } else if (selector & 4) {
    throw new Fault(Vector.GP, err); // a TSS descriptor must be in the GDT
  } else if ((d.attr & 0x80) === 0) {
    throw new Fault(Vector.NP, err);
  }
  taskSwitch(cpu, tssSel, tss, isCall ? TaskSource.CALL : TaskSource.JMP, cpu.nextEip, length);
}

const retFar: Handler = (cpu, ins) => {
  const s = osize(ins);
  const saved = snapshot(cpu);
  const release = ins.opCount > 0 ? ins.imm & 0xffff : 0;
  try {
    const off = cpu.pop(s);
    const sel = cpu.pop(s) & 0xffff;
    if (cpu.protectedMode && !cpu.v86) {
      if ((sel & 0xfffc) === 0) throw new Fault(Vector.GP, 0);
      const d = readDescriptor(cpu, sel);
      const err = sel & 0xfffc;
      if ((d.attr & 0x18) !== 0x18 || (sel & 3) < cpu.cpl) throw new Fault(Vector.GP, err);
      if ((d.attr & 4) ? d.dpl > (sel & 3) : d.dpl !== (sel & 3)) throw new Fault(Vector.GP, err);
      if ((d.attr & 0x80) === 0) throw new Fault(Vector.NP, err);
      const t = s === 16 ? off & 0xffff : off;
      if ((sel & 3) > cpu.cpl) {
        // SDM RET "RETURN-TO-OUTER-PRIVILEGE-LEVEL" (vol. 3A §5.8.6).
        retOuter(cpu, sel, d, t, s, release);
        return;
      }
      if ((t >>> 0) > (d.limit >>> 0)) throw new Fault(Vector.GP, 0);
      loadCodeSegment(cpu, sel, d, cpu.cpl);
      cpu.nextEip = t;
    } else {
      loadSegmentReal(cpu, SegReg.CS, sel);
      cpu.nextEip = s === 16 ? off & 0xffff : off;
    }
  } catch (e) {
    restore(cpu, saved);
    throw e;
  }
  if (release) releaseStack(cpu, release);
};

const iret: Handler = (cpu, ins) => {
  const s = osize(ins);
  if (cpu.protectedMode && cpu.v86) throw new UnsupportedFeature('IRET from virtual-8086 mode');
  if (cpu.protectedMode && (cpu.eflags & F.NT)) {
    // Task return (SDM IRET "TASK-RETURN"): to the task in the current TSS's back link, which
    // must name a busy TSS in the GDT (#TS(back link) otherwise).
    const link = readLinear32(cpu, cpu.trBase) & 0xffff;
    taskSwitch(cpu, link, tssDescriptor(cpu, link, true, Vector.TS), TaskSource.IRET, cpu.nextEip, ins.length);
    return;
  }
  const saved = cpu.regs[4]!;
  try {
    const off = cpu.pop(s);
    const sel = cpu.pop(s) & 0xffff;
    const flags = cpu.pop(s);
    if (!cpu.protectedMode) {
      loadSegmentReal(cpu, SegReg.CS, sel);
      cpu.nextEip = s === 16 ? off & 0xffff : off;
      const keep = s === 16 ? ~0xffff : F.VM | F.VIF | F.VIP;
      cpu.eflags = (cpu.eflags & keep) | (flags & ~keep);
      return;
    }
    const rpl = sel & 3;
    if ((sel & 0xfffc) === 0) throw new Fault(Vector.GP, 0);
    const d = readDescriptor(cpu, sel);
    const err = sel & 0xfffc;
    if ((d.attr & 0x18) !== 0x18 || rpl < cpu.cpl) throw new Fault(Vector.GP, err);
    if ((d.attr & 4) ? d.dpl > rpl : d.dpl !== rpl) throw new Fault(Vector.GP, err);
    if ((d.attr & 0x80) === 0) throw new Fault(Vector.NP, err);
    if (s === 32 && (flags & F.VM) && cpu.cpl === 0) throw new UnsupportedFeature('IRET to virtual-8086 mode');
    const t = s === 16 ? off & 0xffff : off;
    // EFLAGS rules of IRET (SDM IRET "Operation"): IOPL only at CPL 0, IF only if CPL <= IOPL;
    // VIF/VIP only at CPL 0 with a 32-bit operand size; VM stays 0 here.
    const iopl = (cpu.eflags & F.IOPL) >>> 12;
    let writable = F.STATUS | F.TF | F.DF | F.NT | F.RF | F.AC | F.ID;
    if (cpu.cpl === 0) writable |= F.IOPL | F.VIF | F.VIP;
    if (cpu.cpl <= iopl) writable |= F.IF;
    if (s === 16) writable &= 0xffff;
    if (rpl > cpu.cpl) {
      // Return to an outer level: pop ESP and SS too (SDM vol. 3A §6.12.1, IRET "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
      const esp = cpu.pop(s);
      const ss = cpu.pop(s) & 0xffff;
      if ((t >>> 0) > (d.limit >>> 0)) throw new Fault(Vector.GP, 0);
      cpu.eflags = (cpu.eflags & ~writable) | (flags & writable);
      loadCodeSegment(cpu, sel, d, rpl);
      loadDataSegment(cpu, SegReg.SS, ss);
      cpu.regs[4] = s === 16 ? (cpu.regs[4]! & ~0xffff) | (esp & 0xffff) : esp;
      // Data segments the new CPL may not use become null (SDM IRET, "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
      nullInaccessibleSegments(cpu, rpl);
    } else {
      if ((t >>> 0) > (d.limit >>> 0)) throw new Fault(Vector.GP, 0);
      cpu.eflags = (cpu.eflags & ~writable) | (flags & writable);
      loadCodeSegment(cpu, sel, d, cpu.cpl);
    }
    cpu.nextEip = t;
  } catch (e) {
    cpu.regs[4] = saved;
    throw e;
  }
};

/** Counter register of LOOP/JCXZ: CX or ECX by address size. */
function counter(cpu: Cpu, ins: Instruction): number {
  return ins.addressSize === 16 ? cpu.regs[1]! & 0xffff : cpu.regs[1]!;
}
function decCounter(cpu: Cpu, ins: Instruction): number {
  if (ins.addressSize === 16) {
    const cx = (cpu.regs[1]! - 1) & 0xffff;
    cpu.regs[1] = (cpu.regs[1]! & ~0xffff) | cx;
    return cx;
  }
  return (cpu.regs[1] = (cpu.regs[1]! - 1) | 0);
}

const byMnemonic: Record<string, Handler> = {
  jmp,
  call,
  ret: retNear,
  retf: retFar,
  iret,
  iretd: iret,
  jcxz: (cpu, ins) => { if (counter(cpu, ins) === 0) jumpNear(cpu, ins.target, osize(ins)); },
  jecxz: (cpu, ins) => { if (counter(cpu, ins) === 0) jumpNear(cpu, ins.target, osize(ins)); },
  loop: (cpu, ins) => { if (decCounter(cpu, ins) !== 0) jumpNear(cpu, ins.target, osize(ins)); },
  loope: (cpu, ins) => { if (decCounter(cpu, ins) !== 0 && cpu.getFlag(F.ZF)) jumpNear(cpu, ins.target, osize(ins)); },
  loopne: (cpu, ins) => { if (decCounter(cpu, ins) !== 0 && !cpu.getFlag(F.ZF)) jumpNear(cpu, ins.target, osize(ins)); },
  int: (cpu, ins) => cpu.raise(ins.imm & 0xff, -1, true, cpu.nextEip),
  int3: (cpu) => cpu.raise(Vector.BP, -1, true, cpu.nextEip),
  into: (cpu) => { if (cpu.getFlag(F.OF)) cpu.raise(Vector.OF, -1, true, cpu.nextEip); },
};
for (const [cc, test] of Object.entries(CONDITIONS)) {
  byMnemonic[`j${cc}`] = (cpu, ins) => { if (test(cpu)) jumpNear(cpu, ins.target, osize(ins)); };
}

// Near relative JMP/Jcc/CALL and RET as source for the block compiler (emit.ts): the same
// checks as jumpNear(), with the target a constant.
const relative = (ins: Instruction): boolean => ins.opKinds[0] === OpKind.NearBranch16 || ins.opKinds[0] === OpKind.NearBranch32;
/** Sets EIP to the constant target `t` after jumpNear's CS-limit check. */
const jumpSrc = (t: number): string =>
  `if (${t >>> 0} > (cpu.segLimit[${SegReg.CS}] >>> 0)) throw new Fault(${Vector.GP}, 0); cpu.nextEip = ${t}; cpu.eip = ${t};`;
const targetOf = (ins: Instruction): number => (osize(ins) === 16 ? ins.target & 0xffff : ins.target | 0);

/** Near JMP/CALL through a register or memory (not m16:16/m16:32): `const t = target;`, checked. */
function indirectSrc(ins: Instruction): string | undefined {
  const k = ins.opKinds[0]!;
  if (k !== OpKind.Register && (k !== OpKind.Memory || ins.memSizeName.startsWith('SegPtr'))) return undefined;
  const s = osize(ins);
  const v = readOp(ins, 0, s);
  return v === undefined ? undefined : all(memPrologue(ins), `const t = (${v})${s === 16 ? ' & 0xffff' : ' | 0'};`,
    `if ((t >>> 0) > (cpu.segLimit[${SegReg.CS}] >>> 0)) throw new Fault(${Vector.GP}, 0);`);
}

const pushNext = (ins: Instruction, next: string): string =>
  `cpu.nextEip = ${next}; ${osize(ins) === 32 ? 'cpu.push32(cpu.nextEip);' : 'cpu.push(16, cpu.nextEip);'}`;

const jit: Record<string, Emitter> = {
  jmp: (ins) => {
    if (relative(ins)) return jumpSrc(targetOf(ins));
    const t = indirectSrc(ins);
    return t === undefined ? undefined : `${t} cpu.nextEip = t; cpu.eip = t;`;
  },
  call: (ins, next) => {
    if (!relative(ins)) {
      const t = indirectSrc(ins);
      return t === undefined ? undefined : `${t} ${pushNext(ins, next)} cpu.nextEip = t; cpu.eip = t;`;
    }
    const t = targetOf(ins);
    return `if (${t >>> 0} > (cpu.segLimit[${SegReg.CS}] >>> 0)) throw new Fault(${Vector.GP}, 0); ${pushNext(ins, next)} cpu.nextEip = ${t}; cpu.eip = ${t};`;
  },
  ret: (ins) => {
    const s = osize(ins);
    const n = ins.opCount > 0 ? ins.imm & 0xffff : 0;
    const release = n === 0 ? ''
      : `if (cpu.stackBits === 32) r[4] = (r[4] + ${n}) | 0; else r[4] = (r[4] & ~0xffff) | ((r[4] + ${n}) & 0xffff);`;
    return `const s0 = r[4]; const t = ${s === 16 ? 'cpu.pop(16) & 0xffff' : 'cpu.pop32() | 0'};` +
      ` if ((t >>> 0) > (cpu.segLimit[${SegReg.CS}] >>> 0)) { r[4] = s0; throw new Fault(${Vector.GP}, 0); }` +
      ` cpu.nextEip = t; ${release} cpu.eip = t;`;
  },
};
for (const [cc, test] of Object.entries(CONDITION_SRC)) {
  jit[`j${cc}`] = (ins, next) => (relative(ins) ? `if (${test}) { ${jumpSrc(targetOf(ins))} } else { cpu.nextEip = ${next}; cpu.eip = cpu.nextEip; }` : undefined);
}

export const CONTROL = { byMnemonic, jit };
