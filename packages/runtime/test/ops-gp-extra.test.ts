// POPCNT, LZCNT, TZCNT, MOVBE, BSWAP r16, ADCX, ADOX against their SDM vol. 2 pages
// ("Operation" and "Flags Affected"); BSWAP r16, undefined there, as Intel and AMD hardware do.
import { mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Eflags } from '../src/index';
import { exec, execOne, flags, u32 } from './support/exec';

const { CF, OF, SF, ZF, AF, PF, STATUS } = Eflags;
const DATA = 0x200000;

describe('POPCNT (SDM POPCNT: OF SF ZF AF CF PF cleared, ZF = (SRC = 0))', () => {
  it('counts the set bits and clears every status flag', () => {
    const { cpu } = exec({ regs: { ecx: 0xf0f00001 }, flags: STATUS }, (a) => a.asm('popcnt', reg('eax'), reg('ecx')));
    expect(cpu.regs[0]).toBe(9);
    expect(flags(cpu)).toBe(0);
  });

  it('a zero source gives 0 with ZF = 1 only', () => {
    const { cpu } = exec({ regs: { eax: 0x1234, ecx: 0 }, flags: CF | OF | SF | AF | PF }, (a) => a.asm('popcnt', reg('eax'), reg('ecx')));
    expect(cpu.regs[0]).toBe(0);
    expect(flags(cpu)).toBe(ZF);
  });

  it('16-bit: counts the low word of the source, keeps bits 31:16 of the destination; memory source', () => {
    let { cpu } = exec({ regs: { eax: 0xabcd0000, ecx: 0xffff8001 } }, (a) => a.asm('popcnt', reg('ax'), reg('cx')));
    expect(u32(cpu.regs[0]!)).toBe(0xabcd0002);
    ({ cpu } = exec({ mem: [[DATA, [0xff, 0xff, 0xff, 0x7f]]] }, (a) => a.asm('popcnt', reg('edx'), mem({ disp: DATA, size: 4 }))));
    expect(cpu.regs[2]).toBe(31);
  });
});

describe('LZCNT (SDM LZCNT: CF = (SRC = 0), ZF = (DEST = 0))', () => {
  it('counts leading zeros; the operand size for a zero source, with CF = 1', () => {
    let { cpu } = exec({ regs: { ecx: 0x00010000 }, flags: CF | ZF }, (a) => a.asm('lzcnt', reg('eax'), reg('ecx')));
    expect(cpu.regs[0]).toBe(15);
    expect(flags(cpu, CF | ZF)).toBe(0);
    ({ cpu } = exec({ regs: { ecx: 0 } }, (a) => a.asm('lzcnt', reg('eax'), reg('ecx'))));
    expect(cpu.regs[0]).toBe(32);
    expect(flags(cpu, CF | ZF)).toBe(CF);
    ({ cpu } = exec({ regs: { ecx: 0x80000000 } }, (a) => a.asm('lzcnt', reg('eax'), reg('ecx'))));
    expect(cpu.regs[0]).toBe(0);
    expect(flags(cpu, CF | ZF)).toBe(ZF);
  });

  it('16-bit: counts within the low word', () => {
    let { cpu } = exec({ regs: { eax: 0xffff0000, ecx: 0xffff0001 } }, (a) => a.asm('lzcnt', reg('ax'), reg('cx')));
    expect(u32(cpu.regs[0]!)).toBe(0xffff000f);
    ({ cpu } = exec({ regs: { eax: 0, ecx: 0xffff0000 } }, (a) => a.asm('lzcnt', reg('ax'), reg('cx'))));
    expect(cpu.regs[0]).toBe(16);
    expect(flags(cpu, CF | ZF)).toBe(CF);
  });

  it('is F3 0F BD; 0F BD without F3 stays BSR', () => {
    const { cpu } = execOne({ regs: { ecx: 1 } }, [0xf3, 0x0f, 0xbd, 0xc1]);
    expect(cpu.regs[0]).toBe(31);
    const bsr = execOne({ regs: { ecx: 1 } }, [0x0f, 0xbd, 0xc1]);
    expect(bsr.cpu.regs[0]).toBe(0);
  });
});

describe('TZCNT (SDM TZCNT: CF = (SRC = 0), ZF = (DEST = 0))', () => {
  it('counts trailing zeros; the operand size for a zero source, with CF = 1', () => {
    let { cpu } = exec({ regs: { ecx: 0x00010000 }, flags: CF | ZF }, (a) => a.asm('tzcnt', reg('eax'), reg('ecx')));
    expect(cpu.regs[0]).toBe(16);
    expect(flags(cpu, CF | ZF)).toBe(0);
    ({ cpu } = exec({ regs: { eax: 5, ecx: 0 } }, (a) => a.asm('tzcnt', reg('eax'), reg('ecx'))));
    expect(cpu.regs[0]).toBe(32); // BSF would have left 5
    expect(flags(cpu, CF | ZF)).toBe(CF);
    ({ cpu } = exec({ regs: { ecx: 0xffffffff } }, (a) => a.asm('tzcnt', reg('eax'), reg('ecx'))));
    expect(cpu.regs[0]).toBe(0);
    expect(flags(cpu, CF | ZF)).toBe(ZF);
  });

  it('16-bit: bits above the word do not count', () => {
    let { cpu } = exec({ regs: { eax: 0x12340000, ecx: 0x00018000 } }, (a) => a.asm('tzcnt', reg('ax'), reg('cx')));
    expect(u32(cpu.regs[0]!)).toBe(0x1234000f);
    ({ cpu } = exec({ regs: { eax: 0, ecx: 0x00010000 } }, (a) => a.asm('tzcnt', reg('ax'), reg('cx'))));
    expect(cpu.regs[0]).toBe(16);
    expect(flags(cpu, CF | ZF)).toBe(CF);
  });

  it('is F3 0F BC; 0F BC without F3 stays BSF', () => {
    const { cpu } = execOne({ regs: { eax: 7, ecx: 0 } }, [0xf3, 0x0f, 0xbc, 0xc1]);
    expect(cpu.regs[0]).toBe(32);
    const bsf = execOne({ regs: { eax: 7, ecx: 0 } }, [0x0f, 0xbc, 0xc1]);
    expect(bsf.cpu.regs[0]).toBe(7);
    expect(flags(bsf.cpu, ZF)).toBe(ZF);
  });
});

