// Differential property test: our decoder against iced-x86 on random byte strings, in all
// three modes. Validity must agree on every string; for valid ones length, form (our form id
// is iced's Code value) and every operand must agree. Fixed seed; fast-check prints the seed
// and the shrunk bytes on failure. Long campaigns: `pnpm campaign:decoder`.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { Decoder, Instruction } from '../src/index';
import { instructionBytes, hex } from './support/arbitraries';
import { compareWithIced } from './support/compare-iced';
import { iced } from './support/iced';

const RUNS = Number(process.env.RINGSHIFT_DECODER_RUNS ?? 200_000);
const SEED = Number(process.env.RINGSHIFT_SEED ?? 20261125);

describe.each([16, 32, 64] as const)('decoder vs iced-x86, %i-bit', (bits) => {
  it(`agrees on ${RUNS} random byte strings (seed ${SEED})`, () => {
    const ours = new Instruction();
    const theirs = new iced.Instruction();
    fc.assert(
      fc.property(instructionBytes(bits), (bytes) => {
        const d = new iced.Decoder(bits, bytes, iced.DecoderOptions.None);
        d.ip = 0x7ff0n;
        d.decodeOut(theirs);
        d.free();
        new Decoder(bits, bytes, 0x7ff0).decodeAt(ours);
        const diff = compareWithIced(ours, theirs);
        if (diff) throw new Error(`${bits}-bit ${hex(bytes)}: ${diff}`);
      }),
      { seed: SEED + bits, numRuns: RUNS },
    );
    theirs.free();
  }, 300_000);
});
