// Linear -> physical translation (SDM vol. 3A ch. 4): 32-bit paging with 4 KiB and (CR4.PSE)
// 4 MiB pages, and PAE paging (CR4.PAE) with 2 MiB pages and execute-disable (EFER.NXE).
// Access rights follow §4.6: user accesses need U/S = 1 at every level, writes need R/W = 1
// at every level for users and, with CR0.WP = 1, for supervisors too. Accessed and dirty bits
// are set as §4.8 describes. A failed walk throws #PF with CR2 and the §4.7 error code.
//
// PAE paging walks from the four PDPTE registers (§4.4.1), not from the PDPT in memory: they are
// loaded by MOV to CR3 while PAE paging is in use, and by MOV to CR0/CR4 that leaves PAE paging
// in use and changes CR0.CD/NW/PG or CR4.PAE/PGE/PSE (ops/system.ts calls pdptesFor()). A later
// write to the PDPT in memory therefore has no effect until the next such load.
//
// walk() is the one walker; translate() throws its fault, and a page-walk interceptor
// (intercept.ts, called by tlb.ts on a TLB miss) gets the walk's record (the entries read, the
// combined rights, the outcome) before anything takes effect.
import { Fault, Vector } from './fault';
import { GpaAccess, type GuestPhysicalMap } from './intercept';

const CR0_WP = 1 << 16;
const CR4_PSE = 1 << 4;
const CR4_PAE = 1 << 5;
const EFER_NXE = 1 << 11;

const PTE_P = 1;
const PTE_RW = 2;
const PTE_US = 4;
const PTE_A = 0x20;
const PTE_D = 0x40;
const PTE_PS = 0x80;
const PTE_G = 0x100;

/** #PF error code bits (SDM vol. 3A §4.7). */
export const PfError = { P: 1, W: 2, U: 4, RSVD: 8, I: 16 } as const;

export interface PagingState {
  cr0: number;
  cr2: number;
  cr3: number;
  cr4: number;
  /** IA32_EFER (NXE, bit 11). */
  efer?: number;
  /**
   * The PDPTE registers (low, high dword of PDPTE0..3) for PAE paging (§4.4.1). Absent (plain
   * states in tests): PAE walks read the PDPT from memory at CR3.
   */
  readonly pdpte?: Int32Array;
  readonly mem: { read32(a: number): number; write32(a: number, v: number): void };
  /** Guest-physical -> host-physical (intercept.ts); absent or null: the identity. */
  readonly guestPhysical?: GuestPhysicalMap | null;
}

/**
 * Host-physical address of a paging-structure entry at guest-physical `gpa` (intercept.ts). A
 * write (A/D update) is checked as a write (SDM vol. 3C §29.3.3.2: EPT treats accessed/dirty
 * updates as writes).
 */
function entryAt(cpu: PagingState, gpa: number, lin: number, write: boolean): number {
  const g = cpu.guestPhysical;
  return g == null ? gpa : g.translate(gpa, (write ? GpaAccess.WRITE : GpaAccess.READ) | GpaAccess.PAGING_ENTRY, lin);
}

/**
 * What a walk read and decided, for a page-walk interceptor (intercept.ts). The monitor may
 * change `physical`/`errorCode` (and the rights) and answer HANDLED to replace the outcome.
 */
export interface WalkRecord {
  /** Entries read, top level first: [PDE, PTE] (32-bit paging) or [PDPTE, PDE, PTE] (PAE; low dwords). */
  readonly entries: number[];
  /** Physical addresses the entries were read from (a PDPTE from its register: its PDPT address). */
  readonly entryAddresses: number[];
  /** Physical address of the access, or -1 when the walk faults. */
  physical: number;
  /** #PF error code when the walk faults, else -1. */
  errorCode: number;
  /** Rights combined over the levels (§4.6): R/W and U/S at every level, XD at any (with NXE). */
  writable: boolean;
  userAccessible: boolean;
  executeDisable: boolean;
  /** 4096, 2 MiB or 4 MiB. */
  pageSize: number;
  /** G bit of the leaf (with CR4.PGE: survives MOV to CR3). */
  global: boolean;
}

