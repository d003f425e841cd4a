// Byte strings biased toward real encodings: plain random bytes rarely reach prefixes,
// the 0F/0F38/0F3A maps, VEX/EVEX/XOP escapes or ModRM forms with SIB, so a share of each
// string is drawn from those.
const PREFIXES = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];

/** xorshift32: a tiny deterministic PRNG so campaigns are reproducible from a seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.s = x;
    return x;
  }
  below(n: number): number {
    return this.next() % n;
  }
}

/** Fills `out` (15 bytes) with one biased random instruction candidate. */
export function randomInstructionBytes(rng: Rng, bits: 16 | 32 | 64, out: Uint8Array): void {
  for (let i = 0; i < out.length; i++) out[i] = rng.next() & 0xff;
  let p = 0;
  const r = rng.below(100);
  // prefixes
  const np = r < 40 ? 0 : r < 75 ? 1 : r < 92 ? 2 : 3 + rng.below(4);
  for (let i = 0; i < np && p < 10; i++) out[p++] = PREFIXES[rng.below(PREFIXES.length)]!;
  if (bits === 64 && rng.below(3) === 0) out[p++] = 0x40 | rng.below(16);
  const kind = rng.below(100);
  if (kind < 30) {
    out[p++] = 0x0f;
    const k2 = rng.below(10);
    if (k2 === 0) out[p++] = 0x38;
    else if (k2 === 1) out[p++] = 0x3a;
    else if (k2 === 2) out[p++] = 0x0f;
  } else if (kind < 38) {
    out[p++] = [0xc4, 0xc5, 0x62, 0x8f][rng.below(4)]!;
    // mostly mod=11-looking second byte so that 16/32-bit modes see VEX/EVEX
    if (rng.below(4) !== 0) out[p] = out[p]! | 0xc0;
    if (out[p - 1] === 0x62 && rng.below(2) === 0) {
      out[p] = (out[p]! & 0xf7) | 0x00; // P0 bit 3 clear
      out[p + 1] = out[p + 1]! | 0x04; // P1 bit 2 set
    }
    if (out[p - 1] === 0x8f && rng.below(2) === 0) out[p] = (out[p]! & 0xe0) | (8 + rng.below(3));
    if (out[p - 1] === 0xc4 && rng.below(2) === 0) out[p] = (out[p]! & 0xe0) | (1 + rng.below(3));
  } else if (kind < 48) {
    out[p++] = 0xd8 + rng.below(8);
  }
}
