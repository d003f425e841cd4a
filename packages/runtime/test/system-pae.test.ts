// PAE paging's PDPTE registers (SDM vol. 3A §4.4.1): loaded from the 32-byte PDPT at CR3[31:5] by
// MOV to CR3 while PAE paging is in use and by MOV to CR0/CR4 that leaves PAE paging in use and
// changes CR0.CD/NW/PG or CR4.PAE/PGE/PSE; a present PDPTE with a reserved bit (2:1, 8:5,
// 63:MAXPHYADDR = 36) makes that MOV #GP(0) with nothing loaded; the walk then uses the registers,
// so a later write to the PDPT in memory has no effect until the next load (§4.4.2).
import { imm, mem, reg, type Assembler } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Vector, loadPdptes, type Cpu } from '../src/index';
import { catchExceptions, runOn, systemCpu } from './support/descriptors';

const PDPT = 0x300000;
const PD0 = 0x301000; // 0-1 GiB: 2 MiB identity pages over the first 16 MiB
const PD1 = 0x302000; // 1-2 GiB: linear 4000_0000h -> 0080_0000h
const DATA = 0x800000;

/** A CPL-0 CPU with the PAE tables in memory (PDPTE1 not present) and paging still off. */
function paeCpu(): Cpu {
  const cpu = systemCpu();
  catchExceptions(cpu);
  cpu.mem.write32(PDPT, PD0 | 1);
  for (let i = 0; i < 8; i++) cpu.mem.write32(PD0 + i * 8, (i << 21) | 0x83); // P RW PS
  cpu.mem.write32(PD1, DATA | 0x83);
  cpu.mem.write32(DATA, 0xfeedf00d);
  return cpu;
}

const enablePae = (a: Assembler, cr3 = PDPT): void => {
  a.asm('mov', reg('eax'), imm(cr3));
  a.asm('mov', reg('cr3'), reg('eax'));
  a.asm('mov', reg('eax'), reg('cr4'));
  a.asm('or', reg('eax'), imm(0x20));
  a.asm('mov', reg('cr4'), reg('eax'));
  a.asm('mov', reg('eax'), reg('cr0'));
  a.asm('or', reg('eax'), imm(0x80000000 | 0));
  a.asm('mov', reg('cr0'), reg('eax'));
};

