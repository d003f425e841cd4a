// The ring-1 monitor's shadow descriptor tables (vmm/ring1/monitor.ts): the shadow LDT, the
// clipping of expand-down segments, and guest writes to its GDT/LDT after LGDT/LLDT. Each guest
// runs natively and under the monitor (deprivileged backend); what it can see must match.
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { MONITOR_LINEAR, Machine, Ring1Monitor, SEGMENT_CLIP, expandDownLimit, ring1MemoryBytes, shadowDescriptor } from '../src/index';
import type { GuestReport, PatchMapSite, RewrittenImage } from '../src/index';
import { Access, descriptor, flatCode, flatData, type Desc } from './support/descriptors';
import { CODE, GDT, setUpFlatGuest } from './support/flat-boot';

const GUEST_RAM = 16 << 20;
const LDT = 0x4000;
const DATA = 0x120000, SEG_A = 0x130000, SEG_B = 0x140000;

/** Guest GDT: 0x08 code, 0x10 data (flat, DPL 0), 0x18 the LDT, 0x20 data at SEG_A, 0x28 and 0x30 for the test. */
const SEL_LDT = 0x18, SEL_A = 0x20, SEL_X = 0x28, SEL_Y = 0x30;
/** Guest LDT: 0x0c data at SEG_A (DPL 0, limit 0xfff), 0x14 flat code (DPL 0). */
const LSEL_DATA = 0x0c, LSEL_CODE = 0x14;

interface Run { report: GuestReport; machine: Machine; mon: Ring1Monitor | null }

/**
 * A rewritten image with no stub segment whose escape sites are `int 0x81` instructions in the
 * guest code itself, each at a named label, standing for the instruction in `sites`: enough for
 * the monitor's escape path (emulation of the site's original instruction).
 */
function escapeImage(labels: Map<string, number>, sites: ReadonlyMap<string, (a: Assembler) => void>): RewrittenImage {
  const byEscape = new Map<number, PatchMapSite>();
  for (const [name, emit] of sites) {
    const at = labels.get(name)!;
    const one = new Assembler(32, at);
    emit(one);
    const original = one.assemble().bytes;
    const site = { addr: at, stubKind: 'escape', escapeAddr: at, stubAddr: at, patchStart: at, resume: at + 2, original, displaced: original, flags: 0, formId: 0 } as unknown as PatchMapSite;
    byEscape.set(at, site);
  }
  const map = { version: 2, flags: 0, stubVaddr: 0xffc00000, stubPaddr: 0, stubSize: 0, sharedPage: 0, select: 'sensitive', originalSha256: '', ranges: [], originalEntry: 0, sites: [...byEscape.values()] };
  return { map, stubSegments: [], stubBytes: new Uint8Array(0), guestImage: new Uint8Array(0), byEscape, byInt3: new Map(), byAddr: new Map(), entries: new Map() } as unknown as RewrittenImage;
}

function boot(body: (a: Assembler) => void, monitor: boolean, extra: { x?: Desc; y?: Desc } = {}, sites?: ReadonlyMap<string, (a: Assembler) => void>): Run {
  const machine = new Machine({ memoryBytes: monitor ? ring1MemoryBytes(GUEST_RAM, null) : GUEST_RAM });
  const m = machine.mem;
  const gdt: Desc[] = [[0, 0], flatCode(0), flatData(0), descriptor(LDT, 3 * 8 - 1, Access.system(0x2)), descriptor(SEG_A, 0xfff, Access.data(0)), extra.x ?? [0, 0], extra.y ?? [0, 0]];
  const ldt: Desc[] = [[0, 0], descriptor(SEG_A, 0xfff, Access.data(0)), flatCode(0)];
  ldt.forEach(([lo, hi], i) => { m.write32(LDT + i * 8, lo); m.write32(LDT + i * 8 + 4, hi); });
  const assembled = setUpFlatGuest(machine, body, gdt);
  let mon: Ring1Monitor | null = null;
  if (monitor) {
    mon = new Ring1Monitor(machine, { guestRamBytes: GUEST_RAM, rewrite: sites === undefined ? null : escapeImage(assembled.labels, sites) });
    mon.start();
  }
  const report = machine.run({ maxInstructions: 100_000 });
  if (mon !== null && report.reason === 'unsupported' && machine.cpu.lastExit?.detail) report.detail = machine.cpu.lastExit.detail;
  return { report, machine, mon };
}

