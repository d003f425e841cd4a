// The multiboot loader on the real example kernel and on small images built here byte by byte,
// one per rule of the specification (0.6.96) and one per error it must report.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S, Cpu, MULTIBOOT_INFO_ADDRESS, MultibootError, PhysicalMemory, loadMultiboot,
} from '../src/index';
import { HANDLERS, RecordingPorts } from './support/flat';

const HELLO = join(import.meta.dirname, '../../../examples/hello/hello.elf');

function machine(memBytes = 16 << 20): { cpu: Cpu; mem: PhysicalMemory } {
  const mem = new PhysicalMemory(memBytes);
  return { cpu: new Cpu(mem, new RecordingPorts(), HANDLERS), mem };
}

/** A multiboot header: magic, flags, checksum, then the optional address fields. */
function mbHeader(flags = 0x3, opts: { checksum?: number; address?: number[] } = {}): Uint8Array {
  const words = [0x1badb002, flags, opts.checksum ?? (-(0x1badb002 + flags) >>> 0), ...(opts.address ?? [])];
  const b = new Uint8Array(words.length * 4);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w >>> 0, true));
  return b;
}

interface Seg {
  paddr: number;
  vaddr?: number;
  data: Uint8Array;
  memsz?: number;
}

/** A minimal ELF32 executable: header, program headers, then each segment's bytes. */
function elf32(segs: Seg[], entry: number, o: { cls?: number; machine?: number; type?: number } = {}): Uint8Array {
  const phoff = 52;
  let off = phoff + 32 * segs.length;
  const offsets = segs.map((s) => {
    const at = off;
    off += (s.data.length + 3) & ~3;
    return at;
  });
  const b = new Uint8Array(off);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, o.cls ?? 1, 1, 1]);
  v.setUint16(16, o.type ?? 2, true);
  v.setUint16(18, o.machine ?? 3, true);
  v.setUint32(20, 1, true);
  v.setUint32(24, entry, true);
  v.setUint32(28, phoff, true);
  v.setUint16(40, 52, true);
  v.setUint16(42, 32, true);
  v.setUint16(44, segs.length, true);
  segs.forEach((s, i) => {
    const p = phoff + 32 * i;
    v.setUint32(p, 1, true);
    v.setUint32(p + 4, offsets[i]!, true);
    v.setUint32(p + 8, s.vaddr ?? s.paddr, true);
    v.setUint32(p + 12, s.paddr, true);
    v.setUint32(p + 16, s.data.length, true);
    v.setUint32(p + 20, s.memsz ?? s.data.length, true);
    v.setUint32(p + 24, 5, true);
    b.set(s.data, offsets[i]!);
  });
  return b;
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** mov ecx, [ebx]; mov edx, eax; mov esi, cs; hlt. */
const PROBE = Uint8Array.from([0x8b, 0x0b, 0x89, 0xc2, 0x8c, 0xce, 0xf4]);

/** A kernel at 1 MiB: header, then PROBE at 0x10000c, then `bss` zero bytes. */
function probeKernel(bss = 0, flags = 0x3): Uint8Array {
  const data = concat(mbHeader(flags), PROBE);
  return elf32([{ paddr: 0x100000, data, memsz: data.length + bss }], 0x10000c);
}

function expectError(image: Uint8Array, message: RegExp, m = machine()): void {
  const before = m.mem.u8.slice(0, 0x200000);
  const eip = m.cpu.eip;
  expect(() => loadMultiboot(m, image)).toThrow(MultibootError);
  expect(() => loadMultiboot(m, image)).toThrow(message);
  // Checked before written: a refused image leaves the machine as it was.
  expect(m.cpu.eip).toBe(eip);
  expect(Buffer.compare(m.mem.u8.subarray(0, 0x200000), before)).toBe(0);
}

