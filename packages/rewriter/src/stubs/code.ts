// A byte buffer that knows the address it will be loaded at, with the few hand-encoded forms
// trampolines need (jumps with rel32, PUSH imm32). Hand-encoded rather than assembled because
// the exact length of each form is part of the layout (docs/patch-abi.md gives the listings,
// and the tests decode every byte back with the decoder).

/** Condition codes of Jcc (SDM vol. 2 Table B-1: tttn). */
export const CONDITION_CODES: Readonly<Record<string, number>> = {
  jo: 0x0, jno: 0x1, jb: 0x2, jae: 0x3, je: 0x4, jne: 0x5, jbe: 0x6, ja: 0x7,
  js: 0x8, jns: 0x9, jp: 0xa, jnp: 0xb, jl: 0xc, jge: 0xd, jle: 0xe, jg: 0xf,
};

/** rel32 from the end of an instruction at `next` to `target`, wrapped like EIP (mod 2^32). */
export const rel32 = (target: number, next: number): number => (target - next) >>> 0;

export class CodeBuffer {
  private readonly out: number[] = [];
  constructor(readonly origin: number) {}

  /** Address of the next byte. */
  get here(): number {
    return (this.origin + this.out.length) >>> 0;
  }
  get length(): number {
    return this.out.length;
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.out.push(bytes[i]! & 0xff);
    return this;
  }
  // u32 and jmp push directly: a busybox rewrite emits some 100,000 trampolines, and a temporary
  // array per call was a measurable share of its garbage.
  u32(v: number): this {
    this.out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    return this;
  }
  /** E9 rel32. */
  jmp(target: number): this {
    this.out.push(0xe9);
    return this.u32(rel32(target, this.here + 4));
  }
  /** 0F 8x rel32. */
  jcc(cc: number, target: number): this {
    return this.raw([0x0f, 0x80 | cc]).u32(rel32(target, this.here + 4));
  }
  /** 68 imm32. */
  push32(v: number): this {
    return this.raw([0x68]).u32(v >>> 0);
  }
  bytes(): Uint8Array {
    const b = new Uint8Array(this.out.length);
    for (let i = 0; i < b.length; i++) b[i] = this.out[i]!;
    return b;
  }
}

/** E9 rel32 at `at` to `target`: the 5 bytes of a B1/T2 patch. */
export function jmpRel32(at: number, target: number): Uint8Array {
  return new CodeBuffer(at).jmp(target).bytes();
}
