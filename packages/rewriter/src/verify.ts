// verifyImage: re-checks a patched image against its own patch map, and against the original
// image when it is given, without trusting anything the rewriter computed. It reads the patched
// ELF afresh (readElf), decodes the patch map section, decodes the site bytes, trampolines and
// stubs with the decoder, and re-discovers jump targets by its own small recursive traversal
// (not discover.ts, so a discovery bug cannot hide itself). What it checks, per violation kind:
//
//   patchmap       the `.ringshift.patchmap` section is missing, does not decode, or its stub
//                  ranges disagree with the image (a LOAD range not in an executable PT_LOAD at
//                  its paddr, a LOADER range not whole file pages in user space, or overlapping
//                  a segment or another range)
//   site-bytes     a site's bytes in the patched image are not what its tactic writes: the
//                  jump(s) from the site do not reach stubAddr, a trap site is neither unchanged
//                  nor INT3, a byte of the overwritten run is neither jump nor INT3 filler, a
//                  T2e site's jump does not reach into its evicted successor's patched bytes
//   site-record    a site record is inconsistent in itself: original bytes that do not decode to
//                  the recorded form with the recorded length, displaced bytes that do not hold
//                  the original at addr - patchStart, a resume other than the end of the run,
//                  overlapping runs, a stub address outside every stub range, an 'evicted'
//                  record that no T2e/T3e site needs (or not a B1/B2/T1 jump to an 'empty'
//                  stub), a T2e site without an evicted successor, a T3e site whose short jump
//                  does not land in an evicted neighbour's freed bytes
//   displaced      (with the original) the recorded original/displaced bytes are not the original
//                  image's bytes at that address
//   stub           the shared page's file bytes are not its documented initial image (version
//                  word 1, zeros: a trampoline placed over it), or the stub cannot be walked: undecodable bytes, falls out of the stub ranges,
//                  an escape that is not `int 0x81`, an inline stub that is not the documented
//                  listing for its form, a site of a T2 group whose stub is not on the way
//   resume         no path through the stub jumps back to resume, or its jump back goes elsewhere
//   relocation     a relocated relative branch or call does not reach the original's target, or
//                  another displaced instruction has no byte-identical copy in the stub
//   inner-target   a tactic that assumed no jump lands inside its run covers a known target, or
//                  an instruction after an unconditional transfer (reached only by a jump)
//   sha256         (with the original) the map's SHA-256 is not the original image's
//   changed-byte   (with the original) a byte outside the patched runs differs
//   segment        (with the original) an original segment is gone or moved (vaddr, paddr,
//                  flags, sizes), or a stub range overlaps one; the entry point changed (or,
//                  with the loader, the original entry in the map is not the original's);
//                  (always, in a user executable) the program header table is not inside a
//                  PT_LOAD at the address both of Linux's AT_PHDR formulas give, or PT_PHDR
//                  says otherwise
//   loader         the map says e_entry is the stub loader, and the bytes there are not the
//                  loader for the map's LOADER ranges and original entry
//   multiboot      (with the original) the original had a valid multiboot header, the patched
//                  image has none, or it has other flags
//
// A patched image that is not an ELF file at all is not a violation but bad input: readElf's
// ElfError propagates. docs/patch-map.md is the map's layout, docs/tactics.md the site bytes.
import { Decoder, Instruction, OpKind, classOf, formName, mnemonicOf } from '@ringshift/decoder';
import type { ElfImage, ElfSegment } from './elf/read';
import { readElf } from './elf/read';
import { PF_R, PF_X } from './elf/constants';
import { HOLE_START, HOLE_STUB_END, PAGE, USER_HI, USER_LO } from './layout';
import type { PatchMap, PatchedSite } from './model';
import { PATCHMAP_FLAG_KERNEL, PATCHMAP_FLAG_LOADER, STUB_RANGE_LOAD, STUB_RANGE_LOADER } from './model';
import { loaderImage } from './stubs/loader';
import { PatchMapError, decodePatchMap } from './patchmap';
import { sha256Hex } from './sha256';
import { INLINE_FORMS, inlineFormOf, inlineStub } from './stubs/inline';
import { sharedPageImage } from './stubs/shared';

/** The section that holds the patch map (docs/patch-map.md). */
export const PATCHMAP_SECTION_NAME = '.ringshift.patchmap';

export type ViolationKind =
  | 'patchmap'
  | 'site-bytes'
  | 'site-record'
  | 'displaced'
  | 'stub'
  | 'resume'
  | 'relocation'
  | 'inner-target'
  | 'sha256'
  | 'changed-byte'
  | 'segment'
  | 'loader'
  | 'multiboot';

export interface Violation {
  /** The address concerned: the site, the changed byte, the segment; 0 for the image as a whole. */
  readonly addr: number;
  readonly kind: ViolationKind;
  readonly message: string;
}

export interface VerifyCounts {
  /** Sites in the map. */
  sites: number;
  /** Sites whose stub was walked to its end. */
  stubs: number;
  /** Stub instructions decoded. */
  stubInstructions: number;
  /** Relocated relative branches/calls matched against the original's targets. */
  relocatedBranches: number;
  /** Other displaced instructions found byte-identical in their stub. */
  relocatedInstructions: number;
  /** Sites with assumesNoInnerTargets checked against the re-discovered jump targets. */
  innerTargetSites: number;
  /** Jump targets the traversal found. */
  jumpTargets: number;
  /** Bytes of the original's segments compared with the patched image (0 without the original). */
  bytesCompared: number;
  /** Original segments checked for vaddr/paddr/flags. */
  segments: number;
  /** 1 when a multiboot header was checked. */
  multiboot: number;
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly violations: Violation[];
  readonly checked: VerifyCounts;
  /** The decoded map, when it decoded. */
  readonly map?: PatchMap;
}

export interface VerifyOptions {
  /** Stop recording after this many violations (the rest are counted in the last message). Default 1000. */
  readonly maxViolations?: number;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const hexBytes = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const INT3 = 0xcc;
/** Relocated as the same instruction aimed 2 bytes ahead, then JMP short, JMP rel32 (stubs/relocate.ts). */
const LOOP_LIKE: ReadonlySet<string> = new Set(['loop', 'loope', 'loopne', 'jecxz', 'jcxz']);
/** Flows after which the next instruction is reached only by a jump. */
const ENDS_PATH: ReadonlySet<string> = new Set(['branch', 'indirect-branch', 'return', 'exception']);
/** The stub's escape to the monitor, int 0x81 (docs/patch-abi.md). */
const ESCAPE = [0xcd, 0x81] as const;
/** Bound on the instructions of one stub (inline POPF emulation is the longest, tens of instructions). */
const MAX_STUB_INSTRUCTIONS = 512;
/** Bound on chained jumps from a site to its stub (T3: short jmp to the neighbour, then jmp rel32). */
const MAX_HOPS = 4;

/** The loaded image by virtual address: PT_LOAD file bytes, zero up to p_memsz. */
class Memory {
  readonly loads: ElfSegment[];
  /** `extra`: the loader ranges, as segments over the file bytes they map. */
  constructor(elf: ElfImage, extra: readonly ElfSegment[] = []) {
    this.loads = [...elf.segments.filter((s) => s.type === 'load' && s.memsz > 0), ...extra].sort((a, b) => a.vaddr - b.vaddr);
  }

