// The fixed machine a generated guest program runs on (`ringshift check --random`): where the
// harness puts code, tables and data, the descriptors of its GDT and LDT, and the record its
// epilogue writes to COM1. One table per thing, read by the image builder (harness.ts), the
// generators (program.ts) and the report (report.ts), so that the three agree.
//
// Every descriptor the guest may load has its accessed bit set already: a native segment load
// sets it in the guest's GDT/LDT, the ring-1 monitor's only in its shadow tables (a documented
// shortcut, docs/rewrite-backend.md), and the table bytes are part of the compared state.

export const KERNEL_BASE = 0x100000;
/** The data segment: tables, the dump record, the handler log, data pages, stack, page tables. */
export const DATA_SEGMENT = 0x200000;
export const GDT = 0x200000;
export const IDT = 0x200100;
/** Vectors 0..IDT_VECTORS-1 have gates; INT n above that is beyond the IDT limit (#GP). */
export const IDT_VECTORS = 0x40;
export const LDT = 0x200400;
export const TSS = 0x200500;
/** lgdt/lidt operands: limit (2 bytes) + base (4). */
export const GDTR_PSEUDO = 0x200600;
export const IDTR_PSEUDO = 0x200608;
/** Harness bookkeeping (not compared by hash): loop counters, the epilogue flag, the log pointer. */
export const LOOP_COUNTERS = 0x200700;
export const MAX_LOOPS = 32;
export const IN_EPILOGUE = 0x200780;
export const LOG_POINTER = 0x200784;
/** The dump record the epilogue fills and writes to COM1 (DUMP_FIELDS). */
export const SAVE = 0x200800;
export const SAVE_BYTES = 0x80;
/** Handler log: LOG_ENTRY_BYTES per event, at most LOG_ENTRIES. */
export const LOG = 0x200a00;
export const LOG_ENTRY_BYTES = 32;
export const LOG_ENTRIES = 48;
export const LOG_END = LOG + LOG_ENTRY_BYTES * LOG_ENTRIES;
/** The two pages generated memory operands address. */
export const DATA = 0x202000;
export const DATA2 = 0x203000;
export const PAGE = 0x1000;
export const STACK_BASE = 0x204000;
export const STACK_TOP = 0x207000;
/** Page directory and the page table of the first 4 MiB (identity), when the program pages. */
export const PAGE_DIRECTORY = 0x208000;
export const PAGE_TABLE = 0x209000;
export const DATA_SEGMENT_END = 0x20a000;
/** A linear page whose PTE programs edit (paging on): it maps DATA, DATA2 or nothing. */
export const ALIAS = 0x300000;
export const ALIAS_PTE = PAGE_TABLE + (ALIAS >>> 12) * 4;

/** Regions whose bytes the epilogue hashes (FNV-1a over dwords), in dump order. */
export const HASHED_REGIONS = [
  { name: 'GDT, IDT, LDT and TSS', start: GDT, end: GDTR_PSEUDO },
  { name: 'data page', start: DATA, end: DATA + PAGE },
  { name: 'second data page', start: DATA2, end: DATA2 + PAGE },
  { name: 'page table', start: PAGE_TABLE, end: PAGE_TABLE + PAGE },
] as const;

// Descriptor access bytes (SDM vol. 3A §3.4.5): P | DPL | S | type; type bit 0 is "accessed".
const P = 0x80, S = 0x10;
const dpl = (n: number): number => n << 5;
/** Flags nibble: G (4 KiB granularity) and D/B (32-bit). */
const G = 0x8, DB = 0x4;

export interface Descriptor {
  readonly name: string;
  readonly base: number;
  readonly limit: number;
  readonly access: number;
  readonly flags: number;
}

const flat = (name: string, access: number): Descriptor => ({ name, base: 0, limit: 0xfffff, access, flags: G | DB });

