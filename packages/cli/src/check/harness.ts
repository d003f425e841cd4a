// A generated program (program.ts) as a multiboot ELF32 kernel, built with the decoder's
// Assembler and the rewriter's writeElf32 (layout.ts has the addresses):
//
//   .multiboot  the multiboot header (magic, flags 0, checksum)
//   .text       prologue: LGDT/LIDT, far JMP to reload CS, data segments, ESP, LLDT, LTR, the
//               PIC (IRQ 0 at vector 0x30 when the program has a timer), paging (optional), the program's initial registers and EFLAGS (POPFD);
//               [body when the program falls into the epilogue]; the epilogue; the exception
//               and interrupt handlers; far-call targets
//   .text.body  the program (its own section; the last one of the segment unless it falls
//               through, so that its last instruction ends the section and the segment)
//   data        GDT, IDT, LDT, TSS, the dump record, the handler log, data pages, stack, page tables
//
// The epilogue writes the guest-visible state to COM1 (layout.ts DUMP_FIELDS: registers, the
// EFLAGS that PUSHFD shows, segment selectors, SGDT/SIDT/SLDT/STR/SMSW, CR0-CR4, FNV-1a hashes of
// the tables, the data pages, the page table and the stack above ESP, device registers the
// program may write, then the handler log: every exception and interrupt the handlers saw with
// its frame) and exits through isa-debug-exit. Any exception other than the returning vectors
// (INT3, INTO, 0x30-0x37) ends the program: its handler logs it and jumps to the epilogue.
//
// Memory the program writes: the two data pages (and, with paging, the alias page, which maps
// one of them), the stack, GDT slot 0x60 and LDT slot 0x0c, the alias PTE. Selectors loaded
// into DS are always flat (the inline stubs address the shared page through DS,
// docs/patch-abi.md); SS only ever holds flat writable DPL-0 data, so the handlers and the
// epilogue use SS overrides and cannot fault whatever DS, ES, FS and GS hold.
import { Assembler, EncodeError, Label, Prefix, buildInstruction, encode, far, imm, ins, mem, reg, rel } from '@ringshift/decoder';
import type { Instruction, Operand } from '@ringshift/decoder';
import { writeElf32 } from '@ringshift/rewriter';
import * as L from './layout';
import { EFLAGS_RANDOM, GP_FORMS, type GuestProgram, type Item, type ItemKind } from './program';

const MB_MAGIC = 0x1badb002;
const R8 = ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'] as const;
const R16 = ['ax', 'cx', 'dx', 'bx', 'bp', 'si', 'di'] as const;
const R32 = ['eax', 'ecx', 'edx', 'ebx', 'ebp', 'esi', 'edi'] as const;
const CONDITIONS = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'] as const;

/** The built image and where things are in it, for runs and reports. */
export interface GuestImage {
  readonly image: Uint8Array;
  /** [start, end) of the body (the generated program). */
  readonly body: { start: number; end: number };
  /** Start address of each item, in order, and the kind it came from. */
  readonly items: readonly { addr: number; end: number; kind: ItemKind }[];
  readonly epilogue: number;
}

const pick = <T>(list: readonly T[], w: number): T => list[(w >>> 0) % list.length]!;
/** The PIT's input clock is 1.193182 MHz: one count is this many ns (= guest instructions). */
const PIT_NS_PER_COUNT = 1e9 / 1_193_182;

/** Immediates biased toward the edges where flag bugs live (as test/arbitraries/programs.ts). */
function interesting(r: number, bits: number): number {
  const m = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  const top = 2 ** (bits - 1);
  switch (r & 7) {
    case 0: return 0;
    case 1: return (r >>> 3) & 0x1f;
    case 2: return m;
    case 3: return top;
    case 4: return top - 1;
    default: return ((r >>> 3) * 2654435761) % 2 ** bits & m;
  }
}

const eflagsValue = (w: number): number => ((w & EFLAGS_RANDOM) | 2) >>> 0;

/** Selectors per segment register (good ones several times, so most programs keep running). */
const DS_SELECTORS = [0x10, 0x10, 0x18, 0x18, 0x30, 0x33, 0x04, 0x0c, 0x28, 0x08, 0x60, 0x00, 0x03, 0x13, 0x50, 0x38, 0x80, 0x1c, 0x58, 0x48, 0x70];
const ES_SELECTORS = DS_SELECTORS;
const SS_SELECTORS = [0x10, 0x10, 0x18, 0x04, 0x00, 0x28, 0x30, 0x13, 0x50, 0x08];
const CS_SELECTORS = [0x08, 0x08, 0x20, 0x14, 0x58, 0x10, 0x00, 0x09, 0x38];
const LAR_SELECTORS = [
  0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38, 0x40, 0x48, 0x50, 0x58, 0x60, 0x68, 0x70, 0x78, 0x80,
  0x04, 0x0c, 0x14, 0x1c, 0x0b, 0x13, 0x3b, 0x33, 0xfff8, 0x0f,
];

/** Ports and what may be written to them: none of these writes changes how the harness works. */
const OUT_PORTS: readonly { port: number; value: (w: number) => number }[] = [
  { port: 0x80, value: (w) => w & 0xff },
  { port: 0x3ff, value: (w) => w & 0xff },
  { port: 0xe9, value: (w) => 0x20 + (w % 0x5f) },
  { port: 0x70, value: (w) => pick(L.CMOS_INDICES, w) | (w & 0x100 ? 0x80 : 0) },
  { port: 0x71, value: (w) => w & 0xff },
  { port: 0x92, value: () => 0x02 },
  { port: 0x2f0, value: (w) => w },
];
const IN_PORTS = [0x80, 0x3ff, 0xe9, 0x71, 0x92, 0x21, 0xa1, 0x2f0, 0x70];

interface Ctx {
  readonly a: Assembler;
  readonly p: GuestProgram;
  readonly labels: readonly Label[];
  readonly end: Label;
  readonly epilogue: Label;
  readonly farReturn: Label;
  readonly farReturn4: Label;
  /** Label addresses from the first pass (far pointers need numbers). */
  readonly addr: (l: Label) => number;
  loops: number;
  readonly loopCounts: number[];
}

