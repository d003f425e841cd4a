// Memory operands: address size, ModRM.mod/rm, SIB and displacement for 16- and 32-bit
// addressing (SDM vol. 2 §2.1.5: table 2-1 for 16-bit, tables 2-2/2-3 for 32-bit).
import * as R from '../table/registers';
import { EncodeError } from './errors';

// Module-local copies (see encoder.ts): imported bindings become getters under tsx.
const Reg = { ...R.Reg };
const registerName = R.registerName;
const registerWidth = R.registerWidth;

export interface MemoryInput {
  readonly base: number;
  readonly index: number;
  readonly scale: number;
  /** Displacement; negative values are accepted and wrapped to the address size. */
  readonly disp: number;
  /** Minimum displacement width in bytes the caller asks for (0 = choose the shortest). */
  readonly dispSize: number;
}

export interface MemoryEncoding {
  readonly addrSize: 16 | 32;
  readonly mod: number;
  readonly rm: number;
  /** SIB byte, or -1 when none. */
  readonly sib: number;
  /** Displacement bytes to emit (little-endian, already truncated to dispBytes). */
  readonly disp: number;
  readonly dispBytes: 0 | 1 | 2 | 4;
  /** Segment used when no override is given (SS for rBP/ESP-based forms, else DS). */
  readonly defaultSegment: number;
}

const BX = Reg.AX + 3;
const BP = Reg.AX + 5;
const SI = Reg.AX + 6;
const DI = Reg.AX + 7;

/**
 * Segment a memory operand uses without an override: SS when it is based on ESP/EBP (32-bit)
 * or involves BP (16-bit, table 2-1 rm 010/011/110), else DS (SDM vol. 1 §3.7.4.1).
 */
export function defaultSegmentFor(base: number, index: number): number {
  if (base === Reg.EAX + 4 || base === Reg.EAX + 5) return Reg.SS;
  if (base === BP || index === BP) return Reg.SS;
  return Reg.DS;
}

/** Displacement as a 32-bit unsigned value; anything not representable in 32 bits is an error. */
export function disp32(d: number): number {
  if (!Number.isInteger(d) || d < -0x80000000 || d > 0xffffffff) {
    throw new EncodeError(`displacement ${d} does not fit in 32 bits`);
  }
  return d >>> 0;
}

function disp16(d: number): number {
  if (!Number.isInteger(d) || d < -0x8000 || d > 0xffff) {
    throw new EncodeError(`displacement ${d} does not fit 16-bit addressing (-0x8000..0xffff)`);
  }
  return d & 0xffff;
}

export const fitsDisp8in32 = (u: number): boolean => u < 0x80 || u >= 0xffffff80;
const fitsDisp8in16 = (u: number): boolean => u < 0x80 || u >= 0xff80;

function checkAddressRegister(r: number, role: string): number {
  const w = registerWidth(r);
  if (w !== 16 && w !== 32) {
    throw new EncodeError(`${registerName(r)} cannot be a ${role} register in 16/32-bit addressing`);
  }
  return w;
}

/**
 * Address size a memory operand needs: the width of its base/index registers; for a bare
 * address, the width the caller fixed with dispSize (2 or 4), else the mode's own unless
 * the address does not fit 16 bits.
 */
export function memoryAddressSize(m: MemoryInput, bits: 16 | 32): 16 | 32 {
  const wb = m.base ? checkAddressRegister(m.base, 'base') : 0;
  const wi = m.index ? checkAddressRegister(m.index, 'index') : 0;
  if (wb && wi && wb !== wi) {
    throw new EncodeError(`cannot mix ${registerName(m.base)} and ${registerName(m.index)} in one address`);
  }
  const w = wb || wi;
  if (w) return w as 16 | 32;
  return absoluteAddressSize(m.disp, m.dispSize, bits);
}

/** Address size for a displacement-only operand (also moffs). */
export function absoluteAddressSize(disp: number, dispSize: number, bits: 16 | 32): 16 | 32 {
  if (dispSize === 2) return 16;
  if (dispSize === 4) return 32;
  if (bits === 16 && !(Number.isInteger(disp) && disp >= -0x8000 && disp <= 0xffff)) return 32;
  return bits;
}

export function encodeMemory(m: MemoryInput, addrSize: 16 | 32): MemoryEncoding {
  return addrSize === 16 ? encode16(m) : encode32(m);
}

function log2Scale(scale: number): number {
  switch (scale) {
    case 1: return 0;
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    default: throw new EncodeError(`scale ${scale} is not 1, 2, 4 or 8`);
  }
}

