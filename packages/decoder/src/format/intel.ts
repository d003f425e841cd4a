// Intel-syntax text for a decoded instruction, identical to iced-x86 1.21's Intel formatter
// under the options listed in ./README.md. The structure follows iced's: a per-form rule
// (./intel-forms.ts) rewrites the operand list and picks size/branch prefixes, then prefixes,
// mnemonic and operands are printed.
import { Instruction, Invalid, OpKind, Prefix } from '../instruction';
import { Reg } from '../table/registers';
import { FF, INTEL_FORMS, Kind } from './intel-forms';
import { INTEL_REGISTER_NAMES, REG_ST } from './intel-names';

export interface IntelFormatOptions {
  /**
   * Uppercase mnemonics, prefixes, registers, keywords and decorators (`MOV EAX, DWORD PTR [EBX]`);
   * numbers are governed by `uppercaseHex`. Default false. iced-x86: `uppercaseAll`.
   */
  uppercase?: boolean;
  /** Uppercase hex digits (`0xFF`). Default false. iced-x86: `uppercaseHex`. */
  uppercaseHex?: boolean;
  /** Text before hex numbers. Default `'0x'`. iced-x86: `hexPrefix`. */
  hexPrefix?: string;
  /**
   * Text after hex numbers, e.g. `'h'`. Default `''`. With an empty prefix a hex number starting
   * with a letter gets a leading 0 (`0ffh`), as iced-x86's `addLeadingZeroToHexNumbers`.
   * iced-x86: `hexSuffix`.
   */
  hexSuffix?: string;
  /** Print 0-9 in decimal (`[eax+4]`, `shl eax, 2`). Default true. iced-x86: `smallHexNumbersInDecimal`. */
  smallNumbersInDecimal?: boolean;
  /** Space after the comma between operands. Default true. iced-x86: `spaceAfterOperandSeparator`. */
  spaceAfterComma?: boolean;
  /**
   * Print RIP/EIP-relative operands as `[rip+0x10]` instead of the absolute address
   * `[0x401010]`. Default false. iced-x86: `ripRelativeAddresses`.
   */
  ripRelative?: boolean;
  /**
   * Print immediates as signed numbers at their operand size (`add eax, -1`) instead of
   * unsigned (`add eax, 0xffffffff`). Default false. iced-x86: `signedImmediateOperands`.
   */
  signedImmediates?: boolean;
}

interface Resolved {
  up: boolean;
  upHex: boolean;
  prefix: string;
  suffix: string;
  leadingZero: boolean;
  smallDec: boolean;
  comma: string;
  ripRelative: boolean;
  signedImm: boolean;
}

const DEFAULTS: Resolved = {
  up: false,
  upHex: false,
  prefix: '0x',
  suffix: '',
  leadingZero: false,
  smallDec: true,
  comma: ', ',
  ripRelative: false,
  signedImm: false,
};

function resolve(o: IntelFormatOptions): Resolved {
  const prefix = o.hexPrefix ?? '0x';
  return {
    up: o.uppercase ?? false,
    upHex: o.uppercaseHex ?? false,
    prefix,
    suffix: o.hexSuffix ?? '',
    leadingZero: prefix === '',
    smallDec: o.smallNumbersInDecimal ?? true,
    comma: o.spaceAfterComma === false ? ',' : ', ',
    ripRelative: o.ripRelative ?? false,
    signedImm: o.signedImmediates ?? false,
  };
}

const ROUNDING = ['', 'rne-sae', 'rd-sae', 'ru-sae', 'rz-sae'];
const DATA_PREFIX: Readonly<Record<number, string>> = { 16: 'data16', 32: 'data32', 64: 'data64' };
const ADDR_PREFIX: Readonly<Record<number, string>> = { 16: 'addr16', 32: 'addr32', 64: 'addr64' };
const U32 = 0x1_0000_0000;

// Scratch operand list (iced's InstrOpInfo); the formatter is not re-entrant, which is fine
// for single-threaded JS and avoids an allocation per call.
const K: number[] = [0, 0, 0, 0, 0];
const R: number[] = [0, 0, 0, 0, 0];