export function newWalkRecord(): WalkRecord {
  return { entries: [], entryAddresses: [], physical: -1, errorCode: -1, writable: false, userAccessible: false, executeDisable: false, pageSize: 4096, global: false };
}

/**
 * The leaf of the last successful walk: page size and G bit, for the TLB's fill (tlb.ts), so that
 * a miss needs no second read of the tables. Written by every successful walk.
 */
export const lastLeaf = { pageSize: 4096, global: false };

function pageFault(cpu: PagingState, lin: number, code: number): Fault {
  cpu.cr2 = lin | 0;
  return new Fault(Vector.PF, code);
}

/** The walk, throwing #PF (CR2 written) on failure. */
export function translate(cpu: PagingState, lin: number, write: boolean, user: boolean, fetch: boolean): number {
  const r = walk(cpu, lin, write, user, fetch, null);
  if (r < 0) throw pageFault(cpu, lin, -1 - r);
  return r;
}

/** #PF for a linear address with an error code (CR2 written), for outcomes a monitor chose. */
export function pageFaultAt(cpu: PagingState, lin: number, errorCode: number): Fault {
  return pageFault(cpu, lin, errorCode);
}

/**
 * One walk: the physical address, or -1 - errorCode when the access faults (nothing else is
 * written: CR2 is the caller's). A/D bits are set as the walk goes (§4.8). `rec`, when given,
 * receives the entries and the outcome.
 */
export function walk(cpu: PagingState, lin: number, write: boolean, user: boolean, fetch: boolean, rec: WalkRecord | null): number {
  if (cpu.cr4 & CR4_PAE) return walkPae(cpu, lin, write, user, fetch, rec);
  const wp = (cpu.cr0 & CR0_WP) !== 0;
  const errBase = (write ? PfError.W : 0) | (user ? PfError.U : 0);
  const pdeGpa = ((cpu.cr3 & 0xfffff000) + ((lin >>> 22) << 2)) >>> 0;
  const pdeAddr = entryAt(cpu, pdeGpa, lin, false);
  const pde = cpu.mem.read32(pdeAddr);
  if (rec !== null) { rec.entries.push(pde); rec.entryAddresses.push(pdeGpa); }
  if ((pde & PTE_P) === 0) return done(rec, -1 - errBase);
  if ((pde & PTE_PS) && (cpu.cr4 & CR4_PSE)) {
    if (rec !== null) rights(rec, pde, pde, false, 0x400000);
    if (!allowed(pde, pde, write, user, wp)) return done(rec, -1 - (errBase | PfError.P));
    // PDE bits 21:13 are reserved (must be 0) for 4 MiB pages without PSE-36 (§4.3, table 4-4).
    if (pde & 0x003fe000) return done(rec, -1 - (errBase | PfError.P | PfError.RSVD));
    const set = PTE_A | (write ? PTE_D : 0);
    if ((pde & set) !== set) cpu.mem.write32(entryAt(cpu, pdeGpa, lin, true), pde | set);
    lastLeaf.pageSize = 0x400000;
    lastLeaf.global = (pde & PTE_G) !== 0;
    return done(rec, ((pde & 0xffc00000) | (lin & 0x3fffff)) >>> 0);
  }
  const pteGpa = ((pde & 0xfffff000) + (((lin >>> 12) & 0x3ff) << 2)) >>> 0;
  const pteAddr = entryAt(cpu, pteGpa, lin, false);
  const pte = cpu.mem.read32(pteAddr);
  if (rec !== null) { rec.entries.push(pte); rec.entryAddresses.push(pteGpa); }
  if ((pte & PTE_P) === 0) return done(rec, -1 - errBase);
  if (rec !== null) rights(rec, pde, pte, false, 4096);
  if (!allowed(pde, pte, write, user, wp)) return done(rec, -1 - (errBase | PfError.P));
  if ((pde & PTE_A) === 0) cpu.mem.write32(entryAt(cpu, pdeGpa, lin, true), pde | PTE_A);
  const set = PTE_A | (write ? PTE_D : 0);
  if ((pte & set) !== set) cpu.mem.write32(entryAt(cpu, pteGpa, lin, true), pte | set);
  lastLeaf.pageSize = 4096;
  lastLeaf.global = (pte & PTE_G) !== 0;
  return done(rec, ((pte & 0xfffff000) | (lin & 0xfff)) >>> 0);
}

