// A fault inside an inline stub (docs/rewrite-backend.md, "Faults in inline stubs"): the PUSHFD
// stub pushes two scratch slots below the one the original PUSHFD writes, and the POPFD stub one
// (PUSH EAX). With an expand-down stack segment whose limit lets exactly the original's access
// through, the stub's extra push faults (#SS); the monitor undoes the stub and emulates the site,
// so that the guest sees what it sees natively.
import { describe, expect, it } from 'vitest';
import { Assembler, far, imm, mem, reg } from '@ringshift/decoder';
import { rewriteImage, writeElf32 } from '@ringshift/rewriter';
import { loadGuest, runGuest, type BackendName } from '@ringshift/runtime';

const BASE = 0x100000, DATA = 0x200000, GDT = DATA, GDTR = DATA + 0x100;
/**
 * The stack: an expand-down, 32-bit, page-granular SS with base 0x100000 whose valid offsets
 * start at 0xFFF90000 (linear 0x90000, wrapping). A flat expand-down stack would reach the
 * monitor's hole, which the ring-1 monitor clips it out of entirely (expandDownLimit).
 */
const SS_BASE = 0x100000, SS_LOWEST = 0xfff90000, ESP = SS_LOWEST + 4;

/** A multiboot kernel: flat segments, the stack above (ESP - 4 its lowest valid dword), then `body`, then exit 0 with EAX out on port 0xE9. */
function kernel(body: (a: Assembler) => void): Uint8Array {
  const a = new Assembler(32, BASE);
  a.dd(0x1badb002, 0, (-0x1badb002) >>> 0, 0);
  a.ins('Lgdt_m1632', mem({ disp: GDTR, size: 6 }));
  const next = a.label('reload');
  a.ins('Jmp_ptr1632', far(0x08, BASE + 16 + 7 + 7));
  a.bind(next);
  a.ins('Mov_r32_imm32', reg('eax'), imm(0x10));
  for (const s of ['ds', 'es', 'fs', 'gs'] as const) a.ins('Mov_Sreg_r32m16', reg(s), reg('eax'));
  a.ins('Mov_r32_imm32', reg('eax'), imm(0x18));
  a.ins('Mov_Sreg_r32m16', reg('ss'), reg('eax'));
  a.ins('Mov_r32_imm32', reg('esp'), imm(ESP));
  body(a);
  for (let k = 0; k < 4; k++) { a.ins('Out_imm8_AL', imm(0xe9), reg('al')); a.ins('Shr_rm32_imm8', reg('eax'), imm(8)); }
  a.ins('Mov_r8_imm8', reg('al'), imm(0));
  a.ins('Out_imm8_AL', imm(0xf4), reg('al'));
  a.ins('Hlt');
  const text = a.assemble().bytes;
  const data = new Uint8Array(0x200);
  const dv = new DataView(data.buffer);
  const desc = (sel: number, lo: number, hi: number): void => { dv.setUint32(sel, lo, true); dv.setUint32(sel + 4, hi, true); };
  desc(0x08, 0x0000ffff, 0x00cf9b00); // flat code
  desc(0x10, 0x0000ffff, 0x00cf9300); // flat data
  const raw = (SS_LOWEST >>> 12) - 1; // expand-down, B = 1, G = 1: offsets (raw << 12 | 0xFFF) + 1 ..
  desc(0x18, ((raw & 0xffff) | ((SS_BASE & 0xffff) << 16)) >>> 0, (((SS_BASE >>> 16) & 0xff) | 0x9700 | (raw & 0xf0000) | 0x00c00000 | (SS_BASE & 0xff000000)) >>> 0);
  dv.setUint16(0x100, 0x1f, true);
  dv.setUint32(0x102, GDT, true);
  return writeElf32({
    type: 'exec', machine: 'i386', entry: BASE + 16,
    segments: [{ vaddr: BASE, flags: 'rx', bytes: text }, { vaddr: DATA, flags: 'rw', bytes: data }],
    sections: [
      { name: '.multiboot', addr: BASE, size: 16, flags: 'a' },
      { name: '.text', addr: BASE + 16, size: text.length - 16, flags: 'ax' },
      { name: '.data', addr: DATA, size: data.length, flags: 'aw' },
    ],
    symbols: [{ name: '_start', value: BASE + 16, type: 'func' }],
  });
}

function run(image: Uint8Array, backend: BackendName, original?: Uint8Array) {
  const out: number[] = [];
  const g = loadGuest(image, { backend, machine: { debugConsoleOut: (b) => void out.push(b) }, ...(original ? { original } : {}) });
  const r = runGuest(g, { maxInstructions: 100_000 });
  return { reason: r.reason, exitStatus: r.exitStatus, detail: r.detail, eax: out, esp: r.registers.esp, guest: r.guestInstructions, stats: r.stats };
}

describe('a fault inside an inline stub is undone and the site emulated', () => {
  const cases: [string, (a: Assembler) => void][] = [
    // Natively PUSHFD writes ESP - 4, the lowest valid byte range; the stub's second PUSHFD faults.
    ['PUSHFD at the bottom of an expand-down stack', (a) => { a.ins('Pushfd'); a.ins('Pop_r32', reg('eax')); }],
    // Natively POPFD reads [ESP] and writes nothing; the stub's PUSH EAX faults below ESP - 4.
    ['POPFD at the bottom of an expand-down stack', (a) => { a.ins('Pushd_imm32', imm(0x8d5)); a.ins('Popfd'); a.ins('Pushfd'); a.ins('Pop_r32', reg('eax')); }],
  ];
  it.each(cases)('%s', (_name, body) => {
    const image = kernel(body);
    const rewritten = rewriteImage(image);
    expect(rewritten.map.sites.some((s) => s.stub === 'inline')).toBe(true);
    const native = run(image, 'native');
    expect(native.reason, native.detail).toBe('exit');
    const rewrite = run(rewritten.image, 'rewrite', image);
    expect(rewrite.reason, rewrite.detail).toBe('exit');
    expect(rewrite.exitStatus).toBe(native.exitStatus);
    expect(rewrite.eax).toEqual(native.eax);
    expect(rewrite.guest).toBe(native.guest);
    expect(rewrite.stats!.byReason['fault in an inline stub: site emulated'] ?? 0).toBeGreaterThan(0);
  });
});
