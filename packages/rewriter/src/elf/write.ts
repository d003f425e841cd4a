// ELF32 writing: an i386 executable from segments, with optional section headers and symbols.
//
// Layout of the file, in order: ELF header, program header table (loaded by the optional header
// segment, `ElfWriteImage.header`), each PT_LOAD segment's file
// bytes (ascending p_vaddr), the bytes of non-allocated sections, .symtab, .strtab, .shstrtab,
// and the section header table. Allocated sections are views of the segments that contain them,
// so their sh_offset points into a segment's bytes rather than into a copy.
//
// Rules that are easy to get wrong, with where they come from:
// - gABI "Program Header": loadable segments appear in ascending p_vaddr order, and
//   p_offset ≡ p_vaddr (mod p_align). Offsets here are congruent modulo max(p_align, 4 KiB),
//   because the Linux loader (fs/binfmt_elf.c, elf_map) mmaps each segment from the file page
//   that holds p_offset to the page that holds p_vaddr, whatever p_align says.
// - Linux maps whole pages: two PT_LOAD segments that touch the same 4 KiB page would have the
//   second mapping replace the first one's page, so that is refused, not only byte overlap.
// - gABI "Symbol Table": local symbols come before all others, and .symtab's sh_info is the
//   index of the first non-local one; entry 0 is the null symbol; sh_link names .strtab.
import { EM_386, PF_R, PF_W, PF_X, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHN_ABS, SHT_NOBITS, SHT_STRTAB, SHT_SYMTAB } from './constants';

/** The image cannot be written as described; the message names the segment, section or symbol. */
export class ElfWriteError extends Error {
  override name = 'ElfWriteError';
}

/** 'r' | 'rw' | 'rx' | 'rwx', or PF_R | PF_W | PF_X bits. */
export type ElfWriteFlags = 'r' | 'rw' | 'rx' | 'rwx' | number;

export interface ElfWriteSegment {
  vaddr: number;
  /** Defaults to vaddr. */
  paddr?: number;
  flags: ElfWriteFlags;
  /** The file-backed part (p_filesz bytes); may be empty for a zero-filled segment. */
  bytes: Uint8Array;
  /** p_memsz, at least bytes.length (the rest is zero-filled, like .bss); default bytes.length. */
  memsz?: number;
  /** p_align: 0, 1 or a power of two; default 4096. */
  align?: number;
}

export interface ElfWriteSection {
  name: string;
  /** Default 'progbits'. */
  type?: 'progbits' | 'nobits' | 'note' | number;
  /**
   * SHF_* bits, or GNU as letters ('a' alloc, 'w' write, 'x' exec: 'ax', 'aw').
   * Default: for a section inside a segment, alloc plus the segment's write/exec; otherwise 0.
   */
  flags?: number | string;
  /** Address; 0 for a section that is not loaded (not SHF_ALLOC). */
  addr: number;
  /**
   * Contents. For an allocated PROGBITS section they default to the segment's bytes and, when
   * given, must equal them (the segment is the one copy in the file). Required when not loaded.
   */
  bytes?: Uint8Array;
  /** Size when there are no bytes (NOBITS, or an allocated section read from its segment). */
  size?: number;
  /** sh_addralign: 0, 1 or a power of two dividing addr; default 1. */
  align?: number;
}

export interface ElfWriteSymbol {
  name: string;
  value: number;
  size?: number;
  /** Default 'notype'. */
  type?: 'func' | 'object' | 'notype';
  /** Default 'global'. */
  binding?: 'global' | 'local' | 'weak';
  /** Name of a given section; default: the allocated section containing value, else absolute. */
  section?: string;
}

/**
 * A program header other than PT_LOAD (PT_NOTE, PT_TLS, PT_GNU_RELRO, ...) that describes part of
 * a given segment: its file offset is derived from the segment that holds its first byte.
 */
