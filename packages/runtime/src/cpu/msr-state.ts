// Model-specific registers that have no field on Cpu: kept beside it in a WeakMap so that the
// MSR family needs no cpu.ts change. Values are those of a bootstrap processor after reset
// (SDM vol. 3A §9.1.1, table 9-1; vol. 4 table 2-2).
import type { Cpu } from './cpu';

/** MSR indices (SDM vol. 4 §2.1, table 2-2; names as in the SDM and Xen's msr-index.h). */
export const Msr = {
  IA32_TIME_STAMP_COUNTER: 0x10,
  IA32_APIC_BASE: 0x1b,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_EFER: 0xc0000080,
} as const;

/** IA32_APIC_BASE at reset on the BSP: base FEE00000h, global enable (bit 11), BSP (bit 8). */
export const APIC_BASE_RESET = 0xfee00900;

export class MsrState {
  sysenterCs = 0;
  sysenterEsp = 0;
  sysenterEip = 0;
  /** Low 32 bits; bits 35:32 of the base are 0 on this 32-bit part. */
  apicBase = APIC_BASE_RESET | 0;
}

const states = new WeakMap<Cpu, MsrState>();

export function msrState(cpu: Cpu): MsrState {
  let s = states.get(cpu);
  if (s === undefined) {
    s = new MsrState();
    states.set(cpu, s);
  }
  return s;
}
