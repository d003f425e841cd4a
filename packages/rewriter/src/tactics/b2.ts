// B2 (E9Patch "punned jump") and the search T1 shares with it. A site shorter than 5 bytes still
// gets `E9 rel32` at its first byte: the rel32's low bytes lie inside the site and are free to
// choose, its high bytes are the original bytes of the following instruction(s) and stay as they
// are, so the following code is unchanged and still runs when jumped to. Those fixed bytes decide
// a window of possible targets; the trampoline must be placed inside the window, in free stub
// space (StubSpace: the hole in a kernel, any free user page otherwise). The fixed bytes are
// pinned: no later patch may change them, because that would move the jump. They may be bytes
// an earlier patch wrote (plan.ts settles a following site first when a site finds no tactic,
// as E9Patch's reverse order does). Since only the site's own bytes change, B2 assumes nothing
// about jump targets.
import type { Site } from '../model';
import type { PlanContext, TacticResult } from './context';

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Segment-override prefix used as padding by T1 (ignored on a near jmp; SDM vol. 2 §2.1.1). */
export const T1_PAD_PREFIX = 0x26;

/**
 * A punned jmp with `prefixes` padding bytes at the site: [pad × k] E9 [free bytes][fixed bytes...].
 * Shared by B2 (k = 0) and T1 (k ≥ 1).
 */
export function tryPun(ctx: PlanContext, site: Site, k: number, tactic: 'B2' | 'T1'): TacticResult {
  const L = site.length;
  if (k + 1 > L) return `no room for ${k} prefix byte(s) and the E9 in a ${L}-byte site`;
  const end = site.addr + L;
  const busy = ctx.busy(site.addr, end);
  if (busy) return busy;
  const inner = ctx.targetInside(site.addr, end);
  if (inner !== undefined) return `${hex(inner)} inside the site is a jump target`;
  const jmpAt = site.addr + k;
  const free = L - 1 - k; // rel32 bytes inside the site
  if (free >= 4) return `the site is ${L} bytes: B1 applies`;
  const fixedFrom = end;
  const fixedLen = 4 - free;
  // The fixed bytes as they are now: bytes an earlier patch wrote are final (claimed bytes never
  // change again), and so are the bytes of a site the plan has finished with.
  const fixed = ctx.current(fixedFrom, fixedLen);
  if (!fixed) return `the ${fixedLen} byte(s) after the site are not file bytes of one segment`;
  for (let a = fixedFrom; a < fixedFrom + fixedLen; a++) {
    if (ctx.siteBytes.has(a) && !ctx.pinned.has(a) && !ctx.settled.has(a)) return `fixed byte ${hex(a)} belongs to another site, which must stay patchable`;
  }
  // rel32 = H + x, x in [0, 256^free); target = jmpAt + 5 + rel32 (mod 2^32).
  let H = 0;
  for (let i = 0; i < fixedLen; i++) H += fixed[i]! * 2 ** (8 * (free + i));
  const span = 2 ** (8 * free);
  const base = (jmpAt + 5 + H) % 2 ** 32;
  const lo = ctx.space.punLo;
  const hi = ctx.space.punHi - 1;
  // The window [base, base + span) may wrap around 2^32; try each piece against [lo, hi].
  const pieces: [number, number][] = base + span - 1 < 2 ** 32
    ? [[base, base + span - 1]]
    : [[base, 2 ** 32 - 1], [0, (base + span - 1) % 2 ** 32]];
  const probe = ctx.buildRun(lo, site.addr, end, end);
  if (typeof probe === 'string') return probe;
  const size = probe.bytes.length;
  let target: number | undefined;
  for (const [a, b] of pieces) {
    const from = Math.max(a, lo);
    const to = Math.min(b, hi);
    if (from > to) continue;
    target = ctx.space.findIn(from, to, size);
    if (target !== undefined) break;
  }
  if (target === undefined) {
    return `the fixed bytes ${Array.from(fixed, (x) => x.toString(16).padStart(2, '0')).join(' ')} allow targets ` +
      `[${hex(base)}, ${hex((base + span - 1) % 2 ** 32)}], none free in the stub space [${hex(lo)}, ${hex(hi)}]`;
  }
  const t = ctx.buildRun(target, site.addr, end, end);
  if (typeof t === 'string') return t;
  ctx.space.commit(target, t.bytes.length);
  const x = (target - base + 2 ** 32) % 2 ** 32;
  const bytes = new Uint8Array(L);
  bytes.fill(T1_PAD_PREFIX, 0, k);
  bytes[k] = 0xe9;
  for (let i = 0; i < free; i++) bytes[k + 1 + i] = Math.floor(x / 2 ** (8 * i)) & 0xff;
  const pins: number[] = [];
  for (let a = fixedFrom; a < fixedFrom + fixedLen; a++) pins.push(a);
  return {
    tactic, patchStart: site.addr, patchEnd: end, resume: end, writes: [{ addr: site.addr, bytes }], pins,
    trampoline: { addr: target, bytes: t.bytes }, sites: t.stubs, assumesNoInnerTargets: false,
  };
}

export function tryB2(ctx: PlanContext, site: Site): TacticResult {
  return tryPun(ctx, site, 0, 'B2');
}