/** A memory operand of `bytes` bytes in a data page (or the alias page with paging on). */
function dataMem(c: Ctx, w: number, bytes: number, seg = true): Operand {
  const pages = c.p.paging ? [L.DATA, L.DATA2, L.ALIAS] : [L.DATA, L.DATA2];
  const page = pick(pages, w);
  const disp = page + ((w >>> 4) % (L.PAGE - bytes + 1));
  // Now and then through ES/FS/GS/CS/SS: whatever the program loaded there decides.
  const override = seg && (w >>> 28) === 0xf ? pick(['es', 'fs', 'gs', 'ss', 'cs'], w >>> 24) : undefined;
  return mem({ disp, size: bytes, ...(override ? { seg: override } : {}) });
}

/** A harness-owned memory operand (always through SS, which is always flat and writable). */
const ssMem = (disp: number, size: number): Operand => mem({ disp, size, seg: 'ss' });

function sizeOf(kind: string): number {
  return kind.startsWith('r8') || kind === 'al' || kind === 'cl' ? 8 : kind.startsWith('r16') || kind === 'ax' || kind === 'dx' ? 16 : 32;
}

const MEM_BYTES: Record<string, number> = { UInt8: 1, Int8: 1, UInt16: 2, Int16: 2, UInt32: 4, Int32: 4, UInt64: 8 };

/** One general-purpose instruction from the table, or nothing when the encoder refuses the pick. */
function gpInstruction(c: Ctx, r: readonly number[]): Instruction | null {
  const w = (k: number): number => r[k % r.length]! >>> 0;
  const form = pick(GP_FORMS, w(0));
  const memBytes = MEM_BYTES[form.mem ?? ''] ?? 4;
  const bitTest = /^bt[src]?$/.test(form.mnemonic);
  let usesMem = false;
  const ops: Operand[] = form.ops.map((k, n) => {
    const x = w(n + 1);
    switch (k) {
      case 'al': case 'ax': case 'eax': case 'cl': case 'dx': return reg(k);
      case 'imm8_const_1': return imm(1);
      case 'imm8': return imm(/^Sh[lr]d_rm16/.test(form.name) ? interesting(x, 8) % 17 : interesting(x, 8));
      case 'imm8sex16': case 'imm8sex32': return imm(interesting(x, 8));
      case 'imm16': return imm(interesting(x, 16));
      case 'imm32': return imm(interesting(x, 32));
      case 'mem': case 'mem_offs':
        usesMem = true;
        return dataMem(c, x, memBytes, k === 'mem');
      default: {
        const size = sizeOf(k);
        // BT* m, r address up to 256 MiB away from the operand: register forms only.
        if (k.endsWith('_or_mem') && (x & 1) && !usesMem && !(bitTest && form.ops[1]!.endsWith('_reg'))) {
          usesMem = true;
          return dataMem(c, x >>> 1, size >>> 3);
        }
        return reg(size === 8 ? R8[(x >>> 1) % 8]! : size === 16 ? R16[(x >>> 1) % 7]! : R32[(x >>> 1) % 7]!);
      }
    }
  });
  try {
    const i = buildInstruction(form, ops);
    encode(i, 32);
    return i;
  } catch (e) {
    if (e instanceof EncodeError) return null;
    throw e;
  }
}

