// Lazy status flags: arithmetic records its operands and result, and CF/PF/AF/ZF/SF/OF are
// computed only when something reads them (most results are overwritten before any Jcc looks).
// The formulas are the SDM's definitions (vol. 1 §3.4.3.1, appendix A "EFLAGS cross-reference").

/** What the last flag-setting arithmetic did. */
export const LazyOp = {
  Add: 1,
  /** SUB, CMP, and the subtraction inside CMPS/SCAS/CMPXCHG. */
  Sub: 2,
  Adc: 3,
  Sbb: 4,
  /** AND, OR, XOR, TEST: CF = OF = 0, AF undefined (0 here). */
  Logic: 5,
  /** INC/DEC leave CF alone: their lazy mask excludes CF. */
  Inc: 6,
  Dec: 7,
  /** NEG: dst = 0, src = operand. */
  Neg: 8,
} as const;

const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let p = 1;
  for (let b = i; b; b >>= 1) p ^= b & 1;
  PARITY[i] = p;
}

/** PF: 1 when the low byte has an even number of set bits. */
export const parity = (v: number): number => PARITY[v & 0xff]!;

export interface LazyState {
  lazyOp: number;
  lazyDst: number;
  lazySrc: number;
  lazyRes: number;
  /** Operand size in bits: 8, 16 or 32. */
  lazySize: number;
  /** Carry-in of ADC/SBB. */
  lazyCarry: number;
}

const mask = (size: number): number => (size === 32 ? -1 : (1 << size) - 1);

export function lazyCF(s: LazyState): boolean {
  const m = mask(s.lazySize);
  const d = (s.lazyDst & m) >>> 0, src = (s.lazySrc & m) >>> 0, r = (s.lazyRes & m) >>> 0;
  switch (s.lazyOp) {
    case LazyOp.Add: return r < d;
    case LazyOp.Adc: return s.lazyCarry ? r <= d : r < d;
    case LazyOp.Sub: return d < src;
    case LazyOp.Sbb: return s.lazyCarry ? d <= src : d < src;
    case LazyOp.Neg: return src !== 0;
    default: return false;
  }
}

export function lazyOF(s: LazyState): boolean {
  const top = s.lazySize - 1;
  const d = s.lazyDst, src = s.lazySrc, r = s.lazyRes;
  switch (s.lazyOp) {
    case LazyOp.Add: case LazyOp.Adc: case LazyOp.Inc:
      return (((d ^ r) & (src ^ r)) >>> top & 1) === 1;
    case LazyOp.Sub: case LazyOp.Sbb: case LazyOp.Dec: case LazyOp.Neg:
      return (((d ^ src) & (d ^ r)) >>> top & 1) === 1;
    default:
      return false;
  }
}

export function lazyAF(s: LazyState): boolean {
  return s.lazyOp !== LazyOp.Logic && ((s.lazyDst ^ s.lazySrc ^ s.lazyRes) & 0x10) !== 0;
}

export const lazyZF = (s: LazyState): boolean => (s.lazyRes & mask(s.lazySize)) === 0;
export const lazySF = (s: LazyState): boolean => ((s.lazyRes >>> (s.lazySize - 1)) & 1) === 1;
export const lazyPF = (s: LazyState): boolean => PARITY[s.lazyRes & 0xff] === 1;
