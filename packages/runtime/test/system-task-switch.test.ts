// Task switches with 32-bit TSSs (cpu/task-switch.ts; SDM vol. 3A §8.3): an exception through an
// IDT task gate (error code on the new task's stack, LDTR and CR3 loaded from the new TSS, NT and
// back link), and a fault after the commit point taken in the new task. The JMP/CALL/IRET paths
// and the VT-x exit are in vmm-hvm-exits.test.ts; QEMU agreed on them (docs/exits.md).
import { Assembler, far, imm, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Access, CATCH_BASE, Sel, TSS_BASE, catchExceptions, descriptor, load, standardGdt, systemCpu, writeTable, IDT_BASE, gate } from './support/descriptors';

const TSS_B = 0x3100, LDT = 0x7000, PD_A = 0x8000, PD_B = 0x9000, TASK_B = 0x200000, STACK_B = 0x80000;
const SEL_B = 0x30, SEL_LDT = 0x38, SEL_XONLY = 0x40;

function setUp(dsB: number): ReturnType<typeof systemCpu> {
  const cpu = systemCpu(standardGdt([
    descriptor(TSS_B, 0x67, Access.system(0x9)),
    descriptor(LDT, 0x17, Access.system(0x2)),
    descriptor(0, 0xfffff, Access.code(0, false, false), 0xc), // execute-only code: not loadable into DS
  ]));
  catchExceptions(cpu);
  // Vector 13 (#GP) goes through a task gate to TSS B.
  writeTable(cpu, IDT_BASE + 13 * 8, [[SEL_B << 16, 0x8500]]);
  // Paging with 4 MiB identity pages; task B has its own page directory (same mappings).
  for (const pd of [PD_A, PD_B]) for (let i = 0; i < 4; i++) cpu.mem.write32(pd + 4 * i, (i << 22) | 0x83);
  cpu.cr4 = 0x10; cpu.cr3 = PD_A; cpu.cr0 = 0x80000011;
  const m = cpu.mem;
  m.write32(TSS_B + 0x1c, PD_B); m.write32(TSS_B + 0x20, TASK_B); m.write32(TSS_B + 0x24, 2); m.write32(TSS_B + 0x38, STACK_B);
  [0x10, 0x08, 0x10, dsB, 0x10, 0x10].forEach((s, i) => m.write32(TSS_B + 0x48 + 4 * i, s));
  m.write32(TSS_B + 0x60, SEL_LDT);
  const b = new Assembler(32, TASK_B);
  b.asm('pop', reg('ebx')); b.asm('hlt');
  m.load(TASK_B, b.assemble().bytes);
  return cpu;
}

/** LTR the standard TSS, then MOV DS with a selector past the GDT's limit: #GP(0x68). */
function faultingCode(a: Assembler): void {
  a.asm('mov', reg('eax'), imm(Sel.TSS)); a.asm('ltr', reg('ax'));
  a.asm('mov', reg('ecx'), imm(0x68)); a.asm('mov', reg('ds'), reg('cx'));
  a.asm('hlt');
}

describe('task switch through an IDT task gate', () => {
  it('#GP goes to task B: error code on B\'s stack, CR3 and LDTR from B\'s TSS, NT and back link; A saved at the faulting instruction', () => {
    const cpu = setUp(0x10);
    load(cpu, faultingCode);
    expect(cpu.run(1000)).toBe('halted');
    expect(cpu.trSel).toBe(SEL_B);
    expect(cpu.regs[3]).toBe(0x68); // popped error code
    expect(cpu.regs[4]).toBe(STACK_B);
    expect(cpu.cr3).toBe(PD_B);
    expect(cpu.ldtrSel).toBe(SEL_LDT);
    expect(cpu.ldtrBase).toBe(LDT);
    expect(cpu.eflags & (1 << 14)).not.toBe(0);
    expect(cpu.mem.read16(TSS_B)).toBe(Sel.TSS);
    expect(cpu.mem.read32(TSS_BASE + 0x20)).toBe(0x100000 + 5 + 4 + 5); // mov eax (5), ltr ax (4, o16), mov ecx (5): the mov ds
    expect(cpu.mem.read32(TSS_BASE + 0x2c)).toBe(0x68); // A's ECX saved
    expect((cpu.mem.read32(0x1000 + SEL_B + 4) >>> 8) & 0xf).toBe(0xb); // B busy; A stays busy (nested)
    expect((cpu.mem.read32(0x1000 + Sel.TSS + 4) >>> 8) & 0xf).toBe(0xb);
  });

  it('a bad DS in the new TSS is #TS(DS) after the commit: delivered in task B, at B\'s EIP', () => {
    const cpu = setUp(SEL_XONLY);
    load(cpu, (a) => { a.asm('mov', reg('eax'), imm(Sel.TSS)); a.asm('ltr', reg('ax')); a.asm('jmp', far(SEL_B, 0)); });
    expect(cpu.run(1000)).toBe('halted');
    expect(cpu.regs[7]).toBe(10); // catchExceptions: EDI = vector, ESI = error code
    expect(cpu.regs[6]).toBe(SEL_XONLY);
    expect(cpu.trSel).toBe(SEL_B);
    expect(cpu.cr3).toBe(PD_B);
    // The #TS frame on B's stack: EIP = B's first instruction, CS = B's.
    expect(cpu.mem.read32(STACK_B - 12)).toBe(TASK_B);
    expect(cpu.mem.read32(STACK_B - 8)).toBe(0x08);
  });

  it('the same #TS while the switch delivers #GP through a task gate is a double fault (SDM vol. 3A table 6-5)', () => {
    const cpu = setUp(SEL_XONLY);
    load(cpu, faultingCode);
    expect(cpu.run(1000)).toBe('halted');
    expect(cpu.regs[7]).toBe(8);
    expect(cpu.trSel).toBe(SEL_B);
  });

  it('a task gate naming a busy TSS is #GP, here while delivering #GP: a double fault, and nothing switches', () => {
    const cpu = setUp(0x10);
    writeTable(cpu, IDT_BASE + 13 * 8, [[Sel.TSS << 16, 0x8500]]); // the current (busy) task
    writeTable(cpu, IDT_BASE + 8 * 8, [gate(Sel.CODE0, CATCH_BASE + 8 * 16, 0xe, 0)]);
    load(cpu, faultingCode);
    expect(cpu.run(1000)).toBe('halted');
    expect(cpu.regs[7]).toBe(8); // #GP while delivering #GP: double fault
    expect(cpu.trSel).toBe(Sel.TSS);
  });
});
