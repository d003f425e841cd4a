// The runtime's patch-map reader (vmm/rewrite/patchmap.ts) and the loader check
// (vmm/rewrite/image.ts) against docs/patch-map.md and the examples rewritten by `make -C examples`.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PatchMapError, checkRewrittenImage, decodePatchMap, sha256Hex } from '../src/index';

const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));
const GUESTS = ['hello', 'interrupts', 'sensitive', 'paging', 'usermode', 'nanobench'];

/** A hand-built version 1 map: one escape site (CD 81 at stubVaddr + 0x1000). */
function tinyMap(mutate?: (v: DataView, b: Uint8Array) => void): Uint8Array {
  const b = new Uint8Array(80 + 12 + 32 + 4);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x4d505352, true);
  v.setUint16(4, 1, true);
  v.setUint16(6, 80, true);
  v.setUint32(8, b.length, true);
  v.setUint32(12, 3, true);
  v.setUint32(16, 0xffc00000, true);
  v.setUint32(20, 0x200000, true);
  v.setUint32(24, 0x2000, true);
  v.setUint32(28, 0xffc00000, true);
  v.setUint32(32, 1, true);
  v.setUint16(36, 9, true);
  b.set([...'sensitive'].map((c) => c.charCodeAt(0)), 80);
  const s = 92;
  v.setUint32(s, 0x100010, true);
  v.setUint32(s + 4, 1, true);
  b[s + 8] = 2; b[s + 9] = 1; b[s + 10] = 2;
  v.setUint32(s + 12, 0xffc01000, true);
  v.setUint32(s + 16, 0xffc01000, true);
  v.setUint32(s + 20, 0x100010, true);
  v.setUint32(s + 24, 0x100011, true);
  b[s + 28] = 1; b[s + 29] = 1;
  b[s + 32] = 0xfa; b[s + 33] = 0xfa;
  mutate?.(v, b);
  return b;
}

/** The same map in version 2: one LOAD range record between the select string and the site. */
function tinyMapV2(mutate?: (v: DataView, b: Uint8Array) => void): Uint8Array {
  const v1 = tinyMap();
  const b = new Uint8Array(v1.length + 24);
  b.set(v1.subarray(0, 92));
  b.set(v1.subarray(92), 92 + 24);
  const v = new DataView(b.buffer);
  v.setUint16(4, 2, true);
  v.setUint32(8, b.length, true);
  v.setUint32(72, 1, true);
  v.setUint32(92, 0xffc00000, true);
  v.setUint32(96, 0x200000, true);
  v.setUint32(104, 0x2000, true);
  v.setUint32(108, 1, true);
  mutate?.(v, b);
  return b;
}

describe('patch map reader (docs/patch-map.md, version 2)', () => {
  it('decodes the range records', () => {
    const m = decodePatchMap(tinyMapV2());
    expect(m.version).toBe(2);
    expect(m.ranges).toEqual([{ vaddr: 0xffc00000, paddr: 0x200000, fileOffset: 0, size: 0x2000, flags: 1 }]);
    expect(m.sites[0]).toMatchObject({ addr: 0x100010, escapeAddr: 0xffc01000 });
  });

  it('reads a version 1 map as one LOAD range', () => {
    expect(decodePatchMap(tinyMap()).ranges).toEqual([{ vaddr: 0xffc00000, paddr: 0x200000, fileOffset: 0, size: 0x2000, flags: 1 }]);
  });

  it.each([
    ['a header that differs from range 0', (v: DataView) => v.setUint32(96, 0x300000, true), /differ from range 0/],
    ['range flags 3', (v: DataView) => v.setUint32(108, 3, true), /flags 3/],
    ['a LOAD range with a file offset', (v: DataView) => v.setUint32(100, 0x1000, true), /LOAD range with a file offset/],
    ['a LOADER range without the header flag', (v: DataView) => v.setUint32(108, 2, true), /LOADER range without/],
    ['range size 0', (v: DataView) => v.setUint32(104, 0, true), /size 0/],
    ['an original entry without the loader flag', (v: DataView) => v.setUint32(76, 0x100000, true), /original entry/],
    ['version 3', (v: DataView) => v.setUint16(4, 3, true), /version 3 is not supported/],
  ])('refuses %s', (_what, mutate, message) => {
    expect(() => decodePatchMap(tinyMapV2(mutate))).toThrow(message);
  });
});

