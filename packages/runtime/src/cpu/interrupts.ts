// Exception and interrupt delivery (SDM vol. 3A ch. 6): the real-mode IVT (§20.1.4), and
// protected-mode interrupt and trap gates with the stack switch through the TSS (§6.12.1), task
// gates (task-switch.ts),
// double fault and shutdown (§6.15, "Interrupt 8 — Double Fault Exception", table 6-5).
import type { Cpu } from './cpu';
import { ATTR_CODE } from './cpu';
import * as F from './eflags';
import { Fault, Vector } from './fault';
import { SegReg } from './registers';
import { TaskSource, taskSwitch, tssDescriptor } from './task-switch';
import { decodeDescriptor, innerStack, loadCodeSegment, loadSegmentReal, readDescriptor, readLinear32, setCache } from './segments';

const CONTRIBUTORY = new Set<number>([Vector.DE, Vector.TS, Vector.NP, Vector.SS, Vector.GP]);

/**
 * Delivers `vector`. `nextEip` is the return address (the faulting instruction for faults, the
 * next one for traps and INT n). Software interrupts (INT n, INT3, INTO) check the gate's DPL.
 */
export function deliverException(cpu: Cpu, vector: number, errorCode: number, software: boolean, nextEip: number): void {
  const prior = cpu.deliveringVector;
  if (prior >= 0) {
    // A fault while delivering another exception (table 6-5).
    if (prior === Vector.DF) {
      cpu.shutdownReason = `triple fault: exception ${vector} while delivering a double fault`;
      cpu.halted = true;
      return;
    }
    const benign = !CONTRIBUTORY.has(vector) && vector !== Vector.PF;
    if (!benign && (CONTRIBUTORY.has(prior) || (prior === Vector.PF))) {
      if (!(prior !== Vector.PF && vector === Vector.PF)) {
        vector = Vector.DF;
        errorCode = 0;
        software = false;
      }
    }
  }
  cpu.deliveringVector = vector;
  try {
    if (!cpu.protectedMode) deliverReal(cpu, vector, nextEip);
    else if (cpu.v86) throw new UnsupportedFeature('interrupt delivery in virtual-8086 mode');
    else deliverProtected(cpu, vector, errorCode, software, nextEip);
    cpu.deliveringVector = -1;
    cpu.halted = false;
  } catch (e) {
    if (!(e instanceof Fault)) {
      cpu.deliveringVector = -1;
      throw e;
    }
    deliverException(cpu, e.vector, e.errorCode < 0 ? 0 : e.errorCode, false, cpu.eip);
    if (cpu.deliveringVector === vector) cpu.deliveringVector = -1;
  }
}

/** A processor feature this CPU does not implement yet: ends the run with a report, never silently. */
export class UnsupportedFeature extends Error {
  constructor(readonly feature: string) {
    super(`not implemented: ${feature}`);
  }
}

function deliverReal(cpu: Cpu, vector: number, nextEip: number): void {
  const entry = vector * 4;
  if (entry + 3 > (cpu.idtrLimit >>> 0)) throw new Fault(Vector.GP, vector * 8 + 2);
  // Paging is off in real mode: phys() is the identity, or the guest-physical map (intercept.ts).
  const ip = cpu.mem.read16(cpu.phys((cpu.idtrBase + entry) | 0, false));
  const cs = cpu.mem.read16(cpu.phys((cpu.idtrBase + entry + 2) | 0, false));
  cpu.push(16, cpu.eflags);
  cpu.push(16, cpu.sel[SegReg.CS]!);
  cpu.push(16, nextEip);
  cpu.setFlagBits(F.IF | F.TF | F.AC, 0);
  loadSegmentReal(cpu, SegReg.CS, cs);
  cpu.eip = cpu.nextEip = ip;
}

function deliverProtected(cpu: Cpu, vector: number, errorCode: number, software: boolean, nextEip: number): void {
  const ext = software ? 0 : 1;
  const gateErr = vector * 8 + 2 + ext;
  if (vector * 8 + 7 > (cpu.idtrLimit >>> 0)) throw new Fault(Vector.GP, gateErr);
  const lo = readLinear32(cpu, cpu.idtrBase + vector * 8);
  const hi = readLinear32(cpu, cpu.idtrBase + vector * 8 + 4);
  const type = (hi >>> 8) & 0x1f;
  const dpl = (hi >>> 13) & 3;
  if (type === 0x05) {
    // Task gate (SDM vol. 3A §6.11.3, §8.3): the gate's DPL for INT n, presence, then an
    // available TSS in the GDT; the error code goes on the new task's stack.
    if (software && dpl < cpu.cpl) throw new Fault(Vector.GP, gateErr);
    if ((hi & 0x8000) === 0) throw new Fault(Vector.NP, gateErr);
    const tssSel = lo >>> 16;
    const d = tssDescriptor(cpu, tssSel, false, Vector.GP, ext);
    taskSwitch(cpu, tssSel, d, TaskSource.IDT_GATE, nextEip, software ? (nextEip - cpu.eip) >>> 0 : 0, software ? -1 : errorCode);
    return;
  }
  const is32 = type === 0x0e || type === 0x0f;
  if (!(is32 || type === 0x06 || type === 0x07)) throw new Fault(Vector.GP, gateErr);
  if (software && dpl < cpu.cpl) throw new Fault(Vector.GP, gateErr);
  if ((hi & 0x8000) === 0) throw new Fault(Vector.NP, gateErr);
  const trapGate = (type & 1) === 1;
  const selector = lo >>> 16;
  const offset = is32 ? ((lo & 0xffff) | (hi & 0xffff0000)) | 0 : lo & 0xffff;
  if ((selector & 0xfffc) === 0) throw new Fault(Vector.GP, ext);
  const d = readDescriptor(cpu, selector, Vector.GP, ext);
  if ((d.attr & (0x10 | ATTR_CODE)) !== (0x10 | ATTR_CODE) || d.dpl > cpu.cpl) throw new Fault(Vector.GP, (selector & 0xfffc) | ext);
  if ((d.attr & 0x80) === 0) throw new Fault(Vector.NP, (selector & 0xfffc) | ext);
  const conforming = (d.attr & 4) !== 0;
  const size = is32 ? 32 : 16;
  const flags = cpu.eflags;
  const oldCs = cpu.sel[SegReg.CS]!;
  if (!conforming && d.dpl < cpu.cpl) {
    // Inner privilege: the new stack comes from the TSS (SDM vol. 3A §6.12.1, §7.2.1).
    const newCpl = d.dpl;
    const { ss: newSs, esp: newEsp, descriptor: sd } = innerStack(cpu, newCpl, ext);
    const oldSs = cpu.sel[SegReg.SS]!, oldEsp = cpu.regs[4]!;
    loadCodeSegment(cpu, selector, d, newCpl);
    setCache(cpu, SegReg.SS, newSs, sd);
    cpu.regs[4] = newEsp;
    cpu.push(size, oldSs);
    cpu.push(size, oldEsp);
  } else if (conforming || d.dpl === cpu.cpl) {
    loadCodeSegment(cpu, selector, d, cpu.cpl);
  } else {
    throw new Fault(Vector.GP, (selector & 0xfffc) | ext);
  }
  cpu.push(size, flags);
  cpu.push(size, oldCs);
  cpu.push(size, nextEip);
  if (errorCode >= 0 && !software) cpu.push(size, errorCode);
  cpu.setFlagBits(F.TF | F.NT | F.RF | F.VM | (trapGate ? 0 : F.IF), 0);
  cpu.eip = cpu.nextEip = offset;
}

export { decodeDescriptor };
