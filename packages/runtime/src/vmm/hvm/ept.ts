// Extended page tables (SDM vol. 3C §29.3): 4-level tables in the format Intel defines, kept in
// the monitor's part of host memory, mapping guest-physical to host-physical addresses; and the
// translator the CPU calls for every guest-physical access (cpu.guestPhysical, intercept.ts).
//
// Entry format (vmx.md §6): bits 2:0 read/write/execute; in leaves, 5:3 memory type and 6 ignore
// PAT; 7 a 2 MiB leaf in a PDE (a 1 GiB PDPTE leaf is not supported here, so bit 7 there, as in a
// PML4E, is reserved); 51:12 the next table or the page. An entry with bits 2:0 = 0 is not
// present (EPT violation); write without read (010b, 110b), a reserved memory type (2, 3, 7) or a
// reserved bit set is an EPT misconfiguration (§29.3.3.1). Execute-only (100b) is allowed: the
// capability MSR reports it (IA32_VMX_EPT_VPID_CAP bit 0).
//
// The translator caches, per guest-physical page below `cacheLimit`, the host frame and the
// rights of the last successful walk: the processor's "guest-physical mappings" (§30.4.1). The
// monitor changes entries only by adding rights, except when it marks a device page (which is
// never cached), so the cache needs flushing (invept()) only if it ever takes rights away.
import { GpaAccess, type GuestPhysicalMap } from '../../cpu/intercept';
import type { PhysicalMemory } from '../../machine/memory';

export const EPT_READ = 1;
export const EPT_WRITE = 2;
export const EPT_EXECUTE = 4;
export const EPT_RWX = 7;
const EPT_LARGE = 0x80;
/** Memory type write-back (6) in bits 5:3 of a leaf (§29.3.7). */
export const EPT_MEMTYPE_WB = 6 << 3;
/** Bits 2:0 = write-only: a misconfiguration, which KVM uses to mark device (MMIO) pages. */
export const EPT_MISCONFIGURED_W = EPT_WRITE;
/** Bits 51:36 of an entry (high dword bits 19:4): above MAXPHYADDR (36), reserved. */
const HIGH_RESERVED = 0x000ffff0;

export interface EptWalk {
  /** Host-physical address of the access, or -1 when an entry is not present or misconfigured. */
  hpa: number;
  /** R/W/X, AND over the levels walked (0 when an entry was not present). */
  rights: number;
  misconfigured: boolean;
}

export class EptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EptError';
  }
}

/** The tables: a pool of 4 KiB host pages from `base`, the first being the PML4. */
export class EptTables {
  private next: number;
  private readonly end: number;

  constructor(private readonly mem: PhysicalMemory, readonly base: number, pages: number) {
    if ((base & 0xfff) !== 0 || pages < 4) throw new RangeError('EPT pool: page-aligned, at least 4 pages');
    this.end = base + pages * 4096;
    mem.u8.fill(0, base, this.end);
    this.next = base + 4096;
  }

  /** EPTP (VMCS 0x201A): memory type WB (6), page-walk length - 1 = 3, PML4 address (§25.6.11). */
  get eptp(): number {
    return this.base | (3 << 3) | 6;
  }

  get pagesLeft(): number {
    return (this.end - this.next) / 4096;
  }

  /** Walks the four levels for `gpa` (32-bit here, so the PML4 index is 0). */
  walk(gpa: number): EptWalk {
    gpa >>>= 0;
    let table = this.base;
    let rights = EPT_RWX;
    const indices = [0, gpa >>> 30, (gpa >>> 21) & 0x1ff, (gpa >>> 12) & 0x1ff];
    for (let level = 0; level < 4; level++) {
      const at = table + indices[level]! * 8;
      const lo = this.mem.read32(at), hi = this.mem.read32(at + 4);
      if ((lo & EPT_RWX) === 0) return { hpa: -1, rights: 0, misconfigured: false };
      const leaf = level === 3 || (level === 2 && (lo & EPT_LARGE) !== 0);
      if (misconfigured(lo, hi, level, leaf)) return { hpa: -1, rights: 0, misconfigured: true };
      rights &= lo;
      if (leaf) {
        const mask = level === 3 ? 0xfff : 0x1fffff;
        return { hpa: ((lo & ~mask) | (gpa & mask)) >>> 0, rights: rights & EPT_RWX, misconfigured: false };
      }
      table = (lo & 0xfffff000) >>> 0;
    }
    throw new Error('unreachable');
  }

  /** Maps the 4 KiB page of `gpa` to that of `hpa` with `rights` (R/W/X bits) as a WB leaf; false when the pool is spent. */
  map(gpa: number, hpa: number, rights: number): boolean {
    return this.setLeaf(gpa, ((hpa & 0xfffff000) | EPT_MEMTYPE_WB | (rights & EPT_RWX)) >>> 0);
  }

