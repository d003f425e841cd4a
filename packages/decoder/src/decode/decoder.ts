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

// Module-level constants: bundlers and tsx turn cross-module bindings into getter calls, and
// property loads from shared objects stay loads; const numbers compile to immediates.
const { Instruction } = I;
type Instruction = I.Instruction;
type Invalid = I.Invalid;
type OpKind = I.OpKind;
const gpr8 = R.gpr8;
const SLOTS = C.SLOTS;
const sizeCode = C.sizeCode;
const OPK_al = C.OPK.al;
const OPK_ax = C.OPK.ax;
const OPK_br16_1 = C.OPK.br16_1;
const OPK_br16_2 = C.OPK.br16_2;
const OPK_br32_1 = C.OPK.br32_1;
const OPK_br32_4 = C.OPK.br32_4;
const OPK_br64_1 = C.OPK.br64_1;
const OPK_br64_4 = C.OPK.br64_4;
const OPK_cl = C.OPK.cl;
const OPK_cr_reg = C.OPK.cr_reg;
const OPK_cs = C.OPK.cs;
const OPK_dr_reg = C.OPK.dr_reg;
const OPK_ds = C.OPK.ds;
const OPK_dx = C.OPK.dx;
const OPK_eax = C.OPK.eax;
const OPK_es = C.OPK.es;
const OPK_es_rDI = C.OPK.es_rDI;
const OPK_farbr2_2 = C.OPK.farbr2_2;
const OPK_farbr4_2 = C.OPK.farbr4_2;
const OPK_fs = C.OPK.fs;
const OPK_gs = C.OPK.gs;
const OPK_imm16 = C.OPK.imm16;
const OPK_imm32 = C.OPK.imm32;
const OPK_imm32sex64 = C.OPK.imm32sex64;
const OPK_imm4_m2z = C.OPK.imm4_m2z;
const OPK_imm64 = C.OPK.imm64;
const OPK_imm8 = C.OPK.imm8;
const OPK_imm8_const_1 = C.OPK.imm8_const_1;
const OPK_imm8sex16 = C.OPK.imm8sex16;
const OPK_imm8sex32 = C.OPK.imm8sex32;
const OPK_imm8sex64 = C.OPK.imm8sex64;
const OPK_k_or_mem = C.OPK.k_or_mem;
const OPK_k_reg = C.OPK.k_reg;
const OPK_k_rm = C.OPK.k_rm;
const OPK_k_vvvv = C.OPK.k_vvvv;
const OPK_kp1_reg = C.OPK.kp1_reg;
const OPK_mem = C.OPK.mem;
const OPK_mem_offs = C.OPK.mem_offs;
const OPK_mem_vsib32x = C.OPK.mem_vsib32x;
const OPK_mem_vsib32y = C.OPK.mem_vsib32y;
const OPK_mem_vsib32z = C.OPK.mem_vsib32z;
const OPK_mem_vsib64x = C.OPK.mem_vsib64x;
const OPK_mem_vsib64y = C.OPK.mem_vsib64y;
const OPK_mem_vsib64z = C.OPK.mem_vsib64z;
const OPK_mm_or_mem = C.OPK.mm_or_mem;
const OPK_mm_reg = C.OPK.mm_reg;
const OPK_mm_rm = C.OPK.mm_rm;
const OPK_r16_opcode = C.OPK.r16_opcode;
const OPK_r16_or_mem = C.OPK.r16_or_mem;
const OPK_r16_reg = C.OPK.r16_reg;
const OPK_r16_reg_mem = C.OPK.r16_reg_mem;
const OPK_r16_rm = C.OPK.r16_rm;
const OPK_r32_opcode = C.OPK.r32_opcode;
const OPK_r32_or_mem = C.OPK.r32_or_mem;
const OPK_r32_reg = C.OPK.r32_reg;
const OPK_r32_reg_mem = C.OPK.r32_reg_mem;
const OPK_r32_rm = C.OPK.r32_rm;
const OPK_r32_vvvv = C.OPK.r32_vvvv;
const OPK_r64_opcode = C.OPK.r64_opcode;
const OPK_r64_or_mem = C.OPK.r64_or_mem;
const OPK_r64_reg = C.OPK.r64_reg;
const OPK_r64_reg_mem = C.OPK.r64_reg_mem;
const OPK_r64_rm = C.OPK.r64_rm;
const OPK_r64_vvvv = C.OPK.r64_vvvv;
const OPK_r8_opcode = C.OPK.r8_opcode;
const OPK_r8_or_mem = C.OPK.r8_or_mem;
const OPK_r8_reg = C.OPK.r8_reg;
const OPK_rax = C.OPK.rax;
const OPK_seg_rBX_al = C.OPK.seg_rBX_al;
const OPK_seg_rDI = C.OPK.seg_rDI;
const OPK_seg_rSI = C.OPK.seg_rSI;
const OPK_seg_reg = C.OPK.seg_reg;
const OPK_sibmem = C.OPK.sibmem;
const OPK_ss = C.OPK.ss;
const OPK_st0 = C.OPK.st0;
const OPK_sti_opcode = C.OPK.sti_opcode;
const OPK_tmm_reg = C.OPK.tmm_reg;
const OPK_tmm_rm = C.OPK.tmm_rm;
const OPK_tmm_vvvv = C.OPK.tmm_vvvv;
const OPK_xbegin_2 = C.OPK.xbegin_2;
const OPK_xbegin_4 = C.OPK.xbegin_4;
const OPK_xmm_is4 = C.OPK.xmm_is4;
const OPK_xmm_is5 = C.OPK.xmm_is5;
const OPK_xmm_or_mem = C.OPK.xmm_or_mem;
const OPK_xmm_reg = C.OPK.xmm_reg;
const OPK_xmm_rm = C.OPK.xmm_rm;
const OPK_xmm_vvvv = C.OPK.xmm_vvvv;
const OPK_xmmp3_vvvv = C.OPK.xmmp3_vvvv;
const OPK_ymm_is4 = C.OPK.ymm_is4;
const OPK_ymm_is5 = C.OPK.ymm_is5;
const OPK_ymm_or_mem = C.OPK.ymm_or_mem;
const OPK_ymm_reg = C.OPK.ymm_reg;
const OPK_ymm_rm = C.OPK.ymm_rm;
const OPK_ymm_vvvv = C.OPK.ymm_vvvv;
const OPK_zmm_or_mem = C.OPK.zmm_or_mem;
const OPK_zmm_reg = C.OPK.zmm_reg;
const OPK_zmm_rm = C.OPK.zmm_rm;
const OPK_zmm_vvvv = C.OPK.zmm_vvvv;
const OPK_zmmp3_vvvv = C.OPK.zmmp3_vvvv;
const CF_Bcst = C.CF.Bcst;
const CF_D64 = C.CF.D64;
const CF_Er = C.CF.Er;
const CF_F64 = C.CF.F64;
const CF_IgnoresMod = C.CF.IgnoresMod;
const CF_K = C.CF.K;
const CF_KReq = C.CF.KReq;
const CF_Lock = C.CF.Lock;
const CF_MemDest = C.CF.MemDest;
const CF_Os64As32 = C.CF.Os64As32;
const CF_Sae = C.CF.Sae;
const CF_UniqueDest = C.CF.UniqueDest;
const CF_UniqueRegs = C.CF.UniqueRegs;
const CF_Vvvv = C.CF.Vvvv;
const CF_Z = C.CF.Z;
const KEY_AsShift = C.Key.AsShift;
const KEY_Has66 = C.Key.Has66;
const KEY_LShift = C.Key.LShift;
const KEY_Mod3 = C.Key.Mod3;
const KEY_OsD64Shift = C.Key.OsD64Shift;
const KEY_OsNo64Shift = C.Key.OsNo64Shift;
const KEY_OsNo66Shift = C.Key.OsNo66Shift;
const KEY_OsShift = C.Key.OsShift;
const KEY_PpShift = C.Key.PpShift;
const KEY_RexB = C.Key.RexB;
const KEY_W = C.Key.W;
const REG_AL = R.Reg.AL;
const REG_AX = R.Reg.AX;
const REG_BP = R.Reg.BP;
const REG_CR0 = R.Reg.CR0;
const REG_CS = R.Reg.CS;
const REG_DR0 = R.Reg.DR0;
const REG_DS = R.Reg.DS;
const REG_EAX = R.Reg.EAX;
const REG_EBP = R.Reg.EBP;
const REG_EIP = R.Reg.EIP;
const REG_ES = R.Reg.ES;
const REG_ESP = R.Reg.ESP;
const REG_FS = R.Reg.FS;
const REG_GS = R.Reg.GS;
const REG_K0 = R.Reg.K0;
const REG_MM0 = R.Reg.MM0;
const REG_RAX = R.Reg.RAX;
const REG_RBP = R.Reg.RBP;
const REG_RIP = R.Reg.RIP;
const REG_RSP = R.Reg.RSP;
const REG_SP = R.Reg.SP;
const REG_SS = R.Reg.SS;
const REG_ST0 = R.Reg.ST0;
const REG_TMM0 = R.Reg.TMM0;
const REG_XMM0 = R.Reg.XMM0;
const REG_YMM0 = R.Reg.YMM0;
const REG_ZMM0 = R.Reg.ZMM0;
const OPKIND_FarBranch16 = I.OpKind.FarBranch16;
const OPKIND_FarBranch32 = I.OpKind.FarBranch32;
const OPKIND_Immediate16 = I.OpKind.Immediate16;
const OPKIND_Immediate32 = I.OpKind.Immediate32;
const OPKIND_Immediate32to64 = I.OpKind.Immediate32to64;
const OPKIND_Immediate64 = I.OpKind.Immediate64;
const OPKIND_Immediate8 = I.OpKind.Immediate8;
const OPKIND_Immediate8_2nd = I.OpKind.Immediate8_2nd;
const OPKIND_Immediate8to16 = I.OpKind.Immediate8to16;
const OPKIND_Immediate8to32 = I.OpKind.Immediate8to32;
const OPKIND_Immediate8to64 = I.OpKind.Immediate8to64;
const OPKIND_Memory = I.OpKind.Memory;
const OPKIND_MemoryESDI = I.OpKind.MemoryESDI;
const OPKIND_MemoryESEDI = I.OpKind.MemoryESEDI;
const OPKIND_MemoryESRDI = I.OpKind.MemoryESRDI;
const OPKIND_MemorySegDI = I.OpKind.MemorySegDI;
const OPKIND_MemorySegEDI = I.OpKind.MemorySegEDI;
const OPKIND_MemorySegESI = I.OpKind.MemorySegESI;
const OPKIND_MemorySegRDI = I.OpKind.MemorySegRDI;
const OPKIND_MemorySegRSI = I.OpKind.MemorySegRSI;
const OPKIND_MemorySegSI = I.OpKind.MemorySegSI;
const OPKIND_NearBranch16 = I.OpKind.NearBranch16;
const OPKIND_NearBranch32 = I.OpKind.NearBranch32;
const OPKIND_NearBranch64 = I.OpKind.NearBranch64;
const OPKIND_Register = I.OpKind.Register;
const INVALID_EvexField = I.Invalid.EvexField;
const INVALID_Lock = I.Invalid.Lock;
const INVALID_ModRM = I.Invalid.ModRM;
const INVALID_None = I.Invalid.None;
const INVALID_NotInMode = I.Invalid.NotInMode;
const INVALID_Register = I.Invalid.Register;
const INVALID_TooLong = I.Invalid.TooLong;
const INVALID_Truncated = I.Invalid.Truncated;
const INVALID_Undefined = I.Invalid.Undefined;
const INVALID_VexField = I.Invalid.VexField;
const INVALID_VexPrefix = I.Invalid.VexPrefix;
const PREFIX_AddressSize = I.Prefix.AddressSize;
const PREFIX_Evex = I.Prefix.Evex;
const PREFIX_Lock = I.Prefix.Lock;
const PREFIX_OperandSize = I.Prefix.OperandSize;
const PREFIX_Rep = I.Prefix.Rep;
const PREFIX_Repne = I.Prefix.Repne;
const PREFIX_Rex = I.Prefix.Rex;
const PREFIX_Segment = I.Prefix.Segment;
const PREFIX_Vex = I.Prefix.Vex;
const PREFIX_Xop = I.Prefix.Xop;
const PARTS_Branch = I.Parts.Branch;
const PARTS_Evex = I.Parts.Evex;
const PARTS_Immediate = I.Parts.Immediate;
const PARTS_Memory = I.Parts.Memory;
const PARTS_Operands = I.Parts.Operands;
const SPACE_D3NOW = C.Space.D3NOW;
const SPACE_EVEX1 = C.Space.EVEX1;
const SPACE_EVEX2 = C.Space.EVEX2;
const SPACE_EVEX3 = C.Space.EVEX3;
const SPACE_EVEX5 = C.Space.EVEX5;
const SPACE_EVEX6 = C.Space.EVEX6;
const SPACE_M0F = C.Space.M0F;
const SPACE_M0F38 = C.Space.M0F38;
const SPACE_M0F3A = C.Space.M0F3A;
const SPACE_Normal = C.Space.Normal;
const SPACE_VEX1 = C.Space.VEX1;
const SPACE_VEX2 = C.Space.VEX2;
const SPACE_VEX3 = C.Space.VEX3;
const SPACE_XOP10 = C.Space.XOP10;
const SPACE_XOP8 = C.Space.XOP8;
const SPACE_XOP9 = C.Space.XOP9;


