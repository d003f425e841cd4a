// Operand access in source form, for the block compiler (jit.ts): the same reads and writes as
// Cpu.readOp/writeOp/effectiveAddress, written out as JavaScript for one decoded instruction, so
// that the compiled block has no operand-kind or register-width branches left.
//
// A family exports, next to its handlers, `jit`: an Emitter per mnemonic or form name (the keys
// of its byMnemonic/byForm). buildHandlers() registers each emitter against the handler it
// stands for, so a form gets compiled code only while the table says that family's handler runs
// it (a machine that wraps a handler, as machine.ts does for RDTSC, gets a call to its wrapper).
//
// Emitted code runs inside the compiled block function, where these names are bound:
//   cpu  the Cpu;  r  cpu.regs;  m  the instruction's effective address, when memPrologue()
//   was emitted first;  Fault  the Fault class;  X  the registered helpers (HELPERS).
// An emitter returns undefined for operand shapes it does not cover; the block then calls the
// handler. Emitted code must do what the handler does, in the same order (a fault part-way
// leaves the same state), and may throw a Fault like the handler would.
import { OpKind, type Instruction } from '@ringshift/decoder';
import type { Handler } from './cpu';
import * as F from './eflags';
import { GPR_INDEX, GPR_SHIFT, GPR_WIDTH, SEG_INDEX } from './registers';

/**
 * Source of one instruction's effect. `next` is the source of the fall-through EIP; emitters
 * for control transfers (flow other than 'next') must set cpu.nextEip and cpu.eip themselves.
 */
export type Emitter = (ins: Instruction, next: string) => string | undefined;

const EMITTERS = new WeakMap<Handler, Emitter>();

export function registerEmitter(h: Handler, e: Emitter): void {
  EMITTERS.set(h, e);
}

export function emitterOf(h: Handler): Emitter | undefined {
  return EMITTERS.get(h);
}

/**
 * Functions emitted code may call as X.name(...): a family's own semantic helpers (a shift with
 * its flags, say), so the compiled block reuses them with constant operands. Calls of helpers
 * count as reading and writing the flags (jit.ts); a helper must not access memory.
 */
export const HELPERS: Record<string, (...args: never[]) => unknown> = {};

export function registerHelper(name: string, fn: (...args: never[]) => unknown): void {
  if (HELPERS[name] !== undefined && HELPERS[name] !== fn) throw new Error(`helper ${name} registered twice`);
  HELPERS[name] = fn;
}

/** Value of a general register (zero-extended for 8/16 bits); undefined for other registers. */
export function reg(r: number): string | undefined {
  const i = GPR_INDEX[r]!;
  switch (GPR_WIDTH[r]) {
    case 32: return `r[${i}]`;
    case 16: return `(r[${i}] & 0xffff)`;
    case 8: return GPR_SHIFT[r] ? `((r[${i}] >>> 8) & 0xff)` : `(r[${i}] & 0xff)`;
  }
  return undefined;
}

/** Statement writing `v` to a general register (merging into the 32-bit slot for 8/16 bits). */
export function setReg(r: number, v: string): string | undefined {
  const i = GPR_INDEX[r]!;
  switch (GPR_WIDTH[r]) {
    case 32: return `r[${i}] = ${v};`;
    case 16: return `r[${i}] = (r[${i}] & ~0xffff) | ((${v}) & 0xffff);`;
    case 8: {
      const sh = GPR_SHIFT[r]!;
      return `r[${i}] = (r[${i}] & ${~(0xff << sh)}) | (((${v}) & 0xff) << ${sh});`;
    }
  }
  return undefined;
}

/** Effective address of the memory operand, wrapped to the address size (Cpu.effectiveAddress). */
export function ea(ins: Instruction): string | undefined {
  let s = `${ins.memDisp | 0}`;
  if (ins.memBase !== 0) {
    const b = reg(ins.memBase);
    if (b === undefined) return undefined;
    s += ` + ${b}`;
  }
  if (ins.memIndex !== 0) {
    const x = reg(ins.memIndex);
    if (x === undefined) return undefined;
    s += ins.memScale === 1 ? ` + ${x}` : ` + ${x} * ${ins.memScale}`;
  }
  if (ins.addressSize === 16) return `((${s}) & 0xffff)`;
  if (ins.addressSize === 32) return `((${s}) | 0)`;
  return undefined;
}

/** `const m = <effective address>;` when the instruction has an explicit memory operand, else ''. */
export function memPrologue(ins: Instruction): string | undefined {
  for (let n = 0; n < ins.opCount; n++) {
    if (ins.opKinds[n] === OpKind.Memory) {
      const a = ea(ins);
      return a === undefined ? undefined : `const m = ${a};`;
    }
  }
  return '';
}

const memSeg = (ins: Instruction): number => SEG_INDEX[ins.memSegment]!;

const accessor = (size: number): string | undefined => (size === 32 ? '32' : size === 16 ? '16' : size === 8 ? '8' : undefined);