function emitItem(c: Ctx, item: Item, index: number): void {
  const { a } = c;
  const w = (k: number): number => item.r[k % item.r.length]! >>> 0;
  const v = w(0);
  switch (item.kind) {
    case 'gp': {
      const i = gpInstruction(c, item.r);
      if (i) a.emit(i);
      const j = gpInstruction(c, item.r.map((x) => (x * 2654435761 + 0x9e37) >>> 0));
      if (j && (w(5) & 1)) a.emit(j);
      return;
    }
    case 'pad': {
      const n = w(1) % 48;
      for (let k = 0; k < n; k++) {
        if (w(2) & 1) a.asm('nop');
        else a.ins('Nop_rm32', mem({ disp: L.DATA, size: 4 })); // 0F 1F 05 disp32: 7 bytes
      }
      return;
    }
    case 'flags': {
      const value = eflagsValue(w(1));
      switch (v % 10) {
        case 0: a.asm('cli'); return;
        case 1: a.asm('sti'); return;
        case 2: a.ins('Pushfd'); return;
        case 3: a.ins('Pushd_imm32', imm(value)); a.ins('Popfd'); return;
        case 4: a.ins('Push_imm16', imm(value & 0xffff)); a.ins('Popfw'); return;
        case 5: a.ins('Pushfw'); a.ins('Pop_rm16', reg(pick(R16, w(2)))); return;
        case 6: {
          const at = dataMem(c, w(2), 4, false);
          a.ins('Mov_rm32_imm32', at, imm(value));
          a.ins('Push_rm32', at);
          a.ins('Popfd');
          return;
        }
        case 7: a.ins('Pushfd'); a.ins('Popfd'); return;
        case 8: a.ins('Pushfd'); a.asm('cli'); a.ins('Pushd_imm32', imm(value)); a.ins('Popfd'); a.ins('Popfd'); return;
        default: a.ins('Pushfd'); a.asm(w(2) & 1 ? 'sti' : 'cli'); a.ins('Pop_r32', reg(pick(R32, w(3)))); return;
      }
    }
    case 'burst': {
      const port = pick([0x80, 0x3ff, 0xe9, 0x2f0], w(1));
      a.ins('Mov_r32_imm32', reg('edx'), imm(port));
      a.ins('Mov_r32_imm32', reg('eax'), imm(0x41 + (w(1) % 26)));
      const n = 2 + (v % 7);
      for (let k = 0; k < n; k++) {
        switch ((w(2 + (k >> 3)) >>> ((k & 7) * 4)) % 9) {
          case 0: a.asm('cli'); break;
          case 1: a.asm('sti'); break;
          case 2: a.ins('Pushfd'); a.ins('Popfd'); break;
          case 3: a.ins('Pushd_DS'); a.ins('Popd_ES'); break;
          case 4: a.ins('Out_DX_AL'); break;
          case 5: a.ins('In_AL_DX'); break;
          case 6: a.ins('Int3'); break;
          case 7: a.ins('Pushd_SS'); a.ins('Popd_FS'); break;
          default: a.ins('Pushfd'); a.asm('cli'); a.ins('Popfd'); break;
        }
      }
      return;
    }
    case 'sreg': return emitSreg(c, item);
    case 'dtr': {
      const dest16 = (x: number): Operand => (x & 1 ? reg(pick(R16, x >>> 1)) : dataMem(c, x >>> 1, 2, false));
      switch (v % 8) {
        case 0: a.ins('Sgdt_m1632', dataMem(c, w(1), 6, false)); return;
        case 1: a.ins('Sidt_m1632', dataMem(c, w(1), 6, false)); return;
        case 2: a.ins('Sldt_rm16', dest16(w(1))); return;
        case 3: a.ins('Sldt_r32m16', reg(pick(R32, w(1)))); return;
        case 4: a.ins('Str_rm16', dest16(w(1))); return;
        case 5: a.ins('Str_r32m16', reg(pick(R32, w(1)))); return;
        case 6: a.ins('Smsw_rm16', dest16(w(1))); return;
        default: a.ins('Smsw_r32m16', reg(pick(R32, w(1)))); return;
      }
    }
    case 'lar': {
      const sel = w(1) & 0x100 ? w(1) & 0xffff : pick(LAR_SELECTORS, w(1));
      const src = pick(R32, w(2));
      a.ins('Mov_r32_imm32', reg(src), imm(sel));
      const fromMem = (w(3) & 3) === 0;
      const at = dataMem(c, w(4), 2, false);
      if (fromMem) a.ins('Mov_rm16_r16', at, reg(R16[R32.indexOf(src)]!));
      const src16 = fromMem ? at : reg(R16[R32.indexOf(src)]!);
      const dest = pick(R32, w(5));
      switch (v % 6) {
        case 0: a.ins('Lar_r32_r32m16', reg(dest), fromMem ? at : reg(src)); return;
        case 1: a.ins('Lar_r16_rm16', reg(R16[R32.indexOf(dest)]!), src16); return;
        case 2: a.ins('Lsl_r32_r32m16', reg(dest), fromMem ? at : reg(src)); return;
        case 3: a.ins('Lsl_r16_rm16', reg(R16[R32.indexOf(dest)]!), src16); return;
        case 4: a.ins('Verr_rm16', src16); return;
        default: a.ins('Verw_rm16', src16); return;
      }
    }
    case 'far': return emitFar(c, item, index);
    case 'int': {
      switch (v % 10) {
        case 0: a.ins('Int3'); return;
        case 1: a.ins('Into'); return;
        case 2: a.ins('Int_imm8', imm(0x38 + (w(1) % 8))); return; // gate not present: #NP
        case 3: a.ins('Int_imm8', imm(pick([0x40, 0x80, 0x81, 0xff], w(1)))); return; // past the IDT limit: #GP
        default: a.ins('Int_imm8', imm(0x30 + (w(1) % 8))); return;
      }
    }
    case 'io': return emitIo(c, item);
    case 'paging': return emitPaging(c, item);
    case 'gdt': {
      const d = pick(L.GDT_EDITS, w(1));
      const [lo, hi] = L.encodeDescriptor(d);
      const slot = v & 1 ? L.GDT + L.EDITABLE_SELECTOR : L.LDT + 0x08;
      a.ins('Mov_rm32_imm32', ssMem(slot, 4), imm(lo));
      a.ins('Mov_rm32_imm32', ssMem(slot + 4, 4), imm(hi));
      if (w(2) & 1) {
        a.ins('Mov_r32_imm32', reg('eax'), imm(v & 1 ? L.EDITABLE_SELECTOR : 0x0c));
        a.ins('Mov_Sreg_r32m16', reg(pick(['es', 'fs', 'gs'], w(3))), reg('eax'));
      }
      return;
    }
    case 'branch': {
      const k = w(1) % 4;
      const target = index + 1 + k < c.labels.length ? c.labels[index + 1 + k]! : c.end;
      switch (v % 6) {
        case 0: a.jmp(target); return;
        case 1: a.ins('Jmp_rel32_32', rel(target)); return;
        case 2: a.jcc(pick(CONDITIONS, w(2)), target); return;
        case 3: a.asm(`j${pick(CONDITIONS, w(2))}`, rel(target)); return;
        case 4: a.call(target); return;
        default: a.ins(`J${pick(['e', 'ne', 'b', 'ae', 's', 'ns'], w(2))}_rel32_32`, rel(target)); return;
      }
    }
    case 'sys': {
      switch (v % 11) {
        case 0: a.ins('Lgdt_m1632', ssMem(L.GDTR_PSEUDO, 6)); return;
        case 1: a.ins('Lidt_m1632', ssMem(L.IDTR_PSEUDO, 6)); return;
        case 2: a.ins('Mov_r32_imm32', reg('eax'), imm(pick([L.LDT_SELECTOR, L.LDT_SELECTOR, 0, L.TSS_SELECTOR, L.DATA_SELECTOR], w(1)))); a.ins('Lldt_rm16', reg('ax')); return;
        case 3: a.ins('Mov_r32_imm32', reg('eax'), imm(L.TSS_SELECTOR)); a.ins('Ltr_rm16', reg('ax')); return; // busy: #GP
        case 4: a.ins(w(1) & 1 ? 'Wbinvd' : 'Invd'); return;
        case 5: {
          // IA32_SYSENTER_CS (0x174): written with a small selector, or read back.
          a.ins('Mov_r32_imm32', reg('ecx'), imm(0x174));
          if (w(1) & 1) { a.ins('Mov_r32_imm32', reg('eax'), imm(w(2) & 0xfff8)); a.ins('Mov_r32_imm32', reg('edx'), imm(0)); a.ins('Wrmsr'); } else a.ins('Rdmsr');
          return;
        }
        case 6: a.ins('Mov_r32_dr', reg(pick(R32, w(1))), reg(pick(['dr6', 'dr7'], w(2)))); return;
        // Guest time: EDX:EAX = the TSC, which must read the same under every backend.
        case 8: a.ins('Rdtsc'); return;
        case 9: a.ins('Mov_r32_imm32', reg('eax'), imm(pick([0, 1, 0x80000000, 0x80000001, 2, 0x40000000], w(1)))); a.ins('Mov_r32_imm32', reg('ecx'), imm(0)); a.ins('Cpuid'); return;
        // HLT until the next tick (only with a timer: with IF = 0 or no tick the run would end).
        case 10: if ((c.p.timer ?? 0) > 0) { a.asm('sti'); a.ins('Hlt'); } return;
        default: a.ins('Mov_dr_r32', reg(pick(['dr0', 'dr1', 'dr2', 'dr3'], w(2))), reg(pick(R32, w(1)))); return;
      }
    }
    case 'loop': {
      if (c.loops >= 3 || c.loops >= L.MAX_LOOPS) return;
      const j = c.loops++;
      const count = 1 + (w(2) % 2);
      c.loopCounts[j] = count;
      const back = c.labels[Math.max(0, index - (w(1) % 4))]!;
      const done = a.label();
      a.ins('Dec_rm8', ssMem(L.LOOP_COUNTERS + j, 1));
      a.jcc('e', done);
      a.jmp(back);
      a.bind(done);
      a.ins('Mov_rm8_imm8', ssMem(L.LOOP_COUNTERS + j, 1), imm(count));
      return;
    }
  }
}

