// Xen-style direct paging (xen/arch/x86/mm.c): the guest's PAE page tables are the real ones, read
// only to the guest, and every change goes through here. Each machine frame the guest owns has a
// type with a reference count (get_page_type / put_page_type): none, writable (mapped writable
// somewhere), or a page-table level. A frame takes a page-table type only when all its entries
// validate (recursively taking the references they imply) and only while no writable mapping of
// it exists, so a frame is a page table or writable, never both. Every operation is
// all-or-nothing: on error the tables and the counts are as before.
import type { Cpu } from '../../cpu/cpu';
import { pdptesFor } from '../../cpu/paging';

export const PT_NONE = 0;
export const PT_L1 = 1;
export const PT_L2 = 2;
export const PT_L3 = 3;
export const PT_WRITABLE = 4;
/** A GDT frame (Xen's PGT_seg_desc_page): never writable while it is one. */
export const PT_SEGDESC = 5;
export const TYPE_NAMES = ['none', 'L1', 'L2', 'L3', 'writable', 'descriptor table'] as const;

const PTE_P = 1, PTE_RW = 2, PTE_A = 0x20, PTE_D = 0x40, PTE_PS = 0x80;
/**
 * Flags Xen refuses in a 32-bit PV guest's L3 entry: mm.c l3_disallow_mask = 0xFFFFF198 (PWT, PCD,
 * PS, G; the bits from 12 up are the address here, the high word is checked apart).
 */
const L3_DISALLOWED = 0x198;
/**
 * RW, US, A, D: allowed by Xen, which runs the guest's L3 as a long-mode L3 (adjust_guest_l3e),
 * but reserved in a PAE PDPTE (SDM vol. 3A §4.4.1, table 4-8), which is what the L3 is on this
 * CPU: cleared when an entry is stored, so the guest reads them back as 0.
 */
const L3_PDPTE_CLEARED = 0x66;

export interface FrameOwner {
  /** The guest's frames at boot: [firstGuestMfn, firstGuestMfn + nrGuestFrames). */
  readonly firstGuestMfn: number;
  readonly nrGuestFrames: number;
  /** Xen frames the guest may map writable (shared_info, grant table): [sharedMfn, sharedMfn + sharedCount). */
  readonly sharedMfn: number;
  readonly sharedCount: number;
}

export class FrameTable {
  readonly type: Uint8Array;
  readonly count: Uint32Array;
  readonly pinned: Uint8Array;
  /**
   * Mappings of each frame by live L1 entries, read-only ones included (Xen's general reference
   * count): a frame still mapped cannot be given back (memory_op decrease_reservation).
   */
  readonly mapped: Uint32Array;
  /** 1 for each frame the domain owns (memory_op can give frames back and take them again). */
  readonly owned: Uint8Array;
  /** MFN of the current top-level table (MMUEXT_NEW_BASEPTR), or -1. */
  baseptr = -1;

  constructor(private readonly cpu: Cpu, readonly owner: FrameOwner, totalFrames: number) {
    this.type = new Uint8Array(totalFrames);
    this.count = new Uint32Array(totalFrames);
    this.pinned = new Uint8Array(totalFrames);
    this.owned = new Uint8Array(totalFrames);
    this.mapped = new Uint32Array(totalFrames);
    this.owned.fill(1, owner.firstGuestMfn, owner.firstGuestMfn + owner.nrGuestFrames);
  }

  owns(mfn: number): boolean {
    return this.owned[mfn] === 1;
  }

  isShared(mfn: number): boolean {
    return mfn >= this.owner.sharedMfn && mfn < this.owner.sharedMfn + this.owner.sharedCount;
  }

  /** A frame the guest may map in an L1 entry. */
  mappable(mfn: number): boolean {
    return this.owns(mfn) || this.isShared(mfn);
  }

  /** get_page_type: takes a type reference; a page-table type validates the contents first. */
  getType(mfn: number, t: number): boolean {
    if (this.isShared(mfn)) return t === PT_WRITABLE; // Xen's own pages: no type, never tables
    if (!this.owns(mfn)) return false;
    if (this.pinned[mfn]! & 2) return false; // being validated: a table cannot reference itself
    if (this.count[mfn]! > 0) {
      if (this.type[mfn] !== t) return false;
      this.count[mfn]!++;
      return true;
    }
    if (t >= PT_L1 && t <= PT_L3 && !this.validate(mfn, t)) return false;
    this.type[mfn] = t;
    this.count[mfn] = 1;
    return true;
  }

