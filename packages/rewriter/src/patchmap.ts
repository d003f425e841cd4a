// The patch map's byte form: the contents of the `.ringshift.patchmap` section. The layout is a
// contract between the rewriter and the runtime, which never import each other, so it is
// specified in docs/patch-map.md and both sides are written against that document. Everything is
// little-endian; every multi-byte field is aligned to its size so a reader can use a DataView
// or a struct without unaligned loads.
//
// Decoding is strict: a map that does not round-trip exactly (unknown codes, non-zero reserved
// fields, trailing bytes) is refused, because the runtime trusts the map only after checking it
// and a lenient reader would hide a corrupt or mismatched section.
import type { PatchMap, PatchedSite, SiteReason, StubKind, StubRange, Tactic } from './model';
import { PATCHMAP_FLAG_INLINE_FLAT_DS, PATCHMAP_FLAG_KERNEL, PATCHMAP_FLAG_LOADER, STUB_RANGE_LOAD, STUB_RANGE_LOADER } from './model';

/** Thrown by decodePatchMap (and encodePatchMap for unencodable input); the message says what and where. */
export class PatchMapError extends Error {
  override name = 'PatchMapError';
}

/** 'RSPM' read as bytes 52 53 50 4D. */
export const PATCHMAP_MAGIC = Uint8Array.from([0x52, 0x53, 0x50, 0x4d]);
/** Bumped on any incompatible change of docs/patch-map.md. */
export const PATCHMAP_VERSION = 2;
/** Size of the fixed header (docs/patch-map.md §Header). */
export const PATCHMAP_HEADER_SIZE = 80;
/** Size of a stub range record (docs/patch-map.md §Stub range record). */
export const PATCHMAP_RANGE_SIZE = 24;
const KNOWN_FLAGS = PATCHMAP_FLAG_INLINE_FLAT_DS | PATCHMAP_FLAG_KERNEL | PATCHMAP_FLAG_LOADER;
/** Size of the fixed part of a site record (docs/patch-map.md §Site record). */
export const PATCHMAP_SITE_FIXED_SIZE = 32;
/** Site record flag: PatchedSite.assumesNoInnerTargets. */
export const PATCHMAP_SITE_ASSUMES_NO_INNER_TARGETS = 1 << 0;

// Codes of the one-byte enumerations. 0 is never used, so a zeroed record is invalid.
export const SITE_REASON_CODES: Readonly<Record<SiteReason, number>> = {
  privileged: 1, iopl: 2, 'sensitive-unprivileged': 3, jumps: 4, selected: 5, evicted: 6,
};
export const TACTIC_CODES: Readonly<Record<Tactic, number>> = { B1: 1, B2: 2, T1: 3, T2: 4, T3: 5, trap: 6, T2e: 7, T3e: 8 };
export const STUB_KIND_CODES: Readonly<Record<StubKind, number>> = { inline: 1, escape: 2, empty: 3, trap: 4 };

const invert = <T extends string>(codes: Readonly<Record<T, number>>): ReadonlyMap<number, T> =>
  new Map(Object.entries(codes).map(([k, v]) => [v as number, k as T]));
const REASONS = invert(SITE_REASON_CODES);
const TACTICS = invert(TACTIC_CODES);
const STUBS = invert(STUB_KIND_CODES);

const hex = (n: number): string => `0x${n.toString(16)}`;
const pad4 = (n: number): number => (n + 3) & ~3;
const isU32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

function utf8Encode(s: string): Uint8Array {
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

function utf8Decode(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (n === 0 || i + n > b.length) throw new PatchMapError(`select string: invalid UTF-8 at byte ${i}`);
    let cp = n === 1 ? c : c & (0xff >> (n + 1));
    for (let k = 1; k < n; k++) {
      const x = b[i + k]!;
      if ((x & 0xc0) !== 0x80) throw new PatchMapError(`select string: invalid UTF-8 at byte ${i + k}`);
      cp = (cp << 6) | (x & 63);
    }
    s += String.fromCodePoint(cp);
    i += n;
  }
  return s;
}

