// The decoder: bytes -> Instruction, in 16-, 32- and 64-bit mode (Intel SDM vol. 2 ch. 2).
// It never throws: bad or truncated bytes give an instruction marked invalid with a reason.
// The order of work follows the encoding: legacy prefixes and REX (§2.1.1, §2.2.1), the
// VEX/XOP/EVEX escapes (§2.3, §2.7), the opcode maps, ModRM/SIB/displacement (§2.1.5), then
// immediates. Which form owns an opcode is decided by the candidate lists built from the
// instruction table (candidates.ts); this file only reads bytes and applies the rules that
// are the same for every form.
import * as I from '../instruction';
import * as R from '../table/registers';
import * as C from './candidates';
import type { Cand } from './candidates';

// Module-local copies: bundlers and tsx turn cross-module bindings into getter calls, which
// would dominate the hot path.
const { Instruction } = I;
type Instruction = I.Instruction;
const Invalid = { ...I.Invalid };
type Invalid = I.Invalid;
const OpKind = { ...I.OpKind };
type OpKind = I.OpKind;
const Prefix = { ...I.Prefix };
const Rounding = { ...I.Rounding };
const Reg = { ...R.Reg };
const gpr8 = R.gpr8;
const CF = { ...C.CF };
const OPK = { ...C.OPK };
const SLOTS = C.SLOTS;
const Key = { ...C.Key };
const sizeCode = C.sizeCode;
/** Stands for "a form with no operand-size rule" when computing the plain operand size. */
const NO_FLAGS_CAND = { flags: 0, pp: -1 } as Cand;
const Space = { ...C.Space };

const MODE_BIT = { 16: 1, 32: 2, 64: 4 } as const;

// 16-bit ModRM addressing (SDM vol. 2 table 2-1): base and index per rm.
const BX = Reg.AX + 3, BP = Reg.AX + 5, SI = Reg.AX + 6, DI = Reg.AX + 7;
const RM16_BASE = [BX, BX, BP, BP, SI, DI, BP, BX];
const RM16_INDEX = [SI, DI, SI, DI, 0, 0, 0, 0];

const EVEX_SPACE = [-1, Space.EVEX1, Space.EVEX2, Space.EVEX3, -1, Space.EVEX5, Space.EVEX6, -1];
const VEX_SPACE = [-1, Space.VEX1, Space.VEX2, Space.VEX3];

export class Decoder {
  readonly bits: 16 | 32 | 64;
  readonly bytes: Uint8Array;
  /** Offset in bytes of the next instruction. */
  position: number;
  /** Address of the next instruction. */
  ip: number;

  // Per-instruction state, kept in fields so helper methods share it without allocation.
  private p = 0;
  private limit = 0;
  private overflow = false;
  private modrm = 0;
  private mod = 0;
  private reg = 0;
  private rm = 0;
  private rexW = false;
  private rR = 0;
  private rX = 0;
  private rB = 0;
  /** EVEX.R' (adds 16 to ModRM.reg) and EVEX.X as the fifth bit of ModRM.rm. */
  private rR2 = 0;
  private rX2 = 0;
  private vvvv = 0;
  /** Raw 4-bit vvvv (plus V') before any mode masking, for the "must be 1111" check. */
  private vvvvRaw = 0;
  private vexL = 0;
  private evexB = false;
  private aaa = 0;
  private evexZ = false;
  private isEvex = false;
  private as: 16 | 32 | 64 = 32;
  private seg = 0;
  private relSize = 0;
  private rel = 0;
  private ripRel = false;
  private immCount = 0;

  private readonly modeBit: number;
  private readonly table: C.ModeTable;

  constructor(bits: 16 | 32 | 64, bytes: Uint8Array, ip = 0, offset = 0) {
    this.bits = bits;
    this.modeBit = MODE_BIT[bits];
    this.table = C.modeTable(bits);
    this.bytes = bytes;
    this.position = offset;
    this.ip = ip;
  }

  get canDecode(): boolean {
    return this.position < this.bytes.length;
  }

  decode(): Instruction {
    const out = new Instruction();
    this.decodeOut(out);
    return out;
  }

  /** Decodes the instruction at `position` into `out` and advances past it (1 byte if invalid). */
  decodeOut(out: Instruction): void {
    this.decodeAt(out);
    // Invalid bytes advance by one, as objdump's "(bad)" does, so a listing resynchronises.
    const n = out.invalid === Invalid.None ? out.length : 1;
    this.position += n;
    this.ip += n;
  }

