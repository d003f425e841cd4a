// Small PV guests for the pv backend's tests: code assembled with the decoder's Assembler, in an
// ELF32 image with Xen's notes (elfnote.h), written here byte by byte (the runtime's tests do not
// depend on the rewriter). Layout: VIRT_BASE 0xC0000000; the image's one PT_LOAD at 0xC0001000
// (paddr 0x1000) holds the hypercall page, then code at GUEST_CODE, then zeroed data at GUEST_DATA.
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import type { PvReport } from '../../src/vmm/pv/domain';
import { loadPv, type PvGuest, type PvLoadOptions } from '../../src/vmm/pv/loader';

export const VIRT_BASE = 0xc0000000;
export const HYPERCALL_PAGE = 0xc0001000;
export const GUEST_CODE = 0xc0002000;
export const GUEST_DATA = 0xc0010000;
export const IMAGE_END = 0xc0020000;

/** elfnote.h numbers used here. */
export const NOTE = { ENTRY: 1, HYPERCALL_PAGE: 2, VIRT_BASE: 3, PADDR_OFFSET: 4, XEN_VERSION: 5, GUEST_OS: 6, LOADER: 8, PAE_MODE: 9, FEATURES: 10 } as const;

export type NoteValue = string | number;

export const DEFAULT_NOTES: ReadonlyMap<number, NoteValue> = new Map<number, NoteValue>([
  [NOTE.GUEST_OS, 'ringshift-test'], [NOTE.LOADER, 'generic'], [NOTE.XEN_VERSION, 'xen-3.0'],
  [NOTE.VIRT_BASE, VIRT_BASE], [NOTE.PADDR_OFFSET, 0], [NOTE.ENTRY, GUEST_CODE],
  [NOTE.HYPERCALL_PAGE, HYPERCALL_PAGE], [NOTE.PAE_MODE, 'yes'],
]);

function noteBytes(notes: ReadonlyMap<number, NoteValue>): Uint8Array {
  const out: number[] = [];
  const u32 = (v: number): void => { out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff); };
  for (const [type, value] of notes) {
    const desc = typeof value === 'string' ? [...value].map((c) => c.charCodeAt(0)).concat(0) : [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
    u32(4); u32(desc.length); u32(type);
    out.push(0x58, 0x65, 0x6e, 0); // "Xen\0"
    out.push(...desc);
    while (out.length % 4) out.push(0);
  }
  return Uint8Array.from(out);
}

export interface ImageOptions {
  notes?: ReadonlyMap<number, NoteValue> | null;
  /** A legacy `__xen_guest` section string (then usually notes: null). */
  xenGuest?: string;
  entry?: number;
}

