// The pieces of `pnpm bench` that decide what the report says (bench/ at the repository root):
// median and spread, the reproduced / not-reproduced verdict, the guest's parameter patch, the
// SVG writer, and the paper's table against the reference sheet it was copied from.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { patchLoops } from '../../../bench/guests/params';
import { summarize } from '../../../bench/lib/stats';
import { barChartSvg } from '../../../bench/lib/svg';
import { ADAMS_AGESEN_2006 } from '../../../bench/sections/adams-agesen';
import { verdict } from '../../../bench/sections/cost';
import { ROOT } from './support/cli';

describe('summarize', () => {
  it('gives the median and the interquartile range over it (linear interpolation)', () => {
    const s = summarize([5, 1, 4, 2, 3]);
    expect([s.median, s.min, s.max]).toEqual([3, 1, 5]);
    expect(s.relIqr).toBeCloseTo((4 - 2) / 3, 12);
    expect(summarize([1, 2, 3, 4]).median).toBe(2.5);
    expect(summarize([7]).relIqr).toBe(0);
    expect(() => summarize([])).toThrow(RangeError);
  });
});

describe('verdict', () => {
  it('needs the same side of the peer, and agreement within 2x for "reproduced"', () => {
    expect(verdict(3.6, 4)).toBe('reproduced');
    expect(verdict(3.6, 16)).toBe('direction only');
    expect(verdict(10, 1.0)).toBe('not reproduced');
    expect(verdict(0.067, 0.35)).toBe('direction only');
    expect(verdict(1.14, 1.0)).toBe('reproduced'); // both within ±25% of the peer
    expect(verdict(null, 2)).toBe('no paper figure');
  });
});

describe('patchLoops', () => {
  const block = (): Uint8Array => {
    const b = new Uint8Array(64);
    b.set(new TextEncoder().encode('RSBENCH1'), 20);
    return b;
  };
  it('writes the loop and the iteration count after the magic, in a copy', () => {
    const img = block();
    const out = patchLoops(img, 'paging', 0x01020304);
    expect([...out.subarray(28, 36)]).toEqual([1, 0, 0, 0, 4, 3, 2, 1]);
    expect([...img.subarray(28, 36)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });
  it('refuses an image without the block, with two, or a bad count', () => {
    expect(() => patchLoops(new Uint8Array(64), 'compute', 1)).toThrow(/no RSBENCH1/);
    const two = block();
    two.set(new TextEncoder().encode('RSBENCH1'), 40);
    expect(() => patchLoops(two, 'compute', 1)).toThrow(/two RSBENCH1/);
    expect(() => patchLoops(block(), 'compute', 0)).toThrow(RangeError);
  });
});

describe('barChartSvg', () => {
  it('escapes text and marks missing values', () => {
    const svg = barChartSvg({ title: 'A & <B>', unit: 'x', series: ['s1', 's2'], rows: [{ label: 'r"1', values: [3, null] }] });
    expect(svg).toContain('A &amp; &lt;B&gt;');
    expect(svg).toContain('r&quot;1');
    expect(svg).toContain('>n/a<');
    expect((svg.match(/<rect /g) ?? []).length).toBe(1 + 2); // one bar, two legend swatches
  });
});

// The project's reference sheets live in shared/ beside the repository (CI has a copy there).
const SHEET = join(ROOT, '../shared/reference/adams-agesen-2006.md');

describe('Adams & Agesen table', () => {
  it.skipIf(!existsSync(SHEET))('holds every number the reference sheet states, in the column it states it', () => {
    const sheet = readFileSync(SHEET, 'utf8');
    const rows = sheet.split('\n').filter((l) => /^\| (syscall|in|cr8wr|call\/ret|pgfault|divzero|ptemod) \|/.test(l));
    expect(rows).toHaveLength(7);
    for (const line of rows) {
      const cells = line.split('|').map((c) => c.trim());
      const row = ADAMS_AGESEN_2006.find((r) => r.paper === cells[1])!;
      ([['native', 3], ['software', 4], ['hardware', 5]] as const).forEach(([col, i]) => {
        const stated = /\*stated:\*\s*\*\*(\d+)\*\*/.exec(cells[i]!);
        if (stated) expect(row[col].cycles, `${row.paper} ${col}`).toBe(Number(stated[1]));
      });
    }
  });
});
