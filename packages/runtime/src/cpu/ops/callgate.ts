// Far CALL/JMP through call gates and far RET to an outer privilege level (SDM vol. 3A
// §5.8.3-5.8.6; vol. 2A CALL "CALL-GATE", JMP "CALL-GATE", RET "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
import type { Cpu } from '../cpu';
import { ATTR_CODE, ATTR_DB, ATTR_P } from '../cpu';
import { Fault, Vector } from '../fault';
import { SegReg } from '../registers';
import { type Descriptor, innerStack, loadCodeSegment, markAccessed, readDescriptor, setCache } from '../segments';

/** Segment-register state a far transfer may change, to undo it when a check faults midway. */
interface Snapshot {
  sel: number[];
  base: number[];
  limit: number[];
  attr: number[];
  esp: number;
  cpl: number;
}

export function snapshot(cpu: Cpu): Snapshot {
  return {
    sel: Array.from(cpu.sel), base: Array.from(cpu.segBase), limit: Array.from(cpu.segLimit),
    attr: Array.from(cpu.segAttr), esp: cpu.regs[4]!, cpl: cpu.cpl,
  };
}

export function restore(cpu: Cpu, s: Snapshot): void {
  cpu.sel.set(s.sel);
  cpu.segBase.set(s.base);
  cpu.segLimit.set(s.limit);
  cpu.segAttr.set(s.attr);
  cpu.regs[4] = s.esp;
  cpu.cpl = s.cpl;
}

/** True when `bytes` below `esp` fit in the stack segment `d` (expand-up or expand-down, SDM §5.3). */
function stackFits(d: Descriptor, esp: number, bytes: number): boolean {
  const mask = d.attr & ATTR_DB ? 0xffffffff : 0xffff;
  const low = ((esp >>> 0) - bytes) & mask, high = ((esp >>> 0) - 1) & mask;
  if ((low >>> 0) > (high >>> 0)) return false; // wraps around the stack's address space
  if ((d.attr & (ATTR_CODE | 4)) === 4) return (low >>> 0) > (d.limit >>> 0);
  return (high >>> 0) <= (d.limit >>> 0);
}

/**
 * Far CALL or JMP through the call gate `gd` named by `gateSel` (type 0x4 16-bit or 0xC 32-bit).
 * Sets CS:EIP (and SS:ESP for an inner-level CALL); the caller undoes state on a fault.
 */
export function callGate(cpu: Cpu, gateSel: number, gd: Descriptor, isCall: boolean): void {
  const gateErr = gateSel & 0xfffc;
  if (gd.dpl < cpu.cpl || (gateSel & 3) > gd.dpl) throw new Fault(Vector.GP, gateErr);
  if ((gd.attr & ATTR_P) === 0) throw new Fault(Vector.NP, gateErr);
  const is32 = (gd.attr & 0xf) === 0xc;
  const size = is32 ? 32 : 16;
  const sel = gd.lo >>> 16;
  const offset = is32 ? ((gd.lo & 0xffff) | (gd.hi & 0xffff0000)) | 0 : gd.lo & 0xffff;
  const count = gd.hi & 0x1f;
  if ((sel & 0xfffc) === 0) throw new Fault(Vector.GP, 0);
  const err = sel & 0xfffc;
  const d = readDescriptor(cpu, sel);
  if ((d.attr & (0x10 | ATTR_CODE)) !== (0x10 | ATTR_CODE)) throw new Fault(Vector.GP, err);
  const conforming = (d.attr & 4) !== 0;
  if (isCall) {
    if (d.dpl > cpu.cpl) throw new Fault(Vector.GP, err);
  } else if (conforming ? d.dpl > cpu.cpl : d.dpl !== cpu.cpl) {
    throw new Fault(Vector.GP, err); // JMP cannot change CPL (SDM JMP "CALL-GATE")
  }
  if ((d.attr & ATTR_P) === 0) throw new Fault(Vector.NP, err);

  if (isCall && !conforming && d.dpl < cpu.cpl) {
    morePrivilege(cpu, sel, d, offset, size, count);
    return;
  }
  // Same privilege (SDM CALL "SAME-PRIVILEGE" through a gate; JMP "CALL-GATE").
  if ((offset >>> 0) > (d.limit >>> 0)) throw new Fault(Vector.GP, 0);
  if (isCall) {
    cpu.push(size, cpu.sel[SegReg.CS]!);
    cpu.push(size, cpu.nextEip);
  }
  loadCodeSegment(cpu, sel, d, cpu.cpl);
  cpu.nextEip = offset;
}

