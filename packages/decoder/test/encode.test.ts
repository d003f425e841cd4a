// Unit tests of the IA-32 encoder and the builders: the canonical ModRM/SIB/displacement
// choices (SDM vol. 2 §2.1.5, tables 2-1..2-3), prefixes, immediates, branches, the
// refusals, and form selection by mnemonic.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  asm1, buildInstruction, candidates, encode, encodedLength, EncodeError, encodeInto, far, formNamed, imm, ins, mem, reg, rel,
  type MemSpec, type Operand,
} from '../src/encode/index';
import { OpKind, Prefix } from '../src/instruction';
import { Reg } from '../src/table/registers';
import { iced } from './support/iced';

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const enc32 = (name: string, ...ops: Operand[]): string => hex(encode(ins(name, ...ops), 32));

function movLoad(spec: MemSpec, bits: 16 | 32 = 32, dst = bits === 32 ? 'eax' : 'ax'): string {
  const form = bits === 32 || dst === 'eax' ? (dst === 'eax' ? 'Mov_r32_rm32' : 'Mov_r16_rm16') : 'Mov_r16_rm16';
  return hex(encode(ins(bits, form, reg(dst), mem(spec)), bits));
}

describe('32-bit addressing (SDM vol. 2 tables 2-2, 2-3)', () => {
  it.each([
    [{ base: 'eax' }, '8b 00'],
    [{ base: 'ebp' }, '8b 45 00'], // no mod=00 form for [EBP]: disp8 0
    [{ base: 'esp' }, '8b 04 24'], // ESP only via SIB
    [{ base: 'esp', disp: 8 }, '8b 44 24 08'],
    [{ base: 'ebx', disp: 0x7f }, '8b 43 7f'],
    [{ base: 'ebx', disp: 0x80 }, '8b 83 80 00 00 00'],
    [{ base: 'ebx', disp: -0x80 }, '8b 43 80'],
    [{ base: 'ebx', disp: -0x81 }, '8b 83 7f ff ff ff'],
    [{ base: 'ebx', disp: 0xffffff80 }, '8b 43 80'],
    [{ disp: 0x1234 }, '8b 05 34 12 00 00'],
    [{ index: 'esi', scale: 4 }, '8b 04 b5 00 00 00 00'], // no base: SIB base=101 + disp32
    [{ index: 'esi' }, '8b 04 35 00 00 00 00'],
    [{ base: 'ebp', index: 'eax' }, '8b 44 05 00'],
    [{ base: 'eax', index: 'ebp' }, '8b 04 28'],
    [{ base: 'esp', index: 'esi', scale: 2 }, '8b 04 74'],
    [{ base: 'ecx', index: 'edx', scale: 8, disp: -4 }, '8b 44 d1 fc'],
    [{ base: 'eax', seg: 'fs' }, '64 8b 00'],
    [{ base: 'ebp', seg: 'ss' }, '8b 45 00'], // SS is EBP's default: no prefix
    [{ base: 'ebp', seg: 'ds' }, '3e 8b 45 00'],
    [{ base: 'esp', seg: 'ss', disp: 4 }, '8b 44 24 04'],
    [{ base: 'eax', seg: 'ss' }, '36 8b 00'],
    [{ base: 'eax', seg: 'ds' }, '8b 00'],
  ] as [MemSpec, string][])('mov eax, %o -> %s', (spec, bytes) => {
    expect(movLoad(spec)).toBe(bytes);
  });

  it('respects a requested displacement width, growing it when the value does not fit', () => {
    expect(movLoad({ base: 'eax', dispSize: 1 })).toBe('8b 40 00');
    expect(movLoad({ base: 'eax', dispSize: 4 })).toBe('8b 80 00 00 00 00');
    expect(movLoad({ base: 'eax', disp: 5, dispSize: 4 })).toBe('8b 80 05 00 00 00');
    expect(movLoad({ base: 'eax', disp: 0x200, dispSize: 1 })).toBe('8b 80 00 02 00 00');
    expect(movLoad({ base: 'ebp', dispSize: 0 })).toBe('8b 45 00');
  });

  it('keeps a SIB with no index but a scale (as decoded from SIB index=100)', () => {
    const i = ins('Mov_r32_rm32', reg('eax'), mem({ disp: 0 }));
    i.memScale = 2;
    i.memDispSize = 4;
    expect(hex(encode(i, 32))).toBe('8b 04 65 00 00 00 00');
  });

  it('uses 32-bit addressing from 16-bit code with a 67 prefix', () => {
    expect(movLoad({ base: 'ebx', index: 'ecx', scale: 2, disp: 8 }, 16, 'ax')).toBe('67 8b 44 4b 08');
    expect(movLoad({ disp: 0x12345 }, 16, 'ax')).toBe('67 8b 05 45 23 01 00');
  });
});