function emitSreg(c: Ctx, item: Item): void {
  const { a } = c;
  const w = (k: number): number => item.r[k % item.r.length]! >>> 0;
  const v = w(0);
  const all = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'] as const;
  const loadable = ['ds', 'es', 'fs', 'gs', 'ss'] as const;
  const sreg = pick(loadable, w(1));
  const selectors = sreg === 'ss' ? SS_SELECTORS : sreg === 'ds' ? DS_SELECTORS : ES_SELECTORS;
  const sel = pick(selectors, w(2)) | 0;
  const R = pick(R32, w(3));
  const R16of = R16[R32.indexOf(R)]!;
  const cap = sreg.toUpperCase();
  switch (v % 9) {
    case 0: a.ins('Mov_r32_imm32', reg(R), imm(sel)); a.ins('Mov_Sreg_r32m16', reg(sreg), reg(R)); return;
    case 1: a.ins('Mov_r32_imm32', reg(R), imm(sel)); a.ins('Mov_Sreg_rm16', reg(sreg), reg(R16of)); return;
    case 2: {
      const at = dataMem(c, w(4), 2, false);
      a.ins('Mov_rm16_imm16', at, imm(sel));
      a.ins('Mov_Sreg_rm16', reg(sreg), at);
      return;
    }
    case 3: a.ins('Pushd_imm32', imm(sel)); a.ins(`Popd_${cap}`); return;
    case 4: a.ins('Push_imm16', imm(sel)); a.ins(`Popw_${cap}`); return;
    case 5: {
      // LDS/LES/LFS/LGS/LSS r32, m16:32: offset, then the selector.
      const at = L.DATA + 0x800 + ((w(4) % 0x100) & ~3);
      a.ins('Mov_rm32_imm32', mem({ disp: at, size: 4 }), imm(w(5)));
      a.ins('Mov_rm16_imm16', mem({ disp: at + 4, size: 2 }), imm(sel));
      a.ins(`L${sreg}_r32_m1632`, reg(R), mem({ disp: at, size: 6 }));
      return;
    }
    case 6: a.ins('Mov_r32m16_Sreg', reg(R), reg(pick(all, w(4)))); return;
    case 7: a.ins('Mov_rm16_Sreg', w(4) & 1 ? reg(R16of) : dataMem(c, w(5), 2, false), reg(pick(all, w(4) >>> 1))); return;
    default: a.ins(`Push${w(4) & 1 ? 'w' : 'd'}_${pick(all, w(4) >>> 1).toUpperCase()}`); return;
  }
}

function emitFar(c: Ctx, item: Item, index: number): void {
  const { a } = c;
  const w = (k: number): number => item.r[k % item.r.length]! >>> 0;
  const v = w(0);
  const sel = pick(CS_SELECTORS, w(1));
  const next = a.label(`far_${index}`);
  switch (v % 7) {
    case 0: a.ins('Jmp_ptr1632', far(sel, c.addr(next))); break;
    case 1: a.ins('Call_ptr1632', far(sel, c.addr(c.farReturn))); break;
    case 2: a.ins('Pushd_imm32', imm(w(2))); a.ins('Call_ptr1632', far(sel, c.addr(c.farReturn4))); break;
    case 3: a.ins('Pushd_imm32', imm(sel)); a.ins('Pushd_imm32', imm(next)); a.ins('Retfd'); break;
    case 4: a.ins('Pushd_imm32', imm(eflagsValue(w(2)))); a.ins('Pushd_imm32', imm(sel)); a.ins('Pushd_imm32', imm(next)); a.ins('Iretd'); break;
    case 5: {
      const at = L.DATA + 0x900 + ((w(2) % 0x100) & ~3);
      a.ins('Mov_rm32_imm32', mem({ disp: at, size: 4 }), imm(next));
      a.ins('Mov_rm16_imm16', mem({ disp: at + 4, size: 2 }), imm(sel));
      a.ins('Jmp_m1632', mem({ disp: at, size: 6 }));
      break;
    }
    default: {
      const at = L.DATA + 0x900 + ((w(2) % 0x100) & ~3);
      a.ins('Mov_rm32_imm32', mem({ disp: at, size: 4 }), imm(c.farReturn));
      a.ins('Mov_rm16_imm16', mem({ disp: at + 4, size: 2 }), imm(sel));
      a.ins('Call_m1632', mem({ disp: at, size: 6 }));
      break;
    }
  }
  a.bind(next);
}

function emitIo(c: Ctx, item: Item): void {
  const { a } = c;
  const w = (k: number): number => item.r[k % item.r.length]! >>> 0;
  const v = w(0);
  const size = pick(['AL', 'AX', 'EAX'] as const, w(3) % 5 < 3 ? 0 : w(3));
  switch (v % 5) {
    case 0: case 1: {
      const o = pick(OUT_PORTS, w(1));
      // Only the unassigned port takes wide writes: the devices are byte-wide.
      const s = o.port === 0x2f0 ? size : 'AL';
      a.ins('Mov_r32_imm32', reg('eax'), imm(o.value(w(2))));
      if (o.port < 0x100 && (w(4) & 1)) a.ins(`Out_imm8_${s}`, imm(o.port), reg(s.toLowerCase()));
      else { a.ins('Mov_r32_imm32', reg('edx'), imm(o.port)); a.ins(`Out_DX_${s}`, reg('dx'), reg(s.toLowerCase())); }
      return;
    }
    case 2: case 3: {
      const port = pick(IN_PORTS, w(1));
      const s = port === 0x2f0 ? size : 'AL';
      if (port < 0x100 && (w(4) & 1)) a.ins(`In_${s}_imm8`, reg(s.toLowerCase()), imm(port));
      else { a.ins('Mov_r32_imm32', reg('edx'), imm(port)); a.ins(`In_${s}_DX`, reg(s.toLowerCase()), reg('dx')); }
      return;
    }
    default: {
      // INS/OUTS with a small count; ES:EDI and DS:ESI in the data page.
      a.asm('cld');
      a.ins('Mov_r32_imm32', reg('ecx'), imm(w(2) % 6));
      const out = w(1) & 1;
      a.ins('Mov_r32_imm32', reg('edx'), imm(out ? pick([0xe9, 0x3ff, 0x80], w(4)) : pick([0x3ff, 0x80, 0x2f0], w(4))));
      a.ins('Mov_r32_imm32', reg(out ? 'esi' : 'edi'), imm(L.DATA + (w(5) % 0xf00)));
      const i = ins(out ? 'Outsb_DX_m8' : 'Insb_m8_DX');
      if (w(3) & 1) i.prefixes |= Prefix.Rep;
      a.emit(i);
      return;
    }
  }
}