/** The GDT, by selector. Slot 0x60 is the one programs rewrite (GDT_EDITS). */
export const GDT_ENTRIES: ReadonlyMap<number, Descriptor> = new Map([
  [0x08, flat('code, DPL 0', P | S | dpl(0) | 0xb)],
  [0x10, flat('data, DPL 0', P | S | dpl(0) | 0x3)],
  [0x18, flat('data, DPL 0 (second)', P | S | dpl(0) | 0x3)],
  [0x20, flat('conforming code, DPL 0', P | S | dpl(0) | 0xf)],
  [0x28, flat('read-only data, DPL 0', P | S | dpl(0) | 0x1)],
  [0x30, flat('data, DPL 3', P | S | dpl(3) | 0x3)],
  [0x38, { name: 'TSS (32-bit, available)', base: TSS, limit: 0x67, access: P | 0x9, flags: 0 }],
  [0x40, { name: 'LDT', base: LDT, limit: 0x17, access: P | 0x2, flags: 0 }],
  [0x48, { name: 'data, base = data page, limit 0xfff', base: DATA, limit: 0xfff, access: P | S | dpl(0) | 0x3, flags: DB }],
  [0x50, { ...flat('data, not present', S | dpl(0) | 0x3) }],
  [0x58, flat('code, DPL 3', P | S | dpl(3) | 0xb)],
  [0x60, flat('data, DPL 0 (editable slot)', P | S | dpl(0) | 0x3)],
  [0x68, { name: 'call gate (DPL 0)', base: 0, limit: 0, access: P | 0xc, flags: 0 }],
  [0x70, { name: 'data, 16-bit, limit 0xffff', base: 0, limit: 0xffff, access: P | S | dpl(0) | 0x3, flags: 0 }],
]);
export const GDT_LIMIT = 0x77;
export const CODE_SELECTOR = 0x08;
export const DATA_SELECTOR = 0x10;
export const TSS_SELECTOR = 0x38;
export const LDT_SELECTOR = 0x40;
export const EDITABLE_SELECTOR = 0x60;

/** The LDT (selectors with TI = 1). */
export const LDT_ENTRIES: ReadonlyMap<number, Descriptor> = new Map([
  [0x04, flat('LDT data, DPL 0', P | S | dpl(0) | 0x3)],
  [0x0c, flat('LDT data, DPL 3', P | S | dpl(3) | 0x3)],
  [0x14, flat('LDT code, DPL 0', P | S | dpl(0) | 0xb)],
]);

/** What programs write into GDT slot 0x60: all flat (inline stubs assume DS base 0), accessed. */
export const GDT_EDITS: readonly Descriptor[] = [
  flat('data, DPL 0', P | S | dpl(0) | 0x3),
  flat('data, DPL 3', P | S | dpl(3) | 0x3),
  flat('read-only data, DPL 0', P | S | dpl(0) | 0x1),
  flat('readable code, DPL 0', P | S | dpl(0) | 0xb),
  flat('data, not present', S | dpl(0) | 0x3),
  flat('execute-only code, DPL 0', P | S | dpl(0) | 0x9),
];

/** [low dword, high dword] of a segment or system descriptor (SDM vol. 3A §3.4.5, figure 3-8). */
export function encodeDescriptor(d: Descriptor): [number, number] {
  const lo = ((d.limit & 0xffff) | ((d.base & 0xffff) << 16)) >>> 0;
  const hi = (((d.base >>> 16) & 0xff) | (d.access << 8) | (d.limit & 0xf0000) | (d.flags << 20) | (d.base & 0xff000000)) >>> 0;
  return [lo, hi];
}

/** An IDT gate (SDM vol. 3A §6.11): 0xE interrupt gate (clears IF), 0xF trap gate. */
export function encodeGate(selector: number, offset: number, type: 0xe | 0xf, present = true): [number, number] {
  return [((offset & 0xffff) | (selector << 16)) >>> 0, ((offset & 0xffff0000) | (((present ? P : 0) | type) << 8)) >>> 0];
}

