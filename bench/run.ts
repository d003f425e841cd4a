// `pnpm bench` / `ringshift bench`: runs the sections in order, writes bench-results/ (report.md,
// report.json, one JSON and one SVG per section) and returns the Markdown. A section that cannot
// run (a peer missing, a guest not built) says so in its place; the others still run.
// Full mode: warm-up and several timed runs per figure; quick mode (CI): one short run each, to
// prove every part still works, not to measure anything.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CostModel } from '@ringshift/runtime';
import { describeMachine, machineLine, type MachineDescription } from './lib/machine';
import type { SectionResult } from './lib/section';
import { costSection } from './sections/cost';
import { DEFAULT_DECODER_INPUT, decoderSection } from './sections/decoder';
import { executionSection } from './sections/execution';
import { rewriteSection } from './sections/rewrite';

export const BENCH_ROOT = join(import.meta.dirname, '..');
export const SECTION_IDS = ['decoder', 'execution', 'rewrite', 'cost'] as const;
export type SectionId = (typeof SECTION_IDS)[number];
const TITLES: Record<SectionId, string> = { decoder: '1. Decoder throughput', execution: '2. Execution: guest MIPS', rewrite: '3. Rewriter: throughput and coverage', cost: '4. Virtualization cost: nanobench per operation' };

export interface RunBenchOptions {
  quick: boolean;
  /** Output directory (default bench-results/ at the repository root). */
  outDir?: string;
  sections?: readonly SectionId[];
  cost?: Partial<CostModel>;
  log?: (line: string) => void;
}

export interface BenchReport {
  date: string;
  quick: boolean;
  machine: MachineDescription;
  sections: { id: SectionId; ok: boolean; error?: string; seconds: number; data?: unknown }[];
}

export interface BenchOutcome {
  markdown: string;
  report: BenchReport;
  outDir: string;
  files: string[];
}

async function runSection(id: SectionId, o: RunBenchOptions, log: (l: string) => void): Promise<SectionResult> {
  const q = o.quick;
  const root = BENCH_ROOT;
  switch (id) {
    case 'decoder':
      return decoderSection({ ...DEFAULT_DECODER_INPUT, rounds: q ? 2 : 15, ...(q ? { maxBytes: 256 << 10 } : {}) });
    case 'execution':
      return executionSection({ root, runs: q ? 1 : 5, warmup: q ? 0 : 1, iterations: q ? { compute: 200_000, paging: 20_000 } : { compute: 20_000_000, paging: 1_000_000 }, startup: !q, log });
    case 'rewrite':
      return rewriteSection({ root, rounds: q ? 1 : 5, ...(q ? {} : { busybox: join(root, 'test/fixtures-cache/busybox') }), log });
    case 'cost':
      return costSection({ root, runs: q ? 1 : 5, warmup: q ? 0 : 1, ...(o.cost ? { model: o.cost } : {}), log });
  }
}

/** Writes through a temporary file, so a reader never sees half a report. */
function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

export async function runBench(o: RunBenchOptions): Promise<BenchOutcome> {
  const log = o.log ?? (() => {});
  const outDir = o.outDir ?? join(BENCH_ROOT, 'bench-results');
  const ids = o.sections ?? SECTION_IDS;
  const machine = describeMachine();
  const report: BenchReport = { date: new Date().toISOString(), quick: o.quick, machine, sections: [] };
  const parts: string[] = [
    `# ringshift bench${o.quick ? ' (quick: one short run each; figures not meaningful)' : ''}`,
    '',
    `${machineLine(machine)}. ${report.date}.`,
    '',
    'Every figure is a ratio against a peer measured in the same run on this machine.',
    '',
  ];
  const results: SectionResult[] = [];
  for (const id of SECTION_IDS.filter((s) => ids.includes(s))) {
    log(`bench: section ${id}`);
    const t0 = process.hrtime.bigint();
    try {
      const r = await runSection(id, o, log);
      results.push(r);
      parts.push(r.markdown);
      report.sections.push({ id, ok: true, seconds: Number(process.hrtime.bigint() - t0) / 1e9, data: r.data });
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      parts.push(`## ${TITLES[id]}\n\nNot run: ${error}\n`);
      report.sections.push({ id, ok: false, error, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    }
  }
  const markdown = parts.join('\n');
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  const put = (name: string, text: string): void => { writeAtomic(join(outDir, name), text); files.push(name); };
  for (const r of results) {
    put(`${r.id}.json`, `${JSON.stringify({ date: report.date, quick: o.quick, machine, ...(r.data as object) }, null, 2)}\n`);
    for (const c of r.charts) put(c.file, c.svg);
  }
  put('report.json', `${JSON.stringify(report, null, 2)}\n`);
  put('report.md', markdown.endsWith('\n') ? markdown : `${markdown}\n`);
  return { markdown, report, outDir, files };
}
