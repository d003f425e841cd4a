// Per-byte address sets and an address → index map for the plan. Busybox has about 470,000
// instructions and 1.5 MB of code: a JS Set or Map with an entry per byte or per instruction
// costs hundreds of milliseconds in hashing and garbage collection, so the plan keeps them in
// typed arrays over the image's address span, with a plain Set/Map only for addresses outside it
// (or for an image whose span is too wide for an array).

/** Widest span [lo, hi) kept in an array (bytes per entry: 1 for ByteSet, 4 for AddrIndex). */
const MAX_SPAN = 0x4000000;

/** The span [lo, hi) of a list of [start, end) ranges, or undefined when empty or too wide. */
export function spanOf(ranges: readonly (readonly [number, number])[]): readonly [number, number] | undefined {
  if (ranges.length === 0) return undefined;
  const lo = Math.min(...ranges.map((r) => r[0]));
  const hi = Math.max(...ranges.map((r) => r[1]));
  return hi - lo <= MAX_SPAN ? [lo, hi] : undefined;
}

/** A set of byte addresses (has/add only). */
export class ByteSet {
  private readonly lo: number;
  private readonly bits: Uint8Array;
  private readonly rest = new Set<number>();
  constructor(span: readonly [number, number] | undefined) {
    this.lo = span ? span[0] : 0;
    this.bits = new Uint8Array(span ? span[1] - span[0] : 0);
  }
  has(a: number): boolean {
    const i = a - this.lo;
    return i >= 0 && i < this.bits.length ? this.bits[i] === 1 : this.rest.has(a);
  }
  add(a: number): void {
    const i = a - this.lo;
    if (i >= 0 && i < this.bits.length) this.bits[i] = 1;
    else this.rest.add(a);
  }
}

/** A map from addresses to non-negative integers below 2^31 - 1 (get/set only). */
export class AddrIndex {
  private readonly lo: number;
  /** value + 1; 0 = absent. */
  private readonly slots: Int32Array;
  private readonly rest = new Map<number, number>();
  constructor(span: readonly [number, number] | undefined) {
    this.lo = span ? span[0] : 0;
    this.slots = new Int32Array(span ? span[1] - span[0] : 0);
  }
  get(a: number): number | undefined {
    const i = a - this.lo;
    if (i >= 0 && i < this.slots.length) {
      const v = this.slots[i]!;
      return v === 0 ? undefined : v - 1;
    }
    return this.rest.get(a);
  }
  set(a: number, v: number): void {
    const i = a - this.lo;
    if (i >= 0 && i < this.slots.length) this.slots[i] = v + 1;
    else this.rest.set(a, v);
  }
}
