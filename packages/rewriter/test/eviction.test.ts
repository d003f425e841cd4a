// T2e and T3e (E9Patch's successor and neighbour eviction, docs/tactics.md §T2e, §T3e): the
// instruction evicted for the site's jump is patched with its own jump and gets an 'evicted'
// record; nothing is assumed about jump targets. And verifyImage's checks of the pairs, on
// corrupted maps and images.
import { Assembler, imm, mem, reg, rel } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { decodePatchMap, encodePatchMap, readElf, rewriteImage, verifyImage } from '../src/index';
import type { PatchMap, PatchedSite, Tactic, ViolationKind } from '../src/index';
import { buildImage, decodeAt, inStubRanges, loadedImage, pickSites, readAt, stubListing, sweepDiscovery } from './support/image';

const hex = (n: number): string => `0x${n.toString(16)}`;

function rewrite(body: (a: Assembler) => void, opts: { kernel: boolean; targets?: string[]; tactics?: Tactic[] }) {
  const original = buildImage(body, { kernel: opts.kernel });
  const labels = new Map(readElf(original).symbols.map((s) => [s.name, s.value]));
  const { discovery } = sweepDiscovery(original, (opts.targets ?? []).map((n) => labels.get(n)!));
  const sites = pickSites(original, discovery, 'jumps');
  const r = rewriteImage(original, { select: 'jumps', discovery, sites, ...(opts.tactics ? { tactics: opts.tactics } : {}) });
  const at = (name: string): PatchedSite => r.map.sites.find((s) => s.addr === labels.get(name))!;
  return { r, original, labels, at, elf: loadedImage(r.image), orig: readElf(original) };
}

/** jne over a 5-byte MOV whose first byte is a jump target: T2 (relocation) may not evict it. */
const body = (a: Assembler): void => {
  const l = a.label('l');
  a.here('s');
  a.asm('jne', rel(l));
  a.here('n');
  a.asm('mov', reg('eax'), imm(0x11223344));
  a.bind(l);
  a.asm('ret');
};

const kinds = (r: { violations: { kind: ViolationKind }[] }): ViolationKind[] => [...new Set(r.violations.map((v) => v.kind))].sort();

describe('T2e: successor eviction', () => {
  for (const kernel of [true, false]) {
    it(`${kernel ? 'kernel' : 'user executable'}: the successor gets its own jump, the site a pun over it; both boundaries stay valid`, () => {
      const x = rewrite(body, { kernel, targets: ['n'], tactics: ['B1', 'T2e', 'T2'] });
      const s = x.at('s');
      const n = x.labels.get('n')!;
      expect(s.tactic).toBe('T2e');
      expect([s.patchStart, s.resume, s.displaced.length, s.assumesNoInnerTargets]).toEqual([s.addr, n, 2, false]);
      const e = x.r.map.sites.find((r) => r.addr === n)!;
      expect([e.reason, e.tactic, e.stub, e.patchStart, e.resume, e.assumesNoInnerTargets]).toEqual(['evicted', 'B1', 'empty', n, n + 5, false]);
      expect([...e.original]).toEqual([...readAt(x.orig, n, 5)]);
      // The site's jmp rel32 reads E9 and the low bytes of the successor's rel32 as its high bytes.
      const js = decodeAt(x.elf, s.addr);
      expect(js.length).toBe(5);
      expect(js.target).toBe(s.stubAddr);
      expect([...readAt(x.elf, s.addr + 2, 3)]).toEqual([...readAt(x.elf, n, 3)]);
      const jn = decodeAt(x.elf, n);
      expect(jn.target).toBe(e.stubAddr);
      expect(inStubRanges(x.r.map, s.stubAddr) && inStubRanges(x.r.map, e.stubAddr)).toBe(true);
      // The successor's trampoline runs it relocated and returns after it.
      const range = x.r.map.stubRanges.find((r) => e.stubAddr >= r.vaddr && e.stubAddr < r.vaddr + r.size)!;
      expect(stubListing(x.elf, e.stubAddr, range.vaddr, range.vaddr + range.size)).toEqual({ lines: ['mov eax, 0x11223344', `jmp ${hex(n + 5)}`], exit: n + 5 });
      // Counted apart: one site, one eviction; tactic counts + skipped = sites.
      expect(x.r.report.sites).toBe(1);
      expect(x.r.report.tactics.T2e).toBe(1);
      expect(x.r.report.evicted).toEqual({ B1: 1, B2: 0, T1: 0 });
      expect(x.r.report.patched).toBe(1);
      expect(verifyImage(x.r.image, x.original).violations).toEqual([]);
    });
  }

  it('a short successor is evicted with a punned jump of its own (B2), its fixed bytes pinned', () => {
    const x = rewrite((a) => {
      const l = a.label('l');
      a.here('s');
      a.asm('jne', rel(l));
      a.here('n');
      a.asm('add', reg('eax'), reg('ecx'));
      a.asm('mov', reg('edx'), imm(0x40302010));
      a.bind(l);
      a.asm('ret');
    }, { kernel: false, tactics: ['B1', 'T2e'] });
    const s = x.at('s');
    const e = x.at('n');
    expect(s.tactic).toBe('T2e');
    expect([e.reason, e.tactic]).toEqual(['evicted', 'B2']);
    expect(decodeAt(x.elf, s.addr).target).toBe(s.stubAddr);
    expect(decodeAt(x.elf, e.addr).target).toBe(e.stubAddr);
    // The MOV after the successor is unchanged (its bytes are the high part of two rel32s).
    expect([...readAt(x.elf, e.addr + 2, 5)]).toEqual([...readAt(x.orig, e.addr + 2, 5)]);
    expect(verifyImage(x.r.image, x.original).violations).toEqual([]);
  });

  it('is tried before the relocating T2, and does not evict a site', () => {
    const x = rewrite((a) => {
      const l = a.label('l');
      a.here('s');
      a.asm('jne', rel(l));
      a.here('n');
      a.asm('je', rel(l));
      a.asm('mov', reg('eax'), imm(1));
      a.bind(l);
      a.asm('ret');
    }, { kernel: true, tactics: ['T2e'] });
    const m = x.r.report.misses.find((q) => q.addr === x.labels.get('s'))!;
    expect(m.tried.find((t) => t.tactic === 'T2e')!.why).toMatch(/successor 0x[0-9a-f]+ is a site/);
  });
});

