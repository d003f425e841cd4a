// T3e (E9Patch's own T3, "neighbour eviction", Duck et al., PLDI 2020): a site S of 2 to 4 bytes
// gets `jmp rel8` to J, inside a neighbour M within reach (M not a site, at least 6 bytes). M is
// evicted: `jmp rel32` at its first byte to a trampoline that runs M relocated and jumps to M's
// end (M gets an 'evicted' record, tactic B1), and M's bytes after that jump are free: J = M + 5
// holds S's own `E9 rel32`, its low bytes free inside M, its high bytes whatever follows M (fixed
// and pinned, as for B2). Every original instruction boundary stays valid (a jump to M runs M's
// jump, a jump to S runs S's; nothing runs M's tail but S's short jump), so T3e assumes nothing
// about jump targets. User executables only for now: the runtime's image check
// (packages/runtime/src/vmm/rewrite/image.ts) expects a jump into the stub at a non-T3 site.
import type { Site } from '../model';
import { jmpRel32 } from '../stubs/code';
import { INT3 } from './context';
import type { Patch, PlanContext, TacticResult } from './context';

const hex = (n: number): string => `0x${n.toString(16)}`;
const U32 = 2 ** 32;
/** Neighbours tried per site. */
export const T3E_NEIGHBOUR_TRIES = 24;

export function tryT3e(ctx: PlanContext, site: Site): TacticResult {
  const L = site.length;
  if (L < 2) return 'the site is 1 byte: no room for jmp rel8';
  if (L >= 5) return `the site is ${L} bytes: B1 applies`;
  if (ctx.kernel) return 'not in kernels: the runtime\'s image check does not know T3e yet';
  const s = site.addr;
  const end = s + L;
  const busy = ctx.busy(s, end);
  if (busy) return busy;
  const inner = ctx.targetInside(s, end);
  if (inner !== undefined) return `${hex(inner)} inside the site is a jump target`;
  const idx = ctx.index.get(s);
  if (idx === undefined) return 'the site is not a discovered instruction';
  const probe = ctx.buildRun(ctx.space.punLo, s, end, end);
  if (typeof probe === 'string') return probe;
  const size = probe.bytes.length;
  const ins = ctx.discovery.instructions;
  // Neighbours M with J = M + 5 in rel8 reach of s + 2, nearest first.
  const cands: number[] = [];
  for (let i = idx - 1; i >= 0 && ins[i]!.addr + 5 >= s + 2 - 128; i--) cands.push(i);
  for (let i = idx + 1; i < ins.length && ins[i]!.addr + 5 <= s + 2 + 127; i++) cands.push(i);
  cands.sort((a, b) => Math.abs(ins[a]!.addr - s) - Math.abs(ins[b]!.addr - s));
  let last = 'no neighbour of 6 bytes or more within jmp rel8 reach';
  let tries = 0;
  for (const i of cands) {
    const m = ins[i]!;
    const mEnd = m.addr + m.length;
    if (m.length < 6 || ctx.sites.has(m.addr)) continue;
    if (++tries > T3E_NEIGHBOUR_TRIES) break;
    const J = m.addr + 5;
    const rel8 = J - (s + 2);
    if (rel8 < -128 || rel8 > 127) continue;
    const busyM = ctx.busy(m.addr, mEnd);
    if (busyM) {
      last = `neighbour ${hex(m.addr)}: ${busyM}`;
      continue;
    }
    const innerM = ctx.targetInside(m.addr, mEnd);
    if (innerM !== undefined) {
      last = `neighbour ${hex(m.addr)}: ${hex(innerM)} inside it is a jump target`;
      continue;
    }
    // S's rel32 at J + 1: free bytes inside M, the rest fixed after M.
    const free = Math.min(4, mEnd - (J + 1));
    const fixedLen = 4 - free;
    const fixed = fixedLen > 0 ? ctx.current(mEnd, fixedLen) : new Uint8Array(0);
    if (!fixed) continue;
    let why: string | undefined;
    for (let a = mEnd; a < mEnd + fixedLen; a++) {
      if (a >= s && a < end) why = 'the fixed bytes would be the site\'s own';
      else if (ctx.siteBytes.has(a) && !ctx.pinned.has(a) && !ctx.settled.has(a)) why = `fixed byte ${hex(a)} belongs to another site, which must stay patchable`;
    }
    if (why) {
      last = `neighbour ${hex(m.addr)}: ${why}`;
      continue;
    }
    let H = 0;
    for (let k = 0; k < fixedLen; k++) H += fixed[k]! * 256 ** (free + k);
    const span = 256 ** free;
    const base = (J + 5 + H) % U32;
    const lo = ctx.space.punLo, hi = ctx.space.punHi - 1;
    const pieces: [number, number][] = base + span - 1 < U32 ? [[base, base + span - 1]] : [[base, U32 - 1], [0, (base + span - 1) % U32]];
    let target: number | undefined;
    for (const [a, b] of pieces) {
      const from = Math.max(a, lo), to = Math.min(b, hi);
      if (from > to) continue;
      target = ctx.space.findIn(from, to, size);
      if (target !== undefined) break;
    }
    if (target === undefined) {
      last = `neighbour ${hex(m.addr)}: no free stub space in [${hex(base)}, +${hex(span)})`;
      continue;
    }
    const tS = ctx.buildRun(target, s, end, end);
    if (typeof tS === 'string' || tS.bytes.length !== size) continue;
    ctx.space.commit(target, size);
    const tM = ctx.placeRun(m.addr, mEnd, mEnd);
    if (typeof tM === 'string') return tM; // the sequential region is full (the window stays used; harmless)
    const x = (target - base + U32) % U32;
    const mBytes = new Uint8Array(m.length).fill(INT3);
    mBytes.set(jmpRel32(m.addr, tM.addr));
    mBytes[5] = 0xe9;
    for (let k = 0; k < free; k++) mBytes[6 + k] = Math.floor(x / 256 ** k) & 0xff;
    const sBytes = new Uint8Array(L).fill(INT3);
    sBytes[0] = 0xeb;
    sBytes[1] = rel8 & 0xff;
    const pins: number[] = [];
    for (let a = mEnd; a < mEnd + fixedLen; a++) pins.push(a);
    const eviction: Patch = {
      tactic: 'B1', patchStart: m.addr, patchEnd: mEnd, resume: mEnd, writes: [{ addr: m.addr, bytes: mBytes }], pins,
      trampoline: { addr: tM.addr, bytes: tM.bytes }, sites: [], assumesNoInnerTargets: false,
      evicted: { addr: m.addr, formId: m.formId, stubAddr: tM.addr },
    };
    return {
      tactic: 'T3e', patchStart: s, patchEnd: end, resume: end, writes: [{ addr: s, bytes: sBytes }], pins: [],
      trampoline: { addr: target, bytes: tS.bytes }, sites: tS.stubs, assumesNoInnerTargets: false, evictions: [eviction],
    };
  }
  return last;
}
