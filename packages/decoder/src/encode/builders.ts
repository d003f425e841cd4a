// Building Instructions without knowing form ids: ins('Add_rm32_imm8', reg('eax'), imm(5)).
// Operands are plain objects; implicit operands of a form (AL, DX, ST(0), the constant 1,
// string and XLAT memory) may be left out and are filled in.
import { Instruction, OpKind } from '../instruction';
import type { Form } from '../table/form';
import { FORMS, formById, memorySizeBytes } from '../table/lookup';
import { Reg, registerByName, registerName, registerWidth } from '../table/registers';
import { EncodeError } from './errors';
import { slotOf } from './kinds';
import { Label, type LabelResolver } from './label';
import { defaultSegmentFor } from './modrm';

export interface RegOperand {
  readonly kind: 'reg';
  readonly reg: number;
}

export interface MemOperand {
  readonly kind: 'mem';
  readonly base: number;
  readonly index: number;
  readonly scale: 1 | 2 | 4 | 8;
  readonly disp: number | Label;
  /** Segment register the program names (0: the default for the base). */
  readonly seg: number;
  /** Operand size in bytes, or an iced-x86 MemorySize name ('SegPtr32'); 0/'' when unstated. */
  readonly size: number | string;
  /** Minimum displacement width (0: shortest). */
  readonly dispSize: 0 | 1 | 2 | 4;
}

export interface ImmOperand {
  readonly kind: 'imm';
  readonly value: number | Label;
}

export interface RelOperand {
  readonly kind: 'rel';
  readonly target: number | Label;
}

export interface FarOperand {
  readonly kind: 'far';
  readonly selector: number;
  readonly offset: number;
}

export type Operand = RegOperand | MemOperand | ImmOperand | RelOperand | FarOperand;

export interface MemSpec {
  base?: string | number;
  index?: string | number;
  scale?: 1 | 2 | 4 | 8;
  disp?: number | Label;
  seg?: string | number;
  size?: number | string;
  dispSize?: 0 | 1 | 2 | 4;
}

function regId(r: string | number, what: string): number {
  if (typeof r === 'number') {
    if (!Number.isInteger(r) || r <= 0) throw new EncodeError(`${what}: ${r} is not a register id`);
    return r;
  }
  // Accept the Intel spellings st(1) and st.
  const name = r.toLowerCase().replace(/^st\((\d)\)$/, 'st$1').replace(/^st$/, 'st0');
  const id = registerByName(name);
  if (id === undefined || id === 0) throw new EncodeError(`${what}: unknown register '${r}'`);
  return id;
}

/** A register operand: reg('eax'), reg('st(1)'), reg(Reg.EAX). */
export function reg(r: string | number): RegOperand {
  return { kind: 'reg', reg: regId(r, 'reg') };
}

/** A memory operand: mem({ base: 'ebx', index: 'esi', scale: 4, disp: 8, seg: 'fs', size: 4 }), or mem(0x1234). */
export function mem(spec: MemSpec | number | Label): MemOperand {
  const s: MemSpec = typeof spec === 'number' || spec instanceof Label ? { disp: spec } : spec;
  const base = s.base === undefined ? 0 : regId(s.base, 'mem base');
  const index = s.index === undefined ? 0 : regId(s.index, 'mem index');
  const seg = s.seg === undefined ? 0 : regId(s.seg, 'mem segment');
  if (seg && (seg < Reg.ES || seg > Reg.GS)) throw new EncodeError(`mem: ${registerName(seg)} is not a segment register`);
  const scale = s.scale ?? 1;
  if (scale !== 1 && scale !== 2 && scale !== 4 && scale !== 8) throw new EncodeError(`mem: scale ${String(scale)} is not 1, 2, 4 or 8`);
  return { kind: 'mem', base, index, scale, disp: s.disp ?? 0, seg, size: s.size ?? 0, dispSize: s.dispSize ?? 0 };
}

/** An immediate (a number, or a label's address inside an Assembler). */
export function imm(value: number | Label): ImmOperand {
  return { kind: 'imm', value };
}

