// Translation lookaside buffer in front of paging.ts's translate() (SDM vol. 3A §4.10).
//
// An entry caches, per linear 4 KiB page, the physical frame and the set of access kinds that
// have already walked successfully through it. A hit needs the kind's bit, so:
//  - A/D bits stay exact: the first read walks (sets A), the first write walks again (sets D);
//  - failed walks are never cached (§4.10.2.3: no entry for a page that faulted);
//  - rights that depend on CR0.WP are a separate kind, so toggling WP needs no flush.
// Global pages (PTE.G with CR4.PGE, §4.10.2.4) survive MOV to CR3; INVLPG drops the page's entry
// whether global or not, and for a 4 MiB/2 MiB page every 4 KiB entry cached from it (§4.10.4.1).
// MOV to CR0 changing PG/PE and MOV to CR4 changing any bit flush everything; so must a
// change of EFER.NXE (fetch rights depend on it), which WRMSR does.
//
// A miss takes the leaf's G bit and page size from the walk itself (paging.ts lastLeaf).
//
// Page-walk interception (intercept.ts, Interceptor.pageWalk): with a monitor installed, a miss
// walks with a record (paging.ts walk()) and shows it to the monitor before the TLB is filled or
// #PF is raised (CR2 unwritten); the monitor may let it stand, replace it (a translation, or a
// fault) or exit. Without one (the native backend) the miss path costs one null check and the
// hit path nothing.
//
// Nested paging (intercept.ts, cpu.guestPhysical): the walk's result is a guest-physical address;
// a miss translates it to host-physical and caches the combined translation (fillHost), so hits
// stay one lookup. Entries the map marks not cacheable (emulated devices) are never cached.
import { GpaAccess, proceed, type GuestPhysicalMap, type PageWalk, type Verdict } from './intercept';
import { lastLeaf, newWalkRecord, pageFaultAt, translate, walk, type PagingState } from './paging';

/** What the TLB needs of a monitor: its page-walk hook (Interceptor satisfies it). */
interface WalkObserver {
  pageWalk(cpu: PagingState, w: PageWalk): Verdict;
}

const SETS = 4096; // direct-mapped, indexed by the low 12 bits of the linear page number
const INFO_GLOBAL = 1;
const INFO_4M = 2;
const INFO_2M = 4;

const CR4_PGE = 1 << 7;
const CR0_WP = 1 << 16;

// Access kinds, one bit each: read/write × supervisor/user, supervisor write under WP=0 or 1, fetch.
const K_READ_S = 1 << 0;
const K_WRITE_S_WP0 = 1 << 1;
const K_READ_U = 1 << 2;
const K_WRITE_U = 1 << 3;
const K_FETCH_S = 1 << 4;
const K_WRITE_S_WP1 = 1 << 5;
const K_FETCH_U = 1 << 6;

/**
 * Kinds a successful walk of `k` also proves (rights combine by AND over levels, §4.6): any
 * success means present, so supervisor read; a user write implies user read and supervisor
 * writes; a supervisor write under WP=1 (R/W = 1 everywhere) implies it under WP=0. Fetch is
 * never implied, because execute-disable does not restrict reads.
 */
const IMPLIES: Readonly<Record<number, number>> = {
  [K_READ_S]: K_READ_S,
  [K_WRITE_S_WP0]: K_WRITE_S_WP0 | K_READ_S,
  [K_READ_U]: K_READ_U | K_READ_S,
  [K_WRITE_U]: K_WRITE_U | K_READ_U | K_READ_S | K_WRITE_S_WP0 | K_WRITE_S_WP1,
  [K_FETCH_S]: K_FETCH_S | K_READ_S,
  [K_WRITE_S_WP1]: K_WRITE_S_WP1 | K_WRITE_S_WP0 | K_READ_S,
  [K_FETCH_U]: K_FETCH_U | K_READ_U | K_READ_S,
};

function kindOf(cpu: PagingState, write: boolean, user: boolean, fetch: boolean): number {
  if (fetch) return user ? K_FETCH_U : K_FETCH_S;
  if (!write) return user ? K_READ_U : K_READ_S;
  if (user) return K_WRITE_U;
  return cpu.cr0 & CR0_WP ? K_WRITE_S_WP1 : K_WRITE_S_WP0;
}

