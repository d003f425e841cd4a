// The Machine running tiny flat protected-mode programs: COM1 output and isa-debug-exit, the
// report on HLT with IF = 0 and on a spent budget, a PIT interrupt through the 8259A to an IDT
// handler (with HLT idling in virtual time), an unsupported feature, and reproducibility.
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S, Machine, type MachineOptions, type RunLimits } from '../src/index';
import { GDT_BASE, IDT_BASE, Sel, gate, standardGdt, writeTable } from './support/descriptors';

const ORIGIN = 0x100000;

/** A machine in flat 32-bit protected mode (as test/support/flat.ts sets up a bare CPU), with a GDT and an empty IDT. */
function flatMachine(opts: MachineOptions = {}): Machine {
  const m = new Machine({ memoryBytes: 16 << 20, ...opts });
  const cpu = m.cpu;
  cpu.cr0 = 0x11;
  for (let s = 0; s < 6; s++) {
    cpu.sel[s] = s === 1 ? Sel.CODE0 : Sel.DATA0;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = -1;
    cpu.segAttr[s] = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x3 | (s === 1 ? ATTR_CODE | 0x8 : 0);
  }
  cpu.segAttr[1] = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | ATTR_CODE | 0x3;
  cpu.regs[4] = 0x00f00000;
  const gdt = standardGdt();
  writeTable(cpu, GDT_BASE, gdt);
  cpu.gdtrBase = GDT_BASE;
  cpu.gdtrLimit = gdt.length * 8 - 1;
  cpu.idtrBase = IDT_BASE;
  cpu.idtrLimit = 256 * 8 - 1;
  return m;
}

function load(m: Machine, build: (a: Assembler) => void, at = ORIGIN): void {
  const a = new Assembler(32, at);
  build(a);
  m.cpu.mem.load(at, a.assemble().bytes);
  if (at === ORIGIN) m.cpu.eip = ORIGIN;
}

/** OUT DX/imm8 of AL. */
const outb = (a: Assembler, port: number, value: number): void => {
  a.asm('mov', reg('al'), imm(value));
  a.asm('out', imm(port), reg('al'));
};

function printAndExit(a: Assembler, text: string, code: number): void {
  a.asm('mov', reg('dx'), imm(0x3f8));
  for (const ch of text) {
    a.asm('mov', reg('al'), imm(ch.charCodeAt(0)));
    a.asm('out', reg('dx'), reg('al'));
  }
  a.asm('mov', reg('eax'), imm(code));
  a.asm('out', imm(0xf4), reg('eax'));
  a.asm('hlt'); // not reached
}

describe('Machine.run', () => {
  it('prints to COM1 and exits through isa-debug-exit with (v << 1) | 1', () => {
    const out: number[] = [];
    const m = flatMachine({ serialOut: (b) => out.push(b) });
    load(m, (a) => printAndExit(a, 'hello\n', 0x10));
    const r = m.run({ maxInstructions: 1000 });
    expect(String.fromCharCode(...out)).toBe('hello\n');
    expect(r.reason).toBe('exit');
    expect(r.exitStatus).toBe(0x21);
    expect(r.instructions).toBe(1 + 12 + 2);
    expect(r.registers.eax).toBe(0x10);
  });

  it('echoes COM1 input after waiting on LSR.DR', () => {
    const out: number[] = [];
    const m = flatMachine({ serialOut: (b) => out.push(b), serialIn: 'ok' });
    load(m, (a) => {
      const next = a.here();
      a.asm('mov', reg('dx'), imm(0x3fd));
      const wait = a.here();
      a.asm('in', reg('al'), reg('dx'));
      a.asm('test', reg('al'), imm(1));
      a.jcc('z', wait);
      a.asm('mov', reg('dx'), imm(0x3f8));
      a.asm('in', reg('al'), reg('dx'));
      a.asm('out', reg('dx'), reg('al'));
      a.asm('inc', reg('ecx'));
      a.asm('cmp', reg('ecx'), imm(2));
      a.jcc('b', next);
      a.asm('out', imm(0xf4), reg('al'));
    });
    const r = m.run({ maxInstructions: 10_000 });
    expect(String.fromCharCode(...out)).toBe('ok');
    expect(r).toMatchObject({ reason: 'exit', exitStatus: (0x6b << 1) | 1 });
  });

  it('reports halt on HLT with IF = 0, with the registers', () => {
    const m = flatMachine();
    load(m, (a) => {
      a.asm('mov', reg('ebx'), imm(0x1234));
      a.asm('cli');
      a.asm('hlt');
    });
    const r = m.run({ maxInstructions: 100 });
    expect(r.reason).toBe('halt');
    expect(r.detail).toMatch(/IF = 0/);
    expect(r.instructions).toBe(3);
    expect(r.registers).toMatchObject({ ebx: 0x1234, eip: ORIGIN + 5 + 1 + 1, cs: Sel.CODE0, ss: Sel.DATA0, cr0: 0x11 });
  });

  it('reports budget when the instruction limit is reached, and the last instructions when asked', () => {
    const m = flatMachine();
    load(m, (a) => {
      const top = a.here();
      a.asm('inc', reg('eax'));
      a.jmp(top);
    });
    const r = m.run({ maxInstructions: 25_001, traceLast: 3 });
    expect(r.reason).toBe('budget');
    expect(r.instructions).toBe(25_001);
    expect(r.registers.eax).toBe(12_501);
    expect(r.lastInstructions?.map((e) => e.address)).toEqual([ORIGIN, ORIGIN + 1, ORIGIN]);
    expect(r.lastInstructions?.[0]?.text).toMatch(/^inc eax$/);
    expect(r.lastInstructions?.[1]?.text).toMatch(/^jmp /);
  });

  it('reports triple-fault with the CPU text when an exception has no handler', () => {
    const m = flatMachine();
    m.cpu.idtrLimit = 0; // empty IDT: #UD -> #GP -> #DF -> shutdown
    load(m, (a) => { a.asm('ud2'); });
    const r = m.run({ maxInstructions: 100 });
    expect(r.reason).toBe('triple-fault');
    expect(r.detail).toMatch(/triple fault/);
  });

  it('reports unsupported (not an exception) for a PIT mode that is not implemented', () => {
    const m = flatMachine();
    load(m, (a) => { outb(a, 0x43, 0x32); });
    const r = m.run({ maxInstructions: 100 });
    expect(r.reason).toBe('unsupported');
    expect(r.detail).toMatch(/mode 1/);
  });
});

