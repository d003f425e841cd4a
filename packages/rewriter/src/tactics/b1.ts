// B1 (E9Patch "jump"): the site is at least 5 bytes, so `jmp rel32` to the trampoline fits inside
// it; the rest of the site is INT3 filler. Only the site's own bytes change, and nothing
// well-formed jumps into the middle of an instruction, so B1 assumes nothing about jump targets.
import type { Site } from '../model';
import { jmpRel32 } from '../stubs/code';
import { fill } from './context';
import type { PlanContext, TacticResult } from './context';

export function tryB1(ctx: PlanContext, site: Site): TacticResult {
  if (site.length < 5) return `the site is ${site.length} bytes, a jmp rel32 needs 5`;
  const end = site.addr + site.length;
  const busy = ctx.busy(site.addr, end);
  if (busy) return busy;
  const inner = ctx.targetInside(site.addr, end);
  if (inner !== undefined) return `0x${inner.toString(16)} inside the bytes to overwrite is a jump target`;
  const t = ctx.placeRun(site.addr, end, end);
  if (typeof t === 'string') return t;
  const bytes = new Uint8Array(site.length);
  bytes.set(jmpRel32(site.addr, t.addr));
  bytes.set(fill(site.length - 5), 5);
  return {
    tactic: 'B1', patchStart: site.addr, patchEnd: end, resume: end, writes: [{ addr: site.addr, bytes }], pins: [],
    trampoline: { addr: t.addr, bytes: t.bytes }, sites: t.stubs, assumesNoInnerTargets: false,
  };
}