describe('examples/hello/hello.elf', () => {
  const image = readFileSync(HELLO);
  it('loads its PT_LOAD segments at their physical addresses and zeroes the bss', () => {
    const m = machine(128 << 20);
    m.mem.u8.fill(0xcc, 0x100000, 0x120000); // so that zeroing shows
    const r = loadMultiboot(m, image);
    expect(r.entry).toBe(0x100010);
    expect(r.infoAddress).toBe(MULTIBOOT_INFO_ADDRESS);
    expect(r.loaded.length).toBe(2);
    expect(r.loaded[0]!.start).toBe(0x100000);
    // The header, the first thing in .multiboot, is where the linker script put it.
    expect(m.mem.read32(0x100000) >>> 0).toBe(0x1badb002);
    const data = r.loaded[1]!;
    expect(data.end - data.start).toBeGreaterThan(16384); // the boot stack is in .bss
    expect(m.mem.u8.subarray(data.end - 16384, data.end).every((x) => x === 0)).toBe(true);
  });

  it('leaves the CPU in the §3.2 state: magic, info, flat segments, PE without PG, IF = VM = 0', () => {
    const m = machine(128 << 20);
    const gdtr = [m.cpu.gdtrBase, m.cpu.gdtrLimit];
    loadMultiboot(m, image);
    const { cpu } = m;
    expect(cpu.regs[0]! >>> 0).toBe(0x2badb002);
    expect(cpu.regs[3]).toBe(MULTIBOOT_INFO_ADDRESS);
    expect(cpu.eip).toBe(0x100010);
    expect(cpu.cr0 & 1).toBe(1);
    expect(cpu.cr0 >>> 31).toBe(0);
    expect(cpu.eflags & ((1 << 9) | (1 << 17))).toBe(0);
    expect(cpu.cpl).toBe(0);
    for (let s = 0; s < 6; s++) {
      expect(cpu.segBase[s]).toBe(0);
      expect(cpu.segLimit[s]! >>> 0).toBe(0xffffffff);
      const attr = cpu.segAttr[s]!;
      expect(attr & (ATTR_P | ATTR_S | ATTR_DB | ATTR_G)).toBe(ATTR_P | ATTR_S | ATTR_DB | ATTR_G);
      if (s === 1) expect(attr & (ATTR_CODE | 0x2)).toBe(ATTR_CODE | 0x2); // execute/read
      else expect(attr & (ATTR_CODE | 0x2)).toBe(0x2); // read/write data
    }
    expect(cpu.codeBits).toBe(32);
    expect(cpu.stackBits).toBe(32);
    expect([cpu.gdtrBase, cpu.gdtrLimit]).toEqual(gdtr); // §3.2: GDTR undefined, so untouched
  });

  it('builds the §3.3 information: memory sizes, memory map, command line, boot loader name', () => {
    const m = machine(128 << 20);
    loadMultiboot(m, image, { cmdline: 'hello.elf verbose=1', bootLoaderName: 'test loader' });
    const mem = m.mem;
    const at = MULTIBOOT_INFO_ADDRESS;
    const cstr = (a: number): string => {
      let s = '';
      for (let p = a; mem.read8(p) !== 0; p++) s += String.fromCharCode(mem.read8(p));
      return s;
    };
    expect(mem.read32(at) >>> 0).toBe((1 << 0) | (1 << 2) | (1 << 6) | (1 << 9));
    expect(mem.read32(at + 4)).toBe(639);
    expect(mem.read32(at + 8)).toBe((128 << 10) - 1024);
    expect(cstr(mem.read32(at + 16))).toBe('hello.elf verbose=1');
    expect(cstr(mem.read32(at + 64))).toBe('test loader');
    const length = mem.read32(at + 44);
    const first = mem.read32(at + 48);
    const entries: [number, number, number][] = [];
    for (let p = first; p < first + length; p += mem.read32(p) + 4) {
      expect(mem.read32(p + 8)).toBe(0); // high halves of base and length
      expect(mem.read32(p + 16)).toBe(0);
      entries.push([mem.read32(p + 4), mem.read32(p + 12), mem.read32(p + 20)]);
    }
    expect(entries).toEqual([
      [0, 0x9fc00, 1],
      [0x9fc00, 0x400, 2],
      [0xf0000, 0x10000, 2],
      [0x100000, (128 << 20) - 0x100000, 1],
    ]);
  });
});

describe('handing over to the kernel', () => {
  it('the kernel sees EAX = magic, EBX -> info, CS = 0x08 and runs from the entry point', () => {
    const m = machine();
    loadMultiboot(m, probeKernel());
    expect(m.cpu.run(100)).toBe('halted');
    expect(m.cpu.regs[2]! >>> 0).toBe(0x2badb002);
    expect(m.cpu.regs[1]! & 1).toBe(1); // info flags: bit 0
    expect(m.cpu.regs[6]).toBe(0x08);
  });

  it('zeroes memsz - filesz bytes after the file data (ELF bss)', () => {
    const m = machine();
    m.mem.u8.fill(0xcc, 0x100000, 0x110000);
    const r = loadMultiboot(m, probeKernel(0x1000));
    expect(r.loaded).toEqual([{ start: 0x100000, end: 0x100000 + 12 + PROBE.length + 0x1000 }]);
    expect(m.mem.u8.subarray(0x100000 + 12 + PROBE.length, r.loaded[0]!.end).every((x) => x === 0)).toBe(true);
    expect(m.mem.read8(r.loaded[0]!.end)).toBe(0xcc);
  });

  it('translates a virtual entry point through its segment (GRUB 2: higher-half kernels)', () => {
    const data = concat(mbHeader(), PROBE);
    const image = elf32([{ paddr: 0x100000, vaddr: 0xc0100000, data }], 0xc010000c);
    const m = machine();
    expect(loadMultiboot(m, image).entry).toBe(0x10000c);
    expect(m.cpu.run(100)).toBe('halted');
  });

  it('honours the a.out kludge (flag bit 16): load_addr, load_end_addr, bss_end_addr, entry_addr', () => {
    // A flat binary: 16 bytes of padding, the header (32 bytes) at file offset 16, then code.
    const flags = 0x10003;
    const headerAddr = 0x200010;
    const code = PROBE;
    const fileLength = 16 + 32 + code.length;
    const header = mbHeader(flags, { address: [headerAddr, 0x200000, 0x200000 + fileLength, 0x200000 + fileLength + 0x100, 0x200030] });
    const image = concat(new Uint8Array(16).fill(0x90), header, code);
    const m = machine();
    m.mem.u8.fill(0xcc, 0x200000, 0x201000);
    const r = loadMultiboot(m, image);
    expect(r).toMatchObject({ entry: 0x200030, loaded: [{ start: 0x200000, end: 0x200000 + fileLength + 0x100 }] });
    expect(m.mem.read32(0x200010) >>> 0).toBe(0x1badb002);
    expect(m.mem.read8(0x200000 + fileLength + 0xff)).toBe(0);
    expect(m.cpu.run(100)).toBe('halted');
    expect(m.cpu.regs[2]! >>> 0).toBe(0x2badb002);
  });

  it('accepts the video-mode request (bit 2) and keeps looking past a magic with a bad checksum', () => {
    expect(loadMultiboot(machine(), probeKernel(0, 0x7)).entry).toBe(0x10000c);
    const decoy = mbHeader(0x3, { checksum: 1 });
    const data = concat(decoy, mbHeader(), PROBE);
    expect(loadMultiboot(machine(), elf32([{ paddr: 0x100000, data }], 0x100018)).entry).toBe(0x100018);
  });
});

