// First CPU checks with literal expectations (the host-processor harness in test/host will
// compare instruction semantics at scale).
import { imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Eflags } from '../src/index';
import { runFlat } from './support/flat';

describe('flat 32-bit execution', () => {
  it('moves, adds and loops', () => {
    const { cpu, stop } = runFlat((a) => {
      a.asm('mov', reg('eax'), imm(0));
      a.asm('mov', reg('ecx'), imm(10));
      const top = a.here();
      a.asm('add', reg('eax'), reg('ecx'));
      a.asm('dec', reg('ecx'));
      a.jcc('ne', top);
    });
    expect(stop).toBe('halted');
    expect(cpu.regs[0]).toBe(55);
    expect(cpu.regs[1]).toBe(0);
  });

  it('computes CF, OF, ZF, SF, AF, PF of ADD and SUB as the SDM defines them', () => {
    const { cpu } = runFlat((a) => {
      a.asm('mov', reg('eax'), imm(0x7fffffff));
      a.asm('add', reg('eax'), imm(1));
    });
    const f = cpu.eflags;
    expect(cpu.regs[0]! >>> 0).toBe(0x80000000);
    expect(f & Eflags.OF).toBe(Eflags.OF);
    expect(f & Eflags.SF).toBe(Eflags.SF);
    expect(f & Eflags.CF).toBe(0);
    expect(f & Eflags.ZF).toBe(0);
    expect(f & Eflags.AF).toBe(Eflags.AF); // 0xF + 1 carries out of bit 3
    expect(f & Eflags.PF).toBe(Eflags.PF); // low byte 0x00: even parity
    const sub = runFlat((a) => {
      a.asm('mov', reg('al'), imm(0));
      a.asm('sub', reg('al'), imm(1));
    }).cpu;
    expect(sub.regs[0]! & 0xff).toBe(0xff);
    expect(sub.eflags & (Eflags.CF | Eflags.SF | Eflags.AF)).toBe(Eflags.CF | Eflags.SF | Eflags.AF);
  });

  it('INC keeps CF; ADC uses it', () => {
    const { cpu } = runFlat((a) => {
      a.asm('stc');
      a.asm('mov', reg('ebx'), imm(-1));
      a.asm('inc', reg('ebx'));
      a.asm('mov', reg('edx'), imm(5));
      a.asm('adc', reg('edx'), imm(0));
    });
    expect(cpu.regs[3]).toBe(0);
    expect(cpu.regs[2]).toBe(6);
  });

  it('calls, returns and uses the stack', () => {
    const { cpu } = runFlat((a) => {
      const f = a.label('f');
      const end = a.label('end');
      a.asm('mov', reg('eax'), imm(1));
      a.call(f);
      a.jmp(end);
      a.bind(f);
      a.asm('push', reg('eax'));
      a.asm('pop', reg('ebx'));
      a.asm('add', reg('ebx'), imm(41));
      a.asm('ret');
      a.bind(end);
    });
    expect(cpu.regs[3]).toBe(42);
    expect(cpu.regs[4]).toBe(0x00f00000);
  });

  it('reads and writes memory through the data segment', () => {
    const { cpu } = runFlat((a) => {
      a.asm('mov', reg('ebx'), imm(0x200000));
      a.asm('mov', mem({ base: 'ebx', disp: 4, size: 4 }), imm(0x12345678));
      a.asm('mov', reg('al'), mem({ base: 'ebx', disp: 5, size: 1 }));
      a.asm('movzx', reg('ecx'), mem({ base: 'ebx', disp: 6, size: 2 }));
    });
    expect(cpu.mem.read32(0x200004) >>> 0).toBe(0x12345678);
    expect(cpu.regs[0]! & 0xff).toBe(0x56);
    expect(cpu.regs[1]).toBe(0x1234);
  });

  it('writes to I/O ports', () => {
    const { ports } = runFlat((a) => {
      a.asm('mov', reg('dx'), imm(0x3f8));
      a.asm('mov', reg('al'), imm(0x41));
      a.asm('out', reg('dx'), reg('al'));
    });
    expect(ports.writes).toEqual([[0x3f8, 1, 0x41]]);
  });
});