function hexToBytes(h: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(h)) throw new PatchMapError(`originalSha256 ${JSON.stringify(h)} is not 64 lowercase hex digits`);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function siteRecordSize(s: PatchedSite): number {
  return pad4(PATCHMAP_SITE_FIXED_SIZE + s.original.length + s.displaced.length);
}

/**
 * The rules on stub ranges both sides enforce (docs/patch-map.md §Stub range record): the header's
 * stub fields are range 0's, a LOAD range 0, valid flags, order, LOADER ranges only with the flag.
 */
function checkRanges(m: Pick<PatchMap, 'stubVaddr' | 'stubPaddr' | 'stubSize' | 'flags' | 'originalEntry' | 'stubRanges'>, firstOffset: number): void {
  const { flags } = m;
  if (flags & ~KNOWN_FLAGS) throw new PatchMapError(`header: unknown flags ${hex((flags & ~KNOWN_FLAGS) >>> 0)}`);
  if ((flags & PATCHMAP_FLAG_LOADER) === 0 && m.originalEntry !== 0) {
    throw new PatchMapError(`header: original entry ${hex(m.originalEntry)} without the LOADER flag (must be 0)`);
  }
  if ((flags & PATCHMAP_FLAG_LOADER) !== 0 && (flags & PATCHMAP_FLAG_KERNEL) !== 0) {
    throw new PatchMapError('header: the LOADER and KERNEL flags together (a kernel has no loader)');
  }
  m.stubRanges.forEach((r, i) => {
    const what = `stub range ${i} at offset ${firstOffset + i * PATCHMAP_RANGE_SIZE}`;
    if (r.flags !== STUB_RANGE_LOAD && r.flags !== STUB_RANGE_LOADER) {
      throw new PatchMapError(`${what}: flags ${hex(r.flags)}, expected exactly one of LOAD (1) and LOADER (2)`);
    }
    if (r.size === 0) throw new PatchMapError(`${what}: size 0`);
    if (r.flags === STUB_RANGE_LOAD && r.offset !== 0) throw new PatchMapError(`${what}: a LOAD range has file offset ${hex(r.offset)}, must be 0`);
    if (r.flags === STUB_RANGE_LOADER && (flags & PATCHMAP_FLAG_LOADER) === 0) {
      throw new PatchMapError(`${what}: a LOADER range in a map without the LOADER flag`);
    }
    if (r.vaddr + r.size > 2 ** 32) throw new PatchMapError(`${what}: [${hex(r.vaddr)}, +${hex(r.size)}) wraps around 2^32`);
    if (i >= 2 && r.vaddr <= m.stubRanges[i - 1]!.vaddr) throw new PatchMapError(`${what}: ranges after range 0 must be in ascending vaddr order`);
  });
  const r0 = m.stubRanges[0];
  if (r0 ? r0.vaddr !== m.stubVaddr || r0.paddr !== m.stubPaddr || r0.size !== m.stubSize || r0.flags !== STUB_RANGE_LOAD
    : m.stubVaddr !== 0 || m.stubPaddr !== 0 || m.stubSize !== 0) {
    throw new PatchMapError(`header: stub vaddr/paddr/size ${hex(m.stubVaddr)}/${hex(m.stubPaddr)}/${hex(m.stubSize)} are not those of range 0 (a LOAD range), or not 0 without ranges`);
  }
}

/** The u32 fields of a site record and of a stub range, checked before encoding. */
const SITE_U32_FIELDS = ['addr', 'formId', 'stubAddr', 'escapeAddr', 'patchStart', 'resume'] as const;
const RANGE_U32_FIELDS = ['vaddr', 'paddr', 'offset', 'size', 'flags'] as const;