/** A near-branch target (absolute address, or a label inside an Assembler). */
export function rel(target: number | Label): RelOperand {
  return { kind: 'rel', target };
}

/** A far pointer selector:offset (JMP/CALL ptr16:16 / ptr16:32). */
export function far(selector: number, offset: number): FarOperand {
  return { kind: 'far', selector, offset };
}

const byName = new Map<string, Form>();
const byLowerName = new Map<string, Form>();
for (const f of FORMS) {
  byName.set(f.name, f);
  byLowerName.set(f.name.toLowerCase(), f);
}

/** Form by iced-x86 Code name ('Add_rm32_imm8'; case-insensitive) or id. */
export function formNamed(name: string | number): Form {
  const f = typeof name === 'number' ? formById(name) : byName.get(name) ?? byLowerName.get(name.toLowerCase());
  if (!f) throw new EncodeError(`no instruction form named ${String(name)}`);
  return f;
}

const noLabels: LabelResolver = (l) => {
  throw new EncodeError(`label ${l.toString()} can only be used inside an Assembler (asm.ins / asm.asm)`);
};

const value = (v: number | Label, resolve: LabelResolver): number => (v instanceof Label ? resolve(v) : v);

/** Small negatives -> their unsigned image of the given width; out-of-range values pass through for the encoder to reject. */
function wrapNeg(v: number, bits: 8 | 16 | 32): number {
  if (!Number.isInteger(v) || v >= 0) return v;
  const lim = bits === 8 ? 0x80 : bits === 16 ? 0x8000 : 0x80000000;
  if (v < -lim) return v;
  return bits === 32 ? v >>> 0 : v & (bits === 8 ? 0xff : 0xffff);
}

function describe(o: Operand | undefined): string {
  if (!o) return 'nothing';
  switch (o.kind) {
    case 'reg': return registerName(o.reg);
    case 'mem': return 'a memory operand';
    case 'imm': return 'an immediate';
    case 'rel': return 'a branch target';
    case 'far': return 'a far pointer';
  }
}

function memSizeMatches(form: Form, m: MemOperand): boolean {
  if (m.size === 0 || m.size === '' || !form.mem) return true;
  if (typeof m.size === 'string') return form.mem === m.size;
  const fs = memorySizeBytes(form.mem);
  return fs === 0 || fs === m.size;
}

function setMemory(ins: Instruction, m: MemOperand, resolve: LabelResolver, bits: 16 | 32): void {
  const w = m.base ? registerWidth(m.base) : m.index ? registerWidth(m.index) : 0;
  const isLabel = m.disp instanceof Label;
  const d = value(m.disp, resolve);
  ins.memBase = m.base;
  ins.memIndex = m.index;
  ins.memScale = m.scale;
  // A bare address takes the width the caller fixed, else the mode's (see memoryAddressSize).
  const aw = w || (m.dispSize === 2 ? 16 : m.dispSize === 4 ? 32 : bits === 16 && d >= -0x8000 ? 16 : 32);
  ins.memDisp = wrapNeg(d, aw === 16 ? 16 : 32);
  ins.addressSize = aw === 16 ? 16 : 32;
  // A label's address is not known while sizes are chosen: always give it the full width.
  ins.memDispSize = isLabel && m.dispSize === 0 ? ((w || bits) === 16 ? 2 : 4) : m.dispSize;
  ins.memSegment = m.seg || defaultSegmentFor(m.base, m.index);
}