  segmentAt(addr: number): ElfSegment | undefined {
    // Loader ranges can be tens of thousands: binary search for the last start ≤ addr.
    let lo = 0, hi = this.loads.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.loads[mid]!.vaddr <= addr) lo = mid + 1;
      else hi = mid;
    }
    const s = this.loads[lo - 1];
    return s && addr < s.vaddr + s.memsz ? s : undefined;
  }

  /** The byte at addr, or undefined when no segment maps it. */
  byte(addr: number): number | undefined {
    const s = this.segmentAt(addr);
    if (!s) return undefined;
    const off = addr - s.vaddr;
    return off < s.bytes.length ? s.bytes[off]! : 0;
  }

  /** len bytes from addr, or undefined when any of them is unmapped. */
  read(addr: number, len: number): Uint8Array | undefined {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      const b = this.byte(addr + i);
      if (b === undefined) return undefined;
      out[i] = b;
    }
    return out;
  }
}

/** Decodes one 32-bit instruction at an address of a Memory (or of given bytes), never throwing. */
class At {
  private readonly dec = new Decoder(32, new Uint8Array(0));
  constructor(private readonly mem: Memory) {}

  /** The instruction at addr, decoded from the segment that maps it; undefined when unmapped. */
  decode(addr: number, out: Instruction = new Instruction()): Instruction | undefined {
    const s = this.mem.segmentAt(addr);
    if (!s) return undefined;
    const off = addr - s.vaddr;
    if (off + 15 > s.bytes.length) {
      // Zero-filled memory, or an instruction that may run on into the next range (a trampoline
      // across a page boundary): decode a copy of the up to 15 mapped bytes from addr.
      const b: number[] = [];
      for (let i = 0; i < 15; i++) {
        const x = this.mem.byte(addr + i);
        if (x === undefined) break;
        b.push(x);
      }
      return this.bytes(Uint8Array.from(b), addr, out);
    }
    this.dec.seek(s.bytes, addr, off);
    this.dec.decodeAt(out);
    return out;
  }

  read(addr: number, len: number): Uint8Array | undefined {
    return this.mem.read(addr, len);
  }

  bytes(b: Uint8Array, addr: number, out: Instruction = new Instruction()): Instruction {
    this.dec.seek(b, addr, 0);
    this.dec.decodeAt(out);
    return out;
  }
}

const isNearBranch = (k: number): boolean => k === OpKind.NearBranch16 || k === OpKind.NearBranch32;

/** The near relative target of an instruction (JMP/Jcc/CALL/LOOP/JECXZ rel), or undefined. */
function relTarget(ins: Instruction): number | undefined {
  for (let i = 0; i < ins.opCount; i++) if (isNearBranch(ins.opKinds[i]!)) return ins.target;
  return undefined;
}

/** Collects violations, with a cap so a badly broken image does not produce millions. */
class Report {
  readonly violations: Violation[] = [];
  private dropped = 0;
  constructor(private readonly max: number) {}
  add(addr: number, kind: ViolationKind, message: string): void {
    if (this.violations.length < this.max) this.violations.push({ addr, kind, message });
    else this.dropped++;
  }
  finish(): Violation[] {
    if (this.dropped > 0) {
      this.violations.push({ addr: 0, kind: this.violations.at(-1)!.kind, message: `... and ${this.dropped} more violations not listed` });
      this.dropped = 0;
    }
    return this.violations;
  }
}

/**
 * Verifies a patched image. Throws ElfError when `patched` (or `original`) is not a readable ELF
 * file; everything else that is wrong is a violation in the result.
 */
export function verifyImage(patched: Uint8Array, original?: Uint8Array, options: VerifyOptions = {}): VerifyResult {
  const elf = readElf(patched);
  const orig = original ? readElf(original) : undefined;
  const report = new Report(options.maxViolations ?? 1000);
  const checked: VerifyCounts = {
    sites: 0, stubs: 0, stubInstructions: 0, relocatedBranches: 0, relocatedInstructions: 0, innerTargetSites: 0, jumpTargets: 0,
    bytesCompared: 0, segments: 0, multiboot: 0,
  };
  const done = (map?: PatchMap): VerifyResult => {
    const violations = report.finish();
    return map ? { ok: violations.length === 0, violations, checked, map } : { ok: violations.length === 0, violations, checked };
  };

  const section = elf.sections.find((s) => s.name === PATCHMAP_SECTION_NAME);
  if (!section) {
    report.add(0, 'patchmap', `no ${PATCHMAP_SECTION_NAME} section: the image was not written by ringshift rewrite, or the section was stripped`);
    if (orig) checkOriginalLayout(elf, orig, original!, patched, undefined, report, checked);
    return done();
  }
  let map: PatchMap;
  try {
    map = decodePatchMap(section.bytes);
  } catch (e) {
    if (!(e instanceof PatchMapError)) throw e;
    report.add(0, 'patchmap', `${PATCHMAP_SECTION_NAME} does not decode: ${e.message}`);
    if (orig) checkOriginalLayout(elf, orig, original!, patched, undefined, report, checked);
    return done();
  }
  checked.sites = map.sites.length;

  const loaderSegs = checkStubRanges(elf, map, patched, report);
  const mem = new Memory(elf, loaderSegs);
  const at = new At(mem);
  const ranges = [...map.stubRanges].sort((a, b) => a.vaddr - b.vaddr);
  const inStubs = (a: number): boolean => {
    let lo = 0, hi = ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ranges[mid]!.vaddr <= a) lo = mid + 1;
      else hi = mid;
    }
    const r = ranges[lo - 1];
    return r !== undefined && a < r.vaddr + r.size;
  };
  if (map.flags & PATCHMAP_FLAG_LOADER) checkLoader(elf, map, mem, report);
  if (map.sharedPage !== 0) checkSharedPage(map.sharedPage, mem, report);

  const origMem = orig ? new Memory(orig) : undefined;
  if (orig) {
    const sha = sha256Hex(original!);
    if (sha !== map.originalSha256) {
      report.add(0, 'sha256', `the map's originalSha256 ${map.originalSha256} is not the original image's SHA-256 ${sha}`);
    }
  }

  // Runs: the sites of one T2 run share patchStart, displaced and resume (docs/patch-map.md).
  const groups = new Map<string, PatchedSite[]>();
  for (const s of map.sites) {
    if (s.tactic === 'trap') continue;
    const key = `${s.patchStart}:${s.displaced.length}`;
    const g = groups.get(key);
    if (g) g.push(s);
    else groups.set(key, [s]);
  }
  const runs = [...map.sites].filter((s) => s.displaced.length > 0).sort((a, b) => a.patchStart - b.patchStart || a.addr - b.addr);
  for (let i = 1; i < runs.length; i++) {
    const p = runs[i - 1]!;
    const s = runs[i]!;
    const pEnd = p.patchStart + p.displaced.length;
    if (pEnd <= s.patchStart) continue;
    const same = p.patchStart === s.patchStart && p.tactic !== 'trap' && s.tactic !== 'trap' &&
      equal(p.displaced, s.displaced) && p.resume === s.resume;
    if (!same) {
      report.add(s.addr, 'site-record', `site ${hex(s.addr)}: its run [${hex(s.patchStart)}, ${hex(s.patchStart + s.displaced.length)}) overlaps the run of site ${hex(p.addr)}, [${hex(p.patchStart)}, ${hex(pEnd)})`);
    }
  }

  const ins = new Instruction();
  for (const s of map.sites) {
    checkRecord(s, at, ins, inStubs, report);
    if (origMem) checkAgainstOriginal(s, origMem, report);
    if (s.tactic === 'trap') checkTrapBytes(s, mem, report);
  }
  checkEvictions(map, at, report);
  for (const s of map.sites) if (s.stub === 'inline') checkInlineStub(s, map, mem, report);
  // Where each site's stub starts: a walk through one run's stub must not run into another's.
  const stubOwners = new Map<number, number>();
  for (const s of map.sites) if (s.tactic !== 'trap') stubOwners.set(s.stubAddr, s.addr);
  // T3e: the site's jmp rel8 lands in an evicted neighbour's freed tail, on the site's jmp rel32.
  const evictedRuns = map.sites.filter((s) => s.reason === 'evicted');
  const inEvicted = (a: number): boolean => evictedRuns.some((e) => a > e.patchStart && a < e.patchStart + e.displaced.length);
  const foreign = new Set<number>();
  for (const s of map.sites) {
    if (s.tactic !== 'T3e') continue;
    const j = at.decode(s.addr, ins);
    const J = j && j.valid && classOf(j.form).flow === 'branch' ? relTarget(j) : undefined;
    if (J === undefined || !inEvicted(J)) continue;
    const k = at.decode(J, ins);
    if (k && k.valid) for (let a = J; a < J + k.length; a++) foreign.add(a);
  }
  for (const g of groups.values()) {
    g.sort((x, y) => x.addr - y.addr);
    const stub = checkSiteBytes(g, mem, at, inStubs, report, g[0]!.tactic === 'T3e' ? inEvicted : undefined, foreign);
    if (stub) checkStub(g, stub, map.sharedPage, stubOwners, at, inStubs, report, checked);
  }

  checkInnerTargets(elf, map, inStubs, report, checked);
  if (!(map.flags & PATCHMAP_FLAG_KERNEL)) checkProgramHeaderTable(elf, patched, report);
  if (orig) checkOriginalLayout(elf, orig, original!, patched, map, report, checked);
  return done(map);
}