const MODE_BIT = { 16: 1, 32: 2, 64: 4 } as const;

// Legacy prefix bytes by kind (SDM vol. 2 §2.1.1), one table per mode: 40-4F are REX only in
// 64-bit mode. A lookup replaces a chain of comparisons on every instruction's first byte.
const PK_NONE = 0, PK_SEG = 1, PK_SEG_FS_GS = 2, PK_66 = 3, PK_67 = 4, PK_LOCK = 5, PK_F2 = 6, PK_F3 = 7, PK_REX = 8;
function prefixKinds(bits: 16 | 32 | 64): Uint8Array {
  const t = new Uint8Array(256);
  for (const b of [0x26, 0x2e, 0x36, 0x3e]) t[b] = PK_SEG;
  t[0x64] = t[0x65] = PK_SEG_FS_GS;
  t[0x66] = PK_66;
  t[0x67] = PK_67;
  t[0xf0] = PK_LOCK;
  t[0xf2] = PK_F2;
  t[0xf3] = PK_F3;
  if (bits === 64) for (let b = 0x40; b < 0x50; b++) t[b] = PK_REX;
  return t;
}
const PREFIX_KINDS = { 16: prefixKinds(16), 32: prefixKinds(32), 64: prefixKinds(64) } as const;

// 16-bit ModRM addressing (SDM vol. 2 table 2-1): base and index per rm.
const BX = REG_AX + 3, BP = REG_AX + 5, SI = REG_AX + 6, DI = REG_AX + 7;
const RM16_BASE = [BX, BX, BP, BP, SI, DI, BP, BX];
const RM16_INDEX = [SI, DI, SI, DI, 0, 0, 0, 0];

