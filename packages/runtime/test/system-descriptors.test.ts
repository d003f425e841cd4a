// LAR, LSL, VERR, VERW, ARPL, LLDT, LTR, SLDT, STR against the SDM's instruction pages (vol. 2A
// LAR/LLDT/LSL/LTR; vol. 2B SLDT/STR/VERR/VERW; vol. 2A ARPL) and vol. 3A §5.10 (pointer
// validation), §7.2.4 (task register, busy flag).
import { imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Eflags, type Cpu } from '../src/index';
import {
  Access, GDT_BASE, Sel, TSS_BASE, catchExceptions, descriptor, enterRing3, flatCode, loadTss, runOn, standardGdt, systemCpu, type Desc,
} from './support/descriptors';

const zf = (cpu: Cpu): boolean => (cpu.eflags & Eflags.ZF) !== 0;
const FIRST_EXTRA = 6; // standardGdt() has 6 entries; extra ones start at selector 0x30

/** Runs `lar/lsl eax, ebx` with EBX = selector (EAX preset to a marker) over a GDT with `extra`. */
function probe(op: 'lar' | 'lsl', extra: readonly Desc[], selector: number, size: 16 | 32 = 32): { zf: boolean; value: number } {
  const cpu = systemCpu(standardGdt(extra));
  catchExceptions(cpu);
  cpu.regs[0] = 0x5a5a5a5a;
  cpu.regs[3] = selector;
  runOn(cpu, (a) => a.asm(op, reg(size === 32 ? 'eax' : 'ax'), reg(size === 32 ? 'ebx' : 'bx')));
  expect(cpu.regs[7]).toBe(-1); // no exception
  return { zf: zf(cpu), value: cpu.regs[0]! >>> 0 };
}

// Base 12345678h, limit ABCDEh, so every field of the returned words is distinguishable.
const sys = (type: number): Desc => descriptor(0x12345678, 0xabcde, Access.system(type), 0);

describe('LAR (SDM vol. 2A LAR; vol. 3A §5.10.1)', () => {
  // Table "Segment and Gate Types" of the LAR page, IA-32 column: valid 1, 2, 3, 4, 5, 9, B, C.
  const valid = new Set([0x1, 0x2, 0x3, 0x4, 0x5, 0x9, 0xb, 0xc]);
  for (let type = 0; type < 16; type++) {
    it(`system type ${type.toString(16).toUpperCase()}h: ${valid.has(type) ? 'ZF = 1 with the access rights' : 'ZF = 0, destination unchanged'}`, () => {
      const r = probe('lar', [sys(type)], FIRST_EXTRA * 8);
      expect(r.zf).toBe(valid.has(type));
      // 32-bit operand: second dword masked by 00FxFF00h (x undefined, so not compared).
      if (valid.has(type)) expect(r.value & 0x00f0ff00).toBe((0x80 | type) << 8);
      else expect(r.value).toBe(0x5a5a5a5a);
    });
  }

  it('code and data segments: access byte, AVL/D/G flags; 16-bit operand gets FF00h only', () => {
    const code = descriptor(0, 0xfffff, Access.code(0), 0xd); // G D AVL
    const r = probe('lar', [code], 0x30);
    expect(r.zf).toBe(true);
    expect(r.value & 0x00f0ff00).toBe(0x00d09a00);
    const r16 = probe('lar', [code], 0x30, 16);
    expect(r16.value).toBe(0x5a5a9a00);
  });

  it('does not check P: a not-present data segment still gives ZF = 1', () => {
    const r = probe('lar', [descriptor(0, 0xffff, Access.data(0) & 0x7f)], 0x30);
    expect(r.zf).toBe(true);
    expect(r.value & 0xff00).toBe(0x1200);
  });

  it('privilege: DPL < RPL gives ZF = 0 for data and non-conforming code, but not for conforming code', () => {
    expect(probe('lar', [descriptor(0, 0xffff, Access.data(0))], 0x30 | 3).zf).toBe(false);
    expect(probe('lar', [descriptor(0, 0xffff, Access.code(0))], 0x30 | 3).zf).toBe(false);
    expect(probe('lar', [descriptor(0, 0xffff, Access.code(0, true))], 0x30 | 3).zf).toBe(true);
    expect(probe('lar', [descriptor(0, 0xffff, Access.data(3))], 0x30 | 3).zf).toBe(true);
  });

  it('null selector, selector beyond the GDT limit, and TI = 1 without an LDT: ZF = 0, no fault', () => {
    expect(probe('lar', [], 0).zf).toBe(false);
    expect(probe('lar', [], 0x30).zf).toBe(false);
    expect(probe('lar', [], 0x0c).zf).toBe(false);
  });

  it('at CPL 3, DPL 0 descriptors are invisible (the "sensitive" behaviour of reference part (c))', () => {
    const cpu = systemCpu();
    loadTss(cpu);
    catchExceptions(cpu);
    enterRing3(cpu);
    cpu.regs[3] = Sel.DATA0;
    cpu.regs[2] = Sel.DATA3;
    runOn(cpu, (a) => {
      a.asm('lar', reg('eax'), reg('ebx'));
      a.asm('setz', reg('cl'));
      a.asm('lar', reg('eax'), reg('edx'));
      a.asm('setz', reg('ch'));
      a.asm('hlt'); // CPL 3: #GP(0), caught
    });
    expect(cpu.regs[1]! & 0xffff).toBe(0x0100);
    expect(cpu.regs[7]).toBe(13);
    expect(cpu.regs[6]).toBe(0);
  });
});