export interface ElfWriteProgramHeader {
  /** p_type; not PT_LOAD (segments) or PT_GNU_STACK (`stack`). */
  type: number;
  vaddr: number;
  /** Defaults to vaddr. */
  paddr?: number;
  filesz: number;
  memsz: number;
  /** PF_R | PF_W | PF_X bits. */
  flags: number;
  align: number;
}

export interface ElfWriteImage {
  type: 'exec';
  machine: 'i386';
  entry: number;
  segments: readonly ElfWriteSegment[];
  /** Section headers are written when sections or symbols are given. */
  sections?: readonly ElfWriteSection[];
  symbols?: readonly ElfWriteSymbol[];
  /**
   * Adds a PT_GNU_STACK header with these permissions. Without one, Linux runs i386
   * executables with READ_IMPLIES_EXEC (arch/x86/include/asm/elf.h, elf_read_implies_exec),
   * so every readable mapping is also executable. Default: none (only the given segments).
   */
  stack?: 'rw' | 'rwx';
  /** Written after the PT_LOAD (and PT_GNU_STACK) headers, in this order. */
  programHeaders?: readonly ElfWriteProgramHeader[];
  /**
   * Loads the ELF header and the program header table (file offset 0) read-only at `vaddr`, a
   * free page below every segment, as the first PT_LOAD; with `phdr`, a PT_PHDR for the table
   * comes first. Without it the table is in no PT_LOAD, and the loader's AT_PHDR is wrong: Linux
   * before 5.18 passes first PT_LOAD's (p_vaddr - p_offset) + e_phoff, an unmapped address, and
   * later kernels the address inside the PT_LOAD that holds e_phoff, or 0 when none does
   * (fs/binfmt_elf.c, load_elf_binary); a static libc that walks AT_PHDR for PT_TLS then crashes.
   * With this segment both formulas give vaddr + e_phoff.
   */
  header?: { vaddr: number; phdr: boolean };
}

const PAGE = 0x1000;
const EHSIZE = 52;
const PHENTSIZE = 32;
const SHENTSIZE = 40;
const SYMSIZE = 16;
const PT_LOAD = 1;
const PT_PHDR = 6;
const PT_GNU_STACK = 0x6474e551;
const SHT_PROGBITS = 1;
const SHT_NOTE = 7;
const ET_EXEC = 2;
const EV_CURRENT = 1;
const STB = { local: 0, global: 1, weak: 2 } as const;
const STT = { notype: 0, object: 1, func: 2 } as const;
const RESERVED_SECTIONS = new Set(['.shstrtab', '.symtab', '.strtab']);

const hex = (n: number): string => `0x${n.toString(16)}`;
const isU32 = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
const isAlign = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0x80000000 && (n & (n - 1)) === 0;
/** The smallest x >= from with x ≡ target (mod m), m a power of two. */
const congruent = (from: number, target: number, m: number): number => from + ((((target - from) % m) + m) % m);
const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

function segmentFlags(f: ElfWriteFlags, what: string): number {
  if (typeof f === 'number') {
    if (!Number.isInteger(f) || f < 0 || f > (PF_R | PF_W | PF_X)) {
      throw new ElfWriteError(`${what}: flags ${String(f)} are not PF_R | PF_W | PF_X bits`);
    }
    return f;
  }
  const table: Record<string, number> = { r: PF_R, rw: PF_R | PF_W, rx: PF_R | PF_X, rwx: PF_R | PF_W | PF_X };
  const v = table[f];
  if (v === undefined) throw new ElfWriteError(`${what}: flags '${String(f)}' are not 'r', 'rw', 'rx' or 'rwx'`);
  return v;
}

