// LDS/LES/LFS/LGS/LSS (SDM vol. 2 "LDS/LES/LFS/LGS/LSS—Load Far Pointer", Operation and
// Protected/Real-Address Mode Exceptions; the segment checks are MOV Sreg's, vol. 3A §5.4-5.6) and
// the interrupt shadow, which vol. 3A §6.8.3 gives to MOV SS and POP SS only.
import { Decoder, imm, mem, reg, type Assembler } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Cpu, PhysicalMemory, SegReg, Vector } from '../src/index';
import { Access, Sel, catchExceptions, descriptor, enterRing3, loadTss, runOn, standardGdt, systemCpu } from './support/descriptors';
import { HANDLERS, RecordingPorts } from './support/flat';

const PTR = 0x200000;
const NP_DATA = 0x30; // standardGdt() + [not-present data DPL 0]
const EXEC_ONLY = 0x38; // + [execute-only code DPL 0]
const BASED = 0x40; // + [data DPL 3, base 12340000h, limit FFFFh]
const gdt = standardGdt([
  descriptor(0, 0xfffff, Access.data(0) & 0x7f, 0xc),
  descriptor(0, 0xfffff, Access.code(0, false, false), 0xc),
  descriptor(0x12340000, 0xffff, Access.data(3), 0x4),
]);

/** Stores offset:selector at PTR (32-bit offset), runs `op reg32, [PTR]` and returns the CPU (EDI = vector caught, ESI = error code). */
function farLoad(op: string, selector: number, opts: { ring3?: boolean } = {}): Cpu {
  const cpu = systemCpu(gdt);
  catchExceptions(cpu);
  if (opts.ring3) {
    // The exception goes to a ring-0 handler: it needs the TSS's ring-0 stack.
    loadTss(cpu);
    enterRing3(cpu);
  }
  cpu.mem.write32(PTR, 0x11223344);
  cpu.mem.write16(PTR + 4, selector);
  cpu.regs[3] = 0x5a5a5a5a; // EBX: the destination
  runOn(cpu, (a) => a.asm(op, reg('ebx'), mem({ disp: PTR, size: 6 })));
  return cpu;
}

const SEG: Record<string, number> = { lds: SegReg.DS, les: SegReg.ES, lfs: SegReg.FS, lgs: SegReg.GS, lss: SegReg.SS };

describe('far-pointer loads in protected mode', () => {
  for (const op of ['lds', 'les', 'lfs', 'lgs', 'lss']) {
    it(`${op.toUpperCase()} r32, m16:32 loads the offset and the selector with its descriptor (base from the GDT)`, () => {
      const cpu = farLoad(op, op === 'lss' ? 0x10 : BASED | 3);
      expect(cpu.regs[7], 'no exception').toBe(-1);
      expect(cpu.regs[3]! >>> 0).toBe(0x11223344);
      const s = SEG[op]!;
      if (op === 'lss') {
        expect(cpu.sel[s]).toBe(0x10);
      } else {
        expect(cpu.sel[s]).toBe(BASED | 3);
        expect(cpu.segBase[s]! >>> 0).toBe(0x12340000);
        expect(cpu.segLimit[s]).toBe(0xffff);
      }
      // The load sets the descriptor's accessed bit (vol. 3A §3.4.5.1).
      const index = (op === 'lss' ? 0x10 : BASED) >>> 3;
      expect(cpu.mem.read32(0x1000 + index * 8 + 4) & 0x100).toBe(0x100);
    });
  }

  it('16-bit operand size: m16:16, the selector right after a 16-bit offset, the register\'s upper half kept', () => {
    const cpu = systemCpu(gdt);
    catchExceptions(cpu);
    cpu.mem.write32(PTR, 0xbeef);
    cpu.mem.write16(PTR + 2, BASED | 3);
    cpu.regs[3] = 0x5a5a5a5a;
    runOn(cpu, (a) => a.asm('lgs', reg('bx'), mem({ disp: PTR, size: 4 })));
    expect(cpu.regs[7]).toBe(-1);
    expect(cpu.regs[3]! >>> 0).toBe(0x5a5abeef);
    expect(cpu.sel[SegReg.GS]).toBe(BASED | 3);
  });

  it('a null selector loads DS/ES/FS/GS as unusable (a later access is #GP(0)) but is #GP(0) for LSS', () => {
    const cpu = farLoad('lfs', 0);
    expect(cpu.regs[7]).toBe(-1);
    expect(cpu.sel[SegReg.FS]).toBe(0);
    expect(cpu.segAttr[SegReg.FS]).toBe(0);
    const ss = farLoad('lss', 3);
    expect([ss.regs[7], ss.regs[6]]).toEqual([Vector.GP, 0]);
    expect(ss.regs[3]! >>> 0, 'destination unchanged').toBe(0x5a5a5a5a);
    expect(ss.sel[SegReg.SS]).toBe(Sel.DATA0);
  });

  it('LSS: RPL != CPL, a DPL != CPL or a non-writable segment is #GP(selector); not present is #SS(selector)', () => {
    for (const [sel, vector] of [[0x10 | 1, Vector.GP], [Sel.DATA3, Vector.GP], [Sel.CODE0, Vector.GP], [NP_DATA, Vector.SS]] as const) {
      const cpu = farLoad('lss', sel);
      expect([cpu.regs[7], cpu.regs[6]], `selector ${sel.toString(16)}`).toEqual([vector, sel & 0xfffc]);
      expect(cpu.regs[3]! >>> 0).toBe(0x5a5a5a5a);
    }
  });

  it('DS/ES/FS/GS: execute-only code, a system descriptor or DPL < CPL is #GP(selector); not present is #NP(selector)', () => {
    for (const [op, sel, vector] of [['lds', EXEC_ONLY, Vector.GP], ['les', Sel.TSS, Vector.GP], ['lgs', NP_DATA, Vector.NP], ['lfs', 0xfff8, Vector.GP]] as const) {
      const cpu = farLoad(op, sel);
      expect([cpu.regs[7], cpu.regs[6]], `${op} ${sel.toString(16)}`).toEqual([vector, sel & 0xfffc]);
      expect(cpu.regs[3]! >>> 0, 'destination unchanged').toBe(0x5a5a5a5a);
    }
    // At CPL 3, a DPL-0 data segment: #GP(selector) (max(CPL, RPL) > DPL).
    const cpu = farLoad('lds', Sel.DATA0, { ring3: true });
    expect([cpu.regs[7], cpu.regs[6]]).toEqual([Vector.GP, Sel.DATA0]);
    expect(cpu.regs[3]! >>> 0).toBe(0x5a5a5a5a);
  });

  it('a fault reading the pointer (limit) leaves both registers unchanged', () => {
    const cpu = systemCpu(gdt);
    catchExceptions(cpu);
    cpu.segLimit[SegReg.DS] = PTR + 3; // the selector word lies past the limit
    cpu.regs[3] = 0x5a5a5a5a;
    runOn(cpu, (a) => a.asm('les', reg('ebx'), mem({ disp: PTR, size: 6 })));
    expect([cpu.regs[7], cpu.regs[6]]).toEqual([Vector.GP, 0]);
    expect(cpu.regs[3]! >>> 0).toBe(0x5a5a5a5a);
    expect(cpu.sel[SegReg.ES]).toBe(Sel.DATA0);
  });
});

