// From placed trampolines to stub ranges (docs/patch-map.md §Stub range record, §Stub range
// placement).
//
// Multiboot kernels: every trampoline is in the monitor's hole; the used pages are grouped into
// clusters (pages at most CLUSTER_GAP apart share one), and each cluster is one small PT_LOAD,
// packed one after another in physical memory from the layout's stub paddr. A far punned
// trampoline so costs one page, not the whole distance from the stub start.
//
// User executables: range 0 is one PT_LOAD (shared page, sequential trampolines, the loader);
// every punned trampoline outside it is on a page the loader maps from the file. Like E9Patch's
// physical page grouping, several virtual pages share one file page when the bytes they use do
// not collide, so the file grows by a few pages, not one page per punned jump.
import { PAGE } from './layout';
import { INT3 } from './tactics/context';
import type { LoaderMapping } from './stubs/loader';
import { loaderImage, loaderImageSize } from './stubs/loader';

/** The non-allocated section that holds the loader's file pages (docs/patch-map.md). */
export const LOADER_PAGES_SECTION = '.ringshift.loaderpages';
/** Kernel: used pages at most this many pages apart go into one PT_LOAD (fewer headers, little filler). */
export const CLUSTER_GAP = 16;
/** How many recently opened file pages a virtual page tries before a new one is opened. */
const GROUP_TRIES = 32;

export interface Trampoline {
  readonly addr: number;
  readonly bytes: Uint8Array;
}

/** A PT_LOAD stub range. `codeEnd` is the end of its code (for the `.ringshift.stubs` section). */
export interface LoadRange {
  readonly vaddr: number;
  readonly paddr: number;
  readonly bytes: Uint8Array;
  readonly codeEnd: number;
}

export interface LoaderPlan {
  /** Address of the loader (the new e_entry) in range 0. */
  readonly at: number;
  /** Mappings with offsets relative to the start of `pages`. */
  readonly mappings: readonly LoaderMapping[];
  /** The file pages, concatenated. */
  readonly pages: Uint8Array;
}