describe('16-bit addressing (SDM vol. 2 table 2-1)', () => {
  const RM: [string[], number][] = [
    [['bx', 'si'], 0], [['bx', 'di'], 1], [['bp', 'si'], 2], [['bp', 'di'], 3], [['si'], 4], [['di'], 5], [['bp'], 6], [['bx'], 7],
  ];
  for (const [regs, rm] of RM) {
    for (const swap of [false, true]) {
      const [base, index] = swap ? [regs[1] ?? regs[0], regs[1] ? regs[0] : undefined] : [regs[0], regs[1]];
      it(`[${regs.join('+')}]${swap ? ' (operands swapped)' : ''} is rm=${rm} for every displacement width`, () => {
        const at = (disp: number, dispSize: 0 | 1 | 2 = 0): string => movLoad({ base, index, disp, dispSize }, 16, 'ax');
        const modrm = (mod: number): string => ((mod << 6) | rm).toString(16).padStart(2, '0');
        // [BP] has no mod=00 encoding (that is disp16): it takes a zero disp8.
        expect(at(0)).toBe(rm === 6 ? `8b ${modrm(1)} 00` : `8b ${modrm(0)}`);
        expect(at(-2)).toBe(`8b ${modrm(1)} fe`);
        expect(at(0x7f)).toBe(`8b ${modrm(1)} 7f`);
        expect(at(0x80)).toBe(`8b ${modrm(2)} 80 00`);
        expect(at(0xff80)).toBe(`8b ${modrm(1)} 80`);
        expect(at(0x1234)).toBe(`8b ${modrm(2)} 34 12`);
        expect(at(3, 2)).toBe(`8b ${modrm(2)} 03 00`);
      });
    }
  }

  it('a bare address is mod=00 rm=110 disp16', () => {
    expect(movLoad({ disp: 0x1234 }, 16, 'ax')).toBe('8b 06 34 12');
    expect(movLoad({ disp: -2 }, 16, 'ax')).toBe('8b 06 fe ff');
  });

  it('SS is the default segment of BP-based forms only', () => {
    expect(movLoad({ base: 'bp', index: 'si', seg: 'ss' }, 16, 'ax')).toBe('8b 02');
    expect(movLoad({ base: 'bp', index: 'si', seg: 'ds' }, 16, 'ax')).toBe('3e 8b 02');
    expect(movLoad({ base: 'bx', index: 'si', seg: 'ss' }, 16, 'ax')).toBe('36 8b 00');
  });

  it('16-bit addressing from 32-bit code takes a 67 prefix', () => {
    expect(movLoad({ base: 'bx', index: 'si', disp: 4 })).toBe('67 8b 40 04');
  });

  it.each([
    [{ base: 'bx', index: 'bp' }, /not a 16-bit addressing form/],
    [{ base: 'si', index: 'di' }, /not a 16-bit addressing form/],
    [{ base: 'ax' }, /not a 16-bit addressing form/],
    [{ base: 'bx', index: 'si', scale: 2 }, /no scale/],
    [{ base: 'bx', disp: 0x10000 }, /does not fit 16-bit addressing/],
    [{ base: 'bx', index: 'esi' }, /cannot mix/],
  ] as [MemSpec, RegExp][])('rejects %o', (spec, msg) => {
    expect(() => movLoad(spec, 16, 'ax')).toThrow(msg);
  });
});