export class Tlb {
  /** Linear page number + 1; 0 = empty. */
  private readonly tag = new Int32Array(SETS);
  /** Physical address of the 4 KiB frame. */
  private readonly frame = new Int32Array(SETS);
  private readonly kinds = new Uint8Array(SETS);
  private readonly info = new Uint8Array(SETS);
  /** Upper bound on entries cached from large pages: INVLPG scans only when it is non-zero. */
  private large = 0;
  /**
   * Per 4 MiB region of the linear space (lin >>> 22): 1 when an entry from a large page (4 MiB,
   * or 2 MiB inside it) may be cached there. INVLPG of an address in an unmarked region has no
   * large-page entries to find, so it skips the scan (4096 sets) — the common case of a kernel
   * whose own code sits in large pages while it invalidates 4 KiB pages elsewhere.
   */
  private readonly largeIn = new Uint8Array(1024);
  hits = 0;
  misses = 0;
  /** Bumped by every flush or invalidation: holders of a cached translation compare it. */
  epoch = 0;

  /** translate() with caching; same result, same faults, same A/D writes. */
  translate(cpu: PagingState & { readonly interceptor?: WalkObserver | null }, lin: number, write: boolean, user: boolean, fetch: boolean): number {
    lin >>>= 0;
    const page = lin >>> 12;
    const i = page & (SETS - 1);
    const k = kindOf(cpu, write, user, fetch);
    if (this.tag[i] === page + 1 && (this.kinds[i]! & k) !== 0) {
      this.hits++;
      return (this.frame[i]! | (lin & 0xfff)) >>> 0;
    }
    this.misses++;
    const m = cpu.interceptor;
    if (m != null) return this.missWatched(cpu, m, lin, write, user, fetch, i, k);
    const phys = translate(cpu, lin, write, user, fetch);
    const g = cpu.guestPhysical;
    if (g != null) return this.fillHost(cpu, g, lin, phys, write, fetch, i, k, -1);
    this.fill(i, page, phys, k, -1, cpu);
    return phys;
  }

  /**
   * The walk's result is guest-physical (intercept.ts, nested paging): translate it and cache the
   * combined linear -> host-physical translation, unless the map says not to.
   */
  private fillHost(cpu: PagingState, g: GuestPhysicalMap, lin: number, gpa: number, write: boolean, fetch: boolean, i: number, k: number, info: number): number {
    const leaf = info < 0 ? (lastLeaf.global && (cpu.cr4 & CR4_PGE) ? INFO_GLOBAL : 0) | (lastLeaf.pageSize === 4096 ? 0 : lastLeaf.pageSize === 0x400000 ? INFO_4M : INFO_2M) : info;
    const hpa = g.translate(gpa, write ? GpaAccess.WRITE : fetch ? GpaAccess.FETCH : GpaAccess.READ, lin) >>> 0;
    if (g.cacheable) this.fill(i, lin >>> 12, hpa, k, leaf, cpu);
    return hpa;
  }

  /** Fills set i for `page` -> `phys`; `info` < 0: the G bit and size of the walk just made (lastLeaf). */
  private fill(i: number, page: number, phys: number, k: number, info: number, cpu: PagingState): void {
    const frame = (phys & ~0xfff) | 0;
    if (this.tag[i] !== page + 1 || this.frame[i] !== frame) {
      // New page, or the tables changed under a cached page without INVLPG: start over.
      this.tag[i] = page + 1;
      this.frame[i] = frame;
      this.kinds[i] = 0;
      if (info < 0) info = (lastLeaf.global && (cpu.cr4 & CR4_PGE) ? INFO_GLOBAL : 0) | (lastLeaf.pageSize === 4096 ? 0 : lastLeaf.pageSize === 0x400000 ? INFO_4M : INFO_2M);
      this.info[i] = info;
      if (info & (INFO_4M | INFO_2M)) { this.large++; this.largeIn[page >>> 10] = 1; }
    }
    this.kinds[i]! |= IMPLIES[k]!;
  }

