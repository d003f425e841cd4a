// `ringshift disasm` end to end: main() in-process with captured output for most cases, and
// the real bin shim in a child process for what only a process shows (exit status, no stack).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readElf } from '@ringshift/rewriter';
import { main } from '../src/main';
import { BIN, ROOT, run, type Run } from './support/cli';

const HELLO = join(ROOT, 'examples/hello/hello.elf');



/** Instruction lines of a listing: "  addr:\tbytes\ttext". */
const instructionLines = (listing: string): string[] => listing.split('\n').filter((l) => /^\s*[0-9a-f]+:\t/.test(l));

/** One line on stderr, starting "ringshift: ", and no stack frame. */
function expectOneLineError(r: Run, code: number, message: RegExp): void {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr.endsWith('\n')).toBe(true);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^ringshift: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr.trimEnd()).toMatch(message);
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ringshift-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tempFile(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

describe('listing of examples/hello/hello.elf', () => {
  it('looks like objdump -d, with labels and class markers', async () => {
    const r = await run('disasm', HELLO);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const out = r.stdout;
    expect(out.split('\n')[0]).toMatch(/hello\.elf: ELF32 i386 exec, entry 0x100010, 32-bit code$/);
    expect(out).toContain('\nDisassembly of section .text:\n\n00100010 <_start>:\n');
    expect(out).toMatch(/\n0010[0-9a-f]{4} <kmain>:\n/);
    const lines = instructionLines(out);
    expect(lines.length).toBeGreaterThan(100);
    for (const line of lines) expect(line).toMatch(/^ {2}[0-9a-f]{6}:\t([0-9a-f]{2} )*[0-9a-f]{2} *\t\S.*$/);
    expect(lines[0]).toMatch(/^ {2}100010:\tfa {18}\tcli +\[iopl\]$/);
    // Each kind of sensitive instruction the example contains, with its marker.
    const marked = (text: string, marker: string): void => {
      const hit = lines.find((l) => l.includes(`\t${text}`) && l.endsWith(marker));
      expect(hit, `${text} marked ${marker}`).toBeDefined();
    };
    marked('cli', '[iopl]');
    marked('sti', '[iopl]');
    marked('lgdt ', '[priv]');
    marked('sgdt ', '[sens]');
    marked('mov cr0, ', '[priv]');
    marked('mov ebx, cr0', '[priv]');
    marked('hlt', '[priv]');
    marked('pushfd', '[sens]');
    marked('popfd', '[sens]');
    marked('out ', '[iopl]');
    marked('in al, dx', '[iopl]');
    marked('mov ds, ', '[sens]');
    // An unmarked instruction has no trailing padding.
    expect(lines.find((l) => /\tpush ebx$/.test(l))).toBeDefined();
    // Branch targets named like objdump.
    expect(out).toMatch(/\tcall 0x[0-9a-f]+ <kmain>\n/);
    expect(out).toMatch(/\tcall 0x[0-9a-f]+ <serial_puts>\n/);
  });

  it('--count limits the instructions, --start picks the first one', async () => {
    const r = await run('disasm', HELLO, '--count', '40');
    expect(r.code).toBe(0);
    expect(instructionLines(r.stdout)).toHaveLength(40);

    const kmain = readElf(readFileSync(HELLO)).symbols.find((s) => s.name === 'kmain')!.value.toString(16);
    const s = await run('disasm', HELLO, '--start', `0x${kmain}`, '--count', '3');
    expect(s.code).toBe(0);
    expect(s.stdout).toContain(`\n00${kmain} <kmain>:\n`);
    const lines = instructionLines(s.stdout);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^ {2}${kmain}:`));
  });

  it('--json prints only a JSON array on stdout: address, bytes, text, length, form, classes', async () => {
    const r = await run('disasm', HELLO, '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const rows = JSON.parse(r.stdout) as {
      address: number; bytes: string; text: string; length: number; form: string; section: string;
      classes: { privileged: string; ioplSensitive: string; sensitiveUnprivileged: boolean; vmExit: { reason: number } | null };
    }[];
    expect(rows[0]).toMatchObject({
      address: 0x100010, bytes: 'fa', text: 'cli', length: 1, form: 'Cli', section: '.text',
      classes: { privileged: 'no', ioplSensitive: 'always', sensitiveUnprivileged: false, vmExit: null },
    });
    for (let i = 1; i < rows.length; i++) {
      expect(rows[i]!.address).toBe(rows[i - 1]!.address + rows[i - 1]!.length);
      expect(rows[i]!.bytes).toHaveLength(rows[i]!.length * 2);
    }
    const hlt = rows.find((x) => x.text === 'hlt')!;
    expect(hlt.classes.privileged).toBe('always');
    expect(rows.find((x) => x.form.startsWith('Lgdt'))!.classes.privileged).toBe('always');
    expect(rows.find((x) => x.form.startsWith('Sgdt'))!.classes.sensitiveUnprivileged).toBe(true);
  });

  it('--section names one section; an unknown one is an error that lists the real ones', async () => {
    const r = await run('disasm', HELLO, '--section', '.multiboot', '--json');
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as { address: number; section: string }[];
    expect(rows[0]).toMatchObject({ address: 0x100000, section: '.multiboot' });
    expectOneLineError(await run('disasm', HELLO, '--section', '.nope'), 2,
      /^ringshift: .*hello\.elf has no section named '\.nope' \(it has \.multiboot, \.text, .*\)$/);
    expectOneLineError(await run('disasm', HELLO, '--section', '.bss'), 2,
      /^ringshift: section \.bss of .*hello\.elf has no bytes in the file \(type nobits, size \d+\)$/);
  });
});

describe('flat binaries', () => {
  it('--raw --base: invalid bytes print (bad) and decoding resumes at the next byte', async () => {
    // cli; 0f 04 (undefined); add; hlt; cpuid; then a lone 0f cut off by the end of the file.
    const file = tempFile('flat.bin', Uint8Array.from([0xfa, 0x0f, 0x04, 0x90, 0xf4, 0x0f, 0xa2, 0x0f]));
    const r = await run('disasm', file, '--raw', '--base', '0x7c00', '--bits', '16');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/flat\.bin: flat binary, 8 bytes at 0x7c00, 16-bit code$/);
    const lines = instructionLines(r.stdout).map((l) => l.replace(/\s+/g, ' ').trim());
    expect(lines).toEqual([
      '7c00: fa cli [iopl]',
      '7c01: 0f (bad)',
      '7c02: 04 90 add al, 0x90',
      '7c04: f4 hlt [priv]',
      '7c05: 0f a2 cpuid [exit 10 CPUID]',
      '7c07: 0f (bad)',
    ]);
    const json = JSON.parse((await run('disasm', file, '--raw', '--json')).stdout) as { text: string; invalid?: string; address: number }[];
    expect(json.map((x) => x.text)).toEqual(['cli', '(bad)', 'add al, 0x90', 'hlt', 'cpuid', '(bad)']);
    expect(json[0]!.address).toBe(0);
    expect(json[1]!.invalid).toMatch(/undefined opcode/);
    expect(json[5]!.invalid).toMatch(/truncated/);
  });

  it('--base without --raw, and --section with --raw, are usage errors', async () => {
    expectOneLineError(await run('disasm', HELLO, '--base', '0x1000'), 2, /--base only applies with --raw/);
    expectOneLineError(await run('disasm', HELLO, '--raw', '--section', '.text'), 2, /--section does not apply with --raw/);
  });
});

describe('bad input: one line on stderr, exit 2', () => {
  it('a missing file, a directory, a file that is not ELF', async () => {
    expectOneLineError(await run('disasm', join(dir, 'nope.elf')), 2, /^ringshift: cannot read .*nope\.elf: no such file$/);
    expectOneLineError(await run('disasm', dir), 2, /^ringshift: cannot read .*: is a directory$/);
    const text = tempFile('notes.txt', 'hello, world\n');
    expectOneLineError(await run('disasm', text), 2,
      /^ringshift: .*notes\.txt: not an ELF file: starts with 68 65 6c 6c, not the ELF magic 7f 45 4c 46 \(use --raw for a flat binary\)$/);
  });

  it('corrupt ELF images', async () => {
    const hello = readFileSync(HELLO);
    expectOneLineError(await run('disasm', tempFile('short.elf', hello.subarray(0, 30))), 2,
      /^ringshift: .*short\.elf: truncated ELF file: 30 bytes, shorter than the 52-byte ELF32 header$/);
    const badPhoff = Uint8Array.from(hello);
    new DataView(badPhoff.buffer).setUint32(28, badPhoff.length + 64, true);
    expectOneLineError(await run('disasm', tempFile('phoff.elf', badPhoff)), 2,
      /^ringshift: .*phoff\.elf: program header table offset 0x[0-9a-f]+ \(e_phoff\) is past the end of the file/);
    const arm = Uint8Array.from(hello);
    new DataView(arm.buffer).setUint16(18, 40, true);
    expectOneLineError(await run('disasm', tempFile('arm.elf', arm)), 2, /not an x86 image: ARM \(e_machine 40\)/);
  });

  it('an ELF without section headers: its executable segments are disassembled, --section is refused', async () => {
    const bytes = Uint8Array.from(readFileSync(HELLO));
    const dv = new DataView(bytes.buffer);
    dv.setUint32(32, 0, true);
    dv.setUint16(48, 0, true);
    dv.setUint16(50, 0, true);
    const file = tempFile('nosections.elf', bytes);
    const r = await run('disasm', file, '--count', '3');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Disassembly of segment 0 (load, no section headers):');
    expect(instructionLines(r.stdout)).toHaveLength(3);
    expectOneLineError(await run('disasm', file, '--section', '.text'), 2, /has no section headers, so --section cannot select anything/);
  });

  it('bad --start, --count, --bits, options and commands', async () => {
    expectOneLineError(await run('disasm', HELLO, '--start', 'zz'), 2,
      /^ringshift: invalid --start 'zz': expected an address like 0x100000 or 1048576$/);
    expectOneLineError(await run('disasm', HELLO, '--start', '0x10'), 2,
      /^ringshift: --start 0x10 is outside what is being disassembled \(\.text 0x100010-0x[0-9a-f]+\)$/);
    expectOneLineError(await run('disasm', HELLO, '--count', '0'), 2, /^ringshift: invalid --count '0'/);
    expectOneLineError(await run('disasm', HELLO, '--count', 'many'), 2, /^ringshift: invalid --count 'many'/);
    expectOneLineError(await run('disasm', HELLO, '--bits', '17'), 2, /^ringshift: Invalid values: Argument: bits, Given: 17, Choices: 16, 32, 64$/);
    expectOneLineError(await run('disasm', HELLO, '--bogus'), 2, /^ringshift: Unknown argument: bogus$/);
    expectOneLineError(await run('disasm'), 2, /^ringshift: Not enough non-option arguments/);
    expectOneLineError(await run(), 2, /^ringshift: no command given/);
    expectOneLineError(await run('disasmm'), 2, /^ringshift: unknown command 'disasmm'; did you mean disasm\?$/);
    expectOneLineError(await run('disassemble', HELLO), 2, /^ringshift: Unknown arguments: disassemble, .*hello\.elf$/);
    expectOneLineError(await run('frobnicate'), 2, /^ringshift: Unknown argument: frobnicate$/);
  });
});

describe('everything else', () => {
  it('--help prints usage on stdout and exits 0', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ringshift disasm <file>/);
    const d = await run('disasm', '--help');
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/--raw/);
  });

  it('an unexpected exception is one line and exit 3, never a stack trace', async () => {
    let stderr = '';
    const code = await main(['disasm', HELLO, '--count', '1'], {
      stdout: () => {
        throw new Error('disk full');
      },
      stderr: (t) => void (stderr += t),
    });
    expect(code).toBe(3);
    expect(stderr).toBe('ringshift: internal error: Error: disk full (RINGSHIFT_DEBUG=1 shows where)\n');
  });

  it('reads ELF64: the host /bin/ls in 64-bit mode', async () => {
    const r = await run('disasm', '/bin/ls', '--count', '20');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/ELF64 x86-64 dyn, entry 0x[0-9a-f]+, 64-bit code$/);
    expect(instructionLines(r.stdout)).toHaveLength(20);
  });
});

describe('the real command (bin/ringshift.mjs in a child process)', () => {
  it('demo: disasm examples/hello/hello.elf --count 40', () => {
    const out = execFileSync(process.execPath, [BIN, 'disasm', HELLO, '--count', '40'], { encoding: 'utf8' });
    expect(instructionLines(out)).toHaveLength(40);
    expect(out).toContain('[iopl]');
  });

  it('exit status 2 and one line for a bad file; nothing on stdout', () => {
    const r = spawnSync(process.execPath, [BIN, 'disasm', join(dir, 'missing.elf')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^ringshift: cannot read .*missing\.elf: no such file\n$/);
  });

  it('a closed pipe ends the listing quietly', () => {
    const r = spawnSync('sh', ['-c', `"${process.execPath}" "${BIN}" disasm /usr/lib/x86_64-linux-gnu/libc.so.6 | head -n 3`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')).toHaveLength(4);
    expect(r.stderr).toBe('');
  });
});
