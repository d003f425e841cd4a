// `ringshift scan` end to end: main() in-process with captured output, on the example kernel
// with sensitive instructions and on small images written here; the bad-input errors are one
// line and exit 2 like every other command's.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Assembler, reg } from '@ringshift/decoder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeElf32 } from '@ringshift/rewriter';
import { ROOT, run, type Run } from './support/cli';

const SENSITIVE = join(ROOT, 'examples/sensitive/sensitive.elf');



function expectOneLineError(r: Run, message: RegExp): void {
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr.trimEnd()).toMatch(message);
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ringshift-scan-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tempFile(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const TEXT = 0x08049000;

/** A tiny executable: cli; nop x5; pushfd; jmp over an object; hlt. */
function tiny(): string {
  const a = new Assembler(32, TEXT);
  const over = a.label('over');
  a.here('_start');
  a.asm('cli');
  for (let i = 0; i < 5; i++) a.asm('nop');
  a.asm('pushfd');
  a.jmp(over);
  a.here('blob');
  a.db(0xfa, 0xfa, 0xfa, 0xfa); // CLI bytes inside an object: not sites
  a.bind(over);
  a.asm('mov', reg('eax'), reg('cr0'));
  a.asm('hlt');
  const { bytes, labels } = a.assemble();
  return tempFile('tiny.elf', writeElf32({
    type: 'exec', machine: 'i386', entry: TEXT,
    segments: [{ vaddr: TEXT, flags: 'rx', bytes }],
    sections: [{ name: '.text', addr: TEXT, size: bytes.length }],
    symbols: [{ name: 'blob', value: labels.get('blob')!, size: 4, type: 'object' }],
  }));
}

describe('scan of a small image', () => {
  it('lists each site with bytes, text, reason, tactic and evidence, after a discovery summary', async () => {
    const file = tiny();
    const r = await run('scan', file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`${file}: ELF32 i386 exec, entry 0x8049000, select 'sensitive'`);
    expect(lines[1]).toBe('discovery: 10 instructions; 13 bytes code, 4 data, 0 unknown; 2 jump targets, 0 indirect transfers, 0 conflicts');
    expect(lines[3]).toMatch(/^sites: 4 \(iopl 1, sensitive-unprivileged 1, privileged 2\); tactics: /);
    const rows = lines.slice(lines.indexOf('') + 2);
    expect(rows.map((l) => l.trim().split(/\s{2,}/))).toEqual([
      ['8049000', 'fa', 'cli', 'iopl', expect.stringMatching(/^(B1|B2|T1|T2e|T3e|T2|T3|trap)$/), 'entry'],
      ['8049006', '9c', 'pushfd', 'sensitive-unprivileged', expect.stringMatching(/^(B1|B2|T1|T2e|T3e|T2|T3|trap)$/), 'fallthrough'],
      ['804900d', '0f 20 c0', 'mov eax, cr0', 'privileged', expect.stringMatching(/^(B1|B2|T1|T2e|T3e|T2|T3|trap)$/), 'directTarget'],
      ['8049010', 'f4', 'hlt', 'privileged', expect.stringMatching(/^(B1|B2|T1|T2e|T3e|T2|T3|trap)$/), 'fallthrough'],
    ]);
  });

  it('--json prints one document with the same sites and the discovery summary', async () => {
    const file = tiny();
    const r = await run('scan', file, '--json', '--select', 'cli,hlt');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.select).toBe('cli,hlt');
    expect(doc.elf).toEqual({ class: 32, machine: 'i386', type: 'exec', entry: TEXT });
    expect(doc.sites.map((s: { address: number; form: string; reason: string; evidence: string[] }) => [s.address, s.form, s.reason, s.evidence]))
      .toEqual([[TEXT, 'Cli', 'iopl', ['entry']], [TEXT + 16, 'Hlt', 'privileged', ['fallthrough']]]);
    expect(doc.discovery).toMatchObject({
      instructions: 10, codeBytes: 13, dataBytes: 4, unknownBytes: 0, conflicts: [],
      nonCode: [{ start: TEXT + 9, end: TEXT + 13, kind: 'data', reason: 'object symbol blob' }],
    });
    expect(doc.discovery.evidence.entry).toBe(1);
    const total = Object.values(doc.tactics as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(total).toBe(2);
  });
});

describe('scan of an image rewrite does not take', () => {
  it('a PIE (ET_DYN): sites listed, tactics replaced by the reason', async () => {
    const bytes = readFileSync(tiny());
    bytes[16] = 3; // e_type = ET_DYN
    const file = tempFile('tiny-pie.elf', bytes);
    const r = await run('scan', file);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\nsites: 4 \([^)]*\); tactics: not planned: ELF type 'dyn': /);
    const doc = JSON.parse((await run('scan', file, '--json')).stdout);
    expect(doc.tactics).toBeNull();
    expect(doc.tacticsNote).toMatch(/^not planned: ELF type 'dyn'/);
    expect(doc.sites.map((s: { tactic: unknown }) => s.tactic)).toEqual([null, null, null, null]);
  });
});

