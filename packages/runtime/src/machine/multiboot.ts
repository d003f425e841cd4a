// Multiboot (version 1) loader: the job GRUB and QEMU's `-kernel` do for a multiboot kernel.
// Bytes in, machine state out: it finds and checks the header, places the image in guest RAM,
// builds the boot information structure in low memory and leaves the CPU in the state the
// specification promises (Multiboot Specification 0.6.96, "the spec" below).
//
// Everything is checked before the first byte is written, so a MultibootError leaves the
// machine untouched. Where the spec leaves a choice, we follow what GRUB 2 and QEMU do, and
// say so where it matters.
import { ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S } from '../cpu/cpu';
import type { Cpu } from '../cpu/cpu';
import { SegReg } from '../cpu/registers';
import type { PhysicalMemory } from './memory';

/** The image cannot be booted as a multiboot kernel; the message says exactly why. */
export class MultibootError extends Error {
  override name = 'MultibootError';
}

/** §3.1.2: the header's magic field. */
export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
/** §3.2: what a compliant loader leaves in EAX. */
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
/** Where the boot information structure goes: low, conventional memory, below any kernel at 1 MiB. */
export const MULTIBOOT_INFO_ADDRESS = 0x9000;

/** §3.1.1: the header lies within the first 8192 bytes of the image, 32-bit aligned. */
const HEADER_SEARCH_BYTES = 8192;

// §3.1.2 header flags. Bits 0-15 are requirements: a loader that does not understand one must
// refuse the image; bits 16-31 are optional features.
const HF_PAGE_ALIGN_MODULES = 1 << 0;
const HF_MEMORY_INFO = 1 << 1;
const HF_VIDEO_MODE = 1 << 2;
const HF_AOUT_KLUDGE = 1 << 16;
/**
 * Required bits we satisfy: bit 0 (we load no modules, so they are trivially page-aligned),
 * bit 1 (mem_* and mmap are always passed) and bit 2 (the spec lets the loader pick text mode
 * when it cannot honour the video request: §3.1.4 "the boot loader ... may not be able to").
 */
const SUPPORTED_REQUIRED = HF_PAGE_ALIGN_MODULES | HF_MEMORY_INFO | HF_VIDEO_MODE;

// §3.3 boot information flags.
const MBI_MEMORY = 1 << 0;
const MBI_CMDLINE = 1 << 2;
const MBI_MMAP = 1 << 6;
const MBI_LOADER_NAME = 1 << 9;
/** §3.3: the structure through the VBE fields (offsets 0-87). */
const MBI_SIZE = 88;
const MMAP_ENTRY_SIZE = 24; // size field (4) + base_addr (8) + length (8) + type (4)
const MMAP_AVAILABLE = 1;
const MMAP_RESERVED = 2;

// The PC memory map we report (and enforce): conventional memory up to the EBDA, the EBDA, the
// VGA/option-ROM hole (not listed, as BIOS E820 tables leave it out), the system BIOS, then
// extended memory from 1 MiB to the end of RAM. The same layout SeaBIOS gives QEMU guests.
const LOW_RAM_END = 0x9fc00;
const EBDA_END = 0xa0000;
const BIOS_START = 0xf0000;
const HIGH_RAM_START = 0x100000;

const ELF_HEADER_SIZE = 52;
const ELF_PHDR_SIZE = 32;
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const ET_DYN = 3;
const EM_386 = 3;
const PT_LOAD = 1;

export interface MultibootOptions {
  /** The kernel command line (§3.3 cmdline). Default: empty. */
  cmdline?: string;
  /** §3.3 boot_loader_name. Default: "ringshift". */
  bootLoaderName?: string;
}

export interface MultibootLoad {
  /** Physical address the CPU starts at (EIP). */
  entry: number;
  /** Physical address of the boot information structure (EBX). */
  infoAddress: number;
  /** Physical ranges the image occupies, [start, end), bss included, sorted by start. */
  loaded: { start: number; end: number }[];
}