  /** Decodes without advancing. Invalid instructions report the bytes examined as length. */
  decodeAt(out: Instruction): void {
    out.reset();
    const bits = this.bits;
    const bytes = this.bytes;
    const start = this.position;
    out.ip = this.ip;
    out.bits = bits;
    this.p = start;
    this.limit = Math.min(bytes.length, start + 15);
    this.overflow = false;
    this.rexW = false;
    this.rR = this.rX = this.rB = this.rR2 = this.rX2 = 0;
    this.vvvv = this.vvvvRaw = this.vexL = this.aaa = 0;
    this.evexB = this.evexZ = this.isEvex = false;
    this.relSize = 0;
    this.ripRel = false;
    this.immCount = 0;

    // Legacy prefixes (§2.1.1): any order and repeats; the last of a group counts, except that
    // in 64-bit mode ES/CS/SS/DS overrides do not displace FS/GS. A REX byte counts only when
    // it is the last prefix (§2.2.1).
    let seg = 0, segPrio = 0, has66 = false, has67 = false, lock = false, mand = 0, rex = 0;
    let prefixes = 0;
    let b = 0;
    for (;;) {
      b = this.byte();
      if (this.overflow) return this.fail(out, this.overflowReason());
      if (b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e) {
        if (bits !== 64 || segPrio <= 0) seg = b === 0x26 ? Reg.ES : b === 0x2e ? Reg.CS : b === 0x36 ? Reg.SS : Reg.DS;
        prefixes |= Prefix.Segment;
      } else if (b === 0x64 || b === 0x65) {
        seg = b === 0x64 ? Reg.FS : Reg.GS;
        segPrio = 1;
        prefixes |= Prefix.Segment;
      } else if (b === 0x66) {
        has66 = true;
        if (mand === 0) mand = 1;
      } else if (b === 0x67) {
        has67 = true;
      } else if (b === 0xf0) {
        lock = true;
      } else if (b === 0xf2) {
        mand = 3;
      } else if (b === 0xf3) {
        mand = 2;
      } else if (bits === 64 && (b & 0xf0) === 0x40) {
        rex = b;
        continue;
      } else {
        break;
      }
      rex = 0;
    }
    if (rex) {
      this.rexW = (rex & 8) !== 0;
      this.rR = (rex & 4) << 1;
      this.rX = (rex & 2) << 2;
      this.rB = (rex & 1) << 3;
      prefixes |= Prefix.Rex;
    }
    const as: 16 | 32 | 64 = bits === 16 ? (has67 ? 32 : 16) : bits === 32 ? (has67 ? 16 : 32) : has67 ? 32 : 64;
    this.as = as;
    this.seg = seg;

    // Opcode and encoding space.
    let space: number = Space.Normal;
    let op = b;
    let vexPp = -1;
    if (b === 0x0f) {
      const b2 = this.byte();
      if (b2 === 0x38) { space = Space.M0F38; op = this.byte(); }
      else if (b2 === 0x3a) { space = Space.M0F3A; op = this.byte(); }
      else if (b2 === 0x0f) { space = Space.D3NOW; op = -1; }
      else { space = Space.M0F; op = b2; }
    } else if (b === 0xc5 || b === 0xc4 || b === 0x62 || b === 0x8f) {
      const b1 = this.peek();
      // In 16/32-bit mode these are LDS/LES/BOUND/POP unless ModRM.mod = 11 (§2.3.5); XOP is
      // recognised by its map field (>= 8), which POP r/m (8F /0) can never produce.
      const escape = b === 0x8f ? (b1 & 0x1f) >= 8 : bits === 64 || b1 >= 0xc0;
      if (escape && !this.overflow) {
        if (has66 || mand !== 0 || rex !== 0 || lock) {
          // VEX/XOP/EVEX after 66/F2/F3/REX/LOCK is #UD (§2.3.2); consume the escape for length.
          this.p++;
          return this.fail(out, Invalid.VexPrefix);
        }
        const r = b === 0x62 ? this.evex(out) : this.vex(b);
        if (r < 0) return this.fail(out, this.overflow ? this.overflowReason() : r === -2 ? Invalid.EvexField : Invalid.Undefined);
        space = r >> 8;
        op = r & 0xff;
        vexPp = this.vexPpOut;
        prefixes |= b === 0x62 ? Prefix.Evex : b === 0x8f ? Prefix.Xop : Prefix.Vex;
      }
    }
    if (this.overflow) return this.fail(out, this.overflowReason());
    this.opcodeByte = op;

    const kind = op >= 0 ? this.table.kind[space * 256 + op]! : 2;
    if (kind === 0) return this.fail(out, Invalid.Undefined);

    const hasModrm = kind === 2;
    this.modrm = this.mod = this.reg = this.rm = 0;
    if (hasModrm) {
      const m = this.byte();
      this.modrm = m;
      this.mod = m >> 6;
      this.reg = (m >> 3) & 7;
      this.rm = m & 7;
    }
    const mod = this.mod;
    const modeBit = this.modeBit;
    const pp = vexPp >= 0 ? vexPp : mand;

    let cand: Cand | undefined;
    let why: Invalid = Invalid.Undefined;
    if (space === Space.D3NOW) {
      // 0F 0F /r ib: the suffix byte after the operands is the opcode (AMD 3DNow! manual).
      if (mod !== 3) this.memory(1, 1);
      const suffix = this.byte();
      if (this.overflow) return this.fail(out, this.overflowReason());
      const slot = SLOTS[Space.D3NOW * 256 + suffix];
      if (!slot) return this.fail(out, Invalid.Undefined);
      const c = slot.cands[0]!;
      if (!(c.modes & modeBit)) return this.fail(out, Invalid.NotInMode);
      cand = c;
    } else {
      // The state word that every candidate's (mask, value) is tested against (candidates.ts, Key).
      const rexW = this.rexW;
      const os = this.operandSize(NO_FLAGS_CAND, has66);
      const osCode = sizeCode(os);
      const osD64 = rexW ? 2 : has66 ? 0 : 2;
      const osNo66 = bits === 64 ? (rexW ? 2 : 1) : sizeCode(bits);
      const state = this.modrm | (mod === 3 ? Key.Mod3 : 0) | ((1 << pp) << Key.PpShift) | (has66 ? Key.Has66 : 0) |
        (osCode << Key.OsShift) | (osD64 << Key.OsD64Shift) | ((osCode === 2 ? 1 : osCode) << Key.OsNo64Shift) |
        (osNo66 << Key.OsNo66Shift) | (sizeCode(as) << Key.AsShift) | (rexW ? Key.W : 0) |
        (this.effectiveL() << Key.LShift) | (this.rB !== 0 ? Key.RexB : 0);
      const t = this.table;
      const data = t.data;
      const at = (space * 256 + op) * 8 + this.reg;
      for (let i = t.start[at]! * 3, end = t.start[at + 1]! * 3; i < end; i += 3) {
        if ((state & data[i]!) === data[i + 1]!) {
          cand = t.cands[data[i + 2]!]!;
          break;
        }
      }
      if (!cand) why = this.diagnose(SLOTS[space * 256 + op]!, hasModrm, mod);
      if (!cand) return this.fail(out, why);
      if (hasModrm && mod !== 3 && c_needsMemory(cand)) this.memory(cand.n, cand.nb);
    }
    if (this.overflow) return this.fail(out, this.overflowReason());

    const flags = cand.flags;
    // LOCK is allowed only on the listed read-modify-write forms with a memory destination (§8.1.2.2).
    if (lock && ((flags & CF.Lock) === 0 || mod === 3 || !hasModrm)) return this.fail(out, Invalid.Lock);
    if (vexPp >= 0) {
      const bad = this.checkVex(cand);
      if (bad !== Invalid.None) return this.fail(out, bad);
    }

    out.form = cand.id;
    out.prefixes = prefixes | (lock ? Prefix.Lock : 0) | (has66 ? Prefix.OperandSize : 0) | (has67 ? Prefix.AddressSize : 0) |
      (mand === 2 ? Prefix.Rep : mand === 3 ? Prefix.Repne : 0);
    out.segmentPrefix = seg;
    out.operandSize = this.operandSize(cand, has66) as 16 | 32 | 64;
    if (cand.flags & CF.Os64As32) out.operandSize = 32;
    out.addressSize = as;
    if (!this.operands(out, cand)) return;
    if (this.overflow) return this.fail(out, this.overflowReason());
    if ((flags & (CF.UniqueRegs | CF.UniqueDest)) !== 0 && !uniqueRegsOk(out, flags)) return this.fail(out, Invalid.Register);

    const len = this.p - start;
    out.length = len;
    if (this.relSize) this.setTarget(out, cand);
    if (this.ripRel) this.setRipTarget(out);
  }

