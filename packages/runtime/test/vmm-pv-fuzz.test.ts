// Fuzz (fast-check, fixed seed): a guest issues random hypercalls with random arguments (biased
// toward the values that reach deep paths: its own frames, page-table frames, the monitor's
// frames, pointers into a page of random bytes). Whatever it does, the runtime never throws and
// never hangs (the run ends with a report), the monitor's memory outside what a hypercall may
// write (the GDT, shared_info, grant frames, M2P entries of the guest's own frames) is
// unchanged, and no frame is both a page table and writable.
import { Assembler, imm, reg } from '@ringshift/decoder';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadPv } from '../src/vmm/pv/loader';
import { PV_GDT_PAGES } from '../src/vmm/pv/gdt';
import { GRANT_FRAMES } from '../src/vmm/pv/layout';
import { GUEST_CODE, GUEST_DATA, VIRT_BASE, pvImage } from './support/pv-guest';
import { typeViolations } from './support/pv-invariants';

const SEED = 0x8e11;
const ARGS = GUEST_DATA + 0x2000;
const probe = loadPv(pvImage(Uint8Array.from([0x90])), { memoryBytes: 8 << 20 });
const L = probe.boot.layout, L3 = probe.boot.l3Mfn;
const NUMBERS = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24, 26, 29, 30, 32, 33];

const arg = fc.oneof(
  fc.integer({ min: 0, max: 16 }),
  fc.constant(0x7ff0),
  fc.integer({ min: 0, max: 63 }).map((k) => ARGS + k * 16),
  fc.integer({ min: 0, max: 2047 }).map((k) => L.firstGuestMfn + k),
  fc.tuple(fc.integer({ min: 0, max: 2047 }), fc.constantFrom(0x1, 0x3, 0x7, 0x21, 0x63)).map(([k, f]) => ((L.firstGuestMfn + k) << 12 | f) >>> 0),
  fc.constantFrom(L3, (L3 << 12) | 1, (L3 << 12) | 3, L.gdtMfn, (L.m2pMfn << 12) | 3, L.sharedInfoMfn, (L.sharedInfoMfn << 12) | 3),
  fc.constantFrom(probe.boot.ptVa, probe.boot.startInfoVa, GUEST_CODE, 0xf5800000, 0xfffe0000, VIRT_BASE),
  fc.integer({ min: 0, max: 0xffffffff }),
);
const call = fc.record({
  nr: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...NUMBERS) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 63 }) }),
  args: fc.array(arg, { minLength: 5, maxLength: 5 }),
});
const program = fc.record({
  calls: fc.array(call, { minLength: 1, maxLength: 12 }),
  bytes: fc.uint8Array({ minLength: 1024, maxLength: 1024 }),
});

/** The monitor's bytes a guest may never change: everything below its frames except the GDT, shared_info, grant frames and the M2P entries of guest frames. */
function protectedBytes(mem: Uint8Array): Uint8Array {
  const out = mem.slice(0, L.firstGuestMfn * 4096);
  out.fill(0, L.gdtMfn * 4096, (L.gdtMfn + PV_GDT_PAGES) * 4096);
  out.fill(0, L.sharedInfoMfn * 4096, (L.grantMfn + GRANT_FRAMES) * 4096);
  out.fill(0, L.m2pMfn * 4096 + L.firstGuestMfn * 4, (L.m2pMfn + L.m2pFrames) * 4096);
  return out;
}

describe('pv: random hypercalls', () => {
  it('never throw, never hang, never touch the monitor\'s memory, never leave a writable page table', () => {
    fc.assert(fc.property(program, ({ calls, bytes }) => {
      const a = new Assembler(32, GUEST_CODE);
      const regs = ['ebx', 'ecx', 'edx', 'esi', 'edi'] as const;
      for (const c of calls) {
        c.args.forEach((x, i) => a.asm('mov', reg(regs[i]!), imm(x >>> 0)));
        a.asm('mov', reg('eax'), imm(c.nr));
        a.asm('int', imm(0x82));
      }
      const spin = a.here();
      a.jmp(spin);
      const g = loadPv(pvImage(a.assemble().bytes), { memoryBytes: 8 << 20 });
      g.domain.gm.writeBytes(ARGS, bytes);
      const before = protectedBytes(g.machine.mem.u8);
      const report = g.domain.run({ maxInstructions: 20_000 });
      expect(['exit', 'budget', 'halt']).toContain(report.reason);
      const after = protectedBytes(g.machine.mem.u8);
      const diff = after.findIndex((b, i) => b !== before[i]);
      expect(diff, `monitor byte 0x${diff.toString(16)} changed`).toBe(-1);
      expect(typeViolations(g.domain)).toEqual([]);
    }), { seed: SEED, numRuns: 30, verbose: true });
  }, 30_000);
});
