// Builders for descriptor tables in guest memory (SDM vol. 3A §3.4.5 segment descriptors,
// §6.11 IDT gates, §7.2.1 the 32-bit TSS), for tests of protected-mode system behaviour.
import { Assembler, imm, reg } from '@ringshift/decoder';
import type { Cpu } from '../../src/index';
import { flatCpu } from './flat';

export type Desc = readonly [lo: number, hi: number];

/** A segment or system descriptor: `access` is the access byte (P DPL S Type), `flags` G D/B L AVL. */
export function descriptor(base: number, limit: number, access: number, flags = 0): Desc {
  const lo = ((base & 0xffff) << 16) | (limit & 0xffff);
  const hi = ((base >>> 16) & 0xff) | (access << 8) | (limit & 0xf0000) | ((flags & 0xf) << 20) | (base & 0xff000000);
  return [lo | 0, hi | 0];
}

/** Access bytes of the usual descriptors (P = 1). */
export const Access = {
  code: (dpl: number, conforming = false, readable = true) => 0x98 | (dpl << 5) | (conforming ? 4 : 0) | (readable ? 2 : 0),
  data: (dpl: number, writable = true, expandDown = false) => 0x90 | (dpl << 5) | (writable ? 2 : 0) | (expandDown ? 4 : 0),
  system: (type: number, dpl = 0, present = true) => (present ? 0x80 : 0) | (dpl << 5) | type,
} as const;

/** Flat 4 GiB code/data (G = 1, D/B = 1). */
export const flatCode = (dpl: number, conforming = false): Desc => descriptor(0, 0xfffff, Access.code(dpl, conforming), 0xc);
export const flatData = (dpl: number): Desc => descriptor(0, 0xfffff, Access.data(dpl), 0xc);

/** An interrupt/trap/call gate: type 0xE interrupt32, 0xF trap32, 0xC call32. */
export function gate(selector: number, offset: number, type: number, dpl: number): Desc {
  const lo = ((selector & 0xffff) << 16) | (offset & 0xffff);
  const hi = (offset & 0xffff0000) | 0x8000 | (dpl << 13) | (type << 8);
  return [lo | 0, hi | 0];
}

export function writeTable(cpu: Cpu, base: number, entries: readonly Desc[]): void {
  entries.forEach(([lo, hi], i) => {
    cpu.mem.write32(base + i * 8, lo);
    cpu.mem.write32(base + i * 8 + 4, hi);
  });
}

export const GDT_BASE = 0x1000;
export const IDT_BASE = 0x2000;
export const TSS_BASE = 0x3000;

/** Selectors of standardGdt(). */
export const Sel = { CODE0: 0x08, DATA0: 0x10, CODE3: 0x18 | 3, DATA3: 0x20 | 3, TSS: 0x28 } as const;

/** Null, ring-0 code/data, ring-3 code/data, a 32-bit available TSS at TSS_BASE, then `extra`. */
export function standardGdt(extra: readonly Desc[] = []): Desc[] {
  return [[0, 0], flatCode(0), flatData(0), flatCode(3), flatData(3), descriptor(TSS_BASE, 0x67, Access.system(0x9)), ...extra];
}

/** A flat CPL-0 CPU whose GDTR points at `gdt` written at GDT_BASE and IDTR at an empty IDT. */
export function systemCpu(gdt: readonly Desc[] = standardGdt()): Cpu {
  const { cpu } = flatCpu();
  writeTable(cpu, GDT_BASE, gdt);
  cpu.gdtrBase = GDT_BASE;
  cpu.gdtrLimit = gdt.length * 8 - 1;
  cpu.idtrBase = IDT_BASE;
  cpu.idtrLimit = 256 * 8 - 1;
  return cpu;
}

/** Assembles `build` at `origin`, loads it and points EIP at it (the caller steps or runs). */
export function load(cpu: Cpu, build: (a: Assembler) => void, origin = 0x100000): void {
  const a = new Assembler(32, origin);
  build(a);
  cpu.mem.load(origin, a.assemble().bytes);
  cpu.eip = origin;
}

/** Loads the code with HLT appended and runs it to HLT; returns the stop reason. */
export function runOn(cpu: Cpu, build: (a: Assembler) => void, budget = 10_000): string {
  load(cpu, (a) => { build(a); a.asm('hlt'); });
  cpu.halted = false;
  return cpu.run(budget);
}

/** Vectors with an error code (SDM vol. 3A table 6-1). */
const ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17]);
export const CATCH_BASE = 0x50000;

/**
 * Installs ring-0 interrupt gates for vectors 0-31 whose handlers set EDI = vector and ESI =
 * the error code (popped), then HLT: a test runs to HLT and reads which exception occurred.
 */
export function catchExceptions(cpu: Cpu): void {
  const gates: Desc[] = [];
  for (let v = 0; v < 32; v++) {
    const at = CATCH_BASE + v * 16;
    gates.push(gate(Sel.CODE0, at, 0xe, 0));
    const b = new Assembler(32, at);
    b.asm('mov', reg('edi'), imm(v));
    if (ERROR_CODE.has(v)) b.asm('pop', reg('esi'));
    b.asm('hlt');
    cpu.mem.load(at, b.assemble().bytes);
  }
  writeTable(cpu, IDT_BASE, gates);
  cpu.regs[7] = -1;
  cpu.regs[6] = -1;
}

/** Puts the CPU at CPL 3 with the ring-3 selectors of standardGdt() loaded (as after an IRET). */
export function enterRing3(cpu: Cpu): void {
  const code = 0x80 | 0x60 | 0x10 | 0x8 | 0x2 | 0x1 | (1 << 14) | (1 << 15);
  const data = 0x80 | 0x60 | 0x10 | 0x2 | 0x1 | (1 << 14) | (1 << 15);
  for (let s = 0; s < 6; s++) {
    cpu.sel[s] = s === 1 ? Sel.CODE3 : Sel.DATA3;
    cpu.segAttr[s] = s === 1 ? code : data;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = -1;
  }
  cpu.cpl = 3;
}

export const ESP0 = 0x00e00000;

/** Writes SS0:ESP0 into the TSS at TSS_BASE and loads TR with it (busy), as LTR would. */
export function loadTss(cpu: Cpu): void {
  cpu.mem.write32(TSS_BASE + 4, ESP0);
  cpu.mem.write32(TSS_BASE + 8, Sel.DATA0);
  cpu.mem.write16(TSS_BASE + 0x66, 0x68);
  cpu.trSel = Sel.TSS;
  cpu.trBase = TSS_BASE;
  cpu.trLimit = 0x67;
  cpu.trAttr = 0x8b;
}