  private vexPpOut = -1;

  /** VEX (C4/C5) and XOP (8F). Returns (space << 8) | opcode, or -1. */
  private vex(b: number): number {
    const bits = this.bits;
    let b1 = this.byte();
    let space: number;
    let r: number, x = 1, bb = 1, w = 0, vvvv: number, l: number, pp: number;
    if (b === 0xc5) {
      r = b1 >> 7;
      vvvv = (~b1 >> 3) & 15;
      l = (b1 >> 2) & 1;
      pp = b1 & 3;
      space = Space.VEX1;
    } else {
      r = b1 >> 7;
      x = (b1 >> 6) & 1;
      bb = (b1 >> 5) & 1;
      const map = b1 & 0x1f;
      const b2 = this.byte();
      w = b2 >> 7;
      vvvv = (~b2 >> 3) & 15;
      l = (b2 >> 2) & 1;
      pp = b2 & 3;
      if (b === 0x8f) {
        space = map === 8 ? Space.XOP8 : map === 9 ? Space.XOP9 : map === 10 ? Space.XOP10 : -1;
      } else {
        space = map < 4 ? VEX_SPACE[map]! : -1;
      }
      b1 = b2;
    }
    const op = this.byte();
    if (space < 0) return -1;
    this.rexW = w === 1;
    this.vvvvRaw = vvvv;
    this.vexL = l;
    this.vexPpOut = pp;
    if (bits === 64) {
      this.rR = (r ^ 1) << 3;
      this.rX = (x ^ 1) << 3;
      this.rB = (bb ^ 1) << 3;
      this.vvvv = vvvv;
    } else {
      // Outside 64-bit mode VEX.B̄ and vvvv bit 3 are ignored (§2.3.5.6).
      this.vvvv = vvvv & 7;
    }
    return (space << 8) | op;
  }

