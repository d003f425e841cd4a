// The runtime's own reader of the patch map (`.ringshift.patchmap`, versions 1 and 2), written
// from docs/patch-map.md. The runtime never imports the rewriter: this document is the contract,
// and this reader refuses anything the document does not define (unknown version, non-zero
// reserved bytes, enumeration code 0 or out of range, trailing bytes, sites or ranges out of
// order). Version 1 had one stub segment in the header; version 2 lists stub ranges (a version 1
// map reads as one LOAD range).

export const PATCHMAP_MAGIC = 0x4d505352; // 'RSPM' little-endian
/** The newest version this reader knows; it also reads version 1. */
export const PATCHMAP_VERSION = 2;
export const PATCHMAP_HEADER_SIZE = 80;
export const PATCHMAP_SECTION = '.ringshift.patchmap';
/** Header flag bit 0: inline stubs address the shared page as ds:[disp32] (DS base 0 assumed). */
export const PATCHMAP_FLAG_INLINE_FLAT_DS = 1 << 0;
/** Header flag bit 1: multiboot kernel; the stub segment is in the monitor's hole. */
export const PATCHMAP_FLAG_KERNEL = 1 << 1;
/** Header flag bit 2 (version 2): e_entry is the stub loader of a user executable. */
export const PATCHMAP_FLAG_LOADER = 1 << 2;
/** Stub range flags (version 2): exactly one of them. */
export const STUB_RANGE_LOAD = 1;
export const STUB_RANGE_LOADER = 2;

export interface StubRange {
  vaddr: number;
  paddr: number;
  fileOffset: number;
  size: number;
  flags: typeof STUB_RANGE_LOAD | typeof STUB_RANGE_LOADER;
}
/** Site flag bit 0: the tactic assumes no jump targets an overwritten byte after patch start. */
export const SITE_FLAG_ASSUMES_NO_INNER_TARGETS = 1 << 0;

export const SITE_REASONS = ['privileged', 'iopl', 'sensitive-unprivileged', 'jumps', 'selected', 'evicted'] as const;
export const SITE_TACTICS = ['B1', 'B2', 'T1', 'T2', 'T3', 'trap', 'T2e', 'T3e'] as const;
export const STUB_KINDS = ['inline', 'escape', 'empty', 'trap'] as const;
export type SiteReason = (typeof SITE_REASONS)[number];
export type SiteTactic = (typeof SITE_TACTICS)[number];
export type StubKind = (typeof STUB_KINDS)[number];

export interface PatchMapSite {
  addr: number;
  formId: number;
  reason: SiteReason;
  tactic: SiteTactic;
  stubKind: StubKind;
  flags: number;
  stubAddr: number;
  escapeAddr: number;
  patchStart: number;
  resume: number;
  original: Uint8Array;
  displaced: Uint8Array;
}

export interface PatchMap {
  version: number;
  flags: number;
  stubVaddr: number;
  stubPaddr: number;
  stubSize: number;
  sharedPage: number;
  select: string;
  /** SHA-256 of the input file, lowercase hex. */
  originalSha256: string;
  /** Stub ranges, range 0 first (version 1: the one stub segment of the header, if any). */
  ranges: StubRange[];
  /** With PATCHMAP_FLAG_LOADER: the input's e_entry; else 0. */
  originalEntry: number;
  sites: PatchMapSite[];
}

/** A patch map that does not follow docs/patch-map.md, or does not match its image. */
export class PatchMapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PatchMapError';
  }
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

function enumAt<T extends readonly string[]>(names: T, code: number, what: string, at: number): T[number] {
  if (code === 0 || code > names.length) throw new PatchMapError(`patch map: ${what} code ${code} at offset ${at} is not defined by version 1 (1..${names.length})`);
  return names[code - 1]!;
}