/**
 * AT_PHDR (the program header table's address, which a static libc walks to find PT_TLS):
 * Linux before 5.18 passes the first PT_LOAD's p_vaddr - p_offset + e_phoff, later kernels the
 * address of e_phoff inside the PT_LOAD whose file bytes hold it, or 0 when none does
 * (fs/binfmt_elf.c, load_elf_binary). Both must be the same mapped table.
 */
function checkProgramHeaderTable(elf: ElfImage, patched: Uint8Array, report: Report): void {
  const phoff = new DataView(patched.buffer, patched.byteOffset, patched.byteLength).getUint32(28, true);
  const size = elf.segments.length * 32;
  const loads = elf.segments.filter((s) => s.type === 'load');
  const first = loads[0];
  const home = loads.find((s) => s.offset <= phoff && phoff + size <= s.offset + s.filesz);
  if (!first || !home) {
    report.add(0, 'segment', `the program header table (file offset ${hex(phoff)}) is in no PT_LOAD: AT_PHDR would be 0 or unmapped`);
    return;
  }
  const now = phoff - home.offset + home.vaddr;
  const old = first.vaddr - first.offset + phoff;
  if (old !== now) report.add(now, 'segment', `AT_PHDR: the table is loaded at ${hex(now)}, but a kernel before Linux 5.18 passes ${hex(old)} (first PT_LOAD's p_vaddr - p_offset + e_phoff)`);
  for (const p of elf.segments) {
    if (p.type === 'phdr' && (p.vaddr !== now || p.offset !== phoff)) {
      report.add(p.vaddr, 'segment', `PT_PHDR says the table is at ${hex(p.vaddr)} (offset ${hex(p.offset)}), it is loaded at ${hex(now)} (offset ${hex(phoff)})`);
    }
  }
}

/**
 * The map's stub ranges: a LOAD range lies in an executable PT_LOAD at the stated physical
 * address; a LOADER range is whole pages of the file, in user space, clear of every PT_LOAD and
 * of the other ranges. Returns the LOADER ranges as segments over the file (what the loader maps).
 */
function checkStubRanges(elf: ElfImage, map: PatchMap, file: Uint8Array, report: Report): ElfSegment[] {
  const out: ElfSegment[] = [];
  const loads = elf.segments.filter((s) => s.type === 'load' && s.memsz > 0);
  const kernel = (map.flags & PATCHMAP_FLAG_KERNEL) !== 0;
  map.stubRanges.forEach((r, i) => {
    const what = `stub range ${i} [${hex(r.vaddr)}, ${hex(r.vaddr + r.size)})`;
    if (r.flags === STUB_RANGE_LOAD) {
      const seg = loads.find((s) => s.vaddr <= r.vaddr && r.vaddr + r.size <= s.vaddr + s.memsz);
      if (!seg) {
        report.add(r.vaddr, 'patchmap', `no PT_LOAD segment holds ${what}`);
        return;
      }
      if ((seg.flags & PF_X) === 0) report.add(r.vaddr, 'patchmap', `the segment holding ${what} (segment ${seg.index}) is not executable`);
      const paddr = seg.paddr + (r.vaddr - seg.vaddr);
      if (paddr !== r.paddr) report.add(r.vaddr, 'patchmap', `${what} is loaded at physical ${hex(paddr)}, the map says ${hex(r.paddr)}`);
      if (kernel && (r.vaddr < HOLE_START || r.vaddr + r.size > HOLE_STUB_END)) {
        report.add(r.vaddr, 'patchmap', `${what} of a kernel is outside the stub part of the monitor's hole [${hex(HOLE_START)}, ${hex(HOLE_STUB_END)})`);
      }
      return;
    }
    if (kernel) {
      report.add(r.vaddr, 'patchmap', `${what}: a kernel has no loader, so no LOADER range`);
      return;
    }
    if (r.vaddr % PAGE || r.size % PAGE || r.offset % PAGE) {
      report.add(r.vaddr, 'patchmap', `${what}: vaddr, size and file offset ${hex(r.offset)} of a LOADER range must be multiples of 4 KiB`);
      return;
    }
    if (r.paddr !== r.vaddr) report.add(r.vaddr, 'patchmap', `${what}: a LOADER range has paddr ${hex(r.paddr)}, not its vaddr`);
    if (r.vaddr < USER_LO || r.vaddr + r.size > USER_HI) {
      report.add(r.vaddr, 'patchmap', `${what} is outside user space [${hex(USER_LO)}, ${hex(USER_HI)})`);
    }
    if (r.offset + r.size > file.length) {
      report.add(r.vaddr, 'patchmap', `${what}: file bytes [${hex(r.offset)}, ${hex(r.offset + r.size)}) run past the end of the file (${hex(file.length)})`);
      return;
    }
    for (const s of loads) {
      const lo = Math.floor(s.vaddr / PAGE) * PAGE, hi = Math.ceil((s.vaddr + s.memsz) / PAGE) * PAGE;
      if (r.vaddr < hi && lo < r.vaddr + r.size) report.add(r.vaddr, 'patchmap', `${what} overlaps the pages of PT_LOAD segment ${s.index} [${hex(lo)}, ${hex(hi)})`);
    }
    out.push({
      index: -1 - i, type: 'load', offset: r.offset, vaddr: r.vaddr, paddr: r.paddr, filesz: r.size, memsz: r.size,
      flags: PF_R | PF_X, align: PAGE, bytes: file.subarray(r.offset, r.offset + r.size),
    });
  });
  const sorted = [...map.stubRanges].sort((a, b) => a.vaddr - b.vaddr);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1]!, r = sorted[i]!;
    if (r.vaddr < p.vaddr + p.size) report.add(r.vaddr, 'patchmap', `stub ranges [${hex(p.vaddr)}, ${hex(p.vaddr + p.size)}) and [${hex(r.vaddr)}, ${hex(r.vaddr + r.size)}) overlap`);
  }
  if (map.sharedPage !== 0 && (map.sharedPage < map.stubVaddr || map.sharedPage >= map.stubVaddr + map.stubSize)) {
    report.add(map.sharedPage, 'patchmap', `the shared page ${hex(map.sharedPage)} is outside the primary stub range [${hex(map.stubVaddr)}, ${hex(map.stubVaddr + map.stubSize)})`);
  }
  return out;
}