  /** EVEX (62), §2.7.1. Returns (space << 8) | opcode, -1 (undefined) or -2 (bad field). */
  private evex(_out: Instruction): number {
    const bits = this.bits;
    const p0 = this.byte();
    const p1 = this.byte();
    const p2 = this.byte();
    const op = this.byte();
    if (this.overflow) return -1;
    if ((p0 & 8) !== 0 || (p1 & 4) === 0) return -2;
    const space = EVEX_SPACE[p0 & 7]!;
    if (space < 0) return -1;
    this.isEvex = true;
    this.rexW = (p1 & 0x80) !== 0;
    const vvvv = (~p1 >> 3) & 15;
    const vPrime = (p2 & 8) === 0 ? 16 : 0;
    this.vvvvRaw = vvvv | vPrime;
    this.vexPpOut = p1 & 3;
    this.evexZ = (p2 & 0x80) !== 0;
    this.vexL = (p2 >> 5) & 3;
    this.evexB = (p2 & 0x10) !== 0;
    this.aaa = p2 & 7;
    if (bits === 64) {
      this.rR = (~p0 & 0x80) >> 4;
      this.rX = (~p0 & 0x40) >> 3;
      this.rB = (~p0 & 0x20) >> 2;
      this.rR2 = (~p0 & 0x10);
      this.rX2 = (~p0 & 0x40) >> 2;
      this.vvvv = vvvv | vPrime;
    } else {
      // Outside 64-bit mode EVEX.V' must be 1 (it would name xmm16-31); R' and vvvv bit 3 are ignored.
      if (vPrime) return -2;
      this.vvvv = vvvv & 7;
      this.vvvvRaw = vvvv;
    }
    return (space << 8) | op;
  }

  /** Why no form matched (the slow path): another mode has it, or the ModRM form is wrong. */
  private diagnose(slot: C.Slot, hasModrm: boolean, mod: number): Invalid {
    let why: Invalid = Invalid.Undefined;
    for (const c of hasModrm ? slot.byReg[this.reg]! : slot.cands) {
      if (!(c.modes & this.modeBit)) why = Invalid.NotInMode;
      else if (c.mod === 1 ? mod === 3 : c.mod === 2 && mod !== 3) why = Invalid.ModRM;
    }
    return why;
  }

  private effectiveL(): number {
    // With EVEX.b on a register form, L'L holds the rounding mode and the vector length is 512 (§2.7.3).
    if (this.isEvex && this.evexB && this.mod === 3) return 2;
    return this.vexL;
  }

  private checkVex(c: Cand): Invalid {
    const flags = c.flags;
    if ((flags & CF.Vvvv) === 0 && this.vvvvRaw !== 0) return this.isEvex ? Invalid.EvexField : Invalid.VexField;
    if (!this.isEvex) return Invalid.None;
    if (this.vexL === 3 && !(this.evexB && this.mod === 3 && (flags & (CF.Er | CF.Sae)) !== 0)) return Invalid.EvexField;
    if (this.aaa === 0 ? (flags & CF.KReq) !== 0 : (flags & CF.K) === 0) return Invalid.EvexField;
    if (this.evexZ && ((flags & CF.Z) === 0 || this.aaa === 0)) return Invalid.EvexField;
    // Zeroing-masking into a memory destination is #UD (SDM vol. 2 §2.7.4... "EVEX.z with memory dest").
    if (this.evexZ && this.mod !== 3 && (flags & CF.MemDest) !== 0) return Invalid.EvexField;
    if (this.evexB) {
      if (this.mod === 3 ? (flags & (CF.Er | CF.Sae)) === 0 : (flags & CF.Bcst) === 0) return Invalid.EvexField;
    }
    return Invalid.None;
  }

  private operandSize(c: Cand, has66: boolean): number {
    const o66 = has66 && c.pp !== 1;
    if (this.bits === 64) {
      if ((c.flags & CF.F64) !== 0 || this.rexW) return 64;
      if ((c.flags & CF.D64) !== 0) return o66 ? 16 : 64;
      return o66 ? 16 : 32;
    }
    return this.bits === 16 ? (o66 ? 32 : 16) : o66 ? 16 : 32;
  }

  private byte(): number {
    const p = this.p++;
    if (p >= this.limit) {
      this.overflow = true;
      return 0;
    }
    return this.bytes[p]!;
  }

  private peek(): number {
    if (this.p >= this.limit) {
      this.overflow = true;
      return 0;
    }
    return this.bytes[this.p]!;
  }

  private overflowReason(): Invalid {
    return this.limit < this.bytes.length ? Invalid.TooLong : Invalid.Truncated;
  }

  private fail(out: Instruction, why: Invalid): void {
    out.reset();
    out.invalid = why === Invalid.None ? Invalid.Undefined : why;
    out.length = Math.max(1, Math.min(this.p, this.limit) - this.position);
  }

  private s8(): number {
    return (this.byte() << 24) >> 24;
  }
  private u16(): number {
    return this.byte() | (this.byte() << 8);
  }
  private u32(): number {
    return (this.byte() | (this.byte() << 8) | (this.byte() << 16) | (this.byte() << 24)) >>> 0;
  }

