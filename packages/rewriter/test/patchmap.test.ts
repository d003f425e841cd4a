// Patch map encoding: round trips, the exact byte layout of docs/patch-map.md (read back with a
// DataView at the documented offsets, not with the decoder), and every refusal.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PatchMap, PatchedSite, SiteReason, StubKind, Tactic } from '../src/model';
import { PATCHMAP_FLAG_INLINE_FLAT_DS, PATCHMAP_FLAG_KERNEL, PATCHMAP_FLAG_LOADER, STUB_RANGE_LOAD, STUB_RANGE_LOADER } from '../src/model';
import { PATCHMAP_VERSION, PatchMapError, decodePatchMap, encodePatchMap } from '../src/patchmap';

const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function site(over: Partial<PatchedSite> = {}): PatchedSite {
  return {
    addr: 0x100010, original: Uint8Array.of(0xfa), formId: 123, reason: 'iopl', tactic: 'T2', stub: 'inline',
    stubAddr: 0xffc01000, escapeAddr: 0, patchStart: 0x100010, displaced: Uint8Array.of(0xfa, 0x89, 0xd8, 0x40, 0x41),
    resume: 0x100015, assumesNoInnerTargets: true, ...over,
  };
}

function map(over: Partial<PatchMap> = {}): PatchMap {
  return {
    version: PATCHMAP_VERSION, originalSha256: SHA, select: 'sensitive', stubVaddr: 0xffc00000, stubPaddr: 0x200000,
    stubSize: 0x2000, sharedPage: 0xffc00000, flags: PATCHMAP_FLAG_KERNEL | PATCHMAP_FLAG_INLINE_FLAT_DS,
    stubRanges: [
      { vaddr: 0xffc00000, paddr: 0x200000, offset: 0, size: 0x2000, flags: STUB_RANGE_LOAD },
      { vaddr: 0xffc80000, paddr: 0x202000, offset: 0, size: 0x123, flags: STUB_RANGE_LOAD },
    ],
    originalEntry: 0,
    sites: [site(), site({ addr: 0x100020, original: Uint8Array.of(0x0f, 0x01, 0x0d, 1, 2, 3, 4), tactic: 'B1', stub: 'escape',
      reason: 'sensitive-unprivileged', escapeAddr: 0xffc01020, displaced: Uint8Array.of(0x0f, 0x01, 0x0d, 1, 2, 3, 4),
      patchStart: 0x100020, resume: 0x100027, assumesNoInnerTargets: false })],
    ...over,
  };
}

