// verifyImage on a patched image built by hand (every byte chosen here, so the test does not
// trust the rewriter) and on what rewriteImage writes for the example kernels: the good image
// passes, and each specific corruption gives its specific violation.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Decoder, classOf } from '@ringshift/decoder';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ElfError, PATCHMAP_FLAG_LOADER, STUB_RANGE_LOAD, STUB_RANGE_LOADER, decodePatchMap, encodePatchMap, readElf, rewriteImage, verifyImage, writeElf32,
} from '../src/index';
import { Assembler, imm, reg, rel } from '@ringshift/decoder';
import { buildImage, pickSites, sweepDiscovery } from './support/image';
import type { ElfWriteImage, PatchMap, PatchedSite, ViolationKind } from '../src/index';
import { sharedPageImage } from '../src/stubs/shared';

const TEXT = 0x08049000;
const STUBS = 0x08100000;
const STUB_CODE = STUBS + 0x1000;

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
/** jmp/jcc rel32 bytes at `from` (first byte of the instruction) reaching `to`. */
const jmp = (from: number, to: number): number[] => [0xe9, ...le32((to - (from + 5)) >>> 0)];
const jne = (from: number, to: number): number[] => [0x0f, 0x85, ...le32((to - (from + 6)) >>> 0)];
const u8 = (...parts: (number | number[])[]): Uint8Array => Uint8Array.from(parts.flat());

// The original code, at TEXT:
//   +00  0f 01 05 00 a0 04 08   sgdt [0x804a000]   site A: B1, escape stub
//   +07  0f 85 f3 00 00 00      jne  TEXT+0x100     site B: B1, empty stub (jumps)
//   +0d  9c                     pushfd              site C: T2 over pushfd; mov eax,eax; mov ebx,ebx
//   +0e  89 c0                  mov eax, eax
//   +10  89 db                  mov ebx, ebx
//   +12  90                     nop
//   +13  c3                     ret
//   +14  cc ... (to +0x100)
//   +100 c3                     ret
const A = TEXT, B = TEXT + 7, C = TEXT + 0x0d, D = TEXT + 0x20;
const ORIGINAL_TEXT = (() => {
  const t = new Uint8Array(0x101).fill(0xcc);
  t.set(u8([0x0f, 0x01, 0x05, 0x00, 0xa0, 0x04, 0x08], jne(B, TEXT + 0x100), [0x9c, 0x89, 0xc0, 0x89, 0xdb, 0x90, 0xc3]), 0);
  t.set([0xeb, 0x10, 0x89, 0xc8, 0x90], 0x20); // +20: jmp +0x32; mov eax, ecx; nop (site D, patched in one test only)
  t[0x32] = 0xc3;
  t[0x100] = 0xc3;
  return t;
})();

// Stubs, from STUB_CODE: A: int 0x81; jmp B.   B: jne TEXT+0x100; jmp C.   C: int 0x81; mov; mov; jmp TEXT+0x12.
const SA = STUB_CODE, SB = SA + 7, SC = SB + 11;
const STUB_BYTES = u8(
  [0xcd, 0x81], jmp(SA + 2, B),
  jne(SB, TEXT + 0x100), jmp(SB + 6, C),
  [0xcd, 0x81, 0x89, 0xc0, 0x89, 0xdb], jmp(SC + 6, TEXT + 0x12),
);

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Parts {
  text: Uint8Array;
  stubs: Uint8Array;
  sites: PatchedSite[];
  symbols: { name: string; value: number }[];
  textFlags: 'rx' | 'rwx';
  map?: Partial<PatchMap>;
  /** Replaces the encoded map section's bytes. */
  mapBytes?: (b: Uint8Array) => Uint8Array;
  /** The header segment (default: the page below the text, no PT_PHDR); null for none. */
  header?: ElfWriteImage['header'] | null;
}

