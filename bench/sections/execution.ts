// Section 2, execution: guest MIPS of `--backend native` against v86 (with its x86-to-wasm JIT
// and with disable_jit) on the same multiboot guest (bench/guests/loops.S: a compute-bound and
// a paging-heavy loop), and the whole-run time of `ringshift run` against qemu-system-i386
// (TCG, -kernel, isa-debug-exit) on the same image.
//
// The instruction count of a loop is ringshift's retired count for that image (the guest is
// deterministic and identical for every engine; QEMU and v86 do not count instructions the same
// way or at all), so each engine's MIPS is that count over its own time. v86 boots the ELF as
// `multiboot` with no BIOS (its loader enters the kernel in protected mode, as the multiboot
// spec says; the guest loads its own GDT), and the bench ends its run from a handler on port
// 0xF4, the port QEMU's isa-debug-exit and ringshift's use.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadGuest, runGuest } from '@ringshift/runtime';
import { buildLoops, patchLoops, type LoopName } from '../guests/params';
import { ratio, summarize, timeMs, type Summary } from '../lib/stats';
import { barChartSvg } from '../lib/svg';
import type { SectionResult } from '../lib/section';

export interface ExecutionBenchOptions {
  root: string;
  runs: number;
  warmup: number;
  iterations: Record<LoopName, number>;
  /** Also time each command on a one-iteration image, to take its start-up out (not in quick mode). */
  startup: boolean;
  log?: (line: string) => void;
}

export interface EngineResult {
  engine: string;
  /** Host ms per run (guest run only: no process start, no emulator construction). */
  ms: Summary;
  mips: number;
  /** engine MIPS / ringshift native MIPS. */
  vsRingshift: number;
  /** The engine's own instruction counter, where it has one (v86), for comparison. */
  ownCount?: number;
  error?: string;
}

export interface LoopResult {
  loop: LoopName;
  iterations: number;
  instructions: number;
  engines: EngineResult[];
}

export interface WholeRunResult {
  loop: LoopName;
  command: string;
  ms: Summary | null;
  /** The same command on the same guest with 1 iteration: process start, boot and exit. */
  startupMs: Summary | null;
  /** Guest MIPS from the difference (the loop's instructions over ms - startupMs). */
  mips: number | null;
  /** ringshift's process time / QEMU's. */
  vsQemu: number | null;
  error?: string;
}

export interface ExecutionBenchData {
  runs: number;
  warmup: number;
  loops: LoopResult[];
  wholeRun: WholeRunResult[];
  notes: string[];
}

function ringshiftRun(image: Uint8Array): { ms: number; instructions: number } {
  const g = loadGuest(image, { backend: 'native', memoryBytes: 32 << 20 });
  const { value: r, ms } = timeMs(() => runGuest(g, { timeoutMs: 600_000 }));
  if (r.reason !== 'exit' || r.exitStatus !== 1) throw new Error(`the bench guest ended with ${r.reason}${r.detail ? `: ${r.detail}` : ''}`);
  return { ms, instructions: r.instructions };
}

interface V86Like {
  add_listener(e: string, f: (...a: unknown[]) => void): void;
  run(): Promise<void> | void;
  stop(): Promise<void> | void;
  destroy(): Promise<void>;
  get_instruction_counter(): number;
  v86: { cpu: { io: { register_write(port: number, device: object, w8: (v: number) => void): void } } };
}

async function v86Run(image: Uint8Array, jit: boolean): Promise<{ ms: number; count: number }> {
  const require = createRequire(import.meta.url);
  const { V86 } = (await import('v86')) as unknown as { V86: new (o: object) => V86Like };
  const wasm = join(dirname(require.resolve('v86')), jit ? 'v86.wasm' : 'v86.wasm');
  const buffer = image.buffer.slice(image.byteOffset, image.byteOffset + image.byteLength);
  const emulator = new V86({ wasm_path: wasm, memory_size: 32 << 20, vga_memory_size: 1 << 20, multiboot: { buffer }, autostart: false, disable_jit: !jit });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('v86 did not load in 30 s')), 30_000);
      emulator.add_listener('emulator-loaded', () => { clearTimeout(t); resolve(); });
    });
    return await new Promise<{ ms: number; count: number }>((resolve, reject) => {
      let t0 = 0n;
      const t = setTimeout(() => reject(new Error('v86 did not reach port 0xF4 in 600 s')), 600_000);
      emulator.v86.cpu.io.register_write(0xf4, {}, () => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        clearTimeout(t);
        void emulator.stop();
        resolve({ ms, count: emulator.get_instruction_counter() });
      });
      t0 = process.hrtime.bigint();
      void emulator.run();
    });
  } finally {
    await emulator.destroy();
  }
}