/** Cpu.readOp(ins, n, size) for register, explicit memory (after memPrologue) and immediate operands. */
export function readOp(ins: Instruction, n: number, size: number): string | undefined {
  const k = ins.opKinds[n]!;
  switch (k) {
    case OpKind.Register: return reg(ins.opRegs[n]!);
    case OpKind.Memory: {
      const a = accessor(size);
      const s = memSeg(ins);
      return a === undefined || s < 0 ? undefined : `cpu.read${a}(${s}, m)`;
    }
    case OpKind.Immediate8: case OpKind.Immediate16: case OpKind.Immediate32:
    case OpKind.Immediate8to16: case OpKind.Immediate8to32:
      return `${ins.imm | 0}`;
  }
  return undefined;
}

/**
 * Cpu.readOpRmw(ins, n, size): an operand the instruction then writes, a memory one read with
 * write intent (Cpu.readRmw32), so that the write after the flag stores cannot fault.
 */
export function readOpRmw(ins: Instruction, n: number, size: number): string | undefined {
  if (ins.opKinds[n] !== OpKind.Memory) return readOp(ins, n, size);
  const a = accessor(size);
  const s = memSeg(ins);
  return a === undefined || s < 0 ? undefined : `cpu.readRmw${a}(${s}, m)`;
}

/** Cpu.writeOp(ins, n, size, v) for register and explicit memory operands (after memPrologue). */
export function writeOp(ins: Instruction, n: number, size: number, v: string): string | undefined {
  const k = ins.opKinds[n]!;
  if (k === OpKind.Register) return setReg(ins.opRegs[n]!, v);
  if (k === OpKind.Memory) {
    const a = accessor(size);
    const s = memSeg(ins);
    return a === undefined || s < 0 ? undefined : `cpu.write${a}(${s}, m, ${v});`;
  }
  return undefined;
}

// Flag markers. The block compiler (jit.ts) reads these comments to know which instruction
// last set the status flags, from which locals: it replaces a condition whose flags come from an
// earlier instruction of the same block by an expression of that instruction's operands, and
// drops the lazy-flag stores of a register-only instruction whose flags are overwritten before
// anything can see them. Emitters must use lazy(), lazyIncDec() and CONDITION_SRC for that.
//   /*LZ op size a b res*/ stores /*ZL*/     all six status flags from op(a, b) = res
//   /*LI op size a res*/ stores /*IL*/       INC/DEC: all but CF (which is read)
//   /*CC cc*/ expression /*CC*/              a condition code
// The a/b/res of a marker are plain local names or number literals.

/** Cpu.setLazy(op, a, b, res, size) for the operations other than INC/DEC, carry-in 0 unless given. */
export function lazy(op: number, a: string, b: string, res: string, size: number, carry = '0'): string {
  return `/*LZ ${op} ${size} ${a} ${b} ${res}*/ cpu.lazyMask = ${F.STATUS}; cpu.lazyOp = ${op}; cpu.lazyDst = ${a}; cpu.lazySrc = ${b}; ` +
    `cpu.lazyRes = ${res}; cpu.lazySize = ${size}; cpu.lazyCarry = ${carry}; /*ZL*/`;
}

/** Cpu.setLazy(op, a, 1, res, size) for INC and DEC. */
export function lazyIncDec(op: number, a: string, res: string, size: number): string {
  return `/*LI ${op} ${size} ${a} ${res}*/ cpu.setLazy(${op}, ${a}, 1, ${res}, ${size}); /*IL*/`;
}

const cond = (cc: string, expr: string): string => `/*CC ${cc}*/${expr}/*CC*/`;

/** Condition codes (ops/conditions.ts) as expressions. */
export const CONDITION_SRC: Readonly<Record<string, string>> = {
  o: cond('o', `cpu.getFlag(${F.OF})`),
  no: cond('no', `!cpu.getFlag(${F.OF})`),
  b: cond('b', `cpu.getFlag(${F.CF})`),
  ae: cond('ae', `!cpu.getFlag(${F.CF})`),
  e: cond('e', `cpu.getFlag(${F.ZF})`),
  ne: cond('ne', `!cpu.getFlag(${F.ZF})`),
  be: cond('be', `(cpu.getFlag(${F.CF}) || cpu.getFlag(${F.ZF}))`),
  a: cond('a', `(!cpu.getFlag(${F.CF}) && !cpu.getFlag(${F.ZF}))`),
  s: cond('s', `cpu.getFlag(${F.SF})`),
  ns: cond('ns', `!cpu.getFlag(${F.SF})`),
  p: cond('p', `cpu.getFlag(${F.PF})`),
  np: cond('np', `!cpu.getFlag(${F.PF})`),
  l: cond('l', `(cpu.getFlag(${F.SF}) !== cpu.getFlag(${F.OF}))`),
  ge: cond('ge', `(cpu.getFlag(${F.SF}) === cpu.getFlag(${F.OF}))`),
  le: cond('le', `(cpu.getFlag(${F.ZF}) || cpu.getFlag(${F.SF}) !== cpu.getFlag(${F.OF}))`),
  g: cond('g', `(!cpu.getFlag(${F.ZF}) && cpu.getFlag(${F.SF}) === cpu.getFlag(${F.OF}))`),
};

/** Joins pieces, or undefined if any is. */
export function all(...parts: (string | undefined)[]): string | undefined {
  for (const p of parts) if (p === undefined) return undefined;
  return parts.join(' ');
}