const status = (v: number): number => (v << 1) | 1;
const both = (body: (a: Assembler) => void, extra: { x?: Desc; y?: Desc } = {}): [Run, Run] => [boot(body, false, extra), boot(body, true, extra)];
const bytes = (r: Run, at: number, n: number): number[] => Array.from(r.machine.mem.u8.subarray(at, at + n));

/** Stores ZF after the previous instruction as a byte at `at` (SETZ). */
const storeZf = (a: Assembler, at: number): void => { a.asm('setz', mem({ disp: at, size: 1 })); };

describe('ring-1 monitor: the shadow LDT', () => {
  const ldtGuest = (a: Assembler): void => {
    a.asm('mov', reg('eax'), imm(SEL_LDT));
    a.asm('lldt', reg('ax'));
    a.asm('sldt', mem({ disp: DATA, size: 2 }));
    a.asm('mov', reg('eax'), imm(LSEL_DATA));
    a.asm('mov', reg('fs'), reg('ax'));
    a.asm('mov', mem({ seg: 'fs', disp: 0x10, size: 4 }), imm(0x12345678));
    a.asm('mov', reg('eax'), mem({ seg: 'fs', disp: 0x10, size: 4 }));
    a.asm('mov', mem({ disp: DATA + 4, size: 4 }), reg('eax'));
    a.asm('mov', reg('ebx'), mem({ seg: 'fs', disp: 0xffc, size: 4 })); // the last dword within the limit
    a.asm('mov', reg('eax'), imm(LSEL_CODE));
    a.asm('verr', reg('ax'));
    storeZf(a, DATA + 8);
    a.asm('mov', reg('eax'), imm(LSEL_DATA));
    a.asm('verw', reg('ax'));
    storeZf(a, DATA + 9);
    a.asm('lsl', reg('ecx'), reg('eax'));
    storeZf(a, DATA + 10);
    a.asm('mov', mem({ disp: DATA + 12, size: 4 }), reg('ecx'));
    a.asm('lar', reg('ecx'), reg('eax'));
    storeZf(a, DATA + 11);
    a.asm('mov', mem({ disp: DATA + 16, size: 4 }), reg('ecx'));
    a.asm('mov', reg('eax'), mem({ seg: 'fs', disp: 0x1000, size: 4 })); // beyond the limit: #GP
  };

  it('DPL-0 LDT data segments load at CPL 1 and read and write as natively; SLDT shows the guest\'s selector', () => {
    const [n, r] = both(ldtGuest);
    expect(n.report.exitStatus).toBe(status(13)); // the last access, beyond the limit
    expect(r.report.exitStatus).toBe(n.report.exitStatus);
    expect(r.machine.mem.read16(DATA)).toBe(SEL_LDT);
    expect(bytes(r, DATA, 12)).toEqual(bytes(n, DATA, 12)); // SLDT, the value read back, VERR/VERW/LSL flags
    expect(r.machine.mem.read32(DATA + 4)).toBe(0x12345678);
    expect(r.machine.mem.read32(SEG_A + 0x10)).toBe(0x12345678);
    expect(r.machine.mem.read32(DATA + 12)).toBe(n.machine.mem.read32(DATA + 12)); // LSL: 0xfff
    // LAR runs natively at CPL 1 in the deprivileged backend and shows the shadow's DPL 1, as it
    // does for GDT selectors (docs/rewrite-backend.md); the rewrite backend emulates it.
    expect(r.machine.mem.read32(DATA + 16)).toBe(n.machine.mem.read32(DATA + 16) | (1 << 13));
  });

  it('the real LDTR keeps the guest\'s selector and points at the shadow LDT; the guest\'s LDT is untouched', () => {
    const { machine, mon } = boot(ldtGuest, true);
    const cpu = machine.cpu;
    expect(cpu.ldtrSel).toBe(SEL_LDT);
    expect(cpu.ldtrBase >>> 0).toBeGreaterThanOrEqual(MONITOR_LINEAR);
    expect(mon!.v.ldtrBase).toBe(LDT);
    expect((machine.mem.read32(LDT + 12) >>> 13) & 3).toBe(0); // the guest's descriptor keeps DPL 0
    // The shadow GDT's entry for the LDT selector has the shadow LDT's base.
    const [lo, hi] = [machine.mem.read32(GUEST_RAM + SEL_LDT), machine.mem.read32(GUEST_RAM + SEL_LDT + 4)];
    expect(((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0).toBe(cpu.ldtrBase >>> 0);
  });

  it('a shadow LDT entry is clipped below the monitor like a GDT entry', () => {
    const body = (a: Assembler): void => {
      a.asm('mov', reg('eax'), imm(SEL_LDT));
      a.asm('lldt', reg('ax'));
      a.asm('mov', reg('eax'), imm(LSEL_CODE)); // flat code, readable: through CS-style reads via a data register
      a.asm('mov', reg('gs'), reg('ax'));
      a.asm('mov', reg('eax'), mem({ seg: 'gs', disp: MONITOR_LINEAR | 0, size: 4 }));
    };
    expect(boot(body, true).report.exitStatus).toBe(status(13));
  });
});

describe('ring-1 monitor: LDT selectors in emulated instructions (rewrite backend escapes)', () => {
  const sites = new Map<string, (a: Assembler) => void>([
    ['sldt', (a) => { a.asm('sldt', mem({ disp: DATA + 0x20, size: 2 })); }],
    ['lar', (a) => { a.asm('lar', reg('ecx'), reg('eax')); }],
    ['lsl', (a) => { a.asm('lsl', reg('edx'), reg('eax')); }],
    ['verr', (a) => { a.asm('verr', reg('ax')); }],
    ['verw', (a) => { a.asm('verw', reg('ax')); }],
    ['lar2', (a) => { a.asm('lar', reg('ecx'), reg('eax')); }],
  ]);
  /** The guest: each site either as itself (native) or as an escape standing for it (rewrite). */
  const guest = (escapes: boolean) => (a: Assembler): void => {
    const site = (name: string): void => {
      if (escapes) { a.here(name); a.asm('int', imm(0x81)); } else sites.get(name)!(a);
    };
    a.asm('mov', reg('eax'), imm(SEL_LDT));
    a.asm('lldt', reg('ax'));
    site('sldt');
    a.asm('mov', reg('eax'), imm(LSEL_DATA));
    site('lar');
    storeZf(a, DATA + 0x30);
    a.asm('mov', mem({ disp: DATA + 0x24, size: 4 }), reg('ecx'));
    site('lsl');
    storeZf(a, DATA + 0x31);
    a.asm('mov', mem({ disp: DATA + 0x28, size: 4 }), reg('edx'));
    site('verr');
    storeZf(a, DATA + 0x32);
    site('verw');
    storeZf(a, DATA + 0x33);
    a.asm('mov', reg('eax'), imm(LSEL_CODE));
    site('lar2');
    storeZf(a, DATA + 0x34);
    a.asm('mov', mem({ disp: DATA + 0x2c, size: 4 }), reg('ecx'));
  };

  it('SLDT, LAR, LSL, VERR and VERW of LDT selectors return what they do natively (the guest\'s LDT, DPL 0)', () => {
    const n = boot(guest(false), false);
    const r = boot(guest(true), true, {}, sites);
    expect(r.report.exitStatus).toBe(status(0x42));
    expect(n.report.exitStatus).toBe(status(0x42));
    expect(r.machine.mem.read16(DATA + 0x20)).toBe(SEL_LDT);
    expect((r.machine.mem.read32(DATA + 0x24) >>> 13) & 3).toBe(0);
    expect(bytes(r, DATA + 0x20, 0x15)).toEqual(bytes(n, DATA + 0x20, 0x15));
  });
});

describe('ring-1 monitor: not-present descriptors', () => {
  it('a not-present DPL-0 data segment is DPL 1 in the shadow: LAR at CPL 1 sees it, as natively at CPL 0', () => {
    const notPresent = descriptor(SEG_A, 0xfff, Access.data(0) & 0x7f);
    const body = (a: Assembler): void => {
      a.asm('mov', reg('eax'), imm(SEL_X));
      a.asm('lar', reg('ecx'), reg('eax'));
      storeZf(a, DATA);
      a.asm('lsl', reg('edx'), reg('eax'));
      storeZf(a, DATA + 1);
      a.asm('mov', mem({ disp: DATA + 4, size: 4 }), reg('edx'));
      a.asm('mov', reg('fs'), reg('ax')); // #NP
    };
    const [n, r] = both(body, { x: notPresent });
    expect(n.report.exitStatus).toBe(status(11));
    expect(r.report.exitStatus).toBe(status(11));
    expect(bytes(r, DATA, 8)).toEqual(bytes(n, DATA, 8));
    expect(r.machine.mem.read8(DATA)).toBe(1);
  });
});

describe('ring-1 monitor: expand-down data segments are clipped', () => {
  // Expand-down, B = 1, G = 1, limit 0: offsets 0x1000 .. 0xffffffff.
  const downFromZero = descriptor(0, 0, Access.data(0, true, true), 0xc);
  // The same at base 0x10000000: offsets 0x1000 .. 0xffffffff are linear 0x10001000 .. 0x0fffffff (wrapping).
  const downWrapping = descriptor(0x10000000, 0, Access.data(0, true, true), 0xc);

  it('an expand-down segment whose top is the monitor\'s cannot read it', () => {
    const body = (a: Assembler): void => {
      a.asm('mov', reg('eax'), imm(SEL_X));
      a.asm('mov', reg('gs'), reg('ax'));
      a.asm('mov', reg('eax'), mem({ seg: 'gs', disp: MONITOR_LINEAR | 0, size: 4 }));
    };
    expect(boot(body, true, { x: downFromZero }).report.exitStatus).toBe(status(13));
  });

  it('a wrapping expand-down segment keeps its part from linear 0 (as native) and loses the monitor\'s', () => {
    const body = (a: Assembler): void => {
      a.asm('mov', reg('eax'), imm(SEL_X));
      a.asm('mov', reg('gs'), reg('ax'));
      a.asm('mov', reg('eax'), mem({ seg: 'gs', disp: (0xf0000000 + CODE) | 0, size: 4 })); // linear CODE
      a.asm('mov', mem({ disp: DATA, size: 4 }), reg('eax'));
      a.asm('mov', mem({ seg: 'gs', disp: (0xf0000000 + SEG_B) | 0, size: 4 }), imm(0x5a5a5a5a));
      a.asm('mov', reg('eax'), mem({ seg: 'gs', disp: (MONITOR_LINEAR - 0x10000000) | 0, size: 4 }));
    };
    const [n, r] = both(body, { x: downWrapping });
    expect(r.machine.mem.read32(DATA)).toBe(n.machine.mem.read32(DATA));
    expect(r.machine.mem.read32(DATA)).toBe(r.machine.mem.read32(CODE));
    expect(r.machine.mem.read32(SEG_B)).toBe(0x5a5a5a5a);
    expect(n.report.exitStatus).toBe(status(0x42)); // natively the last read reaches linear 0xfffe0000
    expect(r.report.exitStatus).toBe(status(13));
  });

  it('a wrapping expand-down stack works as natively in its part from linear 0', () => {
    const body = (a: Assembler): void => {
      a.asm('mov', reg('eax'), imm(SEL_Y));
      a.asm('mov', reg('ss'), reg('ax'));
      a.asm('mov', reg('esp'), imm((0xf0000000 + SEG_B + 0x100) | 0));
      a.asm('push', imm(0x77));
      a.asm('push', reg('esp'));
      a.asm('pop', reg('eax'));
      a.asm('mov', mem({ disp: DATA, size: 4 }), reg('eax'));
      a.asm('mov', reg('eax'), imm(0x10));
      a.asm('mov', reg('ss'), reg('ax'));
      a.asm('mov', reg('esp'), imm(0x90000));
    };
    const [n, r] = both(body, { y: downWrapping });
    expect(r.report.exitStatus).toBe(status(0x42));
    expect(n.report.exitStatus).toBe(status(0x42));
    expect(r.machine.mem.read32(SEG_B + 0xfc)).toBe(0x77);
    expect(bytes(r, SEG_B + 0xf0, 16)).toEqual(bytes(n, SEG_B + 0xf0, 16));
    expect(r.machine.mem.read32(DATA)).toBe(n.machine.mem.read32(DATA));
  });

  it('expandDownLimit: unchanged below the monitor, cut at linear 0 when wrapping, empty when the top is the monitor\'s', () => {
    expect(expandDownLimit(0, 0xfff, 0xffff)).toBe(0xfff);
    expect(expandDownLimit(0, 0xfff, 0xffffffff)).toBe(0xffffffff);
    expect(expandDownLimit(0x10000000, 0xfff, 0xffffffff)).toBe(0xf0000000 - 1);
    expect(expandDownLimit(0xffff8000, 0xfff, 0xffff)).toBe(0x7fff);
    expect(expandDownLimit(SEGMENT_CLIP - 0xffff, 0, 0xffff)).toBe(0);
    // The shadow descriptor of downWrapping: G = 1, limit raw 0xeffff (0xefffffff).
    const [lo, hi] = shadowDescriptor(downWrapping[0], downWrapping[1]);
    expect(((lo & 0xffff) | (hi & 0xf0000)) >>> 0).toBe(0xeffff);
    expect((hi >>> 13) & 3).toBe(1);
    const [lo0, hi0] = shadowDescriptor(downFromZero[0], downFromZero[1]);
    expect(((lo0 & 0xffff) | (hi0 & 0xf0000)) >>> 0).toBe(0xfffff);
  });
});

describe('ring-1 monitor: guest writes to its GDT and LDT reach the shadow', () => {
  /** Sets the base of the descriptor at `at` (a guest address) to `base` with plain stores. */
  const setBase = (a: Assembler, at: number, base: number): void => {
    a.asm('mov', mem({ disp: at + 2, size: 2 }), imm(base & 0xffff));
    a.asm('mov', mem({ disp: at + 4, size: 1 }), imm((base >>> 16) & 0xff));
    a.asm('mov', mem({ disp: at + 7, size: 1 }), imm(base >>> 24));
  };

  it('a GDT descriptor edited after LGDT takes effect on the next segment load', () => {
    const body = (a: Assembler): void => {
      a.asm('mov', reg('eax'), imm(SEL_A));
      a.asm('mov', reg('gs'), reg('ax'));
      a.asm('mov', mem({ seg: 'gs', disp: 0, size: 4 }), imm(0x11111111));
      setBase(a, GDT + SEL_A, SEG_B);
      a.asm('mov', mem({ seg: 'gs', disp: 4, size: 4 }), imm(0x22222222)); // the cache still has SEG_A
      a.asm('mov', reg('gs'), reg('ax'));
      a.asm('mov', mem({ seg: 'gs', disp: 0, size: 4 }), imm(0x33333333));
      // DPL 0 -> 3 and back: the edit goes through DPL compression too.
      a.asm('mov', mem({ disp: GDT + SEL_A + 5, size: 1 }), imm(Access.data(3)));
      a.asm('mov', reg('gs'), reg('ax'));
      a.asm('mov', mem({ disp: GDT + SEL_A + 5, size: 1 }), imm(Access.data(0)));
      a.asm('mov', reg('gs'), reg('ax'));
      a.asm('mov', mem({ seg: 'gs', disp: 8, size: 4 }), imm(0x44444444));
    };
    const [n, r] = both(body);
    expect(r.report.exitStatus).toBe(n.report.exitStatus);
    expect(bytes(r, SEG_A, 12)).toEqual(bytes(n, SEG_A, 12));
    expect(bytes(r, SEG_B, 12)).toEqual(bytes(n, SEG_B, 12));
    expect(r.machine.mem.read32(SEG_B)).toBe(0x33333333);
    expect(r.machine.mem.read32(SEG_B + 8)).toBe(0x44444444);
  });

  it('an LDT descriptor edited after LLDT takes effect on the next segment load', () => {
    const body = (a: Assembler): void => {
      a.asm('mov', reg('eax'), imm(SEL_LDT));
      a.asm('lldt', reg('ax'));
      a.asm('mov', reg('eax'), imm(LSEL_DATA));
      a.asm('mov', reg('fs'), reg('ax'));
      a.asm('mov', mem({ seg: 'fs', disp: 0, size: 4 }), imm(0x11111111));
      setBase(a, LDT + (LSEL_DATA & ~7), SEG_B);
      a.asm('mov', reg('fs'), reg('ax'));
      a.asm('mov', mem({ seg: 'fs', disp: 0, size: 4 }), imm(0x33333333));
      // Not present: the reload #NPs, as natively.
      a.asm('mov', mem({ disp: LDT + (LSEL_DATA & ~7) + 5, size: 1 }), imm(Access.data(0) & 0x7f));
      a.asm('mov', reg('fs'), reg('ax'));
    };
    const [n, r] = both(body);
    expect(n.report.exitStatus).toBe(status(11));
    expect(r.report.exitStatus).toBe(n.report.exitStatus);
    expect(r.machine.mem.read32(SEG_A)).toBe(0x11111111);
    expect(r.machine.mem.read32(SEG_B)).toBe(0x33333333);
    expect(bytes(r, SEG_B, 8)).toEqual(bytes(n, SEG_B, 8));
  });

  it('a GDT edit that raises a limit takes effect, clipped below the monitor', () => {
    const body = (a: Assembler): void => {
      // SEL_A: base SEG_A, limit 0xfff -> G = 1, limit 0xfffff (to 4 GiB).
      a.asm('mov', mem({ disp: GDT + SEL_A, size: 2 }), imm(0xffff));
      a.asm('mov', mem({ disp: GDT + SEL_A + 6, size: 1 }), imm(0xcf));
      a.asm('mov', reg('eax'), imm(SEL_A));
      a.asm('mov', reg('gs'), reg('ax'));
      a.asm('mov', reg('eax'), mem({ seg: 'gs', disp: SEG_B - SEG_A, size: 4 })); // beyond the old limit
      a.asm('mov', mem({ disp: DATA, size: 4 }), reg('eax'));
      a.asm('mov', reg('eax'), mem({ seg: 'gs', disp: (MONITOR_LINEAR - SEG_A) | 0, size: 4 }));
    };
    const [n, r] = both((a) => { a.asm('mov', mem({ disp: SEG_B, size: 4 }), imm(0x600d600d)); body(a); });
    expect(r.machine.mem.read32(DATA)).toBe(0x600d600d);
    expect(n.machine.mem.read32(DATA)).toBe(0x600d600d);
    expect(n.report.exitStatus).toBe(status(0x42)); // natively linear 0xfffe0000 is just beyond RAM
    expect(r.report.exitStatus).toBe(status(13));
  });
});