describe('LSL (SDM vol. 2A LSL; vol. 3A §5.10.3)', () => {
  // LSL table: valid 1, 2, 3, 9, B (segments with a limit); gates are not.
  const valid = new Set([0x1, 0x2, 0x3, 0x9, 0xb]);
  for (let type = 0; type < 16; type++) {
    it(`system type ${type.toString(16).toUpperCase()}h: ZF = ${valid.has(type) ? 1 : 0}`, () => {
      const r = probe('lsl', [sys(type)], 0x30);
      expect(r.zf).toBe(valid.has(type));
      expect(r.value).toBe(valid.has(type) ? 0xabcde : 0x5a5a5a5a);
    });
  }

  it('returns the byte-granular limit (G = 1 scales by 4 KiB) and a 16-bit destination its low word', () => {
    expect(probe('lsl', [descriptor(0, 0xabcde, Access.data(0), 0x8)], 0x30).value).toBe(0xabcdefff);
    expect(probe('lsl', [descriptor(0, 0xabcde, Access.data(0), 0x8)], 0x30, 16).value).toBe(0x5a5aefff);
    expect(probe('lsl', [descriptor(0, 0x1234, Access.code(0))], 0x30).value).toBe(0x1234);
  });

  it('applies the same privilege rule as LAR', () => {
    expect(probe('lsl', [descriptor(0, 0xffff, Access.data(1))], 0x30 | 2).zf).toBe(false);
    expect(probe('lsl', [descriptor(0, 0xffff, Access.code(1, true))], 0x30 | 2).zf).toBe(true);
  });
});