function done(rec: WalkRecord | null, r: number): number {
  if (rec !== null) {
    rec.physical = r < 0 ? -1 : r;
    rec.errorCode = r < 0 ? -1 - r : -1;
  }
  return r;
}

function rights(rec: WalkRecord, upper: number, leaf: number, xd: boolean, size: number): void {
  rec.writable = (upper & leaf & PTE_RW) !== 0;
  rec.userAccessible = (upper & leaf & PTE_US) !== 0;
  rec.executeDisable = xd;
  rec.pageSize = size;
  rec.global = (leaf & PTE_G) !== 0;
}

/** Rights combined over the levels: both must allow (SDM vol. 3A §4.6.1). */
function allowed(upper: number, leaf: number, write: boolean, user: boolean, wp: boolean): boolean {
  const us = upper & leaf & PTE_US;
  const rw = upper & leaf & PTE_RW;
  if (user) return us !== 0 && (!write || rw !== 0);
  return !write || rw !== 0 || !wp;
}

/**
 * Reserved bits of a PAE PDPTE (§4.4.1, table 4-8): 2:1, 8:5 and 63:MAXPHYADDR. MAXPHYADDR is 36:
 * CPUID reports PAE and no leaf 8000_0008h (§4.1.4). Bit 63 (XD) is reserved here too.
 */
const PDPTE_RSVD_LO = 0x1e6;
const PDPTE_RSVD_HI = 0xfffffff0 | 0;

/**
 * The four PDPTEs for a MOV to CR3/CR0/CR4 that (re)loads them (§4.4.1): read from the 32-byte
 * aligned PDPT at `cr3`[31:5] in physical memory. A present PDPTE with a reserved bit set makes
 * the MOV fail with #GP(0) and nothing is loaded, so the caller commits the CR write and the
 * registers only after this returns.
 */
export function pdptesFor(cpu: PagingState, cr3: number): Int32Array {
  const base = cr3 & 0xffffffe0;
  const out = new Int32Array(8);
  const g = cpu.guestPhysical;
  for (let i = 0; i < 4; i++) {
    const gpa = (base + i * 8) >>> 0;
    const at = g == null ? gpa : g.translate(gpa, GpaAccess.READ | GpaAccess.PAGING_ENTRY | GpaAccess.NO_LINEAR, 0);
    const lo = cpu.mem.read32(at);
    const hi = cpu.mem.read32((at + 4) >>> 0);
    if ((lo & PTE_P) && ((lo & PDPTE_RSVD_LO) || (hi & PDPTE_RSVD_HI))) throw new Fault(Vector.GP, 0);
    out[2 * i] = lo;
    out[2 * i + 1] = hi;
  }
  return out;
}

/**
 * Loads the PDPTE registers from memory at CR3 (with the reserved-bit check), for code that sets
 * CR0/CR3/CR4 by assignment (loaders, tests) rather than through MOV to CR.
 */
export function loadPdptes(cpu: PagingState & { readonly pdpte: Int32Array }): void {
  cpu.pdpte.set(pdptesFor(cpu, cpu.cr3));
}