  // Memory operand decoded from ModRM/SIB/displacement (§2.1.5), into the out-of-band fields below.
  private mBase = 0;
  private mIndex = 0;
  private mScale: 1 | 2 | 4 | 8 = 1;
  private mDisp = 0;
  private mDispHi = 0;
  private mDispSize = 0;
  private mSib = false;
  private mSibIndex = 0;

  /** n / nb: EVEX disp8*N scale without / with broadcast. */
  private memory(n: number, nb: number): void {
    const mod = this.mod, rm = this.rm;
    const scale8 = this.isEvex ? (this.evexB ? nb : n) : 1;
    this.mSib = false;
    this.mSibIndex = -1;
    this.mDispHi = 0;
    if (this.as === 16) {
      let base = RM16_BASE[rm]!, index = RM16_INDEX[rm]!, disp = 0, size = 0;
      if (mod === 0 && rm === 6) { base = 0; disp = this.u16(); size = 2; }
      else if (mod === 1) { disp = (this.s8() * scale8) & 0xffff; size = 1; }
      else if (mod === 2) { disp = this.u16(); size = 2; }
      this.mBase = base;
      this.mIndex = index;
      this.mScale = 1;
      this.mDisp = disp;
      this.mDispSize = size;
      return;
    }
    const gbase = this.as === 64 ? Reg.RAX : Reg.EAX;
    let base = 0, index = 0, scale: 1 | 2 | 4 | 8 = 1, disp = 0, size = 0;
    let baseNum = rm;
    if (rm === 4) {
      const sib = this.byte();
      this.mSib = true;
      const ss = sib >> 6;
      const idx = ((sib >> 3) & 7) | this.rX;
      this.mSibIndex = idx;
      baseNum = sib & 7;
      scale = (1 << ss) as 1 | 2 | 4 | 8;
      if (idx !== 4) index = gbase + idx;
      if (baseNum === 5 && mod === 0) {
        base = 0;
        disp = this.u32();
        size = 4;
      } else {
        base = gbase + (baseNum | this.rB);
      }
    } else if (rm === 5 && mod === 0) {
      disp = this.u32();
      size = 4;
      if (this.bits === 64) {
        this.ripRel = true;
        base = this.as === 64 ? Reg.RIP : Reg.EIP;
      }
    } else {
      base = gbase + (rm | this.rB);
    }
    if (mod === 1) { disp = this.s8() * scale8; size = 1; }
    else if (mod === 2) { disp = this.u32() | 0; size = 4; }
    else if (size === 4) disp = disp | 0;
    if (this.as === 64) {
      this.mDisp = disp >>> 0;
      this.mDispHi = disp < 0 ? 0xffffffff : 0;
    } else {
      this.mDisp = disp >>> 0;
    }
    this.mBase = base;
    this.mIndex = index;
    this.mScale = scale;
    this.mDispSize = size;
  }

  private setMemory(out: Instruction, c: Cand, i: number): void {
    out.opKinds[i] = OpKind.Memory;
    out.memBase = this.mBase;
    out.memIndex = this.mIndex;
    out.memScale = this.mScale;
    out.memDisp = this.mDisp;
    out.memDispHi = this.mDispHi;
    out.memDispSize = this.mDispSize;
    const b = this.mBase;
    out.memSegment = this.seg || (b === Reg.ESP || b === Reg.EBP || b === Reg.RSP || b === Reg.RBP || b === Reg.BP || b === Reg.SP ? Reg.SS : Reg.DS);
    if (this.evexB && this.isEvex) {
      out.broadcast = true;
      out.memSizeName = c.bcstName;
      out.memSize = c.bcstSize;
    } else {
      out.memSizeName = c.memName;
      out.memSize = c.memSize;
    }
  }

  private imm(out: Instruction, i: number, kind: OpKind, value: number, hi = 0): void {
    out.opKinds[i] = kind;
    if (this.immCount++ === 0) {
      out.imm = value;
      out.immHi = hi;
    } else {
      out.imm2 = value;
      if (kind === OpKind.Immediate8) out.opKinds[i] = OpKind.Immediate8_2nd;
    }
  }