/** One piece of the image to place: `fileSize` bytes from `offset`, then zeros up to `memSize`. */
interface Piece {
  what: string;
  address: number;
  offset: number;
  fileSize: number;
  memSize: number;
  /** ELF p_vaddr, for translating the entry point; absent for the a.out kludge. */
  vaddr?: number;
}

/**
 * Loads a multiboot kernel into `target.mem` and sets `target.cpu` to the §3.2 machine state.
 * Throws MultibootError, before changing anything, when the image cannot be booted.
 */
export function loadMultiboot(
  target: { mem: PhysicalMemory; cpu: Cpu },
  image: Uint8Array,
  opts: MultibootOptions = {},
): MultibootLoad {
  const { mem, cpu } = target;
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const header = findHeader(image, view);

  const unsupported = header.flags & 0xffff & ~SUPPORTED_REQUIRED;
  if (unsupported !== 0) {
    const bits = [...Array(16).keys()].filter((b) => unsupported & (1 << b));
    throw new MultibootError(
      `multiboot header requires feature${bits.length > 1 ? 's' : ''} this loader does not provide: ` +
      `flag bit${bits.length > 1 ? 's' : ''} ${bits.join(', ')} (flags 0x${hex(header.flags)})`);
  }

  // §3.1.3: with bit 16 the header's address fields say where to load, whatever the format
  // (GRUB 2 and QEMU both prefer them over ELF headers); otherwise the image must be ELF.
  const { pieces, entry: rawEntry, fromElf } = (header.flags & HF_AOUT_KLUDGE) !== 0
    ? aoutKludge(image, view, header.offset)
    : elfPieces(image, view);

  const loaded = pieces
    .filter((p) => p.memSize > 0)
    .map((p) => ({ start: p.address, end: p.address + p.memSize, what: p.what }))
    .sort((a, b) => a.start - b.start);

  // Where the boot information goes: the structure, the memory map, then the two strings.
  const cmdline = cString(opts.cmdline ?? '');
  const loaderName = cString(opts.bootLoaderName ?? 'ringshift');
  const mmap = memoryMap(mem.size);
  const mmapAddress = MULTIBOOT_INFO_ADDRESS + MBI_SIZE;
  const cmdlineAddress = mmapAddress + mmap.length * MMAP_ENTRY_SIZE;
  const loaderNameAddress = cmdlineAddress + cmdline.length;
  const infoEnd = loaderNameAddress + loaderName.length;
  if (infoEnd > LOW_RAM_END || infoEnd > mem.size) {
    throw new MultibootError(`the boot information (${infoEnd - MULTIBOOT_INFO_ADDRESS} bytes with the command line) does not fit in low memory below 0x${hex(Math.min(LOW_RAM_END, mem.size))}`);
  }

  for (const r of loaded) {
    const range = `${r.what} (0x${hex(r.start)}-0x${hex(r.end)})`;
    if (r.end > mem.size || r.end > 2 ** 32) {
      throw new MultibootError(`${range} lies outside RAM (0x${hex(mem.size)} bytes)`);
    }
    if (r.start < EBDA_END && r.end > LOW_RAM_END || r.start < HIGH_RAM_START && r.end > EBDA_END) {
      throw new MultibootError(`${range} overlaps reserved memory 0x${hex(LOW_RAM_END)}-0x${hex(HIGH_RAM_START)} (EBDA, VGA and BIOS area), which is not RAM on a PC`);
    }
    if (r.start < infoEnd && MULTIBOOT_INFO_ADDRESS < r.end) {
      throw new MultibootError(`${range} overlaps the multiboot information area 0x${hex(MULTIBOOT_INFO_ADDRESS)}-0x${hex(infoEnd)}`);
    }
  }
  for (let i = 1; i < loaded.length; i++) {
    const a = loaded[i - 1]!, b = loaded[i]!;
    if (b.start < a.end) {
      throw new MultibootError(`${a.what} (0x${hex(a.start)}-0x${hex(a.end)}) and ${b.what} (0x${hex(b.start)}-0x${hex(b.end)}) overlap`);
    }
  }
  if (loaded.length === 0) throw new MultibootError('the image loads nothing (no PT_LOAD segment with a size)');

  // GRUB 2 (multiboot_elfxx.c) loads ELF segments at p_paddr and translates an entry point
  // given as a virtual address through the segment that contains it; higher-half kernels
  // linked with AT() rely on that. QEMU uses e_entry as it is; the two agree when vaddr = paddr.
  let entry = rawEntry;
  if (fromElf) {
    const seg = pieces.find((p) => p.vaddr !== undefined && rawEntry >= p.vaddr && rawEntry < p.vaddr + p.memSize);
    if (seg?.vaddr !== undefined) entry = seg.address + (rawEntry - seg.vaddr);
  }
  if (!loaded.some((r) => entry >= r.start && entry < r.end)) {
    throw new MultibootError(`entry point 0x${hex(entry)} is outside the loaded image (${loaded.map((r) => `0x${hex(r.start)}-0x${hex(r.end)}`).join(', ')})`);
  }

  // ---- Nothing below can fail: write the image, the information, the CPU state. ----------
  for (const p of pieces) {
    if (p.fileSize > 0) mem.load(p.address, image.subarray(p.offset, p.offset + p.fileSize));
    // §3.1.3 bss_end_addr / ELF p_memsz > p_filesz: the loader zeroes the rest. Through load()
    // rather than a fill of the array, so the decode cache sees the write.
    if (p.memSize > p.fileSize) mem.load(p.address + p.fileSize, new Uint8Array(p.memSize - p.fileSize));
  }
  writeInfo(mem, mmap, cmdline, loaderName, { mmapAddress, cmdlineAddress, loaderNameAddress });
  setMachineState(cpu, entry);

  return { entry, infoAddress: MULTIBOOT_INFO_ADDRESS, loaded: loaded.map(({ start, end }) => ({ start, end })) };
}

