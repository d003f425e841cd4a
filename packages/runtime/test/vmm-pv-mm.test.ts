// Direct paging (xen/arch/x86/mm.c semantics): page tables are read-only to the guest, every
// update is validated, and a refused update changes nothing. The hypercalls are called here
// directly on a booted domain (their guest-side path is vmm-pv-hypercalls.test.ts).
import { describe, expect, it } from 'vitest';
import type { PvDomain } from '../src/vmm/pv/domain';
import { HYPERCALLS } from '../src/vmm/pv/hypercalls/table';
import { PT_L1, PT_NONE, PT_WRITABLE } from '../src/vmm/pv/mm';
import { GUEST_DATA, VIRT_BASE, bootPv } from './support/pv-guest';
import { typeViolations } from './support/pv-invariants';

const EINVAL = -22;
const call = (d: PvDomain, name: string, ...args: number[]): number | null => HYPERCALLS.find((h) => h.name === name)!.handler(d, args);
const ARGS = GUEST_DATA + 0x2000;

function booted(): { d: PvDomain; mfnOf: (va: number) => number; l1Of: (va: number) => number } {
  const g = bootPv(() => {}, { noShutdown: true, maxInstructions: 5 });
  const L = g.boot.layout;
  const d = g.domain;
  return {
    d,
    mfnOf: (va) => L.firstGuestMfn + ((va - VIRT_BASE) >>> 12),
    l1Of: (va) => {
      const mem = d.machine.mem;
      const l3e = mem.read32(d.frames.baseptr * 4096 + (va >>> 30) * 8);
      const l2e = mem.read32((l3e & ~0xfff) + ((va >>> 21) & 511) * 8);
      return ((l2e & ~0xfff) + ((va >>> 12) & 511) * 8) >>> 0;
    },
  };
}

/** Runs `fn`, expecting it to fail, and checks that no byte of machine memory changed. */
function refusedWithoutChange(d: PvDomain, fn: () => number | null): void {
  const before = d.machine.mem.u8.slice();
  const counts = d.frames.count.slice(), types = d.frames.type.slice();
  expect(fn()).toBe(EINVAL);
  const after = d.machine.mem.u8;
  let diff = -1;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) { diff = i; break; }
  expect(diff, `machine byte 0x${diff.toString(16)} changed`).toBe(-1);
  expect([...d.frames.count]).toEqual([...counts]);
  expect([...d.frames.type]).toEqual([...types]);
}