function stringOperand(ins: Instruction, i: number, which: 'esdi' | 'segsi' | 'segdi', m: MemOperand | undefined, bits: 16 | 32, form: Form): void {
  let w: number = bits;
  if (m) {
    const want = which === 'segsi' ? 6 : 7; // SI / DI numbers
    const ok = m.base === Reg.AX + want || m.base === Reg.EAX + want;
    if (!ok || m.index || (m.disp !== 0)) {
      throw new EncodeError(`${form.name}: operand ${i + 1} is ${which === 'esdi' ? 'es:[di/edi]' : which === 'segsi' ? '[si/esi]' : '[di/edi]'}`);
    }
    w = registerWidth(m.base);
    if (which === 'esdi' && m.seg && m.seg !== Reg.ES) throw new EncodeError(`${form.name}: es:[${registerName(m.base)}] cannot take a segment override`);
    if (which !== 'esdi' && m.seg) ins.memSegment = m.seg;
  }
  ins.opKinds[i] = which === 'esdi'
    ? (w === 16 ? OpKind.MemoryESDI : OpKind.MemoryESEDI)
    : which === 'segsi'
      ? (w === 16 ? OpKind.MemorySegSI : OpKind.MemorySegESI)
      : (w === 16 ? OpKind.MemorySegDI : OpKind.MemorySegEDI);
  if (which !== 'esdi' && !ins.memSegment) ins.memSegment = Reg.DS;
  ins.addressSize = w === 16 ? 16 : 32;
}

/**
 * Instruction for `form` with `operands` in the form's operand order. `bits` chooses the
 * address size of omitted string/XLAT operands. Throws EncodeError when the operands do not
 * fit the form; the encoder checks the rest (register numbers, ranges).
 */