describe('prefixes', () => {
  it('66 when the form operand size is not the mode default; 67 likewise for address size', () => {
    expect(hex(encode(ins('Add_rm16_r16', reg('ax'), reg('bx')), 32))).toBe('66 01 d8');
    expect(hex(encode(ins('Add_rm16_r16', reg('ax'), reg('bx')), 16))).toBe('01 d8');
    expect(hex(encode(ins('Add_rm32_r32', reg('eax'), reg('ebx')), 16))).toBe('66 01 d8');
    expect(hex(encode(ins('Nopw'), 32))).toBe('66 90');
    expect(hex(encode(ins('Loop_rel8_32_CX', rel(0)), 32))).toBe('67 e2 fd');
    expect(hex(encode(ins(16, 'Movsb_m8_m8'), 32))).toBe('67 a4');
    expect(hex(encode(ins('Movsb_m8_m8', mem({ base: 'di' }), mem({ base: 'si', seg: 'fs' })), 32))).toBe('64 67 a4');
    expect(hex(encode(ins('Monitorw'), 32))).toBe('67 0f 01 c8');
  });

  it('mandatory prefixes come last, after 66 (POPCNT r16: 66 F3 0F B8)', () => {
    expect(hex(encode(ins('Popcnt_r16_rm16', reg('ax'), reg('bx')), 32))).toBe('66 f3 0f b8 c3');
    expect(hex(encode(ins('Movd_xmm_rm32', reg('xmm1'), reg('eax')), 16))).toBe('66 0f 6e c8');
  });

  it('order: segment, F0, 66, 67, F3/F2 (as iced-x86 writes them)', () => {
    const i = ins('Add_rm16_r16', mem({ base: 'bx', index: 'si', seg: 'fs' }), reg('ax'));
    i.prefixes = Prefix.Lock | Prefix.Rep;
    expect(hex(encode(i, 32))).toBe('64 f0 66 67 f3 01 00');
  });

  it('a forced segment prefix is emitted even when it is the default (and on non-memory forms)', () => {
    const i = ins('Mov_r32_rm32', reg('eax'), mem({ base: 'eax' }));
    i.segmentPrefix = Reg.DS;
    expect(hex(encode(i, 32))).toBe('3e 8b 00');
    const j = ins('Je_rel8_32', rel(2));
    j.segmentPrefix = Reg.CS; // branch hint
    expect(hex(encode(j, 32))).toBe('2e 74 ff');
  });

  it('string instructions: DS:[rSI] overridable, ES:[rDI] not', () => {
    expect(hex(encode(ins('Lodsb_AL_m8', reg('al'), mem({ base: 'esi', seg: 'gs' })), 32))).toBe('65 ac');
    expect(() => ins('Stosb_m8_AL', mem({ base: 'edi', seg: 'fs' }), reg('al'))).toThrow(/cannot take a segment override/);
    const rep = ins('Movsd_m32_m32');
    rep.prefixes = Prefix.Rep;
    expect(hex(encode(rep, 32))).toBe('f3 a5');
  });

  it('LOCK needs a lockable form and a memory destination', () => {
    const ok = ins('Add_rm32_imm8', mem({ base: 'eax' }), imm(1));
    ok.prefixes = Prefix.Lock;
    expect(hex(encode(ok, 32))).toBe('f0 83 00 01');
    const reg1 = ins('Add_rm32_imm8', reg('eax'), imm(1));
    reg1.prefixes = Prefix.Lock;
    expect(() => encode(reg1, 32)).toThrow(/memory destination/);
    const cmp = ins('Cmp_rm32_imm8', mem({ base: 'eax' }), imm(1));
    cmp.prefixes = Prefix.Lock;
    expect(() => encode(cmp, 32)).toThrow(/LOCK is not allowed/);
  });

  it('FSTCW-like forms start with 9B (WAIT) ahead of all prefixes', () => {
    expect(hex(encode(ins('Fstcw_m2byte', mem({ base: 'ebx', seg: 'fs' })), 32))).toBe('9b 64 d9 3b');
    expect(hex(encode(ins('Fstsw_AX'), 32))).toBe('9b df e0');
  });
});

