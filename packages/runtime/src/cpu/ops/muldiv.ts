// Multiply and divide: MUL, IMUL (one, two and three operands), DIV, IDIV (SDM vol. 2, each
// instruction's page).
//
// MUL/IMUL define only CF and OF; SF, ZF, AF and PF are undefined. Here they follow Bochs's
// model of P6-and-later parts (SF/ZF/PF of the low half of the product, AF = 0); the host
// oracle masks them. DIV/IDIV leave every status flag undefined; they are left unchanged.
// #DE is raised before anything is written, for a zero divisor and for a quotient that does
// not fit the destination (SDM DIV/IDIV "Operation").
import type { Instruction } from '@ringshift/decoder';
import type { Cpu, Handler } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';
import { OPSIZE } from '../handlers';
import { sizeMask, szpOf } from './szp';
import { all, memPrologue, readOp, registerHelper, writeOp, type Emitter } from '../emit';

const sext = (v: number, size: number): number => (size === 32 ? v | 0 : (v << (32 - size)) >> (32 - size));

function setMulFlags(cpu: Cpu, low: number, size: number, overflow: boolean): void {
  cpu.setFlagBits(F.STATUS, szpOf(low, size) | (overflow ? F.CF | F.OF : 0));
}

/** 32x32 -> 64-bit product as [low, high] 32-bit halves. */
function mul64(a: number, b: number, signed: boolean): [number, number] {
  const p = signed ? BigInt(a | 0) * BigInt(b | 0) : BigInt(a >>> 0) * BigInt(b >>> 0);
  return [Number(BigInt.asIntN(32, p)), Number(BigInt.asIntN(32, p >> 32n))];
}

/** MUL/IMUL r/m: the accumulator times the operand into AX, DX:AX or EDX:EAX. */
function mulAcc(signed: boolean): Handler {
  return (cpu, ins) => {
    const size = OPSIZE[ins.form]!;
    const src = cpu.readOp(ins, 0, size);
    const acc = cpu.regs[0]!;
    if (size === 32) {
      const [lo, hi] = mul64(acc, src, signed);
      cpu.regs[0] = lo;
      cpu.regs[2] = hi;
      setMulFlags(cpu, lo, 32, signed ? hi !== lo >> 31 : hi !== 0);
      return;
    }
    const m = sizeMask(size);
    const p = signed ? sext(acc, size) * sext(src, size) : (acc & m) * (src & m); // exact: < 2^32
    const lo = p & m, hi = (p >> size) & m;
    if (size === 8) {
      cpu.regs[0] = (cpu.regs[0]! & ~0xffff) | (p & 0xffff);
    } else {
      cpu.regs[0] = (cpu.regs[0]! & ~0xffff) | lo;
      cpu.regs[2] = (cpu.regs[2]! & ~0xffff) | hi;
    }
    const overflow = signed ? sext(p, 2 * size) !== sext(lo, size) : hi !== 0;
    setMulFlags(cpu, lo, size, overflow);
  };
}

/** IMUL r, r/m (dest *= src) and IMUL r, r/m, imm (dest = src * imm): truncated product. */
const imulTruncating: Handler = (cpu: Cpu, ins: Instruction) => {
  const size = OPSIZE[ins.form]!;
  const three = ins.opCount === 3;
  const a = sext(cpu.readOp(ins, three ? 1 : 0, size), size);
  const b = sext(cpu.readOp(ins, three ? 2 : 1, size), size);
  let r: number, overflow: boolean;
  if (size === 32) {
    r = Math.imul(a, b);
    // The double product is exact whenever it fits 32 bits, and then equals r.
    overflow = a * b !== r;
  } else {
    const p = a * b;
    r = p & sizeMask(size);
    overflow = sext(r, size) !== p;
  }
  cpu.writeOp(ins, 0, size, r);
  setMulFlags(cpu, r, size, overflow);
};

