// Section 3, rewriter throughput and coverage: scan (readElf + discover + findSites) and rewrite
// (rewriteImage, which scans again, plans, emits stubs and writes the image) in instructions per
// second, and how the sites were patched, per tactic. Inputs: busybox (Debian's busybox-static,
// i386, from scripts/fetch-i386.mjs) with --select jumps, the mode E9Patch reports for /bin/bash
// (Duck et al., PLDI 2020, Table 2: B1+B2 80.7%, T1 11.0%, T2 2.2%, T3 6.1%), and every example
// kernel with --select sensitive.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { discover, findSites, readElf, rewriteImage, verifyImage } from '@ringshift/rewriter';
import type { Tactic } from '@ringshift/rewriter';
import { median } from '../lib/stats';
import { barChartSvg } from '../lib/svg';
import type { SectionResult } from '../lib/section';

export const TACTICS: readonly Tactic[] = ['B1', 'B2', 'T1', 'T2e', 'T3e', 'T2', 'T3', 'trap'];
/** E9Patch's /bin/bash jumps-mode coverage (PLDI 2020, Table 2), for comparison. */
export const E9PATCH_BASH = { 'B1+B2': 80.7, T1: 11.0, T2: 2.2, T3: 6.1 };

export interface RewriteInput {
  name: string;
  file: string;
  select: string;
}

export interface RewriteRow {
  name: string;
  file: string;
  select: string;
  bytes: number;
  instructions: number;
  sites: number;
  tactics: Record<Tactic, number>;
  /** Instructions patched to make room for a site's jump (T2e's successors): not sites, not in `tactics`. */
  evicted: number;
  skipped: number;
  scanMs: number;
  rewriteMs: number;
  scanPerSecond: number;
  rewritePerSecond: number;
  verifyMs: number;
  verified: boolean;
  /** Bytes of the rewritten image, and its stub ranges (PT_LOADs and loader mappings, docs/patch-map.md). */
  outBytes: number;
  stubRanges: number;
}