describe('immediates', () => {
  it('accepts signed and unsigned spellings of the same bits', () => {
    expect(enc32('Add_rm32_imm32', reg('ebx'), imm(-1))).toBe('81 c3 ff ff ff ff');
    expect(enc32('Add_rm32_imm32', reg('ebx'), imm(0xffffffff))).toBe('81 c3 ff ff ff ff');
    expect(enc32('Add_rm32_imm8', reg('ebx'), imm(-128))).toBe('83 c3 80');
    expect(enc32('Add_rm32_imm8', reg('ebx'), imm(0xffffff80))).toBe('83 c3 80');
    expect(hex(encode(ins('Add_rm16_imm8', reg('bx'), imm(0xffff)), 16))).toBe('83 c3 ff');
    expect(enc32('Mov_r8_imm8', reg('bh'), imm(200))).toBe('b7 c8');
    expect(enc32('Enterd_imm16_imm8', imm(0x1234), imm(3))).toBe('c8 34 12 03');
    expect(enc32('Shl_rm32_1', reg('edx'))).toBe('d1 e2');
  });

  it.each([
    ['Add_rm32_imm8', 128, /sign-extended to 32 bits/],
    ['Add_rm32_imm8', 0xff, /sign-extended to 32 bits/],
    ['Mov_r8_imm8', 256, /does not fit 8 bits/],
    ['Mov_r8_imm8', -129, /does not fit 8 bits/],
    ['Add_rm32_imm32', 0x100000000, /does not fit 32 bits/],
  ] as [string, number, RegExp][])('%s rejects %d', (name, v, msg) => {
    expect(() => encode(ins(name, reg(name === 'Mov_r8_imm8' ? 'al' : 'eax'), imm(v)), 32)).toThrow(msg);
  });

  it('the shift-by-one forms take only the constant 1', () => {
    expect(() => ins('Shl_rm32_1', reg('eax'), imm(2))).toThrow(/constant 1/);
  });
});

describe('branches', () => {
  const at = (name: string, ip: number, target: number, bits: 16 | 32 = 32): string => {
    const i = ins(name, rel(target));
    i.ip = ip;
    return hex(encode(i, bits));
  };

  it('rel8 reaches -128..127 from the next instruction', () => {
    expect(at('Jmp_rel8_32', 0x1000, 0x1002 + 127)).toBe('eb 7f');
    expect(at('Jmp_rel8_32', 0x1000, 0x1002 - 128)).toBe('eb 80');
    expect(() => at('Jmp_rel8_32', 0x1000, 0x1002 + 128)).toThrow(/out of rel8 range/);
    expect(() => at('Jmp_rel8_32', 0x1000, 0x1002 - 129)).toThrow(/out of rel8 range/);
  });

  it('rel32 and rel16 wrap with the instruction pointer', () => {
    expect(at('Jmp_rel32_32', 0xfffffff0, 0x10)).toBe('e9 1b 00 00 00');
    expect(at('Call_rel16', 0xfff0, 0x10, 16)).toBe('e8 1d 00');
    expect(at('Jmp_rel8_16', 0xfffe, 0x0005, 16)).toBe('eb 05');
    expect(at('Jmp_rel16', 0x100, 0x100, 32)).toBe('66 e9 fc ff');
  });

  it('XBEGIN, LOOP and JCXZ', () => {
    expect(at('Xbegin_rel32', 0, 0x100)).toBe('c7 f8 fa 00 00 00');
    expect(at('Loop_rel8_32_ECX', 0x10, 0x10)).toBe('e2 fe');
    expect(at('Jecxz_rel8_32', 0x10, 0x20)).toBe('e3 0e');
  });

  it('far pointers: offset then selector', () => {
    expect(hex(encode(ins('Jmp_ptr1632', far(0x10, 0x12345678)), 32))).toBe('ea 78 56 34 12 10 00');
    expect(hex(encode(ins('Call_ptr1616', far(0xf000, 0xfff0)), 16))).toBe('9a f0 ff 00 f0');
    expect(() => encode(ins('Jmp_ptr1616', far(0x10, 0x10000)), 16)).toThrow(/does not fit 16 bits/);
  });

  it('NearBranch16 targets must be 16-bit', () => {
    expect(() => at('Jmp_rel16', 0, 0x10000, 16)).toThrow(/16-bit instruction pointer/);
  });
});