// Dense classes for the operand kinds most code uses (see operands()); FAST_BASE holds the
// register family base (or the fixed register) for the register classes.
const FK_NONE = 0, FK_REG = 1, FK_RM_OR_MEM = 2, FK_R8_OR_MEM = 3, FK_R8_REG = 4, FK_OPCODE_REG = 5, FK_FIXED_REG = 6,
  FK_MEM = 7, FK_IMM8 = 8, FK_IMM8SEX32 = 9, FK_IMM32 = 10;
const FAST_KIND = new Uint8Array(128);
const FAST_BASE = new Int32Array(128);
const fast = (k: number, fk: number, base = 0): void => { FAST_KIND[k] = fk; FAST_BASE[k] = base; };
fast(OPK_r16_reg, FK_REG, REG_AX); fast(OPK_r32_reg, FK_REG, REG_EAX); fast(OPK_r64_reg, FK_REG, REG_RAX);
fast(OPK_r16_or_mem, FK_RM_OR_MEM, REG_AX); fast(OPK_r32_or_mem, FK_RM_OR_MEM, REG_EAX); fast(OPK_r64_or_mem, FK_RM_OR_MEM, REG_RAX);
fast(OPK_r8_or_mem, FK_R8_OR_MEM); fast(OPK_r8_reg, FK_R8_REG);
fast(OPK_r16_opcode, FK_OPCODE_REG, REG_AX); fast(OPK_r32_opcode, FK_OPCODE_REG, REG_EAX); fast(OPK_r64_opcode, FK_OPCODE_REG, REG_RAX);
fast(OPK_al, FK_FIXED_REG, REG_AL); fast(OPK_ax, FK_FIXED_REG, REG_AX); fast(OPK_eax, FK_FIXED_REG, REG_EAX); fast(OPK_rax, FK_FIXED_REG, REG_RAX);
fast(OPK_mem, FK_MEM);
fast(OPK_imm8, FK_IMM8); fast(OPK_imm8sex32, FK_IMM8SEX32); fast(OPK_imm32, FK_IMM32);

const EVEX_SPACE = [-1, SPACE_EVEX1, SPACE_EVEX2, SPACE_EVEX3, -1, SPACE_EVEX5, SPACE_EVEX6, -1];
const VEX_SPACE = [-1, SPACE_VEX1, SPACE_VEX2, SPACE_VEX3];

