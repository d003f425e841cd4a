// The patch plan: a tactic per site, tried in E9Patch's order of preference (docs/tactics.md):
// B1, B2, T1, T2, T3, then the trap fallback. Sites are taken in address order; a site that an
// earlier patch group already covers (a T2 run through `pushf; cli`) is done. Every failure is
// kept with its reason, so a site that ends up trapped or skipped says why each tactic failed.
import type { Miss, PatchedSite, Site, Tactic } from './model';
import { tryB1 } from './tactics/b1';
import { tryB2 } from './tactics/b2';
import type { Patch, PlanContext, TacticResult } from './tactics/context';
import { tryT1 } from './tactics/t1';
import { tryT2 } from './tactics/t2';
import { tryT3 } from './tactics/t3';
import { trap } from './tactics/trap';

/** The tactics in the order they are tried (data, so the doc and the tests can name it). */
export const TACTIC_ORDER: readonly { readonly tactic: Exclude<Tactic, 'trap'>; readonly run: (ctx: PlanContext, site: Site) => TacticResult }[] = [
  { tactic: 'B1', run: tryB1 },
  { tactic: 'B2', run: tryB2 },
  { tactic: 'T1', run: tryT1 },
  { tactic: 'T2', run: tryT2 },
  { tactic: 'T3', run: tryT3 },
];

export interface Plan {
  readonly patches: Patch[];
  /** One record per site that has one (patched, or trapped), in address order. */
  readonly records: PatchedSite[];
  readonly misses: Miss[];
  /** Bytes to write into the original code: [addr, bytes]. */
  readonly writes: { addr: number; bytes: Uint8Array }[];
}

const slice = (ctx: PlanContext, start: number, end: number): Uint8Array => Uint8Array.from(ctx.read(start, end - start) ?? []);

export function makePlan(ctx: PlanContext, sites: readonly Site[], restrict?: ReadonlySet<Tactic>): Plan {
  const patches: Patch[] = [];
  const records: PatchedSite[] = [];
  const misses: Miss[] = [];
  const writes: { addr: number; bytes: Uint8Array }[] = [];
  const done = new Set<number>();
  const ordered = [...sites].sort((a, b) => a.addr - b.addr);
  for (const site of ordered) {
    if (done.has(site.addr)) continue;
    const tried: { tactic: Tactic; why: string }[] = [];
    let patch: Patch | undefined;
    for (const t of TACTIC_ORDER) {
      if (restrict && !restrict.has(t.tactic)) continue;
      const r = t.run(ctx, site);
      if (typeof r === 'string') {
        tried.push({ tactic: t.tactic, why: r });
        continue;
      }
      patch = r;
      break;
    }
    if (patch) {
      ctx.apply(patch);
      patches.push(patch);
      writes.push(...patch.writes);
      const displaced = slice(ctx, patch.patchStart, patch.patchEnd);
      for (const s of patch.sites) {
        done.add(s.site.addr);
        records.push({
          addr: s.site.addr, original: slice(ctx, s.site.addr, s.site.addr + s.site.length), formId: s.site.formId,
          reason: s.site.reason, tactic: patch.tactic, stub: s.stub, stubAddr: s.stubAddr, escapeAddr: s.escapeAddr,
          patchStart: patch.patchStart, displaced, resume: patch.resume, assumesNoInnerTargets: patch.assumesNoInnerTargets,
        });
      }
      continue;
    }
    done.add(site.addr);
    const fb = trap(ctx, site);
    if (typeof fb === 'string') {
      tried.push({ tactic: 'trap', why: fb });
      misses.push({ addr: site.addr, formId: site.formId, text: site.text, tried, outcome: 'skipped' });
      continue;
    }
    misses.push({ addr: site.addr, formId: site.formId, text: site.text, tried, outcome: 'trap' });
    for (let a = site.addr; a < site.addr + site.length; a++) ctx.claimed.add(a);
    if (fb.write) writes.push({ addr: site.addr, bytes: fb.write });
    records.push({
      addr: site.addr, original: slice(ctx, site.addr, site.addr + site.length), formId: site.formId, reason: site.reason,
      tactic: 'trap', stub: 'trap', stubAddr: 0, escapeAddr: 0, patchStart: site.addr,
      displaced: fb.write ? slice(ctx, site.addr, site.addr + 1) : new Uint8Array(0), resume: 0, assumesNoInnerTargets: false,
    });
  }
  records.sort((a, b) => a.addr - b.addr);
  return { patches, records, misses, writes };
}
