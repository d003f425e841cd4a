// Hardware task switching with 32-bit TSSs (SDM vol. 3A §8.3 "Task Switching", figure 8-2 for
// the TSS layout; vol. 2 JMP/CALL "TASK-GATE"/"TASK-STATE-SEGMENT", IRET "TASK-RETURN", and
// §6.11 for IDT task gates). The callers (far JMP/CALL, IRET with NT = 1, interrupt delivery
// through a task gate) make the checks on the gate and on the new TSS descriptor's type, DPL and
// presence; taskSwitch() does the rest in the manual's order:
//   1. the monitor hook (VT-x exits here, reason 9: Bochs tasking.cc calls VMexit_TaskSwitch at
//      this point, after the callers' checks; vmx.md §3),
//   2. the new TSS's limit (>= 0x67, else #TS(new TSS)), the state it holds read before anything
//      changes, so that a #PF on either TSS leaves the old task intact,
//   3. busy bits (old cleared for JMP/IRET, new set for JMP/CALL/interrupt), NT and back link
//      (CALL/interrupt), the old task's state saved (EFLAGS with NT cleared for IRET),
//   4. the commit: TR, CR0.TS, CR3 (with paging), EFLAGS, EIP, GPRs, LDTR and segment
//      selectors loaded; then the LDT and segment descriptors are checked. A fault there is taken
//      in the new task's context (§8.3 step 12, "exceptions ... after the commit point"), so EIP
//      is already the new task's.
// Not modelled: 16-bit TSSs and switching into virtual-8086 mode (UnsupportedFeature ends the
// run with a report), the T (debug trap) flag, and the I/O map base (checkIo reads it from TR).
import type { Cpu } from './cpu';
import { ATTR_CODE, ATTR_P, ATTR_S } from './cpu';
import * as F from './eflags';
import { Fault, Vector } from './fault';
import { proceed } from './intercept';
import { UnsupportedFeature } from './interrupts';
import { pdptesFor } from './paging';
import { SegReg } from './registers';
import { type Descriptor, markAccessed, readDescriptor, readLinear32, setCache, writeLinear32 } from './segments';
import { tlbControlWrite } from './tlb';

/** What started the switch: the VT-x qualification's source field (bits 31:30, vmx.md §3). */
export const TaskSource = { CALL: 0, IRET: 1, JMP: 2, IDT_GATE: 3 } as const;
export type TaskSource = (typeof TaskSource)[keyof typeof TaskSource];

/** Offsets in a 32-bit TSS (SDM vol. 3A figure 8-2). */
export const TSS32 = {
  LINK: 0x00, CR3: 0x1c, EIP: 0x20, EFLAGS: 0x24, EAX: 0x28, ES: 0x48, LDT: 0x60, MIN_LIMIT: 0x67,
} as const;

const TSS32_AVAILABLE = 0x9, TSS32_BUSY = 0xb, BUSY_BIT = 0x200; // type bit 1, in the descriptor's high dword
const CR0_TS = 0x8, CR0_PG = 0x80000000, CR4_PAE = 0x20;
/** Segment registers in TSS order (ES, CS, SS, DS, FS, GS) are SegReg 0..5. */
const SEGMENTS = 6;

/**
 * Reads the TSS descriptor a task switch goes to and makes the checks its callers share: it
 * must be in the GDT, a TSS of the expected busy state, and present. `fault` is #GP for
 * JMP/CALL and interrupts, #TS for IRET (SDM IRET "TASK-RETURN").
 */
export function tssDescriptor(cpu: Cpu, sel: number, busy: boolean, fault: number, ext = 0): Descriptor {
  const err = (sel & 0xfffc) | ext;
  if (sel & 4) throw new Fault(fault, err);
  const d = readDescriptor(cpu, sel, fault, ext);
  const type = d.attr & 0x1f; // S bit and type
  const ok = busy ? type === 0x3 || type === TSS32_BUSY : type === 0x1 || type === TSS32_AVAILABLE;
  if (!ok) throw new Fault(fault, err);
  if ((d.attr & ATTR_P) === 0) throw new Fault(Vector.NP, err);
  return d;
}