export interface StubRanges {
  /** PT_LOAD ranges, range 0 first. */
  readonly loads: readonly LoadRange[];
  readonly loader?: LoaderPlan;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** A copy of `bytes` (range 0 at `vaddr`) with the loader written at its place, its table offsets from `blobOffset`. */
export function withLoader(bytes: Uint8Array, vaddr: number, loader: LoaderPlan, originalEntry: number, blobOffset: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const img = loaderImage(loader.at, originalEntry, loader.mappings.map((m) => ({ ...m, offset: blobOffset + m.offset })));
  out.set(img, loader.at - vaddr);
  return out;
}

/** One PT_LOAD range over [vaddr, end) with INT3 filler, the shared page at its start if given. */
function fillRange(vaddr: number, end: number, paddr: number, parts: readonly Trampoline[], shared: Uint8Array | undefined): LoadRange {
  const bytes = new Uint8Array(end - vaddr).fill(INT3);
  let codeEnd = vaddr;
  if (shared) {
    bytes.fill(0, 0, PAGE);
    bytes.set(shared, 0);
  }
  for (const t of parts) {
    bytes.set(t.bytes, t.addr - vaddr);
    codeEnd = Math.max(codeEnd, t.addr + t.bytes.length);
  }
  return { vaddr, paddr, bytes, codeEnd };
}

export function kernelRanges(trampolines: readonly Trampoline[], stubVaddr: number, stubPaddr: number, shared: Uint8Array | undefined): StubRanges {
  const sorted = [...trampolines].sort((a, b) => a.addr - b.addr);
  const clusters: { start: number; end: number; parts: Trampoline[]; shared: boolean }[] = [];
  const add = (start: number, end: number, t: Trampoline | undefined): void => {
    const last = clusters[clusters.length - 1];
    const firstPage = Math.floor(start / PAGE);
    if (last && firstPage <= Math.floor((last.end - 1) / PAGE) + CLUSTER_GAP) {
      last.end = Math.max(last.end, end);
      if (t) last.parts.push(t);
    } else {
      clusters.push({ start: firstPage * PAGE, end, parts: t ? [t] : [], shared: false });
    }
  };
  if (shared) {
    add(stubVaddr, stubVaddr + PAGE, undefined);
    clusters[0]!.shared = true;
  }
  for (const t of sorted) add(t.addr, t.addr + t.bytes.length, t);
  let paddr = stubPaddr;
  const loads = clusters.map((c) => {
    const r = fillRange(c.start, c.end, paddr, c.parts, c.shared ? shared : undefined);
    paddr += alignUp(c.end - c.start, PAGE);
    return r;
  });
  return { loads };
}

export function userRanges(
  trampolines: readonly Trampoline[], stubVaddr: number, mainLimit: number, seqEnd: number, shared: Uint8Array | undefined,
): StubRanges {
  const main = trampolines.filter((t) => t.addr >= stubVaddr && t.addr < mainLimit);
  const far = trampolines.filter((t) => t.addr < stubVaddr || t.addr >= mainLimit).sort((a, b) => a.addr - b.addr);
  // A loop, not Math.max(...spread): tens of thousands of arguments approach V8's stack limit.
  let end = Math.max(seqEnd, stubVaddr + (shared ? PAGE : 0));
  for (const t of main) end = Math.max(end, t.addr + t.bytes.length);
  if (far.length === 0) return { loads: [fillRange(stubVaddr, end, stubVaddr, main, shared)] };

  // Virtual pages and the bytes each uses.
  const vpages = new Map<number, { off: number; bytes: Uint8Array }[]>();
  for (const t of far) {
    for (let a = t.addr; a < t.addr + t.bytes.length; ) {
      const page = Math.floor(a / PAGE) * PAGE;
      const n = Math.min(t.addr + t.bytes.length, page + PAGE) - a;
      const list = vpages.get(page) ?? [];
      list.push({ off: a - page, bytes: t.bytes.subarray(a - t.addr, a - t.addr + n) });
      vpages.set(page, list);
      a += n;
    }
  }
  // Physical page grouping: first fit among the last few file pages.
  const phys: { bytes: Uint8Array; used: Uint8Array }[] = [];
  const where = new Map<number, number>();
  for (const [page, parts] of [...vpages].sort((a, b) => a[0] - b[0])) {
    let chosen = -1;
    for (let i = Math.max(0, phys.length - GROUP_TRIES); i < phys.length && chosen < 0; i++) {
      const used = phys[i]!.used;
      let free = true;
      for (const p of parts) {
        for (let o = p.off; o < p.off + p.bytes.length && free; o++) if (used[o] !== 0) free = false;
        if (!free) break;
      }
      if (free) chosen = i;
    }
    if (chosen < 0) {
      phys.push({ bytes: new Uint8Array(PAGE).fill(INT3), used: new Uint8Array(PAGE) });
      chosen = phys.length - 1;
    }
    for (const p of parts) {
      phys[chosen]!.bytes.set(p.bytes, p.off);
      phys[chosen]!.used.fill(1, p.off, p.off + p.bytes.length);
    }
    where.set(page, chosen);
  }
  // One mmap per run of consecutive virtual pages backed by consecutive file pages.
  const mappings: { vaddr: number; size: number; offset: number }[] = [];
  for (const [page, p] of [...where].sort((a, b) => a[0] - b[0])) {
    const last = mappings[mappings.length - 1];
    if (last && last.vaddr + last.size === page && last.offset + last.size === p * PAGE) last.size += PAGE;
    else mappings.push({ vaddr: page, size: PAGE, offset: p * PAGE });
  }
  const pages = new Uint8Array(phys.length * PAGE);
  phys.forEach((p, i) => pages.set(p.bytes, i * PAGE));
  const at = alignUp(end, 16);
  const loaderEnd = at + loaderImageSize(at, mappings.length);
  const r0 = fillRange(stubVaddr, loaderEnd, stubVaddr, main, shared);
  return { loads: [{ ...r0, codeEnd: loaderEnd }], loader: { at, mappings, pages } };
}