let o: Resolved = DEFAULTS;

const up = (s: string): string => (o.up ? s.toUpperCase() : s);
const reg = (r: number): string => up(INTEL_REGISTER_NAMES[r] ?? `reg${r}`);
/** A prefix keyword and the space after it. */
const word = (s: string): string => up(s) + ' ';

/** Unsigned number hi:lo (each 32-bit unsigned) with the configured base markers. */
function num(lo: number, hi = 0): string {
  if (hi === 0 && lo <= 9 && o.smallDec) return String(lo);
  let s = hi === 0 ? lo.toString(16) : hi.toString(16) + lo.toString(16).padStart(8, '0');
  if (o.leadingZero && s.charCodeAt(0) >= 0x61) s = '0' + s;
  if (o.upHex) s = s.toUpperCase();
  return o.prefix + s + o.suffix;
}

/** The magnitude of the negative 64-bit value hi:lo, as num() text. */
const numNeg64 = (lo: number, hi: number): string => num((U32 - lo) % U32, (~hi + (lo === 0 ? 1 : 0)) >>> 0);

/** Immediate of `bits` width (value hi:lo already truncated to it), unsigned or signed per options. */
function imm(lo: number, hi: number, bits: 8 | 16 | 32 | 64): string {
  if (o.signedImm) {
    if (bits === 64) {
      if (hi >= 0x8000_0000) return '-' + numNeg64(lo, hi);
    } else if (lo >= 2 ** (bits - 1)) {
      return '-' + num(2 ** bits - lo);
    }
  }
  return num(lo, hi);
}

const sext8 = (v: number): number => ((v & 0xff) << 24) >> 24;

const BP = Reg.AX + 5;
const ESP = Reg.EAX + 4;
const EBP = Reg.EAX + 5;
const RSP = Reg.RAX + 4;
const RBP = Reg.RAX + 5;

function showSegmentPrefix(ins: Instruction, flags: number, defaultSeg: number): boolean {
  if (flags & FF.IgnoresSegment) return false;
  const seg = ins.segmentPrefix;
  // 64-bit mode ignores ES/CS/SS/DS overrides.
  if (ins.bits === 64) return seg === Reg.FS || seg === Reg.GS;
  if (defaultSeg === 0) {
    const b = ins.memBase;
    defaultSeg = b === BP || b === EBP || b === ESP || b === RBP || b === RSP ? Reg.SS : Reg.DS;
  }
  return seg !== defaultSeg;
}

function memory(
  ins: Instruction,
  flags: number,
  noMemSize: boolean,
  seg: number,
  base: number,
  index: number,
  scale: number,
  dispSize: number,
  lo: number,
  hi: number,
  addrSize: number,
): string {
  const form = INTEL_FORMS[ins.form]!;
  if (base === Reg.RIP || base === Reg.EIP) {
    // lo/hi hold the absolute target, like iced's memoryDisplacement64.
    if (o.ripRelative) {
      const next = ins.ip + ins.length;
      const nlo = next % U32;
      const nhi = Math.floor(next / U32);
      const borrow = lo < nlo ? 1 : 0;
      lo = (lo - nlo + U32) % U32;
      hi = base === Reg.EIP ? 0 : (hi - nhi - borrow + 2 * U32) % U32;
    } else {
      base = 0;
    }
    // Even a zero offset is part of the address here.
    dispSize = 8;
  }

  let s = '';
  if (!noMemSize) {
    const kw = ins.broadcast ? form.bcstKeyword : form.memKeyword;
    if (kw) s = up(kw) + ' ';
  }
  const segOv = ins.segmentPrefix;
  const notrack =
    segOv === Reg.DS &&
    (flags & FF.Notrack) !== 0 &&
    // iced keeps "ds:" on [bp]/[ebp]/[esp] in 16/32-bit code, where DS is not the default.
    !(ins.bits !== 64 && (base === BP || base === EBP || base === ESP));
  if (segOv !== 0 && !notrack && showSegmentPrefix(ins, flags, 0)) s += reg(seg) + ':';
  s += '[';

  let needPlus = false;
  if (base !== 0) {
    s += reg(base);
    needPlus = true;
  }
  if (index !== 0) {
    if (needPlus) s += '+';
    needPlus = true;
    s += reg(index);
    // A lone index keeps its "*1" so it is not read as a base; 16-bit forms have no scale.
    let useScale = scale !== 0 || base === 0;
    if (addrSize === 16 || (flags & FF.NoScale) !== 0) useScale = false;
    if (useScale) s += '*' + (1 << scale);
  }

  if (addrSize === 16) lo &= 0xffff;
  if (addrSize !== 64) hi = 0;
  if (!needPlus || (dispSize !== 0 && (lo !== 0 || hi !== 0))) {
    // A displacement after a register is signed at the address size; a bare address is not.
    if (!needPlus) s += num(lo, hi);
    else if (addrSize === 64) s += hi >= 0x8000_0000 ? '-' + numNeg64(lo, hi) : '+' + num(lo, hi);
    else {
      const wrap = addrSize === 32 ? U32 : 0x1_0000;
      s += lo >= wrap / 2 ? '-' + num(wrap - lo) : '+' + num(lo);
    }
  }
  s += ']';
  if (ins.broadcast && form.bcstDecorator) s += '{' + up(form.bcstDecorator) + '}';
  return s;
}

