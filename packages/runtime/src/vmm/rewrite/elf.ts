// The few ELF32 facts the rewrite backend needs from a patched image: program headers (to find
// the stub segment) and section headers (to find `.ringshift.patchmap`). Bytes in, objects out;
// the multiboot loader (machine/multiboot.ts) does the loading itself.
import { PatchMapError } from './patchmap';

export const PT_NULL = 0;
export const PT_LOAD = 1;

export interface ProgramHeader {
  /** Index in the program header table and the file offset of the entry. */
  index: number;
  entryOffset: number;
  type: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
  flags: number;
}

export interface SectionHeader {
  name: string;
  type: number;
  addr: number;
  offset: number;
  size: number;
}

export interface Elf32 {
  programHeaders: ProgramHeader[];
  sections: SectionHeader[];
}

export function readElf32(image: Uint8Array): Elf32 {
  if (image.length < 52 || image[0] !== 0x7f || image[1] !== 0x45 || image[2] !== 0x4c || image[3] !== 0x46) {
    throw new PatchMapError('not an ELF image, so it carries no patch map');
  }
  if (image[4] !== 1 || image[5] !== 1) throw new PatchMapError('not a little-endian ELF32 image');
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const u16 = (o: number): number => v.getUint16(o, true);
  const u32 = (o: number): number => v.getUint32(o, true);
  const phoff = u32(28), phentsize = u16(42), phnum = u16(44);
  const shoff = u32(32), shentsize = u16(46), shnum = u16(48), shstrndx = u16(50);
  const programHeaders: ProgramHeader[] = [];
  if (phoff + phnum * phentsize > image.length) throw new PatchMapError('ELF program headers run past the end of the file');
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    programHeaders.push({
      index: i, entryOffset: p, type: u32(p), offset: u32(p + 4), vaddr: u32(p + 8), paddr: u32(p + 12),
      filesz: u32(p + 16), memsz: u32(p + 20), flags: u32(p + 24),
    });
  }
  const sections: SectionHeader[] = [];
  if (shnum > 0) {
    if (shoff + shnum * shentsize > image.length || shentsize < 40) throw new PatchMapError('ELF section headers run past the end of the file');
    const raw = [...Array(shnum).keys()].map((i) => {
      const s = shoff + i * shentsize;
      return { nameOff: u32(s), type: u32(s + 4), addr: u32(s + 12), offset: u32(s + 16), size: u32(s + 20) };
    });
    const strtab = raw[shstrndx];
    for (const s of raw) {
      let name = '';
      if (strtab !== undefined) {
        for (let at = strtab.offset + s.nameOff; at < image.length && image[at] !== 0; at++) name += String.fromCharCode(image[at]!);
      }
      sections.push({ name, type: s.type, addr: s.addr, offset: s.offset, size: s.size });
    }
  }
  return { programHeaders, sections };
}

/** The bytes of the named section, or null. */
export function sectionBytes(image: Uint8Array, elf: Elf32, name: string): Uint8Array | null {
  const s = elf.sections.find((x) => x.name === name);
  if (s === undefined) return null;
  if (s.offset + s.size > image.length) throw new PatchMapError(`section ${name} runs past the end of the file`);
  return image.subarray(s.offset, s.offset + s.size);
}