  /** put_page_type: drops a reference; the last one of a page table releases its entries. */
  putType(mfn: number): void {
    if (this.isShared(mfn) || !this.owns(mfn) || this.count[mfn] === 0) return;
    if (--this.count[mfn]! > 0) return;
    const t = this.type[mfn]!;
    this.type[mfn] = PT_NONE;
    if (t === PT_WRITABLE || t === PT_NONE || t === PT_SEGDESC) return;
    for (let i = 0; i < entriesOf(t); i++) this.putEntry(t, this.lo(mfn, i), this.hi(mfn, i));
  }

  lo(mfn: number, i: number): number { return this.cpu.mem.read32(mfn * 4096 + i * 8); }
  hi(mfn: number, i: number): number { return this.cpu.mem.read32(mfn * 4096 + i * 8 + 4); }

  /** Checks every entry of `mfn` as a level-`t` table, taking their references; undoes them on failure. */
  private validate(mfn: number, t: number): boolean {
    // Mark the frame as being validated, so that a table that references itself (directly or
    // through a cycle, or maps itself writable) fails instead of recursing.
    this.pinned[mfn]! |= 2;
    try {
      const n = entriesOf(t);
      for (let i = 0; i < n; i++) {
        if (this.getEntry(t, this.lo(mfn, i), this.hi(mfn, i)) !== null) continue;
        for (let j = 0; j < i; j++) this.putEntry(t, this.lo(mfn, j), this.hi(mfn, j));
        return false;
      }
      if (t === PT_L3) {
        for (let i = 0; i < n; i++) {
          const lo = this.lo(mfn, i);
          if ((lo & PTE_P) !== 0) this.cpu.mem.write32(mfn * 4096 + i * 8, lo & ~L3_PDPTE_CLEARED);
        }
      }
      return true;
    } finally {
      this.pinned[mfn]! &= ~2;
    }
  }

  /**
   * get_page_from_lNe: the references an entry of a level-`t` table takes. Returns null when the
   * entry is not allowed (a reason string is available from entryError for the report).
   */
  getEntry(t: number, lo: number, hi: number): true | null {
    return this.entryError(t, lo, hi, true) === null ? true : null;
  }

  /** Why a level-`t` entry is refused, or null (with `take`, its references are then held). */
  entryError(t: number, lo: number, hi: number, take: boolean): string | null {
    if ((lo & PTE_P) === 0) return null;
    // Machine memory is below 4 GiB and EFER.NXE is off: any high bit would be reserved.
    if (hi !== 0) return 'bits 63:32 set (reserved: machine memory is below 4 GiB, NX is not enabled)';
    const mfn = lo >>> 12;
    if (t === PT_L1) {
      if (!this.mappable(mfn)) return `frame 0x${mfn.toString(16)} is not the domain's`;
      if ((lo & PTE_RW) !== 0) {
        const why = `frame 0x${mfn.toString(16)} is a page table (${TYPE_NAMES[this.type[mfn]!]}): it cannot be mapped writable`;
        if (!take) return this.canGet(mfn, PT_WRITABLE) ? null : why;
        if (!this.getType(mfn, PT_WRITABLE)) return why;
      }
      if (take) this.mapped[mfn]!++;
      return null;
    }
    if (t === PT_L2 && (lo & PTE_PS) !== 0) return 'superpage (PSE) entries are not allowed in a PV guest';
    if (t === PT_L3 && (lo & L3_DISALLOWED) !== 0) return 'L3 entry flags Xen refuses (PWT, PCD, PS or G: l3_disallow_mask)';
    if (!this.owns(mfn)) return `frame 0x${mfn.toString(16)} is not the domain's`;
    if (!take) return this.canGet(mfn, t - 1) ? null : `frame 0x${mfn.toString(16)} cannot be an ${TYPE_NAMES[t - 1]} table (it is ${TYPE_NAMES[this.type[mfn]!]})`;
    return this.getType(mfn, t - 1) ? null : `frame 0x${mfn.toString(16)} cannot be an ${TYPE_NAMES[t - 1]} table (it is ${TYPE_NAMES[this.type[mfn]!]}, or its entries do not validate)`;
  }

