// Shifts and rotates: SHL/SAL SHR SAR ROL ROR RCL RCR (counts 1, CL, imm8) and SHLD SHRD
// (SDM vol. 2 "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR", "SHLD", "SHRD").
//
// The count is masked to 5 bits; a masked count of 0 changes neither the operand nor any flag,
// but a memory operand is still read with write intent and written back, as by the hardware
// (writeBackUnchanged). Every memory destination is read with write intent (Cpu.readRmw32), so
// the write after the flags cannot fault and a faulting shift changes nothing.
//
// Undefined flags, where the SDM leaves them to the implementation, get the values Intel P6-
// and-later parts produce, as documented by Bochs (cpu/shift*.cc) and Sandpile:
// - OF for counts other than 1 uses the count-1 formula on the final result: SHL/SAL, ROL,
//   RCL, SHLD: MSB(result) XOR CF; SHR, ROR, RCR, SHRD: XOR of the two top result bits; SAR: 0.
//   The host-processor oracle (test/host) masks OF as undefined for these (classOf), and the
//   host may be an AMD part, which differs here.
// - AF after a shift by a nonzero count: 0 (Bochs's model; not verified on Intel silicon).
// - CF for SHL/SHR by counts > the operand size (8/16-bit only): the last bit shifted out of
//   the zero-extended operand, i.e. 0; for SAR a copy of the sign.
// - SHLD/SHRD r/m16 with counts 17..31 (result undefined): P6 shifts the 48-bit string
//   dest:src:dest (SHLD) or dest:src:dest with dest low (SHRD), as Bochs describes.
import { FORMS, OpKind, type Instruction } from '@ringshift/decoder';
import type { Cpu, Handler } from '../cpu';
import * as F from '../eflags';
import { OPSIZE } from '../handlers';
import { sizeMask, szpOf } from './szp';
import { all, memPrologue, readOp, readOpRmw, registerHelper, writeOp, type Emitter } from '../emit';

/** Forms whose count is the constant 1 (D0/D1): the decoder gives no immediate for them. */
// Sized from FORMS, not OPSIZE: handlers.ts imports this module before OPSIZE exists.
const COUNT_ONE = new Uint8Array(Math.max(...FORMS.map((f) => f.id)) + 1);
for (const f of FORMS) if (f.ops[1] === 'imm8_const_1') COUNT_ONE[f.id] = 1;

/** Raw 8-bit count (CL or imm8), before masking. */
function rawCount(cpu: Cpu, ins: Instruction, n: number): number {
  if (COUNT_ONE[ins.form]) return 1;
  return cpu.readOp(ins, n, 8) & 0xff;
}

const msb = (v: number, size: number): number => (v >>> (size - 1)) & 1;

/** CF/OF into EFLAGS, leaving the other flags alone (rotates). */
function setCO(cpu: Cpu, cf: number, of: number): void {
  cpu.setFlagBits(F.CF | F.OF, (cf ? F.CF : 0) | (of ? F.OF : 0));
}

/** All six status flags for a shift result; AF = 0 (see the file comment). */
function setShiftFlags(cpu: Cpu, res: number, size: number, cf: number, of: number): void {
  cpu.setFlagBits(F.STATUS, szpOf(res, size) | (cf ? F.CF : 0) | (of ? F.OF : 0));
}

type Shift = (cpu: Cpu, v: number, count: number, size: number) => number;

/**
 * A masked count of 0 changes nothing, but a memory destination is still accessed for writing
 * (the host processor raises #GP for SAR [mem], 0 through a read-only data segment, where a
 * plain read would not fault): the read with write intent has made those checks, and the value
 * is written back unchanged.
 */
function writeBackUnchanged(cpu: Cpu, ins: Instruction, size: number, v: number): void {
  if (ins.opKinds[0] !== OpKind.Register) cpu.writeOp(ins, 0, size, v);
}

function shiftHandler(op: Shift): Handler {
  return (cpu, ins) => {
    const size = OPSIZE[ins.form]!;
    const count = rawCount(cpu, ins, 1) & 0x1f;
    const v = cpu.readOpRmw(ins, 0, size) & sizeMask(size);
    if (count === 0) return writeBackUnchanged(cpu, ins, size, v);
    const r = op(cpu, v, count, size) & sizeMask(size);
    cpu.writeOp(ins, 0, size, r);
  };
}

// v is zero-extended to `size` bits and count is 1..31 in all of these.
const shl: Shift = (cpu, v, count, size) => {
  const r = (v << count) & sizeMask(size);
  const cf = count > size ? 0 : (v >>> (size - count)) & 1;
  setShiftFlags(cpu, r, size, cf, msb(r, size) ^ cf);
  return r;
};

const shr: Shift = (cpu, v, count, size) => {
  const r = v >>> count;
  const cf = count > size ? 0 : (v >>> (count - 1)) & 1;
  setShiftFlags(cpu, r, size, cf, msb(r, size) ^ msb(r << 1, size));
  return r;
};

const sar: Shift = (cpu, v, count, size) => {
  const s = (v << (32 - size)) >> (32 - size); // sign-extended
  const r = s >> count; // counts past the size leave copies of the sign, as on hardware
  const cf = (s >> (count - 1)) & 1;
  setShiftFlags(cpu, r, size, cf, 0);
  return r;
};

const rol: Shift = (cpu, v, count, size) => {
  const n = count % size;
  const r = n === 0 ? v : ((v << n) | (v >>> (size - n))) & sizeMask(size);
  const cf = r & 1;
  setCO(cpu, cf, msb(r, size) ^ cf);
  return r;
};

