// Shifts and rotates against the SDM vol. 2B pages "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR",
// "SHLD", "SHRD" (Operation and Flags Affected); expected values worked out by hand from them.
import { imm, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Eflags } from '../src/index';
import { exec, flags, u32 } from './support/exec';

const { CF, OF, SF, ZF, PF } = Eflags;

describe('SAL/SAR/SHL/SHR (SDM SAL/SAR/SHL/SHR)', () => {
  it('a masked count of 0 changes neither the operand nor any flag ("IF (COUNT and countMASK) = 0 ... All flags unchanged")', () => {
    for (const count of [0, 32, 64]) {
      const { cpu } = exec({ regs: { eax: 0x12345678, ecx: count }, flags: CF | OF | ZF | PF }, (a) => {
        a.asm('shl', reg('eax'), reg('cl'));
        a.asm('sar', reg('eax'), imm(count & 0xff));
      });
      expect(u32(cpu.regs[0]!)).toBe(0x12345678);
      expect(flags(cpu)).toBe(CF | OF | ZF | PF);
    }
  });

  it('count 1: CF = bit shifted out, OF = MSB(result) XOR CF for SHL, MSB(original) for SHR, 0 for SAR', () => {
    let { cpu } = exec({ regs: { eax: 0xc1 } }, (a) => a.asm('shl', reg('al'), imm(1)));
    expect(cpu.regs[0]! & 0xff).toBe(0x82);
    expect(flags(cpu, CF | OF | SF | ZF | PF)).toBe(CF | SF | PF); // OF = 1 XOR 1 = 0; 0x82 has 2 bits set
    ({ cpu } = exec({ regs: { eax: 0x41 } }, (a) => a.asm('shl', reg('al'), imm(1))));
    expect(flags(cpu, CF | OF)).toBe(OF); // top two bits differed
    ({ cpu } = exec({ regs: { eax: 0x80000001 } }, (a) => a.asm('shr', reg('eax'), imm(1))));
    expect(u32(cpu.regs[0]!)).toBe(0x40000000);
    expect(flags(cpu, CF | OF | SF | ZF)).toBe(CF | OF);
    ({ cpu } = exec({ regs: { eax: 0x80000001 } }, (a) => a.asm('sar', reg('eax'), imm(1))));
    expect(u32(cpu.regs[0]!)).toBe(0xc0000000);
    expect(flags(cpu, CF | OF | SF | ZF)).toBe(CF | SF);
  });

  it('count 31: CF is the last bit shifted out', () => {
    let { cpu } = exec({ regs: { eax: 3, ecx: 31 } }, (a) => a.asm('shl', reg('eax'), reg('cl')));
    expect(u32(cpu.regs[0]!)).toBe(0x80000000);
    expect(flags(cpu, CF | ZF | SF)).toBe(CF | SF); // bit 1 of 3 went out last
    ({ cpu } = exec({ regs: { eax: 0x80000000 } }, (a) => a.asm('shr', reg('eax'), imm(31))));
    expect(cpu.regs[0]).toBe(1);
    expect(flags(cpu, CF | ZF)).toBe(0); // bit 30 went out last
    ({ cpu } = exec({ regs: { eax: 0x80000000 } }, (a) => a.asm('sar', reg('eax'), imm(31))));
    expect(cpu.regs[0]).toBe(-1);
    expect(flags(cpu, CF | SF)).toBe(SF);
  });

  it('8-bit operands shift by counts up to 31 (masked to 5 bits, not to the size)', () => {
    let { cpu } = exec({ regs: { eax: 0xff, ecx: 9 } }, (a) => a.asm('shr', reg('al'), reg('cl')));
    expect(cpu.regs[0]! & 0xff).toBe(0);
    expect(flags(cpu, ZF)).toBe(ZF);
    ({ cpu } = exec({ regs: { eax: 0x80, ecx: 20 } }, (a) => a.asm('sar', reg('al'), reg('cl'))));
    expect(cpu.regs[0]! & 0xff).toBe(0xff);
    expect(flags(cpu, CF)).toBe(CF); // SAR fills with the sign, and shifts it out too
  });
});