  /**
   * A miss with a monitor installed: walk with a record and ask the monitor before the outcome
   * takes effect. CONTINUE: the walk's outcome. HANDLED: the outcome the monitor left in the
   * record (`physical` >= 0: that translation, cached with the record's size and G bit;
   * else `errorCode` >= 0: #PF with it; both -1: the monitor fixed the tables, walk once more).
   * An Exit leaves run() before the access (A/D bits the walk set stay set).
   */
  private missWatched(cpu: PagingState, m: WalkObserver, lin: number, write: boolean, user: boolean, fetch: boolean, i: number, k: number): number {
    const w: PageWalk = { linear: lin, write, user, fetch, ...newWalkRecord() };
    const r = walk(cpu, lin, write, user, fetch, w);
    const v = m.pageWalk(cpu, w);
    let phys: number, code: number;
    let info = -1; // the leaf of the (last) walk: paging.ts lastLeaf
    if (proceed(v)) {
      phys = r < 0 ? -1 : r;
      code = r < 0 ? -1 - r : -1;
    } else if (w.physical >= 0 || w.errorCode >= 0) {
      phys = w.physical >= 0 ? w.physical >>> 0 : -1;
      code = w.errorCode;
      info = (w.global && (cpu.cr4 & CR4_PGE) ? INFO_GLOBAL : 0) | (w.pageSize === 0x400000 ? INFO_4M : w.pageSize === 0x200000 ? INFO_2M : 0);
    } else {
      phys = translate(cpu, lin, write, user, fetch); // HANDLED with no outcome: retry the walk
      code = -1;
    }
    if (phys < 0) throw pageFaultAt(cpu, lin, code);
    const g = cpu.guestPhysical;
    if (g != null) return this.fillHost(cpu, g, lin, phys, write, fetch, i, k, info);
    this.fill(i, lin >>> 12, phys, k, info, cpu);
    return phys;
  }

  /** INVLPG: the page's entry, global or not, and every entry from the same large page. */
  invalidatePage(lin: number): void {
    this.epoch++;
    const page = (lin >>> 0) >>> 12;
    const i = page & (SETS - 1);
    if (this.tag[i] === page + 1) this.tag[i] = 0;
    if (this.large === 0 || this.largeIn[page >>> 10] === 0) return;
    let left = 0, inRegion = 0;
    for (let j = 0; j < SETS; j++) {
      const t = this.tag[j]!;
      const inf = this.info[j]!;
      if (t === 0 || (inf & (INFO_4M | INFO_2M)) === 0) continue;
      const shift = inf & INFO_4M ? 10 : 9; // 4 KiB pages per large page, as a shift
      if ((t - 1) >>> shift === page >>> shift) this.tag[j] = 0;
      else {
        left++;
        if ((t - 1) >>> 10 === page >>> 10) inRegion++;
      }
    }
    this.large = left;
    if (inRegion === 0) this.largeIn[page >>> 10] = 0;
  }

  /** MOV to CR3 (and task switches): every entry but global ones. */
  flushNonGlobal(): void {
    this.epoch++;
    let left = 0;
    this.largeIn.fill(0);
    for (let j = 0; j < SETS; j++) {
      if (this.tag[j] === 0) continue;
      if ((this.info[j]! & INFO_GLOBAL) === 0) this.tag[j] = 0;
      else if (this.info[j]! & (INFO_4M | INFO_2M)) { left++; this.largeIn[(this.tag[j]! - 1) >>> 10] = 1; }
    }
    this.large = left;
  }

  flushAll(): void {
    this.epoch++;
    this.tag.fill(0);
    this.large = 0;
    this.largeIn.fill(0);
  }
}

const tlbs = new WeakMap<object, Tlb>();

/** The CPU's TLB (created on first use). */
export function tlbOf(cpu: object): Tlb {
  let t = tlbs.get(cpu);
  if (t === undefined) {
    t = new Tlb();
    tlbs.set(cpu, t);
  }
  return t;
}

/** Drop-in for translate(): what Cpu.phys() calls once the TLB is integrated. */
export function tlbTranslate(cpu: PagingState, lin: number, write: boolean, user: boolean, fetch: boolean): number {
  return tlbOf(cpu).translate(cpu, lin, write, user, fetch);
}

/** INVLPG m (SDM INVLPG): `lin` is the operand's linear address (segment base + offset). */
export function tlbInvalidatePage(cpu: object, lin: number): void {
  tlbOf(cpu).invalidatePage(lin);
}

/**
 * MOV to CR0/CR3/CR4 (§4.10.4.1), called after the register is written with its old value:
 * CR3 always flushes non-global entries, even when the value is unchanged; CR0 flushes all when
 * PG or PE changes (WP needs nothing: supervisor writes under WP=0 and WP=1 are separate kinds);
 * CR4 flushes all when any bit changes (PGE, PAE, PSE among them).
 */
export function tlbControlWrite(cpu: object, cr: 0 | 3 | 4, old: number, value: number): void {
  const t = tlbOf(cpu);
  if (cr === 3) t.flushNonGlobal();
  else if (cr === 0 ? ((old ^ value) & 0x80000001) !== 0 : (old ^ value) !== 0) t.flushAll();
}
