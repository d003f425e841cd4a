// Assembler: labels forward and backward, rel8 -> rel32 (rel16 in 16-bit code) growth at the
// exact reach limits and in cascades, data directives, alignment, and its errors. Branch
// targets are checked by decoding the output with iced-x86.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Assembler, EncodeError, imm, ins, mem, reg, rel } from '../src/encode/index';
import { iced, icedCodeName } from './support/iced';

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

interface Decoded { ip: number; name: string; length: number; target: number }

/** Decodes `count` instructions from the start of `bytes`. */
function decodeAll(bits: 16 | 32, bytes: Uint8Array, origin: number, count: number): Decoded[] {
  const d = new iced.Decoder(bits, bytes, iced.DecoderOptions.None);
  d.ip = BigInt(origin);
  const out: Decoded[] = [];
  for (let k = 0; k < count && d.canDecode; k++) {
    const ii = d.decode();
    out.push({ ip: Number(ii.ip as bigint), name: icedCodeName(ii.code as number), length: ii.length as number, target: Number(ii.nearBranchTarget as bigint) });
    ii.free();
  }
  d.free();
  return out;
}

describe('Assembler', () => {
  it('forward and backward labels, short branches', () => {
    const a = new Assembler(32, 0x401000);
    const top = a.here('top');
    const out = a.label('out');
    a.asm('dec', reg('ecx'));
    a.jcc('z', out);
    a.jmp(top);
    a.bind(out);
    a.asm('ret');
    const r = a.assemble();
    expect(hex(r.bytes)).toBe('49 74 02 eb fb c3');
    expect(r.labels).toEqual(new Map([['top', 0x401000], ['out', 0x401005]]));
    expect(top.address).toBe(0x401000);
  });

  it('rel8 reaches 127 bytes ahead and 128 back; one more byte grows to rel32', () => {
    const fwd = (gap: number): string => {
      const a = new Assembler(32);
      const l = a.label();
      a.jmp(l).fill(gap, 0x90).bind(l);
      return hex(a.assemble().bytes.subarray(0, 5));
    };
    expect(fwd(127)).toBe('eb 7f 90 90 90');
    expect(fwd(128)).toBe('e9 80 00 00 00');
    const back = (gap: number): string => {
      const a = new Assembler(32);
      const l = a.here();
      a.fill(gap, 0x90).jcc('ne', l);
      const b = a.assemble().bytes;
      return hex(b.subarray(gap));
    };
    expect(back(126)).toBe('75 80'); // -128 from the end of the 2-byte jump
    expect(back(127)).toBe('0f 85 7b ff ff ff');
  });

  it('growth cascades: a grown branch can push an earlier one out of reach', () => {
    // j1 jumps over j2 and 120 bytes; j2 jumps over 126 bytes + 2. If j2 grows (it must:
    // 126 + 2 + 1 > 127 after ...), j1's distance grows by 3 (jcc) and crosses 127.
    const a = new Assembler(32);
    const l1 = a.label('l1');
    const l2 = a.label('l2');
    a.jmp(l1);                 // j1
    a.jcc('e', l2);            // j2
    a.fill(121, 0x90);
    a.bind(l1);
    a.fill(7, 0x90);
    a.bind(l2);
    const r = a.assemble();
    const ds = decodeAll(32, r.bytes, 0, 2);
    // j2 spans 128 bytes -> 0F 84 rel32 (6 bytes); j1 then spans 6 + 121 = 127 -> still EB.
    expect(ds.map((d) => d.name)).toEqual(['Jmp_rel8_32', 'Je_rel32_32']);
    expect(ds[0]!.target).toBe(r.labels.get('l1'));
    expect(ds[1]!.target).toBe(r.labels.get('l2'));
    // One more filler byte and j1 must grow too.
    const b = new Assembler(32);
    const m1 = b.label('l1');
    const m2 = b.label('l2');
    b.jmp(m1).jcc('e', m2).fill(122, 0x90).bind(m1).fill(7, 0x90).bind(m2);
    const rb = b.assemble();
    const db = decodeAll(32, rb.bytes, 0, 2);
    expect(db.map((d) => d.name)).toEqual(['Jmp_rel32_32', 'Je_rel32_32']);
    expect(db[0]!.target).toBe(rb.labels.get('l1'));
    expect(db[1]!.target).toBe(rb.labels.get('l2'));
  });

  it('every branch lands on its label (random programs, checked with iced)', () => {
    const CC = ['e', 'ne', 'b', 'ae', 'l', 'g', 'o', 's'];
    fc.assert(
      fc.property(
        fc.constantFrom(16, 32) as fc.Arbitrary<16 | 32>,
        fc.array(fc.record({ kind: fc.constantFrom('jmp', 'jcc', 'call', 'fill', 'bind', 'align'), n: fc.integer({ min: 0, max: 300 }), cc: fc.constantFrom(...CC) }), { minLength: 1, maxLength: 40 }),
        (bits, prog) => {
          const a = new Assembler(bits, 0x100);
          const labels = Array.from({ length: 6 }, (_, k) => a.label(`L${k}`));
          const bound = new Set<number>();
          const branches: { at: number; label: number }[] = [];
          for (const p of prog) {
            const li = p.n % labels.length;
            if (p.kind === 'bind') {
              if (!bound.has(li)) { a.bind(labels[li]!); bound.add(li); }
            } else if (p.kind === 'fill') a.fill(p.n, 0x90);
            else if (p.kind === 'align') a.align(1 << (p.n % 5), 0xcc);
            else {
              branches.push({ at: branches.length, label: li });
              if (p.kind === 'jmp') a.jmp(labels[li]!);
              else if (p.kind === 'call') a.call(labels[li]!);
              else a.jcc(p.cc, labels[li]!);
            }
          }
          for (let k = 0; k < labels.length; k++) if (!bound.has(k)) a.bind(labels[k]!);
          const r = a.assemble();
          // Walk the output: fills are 0x90/0xCC, branches are E8/E9/EB/7x/0F 8x.
          const d = new iced.Decoder(bits, r.bytes, iced.DecoderOptions.None);
          d.ip = 0x100n;
          let seen = 0;
          while (d.canDecode) {
            const ii = d.decode();
            const name = icedCodeName(ii.code as number);
            if (/^(J|Call_rel)/.test(name)) {
              const want = r.labels.get(`L${branches[seen]!.label}`);
              expect(Number(ii.nearBranchTarget as bigint), `${bits}-bit branch #${seen} ${name}`).toBe(want);
              seen++;
            }
            ii.free();
          }
          d.free();
          expect(seen).toBe(branches.length);
        },
      ),
      { seed: 424242, numRuns: 300 },
    );
  });

  it('16-bit code grows rel8 to rel16; CALL is rel16', () => {
    const a = new Assembler(16, 0x7c00);
    const far1 = a.label('far');
    const back = a.here('back');
    a.jmp(far1).jcc('c', far1).call(back).fill(300, 0).bind(far1).jmp(back);
    const r = a.assemble();
    expect(hex(r.bytes.subarray(0, 10))).toBe('e9 33 01 0f 82 2f 01 e8 f6 ff');
    const last = decodeAll(16, r.bytes.subarray(r.labels.get('far')! - 0x7c00), r.labels.get('far')!, 1)[0]!;
    expect([last.name, last.target]).toEqual(['Jmp_rel16', 0x7c00]);
  });

  it('LOOP/JECXZ cannot grow: out of reach is an error with the address', () => {
    const a = new Assembler(32, 0x1000);
    const l = a.here('l');
    a.fill(200);
    a.asm('loop', rel(l));
    expect(() => a.assemble()).toThrow(/at 0x10c8: Loop_rel8_32_ECX: branch target 0x1000 is out of rel8 range/);
  });

  it('data directives, labels as data and operands, alignment relative to the origin', () => {
    const a = new Assembler(32, 0x1003);
    const msg = a.label('msg');
    const tbl = a.label('tbl');
    a.asm('mov', reg('eax'), imm(msg));          // label as immediate: always imm32
    a.asm('mov', reg('ebx'), mem({ disp: tbl, size: 4 })); // moffs form with the label address
    a.ins('Push_rm32', mem({ base: 'esi', disp: tbl }));    // label displacement: disp32
    a.align(8, 0xcc);
    a.bind(msg).db('hi', 0, -1, 0x7f);
    a.bind(tbl).dw(0x1234, -2).dd(msg, 0xdeadbeef, -1);
    a.bytes([1, 2, 3]).fill(2, 0xab).align(4);
    const r = a.assemble();
    const msgAt = 0x1003 + 5 + 6 + 6;
    const aligned = (msgAt + 7) & ~7;
    expect(r.labels.get('msg')).toBe(aligned);
    const tblAt = aligned + 5;
    expect(r.labels.get('tbl')).toBe(tblAt);
    const le32 = (v: number): string => hex(Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24));
    expect(hex(r.bytes.subarray(0, 17))).toBe(`b8 ${le32(aligned)} 8b 1d ${le32(tblAt)} ff b6 ${le32(tblAt)}`);
    expect(r.bytes.subarray(17, aligned - 0x1003).every((b) => b === 0xcc)).toBe(true);
    const endBefore = tblAt + 4 + 12 + 3 + 2;
    const pad = (4 - (endBefore % 4)) % 4;
    expect(hex(r.bytes.subarray(aligned - 0x1003))).toBe(
      `68 69 00 ff 7f 34 12 fe ff ${le32(aligned)} ef be ad de ff ff ff ff 01 02 03 ab ab${' 90'.repeat(pad)}`,
    );
    expect((0x1003 + r.bytes.length) % 4).toBe(0);
  });

  it('emit() takes ready instructions; their branch targets are absolute', () => {
    const a = new Assembler(32, 0x2000);
    a.emit(ins('Jmp_rel32_32', rel(0x2000)));
    a.emit(ins('Mov_r32_imm32', reg('eax'), imm(1)));
    expect(hex(a.assemble().bytes)).toBe('e9 fb ff ff ff b8 01 00 00 00');
  });

  it('asm() and ins() mention labels before they are bound', () => {
    const a = new Assembler(16);
    const data = a.label('data');
    a.asm('mov', reg('ax'), imm(data));
    a.ins('Mov_r16_rm16', reg('bx'), mem({ base: 'bx', disp: data }));
    a.asm('ret');
    a.bind(data).dw(0xbeef);
    expect(hex(a.assemble().bytes)).toBe('b8 08 00 8b 9f 08 00 c3 ef be');
  });

  it.each([
    ['an unbound label', (a: Assembler) => { a.jmp(a.label('nowhere')); a.assemble(); }, /label "nowhere" is used but never bound/],
    ['a second bind', (a: Assembler) => { const l = a.here('x'); a.bind(l); }, /label "x" is already bound/],
    ['a duplicate name', (a: Assembler) => { a.label('x'); a.label('x'); }, /label "x" already exists/],
    ['a label of another assembler', (a: Assembler) => { a.jmp(new Assembler(32).label('y')); }, /belongs to another assembler/],
    ['a label outside any assembler', () => { ins('Jmp_rel32_32', rel(new Assembler(32).label('z'))); }, /only be used inside an Assembler/],
    ['a bad alignment', (a: Assembler) => { a.align(0); }, /positive integer/],
    ['a data value too wide', (a: Assembler) => { a.dw(0x10000); a.assemble(); }, /does not fit 16 bits/],
    ['a non-byte string', (a: Assembler) => { a.db('\u20ac'); }, /does not fit a byte/],
    ['an unknown mnemonic', (a: Assembler) => { a.asm('frob'); }, /unknown mnemonic/],
  ] as [string, (a: Assembler) => void, RegExp][])('rejects %s', (_, f, msg) => {
    const a = new Assembler(32);
    expect(() => f(a)).toThrow(EncodeError);
    expect(() => f(new Assembler(32))).toThrow(msg);
  });
});
