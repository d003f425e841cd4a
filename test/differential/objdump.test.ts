// Differential test against GNU objdump: every instruction of a large real ELF64 (the host's
// libc, present on every Debian system) and of an i386 fixture compiled here in several
// configurations (plus one in 16-bit mode), compared boundary by boundary. See ./objdump.ts for
// what is compared and which naming differences are accepted.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NORMALISATIONS, compareWithObjdump, describeComparison } from './objdump';
import type { Comparison } from './objdump';

const LIBC = '/usr/lib/x86_64-linux-gnu/libc.so.6';
const FIXTURE = join(import.meta.dirname, 'fixtures/sample.c');

/** gcc configurations of the fixture: each makes the compiler reach for other instructions. */
const VARIANTS: { name: string; flags: string[]; bits: 16 | 32; objdump?: string[] }[] = [
  { name: 'i386 -O2 -msse2', flags: ['-m32', '-O2', '-msse2'], bits: 32 },
  { name: 'i386 -Os -march=i386 (x87, no SSE)', flags: ['-m32', '-Os', '-march=i386', '-mno-sse'], bits: 32 },
  { name: 'i686 -O2 SSE4.2/SSSE3/POPCNT, SSE math', flags: ['-m32', '-O2', '-march=i686', '-msse4.2', '-mssse3', '-mpopcnt', '-mfpmath=sse'], bits: 32 },
  { name: 'i386 -O3 AVX2/FMA/BMI (VEX)', flags: ['-m32', '-O3', '-mavx2', '-mfma', '-mbmi', '-mbmi2', '-mlzcnt'], bits: 32 },
  { name: 'i386 -O3 AVX-512 (EVEX)', flags: ['-m32', '-O3', '-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq'], bits: 32 },
  // .code16gcc: 32-bit C in 16-bit code, so every 32-bit operation carries 66/67 prefixes.
  { name: 'real mode -m16 -O2', flags: ['-m16', '-O2'], bits: 16, objdump: ['-m', 'i8086'] },
];

const results: Comparison[] = [];

afterAll(() => {
  // The agreement figures are the point of this test; print them whether it passed or not.
  console.log(`\n## objdump differential\n\n${results.map(describeComparison).join('\n\n')}\n`);
  const used = new Set(results.flatMap((r) => Object.keys(r.normalised)));
  console.log(`normalisations never needed in this run: ${NORMALISATIONS.filter((n) => !used.has(n.id)).map((n) => n.id).join(', ') || 'none'}`);
});

describe('objdump differential', () => {
  it(`decodes every instruction of ${LIBC} .text as objdump does`, () => {
    expect(existsSync(LIBC), `${LIBC} is missing`).toBe(true);
    const r = compareWithObjdump('libc.so.6 .text', LIBC, 64, ['-j', '.text']);
    results.push(r);
    expect(r.instructions).toBeGreaterThan(100_000);
    expect(r.mismatches).toEqual([]);
  });

  describe('the i386 fixture, compiled here', () => {
    let dir = '';
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'ringshift-objdump-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it.each(VARIANTS)('$name', ({ name, flags, bits, objdump }) => {
      const object = join(dir, `${name.replace(/[^a-z0-9]+/gi, '_')}.o`);
      execFileSync('gcc', [...flags, '-ffreestanding', '-fno-pic', '-fno-asynchronous-unwind-tables', '-c', '-o', object, FIXTURE], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const r = compareWithObjdump(`sample.c, ${name}`, object, bits, objdump);
      results.push(r);
      expect(r.instructions).toBeGreaterThan(800);
      expect(r.mismatches).toEqual([]);
    });
  });

  it('needs every normalisation it accepts (none is dead weight)', () => {
    const used = new Set(results.flatMap((r) => Object.keys(r.normalised)));
    expect(NORMALISATIONS.map((n) => n.id).filter((id) => !used.has(id))).toEqual([]);
  });
});
