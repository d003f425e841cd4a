// T2 (E9Patch "successor eviction"): the site and the whole instructions after it, up to 5 bytes
// or more, are replaced by `jmp rel32` + INT3 filler; the trampoline runs the site's stub, then
// the evicted successors relocated (or, when a successor is a site too, its own stub: a patch
// group such as `pushf; cli`), then jumps back to the end of the run. It assumes that nothing
// jumps to an evicted successor, so no byte after the first may be a known target or conflict,
// no successor may follow an unconditional transfer (padding aside), and no successor may be
// code only the linear sweep found (docs/tactics.md: the three target checks). An instruction
// that reveals its next address may only be last (its next address is then resume).
import type { Site } from '../model';
import { jmpRel32 } from '../stubs/code';
import { fill } from './context';
import type { PlanContext, TacticResult } from './context';

const hex = (n: number): string => `0x${n.toString(16)}`;
/** Evict at most this many successors (E9Patch evicts a handful; longer runs risk more targets). */
export const T2_MAX_SUCCESSORS = 4;

export function tryT2(ctx: PlanContext, site: Site): TacticResult {
  let end = site.addr + site.length;
  let cur = site.addr;
  let n = 0;
  while (end - site.addr < 5) {
    const nx = ctx.next(cur);
    if (!nx) return `no discovered instruction follows at ${hex(end)}`;
    if (ctx.discovery.jumpTargets.has(nx.addr)) return `successor ${hex(nx.addr)} is a jump target`;
    if (++n > T2_MAX_SUCCESSORS) return `more than ${T2_MAX_SUCCESSORS} successors needed`;
    cur = nx.addr;
    end = nx.addr + nx.length;
  }
  if (n === 0) return 'the site alone is 5 bytes or more: B1 applies';
  const busy = ctx.busy(site.addr, end);
  if (busy) return busy;
  const inner = ctx.targetInside(site.addr, end);
  if (inner !== undefined) return `0x${inner.toString(16)} inside the bytes to overwrite is a jump target`;
  const blind = ctx.untrusted(site.addr, end);
  if (blind !== undefined) return `successor ${hex(blind)} was found only by the linear sweep: its jump targets are unknown`;
  const hidden = ctx.hiddenTarget(site.addr, end);
  if (hidden !== undefined) return `successor ${hex(hidden)} follows an unconditional transfer, so only a jump reaches it`;
  const t = ctx.placeRun(site.addr, end, end);
  if (typeof t === 'string') return t;
  const bytes = new Uint8Array(end - site.addr);
  bytes.set(jmpRel32(site.addr, t.addr));
  bytes.set(fill(bytes.length - 5), 5);
  return {
    tactic: 'T2', patchStart: site.addr, patchEnd: end, resume: end, writes: [{ addr: site.addr, bytes }], pins: [],
    trampoline: { addr: t.addr, bytes: t.bytes }, sites: t.stubs, assumesNoInnerTargets: true,
  };
}