describe('verifyImage: T2e and evicted records', () => {
  const x = rewrite(body, { kernel: false, targets: ['n'], tactics: ['B1', 'T2e'] });
  const section = readElf(x.r.image).sections.find((s) => s.name === '.ringshift.patchmap')!;
  const withMap = (f: (m: PatchMap) => PatchMap): Uint8Array => {
    const out = x.r.image.slice();
    const b = encodePatchMap(f(decodePatchMap(section.bytes)));
    expect(b.length).toBe(section.bytes.length);
    out.set(b, section.offset);
    return out;
  };
  const edit = (addr: number, over: Partial<PatchedSite>) => (m: PatchMap): PatchMap => ({ ...m, sites: m.sites.map((s) => (s.addr === addr ? { ...s, ...over } : s)) });
  const s = x.at('s');
  const n = x.labels.get('n')!;

  it('accepts the rewrite', () => {
    expect(verifyImage(x.r.image, x.original).violations).toEqual([]);
  });

  it('an evicted record relabelled as a site, or with another stub kind', () => {
    expect(kinds(verifyImage(withMap(edit(n, { reason: 'jumps' }))))).toContain('site-record');
    expect(kinds(verifyImage(withMap(edit(n, { stub: 'escape' }))))).toContain('site-record');
    expect(kinds(verifyImage(withMap(edit(n, { tactic: 'T2' }))))).toContain('site-record');
  });

  it('a T2e site relabelled as B2 leaves its evicted successor unexplained', () => {
    const v = verifyImage(withMap(edit(s.addr, { tactic: 'B2' })));
    expect(v.violations.some((q) => q.kind === 'site-record' && q.message.includes(`evicted ${hex(n)}`))).toBe(true);
  });

  it("a byte of the successor's jump changed: both jumps move", () => {
    const elf = readElf(x.r.image);
    const seg = elf.segments.find((g) => g.type === 'load' && n >= g.vaddr && n < g.vaddr + g.filesz)!;
    const out = x.r.image.slice();
    out[seg.offset + n + 2 - seg.vaddr] ^= 0x40; // shared: the site's rel32 byte 3, the successor's rel32 byte 1
    const v = verifyImage(out, x.original);
    expect(v.violations.filter((q) => q.kind === 'site-bytes').map((q) => q.addr).sort()).toEqual([s.addr, n].sort());
  });
});

