// `ringshift run`: the example kernel end to end, every outcome's exit status (on tiny kernels
// built here with the multiboot a.out kludge, so that each is a few bytes of code), and the
// bad-input errors, which are one line and exit 2 like every other command's.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/main';
import { EXIT_HALT, EXIT_LIMIT, EXIT_TRIPLE_FAULT, EXIT_UNSUPPORTED, exitCodeOf } from '../src/commands/run';

const ROOT = join(import.meta.dirname, '../../..');
const HELLO = join(ROOT, 'examples/hello/hello.elf');
const BIN = join(ROOT, 'packages/cli/bin/ringshift.mjs');
const HELLO_SERIAL = 'hello from ringshift\r\n';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: number[];
  stderrBytes: number[];
}

async function run(...argv: string[]): Promise<Run> {
  const r: Run = { code: 0, stdout: '', stderr: '', stdoutBytes: [], stderrBytes: [] };
  r.code = await main(argv, {
    stdout: (t) => void (r.stdout += t),
    stderr: (t) => void (r.stderr += t),
    stdoutBytes: (b) => void r.stdoutBytes.push(...b),
    stderrBytes: (b) => void r.stderrBytes.push(...b),
  });
  return r;
}

function expectOneLineError(r: Run, message: RegExp): void {
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stdoutBytes).toEqual([]);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr.trimEnd()).toMatch(message);
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ringshift-run-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tempFile(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/**
 * A flat multiboot kernel: a header with the a.out kludge (flag bit 16) that loads the whole
 * file at 1 MiB and enters right after the 32-byte header, then `code`.
 */
function kernel(name: string, code: number[]): string {
  const words = [0x1badb002, 0x10000, (-(0x1badb002 + 0x10000)) >>> 0, 0x100000, 0x100000, 0, 0, 0x100020];
  const b = new Uint8Array(32 + code.length);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w, true));
  b.set(code, 32);
  return tempFile(name, b);
}

const HLT = [0xf4];
/** mov al, v; out 0xf4, al (isa-debug-exit); hlt. */
const exitWith = (v: number): number[] => [0xb0, v, 0xe6, 0xf4, ...HLT];
/** mov dx, 0x3f8; then mov al, b; out dx, al per byte. */
const serial = (bytes: number[]): number[] => [0x66, 0xba, 0xf8, 0x03, ...bytes.flatMap((b) => [0xb0, b, 0xee])];

/**
 * Echoes every byte COM1 has received, plus one, then exits 0: poll LSR.DR (0x3FD bit 0),
 * read RBR, increment, write THR (16550A datasheet, registers 0 and 5).
 */
const ECHO_PLUS_ONE = [
  0x66, 0xba, 0xfd, 0x03, // mov dx, 0x3fd
  0xec, // loop: in al, dx
  0xa8, 0x01, // test al, 1
  0x74, 0x0e, // jz done
  0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
  0xec, // in al, dx
  0xfe, 0xc0, // inc al
  0xee, // out dx, al
  0x66, 0xba, 0xfd, 0x03, // mov dx, 0x3fd
  0xeb, 0xed, // jmp loop
  ...exitWith(0), // done
];

describe('ringshift run --input and --memory', () => {
  it('--input STR: the guest receives the bytes on COM1', async () => {
    const r = await run('run', kernel('echo.bin', ECHO_PLUS_ONE), '--input', 'abc');
    expect(Buffer.from(r.stdoutBytes).toString('latin1')).toBe('bcd');
    expect(r.code).toBe(1);
  });

  it('--memory MiB sizes RAM, and bad values are bad input', async () => {
    const r = await run('run', HELLO, '--memory', '16', '--json');
    expect(r.code).toBe(1);
    expectOneLineError(await run('run', HELLO, '--memory', '0'), /invalid --memory '0'/);
    expectOneLineError(await run('run', HELLO, '--memory', '4096'), /invalid --memory '4096': at most 3072 MiB/);
  });
});