function emitPaging(c: Ctx, item: Item): void {
  const { a } = c;
  const w = (k: number): number => item.r[k % item.r.length]! >>> 0;
  const v = w(0);
  const R = pick(R32, w(1));
  switch (v % 8) {
    case 0: a.ins('Mov_r32_cr', reg(R), reg(pick(['cr0', 'cr2', 'cr3', 'cr4'], w(2)))); return;
    case 1: a.ins('Mov_r32_cr', reg(R), reg('cr3')); a.ins('Mov_cr_r32', reg('cr3'), reg(R)); return;
    case 2: a.ins('Invlpg_m', dataMem(c, w(2), 1, false)); return;
    case 3: a.ins('Mov_r32_cr', reg(R), reg('cr0')); a.ins('Xor_rm32_imm32', reg(R), imm(0x10000)); a.ins('Mov_cr_r32', reg('cr0'), reg(R)); return; // CR0.WP
    case 4: a.ins('Clts'); return;
    case 5: a.ins('Smsw_rm16', reg(R16[R32.indexOf(R)]!)); a.ins('Or_rm16_imm8', reg(R16[R32.indexOf(R)]!), imm(8)); a.ins('Lmsw_rm16', reg(R16[R32.indexOf(R)]!)); return; // CR0.TS
    default: {
      if (!c.p.paging) { a.ins('Invlpg_m', mem({ disp: L.ALIAS, size: 1 })); return; }
      // Remap the alias page (present or not, writable or not), then flush it as the SDM requires
      // for a stale entry not to be used (vol. 3A §4.10.4.1): what a stale TLB entry would show
      // is allowed to differ between machines.
      const target = pick([L.DATA, L.DATA2, L.DATA, 0], w(2));
      const flags = target === 0 ? 0 : pick([3, 1, 3], w(3));
      a.ins('Mov_rm32_imm32', ssMem(L.ALIAS_PTE, 4), imm(target | flags));
      if (w(4) & 1) a.ins('Invlpg_m', mem({ disp: L.ALIAS, size: 1 }));
      else { a.ins('Mov_r32_cr', reg(R), reg('cr3')); a.ins('Mov_cr_r32', reg('cr3'), reg(R)); }
      return;
    }
  }
}

/** Handler log entry (layout.ts LOG_FIELDS) from the frame at [esp+8] (after push eax; push ebx). */
function emitLog(a: Assembler, exception: boolean): void {
  const skip = a.label();
  a.ins('Mov_r32_rm32', reg('ebx'), ssMem(L.LOG_POINTER, 4));
  a.ins('Cmp_rm32_imm32', reg('ebx'), imm(L.LOG_END));
  a.jcc('ae', skip);
  for (let k = 0; k < 5; k++) {
    a.ins('Mov_r32_rm32', reg('eax'), mem({ base: 'esp', disp: 8 + 4 * k, size: 4 }));
    if (k === 0 && exception) a.ins('Or_rm32_imm32', reg('eax'), imm(0x100));
    a.ins('Mov_rm32_r32', mem({ base: 'ebx', disp: 4 * k, size: 4, seg: 'ss' }), reg('eax'));
  }
  if (exception) {
    a.ins('Mov_r32_cr', reg('eax'), reg('cr2'));
    a.ins('Mov_rm32_r32', mem({ base: 'ebx', disp: 20, size: 4, seg: 'ss' }), reg('eax'));
  }
  a.ins('Lea_r32_m', reg('eax'), mem({ base: 'esp', disp: 28 }));
  a.ins('Mov_rm32_r32', mem({ base: 'ebx', disp: 24, size: 4, seg: 'ss' }), reg('eax'));
  a.ins('Add_rm32_imm8', reg('ebx'), imm(L.LOG_ENTRY_BYTES));
  a.ins('Mov_rm32_r32', ssMem(L.LOG_POINTER, 4), reg('ebx'));
  a.bind(skip);
}

/** Handlers: one stub per vector (pushes a fake error code where the CPU pushes none, and the vector). */
function emitHandlers(a: Assembler, epilogue: Label): Label[] {
  const excCommon = a.label();
  const intCommon = a.label();
  const stubs: Label[] = [];
  for (let v = 0; v < L.IDT_VECTORS; v++) {
    stubs.push(a.here(`vec_${v}`));
    const returning = L.RETURNING_VECTORS.includes(v);
    if (returning || !L.ERROR_CODE_VECTORS.has(v)) a.ins('Pushd_imm8', imm(0));
    a.ins('Pushd_imm32', imm(v));
    a.jmp(returning ? intCommon : excCommon);
  }
  const fatal = a.label();
  a.bind(excCommon);
  a.ins('Cmp_rm8_imm8', ssMem(L.IN_EPILOGUE, 1), imm(0));
  a.jcc('ne', fatal);
  a.ins('Push_r32', reg('eax'));
  a.ins('Push_r32', reg('ebx'));
  emitLog(a, true);
  a.ins('Pop_r32', reg('ebx'));
  a.ins('Pop_r32', reg('eax'));
  a.jmp(epilogue);
  a.bind(fatal);
  a.ins('Mov_r8_imm8', reg('al'), imm(L.EXIT_EPILOGUE_FAULT));
  a.ins('Out_imm8_AL', imm(0xf4), reg('al'));
  a.asm('hlt');
  a.bind(intCommon);
  a.ins('Push_r32', reg('eax'));
  a.ins('Push_r32', reg('ebx'));
  emitLog(a, false);
  a.ins('Pop_r32', reg('ebx'));
  a.ins('Pop_r32', reg('eax'));
  a.ins('Add_rm32_imm8', reg('esp'), imm(8));
  a.ins('Iretd');
  return stubs;
}

