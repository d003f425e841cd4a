// A protected-mode interrupt from CPL 3 through a 32-bit interrupt gate (DPL 3) to a CPL-0
// handler, with the stack switch to SS0:ESP0 of the TSS, and IRETD back to CPL 3 (SDM vol. 3A
// §6.12.1 "Exception- and Interrupt-Handler Procedures", figure 6-4; vol. 2A IRET
// "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Eflags } from '../src/index';
import { ESP0, IDT_BASE, Sel, gate, runOn, systemCpu, writeTable } from './support/descriptors';

describe('INT n from CPL 3 through an interrupt gate (SDM vol. 3A §6.12.1)', () => {
  it('switches to the TSS stack, pushes SS, ESP, EFLAGS, CS, EIP, clears IF; IRETD restores CPL 3', () => {
    const cpu = systemCpu();
    const HANDLER = 0x130000, USER = 0x120000, USER_ESP = 0x00d00000;
    writeTable(cpu, IDT_BASE + 0x80 * 8, [gate(Sel.CODE0, HANDLER, 0xe, 3)]);
    cpu.mem.write32(0x3000 + 4, ESP0);
    cpu.mem.write32(0x3000 + 8, Sel.DATA0);
    const h = new Assembler(32, HANDLER);
    h.asm('mov', reg('ecx'), reg('esp'));           // kernel ESP after the pushes
    h.asm('mov', reg('edx'), reg('ss'));
    h.asm('pushfd');
    h.asm('pop', reg('esi'));                       // EFLAGS inside the handler (IF = 0)
    h.asm('mov', reg('edi'), mem({ base: 'esp', disp: 4, size: 4 })); // the pushed CS
    h.asm('mov', reg('eax'), imm(0x42));
    h.asm('iretd');
    cpu.mem.load(HANDLER, h.assemble().bytes);
    const u = new Assembler(32, USER);
    u.asm('int', imm(0x80));
    u.asm('mov', reg('ebx'), reg('eax'));
    u.asm('mov', reg('ebp'), reg('cs'));
    const spin = u.here();
    u.jmp(spin);
    cpu.mem.load(USER, u.assemble().bytes);
    // Ring 0: LTR, then IRETD to ring 3 with IF = 1.
    runOn(cpu, (a) => {
      a.asm('mov', reg('ax'), imm(Sel.TSS));
      a.asm('ltr', reg('ax'));
      a.asm('push', imm(Sel.DATA3));
      a.asm('push', imm(USER_ESP));
      a.asm('push', imm(0x202));
      a.asm('push', imm(Sel.CODE3));
      a.asm('push', imm(USER));
      a.asm('mov', reg('ax'), imm(Sel.DATA3));
      a.asm('mov', reg('ds'), reg('ax'));
      a.asm('mov', reg('es'), reg('ax'));
      a.asm('iretd');
    }, 200);
    // Frame on the ring-0 stack: EIP, CS, EFLAGS, ESP, SS from ESP0 downwards.
    expect(cpu.regs[1]).toBe(ESP0 - 20);
    expect(cpu.mem.read32(ESP0 - 4)).toBe(Sel.DATA3);
    expect(cpu.mem.read32(ESP0 - 8)).toBe(USER_ESP);
    expect(cpu.mem.read32(ESP0 - 12) & Eflags.IF).toBe(Eflags.IF);
    expect(cpu.mem.read32(ESP0 - 16)).toBe(Sel.CODE3);
    expect(cpu.mem.read32(ESP0 - 20)).toBe(USER + 2);
    expect(cpu.regs[2]).toBe(Sel.DATA0);
    expect(cpu.regs[6]! & Eflags.IF).toBe(0);
    expect(cpu.regs[7]).toBe(Sel.CODE3);
    // Back at CPL 3 after IRETD, spinning.
    expect(cpu.cpl).toBe(3);
    expect(cpu.regs[3]).toBe(0x42);
    expect(cpu.regs[5]).toBe(Sel.CODE3);
    expect([cpu.sel[1], cpu.sel[2], cpu.regs[4]]).toEqual([Sel.CODE3, Sel.DATA3, USER_ESP]);
    expect(cpu.eflags & Eflags.IF).toBe(Eflags.IF);
  });
});
