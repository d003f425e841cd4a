// Converts an iced-x86 Instruction into ours, so the formatter can be checked against iced
// before (and independently of) our own decoder. Field conventions follow src/instruction.ts;
// where that file leaves a choice open, the choice made here is noted and is what
// formatIntel() assumes.
import { Instruction, Invalid, OpKind, Prefix, Rounding } from '../../src/instruction';
import { formById, memorySizeBytes } from '../../src/table/lookup';
import { registerByName, registerWidth, Reg } from '../../src/table/registers';
import { iced } from './iced-formatter';

type IcedInstruction = InstanceType<(typeof iced)['Instruction']>;

const enumKeys = (e: object): Map<number, string> => {
  const m = new Map<number, string>();
  for (const [k, v] of Object.entries(e)) if (typeof v === 'number') m.set(v, k);
  return m;
};

// iced Register value → our register id, via the (lowercased) iced enum name.
const REG_MAP: number[] = (() => {
  const out: number[] = [];
  const fixes: Record<string, string> = { none: 'none' };
  for (const [value, key] of enumKeys(iced.Register)) {
    let name = key.toLowerCase();
    name = fixes[name] ?? name.replace(/^r(\d+)l$/, 'r$1b');
    const id = registerByName(name);
    out[value] = id ?? -1; // -1: a register we do not model (DontUse*, MVEX...)
  }
  return out;
})();

const OPKIND_MAP: number[] = (() => {
  const out: number[] = [];
  for (const [value, key] of enumKeys(iced.OpKind)) {
    const ours = (OpKind as Record<string, number>)[key];
    out[value] = ours ?? -1;
  }
  return out;
})();

const MEMSIZE_NAME = enumKeys(iced.MemorySize);

function reg(r: number): number {
  const id = REG_MAP[r];
  if (id === undefined || id < 0) throw new Error(`iced register ${r} has no counterpart`);
  return id;
}

const lo32 = (v: bigint): number => Number(v & 0xffff_ffffn);
const hi32 = (v: bigint): number => Number((v >> 32n) & 0xffff_ffffn);

/**
 * Fills `out` from an iced-x86 instruction decoded in `bits`-bit code. Returns false when the
 * instruction is not representable (a form missing from our table, e.g. MVEX).
 */