/** CALL to a more privileged non-conforming code segment: the TSS stack switch (SDM §5.8.5, figure 5-13). */
function morePrivilege(cpu: Cpu, sel: number, d: Descriptor, offset: number, size: number, count: number): void {
  const newCpl = d.dpl;
  const { ss: newSs, esp: newEsp, descriptor: sd } = innerStack(cpu, newCpl);
  const ssErr = newSs & 0xfffc;
  const bytes = (size >>> 3) * (4 + count);
  if (!stackFits(sd, newEsp, bytes)) throw new Fault(Vector.SS, ssErr);
  if ((offset >>> 0) > (d.limit >>> 0)) throw new Fault(Vector.GP, 0);
  // Parameters from the caller's stack, param[0] at its SS:ESP.
  const oldSs = cpu.sel[SegReg.SS]!, oldEsp = cpu.regs[4]!, oldCs = cpu.sel[SegReg.CS]!;
  const oldMask = cpu.stackBits === 32 ? -1 : 0xffff;
  const step = size >>> 3;
  const params: number[] = [];
  for (let i = 0; i < count; i++) params.push(cpu.readSized(SegReg.SS, (oldEsp + i * step) & oldMask, size));
  markAccessed(cpu, sd);
  setCache(cpu, SegReg.SS, newSs, sd);
  cpu.regs[4] = newEsp;
  loadCodeSegment(cpu, sel, d, newCpl);
  cpu.push(size, oldSs);
  cpu.push(size, oldEsp);
  for (let i = count - 1; i >= 0; i--) cpu.push(size, params[i]!);
  cpu.push(size, oldCs);
  cpu.push(size, cpu.nextEip);
  cpu.nextEip = offset;
}

/** ES, DS, FS, GS that the new CPL may not use become null (SDM RET/IRET "RETURN-TO-OUTER-PRIVILEGE-LEVEL"). */
export function nullInaccessibleSegments(cpu: Cpu, cpl: number): void {
  for (const seg of [SegReg.ES, SegReg.DS, SegReg.FS, SegReg.GS]) {
    const a = cpu.segAttr[seg]!;
    const dataOrNonConforming = (a & ATTR_CODE) === 0 || (a & 4) === 0;
    if (dataOrNonConforming && ((a >>> 5) & 3) < cpl) {
      cpu.sel[seg] = 0;
      cpu.segAttr[seg] = 0;
    }
  }
}

/**
 * Far RET to an outer level, after CS:EIP were popped and the CS checks made: skip `release`
 * bytes of parameters, pop ESP and SS, check SS, load CS and SS, release the parameters on the
 * outer stack too, null the data segments the new CPL may not use (SDM RET, "Operation").
 */
export function retOuter(cpu: Cpu, sel: number, d: Descriptor, eip: number, size: number, release: number): void {
  const rpl = sel & 3;
  if (cpu.stackBits === 32) cpu.regs[4] = (cpu.regs[4]! + release) | 0;
  else cpu.regs[4] = (cpu.regs[4]! & ~0xffff) | ((cpu.regs[4]! + release) & 0xffff);
  const esp = cpu.pop(size);
  const ss = cpu.pop(size) & 0xffff;
  if ((ss & 0xfffc) === 0) throw new Fault(Vector.GP, 0);
  const sd = readDescriptor(cpu, ss);
  if ((ss & 3) !== rpl || (sd.attr & 0x1a) !== 0x12 || sd.dpl !== rpl) throw new Fault(Vector.GP, ss & 0xfffc);
  if ((sd.attr & ATTR_P) === 0) throw new Fault(Vector.SS, ss & 0xfffc);
  if ((eip >>> 0) > (d.limit >>> 0)) throw new Fault(Vector.GP, 0);
  loadCodeSegment(cpu, sel, d, rpl);
  markAccessed(cpu, sd);
  setCache(cpu, SegReg.SS, ss, sd);
  cpu.regs[4] = size === 16 ? (cpu.regs[4]! & ~0xffff) | (esp & 0xffff) : esp;
  if (cpu.stackBits === 32) cpu.regs[4] = (cpu.regs[4]! + release) | 0;
  else cpu.regs[4] = (cpu.regs[4]! & ~0xffff) | ((cpu.regs[4]! + release) & 0xffff);
  cpu.nextEip = eip;
  nullInaccessibleSegments(cpu, rpl);
}
