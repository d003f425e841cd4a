// The ELF32 facts the PV loader needs: program headers (PT_LOAD to load, PT_NOTE for Xen's notes)
// and section headers (SHT_NOTE and `__xen_guest`). Bytes in, objects out; never throws anything
// but PvImageError.

export class PvImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PvImageError';
  }
}

export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const SHT_NOTE = 7;
export const EM_386 = 3;

export interface PvProgramHeader { type: number; offset: number; vaddr: number; paddr: number; filesz: number; memsz: number; flags: number }
export interface PvSection { name: string; type: number; offset: number; size: number }

export interface PvElf {
  machine: number;
  entry: number;
  programHeaders: PvProgramHeader[];
  sections: PvSection[];
}

export function readPvElf(image: Uint8Array): PvElf {
  if (image.length < 52 || image[0] !== 0x7f || image[1] !== 0x45 || image[2] !== 0x4c || image[3] !== 0x46) throw new PvImageError('not an ELF image');
  if (image[4] !== 1) throw new PvImageError('not an ELF32 image (a 32-bit PV kernel is ELFCLASS32)');
  if (image[5] !== 1) throw new PvImageError('not a little-endian ELF image');
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const u16 = (o: number): number => v.getUint16(o, true);
  const u32 = (o: number): number => v.getUint32(o, true);
  const machine = u16(18), entry = u32(24);
  const phoff = u32(28), phentsize = u16(42), phnum = u16(44);
  const shoff = u32(32), shentsize = u16(46), shnum = u16(48), shstrndx = u16(50);
  if (phnum > 0 && (phentsize < 32 || phoff + phnum * phentsize > image.length)) throw new PvImageError('ELF program headers run past the end of the file');
  const programHeaders: PvProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const h = { type: u32(p), offset: u32(p + 4), vaddr: u32(p + 8), paddr: u32(p + 12), filesz: u32(p + 16), memsz: u32(p + 20), flags: u32(p + 24) };
    if ((h.type === PT_LOAD || h.type === PT_NOTE) && h.offset + h.filesz > image.length) throw new PvImageError(`ELF program header ${i} runs past the end of the file`);
    programHeaders.push(h);
  }
  const sections: PvSection[] = [];
  if (shnum > 0 && shentsize >= 40 && shoff + shnum * shentsize <= image.length) {
    const raw = [...Array(shnum).keys()].map((i) => {
      const s = shoff + i * shentsize;
      return { nameOff: u32(s), type: u32(s + 4), offset: u32(s + 16), size: u32(s + 20) };
    });
    const strtab = raw[shstrndx];
    for (const s of raw) {
      let name = '';
      if (strtab !== undefined) for (let at = strtab.offset + s.nameOff; at < image.length && image[at] !== 0 && name.length < 64; at++) name += String.fromCharCode(image[at]!);
      sections.push({ name, type: s.type, offset: s.offset, size: s.size });
    }
  }
  return { machine, entry, programHeaders, sections };
}