export function buildInstruction(form: Form, operands: readonly Operand[], bits: 16 | 32 = 32, resolve: LabelResolver = noLabels): Instruction {
  if (form.modes && !form.modes.includes(16) && !form.modes.includes(32)) {
    throw new EncodeError(`${form.name}: exists only in 64-bit mode`);
  }
  const ins = new Instruction();
  ins.form = form.id;
  ins.bits = bits;
  ins.opCount = form.ops.length;
  ins.operandSize = form.osz === 16 || form.osz === 32 ? form.osz : bits;
  ins.addressSize = bits;
  ins.memSizeName = form.mem ?? '';
  ins.memSize = form.mem ? memorySizeBytes(form.mem) : 0;
  let oi = 0;
  let immCount = 0;
  function bad(i: number, want: string): never {
    throw new EncodeError(`${form.name}: operand ${i + 1} (${form.ops[i]}) must be ${want}, got ${describe(operands[oi])}`);
  }
  // Implicit operands may be written out or left out; one is taken as written out only when
  // enough operands remain for the explicit slots after it ("fadd st(0)" is FADD ST0, ST(0)).
  const required: number[] = new Array<number>(form.ops.length + 1).fill(0);
  for (let i = form.ops.length - 1; i >= 0; i--) {
    const t = slotOf(form.ops[i]!)?.t;
    required[i] = required[i + 1]! + (t === 'fixed' || t === 'one' || t === 'str' || t === 'xlat' ? 0 : 1);
  }
  for (let i = 0; i < form.ops.length; i++) {
    const kind = form.ops[i]!;
    const slot = slotOf(kind);
    if (!slot) throw new EncodeError(`${form.name}: operand kind ${kind} has no 16/32-bit encoding`);
    const spare = operands.length - oi > required[i + 1]!;
    const g = operands[oi];
    switch (slot.t) {
      case 'fixed':
        if (spare && g?.kind === 'reg') {
          if (g.reg !== slot.reg) bad(i, registerName(slot.reg));
          oi++;
        }
        ins.opKinds[i] = OpKind.Register;
        ins.opRegs[i] = slot.reg;
        break;
      case 'one':
        if (spare && g?.kind === 'imm') {
          if (g.value !== 1) bad(i, 'the constant 1');
          oi++;
        }
        ins.opKinds[i] = OpKind.Immediate8;
        if (immCount++ === 0) ins.imm = 1;
        else ins.imm2 = 1;
        break;
      case 'reg': case 'rm': case 'opreg': case 'sti': case 'regmem':
        if (g?.kind !== 'reg') bad(i, 'a register');
        ins.opKinds[i] = OpKind.Register;
        ins.opRegs[i] = g.reg;
        oi++;
        break;
      case 'rmOrMem': case 'mem': case 'moffs':
        if (g?.kind === 'reg' && slot.t === 'rmOrMem') {
          ins.opKinds[i] = OpKind.Register;
          ins.opRegs[i] = g.reg;
        } else if (g?.kind === 'mem') {
          if (!memSizeMatches(form, g)) throw new EncodeError(`${form.name}: memory operand size ${String(g.size)} does not match ${form.mem}`);
          if (slot.t === 'moffs' && (g.base || g.index)) bad(i, 'an absolute address');
          ins.opKinds[i] = OpKind.Memory;
          setMemory(ins, g, resolve, bits);
        } else {
          bad(i, slot.t === 'rmOrMem' ? 'a register or memory operand' : 'a memory operand');
        }
        oi++;
        break;
      case 'str': {
        const given = spare && g?.kind === 'mem' ? g : undefined;
        if (given) oi++;
        stringOperand(ins, i, slot.which, given, bits, form);
        break;
      }
      case 'xlat': {
        let base = bits === 16 ? Reg.AX + 3 : Reg.EAX + 3;
        let seg = 0;
        if (spare && g?.kind === 'mem') {
          if (g.base !== Reg.AX + 3 && g.base !== Reg.EAX + 3) bad(i, '[bx] or [ebx]');
          base = g.base;
          seg = g.seg;
          oi++;
        }
        ins.opKinds[i] = OpKind.Memory;
        ins.memBase = base;
        ins.memIndex = Reg.AL;
        ins.addressSize = base === Reg.AX + 3 ? 16 : 32;
        ins.memSegment = seg || Reg.DS;
        break;
      }
      case 'imm': {
        if (g?.kind !== 'imm') bad(i, 'an immediate');
        const v = value(g.value, resolve);
        const k = slot.sext === 16 ? OpKind.Immediate8to16
          : slot.sext === 32 ? OpKind.Immediate8to32
          : slot.size === 2 ? OpKind.Immediate16
          : slot.size === 4 ? OpKind.Immediate32
          : immCount === 0 ? OpKind.Immediate8 : OpKind.Immediate8_2nd;
        // Stored the way a decoder reports it: unsigned, sign-extended to the operand width.
        const stored = slot.sext === 16 ? (v >= -128 && v < 0 ? v & 0xffff : v)
          : slot.sext === 32 ? (v >= -128 && v < 0 ? v >>> 0 : v)
          : wrapNeg(v, (slot.size * 8) as 8 | 16 | 32);
        ins.opKinds[i] = k;
        if (immCount++ === 0) ins.imm = stored;
        else ins.imm2 = stored;
        oi++;
        break;
      }
      case 'rel':
        if (g?.kind !== 'rel') bad(i, 'a branch target (rel)');
        ins.opKinds[i] = kind.startsWith('br16') ? OpKind.NearBranch16 : OpKind.NearBranch32;
        ins.target = value(g.target, resolve);
        oi++;
        break;
      case 'far':
        if (g?.kind !== 'far') bad(i, 'a far pointer (far(sel, off))');
        ins.opKinds[i] = slot.offSize === 2 ? OpKind.FarBranch16 : OpKind.FarBranch32;
        ins.target = g.offset;
        ins.farSelector = g.selector;
        oi++;
        break;
    }
  }
  if (oi < operands.length) {
    throw new EncodeError(`${form.name}: takes ${form.ops.length} operand(s); ${describe(operands[oi])} is one too many`);
  }
  return ins;
}

type InsArgs = [name: string | number, ...operands: Operand[]] | [bits: 16 | 32, name: string | number, ...operands: Operand[]];

/**
 * ins('Add_rm32_imm8', reg('eax'), imm(5)) or ins(16, 'Movsb_m8_m8'): an Instruction for the
 * named form. The optional leading 16/32 sets the address size of omitted implicit memory
 * operands (string instructions, XLAT) and of bare addresses that could be either.
 */
export function ins(...args: InsArgs): Instruction {
  let bits: 16 | 32 = 32;
  let rest: unknown[] = args;
  if (args.length >= 2 && (args[0] === 16 || args[0] === 32) && (typeof args[1] === 'string' || typeof args[1] === 'number')) {
    bits = args[0];
    rest = args.slice(1);
  }
  const [name, ...operands] = rest as [string | number, ...Operand[]];
  return buildInstruction(formNamed(name), operands, bits);
}
