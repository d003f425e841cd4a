// `ringshift compare`: hello is identical under native and rewrite (the image rewritten in
// memory), sensitive differs under deprivileged with the first divergence shown, and bad input
// is one line and exit 2 like every other command's.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/main';
import { diffSerial } from '../src/commands/compare';

const ROOT = join(import.meta.dirname, '../../..');
const HELLO = join(ROOT, 'examples/hello/hello.elf');
const HELLO_REWRITTEN = join(ROOT, 'examples/hello/hello.rewritten.elf');
const SENSITIVE = join(ROOT, 'examples/sensitive/sensitive.elf');

interface Run { code: number; stdout: string; stderr: string; bytes: number }

async function run(...argv: string[]): Promise<Run> {
  const r: Run = { code: 0, stdout: '', stderr: '', bytes: 0 };
  r.code = await main(argv, {
    stdout: (t) => void (r.stdout += t),
    stderr: (t) => void (r.stderr += t),
    // Guest serial output must not reach the terminal: compare only diffs it.
    stdoutBytes: (b) => void (r.bytes += b.length),
    stderrBytes: (b) => void (r.bytes += b.length),
  });
  return r;
}

function expectOneLineError(r: Run, message: RegExp): void {
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr.trimEnd()).toMatch(message);
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ringshift-compare-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ringshift compare: equal', () => {
  it('hello under native and rewrite (the default): exit 0, everything equal', async () => {
    const r = await run('compare', HELLO);
    expect(r.stderr).toBe('');
    expect(r.bytes).toBe(0);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^.*hello\.elf: native, rewrite \(rewritten in memory: \d+ sites, \d+ patched with a jump, \d+ left to trap\)\n/);
    expect(r.stdout).toMatch(/\n {2}native {3}exit status 1 \(guest wrote 0\); \d+ instructions; 22 serial bytes\n/);
    const native = /\n {2}native {3}exit status 1 \(guest wrote 0\); (\d+) instructions; 22 serial bytes\n/.exec(r.stdout)![1];
    // The rewrite backend retires more instructions, but the guest sees as many as under native.
    expect(r.stdout).toMatch(new RegExp(`\\n {2}rewrite {2}exit status 1 \\(guest wrote 0\\); \\d+ instructions \\(x1\\.\\d{3}, ${native} seen by the guest\\); 22 serial bytes; \\d+ monitor exits \\(\\d+ per million instructions, 0 misses\\)\\n`));
    expect(r.stdout).toContain(`\nequal: the same serial output (22 bytes), exit status, guest time (${native} instructions seen) and final registers`);
  });

  it('--json: the runs, their exits and no differences', async () => {
    const r = await run('compare', HELLO, '--backends', 'native,rewrite', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ equal: true, reference: 'native', differences: [] });
    expect(j.runs.map((x: { backend: string }) => x.backend)).toEqual(['native', 'rewrite']);
    const [native, rewrite] = j.runs;
    expect(native).toMatchObject({ reason: 'exit', exitStatus: 1, exitCode: 1, serialBytes: 22 });
    expect(native.exits).toBeUndefined();
    expect(rewrite.registers).toEqual(native.registers);
    expect(rewrite.instructions).toBeGreaterThan(native.instructions);
    expect(rewrite.guestInstructions).toBe(native.instructions);
    expect(native.guestInstructions).toBe(native.instructions);
    expect(rewrite.exits.byVia.escape).toBeGreaterThan(0);
    expect(j.rewrite.patched).toBeGreaterThan(0);
  });
});