describe('refused images, each with its own message', () => {
  it('no header, a header beyond 8 KiB, a bad checksum', () => {
    expectError(Uint8Array.from({ length: 4096 }, (_, i) => i & 0xff), /^no multiboot header in file \(not ELF\)/);
    expectError(new Uint8Array(0), /no multiboot header in empty file/);
    const late = concat(mbHeader(), PROBE);
    expectError(elf32([{ paddr: 0x100000, data: concat(new Uint8Array(8192), late) }], 0x102000), /no multiboot header in ELF image/);
    expectError(elf32([{ paddr: 0x100000, data: concat(mbHeader(0x3, { checksum: 0 }), PROBE) }], 0x10000c),
      /multiboot header at file offset 0x54 has a bad checksum: magic \+ flags \+ checksum = 0x1badb005, must be 0/);
  });

  it('required flags it does not support', () => {
    expectError(probeKernel(0, 0x3 | (1 << 3) | (1 << 12)), /requires features this loader does not provide: flag bits 3, 12/);
  });

  it('ELF64, not i386, not an executable, not ELF without address fields', () => {
    const data = concat(mbHeader(), PROBE);
    const e64 = elf32([{ paddr: 0x100000, data }], 0x10000c, { cls: 2 });
    expectError(e64, /^ELF64 image: a multiboot kernel must be ELF32 i386/);
    const bare64 = new Uint8Array(256);
    bare64.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    expectError(bare64, /^ELF64 image without a multiboot header/);
    expectError(elf32([{ paddr: 0x100000, data }], 0x10000c, { machine: 62 }), /^not an i386 image: ELF machine 62 \(x86-64\)/);
    expectError(elf32([{ paddr: 0x100000, data }], 0x10000c, { type: 1 }), /ELF type 1 \(relocatable object\) cannot be booted/);
    expectError(concat(mbHeader(), PROBE), /^not an ELF image, and the multiboot header does not set flag bit 16/);
  });

  it('truncated files', () => {
    const image = probeKernel();
    expectError(image.subarray(0, image.length - 8), /^file is truncated: segment 0 needs bytes 0x54-0x67, the file has \d+/);
    expectError(image.subarray(0, 0x54 + 8), /^file is truncated: multiboot header at file offset 0x54 is cut off after 8 of 12 bytes/);
    // Header inside the ELF header area of a file too short for it.
    const short = concat(Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0]), mbHeader());
    expectError(short, /^file is truncated: 20 bytes, the ELF header needs 52/);
    const kludge = concat(mbHeader(0x10003, { address: [0x200000, 0x200000, 0x201000, 0, 0x200000] }), PROBE);
    expectError(kludge, /^file is truncated: the address fields load 0x1000 bytes from file offset 0x0/);
  });

  it('segments outside RAM, in the PC hole, over the information area, or overlapping each other', () => {
    const data = concat(mbHeader(), PROBE);
    expectError(elf32([{ paddr: 0xfff000, data, memsz: 0x2000 }], 0xfff00c), /^segment 0 \(0xfff000-0x1001000\) lies outside RAM \(0x1000000 bytes\)/);
    expectError(elf32([{ paddr: 0xb8000, data }], 0xb800c), /overlaps reserved memory 0x9fc00-0x100000/);
    expectError(elf32([{ paddr: 0x8000, data, memsz: 0x1010 }], 0x800c), /^segment 0 \(0x8000-0x9010\) overlaps the multiboot information area 0x9000-0x9/);
    expectError(elf32([{ paddr: 0x100000, data }, { paddr: 0x100010, data: PROBE }], 0x10000c), /^segment 0 .* and segment 1 .* overlap/);
  });

  it('an entry point outside the loaded image', () => {
    const data = concat(mbHeader(), PROBE);
    expectError(elf32([{ paddr: 0x100000, data }], 0x300000), /^entry point 0x300000 is outside the loaded image \(0x100000-0x100013\)/);
  });
});
