// The whole-guest oracle (ARCHITECTURE.md, "Oracles"): every example kernel, booted by QEMU's
// multiboot loader on QEMU's PC and by `ringshift run` on ours, must write the same bytes to
// COM1 and end with the same exit status. QEMU is a required tool (scripts/setup.mjs installs
// it): when it is missing this test fails rather than skipping, so a green run always means the
// comparison happened.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '@ringshift/cli';

const ROOT = join(import.meta.dirname, '../..');
const EXAMPLES = join(ROOT, 'examples');
const QEMU = 'qemu-system-i386';
/** Host seconds either side may take; the examples finish in well under one. */
const TIMEOUT_S = 60;
/**
 * Guests (examples/<guest>/) whose output holds times: nanobench prints RDTSC deltas, which
 * follow the host's clock under QEMU and the instruction count under ringshift. For these the
 * serial output is compared "with the numbers masked": every `cycles=<digits>` and
 * `per-op=<digits>` value becomes `#` on both sides first; every other byte must still match,
 * and so must the exit status.
 */
const MASKED_NUMBER_GUESTS: readonly string[] = ['nanobench'];
const maskNumbers = (serial: Buffer): Buffer =>
  Buffer.from(serial.toString('latin1').replace(/\b(cycles|per-op)=[0-9]+/g, '$1=#'), 'latin1');

/**
 * Every built multiboot example kernel: examples/<guest>/<guest>.elf (common/ and pv-common/ hold
 * no guest; *.rewritten.elf need the rewrite backend; the pv-* guests are Xen PV kernels, which
 * QEMU boots only under Xen: test/e2e/pv-examples.test.ts compares them with their native
 * counterparts instead).
 */
function exampleKernels(): string[] {
  if (!existsSync(EXAMPLES)) return [];
  return readdirSync(EXAMPLES, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== 'common' && !d.name.startsWith('pv-'))
    .flatMap((d) => readdirSync(join(EXAMPLES, d.name)).filter((f) => f.endsWith('.elf') && !f.endsWith('.rewritten.elf')).map((f) => join(EXAMPLES, d.name, f)))
    .sort();
}

/** How a guest ended, in terms both sides can express. */
type Outcome =
  | { kind: 'exit'; status: number }
  | { kind: 'shutdown' }
  | { kind: 'hang' }
  | { kind: 'other'; what: string };

interface Result {
  serial: Buffer;
  outcome: Outcome;
}

function qemuMissing(): string | undefined {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    return `${QEMU} is not installed or does not run (${r.error?.message ?? `exit ${r.status}`}): ` +
      'it is the oracle for whole-guest behaviour; `node scripts/setup.mjs` installs it (Debian package qemu-system-x86)';
  }
  return undefined;
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ringshift-qemu-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runQemu(image: string, name: string): Result {
  const out = join(dir, `${name}.qemu.serial`);
  const r = spawnSync(QEMU, [
    '-kernel', image, '-serial', `file:${out}`, '-display', 'none', '-monitor', 'none', '-no-reboot',
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-accel', 'tcg',
  ], { encoding: 'utf8', timeout: TIMEOUT_S * 1000, killSignal: 'SIGKILL' });
  const serial = existsSync(out) ? readFileSync(out) : Buffer.alloc(0);
  let outcome: Outcome;
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') outcome = { kind: 'hang' };
  else if (r.error) throw new Error(`${QEMU} failed to start: ${r.error.message}`);
  else if (r.signal) outcome = { kind: 'other', what: `killed by ${r.signal}` };
  // isa-debug-exit exits (v << 1) | 1: odd. QEMU itself exits 0 when -no-reboot turns a reset
  // (triple fault) into a shutdown, and 1 on its own errors, which print to stderr first.
  else if (r.status === 0) outcome = { kind: 'shutdown' };
  else if (errorLines(r.stderr) !== '') outcome = { kind: 'other', what: `QEMU error (exit ${r.status}): ${errorLines(r.stderr)}` };
  else outcome = { kind: 'exit', status: r.status! };
  return { serial, outcome };
}

/** QEMU's stderr without its warnings: what is left means QEMU itself failed (status 1, like a guest writing 0). */
const errorLines = (stderr: string): string => stderr.split('\n').filter((l) => l.trim() !== '' && !/: warning: /.test(l)).join(' | ');

