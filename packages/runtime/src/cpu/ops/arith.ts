// Integer arithmetic and logic: ADD OR ADC SBB AND SUB XOR CMP TEST INC DEC NEG NOT
// (SDM vol. 2, each instruction's page; flags through lazy-flags.ts).
import type { Instruction } from '@ringshift/decoder';
import type { Cpu, Handler } from '../cpu';
import * as F from '../eflags';
import { OPSIZE } from '../handlers';
import { LazyOp } from '../lazy-flags';
import { all, lazy, lazyIncDec, memPrologue, readOp, readOpRmw, writeOp, type Emitter } from '../emit';

const mask = (size: number): number => (size === 32 ? -1 : (1 << size) - 1);

type Binary = (cpu: Cpu, a: number, b: number, size: number) => number;

/**
 * dst = f(dst, src); `store` false for CMP and TEST. A stored destination is read with write
 * intent (Cpu.readRmw32), so the write after the flags cannot fault.
 */
function binary(f: Binary, store = true): Handler {
  return (cpu: Cpu, ins: Instruction) => {
    const size = OPSIZE[ins.form]!;
    const a = store ? cpu.readOpRmw(ins, 0, size) : cpu.readOp(ins, 0, size);
    const b = cpu.readOp(ins, 1, size);
    const r = f(cpu, a, b, size) & mask(size);
    if (store) cpu.writeOp(ins, 0, size, r);
  };
}

const add: Binary = (cpu, a, b, size) => { const r = (a + b) | 0; cpu.setLazy(LazyOp.Add, a, b, r, size); return r; };
const sub: Binary = (cpu, a, b, size) => { const r = (a - b) | 0; cpu.setLazy(LazyOp.Sub, a, b, r, size); return r; };
const adc: Binary = (cpu, a, b, size) => {
  const c = cpu.getFlag(F.CF) ? 1 : 0;
  const r = (a + b + c) | 0;
  cpu.setLazy(LazyOp.Adc, a, b, r, size, c);
  return r;
};
const sbb: Binary = (cpu, a, b, size) => {
  const c = cpu.getFlag(F.CF) ? 1 : 0;
  const r = (a - b - c) | 0;
  cpu.setLazy(LazyOp.Sbb, a, b, r, size, c);
  return r;
};
const logic = (op: (a: number, b: number) => number): Binary => (cpu, a, b, size) => {
  const r = op(a, b);
  cpu.setLazy(LazyOp.Logic, a, b, r, size);
  return r;
};

function unary(f: (cpu: Cpu, a: number, size: number) => number): Handler {
  return (cpu, ins) => {
    const size = OPSIZE[ins.form]!;
    const r = f(cpu, cpu.readOpRmw(ins, 0, size), size);
    cpu.writeOp(ins, 0, size, r & mask(size));
  };
}

// The same, as source for the block compiler (emit.ts): one emitter per mnemonic, for register,
// memory and immediate operands.
const maskSrc = (size: number): string => (size === 32 ? 'x' : `(x & ${(1 << size) - 1})`);

/** `body` computes x from a and b (and sets the lazy flags); `store` false for CMP and TEST. */
function binarySrc(body: (size: number) => string, store = true): Emitter {
  return (ins) => {
    const size = OPSIZE[ins.form]!;
    const a = store ? readOpRmw(ins, 0, size) : readOp(ins, 0, size), b = readOp(ins, 1, size);
    return all(memPrologue(ins), `const a = ${a}; const b = ${b};`,
      a === undefined || b === undefined ? undefined : body(size),
      store ? writeOp(ins, 0, size, maskSrc(size)) : '');
  };
}

const arithSrc = (op: number, expr: string) => (size: number): string => `const x = (${expr}) | 0; ${lazy(op, 'a', 'b', 'x', size)}`;
const carrySrc = (op: number, expr: string) => (size: number): string =>
  `const c = cpu.getFlag(${F.CF}) ? 1 : 0; const x = (${expr}) | 0; ${lazy(op, 'a', 'b', 'x', size, 'c')}`;

function unarySrc(body: (size: number) => string): Emitter {
  return (ins) => {
    const size = OPSIZE[ins.form]!;
    const a = readOpRmw(ins, 0, size);
    return all(memPrologue(ins), a === undefined ? undefined : `const a = ${a};`, body(size), writeOp(ins, 0, size, maskSrc(size)));
  };
}

export const ARITH_JIT: Readonly<Record<string, Emitter>> = {
  add: binarySrc(arithSrc(LazyOp.Add, 'a + b')),
  or: binarySrc(arithSrc(LazyOp.Logic, 'a | b')),
  adc: binarySrc(carrySrc(LazyOp.Adc, 'a + b + c')),
  sbb: binarySrc(carrySrc(LazyOp.Sbb, 'a - b - c')),
  and: binarySrc(arithSrc(LazyOp.Logic, 'a & b')),
  sub: binarySrc(arithSrc(LazyOp.Sub, 'a - b')),
  xor: binarySrc(arithSrc(LazyOp.Logic, 'a ^ b')),
  cmp: binarySrc(arithSrc(LazyOp.Sub, 'a - b'), false),
  test: binarySrc(arithSrc(LazyOp.Logic, 'a & b'), false),
  inc: unarySrc((size) => `const x = (a + 1) | 0; ${lazyIncDec(LazyOp.Inc, 'a', 'x', size)}`),
  dec: unarySrc((size) => `const x = (a - 1) | 0; ${lazyIncDec(LazyOp.Dec, 'a', 'x', size)}`),
  neg: unarySrc((size) => `const x = -a | 0; ${lazy(LazyOp.Neg, '0', 'a', 'x', size)}`),
  not: unarySrc(() => 'const x = ~a;'),
};

export const ARITH = {
  byMnemonic: {
    add: binary(add),
    or: binary(logic((a, b) => a | b)),
    adc: binary(adc),
    sbb: binary(sbb),
    and: binary(logic((a, b) => a & b)),
    sub: binary(sub),
    xor: binary(logic((a, b) => a ^ b)),
    cmp: binary(sub, false),
    test: binary(logic((a, b) => a & b), false),
    inc: unary((cpu, a, size) => { const r = (a + 1) | 0; cpu.setLazy(LazyOp.Inc, a, 1, r, size); return r; }),
    dec: unary((cpu, a, size) => { const r = (a - 1) | 0; cpu.setLazy(LazyOp.Dec, a, 1, r, size); return r; }),
    neg: unary((cpu, a, size) => { const r = -a | 0; cpu.setLazy(LazyOp.Neg, 0, a, r, size); return r; }),
    not: unary((_cpu, a) => ~a),
  },
  jit: ARITH_JIT,
};
