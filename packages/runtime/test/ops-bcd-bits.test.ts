// BCD adjusts and bit/atomic instructions against the SDM vol. 2A/2B pages: DAA and DAS
// (their "Example" sections), AAA, AAS, AAM, AAD, BT/BTS/BTR/BTC ("Operation", bit offsets
// into a memory bit string), BSF/BSR, XADD, CMPXCHG, CMPXCHG8B, XLAT/XLATB; SALC per AMD's
// APM vol. 3 (D6).
import { imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Eflags, Fault, Vector } from '../src/index';
import { exec, execOne, flags, u32 } from './support/exec';

const { CF, OF, SF, ZF, AF, PF } = Eflags;
const DATA = 0x200000;

describe('decimal adjust', () => {
  it('DAA: the SDM example, 79h + 35h -> AEh -> 14h with CF = AF = 1', () => {
    const { cpu } = exec({ regs: { eax: 0x79, ebx: 0x35 } }, (a) => { a.asm('add', reg('al'), reg('bl')); a.asm('daa'); });
    expect(cpu.regs[0]! & 0xff).toBe(0x14);
    expect(flags(cpu, CF | AF | ZF | SF | PF)).toBe(CF | AF | PF); // SDM: (0SZAPC) = X00111
  });

  it('DAS: the SDM example, 35h - 47h -> EEh -> 88h with CF = AF = 1', () => {
    const { cpu } = exec({ regs: { eax: 0x35, ebx: 0x47 } }, (a) => { a.asm('sub', reg('al'), reg('bl')); a.asm('das'); });
    expect(cpu.regs[0]! & 0xff).toBe(0x88);
    expect(flags(cpu, CF | AF | ZF | SF | PF)).toBe(SF | CF | AF | PF); // SDM: (0SZAPC) = X10111
  });

  it('AAA after ASCII 5 + 6, AAS after ASCII 3 - 5', () => {
    let { cpu } = exec({ regs: { eax: 0x35, ebx: 0x36 } }, (a) => { a.asm('add', reg('al'), reg('bl')); a.asm('aaa'); });
    expect(cpu.regs[0]! & 0xffff).toBe(0x0101);
    expect(flags(cpu, CF | AF)).toBe(CF | AF);
    // AL = 33h - 35h = FEh with AF; AX - 6 = 00F8h, AH - 1 -> FFF8h, AL AND 0Fh -> FF08h.
    ({ cpu } = exec({ regs: { eax: 0x33, ebx: 0x35 } }, (a) => { a.asm('sub', reg('al'), reg('bl')); a.asm('aas'); }));
    expect(cpu.regs[0]! & 0xffff).toBe(0xff08);
    expect(flags(cpu, CF | AF)).toBe(CF | AF);
  });

  it('AAM with base 10 and 16, AAD, and #DE for AAM 0', () => {
    let { cpu } = exec({ regs: { eax: 63 } }, (a) => a.asm('aam', imm(10)));
    expect(cpu.regs[0]! & 0xffff).toBe(0x0603);
    ({ cpu } = exec({ regs: { eax: 0x3f } }, (a) => a.asm('aam', imm(16))));
    expect(cpu.regs[0]! & 0xffff).toBe(0x030f);
    ({ cpu } = exec({ regs: { eax: 0x0603 } }, (a) => a.asm('aad', imm(10))));
    expect(cpu.regs[0]! & 0xffff).toBe(63);
    expect(flags(cpu, ZF | SF)).toBe(0);
    const { thrown } = execOne({ regs: { eax: 5 } }, [0xd4, 0x00]);
    expect((thrown as Fault).vector).toBe(Vector.DE);
  });
});

describe('BT/BTS/BTR/BTC (SDM BT "Operation": BitBase, BitOffset)', () => {
  it('register operands take the offset modulo the operand size; ZF is unchanged', () => {
    const { cpu } = exec({ regs: { eax: 0x80000000, ecx: 63 }, flags: ZF }, (a) => a.asm('bt', reg('eax'), reg('ecx')));
    expect(flags(cpu, CF | ZF)).toBe(CF | ZF);
  });

  it('a negative register offset addresses bits below the memory operand', () => {
    // Offset -1 is bit 7 of the byte before DATA; -9 is bit 7 of the byte before that.
    const { cpu } = exec({ regs: { ebx: DATA, ecx: -1, edx: -9, esi: 35 }, mem: [[DATA - 4, [0, 0, 0, 0x80, 0, 0, 0, 0, 0x08]]] }, (a) => {
      a.asm('bt', mem({ base: 'ebx', size: 4 }), reg('ecx'));
      a.asm('setc', reg('al'));
      a.asm('bts', mem({ base: 'ebx', size: 4 }), reg('edx'));
      a.asm('setc', reg('ah'));
      a.asm('btr', mem({ base: 'ebx', size: 4 }), reg('esi')); // bit 3 of DATA+4
      a.asm('setc', reg('cl'));
      a.asm('btc', mem({ base: 'ebx', size: 2 }), reg('dx')); // 16-bit: -9 -> word at DATA-2, bit 7
    });
    expect(cpu.regs[0]! & 0xffff).toBe(0x0001); // CF from BT = 1, from BTS = 0
    expect(cpu.regs[1]! & 0xff).toBe(1);
    expect(cpu.mem.read8(DATA - 2)).toBe(0x80 ^ 0x80); // set by BTS, complemented by BTC
    expect(cpu.mem.read8(DATA + 4)).toBe(0);
    expect(cpu.mem.read8(DATA - 1)).toBe(0x80);
  });

  it('an immediate offset is taken modulo the operand size even with memory', () => {
    const { cpu } = exec({ regs: { ebx: DATA }, mem: [[DATA, [0x08, 0, 0, 0, 0xff]]] }, (a) => a.asm('bt', mem({ base: 'ebx', size: 4 }), imm(35)));
    expect(flags(cpu, CF)).toBe(CF);
  });
});