  /** Fills operands; returns false after fail() on an invalid register encoding. */
  private operands(out: Instruction, c: Cand): boolean {
    const ops = c.ops;
    const n = ops.length;
    out.opCount = n;
    const rex = (out.prefixes & Prefix.Rex) !== 0;
    const reg = this.reg | this.rR;
    const regV = reg | this.rR2;
    const rm = this.rm | this.rB;
    const rmV = rm | (this.mod === 3 ? this.rX2 : 0);
    const as = this.as;
    const bits = this.bits;
    const kinds = out.opKinds, regs = out.opRegs;
    for (let i = 0; i < n; i++) {
      const k = ops[i]!;
      let r = -1;
      switch (k) {
        case OPK.al: r = Reg.AL; break;
        case OPK.ax: r = Reg.AX; break;
        case OPK.eax: r = Reg.EAX; break;
        case OPK.rax: r = Reg.RAX; break;
        case OPK.cl: r = Reg.AL + 1; break;
        case OPK.dx: r = Reg.AX + 2; break;
        case OPK.es: r = Reg.ES; break;
        case OPK.cs: r = Reg.CS; break;
        case OPK.ss: r = Reg.SS; break;
        case OPK.ds: r = Reg.DS; break;
        case OPK.fs: r = Reg.FS; break;
        case OPK.gs: r = Reg.GS; break;
        case OPK.st0: r = Reg.ST0; break;
        case OPK.sti_opcode: r = Reg.ST0 + this.rm; break;
        case OPK.r8_reg: r = gpr8(reg, rex); break;
        case OPK.r16_reg: case OPK.r16_reg_mem: r = Reg.AX + reg; break;
        case OPK.r32_reg: case OPK.r32_reg_mem:
        case OPK.r64_reg: case OPK.r64_reg_mem:
          // EVEX.R' would name a 17th general register: #UD.
          if (this.rR2) { this.fail(out, Invalid.Register); return false; }
          r = (k === OPK.r32_reg || k === OPK.r32_reg_mem ? Reg.EAX : Reg.RAX) + reg;
          break;
        case OPK.r16_rm: r = Reg.AX + rm; break;
        case OPK.r32_rm: r = Reg.EAX + rm; break;
        case OPK.r64_rm: r = Reg.RAX + rm; break;
        case OPK.r8_or_mem: if (this.mod === 3) r = gpr8(rm, rex); break;
        case OPK.r16_or_mem: if (this.mod === 3) r = Reg.AX + rm; break;
        case OPK.r32_or_mem: if (this.mod === 3) r = Reg.EAX + rm; break;
        case OPK.r64_or_mem: if (this.mod === 3) r = Reg.RAX + rm; break;
        case OPK.r8_opcode: r = gpr8((this.lastOpcode() & 7) | this.rB, rex); break;
        case OPK.r16_opcode: r = Reg.AX + ((this.lastOpcode() & 7) | this.rB); break;
        case OPK.r32_opcode: r = Reg.EAX + ((this.lastOpcode() & 7) | this.rB); break;
        case OPK.r64_opcode: r = Reg.RAX + ((this.lastOpcode() & 7) | this.rB); break;
        case OPK.r32_vvvv: r = Reg.EAX + (this.vvvv & 15); break;
        case OPK.r64_vvvv: r = Reg.RAX + (this.vvvv & 15); break;
        case OPK.seg_reg:
          // Segment registers 6 and 7 do not exist, and MOV CS, r/m is #UD (SDM MOV, "Protected Mode Exceptions").
          if (this.reg >= 6 || (i === 0 && this.reg === 1)) { this.fail(out, Invalid.Register); return false; }
          r = Reg.ES + this.reg;
          break;
        case OPK.cr_reg:
          if (!(reg === 0 || reg === 2 || reg === 3 || reg === 4 || reg === 8)) { this.fail(out, Invalid.Register); return false; }
          r = Reg.CR0 + reg;
          break;
        case OPK.dr_reg:
          if (reg > 7) { this.fail(out, Invalid.Register); return false; }
          r = Reg.DR0 + reg;
          break;
        case OPK.mm_reg: r = Reg.MM0 + this.reg; break;
        case OPK.mm_rm: r = Reg.MM0 + this.rm; break;
        case OPK.mm_or_mem: if (this.mod === 3) r = Reg.MM0 + this.rm; break;
        case OPK.k_reg: case OPK.kp1_reg:
          // There are only k0-k7: a set VEX/EVEX.R (or R') is #UD.
          if (this.rR || this.rR2) { this.fail(out, Invalid.Register); return false; }
          r = Reg.K0 + this.reg;
          break;
        case OPK.k_rm: r = Reg.K0 + this.rm; break;
        case OPK.k_or_mem: if (this.mod === 3) r = Reg.K0 + this.rm; break;
        case OPK.k_vvvv:
          if (this.vvvv > 7) { this.fail(out, Invalid.Register); return false; }
          r = Reg.K0 + this.vvvv;
          break;
        // There are only tmm0-tmm7: VEX.R, VEX.B or vvvv > 7 naming a ninth tile is #UD.
        case OPK.tmm_reg: if (this.rR) { this.fail(out, Invalid.Register); return false; } r = Reg.TMM0 + this.reg; break;
        case OPK.tmm_rm: if (this.rB) { this.fail(out, Invalid.Register); return false; } r = Reg.TMM0 + this.rm; break;
        case OPK.tmm_vvvv: if (this.vvvv > 7) { this.fail(out, Invalid.Register); return false; } r = Reg.TMM0 + this.vvvv; break;
        case OPK.xmm_reg: r = Reg.XMM0 + regV; break;
        case OPK.ymm_reg: r = Reg.YMM0 + regV; break;
        case OPK.zmm_reg: r = Reg.ZMM0 + regV; break;
        case OPK.xmm_rm: r = Reg.XMM0 + rmV; break;
        case OPK.ymm_rm: r = Reg.YMM0 + rmV; break;
        case OPK.zmm_rm: r = Reg.ZMM0 + rmV; break;
        case OPK.xmm_or_mem: if (this.mod === 3) r = Reg.XMM0 + rmV; break;
        case OPK.ymm_or_mem: if (this.mod === 3) r = Reg.YMM0 + rmV; break;
        case OPK.zmm_or_mem: if (this.mod === 3) r = Reg.ZMM0 + rmV; break;
        case OPK.xmm_vvvv: case OPK.xmmp3_vvvv: r = Reg.XMM0 + this.vvvv; break;
        case OPK.ymm_vvvv: r = Reg.YMM0 + this.vvvv; break;
        case OPK.zmm_vvvv: case OPK.zmmp3_vvvv: r = Reg.ZMM0 + this.vvvv; break;
        case OPK.xmm_is4: case OPK.xmm_is5: case OPK.ymm_is4: case OPK.ymm_is5: {
          const ib = this.byte();
          this.is4Byte = ib;
          const num = bits === 64 ? ib >> 4 : (ib >> 4) & 7;
          r = (k === OPK.xmm_is4 || k === OPK.xmm_is5 ? Reg.XMM0 : Reg.YMM0) + num;
          break;
        }
        case OPK.imm4_m2z: this.imm(out, i, OpKind.Immediate8, this.is4Byte & 15); continue;
        case OPK.imm8: this.imm(out, i, OpKind.Immediate8, this.byte()); continue;
        case OPK.imm8_const_1: this.imm(out, i, OpKind.Immediate8, 1); continue;
        case OPK.imm16: this.imm(out, i, OpKind.Immediate16, this.u16()); continue;
        case OPK.imm32: this.imm(out, i, OpKind.Immediate32, this.u32()); continue;
        case OPK.imm64: { const lo = this.u32(); this.imm(out, i, OpKind.Immediate64, lo, this.u32()); continue; }
        case OPK.imm8sex16: this.imm(out, i, OpKind.Immediate8to16, this.s8() & 0xffff); continue;
        case OPK.imm8sex32: this.imm(out, i, OpKind.Immediate8to32, this.s8() >>> 0); continue;
        case OPK.imm8sex64: { const v = this.s8(); this.imm(out, i, OpKind.Immediate8to64, v >>> 0, v < 0 ? 0xffffffff : 0); continue; }
        case OPK.imm32sex64: { const v = this.u32() | 0; this.imm(out, i, OpKind.Immediate32to64, v >>> 0, v < 0 ? 0xffffffff : 0); continue; }
        case OPK.br16_1: case OPK.br32_1: case OPK.br64_1:
          this.rel = this.s8(); this.relSize = 1;
          kinds[i] = k === OPK.br16_1 ? OpKind.NearBranch16 : k === OPK.br32_1 ? OpKind.NearBranch32 : OpKind.NearBranch64;
          continue;
        case OPK.br16_2: this.rel = (this.u16() << 16) >> 16; this.relSize = 2; kinds[i] = OpKind.NearBranch16; continue;
        case OPK.br32_4: this.rel = this.u32() | 0; this.relSize = 4; kinds[i] = OpKind.NearBranch32; continue;
        case OPK.br64_4: this.rel = this.u32() | 0; this.relSize = 4; kinds[i] = OpKind.NearBranch64; continue;
        case OPK.xbegin_2: case OPK.xbegin_4:
          this.rel = k === OPK.xbegin_2 ? (this.u16() << 16) >> 16 : this.u32() | 0;
          this.relSize = k === OPK.xbegin_2 ? 2 : 4;
          // XBEGIN's target is an EIP/RIP value even with a 16-bit displacement (iced agrees).
          kinds[i] = bits === 64 ? OpKind.NearBranch64 : OpKind.NearBranch32;
          continue;
        case OPK.farbr2_2: out.target = this.u16(); out.farSelector = this.u16(); kinds[i] = OpKind.FarBranch16; continue;
        case OPK.farbr4_2: out.target = this.u32(); out.farSelector = this.u16(); kinds[i] = OpKind.FarBranch32; continue;
        case OPK.mem: case OPK.sibmem:
          if (k === OPK.sibmem && !this.mSib) { this.fail(out, Invalid.ModRM); return false; }
          this.setMemory(out, c, i);
          continue;
        case OPK.mem_vsib32x: case OPK.mem_vsib32y: case OPK.mem_vsib32z:
        case OPK.mem_vsib64x: case OPK.mem_vsib64y: case OPK.mem_vsib64z: {
          // VSIB (§2.3.12): SIB required; its index names a vector register.
          if (this.as === 16 || !this.mSib) { this.fail(out, Invalid.ModRM); return false; }
          this.setMemory(out, c, i);
          const vi = this.mSibIndex | (this.isEvex ? ((this.vvvvRaw & 16) && bits === 64 ? 16 : 0) : 0);
          const vbase = k === OPK.mem_vsib32x || k === OPK.mem_vsib64x ? Reg.XMM0 : k === OPK.mem_vsib32y || k === OPK.mem_vsib64y ? Reg.YMM0 : Reg.ZMM0;
          out.memIndex = vbase + vi;
          continue;
        }
        case OPK.mem_offs: {
          kinds[i] = OpKind.Memory;
          if (as === 64) { out.memDisp = this.u32(); out.memDispHi = this.u32(); out.memDispSize = 8; }
          else if (as === 32) { out.memDisp = this.u32(); out.memDispSize = 4; }
          else { out.memDisp = this.u16(); out.memDispSize = 2; }
          out.memSegment = this.seg || Reg.DS;
          out.memSizeName = c.memName;
          out.memSize = c.memSize;
          continue;
        }
        case OPK.seg_rSI:
          kinds[i] = as === 16 ? OpKind.MemorySegSI : as === 32 ? OpKind.MemorySegESI : OpKind.MemorySegRSI;
          this.stringMem(out, c);
          continue;
        case OPK.seg_rDI:
          kinds[i] = as === 16 ? OpKind.MemorySegDI : as === 32 ? OpKind.MemorySegEDI : OpKind.MemorySegRDI;
          this.stringMem(out, c);
          continue;
        case OPK.es_rDI:
          kinds[i] = as === 16 ? OpKind.MemoryESDI : as === 32 ? OpKind.MemoryESEDI : OpKind.MemoryESRDI;
          if (!out.memSizeName) { out.memSizeName = c.memName; out.memSize = c.memSize; }
          continue;
        case OPK.seg_rBX_al:
          kinds[i] = OpKind.Memory;
          out.memBase = as === 16 ? Reg.AX + 3 : as === 32 ? Reg.EAX + 3 : Reg.RAX + 3;
          out.memIndex = Reg.AL;
          this.stringMem(out, c);
          continue;
      }
      if (r < 0) {
        this.setMemory(out, c, i);
      } else {
        kinds[i] = OpKind.Register;
        regs[i] = r;
      }
    }
    if (this.isEvex) {
      out.opmask = this.aaa ? Reg.K0 + this.aaa : 0;
      out.zeroing = this.evexZ;
      if (this.evexB && this.mod === 3) {
        // Embedded rounding implies SAE architecturally; like iced we report only the rounding mode.
        if (c.flags & CF.Er) out.rounding = (1 + (this.vexL & 3)) as 1 | 2 | 3 | 4;
        else out.suppressAllExceptions = true;
      }
    }
    void Rounding;
    return true;
  }

