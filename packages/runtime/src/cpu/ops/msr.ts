// RDMSR, WRMSR, SYSENTER, SYSEXIT (SDM vol. 2B/2C instruction pages; MSRs from vol. 4 table 2-2).
// Implemented MSRs: IA32_TIME_STAMP_COUNTER, IA32_APIC_BASE, IA32_SYSENTER_CS/ESP/EIP, IA32_EFER
// (NXE only). Any other index, and any reserved bit set by WRMSR, is #GP(0).
import type { Cpu, Handler } from '../cpu';
import { ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';
import { interceptorOf, proceed } from '../intercept';
import { Msr, msrState } from '../msr-state';
import { SegReg } from '../registers';
import { tlbOf } from '../tlb';

const EFER_NXE = 1 << 11;
/** IA32_APIC_BASE writable bits on a part with 36 physical-address bits: BSP (8), enable (11), base 35:12. */
const APIC_BASE_WRITABLE_LO = 0xfffff900 | 0;
const APIC_BASE_WRITABLE_HI = 0xf;

/** RDMSR/WRMSR: #GP(0) unless CPL 0; virtual-8086 mode runs at CPL 3 (SDM RDMSR "Virtual-8086 Mode Exceptions"). */
function cpl0(cpu: Cpu): void {
  if (cpu.protectedMode && (cpu.cpl !== 0 || cpu.v86)) throw new Fault(Vector.GP, 0);
}

/** EDX:EAX of an MSR, or throws #GP(0) for an index this CPU does not implement. */
export function readMsr(cpu: Cpu, index: number): [lo: number, hi: number] {
  const s = msrState(cpu);
  switch (index >>> 0) {
    case Msr.IA32_TIME_STAMP_COUNTER:
      return [Number(cpu.tsc & 0xffffffffn) | 0, Number((cpu.tsc >> 32n) & 0xffffffffn) | 0];
    case Msr.IA32_APIC_BASE: return [s.apicBase, 0];
    case Msr.IA32_SYSENTER_CS: return [s.sysenterCs, 0];
    case Msr.IA32_SYSENTER_ESP: return [s.sysenterEsp, 0];
    case Msr.IA32_SYSENTER_EIP: return [s.sysenterEip, 0];
    case Msr.IA32_EFER: return [cpu.efer, 0];
  }
  throw new Fault(Vector.GP, 0);
}

/** Writes an MSR, or throws #GP(0) for an unknown index or a reserved bit (SDM WRMSR "Protected Mode Exceptions"). */
export function writeMsr(cpu: Cpu, index: number, lo: number, hi: number): void {
  const s = msrState(cpu);
  switch (index >>> 0) {
    case Msr.IA32_TIME_STAMP_COUNTER:
      // All 64 bits are written, as on processors since the Core family (SDM vol. 3B §18.17);
      // P6-era parts cleared bits 63:32 instead.
      cpu.tsc = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
      return;
    case Msr.IA32_APIC_BASE:
      if ((lo & ~APIC_BASE_WRITABLE_LO) !== 0 || (hi & ~APIC_BASE_WRITABLE_HI) !== 0) throw new Fault(Vector.GP, 0);
      s.apicBase = lo;
      return;
    // A 32-bit processor keeps 32 bits of these; EDX is ignored (the canonical-address #GP exists
    // only on Intel 64 parts, SDM WRMSR).
    case Msr.IA32_SYSENTER_CS: s.sysenterCs = lo; return;
    case Msr.IA32_SYSENTER_ESP: s.sysenterEsp = lo; return;
    case Msr.IA32_SYSENTER_EIP: s.sysenterEip = lo; return;
    case Msr.IA32_EFER: {
      // Only NXE is implemented: SCE, LME (bit 8: no IA-32e mode here) and the rest are reserved.
      if ((lo & ~EFER_NXE) !== 0 || hi !== 0) throw new Fault(Vector.GP, 0);
      const old = cpu.efer;
      cpu.efer = lo;
      // Execute rights depend on NXE, and TLB entries remember fetches that succeeded.
      if ((old ^ lo) & EFER_NXE) tlbOf(cpu).flushAll();
      return;
    }
  }
  throw new Fault(Vector.GP, 0);
}

const rdmsr: Handler = (cpu) => {
  cpl0(cpu);
  const index = cpu.regs[1]! >>> 0;
  const m = interceptorOf(cpu);
  if (m !== null && !proceed(m.msr(cpu, { msr: index, write: false, value: 0n }))) return;
  const [lo, hi] = readMsr(cpu, index);
  cpu.regs[0] = lo;
  cpu.regs[2] = hi;
};

const wrmsr: Handler = (cpu) => {
  cpl0(cpu);
  const index = cpu.regs[1]! >>> 0;
  const lo = cpu.regs[0]!, hi = cpu.regs[2]!;
  const m = interceptorOf(cpu);
  const value = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  if (m !== null && !proceed(m.msr(cpu, { msr: index, write: true, value }))) return;
  writeMsr(cpu, index, lo, hi);
};

/**
 * The flat 4 GiB segments SYSENTER/SYSEXIT load without reading the GDT (SDM SYSENTER
 * "Operation"): base 0, limit FFFFFh with G = 1, code type 11 (execute/read, accessed) with
 * D = 1, stack type 3 (read/write, accessed) with B = 1, all present.
 */
function loadFlat(cpu: Cpu, seg: number, selector: number, dpl: number, code: boolean): void {
  cpu.sel[seg] = selector;
  cpu.segBase[seg] = 0;
  cpu.segLimit[seg] = -1;
  cpu.segAttr[seg] = ATTR_P | ATTR_S | (dpl << 5) | (code ? ATTR_CODE | 0x3 : 0x3) | ATTR_DB | ATTR_G;
}

const sysenter: Handler = (cpu) => {
  const cs = msrState(cpu).sysenterCs & 0xffff;
  if (!cpu.protectedMode || (cs & 0xfffc) === 0) throw new Fault(Vector.GP, 0);
  cpu.setFlagBits(F.VM | F.IF | F.RF, 0);
  loadFlat(cpu, SegReg.CS, cs & 0xfffc, 0, true);
  cpu.cpl = 0;
  loadFlat(cpu, SegReg.SS, ((cs & 0xfffc) + 8) & 0xffff, 0, false);
  cpu.regs[4] = msrState(cpu).sysenterEsp;
  cpu.nextEip = msrState(cpu).sysenterEip;
};

const sysexit: Handler = (cpu) => {
  const cs = msrState(cpu).sysenterCs & 0xffff;
  // One combined condition in the SDM's order: SYSENTER_CS[15:2] = 0, CR0.PE = 0, CPL ≠ 0.
  if ((cs & 0xfffc) === 0 || !cpu.protectedMode || cpu.v86 || cpu.cpl !== 0) throw new Fault(Vector.GP, 0);
  // 32-bit SYSEXIT: CS = SYSENTER_CS + 16, SS = SYSENTER_CS + 24, both with RPL 3.
  loadFlat(cpu, SegReg.CS, ((cs + 16) | 3) & 0xffff, 3, true);
  cpu.cpl = 3;
  loadFlat(cpu, SegReg.SS, ((cs + 24) | 3) & 0xffff, 3, false);
  cpu.regs[4] = cpu.regs[1]!; // ESP := ECX
  cpu.nextEip = cpu.regs[2]!; // EIP := EDX
};

export const MSR = {
  byMnemonic: { rdmsr, wrmsr, sysenter, sysexit } satisfies Record<string, Handler>,
};