/** A multiply-xor hash (FNV-1a's prime) over the dwords of [start, end), 8 per iteration, into SAVE + at. */
function emitHash(a: Assembler, start: number, end: number, at: number): void {
  a.ins('Mov_r32_imm32', reg('esi'), imm(start));
  a.ins('Mov_r32_imm32', reg('ebx'), imm(0x811c9dc5));
  const top = a.here();
  for (let k = 0; k < 8; k++) {
    a.ins('Xor_r32_rm32', reg('ebx'), mem({ base: 'esi', disp: 4 * k, size: 4 }));
    a.ins('Imul_r32_rm32_imm32', reg('ebx'), reg('ebx'), imm(0x01000193));
  }
  a.ins('Add_rm32_imm8', reg('esi'), imm(32));
  a.ins('Cmp_rm32_imm32', reg('esi'), imm(end));
  a.jcc('b', top);
  a.ins('Mov_rm32_r32', mem({ disp: L.SAVE + at, size: 4 }), reg('ebx'));
}

function emitEpilogue(a: Assembler, paging: boolean): void {
  R32.forEach((r, k) => a.ins('Mov_rm32_r32', ssMem(L.SAVE + [0, 4, 8, 12, 20, 24, 28][k]!, 4), reg(r)));
  a.ins('Mov_rm32_r32', ssMem(L.SAVE + 16, 4), reg('esp'));
  a.ins('Mov_rm8_imm8', ssMem(L.IN_EPILOGUE, 1), imm(1));
  a.ins('Pushfd');
  a.ins('Pop_rm32', ssMem(L.SAVE + 32, 4));
  (['cs', 'ds', 'es', 'fs', 'gs', 'ss'] as const).forEach((s, k) => a.ins('Mov_rm16_Sreg', ssMem(L.SAVE + 36 + 2 * k, 2), reg(s)));
  a.ins('Mov_r32_imm32', reg('eax'), imm(L.DATA_SELECTOR));
  a.ins('Mov_Sreg_r32m16', reg('ds'), reg('eax'));
  a.ins('Mov_Sreg_r32m16', reg('es'), reg('eax'));
  a.asm('cld');
  a.ins('Sgdt_m1632', mem({ disp: L.SAVE + 48, size: 6 }));
  a.ins('Sidt_m1632', mem({ disp: L.SAVE + 56, size: 6 }));
  a.ins('Sldt_rm16', mem({ disp: L.SAVE + 64, size: 2 }));
  a.ins('Str_rm16', mem({ disp: L.SAVE + 66, size: 2 }));
  a.ins('Smsw_rm16', mem({ disp: L.SAVE + 68, size: 2 }));
  (['cr0', 'cr2', 'cr3', 'cr4'] as const).forEach((cr, k) => {
    a.ins('Mov_r32_cr', reg('eax'), reg(cr));
    a.ins('Mov_rm32_r32', mem({ disp: L.SAVE + 72 + 4 * k, size: 4 }), reg('eax'));
  });
  // Without paging the page table is never written (the hash field stays 0).
  L.HASHED_REGIONS.forEach((r, k) => { if (paging || r.start !== L.PAGE_TABLE) emitHash(a, r.start, r.end, 88 + 4 * k); });
  // The stack from the saved ESP up (what is below ESP is scratch for stubs and interrupts).
  const ok1 = a.label(), ok2 = a.label(), top = a.label(), done = a.label();
  a.ins('Mov_r32_rm32', reg('esi'), mem({ disp: L.SAVE + 16, size: 4 }));
  a.ins('Cmp_rm32_imm32', reg('esi'), imm(L.STACK_BASE));
  a.jcc('ae', ok1);
  a.ins('Mov_r32_imm32', reg('esi'), imm(L.STACK_TOP));
  a.bind(ok1);
  a.ins('Cmp_rm32_imm32', reg('esi'), imm(L.STACK_TOP));
  a.jcc('be', ok2);
  a.ins('Mov_r32_imm32', reg('esi'), imm(L.STACK_TOP));
  a.bind(ok2);
  a.ins('Mov_r32_imm32', reg('ebx'), imm(0x811c9dc5));
  a.ins('Cmp_rm32_imm32', reg('esi'), imm(L.STACK_TOP));
  a.jcc('ae', done);
  a.bind(top);
  a.ins('Movzx_r32_rm8', reg('eax'), mem({ base: 'esi', size: 1 }));
  a.ins('Xor_r32_rm32', reg('ebx'), reg('eax'));
  a.ins('Imul_r32_rm32_imm32', reg('ebx'), reg('ebx'), imm(0x01000193));
  a.ins('Inc_r32', reg('esi'));
  a.ins('Cmp_rm32_imm32', reg('esi'), imm(L.STACK_TOP));
  a.jcc('b', top);
  a.bind(done);
  a.ins('Mov_rm32_r32', mem({ disp: L.SAVE + L.DUMP_HASH_STACK, size: 4 }), reg('ebx'));
  // Device registers the program may have written.
  a.ins('Mov_r32_imm32', reg('edx'), imm(0x3ff));
  a.ins('In_AL_DX', reg('al'), reg('dx'));
  a.ins('Mov_rm8_r8', mem({ disp: L.SAVE + L.DUMP_COM1_SCRATCH, size: 1 }), reg('al'));
  a.ins('In_AL_imm8', reg('al'), imm(0x80));
  a.ins('Mov_rm8_r8', mem({ disp: L.SAVE + L.DUMP_POST, size: 1 }), reg('al'));
  L.CMOS_INDICES.forEach((index, k) => {
    a.ins('Mov_r8_imm8', reg('al'), imm(index));
    a.ins('Out_imm8_AL', imm(0x70), reg('al'));
    a.ins('In_AL_imm8', reg('al'), imm(0x71));
    a.ins('Mov_rm8_r8', mem({ disp: L.SAVE + L.DUMP_CMOS + k, size: 1 }), reg('al'));
  });
  a.ins('Mov_r32_rm32', reg('eax'), mem({ disp: L.LOG_POINTER, size: 4 }));
  a.ins('Sub_rm32_imm32', reg('eax'), imm(L.LOG));
  a.ins('Mov_rm32_r32', mem({ disp: L.SAVE + L.DUMP_LOG_LENGTH, size: 4 }), reg('eax'));
  // The record, then the log, to COM1: REP OUTSB (one site, however long the dump).
  a.ins('Mov_r32_imm32', reg('edx'), imm(0x3f8));
  a.ins('Mov_r32_imm32', reg('esi'), imm(L.SAVE));
  a.ins('Mov_r32_imm32', reg('ecx'), imm(L.SAVE_BYTES));
  const outs = (): void => {
    const i = ins('Outsb_DX_m8');
    i.prefixes |= Prefix.Rep;
    a.emit(i);
  };
  outs();
  a.ins('Mov_r32_imm32', reg('esi'), imm(L.LOG));
  a.ins('Mov_r32_rm32', reg('ecx'), mem({ disp: L.SAVE + L.DUMP_LOG_LENGTH, size: 4 }));
  outs();
  a.ins('Mov_r8_imm8', reg('al'), imm(L.EXIT_DUMPED));
  a.ins('Out_imm8_AL', imm(0xf4), reg('al'));
  a.asm('hlt');
}