function divide(signed: boolean): Handler {
  return (cpu, ins) => {
    const size = OPSIZE[ins.form]!;
    const m = sizeMask(size);
    const raw = cpu.readOp(ins, 0, size) & m;
    if (raw === 0) throw new Fault(Vector.DE);
    const eax = cpu.regs[0]!, edx = cpu.regs[2]!;
    if (size === 32) {
      const dividend = signed
        ? (BigInt(edx | 0) << 32n) | BigInt(eax >>> 0)
        : (BigInt(edx >>> 0) << 32n) | BigInt(eax >>> 0);
      const divisor = signed ? BigInt(raw | 0) : BigInt(raw >>> 0);
      const q = dividend / divisor; // BigInt division truncates toward zero, as IDIV does
      const r = dividend % divisor;
      if (signed ? q > 0x7fffffffn || q < -0x80000000n : q > 0xffffffffn) throw new Fault(Vector.DE);
      cpu.regs[0] = Number(BigInt.asIntN(32, q));
      cpu.regs[2] = Number(BigInt.asIntN(32, r));
      return;
    }
    // 8-bit: AX / r/m8 -> AL, AH; 16-bit: DX:AX / r/m16 -> AX, DX. Dividends fit a double.
    const dividend = size === 8
      ? (signed ? sext(eax, 16) : eax & 0xffff)
      : (signed ? ((edx & 0xffff) << 16) | (eax & 0xffff) : (((edx & 0xffff) << 16) | (eax & 0xffff)) >>> 0);
    const divisor = signed ? sext(raw, size) : raw;
    const q = Math.trunc(dividend / divisor);
    const r = dividend - q * divisor;
    const max = signed ? 2 ** (size - 1) - 1 : m;
    const min = signed ? -(2 ** (size - 1)) : 0;
    if (q > max || q < min) throw new Fault(Vector.DE);
    if (size === 8) {
      cpu.regs[0] = (eax & ~0xffff) | ((r & 0xff) << 8) | (q & 0xff);
    } else {
      cpu.regs[0] = (eax & ~0xffff) | (q & 0xffff);
      cpu.regs[2] = (edx & ~0xffff) | (r & 0xffff);
    }
  };
}

const byForm: Record<string, Handler> = {};
for (const name of ['Imul_r16_rm16', 'Imul_r32_rm32', 'Imul_r16_rm16_imm16', 'Imul_r32_rm32_imm32', 'Imul_r16_rm16_imm8', 'Imul_r32_rm32_imm8']) {
  byForm[name] = imulTruncating;
}

// IMUL r, r/m (, imm) as source for the block compiler (emit.ts): imulTruncating written out,
// its flags through setMulFlags.
registerHelper('muldiv_flags', setMulFlags);
const imulSrc: Emitter = (ins) => {
  const size = OPSIZE[ins.form]!;
  const three = ins.opCount === 3;
  const a = readOp(ins, three ? 1 : 0, size), b = readOp(ins, three ? 2 : 1, size);
  if (a === undefined || b === undefined || (size !== 32 && size !== 16)) return undefined;
  const product = size === 32
    ? 'const x = Math.imul(a, b); const o = a * b !== x;'
    : 'const p = a * b; const x = p & 0xffff; const o = ((x << 16) >> 16) !== p;';
  const sx = (v: string): string => (size === 32 ? `(${v}) | 0` : `((${v}) << 16) >> 16`);
  return all(memPrologue(ins), `const a = ${sx(a)}; const b = ${sx(b)}; ${product}`, writeOp(ins, 0, size, 'x'),
    `X.muldiv_flags(cpu, x, ${size}, o);`);
};
const jit: Record<string, Emitter> = {};
for (const name of Object.keys(byForm)) jit[name] = imulSrc;

export const MULDIV = {
  jit,
  byMnemonic: {
    mul: mulAcc(false),
    imul: mulAcc(true),
    div: divide(false),
    idiv: divide(true),
  } satisfies Record<string, Handler>,
  byForm,
};