describe('pv direct paging', () => {
  it('the builder\'s tables satisfy the invariants; the L3 is pinned and the base pointer', () => {
    const { d } = booted();
    expect(typeViolations(d)).toEqual([]);
    expect(d.frames.pinned[d.frames.baseptr]! & 1).toBe(1);
    expect(d.frames.count[d.frames.baseptr]).toBe(2); // the pin and the base pointer
  });

  it('a table goes from writable to pinned L1 only after its writable mappings are gone, and back', () => {
    const { d, mfnOf, l1Of } = booted();
    const va = GUEST_DATA + 0xd000, F = mfnOf(va), G = mfnOf(GUEST_DATA + 0xe000);
    expect(d.frames.type[F]).toBe(PT_WRITABLE);
    d.gm.write32(ARGS, 0); d.gm.write32(ARGS + 4, F); d.gm.write32(ARGS + 8, 0); // PIN_L1_TABLE F
    refusedWithoutChange(d, () => call(d, 'mmuext_op', ARGS, 1, 0, 0x7ff0));
    expect(call(d, 'update_va_mapping', va, (F << 12) | 0x21, 0, 2)).toBe(0); // read-only now
    expect(d.frames.count[F]).toBe(0);
    expect(call(d, 'mmuext_op', ARGS, 1, 0, 0x7ff0)).toBe(0); // PIN_L1_TABLE
    expect(d.frames.type[F]).toBe(PT_L1);
    refusedWithoutChange(d, () => call(d, 'update_va_mapping', va, (F << 12) | 0x23, 0, 2)); // writable again: no
    // Entries of the pinned L1 through mmu_update: an owned frame writable is fine ...
    const gCount = d.frames.count[G]!;
    d.gm.write32(ARGS + 16, F << 12); d.gm.write32(ARGS + 20, 0); d.gm.write32(ARGS + 24, (G << 12) | 3); d.gm.write32(ARGS + 28, 0);
    expect(call(d, 'mmu_update', ARGS + 16, 1, 0, 0x7ff0)).toBe(0);
    expect(d.frames.count[G]).toBe(gCount + 1);
    // ... a page table writable is not, nor a frame the guest does not own, nor bits above 31.
    for (const [lo, hi] of [[(d.frames.baseptr << 12) | 3, 0], [(d.layout.gdtMfn << 12) | 1, 0], [(G << 12) | 1, 1]] as const) {
      d.gm.write32(ARGS + 32, (F << 12) + 8); d.gm.write32(ARGS + 36, 0); d.gm.write32(ARGS + 40, lo); d.gm.write32(ARGS + 44, hi);
      refusedWithoutChange(d, () => call(d, 'mmu_update', ARGS + 32, 1, 0, 0x7ff0));
    }
    expect(typeViolations(d)).toEqual([]);
    // Unpin: the L1's references go, and it may be mapped writable again.
    d.gm.write32(ARGS, 4);
    expect(call(d, 'mmuext_op', ARGS, 1, 0, 0x7ff0)).toBe(0);
    expect(d.frames.type[F]).toBe(PT_NONE);
    expect(d.frames.count[G]).toBe(gCount);
    expect(call(d, 'update_va_mapping', va, (F << 12) | 0x23, 0, 2)).toBe(0);
    expect(d.machine.mem.read32(l1Of(va)) >>> 0).toBe(((F << 12) | 0x23) >>> 0);
  });

  it('an L2 that would map one of its own tables writable, or itself, does not validate', () => {
    const { d, mfnOf } = booted();
    const va = GUEST_DATA + 0xd000, F = mfnOf(va);
    expect(call(d, 'update_va_mapping', va, (F << 12) | 0x21, 0, 2)).toBe(0);
    // F as an L2 whose entry 0 points at F itself (as an L1): a cycle.
    const mem = d.machine.mem;
    d.gm.write32(ARGS, 0); // the guest cannot write F now: the monitor prepares it, as a test
    mem.write32(F * 4096, (F << 12) | 1);
    d.gm.write32(ARGS, 1); d.gm.write32(ARGS + 4, F); d.gm.write32(ARGS + 8, 0);
    refusedWithoutChange(d, () => call(d, 'mmuext_op', ARGS, 1, 0, 0x7ff0)); // PIN_L2_TABLE
    expect(typeViolations(d)).toEqual([]);
  });

  it('NEW_BASEPTR to an L3 with flags Xen refuses (PCD) is refused; RW, A, D are allowed and cleared; CR3 switches', () => {
    const { d, mfnOf } = booted();
    const va = GUEST_DATA + 0xd000, F = mfnOf(va);
    const mem = d.machine.mem;
    // A copy of the current L3, read-only to the guest.
    for (let i = 0; i < 8; i++) mem.write32(F * 4096 + i * 4, mem.read32(d.frames.baseptr * 4096 + i * 4));
    expect(call(d, 'update_va_mapping', va, (F << 12) | 0x21, 0, 2)).toBe(0);
    const e3 = mem.read32(F * 4096 + 3 * 8);
    mem.write32(F * 4096 + 3 * 8, e3 | 0x10); // PCD: in Xen's l3_disallow_mask for a 32-bit PV guest (0xFFFFF198)
    d.gm.write32(ARGS, 5); d.gm.write32(ARGS + 4, F); d.gm.write32(ARGS + 8, 0);
    refusedWithoutChange(d, () => call(d, 'mmuext_op', ARGS, 1, 0, 0x7ff0));
    // RW, A, D: allowed by Xen (it runs the L3 as a long-mode table), reserved in a PAE PDPTE: stored cleared.
    mem.write32(F * 4096 + 3 * 8, e3 | 0x62);
    expect(call(d, 'mmuext_op', ARGS, 1, 0, 0x7ff0)).toBe(0);
    expect(d.cpu.cr3).toBe(F * 4096);
    expect(mem.read32(F * 4096 + 3 * 8)).toBe(e3);
    // The same through mmu_update of the live L3.
    d.gm.write32(ARGS, F * 4096 + 3 * 8); d.gm.write32(ARGS + 4, 0); d.gm.write32(ARGS + 8, e3 | 0x22); d.gm.write32(ARGS + 12, 0);
    expect(call(d, 'mmu_update', ARGS, 1, 0, 0x7ff0)).toBe(0);
    expect(mem.read32(F * 4096 + 3 * 8)).toBe(e3);
    expect(typeViolations(d)).toEqual([]);
  });

  it('a frame still mapped, even read-only, cannot be given back (decrease_reservation); an unmapped one can', () => {
    const { d, mfnOf } = booted();
    const va = GUEST_DATA + 0xd000, F = mfnOf(va);
    const giveBack = (): number | null => {
      d.gm.write32(ARGS, ARGS + 64); d.gm.write32(ARGS + 4, 1); d.gm.write32(ARGS + 8, 0); d.gm.write32(ARGS + 12, 0); d.gm.write32(ARGS + 16, 0x7ff0);
      d.gm.write32(ARGS + 64, F);
      return call(d, 'memory_op', 1, ARGS);
    };
    expect(call(d, 'update_va_mapping', va, (F << 12) | 0x21, 0, 2)).toBe(0); // read-only: still a mapping
    expect(giveBack()).toBe(0);
    expect(d.frames.owns(F)).toBe(true);
    expect(call(d, 'update_va_mapping', va, 0, 0, 2)).toBe(0); // unmapped
    expect(giveBack()).toBe(1);
    expect(d.frames.owns(F)).toBe(false);
    expect(d.machine.mem.read32(d.layout.m2pMfn * 4096 + F * 4) >>> 0).toBe(0xffffffff);
    // Now it is not the domain's: mapping it is refused.
    refusedWithoutChange(d, () => call(d, 'update_va_mapping', va, (F << 12) | 0x21, 0, 2));
    // populate_physmap hands a free frame back (this one).
    d.gm.write32(ARGS + 64, 0);
    expect(call(d, 'memory_op', 6, ARGS)).toBe(1);
    expect(d.gm.read32(ARGS + 64)).toBe(F);
  });
});
