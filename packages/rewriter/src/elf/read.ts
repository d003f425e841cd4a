// ELF reading: elfy does the parsing; this file makes its input safe and its output right.
//
// elfy 1.0.0 throws bare Errors/TypeErrors/AssertionErrors on malformed input and on images
// without section headers, reads ELF64 sh_addralign/sh_entsize from the wrong offsets, folds
// several segment/section type numbers into one name, keeps file bytes for NOBITS sections, and
// reads no symbols. So, in order:
//   1. validate the header and both header tables ourselves, with one specific ElfError each;
//   2. run elfy's Parser step by step (parseHeader, parsePrograms, parseSections) rather than
//      execute(), whose name resolution is what throws without section headers;
//   3. take from elfy the fields it reads right; read the rest, and symbols, from the bytes.
/// <reference path="./elfy.d.ts" />
import elfy from 'elfy';
import type { ElfyHeader } from 'elfy';
import {
  ELF_TYPES, EM_386, EM_X86_64, MACHINES, OTHER_MACHINES, PN_XNUM, SECTION_TYPES, SEGMENT_TYPES,
  SHF_EXECINSTR, SHN_ABS, SHN_COMMON, SHN_LORESERVE, SHN_UNDEF, SHN_XINDEX, SHT_NOBITS,
  SHT_NULL, SYMBOL_BINDINGS, SYMBOL_TYPES, nameOf,
} from './constants';
import type { ElfMachine, ElfType } from './constants';
import { elfyBytes } from './elfy-bytes';

/** The image is not an ELF file ringshift can read; the message says exactly why. */
export class ElfError extends Error {
  override name = 'ElfError';
}

export interface ElfSegment {
  index: number;
  /** 'load', 'dynamic', 'gnu_stack', ... or the number in hex. */
  type: string;
  /** PF_R | PF_W | PF_X bits (constants.ts). */
  flags: number;
  vaddr: number;
  paddr: number;
  offset: number;
  filesz: number;
  memsz: number;
  align: number;
  /** The filesz bytes at offset: a view into the input, not a copy. */
  bytes: Uint8Array;
}

export interface ElfSection {
  index: number;
  name: string;
  /** 'progbits', 'nobits', 'symtab', ... or the number in hex. */
  type: string;
  /** sh_flags, low 32 bits (all defined flags live there). */
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
  /** The section's bytes in the file (a view); empty for NOBITS sections such as .bss. */
  bytes: Uint8Array;
  /** SHF_EXECINSTR: the section holds code. */
  executable: boolean;
}

export interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  /** 'notype', 'object', 'func', 'section', 'file', 'common', 'tls', 'ifunc', or hex. */
  type: string;
  /** 'local', 'global', 'weak', 'unique', or hex. */
  binding: string;
  /** Name of the section the symbol is defined in; undefined for undefined/absolute/common. */
  section: string | undefined;
  /** st_shndx as stored (SHN_UNDEF, SHN_ABS, ... or a section index). */
  sectionIndex: number;
}

