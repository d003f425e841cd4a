// The real GDT of a PV guest (xen/arch/x86/pv/descriptor-tables.c, mm.c): entries below
// FIRST_RESERVED_GDT_ENTRY are the guest's (set_gdt, update_descriptor), each checked as Xen's
// check_descriptor does and stored in the form the CPU may load at CPL 1; the reserved page holds
// Xen's flat ring-1 and ring-3 segments (arch-x86/xen-x86_32.h FLAT_RING1_CS ...). The table lives
// in monitor memory, mapped read-only at PV_GDT_LINEAR in the hole; the guest's segments end
// below it (ring1/monitor.ts shadowDescriptor clips them to SEGMENT_CLIP).
import type { PhysicalMemory } from '../../machine/memory';
import { SEGMENT_CLIP, shadowDescriptor } from '../ring1/monitor';
import { FIRST_RESERVED_GDT_ENTRY, FLAT_RING1_CS, FLAT_RING1_DS, FLAT_RING3_CS, FLAT_RING3_DS } from './abi';

/** 15 pages: the guest's 14 and Xen's reserved one (arch-x86/xen.h FIRST_RESERVED_GDT_PAGE). */
export const PV_GDT_PAGES = 15;
export const PV_GDT_LIMIT = PV_GDT_PAGES * 4096 - 1;

/** A flat descriptor (base 0, limit SEGMENT_CLIP, G = 1, D = 1) with this access byte (accessed bit set). */
function flat(access: number): [number, number] {
  const lim = SEGMENT_CLIP >>> 12;
  return [lim & 0xffff, ((access | 1) << 8) | (lim & 0xf0000) | (0xc << 20)];
}

/** Xen's reserved flat segments, by selector. */
export const RESERVED_DESCRIPTORS: readonly (readonly [number, [number, number]])[] = [
  [FLAT_RING1_CS, flat(0x80 | (1 << 5) | 0x10 | 0x8 | 0x2)],
  [FLAT_RING1_DS, flat(0x80 | (1 << 5) | 0x10 | 0x2)],
  [FLAT_RING3_CS, flat(0x80 | (3 << 5) | 0x10 | 0x8 | 0x2)],
  [FLAT_RING3_DS, flat(0x80 | (3 << 5) | 0x10 | 0x2)],
];

/**
 * check_descriptor: null and not-present descriptors pass as they are; present code and data
 * segments get DPL >= 1 and a limit that ends below the monitor's structures, and the accessed
 * bit (so that a load never writes the read-only table); present system descriptors (call gates,
 * LDT, TSS) are refused: this monitor models no gates, LDTs or task state for PV guests.
 * Returns the descriptor to install, or null.
 */
export function checkDescriptor(lo: number, hi: number): [number, number] | null {
  if ((hi & 0x8000) === 0) return [lo | 0, hi | 0];
  if ((hi & 0x1000) === 0) return null;
  const [l, h] = shadowDescriptor(lo, hi);
  return [l | 0, (h | 0x100) | 0];
}

export class PvGdt {
  constructor(private readonly mem: PhysicalMemory, readonly phys: number) {
    for (let i = 0; i < PV_GDT_PAGES * 512; i++) this.write(i, 0, 0);
    for (const [sel, [lo, hi]] of RESERVED_DESCRIPTORS) this.write(sel >>> 3, lo, hi);
  }

  write(index: number, lo: number, hi: number): void {
    this.mem.write32(this.phys + index * 8, lo);
    this.mem.write32(this.phys + index * 8 + 4, hi);
  }

  /** Clears the guest's part (set_gdt replaces the whole table). */
  clearGuest(): void {
    for (let i = 0; i < FIRST_RESERVED_GDT_ENTRY; i++) this.write(i, 0, 0);
  }
}
