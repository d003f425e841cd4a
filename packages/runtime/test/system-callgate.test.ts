// Far CALL/JMP through call gates and far RET to an outer privilege level (SDM vol. 3A
// §5.8.3-5.8.6, figure 5-13 "Stack Switching During an Interprivilege Call"; vol. 2A CALL,
// JMP and RET "Operation").
import { Assembler, far, imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import type { Cpu } from '../src/index';
import { ESP0, Sel, type Desc, catchExceptions, enterRing3, flatCode, gate, load, loadTss, runOn, standardGdt, systemCpu } from './support/descriptors';

const GATE = 0x30; // GDT index 6
const ROUTINE = 0x130000, USER = 0x120000, USER_ESP = 0x00d00000;

/** A call gate with a parameter count (bits 0-4 of the high dword). */
const callGate = (selector: number, offset: number, dpl: number, params = 0, type = 0xc): Desc => {
  const [lo, hi] = gate(selector, offset, type, dpl);
  return [lo, hi | params];
};

/** A CPU at CPL 3 with the TSS loaded, running `build` at USER with ESP = USER_ESP. */
function ring3(gdtExtra: readonly Desc[], build: (a: Assembler) => void): Cpu {
  const cpu = systemCpu(standardGdt(gdtExtra));
  catchExceptions(cpu);
  loadTss(cpu);
  enterRing3(cpu);
  cpu.regs[4] = USER_ESP;
  load(cpu, (a) => {
    build(a);
    const spin = a.here();
    a.jmp(spin);
  }, USER);
  return cpu;
}

describe('far CALL through a call gate to CPL 0 and RET n back to CPL 3 (SDM vol. 3A §5.8.5-5.8.6)', () => {
  it('switches to SS0:ESP0, copies 2 parameters, pushes SS, ESP, params, CS, EIP; RET 8 restores SS:ESP', () => {
    const cpu = ring3([callGate(Sel.CODE0, ROUTINE, 3, 2)], (a) => {
      a.asm('push', imm(0x11111111));
      a.asm('push', imm(0x22222222));
      a.asm('call', far(GATE | 3, 0));
      a.asm('mov', reg('ebx'), reg('eax'));
      a.asm('mov', reg('ebp'), reg('cs'));
    });
    const r = new Assembler(32, ROUTINE);
    r.asm('mov', reg('ecx'), reg('esp'));
    r.asm('mov', reg('edx'), reg('ss'));
    r.asm('mov', reg('esi'), mem({ base: 'esp', disp: 8, size: 4 })); // param[0]
    r.asm('mov', reg('ax'), imm(Sel.DATA0));
    r.asm('mov', reg('ds'), reg('ax'));                              // DPL 0: nulled by the RET
    r.asm('mov', reg('eax'), imm(0x42));
    r.asm('retf', imm(8));
    cpu.mem.load(ROUTINE, r.assemble().bytes);
    cpu.run(200);
    expect(cpu.regs[7]).toBe(-1); // no exception
    // The new stack, word by word from ESP0 down (figure 5-13).
    expect(cpu.mem.read32(ESP0 - 4)).toBe(Sel.DATA3);
    expect(cpu.mem.read32(ESP0 - 8)).toBe(USER_ESP - 8);
    expect(cpu.mem.read32(ESP0 - 12)).toBe(0x11111111);
    expect(cpu.mem.read32(ESP0 - 16)).toBe(0x22222222);
    expect(cpu.mem.read32(ESP0 - 20)).toBe(Sel.CODE3);
    expect(cpu.mem.read32(ESP0 - 24)).toBe(USER + 5 + 5 + 7);
    expect(cpu.regs[1]).toBe(ESP0 - 24);
    expect(cpu.regs[2]).toBe(Sel.DATA0);
    expect(cpu.regs[6]).toBe(0x22222222);
    // Back at CPL 3: the caller's SS:ESP with the parameters released, DS nulled.
    expect(cpu.cpl).toBe(3);
    expect(cpu.regs[3]).toBe(0x42);
    expect(cpu.regs[5]).toBe(Sel.CODE3);
    expect([cpu.sel[1], cpu.sel[2], cpu.regs[4]]).toEqual([Sel.CODE3, Sel.DATA3, USER_ESP]);
    expect(cpu.sel[3]).toBe(0);
    expect(cpu.sel[0]).toBe(Sel.DATA3);
  });

  it('a 16-bit call gate (type 4) pushes words', () => {
    const cpu = ring3([callGate(Sel.CODE0, 0x3000 + 0x100, 3, 1, 0x4)], (a) => {
      a.asm('push', imm(0x1234));
      a.asm('call', far(GATE | 3, 0));
    });
    // Routine at 0x3100 (below 64 KiB: the 16-bit gate's offset): store ESP, halt.
    const r = new Assembler(32, 0x3100);
    r.asm('mov', reg('ecx'), reg('esp'));
    r.asm('hlt');
    cpu.mem.load(0x3100, r.assemble().bytes);
    cpu.run(50);
    expect(cpu.regs[7]).toBe(-1);
    expect(cpu.cpl).toBe(0);
    expect(cpu.regs[1]).toBe(ESP0 - 10);
    expect(cpu.mem.read16(ESP0 - 2)).toBe(Sel.DATA3);
    expect(cpu.mem.read16(ESP0 - 4)).toBe((USER_ESP - 4) & 0xffff);
    expect(cpu.mem.read16(ESP0 - 6)).toBe(0x1234);
    expect(cpu.mem.read16(ESP0 - 8)).toBe(Sel.CODE3);
    expect(cpu.mem.read16(ESP0 - 10)).toBe((USER + 5 + 7) & 0xffff);
  });
});

describe('call-gate checks (SDM CALL "Protected Mode Exceptions")', () => {
  it('#GP(gate selector) for a gate whose DPL < CPL, with CS:EIP and SS:ESP unchanged', () => {
    const cpu = ring3([callGate(Sel.CODE0, ROUTINE, 0, 0)], (a) => {
      a.asm('call', far(GATE | 3, 0));
    });
    cpu.run(50);
    expect([cpu.regs[7], cpu.regs[6]]).toEqual([13, GATE]);
    // The #GP frame on the ring-0 stack: the faulting CALL at CPL 3, old ESP.
    expect(cpu.mem.read32(ESP0 - 20)).toBe(USER);
    expect(cpu.mem.read32(ESP0 - 16)).toBe(Sel.CODE3);
    expect(cpu.mem.read32(ESP0 - 8)).toBe(USER_ESP);
  });

  it('#NP(gate selector) for a gate that is not present', () => {
    const [lo, hi] = callGate(Sel.CODE0, ROUTINE, 3, 0);
    const cpu = ring3([[lo, hi & ~0x8000]], (a) => {
      a.asm('call', far(GATE | 3, 0));
    });
    cpu.run(50);
    expect([cpu.regs[7], cpu.regs[6]]).toEqual([11, GATE]);
  });
});

describe('far JMP through a call gate (SDM JMP "CALL-GATE")', () => {
  it('transfers at the same privilege level without pushing anything', () => {
    const cpu = systemCpu(standardGdt([callGate(Sel.CODE0, ROUTINE, 0)]));
    const r = new Assembler(32, ROUTINE);
    r.asm('mov', reg('eax'), imm(0x77));
    r.asm('hlt');
    cpu.mem.load(ROUTINE, r.assemble().bytes);
    const esp = cpu.regs[4];
    runOn(cpu, (a) => a.asm('jmp', far(GATE, 0x1234)));
    expect(cpu.regs[0]).toBe(0x77);
    expect(cpu.sel[1]).toBe(Sel.CODE0);
    expect(cpu.regs[4]).toBe(esp);
  });

  it('#GP(code selector) when the gate leads to a more privileged non-conforming segment', () => {
    const cpu = ring3([callGate(Sel.CODE0, ROUTINE, 3)], (a) => {
      a.asm('jmp', far(GATE | 3, 0));
    });
    cpu.run(50);
    expect([cpu.regs[7], cpu.regs[6]]).toEqual([13, Sel.CODE0]);
  });

  it('reaches a conforming ring-0 segment at CPL 3, which keeps CPL 3', () => {
    const CONF = 0x38; // GDT index 7
    const cpu = ring3([callGate(CONF, ROUTINE, 3), flatCode(0, true)], (a) => {
      a.asm('jmp', far(GATE | 3, 0));
    });
    const r = new Assembler(32, ROUTINE);
    r.asm('mov', reg('eax'), imm(0x55));
    const spin = r.here();
    r.jmp(spin);
    cpu.mem.load(ROUTINE, r.assemble().bytes);
    cpu.run(50);
    expect(cpu.regs[7]).toBe(-1);
    expect(cpu.regs[0]).toBe(0x55);
    expect(cpu.cpl).toBe(3);
    expect(cpu.sel[1]).toBe(CONF | 3);
  });
});