  /** Writes the leaf entry (low dword `entry`) for `gpa`, building the tables above it; false when the pool is spent. */
  setLeaf(gpa: number, entry: number): boolean {
    gpa >>>= 0;
    let table = this.base;
    const indices = [0, gpa >>> 30, (gpa >>> 21) & 0x1ff];
    for (const index of indices) {
      const at = table + index * 8;
      let lo = this.mem.read32(at);
      if ((lo & EPT_RWX) === 0) {
        if (this.next >= this.end) return false;
        lo = this.next | EPT_RWX; // non-leaf: RWX, bits 7:3 zero
        this.next += 4096;
        this.mem.write32(at, lo);
        this.mem.write32(at + 4, 0);
      } else if (lo & EPT_LARGE) {
        throw new EptError(`EPT: ${hex(gpa)} lies in a large page`);
      }
      table = (lo & 0xfffff000) >>> 0;
    }
    const at = table + ((gpa >>> 12) & 0x1ff) * 8;
    this.mem.write32(at, entry);
    this.mem.write32(at + 4, 0);
    return true;
  }
}

/** EPT misconfiguration conditions of one present entry (SDM vol. 3C §29.3.3.1). */
export function misconfigured(lo: number, hi: number, level: number, leaf: boolean): boolean {
  const rwx = lo & EPT_RWX;
  if (rwx === EPT_WRITE || rwx === (EPT_WRITE | EPT_EXECUTE)) return true;
  if ((hi & HIGH_RESERVED) !== 0) return true;
  if (leaf) {
    const type = (lo >>> 3) & 7;
    return type === 2 || type === 3 || type === 7;
  }
  // Non-leaf: bits 7:3 reserved (bit 7 of a PDPTE would be a 1 GiB page, not supported here).
  return (lo & 0xf8) !== 0 || (level === 0 && (lo & EPT_LARGE) !== 0);
}

/** What the translator asks the monitor when a walk does not give the access. */
export interface EptFaultHandler {
  /**
   * EPT violation (exit reason 48): `rights` are the walk's R/W/X. Returns -1 once the tables
   * allow the access (the translator walks again), or a host-physical address to use for this
   * access only (an emulated device access).
   */
  violation(gpa: number, access: number, rights: number, linear: number): number;
  /** EPT misconfiguration (exit reason 49): a host-physical address to use for this access only. */
  misconfiguration(gpa: number, access: number, linear: number): number;
}

/** cpu.guestPhysical for the hvm backend. */
export class EptTranslator implements GuestPhysicalMap {
  cacheable = true;
  private readonly frame: Int32Array;
  private readonly rights: Uint8Array;

  constructor(readonly tables: EptTables, private readonly handler: EptFaultHandler, cacheLimit: number) {
    this.frame = new Int32Array(cacheLimit >>> 12);
    this.rights = new Uint8Array(cacheLimit >>> 12);
  }

  translate(gpa: number, access: number, linear: number): number {
    const p = gpa >>> 12;
    const need = access & EPT_RWX;
    if (p < this.rights.length && (this.rights[p]! & need) !== 0) {
      this.cacheable = true;
      return ((this.frame[p]! << 12) | (gpa & 0xfff)) >>> 0;
    }
    return this.slow(gpa >>> 0, access, need, linear);
  }

  private slow(gpa: number, access: number, need: number, linear: number): number {
    // A handler that returns -1 has made the access possible; twice is a monitor bug.
    for (let attempt = 0; attempt < 2; attempt++) {
      const w = this.tables.walk(gpa);
      if (w.misconfigured) {
        this.cacheable = false;
        return this.handler.misconfiguration(gpa, access, linear);
      }
      if ((w.rights & need) !== 0) {
        const p = gpa >>> 12;
        if (p < this.rights.length) { this.frame[p] = w.hpa >>> 12; this.rights[p] = w.rights; }
        this.cacheable = true;
        return w.hpa;
      }
      const r = this.handler.violation(gpa, access, w.rights, linear);
      if (r >= 0) { this.cacheable = false; return r >>> 0; }
    }
    throw new EptError(`EPT violation at guest-physical ${hex(gpa)} not resolved by the monitor`);
  }

  /** INVEPT (single-context): drops the cached guest-physical mappings. */
  invept(): void {
    this.rights.fill(0);
  }
}

/** GpaAccess bits → the EPT-violation qualification's access bits and linear-address bits (§28.3.3.2). */
export function accessQualification(access: number): number {
  let q = access & EPT_RWX;
  if ((access & GpaAccess.NO_LINEAR) === 0) {
    q |= 1 << 7; // guest-linear address field valid
    if ((access & GpaAccess.PAGING_ENTRY) === 0) q |= 1 << 8; // the access was to the translation
  }
  return q;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