describe('refusals', () => {
  it.each([
    ['64-bit-only form', () => encode(ins('Add_rm64_r64', reg('rax'), reg('rbx')), 32), /only in 64-bit mode/],
    ['VEX form', () => encode(buildInstruction(formNamed('VEX_Vaddps_xmm_xmm_xmmm128'), []), 32), /./],
    ['register of the wrong family', () => encode(ins('Mov_r32_rm32', reg('eax'), reg('ax')), 32), /32-bit GPR/],
    ['REX-only byte register', () => encode(ins('Mov_rm8_r8', reg('al'), reg('spl')), 32), /8-bit GPR/],
    ['ESP as index', () => encode(ins('Mov_r32_rm32', reg('eax'), mem({ index: 'esp' })), 32), /index register/],
    ['MOV to CS', () => encode(ins('Mov_Sreg_rm16', reg('cs'), reg('ax')), 16), /cs cannot be the destination/],
    ['CR1', () => encode(ins('Mov_cr_r32', reg('cr1'), reg('eax')), 32), /control register/],
    ['CR8 outside 64-bit mode', () => encode(ins('Mov_cr_r32', reg('cr8'), reg('eax')), 32), /control register/],
    ['moffs with a base', () => ins('Mov_EAX_moffs32', reg('eax'), mem({ base: 'ebx' })), /absolute address/],
    ['REP with REPNE', () => { const i = ins('Movsb_m8_m8'); i.prefixes = Prefix.Rep | Prefix.Repne; return encode(i, 32); }, /REP and REPNE/],
    ['POP CS', () => encode(ins('Popw_CS'), 16), /8086/],
    ['too many operands', () => ins('Nopd', reg('eax')), /one too many/],
    ['missing operand', () => ins('Mov_r32_rm32', reg('eax')), /must be a register or memory/],
    ['unknown form', () => ins('Frobnicate_r32'), /no instruction form named/],
    ['wrong operand kind in a hand-made instruction', () => { const i = ins('Inc_rm32', reg('eax')); i.opKinds[0] = OpKind.Immediate32; return encode(i, 32); }, /must be Register or Memory/],
    ['operand count mismatch', () => { const i = ins('Inc_rm32', reg('eax')); i.opCount = 2; return encode(i, 32); }, /takes 1 operand/],
    ['over 15 bytes', () => {
      const i = ins('Add_rm32_imm32', mem({ base: 'eax', index: 'ebx', disp: 0x12345678, seg: 'fs' }), imm(1));
      i.prefixes = Prefix.Lock | Prefix.Rep;
      return encode(i, 16);
    }, /15-byte limit/],
    ['bits other than 16/32', () => encode(ins('Nopd'), 64 as 32), /16- and 32-bit/],
  ] as [string, () => unknown, RegExp][])('%s', (_, f, msg) => {
    expect(f).toThrow(EncodeError);
    expect(f).toThrow(msg);
  });

  it('refuses operands whose bytes decode as a more specific form, and names it', () => {
    const cases: [ReturnType<typeof ins>, string, number][] = [
      [ins('Xchg_r32_EAX', reg('eax'), reg('eax')), 'Nopd', 32],
      [ins('Reservednop_rm32_r32_0F18', mem({ base: 'eax' }), reg('eax')), 'Prefetchnta_m8', 32],
      [ins('Reservednop_rm32_r32_0F1F', reg('ecx'), reg('eax')), 'Nop_rm32', 32],
      [(() => { const i = ins('Bsf_r32_rm32', reg('eax'), reg('ebx')); i.prefixes = Prefix.Rep; return i; })(), 'Tzcnt_r32_rm32', 32],
      [(() => { const i = ins('Nopd'); i.prefixes = Prefix.Rep; return i; })(), 'Pause', 32],
    ];
    for (const [i, winner, bits] of cases) {
      let err: unknown;
      try {
        encode(i, bits as 32);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EncodeError);
      expect((err as EncodeError).shadowedBy).toBe(formNamed(winner).id);
      // The escape hatch emits the bytes; iced agrees which form they are.
      const raw = encode(i, bits as 32, { allowShadowed: true });
      const d = new iced.Decoder(bits, raw, iced.DecoderOptions.None);
      const ii = d.decode();
      expect(ii.code).toBe(formNamed(winner).id);
      ii.free();
      d.free();
    }
    // Other registers are fine.
    expect(hex(encode(ins('Xchg_r32_EAX', reg('ecx'), reg('eax')), 32))).toBe('91');
    expect(hex(encode(ins('Reservednop_rm32_r32_0F18', reg('ecx'), reg('eax')), 32))).toBe('0f 18 c1');
  });
});