/** Vectors pushed with an error code (SDM vol. 3A §6.13, table 6-1). */
export const ERROR_CODE_VECTORS: ReadonlySet<number> = new Set([8, 10, 11, 12, 13, 14, 17]);
/** Software vectors whose handler logs and returns (IRET); every other vector ends the program. */
export const RETURNING_VECTORS: readonly number[] = [3, 4, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37];
/** Gates 0x38..0x3f are not present (#NP); odd returning vectors are trap gates, even interrupt gates. */
export const NOT_PRESENT_VECTORS = { from: 0x38, to: 0x40 } as const;

/** Exit status the guest writes (isa-debug-exit) after a complete dump, and after a fault inside the epilogue. */
export const EXIT_DUMPED = 0x00;
export const EXIT_EPILOGUE_FAULT = 0x7f;

/** The dump record (SAVE), field by field, for naming the first difference. */
export const DUMP_FIELDS: readonly { name: string; offset: number; size: number }[] = [
  { name: 'EAX', offset: 0, size: 4 }, { name: 'ECX', offset: 4, size: 4 }, { name: 'EDX', offset: 8, size: 4 },
  { name: 'EBX', offset: 12, size: 4 }, { name: 'ESP', offset: 16, size: 4 }, { name: 'EBP', offset: 20, size: 4 },
  { name: 'ESI', offset: 24, size: 4 }, { name: 'EDI', offset: 28, size: 4 }, { name: 'EFLAGS (PUSHFD)', offset: 32, size: 4 },
  { name: 'CS', offset: 36, size: 2 }, { name: 'DS', offset: 38, size: 2 }, { name: 'ES', offset: 40, size: 2 },
  { name: 'FS', offset: 42, size: 2 }, { name: 'GS', offset: 44, size: 2 }, { name: 'SS', offset: 46, size: 2 },
  { name: 'SGDT', offset: 48, size: 6 }, { name: 'SIDT', offset: 56, size: 6 }, { name: 'SLDT', offset: 64, size: 2 },
  { name: 'STR', offset: 66, size: 2 }, { name: 'SMSW', offset: 68, size: 2 }, { name: 'CR0', offset: 72, size: 4 },
  { name: 'CR2', offset: 76, size: 4 }, { name: 'CR3', offset: 80, size: 4 }, { name: 'CR4', offset: 84, size: 4 },
  ...HASHED_REGIONS.map((r, i) => ({ name: `hash of the ${r.name}`, offset: 88 + 4 * i, size: 4 })),
  { name: 'hash of the stack above ESP', offset: 104, size: 4 },
  { name: 'COM1 scratch register', offset: 108, size: 1 },
  { name: 'POST code port', offset: 109, size: 1 },
  { name: 'CMOS bytes 0x40..0x47', offset: 112, size: 8 },
  { name: 'handler log length', offset: 120, size: 4 },
];
export const DUMP_HASH_STACK = 104;
export const DUMP_COM1_SCRATCH = 108;
export const DUMP_POST = 109;
export const DUMP_CMOS = 112;
export const DUMP_LOG_LENGTH = 120;
/** Handler log entry: vector (bit 8 set for an exception that ended the program), error code, EIP, CS, EFLAGS, CR2. */
export const LOG_FIELDS = ['vector', 'error code', 'EIP', 'CS', 'EFLAGS', 'CR2', 'ESP', 'reserved'] as const;
/**
 * CMOS NVRAM bytes programs may write and the epilogue reads back: free bytes only. Not the RTC
 * registers (they follow guest time, which follows the instruction count) and not the
 * memory-size bytes 0x17/0x18, 0x30/0x31, 0x34/0x35 (constant for a run; a difference the
 * property found there, the monitor's memory counted, is fixed and tested directly in
 * packages/runtime/test/vmm-memory-size.test.ts).
 */
export const CMOS_INDICES: readonly number[] = [0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47];