describe('patch map layout', () => {
  it('puts every header and record field at the documented offset', () => {
    const m = map();
    const b = encodePatchMap(m);
    const dv = new DataView(b.buffer);
    expect([...b.subarray(0, 4)]).toEqual([0x52, 0x53, 0x50, 0x4d]);
    expect(dv.getUint16(4, true)).toBe(2);
    expect(dv.getUint16(6, true)).toBe(80);
    expect(dv.getUint32(8, true)).toBe(b.length);
    expect(dv.getUint32(12, true)).toBe(3);
    expect(dv.getUint32(16, true)).toBe(0xffc00000);
    expect(dv.getUint32(20, true)).toBe(0x200000);
    expect(dv.getUint32(24, true)).toBe(0x2000);
    expect(dv.getUint32(28, true)).toBe(0xffc00000);
    expect(dv.getUint32(32, true)).toBe(2);
    expect(dv.getUint16(36, true)).toBe(9);
    expect(Buffer.from(b.subarray(40, 72)).toString('hex')).toBe(SHA);
    expect(dv.getUint32(72, true)).toBe(2); // range count
    expect(dv.getUint32(76, true)).toBe(0); // original entry (no loader)
    expect(Buffer.from(b.subarray(80, 89)).toString()).toBe('sensitive');
    // select padded to 12 → ranges at 92, 24 bytes each
    for (const [i, want] of [[0, [0xffc00000, 0x200000, 0, 0x2000, 1, 0]], [1, [0xffc80000, 0x202000, 0, 0x123, 1, 0]]] as const) {
      expect([0, 4, 8, 12, 16, 20].map((o) => dv.getUint32(92 + 24 * i + o, true))).toEqual(want);
    }
    // first site record at 92 + 48
    const r = 140;
    expect(dv.getUint32(r, true)).toBe(0x100010);
    expect(dv.getUint32(r + 4, true)).toBe(123);
    expect([b[r + 8], b[r + 9], b[r + 10], b[r + 11]]).toEqual([2, 4, 1, 1]); // iopl, T2, inline, assumes
    expect(dv.getUint32(r + 12, true)).toBe(0xffc01000);
    expect(dv.getUint32(r + 16, true)).toBe(0);
    expect(dv.getUint32(r + 20, true)).toBe(0x100010);
    expect(dv.getUint32(r + 24, true)).toBe(0x100015);
    expect([b[r + 28], b[r + 29]]).toEqual([1, 5]);
    expect([...b.subarray(r + 32, r + 38)]).toEqual([0xfa, 0xfa, 0x89, 0xd8, 0x40, 0x41]);
    // 32 + 1 + 5 = 38 → padded to 40
    const r2 = r + 40;
    expect(dv.getUint32(r2, true)).toBe(0x100020);
    expect([b[r2 + 8], b[r2 + 9], b[r2 + 10], b[r2 + 11]]).toEqual([3, 1, 2, 0]);
    expect(dv.getUint32(r2 + 16, true)).toBe(0xffc01020);
    expect(b.length).toBe(r2 + 32 + 7 + 7 + 2);
  });

  it('round-trips', () => {
    const m = map();
    expect(decodePatchMap(encodePatchMap(m))).toEqual(m);
    const empty = map({ sites: [], select: '', stubVaddr: 0, stubPaddr: 0, stubSize: 0, sharedPage: 0, flags: 0, stubRanges: [] });
    expect(decodePatchMap(encodePatchMap(empty))).toEqual(empty);
    expect(encodePatchMap(empty).length).toBe(80);
  });

  it('round-trips random maps (fast-check, fixed seed)', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const arbSite = fc.record({
      addr: u32, original: fc.uint8Array({ minLength: 1, maxLength: 15 }), formId: fc.integer({ min: 0, max: 5000 }),
      reason: fc.constantFrom<SiteReason>('privileged', 'iopl', 'sensitive-unprivileged', 'jumps', 'selected', 'evicted'),
      tactic: fc.constantFrom<Tactic>('B1', 'B2', 'T1', 'T2e', 'T3e', 'T2', 'T3', 'trap'),
      stub: fc.constantFrom<StubKind>('inline', 'escape', 'empty', 'trap'),
      stubAddr: u32, escapeAddr: u32, patchStart: u32, displaced: fc.uint8Array({ maxLength: 40 }), resume: u32,
      assumesNoInnerTargets: fc.boolean(),
    });
    const page = fc.integer({ min: 0, max: 0xfffff }).map((p) => p * 0x1000);
    const arbRanges = fc.tuple(
      fc.record({ vaddr: fc.integer({ min: 0, max: 0xffdff }).map((p) => p * 0x1000), paddr: u32, size: fc.integer({ min: 1, max: 0x100000 }) }),
      fc.uniqueArray(page, { maxLength: 6 }),
      fc.boolean(),
    ).map(([r0, rest, loader]) => [
      { ...r0, offset: 0, flags: STUB_RANGE_LOAD },
      ...[...rest].sort((a, b) => a - b).filter((v) => v < 0xfff00000).map((v, i) => (loader && i % 2 === 0
        ? { vaddr: v, paddr: v, offset: (i + 1) * 0x1000, size: 0x1000, flags: STUB_RANGE_LOADER }
        : { vaddr: v, paddr: v + 0x1000, offset: 0, size: 0x10, flags: STUB_RANGE_LOAD })),
    ]);
    const arbMap = fc.record({
      version: fc.constant(PATCHMAP_VERSION), originalSha256: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
      select: fc.string({ maxLength: 30, unit: 'binary' }), sharedPage: u32, inline: fc.boolean(), kernel: fc.boolean(),
      entry: u32, ranges: fc.option(arbRanges), sites: fc.array(arbSite, { maxLength: 10 }),
    }).map(({ inline, kernel, entry, ranges, ...m }): PatchMap => {
      const loader = !kernel && (ranges ?? []).some((r) => r.flags === STUB_RANGE_LOADER);
      const rs = (ranges ?? []).filter((r) => !kernel || r.flags === STUB_RANGE_LOAD);
      return {
        ...m, flags: (inline ? PATCHMAP_FLAG_INLINE_FLAT_DS : 0) | (kernel ? PATCHMAP_FLAG_KERNEL : 0) | (loader ? PATCHMAP_FLAG_LOADER : 0),
        stubRanges: rs, originalEntry: loader ? entry : 0,
        stubVaddr: rs[0]?.vaddr ?? 0, stubPaddr: rs[0]?.paddr ?? 0, stubSize: rs[0]?.size ?? 0,
      };
    });
    fc.assert(fc.property(arbMap, (m) => {
      const b = encodePatchMap(m);
      expect(b.length % 4).toBe(0);
      expect(decodePatchMap(b)).toEqual(m);
    }), { seed: 0x9a7c4, numRuns: 300 });
  });
});