/** PDPTE i (low dword) as the walk sees it: the register, or memory for states without registers. */
export function pdpteLo(cpu: PagingState, i: number): number {
  return cpu.pdpte !== undefined ? cpu.pdpte[2 * i]! : cpu.mem.read32(((cpu.cr3 & 0xffffffe0) + i * 8) >>> 0);
}

/**
 * PAE (SDM vol. 3A §4.4): the PDPTE registers select a page directory; PDEs and PTEs are 64-bit
 * with the physical address in bits 12..51 (we keep physical addresses below 4 GiB) and XD in
 * bit 63.
 */
function walkPae(cpu: PagingState, lin: number, write: boolean, user: boolean, fetch: boolean, rec: WalkRecord | null): number {
  const wp = (cpu.cr0 & CR0_WP) !== 0;
  const nxe = ((cpu.efer ?? 0) & EFER_NXE) !== 0;
  const errBase = (write ? PfError.W : 0) | (user ? PfError.U : 0) | (fetch && nxe ? PfError.I : 0);
  const m = cpu.mem;
  const pdpte = pdpteLo(cpu, lin >>> 30);
  if (rec !== null) { rec.entries.push(pdpte); rec.entryAddresses.push(((cpu.cr3 & 0xffffffe0) + ((lin >>> 30) << 3)) >>> 0); }
  if ((pdpte & PTE_P) === 0) return done(rec, -1 - errBase);
  const pdeGpa = ((pdpte & 0xfffff000) + (((lin >>> 21) & 0x1ff) << 3)) >>> 0;
  const pdeAddr = entryAt(cpu, pdeGpa, lin, false);
  const pde = m.read32(pdeAddr), pdeHi = m.read32((pdeAddr + 4) >>> 0);
  if (rec !== null) { rec.entries.push(pde); rec.entryAddresses.push(pdeGpa); }
  if ((pde & PTE_P) === 0) return done(rec, -1 - errBase);
  const xdPde = nxe && pdeHi < 0;
  if (pde & PTE_PS) {
    if (rec !== null) rights(rec, pde, pde, xdPde, 0x200000);
    if (!allowed(pde, pde, write, user, wp) || (fetch && xdPde)) return done(rec, -1 - (errBase | PfError.P));
    const set = PTE_A | (write ? PTE_D : 0);
    if ((pde & set) !== set) m.write32(entryAt(cpu, pdeGpa, lin, true), pde | set);
    lastLeaf.pageSize = 0x200000;
    lastLeaf.global = (pde & PTE_G) !== 0;
    return done(rec, ((pde & 0xffe00000) | (lin & 0x1fffff)) >>> 0);
  }
  const pteGpa = ((pde & 0xfffff000) + (((lin >>> 12) & 0x1ff) << 3)) >>> 0;
  const pteAddr = entryAt(cpu, pteGpa, lin, false);
  const pte = m.read32(pteAddr), pteHi = m.read32((pteAddr + 4) >>> 0);
  if (rec !== null) { rec.entries.push(pte); rec.entryAddresses.push(pteGpa); }
  if ((pte & PTE_P) === 0) return done(rec, -1 - errBase);
  const xd = xdPde || (nxe && pteHi < 0);
  if (rec !== null) rights(rec, pde, pte, xd, 4096);
  if (!allowed(pde, pte, write, user, wp) || (fetch && xd)) return done(rec, -1 - (errBase | PfError.P));
  if ((pde & PTE_A) === 0) m.write32(entryAt(cpu, pdeGpa, lin, true), pde | PTE_A);
  const set = PTE_A | (write ? PTE_D : 0);
  if ((pte & set) !== set) m.write32(entryAt(cpu, pteGpa, lin, true), pte | set);
  lastLeaf.pageSize = 4096;
  lastLeaf.global = (pte & PTE_G) !== 0;
  return done(rec, ((pte & 0xfffff000) | (lin & 0xfff)) >>> 0);
}