function sectionFlags(f: number | string, what: string): number {
  if (typeof f === 'number') {
    if (!isU32(f)) throw new ElfWriteError(`${what}: flags ${String(f)} are not a 32-bit sh_flags value`);
    return f;
  }
  let v = 0;
  for (const c of f) {
    if (c === 'a') v |= SHF_ALLOC;
    else if (c === 'w') v |= SHF_WRITE;
    else if (c === 'x') v |= SHF_EXECINSTR;
    else throw new ElfWriteError(`${what}: flag letter '${c}' in '${f}' is not a (alloc), w (write) or x (exec)`);
  }
  return v;
}

interface Seg {
  given: number;
  what: string;
  vaddr: number;
  paddr: number;
  flags: number;
  bytes: Uint8Array;
  memsz: number;
  align: number;
  offset: number;
}

interface Sec {
  what: string;
  name: string;
  type: number;
  flags: number;
  addr: number;
  size: number;
  align: number;
  /** Bytes to place in the file (non-allocated sections only). */
  data: Uint8Array | undefined;
  offset: number;
  link: number;
  info: number;
  entsize: number;
  nameOff: number;
}

/** The header segment's page: page-aligned, below every segment's page, room for the table. */
function checkHeaderSegment(vaddr: number, phnum: number, segs: readonly Seg[]): void {
  const what = `header segment at ${hex(vaddr)}`;
  if (!isU32(vaddr) || vaddr % PAGE !== 0) throw new ElfWriteError(`${what}: not a page-aligned 32-bit address`);
  if (EHSIZE + phnum * PHENTSIZE > PAGE) throw new ElfWriteError(`${what}: ${phnum} program headers do not fit in its page`);
  const first = segs[0]!;
  if (Math.floor(first.vaddr / PAGE) * PAGE <= vaddr) {
    throw new ElfWriteError(`${what}: not below the page of the lowest ${first.what} (loadable segments ascend by p_vaddr)`);
  }
}

function checkSegments(image: ElfWriteImage): Seg[] {
  if (image.segments.length === 0) throw new ElfWriteError('an executable needs at least one segment');
  const segs = image.segments.map((s, given): Seg => {
    const what = `segment ${given}`;
    if (!isU32(s.vaddr)) throw new ElfWriteError(`${what}: vaddr ${String(s.vaddr)} is not a 32-bit address`);
    const w = `${what} (vaddr ${hex(s.vaddr)})`;
    const paddr = s.paddr ?? s.vaddr;
    if (!isU32(paddr)) throw new ElfWriteError(`${w}: paddr ${String(paddr)} is not a 32-bit address`);
    if (!(s.bytes instanceof Uint8Array)) throw new ElfWriteError(`${w}: bytes must be a Uint8Array`);
    const memsz = s.memsz ?? s.bytes.length;
    if (!isU32(memsz)) throw new ElfWriteError(`${w}: memsz ${String(memsz)} is not a 32-bit size`);
    if (memsz < s.bytes.length) {
      throw new ElfWriteError(`${w}: memsz ${hex(memsz)} is smaller than its ${hex(s.bytes.length)} file bytes`);
    }
    if (memsz === 0) throw new ElfWriteError(`${w} is empty (no bytes, memsz 0)`);
    if (s.vaddr + memsz > 2 ** 32) {
      throw new ElfWriteError(`${w}: ends at ${hex(s.vaddr + memsz)}, past the 4 GiB address space`);
    }
    const align = s.align ?? PAGE;
    if (!isAlign(align)) throw new ElfWriteError(`${w}: align ${String(align)} is not 0 or a power of two`);
    return { given, what: w, vaddr: s.vaddr, paddr, flags: segmentFlags(s.flags, w), bytes: s.bytes, memsz, align, offset: 0 };
  });
  segs.sort((a, b) => a.vaddr - b.vaddr);
  for (let i = 1; i < segs.length; i++) {
    const a = segs[i - 1]!;
    const b = segs[i]!;
    const aEnd = a.vaddr + a.memsz;
    if (aEnd > b.vaddr) {
      throw new ElfWriteError(
        `${a.what} and ${b.what} overlap: [${hex(a.vaddr)}, ${hex(aEnd)}) and [${hex(b.vaddr)}, ${hex(b.vaddr + b.memsz)})`,
      );
    }
    if (Math.floor((aEnd - 1) / PAGE) === Math.floor(b.vaddr / PAGE)) {
      throw new ElfWriteError(
        `${a.what} (ends at ${hex(aEnd)}) and ${b.what} share the page at ${hex(Math.floor(b.vaddr / PAGE) * PAGE)}: ` +
          'Linux maps segments in whole 4 KiB pages, so the second mapping would replace the first one\'s page',
      );
    }
  }
  if (!isU32(image.entry)) throw new ElfWriteError(`entry point ${String(image.entry)} is not a 32-bit address`);
  const home = segs.find((s) => image.entry >= s.vaddr && image.entry < s.vaddr + s.bytes.length);
  if (!home || (home.flags & PF_X) === 0) {
    throw new ElfWriteError(
      `entry point ${hex(image.entry)} is not inside the file bytes of any executable segment` +
        (home ? ` (${home.what} is not executable: flags ${home.flags})` : ''),
    );
  }
  return segs;
}

