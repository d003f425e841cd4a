// Rewriter throughput and coverage: scan (readElf + discover + findSites) and rewrite
// (rewriteImage, which scans again, plans, emits stubs and writes the image) in instructions per
// second, and how the sites were patched, per tactic. Inputs: busybox (Debian's busybox-static,
// i386, from scripts/fetch-i386.mjs) with --select jumps, the mode E9Patch reports for /bin/bash
// (Duck et al., PLDI 2020, Table 2: B1+B2 80.7%, T1 11.0%, T2 2.2%, T3 6.1%), and every example
// kernel with --select sensitive. Prints Markdown and writes bench-results/rewrite.json.
//
//   pnpm bench:rewrite [--rounds N] [--busybox PATH]
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { discover, findSites, readElf, rewriteImage, verifyImage } from '@ringshift/rewriter';
import type { Tactic } from '@ringshift/rewriter';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    busybox: { type: 'string', default: join(ROOT, 'test/fixtures-cache/busybox') },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, not ${values.rounds}`);

const TACTICS: readonly Tactic[] = ['B1', 'B2', 'T1', 'T2e', 'T3e', 'T2', 'T3', 'trap'];
/** E9Patch's /bin/bash jumps-mode coverage (PLDI 2020, Table 2), for comparison. */
const E9PATCH_BASH = { 'B1+B2': 80.7, T1: 11.0, T2: 2.2, T3: 6.1 };

interface Input {
  name: string;
  file: string;
  select: string;
}

interface Row {
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

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

function time<T>(f: () => T): { value: T; ms: number } {
  const t0 = process.hrtime.bigint();
  const value = f();
  return { value, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

function measure(input: Input): Row {
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
    name: input.name, file: relative(ROOT, input.file), select: input.select, bytes: bytes.length,
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

const inputs: Input[] = [];
if (existsSync(values.busybox)) inputs.push({ name: 'busybox', file: values.busybox, select: 'jumps' });
else process.stderr.write(`bench: ${values.busybox} is missing (node scripts/fetch-i386.mjs fetches it); busybox rows skipped\n`);
const examples = join(ROOT, 'examples');
for (const d of readdirSync(examples, { withFileTypes: true })) {
  if (!d.isDirectory() || d.name === 'common') continue;
  const file = join(examples, d.name, `${d.name}.elf`);
  if (existsSync(file)) inputs.push({ name: d.name, file, select: 'sensitive' });
}
inputs.sort((a, b) => (a.name === 'busybox' ? -1 : b.name === 'busybox' ? 1 : a.name.localeCompare(b.name)));
if (inputs.length === 0) throw new Error('nothing to measure: build the examples (make -C examples) or fetch busybox');

process.stderr.write(`bench: ${inputs.length} images, ${rounds} rounds each after a warm-up\n`);
const rows = inputs.map((i) => {
  process.stderr.write(`bench: ${i.name} (--select ${i.select})\n`);
  return measure(i);
});

const M = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M/s` : `${Math.round(n / 1e3)} k/s`);
const pct = (n: number, of: number): string => (of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`);
const cpu = (() => {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  } catch {
    return cpus()[0]?.model ?? 'unknown';
  }
})();

const md = [
  '## Rewriter: throughput and coverage',
  '',
  `Machine: ${cpu}, ${cpus().length} cores, Node ${process.version}. Median of ${rounds} rounds (images under 1 MiB: ${rounds * 4}) after one warm-up; ` +
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
process.stdout.write(md);

const dir = join(ROOT, 'bench-results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'rewrite.json'), `${JSON.stringify({ date: new Date().toISOString(), machine: { cpu, cores: cpus().length, node: process.version }, rounds, rows, e9patchBash: E9PATCH_BASH }, null, 2)}\n`);
process.stderr.write(`bench: wrote ${join('bench-results', 'rewrite.json')}\n`);
