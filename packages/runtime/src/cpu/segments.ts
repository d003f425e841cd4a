// Segment descriptors and segment-register loads (SDM vol. 3A ch. 3 and §5.4-5.8): reading a
// descriptor from the GDT/LDT, the descriptor cache, and the checks with their exceptions.
import type { Cpu } from './cpu';
import { ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S } from './cpu';
import { Fault, Vector } from './fault';
import { SegReg } from './registers';

export interface Descriptor {
  lo: number;
  hi: number;
  /** Linear address where the descriptor's high word lives (to set the accessed bit). */
  addr: number;
  base: number;
  /** Effective limit in bytes (G applied). */
  limit: number;
  /** Access byte | D/B << 14 | G << 15, as Cpu.segAttr keeps it. */
  attr: number;
  dpl: number;
}

export function decodeDescriptor(lo: number, hi: number, addr: number): Descriptor {
  const base = ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) | 0;
  let limit = (lo & 0xffff) | (hi & 0xf0000);
  const g = (hi & (1 << 23)) !== 0;
  if (g) limit = ((limit << 12) | 0xfff) >>> 0;
  const attr = ((hi >>> 8) & 0xff) | ((hi & (1 << 22)) ? ATTR_DB : 0) | (g ? ATTR_G : 0);
  return { lo, hi, addr, base, limit, attr, dpl: (hi >>> 13) & 3 };
}

/**
 * Reads the descriptor a selector names, or throws `fault(errorCode = selector & 0xfffc)` when
 * it lies outside the GDT/LDT limit (SDM vol. 3A §3.4.2). Descriptor tables are read with
 * supervisor rights regardless of CPL (§4.6: implicit supervisor-mode accesses).
 */
export function readDescriptor(cpu: Cpu, selector: number, vector: number = Vector.GP, ext = 0): Descriptor {
  const index = selector & 0xfff8;
  const ldt = (selector & 4) !== 0;
  const base = ldt ? cpu.ldtrBase : cpu.gdtrBase;
  const limit = ldt ? cpu.ldtrLimit : cpu.gdtrLimit;
  if ((ldt && cpu.ldtrSel === 0) || index + 7 > (limit >>> 0)) throw new Fault(vector, (selector & 0xfffc) | ext);
  const addr = (base + index) | 0;
  const lo = readLinear32(cpu, addr), hi = readLinear32(cpu, addr + 4);
  return decodeDescriptor(lo, hi, addr);
}

export function readLinear32(cpu: Cpu, lin: number): number {
  const saved = cpu.cpl;
  cpu.cpl = 0;
  try {
    return cpu.mem.read32(cpu.phys(lin, false));
  } finally {
    cpu.cpl = saved;
  }
}

/** Writes a descriptor-table dword with supervisor rights (SDM vol. 3A §4.6, implicit supervisor access). */
export function writeLinear32(cpu: Cpu, lin: number, v: number): void {
  const saved = cpu.cpl;
  cpu.cpl = 0;
  try {
    cpu.mem.write32(cpu.phys(lin, true), v);
  } finally {
    cpu.cpl = saved;
  }
}

/** Sets the descriptor's accessed bit, as a segment load does (SDM vol. 3A §3.4.5.1). */
export function markAccessed(cpu: Cpu, d: Descriptor): void {
  if ((d.hi & 0x100) === 0) writeLinear32(cpu, d.addr + 4, d.hi | 0x100);
}

export function setCache(cpu: Cpu, seg: number, selector: number, d: Descriptor): void {
  cpu.sel[seg] = selector;
  cpu.segBase[seg] = d.base;
  cpu.segLimit[seg] = d.limit;
  cpu.segAttr[seg] = d.attr | 0x1; // the load sets the accessed bit, in memory and in the cache
}

/** Real mode and virtual-8086 mode: base = selector * 16 (SDM vol. 3A §20.1.1). */
export function loadSegmentReal(cpu: Cpu, seg: number, selector: number): void {
  cpu.sel[seg] = selector & 0xffff;
  cpu.segBase[seg] = (selector & 0xffff) << 4;
  if (cpu.v86) {
    cpu.segLimit[seg] = 0xffff;
    cpu.segAttr[seg] = ATTR_P | ATTR_S | 0x3 | (seg === SegReg.CS ? ATTR_CODE | 0x8 : 0) | (3 << 5);
  }
}