describe('BSF/BSR, XADD, CMPXCHG, CMPXCHG8B, SALC, XLAT', () => {
  it('BSF/BSR find the lowest/highest set bit; a zero source sets ZF and keeps the destination', () => {
    let { cpu } = exec({ regs: { ecx: 0x00018000 } }, (a) => { a.asm('bsf', reg('eax'), reg('ecx')); a.asm('bsr', reg('edx'), reg('ecx')); });
    expect(cpu.regs[0]).toBe(15);
    expect(cpu.regs[2]).toBe(16);
    expect(flags(cpu, ZF)).toBe(0);
    ({ cpu } = exec({ regs: { eax: 0x1234, ecx: 0 } }, (a) => a.asm('bsf', reg('eax'), reg('ecx'))));
    expect(cpu.regs[0]).toBe(0x1234);
    expect(flags(cpu, ZF)).toBe(ZF);
  });

  it('XADD exchanges and adds, with ADD flags', () => {
    const { cpu } = exec({ regs: { eax: 1, ebx: DATA }, mem: [[DATA, [0xff, 0xff, 0xff, 0xff]]] }, (a) => a.asm('xadd', mem({ base: 'ebx', size: 4 }), reg('eax')));
    expect(cpu.mem.read32(DATA)).toBe(0);
    expect(cpu.regs[0]).toBe(-1);
    expect(flags(cpu, CF | ZF)).toBe(CF | ZF);
  });

  it('CMPXCHG stores on equal, loads the accumulator otherwise', () => {
    let { cpu } = exec({ regs: { eax: 5, ecx: 9, ebx: DATA }, mem: [[DATA, [5, 0, 0, 0]]] }, (a) => a.asm('cmpxchg', mem({ base: 'ebx', size: 4 }), reg('ecx')));
    expect(cpu.mem.read32(DATA)).toBe(9);
    expect(flags(cpu, ZF)).toBe(ZF);
    ({ cpu } = exec({ regs: { eax: 4, ecx: 9, ebx: DATA }, mem: [[DATA, [5, 0, 0, 0]]] }, (a) => a.asm('cmpxchg', mem({ base: 'ebx', size: 4 }), reg('ecx'))));
    expect(cpu.mem.read32(DATA)).toBe(5);
    expect(cpu.regs[0]).toBe(5);
    expect(flags(cpu, ZF | CF)).toBe(CF); // CMP 4, 5 borrows
  });

  it('CMPXCHG8B compares EDX:EAX with m64', () => {
    const m: [number, number[]][] = [[DATA, [1, 0, 0, 0, 2, 0, 0, 0]]];
    let { cpu } = exec({ regs: { eax: 1, edx: 2, ebx: 3, ecx: 4, esi: DATA }, mem: m }, (a) => a.asm('cmpxchg8b', mem({ base: 'esi', size: 8 })));
    expect([cpu.mem.read32(DATA), cpu.mem.read32(DATA + 4)]).toEqual([3, 4]);
    expect(flags(cpu, ZF)).toBe(ZF);
    ({ cpu } = exec({ regs: { eax: 7, edx: 2, ebx: 3, ecx: 4, esi: DATA }, mem: m }, (a) => a.asm('cmpxchg8b', mem({ base: 'esi', size: 8 }))));
    expect([cpu.regs[0], cpu.regs[2]]).toEqual([1, 2]);
    expect(flags(cpu, ZF)).toBe(0);
  });

  it('SALC sets AL from CF; XLAT looks AL up in the table at EBX', () => {
    let { cpu } = exec({ regs: { eax: 0x1234 }, flags: CF }, (a) => a.asm('salc'));
    expect(u32(cpu.regs[0]!)).toBe(0x12ff);
    ({ cpu } = exec({ regs: { eax: 0x12340080, ebx: DATA }, mem: [[DATA + 0x80, [0x5a]]] }, (a) => a.asm('xlatb')));
    expect(u32(cpu.regs[0]!)).toBe(0x1234005a);
  });

  it('OF is untouched by BT (undefined, left as is)', () => {
    const { cpu } = exec({ regs: { eax: 1 }, flags: OF }, (a) => a.asm('bt', reg('eax'), imm(0)));
    expect(flags(cpu, OF | CF)).toBe(OF | CF);
  });
});
