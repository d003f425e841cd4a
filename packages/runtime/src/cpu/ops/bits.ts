// Bit operations and atomics: BT BTS BTR BTC, BSF BSR, XADD, CMPXCHG, CMPXCHG8B, SALC, XLAT
// (SDM vol. 2, each instruction's page). LOCK needs nothing here: one CPU, and each handler's
// read-modify-write is not interleaved with anything. Every destination that is written is read
// with write intent (Cpu.readRmw32): a fault happens before anything changes.
import { OpKind, type Instruction } from '@ringshift/decoder';
import type { Cpu, Handler } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';
import { OPSIZE } from '../handlers';
import { LazyOp } from '../lazy-flags';
import { sizeMask } from './szp';

type BitOp = (v: number, bit: number) => number;

/**
 * BT family. CF = the selected bit; ZF unchanged; OF, SF, AF, PF undefined and left unchanged.
 * With a register bit offset and a memory operand, the offset is signed and selects a bit
 * anywhere in the bit string that starts at the effective address (SDM BT "Operation" and
 * vol. 1 §3.4.3 "Bit field"); the access is the operand-size unit that holds the bit, at
 * EA + size/8 * floor(offset / size), as P6-and-later parts do. An immediate offset is taken
 * modulo the operand size.
 */
function bitTest(op: BitOp | null): Handler {
  return (cpu: Cpu, ins: Instruction) => {
    const size = OPSIZE[ins.form]!;
    const fromReg = ins.opKinds[1] === OpKind.Register;
    let offset = fromReg ? cpu.readReg(ins.opRegs[1]!) : ins.imm & 0xff;
    if (ins.opKinds[0] === OpKind.Memory && fromReg) {
      if (size === 16) offset = (offset << 16) >> 16;
      else offset |= 0;
      const unit = Math.floor(offset / size);
      let ea = cpu.effectiveAddress(ins) + unit * (size >>> 3);
      ea = ins.addressSize === 16 ? ea & 0xffff : ea | 0;
      const seg = cpu.segmentOf(ins);
      const bit = offset - unit * size;
      const v = op ? cpu.readRmwSized(seg, ea, size) : cpu.readSized(seg, ea, size);
      cpu.setFlagBits(F.CF, (v >>> bit) & 1 ? F.CF : 0);
      if (op) cpu.writeSized(seg, ea, size, op(v, bit) & sizeMask(size));
      return;
    }
    const bit = offset & (size - 1);
    const v = op ? cpu.readOpRmw(ins, 0, size) : cpu.readOp(ins, 0, size);
    cpu.setFlagBits(F.CF, (v >>> bit) & 1 ? F.CF : 0);
    if (op) cpu.writeOp(ins, 0, size, op(v, bit) & sizeMask(size));
  };
}

/**
 * BSF/BSR: ZF = 1 and the destination unchanged when the source is 0 (Intel documents the
 * destination as undefined; its processors leave it, and AMD documents that). CF, OF, SF, AF,
 * PF are undefined and left unchanged.
 */
function bitScan(reverse: boolean): Handler {
  return (cpu, ins) => {
    const size = OPSIZE[ins.form]!;
    const v = cpu.readOp(ins, 1, size) & sizeMask(size);
    if (v === 0) {
      cpu.setFlagBits(F.ZF, F.ZF);
      return;
    }
    const index = reverse ? 31 - Math.clz32(v) : 31 - Math.clz32(v & -v);
    cpu.writeOp(ins, 0, size, index);
    cpu.setFlagBits(F.ZF, 0);
  };
}

/** XADD: TEMP = SRC + DEST; SRC = DEST; DEST = TEMP, flags as ADD (SDM XADD). */
const xadd: Handler = (cpu, ins) => {
  const size = OPSIZE[ins.form]!;
  const d = cpu.readOpRmw(ins, 0, size);
  const s = cpu.readOp(ins, 1, size);
  const r = (d + s) | 0;
  if (ins.opKinds[0] === OpKind.Register) {
    // DEST is written last, so XADD reg, same-reg leaves the sum (SDM XADD "Operation").
    cpu.writeOp(ins, 1, size, d);
    cpu.writeOp(ins, 0, size, r & sizeMask(size));
  } else {
    // Memory first: a fault on it must leave the register unchanged.
    cpu.writeOp(ins, 0, size, r & sizeMask(size));
    cpu.writeOp(ins, 1, size, d);
  }
  cpu.setLazy(LazyOp.Add, d, s, r, size);
};