describe('API details', () => {
  it('encodeInto writes at an offset; encodedLength agrees; the instruction is not changed', () => {
    const i = ins('Mov_r32_rm32', reg('eax'), mem({ base: 'ebx', index: 'esi', scale: 4, disp: 8, seg: 'fs' }));
    const before = JSON.stringify(i);
    const out = new Uint8Array(16).fill(0xee);
    const n = encodeInto(i, 32, out, 3);
    expect(n).toBe(5);
    expect(hex(out.subarray(0, 9))).toBe('ee ee ee 64 8b 44 b3 08 ee');
    expect(encodedLength(i, 32)).toBe(5);
    expect(JSON.stringify(i)).toBe(before);
    expect(() => encodeInto(i, 32, new Uint8Array(4), 0)).toThrow(/buffer too small/);
  });

  it('3DNow! forms put the opcode after the operands', () => {
    expect(hex(encode(ins('D3NOW_Pi2fd_mm_mmm64', reg('mm0'), mem({ base: 'eax', disp: 4 })), 32))).toBe('0f 0f 40 04 0d');
  });

  it('x87 ST(i) in the second opcode byte', () => {
    expect(enc32('Fadd_st0_sti', reg('st(0)'), reg('st(3)'))).toBe('d8 c3');
    expect(enc32('Fadd_st0_sti', reg('st3'))).toBe('d8 c3'); // implicit ST(0) left out
    expect(enc32('Fxch_st0_sti', reg('st(1)'))).toBe('d9 c9');
  });

  it('builders store immediates the way the decoder reports them', () => {
    expect(ins('Add_rm16_imm8', reg('ax'), imm(-1)).imm).toBe(0xffff);
    expect(ins('Add_rm32_imm8', reg('eax'), imm(-1)).imm).toBe(0xffffffff);
    expect(ins('Mov_r8_imm8', reg('al'), imm(-1)).imm).toBe(0xff);
    const e = ins('Enterw_imm16_imm8', imm(8), imm(1));
    expect([e.opKinds[0], e.opKinds[1], e.imm, e.imm2]).toEqual([OpKind.Immediate16, OpKind.Immediate8_2nd, 8, 1]);
    const m = ins('Mov_r32_rm32', reg('eax'), mem({ base: 'ebp', disp: -4 }));
    expect([m.memDisp, m.memSegment]).toEqual([0xfffffffc, Reg.SS]);
  });

  it('random instructions encode to the same bytes through encode and encodeInto', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 7 }), fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.integer({ min: 0, max: 0xffffffff }), (r, d, ip) => {
        const i = ins('Add_rm32_r32', mem({ base: Reg.EAX + r, disp: d }), reg(Reg.EAX + ((r + 1) & 7)));
        i.ip = ip;
        const a = encode(i, 32);
        const out = new Uint8Array(20);
        const n = encodeInto(i, 32, out, 2);
        expect(hex(out.subarray(2, 2 + n))).toBe(hex(a));
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});