function site(over: Partial<PatchedSite> & Pick<PatchedSite, 'addr' | 'tactic' | 'stub' | 'stubAddr' | 'escapeAddr' | 'resume'>): PatchedSite {
  const start = over.patchStart ?? over.addr;
  const original = over.original ?? ORIGINAL_TEXT.slice(over.addr - TEXT, over.addr - TEXT + LENGTHS[over.addr]!);
  return {
    formId: FORMS[over.addr]!, reason: 'sensitive-unprivileged', patchStart: start,
    displaced: ORIGINAL_TEXT.slice(start - TEXT, over.resume - TEXT), assumesNoInnerTargets: false,
    original, ...over,
  };
}
const LENGTHS: Record<number, number> = { [A]: 7, [B]: 6, [C]: 1, [D]: 2 };
const FORMS: Record<number, number> = {};

function goodParts(): Parts {
  const text = ORIGINAL_TEXT.slice();
  text.set(u8(jmp(A, SA), [0xcc, 0xcc]), A - TEXT);
  text.set(u8(jmp(B, SB), [0xcc]), B - TEXT);
  text.set(u8(jmp(C, SC)), C - TEXT);
  const stubs = new Uint8Array(0x1000 + STUB_BYTES.length);
  stubs.set(STUB_BYTES, 0x1000);
  stubs.set(sharedPageImage(), 0); // the shared page's documented initial image (docs/patch-abi.md)
  return {
    text, stubs, textFlags: 'rx', symbols: [{ name: '_start', value: TEXT }],
    sites: [
      site({ addr: A, tactic: 'B1', stub: 'escape', stubAddr: SA, escapeAddr: SA, resume: B, reason: 'privileged' }),
      site({ addr: B, tactic: 'B1', stub: 'empty', stubAddr: SB, escapeAddr: 0, resume: C, reason: 'jumps' }),
      site({ addr: C, tactic: 'T2', stub: 'escape', stubAddr: SC, escapeAddr: SC, resume: TEXT + 0x12, assumesNoInnerTargets: true }),
    ],
  };
}

function image(text: Uint8Array, flags: 'rx' | 'rwx', symbols: Parts['symbols'], extra: Pick<ElfWriteImage, 'segments' | 'sections' | 'header'> = { segments: [], sections: [] }): Uint8Array {
  return writeElf32({
    type: 'exec', machine: 'i386', entry: TEXT, ...(extra.header ? { header: extra.header } : {}),
    segments: [{ vaddr: TEXT, flags, bytes: text }, ...extra.segments],
    sections: [{ name: '.text', addr: TEXT, size: text.length, align: 16 }, ...(extra.sections ?? [])],
    symbols: symbols.map((s) => ({ ...s, type: 'func' as const })),
  });
}

const ORIGINAL = image(ORIGINAL_TEXT, 'rx', [{ name: '_start', value: TEXT }]);

function build(p: Parts): Uint8Array {
  const map: PatchMap = {
    version: 2, originalSha256: sha(ORIGINAL), select: 'sensitive', stubVaddr: STUBS, stubPaddr: STUBS,
    stubSize: p.stubs.length, sharedPage: STUBS, flags: 0, sites: p.sites,
    stubRanges: [{ vaddr: STUBS, paddr: STUBS, offset: 0, size: p.stubs.length, flags: STUB_RANGE_LOAD }], originalEntry: 0, ...p.map,
  };
  let mapBytes = encodePatchMap(map);
  if (p.mapBytes) mapBytes = p.mapBytes(mapBytes);
  return image(p.text, p.textFlags, p.symbols, {
    segments: [{ vaddr: STUBS, flags: 'rx', bytes: p.stubs }],
    sections: [{ name: '.ringshift.stubs', addr: STUB_CODE, size: STUB_BYTES.length }, { name: '.ringshift.patchmap', addr: 0, bytes: mapBytes }],
    // A user executable (no kernel flag): its program header table is loaded, as rewriteImage does.
    ...(p.header === null ? {} : { header: p.header ?? { vaddr: TEXT - 0x1000, phdr: false } }),
  });
}

/** Sets the byte at a virtual address of an ELF image (through its program headers). */
function poke(img: Uint8Array, vaddr: number, value: number): Uint8Array {
  const out = img.slice();
  const seg = readElf(out).segments.find((s) => s.type === 'load' && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz);
  if (!seg) throw new Error(`no file byte at 0x${vaddr.toString(16)}`);
  out[seg.offset + vaddr - seg.vaddr] = value;
  return out;
}
function peek(img: Uint8Array, vaddr: number): number {
  const seg = readElf(img).segments.find((s) => s.type === 'load' && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz)!;
  return img[seg.offset + vaddr - seg.vaddr]!;
}

