// The stub loader of a user executable (docs/patch-abi.md §Loader). Linux's ELF loader takes at
// most 4096 bytes of program headers, so the many small stub ranges that punned trampolines need
// cannot each be a PT_LOAD. As E9Patch does, the rewritten image's e_entry is this loader, in the
// primary stub range (a PT_LOAD): it opens /proc/self/exe, maps each loader range with mmap2 at
// MAP_FIXED_NOREPLACE|MAP_FIXED|MAP_PRIVATE, PROT_READ|PROT_EXEC, closes the file, restores every
// register, EFLAGS and ESP as the kernel left them (PUSHAD/PUSHFD ... POPFD/POPAD), and jumps to
// the original entry. A failed open or mmap (a mapping already there, a 32-bit kernel's 3 GiB
// limit) writes one line to stderr and exits with status 127: never a half-mapped program.
//
// Hand-encoded like every stub (code.ts): the listing is part of the ABI, the tests decode it and
// verify.ts regenerates it from the patch map and compares the bytes.
import { CodeBuffer } from './code';

/** One mmap2 call: `size` bytes at `vaddr` from file offset `offset` (all multiples of 4 KiB). */
export interface LoaderMapping {
  readonly vaddr: number;
  readonly size: number;
  readonly offset: number;
}

/** Linux i386 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl). */
const SYS_EXIT_GROUP = 252, SYS_WRITE = 4, SYS_OPEN = 5, SYS_CLOSE = 6, SYS_MMAP2 = 192;
const PROT_READ_EXEC = 0x5;
/** MAP_PRIVATE | MAP_FIXED | MAP_FIXED_NOREPLACE (Linux ≥ 4.17 refuses to replace a mapping; older kernels ignore the bit). */
const MAP_FLAGS = 0x02 | 0x10 | 0x100000;
/** Exit status when a mapping fails (the shell's "command not executable"). */
export const LOADER_FAIL_STATUS = 127;
const PATH = '/proc/self/exe\0';
const MESSAGE = 'ringshift loader: cannot map the stub pages (mmap2 at a fixed address failed)\n';
/** Bytes of the loader's code, before its strings and table. */
export const LOADER_CODE_SIZE = 0x81;

const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0));

/**
 * The loader's bytes at `at`: code, the path, the message, then the mapping table (vaddr, size,
 * offset / 4096 per entry, 4-byte aligned, ended by a zero vaddr).
 */
export function loaderImage(at: number, originalEntry: number, mappings: readonly LoaderMapping[]): Uint8Array {
  const pathAt = at + LOADER_CODE_SIZE;
  const msgAt = pathAt + PATH.length;
  const tableAt = (msgAt + MESSAGE.length + 3) & ~3;
  const b = new CodeBuffer(at);
  b.raw([0x60]);                                   // 00 pushad
  b.raw([0x9c]);                                   // 01 pushfd
  b.raw([0xb8]).u32(SYS_OPEN);                     // 02 mov eax, 5
  b.raw([0xbb]).u32(pathAt);                       // 07 mov ebx, path
  b.raw([0x31, 0xc9]);                             // 0c xor ecx, ecx (O_RDONLY)
  b.raw([0xcd, 0x80]);                             // 0e int 0x80
  b.raw([0x85, 0xc0]);                             // 10 test eax, eax
  b.raw([0x78, 0x5d - 0x14]);                      // 12 js fail
  b.raw([0x50]);                                   // 14 push eax (fd)
  b.raw([0x68]).u32(tableAt);                      // 15 push table
  // loop (0x1a): [esp] = next table entry, [esp+4] = fd
  b.raw([0x8b, 0x04, 0x24]);                       // 1a mov eax, [esp]
  b.raw([0x8b, 0x18]);                             // 1d mov ebx, [eax]      addr
  b.raw([0x85, 0xdb]);                             // 1f test ebx, ebx
  b.raw([0x74, 0x48 - 0x23]);                      // 21 je done
  b.raw([0x8b, 0x48, 0x04]);                       // 23 mov ecx, [eax+4]    length
  b.raw([0x8b, 0x68, 0x08]);                       // 26 mov ebp, [eax+8]    pgoffset
  b.raw([0x83, 0x04, 0x24, 0x0c]);                 // 29 add dword [esp], 12
  b.raw([0xb8]).u32(SYS_MMAP2);                    // 2d mov eax, 192
  b.raw([0xba]).u32(PROT_READ_EXEC);               // 32 mov edx, 5
  b.raw([0xbe]).u32(MAP_FLAGS);                    // 37 mov esi, flags
  b.raw([0x8b, 0x7c, 0x24, 0x04]);                 // 3c mov edi, [esp+4]    fd
  b.raw([0xcd, 0x80]);                             // 40 int 0x80
  b.raw([0x39, 0xd8]);                             // 42 cmp eax, ebx
  b.raw([0x74, (0x1a - 0x46) & 0xff]);             // 44 je loop
  b.raw([0xeb, 0x5d - 0x48]);                      // 46 jmp fail
  // done (0x48)
  b.raw([0xb8]).u32(SYS_CLOSE);                    // 48 mov eax, 6
  b.raw([0x8b, 0x5c, 0x24, 0x04]);                 // 4d mov ebx, [esp+4]
  b.raw([0xcd, 0x80]);                             // 51 int 0x80
  b.raw([0x83, 0xc4, 0x08]);                       // 53 add esp, 8
  b.raw([0x9d]);                                   // 56 popfd
  b.raw([0x61]);                                   // 57 popad
  b.jmp(originalEntry);                            // 58 jmp original entry
  // fail (0x5d)
  b.raw([0xb8]).u32(SYS_WRITE);                    // 5d mov eax, 4
  b.raw([0xbb]).u32(2);                            // 62 mov ebx, 2 (stderr)
  b.raw([0xb9]).u32(msgAt);                        // 67 mov ecx, message
  b.raw([0xba]).u32(MESSAGE.length);               // 6c mov edx, length
  b.raw([0xcd, 0x80]);                             // 71 int 0x80
  b.raw([0xb8]).u32(SYS_EXIT_GROUP);               // 73 mov eax, 252
  b.raw([0xbb]).u32(LOADER_FAIL_STATUS);           // 78 mov ebx, 127
  b.raw([0xcd, 0x80]);                             // 7d int 0x80
  b.raw([0x0f, 0x0b]);                             // 7f ud2
  if (b.length !== LOADER_CODE_SIZE) throw new Error(`internal error: loader code is ${b.length} bytes, not ${LOADER_CODE_SIZE}`);
  b.raw(ascii(PATH)).raw(ascii(MESSAGE));
  while (b.here < tableAt) b.raw([0]);
  for (const m of mappings) b.u32(m.vaddr).u32(m.size).u32(m.offset / 0x1000);
  b.u32(0);
  return b.bytes();
}

/** Size of loaderImage's result for `count` mappings (independent of the addresses). */
export function loaderImageSize(at: number, count: number): number {
  const tableAt = (at + LOADER_CODE_SIZE + PATH.length + MESSAGE.length + 3) & ~3;
  return tableAt - at + count * 12 + 4;
}
