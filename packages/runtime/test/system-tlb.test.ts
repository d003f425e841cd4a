// The TLB (src/cpu/tlb.ts) against translate() without it (SDM vol. 3A §4.10: caching of
// translations; §4.10.4.1 invalidation by MOV to CR3/CR0/CR4 and INVLPG; §4.10.2.4 global pages).
import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from '../src/index';
import { translate, type PagingState } from '../src/cpu/paging';
import { Tlb } from '../src/cpu/tlb';

const PD = 0x10000, PT = 0x20000, FRAMES = 0x100000;

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function state(mem: PhysicalMemory, cr4: number, wp: boolean): PagingState {
  return { cr0: (0x80000011 | (wp ? 1 << 16 : 0)) | 0, cr2: 0, cr3: PD, cr4, efer: 0, mem };
}

type Outcome = number | string;
function access(f: () => number, s: PagingState): Outcome {
  try { return f(); } catch (e) { return `#PF ${(e as { errorCode: number }).errorCode} at ${s.cr2 >>> 0}`; }
}

/** 32-bit paging over 8 PDEs x 16 PTEs with random P/RW/US/PS/G bits. */
function randomTables(mem: PhysicalMemory, r: () => number): void {
  for (let d = 0; d < 8; d++) {
    const bits = r() & 0x1a7; // P RW US A PS G
    const large = (bits & 0x80) !== 0;
    const pde = large ? ((FRAMES + d * 0x400000) & 0xffc00000) | bits : (PT + d * 0x1000) | (bits & ~0x180) | 1;
    mem.write32(PD + d * 4, (r() & 7) === 0 ? 0 : pde);
    for (let t = 0; t < 16; t++) mem.write32(PT + d * 0x1000 + t * 4, (FRAMES + (d * 16 + t) * 0x1000) | (r() & 0x167));
  }
}

describe('TLB (SDM vol. 3A §4.10)', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`gives the same results and A/D bits as translate() over random tables (seed ${seed})`, () => {
      const r = rng(seed);
      const memA = new PhysicalMemory(1 << 23), memB = new PhysicalMemory(1 << 23);
      randomTables(memA, r);
      memB.u8.set(memA.u8);
      const cr4 = 0x10 | 0x80; // PSE, PGE
      const a = state(memA, cr4, true), b = state(memB, cr4, true);
      const tlb = new Tlb();
      for (let n = 0; n < 4000; n++) {
        const op = r() % 100;
        if (op < 3) {
          // Change a PTE, then INVLPG its page (the software rule of §4.10.4.2).
          const d = r() % 8, t = r() % 16, v = (FRAMES + (r() % 256) * 0x1000) | (r() & 0x167);
          memA.write32(PT + d * 0x1000 + t * 4, v);
          memB.write32(PT + d * 0x1000 + t * 4, v);
          tlb.invalidatePage(d * 0x400000 + t * 0x1000);
          if (memA.read32(PD + d * 4) & 0x80) tlb.invalidatePage(d * 0x400000); // large page there
          continue;
        }
        if (op < 5) { a.cr0 ^= 1 << 16; b.cr0 ^= 1 << 16; continue; } // WP toggles need no flush
        if (op < 6) { tlb.flushNonGlobal(); continue; } // CR3 reload, tables unchanged
        const lin = (r() % 8) * 0x400000 + (r() % 16) * 0x1000 + (r() & 0xfff);
        const write = (r() & 1) === 1, user = (r() & 1) === 1, fetch = !write && (r() & 3) === 0;
        const x = access(() => translate(a, lin, write, user, fetch), a);
        const y = access(() => tlb.translate(b, lin, write, user, fetch), b);
        expect(y, `access ${n} at ${lin.toString(16)}`).toBe(x);
      }
      expect(Buffer.from(memB.u8.subarray(PD, PT + 0x8000)).equals(Buffer.from(memA.u8.subarray(PD, PT + 0x8000)))).toBe(true);
      expect(tlb.hits).toBeGreaterThan(0);
    });
  }

  function oneMapping(global: boolean): { s: PagingState; tlb: Tlb; mem: PhysicalMemory } {
    const mem = new PhysicalMemory(1 << 23);
    mem.write32(PD, PT | 7);
    mem.write32(PT + 4, (FRAMES + 0x5000) | 7 | (global ? 0x100 : 0));
    return { s: state(mem, 0x80, false), tlb: new Tlb(), mem };
  }

  it('a global page (CR4.PGE, PTE.G) survives MOV to CR3; a non-global one does not (§4.10.2.4, §4.10.4.1)', () => {
    for (const global of [true, false]) {
      const { s, tlb, mem } = oneMapping(global);
      expect(tlb.translate(s, 0x1234, false, false, false)).toBe(FRAMES + 0x5234);
      mem.write32(PT + 4, (FRAMES + 0x9000) | 7); // remap without INVLPG
      tlb.flushNonGlobal();
      expect(tlb.translate(s, 0x1234, false, false, false)).toBe(global ? FRAMES + 0x5234 : FRAMES + 0x9234);
      tlb.invalidatePage(0x1fff); // INVLPG drops it, global or not
      expect(tlb.translate(s, 0x1234, false, false, false)).toBe(FRAMES + 0x9234);
    }
  });

  it('CR4 and CR0.PG changes flush global entries too', () => {
    const { s, tlb, mem } = oneMapping(true);
    tlb.translate(s, 0x1234, false, false, false);
    mem.write32(PT + 4, (FRAMES + 0x9000) | 7);
    tlb.flushAll();
    expect(tlb.translate(s, 0x1234, false, false, false)).toBe(FRAMES + 0x9234);
  });

  it('INVLPG anywhere in a 4 MiB page drops every 4 KiB entry cached from it', () => {
    const mem = new PhysicalMemory(1 << 24);
    mem.write32(PD + 4, 0x400000 | 0x87);
    const s = state(mem, 0x10, false), tlb = new Tlb();
    expect(tlb.translate(s, 0x401000, false, false, false)).toBe(0x401000);
    expect(tlb.translate(s, 0x7ff000, false, false, false)).toBe(0x7ff000);
    mem.write32(PD + 4, 0x800000 | 0x87);
    tlb.invalidatePage(0x500000);
    expect(tlb.translate(s, 0x401000, false, false, false)).toBe(0x801000);
    expect(tlb.translate(s, 0x7ff000, false, false, false)).toBe(0xbff000);
  });

  it('a cached read does not let a write skip the walk: the first write sets D (§4.8)', () => {
    const { s, tlb, mem } = oneMapping(false);
    tlb.translate(s, 0x1000, false, false, false);
    expect(mem.read32(PT + 4) & 0x60).toBe(0x20);
    tlb.translate(s, 0x1000, true, false, false);
    expect(mem.read32(PT + 4) & 0x60).toBe(0x60);
  });
});