function kinds(r: { violations: { kind: ViolationKind }[] }): ViolationKind[] {
  return [...new Set(r.violations.map((v) => v.kind))].sort();
}

// The sites' form ids, from the decoder.
for (const addr of [A, B, C, D]) FORMS[addr] = new Decoder(32, ORIGINAL_TEXT, addr, addr - TEXT).decode().form;

describe('verifyImage on a hand-built patched image', () => {
  const good = build(goodParts());

  it('accepts the good image, with and without the original', () => {
    const alone = verifyImage(good);
    expect(alone.violations).toEqual([]);
    expect(alone.ok).toBe(true);
    expect(alone.checked).toMatchObject({ sites: 3, stubs: 3, relocatedBranches: 1, relocatedInstructions: 2, innerTargetSites: 1 });
    const both = verifyImage(good, ORIGINAL);
    expect(both.violations).toEqual([]);
    // Every file byte of the original text except the 7 + 6 + 5 patched bytes was compared.
    expect(both.checked.bytesCompared).toBe(ORIGINAL_TEXT.length - 18);
    expect(both.checked.segments).toBeGreaterThan(0);
  });

  it('leaves its input alone, also when it is a Node Buffer (whose slice() is a view)', () => {
    const buf = Buffer.from(good);
    const orig = Buffer.from(ORIGINAL);
    expect(verifyImage(buf, orig).ok).toBe(true);
    expect(buf.equals(Buffer.from(good))).toBe(true);
    expect(orig.equals(Buffer.from(ORIGINAL))).toBe(true);
  });

  it('AT_PHDR: a program header table in no PT_LOAD, or a PT_PHDR elsewhere', () => {
    const msgs = (img: Uint8Array): string[] => verifyImage(img).violations.filter((v) => v.kind === 'segment').map((v) => v.message);
    expect(msgs(build({ ...goodParts(), header: null }))).toEqual([expect.stringMatching(/in no PT_LOAD: AT_PHDR would be 0 or unmapped/)]);
    const withPhdr = build({ ...goodParts(), header: { vaddr: TEXT - 0x1000, phdr: true } });
    expect(verifyImage(withPhdr).violations).toEqual([]);
    // PT_PHDR is the first program header (file offset 52); its p_vaddr at +8.
    const bad = withPhdr.slice();
    new DataView(bad.buffer).setUint32(52 + 8, TEXT - 0x1000 + 0x40, true);
    expect(msgs(bad)).toEqual([expect.stringMatching(/PT_PHDR says the table is at 0x8048040/)]);
  });

  it('a flipped byte in a stub: the jump back no longer reaches resume', () => {
    const bad = poke(good, SA + 3, peek(good, SA + 3) ^ 0x40);
    const r = verifyImage(bad);
    expect(r.ok).toBe(false);
    expect(r.violations).toEqual([expect.objectContaining({ addr: A, kind: 'resume' })]);
    expect(r.violations[0]!.message).toMatch(/jump back at 0x8101002 goes to 0x[0-9a-f]+, which is neither resume 0x8049007/);
  });

  it('a flipped escape byte: int 0x80 is not the escape', () => {
    const r = verifyImage(poke(good, SA + 1, 0x80));
    expect(r.violations).toEqual([expect.objectContaining({ addr: A, kind: 'stub', message: expect.stringMatching(/escape at 0x8101000 is cd 80, not int 0x81/) })]);
  });

  it('a flipped byte of a relocated instruction in a stub', () => {
    const r = verifyImage(poke(good, SC + 3, 0xc1)); // mov eax,eax -> mov ecx,eax
    expect(r.violations).toEqual([expect.objectContaining({ addr: C, kind: 'relocation', message: expect.stringMatching(/displaced Mov_rm32_r32 at 0x804900e \(89 c0\) has no byte-identical copy/) })]);
  });

  it('a relocated branch to another target', () => {
    const r = verifyImage(poke(good, SB + 2, peek(good, SB + 2) + 1));
    expect(r.violations).toEqual([expect.objectContaining({ addr: B, kind: 'relocation', message: expect.stringMatching(/Jne_rel32_32 at 0x8101007 goes to 0x8049101/) })]);
  });

  it('the resume jump changed to an address inside the run', () => {
    const p = goodParts();
    p.stubs.set(jmp(SC + 6, TEXT + 0x11), 0x1000 + (SC + 6 - STUB_CODE));
    const r = verifyImage(build(p));
    expect(kinds(r)).toEqual(['resume']);
    expect(r.violations[0]!.addr).toBe(C);
  });

  it('a byte outside every site changed: seen only with the original', () => {
    const bad = poke(good, TEXT + 0x13, 0x90);
    expect(verifyImage(bad).ok).toBe(true);
    const r = verifyImage(bad, ORIGINAL);
    expect(r.violations).toEqual([expect.objectContaining({ addr: TEXT + 0x13, kind: 'changed-byte', message: 'byte 0x8049013 outside every patched run changed: 0x90, was 0xc3' })]);
  });

  it('the site jump redirected or the filler changed', () => {
    expect(verifyImage(poke(good, A, 0xe8)).violations).toEqual([
      expect.objectContaining({ addr: A, kind: 'site-bytes', message: expect.stringMatching(/expected a direct jmp at 0x8049000/) }),
    ]);
    expect(verifyImage(poke(good, A + 5, 0x90)).violations).toEqual([
      expect.objectContaining({ addr: A, kind: 'site-bytes', message: expect.stringMatching(/byte 0x8049005 of the overwritten run is 0x90/) }),
    ]);
    // Site A's jump now lands on site B's stub.
    const p = goodParts();
    p.text.set(jmp(A, SB), 0);
    expect(kinds(verifyImage(build(p)))).toEqual(['site-bytes']);
  });

  it('a bad map magic, or no map at all', () => {
    const r = verifyImage(build({ ...goodParts(), mapBytes: (b) => { const c = b.slice(); c[0] = 0x58; return c; } }));
    expect(r.ok).toBe(false);
    expect(r.violations).toEqual([{ addr: 0, kind: 'patchmap', message: expect.stringMatching(/does not decode: not a patch map: starts with 58 53 50 4d/) }]);
    const none = verifyImage(ORIGINAL);
    expect(none.violations).toEqual([expect.objectContaining({ kind: 'patchmap', message: expect.stringMatching(/no \.ringshift\.patchmap section/) })]);
  });

  it('the map: a wrong SHA-256, displaced bytes that are not the original, an original that is not the form', () => {
    expect(kinds(verifyImage(build({ ...goodParts(), map: { originalSha256: sha(good) } }), ORIGINAL))).toEqual(['sha256']);
    expect(kinds(verifyImage(build({ ...goodParts(), map: { originalSha256: sha(good) } })))).toEqual([]);

    const p = goodParts();
    const d = p.sites[2]!.displaced.slice();
    d[2] = 0xc1; // the evicted mov as recorded differs from the image
    p.sites[2] = { ...p.sites[2]!, displaced: d };
    const r = verifyImage(build(p), ORIGINAL);
    expect(r.violations).toContainEqual(expect.objectContaining({ addr: C, kind: 'displaced' }));

    const q = goodParts();
    q.sites[0] = { ...q.sites[0]!, formId: FORMS[B]! };
    expect(verifyImage(build(q)).violations).toEqual([
      expect.objectContaining({ addr: A, kind: 'site-record', message: expect.stringMatching(/decode to Sgdt_m1632, 7 bytes, the map says Jne_rel32_32, 7 bytes/) }),
    ]);
  });

  it('a jump target inside a run whose tactic assumed there is none', () => {
    const p = goodParts();
    p.symbols.push({ name: 'inner', value: TEXT + 0x10 });
    const r = verifyImage(build(p));
    expect(r.violations).toEqual([
      expect.objectContaining({ addr: C, kind: 'inner-target', message: expect.stringMatching(/0x8049010 inside its overwritten run \[0x804900d, 0x8049012\) is a jump target \(symbol inner\)/) }),
    ]);
    // The same target inside a B1 run (no such assumption) is not a violation.
    const q = goodParts();
    q.symbols.push({ name: 'inner', value: A + 3 });
    expect(verifyImage(build(q)).ok).toBe(true);
  });

  it('a run that evicts an instruction only a jump can reach (it follows a jmp)', () => {
    const p = goodParts();
    const SD = STUB_CODE + STUB_BYTES.length;
    const stubD = u8(jmp(SD, TEXT + 0x32), [0x89, 0xc8, 0x90], jmp(SD + 8, D + 5));
    const stubs = new Uint8Array(p.stubs.length + stubD.length);
    stubs.set(p.stubs);
    stubs.set(stubD, p.stubs.length);
    p.stubs = stubs;
    p.text.set(u8(jmp(D, SD)), D - TEXT);
    p.sites.push(site({ addr: D, tactic: 'T2', stub: 'empty', stubAddr: SD, escapeAddr: 0, resume: D + 5, reason: 'jumps', assumesNoInnerTargets: true }));
    const r = verifyImage(build(p), ORIGINAL);
    expect(r.violations).toEqual([
      expect.objectContaining({ addr: D, kind: 'inner-target', message: expect.stringMatching(/0x8049022 inside its overwritten run \[0x8049020, 0x8049025\) follows an unconditional transfer/) }),
    ]);
    // The stub itself is fine: the dead copies after the relocated jmp are not required.
    expect(r.checked.stubs).toBe(4);
  });

  it('an original segment with other flags', () => {
    const r = verifyImage(build({ ...goodParts(), textFlags: 'rwx' }), ORIGINAL);
    expect(r.violations).toEqual([expect.objectContaining({ addr: TEXT, kind: 'segment', message: expect.stringMatching(/original segment 0 \(load at 0x8049000\) changed: flags 7 \(was 5\)/) })]);
  });

  it('a trap site: unchanged or INT3, and nothing else', () => {
    const p = goodParts();
    p.text.set(ORIGINAL_TEXT.subarray(0, 7), 0);
    p.sites[0] = { ...p.sites[0]!, tactic: 'trap', stub: 'trap', stubAddr: 0, escapeAddr: 0, resume: 0, displaced: new Uint8Array(0) };
    expect(verifyImage(build(p), ORIGINAL).violations).toEqual([]);
    p.text[0] = 0xcc;
    p.sites[0] = { ...p.sites[0]!, displaced: Uint8Array.of(0x0f) };
    expect(verifyImage(build(p), ORIGINAL).violations).toEqual([]);
    p.text[0] = 0x90;
    expect(kinds(verifyImage(build(p), ORIGINAL))).toEqual(['site-bytes']);
  });

  it('bad input is an ElfError, not a violation', () => {
    expect(() => verifyImage(Uint8Array.of(1, 2, 3))).toThrow(ElfError);
    expect(() => verifyImage(good, Uint8Array.of(0x7f, 0x45))).toThrow(ElfError);
  });
});

