// fast-check arbitraries for instruction byte strings. Uniform bytes alone rarely reach
// prefixes, the 0F38/0F3A maps or VEX/EVEX/XOP, so strings are assembled from parts that
// shrink independently: prefixes, an optional REX, an opcode escape, then random tail bytes.
import fc from 'fast-check';

const LEGACY_PREFIXES = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];

const escape = fc.oneof(
  { weight: 6, arbitrary: fc.constant<number[]>([]) },
  { weight: 3, arbitrary: fc.constant([0x0f]) },
  { weight: 1, arbitrary: fc.constant([0x0f, 0x38]) },
  { weight: 1, arbitrary: fc.constant([0x0f, 0x3a]) },
  { weight: 1, arbitrary: fc.constant([0x0f, 0x0f]) },
  // VEX3 / XOP / EVEX with plausible fixed bits (mod-11-looking byte 1, map field in range)
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 3 })).map(([rxb, m]) => [0xc4, (rxb << 5) | m]) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => [0xc5, b]) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 8, max: 10 })).map(([rxb, m]) => [0x8f, (rxb << 5) | m]) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.integer({ min: 0, max: 15 }), fc.constantFrom(1, 2, 3, 5, 6), fc.integer({ min: 0, max: 255 })).map(
      ([rxbr, m, p1]) => [0x62, (rxbr << 4) | m, p1 | 0x04],
    ),
  },
);

export const instructionBytes = (bits: 16 | 32 | 64): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 15, maxLength: 15 }) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          fc.array(fc.constantFrom(...LEGACY_PREFIXES), { maxLength: 4 }),
          bits === 64 ? fc.option(fc.integer({ min: 0x40, max: 0x4f }), { nil: undefined }) : fc.constant(undefined),
          escape,
          fc.uint8Array({ minLength: 15, maxLength: 15 }),
        )
        .map(([pre, rex, esc, tail]) => {
          const all = [...pre, ...(rex === undefined ? [] : [rex]), ...esc, ...tail];
          return Uint8Array.from(all.slice(0, 15));
        }),
    },
  );

export const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