/**
 * Remaps the PICs to 0x20/0x28, unmasks IRQ 0 only, programs PIT counter 0 in `mode` with
 * `count`, and idles in HLT until the IRQ 0 handler (vector 0x20: count ticks at [0x5000], EOI,
 * IRETD) has run `ticks` times; then reads the TSC into EDX:EAX and exits with the tick count.
 */
function timerProgram(m: Machine, mode: 2 | 3, count: number, ticks: number): void {
  const HANDLER = 0x110000;
  writeTable(m.cpu, IDT_BASE + 0x20 * 8, [gate(Sel.CODE0, HANDLER, 0xe, 0)]);
  load(m, (h) => {
    h.asm('push', reg('eax'));
    h.asm('inc', mem({ disp: 0x5000, size: 4 }));
    outb(h, 0x20, 0x20); // non-specific EOI
    h.asm('pop', reg('eax'));
    h.asm('iretd');
  }, HANDLER);
  load(m, (a) => {
    for (const [p, v] of [[0x20, 0x11], [0x21, 0x20], [0x21, 0x04], [0x21, 0x01], [0xa0, 0x11], [0xa1, 0x28], [0xa1, 0x02], [0xa1, 0x01], [0x21, 0xfe], [0xa1, 0xff]] as const) outb(a, p, v);
    outb(a, 0x43, 0x30 | (mode << 1));
    outb(a, 0x40, count & 0xff);
    outb(a, 0x40, count >> 8);
    a.asm('sti');
    const idle = a.here();
    a.asm('hlt');
    a.asm('cmp', mem({ disp: 0x5000, size: 4 }), imm(ticks));
    a.jcc('b', idle);
    a.asm('cli');
    a.asm('rdtsc');
    a.asm('mov', reg('ebx'), reg('eax'));
    a.asm('mov', reg('eax'), mem({ disp: 0x5000, size: 4 }));
    a.asm('out', imm(0xf4), reg('eax'));
  });
}

describe('timer interrupts', () => {
  it('delivers PIT IRQ 0 through the 8259A to a 32-bit interrupt gate; HLT idles in virtual time', () => {
    const m = flatMachine();
    timerProgram(m, 2, 1193, 5); // ~1 ms period
    const r = m.run({ maxInstructions: 1_000_000, timeoutMs: 10_000 });
    expect(r.reason).toBe('exit');
    expect(r.exitStatus).toBe((5 << 1) | 1);
    // Five periods of 1193 ticks at 1.193182 MHz: just under 5 ms of guest time, far more than
    // the few hundred instructions retired: the HLTs skipped it.
    expect(r.instructions).toBeLessThan(500);
    const tsc = r.registers.ebx + r.registers.edx * 2 ** 32;
    expect(tsc).toBeGreaterThan(Math.floor((5 * 1193 * 1e9) / 1_193_182));
    expect(tsc).toBeLessThan(Math.floor((5 * 1193 * 1e9) / 1_193_182) + 1000);
    expect(m.pic.state(0).isr).toBe(0);
  });

  it('mode 3 at the BIOS default (count 0 = 65536, 18.2 Hz)', () => {
    const m = flatMachine();
    timerProgram(m, 3, 0, 2);
    const r = m.run({ maxInstructions: 100_000 });
    expect(r).toMatchObject({ reason: 'exit', exitStatus: 5 });
    expect(m.clock.nowNs()).toBeGreaterThan(2 * 54_925_000);
  });

  it('HLT with IF = 1 and IRQ 0 masked is a final halt', () => {
    const m = flatMachine();
    load(m, (a) => {
      outb(a, 0x21, 0xff);
      a.asm('sti');
      a.asm('hlt');
    });
    const r = m.run({ maxInstructions: 1000 });
    expect(r.reason).toBe('halt');
    expect(r.detail).toMatch(/no interrupt source/);
  });

  it('is reproducible: two runs give identical reports, TSC values and output', () => {
    const once = (limits: RunLimits) => {
      const out: number[] = [];
      const m = flatMachine({ serialOut: (b) => out.push(b) });
      timerProgram(m, 2, 597, 7);
      return { report: m.run(limits), out, now: m.clock.nowNs() };
    };
    const a = once({ maxInstructions: 1_000_000 });
    const b = once({ maxInstructions: 1_000_000 });
    expect(a.report.reason).toBe('exit');
    expect(b).toEqual(a);
    const t = once({ maxInstructions: 1_000_000, traceLast: 16 });
    expect(t.report.registers).toEqual(a.report.registers);
    expect(t.report.instructions).toBe(a.report.instructions);
    expect(t.report.lastInstructions?.some((e) => e.text.startsWith('<external interrupt, vector 0x20>'))).toBe(true);
  });
});