describe('verifyImage on rewriteImage output for examples/sensitive/sensitive.elf', () => {
  const ROOT = join(import.meta.dirname, '../../..');
  const kernel = join(ROOT, 'examples/sensitive/sensitive.elf');
  const original = readFileSync(kernel);
  const { image, map } = rewriteImage(original, { select: 'sensitive' });

  it('accepts it, having checked every kind of thing', () => {
    const r = verifyImage(image, original);
    expect(r.violations).toEqual([]);
    expect(r.map!.sites).toHaveLength(map.sites.length);
    const c = r.checked;
    expect(c.sites).toBe(map.sites.length);
    expect(c.stubs).toBe(map.sites.filter((s) => s.tactic !== 'trap').length);
    expect(c.multiboot).toBe(1);
    expect(c.relocatedInstructions).toBeGreaterThan(0);
    expect(c.innerTargetSites).toBe(map.sites.filter((s) => s.assumesNoInnerTargets && s.displaced.length > 1).length);
    // Every byte of the original's file-backed segments outside the runs was compared.
    const runs = new Set<number>();
    for (const s of map.sites) for (let i = 0; i < s.displaced.length; i++) runs.add(s.patchStart + i);
    const fileBytes = readElf(original).segments.filter((g) => g.type === 'load').reduce((n, g) => n + g.filesz, 0);
    expect(c.bytesCompared).toBe(fileBytes - runs.size);
  });

  it('a byte of the shared page changed (as a trampoline placed over it would)', () => {
    expect(map.sharedPage).not.toBe(0);
    const r = verifyImage(poke(image, map.sharedPage + 0x10, 0xe9));
    expect(r.violations).toContainEqual(expect.objectContaining({ addr: map.sharedPage + 0x10, kind: 'stub', message: expect.stringMatching(/shared page/) }));
  });

  it('every example kernel keeps its shared page clear of trampolines', () => {
    for (const g of ['hello', 'interrupts', 'nanobench', 'paging', 'usermode']) {
      const orig = readFileSync(join(ROOT, `examples/${g}/${g}.elf`));
      const out = rewriteImage(orig, { select: 'sensitive' });
      expect(peek(out.image, out.map.sharedPage + 4), g).toBe(1);
      expect(verifyImage(out.image, orig).violations, g).toEqual([]);
    }
  });

  it('an inline stub byte changed', () => {
    const s = map.sites.find((x) => x.stub === 'inline')!;
    const r = verifyImage(poke(image, s.stubAddr + 2, peek(image, s.stubAddr + 2) ^ 1));
    expect(r.violations).toContainEqual(expect.objectContaining({ addr: s.addr, kind: 'stub', message: expect.stringMatching(/listing has/) }));
  });

  it('an INT3 trap site restored to the original byte: the record no longer matches the image', () => {
    const s = map.sites.find((x) => x.tactic === 'trap' && x.displaced.length === 1 && x.original[0] !== 0xcc)!;
    const r = verifyImage(poke(image, s.addr, s.original[0]!), original);
    expect(kinds(r)).toEqual(['site-record']);
    expect(r.violations).toContainEqual(expect.objectContaining({ addr: s.addr, kind: 'site-record', message: expect.stringMatching(/unchanged but the record says 1 bytes were displaced/) }));
  });

  it('a multiboot header whose checksum no longer holds', () => {
    const off = [...Array(2048).keys()].map((i) => i * 4).find((o) => new DataView(image.buffer, image.byteOffset).getUint32(o, true) === 0x1badb002)!;
    const bad = image.slice();
    bad[off + 8] ^= 1;
    const r = verifyImage(bad, original);
    expect(kinds(r)).toEqual(['changed-byte', 'multiboot']);
    expect(r.violations).toContainEqual(
      expect.objectContaining({ kind: 'multiboot', message: expect.stringMatching(/the original has a multiboot header .* the patched image has no valid one/) }),
    );
  });

  it('a relocated conditional branch with another condition', () => {
    // jne rel32 in a stub -> je rel32: same target, other condition.
    const p = goodParts();
    p.stubs[0x1000 + (SB - STUB_CODE) + 1] = 0x84;
    const r = verifyImage(build(p));
    expect(r.violations).toEqual([expect.objectContaining({ addr: B, kind: 'relocation', message: expect.stringMatching(/Je_rel32_32 at 0x8101007 goes to 0x8049100, where the displaced Jne_rel32_32 at 0x8049007 went: another kind of branch/) })]);
  });

  /** Addresses of the bytes of the instructions a stub runs, from stubAddr to its first exit (a linear walk). */
  function liveStubBytes(s: PatchedSite): number[] {
    const seg = readElf(image).segments.find((g) => g.type === 'load' && s.stubAddr >= g.vaddr && s.stubAddr < g.vaddr + g.filesz)!;
    const inStubs = (a: number): boolean => a >= map.stubVaddr && a < map.stubVaddr + map.stubSize;
    const dec = new Decoder(32, seg.bytes, s.stubAddr, s.stubAddr - seg.vaddr);
    const out: number[] = [];
    for (let k = 0; k < 64; k++) {
      const ins = dec.decode();
      for (let i = 0; i < ins.length; i++) out.push(ins.ip + i);
      const f = classOf(ins.form).flow;
      if (f === 'return' || f === 'indirect-branch' || (f === 'branch' && !inStubs(ins.target))) break;
      // After the escape of an IRET/SYSEXIT/far JMP the monitor does not come back: dead code.
      if (ins.ip === s.escapeAddr && ['return', 'branch', 'indirect-branch'].includes(classOf(s.formId).flow)) break;
    }
    return out;
  }

  it('property: any byte changed on a stub\'s way from its start to its first exit is a violation', () => {
    const live = map.sites.filter((x) => x.tactic !== 'trap').map((x) => ({ site: x, bytes: liveStubBytes(x) }));
    fc.assert(
      fc.property(fc.nat(live.length - 1), fc.nat(), fc.integer({ min: 1, max: 255 }), (i, j, mask) => {
        const { site: x, bytes } = live[i]!;
        const a = bytes[j % bytes.length]!;
        const r = verifyImage(poke(image, a, peek(image, a) ^ mask));
        void x;
        return !r.ok;
      }),
      // A fixed seed, as in the decoder's property tests: the same 120 corruptions on every run.
      { numRuns: 120, seed: 0x5eed },
    );
  }, 120_000);

  it('verified against another original: SHA-256, recorded bytes and changed bytes all disagree', () => {
    const other = readFileSync(join(ROOT, 'examples/hello/hello.elf'));
    const r = verifyImage(image, other);
    expect(kinds(r)).toEqual(expect.arrayContaining(['sha256', 'displaced', 'changed-byte']));
  });
});