describe('ringshift run examples/hello/hello.elf', () => {
  it('streams the serial output to stdout, reports on stderr, exits with the guest status', async () => {
    const r = await run('run', HELLO);
    expect(Buffer.from(r.stdoutBytes).toString('latin1')).toBe(HELLO_SERIAL);
    expect(r.stderr).toMatch(/^ringshift run: exit, status 1 \(guest wrote 0\): the guest exited through isa-debug-exit\n/);
    expect(r.stderr).toMatch(/ eax=[0-9a-f]{8} /);
    expect(r.code).toBe(1);
  });

  it('--json: the report alone on stdout, serial on stderr', async () => {
    const r = await run('run', HELLO, '--json');
    expect(r.code).toBe(1);
    expect(Buffer.from(r.stderrBytes).toString('latin1')).toBe(HELLO_SERIAL);
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ reason: 'exit', exitStatus: 1, exitCode: 1, backend: 'native', entry: 0x100010, serialBytes: HELLO_SERIAL.length });
    expect(report.instructions).toBeGreaterThan(100);
    expect(report.registers).toMatchObject({ cs: 0x08 });
  });

  it('--serial FILE: written whole at the end (temp file + rename), nothing on stdout', async () => {
    const out = join(dir, 'serial.txt');
    const r = await run('run', HELLO, '--serial', out, '--json');
    expect(r.code).toBe(1);
    expect(readFileSync(out, 'latin1')).toBe(HELLO_SERIAL);
    expect(r.stderrBytes).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(JSON.parse(r.stdout)).toMatchObject({ reason: 'exit' });
  });

  it('--trace-last N puts the last N instructions in the report', async () => {
    const r = await run('run', HELLO, '--trace-last', '5', '--json');
    const report = JSON.parse(r.stdout) as { lastInstructions: { address: number; text: string }[] };
    expect(report.lastInstructions).toHaveLength(5);
    expect(report.lastInstructions.at(-1)!.text).toMatch(/^out /);
  });

  it('the real bin shim: exit status 1 as QEMU gives it, serial bytes on stdout', () => {
    const p = spawnSync(process.execPath, [BIN, 'run', HELLO], { encoding: 'latin1', timeout: 60_000 });
    expect(p.status).toBe(1);
    expect(p.stdout).toBe(HELLO_SERIAL);
    expect(p.stderr).toMatch(/^ringshift run: exit/);
  });
});