/**
 * Switches to the task whose TSS descriptor `d` the selector `sel` names. `nextEip` is the EIP
 * saved in the old TSS (the instruction after JMP/CALL/IRET, or the interrupt's return address).
 * `errorCode` >= 0 is pushed on the new task's stack (an exception through a task gate).
 * Sets cpu.eip and cpu.nextEip to the new task's EIP.
 */
export function taskSwitch(cpu: Cpu, sel: number, d: Descriptor, source: TaskSource, nextEip: number, instructionLength: number, errorCode = -1): void {
  const m = cpu.interceptor;
  if (m !== null) proceed(m.taskSwitch(cpu, { selector: sel & 0xffff, source, instructionLength }));
  if ((d.attr & 0xf) !== TSS32_AVAILABLE && (d.attr & 0xf) !== TSS32_BUSY) throw new UnsupportedFeature('task switches to 16-bit TSSs');
  if ((d.limit >>> 0) < TSS32.MIN_LIMIT) throw new Fault(Vector.TS, sel & 0xfffc);
  if ((cpu.trAttr & 0xf) !== TSS32_BUSY || (cpu.trLimit >>> 0) < 0x5f) throw new UnsupportedFeature('task switches from a 16-bit or absent TSS');

  // The new task's state, read before anything is written (a #PF here restarts the instruction).
  const nb = d.base;
  const rd = (off: number): number => readLinear32(cpu, (nb + off) | 0);
  const newCr3 = rd(TSS32.CR3), newEip = rd(TSS32.EIP);
  let newFlags = rd(TSS32.EFLAGS);
  const newRegs = new Int32Array(8);
  for (let i = 0; i < 8; i++) newRegs[i] = rd(TSS32.EAX + 4 * i);
  const newSel = new Uint16Array(SEGMENTS);
  for (let s = 0; s < SEGMENTS; s++) newSel[s] = rd(TSS32.ES + 4 * s) & 0xffff;
  const newLdt = rd(TSS32.LDT) & 0xffff;
  if (newFlags & F.VM) throw new UnsupportedFeature('task switches into virtual-8086 mode');

  // Old task: busy bit, saved state (SDM §8.3 steps 7-9).
  const ob = cpu.trBase, oldSel = cpu.trSel;
  const wr = (off: number, v: number): void => writeLinear32(cpu, (ob + off) | 0, v);
  let oldFlags = cpu.eflags;
  if (source === TaskSource.JMP || source === TaskSource.IRET) setBusy(cpu, oldSel, false);
  if (source === TaskSource.IRET) oldFlags &= ~F.NT;
  wr(TSS32.EIP, nextEip);
  wr(TSS32.EFLAGS, oldFlags);
  for (let i = 0; i < 8; i++) wr(TSS32.EAX + 4 * i, cpu.regs[i]!);
  for (let s = 0; s < SEGMENTS; s++) wr(TSS32.ES + 4 * s, cpu.sel[s]!);

  // New task: back link and NT for a nested task, busy bit (steps 10-11).
  if (source === TaskSource.CALL || source === TaskSource.IDT_GATE) {
    writeLinear32(cpu, nb, (readLinear32(cpu, nb) & 0xffff0000) | oldSel);
    newFlags |= F.NT;
  }
  if (source !== TaskSource.IRET) setBusy(cpu, sel, true);

  // Commit: TR, CR0.TS, CR3, EFLAGS, EIP, registers.
  cpu.trSel = sel & 0xffff;
  cpu.trBase = d.base;
  cpu.trLimit = d.limit;
  cpu.trAttr = (d.attr & ~0xf) | TSS32_BUSY;
  cpu.cr0 |= CR0_TS;
  if (cpu.cr0 & CR0_PG) {
    if (cpu.cr4 & CR4_PAE) cpu.pdpte.set(pdptesFor(cpu, newCr3));
    cpu.cr3 = newCr3;
    tlbControlWrite(cpu, 3, 0, newCr3);
  }
  cpu.eflags = newFlags | 0x2;
  cpu.eip = cpu.nextEip = newEip;
  cpu.regs.set(newRegs);
  // Selectors are loaded unusable first; each becomes usable when its descriptor passes its checks.
  for (let s = 0; s < SEGMENTS; s++) {
    cpu.sel[s] = newSel[s]!;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = 0;
    cpu.segAttr[s] = 0;
  }
  cpu.ldtrSel = newLdt;
  cpu.ldtrBase = 0;
  cpu.ldtrLimit = 0;
  cpu.cpl = newSel[SegReg.CS]! & 3;

  loadTaskLdt(cpu, newLdt);
  loadTaskCs(cpu, newSel[SegReg.CS]!);
  loadTaskSs(cpu, newSel[SegReg.SS]!);
  for (const s of [SegReg.DS, SegReg.ES, SegReg.FS, SegReg.GS]) loadTaskData(cpu, s, newSel[s]!);
  if ((newEip >>> 0) > (cpu.segLimit[SegReg.CS]! >>> 0)) throw new Fault(Vector.GP, 0);
  if (errorCode >= 0) cpu.push(32, errorCode);
}

