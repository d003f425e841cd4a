// String instructions against the SDM vol. 2 pages MOVS, CMPS, SCAS, LODS, STOS, INS, OUTS and
// "REP/REPE/REPZ/REPNE/REPNZ" (termination conditions, register updates per iteration).
import { describe, expect, it } from 'vitest';
import { Eflags, Fault, SegReg, Vector } from '../src/index';
import { exec, execOne, flags, u32 } from './support/exec';

const { CF, ZF, DF } = Eflags;
const SRC = 0x200000, DST = 0x300000;
const REP = 0xf3, REPNE = 0xf2;

describe('string instructions', () => {
  it('REP MOVSB with DF = 1 copies downwards and leaves ESI/EDI one below the block', () => {
    const { cpu } = exec({ regs: { esi: SRC + 3, edi: DST + 3, ecx: 4 }, flags: DF, mem: [[SRC, [1, 2, 3, 4]]] }, (a) => { a.db(REP); a.asm('movsb'); });
    expect([...cpu.mem.u8.subarray(DST, DST + 4)]).toEqual([1, 2, 3, 4]);
    expect(cpu.regs[6]).toBe(SRC - 1);
    expect(cpu.regs[7]).toBe(DST - 1);
    expect(cpu.regs[1]).toBe(0);
  });

  it('REPE CMPSB stops at the first difference, with the registers past it', () => {
    const s = [...'abcXefgh'].map((c) => c.charCodeAt(0)), d = [...'abcYefgh'].map((c) => c.charCodeAt(0));
    const { cpu } = exec({ regs: { esi: SRC, edi: DST, ecx: 8 }, mem: [[SRC, s], [DST, d]] }, (a) => { a.db(REP); a.asm('cmpsb'); });
    expect(cpu.regs[1]).toBe(4);
    expect(cpu.regs[6]).toBe(SRC + 4);
    expect(cpu.regs[7]).toBe(DST + 4);
    expect(flags(cpu, ZF | CF)).toBe(CF); // 'X' - 'Y' borrows
  });

  it('REPNE SCASB finds a byte (the strlen idiom)', () => {
    const { cpu } = exec({ regs: { edi: DST, ecx: -1, eax: 0 }, mem: [[DST, [7, 7, 7, 0]]] }, (a) => { a.db(REPNE); a.asm('scasb'); });
    expect(cpu.regs[7]).toBe(DST + 4);
    expect(cpu.regs[1]).toBe(-5); // ~ECX - 1 = 3 bytes before the terminator
    expect(flags(cpu, ZF)).toBe(ZF);
  });

  it('REP STOSD, LODSW, and a REP with ECX = 0 doing nothing', () => {
    let { cpu } = exec({ regs: { edi: DST, ecx: 3, eax: 0x11223344 } }, (a) => { a.db(REP); a.asm('stosd'); });
    expect([cpu.mem.read32(DST), cpu.mem.read32(DST + 8)]).toEqual([0x11223344, 0x11223344]);
    expect(cpu.regs[7]).toBe(DST + 12);
    ({ cpu } = exec({ regs: { esi: SRC, eax: -1 }, mem: [[SRC, [0x34, 0x12]]] }, (a) => a.asm('lodsw')));
    expect(u32(cpu.regs[0]!)).toBe(0xffff1234);
    expect(cpu.regs[6]).toBe(SRC + 2);
    ({ cpu } = exec({ regs: { esi: SRC, edi: DST, ecx: 0 }, mem: [[SRC, [9]]] }, (a) => { a.db(REP); a.asm('movsb'); }));
    expect(cpu.mem.read8(DST)).toBe(0);
    expect(cpu.regs[6]).toBe(SRC);
  });

  it('the source segment can be overridden; the destination is always ES', () => {
    const { cpu, thrown } = execOne({
      regs: { esi: 0x10, edi: DST },
      mem: [[SRC + 0x10, [0x77]]],
      setup: (c) => { c.segBase[SegReg.FS] = SRC; c.segBase[SegReg.ES] = 0x1000; },
    }, [0x64, 0xa4]); // fs movsb
    expect(thrown).toBeUndefined();
    expect(cpu.mem.read8(DST + 0x1000)).toBe(0x77);
  });

  it('16-bit address size uses SI/DI/CX and wraps them', () => {
    // 67 F3 A4: rep movsb with SI = FFFFh: SI wraps to 0000h, upper ESI bits untouched.
    const { cpu } = exec({ regs: { esi: 0x1234ffff, edi: 0x5678_1000 & 0xffff, ecx: 0xabcd0001 } }, (a) => a.bytes([0x67, REP, 0xa4]));
    expect(u32(cpu.regs[6]!)).toBe(0x12340000);
    expect(u32(cpu.regs[1]!)).toBe(0xabcd0000);
  });

  it('OUTSB and INSB go through the port bus', () => {
    let { ports } = exec({ regs: { esi: SRC, edx: 0x3f8, ecx: 2 }, mem: [[SRC, [0x41, 0x42]]] }, (a) => { a.db(REP); a.asm('outsb'); });
    expect(ports.writes).toEqual([[0x3f8, 1, 0x41], [0x3f8, 1, 0x42]]);
    const r = exec({ regs: { edi: DST, edx: 0x60 } }, (a) => a.asm('insw'));
    expect(r.cpu.mem.read16(DST)).toBe(0xffff);
    ports = r.ports;
    expect(ports.writes).toEqual([]);
  });

  it('a fault in iteration k leaves the completed iterations in the registers', () => {
    // ES limit 2 bytes past DST: the third STOSB faults with #GP(0) (SDM STOS, #GP "outside the
    // ES segment limit"), after two bytes were stored and EDI/ECX stepped twice.
    const { cpu, thrown } = execOne({ regs: { edi: DST, ecx: 5, eax: 0x99 }, setup: (c) => { c.segLimit[SegReg.ES] = DST + 1; } }, [REP, 0xaa]);
    expect(thrown).toBeInstanceOf(Fault);
    expect((thrown as Fault).vector).toBe(Vector.GP);
    expect(cpu.regs[7]).toBe(DST + 2);
    expect(cpu.regs[1]).toBe(3);
    expect(cpu.mem.read8(DST + 1)).toBe(0x99);
    expect(cpu.mem.read8(DST + 2)).toBe(0);
  });
});