// ---- The header (§3.1.1, §3.1.2) ---------------------------------------------------------------

interface Header {
  offset: number;
  flags: number;
}

function findHeader(image: Uint8Array, view: DataView): Header {
  const limit = Math.min(image.length, HEADER_SEARCH_BYTES);
  let badChecksum: { offset: number; sum: number } | undefined;
  let cutOff: number | undefined;
  for (let off = 0; off + 4 <= limit; off += 4) {
    if (view.getUint32(off, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    if (off + 12 > image.length) {
      cutOff = off;
      continue;
    }
    const flags = view.getUint32(off + 4, true);
    const sum = (MULTIBOOT_HEADER_MAGIC + flags + view.getUint32(off + 8, true)) >>> 0;
    // Like GRUB and QEMU, keep looking past a magic number whose checksum fails: the value
    // can occur by chance in code or data before the real header.
    if (sum === 0) return { offset: off, flags };
    badChecksum ??= { offset: off, sum };
  }
  if (badChecksum) {
    throw new MultibootError(`multiboot header at file offset 0x${hex(badChecksum.offset)} has a bad checksum: magic + flags + checksum = 0x${hex(badChecksum.sum)}, must be 0`);
  }
  if (cutOff !== undefined) {
    throw new MultibootError(`file is truncated: multiboot header at file offset 0x${hex(cutOff)} is cut off after ${image.length - cutOff} of 12 bytes`);
  }
  if (isElf(image) && image.length > 4 && image[4] === ELFCLASS64) {
    throw new MultibootError(`ELF64 image without a multiboot header: a multiboot kernel is ELF32 i386 (no magic 0x${hex(MULTIBOOT_HEADER_MAGIC)} in the first ${HEADER_SEARCH_BYTES} bytes)`);
  }
  const what = isElf(image) ? 'ELF image' : image.length === 0 ? 'empty file' : 'file (not ELF)';
  throw new MultibootError(`no multiboot header in ${what}: magic 0x${hex(MULTIBOOT_HEADER_MAGIC)}, 4-byte aligned, must be in the first ${HEADER_SEARCH_BYTES} bytes`);
}

// ---- a.out kludge (§3.1.3) --------------------------------------------------------------------

function aoutKludge(image: Uint8Array, view: DataView, at: number): { pieces: Piece[]; entry: number; fromElf: boolean } {
  if (at + 32 > image.length) {
    throw new MultibootError(`file is truncated: the multiboot header at file offset 0x${hex(at)} sets flag bit 16 but its address fields are cut off`);
  }
  const headerAddr = view.getUint32(at + 12, true);
  const loadAddr = view.getUint32(at + 16, true);
  const loadEndAddr = view.getUint32(at + 20, true);
  const bssEndAddr = view.getUint32(at + 24, true);
  const entryAddr = view.getUint32(at + 28, true);
  // load_addr "must be less than or equal to header_addr"; the file offset of the text is the
  // header's offset minus (header_addr - load_addr).
  if (loadAddr > headerAddr) {
    throw new MultibootError(`multiboot address fields: load_addr 0x${hex(loadAddr)} is above header_addr 0x${hex(headerAddr)}`);
  }
  const offset = at - (headerAddr - loadAddr);
  if (offset < 0) {
    throw new MultibootError(`multiboot address fields: header_addr - load_addr = 0x${hex(headerAddr - loadAddr)} reaches before the start of the file (header at offset 0x${hex(at)})`);
  }
  // load_end_addr 0: the text and data occupy the rest of the file.
  let fileSize: number;
  if (loadEndAddr === 0) {
    fileSize = image.length - offset;
  } else {
    if (loadEndAddr < loadAddr) {
      throw new MultibootError(`multiboot address fields: load_end_addr 0x${hex(loadEndAddr)} is below load_addr 0x${hex(loadAddr)}`);
    }
    fileSize = loadEndAddr - loadAddr;
    if (offset + fileSize > image.length) {
      throw new MultibootError(`file is truncated: the address fields load 0x${hex(fileSize)} bytes from file offset 0x${hex(offset)}, but the file has ${image.length} bytes`);
    }
  }
  const loadEnd = loadAddr + fileSize;
  // bss_end_addr 0: no bss.
  if (bssEndAddr !== 0 && bssEndAddr < loadEnd) {
    throw new MultibootError(`multiboot address fields: bss_end_addr 0x${hex(bssEndAddr)} is below the end of the loaded data 0x${hex(loadEnd)}`);
  }
  const memSize = bssEndAddr === 0 ? fileSize : bssEndAddr - loadAddr;
  return {
    pieces: [{ what: 'image (multiboot address fields)', address: loadAddr, offset, fileSize, memSize }],
    entry: entryAddr,
    fromElf: false,
  };
}

// ---- ELF32 (§3.1.1: "the OS image may be an ordinary 32-bit executable file") ----------------------

function isElf(image: Uint8Array): boolean {
  return image.length >= 4 && image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46;
}

function elfPieces(image: Uint8Array, view: DataView): { pieces: Piece[]; entry: number; fromElf: boolean } {
  if (!isElf(image)) {
    throw new MultibootError('not an ELF image, and the multiboot header does not set flag bit 16 (the a.out kludge address fields), so nothing says where to load it');
  }
  if (image.length < 6) throw new MultibootError(`file is truncated: ${image.length} bytes, the ELF header needs ${ELF_HEADER_SIZE}`);
  if (image[4] === ELFCLASS64) {
    throw new MultibootError('ELF64 image: a multiboot kernel must be ELF32 i386 (or set flag bit 16 and give load addresses in its header)');
  }
  if (image[4] !== ELFCLASS32) throw new MultibootError(`bad ELF class ${image[4]} (expected 1, ELF32)`);
  if (image[5] !== ELFDATA2LSB) throw new MultibootError(`ELF image is not little-endian (EI_DATA ${image[5]}), so it is not i386`);
  if (image.length < ELF_HEADER_SIZE) {
    throw new MultibootError(`file is truncated: ${image.length} bytes, the ELF header needs ${ELF_HEADER_SIZE}`);
  }
  const type = view.getUint16(16, true);
  const machine = view.getUint16(18, true);
  if (machine !== EM_386) throw new MultibootError(`not an i386 image: ELF machine ${machine}${machine === 62 ? ' (x86-64)' : ''}, expected 3 (EM_386)`);
  if (type !== ET_EXEC && type !== ET_DYN) {
    throw new MultibootError(`ELF type ${type}${type === 1 ? ' (relocatable object)' : ''} cannot be booted: expected an executable (ET_EXEC)`);
  }
  const entry = view.getUint32(24, true);
  const phoff = view.getUint32(28, true);
  const phentsize = view.getUint16(42, true);
  const phnum = view.getUint16(44, true);
  if (phnum === 0) throw new MultibootError('ELF image has no program headers, so nothing to load');
  if (phentsize < ELF_PHDR_SIZE) throw new MultibootError(`ELF program header entries are ${phentsize} bytes, expected at least ${ELF_PHDR_SIZE}`);
  if (phoff + phnum * phentsize > image.length) {
    throw new MultibootError(`file is truncated: ${phnum} program headers at offset 0x${hex(phoff)} end at 0x${hex(phoff + phnum * phentsize)}, beyond the file's ${image.length} bytes`);
  }
  const pieces: Piece[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (view.getUint32(p, true) !== PT_LOAD) continue;
    const offset = view.getUint32(p + 4, true);
    const vaddr = view.getUint32(p + 8, true);
    const paddr = view.getUint32(p + 12, true);
    const fileSize = view.getUint32(p + 16, true);
    const memSize = view.getUint32(p + 20, true);
    const what = `segment ${i}`;
    if (fileSize > memSize) throw new MultibootError(`${what}: p_filesz 0x${hex(fileSize)} exceeds p_memsz 0x${hex(memSize)}`);
    if (offset + fileSize > image.length) {
      throw new MultibootError(`file is truncated: ${what} needs bytes 0x${hex(offset)}-0x${hex(offset + fileSize)}, the file has ${image.length}`);
    }
    pieces.push({ what, address: paddr, vaddr, offset, fileSize, memSize });
  }
  if (pieces.length === 0) throw new MultibootError('ELF image has no PT_LOAD segment, so nothing to load');
  return { pieces, entry, fromElf: true };
}

// ---- Boot information (§3.3) -------------------------------------------------------------------

interface MmapEntry {
  base: number;
  length: number;
  type: number;
}

function memoryMap(ramSize: number): MmapEntry[] {
  const map: MmapEntry[] = [{ base: 0, length: Math.min(ramSize, LOW_RAM_END), type: MMAP_AVAILABLE }];
  if (ramSize > LOW_RAM_END) map.push({ base: LOW_RAM_END, length: EBDA_END - LOW_RAM_END, type: MMAP_RESERVED });
  map.push({ base: BIOS_START, length: HIGH_RAM_START - BIOS_START, type: MMAP_RESERVED });
  if (ramSize > HIGH_RAM_START) map.push({ base: HIGH_RAM_START, length: ramSize - HIGH_RAM_START, type: MMAP_AVAILABLE });
  return map;
}

function writeInfo(
  mem: PhysicalMemory, mmap: MmapEntry[], cmdline: Uint8Array, loaderName: Uint8Array,
  at: { mmapAddress: number; cmdlineAddress: number; loaderNameAddress: number },
): void {
  const info = new Uint8Array(at.loaderNameAddress + loaderName.length - MULTIBOOT_INFO_ADDRESS);
  const v = new DataView(info.buffer);
  const put = (address: number, value: number): void => v.setUint32(address - MULTIBOOT_INFO_ADDRESS, value >>> 0, true);
  const base = MULTIBOOT_INFO_ADDRESS;
  put(base + 0, MBI_MEMORY | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME);
  // mem_lower: KiB of memory from 0 (at most 640); mem_upper: KiB from 1 MiB to the first
  // hole, which is the end of RAM here (no 15-16 MiB ISA hole).
  put(base + 4, Math.min(mem.size, LOW_RAM_END) >>> 10);
  put(base + 8, Math.max(0, mem.size - HIGH_RAM_START) >>> 10);
  put(base + 16, at.cmdlineAddress);
  put(base + 44, mmap.length * MMAP_ENTRY_SIZE);
  // mmap_addr points at the first entry's size field; size counts the entry without itself.
  put(base + 48, at.mmapAddress);
  put(base + 64, at.loaderNameAddress);
  mmap.forEach((e, i) => {
    const a = at.mmapAddress + i * MMAP_ENTRY_SIZE;
    put(a, MMAP_ENTRY_SIZE - 4);
    put(a + 4, e.base);
    put(a + 8, 0);
    put(a + 12, e.length);
    put(a + 16, 0);
    put(a + 20, e.type);
  });
  info.set(cmdline, at.cmdlineAddress - base);
  info.set(loaderName, at.loaderNameAddress - base);
  mem.load(base, info);
}

// ---- Machine state (§3.2) ----------------------------------------------------------------------

/** Flat 4 GiB segment attributes: present, DPL 0, 32-bit, 4 KiB granularity, type in the low nibble. */
const FLAT = ATTR_P | ATTR_S | ATTR_DB | ATTR_G;
/** Type 1011b: code, execute/read, accessed. */
const FLAT_CODE = FLAT | ATTR_CODE | 0x3;
/** Type 0011b: data, read/write, accessed. */
const FLAT_DATA = FLAT | 0x3;

function setMachineState(cpu: Cpu, entry: number): void {
  // "EAX: Must contain the magic value 0x2BADB002"; "EBX: Must contain the 32-bit physical
  // address of the Multiboot information structure". Other registers are undefined: left as is.
  cpu.regs[0] = MULTIBOOT_BOOTLOADER_MAGIC | 0;
  cpu.regs[3] = MULTIBOOT_INFO_ADDRESS;
  // "CS: Must be a 32-bit read/execute code segment with an offset of 0 and a limit of
  // 0xFFFFFFFF. The exact value is undefined." DS, ES, FS, GS, SS: read/write data, same base
  // and limit. We use the selectors of a conventional GDT (0x08 code, 0x10 data) as QEMU's
  // multiboot option ROM does; the GDTR itself is undefined (§3.2) and left as it is, which is
  // why kernels load their own GDT before reloading a segment register.
  for (let s = 0; s < 6; s++) {
    const code = s === SegReg.CS;
    cpu.sel[s] = code ? 0x08 : 0x10;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = -1; // 0xFFFFFFFF, unsigned in an Int32Array
    cpu.segAttr[s] = code ? FLAT_CODE : FLAT_DATA;
  }
  cpu.cpl = 0;
  // "CR0: Bit 31 (PG) must be cleared. Bit 0 (PE) must be set. Other bits are all undefined."
  // PE and ET with the caches on (CD = NW = 0), as the BIOS leaves CR0 under QEMU and GRUB.
  cpu.cr0 = 0x00000011;
  // "EFLAGS: Bit 17 (VM) must be cleared. Bit 9 (IF) must be cleared. Other bits are all
  // undefined." Only the always-one bit 1 remains.
  cpu.eflags = 0x2;
  cpu.halted = false;
  cpu.inhibitInterrupts = false;
  cpu.eip = entry;
}

/**
 * A NUL-terminated UTF-8 string. Written out because this package's lib is ES2022 without DOM
 * (no TextEncoder in its types), and the runtime must not reach for Node's Buffer.
 */
function cString(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c === 0) throw new MultibootError('a multiboot string (command line, boot loader name) cannot contain NUL');
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  out.push(0);
  return Uint8Array.from(out);
}

const hex = (n: number): string => (n >>> 0).toString(16);
