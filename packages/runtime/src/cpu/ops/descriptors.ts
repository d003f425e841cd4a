// Descriptor-table instructions: LLDT, LTR, SLDT, STR, LAR, LSL, VERR, VERW, ARPL (SDM vol. 2A/2B
// instruction pages; vol. 3A §5.10.1 "Checking Access Rights (LAR)", §5.10.3 "Checking That the
// Pointer Offset Is Within Limits (LSL)", §5.10.2 VERR/VERW, §5.10.4 ARPL, §7.2.4 LTR and the
// busy flag). SMSW/SGDT/SIDT live in system.ts.
//
// All nine are #UD in real-address and virtual-8086 mode ("Real-Address Mode Exceptions" and
// "Virtual-8086 Mode Exceptions" of each page). LAR, LSL, VERR and VERW never fault on a bad
// selector: they report it through ZF (only a #GP/#SS/#PF on the operand itself, or on the
// descriptor-table read, can occur).
import type { Instruction } from '@ringshift/decoder';
import { OpKind } from '@ringshift/decoder';
import type { Cpu, Handler } from '../cpu';
import { ATTR_CODE, ATTR_P, ATTR_S } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';
import { decodeDescriptor, readDescriptor, readLinear32, writeLinear32, type Descriptor } from '../segments';

/** System-descriptor types (SDM vol. 3A §3.5, table 3-2). */
export const SystemType = {
  TSS16_AVAILABLE: 0x1,
  LDT: 0x2,
  TSS16_BUSY: 0x3,
  CALL_GATE16: 0x4,
  TASK_GATE: 0x5,
  INTERRUPT_GATE16: 0x6,
  TRAP_GATE16: 0x7,
  TSS32_AVAILABLE: 0x9,
  TSS32_BUSY: 0xb,
  CALL_GATE32: 0xc,
  INTERRUPT_GATE32: 0xe,
  TRAP_GATE32: 0xf,
} as const;

/** System types LAR accepts (SDM LAR, table 3-52 "Segment and Gate Types" for IA-32). */
const LAR_SYSTEM = new Set<number>([0x1, 0x2, 0x3, 0x4, 0x5, 0x9, 0xb, 0xc]);
/** System types LSL accepts: the ones with a limit, i.e. no gates (SDM LSL, table 3-62). */
const LSL_SYSTEM = new Set<number>([0x1, 0x2, 0x3, 0x9, 0xb]);

function protectedOnly(cpu: Cpu): void {
  if (!cpu.protectedMode || cpu.v86) throw new Fault(Vector.UD);
}

function cpl0(cpu: Cpu): void {
  if (cpu.cpl !== 0) throw new Fault(Vector.GP, 0);
}

/** SLDT/STR with CR4.UMIP (bit 11) = 1 at CPL > 0: #GP(0) (SDM vol. 3A §2.5). */
function umip(cpu: Cpu): void {
  if ((cpu.cr4 & 0x800) !== 0 && cpu.cpl !== 0) throw new Fault(Vector.GP, 0);
}

/** The 16-bit selector operand (register low word or a word of memory). */
const selectorOperand = (cpu: Cpu, ins: Instruction, n: number): number => cpu.readOp(ins, n, 16) & 0xffff;

/** SLDT/STR/SMSW-style store: a register gets the selector zero-extended, memory gets 16 bits. */
function storeSelector(cpu: Cpu, ins: Instruction, v: number): void {
  if (ins.opKinds[0] === OpKind.Register) cpu.writeOp(ins, 0, ins.operandSize === 32 ? 32 : 16, v & 0xffff);
  else cpu.writeSized(cpu.segmentOf(ins), cpu.effectiveAddress(ins), 16, v);
}

/**
 * The descriptor a selector names, for the ZF-reporting instructions: null when the selector is
 * null or lies beyond the table limit (including TI = 1 with no LDT), where they clear ZF.
 */
