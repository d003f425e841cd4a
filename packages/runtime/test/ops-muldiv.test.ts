// MUL, IMUL, DIV, IDIV against the SDM vol. 2A/2B pages of the same names ("Operation",
// "Flags Affected", exceptions "#DE If the source operand (divisor) is 0 / If the quotient is
// too large for the designated register").
import { imm, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Eflags, Fault, Vector } from '../src/index';
import { exec, execOne, flags, u32 } from './support/exec';

const { CF, OF } = Eflags;

describe('MUL (SDM MUL)', () => {
  it('EDX:EAX = EAX * r/m32; CF = OF = (EDX != 0)', () => {
    let { cpu } = exec({ regs: { eax: -1, ecx: 2 } }, (a) => a.asm('mul', reg('ecx')));
    expect(u32(cpu.regs[0]!)).toBe(0xfffffffe);
    expect(cpu.regs[2]).toBe(1);
    expect(flags(cpu, CF | OF)).toBe(CF | OF);
    ({ cpu } = exec({ regs: { eax: 2, ebx: 3, edx: 0x1234 } }, (a) => a.asm('mul', reg('bl'))));
    expect(cpu.regs[0]).toBe(6);
    expect(cpu.regs[2]).toBe(0x1234); // 8-bit MUL writes AX only
    expect(flags(cpu, CF | OF)).toBe(0);
    ({ cpu } = exec({ regs: { eax: 0xffff, ecx: 0xffff } }, (a) => a.asm('mul', reg('cx'))));
    expect(cpu.regs[0]! & 0xffff).toBe(0x0001);
    expect(cpu.regs[2]! & 0xffff).toBe(0xfffe);
  });
});

describe('IMUL (SDM IMUL)', () => {
  it('one operand: CF = OF = 1 when the high half is not the sign extension of the low half', () => {
    let { cpu } = exec({ regs: { eax: -1, ecx: -1 } }, (a) => a.asm('imul', reg('ecx')));
    expect(cpu.regs[0]).toBe(1);
    expect(cpu.regs[2]).toBe(0);
    expect(flags(cpu, CF | OF)).toBe(0);
    ({ cpu } = exec({ regs: { eax: 0x80, ebx: 2 } }, (a) => a.asm('imul', reg('bl'))));
    expect(cpu.regs[0]! & 0xffff).toBe(0xff00); // -128 * 2 = -256
    expect(flags(cpu, CF | OF)).toBe(CF | OF);
    ({ cpu } = exec({ regs: { eax: 0xc0, ebx: 2 } }, (a) => a.asm('imul', reg('bl'))));
    expect(cpu.regs[0]! & 0xffff).toBe(0xff80); // -64 * 2 = -128 fits AL
    expect(flags(cpu, CF | OF)).toBe(0);
  });

  it('two and three operands: truncated product, CF = OF = 1 on overflow', () => {
    let { cpu } = exec({ regs: { eax: 0x40000000, ecx: 2 } }, (a) => a.asm('imul', reg('eax'), reg('ecx')));
    expect(u32(cpu.regs[0]!)).toBe(0x80000000);
    expect(flags(cpu, CF | OF)).toBe(CF | OF);
    ({ cpu } = exec({ regs: { ecx: 5 } }, (a) => a.asm('imul', reg('eax'), reg('ecx'), imm(-3))));
    expect(cpu.regs[0]).toBe(-15);
    expect(flags(cpu, CF | OF)).toBe(0);
    ({ cpu } = exec({ regs: { ecx: 0x8000 } }, (a) => a.asm('imul', reg('ax'), reg('cx'), imm(-1))));
    expect(cpu.regs[0]! & 0xffff).toBe(0x8000); // +32768 does not fit 16 bits
    expect(flags(cpu, CF | OF)).toBe(CF | OF);
    ({ cpu } = exec({ regs: { eax: 0x10000, ecx: 0x10000 } }, (a) => a.asm('imul', reg('eax'), reg('ecx'), imm(0x10000))));
    expect(cpu.regs[0]).toBe(0);
    expect(flags(cpu, CF | OF)).toBe(CF | OF);
  });
});

describe('DIV/IDIV (SDM DIV, IDIV)', () => {
  it('DIV r/m32 divides EDX:EAX', () => {
    const { cpu } = exec({ regs: { edx: 1, eax: 5, ecx: 0x10 } }, (a) => a.asm('div', reg('ecx')));
    expect(u32(cpu.regs[0]!)).toBe(0x10000000);
    expect(cpu.regs[2]).toBe(5);
  });

  it('IDIV truncates toward zero; the remainder has the sign of the dividend', () => {
    let { cpu } = exec({ regs: { eax: -7, edx: -1, ecx: 2 } }, (a) => a.asm('idiv', reg('ecx')));
    expect(cpu.regs[0]).toBe(-3);
    expect(cpu.regs[2]).toBe(-1);
    ({ cpu } = exec({ regs: { eax: 0xfff9, ebx: 2 } }, (a) => a.asm('idiv', reg('bl')))); // AX = -7
    expect(cpu.regs[0]! & 0xffff).toBe(0xfffd); // AH = -1, AL = -3
  });

  const divideError = (start: Parameters<typeof execOne>[0], bytes: number[]): void => {
    const { cpu, thrown } = execOne(start, bytes);
    expect(thrown).toBeInstanceOf(Fault);
    expect((thrown as Fault).vector).toBe(Vector.DE);
    // Nothing is written before the fault.
    expect(cpu.regs[0]).toBe(start.regs!.eax);
    expect(cpu.regs[2]).toBe(start.regs!.edx);
  };

  it('#DE on a zero divisor', () => {
    divideError({ regs: { eax: 1, edx: 0, ecx: 0 } }, [0xf7, 0xf1]); // div ecx
    divideError({ regs: { eax: 1, edx: 0, ecx: 0x100 } }, [0xf6, 0xf1]); // div cl (CL = 0)
  });

  it('#DE when the quotient does not fit', () => {
    divideError({ regs: { eax: 0, edx: 2, ecx: 2 } }, [0xf7, 0xf1]); // 2^33 / 2 = 2^32
    divideError({ regs: { eax: 0x8000, edx: 0, ecx: 0xff } }, [0xf6, 0xf9]); // idiv cl: -32768 / -1
    divideError({ regs: { eax: 0x80000000 | 0, edx: -1, ecx: -1 } }, [0xf7, 0xf9]); // idiv ecx: -2^31 / -1
    divideError({ regs: { eax: 0x0100, edx: 0, ecx: 1 } }, [0xf6, 0xf1]); // div cl: 256 / 1
  });

  it('the signed boundary: -128 / -1 faults, -128 / 1 fits', () => {
    divideError({ regs: { eax: 0xff80, edx: 0, ecx: 0xff } }, [0xf6, 0xf9]);
    const ok = execOne({ regs: { eax: 0xff80, edx: 0, ecx: 1 } }, [0xf6, 0xf9]); // -128 / 1 = -128 fits
    expect(ok.thrown).toBeUndefined();
    expect(ok.cpu.regs[0]! & 0xffff).toBe(0x0080);
  });
});
