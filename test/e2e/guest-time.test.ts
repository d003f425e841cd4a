// Guest time under the rewrite backend (issue 9; docs/rewrite-backend.md, "Guest time"): the
// guest sees exactly the instructions it would see natively retire, although the CPU retires
// the stubs' plumbing too. Checked per serial byte (each is written at the same guest time under
// native and rewrite), on the final count, and through `ringshift compare` with hvm as well.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadGuest, runGuest, type BackendName, type GuestReport } from '@ringshift/runtime';
import { main } from '../../packages/cli/src/main';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const GUESTS = ['hello', 'interrupts', 'sensitive', 'paging', 'usermode', 'nanobench'];

interface Run { serial: number[]; seenAt: number[]; report: GuestReport }

function run(image: Uint8Array, backend: BackendName, original?: Uint8Array): Run {
  const serial: number[] = [], seenAt: number[] = [];
  // eslint-disable-next-line prefer-const
  let g: ReturnType<typeof loadGuest>;
  g = loadGuest(image, {
    backend,
    machine: { serialOut: (b) => { const c = g.machine.cpu; serial.push(b); seenAt.push(c.retired - c.plumbingRetired); } },
    cmdline: 'guest',
    ...(original === undefined ? {} : { original }),
  });
  return { serial, seenAt, report: runGuest(g, { maxInstructions: 200_000_000, timeoutMs: 120_000 }) };
}

const read = (f: string): Uint8Array => {
  expect(existsSync(f), 'run `make -C examples`').toBe(true);
  return new Uint8Array(readFileSync(f));
};

describe('rewrite: the guest sees the native instruction count', () => {
  it.each(GUESTS)('%s', (g) => {
    const original = read(`${examples}${g}/${g}.elf`);
    const native = run(original, 'native');
    const rewrite = run(read(`${examples}${g}/${g}.rewritten.elf`), 'rewrite', original);
    expect(native.report.reason).toBe('exit');
    expect(rewrite.report.exitStatus).toBe(native.report.exitStatus);
    expect(Buffer.from(rewrite.serial).toString('latin1')).toBe(Buffer.from(native.serial).toString('latin1'));
    // Every byte is written at the same guest time: the first one that is not names where.
    const first = native.seenAt.findIndex((t, i) => rewrite.seenAt[i] !== t);
    expect(first, `serial byte ${first}: native at ${native.seenAt[first]}, rewrite at ${rewrite.seenAt[first]}`).toBe(-1);
    expect(native.report.guestInstructions).toBe(native.report.instructions);
    expect(rewrite.report.guestInstructions).toBe(native.report.instructions);
    expect(rewrite.report.instructions).toBeGreaterThan(rewrite.report.guestInstructions);
    // sensitive's misses (#GP-trapped `out`, INT3 trap sites) and its faulting escaped segment
    // loads take the monitor's corrections: an emulated instruction retires unless it faults.
    if (g === 'sensitive') expect(rewrite.report.stats!.byVia.trap).toBeGreaterThan(1000);
  }, 120_000);
});

describe('ringshift compare --backends native,rewrite,hvm', () => {
  it.each(GUESTS)('%s: equal, guest time included', async (g) => {
    const r = { stdout: '', stderr: '' };
    const code = await main(['compare', `${examples}${g}/${g}.elf`, '--backends', 'native,rewrite,hvm'], {
      stdout: (t) => void (r.stdout += t), stderr: (t) => void (r.stderr += t), stdoutBytes: () => {}, stderrBytes: () => {},
    });
    expect(r.stderr + r.stdout).not.toMatch(/differ/i);
    expect(r.stdout).toMatch(/\nequal: the same serial output \(\d+ bytes\), exit status, guest time \(\d+ instructions seen\) and final registers/);
    expect(code).toBe(0);
  }, 120_000);
});