const ror: Shift = (cpu, v, count, size) => {
  const n = count % size;
  const r = n === 0 ? v : ((v >>> n) | (v << (size - n))) & sizeMask(size);
  setCO(cpu, msb(r, size), msb(r, size) ^ msb(r << 1, size));
  return r;
};

// RCL/RCR rotate through CF: a (size+1)-bit rotation, so 8- and 16-bit counts are taken mod 9
// and mod 17 (SDM RCL/RCR "tempCOUNT"). A count that reduces to 0 leaves CF and OF alone.
const rcl: Shift = (cpu, v, count, size) => {
  const n = size === 32 ? count : count % (size + 1);
  if (n === 0) return v;
  const c = cpu.getFlag(F.CF) ? 1 : 0;
  // Bits: [c][v] rotated left by n within size+1 bits.
  const lo = n === 1 ? 0 : v >>> (size + 1 - n); // bits of v that wrap round below c
  const r = ((n === 32 ? 0 : v << n) | (c << (n - 1)) | lo) & sizeMask(size);
  const cf = (v >>> (size - n)) & 1;
  setCO(cpu, cf, msb(r, size) ^ cf);
  return r;
};

const rcr: Shift = (cpu, v, count, size) => {
  const n = size === 32 ? count : count % (size + 1);
  if (n === 0) return v;
  const c = cpu.getFlag(F.CF) ? 1 : 0;
  const hi = n === 1 ? 0 : v << (size + 1 - n);
  const r = ((v >>> n) | (c << (size - n)) | hi) & sizeMask(size);
  const cf = (v >>> (n - 1)) & 1;
  setCO(cpu, cf, msb(r, size) ^ msb(r << 1, size));
  return r;
};

/** SHLD/SHRD dest, src, count (SDM SHLD/SHRD "Operation"). */
function doubleShift(left: boolean): Handler {
  return (cpu, ins) => {
    const size = OPSIZE[ins.form]!;
    const count = rawCount(cpu, ins, 2) & 0x1f;
    const d = cpu.readOpRmw(ins, 0, size) & sizeMask(size);
    const s = cpu.readOp(ins, 1, size) & sizeMask(size);
    if (count === 0) return writeBackUnchanged(cpu, ins, size, d);
    let r: number, cf: number;
    if (size === 32) {
      if (left) {
        r = (d << count) | (s >>> (32 - count));
        cf = (d >>> (32 - count)) & 1;
      } else {
        r = (d >>> count) | (s << (32 - count));
        cf = (d >>> (count - 1)) & 1;
      }
    } else {
      // The 48-bit string dest:src:dest in a double (exact below 2^53), so that counts 17..31
      // give P6's results (file comment): SHLD keeps its top 16 bits, SHRD its low 16.
      const big = d * 2 ** 32 + s * 2 ** 16 + d;
      if (left) {
        r = Math.floor(big / 2 ** (32 - count)) % 2 ** 16;
        cf = Math.floor(big / 2 ** (48 - count)) % 2;
      } else {
        r = Math.floor(big / 2 ** count) % 2 ** 16;
        cf = Math.floor(big / 2 ** (count - 1)) % 2;
      }
    }
    r &= sizeMask(size);
    const of = left ? msb(r, size) ^ cf : msb(r, size) ^ msb(r << 1, size);
    setShiftFlags(cpu, r, size, cf, of);
    cpu.writeOp(ins, 0, size, r);
  };
}

// SHL SAL SHR SAR ROL ROR RCL RCR as source for the block compiler (emit.ts): the operand
// access of shiftHandler written out, the operation itself a call of the function above.
function shiftSrc(name: string, op: Shift): Emitter {
  registerHelper(`shift_${name}`, op);
  return (ins) => {
    const size = OPSIZE[ins.form]!;
    const mask = sizeMask(size);
    const v = readOpRmw(ins, 0, size);
    const count = COUNT_ONE[ins.form] ? '1' : readOp(ins, 1, 8);
    if (v === undefined || count === undefined) return undefined;
    const back = ins.opKinds[0] !== OpKind.Register ? writeOp(ins, 0, size, 'v') : '';
    return all(memPrologue(ins), `const n = (${count}) & 31; const v = (${v}) & ${mask}; if (n === 0) {`, back,
      `} else { const x = X.shift_${name}(cpu, v, n, ${size}) & ${mask};`, writeOp(ins, 0, size, 'x'), '}');
  };
}

export const SHIFT = {
  jit: {
    shl: shiftSrc('shl', shl),
    sal: shiftSrc('shl', shl),
    shr: shiftSrc('shr', shr),
    sar: shiftSrc('sar', sar),
    rol: shiftSrc('rol', rol),
    ror: shiftSrc('ror', ror),
    rcl: shiftSrc('rcl', rcl),
    rcr: shiftSrc('rcr', rcr),
  } as Readonly<Record<string, Emitter>>,
  byMnemonic: {
    shl: shiftHandler(shl),
    sal: shiftHandler(shl),
    shr: shiftHandler(shr),
    sar: shiftHandler(sar),
    rol: shiftHandler(rol),
    ror: shiftHandler(ror),
    rcl: shiftHandler(rcl),
    rcr: shiftHandler(rcr),
    shld: doubleShift(true),
    shrd: doubleShift(false),
  } satisfies Record<string, Handler>,
};