describe('ROL/ROR/RCL/RCR (SDM RCL/RCR/ROL/ROR)', () => {
  it('ROL r/m8 by 8: operand unchanged, CF = LSB(result) because the masked count is not 0', () => {
    const { cpu } = exec({ regs: { eax: 0x81, ecx: 8 } }, (a) => a.asm('rol', reg('al'), reg('cl')));
    expect(cpu.regs[0]! & 0xff).toBe(0x81);
    expect(flags(cpu, CF)).toBe(CF);
  });

  it('ROR by 4 and ROL by 1 (OF = MSB(DEST) XOR CF for count 1)', () => {
    let { cpu } = exec({ regs: { eax: 0x12345678 }, flags: ZF }, (a) => a.asm('ror', reg('eax'), imm(4)));
    expect(u32(cpu.regs[0]!)).toBe(0x81234567);
    expect(flags(cpu, CF | ZF)).toBe(CF | ZF); // rotates leave ZF alone
    ({ cpu } = exec({ regs: { eax: 0x40000000 } }, (a) => a.asm('rol', reg('eax'), imm(1))));
    expect(u32(cpu.regs[0]!)).toBe(0x80000000);
    expect(flags(cpu, CF | OF)).toBe(OF);
  });

  it('RCL r/m8 by 9: tempCOUNT = 9 MOD 9 = 0, nothing changes', () => {
    const { cpu } = exec({ regs: { eax: 0x5a, ecx: 9 }, flags: CF }, (a) => a.asm('rcl', reg('al'), reg('cl')));
    expect(cpu.regs[0]! & 0xff).toBe(0x5a);
    expect(flags(cpu, CF)).toBe(CF);
  });

  it('RCL/RCR rotate through CF', () => {
    let { cpu } = exec({ regs: { eax: 0x80 } }, (a) => a.asm('rcl', reg('al'), imm(1)));
    expect(cpu.regs[0]! & 0xff).toBe(0);
    expect(flags(cpu, CF | OF)).toBe(CF | OF);
    ({ cpu } = exec({ regs: { eax: 0x01 }, flags: CF }, (a) => a.asm('rcr', reg('al'), imm(1))));
    expect(cpu.regs[0]! & 0xff).toBe(0x80);
    expect(flags(cpu, CF | OF)).toBe(CF | OF); // OF = MSB(DEST) XOR CF before the rotation = 0 XOR 1
    // RCL r/m8 by 8 equals RCR by 1 in the 9-bit ring: CF:AL = 1:0x02 -> AL = 0x81, CF = 0.
    ({ cpu } = exec({ regs: { eax: 0x02, ecx: 8 }, flags: CF }, (a) => a.asm('rcl', reg('al'), reg('cl'))));
    expect(cpu.regs[0]! & 0xff).toBe(0x81);
    expect(flags(cpu, CF)).toBe(0);
    // RCR r/m16 by 17 is a no-op (count MOD 17).
    ({ cpu } = exec({ regs: { eax: 0x1234, ecx: 17 } }, (a) => a.asm('rcr', reg('ax'), reg('cl'))));
    expect(cpu.regs[0]! & 0xffff).toBe(0x1234);
    ({ cpu } = exec({ regs: { eax: 0x00000001 }, flags: CF }, (a) => a.asm('rcr', reg('eax'), imm(31))));
    expect(u32(cpu.regs[0]!)).toBe(0x00000006); // 33-bit ring: right 31 = left 2: 1:00000001 -> 0:00000006
    expect(flags(cpu, CF)).toBe(0);
  });
});

describe('SHLD/SHRD (SDM SHLD, SHRD)', () => {
  it('shifts in bits from the source; CF = last bit out; count 0 does nothing', () => {
    let { cpu } = exec({ regs: { eax: 0x12345678, ebx: 0x9abcdef0 } }, (a) => a.asm('shld', reg('eax'), reg('ebx'), imm(4)));
    expect(u32(cpu.regs[0]!)).toBe(0x23456789);
    expect(flags(cpu, CF)).toBe(CF); // bit 28 of 0x12345678
    ({ cpu } = exec({ regs: { eax: 0x12345678, ebx: 0x9abcdef0, ecx: 4 } }, (a) => a.asm('shrd', reg('eax'), reg('ebx'), reg('cl'))));
    expect(u32(cpu.regs[0]!)).toBe(0x01234567);
    expect(flags(cpu, CF)).toBe(CF); // bit 3 of 0x78
    ({ cpu } = exec({ regs: { eax: 0x12345678, ebx: 0x9abcdef0, ecx: 32 }, flags: ZF }, (a) => a.asm('shrd', reg('eax'), reg('ebx'), reg('cl'))));
    expect(u32(cpu.regs[0]!)).toBe(0x12345678);
    expect(flags(cpu)).toBe(ZF);
    ({ cpu } = exec({ regs: { eax: 0x8001, ebx: 0xffff } }, (a) => a.asm('shld', reg('ax'), reg('bx'), imm(1))));
    expect(cpu.regs[0]! & 0xffff).toBe(0x0003);
    expect(flags(cpu, CF | OF)).toBe(CF | OF); // sign changed from 1 to 0
  });
});
