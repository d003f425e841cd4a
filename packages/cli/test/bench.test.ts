// `ringshift bench --quick`: the whole bench runs once, short, as CI does (it must complete; no
// figure is checked against a threshold), and the report has its structure: every section, the
// machine described, the files written, and per-operation counts that follow from what each
// nanobenchmark does. Bad options are one line and exit 2.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from './support/cli';

const out = mkdtempSync(join(tmpdir(), 'ringshift-bench-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface Op { name: string; instructions: number; exits: number; guestEvents: number; portIo: number; modelled: { total: number } }
interface Report { quick: boolean; machine: { cpu: string; cores: number; node: string; loadAverage: number[] }; sections: { id: string; ok: boolean; error?: string; data?: unknown }[] }

describe('ringshift bench --quick', () => {
  it('writes and prints a report with every section', { timeout: 240_000 }, async () => {
    const r = await run('bench', '--quick', '--out', out);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    for (const h of ['## 1. Decoder throughput', '## 2. Execution: guest MIPS', '## 3. Rewriter: throughput and coverage', '## 4. Virtualization cost']) expect(r.stdout).toContain(h);
    expect(r.stdout).toMatch(/^Machine: .+, \d+ cores, \d+ GiB, Node v\d+\.\d+\.\d+ \(.+\), load average [\d.]+ \/ [\d.]+ \/ [\d.]+/m);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toBe(r.stdout);

    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.quick).toBe(true);
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.sections.map((s) => s.id)).toEqual(['decoder', 'execution', 'rewrite', 'cost']);
    // Every peer is installed on the project's machines (iced-x86 and v86 as devDependencies,
    // QEMU by setup): a section that did not run is a failure here.
    for (const s of report.sections) expect(s.error ?? 'ok', s.id).toBe('ok');
    for (const id of ['decoder', 'execution', 'rewrite', 'cost']) {
      expect(existsSync(join(out, `${id}.json`)), id).toBe(true);
      const svg = readFileSync(join(out, `${id}.svg`), 'utf8');
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), id).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>'), id).toBe(true);
    }

    const exec = report.sections.find((s) => s.id === 'execution')!.data as { loops: { loop: string; engines: { engine: string; error?: string }[] }[]; wholeRun: { command: string; error?: string }[] };
    expect(exec.loops.map((l) => l.loop)).toEqual(['compute', 'paging']);
    for (const l of exec.loops) {
      expect(l.engines.map((e) => e.engine)).toEqual(['ringshift --backend native', 'v86 (JIT)', 'v86 (disable_jit)']);
      for (const e of l.engines) expect(e.error ?? 'ok', `${l.loop} ${e.engine}`).toBe('ok');
    }
    for (const w of exec.wholeRun) expect(w.error ?? 'ok', w.command).toBe('ok');

    const cost = report.sections.find((s) => s.id === 'cost')!.data as { backends: { backend: string; operations: Op[] }[]; comparison: { paper: string }[] };
    expect(cost.comparison.map((c) => c.paper)).toEqual(['syscall', 'in', 'cr8wr', 'call/ret', 'pgfault', 'divzero', 'ptemod']);
    const native = cost.backends.find((b) => b.backend === 'native')!;
    const op = (name: string): Op => native.operations.find((o) => o.name === name)!;
    // What each nanobenchmark does, natively: one port access for in/out, one exception for
    // pgfault/divzero/syscall, nothing of either for call/ret, and never an exit.
    expect(op('in').portIo).toBe(1);
    expect(op('out').portIo).toBe(1);
    expect(op('divzero').guestEvents).toBe(1);
    expect(op('pgfault').guestEvents).toBe(1);
    expect(op('syscall').guestEvents).toBe(1);
    expect(op('call/ret').guestEvents + op('call/ret').portIo).toBe(0);
    for (const o of native.operations) expect(o.exits, o.name).toBe(0);
    // Under the rewrite monitor IN escapes: at least one exit per operation.
    const rewrite = cost.backends.find((b) => b.backend === 'rewrite');
    if (rewrite) expect(rewrite.operations.find((o) => o.name === 'in')!.exits).toBeGreaterThanOrEqual(1);
  });

  it('rejects unknown sections and bad cost overrides in one line, exit 2', async () => {
    for (const argv of [['bench', '--only', 'decoder,nope'], ['bench', '--cost', 'vmExit=fast'], ['bench', '--cost', 'warp=3']]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });
});
