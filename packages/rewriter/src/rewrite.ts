// `ringshift rewrite`'s core: ELF bytes in, patched ELF bytes + patch map + report out.
//
//   readElf -> discover -> findSites -> planLayout -> makePlan (a tactic per site)
//   -> patched copies of the original PT_LOAD segments + stub ranges (ranges.ts) -> writeElf32
//
// The stub code lies in stub ranges (ranges.ts, docs/patch-map.md §Stub range record). Range 0
// is a PT_LOAD: the shared page first (when any stub is inline or escapes), then the sequential
// trampolines; it is RWX when it holds the shared page, RX otherwise. Punned (B2/T1) trampolines
// sit at the addresses their jumps fix: in a kernel, in more small PT_LOADs in the monitor's
// hole; in a user executable, on pages the stub loader (stubs/loader.ts, the new e_entry, at the
// end of range 0) maps from the file, several virtual pages sharing one file page when their
// bytes do not collide.
// Output is a pure function of the input bytes and options: sites are planned in address order,
// allocation is first-fit from fixed starting points, and nothing depends on iteration order of
// hash containers or on time.
import { SHF_ALLOC, PF_R, PF_W, PF_X, SECTION_TYPES, SEGMENT_TYPES } from './elf/constants';
import { readElf } from './elf/read';
import type { ElfImage, ElfSegment } from './elf/read';
import { writeElf32 } from './elf/write';
import type { ElfWriteProgramHeader, ElfWriteSection, ElfWriteSegment, ElfWriteSymbol } from './elf/write';
import { checkRewritable, discover } from './discover';
import { RewriteInputError } from './errors';
import { PAGE, USER_MAIN_SIZE, findMultibootHeader, planLayout } from './layout';
import type { Discovery, Miss, PatchMap, Site, StubKind, Tactic } from './model';
import { PATCHMAP_FLAG_INLINE_FLAT_DS, PATCHMAP_FLAG_KERNEL, PATCHMAP_FLAG_LOADER, STUB_RANGE_LOAD, STUB_RANGE_LOADER } from './model';
import { LOADER_PAGES_SECTION, kernelRanges, userRanges, withLoader } from './ranges';
import { PATCHMAP_VERSION, encodePatchMap } from './patchmap';
import { makePlan } from './plan';
import { sha256Hex } from './sha256';
import { findSites } from './sites';
import { sharedPageImage } from './stubs/shared';
import { PlanContext, StubSpace } from './tactics/context';
import { PATCHMAP_SECTION_NAME } from './verify';

/** docs/patch-map.md: the section verify.ts and the runtime read. */
const PATCHMAP_SECTION = PATCHMAP_SECTION_NAME;
export const STUBS_SECTION = '.ringshift.stubs';

export interface RewriteOptions {
  /** Site selection (sites.ts): 'sensitive' (default), 'jumps', or any selector list. */
  readonly select?: string;
  /** Inline stubs for CLI/STI/PUSHFD/POPFD (default true); false makes them escape. */
  readonly inline?: boolean;
  /** Only these tactics (trap is always the fallback); for measurements and tests. */
  readonly tactics?: readonly Tactic[];
  /** Use this discovery instead of discover(elf) (tests). */
  readonly discovery?: Discovery;
  /** Use these sites instead of findSites(elf, discovery, select) (tests). */
  readonly sites?: readonly Site[];
}

export interface RewriteReport {
  readonly select: string;
  readonly kernel: boolean;
  /** Sites selected. */
  readonly sites: number;
  /** Sites patched with a jump (everything but trap and skipped). */
  readonly patched: number;
  /** Sites per tactic: with the skipped sites they add up to `sites`. */
  readonly tactics: Record<Tactic, number>;
  /** Sites per stub kind (evicted instructions not counted). */
  readonly stubs: Record<StubKind, number>;
  /**
   * Instructions that are not sites but were patched to make room for a site's jump (T2e's
   * successors, patch-map reason 'evicted'), by the tactic of their own jump. Not in `tactics`.
   */
  readonly evicted: Record<'B1' | 'B2' | 'T1', number>;
  /** Sites not patched with a jump: trap fallbacks and skipped sites, each with the reason per tactic. */
  readonly misses: readonly Miss[];
  readonly discovery: {
    readonly instructions: number;
    readonly codeBytes: number;
    readonly dataBytes: number;
    readonly unknownBytes: number;
    readonly jumpTargets: number;
    readonly indirectTransfers: number;
  };
  /** The primary stub range (range 0). */
  readonly stubSegment: { readonly vaddr: number; readonly paddr: number; readonly size: number; readonly sharedPage: number };
  /** Number of stub ranges (PT_LOADs and loader mappings). */
  readonly stubRanges: number;
  /** Things of the input the output does not keep (program headers the writer does not write, ...). */
  readonly warnings: readonly string[];
}