  canGet(mfn: number, t: number): boolean {
    if (this.isShared(mfn)) return t === PT_WRITABLE;
    if (!this.owns(mfn)) return false;
    if (this.pinned[mfn]! & 2) return false;
    return this.count[mfn] === 0 || this.type[mfn] === t;
  }

  /** put_page_from_lNe */
  putEntry(t: number, lo: number, hi: number): void {
    if ((lo & PTE_P) === 0 || hi !== 0) return;
    const mfn = lo >>> 12;
    if (t === PT_L1) {
      if ((lo & PTE_RW) !== 0) this.putType(mfn);
      if (this.mapped[mfn]! > 0) this.mapped[mfn]!--;
      return;
    }
    this.putType(mfn);
  }

  /**
   * Writes entry `index` of the level-`t` table in `mfn` after validating the new value; releases
   * what the old value held. Returns null or why not (nothing changed then).
   */
  updateEntry(mfn: number, index: number, t: number, lo: number, hi: number, preserveAd: boolean): string | null {
    const oldLo = this.lo(mfn, index), oldHi = this.hi(mfn, index);
    if (preserveAd && t === PT_L1) lo = (lo & ~(PTE_A | PTE_D)) | (oldLo & (PTE_A | PTE_D));
    const why = this.entryError(t, lo, hi, true);
    if (why !== null) return why;
    if (t === PT_L3 && (lo & PTE_P) !== 0) lo &= ~L3_PDPTE_CLEARED;
    const mem = this.cpu.mem;
    mem.write32(mfn * 4096 + index * 8, lo);
    mem.write32(mfn * 4096 + index * 8 + 4, hi);
    this.putEntry(t, oldLo, oldHi);
    if (t === PT_L3 && mfn === this.baseptr) this.loadBaseptr(mfn);
    this.cpu.tlb.flushAll();
    return null;
  }

  /** MMUEXT_PIN_Ln_TABLE */
  pin(mfn: number, t: number): string | null {
    if (!this.owns(mfn)) return `frame 0x${mfn.toString(16)} is not the domain's`;
    if (this.pinned[mfn]! & 1) return `frame 0x${mfn.toString(16)} is already pinned`;
    if (!this.getType(mfn, t)) return `frame 0x${mfn.toString(16)} cannot be an ${TYPE_NAMES[t]} table (it is ${TYPE_NAMES[this.type[mfn]!]}, or an entry does not validate)`;
    this.pinned[mfn]! |= 1;
    return null;
  }

  /** MMUEXT_UNPIN_TABLE */
  unpin(mfn: number): string | null {
    if (!this.owns(mfn) || (this.pinned[mfn]! & 1) === 0) return `frame 0x${mfn.toString(16)} is not pinned`;
    this.pinned[mfn]! &= ~1;
    this.putType(mfn);
    return null;
  }

  /** MMUEXT_NEW_BASEPTR: the L3 becomes CR3 (a type reference is held while it is). */
  newBaseptr(mfn: number): string | null {
    if (!this.owns(mfn)) return `frame 0x${mfn.toString(16)} is not the domain's`;
    if (!this.getType(mfn, PT_L3)) return `frame 0x${mfn.toString(16)} cannot be an L3 table (it is ${TYPE_NAMES[this.type[mfn]!]}, or an entry does not validate)`;
    const old = this.baseptr;
    this.baseptr = mfn;
    this.loadBaseptr(mfn);
    if (old >= 0) this.putType(old);
    return null;
  }

  private loadBaseptr(mfn: number): void {
    const cpu = this.cpu;
    cpu.cr3 = mfn * 4096;
    // Validation keeps reserved PDPTE bits clear, so this does not fault.
    cpu.pdpte.set(pdptesFor(cpu, cpu.cr3));
    cpu.tlb.flushAll();
  }
}

function entriesOf(t: number): number {
  // A PAE L3 is the 4-entry PDPT at the start of its frame (xen.h, mmu_update: PAE).
  return t === PT_L3 ? 4 : 512;
}