/** The shared page holds nothing but its initial image (docs/patch-abi.md §Shared page). */
function checkSharedPage(page: number, mem: Memory, report: Report): void {
  const want = sharedPageImage();
  for (let i = 0; i < PAGE; i++) {
    const b = mem.byte(page + i) ?? 0;
    if (b !== (want[i] ?? 0)) {
      report.add(page + i, 'stub', `the shared page ${hex(page)} holds 0x${b.toString(16)} at offset ${i}, not its initial image (a trampoline placed over it?)`);
      return;
    }
  }
}

/**
 * With PATCHMAP_FLAG_LOADER: e_entry is in range 0 and its bytes are exactly the loader
 * (stubs/loader.ts) for the map's LOADER ranges and original entry, in the map's order.
 */
function checkLoader(elf: ElfImage, map: PatchMap, mem: Memory, report: Report): void {
  if (map.stubSize === 0 || elf.entry < map.stubVaddr || elf.entry >= map.stubVaddr + map.stubSize) {
    report.add(elf.entry, 'loader', `the map has the LOADER flag but e_entry ${hex(elf.entry)} is not in the primary stub range`);
    return;
  }
  const mappings = map.stubRanges.filter((r) => r.flags === STUB_RANGE_LOADER).map((r) => ({ vaddr: r.vaddr, size: r.size, offset: r.offset }));
  const want = loaderImage(elf.entry, map.originalEntry, mappings);
  const got = mem.read(elf.entry, want.length);
  if (!got || !equal(got, want)) {
    let i = 0;
    while (got && i < want.length && got[i] === want[i]) i++;
    report.add(elf.entry, 'loader', `the bytes at e_entry ${hex(elf.entry)} are not the loader for the map's ${mappings.length} LOADER ranges and original entry ${hex(map.originalEntry)} (first difference at +${hex(i)})`);
  }
}

/** What can be checked of a record on its own: the original decodes, displaced holds it, addresses agree. */
function checkRecord(s: PatchedSite, at: At, ins: Instruction, inStubs: (a: number) => boolean, report: Report): void {
  const where = `site ${hex(s.addr)}`;
  at.bytes(s.original, s.addr, ins);
  if (!ins.valid || ins.length !== s.original.length || ins.form !== s.formId) {
    const got = ins.valid ? `${formName(ins.form)}, ${ins.length} bytes` : 'an invalid instruction';
    report.add(s.addr, 'site-record', `${where}: the original bytes ${hexBytes(s.original)} decode to ${got}, the map says ${formName(s.formId)}, ${s.original.length} bytes`);
  }
  if (s.tactic === 'trap') {
    if (s.stubAddr !== 0 || s.resume !== 0) report.add(s.addr, 'site-record', `${where}: a trap site has stubAddr ${hex(s.stubAddr)} and resume ${hex(s.resume)}, expected 0`);
    return;
  }
  const off = s.addr - s.patchStart;
  if (off < 0 || off + s.original.length > s.displaced.length ||
      !equal(s.displaced.subarray(off, off + s.original.length), s.original)) {
    report.add(s.addr, 'site-record', `${where}: the displaced bytes (${s.displaced.length} from ${hex(s.patchStart)}) do not hold the original instruction at ${hex(s.addr)}`);
  }
  const runEnd = s.patchStart + s.displaced.length;
  if (s.resume !== runEnd) {
    report.add(s.addr, 'site-record', `${where}: resume ${hex(s.resume)} is not the end of the overwritten run ${hex(runEnd)}`);
  }
  if (!inStubs(s.stubAddr)) report.add(s.addr, 'site-record', `${where}: stubAddr ${hex(s.stubAddr)} is outside every stub range`);
  if (s.escapeAddr !== 0 && !inStubs(s.escapeAddr)) {
    report.add(s.addr, 'site-record', `${where}: escapeAddr ${hex(s.escapeAddr)} is outside every stub range`);
  }
}

/**
 * T2e pairs (docs/tactics.md §T2e): each T2e site's successor is an 'evicted' record starting at
 * the site's end (its resume), and the site's jump reaches into the successor's bytes (that is
 * what the eviction was for); each 'evicted' record is such a successor, patched with its own
 * B1/B2/T1 jump to an 'empty' stub (it runs relocated), and is not a site, so it assumes nothing.
 */
function checkEvictions(map: PatchMap, at: At, report: Report): void {
  const evicted = new Map<number, PatchedSite>();
  for (const s of map.sites) if (s.reason === 'evicted') evicted.set(s.addr, s);
  const claimedBy = new Set<number>();
  const ins = new Instruction();
  for (const s of map.sites) {
    if (s.tactic !== 'T3e') continue;
    const where = `site ${hex(s.addr)} (T3e)`;
    const d = at.decode(s.addr, ins);
    const J = d && d.valid && classOf(d.form).flow === 'branch' ? relTarget(d) : undefined;
    const e = J === undefined ? undefined : [...evicted.values()].find((x) => J >= x.addr + 5 && J < x.addr + x.displaced.length);
    if (s.reason === 'evicted' || s.patchStart !== s.addr || s.assumesNoInnerTargets || !e) {
      report.add(s.addr, 'site-record', `${where}: its short jump does not land in the freed bytes of an evicted neighbour, or the record is not the site's own run without assumptions`);
      continue;
    }
    claimedBy.add(e.addr);
  }
  for (const s of map.sites) {
    if (s.tactic !== 'T2e') continue;
    const where = `site ${hex(s.addr)} (T2e)`;
    if (s.reason === 'evicted') {
      report.add(s.addr, 'site-record', `${where}: an evicted instruction's record has tactic T2e (it is patched with B1, B2 or T1)`);
      continue;
    }
    const e = evicted.get(s.resume);
    if (!e || s.patchStart !== s.addr || s.assumesNoInnerTargets) {
      report.add(s.addr, 'site-record', `${where}: no evicted record at its end ${hex(s.resume)}, or its run does not start at the site, or it claims to assume no inner targets`);
      continue;
    }
    claimedBy.add(e.addr);
    const d = at.decode(s.addr, ins);
    if (!d || !d.valid || s.addr + d.length <= e.addr) {
      report.add(s.addr, 'site-bytes', `${where}: the jump at the site does not reach into the bytes of its evicted successor at ${hex(e.addr)}`);
    }
  }
  for (const e of evicted.values()) {
    const where = `evicted ${hex(e.addr)}`;
    if (!claimedBy.has(e.addr)) report.add(e.addr, 'site-record', `${where}: no T2e site ends at it and no T3e site jumps into it (an evicted instruction is patched only for a site's jump)`);
    if (e.tactic !== 'B1' && e.tactic !== 'B2' && e.tactic !== 'T1') report.add(e.addr, 'site-record', `${where}: tactic ${e.tactic}, expected its own B1, B2 or T1 jump`);
    if (e.stub !== 'empty' || e.escapeAddr !== 0 || e.assumesNoInnerTargets || e.patchStart !== e.addr || e.displaced.length !== e.original.length) {
      report.add(e.addr, 'site-record', `${where}: expected an 'empty' stub without escape, its own bytes only as the run, and no assumption on jump targets`);
    }
  }
}

function checkAgainstOriginal(s: PatchedSite, orig: Memory, report: Report): void {
  const where = `site ${hex(s.addr)}`;
  const o = orig.read(s.addr, s.original.length);
  if (!o || !equal(o, s.original)) {
    report.add(s.addr, 'displaced', `${where}: the map's original bytes ${hexBytes(s.original)} are not the original image's ${o ? hexBytes(o) : '(unmapped)'}`);
  }
  if (s.displaced.length > 0) {
    const d = orig.read(s.patchStart, s.displaced.length);
    if (!d || !equal(d, s.displaced)) {
      report.add(s.addr, 'displaced', `${where}: the displaced bytes recorded from ${hex(s.patchStart)} (${hexBytes(s.displaced)}) are not the original image's (${d ? hexBytes(d) : 'unmapped'})`);
    }
  }
}