describe('PAE PDPTE registers (SDM vol. 3A §4.4.1)', () => {
  it('MOV to CR0 that turns PAE paging on loads the four PDPTEs from CR3', () => {
    const cpu = paeCpu();
    cpu.mem.write32(PDPT + 24, 0x12345001); // PDPTE3 present, no reserved bit
    cpu.mem.write32(PDPT + 28, 0x0000000f); // address bits 35:32 are not reserved (MAXPHYADDR 36)
    expect(runOn(cpu, (a) => enablePae(a))).toBe('halted');
    expect(cpu.regs[7], 'no exception').toBe(-1);
    expect(cpu.paging).toBe(true);
    expect([...cpu.pdpte].map((v) => v >>> 0)).toEqual([PD0 | 1, 0, 0, 0, 0, 0, 0x12345001, 0xf]);
  });

  for (const [what, lo, hi] of [['bit 1 (R/W)', PD1 | 3, 0], ['bit 2 (U/S)', PD1 | 5, 0], ['bit 5', PD1 | 0x21, 0], ['bit 8', PD1 | 0x101, 0], ['bit 36 (above MAXPHYADDR)', PD1 | 1, 0x10], ['bit 63 (XD)', PD1 | 1, 0x80000000 | 0]] as const) {
    it(`a present PDPTE with ${what} set: MOV to CR3 is #GP(0), CR3 and the registers unchanged`, () => {
      const cpu = paeCpu();
      runOn(cpu, (a) => enablePae(a));
      const bad = 0x310000;
      cpu.mem.write32(bad, PD0 | 1);
      cpu.mem.write32(bad + 8, lo);
      cpu.mem.write32(bad + 12, hi);
      cpu.regs[7] = -1;
      runOn(cpu, (a) => {
        a.asm('mov', reg('eax'), imm(bad));
        a.asm('mov', reg('cr3'), reg('eax'));
      });
      expect([cpu.regs[7], cpu.regs[6]]).toEqual([Vector.GP, 0]);
      expect(cpu.cr3).toBe(PDPT);
      expect(cpu.pdpte[2]).toBe(0);
    });
  }

  it('reserved bits in a not-present PDPTE are ignored', () => {
    const cpu = paeCpu();
    cpu.mem.write32(PDPT + 8, 0xfffffffe);
    cpu.mem.write32(PDPT + 12, -1);
    runOn(cpu, (a) => enablePae(a));
    expect(cpu.regs[7]).toBe(-1);
    expect(cpu.paging).toBe(true);
  });

  it('MOV to CR0 that would enable PAE paging over a bad PDPT is #GP(0) and paging stays off', () => {
    const cpu = paeCpu();
    cpu.mem.write32(PDPT, PD0 | 0x41); // bit 6 reserved in a PDPTE
    runOn(cpu, (a) => enablePae(a));
    expect([cpu.regs[7], cpu.regs[6]]).toEqual([Vector.GP, 0]);
    expect(cpu.paging).toBe(false);
  });

  it('the walk uses the registers: a PDPT written in memory has no effect until MOV to CR3 reloads it', () => {
    const cpu = paeCpu();
    runOn(cpu, (a) => enablePae(a));
    // PDPTE1 made present in memory only: 4000_0000h still has no translation (#PF, P = 0).
    cpu.mem.write32(PDPT + 8, PD1 | 1);
    runOn(cpu, (a) => a.asm('mov', reg('ebx'), mem({ disp: 0x40000000, size: 4 })));
    expect([cpu.regs[7], cpu.regs[6], cpu.cr2 >>> 0]).toEqual([Vector.PF, 0, 0x40000000]);
    // PDPTE0 cleared in memory: the code (identity, through PDPTE0) still runs, even after INVLPG
    // drops its TLB entry, because the walk starts from the register.
    cpu.mem.write32(PDPT, 0);
    cpu.regs[7] = -1;
    runOn(cpu, (a) => {
      a.asm('invlpg', mem({ disp: 0x100000, size: 1 }));
      a.asm('mov', reg('ecx'), imm(7));
    });
    expect(cpu.regs[7]).toBe(-1);
    expect(cpu.regs[1]).toBe(7);
    // MOV to CR3 with the same value reloads both.
    cpu.mem.write32(PDPT, PD0 | 1);
    cpu.regs[7] = -1;
    runOn(cpu, (a) => {
      a.asm('mov', reg('eax'), reg('cr3'));
      a.asm('mov', reg('cr3'), reg('eax'));
      a.asm('mov', reg('ebx'), mem({ disp: 0x40000000, size: 4 }));
    });
    expect(cpu.regs[7]).toBe(-1);
    expect(cpu.regs[3]! >>> 0).toBe(0xfeedf00d);
  });

  it('MOV to CR4 toggling PGE while PAE paging is on reloads the PDPTEs; toggling TSD does not', () => {
    const cpu = paeCpu();
    runOn(cpu, (a) => enablePae(a));
    cpu.mem.write32(PDPT + 8, PD1 | 1);
    runOn(cpu, (a) => {
      a.asm('mov', reg('eax'), reg('cr4'));
      a.asm('or', reg('eax'), imm(0x4)); // TSD: not a reload trigger
      a.asm('mov', reg('cr4'), reg('eax'));
    });
    expect(cpu.pdpte[2]).toBe(0);
    runOn(cpu, (a) => {
      a.asm('mov', reg('eax'), reg('cr4'));
      a.asm('or', reg('eax'), imm(0x80)); // PGE
      a.asm('mov', reg('cr4'), reg('eax'));
    });
    expect(cpu.pdpte[2]).toBe(PD1 | 1);
  });

  it('loadPdptes() does the same for state set by assignment (loaders, tests)', () => {
    const cpu = paeCpu();
    cpu.cr3 = PDPT;
    cpu.cr4 |= 0x20;
    cpu.cr0 |= 0x80000000;
    loadPdptes(cpu);
    expect(cpu.pdpte[0]).toBe(PD0 | 1);
    cpu.mem.write32(PDPT, 3); // reserved bit 1
    expect(() => loadPdptes(cpu)).toThrow();
  });
});
