// Patch map encoding: round trips, the exact byte layout of docs/patch-map.md (read back with a
// DataView at the documented offsets, not with the decoder), and every refusal.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PatchMap, PatchedSite, SiteReason, StubKind, Tactic } from '../src/model';
import { PATCHMAP_FLAG_INLINE_FLAT_DS, PATCHMAP_FLAG_KERNEL } from '../src/model';
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
    expect(dv.getUint16(4, true)).toBe(1);
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
    expect(Buffer.from(b.subarray(80, 89)).toString()).toBe('sensitive');
    // select padded to 12 → first record at 92
    const r = 92;
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
    const empty = map({ sites: [], select: '', stubVaddr: 0, stubPaddr: 0, stubSize: 0, sharedPage: 0, flags: 0 });
    expect(decodePatchMap(encodePatchMap(empty))).toEqual(empty);
    expect(encodePatchMap(empty).length).toBe(80);
  });

  it('round-trips random maps (fast-check, fixed seed)', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const arbSite = fc.record({
      addr: u32, original: fc.uint8Array({ minLength: 1, maxLength: 15 }), formId: fc.integer({ min: 0, max: 5000 }),
      reason: fc.constantFrom<SiteReason>('privileged', 'iopl', 'sensitive-unprivileged', 'jumps', 'selected'),
      tactic: fc.constantFrom<Tactic>('B1', 'B2', 'T1', 'T2', 'T3', 'trap'),
      stub: fc.constantFrom<StubKind>('inline', 'escape', 'empty', 'trap'),
      stubAddr: u32, escapeAddr: u32, patchStart: u32, displaced: fc.uint8Array({ maxLength: 40 }), resume: u32,
      assumesNoInnerTargets: fc.boolean(),
    });
    const arbMap = fc.record({
      version: fc.constant(PATCHMAP_VERSION), originalSha256: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
      select: fc.string({ maxLength: 30, unit: 'binary' }), stubVaddr: u32, stubPaddr: u32, stubSize: u32, sharedPage: u32,
      flags: u32, sites: fc.array(arbSite, { maxLength: 10 }),
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
    expect(() => decodePatchMap(withByte(4, 2))).toThrow(/unsupported patch map version 2/);
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
    expect(() => decodePatchMap(withByte(92 + 9, 9))).toThrow(/unknown tactic code 9/);
    expect(() => decodePatchMap(withByte(92 + 8, 0))).toThrow(/unknown reason code 0/);
    expect(() => decodePatchMap(withByte(92 + 10, 7))).toThrow(/unknown stub kind code 7/);
    expect(() => decodePatchMap(withByte(92 + 11, 2))).toThrow(/unknown site flags/);
    expect(() => decodePatchMap(withByte(38, 1))).toThrow(/reserved/);
    expect(() => decodePatchMap(withByte(75, 1))).toThrow(/reserved/);
    expect(() => decodePatchMap(withByte(92 + 30, 1))).toThrow(/reserved/);
    expect(() => decodePatchMap(withByte(92 + 39, 1))).toThrow(/reserved/); // record padding
    expect(() => decodePatchMap(withByte(91, 1))).toThrow(/reserved/); // select padding
  });
  it('refuses to encode what the format cannot hold', () => {
    expect(() => encodePatchMap(map({ version: 2 }))).toThrow(/version 2/);
    expect(() => encodePatchMap(map({ originalSha256: 'ABC' }))).toThrow(/64 lowercase hex/);
    expect(() => encodePatchMap(map({ stubVaddr: 2 ** 32 }))).toThrow(/32-bit/);
    expect(() => encodePatchMap(map({ sites: [site({ original: new Uint8Array(16) })] }))).toThrow(/1 to 15/);
    expect(() => encodePatchMap(map({ sites: [site({ displaced: new Uint8Array(256) })] }))).toThrow(/255/);
    expect(() => encodePatchMap(map({ sites: [site({ tactic: 'B9' as Tactic })] }))).toThrow(/unknown tactic/);
  });
});
