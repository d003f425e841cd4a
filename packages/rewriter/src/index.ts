// Public API of @ringshift/rewriter: named re-exports only.
export { ElfError, readElf } from './elf/read';
export type { ElfImage, ElfSection, ElfSegment, ElfSymbol } from './elf/read';
export { PF_R, PF_W, PF_X, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE } from './elf/constants';
export type { ElfMachine, ElfType } from './elf/constants';
export { ElfWriteError, writeElf32 } from './elf/write';
export type { ElfWriteFlags, ElfWriteImage, ElfWriteSection, ElfWriteSegment, ElfWriteSymbol } from './elf/write';