function probe(cpu: Cpu, selector: number): Descriptor | null {
  if ((selector & 0xfffc) === 0) return null;
  const ldt = (selector & 4) !== 0;
  const limit = ldt ? cpu.ldtrLimit : cpu.gdtrLimit;
  if ((ldt && (cpu.ldtrSel & 0xfffc) === 0) || (selector & 0xfff8) + 7 > (limit >>> 0)) return null;
  const addr = ((ldt ? cpu.ldtrBase : cpu.gdtrBase) + (selector & 0xfff8)) | 0;
  return decodeDescriptor(readLinear32(cpu, addr), readLinear32(cpu, addr + 4), addr);
}

const isConformingCode = (d: Descriptor): boolean => (d.attr & (ATTR_S | ATTR_CODE | 0x4)) === (ATTR_S | ATTR_CODE | 0x4);

/** DPL >= CPL and DPL >= RPL, skipped for conforming code (SDM LAR/LSL/VERR "Operation"). */
const visible = (cpu: Cpu, d: Descriptor, selector: number): boolean =>
  isConformingCode(d) || (d.dpl >= cpu.cpl && d.dpl >= (selector & 3));

const lar: Handler = (cpu, ins) => {
  protectedOnly(cpu);
  const sel = selectorOperand(cpu, ins, 1);
  const d = probe(cpu, sel);
  const ok = d !== null && ((d.attr & ATTR_S) !== 0 || LAR_SYSTEM.has(d.attr & 0xf)) && visible(cpu, d, sel);
  if (ok) {
    // Bits 19:16 (the limit's high nibble) are "x, undefined" in the SDM's 00FxFF00H mask; we
    // return them as Bochs does. The 16-bit form gets the access byte only (mask FF00H).
    if (ins.operandSize === 32) cpu.writeOp(ins, 0, 32, d.hi & 0x00ffff00);
    else cpu.writeOp(ins, 0, 16, d.hi & 0xff00);
  }
  cpu.setFlag(F.ZF, ok);
};

const lsl: Handler = (cpu, ins) => {
  protectedOnly(cpu);
  const sel = selectorOperand(cpu, ins, 1);
  const d = probe(cpu, sel);
  const ok = d !== null && ((d.attr & ATTR_S) !== 0 || LSL_SYSTEM.has(d.attr & 0xf)) && visible(cpu, d, sel);
  if (ok) {
    // The limit is byte-granular (G applied); a 16-bit destination gets its low word.
    if (ins.operandSize === 32) cpu.writeOp(ins, 0, 32, d.limit);
    else cpu.writeOp(ins, 0, 16, d.limit & 0xffff);
  }
  cpu.setFlag(F.ZF, ok);
};

/**
 * VERR/VERW (SDM VERR/VERW "Operation"): a code or data segment only (system descriptors clear
 * ZF), the privilege rule except for readable conforming code, then readability/writability.
 * The P bit is not examined.
 */
function verify(write: boolean): Handler {
  return (cpu, ins) => {
    protectedOnly(cpu);
    const sel = selectorOperand(cpu, ins, 0);
    const d = probe(cpu, sel);
    let ok = d !== null && (d.attr & ATTR_S) !== 0 && visible(cpu, d, sel);
    if (ok && d) {
      const code = (d.attr & ATTR_CODE) !== 0;
      ok = write ? !code && (d.attr & 0x2) !== 0 : !code || (d.attr & 0x2) !== 0;
    }
    cpu.setFlag(F.ZF, ok);
  };
}

/**
 * Shared checks of LLDT and LTR after the null test (SDM LLDT/LTR "Protected Mode Exceptions"):
 * TI = 1 or beyond the GDT limit → #GP(selector), wrong type → #GP(selector), P = 0 → #NP(selector).
 */