/** jne (its successor a site) and, before it, a 10-byte MOV whose tail can hold the jne's jmp rel32. */
const t3eBody = (a: Assembler): void => {
  const l = a.label('l');
  a.here('m');
  a.asm('mov', mem({ base: 'esi', disp: 0x01020304, size: 4 }), imm(0x11223344));
  a.asm('mov', reg('eax'), imm(1));
  a.here('s');
  a.asm('jne', rel(l));
  a.asm('je', rel(l));
  a.bind(l);
  a.asm('ret');
};

describe('T3e: neighbour eviction', () => {
  it('jmp rel8 to the neighbour\'s freed bytes, which hold the site\'s jmp rel32; the neighbour jumps to its own trampoline', () => {
    const x = rewrite(t3eBody, { kernel: false, targets: ['m'], tactics: ['B1', 'T3e'] });
    const s = x.at('s');
    const m = x.labels.get('m')!;
    expect([s.tactic, s.patchStart, s.resume, s.assumesNoInnerTargets]).toEqual(['T3e', s.addr, s.addr + 2, false]);
    const e = x.at('m');
    expect([e.reason, e.tactic, e.stub, e.patchStart, e.resume, e.assumesNoInnerTargets]).toEqual(['evicted', 'B1', 'empty', m, m + 10, false]);
    const short = decodeAt(x.elf, s.addr);
    expect([short.length, short.target]).toEqual([2, m + 5]);
    expect(decodeAt(x.elf, m + 5).target).toBe(s.stubAddr);
    expect(decodeAt(x.elf, m).target).toBe(e.stubAddr);
    expect(x.r.report.tactics.T3e).toBe(1);
    expect(x.r.report.evicted.B1).toBe(1);
    expect(verifyImage(x.r.image, x.original).violations).toEqual([]);
  });

  it('a second pass takes a site skipped because its neighbour\'s fixed bytes were a later site\'s', () => {
    // s's only neighbour of 6+ bytes is m (7 bytes): s's rel32 at m + 5 has 1 free byte and 3
    // fixed ones, s2's two and the ret. In address order s2 is not settled when s is tried (and
    // too far for the settle-first retry), so s is skipped; then s2 (whose only neighbour's
    // fixed bytes are its own) is skipped; the second pass finds s2 settled and patches s.
    const x = rewrite((a) => {
      const l = a.label('l');
      a.here('s');
      a.asm('jne', rel(l));
      a.asm('mov', reg('eax'), imm(1));
      a.here('m');
      a.asm('mov', mem({ base: 'esi', disp: 0x10, size: 4 }), imm(0x11223344));
      a.here('s2');
      a.asm('jne', rel(l));
      a.bind(l);
      a.asm('ret');
    }, { kernel: false, targets: ['m'], tactics: ['B1', 'T3e'] });
    expect(x.labels.get('s2')! - x.labels.get('m')!).toBe(7);
    expect(x.at('s').tactic).toBe('T3e');
    expect(x.at('m').reason).toBe('evicted');
    expect(x.r.report.misses.map((m) => [m.addr, m.outcome])).toEqual([[x.labels.get('s2'), 'skipped']]);
    expect(verifyImage(x.r.image, x.original).violations).toEqual([]);
  });

  it('not in kernels (the runtime\'s image check does not know it yet)', () => {
    const x = rewrite(t3eBody, { kernel: true, tactics: ['B1', 'T3e'] });
    const miss = x.r.report.misses.find((q) => q.addr === x.labels.get('s'))!;
    expect(miss.tried.find((t) => t.tactic === 'T3e')!.why).toMatch(/not in kernels/);
  });

  it('verify: the short jump redirected, or the neighbour\'s record relabelled as a site', () => {
    const x = rewrite(t3eBody, { kernel: false, targets: ['m'], tactics: ['B1', 'T3e'] });
    const s = x.at('s');
    const m = x.labels.get('m')!;
    const elf = readElf(x.r.image);
    const seg = elf.segments.find((g) => g.type === 'load' && s.addr >= g.vaddr && s.addr < g.vaddr + g.filesz)!;
    const out = x.r.image.slice();
    out[seg.offset + s.addr + 1 - seg.vaddr] = (out[seg.offset + s.addr + 1 - seg.vaddr]! - 1) & 0xff;
    expect(verifyImage(out, x.original).ok).toBe(false);
    const section = elf.sections.find((q) => q.name === '.ringshift.patchmap')!;
    const relabel = x.r.image.slice();
    const map = decodePatchMap(section.bytes);
    relabel.set(encodePatchMap({ ...map, sites: map.sites.map((q) => (q.addr === m ? { ...q, reason: 'jumps' as const } : q)) }), section.offset);
    expect(kinds(verifyImage(relabel))).toContain('site-record');
  });
});