describe('VERR / VERW (SDM vol. 2B VERR/VERW; vol. 3A §5.10.2)', () => {
  function verify(d: Desc, selector = 0x30): { r: boolean; w: boolean } {
    const cpu = systemCpu(standardGdt([d]));
    catchExceptions(cpu);
    cpu.regs[3] = selector;
    runOn(cpu, (a) => {
      a.asm('verr', reg('bx'));
      a.asm('setz', reg('cl'));
      a.asm('verw', reg('bx'));
      a.asm('setz', reg('ch'));
    });
    expect(cpu.regs[7]).toBe(-1);
    return { r: (cpu.regs[1]! & 0xff) === 1, w: ((cpu.regs[1]! >> 8) & 0xff) === 1 };
  }
  it('non-conforming code: readable → VERR 1, VERW 0; execute-only → both 0', () => {
    expect(verify(descriptor(0, 0xffff, Access.code(0)))).toEqual({ r: true, w: false });
    expect(verify(descriptor(0, 0xffff, Access.code(0, false, false)))).toEqual({ r: false, w: false });
  });
  it('conforming readable code is readable from any RPL; non-conforming is not when DPL < RPL', () => {
    expect(verify(descriptor(0, 0xffff, Access.code(0, true)), 0x30 | 3)).toEqual({ r: true, w: false });
    expect(verify(descriptor(0, 0xffff, Access.code(0, true, false)), 0x30 | 3)).toEqual({ r: false, w: false });
    expect(verify(descriptor(0, 0xffff, Access.code(0)), 0x30 | 3)).toEqual({ r: false, w: false });
  });
  it('data: writable → both 1; read-only → VERR only; DPL < RPL → neither', () => {
    expect(verify(descriptor(0, 0xffff, Access.data(0)))).toEqual({ r: true, w: true });
    expect(verify(descriptor(0, 0xffff, Access.data(0, false)))).toEqual({ r: true, w: false });
    expect(verify(descriptor(0, 0xffff, Access.data(0)), 0x30 | 1)).toEqual({ r: false, w: false });
  });
  it('system descriptors and the null selector: neither', () => {
    expect(verify(descriptor(TSS_BASE, 0x67, Access.system(0x9)))).toEqual({ r: false, w: false });
    expect(verify([0, 0], 0)).toEqual({ r: false, w: false });
  });
});

describe('ARPL (SDM vol. 2A ARPL; vol. 3A §5.10.4)', () => {
  it('raises the destination RPL to the source RPL with ZF = 1, else ZF = 0 and no change', () => {
    const cpu = systemCpu();
    runOn(cpu, (a) => {
      a.asm('mov', reg('eax'), imm(0x12340010));
      a.asm('mov', reg('ebx'), imm(0x00000002));
      a.asm('arpl', reg('ax'), reg('bx'));
      a.asm('setz', reg('cl'));
      a.asm('arpl', reg('ax'), reg('bx'));
      a.asm('setz', reg('ch'));
      a.asm('mov', mem({ disp: 0x200000, size: 2 }), imm(0x0021));
      a.asm('mov', reg('edx'), imm(3));
      a.asm('arpl', mem({ disp: 0x200000, size: 2 }), reg('dx'));
      a.asm('setz', reg('dl'));
    });
    expect(cpu.regs[0]! >>> 0).toBe(0x12340012);
    expect(cpu.regs[1]! & 0xffff).toBe(0x0001);
    expect(cpu.mem.read16(0x200000)).toBe(0x0023);
    expect(cpu.regs[2]! & 0xff).toBe(1);
  });
});

