// Hand-written decoder cases: the rules the SDM states explicitly, each checked with literal
// expectations (the property test covers breadth; these pin down the rules by name).
import { describe, expect, it } from 'vitest';
import { Decoder, Instruction, Invalid, OpKind, formName, registerName } from '../src/index';

const dec = (bits: 16 | 32 | 64, ...bytes: number[]): Instruction => {
  const out = new Instruction();
  new Decoder(bits, Uint8Array.from(bytes), 0x1000).decodeAt(out);
  return out;
};

describe('length and validity limits', () => {
  it('reports truncation, never a wrong length', () => {
    expect(dec(32, 0x0f).invalid).toBe(Invalid.Truncated);
    expect(dec(32, 0xb8, 1, 2).invalid).toBe(Invalid.Truncated);
    expect(dec(32, 0x66).invalid).toBe(Invalid.Truncated);
    expect(dec(64, 0x48).invalid).toBe(Invalid.Truncated);
    expect(dec(32).invalid).toBe(Invalid.Truncated);
  });
  it('allows 15 bytes and rejects 16 (SDM vol. 2 §2.3.11)', () => {
    const ok = dec(32, ...Array(14).fill(0x26), 0x90);
    expect(ok.valid).toBe(true);
    expect(ok.length).toBe(15);
    expect(dec(32, ...Array(15).fill(0x26), 0x90).invalid).toBe(Invalid.TooLong);
  });
  it('rejects LOCK on a register destination and on instructions that do not take it', () => {
    expect(dec(32, 0xf0, 0x01, 0xc0).invalid).toBe(Invalid.Lock); // lock add eax, eax
    expect(dec(32, 0xf0, 0x90).invalid).toBe(Invalid.Lock);
    expect(dec(32, 0xf0, 0x01, 0x00).valid).toBe(true); // lock add [eax], eax
  });
  it('rejects segment register 6/7 and MOV to CS', () => {
    expect(dec(32, 0x8e, 0xf0).invalid).toBe(Invalid.Register);
    expect(dec(32, 0x8e, 0xc8).invalid).toBe(Invalid.Register);
    expect(formName(dec(32, 0x8c, 0xc8).form)).toBe('Mov_r32m16_Sreg'); // mov eax, cs is fine
  });
  it('accepts only CR0, CR2, CR3, CR4 and (64-bit) CR8', () => {
    expect(dec(32, 0x0f, 0x20, 0xc8).invalid).toBe(Invalid.Register); // cr1
    expect(dec(32, 0x0f, 0x22, 0xd8).valid).toBe(true); // mov cr3, eax
    expect(registerName(dec(64, 0x44, 0x0f, 0x20, 0xc0).opRegs[1]!)).toBe('cr8');
  });
});

describe('mode-dependent encodings', () => {
  it('drops instructions removed in 64-bit mode', () => {
    for (const op of [0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x60, 0x61, 0xce, 0xd4, 0xd5, 0xd6]) {
      expect(dec(32, op, 0x0a).valid, `op ${op.toString(16)} in 32-bit`).toBe(true);
      expect(dec(64, op, 0x0a).valid, `op ${op.toString(16)} in 64-bit`).toBe(false);
    }
  });
  it('reads 40-4F as INC/DEC outside 64-bit mode and as REX inside it', () => {
    expect(formName(dec(32, 0x40).form)).toBe('Inc_r32');
    expect(formName(dec(16, 0x4f).form)).toBe('Dec_r16');
    const i = dec(64, 0x48, 0x89, 0xc3);
    expect(formName(i.form)).toBe('Mov_rm64_r64');
    expect(registerName(i.opRegs[0]!)).toBe('rbx');
  });
  it('tells BOUND/LES/LDS from EVEX/VEX by ModRM.mod outside 64-bit mode', () => {
    expect(formName(dec(32, 0x62, 0x00).form)).toBe('Bound_r32_m3232');
    expect(formName(dec(32, 0xc4, 0x00).form)).toBe('Les_r32_m1632');
    expect(formName(dec(32, 0xc5, 0x00).form)).toBe('Lds_r32_m1632');
    expect(formName(dec(32, 0xc5, 0xf8, 0x77).form)).toBe('VEX_Vzeroupper');
    expect(formName(dec(64, 0xc5, 0x78, 0x77).form)).toBe('VEX_Vzeroupper');
    expect(formName(dec(32, 0x62, 0xf1, 0x7c, 0x48, 0x58, 0xc1).form)).toBe('EVEX_Vaddps_zmm_k1z_zmm_zmmm512b32_er');
    expect(formName(dec(32, 0x8f, 0x00).form)).toBe('Pop_rm32');
  });
  it('rejects VEX after 66/F2/F3/REX/LOCK (§2.3.2)', () => {
    expect(dec(64, 0x66, 0xc5, 0xf8, 0x77).invalid).toBe(Invalid.VexPrefix);
    expect(dec(64, 0x40, 0xc5, 0xf8, 0x77).invalid).toBe(Invalid.VexPrefix);
  });
  it('ignores a REX prefix that is not last', () => {
    const i = dec(64, 0x48, 0x66, 0x89, 0xc3);
    expect(formName(i.form)).toBe('Mov_rm16_r16');
  });
  it('NOP vs XCHG and PAUSE at 90', () => {
    expect(formName(dec(64, 0x90).form)).toBe('Nopd');
    expect(formName(dec(64, 0x41, 0x90).form)).toBe('Xchg_r32_EAX');
    expect(formName(dec(32, 0xf3, 0x90).form)).toBe('Pause');
  });
});