function emitPrologue(a: Assembler, p: GuestProgram): void {
  // Guest time starts at the entry: count the prologue's instructions (it has no branches
  // before the timer's wait) to place the first tick.
  let executed = 0;
  const ins: Assembler['ins'] = (...args) => { executed++; return a.ins(...args); };
  ins('Lgdt_m1632', mem({ disp: L.GDTR_PSEUDO, size: 6 }));
  ins('Lidt_m1632', mem({ disp: L.IDTR_PSEUDO, size: 6 }));
  const reload = a.label('prologue_cs');
  ins('Jmp_ptr1632', far(L.CODE_SELECTOR, 0)); // patched to `reload` in pass 2 (see build)
  a.bind(reload);
  ins('Mov_r32_imm32', reg('eax'), imm(L.DATA_SELECTOR));
  for (const s of ['ds', 'es', 'fs', 'gs', 'ss'] as const) ins('Mov_Sreg_r32m16', reg(s), reg('eax'));
  ins('Mov_r32_imm32', reg('esp'), imm(L.STACK_TOP));
  ins('Mov_r32_imm32', reg('eax'), imm(L.LDT_SELECTOR));
  ins('Lldt_rm16', reg('ax'));
  ins('Mov_r32_imm32', reg('eax'), imm(L.TSS_SELECTOR));
  ins('Ltr_rm16', reg('ax'));
  // The PIC pair: vectors 0x30 and 0x38, automatic EOI (ICW4 bit 1), so that the logging
  // handler of vector 0x30 needs no EOI; everything masked but IRQ 0 with a timer. Guest time
  // is the same under every backend, so the ticks land on the same guest instructions.
  const out = (port: number, v: number): void => { ins('Mov_r8_imm8', reg('al'), imm(v)); ins('Out_imm8_AL', imm(port), reg('al')); };
  for (const [base, icw2, icw3, icw4] of [[0x20, 0x30, 0x04, 0x03], [0xa0, 0x38, 0x02, 0x01]] as const) {
    out(base, 0x11); out(base + 1, icw2); out(base + 1, icw3); out(base + 1, icw4);
  }
  const timer = p.timer ?? 0;
  out(0x21, timer > 0 ? 0xfe : 0xff);
  out(0xa1, 0xff);
  if (timer > 0) {
    out(0x43, 0x34); out(0x40, timer & 0xff); out(0x40, timer >>> 8);
    // Wait out the period but `timerDelay` instructions (2 per round), so that the first tick
    // lands about that far into the body. The counter loads at tick 0 (the prologue is shorter
    // than one count), so its first rising edge comes after `timer` counts.
    const tail = 1 + (p.paging ? 5 : 0) + R32.length + 2; // MOV ECX; paging; registers; PUSH/POPFD
    const rounds = Math.max(1, Math.floor((Math.floor(timer * PIT_NS_PER_COUNT) - executed - tail - (p.timerDelay ?? 0)) / 2));
    const wait = a.label();
    ins('Mov_r32_imm32', reg('ecx'), imm(rounds));
    a.bind(wait);
    ins('Dec_r32', reg('ecx'));
    a.jcc('ne', wait);
  }
  if (p.paging) {
    ins('Mov_r32_imm32', reg('eax'), imm(L.PAGE_DIRECTORY));
    ins('Mov_cr_r32', reg('cr3'), reg('eax'));
    ins('Mov_r32_cr', reg('eax'), reg('cr0'));
    ins('Or_rm32_imm32', reg('eax'), imm(0x80000000 | 0));
    ins('Mov_cr_r32', reg('cr0'), reg('eax'));
  }
  R32.forEach((r, k) => ins('Mov_r32_imm32', reg(r), imm(interesting(p.regs[k]! >>> 0, 32))));
  // With a timer the body starts with IF = 1 (its CLI/POPF items still turn it off), else the
  // ticks would mostly wait at the PIC.
  ins('Pushd_imm32', imm(eflagsValue(p.eflags) | (timer > 0 ? 0x200 : 0)));
  ins('Popfd');
}

/** The data segment's initial bytes: tables, pseudo-descriptors, counters, data pages, page tables. */
function dataSegment(p: GuestProgram, handlers: readonly number[], loopCounts: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(L.DATA_SEGMENT_END - L.DATA_SEGMENT);
  const dv = new DataView(bytes.buffer);
  const put32 = (addr: number, v: number): void => dv.setUint32(addr - L.DATA_SEGMENT, v >>> 0, true);
  const putDesc = (addr: number, [lo, hi]: [number, number]): void => { put32(addr, lo); put32(addr + 4, hi); };
  for (const [sel, d] of L.GDT_ENTRIES) putDesc(L.GDT + sel, L.encodeDescriptor(d));
  for (const [sel, d] of L.LDT_ENTRIES) putDesc(L.LDT + (sel & ~7), L.encodeDescriptor(d));
  for (let v = 0; v < L.IDT_VECTORS; v++) {
    const returning = L.RETURNING_VECTORS.includes(v);
    const present = v < L.NOT_PRESENT_VECTORS.from || v >= L.NOT_PRESENT_VECTORS.to;
    putDesc(L.IDT + v * 8, L.encodeGate(L.CODE_SELECTOR, handlers[v]!, returning && v & 1 ? 0xf : 0xe, present));
  }
  dv.setUint16(L.GDTR_PSEUDO - L.DATA_SEGMENT, L.GDT_LIMIT, true);
  put32(L.GDTR_PSEUDO + 2, L.GDT);
  dv.setUint16(L.IDTR_PSEUDO - L.DATA_SEGMENT, L.IDT_VECTORS * 8 - 1, true);
  put32(L.IDTR_PSEUDO + 2, L.IDT);
  put32(L.TSS + 4, L.STACK_TOP); // ESP0 / SS0: unused at CPL 0, but a real TSS has them
  put32(L.TSS + 8, L.DATA_SELECTOR);
  loopCounts.forEach((n, j) => { bytes[L.LOOP_COUNTERS + j - L.DATA_SEGMENT] = n; });
  put32(L.LOG_POINTER, L.LOG);
  let x = p.dataSeed >>> 0 || 0x9e3779b9;
  for (let at = L.DATA; at < L.DATA2 + L.PAGE; at += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    put32(at, (x & 0xf) === 0 ? 0 : (x & 0xf) === 1 ? 0xffffffff : x);
  }
  if (p.paging) {
    put32(L.PAGE_DIRECTORY, L.PAGE_TABLE | 3);
    for (let k = 0; k < 1024; k++) put32(L.PAGE_TABLE + k * 4, (k << 12) | 3);
    put32(L.ALIAS_PTE, L.DATA | 3);
  }
  return bytes;
}