function systemDescriptor(cpu: Cpu, sel: number, accept: (type: number) => boolean): Descriptor {
  const err = sel & 0xfffc;
  if (sel & 4) throw new Fault(Vector.GP, err);
  const d = readDescriptor(cpu, sel);
  if ((d.attr & ATTR_S) !== 0 || !accept(d.attr & 0xf)) throw new Fault(Vector.GP, err);
  if ((d.attr & ATTR_P) === 0) throw new Fault(Vector.NP, err);
  return d;
}

const lldt: Handler = (cpu, ins) => {
  protectedOnly(cpu);
  cpl0(cpu);
  const sel = selectorOperand(cpu, ins, 0);
  if ((sel & 0xfffc) === 0) {
    // A null selector marks LDTR invalid (SDM LLDT): later LDT references #GP. The limit of 0
    // makes readDescriptor reject every LDT selector whatever the selector's RPL/TI bits were.
    cpu.ldtrSel = sel;
    cpu.ldtrBase = 0;
    cpu.ldtrLimit = 0;
    return;
  }
  const d = systemDescriptor(cpu, sel, (t) => t === SystemType.LDT);
  cpu.ldtrSel = sel;
  cpu.ldtrBase = d.base;
  cpu.ldtrLimit = d.limit;
};

const ltr: Handler = (cpu, ins) => {
  protectedOnly(cpu);
  cpl0(cpu);
  const sel = selectorOperand(cpu, ins, 0);
  if ((sel & 0xfffc) === 0) throw new Fault(Vector.GP, 0);
  // Only an available TSS: a busy one (types 3, B) is #GP(selector) (SDM LTR; vol. 3A §7.2.2).
  const d = systemDescriptor(cpu, sel, (t) => t === SystemType.TSS16_AVAILABLE || t === SystemType.TSS32_AVAILABLE);
  // The busy flag (type bit 1) is set in memory (a locked write on hardware) and in TR's cache.
  writeLinear32(cpu, d.addr + 4, d.hi | 0x200);
  cpu.trSel = sel;
  cpu.trBase = d.base;
  cpu.trLimit = d.limit;
  cpu.trAttr = d.attr | 0x2;
};

const sldt: Handler = (cpu, ins) => {
  protectedOnly(cpu);
  umip(cpu);
  storeSelector(cpu, ins, cpu.ldtrSel);
};

const str: Handler = (cpu, ins) => {
  protectedOnly(cpu);
  umip(cpu);
  storeSelector(cpu, ins, cpu.trSel);
};

/**
 * ARPL r/m16, r16 (SDM ARPL): raises the destination's RPL to the source's. Memory is accessed
 * read-modify-write, so a read-only destination faults even when nothing changes; the write
 * itself happens only when ZF = 1 (as Bochs does). The 32-bit-operand form still works on the
 * low word: only bits 1:0 can change, so writing the register back whole is equivalent.
 */
const arpl: Handler = (cpu, ins) => {
  protectedOnly(cpu);
  const src = cpu.readReg(ins.opRegs[1]!) & 3;
  if (ins.opKinds[0] === OpKind.Register) {
    const r = ins.opRegs[0]!;
    const v = cpu.readReg(r);
    const raise = (v & 3) < src;
    if (raise) cpu.writeReg(r, (v & ~3) | src);
    cpu.setFlag(F.ZF, raise);
    return;
  }
  // A non-writable destination faults whether or not it would change (SDM ARPL, "Protected
  // Mode Exceptions"): read with write intent.
  const seg = cpu.segmentOf(ins), ea = cpu.effectiveAddress(ins);
  const v = cpu.readRmw16(seg, ea);
  const raise = (v & 3) < src;
  if (raise) cpu.write16(seg, ea, (v & ~3) | src);
  cpu.setFlag(F.ZF, raise);
};

export const DESCRIPTORS = {
  byMnemonic: { lldt, ltr, sldt, str, lar, lsl, verr: verify(false), verw: verify(true), arpl } satisfies Record<string, Handler>,
};
