// encode(decode(b)) === b for canonical encodings. Random byte strings are decoded by
// iced-x86; an instruction counts as canonical when iced's own encoder gives back exactly
// its bytes (no redundant prefixes, shortest displacement, ...). For those, re-encoding must
// reproduce the bytes (a) from iced's decoded instruction converted to ours, so the encoder
// is checked independently of our decoder, and (b) from our own decoder's output.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decoder } from '../src/decode/decoder';
import { encode, EncodeError } from '../src/encode/index';
import { Instruction } from '../src/instruction';
import { formById } from '../src/table/lookup';
import { instructionBytes } from './support/arbitraries';
import { iced, icedCodeName } from './support/iced';
import { icedToOurs } from './support/iced-to-ours-enc';

const RUNS = Number(process.env.RINGSHIFT_ENCODE_RUNS ?? 40_000);
const SEED = Number(process.env.RINGSHIFT_SEED ?? 20260301);
const IP = 0x7ff0;

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

function inScope(code: number, bits: 16 | 32): boolean {
  const f = formById(code);
  if (!f || (f.enc !== 'legacy' && f.enc !== '3dnow')) return false;
  return !f.modes || f.modes.includes(bits);
}

describe.each([16, 32] as const)('encode(decode(bytes)) reproduces canonical %i-bit encodings', (bits) => {
  it(`${RUNS} random byte strings (seed ${SEED + bits})`, () => {
    const stats = { inScope: 0, canonical: 0, viaIced: 0, viaOurs: 0, oursDisagrees: 0 };
    const forms = new Set<number>();
    const ours = new Instruction();
    fc.assert(
      fc.property(instructionBytes(bits), (bytes) => {
        const dec = new iced.Decoder(bits, bytes, iced.DecoderOptions.None);
        dec.ip = BigInt(IP);
        const ii = dec.decode();
        try {
          if (ii.isInvalid || !inScope(ii.code as number, bits)) return;
          stats.inScope++;
          const b = bytes.subarray(0, ii.length as number);
          const enc = new iced.Encoder(bits);
          let canonical = false;
          try {
            enc.encode(ii, BigInt(IP));
            canonical = same(enc.takeBuffer() as Uint8Array, b);
          } catch {
            canonical = false;
          } finally {
            enc.free();
          }
          if (!canonical) return;
          stats.canonical++;
          forms.add(ii.code as number);
          const name = icedCodeName(ii.code as number);

          // (a) iced's decoding, converted.
          let mine: Uint8Array;
          try {
            mine = encode(icedToOurs(ii, bits), bits);
          } catch (e) {
            throw new Error(`${bits}-bit ${name} [${hex(b)}]: encoder refused iced's decoding: ${(e as Error).message}`);
          }
          expect(hex(mine), `${bits}-bit ${name}: re-encoding iced's decoding of [${hex(b)}]`).toBe(hex(b));
          stats.viaIced++;

          // (b) our decoder's output.
          new Decoder(bits, b, IP).decodeOut(ours);
          if (!ours.valid || ours.form !== ii.code || ours.length !== b.length) {
            stats.oursDisagrees++; // the decoder's own differential test reports these
            return;
          }
          let again: Uint8Array;
          try {
            again = encode(ours, bits);
          } catch (e) {
            if (e instanceof EncodeError) throw new Error(`${bits}-bit ${name} [${hex(b)}]: encoder refused our decoder's output: ${e.message}`);
            throw e;
          }
          expect(hex(again), `${bits}-bit ${name}: re-encoding our decoding of [${hex(b)}]`).toBe(hex(b));
          stats.viaOurs++;
        } finally {
          ii.free();
          dec.free();
        }
      }),
      { seed: SEED + bits, numRuns: RUNS, includeErrorInReport: true },
    );
    console.log(
      `[encode-canonical ${bits}-bit] ${RUNS} strings: ${stats.inScope} legacy/3DNow! instructions, ${stats.canonical} canonical ` +
        `(${forms.size} distinct forms); re-encoded byte-exact from iced's decoding: ${stats.viaIced}, ` +
        `from our decoder: ${stats.viaOurs} (our decoder disagreed with iced on ${stats.oursDisagrees})`,
    );
    expect(stats.viaIced).toBe(stats.canonical);
    expect(stats.canonical).toBeGreaterThan(RUNS / 4);
  }, 300_000);
});