describe('ringshift compare: different', () => {
  it('sensitive under native and deprivileged: exit 1 with the first divergence of each kind', async () => {
    const r = await run('compare', SENSITIVE, '--backends', 'native,deprivileged');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    const out = r.stdout;
    // The guest's qemu_exit(1) after its failed checks.
    expect(out).toMatch(/\ndeprivileged vs native: exit differs: native exit status 1, deprivileged exit status 3\n/);
    // SGDT is the first thing that comes out different: it reveals the monitor's table.
    const serial = /\ndeprivileged vs native: serial output differs at byte (\d+) \(line (\d+), column (\d+)\): native 0x3d '=', deprivileged 0x4f 'O'; \d+ and \d+ bytes in all\n/.exec(out);
    expect(serial, out).not.toBeNull();
    const [, offset, line] = serial!;
    expect(Number(offset)).toBeGreaterThan(0);
    expect(out).toContain(`  native       >${line!.padStart(5)} |   sgdt: base = gdt, limit 57\n`);
    expect(out).toContain(`  deprivileged >${line!.padStart(5)} |   sgdt: base OTHER, limit 57\n`);
    expect(out).toMatch(/ {2}deprivileged {6}\d \| \[ring 0: descriptor tables\]\n/);
    expect(out).toMatch(/\ndeprivileged vs native: final registers differ: .*eax 00000000 -> 00000001/);
    expect(out).toMatch(/\ndeprivileged vs native: guest time differs: the guest saw \d+ instructions retire under native, \d+ under deprivileged \(its TSC and timers follow this count\)\n/);
    expect(out).toMatch(/\ndifferent: exit, serial, registers, guest-time\n$/);
  });

  it('--json: the serial divergence with its bytes and context', async () => {
    const r = await run('compare', SENSITIVE, '--backends', 'native,deprivileged', '--json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.equal).toBe(false);
    const serial = j.differences.find((d: { kind: string }) => d.kind === 'serial');
    expect(serial).toMatchObject({ backend: 'deprivileged', against: 'native', bytes: [0x3d, 0x4f] });
    expect(serial.context[0].find((l: { line: number }) => l.line === serial.line).text).toBe('  sgdt: base = gdt, limit 57');
    expect(j.differences.find((d: { kind: string }) => d.kind === 'exit').values).toEqual([
      { reason: 'exit', exitCode: 1 }, { reason: 'exit', exitCode: 3 },
    ]);
  });
});

describe('diffSerial', () => {
  const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

  it('equal outputs: null', () => {
    expect(diffSerial(bytes('a\r\nb\r\n'), bytes('a\r\nb\r\n'))).toBeNull();
  });

  it('one output a prefix of the other: the offset where the shorter ends', () => {
    const d = diffSerial(bytes('one\r\ntwo\r\n'), bytes('one\r\ntwo\r\nthree\r\n'))!;
    expect(d).toMatchObject({ offset: 10, line: 3, column: 1, bytes: [null, 0x74], lengths: [10, 17] });
    expect(d.context[0]).toEqual([{ line: 1, text: 'one' }, { line: 2, text: 'two' }, { line: 3, text: '' }]);
    expect(d.context[1]).toEqual([{ line: 1, text: 'one' }, { line: 2, text: 'two' }, { line: 3, text: 'three' }]);
  });

  it('context: two lines before, one after; control bytes escaped', () => {
    const d = diffSerial(bytes('1\n2\n3\n4\x01x\n5\n6\n'), bytes('1\n2\n3\n4\x01y\n5\n6\n'))!;
    expect(d).toMatchObject({ offset: 8, line: 4, column: 3 });
    expect(d.context[0].map((l) => l.text)).toEqual(['2', '3', '4\\x01x', '5']);
  });
});

describe('ringshift compare: bad input (exit 2, one line)', () => {
  it('a missing file', async () => {
    expectOneLineError(await run('compare', join(dir, 'nope.elf')), /^ringshift: cannot read .*nope\.elf: no such file$/);
  });

  it('not a kernel', async () => {
    const path = join(dir, 'junk.bin');
    writeFileSync(path, 'not an ELF file at all');
    expectOneLineError(await run('compare', path, '--backends', 'native,deprivileged'), /^ringshift: .*junk\.bin \(native\): /);
    expectOneLineError(await run('compare', path), /^ringshift: .*junk\.bin: /);
  });

  it.runIf(existsSync(HELLO_REWRITTEN))('an image already patched by ringshift rewrite: pass the original', async () => {
    expectOneLineError(await run('compare', HELLO_REWRITTEN), /carries a patch map .*: pass the original image/);
  });

  it('bad --backends', async () => {
    expectOneLineError(await run('compare', HELLO, '--backends', 'native'), /name two or more backends/);
    expectOneLineError(await run('compare', HELLO, '--backends', 'native,xen'), /unknown backend 'xen' \(expected native, rewrite, deprivileged, hvm, pv\)/);
    // pv is a backend, but for Xen PV kernels only: a multiboot kernel is bad input for it.
    expectOneLineError(await run('compare', HELLO, '--backends', 'native,pv'), /\(pv\): --backend pv runs Xen PV kernels/);
    expectOneLineError(await run('compare', HELLO, '--backends', 'native,native'), /native is named twice/);
  });

  it('bad limits, unknown options', async () => {
    expectOneLineError(await run('compare', HELLO, '--max-instructions', '0'), /invalid --max-instructions '0'/);
    expectOneLineError(await run('compare', HELLO, '--timeout', 'soon'), /invalid --timeout 'soon'/);
    expectOneLineError(await run('compare', HELLO, '--bogus'), /Unknown argument: bogus/i);
  });
});

describe('ringshift compare: limits', () => {
  it('--max-instructions applies to each run: hello cut at 300 instructions ends differently', async () => {
    const r = await run('compare', HELLO, '--max-instructions', '300', '--json');
    const j = JSON.parse(r.stdout);
    expect(j.runs.map((x: { reason: string }) => x.reason)).toEqual(['budget', 'budget']);
    expect(j.runs.map((x: { instructions: number }) => x.instructions)).toEqual([300, 300]);
    // rewrite needs more instructions for the same work: the two stop at different points.
    expect(r.code).toBe(1);
  });
});