export class Decoder {
  readonly bits: 16 | 32 | 64;
  /** The bytes decoded; `seek` may point the decoder at another buffer. */
  bytes: Uint8Array;
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
  private readonly prefixKind: Uint8Array;

  constructor(bits: 16 | 32 | 64, bytes: Uint8Array, ip = 0, offset = 0) {
    this.bits = bits;
    this.modeBit = MODE_BIT[bits];
    this.table = C.modeTable(bits);
    this.prefixKind = PREFIX_KINDS[bits];
    this.bytes = bytes;
    this.position = offset;
    this.ip = ip;
  }

  /** Re-points the decoder (an emulator's fetch path reuses one decoder instead of allocating). */
  seek(bytes: Uint8Array, ip: number, offset: number): void {
    this.bytes = bytes;
    this.ip = ip;
    this.position = offset;
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
    const n = out.invalid === INVALID_None ? out.length : 1;
    this.position += n;
    this.ip += n;
  }

  /** Decodes without advancing. Invalid instructions report the bytes examined as length. */
  decodeAt(out: Instruction): void {
    out.clear();
    const bits = this.bits;
    const bytes = this.bytes;
    const start = this.position;
    out.ip = this.ip;
    out.bits = bits;
    this.p = start;
    this.limit = Math.min(bytes.length, start + 15);
    this.overflow = false;
    // VEX/EVEX state is cleared only after an instruction that set it.
    if (this.vexSeen) {
      this.vexSeen = false;
      this.rR2 = this.rX2 = 0;
      this.vvvv = this.vvvvRaw = this.vexL = this.aaa = 0;
      this.evexB = this.evexZ = this.isEvex = false;
    }
    this.relSize = 0;
    this.ripRel = false;
    this.immCount = 0;

    // Legacy prefixes (§2.1.1): any order and repeats; the last of a group counts, except that
    // in 64-bit mode ES/CS/SS/DS overrides do not displace FS/GS. A REX byte counts only when
    // it is the last prefix (§2.2.1).
    let seg = 0, segPrio = 0, has66 = false, has67 = false, lock = false, mand = 0, rex = 0;
    let prefixes = 0;
    let b = 0;
    const prefixKind = this.prefixKind;
    for (;;) {
      b = this.byte();
      if (this.overflow) return this.fail(out, this.overflowReason());
      const pk = prefixKind[b]!;
      if (pk === PK_NONE) break;
      if (pk === PK_REX) {
        rex = b;
        continue;
      }
      if (pk === PK_SEG) {
        if (bits !== 64 || segPrio <= 0) seg = b === 0x26 ? REG_ES : b === 0x2e ? REG_CS : b === 0x36 ? REG_SS : REG_DS;
        prefixes |= PREFIX_Segment;
      } else if (pk === PK_SEG_FS_GS) {
        seg = b === 0x64 ? REG_FS : REG_GS;
        segPrio = 1;
        prefixes |= PREFIX_Segment;
      } else if (pk === PK_66) {
        has66 = true;
        if (mand === 0) mand = 1;
      } else if (pk === PK_67) {
        has67 = true;
      } else if (pk === PK_LOCK) {
        lock = true;
      } else if (pk === PK_F2) {
        mand = 3;
      } else {
        mand = 2;
      }
      rex = 0;
    }
    this.rexW = (rex & 8) !== 0;
    this.rR = (rex & 4) << 1;
    this.rX = (rex & 2) << 2;
    this.rB = (rex & 1) << 3;
    if (rex) prefixes |= PREFIX_Rex;
    const as: 16 | 32 | 64 = bits === 16 ? (has67 ? 32 : 16) : bits === 32 ? (has67 ? 16 : 32) : has67 ? 32 : 64;
    this.as = as;
    this.seg = seg;

    // Opcode and encoding space.
    let space: number = SPACE_Normal;
    let op = b;
    let vexPp = -1;
    if (b === 0x0f) {
      const b2 = this.byte();
      if (b2 === 0x38) { space = SPACE_M0F38; op = this.byte(); }
      else if (b2 === 0x3a) { space = SPACE_M0F3A; op = this.byte(); }
      else if (b2 === 0x0f) { space = SPACE_D3NOW; op = -1; }
      else { space = SPACE_M0F; op = b2; }
    } else if (b === 0xc5 || b === 0xc4 || b === 0x62 || b === 0x8f) {
      const b1 = this.peek();
      // In 16/32-bit mode these are LDS/LES/BOUND/POP unless ModRM.mod = 11 (§2.3.5); XOP is
      // recognised by its map field (>= 8), which POP r/m (8F /0) can never produce.
      const escape = b === 0x8f ? (b1 & 0x1f) >= 8 : bits === 64 || b1 >= 0xc0;
      if (escape && !this.overflow) {
        if (has66 || mand !== 0 || rex !== 0 || lock) {
          // VEX/XOP/EVEX after 66/F2/F3/REX/LOCK is #UD (§2.3.2); consume the escape for length.
          this.p++;
          return this.fail(out, INVALID_VexPrefix);
        }
        this.vexSeen = true;
        const r = b === 0x62 ? this.evex(out) : this.vex(b);
        if (r < 0) return this.fail(out, this.overflow ? this.overflowReason() : r === -2 ? INVALID_EvexField : INVALID_Undefined);
        space = r >> 8;
        op = r & 0xff;
        vexPp = this.vexPpOut;
        prefixes |= b === 0x62 ? PREFIX_Evex : b === 0x8f ? PREFIX_Xop : PREFIX_Vex;
      }
    }
    if (this.overflow) return this.fail(out, this.overflowReason());
    this.opcodeByte = op;

    const kind = op >= 0 ? this.table.kind[space * 256 + op]! : 2;
    if (kind === 0) return this.fail(out, INVALID_Undefined);

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
    let why: Invalid = INVALID_Undefined;
    if (space === SPACE_D3NOW) {
      // 0F 0F /r ib: the suffix byte after the operands is the opcode (AMD 3DNow! manual).
      if (mod !== 3) this.memory(1, 1);
      const suffix = this.byte();
      if (this.overflow) return this.fail(out, this.overflowReason());
      const slot = SLOTS[SPACE_D3NOW * 256 + suffix];
      if (!slot) return this.fail(out, INVALID_Undefined);
      const c = slot.cands[0]!;
      if (!(c.modes & modeBit)) return this.fail(out, INVALID_NotInMode);
      cand = c;
    } else {
      // The state word that every candidate's (mask, value) is tested against (candidates.ts, Key).
      // With EVEX.b on a register form, L'L holds the rounding mode and the vector length is 512 (§2.7.3).
      const rexW = this.rexW;
      // Plain operand size (66 and REX.W only) as a size code: 16 -> 0, 32 -> 1, 64 -> 2.
      const osCode = bits === 64 ? (rexW ? 2 : has66 ? 0 : 1) : (bits === 16) !== has66 ? 0 : 1;
      const osD64 = rexW ? 2 : has66 ? 0 : 2;
      const osNo66 = bits === 64 ? (rexW ? 2 : 1) : sizeCode(bits);
      const state = this.modrm | (mod === 3 ? KEY_Mod3 : 0) | ((1 << pp) << KEY_PpShift) | (has66 ? KEY_Has66 : 0) |
        (osCode << KEY_OsShift) | (osD64 << KEY_OsD64Shift) | ((osCode === 2 ? 1 : osCode) << KEY_OsNo64Shift) |
        (osNo66 << KEY_OsNo66Shift) | (sizeCode(as) << KEY_AsShift) | (rexW ? KEY_W : 0) |
        ((this.isEvex && this.evexB && mod === 3 ? 2 : this.vexL) << KEY_LShift) | (this.rB !== 0 ? KEY_RexB : 0);
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
    if (lock && ((flags & CF_Lock) === 0 || mod === 3 || !hasModrm)) return this.fail(out, INVALID_Lock);
    if (vexPp >= 0) {
      const bad = this.checkVex(cand);
      if (bad !== INVALID_None) return this.fail(out, bad);
    }

    out.form = cand.id;
    out.prefixes = prefixes | (lock ? PREFIX_Lock : 0) | (has66 ? PREFIX_OperandSize : 0) | (has67 ? PREFIX_AddressSize : 0) |
      (mand === 2 ? PREFIX_Rep : mand === 3 ? PREFIX_Repne : 0);
    out.segmentPrefix = seg;
    out.operandSize = this.operandSize(cand, has66) as 16 | 32 | 64;
    if (cand.flags & CF_Os64As32) out.operandSize = 32;
    out.addressSize = as;
    if (!this.operands(out, cand)) return;
    if (this.overflow) return this.fail(out, this.overflowReason());
    if ((flags & (CF_UniqueRegs | CF_UniqueDest)) !== 0 && !uniqueRegsOk(out, flags)) return this.fail(out, INVALID_Register);

    const len = this.p - start;
    out.length = len;
    if (this.relSize) this.setTarget(out, cand);
    if (this.ripRel) this.setRipTarget(out);
  }

  private vexPpOut = -1;
  private vexSeen = true;

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
      space = SPACE_VEX1;
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
        space = map === 8 ? SPACE_XOP8 : map === 9 ? SPACE_XOP9 : map === 10 ? SPACE_XOP10 : -1;
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
    let why: Invalid = INVALID_Undefined;
    for (const c of hasModrm ? slot.byReg[this.reg]! : slot.cands) {
      if (!(c.modes & this.modeBit)) why = INVALID_NotInMode;
      else if (c.mod === 1 ? mod === 3 : c.mod === 2 && mod !== 3) why = INVALID_ModRM;
    }
    return why;
  }



