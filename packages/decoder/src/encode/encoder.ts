// The IA-32 encoder: Instruction (form id + operands) -> bytes, for the legacy and 3DNow!
// forms of the table in 16- and 32-bit code. Everything is driven by the form row; the
// operands only supply register numbers, the memory operand, immediates and targets.
//
// Byte order of the output (SDM vol. 2 §2.1, figure 2-1): [9B for FSTCW-like forms]
// [segment] [F0] [66] [67] [F3/F2] [mandatory prefix] [0F [38|3A]] opcode [ModRM [SIB]
// [disp]] [immediates | moffs | far pointer] [3DNow! suffix] [rel]. The prefix order is the
// one iced-x86's encoder uses, so decode -> encode reproduces its canonical bytes.
import * as I from '../instruction';
import type { Form, OperandKind } from '../table/form';
import { formById } from '../table/lookup';
import * as R from '../table/registers';
import { EncodeError } from './errors';
import * as K from './kinds';
import type { Family, Slot } from './kinds';
import * as M from './modrm';
import type { MemoryEncoding } from './modrm';
import { decodesAs } from './shadow';

type Instruction = I.Instruction;
// Module-local copies: tsx/bundlers turn cross-module bindings into getter calls, which
// would dominate this hot path (the decoder does the same).
const OpKind = { ...I.OpKind };
const Prefix = { ...I.Prefix };
const Reg = { ...R.Reg };
const registerName = R.registerName;
const { FAMILY_LABEL, regNumber, slotOf } = K;
const { absoluteAddressSize, disp32, encodeMemory, memoryAddressSize } = M;

export interface EncodeOptions {
  /**
   * Emit the bytes even when they decode as a more specific form than ins.form (e.g.
   * RESERVEDNOP 0F 18 /0 with a memory operand is PREFETCHNTA). For tests that check the
   * shadowing rule itself; normal callers want the error.
   */
  readonly allowShadowed?: boolean;
}

/** Forms in the table that no decoder can return, so encoding them would be a lie. */
const UNENCODABLE: ReadonlyMap<string, string> = new Map([
  ['Popw_CS', 'POP CS (0F) exists only on the 8086; from the 80286 on 0F is the two-byte opcode escape'],
]);

const SEG_PREFIX: Record<number, number> = {
  [Reg.ES]: 0x26, [Reg.CS]: 0x2e, [Reg.SS]: 0x36, [Reg.DS]: 0x3e, [Reg.FS]: 0x64, [Reg.GS]: 0x65,
};

const MAP_ESCAPE: Record<Form['map'], readonly number[]> = {
  normal: [], '0F': [0x0f], '0F38': [0x0f, 0x38], '0F3A': [0x0f, 0x3a], '0F0F': [0x0f, 0x0f],
  map5: [], map6: [], map8: [], map9: [], map10: [],
};

const OPKIND_NAME: readonly string[] = Object.keys(OpKind);

/** What the encoder needs from a form row, worked out once per form. */
interface FormInfo {
  readonly form: Form;
  /** Slot per operand; undefined entries are operand kinds with no 16/32-bit encoding. */
  readonly slots: readonly (Slot | undefined)[];
  readonly fwait: boolean;
  readonly lock: boolean;
  readonly is3dnow: boolean;
  readonly escape: readonly number[];
}

const INFO: (FormInfo | undefined)[] = [];

function infoOf(form: Form): FormInfo {
  let fi = INFO[form.id];
  if (!fi) {
    fi = {
      form,
      slots: form.ops.map(slotOf),
      fwait: form.flags?.includes('fwait') === true,
      lock: form.flags?.includes('lock') === true,
      is3dnow: form.enc === '3dnow',
      escape: MAP_ESCAPE[form.map],
    };
    INFO[form.id] = fi;
  }
  return fi;
}

interface RelFixup {
  size: 1 | 2 | 4;
  /** NearBranch16: the target wraps at 64 KiB (IP, not EIP). */
  wrap16: boolean;
  target: number;
}