export function fromIced(src: IcedInstruction, bits: 16 | 32 | 64, out: Instruction): boolean {
  out.reset();
  out.ip = Number(src.ip);
  out.length = src.length;
  out.bits = bits;
  const code = src.code;
  if (code === iced.Code.INVALID) {
    out.invalid = Invalid.Undefined;
    return true;
  }
  const form = formById(code);
  if (!form) return false;
  out.form = code;

  const seg = src.segmentPrefix;
  out.segmentPrefix = seg === iced.Register.None ? 0 : reg(seg);
  let p = 0;
  if (src.hasLockPrefix) p |= Prefix.Lock;
  if (src.hasRepPrefix) p |= Prefix.Rep;
  if (src.hasRepnePrefix) p |= Prefix.Repne;
  if (out.segmentPrefix) p |= Prefix.Segment;
  if (form.enc === 'vex') p |= Prefix.Vex;
  else if (form.enc === 'evex') p |= Prefix.Evex;
  else if (form.enc === 'xop') p |= Prefix.Xop;
  out.prefixes = p;
  // Not used by the formatter; iced does not expose it, so this is the form's size or a default.
  out.operandSize = form.osz ?? (bits === 64 ? 32 : bits);

  const n = src.opCount;
  out.opCount = n;
  let hasMemory = false;
  let stringAddr = 0;
  for (let i = 0; i < n; i++) {
    const k = OPKIND_MAP[src.opKind(i)]!;
    if (k < 0) return false;
    out.opKinds[i] = k as OpKind;
    out.opRegs[i] = k === OpKind.Register ? reg(src.opRegister(i)) : 0;
    if (k === OpKind.Memory) hasMemory = true;
    else if (k >= OpKind.MemorySegSI && k <= OpKind.MemoryESRDI) stringAddr = 16 << ((k - OpKind.MemorySegSI) % 3);
    else if (k >= OpKind.Immediate8 && k <= OpKind.Immediate32to64) setImmediate(src, k, out);
    else if (k === OpKind.NearBranch16) out.target = src.nearBranch16;
    else if (k === OpKind.NearBranch32) out.target = src.nearBranch32;
    else if (k === OpKind.NearBranch64) {
      const t = src.nearBranch64;
      out.target = lo32(t);
      out.targetHi = hi32(t);
    } else if (k === OpKind.FarBranch16 || k === OpKind.FarBranch32) {
      // Far pointer: offset in `target`, selector in `farSelector`.
      out.target = k === OpKind.FarBranch16 ? src.farBranch16 : src.farBranch32;
      out.farSelector = src.farBranchSelector;
    }
  }

  // Address size as the effective one (what the 67 prefix selects), derived the way iced does.
  out.addressSize = bits === 64 ? 64 : bits;
  if (stringAddr) out.addressSize = stringAddr as 16 | 32 | 64;
  if (hasMemory) {
    const base = src.memoryBase === iced.Register.None ? 0 : reg(src.memoryBase);
    const index = src.memoryIndex === iced.Register.None ? 0 : reg(src.memoryIndex);
    const w = (r: number): number => (registerWidth(r) >= 16 && r < Reg.ES ? registerWidth(r) : 0);
    const dsz = src.memoryDisplSize;
    const size = w(base) || w(index) || (dsz >= 2 ? dsz * 8 : bits);
    out.addressSize = size as 16 | 32 | 64;
    out.memBase = base;
    out.memIndex = index;
    out.memScale = src.memoryIndexScale as 1 | 2 | 4 | 8;
    // memDisp/memDispHi: the displacement sign-extended to the address size; for RIP/EIP-relative
    // operands the absolute target address (iced's memoryDisplacement64), as formatIntel expects.
    const d = src.memoryDisplacementU64;
    out.memDisp = size === 16 ? lo32(d) & 0xffff : lo32(d);
    out.memDispHi = size === 64 ? hi32(d) : 0;
    // Bytes in the encoding: iced reports 8 for any 64-bit-mode displacement; only moffs has 8.
    const moffs = form.ops.includes('mem_offs');
    out.memDispSize = dsz === 8 && !moffs ? 4 : dsz;
  }
  if (hasMemory || stringAddr) {
    out.memSegment = reg(src.memorySegment);
    const ms = MEMSIZE_NAME.get(src.memorySize) ?? '';
    out.memSizeName = ms === 'Unknown' ? '' : ms;
    out.memSize = memorySizeBytes(out.memSizeName);
    out.broadcast = src.isBroadcast;
  }

  const k = src.opMask;
  out.opmask = k === iced.Register.None ? 0 : reg(k);
  out.zeroing = src.zeroingMasking;
  out.suppressAllExceptions = src.suppressAllExceptions;
  out.rounding = src.roundingControl as (typeof Rounding)[keyof typeof Rounding];
  return true;
}

function setImmediate(src: IcedInstruction, k: number, out: Instruction): void {
  // `imm` holds the value at operand size (sign-extended for imm8/imm32 forms), low 32 bits.
  switch (k) {
    case OpKind.Immediate8:
      out.imm = src.immediate8;
      break;
    case OpKind.Immediate8_2nd:
      out.imm2 = src.immediate8_2nd;
      break;
    case OpKind.Immediate16:
      out.imm = src.immediate16;
      break;
    case OpKind.Immediate32:
      out.imm = src.immediate32 >>> 0;
      break;
    case OpKind.Immediate8to16:
      out.imm = src.immediate8to16 & 0xffff;
      break;
    case OpKind.Immediate8to32:
      out.imm = src.immediate8to32 >>> 0;
      break;
    case OpKind.Immediate64:
    case OpKind.Immediate8to64:
    case OpKind.Immediate32to64: {
      const v = k === OpKind.Immediate64 ? src.immediate64 : k === OpKind.Immediate8to64 ? src.immediate8to64 : src.immediate32to64;
      const u = BigInt.asUintN(64, v);
      out.imm = lo32(u);
      out.immHi = hi32(u);
      break;
    }
  }
}