/** A trap site: the instruction unchanged, or INT3 over its first byte (then displaced is that byte). */
function checkTrapBytes(s: PatchedSite, mem: Memory, report: Report): void {
  const where = `site ${hex(s.addr)} (trap)`;
  const now = mem.read(s.addr, s.original.length);
  if (!now) {
    report.add(s.addr, 'site-bytes', `${where}: the site is not mapped in the patched image`);
    return;
  }
  const unchanged = equal(now, s.original);
  const int3 = now[0] === INT3 && equal(now.subarray(1), s.original.subarray(1));
  const recordsInt3 = s.patchStart === s.addr && s.displaced.length === 1;
  if (!unchanged && !int3) {
    report.add(s.addr, 'site-bytes', `${where}: the patched bytes ${hexBytes(now)} are neither the original ${hexBytes(s.original)} nor INT3 over its first byte`);
  } else if (int3 && recordsInt3) {
    // INT3 written (or the original already was one, as for an INT3 site).
  } else if (int3 && !unchanged) {
    report.add(s.addr, 'site-record', `${where}: INT3 was written at ${hex(s.addr)} but the record says ${s.displaced.length} displaced bytes from ${hex(s.patchStart)}`);
  } else if (unchanged && s.displaced.length !== 0) {
    report.add(s.addr, 'site-record', `${where}: the site is unchanged but the record says ${s.displaced.length} bytes were displaced`);
  }
}

/**
 * The patched bytes of a run (one site, or the sites of one T2 run). Control reaches the run at
 * its first site's address (and, when the run starts before it, as for T3, at patchStart too);
 * from each, following at most MAX_HOPS direct jmps must reach the stub segment, and from the
 * first site the stub of a site of the run. Every byte of the run that is not part of a jump
 * followed is INT3 filler. Returns the stub entries to walk, or undefined after a violation.
 */
function checkSiteBytes(
  g: readonly PatchedSite[], mem: Memory, at: At, inStubs: (a: number) => boolean, report: Report,
  /** T3e: where the site's short jump may land (inside an evicted neighbour). */
  into?: (a: number) => boolean,
  /** Bytes that hold a T3e site's jump inside an evicted neighbour's run (not filler). */
  foreign?: ReadonlySet<number>,
): number[] | undefined {
  const s = g[0]!;
  const where = `site ${hex(s.addr)} (${s.tactic})`;
  const runStart = s.patchStart;
  const runEnd = s.patchStart + s.displaced.length;
  const covered = new Uint8Array(s.displaced.length);
  const ins = new Instruction();
  const follow = (from: number): number | undefined => {
    let pc = from;
    for (let hops = 1; ; hops++) {
      const d = at.decode(pc, ins);
      const target = d && d.valid && classOf(d.form).flow === 'branch' ? relTarget(d) : undefined;
      if (target === undefined) {
        const bytes = mem.read(pc, 5);
        report.add(s.addr, 'site-bytes', `${where}: expected a direct jmp at ${hex(pc)} leading to the stub at ${hex(s.stubAddr)}, found ${bytes ? hexBytes(bytes) : 'unmapped bytes'}`);
        return undefined;
      }
      for (let a = pc; a < pc + d!.length; a++) if (a >= runStart && a < runEnd) covered[a - runStart] = 1;
      if (inStubs(target)) return target;
      if (hops < MAX_HOPS && into?.(target)) {
        pc = target;
        continue;
      }
      if (hops >= MAX_HOPS || target < runStart || target >= runEnd) {
        report.add(s.addr, 'site-bytes', `${where}: the jump at ${hex(pc)} goes to ${hex(target)}, which is neither in a stub range nor inside the overwritten run [${hex(runStart)}, ${hex(runEnd)})`);
        return undefined;
      }
      pc = target;
    }
  };
  const entry = follow(s.addr);
  if (entry === undefined) return undefined;
  const owner = g.find((x) => x.stubAddr === entry);
  if (!owner) {
    report.add(s.addr, 'site-bytes', `${where}: the jump from the site goes to ${hex(entry)} in a stub range, not to the site's stub at ${hex(s.stubAddr)}`);
    return undefined;
  }
  const entries = [entry];
  if (runStart !== s.addr) {
    const other = follow(runStart);
    if (other === undefined) return undefined;
    entries.push(other);
  }
  for (let i = 0; i < covered.length; i++) {
    if (covered[i]) continue;
    const a = runStart + i;
    if (s.reason === 'evicted' && foreign?.has(a)) continue;
    const b = mem.byte(a);
    if (b !== INT3) {
      report.add(s.addr, 'site-bytes', `${where}: byte ${hex(a)} of the overwritten run is ${b === undefined ? 'unmapped' : hex(b)}, neither part of the jump to the stub nor INT3 filler`);
      return undefined;
    }
  }
  return entries;
}

/**
 * An inline stub is exactly the listing of docs/patch-abi.md §Inline stubs for its form, at its
 * address, against the map's shared page, and its escape (STI, POPFD) is where the listing has it.
 */
function checkInlineStub(s: PatchedSite, map: PatchMap, mem: Memory, report: Report): void {
  const where = `site ${hex(s.addr)} (inline stub at ${hex(s.stubAddr)})`;
  const form = inlineFormOf(s.formId);
  if (!form) {
    report.add(s.addr, 'site-record', `${where}: ${formName(s.formId)} has no inline stub (only ${INLINE_FORMS.join(', ')})`);
    return;
  }
  const want = inlineStub(form, s.stubAddr, map.sharedPage);
  const got = mem.read(s.stubAddr, want.bytes.length);
  if (!got) {
    report.add(s.addr, 'stub', `${where}: the stub is not mapped`);
    return;
  }
  const i = got.findIndex((b, k) => b !== want.bytes[k]);
  if (i >= 0) {
    report.add(s.addr, 'stub', `${where}: byte ${hex(s.stubAddr + i)} is ${hex(got[i]!)}, the ${form} listing has ${hex(want.bytes[i]!)}`);
    return;
  }
  const escape = want.escapeOffset === undefined ? 0 : s.stubAddr + want.escapeOffset;
  if (s.escapeAddr !== escape) {
    report.add(s.addr, 'site-record', `${where}: escapeAddr ${hex(s.escapeAddr)}, the ${form} listing puts it at ${hex(escape)}`);
  }
}

/**
 * Walks the stub of a run: every path from its entries through the stub segment, following
 * conditional branches both ways and unconditional ones inside the segment, until each path
 * leaves it. A path may leave only by a jump to resume, by a relocated copy of a displaced
 * branch or call (to the same absolute target), or by an indirect jump/return that was itself
 * displaced. Every site of the run must have its stub and escape on the way.
 */
