// T2e (E9Patch's own T2, "successor eviction", Duck et al., PLDI 2020 §4.2): for a site S of 1 to
// 4 bytes whose punned jump found no free window, the instruction N after it (not a site) is
// evicted: N is patched with its own jump (B1 when it has 5 bytes, a punned B2 or, with k
// segment-override prefixes, T1 otherwise) to a trampoline that runs N relocated and jumps back
// to N's end. S then gets `E9 rel32` whose high bytes are N's new bytes: the prefixes, N's E9 and
// the low bytes of N's rel32, which are free to choose as long as N's trampoline lands where they
// say. So S's window is chosen first (among the windows those free bytes allow) and N's
// trampoline is placed at an address congruent to it. Every original instruction boundary stays
// valid: a jump to N runs N's own jump, a jump to S runs S's; nothing is assumed about jump
// targets, so T2e may evict code that only the linear sweep found. N gets its own patch-map
// record (reason 'evicted', tactic B1/B2/T1, an 'empty' stub).
import type { Site } from '../model';
import { T1_PAD_PREFIX } from './b2';
import { INT3 } from './context';
import type { Patch, PlanContext, TacticResult } from './context';

const hex = (n: number): string => `0x${n.toString(16)}`;
const U32 = 2 ** 32;
const mod32 = (n: number): number => ((n % U32) + U32) % U32;
/** Windows (complete choices of the shared bytes) tried per prefix count before giving up. */
export const T2E_WINDOW_TRIES = 48;
/** Addresses tried for the successor's trampoline per window. */
export const T2E_SUCCESSOR_TRIES = 24;

/** Does [a, a + len] (mod 2^32, len < 2^32) meet [lo, hi]? */
function meets(a: number, len: number, lo: number, hi: number): boolean {
  const end = a + len;
  if (end < U32) return a <= hi && end >= lo;
  return a <= hi || end - U32 >= lo;
}

export function tryT2e(ctx: PlanContext, site: Site): TacticResult {
  const L = site.length;
  if (L >= 5) return `the site is ${L} bytes: B1 applies`;
  const s = site.addr;
  const n = s + L;
  const busy = ctx.busy(s, n);
  if (busy) return busy;
  const inner = ctx.targetInside(s, n);
  if (inner !== undefined) return `${hex(inner)} inside the site is a jump target`;
  const i = ctx.index.get(n);
  const N = i === undefined ? undefined : ctx.discovery.instructions[i];
  if (!N) return `no discovered instruction at ${hex(n)} to evict`;
  if (ctx.sites.has(n)) return `the successor ${hex(n)} is a site`;
  const LN = N.length;
  const busyN = ctx.busy(n, n + LN);
  if (busyN) return `successor: ${busyN}`;
  const innerN = ctx.targetInside(n, n + LN);
  if (innerN !== undefined) return `${hex(innerN)} inside the successor is a jump target`;
  const probeS = ctx.buildRun(ctx.space.punLo, s, n, n);
  if (typeof probeS === 'string') return probeS;
  const probeN = ctx.buildRun(ctx.space.punLo, n, n + LN, n + LN);
  if (typeof probeN === 'string') return `successor: ${probeN}`;
  const why: string[] = [];
  // k prefixes before the successor's E9, kS before the site's (as T1): each shifts which bytes
  // the site's rel32 overlaps.
  for (let kS = 0; kS < L; kS++) {
    for (let k = 0; k < Math.min(LN, 4); k++) {
      const r = evict(ctx, site, N.formId, LN, kS, k, probeS.bytes.length, probeN.bytes.length);
      if (typeof r !== 'string') return r;
      if (why.length < 4) why.push(`${kS}/${k} prefix(es) on the site/successor: ${r}`);
    }
  }
  return why.join('; ');
}

/** A byte of S's rel32 after N's patch: a constant, or byte j of N's rel32 (free inside N). */
type Cell = { readonly value: number } | { readonly j: number };

