// T3 (E9Patch "neighbour eviction"), in the form docs/tactics.md describes: for a site of 2 to 4
// bytes that T2 cannot take, evict a run of whole instructions N = [P, site) just before it
// (at least 10 bytes, within reach of a short jump): P gets `jmp rel32` to one trampoline, P + 5
// gets `jmp rel32` to the site's stub inside that trampoline, and the site gets `jmp rel8` to
// P + 5. The trampoline runs N relocated, then the site's stub, then jumps back to the site's end.
// Control that reaches P (fall-through or a jump to P) runs N and the site as before; control that
// reaches the site runs only the site. It assumes that nothing jumps into (P, site) nor to the
// filler inside the site.
import type { Site } from '../model';
import { jmpRel32 } from '../stubs/code';
import { fill } from './context';
import type { PlanContext, TacticResult } from './context';

const hex = (n: number): string => `0x${n.toString(16)}`;
/** The two rel32 jumps the neighbour run must hold. */
const ROOM = 10;
/** jmp rel8 from site + 2 back to P + 5 reaches at most 128 bytes: site - P ≤ 131. */
const REACH = 131;

export function tryT3(ctx: PlanContext, site: Site): TacticResult {
  if (site.length < 2) return 'the site is 1 byte: no room for jmp rel8';
  const end = site.addr + site.length;
  const busySite = ctx.busy(site.addr, end);
  if (busySite) return busySite;
  // Grow N backwards one whole instruction at a time until it holds both jumps.
  let p = site.addr;
  let why = 'no instruction ends at the site';
  for (;;) {
    const prev = ctx.previous(p);
    if (!prev) return `${why}; no discovered instruction ends at ${hex(p)}`;
    if (p !== site.addr && ctx.discovery.jumpTargets.has(p)) return `neighbour ${hex(p)} is a jump target`;
    if (ctx.sites.has(prev.addr)) return `neighbour ${hex(prev.addr)} is a site`;
    p = prev.addr;
    if (site.addr - p > REACH) return `the neighbours before ${hex(site.addr)} reach back to ${hex(p)}, out of jmp rel8 range`;
    if (site.addr - p >= ROOM) break;
    why = `neighbours [${hex(p)}, ${hex(site.addr)}) are ${site.addr - p} bytes`;
  }
  const busy = ctx.busy(p, site.addr);
  if (busy) return busy;
  // Only P and the site's first byte may be reached by a jump.
  for (const [a, b] of [[p, site.addr], [site.addr, end]] as const) {
    const inner = ctx.targetInside(a, b);
    if (inner !== undefined) return `${hex(inner)} inside the bytes to overwrite is a jump target`;
  }
  const rel8 = p + 5 - (site.addr + 2);
  if (rel8 < -128) return `P + 5 = ${hex(p + 5)} is out of jmp rel8 range from ${hex(site.addr)}`;
  const blind = ctx.untrusted(p, site.addr);
  if (blind !== undefined) return `neighbour ${hex(blind)} was found only by the linear sweep: its jump targets are unknown`;
  const hidden = ctx.hiddenTarget(p, end, site.addr);
  if (hidden !== undefined) return `neighbour ${hex(hidden)} follows an unconditional transfer, so only a jump reaches it`;
  const t = ctx.placeRun(p, end, end);
  if (typeof t === 'string') return t;
  const siteStub = t.stubs.find((s) => s.site.addr === site.addr)!;
  const nBytes = new Uint8Array(site.addr - p);
  nBytes.set(jmpRel32(p, t.addr));
  nBytes.set(jmpRel32(p + 5, siteStub.stubAddr), 5);
  nBytes.set(fill(nBytes.length - ROOM), ROOM);
  const sBytes = new Uint8Array(site.length);
  sBytes[0] = 0xeb;
  sBytes[1] = rel8 & 0xff;
  sBytes.set(fill(site.length - 2), 2);
  return {
    tactic: 'T3', patchStart: p, patchEnd: end, resume: end,
    writes: [{ addr: p, bytes: nBytes }, { addr: site.addr, bytes: sBytes }], pins: [],
    trampoline: { addr: t.addr, bytes: t.bytes }, sites: [siteStub], assumesNoInnerTargets: true,
  };
}