  private is4Byte = 0;

  private stringMem(out: Instruction, c: Cand): void {
    out.memSegment = this.seg || Reg.DS;
    out.memSizeName = c.memName;
    out.memSize = c.memSize;
  }

  /** The opcode byte (for +r forms): the byte before ModRM-less operands, i.e. the last opcode read. */
  private lastOpcode(): number {
    return this.opcodeByte;
  }
  private opcodeByte = 0;

  private setTarget(out: Instruction, c: Cand): void {
    const next = out.ip + out.length;
    const t = next + this.rel;
    const kind = out.opKinds[c.ops.length - 1 >= 0 ? indexOfBranch(out) : 0];
    if (kind === OpKind.NearBranch16) {
      out.target = t & 0xffff;
    } else if (kind === OpKind.NearBranch32) {
      out.target = t >>> 0;
    } else {
      out.target = t >>> 0;
      out.targetHi = Math.floor(t / 4294967296) >>> 0;
    }
  }

  private setRipTarget(out: Instruction): void {
    const t = out.ip + out.length + (out.memDisp | 0);
    if (this.as === 64) {
      out.memDisp = t >>> 0;
      out.memDispHi = Math.floor(t / 4294967296) >>> 0;
    } else {
      out.memDisp = t >>> 0;
      out.memDispHi = 0;
    }
  }
}

