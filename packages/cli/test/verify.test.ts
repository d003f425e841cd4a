// `ringshift verify` end to end: a freshly rewritten example passes (exit 0), a corrupted copy
// fails with the violation listed (exit 1), and unreadable input is exit 2 with one line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readElf, verifyImage } from '@ringshift/rewriter';
import type { PatchMap } from '@ringshift/rewriter';
import { BIN, ROOT, run } from './support/cli';

const SENSITIVE = join(ROOT, 'examples/sensitive/sensitive.elf');



let dir = '';
let patched = '';
let image: Uint8Array;
let map: PatchMap;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ringshift-verify-'));
  patched = join(dir, 'sensitive.rewritten.elf');
  const r = await run('rewrite', SENSITIVE, '-o', patched);
  if (r.code !== 0) throw new Error(`rewrite failed: ${r.stderr}`);
  image = readFileSync(patched);
  map = verifyImage(image).map!;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the patched image with the byte at a virtual address changed, saved under `name`. */
function corrupt(name: string, vaddr: number, change: (b: number) => number): string {
  const out = Uint8Array.from(image);
  const seg = readElf(out).segments.find((s) => s.type === 'load' && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz)!;
  out[seg.offset + vaddr - seg.vaddr] = change(out[seg.offset + vaddr - seg.vaddr]!);
  const path = join(dir, name);
  writeFileSync(path, out);
  return path;
}

describe('ringshift verify', { timeout: 60_000 }, () => {
  it('accepts a freshly rewritten image, alone and against its original', async () => {
    const r = await run('verify', patched);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/sensitive\.rewritten\.elf: ok, checked against its patch map\n/);
    const o = await run('verify', patched, '--original', SENSITIVE);
    expect(o.code).toBe(0);
    expect(o.stdout).toMatch(/ok, checked against its patch map and .*sensitive\.elf\n/);
    expect(o.stdout).toMatch(/\d+ original bytes, \d+ segments, multiboot header\n/);
  });

  it('--json: ok, the counts, no violations', async () => {
    const r = await run('verify', patched, '--original', SENSITIVE, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { ok: boolean; violations: unknown[]; checked: { sites: number; bytesCompared: number } };
    expect(j.ok).toBe(true);
    expect(j.violations).toEqual([]);
    expect(j.checked.sites).toBeGreaterThan(0);
    expect(j.checked.bytesCompared).toBeGreaterThan(1000);
  });

  it('a corrupted stub byte: exit 1 with the violation (the real command)', () => {
    // An escape stub's int 0x81 turned into int 0x80.
    const site = map.sites.find((x) => x.stub === 'escape' && x.escapeAddr !== 0)!;
    expect(site).toBeDefined();
    const path = corrupt('stub.elf', site.escapeAddr + 1, () => 0x80);
    const r = spawnSync(process.execPath, [BIN, 'verify', path], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/: 1 violation, checked against its patch map\n/);
    const at = site.addr.toString(16).padStart(8, '0');
    expect(r.stdout).toContain(`\n  0x${at}  stub          site 0x${site.addr.toString(16)} `);
    expect(r.stdout).toMatch(/is cd 80, not int 0x81 \(cd 81\)\n/);
  });

  it('a corrupted byte outside every site: exit 1 with --original, naming the byte', async () => {
    const elf = readElf(image);
    const text = elf.sections.find((s) => s.name === '.text')!;
    const runs = (JSON.parse((await run('verify', patched, '--json')).stdout) as { ok: boolean }).ok;
    expect(runs).toBe(true);
    // The last byte of .text is no site's (sites are instructions with at least one byte after them, or padding).
    const addr = text.addr + text.size - 1;
    const path = corrupt('outside.elf', addr, (b) => b ^ 0xff);
    const alone = await run('verify', path);
    const both = await run('verify', path, '--original', SENSITIVE);
    expect(both.code).toBe(1);
    expect(both.stdout).toContain(`changed-byte  byte 0x${addr.toString(16)} outside every patched run changed`);
    // Without the original, a byte outside the sites may pass: the map does not record it.
    expect([0, 1]).toContain(alone.code);
  });

  it('an image without a patch map: exit 1, patchmap violation', async () => {
    const r = await run('verify', SENSITIVE, '--json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout) as { ok: boolean; violations: { kind: string; message: string }[] };
    expect(j.ok).toBe(false);
    expect(j.violations).toEqual([{ addr: 0, kind: 'patchmap', message: expect.stringMatching(/no \.ringshift\.patchmap section/) }]);
  });

  it('bad input: exit 2, one line naming the file', async () => {
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, 'hello');
    for (const [args, re] of [
      [['verify', join(dir, 'nope.elf')], /^ringshift: cannot read .*nope\.elf: no such file\n$/],
      [['verify', junk], /^ringshift: .*junk\.bin: not an ELF file: starts with 68 65 6c 6c/],
      [['verify', patched, '--original', junk], /^ringshift: .*junk\.bin: not an ELF file/],
    ] as const) {
      const r = await run(...args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });
});