/**
 * CMPXCHG: compares the accumulator with DEST (flags of CMP acc, DEST). Equal: DEST = SRC.
 * Otherwise the accumulator gets DEST and DEST is written back with its own value, so a
 * read-only destination faults either way (SDM CMPXCHG "Operation").
 */
const cmpxchg: Handler = (cpu, ins) => {
  const size = OPSIZE[ins.form]!;
  const m = sizeMask(size);
  const d = cpu.readOpRmw(ins, 0, size) & m;
  const acc = cpu.regs[0]! & m;
  const r = (acc - d) | 0;
  if (acc === d) {
    cpu.writeOp(ins, 0, size, cpu.readOp(ins, 1, size));
  } else {
    cpu.writeOp(ins, 0, size, d);
    if (size === 32) cpu.regs[0] = d;
    else if (size === 16) cpu.regs[0] = (cpu.regs[0]! & ~0xffff) | d;
    else cpu.regs[0] = (cpu.regs[0]! & ~0xff) | d;
  }
  cpu.setLazy(LazyOp.Sub, acc, d, r, size);
};

/** CMPXCHG8B m64: EDX:EAX against m64; equal: m64 = ECX:EBX, ZF = 1; else EDX:EAX = m64, ZF = 0. */
const cmpxchg8b: Handler = (cpu, ins) => {
  if (ins.opKinds[0] !== OpKind.Memory) throw new Fault(Vector.UD);
  const seg = cpu.segmentOf(ins), ea = cpu.effectiveAddress(ins);
  const hiEa = ins.addressSize === 16 ? (ea + 4) & 0xffff : (ea + 4) | 0;
  // Both halves checked for writing before either is written: the instruction writes even when
  // the compare fails.
  const lo = cpu.readRmw32(seg, ea), hi = cpu.readRmw32(seg, hiEa);
  if (lo === cpu.regs[0] && hi === cpu.regs[2]) {
    cpu.write32(seg, ea, cpu.regs[3]!);
    cpu.write32(seg, hiEa, cpu.regs[1]!);
    cpu.setFlagBits(F.ZF, F.ZF);
  } else {
    // The processor writes the old value back (SDM CMPXCHG8B "Operation").
    cpu.write32(seg, ea, lo);
    cpu.write32(seg, hiEa, hi);
    cpu.regs[0] = lo;
    cpu.regs[2] = hi;
    cpu.setFlagBits(F.ZF, 0);
  }
};

/** XLAT: AL = [seg:(E)BX + unsigned AL], BX with a 16-bit address size (SDM XLAT). */
const xlat: Handler = (cpu, ins) => {
  const base = cpu.regs[3]! + (cpu.regs[0]! & 0xff);
  const ea = ins.addressSize === 16 ? base & 0xffff : base | 0;
  const v = cpu.read8(cpu.segmentOf(ins), ea);
  cpu.regs[0] = (cpu.regs[0]! & ~0xff) | v;
};

export const BITS = {
  byMnemonic: {
    bt: bitTest(null),
    bts: bitTest((v, b) => v | (1 << b)),
    btr: bitTest((v, b) => v & ~(1 << b)),
    btc: bitTest((v, b) => v ^ (1 << b)),
    bsf: bitScan(false),
    bsr: bitScan(true),
    xadd,
    cmpxchg,
    cmpxchg8b,
    // SALC (D6, undocumented by Intel until recently; AMD documents it): AL = CF ? FFh : 00h,
    // flags unchanged.
    salc: (cpu) => { cpu.regs[0] = (cpu.regs[0]! & ~0xff) | (cpu.getFlag(F.CF) ? 0xff : 0); },
    xlatb: xlat,
  } satisfies Record<string, Handler>,
};
