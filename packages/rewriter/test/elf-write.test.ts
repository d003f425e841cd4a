// writeElf32 against our reader, readelf and objdump (binutils), and the host kernel's loader.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import { afterAll, describe, expect, it } from 'vitest';
import { ElfWriteError, PF_R, PF_W, PF_X, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, readElf, writeElf32 } from '../src/index';
import type { ElfWriteImage } from '../src/index';

const dir = mkdtempSync(join(tmpdir(), 'ringshift-elf-write-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function save(name: string, bytes: Uint8Array): string {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  chmodSync(file, 0o755);
  return file;
}

const TEXT = 0x08049000;
const DATA = 0x0804b000;

/** exit(42) by raw syscall, after a write to .data and a read of .bss, so every segment is touched. */
function exitProgram(): { code: Uint8Array; labels: Map<string, number> } {
  const a = new Assembler(32, TEXT);
  a.here('_start');
  a.asm('mov', mem({ disp: DATA, size: 4 }), imm(7));
  a.asm('mov', reg('ecx'), mem({ disp: DATA + 0x1000, size: 4 })); // .bss: must read as 0
  a.asm('mov', reg('eax'), imm(1)); // __NR_exit (arch/x86/entry/syscalls/syscall_32.tbl)
  a.asm('mov', reg('ebx'), imm(42));
  a.asm('add', reg('ebx'), reg('ecx'));
  a.asm('int', imm(0x80));
  a.here('_end');
  const r = a.assemble();
  return { code: r.bytes, labels: r.labels };
}

function exitImage(): ElfWriteImage {
  const { code, labels } = exitProgram();
  const data = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  return {
    type: 'exec',
    machine: 'i386',
    entry: labels.get('_start')!,
    stack: 'rw',
    segments: [
      { vaddr: TEXT, flags: 'rx', bytes: code },
      { vaddr: DATA, flags: PF_R | PF_W, bytes: data, memsz: 0x2000 },
    ],
    sections: [
      { name: '.text', addr: TEXT, size: code.length, align: 16 },
      { name: '.data', addr: DATA, bytes: data, align: 4 },
      { name: '.bss', type: 'nobits', addr: DATA + 0x1000, size: 0x1000, align: 32 },
      { name: '.comment', addr: 0, bytes: Uint8Array.from([...'ringshift', 0].map((c) => (typeof c === 'string' ? c.charCodeAt(0) : c))) },
    ],
    symbols: [
      { name: '_start', value: labels.get('_start')!, size: code.length, type: 'func' },
      { name: 'local_end', value: labels.get('_end')!, binding: 'local', section: '.text' },
      { name: 'data', value: DATA, size: 8, type: 'object' },
      { name: 'bss', value: DATA + 0x1000, size: 0x1000, type: 'object', binding: 'weak' },
      { name: 'abs', value: 0x1234 },
    ],
  };
}

describe('writeElf32', () => {
  it('round-trips through readElf', () => {
    const image = exitImage();
    const elf = readElf(writeElf32(image));
    expect(elf).toMatchObject({ class: 32, machine: 'i386', type: 'exec', entry: TEXT });
    const loads = elf.segments.filter((s) => s.type === 'load');
    expect(loads.map((s) => ({ vaddr: s.vaddr, paddr: s.paddr, flags: s.flags, filesz: s.filesz, memsz: s.memsz, align: s.align }))).toEqual([
      { vaddr: TEXT, paddr: TEXT, flags: PF_R | PF_X, filesz: image.segments[0]!.bytes.length, memsz: image.segments[0]!.bytes.length, align: 0x1000 },
      { vaddr: DATA, paddr: DATA, flags: PF_R | PF_W, filesz: 8, memsz: 0x2000, align: 0x1000 },
    ]);
    for (const [i, s] of loads.entries()) {
      expect(s.bytes).toEqual(image.segments[i]!.bytes);
      expect(s.offset % 0x1000).toBe(s.vaddr % 0x1000);
    }
    expect(elf.segments.find((s) => s.type === 'gnu_stack')?.flags).toBe(PF_R | PF_W);
    expect(elf.sections.map((s) => [s.name, s.type, s.flags, s.addr, s.size, s.addralign])).toEqual([
      ['', 'null', 0, 0, 0, 0],
      ['.text', 'progbits', SHF_ALLOC | SHF_EXECINSTR, TEXT, image.segments[0]!.bytes.length, 16],
      ['.data', 'progbits', SHF_ALLOC | SHF_WRITE, DATA, 8, 4],
      ['.bss', 'nobits', SHF_ALLOC | SHF_WRITE, DATA + 0x1000, 0x1000, 32],
      ['.comment', 'progbits', 0, 0, 10, 1],
      ['.symtab', 'symtab', 0, 0, 6 * 16, 4],
      ['.strtab', 'strtab', 0, 0, expect.any(Number), 1],
      ['.shstrtab', 'strtab', 0, 0, expect.any(Number), 1],
    ]);
    expect(elf.sections[1]!.bytes).toEqual(image.segments[0]!.bytes);
    expect(elf.symbolTable).toBe('symtab');
    // Locals first (gABI), then the others in the order given.
    expect(elf.symbols.map((s) => [s.name, s.value, s.size, s.type, s.binding, s.section])).toEqual([
      ['local_end', TEXT + image.segments[0]!.bytes.length, 0, 'notype', 'local', '.text'],
      ['_start', TEXT, image.segments[0]!.bytes.length, 'func', 'global', '.text'],
      ['data', DATA, 8, 'object', 'global', '.data'],
      ['bss', DATA + 0x1000, 0x1000, 'object', 'weak', '.bss'],
      ['abs', 0x1234, 0, 'notype', 'global', undefined],
    ]);
    expect(elf.sections.find((s) => s.name === '.symtab')!.info).toBe(2);
  });

  it('passes readelf -a without a warning', () => {
    const file = save('exit42', writeElf32(exitImage()));
    const r = spawnSync('readelf', ['-a', '-W', file], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/Type:\s+EXEC \(Executable file\)/);
    expect(r.stdout).toMatch(/Machine:\s+Intel 80386/);
    expect(r.stdout).toMatch(/Entry point address:\s+0x8049000/);
    expect(r.stdout).toMatch(/LOAD\s+0x001000 0x08049000 0x08049000 0x0001e 0x0001e R E 0x1000/);
    expect(r.stdout).toMatch(/GNU_STACK/);
    expect(r.stdout).toMatch(/00\s+\.text\s*\n\s+01\s+\.data \.bss\s*\n/);
    expect(r.stdout).toMatch(/Symbol table '\.symtab' contains 6 entries/);
    expect(r.stdout).toMatch(/FUNC\s+GLOBAL DEFAULT\s+1 _start/);
    expect(r.stdout).toMatch(/OBJECT\s+WEAK\s+DEFAULT\s+3 bss/);
    expect(r.stdout).toMatch(/NOTYPE\s+GLOBAL DEFAULT\s+ABS abs/);
  });

  it('is disassembled by objdump -d', () => {
    const file = save('exit42-objdump', writeElf32(exitImage()));
    const out = execFileSync('objdump', ['-d', '-M', 'intel', '-w', file], { encoding: 'utf8' });
    expect(out).toMatch(/file format elf32-i386/);
    expect(out).toMatch(/08049000 <_start>:/);
    const lines = out.split('\n').filter((l) => /^\s+[0-9a-f]+:\t/.test(l)).map((l) => l.split('\t').at(-1)!.trim());
    expect(lines.map((l) => l.replace(/\s+/g, ' '))).toEqual([
      'mov DWORD PTR ds:0x804b000,0x7',
      'mov ecx,DWORD PTR ds:0x804c000',
      'mov eax,0x1',
      'mov ebx,0x2a',
      'add ebx,ecx',
      'int 0x80',
    ]);
  });

  it('writes a static executable that the host kernel runs (exit 42)', () => {
    const file = save('exit42-run', writeElf32(exitImage()));
    const r = spawnSync(file, [], { encoding: 'utf8' });
    expect(r.error, `could not run a 32-bit executable on this host: ${String(r.error)}`).toBeUndefined();
    expect(r.signal).toBeNull();
    expect(r.status).toBe(42);
  });

  it('runs without section headers, from a zero-filled segment, at an unaligned vaddr', () => {
    // Code at vaddr ≡ 0x123 (mod 4 KiB): the file offset must follow it.
    const base = 0x0804a123;
    const a = new Assembler(32, base);
    a.asm('mov', reg('eax'), imm(1));
    a.asm('mov', reg('ebx'), mem({ disp: 0x30000000, size: 4 })); // zero-filled: 0
    a.asm('add', reg('ebx'), imm(5));
    a.asm('int', imm(0x80));
    const bytes = writeElf32({
      type: 'exec', machine: 'i386', entry: base,
      segments: [
        { vaddr: 0x30000000, flags: 'rw', bytes: new Uint8Array(0), memsz: 0x10000 },
        { vaddr: base, flags: PF_R | PF_X, bytes: a.assemble().bytes },
      ],
    });
    const elf = readElf(bytes);
    expect(elf.sections).toEqual([]);
    expect(elf.segments.map((s) => s.vaddr)).toEqual([base, 0x30000000]); // sorted by vaddr
    expect(elf.segments[0]!.offset % 0x1000).toBe(0x123);
    const file = save('noshdr', bytes);
    expect(spawnSync('readelf', ['-a', '-W', file], { encoding: 'utf8' }).stderr).toBe('');
    expect(spawnSync(file).status).toBe(5);
  });

  it('keeps file offsets congruent modulo a large p_align', () => {
    const elf = readElf(writeElf32({
      type: 'exec', machine: 'i386', entry: 0x400010,
      segments: [{ vaddr: 0x400010, flags: 'rx', bytes: new Uint8Array(16).fill(0x90), align: 0x200000 }],
    }));
    expect(elf.segments[0]!.offset % 0x200000).toBe(0x10);
    expect(elf.segments[0]!.align).toBe(0x200000);
  });
});

describe('writeElf32 program headers besides PT_LOAD', () => {
  it('writes a PT_TLS over part of the data segment, with the file offset of its bytes (readelf)', () => {
    const image = { ...exitImage(), programHeaders: [{ type: 7 /* PT_TLS */, vaddr: DATA + 4, filesz: 4, memsz: 0x10, flags: PF_R, align: 4 }] };
    const bytes = writeElf32(image);
    const data = readElf(bytes).segments.find((s) => s.type === 'load' && s.vaddr === DATA)!;
    const tls = readElf(bytes).segments.find((s) => s.type === 'tls')!;
    expect(tls).toMatchObject({ vaddr: DATA + 4, paddr: DATA + 4, filesz: 4, memsz: 0x10, offset: data.offset + 4, align: 4 });
    const file = join(mkdtempSync(join(tmpdir(), 'ringshift-elfw-')), 'tls.elf');
    writeFileSync(file, bytes);
    const out = execFileSync('readelf', ['-lW', file], { encoding: 'utf8' });
    expect(out).toMatch(new RegExp(`TLS\\s+0x0*${(data.offset + 4).toString(16)}\\s+0x0*${(DATA + 4).toString(16)}\\s`));
  });

  it('loads the ELF header and the table with a header segment, PT_PHDR first (readelf, host run)', () => {
    const img = writeElf32({ ...exitImage(), header: { vaddr: TEXT - 0x2000, phdr: true } });
    const elf = readElf(img);
    expect(elf.segments.slice(0, 2).map((s) => [s.type, s.offset, s.vaddr, s.filesz, s.flags])).toEqual([
      ['phdr', 52, TEXT - 0x2000 + 52, elf.segments.length * 32, PF_R],
      ['load', 0, TEXT - 0x2000, 52 + elf.segments.length * 32, PF_R],
    ]);
    const file = save('exit42-header', img);
    const r = spawnSync('readelf', ['-l', '-W', file], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/PHDR\s+0x000034 0x08047034 0x08047034 0x000a0 0x000a0 R\s+0x4/);
    const run = spawnSync(file, [], { encoding: 'utf8' });
    expect(run.signal).toBeNull();
    expect(run.status).toBe(42);
    expect(() => writeElf32({ ...exitImage(), header: { vaddr: TEXT, phdr: false } })).toThrow(/not below the page of the lowest segment/);
    expect(() => writeElf32({ ...exitImage(), header: { vaddr: TEXT - 0x1800, phdr: false } })).toThrow(/not a page-aligned/);
  });

  it('refuses one whose file bytes are in no segment, and PT_LOAD given this way', () => {
    expect(() => writeElf32({ ...exitImage(), programHeaders: [{ type: 4, vaddr: 0x7000000, filesz: 4, memsz: 4, flags: PF_R, align: 4 }] }))
      .toThrow(/program header 0 \(type 0x4\) at 0x7000000: its 0x4 file bytes are not inside one segment's file bytes/);
    expect(() => writeElf32({ ...exitImage(), programHeaders: [{ type: 1, vaddr: DATA, filesz: 0, memsz: 4, flags: PF_R, align: 4 }] }))
      .toThrow(/give PT_LOAD as segments/);
  });
});

describe('writeElf32 refuses bad images with ElfWriteError', () => {
  const code = Uint8Array.from([0xcc]);
  const base = (): ElfWriteImage => ({ type: 'exec', machine: 'i386', entry: 0x1000, segments: [{ vaddr: 0x1000, flags: 'rx', bytes: code }] });
  const cases: [string, (i: ElfWriteImage) => ElfWriteImage, RegExp][] = [
    ['no segments', (i) => ({ ...i, segments: [] }), /at least one segment/],
    ['overlapping segments', (i) => ({ ...i, segments: [...i.segments, { vaddr: 0x0800, flags: 'rw', bytes: code, memsz: 0x900 }] }), /segment 1 \(vaddr 0x800\) and segment 0 \(vaddr 0x1000\) overlap/],
    ['segments sharing a page', (i) => ({ ...i, segments: [...i.segments, { vaddr: 0x1800, flags: 'rw', bytes: code }] }), /share the page at 0x1000/],
    ['entry outside every segment', (i) => ({ ...i, entry: 0x5000 }), /entry point 0x5000 is not inside the file bytes of any executable segment/],
    ['entry in a data segment', (i) => ({ ...i, entry: 0x3000, segments: [...i.segments, { vaddr: 0x3000, flags: 'rw', bytes: code }] }), /segment 1 \(vaddr 0x3000\) is not executable/],
    ['entry in zero-fill', (i) => ({ ...i, entry: 0x1004, segments: [{ ...i.segments[0]!, memsz: 0x10 }] }), /entry point 0x1004/],
    ['align not a power of two', (i) => ({ ...i, segments: [{ ...i.segments[0]!, align: 0x1800 }] }), /align 6144 is not 0 or a power of two/],
    ['memsz below filesz', (i) => ({ ...i, segments: [{ ...i.segments[0]!, memsz: 0 }] }), /memsz 0x0 is smaller than its 0x1 file bytes/],
    ['past 4 GiB', (i) => ({ ...i, segments: [...i.segments, { vaddr: 0xfffff000, flags: 'rw', bytes: code, memsz: 0x2000 }] }), /past the 4 GiB/],
    ['bad flags', (i) => ({ ...i, segments: [{ ...i.segments[0]!, flags: 'wx' as 'rx' }] }), /flags 'wx'/],
    ['64-bit machine', (i) => ({ ...i, machine: 'x86-64' as 'i386' }), /only 'i386'/],
    ['section outside segments', (i) => ({ ...i, sections: [{ name: '.text', addr: 0x9000, size: 1 }] }), /section \.text: addr 0x9000 is inside no segment/],
    ['alloc section outside segments', (i) => ({ ...i, sections: [{ name: '.x', addr: 0x9000, size: 1, flags: 'a' }] }), /section \.x: addr 0x9000 is allocated but inside no segment/],
    ['section past its segment', (i) => ({ ...i, sections: [{ name: '.text', addr: 0x1000, size: 2 }] }), /runs past the file bytes of segment 0/],
    ['section bytes differ', (i) => ({ ...i, sections: [{ name: '.text', addr: 0x1000, bytes: Uint8Array.from([0x90]) }] }), /bytes differ from segment 0 \(vaddr 0x1000\) at 0x1000/],
    ['writable section in rx segment', (i) => ({ ...i, sections: [{ name: '.data', addr: 0x1000, size: 1, flags: 'aw' }] }), /writable but segment 0/],
    ['non-alloc section with addr', (i) => ({ ...i, sections: [{ name: '.note', addr: 0x1000, flags: 0, bytes: code }] }), /not allocated .* give addr 0/],
    ['reserved section name', (i) => ({ ...i, sections: [{ name: '.symtab', addr: 0, bytes: code }] }), /makes this section itself/],
    ['unknown symbol section', (i) => ({ ...i, symbols: [{ name: 'x', value: 0x1000, section: '.text' }] }), /section \.text is not among/],
    ['duplicate global symbol', (i) => ({ ...i, symbols: [{ name: 'x', value: 1 }, { name: 'x', value: 2 }] }), /symbol 1 \(x\): a global or weak symbol of that name is given twice/],
  ];
  it.each(cases)('%s', (_name, change, message) => {
    const image = change(base());
    expect(() => writeElf32(image)).toThrow(ElfWriteError);
    expect(() => writeElf32(image)).toThrow(message);
  });
});
