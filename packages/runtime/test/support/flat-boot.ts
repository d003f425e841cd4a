// The boot state a multiboot loader leaves (flat CPL 0, paging off), with a GDT and IDT of the
// guest's own, for monitor tests that run the same small guest natively and under a monitor.
import { Assembler, far, imm, mem, reg } from '@ringshift/decoder';
import { ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S, type Machine } from '../../src/index';
import { flatCode, flatData, gate, type Desc } from './descriptors';

export const GDT = 0x1000, IDT = 0x2000, PSEUDO = 0x3000, CODE = 0x100000, HANDLERS = 0x110000;
/** lgdt [disp32] (7 bytes), lidt [disp32] (7), jmp far ptr16:32 (7): the far JMP goes to the next instruction. */
export const PROLOGUE_JMP_END = 21;
/** The GDT of most guests: null, 0x08 flat code, 0x10 flat data (DPL 0). */
export const FLAT_GDT: readonly Desc[] = [[0, 0], flatCode(0), flatData(0)];

/**
 * Writes `gdt` at GDT and a 32-vector IDT whose vector v handler exits with status (v << 1) | 1
 * (`mov al, v; out 0xf4, al; hlt`), then at CODE: LGDT, LIDT, a far JMP to reload CS, DS = ES =
 * SS = 0x10, ESP = 0x90000, `body`, and an exit with 0x42; and sets the CPU's flat CPL-0 state
 * with EIP = CODE. Returns the assembled code (its labels).
 */
export function setUpFlatGuest(machine: Machine, body: (a: Assembler) => void, gdt: readonly Desc[] = FLAT_GDT): ReturnType<Assembler['assemble']> {
  const m = machine.mem;
  gdt.forEach(([lo, hi], i) => { m.write32(GDT + i * 8, lo); m.write32(GDT + i * 8 + 4, hi); });
  for (let v = 0; v < 32; v++) {
    const [lo, hi] = gate(0x08, HANDLERS + v * 8, 0xe, 0);
    m.write32(IDT + v * 8, lo); m.write32(IDT + v * 8 + 4, hi);
    m.load(HANDLERS + v * 8, Uint8Array.from([0xb0, v, 0xe6, 0xf4, 0xf4])); // mov al, v; out 0xf4, al; hlt
  }
  m.write16(PSEUDO, gdt.length * 8 - 1); m.write32(PSEUDO + 2, GDT);
  m.write16(PSEUDO + 8, 32 * 8 - 1); m.write32(PSEUDO + 10, IDT);
  const a = new Assembler(32, CODE);
  a.asm('lgdt', mem({ disp: PSEUDO, size: 6 }));
  a.asm('lidt', mem({ disp: PSEUDO + 8, size: 6 }));
  a.asm('jmp', far(0x08, CODE + PROLOGUE_JMP_END));
  a.asm('mov', reg('eax'), imm(0x10));
  a.asm('mov', reg('ds'), reg('ax'));
  a.asm('mov', reg('es'), reg('ax'));
  a.asm('mov', reg('ss'), reg('ax'));
  a.asm('mov', reg('esp'), imm(0x90000));
  body(a);
  a.asm('mov', reg('al'), imm(0x42));
  a.asm('out', imm(0xf4), reg('al'));
  a.asm('hlt');
  const assembled = a.assemble();
  m.load(CODE, assembled.bytes);
  const cpu = machine.cpu;
  for (let s = 0; s < 6; s++) {
    cpu.sel[s] = s === 1 ? 0x08 : 0x10;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = -1;
    cpu.segAttr[s] = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x3 | (s === 1 ? ATTR_CODE | 0x8 : 0);
  }
  cpu.cpl = 0; cpu.cr0 = 0x11; cpu.eflags = 2; cpu.eip = CODE;
  return assembled;
}