describe('patch map refusals', () => {
  const good = encodePatchMap(map());
  const withByte = (off: number, v: number): Uint8Array => { const b = good.slice(); b[off] = v; return b; };

  it('refuses a wrong magic', () => {
    expect(() => decodePatchMap(withByte(0, 0x7f))).toThrow(/not a patch map: starts with 7f 53 50 4d/);
    expect(() => decodePatchMap(Uint8Array.of(1, 2))).toThrow(PatchMapError);
  });
  it('refuses another version', () => {
    expect(() => decodePatchMap(withByte(4, 1))).toThrow(/unsupported patch map version 1/);
    expect(() => decodePatchMap(withByte(4, 3))).toThrow(/unsupported patch map version 3/);
  });
  it('refuses every truncation and trailing bytes', () => {
    for (let n = 0; n < good.length; n++) expect(() => decodePatchMap(good.subarray(0, n)), `length ${n}`).toThrow(PatchMapError);
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    expect(() => decodePatchMap(longer)).toThrow(/trailing/);
  });
  it('refuses a total size that lies about the records', () => {
    const b = good.slice();
    new DataView(b.buffer).setUint32(32, 3, true); // three sites announced, two present
    expect(() => decodePatchMap(b)).toThrow(/truncated|runs past/);
  });
  it('refuses unknown codes and non-zero reserved bytes', () => {
    expect(() => decodePatchMap(withByte(140 + 9, 9))).toThrow(/unknown tactic code 9/);
    expect(() => decodePatchMap(withByte(140 + 8, 0))).toThrow(/unknown reason code 0/);
    expect(() => decodePatchMap(withByte(140 + 10, 7))).toThrow(/unknown stub kind code 7/);
    expect(() => decodePatchMap(withByte(140 + 11, 2))).toThrow(/unknown site flags/);
    expect(() => decodePatchMap(withByte(38, 1))).toThrow(/reserved/);
    expect(() => decodePatchMap(withByte(140 + 30, 1))).toThrow(/reserved/);
    expect(() => decodePatchMap(withByte(140 + 39, 1))).toThrow(/reserved/); // record padding
    expect(() => decodePatchMap(withByte(91, 1))).toThrow(/reserved/); // select padding
    expect(() => decodePatchMap(withByte(92 + 24 + 21, 1))).toThrow(/reserved/); // range record
    expect(() => decodePatchMap(withByte(15, 0x80))).toThrow(/unknown flags 0x80000000/);
  });
  it('refuses inconsistent stub ranges', () => {
    const set = (off: number, v: number): Uint8Array => { const b = good.slice(); new DataView(b.buffer).setUint32(off, v, true); return b; };
    expect(() => decodePatchMap(set(16, 0xffc01000))).toThrow(/not those of range 0/); // header vaddr ≠ range 0
    expect(() => decodePatchMap(set(24, 0x3000))).toThrow(/not those of range 0/);
    expect(() => decodePatchMap(set(72, 3))).toThrow(PatchMapError); // one range too many announced
    expect(() => decodePatchMap(set(72, 0x10000000))).toThrow(/truncated patch map: 268435456 stub ranges/);
    expect(() => decodePatchMap(set(92 + 24 + 16, 3))).toThrow(/exactly one of LOAD/);
    expect(() => decodePatchMap(set(92 + 24 + 16, 0))).toThrow(/exactly one of LOAD/);
    expect(() => decodePatchMap(set(92 + 24 + 16, STUB_RANGE_LOADER))).toThrow(/LOADER range in a map without the LOADER flag/);
    expect(() => decodePatchMap(set(92 + 24 + 12, 0))).toThrow(/size 0/);
    expect(() => decodePatchMap(set(92 + 24 + 8, 0x1000))).toThrow(/LOAD range has file offset/);
    expect(() => decodePatchMap(set(92 + 24 + 12, 0x00400000))).toThrow(/wraps around/);
    expect(() => decodePatchMap(set(76, 0x100000))).toThrow(/original entry 0x100000 without the LOADER flag/);
    expect(() => decodePatchMap(set(12, PATCHMAP_FLAG_KERNEL | PATCHMAP_FLAG_LOADER))).toThrow(/LOADER and KERNEL/);
    const three = map({ stubRanges: [...map().stubRanges, { vaddr: 0xffc40000, paddr: 0x203000, offset: 0, size: 16, flags: STUB_RANGE_LOAD }] });
    expect(() => encodePatchMap(three)).toThrow(/ascending vaddr order/);
    expect(() => encodePatchMap(map({ stubVaddr: 0 }))).toThrow(/not those of range 0/);
  });
  it('refuses to encode what the format cannot hold', () => {
    expect(() => encodePatchMap(map({ version: 1 }))).toThrow(/version 1/);
    expect(() => encodePatchMap(map({ originalSha256: 'ABC' }))).toThrow(/64 lowercase hex/);
    expect(() => encodePatchMap(map({ stubVaddr: 2 ** 32 }))).toThrow(/32-bit/);
    expect(() => encodePatchMap(map({ sites: [site({ original: new Uint8Array(16) })] }))).toThrow(/1 to 15/);
    expect(() => encodePatchMap(map({ sites: [site({ displaced: new Uint8Array(256) })] }))).toThrow(/255/);
    expect(() => encodePatchMap(map({ sites: [site({ tactic: 'B9' as Tactic })] }))).toThrow(/unknown tactic/);
  });
});