/** A real-mode CPU at 0000:7C00 running `bytes` one instruction at a time. */
function realCpu(bytes: number[]): Cpu {
  const cpu = new Cpu(new PhysicalMemory(1 << 20), new RecordingPorts(), HANDLERS);
  cpu.sel[SegReg.CS] = 0;
  cpu.segBase[SegReg.CS] = 0;
  cpu.eip = 0x7c00;
  cpu.mem.load(0x7c00, Uint8Array.from(bytes));
  return cpu;
}

describe('far-pointer loads in real mode (SDM vol. 3A §20.1.1: base = selector × 16)', () => {
  it('LDS SI, [0200h] and LSS SP, [0204h] load selector × 16 with no descriptor checks', () => {
    // lds si, [0x200]; lss sp, [0x204]
    const cpu = realCpu([0xc5, 0x36, 0x00, 0x02, 0x0f, 0xb2, 0x26, 0x04, 0x02]);
    expect(new Decoder(16, cpu.mem.u8.subarray(0x7c00, 0x7c04)).decode().valid).toBe(true);
    cpu.mem.write16(0x200, 0x1234);
    cpu.mem.write16(0x202, 0xf000);
    // The LSS reads through the DS that LDS has just loaded: F000:0204 = F0204h.
    cpu.mem.write16(0xf0204, 0xfffe);
    cpu.mem.write16(0xf0206, 0x9000);
    cpu.step();
    cpu.step();
    expect(cpu.regs[6]! & 0xffff).toBe(0x1234);
    expect([cpu.sel[SegReg.DS], cpu.segBase[SegReg.DS]]).toEqual([0xf000, 0xf0000]);
    expect(cpu.regs[4]! & 0xffff).toBe(0xfffe);
    expect([cpu.sel[SegReg.SS], cpu.segBase[SegReg.SS]]).toEqual([0x9000, 0x90000]);
    expect(cpu.eip).toBe(0x7c09);
  });
});

describe('interrupt shadow (SDM vol. 3A §6.8.3)', () => {
  it('MOV SS inhibits interrupts for one instruction; LSS, which loads SS:ESP at once, does not', () => {
    // mov ss, ax
    const mov = realCpu([0x8e, 0xd0]);
    mov.step();
    expect(mov.inhibitInterrupts).toBe(true);
    // lss sp, [0x204]
    const lss = realCpu([0x0f, 0xb2, 0x26, 0x04, 0x02]);
    lss.step();
    expect(lss.eip).toBe(0x7c05);
    expect(lss.inhibitInterrupts).toBe(false);
  });
});

describe('a read-modify-write through a read-only data segment (SDM vol. 3A §5.5-5.6: writes need a writable segment)', () => {
  it('SAR [mem], 0 and SHLD [mem], r, 0 still #GP(0): the destination is accessed for writing even when the masked count is 0', () => {
    // DS = a read-only data segment (selector 30h), then the shift: #GP(0) at the write, memory unchanged.
    for (const build of [
      (a: Assembler) => a.asm('sar', mem({ disp: PTR, size: 4 }), imm(0x20)),
      (a: Assembler) => a.asm('shld', mem({ disp: PTR, size: 4 }), reg('eax'), imm(0)),
      (a: Assembler) => a.asm('sar', mem({ disp: PTR, size: 4 }), imm(1)),
    ]) {
      const cpu = systemCpu(standardGdt([descriptor(0, 0xfffff, Access.data(0, false), 0xc)]));
      catchExceptions(cpu);
      cpu.mem.write32(PTR, 0x80000001);
      cpu.regs[0] = 0x30;
      runOn(cpu, (a) => {
        a.asm('mov', reg('ds'), reg('ax'));
        build(a);
      });
      expect([cpu.regs[7], cpu.regs[6]]).toEqual([Vector.GP, 0]);
      expect(cpu.mem.read32(PTR) >>> 0).toBe(0x80000001);
    }
  });
});