function indexOfBranch(out: Instruction): number {
  for (let i = 0; i < out.opCount; i++) {
    const k = out.opKinds[i]!;
    if (k === OpKind.NearBranch16 || k === OpKind.NearBranch32 || k === OpKind.NearBranch64) return i;
  }
  return 0;
}

function c_needsMemory(c: Cand): boolean {
  return (c.flags & CF.IgnoresMod) === 0 && c.fixed < 0;
}

/** Gathers/scatters and some AVX-512 forms #UD when registers coincide (SDM VGATHERDPS etc.). */
function uniqueRegsOk(out: Instruction, flags: number): boolean {
  const nums: number[] = [];
  const num = (r: number) => (r >= Reg.XMM0 && r < Reg.K0 ? (r - Reg.XMM0) % 32 : r);
  for (let i = 0; i < out.opCount; i++) if (out.opKinds[i] === OpKind.Register) nums.push(num(out.opRegs[i]!));
  if (out.memIndex >= Reg.XMM0 && out.memIndex < Reg.K0) nums.push(num(out.memIndex));
  if (flags & CF.UniqueRegs) {
    for (let i = 0; i < nums.length; i++) for (let j = i + 1; j < nums.length; j++) if (nums[i] === nums[j]) return false;
    return true;
  }
  for (let j = 1; j < nums.length; j++) if (nums[0] === nums[j]) return false;
  return true;
}