describe('exit status', () => {
  it('maps each run outcome (the table in packages/cli/README.md)', () => {
    expect(exitCodeOf({ reason: 'exit', exitStatus: 1 })).toBe(1);
    expect(exitCodeOf({ reason: 'exit', exitStatus: (0x41 << 1) | 1 })).toBe(0x83);
    expect(exitCodeOf({ reason: 'exit', exitStatus: (0x80 << 1) | 1 })).toBe(1); // 8 bits, as the OS truncates QEMU's
    expect(exitCodeOf({ reason: 'halt' })).toBe(4);
    expect(exitCodeOf({ reason: 'triple-fault' })).toBe(5);
    expect(exitCodeOf({ reason: 'budget' })).toBe(6);
    expect(exitCodeOf({ reason: 'timeout' })).toBe(6);
    expect(exitCodeOf({ reason: 'unsupported' })).toBe(7);
    expect([EXIT_HALT, EXIT_TRIPLE_FAULT, EXIT_LIMIT, EXIT_UNSUPPORTED]).toEqual([4, 5, 6, 7]);
  });

  it('guest statuses: (v << 1) | 1, low 8 bits', async () => {
    for (const [v, code] of [[0, 1], [1, 3], [0x20, 0x41], [0x7f, 0xff], [0x80, 1]] as const) {
      const r = await run('run', kernel(`exit-${v}.bin`, exitWith(v)));
      expect(r.code, `guest value ${v}`).toBe(code);
    }
  });

  it('serial bytes pass through unchanged, including non-ASCII ones', async () => {
    const r = await run('run', kernel('bytes.bin', [...serial([0x61, 0x00, 0xff, 0xc3, 0x0a]), ...exitWith(0)]));
    expect(r.stdoutBytes).toEqual([0x61, 0x00, 0xff, 0xc3, 0x0a]);
    expect(r.code).toBe(1);
  });

  it('halt with IF = 0 exits 4', async () => {
    const r = await run('run', kernel('halt.bin', [0xfa, 0xf4]));
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^ringshift run: halt: /);
  });

  it('a triple fault exits 5 (int3 with no IDT)', async () => {
    const r = await run('run', kernel('triple.bin', [0xcc]), '--json');
    expect(r.code).toBe(5);
    expect(JSON.parse(r.stdout)).toMatchObject({ reason: 'triple-fault', exitCode: 5 });
  });

  it('--max-instructions and --timeout end a spinning guest with 6', async () => {
    const spin = kernel('spin.bin', [0xeb, 0xfe]);
    const b = await run('run', spin, '--max-instructions', '1000', '--json');
    expect(b.code).toBe(6);
    expect(JSON.parse(b.stdout)).toMatchObject({ reason: 'budget', instructions: 1000 });
    const t = await run('run', spin, '--timeout', '0.2', '--json');
    expect(t.code).toBe(6);
    expect(JSON.parse(t.stdout)).toMatchObject({ reason: 'timeout' });
  });

  it('something the emulator does not implement exits 7 and names it', async () => {
    // PIT control word: counter 0, lobyte/hibyte, mode 1 (one-shot), which the 8254 model lacks.
    const r = await run('run', kernel('pit.bin', [0xb0, 0x32, 0xe6, 0x43, 0xf4]));
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/^ringshift run: unsupported: /);
    expect(r.stderr).toMatch(/mode 1/);
  });
});