/** Encodes a patch map as docs/patch-map.md describes. Throws PatchMapError for values the format cannot hold. */
export function encodePatchMap(map: PatchMap): Uint8Array {
  if (map.version !== PATCHMAP_VERSION) {
    throw new PatchMapError(`version ${map.version}: this encoder writes version ${PATCHMAP_VERSION} only`);
  }
  const sha = hexToBytes(map.originalSha256);
  const select = utf8Encode(map.select);
  if (select.length > 0xffff) throw new PatchMapError(`select string is ${select.length} bytes, more than 65535`);
  for (const [k, v] of [
    ['flags', map.flags], ['stubVaddr', map.stubVaddr], ['stubPaddr', map.stubPaddr], ['stubSize', map.stubSize],
    ['sharedPage', map.sharedPage],
  ] as const) {
    if (!isU32(v)) throw new PatchMapError(`${k} ${String(v)} is not a 32-bit unsigned number`);
  }
  if (!isU32(map.originalEntry)) throw new PatchMapError(`originalEntry ${String(map.originalEntry)} is not a 32-bit unsigned number`);
  map.stubRanges.forEach((r, i) => {
    for (const k of RANGE_U32_FIELDS) {
      if (!isU32(r[k])) throw new PatchMapError(`stub range ${i}: ${k} ${String(r[k])} is not a 32-bit unsigned number`);
    }
  });
  checkRanges(map, PATCHMAP_HEADER_SIZE + pad4(select.length));
  let size = PATCHMAP_HEADER_SIZE + pad4(select.length) + map.stubRanges.length * PATCHMAP_RANGE_SIZE;
  for (const s of map.sites) size += siteRecordSize(s);

  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out.set(PATCHMAP_MAGIC, 0);
  dv.setUint16(4, PATCHMAP_VERSION, true);
  dv.setUint16(6, PATCHMAP_HEADER_SIZE, true);
  dv.setUint32(8, size, true);
  dv.setUint32(12, map.flags, true);
  dv.setUint32(16, map.stubVaddr, true);
  dv.setUint32(20, map.stubPaddr, true);
  dv.setUint32(24, map.stubSize, true);
  dv.setUint32(28, map.sharedPage, true);
  dv.setUint32(32, map.sites.length, true);
  dv.setUint16(36, select.length, true);
  // 38..39 reserved (0)
  out.set(sha, 40);
  dv.setUint32(72, map.stubRanges.length, true);
  dv.setUint32(76, map.originalEntry, true);
  out.set(select, PATCHMAP_HEADER_SIZE);

  let at = PATCHMAP_HEADER_SIZE + pad4(select.length);
  for (const r of map.stubRanges) {
    dv.setUint32(at, r.vaddr, true);
    dv.setUint32(at + 4, r.paddr, true);
    dv.setUint32(at + 8, r.offset, true);
    dv.setUint32(at + 12, r.size, true);
    dv.setUint32(at + 16, r.flags, true);
    // 20..23 reserved (0)
    at += PATCHMAP_RANGE_SIZE;
  }
  map.sites.forEach((s, i) => {
    // Built only for an error: a string per record is a measurable share of a busybox rewrite.
    const what = (): string => `site ${i} (${hex(s.addr)})`;
    for (let f = 0; f < SITE_U32_FIELDS.length; f++) {
      const k = SITE_U32_FIELDS[f]!;
      if (!isU32(s[k])) throw new PatchMapError(`${what()}: ${k} ${String(s[k])} is not a 32-bit unsigned number`);
    }
    const reason = SITE_REASON_CODES[s.reason];
    const tactic = TACTIC_CODES[s.tactic];
    const stub = STUB_KIND_CODES[s.stub];
    if (reason === undefined) throw new PatchMapError(`${what()}: unknown reason ${String(s.reason)}`);
    if (tactic === undefined) throw new PatchMapError(`${what()}: unknown tactic ${String(s.tactic)}`);
    if (stub === undefined) throw new PatchMapError(`${what()}: unknown stub kind ${String(s.stub)}`);
    if (s.original.length < 1 || s.original.length > 15) {
      throw new PatchMapError(`${what()}: ${s.original.length} original bytes (an instruction has 1 to 15)`);
    }
    if (s.displaced.length > 255) throw new PatchMapError(`${what()}: ${s.displaced.length} displaced bytes, more than 255`);
    dv.setUint32(at, s.addr, true);
    dv.setUint32(at + 4, s.formId, true);
    out[at + 8] = reason;
    out[at + 9] = tactic;
    out[at + 10] = stub;
    out[at + 11] = s.assumesNoInnerTargets ? PATCHMAP_SITE_ASSUMES_NO_INNER_TARGETS : 0;
    dv.setUint32(at + 12, s.stubAddr, true);
    dv.setUint32(at + 16, s.escapeAddr, true);
    dv.setUint32(at + 20, s.patchStart, true);
    dv.setUint32(at + 24, s.resume, true);
    out[at + 28] = s.original.length;
    out[at + 29] = s.displaced.length;
    // 30..31 reserved (0)
    out.set(s.original, at + 32);
    out.set(s.displaced, at + 32 + s.original.length);
    at += siteRecordSize(s);
  });
  return out;
}

