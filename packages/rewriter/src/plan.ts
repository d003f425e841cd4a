// The patch plan: a tactic per site, tried in E9Patch's order of preference (docs/tactics.md):
// B1, B2, T1, T2e (E9Patch's T2), then our relocating T2 and T3, then the trap fallback. A
// T2e patch carries the patch of the instruction it evicted, which gets its own record. Sites are taken in address order; a site that an
// earlier patch group already covers (a T2 run through `pushf; cli`) is done. A short site for
// which no tactic applies first settles the sites its punned jump would overlap and tries again
// (their bytes are then final). Every failure is kept with its reason, so a site that ends up
// trapped or skipped says why each tactic failed.
import type { Miss, PatchedSite, Site, Tactic } from './model';
import { tryB1 } from './tactics/b1';
import { tryB2 } from './tactics/b2';
import type { Patch, PlanContext, TacticResult } from './tactics/context';
import { tryT1 } from './tactics/t1';
import { tryT2 } from './tactics/t2';
import { tryT2e } from './tactics/t2e';
import { tryT3e } from './tactics/t3e';
import { tryT3 } from './tactics/t3';
import { trap } from './tactics/trap';

/** The tactics in the order they are tried (data, so the doc and the tests can name it). */
export const TACTIC_ORDER: readonly { readonly tactic: Exclude<Tactic, 'trap'>; readonly run: (ctx: PlanContext, site: Site) => TacticResult }[] = [
  { tactic: 'B1', run: tryB1 },
  { tactic: 'B2', run: tryB2 },
  { tactic: 'T1', run: tryT1 },
  { tactic: 'T2e', run: tryT2e },
  { tactic: 'T3e', run: tryT3e },
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

/** How many following sites deep a site may settle before retrying (a chain of short jumps). */
export const SETTLE_DEPTH = 8;

// A copy (not .slice(): a Node Buffer's slice is a view, and the CLI's image is a Buffer).
const slice = (ctx: PlanContext, start: number, end: number): Uint8Array => {
  const b = ctx.read(start, end - start);
  return b ? new Uint8Array(b) : new Uint8Array(0);
};

export function makePlan(ctx: PlanContext, sites: readonly Site[], restrict?: ReadonlySet<Tactic>): Plan {
  const patches: Patch[] = [];
  const records: PatchedSite[] = [];
  const misses: Miss[] = [];
  const writes: { addr: number; bytes: Uint8Array }[] = [];
  const done = new Set<number>();
  const ordered = [...sites].sort((a, b) => a.addr - b.addr);
  const tryAll = (site: Site, tried: { tactic: Tactic; why: string }[]): Patch | undefined => {
    for (const t of TACTIC_ORDER) {
      if (restrict && !restrict.has(t.tactic)) continue;
      const r = t.run(ctx, site);
      if (typeof r !== 'string') return r;
      tried.push({ tactic: t.tactic, why: r });
    }
    return undefined;
  };
  const settle = (site: Site): void => {
    done.add(site.addr);
    for (let a = site.addr; a < site.addr + site.length; a++) ctx.settled.add(a);
  };
  const processSite = (site: Site, depth: number): void => {
    if (done.has(site.addr)) return;
    let tried: { tactic: Tactic; why: string }[] = [];
    let patch = tryAll(site, tried);
    if (!patch && site.length < 5 && depth < SETTLE_DEPTH) {
      // A punned jump's fixed bytes may be a following site's, which must stay patchable: settle
      // that site first (E9Patch patches in reverse address order for this reason), then its
      // bytes are final and the pun may use them. Only when nothing applied, so that sites that
      // were patched in address order (and T2 groups like `pushf; cli`) stay as they were.
      // T2e's fixed bytes are the ones after the successor's rel32: settle the sites there too.
      const succ = ctx.next(site.addr);
      const reach = Math.max(site.addr + 5, succ ? succ.addr + succ.length + 4 : 0);
      let settled = false;
      for (let a = site.addr + site.length; a < reach; a++) {
        const n = ctx.sites.get(a);
        if (n && !done.has(n.addr)) {
          processSite(n, depth + 1);
          settled = true;
        }
      }
      if (settled) {
        tried = [];
        patch = tryAll(site, tried);
      }
    }
    if (patch) {
      commit(patch);
      return;
    }
    settle(site);
    const fb = trap(ctx, site);
    if (typeof fb === 'string') {
      tried.push({ tactic: 'trap', why: fb });
      misses.push({ addr: site.addr, formId: site.formId, text: site.text, tried, outcome: 'skipped' });
      return;
    }
    misses.push({ addr: site.addr, formId: site.formId, text: site.text, tried, outcome: 'trap' });
    for (let a = site.addr; a < site.addr + site.length; a++) ctx.claimed.add(a);
    if (fb.write) {
      writes.push({ addr: site.addr, bytes: fb.write });
      ctx.record([{ addr: site.addr, bytes: fb.write }]);
    }
    records.push({
      addr: site.addr, original: slice(ctx, site.addr, site.addr + site.length), formId: site.formId, reason: site.reason,
      tactic: 'trap', stub: 'trap', stubAddr: 0, escapeAddr: 0, patchStart: site.addr,
      displaced: fb.write ? slice(ctx, site.addr, site.addr + 1) : new Uint8Array(0), resume: 0, assumesNoInnerTargets: false,
    });
  };
  const commit = (patch: Patch): void => {
    ctx.apply(patch);
    patches.push(patch);
    writes.push(...patch.writes);
    const displaced = slice(ctx, patch.patchStart, patch.patchEnd);
    for (const s of patch.sites) {
      settle(s.site);
      records.push({
        addr: s.site.addr, original: slice(ctx, s.site.addr, s.site.addr + s.site.length), formId: s.site.formId,
        reason: s.site.reason, tactic: patch.tactic, stub: s.stub, stubAddr: s.stubAddr, escapeAddr: s.escapeAddr,
        patchStart: patch.patchStart, displaced, resume: patch.resume, assumesNoInnerTargets: patch.assumesNoInnerTargets,
      });
    }
    for (const e of patch.evictions ?? []) {
      ctx.apply(e);
      patches.push(e);
      writes.push(...e.writes);
      const ev = e.evicted!;
      const original = slice(ctx, e.patchStart, e.patchEnd);
      records.push({
        addr: ev.addr, original, formId: ev.formId, reason: 'evicted', tactic: e.tactic, stub: 'empty', stubAddr: ev.stubAddr,
        escapeAddr: 0, patchStart: e.patchStart, displaced: original, resume: e.resume, assumesNoInnerTargets: false,
      });
    }
  };
  for (const site of ordered) processSite(site, 0);
  // A second pass (E9Patch's multi-pass idea): a site skipped in address order is tried once more
  // when every site is settled, so a fixed byte that belonged to a site still to be patched no
  // longer stops a pun. Only skipped sites: nothing was written for them, and if a later pun
  // fixed on their bytes, those bytes are pinned and every tactic refuses them.
  for (let i = 0; i < misses.length; i++) {
    const m = misses[i]!;
    if (m.outcome !== 'skipped') continue;
    const site = ctx.sites.get(m.addr)!;
    const tried: { tactic: Tactic; why: string }[] = [];
    const patch = tryAll(site, tried);
    if (!patch) {
      // The reasons as they stand now, the fallback's from the first pass.
      misses[i] = { ...m, tried: [...tried, ...m.tried.filter((t) => t.tactic === 'trap')] };
      continue;
    }
    commit(patch);
    misses.splice(i--, 1);
  }
  records.sort((a, b) => a.addr - b.addr);
  misses.sort((a, b) => a.addr - b.addr);
  return { patches, records, misses, writes };
}