  private checkVex(c: Cand): Invalid {
    const flags = c.flags;
    if ((flags & CF_Vvvv) === 0 && this.vvvvRaw !== 0) return this.isEvex ? INVALID_EvexField : INVALID_VexField;
    if (!this.isEvex) return INVALID_None;
    if (this.vexL === 3 && !(this.evexB && this.mod === 3 && (flags & (CF_Er | CF_Sae)) !== 0)) return INVALID_EvexField;
    if (this.aaa === 0 ? (flags & CF_KReq) !== 0 : (flags & CF_K) === 0) return INVALID_EvexField;
    if (this.evexZ && ((flags & CF_Z) === 0 || this.aaa === 0)) return INVALID_EvexField;
    // Zeroing-masking into a memory destination is #UD (SDM vol. 2 §2.7.4... "EVEX.z with memory dest").
    if (this.evexZ && this.mod !== 3 && (flags & CF_MemDest) !== 0) return INVALID_EvexField;
    if (this.evexB) {
      if (this.mod === 3 ? (flags & (CF_Er | CF_Sae)) === 0 : (flags & CF_Bcst) === 0) return INVALID_EvexField;
    }
    return INVALID_None;
  }

  private operandSize(c: Cand, has66: boolean): number {
    const o66 = has66 && c.pp !== 1;
    if (this.bits === 64) {
      if ((c.flags & CF_F64) !== 0 || this.rexW) return 64;
      if ((c.flags & CF_D64) !== 0) return o66 ? 16 : 64;
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
    return this.limit < this.bytes.length ? INVALID_TooLong : INVALID_Truncated;
  }

  private fail(out: Instruction, why: Invalid): void {
    out.clear();
    out.invalid = why === INVALID_None ? INVALID_Undefined : why;
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
    const gbase = this.as === 64 ? REG_RAX : REG_EAX;
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
        base = this.as === 64 ? REG_RIP : REG_EIP;
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
    out.parts |= PARTS_Memory;
    out.opKinds[i] = OPKIND_Memory;
    out.memBase = this.mBase;
    out.memIndex = this.mIndex;
    out.memScale = this.mScale;
    out.memDisp = this.mDisp;
    out.memDispHi = this.mDispHi;
    out.memDispSize = this.mDispSize;
    const b = this.mBase;
    out.memSegment = this.seg || (b === REG_ESP || b === REG_EBP || b === REG_RSP || b === REG_RBP || b === REG_BP || b === REG_SP ? REG_SS : REG_DS);
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
    out.parts |= PARTS_Immediate;
    out.opKinds[i] = kind;
    if (this.immCount++ === 0) {
      out.imm = value;
      out.immHi = hi;
    } else {
      out.imm2 = value;
      if (kind === OPKIND_Immediate8) out.opKinds[i] = OPKIND_Immediate8_2nd;
    }
  }

  /** Fills operands; returns false after fail() on an invalid register encoding. */
  private operands(out: Instruction, c: Cand): boolean {
    const ops = c.ops;
    const n = ops.length;
    out.opCount = n;
    // Each group of fields written is marked so the next clear() resets only those.
    out.parts = n === 0 ? 0 : PARTS_Operands;
    const rex = (out.prefixes & PREFIX_Rex) !== 0;
    const reg = this.reg | this.rR;
    const regV = reg | this.rR2;
    const rm = this.rm | this.rB;
    const rmV = rm | (this.mod === 3 ? this.rX2 : 0);
    const as = this.as;
    const bits = this.bits;
    const kinds = out.opKinds, regs = out.opRegs;
    for (let i = 0; i < n; i++) {
      const k = ops[i]!;
      // The common operand kinds first, through a small dense switch (FAST_KIND); the rest,
      // and every check that can fail, go through the full switch below.
      const fk = FAST_KIND[k]!;
      if (fk !== FK_NONE) {
        switch (fk) {
          case FK_REG:
            if (this.rR2) break;
            kinds[i] = OPKIND_Register;
            regs[i] = FAST_BASE[k]! + reg;
            continue;
          case FK_RM_OR_MEM:
            if (this.mod === 3) { kinds[i] = OPKIND_Register; regs[i] = FAST_BASE[k]! + rm; }
            else this.setMemory(out, c, i);
            continue;
          case FK_R8_OR_MEM:
            if (this.mod === 3) { kinds[i] = OPKIND_Register; regs[i] = gpr8(rm, rex); }
            else this.setMemory(out, c, i);
            continue;
          case FK_R8_REG:
            kinds[i] = OPKIND_Register;
            regs[i] = gpr8(reg, rex);
            continue;
          case FK_OPCODE_REG:
            kinds[i] = OPKIND_Register;
            regs[i] = FAST_BASE[k]! + ((this.opcodeByte & 7) | this.rB);
            continue;
          case FK_FIXED_REG:
            kinds[i] = OPKIND_Register;
            regs[i] = FAST_BASE[k]!;
            continue;
          case FK_MEM:
            this.setMemory(out, c, i);
            continue;
          case FK_IMM8: this.imm(out, i, OPKIND_Immediate8, this.byte()); continue;
          case FK_IMM8SEX32: this.imm(out, i, OPKIND_Immediate8to32, this.s8() >>> 0); continue;
          case FK_IMM32: this.imm(out, i, OPKIND_Immediate32, this.u32()); continue;
        }
      }
      let r = -1;
      switch (k) {
        case OPK_al: r = REG_AL; break;
        case OPK_ax: r = REG_AX; break;
        case OPK_eax: r = REG_EAX; break;
        case OPK_rax: r = REG_RAX; break;
        case OPK_cl: r = REG_AL + 1; break;
        case OPK_dx: r = REG_AX + 2; break;
        case OPK_es: r = REG_ES; break;
        case OPK_cs: r = REG_CS; break;
        case OPK_ss: r = REG_SS; break;
        case OPK_ds: r = REG_DS; break;
        case OPK_fs: r = REG_FS; break;
        case OPK_gs: r = REG_GS; break;
        case OPK_st0: r = REG_ST0; break;
        case OPK_sti_opcode: r = REG_ST0 + this.rm; break;
        case OPK_r8_reg: r = gpr8(reg, rex); break;
        case OPK_r16_reg: case OPK_r16_reg_mem: r = REG_AX + reg; break;
        case OPK_r32_reg: case OPK_r32_reg_mem:
        case OPK_r64_reg: case OPK_r64_reg_mem:
          // EVEX.R' would name a 17th general register: #UD.
          if (this.rR2) { this.fail(out, INVALID_Register); return false; }
          r = (k === OPK_r32_reg || k === OPK_r32_reg_mem ? REG_EAX : REG_RAX) + reg;
          break;
        case OPK_r16_rm: r = REG_AX + rm; break;
        case OPK_r32_rm: r = REG_EAX + rm; break;
        case OPK_r64_rm: r = REG_RAX + rm; break;
        case OPK_r8_or_mem: if (this.mod === 3) r = gpr8(rm, rex); break;
        case OPK_r16_or_mem: if (this.mod === 3) r = REG_AX + rm; break;
        case OPK_r32_or_mem: if (this.mod === 3) r = REG_EAX + rm; break;
        case OPK_r64_or_mem: if (this.mod === 3) r = REG_RAX + rm; break;
        case OPK_r8_opcode: r = gpr8((this.lastOpcode() & 7) | this.rB, rex); break;
        case OPK_r16_opcode: r = REG_AX + ((this.lastOpcode() & 7) | this.rB); break;
        case OPK_r32_opcode: r = REG_EAX + ((this.lastOpcode() & 7) | this.rB); break;
        case OPK_r64_opcode: r = REG_RAX + ((this.lastOpcode() & 7) | this.rB); break;
        case OPK_r32_vvvv: r = REG_EAX + (this.vvvv & 15); break;
        case OPK_r64_vvvv: r = REG_RAX + (this.vvvv & 15); break;
        case OPK_seg_reg:
          // Segment registers 6 and 7 do not exist, and MOV CS, r/m is #UD (SDM MOV, "Protected Mode Exceptions").
          if (this.reg >= 6 || (i === 0 && this.reg === 1)) { this.fail(out, INVALID_Register); return false; }
          r = REG_ES + this.reg;
          break;
        case OPK_cr_reg:
          if (!(reg === 0 || reg === 2 || reg === 3 || reg === 4 || reg === 8)) { this.fail(out, INVALID_Register); return false; }
          r = REG_CR0 + reg;
          break;
        case OPK_dr_reg:
          if (reg > 7) { this.fail(out, INVALID_Register); return false; }
          r = REG_DR0 + reg;
          break;
        case OPK_mm_reg: r = REG_MM0 + this.reg; break;
        case OPK_mm_rm: r = REG_MM0 + this.rm; break;
        case OPK_mm_or_mem: if (this.mod === 3) r = REG_MM0 + this.rm; break;
        case OPK_k_reg: case OPK_kp1_reg:
          // There are only k0-k7: a set VEX/EVEX.R (or R') is #UD.
          if (this.rR || this.rR2) { this.fail(out, INVALID_Register); return false; }
          r = REG_K0 + this.reg;
          break;
        case OPK_k_rm: r = REG_K0 + this.rm; break;
        case OPK_k_or_mem: if (this.mod === 3) r = REG_K0 + this.rm; break;
        case OPK_k_vvvv:
          if (this.vvvv > 7) { this.fail(out, INVALID_Register); return false; }
          r = REG_K0 + this.vvvv;
          break;
        // There are only tmm0-tmm7: VEX.R, VEX.B or vvvv > 7 naming a ninth tile is #UD.
        case OPK_tmm_reg: if (this.rR) { this.fail(out, INVALID_Register); return false; } r = REG_TMM0 + this.reg; break;
        case OPK_tmm_rm: if (this.rB) { this.fail(out, INVALID_Register); return false; } r = REG_TMM0 + this.rm; break;
        case OPK_tmm_vvvv: if (this.vvvv > 7) { this.fail(out, INVALID_Register); return false; } r = REG_TMM0 + this.vvvv; break;
        case OPK_xmm_reg: r = REG_XMM0 + regV; break;
        case OPK_ymm_reg: r = REG_YMM0 + regV; break;
        case OPK_zmm_reg: r = REG_ZMM0 + regV; break;
        case OPK_xmm_rm: r = REG_XMM0 + rmV; break;
        case OPK_ymm_rm: r = REG_YMM0 + rmV; break;
        case OPK_zmm_rm: r = REG_ZMM0 + rmV; break;
        case OPK_xmm_or_mem: if (this.mod === 3) r = REG_XMM0 + rmV; break;
        case OPK_ymm_or_mem: if (this.mod === 3) r = REG_YMM0 + rmV; break;
        case OPK_zmm_or_mem: if (this.mod === 3) r = REG_ZMM0 + rmV; break;
        case OPK_xmm_vvvv: case OPK_xmmp3_vvvv: r = REG_XMM0 + this.vvvv; break;
        case OPK_ymm_vvvv: r = REG_YMM0 + this.vvvv; break;
        case OPK_zmm_vvvv: case OPK_zmmp3_vvvv: r = REG_ZMM0 + this.vvvv; break;
        case OPK_xmm_is4: case OPK_xmm_is5: case OPK_ymm_is4: case OPK_ymm_is5: {
          const ib = this.byte();
          this.is4Byte = ib;
          const num = bits === 64 ? ib >> 4 : (ib >> 4) & 7;
          r = (k === OPK_xmm_is4 || k === OPK_xmm_is5 ? REG_XMM0 : REG_YMM0) + num;
          break;
        }
        case OPK_imm4_m2z: this.imm(out, i, OPKIND_Immediate8, this.is4Byte & 15); continue;
        case OPK_imm8: this.imm(out, i, OPKIND_Immediate8, this.byte()); continue;
        case OPK_imm8_const_1: this.imm(out, i, OPKIND_Immediate8, 1); continue;
        case OPK_imm16: this.imm(out, i, OPKIND_Immediate16, this.u16()); continue;
        case OPK_imm32: this.imm(out, i, OPKIND_Immediate32, this.u32()); continue;
        case OPK_imm64: { const lo = this.u32(); this.imm(out, i, OPKIND_Immediate64, lo, this.u32()); continue; }
        case OPK_imm8sex16: this.imm(out, i, OPKIND_Immediate8to16, this.s8() & 0xffff); continue;
        case OPK_imm8sex32: this.imm(out, i, OPKIND_Immediate8to32, this.s8() >>> 0); continue;
        case OPK_imm8sex64: { const v = this.s8(); this.imm(out, i, OPKIND_Immediate8to64, v >>> 0, v < 0 ? 0xffffffff : 0); continue; }
        case OPK_imm32sex64: { const v = this.u32() | 0; this.imm(out, i, OPKIND_Immediate32to64, v >>> 0, v < 0 ? 0xffffffff : 0); continue; }
        case OPK_br16_1: case OPK_br32_1: case OPK_br64_1:
          this.rel = this.s8(); this.relSize = 1; out.parts |= PARTS_Branch;
          kinds[i] = k === OPK_br16_1 ? OPKIND_NearBranch16 : k === OPK_br32_1 ? OPKIND_NearBranch32 : OPKIND_NearBranch64;
          continue;
        case OPK_br16_2: out.parts |= PARTS_Branch; this.rel = (this.u16() << 16) >> 16; this.relSize = 2; kinds[i] = OPKIND_NearBranch16; continue;
        case OPK_br32_4: out.parts |= PARTS_Branch; this.rel = this.u32() | 0; this.relSize = 4; kinds[i] = OPKIND_NearBranch32; continue;
        case OPK_br64_4: out.parts |= PARTS_Branch; this.rel = this.u32() | 0; this.relSize = 4; kinds[i] = OPKIND_NearBranch64; continue;
        case OPK_xbegin_2: case OPK_xbegin_4:
          this.rel = k === OPK_xbegin_2 ? (this.u16() << 16) >> 16 : this.u32() | 0;
          this.relSize = k === OPK_xbegin_2 ? 2 : 4;
          out.parts |= PARTS_Branch;
          // XBEGIN's target is an EIP/RIP value even with a 16-bit displacement (iced agrees).
          kinds[i] = bits === 64 ? OPKIND_NearBranch64 : OPKIND_NearBranch32;
          continue;
        case OPK_farbr2_2: out.parts |= PARTS_Branch; out.target = this.u16(); out.farSelector = this.u16(); kinds[i] = OPKIND_FarBranch16; continue;
        case OPK_farbr4_2: out.parts |= PARTS_Branch; out.target = this.u32(); out.farSelector = this.u16(); kinds[i] = OPKIND_FarBranch32; continue;
        case OPK_mem: case OPK_sibmem:
          if (k === OPK_sibmem && !this.mSib) { this.fail(out, INVALID_ModRM); return false; }
          this.setMemory(out, c, i);
          continue;
        case OPK_mem_vsib32x: case OPK_mem_vsib32y: case OPK_mem_vsib32z:
        case OPK_mem_vsib64x: case OPK_mem_vsib64y: case OPK_mem_vsib64z: {
          // VSIB (§2.3.12): SIB required; its index names a vector register.
          if (this.as === 16 || !this.mSib) { this.fail(out, INVALID_ModRM); return false; }
          this.setMemory(out, c, i);
          const vi = this.mSibIndex | (this.isEvex ? ((this.vvvvRaw & 16) && bits === 64 ? 16 : 0) : 0);
          const vbase = k === OPK_mem_vsib32x || k === OPK_mem_vsib64x ? REG_XMM0 : k === OPK_mem_vsib32y || k === OPK_mem_vsib64y ? REG_YMM0 : REG_ZMM0;
          out.memIndex = vbase + vi;
          continue;
        }
        case OPK_mem_offs: {
          out.parts |= PARTS_Memory;
          kinds[i] = OPKIND_Memory;
          if (as === 64) { out.memDisp = this.u32(); out.memDispHi = this.u32(); out.memDispSize = 8; }
          else if (as === 32) { out.memDisp = this.u32(); out.memDispSize = 4; }
          else { out.memDisp = this.u16(); out.memDispSize = 2; }
          out.memSegment = this.seg || REG_DS;
          out.memSizeName = c.memName;
          out.memSize = c.memSize;
          continue;
        }
        case OPK_seg_rSI:
          kinds[i] = as === 16 ? OPKIND_MemorySegSI : as === 32 ? OPKIND_MemorySegESI : OPKIND_MemorySegRSI;
          this.stringMem(out, c);
          continue;
        case OPK_seg_rDI:
          kinds[i] = as === 16 ? OPKIND_MemorySegDI : as === 32 ? OPKIND_MemorySegEDI : OPKIND_MemorySegRDI;
          this.stringMem(out, c);
          continue;
        case OPK_es_rDI:
          kinds[i] = as === 16 ? OPKIND_MemoryESDI : as === 32 ? OPKIND_MemoryESEDI : OPKIND_MemoryESRDI;
          out.parts |= PARTS_Memory;
          if (!out.memSizeName) { out.memSizeName = c.memName; out.memSize = c.memSize; }
          continue;
        case OPK_seg_rBX_al:
          kinds[i] = OPKIND_Memory;
          out.memBase = as === 16 ? REG_AX + 3 : as === 32 ? REG_EAX + 3 : REG_RAX + 3;
          out.memIndex = REG_AL;
          this.stringMem(out, c);
          continue;
      }
      if (r < 0) {
        this.setMemory(out, c, i);
      } else {
        kinds[i] = OPKIND_Register;
        regs[i] = r;
      }
    }
    if (this.isEvex) {
      out.parts |= PARTS_Evex;
      out.opmask = this.aaa ? REG_K0 + this.aaa : 0;
      out.zeroing = this.evexZ;
      if (this.evexB && this.mod === 3) {
        // Embedded rounding implies SAE architecturally; like iced we report only the rounding mode.
        if (c.flags & CF_Er) out.rounding = (1 + (this.vexL & 3)) as 1 | 2 | 3 | 4;
        else out.suppressAllExceptions = true;
      }
    }
    return true;
  }

  private is4Byte = 0;

  private stringMem(out: Instruction, c: Cand): void {
    out.parts |= PARTS_Memory;
    out.memSegment = this.seg || REG_DS;
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
    if (kind === OPKIND_NearBranch16) {
      out.target = t & 0xffff;
    } else if (kind === OPKIND_NearBranch32) {
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
    if (k === OPKIND_NearBranch16 || k === OPKIND_NearBranch32 || k === OPKIND_NearBranch64) return i;
  }
  return 0;
}

function c_needsMemory(c: Cand): boolean {
  return (c.flags & CF_IgnoresMod) === 0 && c.fixed < 0;
}

/** Gathers/scatters and some AVX-512 forms #UD when registers coincide (SDM VGATHERDPS etc.). */
function uniqueRegsOk(out: Instruction, flags: number): boolean {
  const nums: number[] = [];
  const num = (r: number) => (r >= REG_XMM0 && r < REG_K0 ? (r - REG_XMM0) % 32 : r);
  for (let i = 0; i < out.opCount; i++) if (out.opKinds[i] === OPKIND_Register) nums.push(num(out.opRegs[i]!));
  if (out.memIndex >= REG_XMM0 && out.memIndex < REG_K0) nums.push(num(out.memIndex));
  if (flags & CF_UniqueRegs) {
    for (let i = 0; i < nums.length; i++) for (let j = i + 1; j < nums.length; j++) if (nums[i] === nums[j]) return false;
    return true;
  }
  for (let j = 1; j < nums.length; j++) if (nums[0] === nums[j]) return false;
  return true;
}