export interface ElfImage {
  class: 32 | 64;
  machine: ElfMachine;
  /** Code size the machine runs its code in: 32 for EM_386, 64 for EM_X86_64 (also in ELF32, x32). */
  bits: 32 | 64;
  type: ElfType;
  entry: number;
  segments: ElfSegment[];
  sections: ElfSection[];
  /** From .symtab, or from .dynsym when the image is stripped; [] when it has neither. */
  symbols: ElfSymbol[];
  /** Which table the symbols came from. */
  symbolTable: 'symtab' | 'dynsym' | 'none';
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Little-endian field reads with bounds already checked by the caller. */
class Fields {
  private readonly dv: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(off: number): number {
    return this.dv.getUint8(off);
  }
  u16(off: number): number {
    return this.dv.getUint16(off, true);
  }
  u32(off: number): number {
    return this.dv.getUint32(off, true);
  }
  /** 64-bit field as a number; what does not fit exactly is an error, not a rounded address. */
  u64(off: number, what: string): number {
    const v = this.dv.getUint32(off, true) + this.dv.getUint32(off + 4, true) * 2 ** 32;
    return safe(v, what);
  }
  word(cls: 32 | 64, off: number, what: string): number {
    return cls === 32 ? this.u32(off) : this.u64(off, what);
  }
}

function safe(v: number, what: string): number {
  if (!Number.isSafeInteger(v)) {
    throw new ElfError(`${what} is 2^53 or more, which ringshift does not support (a higher-half 64-bit kernel?)`);
  }
  return v;
}

/** Header-table layout per class: [header size, phdr entry size, shdr entry size, symbol size]. */
const LAYOUT = {
  32: { ehsize: 52, phentsize: 32, shentsize: 40, symsize: 16 },
  64: { ehsize: 64, phentsize: 56, shentsize: 64, symsize: 24 },
} as const;

interface Header {
  cls: 32 | 64;
  machine: ElfMachine;
  type: ElfType;
  entry: number;
  phoff: number;
  phnum: number;
  shoff: number;
  shnum: number;
  shstrndx: number;
}

const MAGIC = [0x7f, 0x45, 0x4c, 0x46];

function readHeader(f: Fields): Header {
  const b = f.bytes;
  const n = b.length;
  if (n === 0) throw new ElfError('not an ELF file: it is empty');
  for (let i = 0; i < 4; i++) {
    if (i >= n) throw new ElfError(`not an ELF file: ${n} byte${n === 1 ? '' : 's'}, shorter than the ELF magic`);
    if (b[i] !== MAGIC[i]) {
      const got = Array.from(b.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ');
      throw new ElfError(`not an ELF file: starts with ${got}, not the ELF magic 7f 45 4c 46`);
    }
  }
  if (n < 16) throw new ElfError(`truncated ELF file: ${n} bytes, shorter than the 16-byte identification`);
  const ident = b[4]!;
  if (ident !== 1 && ident !== 2) throw new ElfError(`invalid ELF class ${ident} (EI_CLASS must be 1 for ELF32 or 2 for ELF64)`);
  const cls = ident === 1 ? 32 : 64;
  const data = b[5]!;
  if (data === 2) throw new ElfError('big-endian ELF file (EI_DATA 2): x86 images are little-endian');
  if (data !== 1) throw new ElfError(`invalid ELF data encoding ${data} (EI_DATA must be 1, little-endian)`);
  if (b[6] !== 1) throw new ElfError(`unsupported ELF version ${b[6]} (EI_VERSION must be 1)`);
  const L = LAYOUT[cls];
  if (n < L.ehsize) throw new ElfError(`truncated ELF file: ${n} bytes, shorter than the ${L.ehsize}-byte ELF${cls} header`);

  const em = f.u16(18);
  if (em !== EM_386 && em !== EM_X86_64) {
    const what = OTHER_MACHINES[em] ? `${OTHER_MACHINES[em]} (e_machine ${em})` : `e_machine ${em}`;
    throw new ElfError(`not an x86 image: ${what}; ringshift reads EM_386 and EM_X86_64 only`);
  }
  const et = f.u16(16);
  const type: ElfType = (ELF_TYPES as Record<number, ElfType>)[et] ?? 'unknown';

  const o = cls === 32 ? { entry: 24, phoff: 28, shoff: 32, ehsize: 40 } : { entry: 24, phoff: 32, shoff: 40, ehsize: 52 };
  const h: Header = {
    cls,
    machine: MACHINES[em],
    type,
    entry: f.word(cls, o.entry, 'entry point (e_entry)'),
    phoff: f.word(cls, o.phoff, 'program header offset (e_phoff)'),
    shoff: f.word(cls, o.shoff, 'section header offset (e_shoff)'),
    phnum: f.u16(o.ehsize + 4),
    shnum: f.u16(o.ehsize + 8),
    shstrndx: f.u16(o.ehsize + 10),
  };
  const phentsize = f.u16(o.ehsize + 2);
  const shentsize = f.u16(o.ehsize + 6);

  // elfy steps through the tables by e_phentsize/e_shentsize but reads fixed offsets in each
  // entry, so any other entry size would make it read neighbouring entries.
  if (h.phnum === PN_XNUM) throw new ElfError('extended program header numbering (e_phnum = 0xffff) is not supported');
  if (h.phoff !== 0 && h.phnum > 0) {
    if (phentsize !== L.phentsize) {
      throw new ElfError(`program header entry size ${phentsize} (e_phentsize), expected ${L.phentsize} for ELF${cls}`);
    }
    checkTable(n, 'program header table', h.phoff, h.phnum, phentsize, 'e_phoff');
  } else {
    h.phnum = 0;
  }
  if (h.shoff !== 0) {
    if (h.shnum === 0) {
      throw new ElfError('extended section numbering (e_shnum = 0 with a section header table) is not supported');
    }
    if (shentsize !== L.shentsize) {
      throw new ElfError(`section header entry size ${shentsize} (e_shentsize), expected ${L.shentsize} for ELF${cls}`);
    }
    checkTable(n, 'section header table', h.shoff, h.shnum, shentsize, 'e_shoff');
    if (h.shstrndx === SHN_XINDEX) {
      throw new ElfError('extended section-name table index (e_shstrndx = SHN_XINDEX) is not supported');
    }
    if (h.shstrndx >= h.shnum) {
      throw new ElfError(`section-name table index ${h.shstrndx} (e_shstrndx) is not below the section count ${h.shnum}`);
    }
  } else {
    h.shnum = 0;
  }
  return h;
}

function checkTable(fileSize: number, what: string, off: number, count: number, entsize: number, field: string): void {
  if (off >= fileSize) {
    throw new ElfError(`${what} offset ${hex(off)} (${field}) is past the end of the file (${fileSize} bytes)`);
  }
  const end = off + count * entsize;
  if (end > fileSize) {
    throw new ElfError(
      `${what} (${count} entries of ${entsize} bytes at ${hex(off)}) runs past the end of the file ` +
        `(${hex(end)} > ${fileSize} bytes): truncated?`,
    );
  }
}

function checkExtent(fileSize: number, what: string, off: number, size: number): void {
  if (off + size > fileSize) {
    throw new ElfError(
      `${what} (${size} bytes at file offset ${hex(off)}) runs past the end of the file (${fileSize} bytes): truncated?`,
    );
  }
}

/** NUL-terminated string at off; ASCII fast, UTF-8 otherwise (names are bytes, usually ASCII). */
function cString(b: Uint8Array, off: number): string {
  if (off >= b.length) return '';
  let end = off;
  let ascii = true;
  while (end < b.length && b[end] !== 0) {
    if (b[end]! >= 0x80) ascii = false;
    end++;
  }
  let s = '';
  for (let i = off; i < end; i++) s += String.fromCharCode(b[i]!);
  if (ascii) return s;
  try {
    return decodeURIComponent(Array.from(b.subarray(off, end), (x) => `%${x.toString(16).padStart(2, '0')}`).join(''));
  } catch {
    return s;
  }
}

/**
 * Reads an x86 ELF32 or ELF64 image. Throws ElfError, with a message naming the field at fault,
 * for anything that is not a well-formed little-endian x86 ELF file. The returned byte arrays
 * are views into `bytes`.
 */
export function readElf(bytes: Uint8Array): ElfImage {
  const f = new Fields(bytes);
  const h = readHeader(f);
  const buf = elfyBytes(bytes);
  const parser = new elfy.Parser();
  let eh: ElfyHeader;
  try {
    eh = parser.parseHeader(buf);
  } catch (e) {
    throw new ElfError(`elfy rejected the header: ${e instanceof Error ? e.message : String(e)}`);
  }
  // Our validation may have zeroed a table elfy would otherwise walk (e.g. phoff = 0, phnum > 0).
  eh.phnum = h.phnum;
  eh.shnum = h.shnum;
  const L = LAYOUT[h.cls];

  const segments = (h.phnum > 0 ? parser.parsePrograms(buf, eh) : []).map((p, index): ElfSegment => {
    const at = h.phoff + index * L.phentsize;
    const what = `segment ${index}`;
    const s: ElfSegment = {
      index,
      type: nameOf(SEGMENT_TYPES, f.u32(at)),
      flags: f.u32(at + (h.cls === 32 ? 24 : 4)),
      vaddr: safe(p.vaddr, `${what} p_vaddr`),
      paddr: safe(p.paddr, `${what} p_paddr`),
      offset: safe(p.offset, `${what} p_offset`),
      filesz: safe(p.filesz, `${what} p_filesz`),
      memsz: safe(p.memsz, `${what} p_memsz`),
      align: safe(p.align, `${what} p_align`),
      bytes: new Uint8Array(0),
    };
    checkExtent(bytes.length, `${what} (${s.type})`, s.offset, s.filesz);
    if (s.type === 'load' && s.filesz > s.memsz) {
      throw new ElfError(`${what} (load): file size ${hex(s.filesz)} exceeds memory size ${hex(s.memsz)}`);
    }
    s.bytes = bytes.subarray(s.offset, s.offset + s.filesz);
    return s;
  });

  const raw = h.shnum > 0 ? parser.parseSections(buf, eh) : [];
  const sections = raw.map((r, index): ElfSection => {
    const at = h.shoff + index * L.shentsize;
    const typeNo = f.u32(at + 4);
    const what = `section ${index}`;
    const s: ElfSection = {
      index,
      name: '',
      type: nameOf(SECTION_TYPES, typeNo),
      flags: f.u32(at + 8),
      addr: safe(r.addr, `${what} sh_addr`),
      offset: safe(r.off, `${what} sh_offset`),
      size: safe(r.size, `${what} sh_size`),
      link: r.link,
      info: r.info,
      // elfy reads these two from the wrong offsets in ELF64.
      addralign: h.cls === 32 ? r.addralign : f.u64(at + 48, `${what} sh_addralign`),
      entsize: h.cls === 32 ? r.entsize : f.u64(at + 56, `${what} sh_entsize`),
      bytes: new Uint8Array(0),
      executable: false,
    };
    s.executable = (s.flags & SHF_EXECINSTR) !== 0;
    if (typeNo !== SHT_NOBITS && typeNo !== SHT_NULL) {
      checkExtent(bytes.length, what, s.offset, s.size);
      s.bytes = bytes.subarray(s.offset, s.offset + s.size);
    }
    return s;
  });

  if (sections.length > 0 && h.shstrndx !== SHN_UNDEF) {
    const names = sections[h.shstrndx]!;
    if (names.type !== 'strtab') {
      throw new ElfError(`section-name table (section ${h.shstrndx}, e_shstrndx) has type ${names.type}, not strtab`);
    }
    for (let i = 0; i < raw.length; i++) sections[i]!.name = cString(names.bytes, f.u32(h.shoff + i * L.shentsize));
  }

  const symtab = sections.find((s) => s.type === 'symtab');
  const table = symtab ?? sections.find((s) => s.type === 'dynsym');
  return {
    class: h.cls,
    machine: h.machine,
    bits: h.machine === 'x86-64' ? 64 : 32,
    type: h.type,
    entry: h.entry,
    segments,
    sections,
    symbols: table ? readSymbols(h.cls, table, sections) : [],
    symbolTable: symtab ? 'symtab' : table ? 'dynsym' : 'none',
  };
}

function readSymbols(cls: 32 | 64, table: ElfSection, sections: readonly ElfSection[]): ElfSymbol[] {
  const L = LAYOUT[cls];
  const what = `symbol table ${table.name || `section ${table.index}`}`;
  if (table.entsize !== L.symsize) {
    throw new ElfError(`${what}: entry size ${table.entsize} (sh_entsize), expected ${L.symsize} for ELF${cls}`);
  }
  if (table.size % L.symsize !== 0) {
    throw new ElfError(`${what}: size ${table.size} is not a multiple of the ${L.symsize}-byte entry`);
  }
  const strings = sections[table.link];
  if (!strings || strings.type !== 'strtab') {
    throw new ElfError(`${what}: sh_link ${table.link} does not name a string table`);
  }
  const f = new Fields(table.bytes);
  const out: ElfSymbol[] = [];
  // Entry 0 is the reserved null symbol.
  for (let off = L.symsize; off < table.bytes.length; off += L.symsize) {
    const i = off / L.symsize;
    const name = cString(strings.bytes, f.u32(off));
    const info = cls === 32 ? f.u8(off + 12) : f.u8(off + 4);
    const shndx = cls === 32 ? f.u16(off + 14) : f.u16(off + 6);
    const value = cls === 32 ? f.u32(off + 4) : f.u64(off + 8, `${what}: symbol ${i} (${name}) st_value`);
    const size = cls === 32 ? f.u32(off + 8) : f.u64(off + 16, `${what}: symbol ${i} (${name}) st_size`);
    const special = shndx === SHN_UNDEF || shndx === SHN_ABS || shndx === SHN_COMMON || shndx >= SHN_LORESERVE;
    out.push({
      name,
      value,
      size,
      type: nameOf(SYMBOL_TYPES, info & 0xf),
      binding: nameOf(SYMBOL_BINDINGS, info >> 4),
      section: special ? undefined : sections[shndx]?.name,
      sectionIndex: shndx,
    });
  }
  return out;
}