/**
 * MOV/POP to SS, DS, ES, FS, GS in protected mode, with the checks of the SDM's MOV and POP
 * pages ("Protected Mode Exceptions") in their order.
 */
export function loadDataSegment(cpu: Cpu, seg: number, selector: number): void {
  if (!cpu.protectedMode || cpu.v86) {
    loadSegmentReal(cpu, seg, selector);
    return;
  }
  selector &= 0xffff;
  const rpl = selector & 3;
  if ((selector & 0xfffc) === 0) {
    if (seg === SegReg.SS) throw new Fault(Vector.GP, 0);
    // A null selector loads an unusable segment: any access through it is #GP(0).
    cpu.sel[seg] = selector;
    cpu.segBase[seg] = 0;
    cpu.segLimit[seg] = 0;
    cpu.segAttr[seg] = 0;
    return;
  }
  const d = readDescriptor(cpu, selector);
  const a = d.attr;
  const isData = (a & ATTR_S) !== 0 && (a & ATTR_CODE) === 0;
  const writable = isData && (a & 2) !== 0;
  const readableCode = (a & ATTR_S) !== 0 && (a & ATTR_CODE) !== 0 && (a & 2) !== 0;
  const conforming = (a & ATTR_CODE) !== 0 && (a & 4) !== 0;
  if (seg === SegReg.SS) {
    if (rpl !== cpu.cpl || !writable || d.dpl !== cpu.cpl) throw new Fault(Vector.GP, selector & 0xfffc);
    if ((a & ATTR_P) === 0) throw new Fault(Vector.SS, selector & 0xfffc);
  } else {
    if (!isData && !readableCode) throw new Fault(Vector.GP, selector & 0xfffc);
    if (!conforming && (rpl > d.dpl || cpu.cpl > d.dpl)) throw new Fault(Vector.GP, selector & 0xfffc);
    if ((a & ATTR_P) === 0) throw new Fault(Vector.NP, selector & 0xfffc);
  }
  markAccessed(cpu, d);
  setCache(cpu, seg, selector, d);
}

/** Loads CS for a control transfer whose checks the caller has made; CPL becomes `cpl`. */
export function loadCodeSegment(cpu: Cpu, selector: number, d: Descriptor, cpl: number): void {
  markAccessed(cpu, d);
  setCache(cpu, SegReg.CS, (selector & 0xfffc) | cpl, d);
  cpu.cpl = cpl;
}

/** True when TR holds a 32-bit TSS (available 9 or busy B), else it is a 16-bit one. */
export function tss32(cpu: Cpu): boolean {
  const t = cpu.trAttr & 0xf;
  return t === 0x9 || t === 0xb;
}

/**
 * The stack for an inner privilege level, from the TSS (SDM vol. 3A §7.2.1, figures 7-2/7-11),
 * with the checks shared by interrupt delivery (§6.12.1) and call gates (§5.8.5): TSS too short
 * → #TS(TR), null SS → #TS(ext), SS RPL/DPL ≠ CPL or not writable data → #TS(SS), not present → #SS(SS).
 * `ext` is the EXT bit of the error codes (1 for events not caused by the program).
 */
export function innerStack(cpu: Cpu, newCpl: number, ext = 0): { ss: number; esp: number; descriptor: Descriptor } {
  const is32 = tss32(cpu);
  const at = is32 ? 4 + newCpl * 8 : 2 + newCpl * 4;
  if (at + (is32 ? 5 : 3) > (cpu.trLimit >>> 0)) throw new Fault(Vector.TS, (cpu.trSel & 0xfffc) | ext);
  const espWord = readLinear32(cpu, cpu.trBase + at);
  const ss = readLinear32(cpu, cpu.trBase + at + (is32 ? 4 : 2)) & 0xffff;
  const esp = is32 ? espWord : espWord & 0xffff;
  if ((ss & 0xfffc) === 0) throw new Fault(Vector.TS, ext);
  const d = readDescriptor(cpu, ss, Vector.TS, ext);
  if ((ss & 3) !== newCpl || d.dpl !== newCpl || (d.attr & 0x1a) !== 0x12) throw new Fault(Vector.TS, (ss & 0xfffc) | ext);
  if ((d.attr & ATTR_P) === 0) throw new Fault(Vector.SS, (ss & 0xfffc) | ext);
  return { ss, esp, descriptor: d };
}