function checkSections(image: ElfWriteImage, segs: readonly Seg[]): Sec[] {
  const names = new Set<string>();
  const out = (image.sections ?? []).map((s, i): Sec => {
    let what = `section ${i}`;
    if (typeof s.name !== 'string' || s.name === '') throw new ElfWriteError(`${what}: needs a name`);
    what = `section ${s.name}`;
    if (RESERVED_SECTIONS.has(s.name)) throw new ElfWriteError(`${what}: the writer makes this section itself`);
    if (names.has(s.name)) throw new ElfWriteError(`${what}: given twice`);
    names.add(s.name);
    if (!isU32(s.addr)) throw new ElfWriteError(`${what}: addr ${String(s.addr)} is not a 32-bit address`);
    const typeName = s.type ?? 'progbits';
    const type =
      typeName === 'progbits' ? SHT_PROGBITS : typeName === 'nobits' ? SHT_NOBITS : typeName === 'note' ? SHT_NOTE : typeName;
    if (!isU32(type) || type === 0 || type === SHT_SYMTAB || type === SHT_STRTAB) {
      throw new ElfWriteError(`${what}: type ${String(typeName)} is not one the writer takes (progbits, nobits, note or another number)`);
    }
    if (s.bytes !== undefined && !(s.bytes instanceof Uint8Array)) throw new ElfWriteError(`${what}: bytes must be a Uint8Array`);
    if (s.bytes !== undefined && type === SHT_NOBITS) throw new ElfWriteError(`${what}: a NOBITS section has no bytes (give size)`);
    if (s.bytes !== undefined && s.size !== undefined && s.size !== s.bytes.length) {
      throw new ElfWriteError(`${what}: size ${s.size} differs from its ${s.bytes.length} bytes`);
    }
    const size = s.bytes?.length ?? s.size;
    if (!isU32(size)) throw new ElfWriteError(`${what}: needs bytes or a 32-bit size`);
    const align = s.align ?? 1;
    if (!isAlign(align)) throw new ElfWriteError(`${what}: align ${String(align)} is not 0 or a power of two`);
    if (align > 1 && s.addr % align !== 0) throw new ElfWriteError(`${what}: addr ${hex(s.addr)} is not a multiple of its align ${align}`);
    const seg = segs.find((g) => s.addr >= g.vaddr && s.addr < g.vaddr + g.memsz);
    if (!seg && s.addr !== 0 && s.flags === undefined) {
      throw new ElfWriteError(`${what}: addr ${hex(s.addr)} is inside no segment (a section that is not loaded has addr 0)`);
    }
    const flags =
      s.flags !== undefined
        ? sectionFlags(s.flags, what)
        : seg
          ? SHF_ALLOC | (seg.flags & PF_W ? SHF_WRITE : 0) | (seg.flags & PF_X ? SHF_EXECINSTR : 0)
          : 0;
    const sec: Sec = {
      what, name: s.name, type, flags, addr: s.addr, size, align, data: undefined, offset: 0, link: 0, info: 0, entsize: 0, nameOff: 0,
    };
    if ((flags & SHF_ALLOC) === 0) {
      if (s.addr !== 0) throw new ElfWriteError(`${what}: is not allocated (no SHF_ALLOC) but has addr ${hex(s.addr)}; give addr 0`);
      if (type === SHT_NOBITS) throw new ElfWriteError(`${what}: a NOBITS section must be allocated`);
      if (s.bytes === undefined) throw new ElfWriteError(`${what}: is not allocated, so it needs bytes`);
      sec.data = s.bytes;
      return sec;
    }
    if (!seg) throw new ElfWriteError(`${what}: addr ${hex(s.addr)} is allocated but inside no segment`);
    const rel = s.addr - seg.vaddr;
    const limit = type === SHT_NOBITS ? seg.memsz : seg.bytes.length;
    if (rel + size > limit) {
      throw new ElfWriteError(
        `${what}: [${hex(s.addr)}, ${hex(s.addr + size)}) runs past the ${type === SHT_NOBITS ? 'memory' : 'file bytes'} of ${seg.what}, ` +
          `which end at ${hex(seg.vaddr + limit)}`,
      );
    }
    if (flags & SHF_WRITE && !(seg.flags & PF_W)) throw new ElfWriteError(`${what}: is writable but ${seg.what} is not`);
    if (flags & SHF_EXECINSTR && !(seg.flags & PF_X)) throw new ElfWriteError(`${what}: is executable but ${seg.what} is not`);
    if (s.bytes) {
      const there = seg.bytes.subarray(rel, rel + size);
      const at = s.bytes.findIndex((b, k) => b !== there[k]);
      if (at >= 0) {
        throw new ElfWriteError(`${what}: its bytes differ from ${seg.what} at ${hex(s.addr + at)} (a section is a view of its segment)`);
      }
    }
    // NOBITS: gABI says sh_offset is only conceptual; binutils puts it where the bytes would be.
    sec.offset = seg.offset + Math.min(rel, seg.bytes.length);
    return sec;
  });
  const alloc = out.filter((s) => s.flags & SHF_ALLOC && s.size > 0).sort((a, b) => a.addr - b.addr);
  for (let i = 1; i < alloc.length; i++) {
    const a = alloc[i - 1]!;
    const b = alloc[i]!;
    if (a.addr + a.size > b.addr) throw new ElfWriteError(`${a.what} and ${b.what} overlap at ${hex(b.addr)}`);
  }
  return out;
}