function encode32(m: MemoryInput): MemoryEncoding {
  const d = disp32(m.disp);
  const ss = log2Scale(m.scale);
  const base = m.base ? m.base - Reg.EAX : -1;
  const index = m.index ? m.index - Reg.EAX : -1;
  if (index === 4) throw new EncodeError('esp cannot be an index register (SIB.index 100 means "no index")');
  if (m.dispSize === 2) throw new EncodeError('a 2-byte displacement needs 16-bit addressing');
  // ESP as base only exists in SIB form (rm = 100 means "SIB follows"); a scale without an
  // index keeps the SIB form too, so that a decoded SIB with index = 100 re-encodes as is.
  const needSib = index >= 0 || base === 4 || ss !== 0;
  const defaultSegment = base === 4 || base === 5 ? Reg.SS : Reg.DS;
  if (base < 0) {
    // mod = 00 with rm = 101 (or SIB.base = 101) means disp32 with no base (table 2-2/2-3).
    if (needSib) {
      return { addrSize: 32, mod: 0, rm: 4, sib: (ss << 6) | ((index < 0 ? 4 : index) << 3) | 5, disp: d, dispBytes: 4, defaultSegment };
    }
    return { addrSize: 32, mod: 0, rm: 5, sib: -1, disp: d, dispBytes: 4, defaultSegment };
  }
  // [EBP] has no mod = 00 encoding (that slot is disp32), so it takes a zero disp8.
  let size: 0 | 1 | 4 = d === 0 && base !== 5 ? 0 : fitsDisp8in32(d) ? 1 : 4;
  if (m.dispSize > size) size = m.dispSize >= 4 ? 4 : 1;
  const mod = size === 0 ? 0 : size === 1 ? 1 : 2;
  const disp = size === 1 ? d & 0xff : size === 4 ? d : 0;
  if (needSib) {
    return { addrSize: 32, mod, rm: 4, sib: (ss << 6) | ((index < 0 ? 4 : index) << 3) | base, disp, dispBytes: size, defaultSegment };
  }
  return { addrSize: 32, mod, rm: base, sib: -1, disp, dispBytes: size, defaultSegment };
}

/** Table 2-1: the eight base/index combinations of 16-bit addressing and their rm values. */
function rm16(a: number, b: number): number {
  const has = (r: number): boolean => a === r || b === r;
  const n = (a ? 1 : 0) + (b ? 1 : 0);
  if (n === 2) {
    if (a === b) return -1;
    if (has(BX) && has(SI)) return 0;
    if (has(BX) && has(DI)) return 1;
    if (has(BP) && has(SI)) return 2;
    if (has(BP) && has(DI)) return 3;
    return -1;
  }
  const r = a || b;
  return r === SI ? 4 : r === DI ? 5 : r === BP ? 6 : r === BX ? 7 : -1;
}

function encode16(m: MemoryInput): MemoryEncoding {
  const d = disp16(m.disp);
  if (m.index && m.scale !== 1) throw new EncodeError('16-bit addressing has no scale factor');
  if (m.dispSize === 4) throw new EncodeError('a 4-byte displacement needs 32-bit addressing');
  if (!m.base && !m.index) {
    // mod = 00, rm = 110 is disp16 with no base (table 2-1).
    return { addrSize: 16, mod: 0, rm: 6, sib: -1, disp: d, dispBytes: 2, defaultSegment: Reg.DS };
  }
  const rm = rm16(m.base, m.index);
  if (rm < 0) {
    const parts = [m.base, m.index].filter((r) => r).map(registerName).join('+');
    throw new EncodeError(`[${parts}] is not a 16-bit addressing form (bx or bp, plus si or di)`);
  }
  // [BP] alone has no mod = 00 encoding (that slot is disp16), so it takes a zero disp8.
  let size: 0 | 1 | 2 = d === 0 && rm !== 6 ? 0 : fitsDisp8in16(d) ? 1 : 2;
  if (m.dispSize > size) size = m.dispSize >= 2 ? 2 : 1;
  const mod = size === 0 ? 0 : size === 1 ? 1 : 2;
  const disp = size === 1 ? d & 0xff : size === 2 ? d : 0;
  const defaultSegment = rm === 2 || rm === 3 || rm === 6 ? Reg.SS : Reg.DS;
  return { addrSize: 16, mod, rm, sib: -1, disp, dispBytes: size, defaultSegment };
}