function checkStub(g: readonly PatchedSite[], entries: readonly number[], sharedPage: number, stubOwners: ReadonlyMap<number, number>, at: At, inStubs: (a: number) => boolean, report: Report, checked: VerifyCounts): void {
  const s = g[0]!;
  const where = `site ${hex(s.addr)} (${s.tactic}, ${s.stub} stub at ${hex(s.stubAddr)})`;
  // The original run's live instructions: reached from an entry (the run's start, and the site
  // for T3, whose neighbours are entered separately) by falling through. Instructions after an
  // unconditional transfer are dead (padding after `jmp`, the next function after `ret`): the
  // stub may copy them, but no path reaches them, so they are not required.
  const runEntries = new Set([s.patchStart, s.addr]);
  const liveIns: { ip: number; off: number; length: number; form: number; flow: string; rel: boolean }[] = [];
  const origTargets = new Map<number, string>();
  /** Per original target: the mnemonics that branch there, and the return address of a CALL there. */
  const origBranches = new Map<number, { mnemonics: Set<string>; callNext?: number }>();
  let indirectCallNext: number | undefined;
  const origFlows = new Set<string>();
  // Sites the stub emulates (inline, escape) are not relocated: the monitor or the listing does their work.
  const emulated = new Set(g.filter((x) => x.stub !== 'empty').map((x) => x.addr));
  let lastLiveFlow: string | undefined = 'next';
  {
    const dec = new Decoder(32, s.displaced, s.patchStart, 0);
    const oi = new Instruction();
    let alive = true;
    while (dec.position < s.displaced.length) {
      const off = dec.position;
      dec.decodeOut(oi);
      if (!oi.valid) break;
      if (runEntries.has(oi.ip)) alive = true;
      if (!alive) {
        lastLiveFlow = undefined;
        continue;
      }
      const flow = classOf(oi.form).flow;
      const t = emulated.has(oi.ip) ? undefined : relTarget(oi);
      if (t !== undefined) {
        origTargets.set(t, `${formName(oi.form)} at ${hex(oi.ip)}`);
        const b = origBranches.get(t) ?? { mnemonics: new Set<string>() };
        b.mnemonics.add(mnemonicOf(oi.form));
        if (flow === 'call') b.callNext = oi.ip + oi.length;
        origBranches.set(t, b);
      }
      if (flow === 'indirect-call' && !emulated.has(oi.ip)) indirectCallNext = oi.ip + oi.length;
      origFlows.add(flow);
      liveIns.push({ ip: oi.ip, off, length: oi.length, form: oi.form, flow, rel: t !== undefined });
      lastLiveFlow = flow;
      if (ENDS_PATH.has(flow)) alive = false;
    }
  }
  // The way back is needed when the run's last instruction is live and falls through; a relocated
  // CALL pushes the original return address (resume) and jumps (stubs/relocate.ts).
  const needsResume = lastLiveFlow !== undefined && !['branch', 'indirect-branch', 'return', 'call', 'indirect-call', 'exception'].includes(lastLiveFlow);
  const isLive = (a: number): boolean => liveIns.some((x) => x.ip === a);
  /** Non-branch stub instructions by their bytes, with how many times each occurs (inline listings apart). */
  const copies = new Map<string, number>();
  const listings: (readonly [number, number])[] = [];
  for (const x of g) {
    const form = x.stub === 'inline' ? inlineFormOf(x.formId) : undefined;
    if (form) listings.push([x.stubAddr, x.stubAddr + inlineStub(form, x.stubAddr, sharedPage).bytes.length]);
  }
  const inListing = (a: number): boolean => listings.some(([lo, hi]) => a >= lo && a < hi);
  const escapes = new Set(g.map((x) => x.escapeAddr).filter((a) => a !== 0));

  const seen = new Set<number>();
  const work = [...entries];
  const reached = new Set<number>();
  let reachesResume = false;
  let n = 0;
  const ins = new Instruction();
  while (work.length > 0) {
    let pc = work.pop()!;
    // The immediate of a PUSH imm32 just before (a relocated CALL pushes its original return address).
    let pushed: number | undefined;
    for (;;) {
      const pushedBefore = pushed;
      pushed = undefined;
      if (seen.has(pc)) break;
      if (!inStubs(pc)) {
        report.add(s.addr, 'stub', `${where}: falls through out of the stub ranges at ${hex(pc)}`);
        return;
      }
      if (++n > MAX_STUB_INSTRUCTIONS) {
        report.add(s.addr, 'stub', `${where}: more than ${MAX_STUB_INSTRUCTIONS} instructions without leaving the stub`);
        return;
      }
      seen.add(pc);
      const owner = stubOwners.get(pc);
      if (owner !== undefined && !g.some((x) => x.addr === owner)) {
        report.add(s.addr, 'stub', `${where}: runs into the stub of site ${hex(owner)} at ${hex(pc)}`);
        return;
      }
      const d = at.decode(pc, ins);
      if (!d || !d.valid) {
        report.add(s.addr, 'stub', `${where}: undecodable bytes in the stub at ${hex(pc)}`);
        return;
      }
      checked.stubInstructions++;
      const flow = classOf(d.form).flow;
      const t = relTarget(d);
      const next = pc + d.length;
      if (escapes.has(pc)) {
        // The escape (int 0x81): the monitor resumes after it (docs/patch-abi.md).
        const b = at.read(pc, 2);
        if (!b || b[0] !== ESCAPE[0] || b[1] !== ESCAPE[1]) {
          report.add(s.addr, 'stub', `${where}: the escape at ${hex(pc)} is ${b ? hexBytes(b) : 'unmapped'}, not int 0x81 (cd 81)`);
          return;
        }
        pc = next;
        continue;
      }
      if (t === undefined && !inListing(pc)) {
        const key = hexBytes(at.read(pc, d.length)!);
        copies.set(key, (copies.get(key) ?? 0) + 1);
      }
      if (mnemonicOf(d.form) === 'push' && d.opKinds[0] === OpKind.Immediate32) pushed = d.imm >>> 0;
      if (t !== undefined && !inStubs(t)) {
        // An exit from the stub: resume, or a relocated branch/call of the original run.
        if (flow === 'branch' && t === s.resume) {
          reachesResume = true;
          if (origTargets.has(t)) reached.add(t); // a displaced jmp to the end of the run
        } else if (origTargets.has(t)) {
          // The same kind of branch (jne stays jne), or a CALL or LOOP re-expressed with JMP.
          const o = origBranches.get(t)!;
          const m = mnemonicOf(d.form);
          const sameKind = o.mnemonics.has(m) || (m === 'jmp' && [...o.mnemonics].some((x) => x === 'call' || LOOP_LIKE.has(x)));
          if (!sameKind) {
            report.add(s.addr, 'relocation', `${where}: ${formName(d.form)} at ${hex(pc)} goes to ${hex(t)}, where the displaced ${origTargets.get(t)} went: another kind of branch`);
            return;
          }
          if (m === 'jmp' && !o.mnemonics.has('jmp') && o.callNext !== undefined && pushedBefore !== o.callNext) {
            report.add(s.addr, 'relocation', `${where}: the relocated call to ${hex(t)} pushes ${pushedBefore === undefined ? 'nothing' : hex(pushedBefore)}, not the original return address ${hex(o.callNext)}`);
            return;
          }
          reached.add(t);
        } else if (flow === 'branch') {
          report.add(s.addr, 'resume', `${where}: the stub's jump back at ${hex(pc)} goes to ${hex(t)}, which is neither resume ${hex(s.resume)} nor a target of the displaced instructions`);
          return;
        } else {
          report.add(s.addr, 'relocation', `${where}: ${formName(d.form)} at ${hex(pc)} goes to ${hex(t)}, which is not a target of the displaced instructions (${[...origTargets.keys()].map(hex).join(', ') || 'none'})`);
          return;
        }
        if (flow === 'branch') break;
      } else if (t !== undefined) {
        if (flow === 'branch') {
          pc = t;
          continue;
        }
        if (flow === 'conditional' || flow === 'call') work.push(t);
      }
      if (t === undefined && (flow === 'branch' || flow === 'call')) {
        // A far JMP/CALL: it leaves for an absolute address, allowed only as a copy of a displaced one.
        const bytes = hexBytes(at.read(pc, d.length)!);
        const copied = liveIns.some((x) => !emulated.has(x.ip) && x.flow === flow && hexBytes(s.displaced.subarray(x.off, x.off + x.length)) === bytes);
        if (!copied) {
          report.add(s.addr, 'stub', `${where}: ${formName(d.form)} at ${hex(pc)} leaves the stub, and no displaced instruction is that far ${flow === 'call' ? 'call' : 'jump'}`);
          return;
        }
        if (flow === 'branch') break;
      }
      if (flow === 'indirect-branch' || flow === 'return') {
        // CALL r/m is relocated as PUSH resume; JMP r/m.
        if (!origFlows.has(flow) && !(flow === 'indirect-branch' && origFlows.has('indirect-call'))) {
          report.add(s.addr, 'stub', `${where}: ${formName(d.form)} at ${hex(pc)} leaves the stub for an unknown address, and no displaced instruction is a ${flow}`);
          return;
        }
        if (flow === 'indirect-branch' && !origFlows.has(flow) && pushedBefore !== indirectCallNext) {
          report.add(s.addr, 'relocation', `${where}: the relocated indirect call at ${hex(pc)} pushes ${pushedBefore === undefined ? 'nothing' : hex(pushedBefore)}, not the original return address ${hex(indirectCallNext ?? 0)}`);
          return;
        }
        break;
      }
      if (flow === 'exception') {
        report.add(s.addr, 'stub', `${where}: ${formName(d.form)} at ${hex(pc)} always faults`);
        return;
      }
      pc = next;
    }
  }
  checked.stubs += g.length;
  for (const x of g) {
    // A site after an unconditional transfer in the run is dead code: its stub is unreachable too.
    if (!isLive(x.addr)) continue;
    if (!seen.has(x.stubAddr)) report.add(x.addr, 'stub', `site ${hex(x.addr)}: its stub ${hex(x.stubAddr)} is not on any path through the run's stub from ${hex(entries[0]!)}`);
    if (x.escapeAddr !== 0 && !seen.has(x.escapeAddr)) report.add(x.addr, 'stub', `site ${hex(x.addr)}: its escape ${hex(x.escapeAddr)} is not on any path through the stub`);
  }
  for (const [t, what] of origTargets) {
    // A target strictly inside the run itself may be reached through the stub's own copy (and is
    // an inner target, checked elsewhere); the run's start is the patched jump, reached as is.
    if (t > s.patchStart && t < s.patchStart + s.displaced.length) continue;
    if (!reached.has(t)) {
      report.add(s.addr, 'relocation', `${where}: no relocated branch in the stub reaches ${hex(t)}, the target of the displaced ${what}`);
      return;
    }
    checked.relocatedBranches++;
  }
  // Instructions the stub runs in place of the displaced ones: byte-identical copies, except
  // relative branches (re-encoded for their new address) and the sites the stub emulates.
  for (const x of liveIns) {
    if (emulated.has(x.ip) || x.flow === 'indirect-call') continue;
    if (x.rel) continue;
    const bytes = hexBytes(s.displaced.subarray(x.off, x.off + x.length));
    const left = copies.get(bytes) ?? 0;
    copies.set(bytes, left - 1);
    if (left <= 0) {
      report.add(s.addr, 'relocation', `${where}: the displaced ${formName(x.form)} at ${hex(x.ip)} (${bytes}) has no byte-identical copy in the stub`);
      return;
    }
    checked.relocatedInstructions++;
  }
  if (!reachesResume && needsResume) {
    report.add(s.addr, 'resume', `${where}: no path through the stub jumps back to resume ${hex(s.resume)}`);
  }
}