/** UTF-8 bytes of s (the lib has no TextEncoder without DOM types). */
function utf8(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return out;
}

/** A string table: "\0name\0name\0...", deduplicated. */
class StringTable {
  private readonly parts: number[] = [0];
  private readonly at = new Map<string, number>([['', 0]]);
  add(s: string): number {
    let off = this.at.get(s);
    if (off === undefined) {
      off = this.parts.length;
      for (const b of utf8(s)) {
        if (b === 0) throw new ElfWriteError(`name ${JSON.stringify(s)} contains a NUL byte`);
        this.parts.push(b);
      }
      this.parts.push(0);
      this.at.set(s, off);
    }
    return off;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function buildSymbols(image: ElfWriteImage, secs: readonly Sec[], strtab: StringTable): { bytes: Uint8Array; firstGlobal: number } {
  const syms = image.symbols ?? [];
  const globals = new Set<string>();
  const rows = syms.map((s, i) => {
    const what = `symbol ${i}${typeof s.name === 'string' && s.name ? ` (${s.name})` : ''}`;
    if (typeof s.name !== 'string' || s.name === '') throw new ElfWriteError(`${what}: needs a name`);
    if (!isU32(s.value)) throw new ElfWriteError(`${what}: value ${String(s.value)} is not a 32-bit number`);
    const size = s.size ?? 0;
    if (!isU32(size)) throw new ElfWriteError(`${what}: size ${String(size)} is not a 32-bit number`);
    const type = STT[s.type ?? 'notype'];
    if (type === undefined) throw new ElfWriteError(`${what}: type ${String(s.type)} is not func, object or notype`);
    const binding = STB[s.binding ?? 'global'];
    if (binding === undefined) throw new ElfWriteError(`${what}: binding ${String(s.binding)} is not global, local or weak`);
    if (binding !== STB.local) {
      if (globals.has(s.name)) throw new ElfWriteError(`${what}: a global or weak symbol of that name is given twice`);
      globals.add(s.name);
    }
    let shndx: number = SHN_ABS;
    if (s.section !== undefined) {
      const k = secs.findIndex((x) => x.name === s.section);
      if (k < 0) throw new ElfWriteError(`${what}: section ${s.section} is not among the given sections`);
      const sec = secs[k]!;
      // The end address is allowed: linker-defined end symbols (_etext, __bss_end) sit there.
      if (sec.flags & SHF_ALLOC && (s.value < sec.addr || s.value > sec.addr + sec.size)) {
        throw new ElfWriteError(`${what}: value ${hex(s.value)} is outside section ${s.section} [${hex(sec.addr)}, ${hex(sec.addr + sec.size)}]`);
      }
      shndx = k + 1;
    } else {
      const k = secs.findIndex((x) => x.flags & SHF_ALLOC && s.value >= x.addr && s.value < x.addr + x.size);
      if (k >= 0) shndx = k + 1;
    }
    return { name: s.name, value: s.value, size, info: (binding << 4) | type, shndx, local: binding === STB.local };
  });
  const ordered = [...rows.filter((r) => r.local), ...rows.filter((r) => !r.local)];
  const bytes = new Uint8Array((ordered.length + 1) * SYMSIZE);
  const dv = new DataView(bytes.buffer);
  ordered.forEach((r, i) => {
    const off = (i + 1) * SYMSIZE;
    dv.setUint32(off, strtab.add(r.name), true);
    dv.setUint32(off + 4, r.value, true);
    dv.setUint32(off + 8, r.size, true);
    dv.setUint8(off + 12, r.info);
    dv.setUint16(off + 14, r.shndx, true);
  });
  return { bytes, firstGlobal: 1 + rows.filter((r) => r.local).length };
}

/**
 * Writes a little-endian ELF32 i386 executable. Throws ElfWriteError for any input the Linux
 * loader or the gABI would not accept (overlapping segments, an entry point outside executable
 * code, sections outside their segments, ...). Pure: returns the file's bytes.
 */
export function writeElf32(image: ElfWriteImage): Uint8Array {
  if (image.type !== 'exec') throw new ElfWriteError(`type ${String(image.type)}: only 'exec' images are written`);
  if (image.machine !== 'i386') throw new ElfWriteError(`machine ${String(image.machine)}: only 'i386' images are written`);
  if (image.stack !== undefined && image.stack !== 'rw' && image.stack !== 'rwx') {
    throw new ElfWriteError(`stack ${String(image.stack)} is not 'rw' or 'rwx'`);
  }
  const segs = checkSegments(image);
  const others = (image.programHeaders ?? []).map((h, i) => {
    const what = `program header ${i} (type ${hex(h.type)})`;
    if (h.type === PT_LOAD || h.type === PT_GNU_STACK) throw new ElfWriteError(`${what}: give PT_LOAD as segments and PT_GNU_STACK as stack`);
    if (h.filesz > h.memsz) throw new ElfWriteError(`${what}: filesz ${hex(h.filesz)} is larger than memsz ${hex(h.memsz)}`);
    // Its file bytes must be a segment's file bytes (the one copy in the file).
    const home = segs.find((g) => h.vaddr >= g.vaddr && h.vaddr + h.filesz <= g.vaddr + g.bytes.length && h.vaddr <= g.vaddr + g.memsz);
    if (!home) throw new ElfWriteError(`${what} at ${hex(h.vaddr)}: its ${hex(h.filesz)} file bytes are not inside one segment's file bytes`);
    return { h, home };
  });
  const header = image.header;
  const phnum = segs.length + (image.stack ? 1 : 0) + others.length + (header ? 1 + (header.phdr ? 1 : 0) : 0);
  if (header) checkHeaderSegment(header.vaddr, phnum, segs);
  let cursor = EHSIZE + phnum * PHENTSIZE;
  for (const s of segs) {
    s.offset = congruent(cursor, s.vaddr, Math.max(s.align, PAGE));
    cursor = s.offset + s.bytes.length;
  }

  const withSections = (image.sections?.length ?? 0) > 0 || (image.symbols?.length ?? 0) > 0;
  const secs = checkSections(image, segs);
  const shstrtab = new StringTable();
  let shoff = 0;
  let shstrndx = 0;
  const extra: { off: number; bytes: Uint8Array }[] = [];
  const place = (bytes: Uint8Array, align: number): number => {
    const off = alignUp(cursor, Math.max(align, 1));
    extra.push({ off, bytes });
    cursor = off + bytes.length;
    return off;
  };
  if (withSections) {
    for (const s of secs) {
      if (s.data) s.offset = place(s.data, s.align);
    }
    if ((image.symbols?.length ?? 0) > 0) {
      const strtab = new StringTable();
      const { bytes, firstGlobal } = buildSymbols(image, secs, strtab);
      const strBytes = strtab.bytes();
      const symIndex = secs.length + 1;
      secs.push({
        what: '.symtab', name: '.symtab', type: SHT_SYMTAB, flags: 0, addr: 0, size: bytes.length, align: 4, data: bytes,
        offset: place(bytes, 4), link: symIndex + 1, info: firstGlobal, entsize: SYMSIZE, nameOff: 0,
      });
      secs.push({
        what: '.strtab', name: '.strtab', type: SHT_STRTAB, flags: 0, addr: 0, size: strBytes.length, align: 1, data: strBytes,
        offset: place(strBytes, 1), link: 0, info: 0, entsize: 0, nameOff: 0,
      });
    }
    for (const s of secs) s.nameOff = shstrtab.add(s.name);
    const shstrName = shstrtab.add('.shstrtab');
    const shstrBytes = shstrtab.bytes();
    shstrndx = secs.length + 1;
    secs.push({
      what: '.shstrtab', name: '.shstrtab', type: SHT_STRTAB, flags: 0, addr: 0, size: shstrBytes.length, align: 1, data: shstrBytes,
      offset: place(shstrBytes, 1), link: 0, info: 0, entsize: 0, nameOff: shstrName,
    });
    shoff = alignUp(cursor, 4);
    cursor = shoff + (secs.length + 1) * SHENTSIZE;
  }
  // A zero-size segment's offset may lie past the last byte written; keep the file that long
  // so that no header points outside it.
  const size = Math.max(cursor, ...segs.map((s) => s.offset));

  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 1 /* ELFCLASS32 */, 1 /* ELFDATA2LSB */, EV_CURRENT, 0 /* ELFOSABI_NONE */]);
  dv.setUint16(16, ET_EXEC, true);
  dv.setUint16(18, EM_386, true);
  dv.setUint32(20, EV_CURRENT, true);
  dv.setUint32(24, image.entry, true);
  dv.setUint32(28, EHSIZE, true);
  dv.setUint32(32, shoff, true);
  dv.setUint32(36, 0, true); // e_flags: none are defined for EM_386
  dv.setUint16(40, EHSIZE, true);
  dv.setUint16(42, PHENTSIZE, true);
  dv.setUint16(44, phnum, true);
  dv.setUint16(46, withSections ? SHENTSIZE : 0, true);
  dv.setUint16(48, withSections ? secs.length + 1 : 0, true);
  dv.setUint16(50, shstrndx, true);

