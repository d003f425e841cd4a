// Where the stub segment goes (docs/patch-map.md §Stub segment placement, docs/patch-abi.md).
//
// Multiboot kernels: in the monitor's reserved hole at the top of the virtual address space,
// like Xen's hypervisor hole, so that the guest's own mappings below it are untouched; the
// physical pages come right after the image, where the monitor reserves them. Other ELF32
// executables: the primary range just above the highest segment with a gap, where the Linux
// loader maps it like any other PT_LOAD and where the heap (brk) then starts above it; punned
// trampolines on any other free page of user space, mapped by the stub loader (stubs/loader.ts).
import type { ElfImage } from './elf/read';
import { RewriteInputError } from './errors';

export const PAGE = 0x1000;
/** The monitor's reserved hole (docs/patch-abi.md §Address space): [HOLE_START, HOLE_END). */
export const HOLE_START = 0xffc00000;
export const HOLE_END = 0xfffff000;
/**
 * Stubs and trampolines of a kernel stay below HOLE_STUB_END: the top of the hole,
 * [HOLE_STUB_END, HOLE_END), holds the monitor's own structures (its GDT, IDT, TSS and shadow LDT;
 * docs/patch-abi.md §Address space).
 */
export const HOLE_STUB_END = 0xfffe0000;
/** Gap between a user executable's highest segment and its stub segment. */
export const USER_GAP = 0x10000;
/**
 * User executables: punned (B2/T1/T2e) trampolines may go on any free page of [USER_LO, USER_HI).
 * USER_LO is Linux's default vm.mmap_min_addr. USER_HI stays below where a 64-bit kernel puts an
 * i386 process's vDSO and first mmaps at exec time: mmap_base = TASK_SIZE (0xFFFFE000) - gap -
 * rnd, gap = 128 MiB (MIN_GAP) for a stack rlimit up to about 100 MiB, rnd < 1 MiB at the
 * default 8 compat random bits (arch/x86/mm/mmap.c, vm.mmap_rnd_compat_bits), so mmap_base >=
 * 0xF7EFE000; later mmaps go around the loader's pages (a collision at exec: docs/patch-abi.md
 * §Loader, exit 127).
 * Above 0xF0000000 lie the windows of puns whose high rel32 byte is a jump opcode
 * (E8/E9/EB: the next site's patch) — most of what B2/T2e/T3e missed below it (docs/tactics.md).
 */
export const USER_LO = 0x00010000;
export const USER_HI = 0xf6000000;
/** User executables: room for the sequential trampolines (B1, T2, T3, and those of the neighbours T3e evicts) and the loader above the stub start. */
export const USER_MAIN_SIZE = 0x1000000;
/** User executables: kept free after USER_MAIN_SIZE for the heap (brk starts after the highest PT_LOAD). */
export const BRK_MARGIN = 0x4000000;

export const MULTIBOOT_MAGIC = 0x1badb002;
/** Multiboot 1 §3.1.1: the header lies within the first 8192 bytes, 32-bit aligned. */
export const MULTIBOOT_SEARCH = 8192;
/** Flag bit 16: the a.out kludge (load addresses in the header, not from the ELF program headers). */
export const MULTIBOOT_AOUT_KLUDGE = 1 << 16;

export interface MultibootHeader {
  /** File offset of the magic. */
  readonly offset: number;
  readonly flags: number;
}

/** The multiboot (v1) header of a file, if it has a valid one (magic + flags + checksum = 0 mod 2^32). */
export function findMultibootHeader(file: Uint8Array): MultibootHeader | undefined {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const end = Math.min(file.length, MULTIBOOT_SEARCH) - 12;
  for (let off = 0; off <= end; off += 4) {
    if (dv.getUint32(off, true) !== MULTIBOOT_MAGIC) continue;
    const flags = dv.getUint32(off + 4, true);
    const sum = (MULTIBOOT_MAGIC + flags + dv.getUint32(off + 8, true)) >>> 0;
    if (sum === 0) return { offset: off, flags };
  }
  return undefined;
}

export interface StubLayout {
  readonly kernel: boolean;
  /** First address of the primary stub range (the shared page when there is one). */
  readonly stubVaddr: number;
  readonly stubPaddr: number;
  /** Highest address (exclusive) the sequential trampolines may reach. */
  readonly limit: number;
  /** Where punned trampolines may go: [punLo, punHi) minus `reserved`. */
  readonly punLo: number;
  readonly punHi: number;
  /** Address ranges [start, end) no trampoline may use: the image's pages, the header page and the brk margin. */
  readonly reserved: readonly (readonly [number, number])[];
  /**
   * User executables: the page below the image where the rewritten file's ELF header and program
   * header table are loaded (writeElf32's `header`), so that AT_PHDR points at the new table;
   * undefined for kernels (the monitor and multiboot loaders take no AT_PHDR) and when the image
   * starts too low for a page below it.
   */
  readonly headerVaddr: number | undefined;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Chooses the stub segment's addresses for an image. */
export function planLayout(elf: ElfImage, file: Uint8Array): StubLayout {
  const loads = elf.segments.filter((s) => s.type === 'load' && s.memsz > 0);
  if (loads.length === 0) throw new RewriteInputError('the image has no PT_LOAD segment to patch');
  const mb = findMultibootHeader(file);
  if (mb && mb.flags & MULTIBOOT_AOUT_KLUDGE) {
    throw new RewriteInputError(
      'multiboot header with the a.out kludge (flag bit 16): the loader would take load addresses from the header and ignore the stub segment',
    );
  }
  if (mb) {
    for (const s of loads) {
      if (s.vaddr + s.memsz > HOLE_START) {
        throw new RewriteInputError(`segment ${s.index} [0x${s.vaddr.toString(16)}, ...) reaches into the reserved hole at 0x${HOLE_START.toString(16)}`);
      }
    }
    const physEnd = Math.max(...loads.map((s) => s.paddr + s.memsz));
    return { kernel: true, stubVaddr: HOLE_START, stubPaddr: alignUp(physEnd, PAGE), limit: HOLE_STUB_END, punLo: HOLE_START, punHi: HOLE_STUB_END, reserved: [], headerVaddr: undefined };
  }
  const end = Math.max(...loads.map((s) => s.vaddr + s.memsz));
  const v = alignUp(end, PAGE) + USER_GAP;
  if (v + USER_MAIN_SIZE + BRK_MARGIN >= USER_HI) throw new RewriteInputError(`no room for the stub segment and the heap below ${hex(USER_HI)}`);
  const reserved: [number, number][] = loads.map((s) => [Math.floor(s.vaddr / PAGE) * PAGE, alignUp(s.vaddr + s.memsz, PAGE)]);
  reserved.push([v + USER_MAIN_SIZE, v + USER_MAIN_SIZE + BRK_MARGIN]);
  const low = Math.floor(Math.min(...loads.map((s) => s.vaddr)) / PAGE) * PAGE;
  const headerVaddr = low - PAGE >= USER_LO ? low - PAGE : undefined;
  if (headerVaddr !== undefined) reserved.push([headerVaddr, low]);
  return { kernel: false, stubVaddr: v, stubPaddr: v, limit: v + USER_MAIN_SIZE, punLo: USER_LO, punHi: USER_HI, reserved, headerVaddr };
}

const hex = (n: number): string => `0x${n.toString(16)}`;