describe('LTR, LLDT, STR, SLDT (SDM vol. 2A LLDT/LTR, vol. 2B SLDT/STR; vol. 3A §7.2.4)', () => {
  it('LTR loads TR and marks the TSS descriptor busy; a second LTR of it is #GP(selector)', () => {
    const cpu = systemCpu();
    catchExceptions(cpu);
    runOn(cpu, (a) => {
      a.asm('mov', reg('ax'), imm(Sel.TSS));
      a.asm('ltr', reg('ax'));
      a.asm('str', reg('ebx'));
      a.asm('ltr', reg('ax'));
    });
    expect((cpu.mem.read32(GDT_BASE + Sel.TSS + 4) >>> 8) & 0xf).toBe(0xb);
    expect(cpu.trSel).toBe(Sel.TSS);
    expect(cpu.trBase).toBe(TSS_BASE);
    expect(cpu.trLimit).toBe(0x67);
    expect(cpu.trAttr & 0xf).toBe(0xb);
    expect(cpu.regs[3]).toBe(Sel.TSS); // STR r32 zero-extends
    expect([cpu.regs[7], cpu.regs[6]]).toEqual([13, Sel.TSS]);
  });

  const ltrFault = (extra: readonly Desc[], selector: number, setup?: (cpu: Cpu) => void): [number, number] => {
    const cpu = systemCpu(standardGdt(extra));
    catchExceptions(cpu);
    setup?.(cpu);
    cpu.regs[0] = selector;
    runOn(cpu, (a) => a.asm('ltr', reg('ax')));
    return [cpu.regs[7]!, cpu.regs[6]!];
  };
  it('LTR faults: null #GP(0), TI = 1 #GP(sel), not a TSS #GP(sel), not present #NP(sel), CPL 3 #GP(0)', () => {
    expect(ltrFault([], 0)).toEqual([13, 0]);
    expect(ltrFault([], 0x2c)).toEqual([13, 0x2c]);
    expect(ltrFault([], 0x10)).toEqual([13, 0x10]);
    expect(ltrFault([descriptor(TSS_BASE, 0x67, Access.system(0xb))], 0x30)).toEqual([13, 0x30]); // busy
    expect(ltrFault([descriptor(TSS_BASE, 0x67, Access.system(0x9, 0, false))], 0x33)).toEqual([11, 0x30]);
    expect(ltrFault([], 0x38)).toEqual([13, 0x38]); // beyond the GDT limit
    expect(ltrFault([], Sel.TSS, (cpu) => { loadTss(cpu); enterRing3(cpu); })).toEqual([13, 0]);
  });

  it('LLDT loads LDTR from an LDT descriptor; LDT selectors then resolve through it; a null selector invalidates it', () => {
    const ldtBase = 0x4000;
    const cpu = systemCpu(standardGdt([descriptor(ldtBase, 0x0f, Access.system(0x2))]));
    catchExceptions(cpu);
    cpu.mem.write32(ldtBase + 8, flatCode(0)[0]);
    cpu.mem.write32(ldtBase + 12, flatCode(0)[1]);
    runOn(cpu, (a) => {
      a.asm('mov', reg('ax'), imm(0x30));
      a.asm('lldt', reg('ax'));
      a.asm('sldt', reg('ecx'));
      a.asm('mov', reg('ebx'), imm(0x0c)); // LDT index 1
      a.asm('lsl', reg('edx'), reg('ebx'));
      a.asm('xor', reg('eax'), reg('eax'));
      a.asm('lldt', reg('ax'));
      a.asm('lar', reg('esi'), reg('ebx'));
      a.asm('setz', reg('al'));
    });
    expect(cpu.regs[1]).toBe(0x30);
    expect(cpu.regs[2]! >>> 0).toBe(0xffffffff);
    expect(cpu.regs[0]! & 0xff).toBe(0);
    expect(cpu.ldtrLimit).toBe(0);
  });

  it('LLDT faults: TI = 1 #GP(sel), not an LDT #GP(sel), not present #NP(sel)', () => {
    const run = (sel: number): [number, number] => {
      const cpu = systemCpu(standardGdt([descriptor(0x4000, 0xf, Access.system(0x2, 0, false))]));
      catchExceptions(cpu);
      cpu.regs[0] = sel;
      runOn(cpu, (a) => a.asm('lldt', reg('ax')));
      return [cpu.regs[7]!, cpu.regs[6]!];
    };
    expect(run(0x34)).toEqual([13, 0x34]);
    expect(run(0x28)).toEqual([13, 0x28]);
    expect(run(0x30)).toEqual([11, 0x30]);
  });

  it('STR to memory stores 16 bits', () => {
    const cpu = systemCpu();
    loadTss(cpu);
    runOn(cpu, (a) => {
      a.asm('mov', mem({ disp: 0x200000, size: 4 }), imm(-1));
      a.asm('str', mem({ disp: 0x200000, size: 2 }));
    });
    expect(cpu.mem.read32(0x200000) >>> 0).toBe(0xffff0028);
  });
});