  let ph = EHSIZE;
  if (header) {
    const tableEnd = EHSIZE + phnum * PHENTSIZE;
    // gABI: PT_PHDR, when present, precedes every loadable segment entry.
    if (header.phdr) {
      dv.setUint32(ph, PT_PHDR, true);
      dv.setUint32(ph + 4, EHSIZE, true);
      dv.setUint32(ph + 8, header.vaddr + EHSIZE, true);
      dv.setUint32(ph + 12, header.vaddr + EHSIZE, true);
      dv.setUint32(ph + 16, phnum * PHENTSIZE, true);
      dv.setUint32(ph + 20, phnum * PHENTSIZE, true);
      dv.setUint32(ph + 24, PF_R, true);
      dv.setUint32(ph + 28, 4, true);
      ph += PHENTSIZE;
    }
    dv.setUint32(ph, PT_LOAD, true);
    dv.setUint32(ph + 4, 0, true);
    dv.setUint32(ph + 8, header.vaddr, true);
    dv.setUint32(ph + 12, header.vaddr, true);
    dv.setUint32(ph + 16, tableEnd, true);
    dv.setUint32(ph + 20, tableEnd, true);
    dv.setUint32(ph + 24, PF_R, true);
    dv.setUint32(ph + 28, PAGE, true);
    ph += PHENTSIZE;
  }
  for (const s of segs) {
    dv.setUint32(ph, PT_LOAD, true);
    dv.setUint32(ph + 4, s.offset, true);
    dv.setUint32(ph + 8, s.vaddr, true);
    dv.setUint32(ph + 12, s.paddr, true);
    dv.setUint32(ph + 16, s.bytes.length, true);
    dv.setUint32(ph + 20, s.memsz, true);
    dv.setUint32(ph + 24, s.flags, true);
    dv.setUint32(ph + 28, s.align, true);
    out.set(s.bytes, s.offset);
    ph += PHENTSIZE;
  }
  if (image.stack) {
    dv.setUint32(ph, PT_GNU_STACK, true);
    dv.setUint32(ph + 24, segmentFlags(image.stack, 'stack'), true);
    dv.setUint32(ph + 28, 16, true);
    ph += PHENTSIZE;
  }
  for (const { h, home } of others) {
    dv.setUint32(ph, h.type, true);
    dv.setUint32(ph + 4, home.offset + (h.vaddr - home.vaddr), true);
    dv.setUint32(ph + 8, h.vaddr, true);
    dv.setUint32(ph + 12, h.paddr ?? h.vaddr, true);
    dv.setUint32(ph + 16, h.filesz, true);
    dv.setUint32(ph + 20, h.memsz, true);
    dv.setUint32(ph + 24, h.flags, true);
    dv.setUint32(ph + 28, h.align, true);
    ph += PHENTSIZE;
  }
  for (const e of extra) out.set(e.bytes, e.off);
  if (withSections) {
    // Entry 0 stays all zero: the gABI's reserved SHN_UNDEF section.
    secs.forEach((s, i) => {
      const at = shoff + (i + 1) * SHENTSIZE;
      dv.setUint32(at, s.nameOff, true);
      dv.setUint32(at + 4, s.type, true);
      dv.setUint32(at + 8, s.flags, true);
      dv.setUint32(at + 12, s.addr, true);
      dv.setUint32(at + 16, s.offset, true);
      dv.setUint32(at + 20, s.size, true);
      dv.setUint32(at + 24, s.link, true);
      dv.setUint32(at + 28, s.info, true);
      dv.setUint32(at + 32, s.align, true);
      dv.setUint32(at + 36, s.entsize, true);
    });
  }
  return out;
}