describe('asm1: form by mnemonic and operand shapes', () => {
  const a = (bits: 16 | 32, mn: string, ...ops: Operand[]): string => hex(encode(asm1(bits, mn, ...ops), bits));

  it.each([
    [32, 'add', [reg('eax'), imm(5)], '83 c0 05'],
    [32, 'add', [reg('eax'), imm(0x1000)], '05 00 10 00 00'],
    [32, 'add', [reg('ax'), imm(0xffff)], '66 83 c0 ff'],
    [32, 'add', [reg('al'), imm(5)], '04 05'],
    [32, 'mov', [reg('eax'), mem(0x1234)], 'a1 34 12 00 00'],
    [32, 'mov', [reg('eax'), reg('ebx')], '89 d8'],
    [32, 'mov', [mem({ base: 'eax', size: 2 }), reg('es')], '8c 00'],
    [32, 'push', [imm(5)], '6a 05'],
    [32, 'push', [imm(1000)], '68 e8 03 00 00'],
    [16, 'push', [imm(1000)], '68 e8 03'],
    [16, 'ret', [], 'c3'],
    [32, 'ret', [], 'c3'],
    [32, 'shl', [reg('eax'), imm(1)], 'd1 e0'],
    [32, 'sal', [reg('eax'), imm(1)], 'd1 e0'],
    [32, 'jz', [rel(0)], '0f 84 fa ff ff ff'],
    [16, 'jmp', [rel(0)], 'e9 fd ff'],
    [32, 'loop', [rel(0)], 'e2 fe'],
    [32, 'xchg', [reg('eax'), reg('ecx')], '91'],
    [32, 'xchg', [reg('ecx'), reg('eax')], '91'],
    [32, 'xchg', [reg('eax'), reg('eax')], '87 c0'],
    [32, 'test', [reg('ebx'), mem({ base: 'eax' })], '85 18'],
    [32, 'fldenv', [mem({ base: 'eax' })], 'd9 20'],
    [16, 'fldenv', [mem({ base: 'bx' })], 'd9 27'],
    [32, 'fld', [mem({ base: 'eax', size: 8 })], 'dd 00'],
    [32, 'fld', [reg('st(2)')], 'd9 c2'],
    [32, 'movsd', [], 'a5'],
    [32, 'movsd', [reg('xmm0'), reg('xmm1')], 'f2 0f 10 c1'],
    [32, 'xlat', [], 'd7'],
    [32, 'lgdt', [mem({ base: 'eax' })], '0f 01 10'],
    [32, 'ljmp', [far(0x10, 0x1234)], 'ea 34 12 00 00 10 00'],
  ] as [16 | 32, string, Operand[], string][])('%i-bit %s %o -> %s', (bits, mn, ops, bytes) => {
    expect(a(bits, mn, ...ops)).toBe(bytes);
  });

  it('asks for a size when a memory operand leaves it open', () => {
    expect(() => asm1('push', mem({ base: 'eax' }))).toThrow(/ambiguous/);
    expect(() => asm1('inc', mem({ base: 'eax' }))).toThrow(/ambiguous/);
    expect(() => asm1('fld', mem({ base: 'eax' }))).toThrow(/ambiguous/);
    expect(hex(encode(asm1('push', mem({ base: 'eax', size: 4 })), 32))).toBe('ff 30');
    expect(hex(encode(asm1('call', mem({ base: 'eax', size: 'SegPtr32' })), 32))).toBe('ff 18');
  });

  it('lists every candidate, best first', () => {
    const list = candidates(32, 'add', [reg('eax'), imm(5)]);
    expect(list.map((c) => c.form.name)).toEqual(['Add_rm32_imm8', 'Add_EAX_imm32', 'Add_rm32_imm32']);
    expect(() => candidates(32, 'frob', [])).toThrow(/unknown mnemonic/);
    expect(() => candidates(32, 'add', [reg('eax'), reg('ax')])).toThrow(/no form of 'add'/);
  });
});