describe('bad input: one line on stderr, exit 2, nothing run', () => {
  const hello = readFileSync(HELLO);

  it('missing file, directory', async () => {
    expectOneLineError(await run('run', join(dir, 'nope.elf')), /^ringshift: cannot read .*nope\.elf: no such file$/);
    expectOneLineError(await run('run', dir), /^ringshift: cannot read .*: is a directory$/);
  });

  it('not ELF, ELF64, no multiboot header, bad checksum', async () => {
    expectOneLineError(await run('run', tempFile('text.txt', 'just some text\n')), /^ringshift: .*text\.txt: no multiboot header in file \(not ELF\)/);
    if (existsSync('/bin/ls')) expectOneLineError(await run('run', '/bin/ls'), /^ringshift: \/bin\/ls: ELF64 image without a multiboot header/);
    const e64 = Uint8Array.from(hello);
    e64[4] = 2;
    expectOneLineError(await run('run', tempFile('e64.elf', e64)), /^ringshift: .*e64\.elf: ELF64 image: a multiboot kernel must be ELF32 i386/);
    const noHeader = Uint8Array.from(hello);
    noHeader.fill(0, 0x1000, 0x100c);
    expectOneLineError(await run('run', tempFile('nohdr.elf', noHeader)), /^ringshift: .*nohdr\.elf: no multiboot header in ELF image/);
    const badSum = Uint8Array.from(hello);
    badSum[0x1008] ^= 1;
    expectOneLineError(await run('run', tempFile('badsum.elf', badSum)), /has a bad checksum/);
  });

  it('truncated images', async () => {
    expectOneLineError(await run('run', tempFile('cut1.elf', hello.subarray(0, 0x1100))), /^ringshift: .*cut1\.elf: file is truncated: segment 0 needs bytes 0x1000-0x1[0-9a-f]{3}, the file has 4352$/);
    expectOneLineError(await run('run', tempFile('cut2.elf', hello.subarray(0, 0x1008))), /file is truncated: multiboot header at file offset 0x1000 is cut off after 8 of 12 bytes/);
    expectOneLineError(await run('run', tempFile('cut3.elf', hello.subarray(0, 40))), /no multiboot header in ELF image/);
  });

  it('backends other than native, bad numbers', async () => {
    expectOneLineError(await run('run', HELLO, '--backend', 'rewrite'), /^ringshift: .*hello\.elf: no \.ringshift\.patchmap section: this is not an image patched by `ringshift rewrite`/);
    expectOneLineError(await run('run', HELLO, '--backend', 'hvm', '--hvm-controls', 'bogus'), /^ringshift: unknown VM-execution control 'bogus' in --hvm-controls; valid names: .*hlt-exiting/);
    expectOneLineError(await run('run', HELLO, '--hvm-controls', 'ept=off'), /--hvm-controls applies to --backend hvm only, not native/);
    expectOneLineError(await run('run', HELLO, '--backend', 'qemu'), /^ringshift: unknown --backend 'qemu': expected native/);
    expectOneLineError(await run('run', HELLO, '--max-instructions', '0'), /invalid --max-instructions '0'/);
    expectOneLineError(await run('run', HELLO, '--timeout', 'soon'), /invalid --timeout 'soon': expected a positive number of seconds/);
    expectOneLineError(await run('run'), /^ringshift: Not enough non-option arguments/);
    expectOneLineError(await run('run', HELLO, '--bogus'), /^ringshift: Unknown argument: bogus/);
  });

  it('an unwritable --serial FILE is bad input too, after the run', async () => {
    const r = await run('run', HELLO, '--serial', join(dir, 'no/such/dir/out.txt'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ringshift: cannot write --serial .*out\.txt: ENOENT\n$/);
  });
});

describe('ringshift run --backend pv (examples/pv-hello)', () => {
  const PV_HELLO = join(ROOT, 'examples/pv-hello/pv-hello.elf');
  const stats = async (...extra: string[]): Promise<{ r: Run; report: { shutdown?: string; stats: { byReason: Record<string, number> } } }> => {
    const r = await run('run', PV_HELLO, '--backend', 'pv', '--json', '--stats', ...extra);
    return { r, report: JSON.parse(r.stdout) as { shutdown?: string; stats: { byReason: Record<string, number> } } };
  };

  it('--pv-domain domU boots an unprivileged guest: output through the console ring, not console_io', async () => {
    const dom0 = await stats();
    const domU = await stats('--pv-domain', 'domU');
    const explicit = await stats('--pv-domain', 'dom0');
    for (const { r } of [dom0, domU, explicit]) {
      expect(r.code).toBe(1);
      expect(Buffer.from(r.stderrBytes).toString('latin1')).toBe(HELLO_SERIAL);
    }
    expect(dom0.report.stats.byReason['hypercall console_io']).toBeGreaterThan(0);
    expect(explicit.report.stats.byReason).toEqual(dom0.report.stats.byReason);
    expect(domU.report.stats.byReason['hypercall console_io']).toBeUndefined();
    expect(domU.report.stats.byReason['hypercall event_channel_op']).toBeGreaterThan(0);
    expect(domU.report.shutdown).toBe('poweroff');
  });

  it('the report names the shutdown reason, not isa-debug-exit', async () => {
    const r = await run('run', PV_HELLO, '--backend', 'pv', '--pv-domain', 'domU');
    expect(r.stderr).toMatch(/^ringshift run: exit, status 1 \(SHUTDOWN_poweroff\): the PV guest shut down through SCHEDOP_shutdown/);
    expect(r.stderr).not.toMatch(/isa-debug-exit|guest wrote/);
  });

  it('--pv-domain: other values, or another backend, are bad input', async () => {
    expectOneLineError(await run('run', PV_HELLO, '--backend', 'pv', '--pv-domain', 'dom1'), /^ringshift: invalid --pv-domain 'dom1': expected dom0 \(the initial domain\) or domU/);
    expectOneLineError(await run('run', HELLO, '--pv-domain', 'domU'), /^ringshift: --pv-domain applies to --backend pv only, not native/);
  });
});