describe('operands', () => {
  it('32-bit SIB with ESP base uses SS', () => {
    const i = dec(32, 0x8b, 0x44, 0x24, 0x08);
    expect(i.opKinds[1]).toBe(OpKind.Memory);
    expect(registerName(i.memBase)).toBe('esp');
    expect(i.memIndex).toBe(0);
    expect(i.memDisp).toBe(8);
    expect(registerName(i.memSegment)).toBe('ss');
  });
  it('16-bit addressing: [bp+disp8] is SS-relative and displacements wrap at 16 bits', () => {
    const i = dec(16, 0x8b, 0x46, 0xfe);
    expect(registerName(i.memBase)).toBe('bp');
    expect(i.memDisp).toBe(0xfffe);
    expect(registerName(i.memSegment)).toBe('ss');
    const j = dec(16, 0x8b, 0x00); // mov ax, [bx+si]
    expect([registerName(j.memBase), registerName(j.memIndex)]).toEqual(['bx', 'si']);
  });
  it('segment overrides, moffs and RIP-relative addresses', () => {
    const m = dec(32, 0x64, 0xa1, 0x78, 0x56, 0x34, 0x12);
    expect(formName(m.form)).toBe('Mov_EAX_moffs32');
    expect(m.memDisp).toBe(0x12345678);
    expect(registerName(m.memSegment)).toBe('fs');
    const r = dec(64, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00); // mov eax, [rip+0x10]
    expect(registerName(r.memBase)).toBe('rip');
    expect(r.memDisp).toBe(0x1000 + 6 + 0x10);
  });
  it('relative and far branch targets', () => {
    const j = dec(32, 0xeb, 0xfe);
    expect(j.opKinds[0]).toBe(OpKind.NearBranch32);
    expect(j.target).toBe(0x1000);
    const c = dec(16, 0xe8, 0xfd, 0xff);
    expect(c.target).toBe(0x1000);
    const f = dec(32, 0xea, 0x78, 0x56, 0x34, 0x12, 0x08, 0x00);
    expect(f.opKinds[0]).toBe(OpKind.FarBranch32);
    expect([f.farSelector, f.target]).toEqual([8, 0x12345678]);
  });
  it('immediates keep their operand width; ENTER has two', () => {
    const p = dec(32, 0x6a, 0xff);
    expect(p.opKinds[0]).toBe(OpKind.Immediate8to32);
    expect(p.imm).toBe(0xffffffff);
    const e = dec(32, 0xc8, 0x10, 0x00, 0x01);
    expect([e.imm, e.imm2, e.opKinds[1]]).toEqual([0x10, 1, OpKind.Immediate8_2nd]);
    const m = dec(64, 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8);
    expect([m.imm, m.immHi, m.length]).toEqual([0x04030201, 0x08070605, 10]);
  });
  it('3DNow! takes its opcode from the suffix byte', () => {
    const i = dec(32, 0x0f, 0x0f, 0xc1, 0xbf);
    expect(formName(i.form)).toBe('D3NOW_Pavgusb_mm_mmm64');
    expect(i.length).toBe(4);
    expect(dec(32, 0x0f, 0x0f, 0xc1, 0x00).invalid).toBe(Invalid.Undefined);
  });
});

describe('Decoder iteration', () => {
  it('reuses the output object without stale fields', () => {
    const out = new Instruction();
    const d = new Decoder(32, Uint8Array.from([0x8b, 0x44, 0x24, 0x08, 0x89, 0xc3]));
    d.decodeOut(out);
    expect(out.memBase).not.toBe(0);
    d.decodeOut(out);
    expect(formName(out.form)).toBe('Mov_rm32_r32');
    expect(out.memBase).toBe(0);
    expect(out.ip).toBe(4);
    expect(d.canDecode).toBe(false);
  });
  it('steps one byte over invalid bytes, like objdump', () => {
    const d = new Decoder(64, Uint8Array.from([0x06, 0x90]));
    const a = d.decode();
    expect(a.valid).toBe(false);
    expect(d.position).toBe(1);
    expect(formName(d.decode().form)).toBe('Nopd');
  });
});