// Planning state, reused: no instruction is longer than 15 bytes, planning never re-enters,
// and nothing is allocated per instruction on the common paths.
const scratch = new Uint8Array(16);
const imms: number[] = new Array<number>(8).fill(0); // value, size pairs
let immLen = 0;
const rel: RelFixup = { size: 1, wrap16: false, target: 0 };
let hasRel = false;
let asz = 0;
let aszWhy = '';

function fail(form: Form, msg: string): never {
  throw new EncodeError(`${form.name}: ${msg}`);
}

function kindName(k: number): string {
  return OPKIND_NAME[k] ?? `kind ${k}`;
}

function hex(v: number): string {
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

function checkImm(form: Form, v: number, size: 1 | 2 | 4, sext: 0 | 16 | 32): number {
  if (!Number.isInteger(v)) fail(form, `immediate ${v} is not an integer`);
  if (sext) {
    // imm8 that the CPU sign-extends: accept the value as a small signed number or as its
    // sign-extended unsigned 16/32-bit image (how decoders report it).
    const ok = (v >= -128 && v <= 127) || (v >= 0xffffff80 && v <= 0xffffffff) || (sext === 16 && v >= 0xff80 && v <= 0xffff);
    if (!ok) fail(form, `immediate ${hex(v)} does not fit an imm8 sign-extended to ${sext} bits (-128..127)`);
    return v & 0xff;
  }
  const lo = size === 1 ? -0x80 : size === 2 ? -0x8000 : -0x80000000;
  const hi = size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
  if (v < lo || v > hi) fail(form, `immediate ${hex(v)} does not fit ${size * 8} bits (${hex(lo)}..${hex(hi)})`);
  return size === 4 ? v >>> 0 : v & hi;
}

function expectKind(form: Form, i: number, got: number, a: number, b = -1): void {
  if (got !== a && got !== b) {
    const want = b < 0 ? kindName(a) : `${kindName(a)} or ${kindName(b)}`;
    fail(form, `operand ${i + 1} (${form.ops[i]}) must be ${want}, not ${kindName(got)}`);
  }
}

function regIn(form: Form, i: number, reg: number, fam: Family): number {
  const n = regNumber(reg, fam);
  if (n < 0) fail(form, `operand ${i + 1} must be a ${FAMILY_LABEL[fam]}, not ${registerName(reg)}`);
  return n;
}

function needAsz(form: Form, w: 16 | 32, what: string): void {
  if (asz && asz !== w) fail(form, `${what} needs ${w}-bit addressing but ${aszWhy} needs ${asz}-bit`);
  if (!asz) {
    asz = w;
    aszWhy = what;
  }
}

// Shadow-check results by (form, bits, prefixes, opcode, ModRM shape): the answer depends on
// nothing else, and the check is the most expensive part of planning.
const shadowMemo = new Map<number, number>();

function checkShadow(form: Form, bits: 16 | 32, first: number, modrm: number, has66: boolean, has67: boolean, lastRep: 0 | 0xf2 | 0xf3): void {
  // For mod != 11 only reg and "is memory" matter to any candidate row: fold the rest.
  const shape = modrm < 0 ? 0 : (modrm >> 6) === 3 ? modrm + 1 : ((modrm & 0x38) | 0x100) + 1;
  const key = ((((((form.id * 2 + (bits === 32 ? 1 : 0)) * 2 + (has66 ? 1 : 0)) * 2 + (has67 ? 1 : 0)) * 4
    + (lastRep === 0xf3 ? 1 : lastRep === 0xf2 ? 2 : 0)) * 256 + first) * 1024) + shape;
  let winner = shadowMemo.get(key);
  if (winner === undefined) {
    winner = decodesAs({ bits, map: form.map, opcode: first, modrm, has66, has67, lastRep }, form)?.id ?? 0;
    shadowMemo.set(key, winner);
  }
  if (winner !== form.id) {
    const w = winner ? formById(winner) : undefined;
    throw new EncodeError(
      w
        ? `${form.name}: these operands and prefixes encode bytes that decode as ${w.name}`
        : `${form.name}: these operands and prefixes encode bytes that do not decode as this form`,
      w?.id,
    );
  }
}

/** Writes everything but the branch displacement into `scratch`; returns that length. */
function plan(ins: Instruction, bits: 16 | 32, options: EncodeOptions | undefined): number {
  if (bits !== 16 && bits !== 32) throw new EncodeError(`the IA-32 encoder handles 16- and 32-bit code, not ${String(bits)}-bit`);
  const form = formById(ins.form);
  if (!form) throw new EncodeError(`form id ${ins.form} is not in the instruction table`);
  if (form.enc !== 'legacy' && form.enc !== '3dnow') {
    fail(form, `${form.enc.toUpperCase()}-encoded forms are not supported by the IA-32 encoder`);
  }
  if (form.modes && !form.modes.includes(bits)) {
    fail(form, form.modes.length === 1 && form.modes[0] === 64 ? 'exists only in 64-bit mode' : `is not valid in ${bits}-bit mode`);
  }
  const why = UNENCODABLE.get(form.name);
  if (why) fail(form, why);
  const fi = infoOf(form);
  const ops = form.ops;
  if (ins.opCount !== ops.length) fail(form, `takes ${ops.length} operand(s), the instruction has ${ins.opCount}`);

  let regField = form.reg ?? -1;
  let rmReg = -1;
  let mem: MemoryEncoding | null = null;
  let opreg = 0;
  let sti = 0;
  let immCount = 0;
  let moffs = -1;
  let regmem = 0;
  let defaultSeg = 0; // default segment of the first overridable memory operand, 0 if none
  let hasMem = false;
  immLen = 0;
  hasRel = false;
  asz = form.asz === 16 || form.asz === 32 ? form.asz : 0;
  aszWhy = asz ? 'the form' : '';

  for (let i = 0; i < ops.length; i++) {
    const kind: OperandKind = ops[i]!;
    const slot = fi.slots[i];
    if (!slot) fail(form, `operand kind ${kind} has no 16/32-bit encoding`);
    const k = ins.opKinds[i]!;
    const r = ins.opRegs[i]!;
    switch (slot.t) {
      case 'fixed':
        expectKind(form, i, k, OpKind.Register);
        if (r !== slot.reg) fail(form, `operand ${i + 1} must be ${registerName(slot.reg)}, not ${registerName(r)}`);
        break;
      case 'one':
        expectKind(form, i, k, OpKind.Immediate8);
        if ((immCount++ === 0 ? ins.imm : ins.imm2) !== 1) fail(form, `operand ${i + 1} is the constant 1`);
        break;
      case 'reg':
        expectKind(form, i, k, OpKind.Register);
        regField = regIn(form, i, r, slot.fam);
        // MOV to CS is #UD (SDM vol. 2 MOV: "the MOV instruction cannot be used to load CS").
        if (slot.fam === 'seg' && i === 0 && r === Reg.CS) fail(form, 'cs cannot be the destination of MOV');
        break;
      case 'regmem':
        expectKind(form, i, k, OpKind.Register);
        regField = regIn(form, i, r, slot.fam);
        regmem = slot.fam === 'r16' ? 16 : 32;
        break;
      case 'rm':
        expectKind(form, i, k, OpKind.Register);
        rmReg = regIn(form, i, r, slot.fam);
        break;
      case 'rmOrMem':
      case 'mem':
        if (slot.t === 'rmOrMem') expectKind(form, i, k, OpKind.Register, OpKind.Memory);
        else expectKind(form, i, k, OpKind.Memory);
        if (k === OpKind.Register) {
          rmReg = regIn(form, i, r, (slot as { fam: Family }).fam);
        } else {
          const m = { base: ins.memBase, index: ins.memIndex, scale: ins.memScale, disp: ins.memDisp, dispSize: ins.memDispSize };
          const w = memoryAddressSize(m, bits);
          needAsz(form, w, 'the memory operand');
          mem = encodeMemory(m, w);
          defaultSeg ||= mem.defaultSegment;
          hasMem = true;
        }
        break;
      case 'moffs': {
        expectKind(form, i, k, OpKind.Memory);
        if (ins.memBase || ins.memIndex) fail(form, 'moffs takes an absolute address, no base or index register');
        const w = absoluteAddressSize(ins.memDisp, ins.memDispSize, bits);
        needAsz(form, w, 'the moffs address');
        if (w === 16) {
          const d = ins.memDisp;
          if (!Number.isInteger(d) || d < -0x8000 || d > 0xffff) fail(form, `moffs address ${hex(d)} does not fit 16 bits`);
          moffs = d & 0xffff;
        } else {
          moffs = disp32(ins.memDisp);
        }
        defaultSeg ||= Reg.DS;
        hasMem = true;
        break;
      }
      case 'opreg':
        expectKind(form, i, k, OpKind.Register);
        opreg = regIn(form, i, r, slot.fam);
        break;
      case 'sti':
        expectKind(form, i, k, OpKind.Register);
        sti = regIn(form, i, r, 'st');
        break;
      case 'imm': {
        if (slot.sext === 16) expectKind(form, i, k, OpKind.Immediate8to16);
        else if (slot.sext === 32) expectKind(form, i, k, OpKind.Immediate8to32);
        else if (slot.size === 2) expectKind(form, i, k, OpKind.Immediate16);
        else if (slot.size === 4) expectKind(form, i, k, OpKind.Immediate32);
        else if (immCount === 0) expectKind(form, i, k, OpKind.Immediate8);
        else expectKind(form, i, k, OpKind.Immediate8_2nd, OpKind.Immediate8);
        const v = immCount++ === 0 ? ins.imm : ins.imm2;
        imms[immLen++] = checkImm(form, v, slot.size, slot.sext);
        imms[immLen++] = slot.size;
        break;
      }
      case 'rel': {
        if (slot.xbegin) expectKind(form, i, k, OpKind.NearBranch32, OpKind.NearBranch16);
        else expectKind(form, i, k, kind.startsWith('br16') ? OpKind.NearBranch16 : OpKind.NearBranch32);
        const wrap16 = k === OpKind.NearBranch16;
        const t = ins.target;
        if (ins.targetHi !== 0 || !Number.isInteger(t) || t < 0 || t > (wrap16 ? 0xffff : 0xffffffff)) {
          fail(form, `branch target ${hex(t)} does not fit a ${wrap16 ? 16 : 32}-bit instruction pointer`);
        }
        rel.size = slot.size;
        rel.wrap16 = wrap16;
        rel.target = t;
        hasRel = true;
        break;
      }
      case 'far': {
        expectKind(form, i, k, slot.offSize === 2 ? OpKind.FarBranch16 : OpKind.FarBranch32);
        const off = ins.target;
        const max = slot.offSize === 2 ? 0xffff : 0xffffffff;
        if (!Number.isInteger(off) || off < 0 || off > max) fail(form, `far offset ${hex(off)} does not fit ${slot.offSize * 8} bits`);
        const sel = ins.farSelector;
        if (!Number.isInteger(sel) || sel < 0 || sel > 0xffff) fail(form, `far selector ${hex(sel)} does not fit 16 bits`);
        imms[immLen++] = off;
        imms[immLen++] = slot.offSize;
        imms[immLen++] = sel;
        imms[immLen++] = 2;
        break;
      }
      case 'str': {
        const k16 = slot.which === 'esdi' ? OpKind.MemoryESDI : slot.which === 'segsi' ? OpKind.MemorySegSI : OpKind.MemorySegDI;
        const k32 = slot.which === 'esdi' ? OpKind.MemoryESEDI : slot.which === 'segsi' ? OpKind.MemorySegESI : OpKind.MemorySegEDI;
        expectKind(form, i, k, k16, k32);
        needAsz(form, k === k16 ? 16 : 32, 'the string operand');
        if (slot.which !== 'esdi') {
          defaultSeg ||= Reg.DS;
          hasMem = true;
        }
        break;
      }
      case 'xlat': {
        expectKind(form, i, k, OpKind.Memory);
        const w = ins.memBase === Reg.AX + 3 ? 16 : ins.memBase === Reg.EAX + 3 ? 32 : 0;
        if (!w || (ins.memIndex !== 0 && ins.memIndex !== Reg.AL)) fail(form, 'the XLAT operand is [bx+al] or [ebx+al]');
        needAsz(form, w, 'the XLAT operand');
        defaultSeg ||= Reg.DS;
        hasMem = true;
        break;
      }
    }
  }
  const effAsz = asz || bits;
  if (regmem && regmem !== effAsz) fail(form, `the ${regmem}-bit register operand must match the address size (${effAsz}-bit)`);

  // --- prefixes ---
  const p = ins.prefixes;
  const lock = (p & Prefix.Lock) !== 0;
  let rep = (p & Prefix.Rep) !== 0;
  let repne = (p & Prefix.Repne) !== 0;
  if (rep && repne) fail(form, 'REP and REPNE together');
  if (lock) {
    if (!fi.lock) fail(form, 'LOCK is not allowed with this instruction');
    if (!mem) fail(form, 'LOCK needs a memory destination');
  }
  const pp = form.pp;
  // A decoded instruction may report its mandatory F3/F2 also as REP/REPNE: same byte.
  if (pp === 'F3') {
    if (repne) fail(form, 'REPNE conflicts with the mandatory F3 prefix');
    rep = false;
  } else if (pp === 'F2') {
    if (rep) fail(form, 'REP conflicts with the mandatory F2 prefix');
    repne = false;
  }

  let seg = ins.segmentPrefix;
  if (!seg && hasMem && ins.memSegment && ins.memSegment !== defaultSeg) seg = ins.memSegment;
  if (seg && SEG_PREFIX[seg] === undefined) fail(form, `${registerName(seg)} is not a segment register`);

  const osz66 = form.osz !== undefined && form.osz !== bits;
  const has66 = osz66 || pp === '66';
  const has67 = effAsz !== bits;

  const b = scratch;
  let n = 0;
  if (fi.fwait) b[n++] = 0x9b;
  if (seg) b[n++] = SEG_PREFIX[seg]!;
  if (lock) b[n++] = 0xf0;
  if (osz66) b[n++] = 0x66;
  if (has67) b[n++] = 0x67;
  if (rep) b[n++] = 0xf3;
  if (repne) b[n++] = 0xf2;
  if (pp === '66' && !osz66) b[n++] = 0x66;
  else if (pp === 'F3') b[n++] = 0xf3;
  else if (pp === 'F2') b[n++] = 0xf2;
  const lastRep: 0 | 0xf2 | 0xf3 = pp === 'F3' ? 0xf3 : pp === 'F2' ? 0xf2 : rep ? 0xf3 : repne ? 0xf2 : 0;

  // --- opcode, ModRM, SIB, displacement ---
  const esc = fi.escape;
  for (let j = 0; j < esc.length; j++) b[n++] = esc[j]!;
  let first: number;
  let modrm = -1;
  if (form.opLen === 2) {
    first = form.op >> 8;
    b[n++] = first;
    modrm = (form.op & 0xff) + sti;
    b[n++] = modrm;
  } else {
    first = fi.is3dnow ? 0x0f : form.op + opreg;
    if (!fi.is3dnow) b[n++] = first;
    if (fi.is3dnow || regField >= 0 || rmReg >= 0 || mem !== null) {
      const reg = regField >= 0 ? regField : 0;
      if (mem) {
        modrm = (mem.mod << 6) | (reg << 3) | mem.rm;
        b[n++] = modrm;
        if (mem.sib >= 0) b[n++] = mem.sib;
        for (let j = 0; j < mem.dispBytes; j++) b[n++] = (mem.disp >>> (8 * j)) & 0xff;
      } else {
        if (rmReg < 0) fail(form, 'no register or memory operand for ModRM.rm');
        modrm = 0xc0 | (reg << 3) | rmReg;
        b[n++] = modrm;
      }
    }
  }
  // --- moffs, immediates, far pointer, 3DNow! suffix ---
  if (moffs >= 0) for (let j = 0; j < effAsz / 8; j++) b[n++] = (moffs >>> (8 * j)) & 0xff;
  for (let j = 0; j < immLen; j += 2) {
    const v = imms[j]!, size = imms[j + 1]!;
    for (let q = 0; q < size; q++) b[n++] = (v >>> (8 * q)) & 0xff;
  }
  if (fi.is3dnow) b[n++] = form.op;

  if (!options?.allowShadowed && !fi.is3dnow && !fi.fwait) checkShadow(form, bits, first, modrm, has66, has67, lastRep);
  const total = n + (hasRel ? rel.size : 0);
  if (total > 15) fail(form, `encoding is ${total} bytes, over the 15-byte limit (SDM vol. 2 §2.3.11)`);
  return n;
}

const mod = (x: number, m: number): number => ((x % m) + m) % m;

function writeRel(ins: Instruction, length: number, out: Uint8Array, at: number): void {
  const form = formById(ins.form)!;
  if (!Number.isInteger(ins.ip) || ins.ip < 0) fail(form, `instruction address ${ins.ip} is not a non-negative integer`);
  const next = ins.ip + length;
  let v: number;
  if (rel.wrap16) {
    v = mod(rel.target - next, 0x10000);
    if (rel.size === 1 && !(v <= 0x7f || v >= 0xff80)) fail(form, `branch target ${hex(rel.target)} is out of rel8 range from ${hex(next)}`);
  } else {
    v = mod(rel.target - next, 0x100000000);
    if (rel.size === 1 && !(v <= 0x7f || v >= 0xffffff80)) fail(form, `branch target ${hex(rel.target)} is out of rel8 range from ${hex(next)}`);
    if (rel.size === 2 && !(v <= 0x7fff || v >= 0xffff8000)) fail(form, `branch target ${hex(rel.target)} is out of rel16 range from ${hex(next)}`);
  }
  for (let q = 0; q < rel.size; q++) out[at + q] = (v >>> (8 * q)) & 0xff;
}

/** Length in bytes `ins` encodes to (branch range is not checked). */
export function encodedLength(ins: Instruction, bits: 16 | 32, options?: EncodeOptions): number {
  const n = plan(ins, bits, options);
  return n + (hasRel ? rel.size : 0);
}

/**
 * Encodes `ins` at out[offset..] and returns its length. Near-branch displacements are
 * computed from ins.ip and the instruction's own length.
 */
export function encodeInto(ins: Instruction, bits: 16 | 32, out: Uint8Array, offset: number, options?: EncodeOptions): number {
  const n = plan(ins, bits, options);
  const length = n + (hasRel ? rel.size : 0);
  if (!Number.isInteger(offset) || offset < 0 || offset + length > out.length) {
    throw new EncodeError(`output buffer too small: need ${length} bytes at offset ${offset}`);
  }
  for (let j = 0; j < n; j++) out[offset + j] = scratch[j]!;
  if (hasRel) writeRel(ins, length, out, offset + n);
  return length;
}

/** Encodes `ins` as `bits`-bit code; throws EncodeError when it cannot be encoded. */
export function encode(ins: Instruction, bits: 16 | 32, options?: EncodeOptions): Uint8Array {
  const n = plan(ins, bits, options);
  const out = new Uint8Array(n + (hasRel ? rel.size : 0));
  for (let j = 0; j < n; j++) out[j] = scratch[j]!;
  if (hasRel) writeRel(ins, out.length, out, n);
  return out;
}
