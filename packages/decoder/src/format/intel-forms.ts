// Per-form facts the Intel formatter needs beyond "mnemonic + decoded operands", computed once
// at load from the instruction table. Each rule mirrors one annotation kind of iced-x86 1.21's
// Intel formatter (the `intel:` lines of its generator's InstructionDefs.txt), so the output
// matches iced-x86 text for text; test/format-examples.test.ts checks every form's mnemonic.
import type { Form } from '../table/form';
import { FORMS } from '../table/lookup';
import { Reg } from '../table/registers';
import { broadcastDecorator, memoryKeyword } from './intel-names';

/** How the printed operand list / prefixes are derived from the decoded instruction. */
export const Kind = {
  Normal: 0,
  /** "data16/32/64" prefix when the form's operand size differs from the code size (not o32 in 64-bit code). */
  OpSize: 1,
  /** Same, but o32 in 64-bit code is also marked (near branches, RET). */
  OpSizeBranch: 2,
  /** "addr16/32/64" prefix when the form's address size differs from the code size (MONITOR, VIA PadLock). */
  AddrSize: 3,
  /** LOOPcc: both operand-size and address-size (rCX) marks. */
  Loop: 4,
  /** MOV AL/AX/EAX/RAX, moffs: address-size mark taken from the moffs width. */
  Moffs: 5,
  /** LODS/SCAS: the register operand is implied by the mnemonic and not printed. */
  DropFirst: 6,
  /** STOS: likewise for the trailing register. */
  DropLast: 7,
  /** FADD ST(0), ST(i) → "fadd st, st(i)". */
  St0First: 8,
  /** FADD ST(i), ST(0) → "fadd st(i), st". */
  St0Second: 9,
  /** FADD m32fp / FLD ST(i) → "fadd st, dword ptr [..]": ST prepended. */
  AddStFirst: 10,
  /** FST m32fp / FST ST(i) → "fst dword ptr [..], st": ST appended. */
  AddStLast: 11,
  /** NOP (90) outside its own operand size prints as "xchg rAX, rAX". */
  Nop: 12,
  /** MASKMOVQ/MASKMOVDQU: the implicit seg:[rDI] is not printed; a segment override becomes a third operand. */
  MaskMov: 13,
  /** VMRUN/CLZERO/SKINIT...: one implicit register operand printed. */
  FixedReg: 14,
  /** INVLPGA: "invlpga rAX, ecx". */
  Invlpga: 15,
  /** EVEX gather/scatter: the opmask is printed as its own operand, not as {k}. */
  OpmaskOperand: 16,
  /** Selector loads (LLDT r32/m16...): a GPR operand is printed at 16 bits. */
  Reg16: 17,
  /** PEXTRW r64... : a 64-bit GPR operand is printed at 32 bits. */
  Reg32: 18,
  /** FLDENV/FSAVE...: memory size shown only when the environment size differs from the code size. */
  FpuEnv: 19,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** Bits of IntelForm.flags. */
export const FF = {
  /** "far" after the mnemonic. */
  Far: 1,
  /** F2 prints as "bnd" (MPX branch). */
  Bnd: 2,
  /** CS/DS prefixes print as branch hints (Jcc). */
  JccHint: 4,
  /** Never print a memory-size keyword (INVLPG, BNDCL...). */
  NoMemSize: 8,
  /** XLAT: the AL index is implied and not printed. */
  IgnoreIndex: 16,
  /** F3 prints as "rep"/"repe" (string ops, VIA PadLock, and "rep ret"). */
  ShowRep: 32,
  /** F2 prints as "repne". */
  ShowRepne: 64,
  /** F3 reads "repe" rather than "rep" (CMPS/SCAS). */
  Repe: 128,
  /** DS prefix prints as "notrack" (indirect JMP/CALL). */
  Notrack: 256,
  /** The segment override has no effect and is never printed (LEA, BNDMK...). */
  IgnoresSegment: 512,
  /** A segment override is printed as a mnemonic prefix (implicit DS:[rAX] operand). */
  SegPrefixDs: 1024,
  /** XCHG: F2 with a memory operand prints as "xacquire" even without LOCK. */
  Xchg: 2048,
  /** XCHG/MOV to memory: F3 prints as "xrelease" even without LOCK. */
  XreleasePlain: 4096,
  /** CMPXCHG16B: never xacquire/xrelease. */
  Cmpxchg16b: 8192,
  /** RETF with REX.W: always "data64". */
  OpSize64: 16384,
  /** Embedded rounding is implied and not printed (iced-x86 hides it for these). */
  HideRounding: 32768,
  /** MPX bound-table ops: the index register prints without a scale. */
  NoScale: 65536,
  /** VIA PadLock with its mandatory F3: that F3 is also iced-x86's REP, so "rep" always shows. */
  AlwaysRep: 131072,
} as const;

export interface IntelForm {
  /** Printed mnemonic (lowercase). */
  readonly mnemonic: string;
  readonly mnemonicUpper: string;
  readonly kind: Kind;
  /** Operand or address size in bits that Kind compares against the code size. */
  readonly size: number;
  /** Second size (LOOP's address size, NOP's allowed code sizes as a bit set of 16/32/64). */
  readonly size2: number;
  /** Fixed register (FixedReg, Nop, Invlpga kinds). */
  readonly reg: number;
  readonly flags: number;
  /** Keyword for the memory operand ('dword ptr') or '' for none. */
  readonly memKeyword: string;
  /** Keyword and decorator used when EVEX embedded broadcast is in effect. */
  readonly bcstKeyword: string;
  readonly bcstDecorator: string;
}

// Printed mnemonics that differ from the table's (iced-x86 Mnemonic) name. Keyed by mnemonic.
const MNEMONIC_OVERRIDES: Readonly<Record<string, string>> = {
  wait: 'fwait',
  sal: 'shl', // the Intel/XED convention: /6 is an alias of SHL
  retf: 'ret', // printed "ret far"
  xlatb: 'xlat', // the operand is shown: "xlat byte ptr [ebx]"
  reservednop: 'nop',
  // CMPccXADD: iced's formatter spells the condition the way it does for Jcc/SETcc.
  cmpnbxadd: 'cmpaexadd',
  cmpzxadd: 'cmpexadd',
  cmpnzxadd: 'cmpnexadd',
  cmpnbexadd: 'cmpaxadd',
  cmpnlxadd: 'cmpgexadd',
  cmpnlexadd: 'cmpgxadd',
};

// Keyed by form name where the mnemonic alone is ambiguous.
const NAME_MNEMONIC_OVERRIDES: Readonly<Record<string, string>> = {
  Prefetch_m8: 'prefetch_exclusive', // AMD 0F 0D /0
  Prefetchreserved4_m8: 'prefetch_reserved',
  Prefetchreserved5_m8: 'prefetch_reserved',
  Prefetchreserved6_m8: 'prefetch_reserved',
  Prefetchreserved7_m8: 'prefetch_reserved',
};

const set = (s: string): ReadonlySet<string> => new Set(s.split(/\s+/).filter(Boolean));

// x87 forms that print an explicit "st" the SDM leaves implied.
const ST_FIRST_MNEMONICS = set(`fadd fmul fcom fcomp fsub fsubr fdiv fdivr
  fiadd fimul ficom ficomp fisub fisubr fidiv fidivr fld fild fbld`);
const ST_LAST_MNEMONICS = set('fst fstp fist fistp fisttp fbstp fstpnce');
const FPU_ENV_MNEMONICS = set('fldenv fnstenv fstenv frstor fnsave fsave');
const NO_MEM_SIZE_MNEMONICS = set('invlpg bndldx bndcl bndcu bndstx bndmk bndcn cldemote');
const IGNORES_SEGMENT_MNEMONICS = set('lea bndcl bndcu bndmk bndcn');
/** Implicit register is rAX sized by the address size. */
const RAX_BY_ASZ_MNEMONICS = set('vmrun vmload vmsave clzero pvalidate invlpgb');
const SEG_PREFIX_DS_MNEMONICS = set('monitor monitorx clzero umonitor');
const REG16_NAMES = set(`Arpl_rm16_r16 Arpl_r32m16_r32 Mov_Sreg_r32m16 Mov_Sreg_r64m16
  Lldt_r32m16 Lldt_r64m16 Ltr_r32m16 Ltr_r64m16 Verr_r32m16 Verr_r64m16 Verw_r32m16 Verw_r64m16
  Lmsw_r32m16 Lmsw_r64m16`);
// Forms whose 64-bit GPR operand only ever carries 32 (or fewer) significant bits.
const REG32_MNEMONICS = set(`movmskps vmovmskps movmskpd vmovmskpd tpause umwait pinsrw vpinsrw
  pextrw vpextrw pmovmskb vpmovmskb pextrb vpextrb extractps vextractps pinsrb vpinsrb vmovw`);
const XRELEASE_PLAIN_NAMES = set(`Xchg_rm8_r8 Xchg_rm16_r16 Xchg_rm32_r32 Xchg_rm64_r64
  Mov_rm8_r8 Mov_rm16_r16 Mov_rm32_r32 Mov_rm64_r64
  Mov_rm8_imm8 Mov_rm16_imm16 Mov_rm32_imm32 Mov_rm64_imm32`);
const HIDE_ROUNDING_NAMES = set(`EVEX_Vcvtsi2sd_xmm_xmm_rm32_er EVEX_Vcvtusi2sd_xmm_xmm_rm32_er
  EVEX_Vcvtdq2pd_zmm_k1z_ymmm256b32_er EVEX_Vcvtudq2pd_zmm_k1z_ymmm256b32_er`);
const NOTRACK_NAMES = set('Jmp_rm16 Jmp_rm32 Jmp_rm64 Call_rm16 Call_rm32 Call_rm64');
const FAR_INDIRECT_NAMES = set('Call_m1616 Call_m1632 Call_m1664 Jmp_m1616 Jmp_m1632 Jmp_m1664');
const SEG_REG_OPS = set('es cs ss ds fs gs');

const isRegister64 = (k: string): boolean => k.startsWith('r64_');

function classify(f: Form): { kind: Kind; size: number; size2: number; reg: number; flags: number } {
  const legacy = f.enc === 'legacy';
  const normalMap = legacy && f.map === 'normal';
  const op = f.op;
  const ops = f.ops;
  const m = f.mnemonic;
  const osz = f.osz ?? 64;
  const asz = f.asz ?? 64;
  let flags = 0;
  if (f.flags?.includes('bnd')) flags |= FF.Bnd;
  if (NOTRACK_NAMES.has(f.name)) flags |= FF.Notrack;
  if (NO_MEM_SIZE_MNEMONICS.has(m)) flags |= FF.NoMemSize;
  if (IGNORES_SEGMENT_MNEMONICS.has(m)) flags |= FF.IgnoresSegment;
  if (m === 'bndldx' || m === 'bndstx') flags |= FF.NoScale;
  if (SEG_PREFIX_DS_MNEMONICS.has(m)) flags |= FF.SegPrefixDs;
  if (m === 'xchg') flags |= FF.Xchg;
  if (XRELEASE_PLAIN_NAMES.has(f.name)) flags |= FF.XreleasePlain;
  if (f.name === 'Cmpxchg16b_m128') flags |= FF.Cmpxchg16b;
  if (HIDE_ROUNDING_NAMES.has(f.name)) flags |= FF.HideRounding;
  if (FAR_INDIRECT_NAMES.has(f.name)) flags |= FF.Far;

  const isStringOp = ops.includes('es_rDI') || (ops.includes('seg_rSI') && legacy);
  const isPadlock = legacy && f.map === '0F' && f.opLen === 2 && (op >> 8 === 0xa6 || op >> 8 === 0xa7);
  if (isStringOp || isPadlock) flags |= FF.ShowRep | FF.ShowRepne;
  if (isPadlock && f.pp === 'F3') flags |= FF.AlwaysRep;
  if (m.startsWith('cmps') || m.startsWith('scas')) flags |= FF.Repe;
  if (normalMap && op === 0xc3) flags |= FF.ShowRep; // "rep ret", the AMD branch-predictor idiom

  const r = (kind: Kind, size = 0, size2 = 0, reg = 0) => ({ kind, size, size2, reg, flags });

  if (normalMap) {
    if (op >= 0x70 && op <= 0x7f) return (flags |= FF.JccHint), r(Kind.OpSizeBranch, osz);
    if (op >= 0xe0 && op <= 0xe2) return r(Kind.Loop, osz, asz);
    if (op === 0xe3 || op === 0xeb || op === 0x68 || op === 0x6a || op === 0xc8 || op === 0xc9) return r(Kind.OpSize, osz);
    if (op === 0xe8 || op === 0xe9 || ((op === 0xc2 || op === 0xc3) && osz !== 64)) return r(Kind.OpSizeBranch, osz);
    if (op === 0x9a || op === 0xea) return (flags |= FF.Far), r(Kind.OpSize, osz);
    if (op === 0xca || op === 0xcb) {
      flags |= FF.Far;
      if (osz === 64) return (flags |= FF.OpSize64), r(Kind.Normal);
      return r(Kind.OpSize, osz);
    }
    if (op >= 0xac && op <= 0xaf) return r(Kind.DropFirst);
    if (op === 0xaa || op === 0xab) return r(Kind.DropLast);
    if (op === 0x90 && f.flags?.includes('nop')) {
      const allowed = osz === 16 ? 16 : osz === 32 ? 32 | 64 : 0;
      return r(Kind.Nop, 0, allowed, osz === 16 ? Reg.AX : osz === 32 ? Reg.EAX : Reg.RAX);
    }
    if (m === 'xlatb') return (flags |= FF.IgnoreIndex), r(Kind.Normal);
  }
  if (legacy && f.map === '0F' && f.opLen !== 2 && op >= 0x80 && op <= 0x8f) return (flags |= FF.JccHint), r(Kind.OpSizeBranch, osz);
  if (legacy && ops.length === 1 && SEG_REG_OPS.has(ops[0]!) && (m === 'push' || m === 'pop')) return r(Kind.OpSize, osz);
  if (ops.includes('mem_offs')) return r(Kind.Moffs);

  const raxByAsz = asz === 16 ? Reg.AX : asz === 32 ? Reg.EAX : Reg.RAX;
  if (RAX_BY_ASZ_MNEMONICS.has(m)) return r(Kind.FixedReg, 0, 0, raxByAsz);
  if (m === 'skinit') return r(Kind.FixedReg, 0, 0, Reg.EAX);
  if (m === 'invlpga') return r(Kind.Invlpga, 0, 0, raxByAsz);
  if (m === 'monitor' || m === 'monitorx' || isPadlock) return r(Kind.AddrSize, asz);

  if (ops[0] === 'seg_rDI') return r(Kind.MaskMov);
  if (f.enc === 'evex' && ops.some((k) => k.startsWith('mem_vsib'))) return r(Kind.OpmaskOperand);
  if (REG16_NAMES.has(f.name)) return r(Kind.Reg16);
  if (REG32_MNEMONICS.has(m) && ops.some(isRegister64)) return r(Kind.Reg32);
  if (FPU_ENV_MNEMONICS.has(m)) return r(Kind.FpuEnv, 0, osz === 16 ? 16 : 32 | 64);

  if (ops.length === 2 && ops[0] === 'st0' && ops[1] === 'sti_opcode') return r(Kind.St0First);
  if (ops.length === 2 && ops[0] === 'sti_opcode' && ops[1] === 'st0') return r(Kind.St0Second);
  if (ops.length === 1 && (ops[0] === 'mem' || ops[0] === 'sti_opcode')) {
    if (ST_FIRST_MNEMONICS.has(m)) return r(Kind.AddStFirst);
    if (ST_LAST_MNEMONICS.has(m)) return r(Kind.AddStLast);
  }
  return r(Kind.Normal);
}

function build(): (IntelForm | undefined)[] {
  const out: (IntelForm | undefined)[] = [];
  for (const f of FORMS) {
    const c = classify(f);
    const mnemonic = NAME_MNEMONIC_OVERRIDES[f.name] ?? MNEMONIC_OVERRIDES[f.mnemonic] ?? f.mnemonic;
    const kw = memoryKeyword(f.mem);
    out[f.id] = {
      mnemonic,
      mnemonicUpper: mnemonic.toUpperCase(),
      ...c,
      memKeyword: kw,
      bcstKeyword: f.bcst ? memoryKeyword(f.bcst) : kw,
      bcstDecorator: broadcastDecorator(f.bcst),
    };
  }
  return out;
}

/** Indexed by form id. */
export const INTEL_FORMS: readonly (IntelForm | undefined)[] = build();
