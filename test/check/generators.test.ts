// The guest-program generators of the rewrite-correctness property (test/arbitraries/
// guest-programs.ts, from packages/cli/src/check/): every program builds into a multiboot image
// whose body decodes cleanly, item by item, and the generators reach the hard cases for the
// rewriter. Decoding is the decoder's; sensitivity is the decoder's class table (isSensitive),
// not the rewriter's site finder. No program is run here (packages/cli/test/check.test.ts runs them).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decoder, Instruction, OpKind, classOf, isSensitive } from '@ringshift/decoder';
import { readElf } from '@ringshift/rewriter';
import { ITEM_KINDS, buildGuest, guestProgramArb, type GuestImage } from '../arbitraries/guest-programs';

const SEED = 1125;

interface Decoded { addr: number; length: number; sensitive: boolean; target?: number }

/** The body, decoded linearly from the image's .text.body section. */
function decodeBody(g: GuestImage): Decoded[] {
  const elf = readElf(g.image);
  const sec = elf.sections.find((s) => s.name === '.text.body')!;
  expect(sec.addr).toBe(g.body.start);
  expect(sec.addr + sec.size).toBe(g.body.end);
  const out: Decoded[] = [];
  const d = new Decoder(32, sec.bytes, sec.addr, 0);
  const ins = new Instruction();
  for (let off = 0; off < sec.bytes.length;) {
    d.seek(sec.bytes, sec.addr + off, off);
    d.decodeAt(ins);
    expect(ins.valid, `invalid instruction at 0x${(sec.addr + off).toString(16)}`).toBe(true);
    const direct = ins.opKinds[0] === OpKind.NearBranch32 && classOf(ins.form).flow !== 'next';
    out.push({ addr: ins.ip, length: ins.length, sensitive: isSensitive(ins.form), ...(direct ? { target: ins.target } : {}) });
    off += ins.length;
  }
  return out;
}

describe('guest-program generators', () => {
  it('every program builds; its body decodes to the end of its section, and items start on instruction boundaries', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(guestProgramArb(12), (p) => {
        const g = buildGuest(p);
        const body = decodeBody(g);
        const starts = new Set(body.map((i) => i.addr));
        for (const it of g.items) expect(starts.has(it.addr) || it.addr === g.body.end).toBe(true);
        // Direct branches in the body go to instruction boundaries (forward items, loop heads) or out to the epilogue.
        for (const i of body) if (i.target !== undefined && i.target >= g.body.start && i.target < g.body.end) expect(starts.has(i.target)).toBe(true);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it('reach the hard cases: 1-byte sites back to back, sites at branch targets, a site ending the section, every kind', { timeout: 60_000 }, () => {
    const programs = fc.sample(guestProgramArb(), { seed: SEED, numRuns: 40 });
    let adjacentOneByte = 0, atTarget = 0, atSectionEnd = 0;
    const kinds = new Set<string>();
    for (const p of programs) {
      p.items.forEach((i) => kinds.add(i.kind));
      const g = buildGuest(p);
      const body = decodeBody(g);
      const targets = new Set(body.flatMap((i) => (i.target === undefined ? [] : [i.target])));
      body.forEach((i, k) => {
        const next = body[k + 1];
        if (i.sensitive && i.length === 1 && next?.sensitive && next.length === 1) adjacentOneByte++;
        if (i.sensitive && targets.has(i.addr)) atTarget++;
      });
      const last = body[body.length - 1];
      if (last?.sensitive && last.addr + last.length === g.body.end) atSectionEnd++;
    }
    expect(adjacentOneByte).toBeGreaterThan(0);
    expect(atTarget).toBeGreaterThan(0);
    expect(atSectionEnd).toBeGreaterThan(0);
    expect([...kinds].sort()).toEqual([...ITEM_KINDS].sort());
  });
});
