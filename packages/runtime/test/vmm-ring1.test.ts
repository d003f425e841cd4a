// The ring-1 monitor (vmm/ring1/monitor.ts) on small guests: the guest's view of its privileged
// state, and what it must not reach (the monitor's memory and real descriptor tables).
import { Assembler, far, imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { MONITOR_LINEAR, Machine, Ring1Monitor, SEGMENT_CLIP, ring1MemoryBytes, shadowDescriptor } from '../src/index';
import type { GuestReport, PatchMap, RewrittenImage } from '../src/index';
import { flatCode, flatData } from './support/descriptors';
import { CODE, GDT, IDT, PROLOGUE_JMP_END, PSEUDO, setUpFlatGuest } from './support/flat-boot';

const GUEST_RAM = 16 << 20;
const DATA = 0x120000;

/**
 * Boots `body` as a multiboot loader would leave it (flat CPL 0, paging off), under the ring-1
 * monitor (deprivileged) or natively. The prologue loads a GDT (0x08 code, 0x10 data, DPL 0) and
 * an IDT whose vector v handler exits with status (v << 1) | 1; the body exits with 0x42 unless
 * it stops earlier.
 */
function boot(body: (a: Assembler) => void, monitor = true): { report: GuestReport; machine: Machine; mon: Ring1Monitor | null } {
  const machine = new Machine({ memoryBytes: monitor ? ring1MemoryBytes(GUEST_RAM, null) : GUEST_RAM });
  setUp(machine, body);
  let mon: Ring1Monitor | null = null;
  if (monitor) {
    mon = new Ring1Monitor(machine, { guestRamBytes: GUEST_RAM, rewrite: null });
    mon.start();
  }
  const report = machine.run({ maxInstructions: 100_000 });
  if (mon !== null && report.reason === 'unsupported' && machine.cpu.lastExit?.detail) report.detail = machine.cpu.lastExit.detail;
  return { report, machine, mon };
}

/** The guest's memory and boot state (see boot()). */
function setUp(machine: Machine, body: (a: Assembler) => void): void {
  setUpFlatGuest(machine, body);
}

const status = (v: number): number => (v << 1) | 1;

describe('ring-1 monitor: the guest cannot reach the monitor', () => {
  it('the far JMP in the prologue lands (check of the test guest)', () => {
    const a = new Assembler(32, CODE);
    a.asm('lgdt', mem({ disp: PSEUDO, size: 6 }));
    a.asm('lidt', mem({ disp: PSEUDO + 8, size: 6 }));
    a.asm('jmp', far(0x08, CODE + PROLOGUE_JMP_END));
    expect(a.assemble().bytes.length).toBe(PROLOGUE_JMP_END);
  });

  it('runs the prologue natively and in ring 1 alike', () => {
    expect(boot(() => {}, false).report.exitStatus).toBe(status(0x42));
    const { report, mon } = boot(() => {});
    expect(report.exitStatus).toBe(status(0x42));
    expect(mon!.vcpl).toBe(0);
    expect(mon!.machine.cpu.cpl).toBe(1);
  });

  it('a read of the shadow GDT through the guest data segment is #GP (limits are clipped)', () => {
    const body = (a: Assembler): void => { a.asm('mov', reg('eax'), mem({ disp: MONITOR_LINEAR | 0, size: 4 })); };
    expect(boot(body).report.exitStatus).toBe(status(13));
  });

  it('a write to the monitor area is #GP too, and the shadow GDT is unchanged', () => {
    const { report, machine } = boot((a) => { a.asm('mov', mem({ disp: (MONITOR_LINEAR + 8) | 0, size: 4 }), imm(0)); });
    expect(report.exitStatus).toBe(status(13));
    expect(machine.mem.read32(GUEST_RAM + 8)).not.toBe(0);
  });

  it('physical memory above the guest RAM (paging off) is refused, not read', () => {
    const { report } = boot((a) => { a.asm('mov', reg('eax'), mem({ disp: GUEST_RAM + 0x10, size: 4 })); });
    expect(report.reason).toBe('unsupported');
    expect(report.detail).toMatch(/outside its 16 MiB of RAM/);
  });

  it('a page table entry pointing at monitor memory is refused', () => {
    const PD = 0x200000, PT = 0x201000;
    const { report } = boot((a) => {
      // PDE 0 -> PT; PTEs 0..0x2FF identity (the first 3 MiB: tables, stack, code), PTE 0x300 -> monitor memory.
      a.asm('mov', mem({ disp: PD, size: 4 }), imm(PT | 3));
      a.asm('mov', reg('ecx'), imm(0));
      const loop = a.here();
      a.asm('mov', reg('eax'), reg('ecx'));
      a.asm('shl', reg('eax'), imm(12));
      a.asm('or', reg('eax'), imm(3));
      a.asm('mov', mem({ index: 'ecx', scale: 4, disp: PT, size: 4 }), reg('eax'));
      a.asm('inc', reg('ecx'));
      a.asm('cmp', reg('ecx'), imm(0x300));
      a.jcc('ne', loop);
      a.asm('mov', mem({ disp: PT + 0x300 * 4, size: 4 }), imm(GUEST_RAM | 3));
      a.asm('mov', reg('eax'), imm(PD));
      a.asm('mov', reg('cr3'), reg('eax'));
      a.asm('mov', reg('eax'), reg('cr0'));
      a.asm('or', reg('eax'), imm(0x80000000 | 0));
      a.asm('mov', reg('cr0'), reg('eax'));
      a.asm('mov', reg('eax'), mem({ disp: 0x300000, size: 4 }));
    });
    expect(report.reason).toBe('unsupported');
    expect(report.detail).toMatch(/page tables map linear 0x300000 to physical 0x1000000/);
  });
});

describe('ring-1 monitor: the guest\'s view (deprivileged backend)', () => {
  it('privileged instructions see virtual state: MOV CR0, LGDT/LIDT, CLI/STI, HLT', () => {
    const { report, mon } = boot((a) => {
      a.asm('mov', reg('eax'), reg('cr0'));
      a.asm('mov', mem({ disp: DATA, size: 4 }), reg('eax'));
      a.asm('sti');
      a.asm('cli');
    });
    expect(report.exitStatus).toBe(status(0x42));
    expect(mon!.machine.mem.read32(DATA)).toBe(0x11); // not the real CR0 with PG (shadow paging)
    expect(mon!.v.gdtrBase).toBe(GDT);
    expect(mon!.v.idtrBase).toBe(IDT);
    expect(mon!.vif).toBe(false);
    const s = mon!.accounting.stats();
    expect(s.byReason.CONTROL_REGISTER_ACCESS).toBe(1);
    expect(s.byReason.GDTR_IDTR_ACCESS).toBe(2);
  });

  it('SGDT does not trap at CPL 1 and reveals the shadow GDT (the problem the rewriter solves)', () => {
    const { report, machine } = boot((a) => { a.asm('sgdt', mem({ disp: DATA, size: 6 })); });
    expect(report.exitStatus).toBe(status(0x42));
    expect(machine.mem.read32(DATA + 2) >>> 0).toBe(MONITOR_LINEAR);
    const native = boot((a) => { a.asm('sgdt', mem({ disp: DATA, size: 6 })); }, false);
    expect(native.machine.mem.read32(DATA + 2)).toBe(GDT);
  });

  it('an exception is delivered through the guest\'s IDT in ring 1, with its error code', () => {
    const { report } = boot((a) => { a.asm('mov', reg('eax'), imm(0x1234)); a.asm('mov', reg('fs'), reg('ax')); });
    expect(report.exitStatus).toBe(status(13));
  });
});

describe('shadow descriptors', () => {
  it('DPL 0 code and data become DPL 1 with the limit below the monitor', () => {
    const [lo, hi] = shadowDescriptor(...(flatCode(0) as [number, number]));
    expect((hi >>> 13) & 3).toBe(1);
    const limit = ((lo & 0xffff) | (hi & 0xf0000)) * 4096 + 4095;
    expect(limit).toBe(SEGMENT_CLIP);
    const [lo3, hi3] = shadowDescriptor(...(flatData(3) as [number, number]));
    expect((hi3 >>> 13) & 3).toBe(3);
    expect(((lo3 & 0xffff) | (hi3 & 0xf0000)) * 4096 + 4095).toBe(SEGMENT_CLIP);
  });

  it('system descriptors and small segments are copied unchanged', () => {
    const tss: [number, number] = [0x30000067, 0x00008900];
    expect(shadowDescriptor(...tss)).toEqual(tss);
    const small: [number, number] = [0x0000ffff, 0x00409300]; // base 0, limit 64 KiB, DPL 0 data
    expect(shadowDescriptor(...small)).toEqual([0x0000ffff, 0x00409300 | (1 << 13)]);
  });
});

describe('ring-1 monitor with a stub segment (rewrite backend): the hole', () => {
  /** A rewritten image with no sites: the shared page and one page of stub code in the hole. */
  function fakeRewrite(): RewrittenImage {
    const stubBytes = new Uint8Array(0x2000);
    stubBytes[4] = 1; // shared page version
    stubBytes.fill(0xcc, 0x1000);
    const map: PatchMap = {
      version: 2, flags: 3, stubVaddr: 0xffc00000, stubPaddr: 0x200000, stubSize: 0x2000, sharedPage: 0xffc00000, select: 'sensitive',
      originalSha256: '', ranges: [{ vaddr: 0xffc00000, paddr: 0x200000, fileOffset: 0, size: 0x2000, flags: 1 }], originalEntry: 0, sites: [],
    };
    const seg = { index: 2, entryOffset: 0, type: 1, offset: 0, vaddr: 0xffc00000, paddr: 0x200000, filesz: 0x2000, memsz: 0x2000, flags: 7 };
    return { map, stubSegments: [seg], stubBytes, guestImage: new Uint8Array(0), byEscape: new Map(), byInt3: new Map(), byAddr: new Map(), entries: new Map() };
  }

  function bootRewrite(body: (a: Assembler) => void): { report: GuestReport; mon: Ring1Monitor } {
    const rw = fakeRewrite();
    const machine = new Machine({ memoryBytes: ring1MemoryBytes(GUEST_RAM, rw) });
    setUp(machine, body);
    const mon = new Ring1Monitor(machine, { guestRamBytes: GUEST_RAM, rewrite: rw });
    mon.start();
    const report = machine.run({ maxInstructions: 100_000 });
    if (report.reason === 'unsupported' && machine.cpu.lastExit?.detail) report.detail = machine.cpu.lastExit.detail;
    return { report, mon };
  }

  it('the guest kernel reads and writes the shared page: the virtual IF is its byte 0', () => {
    const { report, mon } = bootRewrite((a) => {
      a.asm('mov', reg('eax'), mem({ disp: 0xffc00004 | 0, size: 4 }));
      a.asm('mov', mem({ disp: DATA, size: 4 }), reg('eax'));
      a.asm('mov', mem({ disp: 0xffc00000 | 0, size: 1 }), imm(1)); // what an inline STI does
    });
    expect(report.exitStatus).toBe(status(0x42));
    expect(mon.machine.mem.read32(DATA)).toBe(1);
    expect(mon.vif).toBe(true);
  });

  it('a guest write to stub code is refused', () => {
    const { report } = bootRewrite((a) => { a.asm('mov', mem({ disp: 0xffc01000 | 0, size: 1 }), imm(0x90)); });
    expect(report.reason).toBe('unsupported');
    expect(report.detail).toMatch(/wrote to the stub code at 0xffc01000/);
  });

  it('the unmapped rest of the hole is the guest\'s (paging off: beyond its RAM, refused)', () => {
    const { report } = bootRewrite((a) => { a.asm('mov', reg('eax'), mem({ disp: 0xffc02000 | 0, size: 4 })); });
    expect(report.reason).toBe('unsupported');
    expect(report.detail).toMatch(/outside its 16 MiB of RAM/);
  });
});