/** An ELF32 image: one RWX PT_LOAD (code at GUEST_CODE), a PT_NOTE with the notes, optional __xen_guest section. */
export function pvImage(code: Uint8Array, o: ImageOptions = {}): Uint8Array {
  const notes = o.notes === null ? new Uint8Array(0) : noteBytes(o.notes ?? DEFAULT_NOTES);
  const load = new Uint8Array(GUEST_CODE - HYPERCALL_PAGE + code.length);
  load.set(code, GUEST_CODE - HYPERCALL_PAGE);
  const guest = o.xenGuest === undefined ? null : Uint8Array.from([...o.xenGuest].map((c) => c.charCodeAt(0)).concat(0));
  const phnum = notes.length > 0 ? 2 : 1;
  const loadOff = 0x1000;
  const noteOff = loadOff + load.length;
  const guestOff = noteOff + notes.length;
  const shstr = Uint8Array.from([...'\0__xen_guest\0.shstrtab\0'].map((c) => c.charCodeAt(0)));
  const shstrOff = guestOff + (guest?.length ?? 0);
  const shOff = (shstrOff + shstr.length + 3) & ~3;
  const shnum = guest === null ? 0 : 3;
  const file = new Uint8Array(shOff + shnum * 40);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
  v.setUint16(16, 2, true); v.setUint16(18, 3, true); v.setUint32(20, 1, true);
  v.setUint32(24, o.entry ?? GUEST_CODE, true); v.setUint32(28, 52, true); v.setUint32(32, shnum ? shOff : 0, true);
  v.setUint16(40, 52, true); v.setUint16(42, 32, true); v.setUint16(44, phnum, true);
  v.setUint16(46, 40, true); v.setUint16(48, shnum, true); v.setUint16(50, shnum ? 2 : 0, true);
  const ph = (i: number, type: number, off: number, vaddr: number, paddr: number, filesz: number, memsz: number, flags: number): void => {
    const p = 52 + i * 32;
    [type, off, vaddr, paddr, filesz, memsz, flags, 4].forEach((x, k) => v.setUint32(p + k * 4, x >>> 0, true));
  };
  ph(0, 1, loadOff, HYPERCALL_PAGE, HYPERCALL_PAGE - VIRT_BASE, load.length, IMAGE_END - HYPERCALL_PAGE, 7);
  if (notes.length > 0) ph(1, 4, noteOff, 0, 0, notes.length, notes.length, 4);
  file.set(load, loadOff);
  file.set(notes, noteOff);
  if (guest !== null) {
    file.set(guest, guestOff);
    file.set(shstr, shstrOff);
    const sh = (i: number, name: number, type: number, off: number, size: number): void => {
      const p = shOff + i * 40;
      v.setUint32(p, name, true); v.setUint32(p + 4, type, true); v.setUint32(p + 16, off, true); v.setUint32(p + 20, size, true);
    };
    sh(1, 1, 1, guestOff, guest.length);
    sh(2, 13, 3, shstrOff, shstr.length);
  }
  return file;
}

/** Emits a hypercall through the hypercall page: EBX.. from `args` (numbers), then `call page + nr*32`. */
export function hypercall(a: Assembler, nr: number, ...args: number[]): void {
  const regs = ['ebx', 'ecx', 'edx', 'esi', 'edi'] as const;
  args.forEach((x, i) => a.asm('mov', reg(regs[i]!), imm(x >>> 0)));
  a.call(HYPERCALL_PAGE + nr * 32);
}

/** SCHEDOP_shutdown(reason), with the sched_shutdown struct at GUEST_DATA + 0xff0. */
export function shutdown(a: Assembler, reason = 0): void {
  a.asm('mov', mem({ disp: GUEST_DATA + 0xff0, size: 4 }), imm(reason));
  hypercall(a, 29, 2, GUEST_DATA + 0xff0);
}

/** Stores EAX at GUEST_DATA + 4 * slot (results for the test to read). */
export function saveEax(a: Assembler, slot: number): void {
  a.asm('mov', mem({ disp: GUEST_DATA + 4 * slot, size: 4 }), reg('eax'));
}

export interface Booted extends PvGuest {
  report: PvReport;
  out: string;
  /** A dword of guest memory at a guest virtual address in the image/bootstrap region. */
  read32(va: number): number;
}

export function bootPv(body: (a: Assembler) => void, o: PvLoadOptions & ImageOptions & { maxInstructions?: number; noShutdown?: boolean } = {}): Booted {
  const a = new Assembler(32, GUEST_CODE);
  body(a);
  if (!o.noShutdown) shutdown(a, 0);
  const spin = a.here();
  a.jmp(spin);
  return bootImage(pvImage(a.assemble().bytes, o), o);
}

export function bootImage(image: Uint8Array, o: PvLoadOptions & { maxInstructions?: number } = {}): Booted {
  let out = '';
  const g = loadPv(image, { memoryBytes: 8 << 20, ...o, machine: { ...o.machine, serialOut: (b) => { out += String.fromCharCode(b); } } });
  const report = g.domain.run({ maxInstructions: o.maxInstructions ?? 200_000 });
  const read32 = (va: number): number => {
    const pfn = (va - VIRT_BASE) >>> 12;
    return g.machine.mem.read32((g.boot.layout.firstGuestMfn + pfn) * 4096 + (va & 0xfff)) >>> 0;
  };
  return { ...g, report, out, read32 };
}