// Version 2: stub ranges and the loader, on a real rewrite of a small user executable whose
// punned jumps land on LOADER pages.
describe('verifyImage: stub ranges and the loader (patch map version 2)', () => {
  const original = buildImage((a: Assembler) => {
    for (let i = 0; i < 6; i++) {
      const l = a.label(`l${i}`);
      a.asm('jne', rel(l));
      a.asm('mov', reg('eax'), imm(0x11223344 + i * 0x01010101));
      a.bind(l);
    }
    a.asm('ret');
  }, { kernel: false });
  const { discovery } = sweepDiscovery(original);
  const sites = pickSites(original, discovery, 'jumps');
  const r = rewriteImage(original, { select: 'jumps', discovery, sites });
  const mapSection = readElf(r.image).sections.find((x) => x.name === '.ringshift.patchmap')!;
  /** The image with its map re-encoded after `f` (same size, so nothing else moves). */
  const withMap = (f: (m: PatchMap) => PatchMap): Uint8Array => {
    const out = r.image.slice();
    const b = encodePatchMap(f(decodePatchMap(mapSection.bytes)));
    expect(b.length).toBe(mapSection.bytes.length);
    out.set(b, mapSection.offset);
    return out;
  };
  const loaderRanges = r.map.stubRanges.filter((x) => x.flags === STUB_RANGE_LOADER);
  const setRange = (i: number, over: Partial<PatchMap['stubRanges'][number]>) => (m: PatchMap): PatchMap => ({
    ...m, stubRanges: m.stubRanges.map((x, k) => (k === i ? { ...x, ...over } : x)),
  });
  const firstLoader = r.map.stubRanges.findIndex((x) => x.flags === STUB_RANGE_LOADER);

  it('the rewrite has LOADER ranges and the loader, and verifies', () => {
    expect(loaderRanges.length).toBeGreaterThan(0);
    expect(r.map.flags & PATCHMAP_FLAG_LOADER).toBe(PATCHMAP_FLAG_LOADER);
    expect(r.map.sites.some((x) => x.tactic === 'B2')).toBe(true);
    const v = verifyImage(r.image, original);
    expect(v.violations).toEqual([]);
    expect(v.checked.stubs).toBe(r.map.sites.length);
  });

  it('a loader byte changed', () => {
    const entry = readElf(r.image).entry;
    const seg = readElf(r.image).segments.find((x) => x.type === 'load' && entry >= x.vaddr && entry < x.vaddr + x.filesz)!;
    const out = r.image.slice();
    out[seg.offset + entry - seg.vaddr + 0x38] ^= 0x10; // the mmap flags
    expect(kinds(verifyImage(out))).toEqual(['loader']);
  });

  it('a byte of a trampoline on a loader page changed', () => {
    const s = r.map.sites.find((x) => x.tactic === 'B2')!;
    const range = r.map.stubRanges.find((x) => s.stubAddr >= x.vaddr && s.stubAddr < x.vaddr + x.size)!;
    expect(range.flags).toBe(STUB_RANGE_LOADER);
    const out = r.image.slice();
    out[range.offset + s.stubAddr - range.vaddr + 1] ^= 0x01; // jne rel32 becomes another Jcc
    expect(verifyImage(out).ok).toBe(false);
  });

  it('a LOADER range moved to other file bytes, off the page grid, or past the end of the file', () => {
    const off = loaderRanges[0]!.offset;
    // The loader's table no longer agrees with the map (and the stub bytes are elsewhere).
    expect(kinds(verifyImage(withMap(setRange(firstLoader, { offset: off + 0x1000 }))))).toContain('loader');
    expect(kinds(verifyImage(withMap(setRange(firstLoader, { offset: off + 0x10 }))))).toContain('patchmap');
    expect(kinds(verifyImage(withMap(setRange(firstLoader, { offset: 0x7fff0000 }))))).toContain('patchmap');
  });

  it('a LOADER range over an original segment, outside user space, or overlapping another range', () => {
    const text = readElf(original).segments.find((x) => x.type === 'load')!;
    const msgs = (img: Uint8Array) => verifyImage(img).violations.filter((v) => v.kind === 'patchmap').map((v) => v.message).join('\n');
    expect(msgs(withMap(setRange(firstLoader, { vaddr: text.vaddr, paddr: text.vaddr })))).toMatch(/overlaps the pages of PT_LOAD segment/);
    expect(msgs(withMap((m) => ({ ...m, stubRanges: [...m.stubRanges.slice(0, -1), { ...m.stubRanges.at(-1)!, vaddr: 0xf6000000, paddr: 0xf6000000 }] }))))
      .toMatch(/outside user space/);
    const r0 = r.map.stubRanges[0]!;
    expect(msgs(withMap(setRange(firstLoader, { vaddr: Math.floor(r0.vaddr / 0x1000) * 0x1000 - 0x1000, paddr: Math.floor(r0.vaddr / 0x1000) * 0x1000 - 0x1000, size: 0x2000 }))))
      .toMatch(/overlap/);
  });

  it('a LOAD range that no PT_LOAD holds, or at another paddr', () => {
    const r0 = r.map.stubRanges[0]!;
    const grow = (m: PatchMap): PatchMap => ({ ...setRange(0, { size: r0.size + 0x100000 })(m), stubSize: r0.size + 0x100000 });
    expect(verifyImage(withMap(grow)).violations.map((v) => v.message).join('\n')).toMatch(/no PT_LOAD segment holds stub range 0/);
    const moved = (m: PatchMap): PatchMap => ({ ...setRange(0, { paddr: r0.paddr + 0x1000 })(m), stubPaddr: r0.paddr + 0x1000 });
    expect(verifyImage(withMap(moved)).violations.map((v) => v.message).join('\n')).toMatch(/loaded at physical/);
  });

  it('the original entry: the loader must jump to the original image\'s entry point', () => {
    const wrong = withMap((m) => ({ ...m, originalEntry: m.originalEntry + 1 }));
    expect(kinds(verifyImage(wrong, original))).toEqual(['loader', 'segment']);
  });

  it('a loader page relabelled as a PT_LOAD range: no PT_LOAD holds it, and its stubs are unmapped', () => {
    const s = r.map.sites.find((x) => x.tactic === 'B2')!;
    const i = r.map.stubRanges.findIndex((x) => s.stubAddr >= x.vaddr && s.stubAddr < x.vaddr + x.size);
    const v = verifyImage(withMap(setRange(i, { flags: STUB_RANGE_LOAD, offset: 0 })));
    expect(kinds(v)).toContain('patchmap');
    expect(kinds(v)).toContain('loader');
    expect(v.ok).toBe(false);
  });
});
