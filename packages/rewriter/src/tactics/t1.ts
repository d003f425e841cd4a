// T1 (E9Patch "padded punned jump"): B2 with k redundant segment-override prefixes before the E9,
// so the rel32 starts k bytes later and overlaps different following bytes: another window of
// targets to try. The site needs at least 2 bytes (one prefix plus the E9).
import type { Site } from '../model';
import { tryPun } from './b2';
import type { PlanContext, TacticResult } from './context';

export function tryT1(ctx: PlanContext, site: Site): TacticResult {
  if (site.length < 2) return 'the site is 1 byte: no room for a prefix before the E9';
  const why: string[] = [];
  for (let k = 1; k < site.length; k++) {
    const r = tryPun(ctx, site, k, 'T1');
    if (typeof r !== 'string') return r;
    why.push(`${k} prefix(es): ${r}`);
  }
  return why.join('; ');
}