/**
 * Builds `p` into a multiboot image. Two passes: the first lays the code out with far
 * pointers at 0, the second fills them in (a ptr16:32 operand has a fixed length).
 */
export function buildGuest(p: GuestProgram): GuestImage {
  let addrs = new Map<string, number>();
  let built: ReturnType<typeof assembleOnce> | undefined;
  // The encoder reports refused picks with EncodeError, which the generator expects often; a
  // stack trace per refusal was half the time of a campaign.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    for (let pass = 0; pass < 2; pass++) {
      built = assembleOnce(p, addrs);
      addrs = built.labels;
    }
  } finally {
    Error.stackTraceLimit = limit;
  }
  const b = built!;
  const segBytes = dataSegment(p, b.handlers, b.loopCounts);
  const text = b.bytes;
  const image = writeElf32({
    type: 'exec', machine: 'i386', entry: L.KERNEL_BASE + 16,
    segments: [
      { vaddr: L.KERNEL_BASE, flags: 'rx', bytes: text },
      { vaddr: L.DATA_SEGMENT, flags: 'rw', bytes: segBytes },
    ],
    sections: [
      { name: '.multiboot', addr: L.KERNEL_BASE, size: 16, flags: 'a' },
      ...(b.bodyStart > L.KERNEL_BASE + 16 ? [{ name: '.text', addr: L.KERNEL_BASE + 16, size: b.bodyStart - L.KERNEL_BASE - 16, flags: 'ax' }] : []),
      { name: '.text.body', addr: b.bodyStart, size: b.bodyEnd - b.bodyStart, flags: 'ax' },
      ...(b.bodyEnd < L.KERNEL_BASE + text.length ? [{ name: '.text.harness', addr: b.bodyEnd, size: L.KERNEL_BASE + text.length - b.bodyEnd, flags: 'ax' }] : []),
      { name: '.data', addr: L.DATA_SEGMENT, size: segBytes.length, flags: 'aw' },
    ],
    // Entry points reached only through the IDT or far pointers are symbols, as in a real
    // kernel: without them discovery cannot know they are jump targets, and a tactic that
    // relocates the instructions after a HLT would overwrite a handler's first bytes.
    symbols: [
      { name: '_start', value: L.KERNEL_BASE + 16, type: 'func' },
      { name: 'body', value: b.bodyStart, size: b.bodyEnd - b.bodyStart, type: 'func' },
      ...[...b.labels].filter(([n]) => n === 'epilogue' || n.startsWith('vec_') || n.startsWith('far_return')).map(([name, value]) => ({ name, value, type: 'func' as const })),
    ],
  });
  return { image, body: { start: b.bodyStart, end: b.bodyEnd }, items: b.items, epilogue: b.epilogue };
}

function assembleOnce(p: GuestProgram, addrs: ReadonlyMap<string, number>) {
  const a = new Assembler(32, L.KERNEL_BASE);
  a.dd(MB_MAGIC, 0, (-MB_MAGIC) >>> 0, 0);
  const fall = p.ending === 'fall';
  const epilogue = a.label('epilogue');
  const farReturn = a.label('far_return');
  const farReturn4 = a.label('far_return4');
  const bodyStart = a.label('body_start');
  const bodyEnd = a.label('body_end');
  const addr = (l: Label): number => addrs.get(l.name!) ?? 0;
  emitPrologue(a, p);
  // Pass 2: the prologue's far JMP gets its target (the label after it).
  const ctx: Ctx = {
    a, p, labels: p.items.map((_, k) => a.label(`item_${k}`)), end: a.label('items_end'), epilogue, farReturn, farReturn4, addr,
    loops: 0, loopCounts: [],
  };
  const emitBody = (): void => {
    a.bind(bodyStart);
    p.items.forEach((item, k) => {
      a.bind(ctx.labels[k]!);
      emitItem(ctx, item, k);
    });
    a.bind(ctx.end);
    switch (p.ending) {
      case 'fall': break;
      case 'jump': a.ins('Jmp_rel32_32', rel(epilogue)); break;
      case 'far': a.ins('Jmp_ptr1632', far(L.CODE_SELECTOR, addr(epilogue))); break;
      case 'iret': a.ins('Pushfd'); a.ins('Pushd_imm32', imm(L.CODE_SELECTOR)); a.ins('Pushd_imm32', imm(epilogue)); a.ins('Iretd'); break;
    }
    a.bind(bodyEnd);
  };
  if (fall) emitBody();
  else a.ins('Jmp_rel32_32', rel(bodyStart));
  a.bind(epilogue);
  emitEpilogue(a, p.paging);
  const handlerLabels = emitHandlers(a, epilogue);
  a.bind(farReturn);
  a.ins('Retfd');
  a.bind(farReturn4);
  a.ins('Retfd_imm16', imm(4));
  if (!fall) emitBody();
  const { bytes, labels } = a.assemble();
  // The prologue's far JMP: ptr16:32 right after LGDT and LIDT (7 bytes each), opcode EA.
  const jmpAt = 16 + 14;
  if (bytes[jmpAt] !== 0xea) throw new Error('internal error: the prologue changed shape');
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(jmpAt + 1, labels.get('prologue_cs')!, true);
  const resolved = new Map(labels);
  const handlers = handlerLabels.map((h) => resolved.get(h.name!)!);
  const itemAddrs = p.items.map((item, k) => ({
    addr: labels.get(`item_${k}`)!,
    end: k + 1 < p.items.length ? labels.get(`item_${k + 1}`)! : labels.get('items_end')!,
    kind: item.kind,
  }));
  return {
    bytes, labels: resolved, handlers, loopCounts: ctx.loopCounts, items: itemAddrs,
    bodyStart: labels.get('body_start')!, bodyEnd: labels.get('body_end')!, epilogue: labels.get('epilogue')!,
  };
}
