// ELF numbers and the names read.ts gives them. Sources: the System V gABI (ELF chapter 4,
// "Object Files", 2013 draft) and, for the GNU extensions, binutils include/elf/common.h.
// elfy has name tables too, but they map several numbers to one name (and one number to two
// names), so ours come from the raw fields.

export const EM_386 = 3;
export const EM_X86_64 = 62;

/** Segment flags (p_flags). */
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

/** Section flags (sh_flags), low 32 bits. */
export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;

export const SHT_NULL = 0;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOBITS = 8;
export const SHT_DYNSYM = 11;

export const SHN_UNDEF = 0;
/** First reserved section index (SHN_LORESERVE): indices from here on are not sections. */
export const SHN_LORESERVE = 0xff00;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
export const SHN_XINDEX = 0xffff;
/** e_phnum value meaning "the real count is in section 0's sh_info" (PN_XNUM). */
export const PN_XNUM = 0xffff;

export const ELF_TYPES = { 0: 'none', 1: 'rel', 2: 'exec', 3: 'dyn', 4: 'core' } as const;
export type ElfType = (typeof ELF_TYPES)[keyof typeof ELF_TYPES] | 'unknown';

export const MACHINES = { [EM_386]: 'i386', [EM_X86_64]: 'x86-64' } as const;
export type ElfMachine = (typeof MACHINES)[keyof typeof MACHINES];

/** Names of a few non-x86 machines, only so that the error for them can say what they are. */
export const OTHER_MACHINES: Readonly<Record<number, string>> = {
  2: 'SPARC', 8: 'MIPS', 20: 'PowerPC', 21: 'PowerPC64', 22: 'S/390', 40: 'ARM', 43: 'SPARC V9',
  50: 'IA-64', 183: 'AArch64', 243: 'RISC-V', 258: 'LoongArch',
};

export const SEGMENT_TYPES: Readonly<Record<number, string>> = {
  0: 'null', 1: 'load', 2: 'dynamic', 3: 'interp', 4: 'note', 5: 'shlib', 6: 'phdr', 7: 'tls',
  0x6474e550: 'gnu_eh_frame', 0x6474e551: 'gnu_stack', 0x6474e552: 'gnu_relro', 0x6474e553: 'gnu_property',
};

export const SECTION_TYPES: Readonly<Record<number, string>> = {
  0: 'null', 1: 'progbits', 2: 'symtab', 3: 'strtab', 4: 'rela', 5: 'hash', 6: 'dynamic', 7: 'note',
  8: 'nobits', 9: 'rel', 10: 'shlib', 11: 'dynsym', 14: 'init_array', 15: 'fini_array',
  16: 'preinit_array', 17: 'group', 18: 'symtab_shndx', 19: 'relr',
  0x6ffffff5: 'gnu_attributes', 0x6ffffff6: 'gnu_hash', 0x6ffffff7: 'gnu_liblist',
  0x6ffffffd: 'gnu_verdef', 0x6ffffffe: 'gnu_verneed', 0x6fffffff: 'gnu_versym',
};

export const SYMBOL_TYPES: Readonly<Record<number, string>> = {
  0: 'notype', 1: 'object', 2: 'func', 3: 'section', 4: 'file', 5: 'common', 6: 'tls', 10: 'ifunc',
};

export const SYMBOL_BINDINGS: Readonly<Record<number, string>> = {
  0: 'local', 1: 'global', 2: 'weak', 10: 'unique',
};

/** Name from a table, or the number in hex so that nothing is silently unnamed. */
export function nameOf(table: Readonly<Record<number, string>>, value: number): string {
  return table[value] ?? `0x${value.toString(16)}`;
}