describe('patch map reader (docs/patch-map.md, version 1)', () => {
  it('decodes the header, the select string and a site record', () => {
    const m = decodePatchMap(tinyMap());
    expect(m).toMatchObject({ version: 1, flags: 3, stubVaddr: 0xffc00000, stubPaddr: 0x200000, stubSize: 0x2000, sharedPage: 0xffc00000, select: 'sensitive' });
    expect(m.sites).toHaveLength(1);
    expect(m.sites[0]).toMatchObject({ addr: 0x100010, reason: 'iopl', tactic: 'B1', stubKind: 'escape', escapeAddr: 0xffc01000, resume: 0x100011 });
    expect([...m.sites[0]!.original]).toEqual([0xfa]);
    expect([...m.sites[0]!.displaced]).toEqual([0xfa]);
  });

  it.each([
    ['bad magic', (v: DataView) => v.setUint32(0, 0x12345678, true), /magic/],
    ['another version', (v: DataView) => v.setUint16(4, 9, true), /version 9 is not supported/],
    ['trailing bytes', (v: DataView, b: Uint8Array) => v.setUint32(8, b.length - 4, true), /total size/],
    ['reserved header flag', (v: DataView) => v.setUint32(12, 7, true), /reserved header flag/],
    ['reserved header bytes', (_v: DataView, b: Uint8Array) => { b[75] = 1; }, /reserved header bytes 72/],
    ['enumeration code 0', (_v: DataView, b: Uint8Array) => { b[92 + 9] = 0; }, /tactic code 0/],
    ['unknown stub kind', (_v: DataView, b: Uint8Array) => { b[92 + 10] = 9; }, /stub kind code 9/],
    ['original length 0', (_v: DataView, b: Uint8Array) => { b[92 + 28] = 0; }, /original length 0/],
    ['non-zero padding', (_v: DataView, b: Uint8Array) => { b[92 + 35] = 1; }, /padding/],
    ['reserved site flags', (_v: DataView, b: Uint8Array) => { b[92 + 11] = 2; }, /reserved site flag/],
  ])('refuses %s', (_what, mutate, message) => {
    expect(() => decodePatchMap(tinyMap(mutate))).toThrow(PatchMapError);
    expect(() => decodePatchMap(tinyMap(mutate))).toThrow(message);
  });

  it('SHA-256 matches the FIPS 180-4 examples', () => {
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

describe.each(GUESTS.filter((g) => existsSync(`${examples}${g}/${g}.rewritten.elf`)))('loader check on examples/%s', (g) => {
  const rewritten = new Uint8Array(readFileSync(`${examples}${g}/${g}.rewritten.elf`));
  const original = new Uint8Array(readFileSync(`${examples}${g}/${g}.elf`));

  it('accepts the rewritten image with its original', () => {
    const r = checkRewrittenImage(rewritten, { original });
    expect(r.map.sites.length).toBeGreaterThan(0);
    expect(r.map.stubVaddr).toBe(0xffc00000);
    expect(r.byEscape.size).toBeGreaterThan(0);
  });

  it('refuses the unpatched image', () => {
    expect(() => checkRewrittenImage(original)).toThrow(/no \.ringshift\.patchmap section/);
  });

  it('refuses another original', () => {
    const other = original.slice();
    other[other.length - 1] ^= 1;
    expect(() => checkRewrittenImage(rewritten, { original: other })).toThrow(/made from another input/);
  });

  it('refuses an image whose trampoline does not hold the displaced instructions', () => {
    const r = checkRewrittenImage(rewritten);
    const site = r.map.sites.find((s) => s.tactic === 'T2' && s.stubKind === 'escape' && r.map.sites.filter((t) => t.patchStart === s.patchStart).length === 1)!;
    const bad = rewritten.slice();
    const seg = r.stubSegments.find((p) => site.stubAddr >= p.vaddr && site.stubAddr < p.vaddr + p.memsz)!;
    const at = seg.offset + (site.stubAddr + 2 - seg.vaddr);
    bad[at] ^= 0x01;
    expect(() => checkRewrittenImage(bad)).toThrow(/trampoline/);
  });

  it('refuses an image whose patched bytes were changed', () => {
    const r = checkRewrittenImage(rewritten);
    const site = r.map.sites.find((s) => s.tactic === 'B1' || s.tactic === 'T2')!;
    const bad = rewritten.slice();
    // Find the file offset of patchStart through the program headers and break the jump.
    const v = new DataView(bad.buffer);
    const phoff = v.getUint32(28, true), phnum = v.getUint16(44, true);
    for (let i = 0; i < phnum; i++) {
      const p = phoff + i * 32;
      const vaddr = v.getUint32(p + 8, true), off = v.getUint32(p + 4, true), filesz = v.getUint32(p + 16, true);
      if (v.getUint32(p, true) === 1 && site.patchStart >= vaddr && site.patchStart < vaddr + filesz) bad[off + site.patchStart - vaddr] = 0x90;
    }
    expect(() => checkRewrittenImage(bad)).toThrow(/image and map do not match/);
  });
});