/**
 * Decodes a `.ringshift.patchmap` section. Throws PatchMapError on a wrong magic, an unsupported
 * version, truncation, unknown codes, non-zero reserved bytes or trailing bytes.
 */
export function decodePatchMap(bytes: Uint8Array): PatchMap {
  const n = bytes.length;
  if (n < 4) throw new PatchMapError(`truncated patch map: ${n} bytes, shorter than the magic`);
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== PATCHMAP_MAGIC[i]) {
      const got = Array.from(bytes.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ');
      throw new PatchMapError(`not a patch map: starts with ${got}, not the magic 52 53 50 4d ('RSPM')`);
    }
  }
  if (n < 8) throw new PatchMapError(`truncated patch map: ${n} bytes, shorter than magic + version + header size`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(4, true);
  if (version !== PATCHMAP_VERSION) {
    throw new PatchMapError(`unsupported patch map version ${version} (this reader knows version ${PATCHMAP_VERSION})`);
  }
  const headerSize = dv.getUint16(6, true);
  if (headerSize !== PATCHMAP_HEADER_SIZE) {
    throw new PatchMapError(`header size ${headerSize}, expected ${PATCHMAP_HEADER_SIZE} for version ${PATCHMAP_VERSION}`);
  }
  if (n < headerSize) throw new PatchMapError(`truncated patch map: ${n} bytes, shorter than the ${headerSize}-byte header`);
  const total = dv.getUint32(8, true);
  if (total > n) throw new PatchMapError(`truncated patch map: the header says ${total} bytes, the section has ${n}`);
  if (total < n) throw new PatchMapError(`patch map has ${n - total} trailing bytes after its ${total} bytes`);
  const zero = (from: number, to: number, what: string): void => {
    for (let i = from; i < to; i++) {
      if (bytes[i] !== 0) throw new PatchMapError(`${what}: reserved byte at offset ${i} is ${hex(bytes[i]!)}, not 0`);
    }
  };
  zero(38, 40, 'header');
  const flags = dv.getUint32(12, true);
  const count = dv.getUint32(32, true);
  const selectLen = dv.getUint16(36, true);
  const rangeCount = dv.getUint32(72, true);
  const originalEntry = dv.getUint32(76, true);
  let at = headerSize + pad4(selectLen);
  if (at > total) throw new PatchMapError(`truncated patch map: the ${selectLen}-byte select string runs past the end`);
  const select = utf8Decode(bytes.subarray(headerSize, headerSize + selectLen));
  zero(headerSize + selectLen, at, 'select string padding');

  if (rangeCount > (total - at) / PATCHMAP_RANGE_SIZE) {
    throw new PatchMapError(`truncated patch map: ${rangeCount} stub ranges announced, the section has room for ${Math.floor((total - at) / PATCHMAP_RANGE_SIZE)}`);
  }
  const stubRanges: StubRange[] = [];
  for (let i = 0; i < rangeCount; i++) {
    const r: StubRange = {
      vaddr: dv.getUint32(at, true), paddr: dv.getUint32(at + 4, true), offset: dv.getUint32(at + 8, true),
      size: dv.getUint32(at + 12, true), flags: dv.getUint32(at + 16, true),
    };
    zero(at + 20, at + 24, `stub range ${i} at offset ${at}`);
    stubRanges.push(r);
    at += PATCHMAP_RANGE_SIZE;
  }
  const stubVaddr = dv.getUint32(16, true), stubPaddr = dv.getUint32(20, true), stubSize = dv.getUint32(24, true);
  checkRanges({ stubVaddr, stubPaddr, stubSize, flags, originalEntry, stubRanges }, headerSize + pad4(selectLen));

  const sites: PatchedSite[] = [];
  for (let i = 0; i < count; i++) {
    const what = `site ${i} at offset ${at}`;
    if (at + PATCHMAP_SITE_FIXED_SIZE > total) {
      throw new PatchMapError(`truncated patch map: ${what} runs past the end (${count} sites announced)`);
    }
    const origLen = bytes[at + 28]!;
    const dispLen = bytes[at + 29]!;
    const size = pad4(PATCHMAP_SITE_FIXED_SIZE + origLen + dispLen);
    if (at + size > total) throw new PatchMapError(`truncated patch map: ${what} (${size} bytes) runs past the end`);
    if (origLen < 1 || origLen > 15) throw new PatchMapError(`${what}: original length ${origLen} (an instruction has 1 to 15 bytes)`);
    const reason = REASONS.get(bytes[at + 8]!);
    const tactic = TACTICS.get(bytes[at + 9]!);
    const stub = STUBS.get(bytes[at + 10]!);
    if (!reason) throw new PatchMapError(`${what}: unknown reason code ${bytes[at + 8]}`);
    if (!tactic) throw new PatchMapError(`${what}: unknown tactic code ${bytes[at + 9]}`);
    if (!stub) throw new PatchMapError(`${what}: unknown stub kind code ${bytes[at + 10]}`);
    const siteFlags = bytes[at + 11]!;
    if (siteFlags & ~PATCHMAP_SITE_ASSUMES_NO_INNER_TARGETS) throw new PatchMapError(`${what}: unknown site flags ${hex(siteFlags)}`);
    zero(at + 30, at + 32, what);
    zero(at + PATCHMAP_SITE_FIXED_SIZE + origLen + dispLen, at + size, `${what} padding`);
    sites.push({
      addr: dv.getUint32(at, true),
      original: bytes.slice(at + 32, at + 32 + origLen),
      formId: dv.getUint32(at + 4, true),
      reason,
      tactic,
      stub,
      stubAddr: dv.getUint32(at + 12, true),
      escapeAddr: dv.getUint32(at + 16, true),
      patchStart: dv.getUint32(at + 20, true),
      displaced: bytes.slice(at + 32 + origLen, at + 32 + origLen + dispLen),
      resume: dv.getUint32(at + 24, true),
      assumesNoInnerTargets: (siteFlags & PATCHMAP_SITE_ASSUMES_NO_INNER_TARGETS) !== 0,
    });
    at += size;
  }
  if (at !== total) throw new PatchMapError(`patch map has ${total - at} bytes after its ${count} site records`);
  let sha = '';
  for (let i = 40; i < 72; i++) sha += bytes[i]!.toString(16).padStart(2, '0');
  return {
    version,
    originalSha256: sha,
    select,
    stubVaddr,
    stubPaddr,
    stubSize,
    sharedPage: dv.getUint32(28, true),
    flags,
    stubRanges,
    originalEntry,
    sites,
  };
}