/**
 * Formats `ins` in Intel syntax, e.g. `lock add dword ptr [eax+4], 1`. Returns `'(bad)'` for an
 * invalid instruction.
 */
export function formatIntel(ins: Instruction, opts?: IntelFormatOptions): string {
  if (ins.invalid !== Invalid.None) return '(bad)';
  const info = INTEL_FORMS[ins.form];
  if (!info) return '(bad)';
  o = opts ? resolve(opts) : DEFAULTS;

  const bits = ins.bits;
  const p = ins.prefixes;
  const seg = ins.segmentPrefix;
  const flags = info.flags;
  let n = ins.opCount;
  for (let i = 0; i < n; i++) {
    K[i] = ins.opKinds[i]!;
    R[i] = ins.opRegs[i]!;
  }
  let mnemonic = o.up ? info.mnemonicUpper : info.mnemonic;
  let opPrefix = '';
  let addrPrefix = '';
  let noMemSize = (flags & FF.NoMemSize) !== 0;
  let ignoreSegPrefix = false;
  let ignoreOpmask = false;
  const size = info.size;

  switch (info.kind) {
    case Kind.OpSize:
      // An o32 form in 64-bit code is the default (no REX.W), so it is not marked.
      if (bits !== size && !(size === 32 && bits === 64)) opPrefix = DATA_PREFIX[size]!;
      break;
    case Kind.OpSizeBranch:
      if (bits !== size) opPrefix = DATA_PREFIX[size]!;
      break;
    case Kind.AddrSize:
      if (bits !== size) addrPrefix = ADDR_PREFIX[size]!;
      break;
    case Kind.Loop:
      if (bits !== size) opPrefix = DATA_PREFIX[size]!;
      if (bits !== info.size2) addrPrefix = ADDR_PREFIX[info.size2]!;
      break;
    case Kind.Moffs:
      if (bits !== ins.addressSize) addrPrefix = ADDR_PREFIX[ins.addressSize]!;
      break;
    case Kind.DropFirst:
      n = 1;
      K[0] = K[1]!;
      break;
    case Kind.DropLast:
      n = 1;
      break;
    case Kind.St0First:
      R[0] = REG_ST;
      break;
    case Kind.St0Second:
      R[1] = REG_ST;
      break;
    case Kind.AddStFirst:
      K[1] = K[0]!;
      R[1] = R[0]!;
      K[0] = OpKind.Register;
      R[0] = REG_ST;
      n = 2;
      break;
    case Kind.AddStLast:
      K[1] = OpKind.Register;
      R[1] = REG_ST;
      n = 2;
      break;
    case Kind.Nop:
      if ((bits & info.size2) === 0) {
        mnemonic = up('xchg');
        n = 2;
        K[0] = K[1] = OpKind.Register;
        R[0] = R[1] = info.reg;
      }
      break;
    case Kind.MaskMov: {
      const k0 = K[0];
      const short = bits === 16 ? OpKind.MemorySegDI : bits === 32 ? OpKind.MemorySegEDI : OpKind.MemorySegRDI;
      if (k0 !== short) addrPrefix = k0 === OpKind.MemorySegDI ? 'addr16' : k0 === OpKind.MemorySegEDI ? 'addr32' : 'addr64';
      K[0] = K[1]!;
      R[0] = R[1]!;
      K[1] = K[2]!;
      R[1] = R[2]!;
      n = 2;
      ignoreSegPrefix = true;
      if (seg !== 0 && showSegmentPrefix(ins, flags, 0)) {
        K[2] = OpKind.Register;
        R[2] = seg;
        n = 3;
      }
      break;
    }
    case Kind.FixedReg:
      n = 1;
      K[0] = OpKind.Register;
      R[0] = info.reg;
      break;
    case Kind.Invlpga:
      n = 2;
      K[0] = K[1] = OpKind.Register;
      R[0] = info.reg;
      R[1] = Reg.EAX + 1;
      break;
    case Kind.OpmaskOperand:
      if (ins.opmask !== 0) {
        K[2] = K[1]!;
        R[2] = R[1]!;
        K[1] = OpKind.Register;
        R[1] = ins.opmask;
        n++;
        ignoreOpmask = true;
      }
      break;
    case Kind.Reg16:
      for (let i = 0; i < 3; i++) {
        const r = R[i]!;
        if (r >= Reg.EAX && r < Reg.RAX + 16) R[i] = Reg.AX + ((r - Reg.AX) & 15);
      }
      break;
    case Kind.Reg32:
      for (let i = 0; i < 3; i++) {
        const r = R[i]!;
        if (r >= Reg.RAX && r < Reg.RAX + 16) R[i] = r - Reg.RAX + Reg.EAX;
      }
      break;
    case Kind.FpuEnv:
      if ((bits & info.size2) !== 0) noMemSize = true;
      break;
  }
  if (flags & FF.OpSize64) opPrefix = 'data64';

  // Prefixes, in iced-x86's order.
  let text = '';
  if (opPrefix) text += word(opPrefix);
  if (addrPrefix) text += word(addrPrefix);
  let hint = '';
  if (flags & FF.JccHint) {
    if (seg === Reg.CS) (hint = 'hint-not-taken'), (ignoreSegPrefix = true);
    else if (seg === Reg.DS) (hint = 'hint-taken'), (ignoreSegPrefix = true);
  }
  const notrack = seg === Reg.DS && (flags & FF.Notrack) !== 0;
  // Elsewhere the override is shown inside the memory operand (or is meaningless and dropped).
  if (seg !== 0 && !notrack && !ignoreSegPrefix && (flags & FF.SegPrefixDs) !== 0 && showSegmentPrefix(ins, flags, Reg.DS))
    text += word(INTEL_REGISTER_NAMES[seg]!);
  const lock = (p & Prefix.Lock) !== 0;
  const memFirst = ins.opCount > 0 && ins.opKinds[0] === OpKind.Memory;
  if (p & Prefix.Repne && memFirst && (lock ? (flags & FF.Cmpxchg16b) === 0 : (flags & FF.Xchg) !== 0)) text += word('xacquire');
  if (p & Prefix.Rep && memFirst && (lock ? (flags & FF.Cmpxchg16b) === 0 : (flags & FF.XreleasePlain) !== 0)) text += word('xrelease');
  if (lock) text += word('lock');
  if (hint) text += word(hint);
  if (notrack) text += word('notrack');
  const bnd = (flags & FF.Bnd) !== 0 && (p & Prefix.Repne) !== 0;
  if (bnd) text += word('bnd');
  if ((p & Prefix.Rep || flags & FF.AlwaysRep) && flags & FF.ShowRep) text += word(flags & FF.Repe ? 'repe' : 'rep');
  if (!bnd && p & Prefix.Repne && flags & FF.ShowRepne) text += word('repne');

  text += mnemonic;
  if (flags & FF.Far) text += up(' far');
  if (n === 0) return text;
  text += ' ';

  for (let i = 0; i < n; i++) {
    if (i > 0) text += o.comma;
    switch (K[i]) {
      case OpKind.Register:
        text += reg(R[i]!);
        break;
      case OpKind.NearBranch16:
        text += num(ins.target & 0xffff);
        break;
      case OpKind.NearBranch32:
        text += num(ins.target >>> 0);
        break;
      case OpKind.NearBranch64:
        text += num(ins.target >>> 0, ins.targetHi >>> 0);
        break;
      case OpKind.FarBranch16:
        text += num(ins.target & 0xffff) + o.comma + num(ins.farSelector & 0xffff);
        break;
      case OpKind.FarBranch32:
        text += num(ins.target >>> 0) + o.comma + num(ins.farSelector & 0xffff);
        break;
      case OpKind.Immediate8:
        text += imm(ins.imm & 0xff, 0, 8);
        break;
      case OpKind.Immediate8_2nd:
        text += imm(ins.imm2 & 0xff, 0, 8);
        break;
      case OpKind.Immediate16:
        text += imm(ins.imm & 0xffff, 0, 16);
        break;
      case OpKind.Immediate8to16:
        text += imm(sext8(ins.imm) & 0xffff, 0, 16);
        break;
      case OpKind.Immediate32:
        text += imm(ins.imm >>> 0, 0, 32);
        break;
      case OpKind.Immediate8to32:
        text += imm(sext8(ins.imm) >>> 0, 0, 32);
        break;
      case OpKind.Immediate64:
        text += imm(ins.imm >>> 0, ins.immHi >>> 0, 64);
        break;
      case OpKind.Immediate8to64: {
        const v = sext8(ins.imm);
        text += imm(v >>> 0, v < 0 ? 0xffff_ffff : 0, 64);
        break;
      }
      case OpKind.Immediate32to64:
        text += imm(ins.imm >>> 0, ins.imm & 0x8000_0000 ? 0xffff_ffff : 0, 64);
        break;
      case OpKind.MemorySegSI:
      case OpKind.MemorySegESI:
      case OpKind.MemorySegRSI:
      case OpKind.MemorySegDI:
      case OpKind.MemorySegEDI:
      case OpKind.MemorySegRDI:
      case OpKind.MemoryESDI:
      case OpKind.MemoryESEDI:
      case OpKind.MemoryESRDI: {
        const k = K[i]!;
        const rel = (k - OpKind.MemorySegSI) % 3; // 0: 16-bit, 1: 32-bit, 2: 64-bit address
        const isDi = k >= OpKind.MemorySegDI;
        const family = rel === 0 ? Reg.AX : rel === 1 ? Reg.EAX : Reg.RAX;
        const segReg = k >= OpKind.MemoryESDI ? Reg.ES : seg !== 0 ? seg : Reg.DS;
        text += memory(ins, flags, noMemSize, segReg, family + (isDi ? 7 : 6), 0, 0, 0, 0, 0, 16 << rel);
        break;
      }
      case OpKind.Memory: {
        const index = flags & FF.IgnoreIndex ? 0 : ins.memIndex;
        const scale = ins.memScale === 8 ? 3 : ins.memScale === 4 ? 2 : ins.memScale === 2 ? 1 : 0;
        text += memory(ins, flags, noMemSize, seg, ins.memBase, index, scale, ins.memDispSize, ins.memDisp >>> 0, ins.memDispHi >>> 0, ins.addressSize);
        break;
      }
    }
    if (i === 0) {
      if (ins.opmask !== 0 && !ignoreOpmask) text += '{' + reg(ins.opmask) + '}';
      if (ins.zeroing) text += up('{z}');
      if (ins.rounding !== 0 && (flags & FF.HideRounding) === 0) text += '{' + up(ROUNDING[ins.rounding]!) + '}';
      else if (ins.suppressAllExceptions) text += up('{sae}');
    }
  }
  return text;
}