describe('scan of examples/sensitive/sensitive.elf', () => {
  it.skipIf(!existsSync(SENSITIVE))('finds every sensitive instruction objdump shows and plans a tactic for each', async () => {
    const r = await run('scan', SENSITIVE, '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    const out = execFileSync('objdump', ['-d', '-w', '-j', '.text', SENSITIVE], { encoding: 'utf8' });
    // Spot checks against objdump: the privileged and IOPL-sensitive instructions objdump names.
    const named = [...out.matchAll(/^\s*([0-9a-f]+):\t[^\t]*\t(cli|sti|hlt|lgdtl?|lidtl?|ltr|rdmsr|wrmsr|in|out|clts)\b/gm)]
      .map((m) => parseInt(m[1]!, 16));
    expect(named.length).toBeGreaterThan(10);
    const sites = new Map<number, { tactic: string | null; reason: string }>(doc.sites.map((s: { address: number }) => [s.address, s]));
    for (const a of named) {
      expect(sites.has(a), `0x${a.toString(16)}`).toBe(true);
      expect(['privileged', 'iopl']).toContain(sites.get(a)!.reason);
      expect(sites.get(a)!.tactic).not.toBeNull();
    }
    expect(doc.discovery.conflicts).toEqual([]);
    expect(doc.discovery.unknownBytes).toBe(0);
  });

  it('text and --json agree on the sites', async () => {
    if (!existsSync(SENSITIVE)) return;
    const text = await run('scan', SENSITIVE, '--select', 'privileged');
    const json = JSON.parse((await run('scan', SENSITIVE, '--select', 'privileged', '--json')).stdout);
    const rows = text.stdout.split('\n').filter((l) => /^\s*[0-9a-f]+  /.test(l));
    expect(rows.map((l) => parseInt(l.trim().split(/\s+/)[0]!, 16))).toEqual(json.sites.map((s: { address: number }) => s.address));
  });
});

describe('scan: bad input', () => {
  it('an unknown selection word: the decoder’s message, exit 2', async () => {
    expectOneLineError(await run('scan', tiny(), '--select', 'sensitive,bogus'), /^ringshift: .*tiny\.elf: unknown selection 'bogus': expected sensitive, /);
  });

  it('an ELF64 image, a relocatable object, and a file that is not ELF', async () => {
    expectOneLineError(await run('scan', '/bin/ls'), /^ringshift: \/bin\/ls: ELF64 x86-64 image: ringshift rewrites ELF32 i386 \(EM_386\) executables only$/);
    const obj = join(ROOT, 'examples/hello/hello.o');
    if (existsSync(obj)) expectOneLineError(await run('scan', obj), /: relocatable object \(ET_REL\): its addresses are not final/);
    expectOneLineError(await run('scan', tempFile('notelf', '#!/bin/sh\n')), /^ringshift: .*notelf: not an ELF file/);
    expectOneLineError(await run('scan', join(dir, 'missing.elf')), /^ringshift: cannot read .*missing\.elf: no such file$/);
  });

  it('exits 0 with no sites when the selection matches nothing in the image', async () => {
    const r = await run('scan', tiny(), '--select', 'cpuid');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\nsites: 0; tactics: none\n$/);
    expect(r.stdout).not.toMatch(/address +bytes/);
  });
});