/**
 * Jump targets by recursive traversal of the original code (the patched image with every run's
 * displaced bytes put back), from the entry point and the function symbols: direct branch and
 * call targets and return sites. Sites whose tactic assumed that nothing jumps into their run
 * must have no such target strictly inside it.
 */
function checkInnerTargets(elf: ElfImage, map: PatchMap, inStubs: (a: number) => boolean, report: Report, checked: VerifyCounts): void {
  const risky = map.sites.filter((s) => s.assumesNoInnerTargets && s.displaced.length > 1);
  if (risky.length === 0) return;
  // A copy, not seg.bytes.slice(): on a Node Buffer, slice() is a view, and the caller's image
  // would get the displaced bytes written back into it.
  const restored = new Memory({ ...elf, segments: elf.segments.map((seg) => ({ ...seg, bytes: Uint8Array.from(seg.bytes) })) });
  for (const s of map.sites) {
    for (let i = 0; i < s.displaced.length; i++) {
      const a = s.patchStart + i;
      const seg = restored.segmentAt(a);
      if (seg && a - seg.vaddr < seg.bytes.length) seg.bytes[a - seg.vaddr] = s.displaced[i]!;
    }
  }
  // Code is what the executable sections hold (the executable segments without section headers);
  // the stub segment is not original code.
  const code = elf.sections.some((x) => x.executable && x.addr !== 0)
    ? elf.sections.filter((x) => x.executable && x.addr !== 0 && x.bytes.length > 0).map((x) => [x.addr, x.addr + x.bytes.length] as const)
    : elf.segments.filter((g) => g.type === 'load' && (g.flags & PF_X) !== 0).map((g) => [g.vaddr, g.vaddr + g.bytes.length] as const);
  const executable = (a: number): boolean => !inStubs(a) && code.some(([lo, hi]) => a >= lo && a < hi);
  const targets = jumpTargets(elf, restored, executable, map.flags & PATCHMAP_FLAG_LOADER ? map.originalEntry : elf.entry);
  checked.jumpTargets = targets.size;
  const seenRuns = new Set<string>();
  const ins = new Instruction();
  for (const s of risky) {
    checked.innerTargetSites++;
    const end = s.patchStart + s.displaced.length;
    const inRun = (a: number): string => `site ${hex(s.addr)} (${s.tactic}): ${hex(a)} inside its overwritten run [${hex(s.patchStart)}, ${hex(end)})`;
    let found = false;
    for (let a = s.patchStart + 1; a < end; a++) {
      if (targets.has(a) && a !== s.addr) {
        report.add(s.addr, 'inner-target', `${inRun(a)} is a jump target (${targets.get(a)})`);
        found = true;
        break;
      }
    }
    // An instruction after an unconditional transfer is reached only by a jump (a jump-table
    // case, a label jumped over): a jump target by construction, known or not, unless it is
    // alignment padding. Checked once per run.
    const key = `${s.patchStart}:${s.displaced.length}`;
    if (found || seenRuns.has(key)) continue;
    seenRuns.add(key);
    const dec = new Decoder(32, s.displaced, s.patchStart, 0);
    let afterTransfer = false;
    while (dec.position < s.displaced.length) {
      dec.decodeOut(ins);
      if (!ins.valid) break;
      if (afterTransfer && !isPadding(ins) && ins.ip !== s.addr) {
        report.add(s.addr, 'inner-target', `${inRun(ins.ip)} follows an unconditional transfer, so only a jump reaches it: a jump target, though no direct one is known`);
        break;
      }
      if (ENDS_PATH.has(classOf(ins.form).flow)) afterTransfer = true;
      else if (!isPadding(ins)) afterTransfer = false;
    }
  }
}

/** Alignment padding compilers and assemblers put between functions and after jumps. */
function isPadding(ins: Instruction): boolean {
  const m = mnemonicOf(ins.form);
  if (m === 'nop' || m === 'int3') return true;
  // lea esi, [esi + 0] / [esi*1 + 0]; mov edi, edi; xchg ebx, ebx
  if (m === 'lea') return ins.opRegs[0] === ins.memBase && ins.memIndex === 0 && ins.memDisp === 0;
  if (m === 'mov' || m === 'xchg') return ins.opCount === 2 && ins.opKinds[0] === OpKind.Register && ins.opKinds[1] === OpKind.Register && ins.opRegs[0] === ins.opRegs[1];
  return false;
}