function setBusy(cpu: Cpu, sel: number, busy: boolean): void {
  const at = (cpu.gdtrBase + (sel & 0xfff8) + 4) | 0;
  const hi = readLinear32(cpu, at);
  writeLinear32(cpu, at, busy ? hi | BUSY_BIT : hi & ~BUSY_BIT);
}

/** LDTR of the new task (§8.3 step 12): null is allowed; else an LDT descriptor in the GDT, present; #TS(LDT selector) otherwise. */
function loadTaskLdt(cpu: Cpu, sel: number): void {
  if ((sel & 0xfffc) === 0) return;
  const err = sel & 0xfffc;
  if (sel & 4) throw new Fault(Vector.TS, err);
  const d = readDescriptor(cpu, sel, Vector.TS);
  if ((d.attr & 0x1f) !== 0x2 || (d.attr & ATTR_P) === 0) throw new Fault(Vector.TS, err);
  cpu.ldtrBase = d.base;
  cpu.ldtrLimit = d.limit;
}

/** CS: a code segment, DPL = RPL (non-conforming) or <= RPL (conforming), present (#NP). */
function loadTaskCs(cpu: Cpu, sel: number): void {
  const err = sel & 0xfffc;
  if (err === 0) throw new Fault(Vector.TS, 0);
  const d = readDescriptor(cpu, sel, Vector.TS);
  const rpl = sel & 3;
  if ((d.attr & (ATTR_S | ATTR_CODE)) !== (ATTR_S | ATTR_CODE)) throw new Fault(Vector.TS, err);
  if ((d.attr & 4) ? d.dpl > rpl : d.dpl !== rpl) throw new Fault(Vector.TS, err);
  if ((d.attr & ATTR_P) === 0) throw new Fault(Vector.NP, err);
  markAccessed(cpu, d);
  setCache(cpu, SegReg.CS, sel, d);
}

/** SS: writable data with RPL = DPL = CPL (#TS), present (#SS). */
function loadTaskSs(cpu: Cpu, sel: number): void {
  const err = sel & 0xfffc;
  if (err === 0) throw new Fault(Vector.TS, 0);
  const d = readDescriptor(cpu, sel, Vector.TS);
  if ((d.attr & 0x1a) !== 0x12 || (sel & 3) !== cpu.cpl || d.dpl !== cpu.cpl) throw new Fault(Vector.TS, err);
  if ((d.attr & ATTR_P) === 0) throw new Fault(Vector.SS, err);
  markAccessed(cpu, d);
  setCache(cpu, SegReg.SS, sel, d);
}

/** DS, ES, FS, GS: null stays unusable; else data or readable code, DPL >= max(CPL, RPL) unless conforming (#TS), present (#NP). */
function loadTaskData(cpu: Cpu, seg: number, sel: number): void {
  const err = sel & 0xfffc;
  if (err === 0) return;
  const d = readDescriptor(cpu, sel, Vector.TS);
  const a = d.attr;
  const code = (a & ATTR_CODE) !== 0;
  if ((a & ATTR_S) === 0 || (code && (a & 2) === 0)) throw new Fault(Vector.TS, err);
  if (!(code && (a & 4)) && d.dpl < Math.max(cpu.cpl, sel & 3)) throw new Fault(Vector.TS, err);
  if ((a & ATTR_P) === 0) throw new Fault(Vector.NP, err);
  markAccessed(cpu, d);
  setCache(cpu, seg, sel, d);
}
