import { writeFileSync } from 'node:fs';
import { Assembler, far, imm, mem, reg } from '@ringshift/decoder';
import { writeElf32 } from '@ringshift/rewriter';
const BASE = 0x100000, DATA = 0x200000, GDT = DATA, GDTR = DATA + 0x100, ESP = 0x90000;

/** A multiboot kernel: flat segments, SS = expand-down with limit ESP - 5 (ESP - 4 is the lowest valid byte), then `body`, then exit 0 with EAX out on port 0xE9. */
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
  const limit = ESP - 5; // expand-down, B = 1, byte granular: offsets limit + 1 .. 0xFFFFFFFF
  desc(0x18, limit & 0xffff, 0x00409700 | (limit & 0xf0000));
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

writeFileSync('/tmp/k.elf', kernel((a) => { a.ins('Pushfd'); a.ins('Pop_r32', reg('eax')); }));
import { rewriteImage } from '@ringshift/rewriter';
import { loadGuest, runGuest } from '@ringshift/runtime';
const img = kernel((a) => { a.ins('Pushfd'); a.ins('Pop_r32', reg('eax')); });
const before = Uint8Array.from(img);
const g0 = loadGuest(img, { backend: 'native' }); console.log(runGuest(g0, {}).reason);
rewriteImage(img);
console.log('same after rewrite:', Buffer.compare(Buffer.from(img), Buffer.from(before)) === 0);
const g1 = loadGuest(img, { backend: 'native' }); console.log(runGuest(g1, {}).reason, runGuest);
const out: number[] = [];
const g2 = loadGuest(img, { backend: 'native', machine: { debugConsoleOut: (b) => void out.push(b) } }); const r2 = runGuest(g2, { maxInstructions: 100_000 }); console.log(r2.reason, r2.detail, out);