function time<T>(f: () => T): { value: T; ms: number } {
  const t0 = process.hrtime.bigint();
  const value = f();
  return { value, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

function measure(root: string, input: RewriteInput, rounds: number): RewriteRow {
  const bytes = readFileSync(input.file);
  // Small images take milliseconds, where one GC pause decides a round: give them more rounds.
  const n = bytes.length < 1 << 20 ? rounds * 4 : rounds;
  const scan = () => {
    const elf = readElf(bytes);
    const d = discover(elf);
    return { instructions: d.instructions.length, sites: findSites(elf, d, input.select).length };
  };
  const rewrite = () => rewriteImage(bytes, { select: input.select, inline: true });
  // One warm-up each, then alternate so load on this shared machine falls on both alike.
  const first = scan();
  const out = rewrite();
  const scanMs: number[] = [], rewriteMs: number[] = [];
  for (let r = 0; r < n; r++) {
    scanMs.push(time(scan).ms);
    rewriteMs.push(time(rewrite).ms);
  }
  const tactics = Object.fromEntries(TACTICS.map((t) => [t, 0])) as Record<Tactic, number>;
  let evicted = 0;
  for (const s of out.map.sites) {
    if (s.reason === 'evicted') evicted++;
    else tactics[s.tactic]++;
  }
  const skipped = out.report.misses.filter((m) => m.outcome === 'skipped').length;
  const s = median(scanMs), w = median(rewriteMs);
  const v = time(() => verifyImage(out.image, bytes));
  return {
    name: input.name, file: relative(root, input.file), select: input.select, bytes: bytes.length,
    instructions: first.instructions, sites: out.map.sites.length - evicted + skipped, tactics, evicted, skipped,
    scanMs: Math.round(s * 10) / 10, rewriteMs: Math.round(w * 10) / 10,
    scanPerSecond: Math.round(first.instructions / (s / 1000)),
    rewritePerSecond: Math.round(first.instructions / (w / 1000)),
    verifyMs: Math.round(v.ms * 10) / 10,
    verified: v.value.ok,
    outBytes: out.image.length,
    stubRanges: out.map.stubRanges.length,
  };
}

export interface RewriteBenchOptions {
  root: string;
  rounds: number;
  /** busybox (scripts/fetch-i386.mjs), measured in --select jumps mode when the file exists. */
  busybox?: string;
  log?: (line: string) => void;
}

export interface RewriteBenchData {
  rounds: number;
  rows: RewriteRow[];
  e9patchBash: typeof E9PATCH_BASH;
  notes: string[];
}

/** The images to measure: busybox (jumps) when present, and every built example but the PV ports (sensitive). */
export function rewriteInputs(root: string, busybox: string | undefined, notes: string[]): RewriteInput[] {
  const inputs: RewriteInput[] = [];
  if (busybox !== undefined) {
    if (existsSync(busybox)) inputs.push({ name: 'busybox', file: busybox, select: 'jumps' });
    else notes.push(`${relative(root, busybox)} is missing (node scripts/fetch-i386.mjs fetches it): busybox rows skipped.`);
  }
  const examples = join(root, 'examples');
  for (const d of readdirSync(examples, { withFileTypes: true })) {
    // PV ports (pv-*) are built for the pv backend, which needs no rewriting; pv-common is a library.
    if (!d.isDirectory() || d.name === 'common' || d.name.startsWith('pv-')) continue;
    const file = join(examples, d.name, `${d.name}.elf`);
    if (existsSync(file)) inputs.push({ name: d.name, file, select: 'sensitive' });
  }
  inputs.sort((a, b) => (a.name === 'busybox' ? -1 : b.name === 'busybox' ? 1 : a.name.localeCompare(b.name)));
  if (inputs.length === 0) throw new Error('nothing to measure: build the examples (make -C examples) or fetch busybox');
  return inputs;
}

export function benchRewrite(opts: RewriteBenchOptions): RewriteBenchData {
  const { rounds } = opts;
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`rounds must be a positive integer, not ${rounds}`);
  const notes: string[] = [];
  const inputs = rewriteInputs(opts.root, opts.busybox, notes);
  const rows: RewriteRow[] = [];
  for (const i of inputs) {
    opts.log?.(`bench: rewrite ${i.name} (--select ${i.select})`);
    try {
      rows.push(measure(opts.root, i, rounds));
    } catch (e) {
      notes.push(`${i.name} could not be rewritten: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { rounds, rows, e9patchBash: E9PATCH_BASH, notes };
}

const M = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M/s` : `${Math.round(n / 1e3)} k/s`);
const pct = (n: number, of: number): string => (of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`);
export function rewriteMarkdown(d: RewriteBenchData): string {
  const { rows, rounds } = d;
    return [
    '## 3. Rewriter: throughput and coverage',
    '',
    `Median of ${rounds} rounds (images under 1 MiB: ${rounds * 4}) after one warm-up; ` +
      'instructions = what discovery accepted as code; scan = readElf + discover + findSites; rewrite = rewriteImage (scan, plan, stubs, ELF out); verify = verifyImage against the original, once.',
    '',
    '| image | select | bytes | instructions | sites | scan ms | scan | rewrite ms | rewrite | verify ms | verify | out bytes | stub ranges |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${r.select} | ${r.bytes} | ${r.instructions} | ${r.sites} | ${r.scanMs} | ${M(r.scanPerSecond)} | ${r.rewriteMs} | ${M(r.rewritePerSecond)} | ${r.verifyMs} | ${r.verified ? 'ok' : 'VIOLATIONS'} | ${r.outBytes} | ${r.stubRanges} |`),
    '',
    '### Coverage per tactic (share of sites)',
    '',
    `| image | select | sites | ${TACTICS.join(' | ')} |${rows.some((r) => r.skipped) ? ' skipped |' : ''} evicted (not sites) |`,
    `|---|---|---:|${TACTICS.map(() => '---:|').join('')}${rows.some((r) => r.skipped) ? '---:|' : ''}---:|`,
    ...rows.map((r) =>
      `| ${r.name} | ${r.select} | ${r.sites} | ${TACTICS.map((t) => `${r.tactics[t]} (${pct(r.tactics[t], r.sites)})`).join(' | ')} |` +
        (rows.some((x) => x.skipped) ? ` ${r.skipped} (${pct(r.skipped, r.sites)}) |` : '') + ` ${r.evicted} |`,
    ),
    `| E9Patch /bin/bash (PLDI 2020) | jumps | | B1+B2 ${E9PATCH_BASH['B1+B2']}% | | ${E9PATCH_BASH.T1}% | ${E9PATCH_BASH.T2}% | ${E9PATCH_BASH.T3}% | | | 0% |`,
    '',
    ...rows.filter((r) => r.name === 'busybox').map((r) =>
      `Goal: a busybox-sized image rewritten in under 2 s: ${(r.rewriteMs / 1000).toFixed(2)} s, ${r.rewriteMs < 2000 ? 'met' : 'NOT met'}. ` +
        `Patched with a jump: ${pct(r.sites - r.skipped - r.tactics.trap, r.sites)} of ${r.sites} jumps (E9Patch: 100% of /bin/bash's).`),
    '',
  ].join('\n');
}

export function rewriteSection(opts: RewriteBenchOptions): SectionResult {
  const data = benchRewrite(opts);
  const svg = barChartSvg({
    title: 'Rewriter throughput', unit: 'million instructions per second', series: ['scan', 'rewrite'], log: true,
    rows: data.rows.map((r) => ({ label: `${r.name} (${r.select})`, values: [r.scanPerSecond / 1e6, r.rewritePerSecond / 1e6] })),
  });
  const md = rewriteMarkdown(data) + (data.notes.length ? `${data.notes.map((n) => `Note: ${n}`).join('\n')}\n` : '');
  return { id: 'rewrite', title: 'Rewriter', markdown: md, data, charts: [{ file: 'rewrite.svg', svg }] };
}