export interface RewriteResult {
  readonly image: Uint8Array;
  readonly map: PatchMap;
  readonly report: RewriteReport;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const SHF_TLS = 0x400;

/** Rewrites an ELF32 i386 executable. Throws RewriteInputError / ElfError for input it cannot take. */
export function rewriteImage(bytes: Uint8Array, options: RewriteOptions = {}): RewriteResult {
  const select = options.select ?? 'sensitive';
  const elf = readElf(bytes);
  checkRewritable(elf);
  if (elf.type !== 'exec') throw new RewriteInputError(`ELF type '${elf.type}': rewrite writes ET_EXEC images only (a PIE would need its stub segment relocated)`);
  const discovery = options.discovery ?? discover(elf);
  const sites = options.sites ?? findSites(elf, discovery, select);
  const layout = planLayout(elf, bytes);
  const warnings: string[] = [];

  const needShared = sites.some((s) => s.reason !== 'jumps');
  const sharedPage = needShared ? layout.stubVaddr : 0;
  const codeStart = layout.stubVaddr + (needShared ? PAGE : 0);
  // The shared page is no trampoline's: a punned jump may otherwise land in it (docs/patch-abi.md).
  const reserved = needShared ? [...layout.reserved, [sharedPage, codeStart] as const] : layout.reserved;
  const space = new StubSpace(codeStart, layout.limit, layout.punLo, layout.punHi, reserved, !layout.kernel);
  const ctx = new PlanContext(elf, discovery, sites, space, needShared && options.inline !== false ? sharedPage : undefined, layout.kernel);
  const plan = makePlan(ctx, sites, options.tactics ? new Set(options.tactics) : undefined);

  // The stub ranges (docs/patch-map.md §Stub range record).
  const hasCode = plan.patches.length > 0;
  const trampolines = plan.patches.map((p) => p.trampoline!);
  const shared = hasCode && needShared ? sharedPageImage() : undefined;
  const stubs = !hasCode
    ? undefined
    : layout.kernel
      ? kernelRanges(trampolines, layout.stubVaddr, layout.stubPaddr, shared)
      : userRanges(trampolines, layout.stubVaddr, layout.stubVaddr + USER_MAIN_SIZE, space.end, shared);

  // Patched copies of the original loadable segments.
  const segments: ElfWriteSegment[] = [];
  const carried: ElfSegment[] = [];
  for (const s of elf.segments) {
    if (s.type === 'load') {
      if (s.memsz === 0) {
        warnings.push(`empty PT_LOAD segment ${s.index} at ${hex(s.vaddr)} dropped`);
        continue;
      }
      const b = new Uint8Array(s.bytes);
      for (let i = 0; i < plan.writes.length; i++) {
        const w = plan.writes[i]!;
        if (w.addr >= s.vaddr && w.addr + w.bytes.length <= s.vaddr + b.length) b.set(w.bytes, w.addr - s.vaddr);
      }
      segments.push({ vaddr: s.vaddr, paddr: s.paddr, flags: s.flags & (PF_R | PF_W | PF_X), bytes: b, memsz: s.memsz, align: s.align });
    } else if (s.type !== 'gnu_stack' && !(s.type === 'phdr' && layout.headerVaddr !== undefined)) {
      // With a header segment the writer makes PT_PHDR itself, for the table it loads.
      carried.push(s);
    }
  }
  for (const r of stubs?.loads ?? []) {
    segments.push({ vaddr: r.vaddr, paddr: r.paddr, flags: PF_R | PF_X | (r.vaddr === sharedPage && shared ? PF_W : 0), bytes: r.bytes, align: PAGE });
  }

  const stubCount: Record<StubKind, number> = { inline: 0, escape: 0, empty: 0, trap: 0 };
  const tacticCount: Record<Tactic, number> = { B1: 0, B2: 0, T1: 0, T2e: 0, T3e: 0, T2: 0, T3: 0, trap: 0 };
  const evictedCount: Record<'B1' | 'B2' | 'T1', number> = { B1: 0, B2: 0, T1: 0 };
  for (const r of plan.records) {
    if (r.reason === 'evicted') {
      evictedCount[r.tactic as 'B1' | 'B2' | 'T1']++;
      continue;
    }
    stubCount[r.stub]++;
    tacticCount[r.tactic]++;
  }
  const loader = stubs?.loader;
  const primary = stubs?.loads[0];
  const originalSha256 = sha256Hex(bytes);
  const mapFor = (blobOffset: number): PatchMap => ({
    version: PATCHMAP_VERSION,
    originalSha256,
    select,
    stubVaddr: primary?.vaddr ?? 0,
    stubPaddr: primary?.paddr ?? 0,
    stubSize: primary?.bytes.length ?? 0,
    sharedPage: hasCode ? sharedPage : 0,
    flags: (layout.kernel ? PATCHMAP_FLAG_KERNEL : 0) | (stubCount.inline > 0 ? PATCHMAP_FLAG_INLINE_FLAT_DS : 0) | (loader ? PATCHMAP_FLAG_LOADER : 0),
    stubRanges: [
      ...(stubs?.loads ?? []).map((r) => ({ vaddr: r.vaddr, paddr: r.paddr, offset: 0, size: r.bytes.length, flags: STUB_RANGE_LOAD })),
      ...(loader?.mappings ?? []).map((m) => ({ vaddr: m.vaddr, paddr: m.vaddr, offset: blobOffset + m.offset, size: m.size, flags: STUB_RANGE_LOADER })),
    ],
    originalEntry: loader ? elf.entry : 0,
    sites: plan.records,
  });

  if (!layout.kernel && layout.headerVaddr === undefined) {
    warnings.push('no free page below the image for the ELF header: the program header table is not loaded, so AT_PHDR is 0 (or unmapped before Linux 5.18); ringshift verify reports it');
  }
  const { sections, symbols } = carrySections(elf, segments, warnings);
  // Range 0 of a kernel whose trampolines are all punned (no shared page) starts at the first one's page.
  const stubsStart = primary ? Math.max(codeStart, primary.vaddr) : codeStart;
  if (primary && primary.codeEnd > stubsStart) sections.push({ name: STUBS_SECTION, addr: stubsStart, size: primary.codeEnd - stubsStart, flags: 'ax', align: 1 });
  const gnuStack = elf.segments.find((s) => s.type === 'gnu_stack');
  const programHeaders = carriedProgramHeaders(carried, segments, warnings);
  // With a loader, the file offsets of the loader pages go into the loader's table and the map;
  // they are known once the file is laid out, and writing again with them changes no size.
  const build = (blobOffset: number): { image: Uint8Array; map: PatchMap } => {
    const map = mapFor(blobOffset);
    const segs = segments.map((g) => (loader && g.vaddr === primary!.vaddr ? { ...g, bytes: withLoader(primary!.bytes, primary!.vaddr, loader, elf.entry, blobOffset) } : g));
    const secs: ElfWriteSection[] = [...sections, { name: PATCHMAP_SECTION, addr: 0, bytes: encodePatchMap(map), align: 4 }];
    if (loader) secs.push({ name: LOADER_PAGES_SECTION, addr: 0, bytes: loader.pages, align: PAGE });
    const image = writeElf32({
      type: 'exec', machine: 'i386', entry: loader ? loader.at : elf.entry, segments: segs, sections: secs, symbols,
      ...(gnuStack ? { stack: gnuStack.flags & PF_X ? ('rwx' as const) : ('rw' as const) } : {}),
      programHeaders,
      ...(layout.headerVaddr !== undefined ? { header: { vaddr: layout.headerVaddr, phdr: elf.segments.some((s) => s.type === 'phdr') } } : {}),
    });
    return { image, map };
  };
  let { image, map } = build(0);
  if (loader) {
    const warned = warnings.length;
    const off = readElf(image).sections.find((x) => x.name === LOADER_PAGES_SECTION)!.offset;
    ({ image, map } = build(off));
    warnings.length = warned;
    if (readElf(image).sections.find((x) => x.name === LOADER_PAGES_SECTION)!.offset !== off) {
      throw new Error('internal error: the loader pages moved when their offsets were filled in');
    }
  }

  const before = findMultibootHeader(bytes);
  if (before) {
    const after = findMultibootHeader(image);
    if (!after || after.flags !== before.flags) {
      throw new Error(`internal error: the rewritten image lost its multiboot header (was at file offset ${hex(before.offset)})`);
    }
  }

  let codeBytes = 0, dataBytes = 0, unknownBytes = 0;
  for (const r of discovery.ranges) {
    const n = r.end - r.start;
    if (r.kind === 'code') codeBytes += n;
    else if (r.kind === 'data') dataBytes += n;
    else unknownBytes += n;
  }
  const report: RewriteReport = {
    select, kernel: layout.kernel, sites: sites.length,
    patched: plan.records.filter((r) => r.tactic !== 'trap' && r.reason !== 'evicted').length,
    tactics: tacticCount, stubs: stubCount, evicted: evictedCount, misses: plan.misses,
    discovery: {
      instructions: discovery.instructions.length, codeBytes, dataBytes, unknownBytes,
      jumpTargets: discovery.jumpTargets.size, indirectTransfers: discovery.indirectTransfers.length,
    },
    stubSegment: { vaddr: map.stubVaddr, paddr: map.stubPaddr, size: map.stubSize, sharedPage: map.sharedPage },
    stubRanges: map.stubRanges.length,
    warnings,
  };
  return { image, map, report };
}

const SEGMENT_TYPE_NUMBERS = new Map(Object.entries(SEGMENT_TYPES).map(([n, name]) => [name, Number(n)]));

/**
 * The original program headers writeElf32 does not make itself (PT_NOTE, PT_TLS, PT_GNU_RELRO,
 * ...), for it to write after the PT_LOADs: static glibc finds its TLS block through PT_TLS, so
 * an executable without it breaks. A header that lies in no written PT_LOAD is dropped with a
 * warning.
 */
function carriedProgramHeaders(extra: readonly ElfSegment[], segments: readonly ElfWriteSegment[], warnings: string[]): ElfWriteProgramHeader[] {
  const out: ElfWriteProgramHeader[] = [];
  for (const s of extra) {
    const type = SEGMENT_TYPE_NUMBERS.get(s.type) ?? (s.type.startsWith('0x') ? parseInt(s.type, 16) : undefined);
    const home = segments.some((l) => s.vaddr >= l.vaddr && s.vaddr + s.memsz <= l.vaddr + (l.memsz ?? l.bytes.length));
    if (type === undefined || !home) {
      warnings.push(`program header ${s.index} (${s.type}) at ${hex(s.vaddr)} not written (${!home ? 'in no PT_LOAD' : 'unknown type'})`);
      continue;
    }
    out.push({ type, vaddr: s.vaddr, paddr: s.paddr, filesz: s.filesz, memsz: s.memsz, flags: s.flags, align: s.align });
  }
  return out;
}

const SECTION_TYPE_NUMBERS = new Map(Object.entries(SECTION_TYPES).map(([n, name]) => [name, Number(n)]));
const WRITER_MAKES = new Set(['.symtab', '.strtab', '.shstrtab', PATCHMAP_SECTION, STUBS_SECTION, LOADER_PAGES_SECTION]);

/** The original sections and symbols, in the writer's terms; what cannot be carried is a warning. */
function carrySections(elf: ElfImage, segments: readonly ElfWriteSegment[], warnings: string[]): { sections: ElfWriteSection[]; symbols: ElfWriteSymbol[] } {
  const sections: ElfWriteSection[] = [];
  const kept = new Map<string, { addr: number; size: number; alloc: boolean }>();
  for (const s of elf.sections) {
    if (s.index === 0 || s.type === 'null' || WRITER_MAKES.has(s.name) || s.type === 'symtab') continue;
    if (s.name === '' || kept.has(s.name)) {
      warnings.push(`section ${s.index} '${s.name}' not carried over (unnamed or duplicate name)`);
      continue;
    }
    const type = SECTION_TYPE_NUMBERS.get(s.type) ?? (s.type.startsWith('0x') ? parseInt(s.type, 16) : undefined);
    if (type === undefined) {
      warnings.push(`section '${s.name}' of type ${s.type} not carried over`);
      continue;
    }
    const alloc = (s.flags & SHF_ALLOC) !== 0;
    if (alloc) {
      const seg = segments.find((g) => s.addr >= g.vaddr && s.addr < g.vaddr + (g.memsz ?? g.bytes.length));
      const fileEnd = seg ? seg.vaddr + (s.type === 'nobits' ? (seg.memsz ?? seg.bytes.length) : seg.bytes.length) : 0;
      if (!seg || s.addr + s.size > fileEnd || (s.flags & SHF_TLS && s.type === 'nobits')) {
        warnings.push(`allocated section '${s.name}' at ${hex(s.addr)} not carried over (not inside one written segment's bytes, or TLS .tbss)`);
        continue;
      }
      sections.push({ name: s.name, type, flags: s.flags, addr: s.addr, size: s.size, align: s.addralign });
    } else {
      sections.push({ name: s.name, type, flags: s.flags, addr: 0, bytes: s.bytes, align: s.addralign });
    }
    kept.set(s.name, { addr: s.addr, size: s.size, alloc });
  }
  const symbols: ElfWriteSymbol[] = [];
  const globals = new Set<string>();
  for (const y of elf.symbols) {
    if (y.name === '' || (y.type !== 'func' && y.type !== 'object' && y.type !== 'notype')) continue;
    if (y.binding !== 'local' && y.binding !== 'global' && y.binding !== 'weak') continue;
    if (y.binding !== 'local') {
      if (globals.has(y.name)) continue;
      globals.add(y.name);
    }
    const sec = y.section ? kept.get(y.section) : undefined;
    const inside = sec && (!sec.alloc || (y.value >= sec.addr && y.value <= sec.addr + sec.size));
    symbols.push({
      name: y.name, value: y.value, size: y.size, type: y.type, binding: y.binding,
      ...(inside ? { section: y.section! } : {}),
    });
  }
  return { sections, symbols };
}