async function runRingshift(image: string): Promise<Result> {
  let stdout = '';
  let stderrText = '';
  const serial: Buffer[] = [];
  const code = await main(['run', image, '--json', '--timeout', String(TIMEOUT_S)], {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderrText += t),
    stdoutBytes: (b) => void (stdout += Buffer.from(b).toString('utf8')),
    stderrBytes: (b) => void serial.push(Buffer.from(b)),
  });
  if (stdout === '') return { serial: Buffer.concat(serial), outcome: { kind: 'other', what: `ringshift run failed (exit ${code}): ${stderrText.trim()}` } };
  const report = JSON.parse(stdout) as { reason: string; exitCode: number; detail?: string; registers: { eip: number } };
  const outcome: Outcome =
    report.reason === 'exit' ? { kind: 'exit', status: code } :
    report.reason === 'triple-fault' ? { kind: 'shutdown' } :
    // HLT with nothing to wake the CPU: QEMU waits forever (until our timeout kills it).
    report.reason === 'halt' ? { kind: 'hang' } :
    { kind: 'other', what: `${report.reason} at eip 0x${report.registers.eip.toString(16)}${report.detail ? `: ${report.detail}` : ''}` };
  return { serial: Buffer.concat(serial), outcome };
}

describe('example kernels: ringshift run vs qemu-system-i386 -kernel', () => {
  const kernels = exampleKernels();

  it(`${QEMU} is installed (the oracle is required, never skipped)`, () => {
    const missing = qemuMissing();
    if (missing) expect.fail(missing);
  });

  it('the examples are built (make -C examples)', () => {
    expect(kernels.length, `no examples/*/*.elf under ${EXAMPLES}: run \`make -C examples\` (setup does)`).toBeGreaterThan(0);
  });

  for (const image of kernels) {
    const name = relative(EXAMPLES, image);
    const guest = name.split(/[/\\]/)[0]!;
    const masked = MASKED_NUMBER_GUESTS.includes(guest);
    it(`${name}: same serial bytes${masked ? ' (cycles= and per-op= values masked)' : ''}, same exit status`, async () => {
      await compare(image, name.replace(/[/\\]/g, '_'), masked);
    });
  }
});

/**
 * Tiny flat kernels (multiboot a.out kludge: the whole file at 1 MiB, entry after the 32-byte
 * header) for the outcomes the examples do not reach: they pin down how `ringshift run`'s
 * endings line up with QEMU's (a triple fault is QEMU's exit 0 under -no-reboot) and that the
 * a.out kludge path of both loaders agrees.
 */
describe('outcome kernels: ringshift run vs qemu-system-i386 -kernel', () => {
  const flat = (code: number[]): Uint8Array => {
    const words = [0x1badb002, 0x10000, (-(0x1badb002 + 0x10000)) >>> 0, 0x100000, 0x100000, 0, 0, 0x100020];
    const b = new Uint8Array(32 + code.length);
    words.forEach((w, i) => new DataView(b.buffer).setUint32(i * 4, w, true));
    b.set(code, 32);
    return b;
  };
  const serialOut = (bytes: number[]): number[] => [0x66, 0xba, 0xf8, 0x03, ...bytes.flatMap((x) => [0xb0, x, 0xee])];
  const cases: [string, number[]][] = [
    ['exit-0x20', [0xb0, 0x20, 0xe6, 0xf4, 0xf4]],
    ['serial-bytes-then-exit', [...serialOut([0x61, 0x00, 0xff, 0x0d, 0x0a]), 0xb0, 0x00, 0xe6, 0xf4, 0xf4]],
    ['triple-fault', [...serialOut([0x62]), 0xcc]],
  ];
  for (const [name, code] of cases) {
    it(`${name}: same serial bytes, same ending`, async () => {
      const image = join(dir, `${name}.bin`);
      writeFileSync(image, flat(code));
      await compare(image, name);
    });
  }
});

async function compare(image: string, name: string, masked = false): Promise<void> {
  const missing = qemuMissing();
  if (missing) expect.fail(missing);
  const [ours, qemu] = [await runRingshift(image), runQemu(image, name)];
  if (masked) [ours.serial, qemu.serial] = [maskNumbers(ours.serial), maskNumbers(qemu.serial)];
  expect(qemu.outcome.kind, `QEMU: ${JSON.stringify(qemu.outcome)}`).not.toBe('other');
  expect(ours.outcome, 'ringshift run outcome vs QEMU').toEqual(qemu.outcome);
  // Compared as text with escapes, so a difference shows where it is.
  expect(JSON.stringify(ours.serial.toString('latin1')), 'serial output').toBe(JSON.stringify(qemu.serial.toString('latin1')));
  expect(Buffer.compare(ours.serial, qemu.serial)).toBe(0);
}