function evict(ctx: PlanContext, site: Site, formId: number, LN: number, kS: number, k: number, sizeS: number, sizeN: number): Patch | string {
  const s = site.addr;
  const L = site.length;
  const n = s + L;
  const jN = n + k; // N's E9
  const relN = jN + 1;
  // N's rel32: byte j is free when it lies inside N, else the byte already there (fixed, pinned).
  const nCell: Cell[] = [];
  const pins: number[] = [];
  for (let j = 0; j < 4; j++) {
    const a = relN + j;
    if (a < n + LN) {
      nCell.push({ j });
      continue;
    }
    const b = ctx.current(a, 1);
    if (!b) return `byte ${hex(a)} after the successor is not a file byte`;
    if (ctx.siteBytes.has(a) && !ctx.pinned.has(a) && !ctx.settled.has(a)) return `fixed byte ${hex(a)} belongs to another site, which must stay patchable`;
    nCell.push({ value: b[0]! });
    pins.push(a);
  }
  // S's rel32 bytes 0..3 at relS + p: free (x) inside S, else N's bytes after its patch.
  const xBytes = L - 1 - kS;
  const relS = s + kS + 1;
  let constS = 0;
  const shared: { pos: number; j: number }[] = [];
  for (let p = xBytes; p < 4; p++) {
    const a = relS + p;
    let c: Cell;
    if (a < jN) c = { value: T1_PAD_PREFIX };
    else if (a === jN) c = { value: 0xe9 };
    else c = nCell[a - relN]!;
    if ('value' in c) constS += c.value * 256 ** p;
    else shared.push({ pos: p, j: c.j });
  }
  shared.sort((x, y) => y.pos - x.pos);
  const xspan = 256 ** xBytes;
  const lo = ctx.space.punLo;
  const hi = ctx.space.punHi - 1;
  const assign = [0, 0, 0, 0];
  let windows = 0;
  let last = 'no window of the site meets the stub space';
  const place = (R: number): Patch | undefined => {
    windows++;
    const base = mod32(relS + 4 + R);
    const pieces: [number, number][] = base + xspan - 1 < U32 ? [[base, base + xspan - 1]] : [[base, U32 - 1], [0, mod32(base + xspan - 1)]];
    let tS: number | undefined;
    for (const [a, b] of pieces) {
      const from = Math.max(a, lo), to = Math.min(b, hi);
      if (from > to) continue;
      tS = ctx.space.findIn(from, to, sizeS);
      if (tS !== undefined) break;
    }
    if (tS === undefined) {
      last = `the site's window [${hex(base)}, +${hex(xspan)}) is full`;
      return undefined;
    }
    // N's targets: its rel32 = the shared low bytes (now chosen) + free higher bytes inside N (w) + fixed bytes.
    let known = 0, stride = 0, count = 1;
    for (let j = 0; j < 4; j++) {
      const c = nCell[j]!;
      if ('value' in c) known += c.value * 256 ** j;
      else if (shared.some((x) => x.j === j)) known += assign[j]! * 256 ** j;
      else {
        if (stride === 0) stride = 256 ** j;
        count *= 256;
      }
    }
    const baseN = mod32(jN + 5 + known);
    const span = stride === 0 ? 1 : stride * count;
    const allowed = (c: number): boolean => mod32(c - baseN) < span && (stride === 0 ? c === baseN : mod32(c - baseN) % stride === 0);
    // Walk the free space upwards from the lowest candidate (and from baseN), jumping to the next
    // congruent address after each taken slot.
    const starts = stride === 0 ? [baseN] : [lo + mod32(baseN - lo) % stride, baseN];
    for (const start of starts) {
      let c = start;
      for (let tries = 0; tries < T2E_SUCCESSOR_TRIES; tries++) {
        if (c < lo || c + sizeN - 1 > hi || !allowed(c)) {
          last = `no address the successor's rel32 allows is free in the stub space`;
          break;
        }
        const f = ctx.space.findIn(c, hi, sizeN);
        if (f === undefined) break;
        if (f !== c) {
          if (stride === 0) break;
          c = f + (mod32(baseN - f) % stride);
          continue;
        }
        if (c < tS + sizeS && tS < c + sizeN) {
          if (stride === 0) break;
          c += stride;
          continue;
        }
        return build(tS, c);
      }
    }
    last = `no free address for the successor's trampoline that its rel32 allows`;
    return undefined;
  };
  const build = (tS: number, tN: number): Patch | undefined => {
    const tramS = ctx.buildRun(tS, s, n, n);
    const tramN = ctx.buildRun(tN, n, n + LN, n + LN);
    if (typeof tramS === 'string' || typeof tramN === 'string' || tramS.bytes.length !== sizeS || tramN.bytes.length !== sizeN) return undefined;
    const relValN = mod32(tN - (jN + 5));
    const nBytes = new Uint8Array(LN).fill(INT3);
    nBytes.fill(T1_PAD_PREFIX, 0, k);
    nBytes[k] = 0xe9;
    for (let j = 0; j < 4 && k + 1 + j < LN; j++) nBytes[k + 1 + j] = Math.floor(relValN / 256 ** j) & 0xff;
    // S's rel32 read back from the bytes as they will be: the free low bytes are what remains.
    let high = 0;
    for (let p = xBytes; p < 4; p++) {
      const a = relS + p;
      high += (a < n + LN ? nBytes[a - n]! : ctx.current(a, 1)![0]!) * 256 ** p;
    }
    const x = mod32(tS - (relS + 4) - high);
    if (x >= xspan) throw new Error(`internal error: T2e at ${hex(s)}: the site's target ${hex(tS)} is not in its window`);
    const sBytes = new Uint8Array(L);
    sBytes.fill(T1_PAD_PREFIX, 0, kS);
    sBytes[kS] = 0xe9;
    for (let p = 0; p < xBytes; p++) sBytes[kS + 1 + p] = Math.floor(x / 256 ** p) & 0xff;
    ctx.space.commit(tS, sizeS);
    ctx.space.commit(tN, sizeN);
    const eviction: Patch = {
      tactic: k > 0 ? 'T1' : LN >= 5 ? 'B1' : 'B2', patchStart: n, patchEnd: n + LN, resume: n + LN,
      writes: [{ addr: n, bytes: nBytes }], pins, trampoline: { addr: tN, bytes: tramN.bytes }, sites: [],
      assumesNoInnerTargets: false, evicted: { addr: n, formId, stubAddr: tN },
    };
    return {
      tactic: 'T2e', patchStart: s, patchEnd: n, resume: n, writes: [{ addr: s, bytes: sBytes }], pins: [],
      trampoline: { addr: tS, bytes: tramS.bytes }, sites: tramS.stubs, assumesNoInnerTargets: false, evictions: [eviction],
    };
  };
  // Choose the shared bytes from the most significant down, pruning choices whose windows all
  // miss the stub space.
  const dfs = (idx: number, known: number): Patch | undefined => {
    let rest = xspan - 1;
    for (let q = idx; q < shared.length; q++) rest += 255 * 256 ** shared[q]!.pos;
    if (!meets(mod32(relS + 4 + known), rest, lo, hi)) return undefined;
    if (idx === shared.length) return place(known);
    const { pos, j } = shared[idx]!;
    for (let t = 0; t < 256 && windows < T2E_WINDOW_TRIES; t++) {
      // Start far from the image (low bytes 0 put the window next to the site).
      const v = (t + 0x40) & 0xff;
      assign[j] = v;
      const r = dfs(idx + 1, known + v * 256 ** pos);
      if (r) return r;
    }
    return undefined;
  };
  const r = dfs(0, constS);
  return r ?? (windows >= T2E_WINDOW_TRIES ? `${last} (after ${windows} windows)` : last);
}