describe('MOVBE (SDM MOVBE: load/store with the bytes reversed, flags unchanged)', () => {
  it('loads a dword and a word byte-swapped (the word keeps bits 31:16)', () => {
    const { cpu } = exec({ regs: { ecx: 0xaaaa0000 }, mem: [[DATA, [0x44, 0x33, 0x22, 0x11, 0x12, 0x34]]], flags: CF }, (a) => {
      a.asm('movbe', reg('eax'), mem({ disp: DATA, size: 4 }));
      a.asm('movbe', reg('cx'), mem({ disp: DATA + 4, size: 2 }));
    });
    expect(u32(cpu.regs[0]!)).toBe(0x44332211);
    expect(u32(cpu.regs[1]!)).toBe(0xaaaa1234);
    expect(flags(cpu)).toBe(CF);
  });

  it('stores a dword and a word byte-swapped', () => {
    const { cpu } = exec({ regs: { eax: 0x11223344, ecx: 0xabcd } }, (a) => {
      a.asm('movbe', mem({ disp: DATA, size: 4 }), reg('eax'));
      a.asm('movbe', mem({ disp: DATA + 4, size: 2 }), reg('cx'));
    });
    expect([...cpu.mem.u8.subarray(DATA, DATA + 6)]).toEqual([0x11, 0x22, 0x33, 0x44, 0xab, 0xcd]);
  });
});

describe('BSWAP r16 (undefined in the SDM; Intel and AMD hardware clear the word)', () => {
  it('66 0F C8: AX = 0, bits 31:16 kept', () => {
    const { cpu } = execOne({ regs: { eax: 0x12345678 } }, [0x66, 0x0f, 0xc8]);
    expect(u32(cpu.regs[0]!)).toBe(0x12340000);
  });

  it('BSWAP r32 still reverses the bytes', () => {
    const { cpu } = execOne({ regs: { ecx: 0x12345678 } }, [0x0f, 0xc9]);
    expect(u32(cpu.regs[1]!)).toBe(0x78563412);
  });
});

describe('ADCX/ADOX (SDM: unsigned add with carry through CF / OF only)', () => {
  it('ADCX: carry in and out through CF; OF, ZF, SF unchanged', () => {
    let { cpu } = exec({ regs: { eax: 0xffffffff, ecx: 0 }, flags: CF | OF }, (a) => a.asm('adcx', reg('eax'), reg('ecx')));
    expect(cpu.regs[0]).toBe(0);
    expect(flags(cpu)).toBe(CF | OF); // ZF not set although the result is 0
    ({ cpu } = exec({ regs: { eax: 0x7fffffff, ecx: 1 }, flags: SF }, (a) => a.asm('adcx', reg('eax'), reg('ecx'))));
    expect(u32(cpu.regs[0]!)).toBe(0x80000000);
    expect(flags(cpu)).toBe(SF); // no carry out; no OF although a signed overflow
  });

  it('ADOX: carry in and out through OF; CF unchanged', () => {
    let { cpu } = exec({ regs: { eax: 0xfffffffe, ecx: 1 }, flags: OF | CF }, (a) => a.asm('adox', reg('eax'), reg('ecx')));
    expect(cpu.regs[0]).toBe(0);
    expect(flags(cpu)).toBe(OF | CF);
    ({ cpu } = exec({ regs: { eax: 0xfffffffe, ecx: 1 }, flags: CF }, (a) => a.asm('adox', reg('eax'), reg('ecx'))));
    expect(u32(cpu.regs[0]!)).toBe(0xffffffff);
    expect(flags(cpu)).toBe(CF);
  });

  it('memory source', () => {
    const { cpu } = exec({ regs: { eax: 0x80000000 }, mem: [[DATA, [0, 0, 0, 0x80]]] }, (a) => a.asm('adcx', reg('eax'), mem({ disp: DATA, size: 4 })));
    expect(cpu.regs[0]).toBe(0);
    expect(flags(cpu)).toBe(CF);
  });
});

describe('MOVBE register-register encoding', () => {
  it('is not a valid instruction (SDM MOVBE: memory operands only): the decoder refuses it (#UD)', () => {
    expect(() => execOne({}, [0x0f, 0x38, 0xf0, 0xc1])).toThrow(/invalid instruction/);
  });
});
