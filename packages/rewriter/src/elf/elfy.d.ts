// Types for elfy 1.0.0 (CommonJS, ships none): only what ./read.ts uses. elfy reads through
// Node's Buffer API; ElfyBuffer is the part of that API it calls (see ./elfy-bytes.ts).
declare module 'elfy' {
  export interface ElfyBuffer {
    readonly length: number;
    slice(start?: number, end?: number): ElfyBuffer;
    toString(): string;
    readUInt8(offset: number): number;
    readInt8(offset: number): number;
    readUInt16LE(offset: number): number;
    readUInt16BE(offset: number): number;
    readInt16LE(offset: number): number;
    readInt16BE(offset: number): number;
    readUInt32LE(offset: number): number;
    readUInt32BE(offset: number): number;
    readInt32LE(offset: number): number;
    readInt32BE(offset: number): number;
  }

  /** Header fields by elfy's names; type and machine are names from its tables, or undefined. */
  export interface ElfyHeader {
    class: '32' | '64';
    endian: 'lsb' | 'msb';
    type: string | undefined;
    machine: string | undefined;
    entry: number;
    phoff: number;
    shoff: number;
    flags: number;
    ehsize: number;
    phentsize: number;
    phnum: number;
    shentsize: number;
    shnum: number;
    shstrndx: number;
  }

  export interface ElfyProgram {
    type: string | undefined;
    offset: number;
    vaddr: number;
    paddr: number;
    filesz: number;
    memsz: number;
    flags: Record<string, true>;
    align: number;
    data: ElfyBuffer;
  }

  export interface ElfySection {
    /** Offset into the section-name string table until execute() resolves it. */
    name: number | string;
    type: string | number;
    flags: Record<string, true>;
    addr: number;
    off: number;
    size: number;
    link: number;
    info: number;
    /** Read from the wrong offsets in ELF64 (46 and 54 instead of 48 and 56). */
    addralign: number;
    entsize: number;
    data: ElfyBuffer;
  }

  export interface ElfyImage extends ElfyHeader {
    body: { programs: ElfyProgram[]; sections: ElfySection[] };
  }

  export class Parser {
    execute(buf: ElfyBuffer): ElfyImage;
    parseHeader(buf: ElfyBuffer): ElfyHeader;
    parsePrograms(buf: ElfyBuffer, header: ElfyHeader): ElfyProgram[];
    parseSections(buf: ElfyBuffer, header: ElfyHeader): ElfySection[];
  }

  const elfy: {
    parse(buf: ElfyBuffer): ElfyImage;
    Parser: typeof Parser;
  };
  export default elfy;
}