/** Entry, symbols, and direct targets and return sites reached from them, with why each is one. */
function jumpTargets(elf: ElfImage, mem: Memory, executable: (a: number) => boolean, entry: number): Map<number, string> {
  const targets = new Map<number, string>();
  const work: number[] = [];
  const add = (a: number, why: string): void => {
    if (!executable(a)) return;
    if (!targets.has(a)) targets.set(a, why);
    work.push(a);
  };
  add(entry, 'the entry point');
  for (const sym of elf.symbols) {
    const inExec = elf.sections[sym.sectionIndex]?.executable === true;
    if (sym.type === 'func' || (sym.type === 'notype' && sym.name !== '' && inExec)) add(sym.value, `symbol ${sym.name}`);
  }
  const at = new At(mem);
  const visited = new Set<number>();
  const ins = new Instruction();
  while (work.length > 0) {
    let pc = work.pop()!;
    while (executable(pc) && !visited.has(pc)) {
      visited.add(pc);
      const d = at.decode(pc, ins);
      if (!d || !d.valid) break;
      const flow = classOf(d.form).flow;
      const t = relTarget(d);
      const next = pc + d.length;
      if (t !== undefined) add(t, `target of ${formName(d.form)} at ${hex(pc)}`);
      if (flow === 'call' || flow === 'indirect-call') add(next, `return site of the call at ${hex(pc)}`);
      if (flow === 'branch' || flow === 'indirect-branch' || flow === 'return' || flow === 'exception') break;
      pc = next;
    }
  }
  return targets;
}

/**
 * With the original image: the SHA-256 is checked by the caller; here every original segment
 * must still be there unchanged in place and attributes, every byte outside the patched runs
 * must be the same, the entry point the same, the stub segment clear of the original's memory,
 * and a multiboot header, if the original had one, still valid with the same flags.
 */
function checkOriginalLayout(
  elf: ElfImage, orig: ElfImage, origBytes: Uint8Array, patchedBytes: Uint8Array,
  map: PatchMap | undefined, report: Report, checked: VerifyCounts,
): void {
  if (map && map.flags & PATCHMAP_FLAG_LOADER) {
    if (map.originalEntry !== orig.entry) report.add(elf.entry, 'segment', `the loader's original entry ${hex(map.originalEntry)} is not the original's entry point ${hex(orig.entry)}`);
  } else if (elf.entry !== orig.entry) {
    report.add(elf.entry, 'segment', `entry point ${hex(elf.entry)}, the original's is ${hex(orig.entry)}`);
  }
  for (const o of orig.segments) {
    if (o.type === 'phdr') continue; // the program header table may move when a segment is added
    checked.segments++;
    const p = elf.segments.find((s) => s.type === o.type && s.vaddr === o.vaddr);
    const what = `original segment ${o.index} (${o.type} at ${hex(o.vaddr)})`;
    if (!p) {
      report.add(o.vaddr, 'segment', `${what} is missing from the patched image`);
      continue;
    }
    const diffs: string[] = [];
    if (p.paddr !== o.paddr) diffs.push(`paddr ${hex(p.paddr)} (was ${hex(o.paddr)})`);
    if (p.flags !== o.flags) diffs.push(`flags ${p.flags} (was ${o.flags})`);
    if (p.memsz !== o.memsz) diffs.push(`memsz ${hex(p.memsz)} (was ${hex(o.memsz)})`);
    if (p.filesz !== o.filesz) diffs.push(`filesz ${hex(p.filesz)} (was ${hex(o.filesz)})`);
    if (diffs.length > 0) report.add(o.vaddr, 'segment', `${what} changed: ${diffs.join(', ')}`);
  }
  for (const r of map?.stubRanges ?? []) {
    for (const o of orig.segments) {
      if (o.type !== 'load') continue;
      if (r.vaddr < o.vaddr + o.memsz && o.vaddr < r.vaddr + r.size) {
        report.add(r.vaddr, 'segment', `the stub range [${hex(r.vaddr)}, ${hex(r.vaddr + r.size)}) overlaps original segment ${o.index} [${hex(o.vaddr)}, ${hex(o.vaddr + o.memsz)})`);
      }
    }
  }

  // Bytes outside the runs, segment by segment, by virtual address.
  const mem = new Memory(elf);
  const runs = (map?.sites ?? []).filter((s) => s.displaced.length > 0)
    .map((s) => [s.patchStart, s.patchStart + s.displaced.length] as const)
    .sort((a, b) => a[0] - b[0]);
  for (const o of orig.segments) {
    if (o.type !== 'load' || o.bytes.length === 0) continue;
    const p = elf.segments.find((s) => s.type === 'load' && s.vaddr <= o.vaddr && o.vaddr + o.bytes.length <= s.vaddr + s.memsz);
    let r = 0;
    let reported = 0;
    for (let i = 0; i < o.bytes.length; i++) {
      const a = o.vaddr + i;
      while (r < runs.length && runs[r]![1] <= a) r++;
      if (r < runs.length && runs[r]![0] <= a) {
        i = runs[r]![1] - o.vaddr - 1;
        continue;
      }
      checked.bytesCompared++;
      const b = p ? (a - p.vaddr < p.bytes.length ? p.bytes[a - p.vaddr]! : 0) : mem.byte(a);
      if (b !== o.bytes[i]) {
        if (reported++ < 16) {
          report.add(a, 'changed-byte', `byte ${hex(a)} outside every patched run changed: ${b === undefined ? 'unmapped' : hex(b)}, was ${hex(o.bytes[i]!)}`);
        }
      }
    }
    if (reported > 16) report.add(o.vaddr, 'changed-byte', `... ${reported - 16} more changed bytes in original segment ${o.index}`);
  }

  const mbOrig = multibootHeader(origBytes);
  if (mbOrig) {
    checked.multiboot = 1;
    const mb = multibootHeader(patchedBytes);
    if (!mb) report.add(0, 'multiboot', `the original has a multiboot header (flags ${hex(mbOrig.flags)}) at file offset ${hex(mbOrig.offset)}; the patched image has no valid one in its first 8192 bytes`);
    else if (mb.flags !== mbOrig.flags) report.add(0, 'multiboot', `multiboot header flags ${hex(mb.flags)}, the original's are ${hex(mbOrig.flags)}`);
    else if (mb.flags & MB_AOUT_KLUDGE) {
      // Address fields: the same load addresses, and the header at the file offset they imply.
      const o = new DataView(origBytes.buffer, origBytes.byteOffset + mbOrig.offset, 32);
      const q = new DataView(patchedBytes.buffer, patchedBytes.byteOffset + mb.offset, 32);
      for (const [off, name] of [[12, 'header_addr'], [16, 'load_addr'], [28, 'entry_addr']] as const) {
        if (o.getUint32(off, true) !== q.getUint32(off, true)) {
          report.add(0, 'multiboot', `multiboot ${name} ${hex(q.getUint32(off, true))}, the original's is ${hex(o.getUint32(off, true))}`);
        }
      }
    }
  }
}

const MB_MAGIC = 0x1badb002;
const MB_AOUT_KLUDGE = 1 << 16;

/** Multiboot Specification 0.6.96 §3.1.1: a 4-byte-aligned header with a zero checksum in the first 8192 bytes. */
function multibootHeader(image: Uint8Array): { offset: number; flags: number } | undefined {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const limit = Math.min(image.length, 8192);
  for (let off = 0; off + 12 <= limit; off += 4) {
    if (dv.getUint32(off, true) !== MB_MAGIC) continue;
    const flags = dv.getUint32(off + 4, true);
    if (((MB_MAGIC + flags + dv.getUint32(off + 8, true)) >>> 0) === 0) {
      if ((flags & MB_AOUT_KLUDGE) && off + 32 > image.length) continue;
      return { offset: off, flags };
    }
  }
  return undefined;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