/** Decodes a version-1 patch map (the section's bytes). Throws PatchMapError. */
export function decodePatchMap(bytes: Uint8Array): PatchMap {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8) throw new PatchMapError(`patch map: ${bytes.length} bytes, shorter than its header (${PATCHMAP_HEADER_SIZE})`);
  if (v.getUint32(0, true) !== PATCHMAP_MAGIC) throw new PatchMapError(`patch map: bad magic ${hex(v.getUint32(0, true))} (expected 'RSPM')`);
  const version = v.getUint16(4, true);
  if (version !== 1 && version !== 2) throw new PatchMapError(`patch map version ${version} is not supported: this runtime reads versions 1 and 2`);
  const headerSize = v.getUint16(6, true);
  if (headerSize !== PATCHMAP_HEADER_SIZE) throw new PatchMapError(`patch map: header size ${headerSize}, version ${version} has ${PATCHMAP_HEADER_SIZE}`);
  if (bytes.length < PATCHMAP_HEADER_SIZE) throw new PatchMapError(`patch map: ${bytes.length} bytes, shorter than its header (${PATCHMAP_HEADER_SIZE})`);
  const total = v.getUint32(8, true);
  if (total !== bytes.length) throw new PatchMapError(`patch map: total size field says ${total} bytes, the section has ${bytes.length}`);
  const flags = v.getUint32(12, true);
  const knownFlags = PATCHMAP_FLAG_INLINE_FLAT_DS | PATCHMAP_FLAG_KERNEL | (version >= 2 ? PATCHMAP_FLAG_LOADER : 0);
  if (flags & ~knownFlags) throw new PatchMapError(`patch map: reserved header flag bits set (flags ${hex(flags)})`);
  const stubVaddr = v.getUint32(16, true);
  const stubPaddr = v.getUint32(20, true);
  const stubSize = v.getUint32(24, true);
  const sharedPage = v.getUint32(28, true);
  const siteCount = v.getUint32(32, true);
  const selectLength = v.getUint16(36, true);
  if (v.getUint16(38, true) !== 0) throw new PatchMapError('patch map: reserved header bytes 38..39 are not zero');
  let sha = '';
  for (let i = 40; i < 72; i++) sha += bytes[i]!.toString(16).padStart(2, '0');
  let rangeCount = 0, originalEntry = 0;
  if (version === 1) {
    for (let i = 72; i < 80; i++) if (bytes[i] !== 0) throw new PatchMapError('patch map: reserved header bytes 72..79 are not zero');
  } else {
    rangeCount = v.getUint32(72, true);
    originalEntry = v.getUint32(76, true);
    if ((flags & PATCHMAP_FLAG_LOADER) === 0 && originalEntry !== 0) throw new PatchMapError('patch map: original entry is not zero without PATCHMAP_FLAG_LOADER');
    if ((flags & PATCHMAP_FLAG_LOADER) !== 0 && (flags & PATCHMAP_FLAG_KERNEL) !== 0) throw new PatchMapError('patch map: PATCHMAP_FLAG_LOADER with PATCHMAP_FLAG_KERNEL');
  }
  let at = PATCHMAP_HEADER_SIZE;
  if (at + selectLength > total) throw new PatchMapError('patch map: the select string runs past the end');
  let select = '';
  for (let i = 0; i < selectLength; i++) select += String.fromCharCode(bytes[at + i]!);
  try { select = decodeURIComponent(escape(select)); } catch { throw new PatchMapError('patch map: the select string is not UTF-8'); }
  at += selectLength;
  at = padTo4(bytes, at, 'select string');

  const ranges: StubRange[] = [];
  if (version === 1) {
    if (stubVaddr !== 0 || stubSize !== 0) ranges.push({ vaddr: stubVaddr, paddr: stubPaddr, fileOffset: 0, size: stubSize, flags: STUB_RANGE_LOAD });
  } else {
    for (let n = 0; n < rangeCount; n++) {
      if (at + 24 > total) throw new PatchMapError(`patch map: stub range record ${n} at offset ${at} runs past the end`);
      const r = { vaddr: v.getUint32(at, true), paddr: v.getUint32(at + 4, true), fileOffset: v.getUint32(at + 8, true), size: v.getUint32(at + 12, true), flags: v.getUint32(at + 16, true) };
      const what = `patch map: stub range ${n} (${hex(r.vaddr)})`;
      if (v.getUint32(at + 20, true) !== 0) throw new PatchMapError(`${what}: reserved bytes 20..23 are not zero`);
      if (r.flags !== STUB_RANGE_LOAD && r.flags !== STUB_RANGE_LOADER) throw new PatchMapError(`${what}: flags ${r.flags} (must be 1 LOAD or 2 LOADER)`);
      if (r.size === 0) throw new PatchMapError(`${what}: size 0`);
      if (r.flags === STUB_RANGE_LOAD && r.fileOffset !== 0) throw new PatchMapError(`${what}: a LOAD range with a file offset`);
      if (r.flags === STUB_RANGE_LOADER && (flags & PATCHMAP_FLAG_LOADER) === 0) throw new PatchMapError(`${what}: a LOADER range without PATCHMAP_FLAG_LOADER`);
      if (r.vaddr + r.size > 2 ** 32) throw new PatchMapError(`${what}: wraps past 2^32`);
      const prev = ranges[ranges.length - 1];
      if (n >= 2 && prev !== undefined && r.vaddr <= prev.vaddr) throw new PatchMapError(`${what}: ranges after range 0 must be in ascending address order`);
      for (const q of ranges) if (r.vaddr < q.vaddr + q.size && q.vaddr < r.vaddr + r.size) throw new PatchMapError(`${what}: overlaps the range at ${hex(q.vaddr)}`);
      ranges.push(r as StubRange);
      at += 24;
    }
    const r0 = ranges[0];
    if (r0 === undefined ? stubVaddr !== 0 || stubPaddr !== 0 || stubSize !== 0 : r0.vaddr !== stubVaddr || r0.paddr !== stubPaddr || r0.size !== stubSize) {
      throw new PatchMapError("patch map: the header's stub vaddr/paddr/size differ from range 0");
    }
  }

  const sites: PatchMapSite[] = [];
  for (let n = 0; n < siteCount; n++) {
    if (at + 32 > total) throw new PatchMapError(`patch map: site record ${n} at offset ${at} runs past the end`);
    const originalLength = bytes[at + 28]!;
    const displacedLength = bytes[at + 29]!;
    if (originalLength < 1 || originalLength > 15) throw new PatchMapError(`patch map: site record ${n}: original length ${originalLength} (must be 1..15)`);
    if (v.getUint16(at + 30, true) !== 0) throw new PatchMapError(`patch map: site record ${n}: reserved bytes 30..31 are not zero`);
    const flagsSite = bytes[at + 11]!;
    if (flagsSite & ~SITE_FLAG_ASSUMES_NO_INNER_TARGETS) throw new PatchMapError(`patch map: site record ${n}: reserved site flag bits set (${hex(flagsSite)})`);
    const end = at + 32 + originalLength + displacedLength;
    if (end > total) throw new PatchMapError(`patch map: site record ${n} at offset ${at} runs past the end`);
    const site: PatchMapSite = {
      addr: v.getUint32(at, true),
      formId: v.getUint32(at + 4, true),
      reason: enumAt(SITE_REASONS, bytes[at + 8]!, 'site reason', at + 8),
      tactic: enumAt(SITE_TACTICS, bytes[at + 9]!, 'tactic', at + 9),
      stubKind: enumAt(STUB_KINDS, bytes[at + 10]!, 'stub kind', at + 10),
      flags: flagsSite,
      stubAddr: v.getUint32(at + 12, true),
      escapeAddr: v.getUint32(at + 16, true),
      patchStart: v.getUint32(at + 20, true),
      resume: v.getUint32(at + 24, true),
      original: bytes.slice(at + 32, at + 32 + originalLength),
      displaced: bytes.slice(at + 32 + originalLength, end),
    };
    const prev = sites[sites.length - 1];
    if (prev !== undefined && site.addr <= prev.addr) throw new PatchMapError(`patch map: site ${hex(site.addr)} follows ${hex(prev.addr)}: sites must be in ascending address order`);
    sites.push(site);
    at = padTo4(bytes, end, `site record ${n}`);
  }
  if (at !== total) throw new PatchMapError(`patch map: ${total - at} trailing bytes after the last site record`);
  return { version, flags, stubVaddr, stubPaddr, stubSize, sharedPage, select, originalSha256: sha, ranges, originalEntry, sites };
}

function padTo4(bytes: Uint8Array, at: number, what: string): number {
  while (at & 3) {
    if (at >= bytes.length) throw new PatchMapError(`patch map: padding after the ${what} runs past the end`);
    if (bytes[at] !== 0) throw new PatchMapError(`patch map: padding after the ${what} is not zero`);
    at++;
  }
  return at;
}