function processRun(cmd: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const { value: r, ms } = timeMs(() => spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000, ...(env ? { env: { ...process.env, ...env } } : {}) }));
  if (r.error) throw r.error;
  // isa-debug-exit: the guest writes 0, the process exits (0 << 1) | 1.
  if (r.status !== 1) throw new Error(`${cmd} exited ${r.status}${r.signal ? ` (${r.signal})` : ''}: ${(r.stderr ?? '').trim().split('\n').slice(-1)[0] ?? ''}`);
  return ms;
}

async function repeat(runs: number, warmup: number, f: () => number | Promise<number>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await f();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) out.push(await f());
  return out;
}

export async function benchExecution(opts: ExecutionBenchOptions): Promise<ExecutionBenchData> {
  const log = opts.log ?? (() => {});
  const notes: string[] = [];
  const built = buildLoops(opts.root);
  if ('error' in built) throw new Error(built.error);
  const dir = mkdtempSync(join(tmpdir(), 'ringshift-bench-'));
  const loops: LoopResult[] = [];
  const wholeRun: WholeRunResult[] = [];
  // The bin shim runs the CLI's ahead-of-time bundle when it is up to date (packages/cli/bin/
  // bundle.mjs), else its sources through tsx: time both start-ups, the bundle only if it is there.
  const shim = (await import(pathToFileURL(join(opts.root, 'packages', 'cli', 'bin', 'bundle.mjs')).href)) as { freshBundle: () => string | null };
  const withBundle = shim.freshBundle() !== null;
  if (!withBundle) notes.push('no up-to-date CLI bundle (node scripts/build-cli.mjs builds it): `ringshift run` was timed through tsx only.');
  try {
    for (const loop of ['compute', 'paging'] as const) {
      const iterations = opts.iterations[loop];
      const image = patchLoops(built.image, loop, iterations);
      const file = join(dir, `loops-${loop}.elf`);
      writeFileSync(file, image);
      log(`bench: execution ${loop}: ringshift native`);
      let instructions = 0;
      const rs = summarize(await repeat(opts.runs, opts.warmup, () => { const r = ringshiftRun(image); instructions = r.instructions; return r.ms; }));
      const mipsOf = (ms: Summary): number => instructions / ms.median / 1000;
      const base = mipsOf(rs);
      const engines: EngineResult[] = [{ engine: 'ringshift --backend native', ms: rs, mips: base, vsRingshift: 1 }];
      for (const jit of [true, false]) {
        const engine = jit ? 'v86 (JIT)' : 'v86 (disable_jit)';
        log(`bench: execution ${loop}: ${engine}`);
        try {
          let own = 0;
          const ms = summarize(await repeat(opts.runs, opts.warmup, async () => { const r = await v86Run(image, jit); own = r.count; return r.ms; }));
          engines.push({ engine, ms, mips: mipsOf(ms), vsRingshift: mipsOf(ms) / base, ownCount: own });
        } catch (e) {
          engines.push({ engine, ms: summarize([NaN]), mips: NaN, vsRingshift: NaN, error: e instanceof Error ? e.message : String(e) });
        }
      }
      loops.push({ loop, iterations, instructions, engines });

      // Whole runs, process start included: what a user waits for. The same command on a
      // one-iteration image measures the start, boot and exit alone.
      log(`bench: execution ${loop}: whole runs (qemu-system-i386, ringshift run)`);
      const startFile = join(dir, `loops-${loop}-1.elf`);
      writeFileSync(startFile, patchLoops(built.image, loop, 1));
      const qemuArgs = (f: string): string[] => ['-kernel', f, '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-display', 'none', '-serial', 'null', '-monitor', 'none', '-no-reboot', '-accel', 'tcg', '-m', '32'];
      const bin = join(opts.root, 'packages', 'cli', 'bin', 'ringshift.mjs');
      const rsArgs = (f: string): string[] => [bin, 'run', f, '--serial', join(dir, 'serial.txt')];
      let qemuMs: number | null = null;
      const commands: [string, string, (f: string) => string[], NodeJS.ProcessEnv?][] = [['qemu-system-i386 -accel tcg -kernel', 'qemu-system-i386', qemuArgs]];
      if (withBundle) commands.push(['ringshift run (node, bundle)', process.execPath, rsArgs]);
      commands.push(['ringshift run (node + tsx)', process.execPath, rsArgs, { RINGSHIFT_NO_BUNDLE: '1' }]);
      for (const [command, exe, args, env] of commands) {
        try {
          const ms = summarize(await repeat(opts.runs, opts.warmup, () => processRun(exe, args(file), env)));
          const startupMs = opts.startup ? summarize(await repeat(opts.runs, 0, () => processRun(exe, args(startFile), env))) : null;
          const net = startupMs === null ? 0 : ms.median - startupMs.median;
          if (qemuMs === null) qemuMs = ms.median;
          wholeRun.push({ loop, command, ms, startupMs, mips: net > 0 ? instructions / net / 1000 : null, vsQemu: ms.median / qemuMs });
        } catch (e) {
          wholeRun.push({ loop, command, ms: null, startupMs: null, mips: null, vsQemu: null, error: e instanceof Error ? e.message : String(e) });
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { runs: opts.runs, warmup: opts.warmup, loops, wholeRun, notes };
}

const spread = (s: Summary): string => `${(100 * s.relIqr).toFixed(0)}%`;

export function executionMarkdown(d: ExecutionBenchData): string {
  const out = ['## 2. Execution: guest MIPS', ''];
  out.push(`Guest: bench/guests/loops.S (multiboot ELF32, own GDT, ends through port 0xF4). ${d.warmup} warm-up run(s), then ${d.runs} timed run(s) per engine; MIPS = ringshift's retired-instruction count for the image / the median run time (guest run only: no process start, no emulator construction).`, '');
  out.push('| loop | iterations | instructions | engine | median ms | spread (IQR/median) | MIPS | vs ringshift native |');
  out.push('|---|---:|---:|---|---:|---:|---:|---:|');
  for (const l of d.loops) {
    for (const e of l.engines) {
      if (e.error) out.push(`| ${l.loop} | ${l.iterations} | ${l.instructions} | ${e.engine} | failed: ${e.error} | | | |`);
      else out.push(`| ${l.loop} | ${l.iterations} | ${l.instructions} | ${e.engine} | ${e.ms.median.toFixed(1)} | ${spread(e.ms)} | ${e.mips.toFixed(1)} | ${ratio(e.vsRingshift)} |`);
    }
  }
  const counts = d.loops.flatMap((l) => l.engines.filter((e) => e.ownCount !== undefined && !e.error).map((e) => `${l.loop} ${e.engine} ${e.ownCount}`));
  if (counts.length) out.push('', `v86's own instruction counter, for comparison with the count above (it need not count the same way): ${counts.join('; ')}.`);
  out.push('', '### Whole run, process start included', '');
  out.push('startup = the same command on the same guest with one iteration (process start, boot, exit); MIPS = the loop\'s instructions over (median − startup), where that difference is positive.', '');
  out.push('| loop | command | median ms | spread | startup ms | MIPS (net of startup) | time vs QEMU |', '|---|---|---:|---:|---:|---:|---:|');
  for (const w of d.wholeRun) {
    if (w.ms === null) out.push(`| ${w.loop} | ${w.command} | failed: ${w.error ?? ''} | | | | |`);
    else out.push(`| ${w.loop} | ${w.command} | ${w.ms.median.toFixed(0)} | ${spread(w.ms)} | ${w.startupMs?.median.toFixed(0) ?? '-'} | ${w.mips === null ? '-' : w.mips.toFixed(1)} | ${w.vsQemu === null ? '-' : ratio(w.vsQemu)} |`);
  }
  for (const n of d.notes) out.push('', `Note: ${n}`);
  out.push('');
  return out.join('\n');
}

export async function executionSection(opts: ExecutionBenchOptions): Promise<SectionResult> {
  const data = await benchExecution(opts);
  const engines = data.loops[0]?.engines.map((e) => e.engine) ?? [];
  const svg = barChartSvg({
    title: 'Guest MIPS on the same multiboot guest', unit: 'million guest instructions per second', series: engines, log: true,
    rows: data.loops.map((l) => ({ label: l.loop, values: l.engines.map((e) => (e.error ? null : e.mips)) })),
  });
  return { id: 'execution', title: 'Execution', markdown: executionMarkdown(data), data, charts: [{ file: 'execution.svg', svg }] };
}
