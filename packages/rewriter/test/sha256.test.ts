// Our pure-TS SHA-256 against node:crypto (an independent implementation) and the FIPS 180-4 examples.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256, sha256Hex } from '../src/sha256';

const nodeHex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe('sha256', () => {
  it('matches the FIPS 180-4 / NIST example digests', () => {
    expect(sha256Hex(ascii('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex(ascii('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('agrees with node:crypto at every length around the block and padding boundaries', () => {
    for (let n = 0; n <= 200; n++) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 131 + n) & 0xff);
      expect(sha256Hex(b), `length ${n}`).toBe(nodeHex(b));
    }
  });

  it('agrees with node:crypto on random inputs (fast-check, fixed seed)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (b) => sha256Hex(b) === nodeHex(b)),
      { seed: 0x5a256, numRuns: 300 },
    );
  });

  it('hashes a megabyte like node:crypto and returns 32 bytes', () => {
    const b = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i ^ (i >> 8)) & 0xff);
    const d = sha256(b);
    expect(d.length).toBe(32);
    expect(Buffer.from(d).toString('hex')).toBe(nodeHex(b));
  });
});
