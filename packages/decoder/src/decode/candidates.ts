// Turns the instruction table into the decoder's lookup structure: for each opcode "slot"
// (encoding space + opcode byte) the list of forms that may own it, with each form's
// conditions pre-digested into small integers, ordered so that the first form whose
// conditions hold is the one the processor (and iced-x86's Intel decoder) picks.
import type { Form, OperandKind } from '../table/form';
import { FORMS, memorySizeBytes } from '../table/lookup';

/** Encoding spaces: legacy maps, 3DNow! (keyed by suffix byte), VEX maps, EVEX maps, XOP maps. */
export const Space = {
  Normal: 0, M0F: 1, M0F38: 2, M0F3A: 3, D3NOW: 4,
  VEX1: 5, VEX2: 6, VEX3: 7,
  EVEX1: 8, EVEX2: 9, EVEX3: 10, EVEX5: 11, EVEX6: 12,
  XOP8: 13, XOP9: 14, XOP10: 15,
} as const;
export const SPACE_COUNT = 16;

/** Operand kinds as small integers for the operand decoder's switch. */
export const OPK: Record<OperandKind, number> = {
  al: 1, ax: 2, eax: 3, rax: 4, cl: 5, dx: 6, es: 7, cs: 8, ss: 9, ds: 10, fs: 11, gs: 12, st0: 13,
  br16_1: 14, br16_2: 15, br32_1: 16, br32_4: 17, br64_1: 18, br64_4: 19, xbegin_2: 20, xbegin_4: 21,
  farbr2_2: 22, farbr4_2: 23,
  cr_reg: 24, dr_reg: 25, seg_reg: 26,
  es_rDI: 27, seg_rDI: 28, seg_rSI: 29, seg_rBX_al: 30,
  imm16: 31, imm32: 32, imm32sex64: 33, imm4_m2z: 34, imm64: 35, imm8: 36, imm8_const_1: 37,
  imm8sex16: 38, imm8sex32: 39, imm8sex64: 40,
  mem: 41, mem_offs: 42, sibmem: 43,
  mem_vsib32x: 44, mem_vsib32y: 45, mem_vsib32z: 46, mem_vsib64x: 47, mem_vsib64y: 48, mem_vsib64z: 49,
  k_or_mem: 50, k_reg: 51, k_rm: 52, k_vvvv: 53, kp1_reg: 54,
  mm_or_mem: 55, mm_reg: 56, mm_rm: 57,
  r8_opcode: 58, r8_or_mem: 59, r8_reg: 60,
  r16_opcode: 61, r16_or_mem: 62, r16_reg: 63, r16_reg_mem: 64, r16_rm: 65,
  r32_opcode: 66, r32_or_mem: 67, r32_reg: 68, r32_reg_mem: 69, r32_rm: 70, r32_vvvv: 71,
  r64_opcode: 72, r64_or_mem: 73, r64_reg: 74, r64_reg_mem: 75, r64_rm: 76, r64_vvvv: 77,
  sti_opcode: 78,
  tmm_reg: 79, tmm_rm: 80, tmm_vvvv: 81,
  xmm_is4: 82, xmm_is5: 83, xmm_or_mem: 84, xmm_reg: 85, xmm_rm: 86, xmm_vvvv: 87, xmmp3_vvvv: 88,
  ymm_is4: 89, ymm_is5: 90, ymm_or_mem: 91, ymm_reg: 92, ymm_rm: 93, ymm_vvvv: 94,
  zmm_or_mem: 95, zmm_reg: 96, zmm_rm: 97, zmm_vvvv: 98, zmmp3_vvvv: 99,
};

const MEM_ONLY = new Set<OperandKind>(['mem', 'sibmem', 'mem_vsib32x', 'mem_vsib32y', 'mem_vsib32z', 'mem_vsib64x', 'mem_vsib64y', 'mem_vsib64z']);
const RM_ONLY = new Set<OperandKind>(['r16_rm', 'r32_rm', 'r64_rm', 'mm_rm', 'xmm_rm', 'ymm_rm', 'zmm_rm', 'k_rm', 'tmm_rm']);
const USES_MODRM = new Set<OperandKind>([
  ...MEM_ONLY, ...RM_ONLY,
  'k_or_mem', 'mm_or_mem', 'xmm_or_mem', 'ymm_or_mem', 'zmm_or_mem',
  'r8_or_mem', 'r16_or_mem', 'r32_or_mem', 'r64_or_mem',
  'r8_reg', 'r16_reg', 'r32_reg', 'r64_reg', 'r16_reg_mem', 'r32_reg_mem', 'r64_reg_mem',
  'k_reg', 'kp1_reg', 'mm_reg', 'xmm_reg', 'ymm_reg', 'zmm_reg', 'tmm_reg',
  'seg_reg', 'cr_reg', 'dr_reg',
]);
const VVVV = new Set<OperandKind>(['r32_vvvv', 'r64_vvvv', 'k_vvvv', 'xmm_vvvv', 'xmmp3_vvvv', 'ymm_vvvv', 'zmm_vvvv', 'zmmp3_vvvv', 'tmm_vvvv']);
const OPCODE_REG = new Set<OperandKind>(['r8_opcode', 'r16_opcode', 'r32_opcode', 'r64_opcode']);
const VSIB = new Set<OperandKind>(['mem_vsib32x', 'mem_vsib32y', 'mem_vsib32z', 'mem_vsib64x', 'mem_vsib64y', 'mem_vsib64z']);

/** Bits of Cand.flags. */
export const CF = {
  Lock: 1, D64: 2, F64: 4, IgnoresMod: 8, No66: 16, Nfx: 32, Nop90: 64,
  K: 128, KReq: 256, Z: 512, Er: 1024, Sae: 2048, Bcst: 4096,
  Vvvv: 8192, Vsib: 16384, UniqueRegs: 32768, UniqueDest: 65536, Is4: 131072,
  OpcodeReg: 262144, WIg32: 524288,
  /** An o32 form that also takes REX.W, because no o64 form shares its encoding (IN, OUT, FNSAVE...). */
  Os64As32: 1048576,
  /** The first operand may be memory (a store). */
  MemDest: 2097152,
} as const;

/**
 * Departures from the opcode strings in the table, for decoding (each checked against iced-x86
 * and documented in table/README.md): the VIA PadLock groups 0F A6 / 0F A7 are listed with a
 * fixed ModRM (C0, C8, ...) but the processor decodes them by ModRM.reg alone (mod = 11), and
 * MONTMUL (F3 0F A6 C0) decodes only with 32-bit addressing.
 */
const MONTMUL_NOT_A32 = (f: Form): boolean => f.enc === 'legacy' && f.map === '0F' && f.opLen === 2 && f.op === 0xa6c0 && f.asz !== 32;
const RM_IGNORED = (f: Form): boolean => f.enc === 'legacy' && f.map === '0F' && f.opLen === 2 && (f.op >> 8 === 0xa6 || f.op >> 8 === 0xa7);

export interface Cand {
  readonly id: number;
  readonly form: Form;
  /** Bit 0: 16-bit, bit 1: 32-bit, bit 2: 64-bit. */
  readonly modes: number;
  /** -1: any (legacy, prefixes are ordinary); 0: none; 1: 66; 2: F3; 3: F2. */
  readonly pp: number;
  /** Required ModRM.reg, or -1. */
  readonly reg: number;
  /** Required ModRM.rm (with mod = 3), or -1. */
  readonly rm: number;
  /** opLen 2: the second byte is a fixed ModRM (mask 0xFF, or 0xF8 when it encodes ST(i)). */
  readonly fixed: number;
  readonly fixedMask: number;
  /** 0 any, 1 memory only, 2 register only. */
  readonly mod: number;
  readonly osz: number;
  readonly asz: number;
  /** -1 any, else 0/1. */
  readonly W: number;
  /** -1 any, else 0/1/2. */
  readonly L: number;
  readonly hasModrm: boolean;
  readonly ops: readonly number[];
  readonly flags: number;
  readonly memName: string;
  readonly memSize: number;
  readonly bcstName: string;
  readonly bcstSize: number;
  /** disp8*N compression: N without broadcast, N with broadcast (EVEX only, else 1). */
  readonly n: number;
  readonly nb: number;
}

const PP: Record<string, number> = { np: 0, '66': 1, F3: 2, F2: 3 };

function spaceOf(f: Form): number {
  switch (f.enc) {
    case 'legacy':
      return ({ normal: Space.Normal, '0F': Space.M0F, '0F38': Space.M0F38, '0F3A': Space.M0F3A } as Record<string, number>)[f.map]!;
    case '3dnow':
      return Space.D3NOW;
    case 'vex':
      return ({ '0F': Space.VEX1, '0F38': Space.VEX2, '0F3A': Space.VEX3 } as Record<string, number>)[f.map]!;
    case 'evex':
      return ({ '0F': Space.EVEX1, '0F38': Space.EVEX2, '0F3A': Space.EVEX3, map5: Space.EVEX5, map6: Space.EVEX6 } as Record<string, number>)[f.map]!;
    case 'xop':
      return ({ map8: Space.XOP8, map9: Space.XOP9, map10: Space.XOP10 } as Record<string, number>)[f.map]!;
  }
}

function tupleN(tuple: string | undefined): [number, number] {
  if (!tuple) return [1, 1];
  const m = /^N(\d+)(?:b(\d+))?$/.exec(tuple);
  if (!m) throw new Error(`unknown tuple type ${tuple}`);
  const n = Number(m[1]);
  return [n, m[2] ? Number(m[2]) : n];
}

function makeCand(f: Form): Cand {
  const ops = f.ops;
  let flags = 0;
  const has = (x: string) => (f.flags as readonly string[] | undefined)?.includes(x) ?? false;
  if (has('lock')) flags |= CF.Lock;
  if (has('d64')) flags |= CF.D64;
  if (has('f64') || has('intelF64')) flags |= CF.F64;
  if (has('ignoresMod')) flags |= CF.IgnoresMod;
  if (has('no66')) flags |= CF.No66;
  if (has('nfx')) flags |= CF.Nfx;
  if (has('k')) flags |= CF.K;
  if (has('kreq')) flags |= CF.KReq;
  if (has('z')) flags |= CF.Z;
  if (has('er')) flags |= CF.Er;
  if (has('sae')) flags |= CF.Sae;
  if (f.bcst) flags |= CF.Bcst;
  if (has('uniqueRegs')) flags |= CF.UniqueRegs;
  if (has('uniqueDest')) flags |= CF.UniqueDest;
  if (f.enc === 'legacy' && f.map === 'normal' && f.op === 0x90 && has('nop')) flags |= CF.Nop90;
  if (f.W === 'ig32') flags |= CF.WIg32;
  let mod = 0;
  let hasModrm = f.reg !== undefined || f.rm !== undefined || f.opLen === 2 || f.enc === '3dnow';
  for (const k of ops) {
    if (USES_MODRM.has(k)) hasModrm = true;
    if (MEM_ONLY.has(k)) mod = 1;
    if (RM_ONLY.has(k)) mod = 2;
    if (VVVV.has(k)) flags |= CF.Vvvv;
    if (VSIB.has(k)) flags |= CF.Vsib;
    if (OPCODE_REG.has(k)) flags |= CF.OpcodeReg;
    if (k.endsWith('_is4') || k.endsWith('_is5')) flags |= CF.Is4;
  }
  if (flags & CF.IgnoresMod) mod = 0;
  if (ops.length > 0 && (ops[0]!.endsWith('_or_mem') || MEM_ONLY.has(ops[0]!))) flags |= CF.MemDest;
  let fixed = -1;
  let fixedMask = 0xff;
  if (f.opLen === 2) {
    fixed = f.op & 0xff;
    if (ops.includes('sti_opcode') || RM_IGNORED(f)) fixedMask = 0xf8;
    mod = 2;
  }
  const modes = f.modes ? f.modes.reduce((a, m) => a | (m === 16 ? 1 : m === 32 ? 2 : 4), 0) : 7;
  const W = f.W === undefined || f.W === 'ig' || f.W === 'ig32' ? (f.enc === 'legacy' ? -1 : f.W === undefined ? -1 : -1) : f.W;
  const [n, nb] = f.enc === 'evex' ? tupleN(f.tuple) : [1, 1];
  return {
    id: f.id,
    form: f,
    modes,
    pp: f.pp === undefined ? -1 : PP[f.pp]!,
    reg: f.reg ?? (fixed >= 0 ? (fixed >> 3) & 7 : -1),
    rm: f.rm ?? -1,
    fixed,
    fixedMask,
    mod,
    osz: f.osz ?? 0,
    asz: f.asz ?? 0,
    W: f.enc === 'legacy' ? (f.W === 1 ? 1 : -1) : W,
    L: f.L === undefined || f.L === 'ig' ? -1 : f.L,
    hasModrm,
    ops: ops.map((k) => OPK[k]),
    flags,
    memName: f.mem ?? '',
    memSize: f.mem ? memorySizeBytes(f.mem) : 0,
    bcstName: f.bcst ?? '',
    bcstSize: f.bcst ? memorySizeBytes(f.bcst) : 0,
    n,
    nb,
  };
}

/** Lower sorts first: the more specific form wins when several match. */
function specificity(c: Cand): number[] {
  return [
    c.pp === -1 ? 1 : 0,
    c.fixed >= 0 ? (c.fixedMask === 0xff ? 0 : 1) : c.reg >= 0 || c.rm >= 0 ? 2 : 3,
    c.flags & CF.OpcodeReg ? 1 : 0,
    c.osz ? 0 : 1,
    c.asz ? 0 : 1,
    c.W >= 0 ? 0 : 1,
  ];
}

function compare(a: Cand, b: Cand): number {
  const x = specificity(a), y = specificity(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return a.id - b.id;
}

export interface Slot {
  readonly cands: readonly Cand[];
  readonly hasModrm: boolean;
  /** With ModRM: the candidates that can match each ModRM.reg value (groups are scanned by /digit). */
  readonly byReg: readonly (readonly Cand[])[];
}

function build(): (Slot | undefined)[] {
  const lists: Cand[][] = [];
  for (const f of FORMS) {
    // FWAIT-prefixed forms (FSAVE = 9B DD /6) exist for assemblers; decoders emit WAIT, then FNSAVE.
    if (f.flags?.includes('fwait')) continue;
    const c = makeCand(f);
    // Forms only AMD processors decode (modes: []) never win on the Intel decoding path.
    if (c.modes === 0) continue;
    if (MONTMUL_NOT_A32(f)) continue;
    const space = spaceOf(f);
    const op = f.opLen === 2 ? f.op >> 8 : f.op;
    const count = c.flags & CF.OpcodeReg ? 8 : 1;
    for (let i = 0; i < count; i++) (lists[space * 256 + op + i] ??= []).push(c);
  }
  const slots: (Slot | undefined)[] = new Array(SPACE_COUNT * 256);
  lists.forEach((l, i) => {
    if (!l) return;
    l.sort(compare);
    for (const c of l) {
      if (c.osz !== 32) continue;
      const twin = l.some((o) => o.osz === 64 && o.pp === c.pp && o.reg === c.reg && o.fixed === c.fixed && o.mod === c.mod && o.asz === c.asz);
      if (!twin) (c as { flags: number }).flags |= CF.Os64As32;
    }
    const hasModrm = l[0]!.hasModrm;
    for (const c of l) {
      if (c.hasModrm !== hasModrm) throw new Error(`slot ${i.toString(16)} mixes ModRM and non-ModRM forms (${c.form.name})`);
    }
    const byReg = [0, 1, 2, 3, 4, 5, 6, 7].map((r) => l.filter((c) => c.reg < 0 || c.reg === r));
    slots[i] = { cands: l, hasModrm, byReg };
  });
  return slots;
}

export const SLOTS = build();

// ---- Per-mode match keys -------------------------------------------------------------------
// In one code size the conditions of a form reduce to "these bits of the decoder's state word
// must have these values", so the hot loop tests one AND and one compare per candidate. The
// state word, built once per instruction by the decoder:
export const Key = {
  /** bits 0-7: the ModRM byte */
  Mod3: 1 << 8,
  /** bits 9-12: the mandatory prefix, one-hot: none, 66, F3, F2 (VEX/EVEX/XOP: their pp) */
  PpShift: 9,
  Has66: 1 << 13,
  /** 2-bit operand-size codes (16 -> 0, 32 -> 1, 64 -> 2) under the rules a form follows */
  OsShift: 14, // plain: 66 and REX.W
  OsD64Shift: 16, // default-64 forms in 64-bit mode (PUSH, POP, near branches)
  OsNo64Shift: 18, // o32 forms without an o64 twin: REX.W reads as 32
  OsNo66Shift: 24, // forms whose 66 is a mandatory prefix: only REX.W counts
  AsShift: 20,
  W: 1 << 22,
  LShift: 26,
  RexB: 1 << 28,
} as const;

export const sizeCode = (bits: number): number => (bits === 16 ? 0 : bits === 32 ? 1 : 2);

export interface ModeCand {
  readonly c: Cand;
  readonly mask: number;
  readonly value: number;
}

export interface ModeSlot {
  readonly hasModrm: boolean;
  /** Without ModRM: the only list. With ModRM: indexed by ModRM.reg. */
  readonly byReg: readonly (readonly ModeCand[])[];
}

function modeKey(c: Cand, bits: 16 | 32 | 64): ModeCand | undefined {
  let mask = 0, value = 0;
  if (c.fixed >= 0) { mask |= c.fixedMask | Key.Mod3; value |= c.fixed | Key.Mod3; }
  if (c.rm >= 0) { mask |= 0xc7 | Key.Mod3; value |= 0xc0 | c.rm | Key.Mod3; }
  if (c.mod === 1) mask |= Key.Mod3;
  else if (c.mod === 2) { mask |= Key.Mod3; value |= Key.Mod3; }
  const legacy = c.form.enc === 'legacy' || c.form.enc === '3dnow';
  if (c.pp >= 0) { mask |= 15 << Key.PpShift; value |= (1 << c.pp) << Key.PpShift; }
  else if (c.flags & CF.Nfx) mask |= 12 << Key.PpShift;
  if (c.flags & CF.No66) mask |= Key.Has66;
  if (c.osz) {
    let shift: number = Key.OsShift;
    if (bits === 64 && (c.flags & CF.F64)) {
      if (c.osz !== 64) return undefined;
      shift = -1;
    } else if (bits === 64 && (c.flags & CF.D64)) shift = Key.OsD64Shift;
    else if (c.pp === 1) shift = Key.OsNo66Shift;
    else if (c.flags & CF.Os64As32) shift = Key.OsNo64Shift;
    if (shift >= 0) { mask |= 3 << shift; value |= sizeCode(c.osz) << shift; }
  }
  if (c.asz) { mask |= 3 << Key.AsShift; value |= sizeCode(c.asz) << Key.AsShift; }
  if (legacy) {
    if (c.W === 1) { mask |= Key.W; value |= Key.W; }
  } else if (c.W >= 0 && !((c.flags & CF.WIg32) && bits !== 64)) {
    mask |= Key.W;
    if (c.W) value |= Key.W;
  }
  if (c.L >= 0) { mask |= 3 << Key.LShift; value |= c.L << Key.LShift; }
  if (c.flags & CF.Nop90) mask |= Key.RexB;
  return { c, mask, value };
}

const modeSlotCache = new Map<number, (ModeSlot | undefined)[]>();

/** The slots of one code size, built on first use. */
export function modeSlots(bits: 16 | 32 | 64): (ModeSlot | undefined)[] {
  const hit = modeSlotCache.get(bits);
  if (hit) return hit;
  const bit = bits === 16 ? 1 : bits === 32 ? 2 : 4;
  const out: (ModeSlot | undefined)[] = new Array(SLOTS.length);
  SLOTS.forEach((s, i) => {
    if (!s) return;
    const keyed = (l: readonly Cand[]): ModeCand[] =>
      l.filter((c) => (c.modes & bit) !== 0).map((c) => modeKey(c, bits)).filter((k): k is ModeCand => k !== undefined);
    out[i] = { hasModrm: s.hasModrm, byReg: s.hasModrm ? s.byReg.map(keyed) : [keyed(s.cands)] };
  });
  modeSlotCache.set(bits, out);
  return out;
}

/**
 * The same keys packed flat for the hot path: following object references from slot to list to
 * candidate costs more than the tests themselves, so each code size gets typed arrays.
 * `kind[slot]`: 0 no such opcode, 1 no ModRM, 2 ModRM. Candidates of (slot, ModRM.reg) are the
 * triples (mask, value, index into `cands`) in `data` from `start[slot * 8 + reg]` to the next.
 */
export interface ModeTable {
  readonly kind: Uint8Array;
  readonly start: Int32Array;
  readonly data: Int32Array;
  readonly cands: readonly Cand[];
}

const modeTableCache = new Map<number, ModeTable>();

export function modeTable(bits: 16 | 32 | 64): ModeTable {
  const hit = modeTableCache.get(bits);
  if (hit) return hit;
  const slots = modeSlots(bits);
  const kind = new Uint8Array(SLOTS.length);
  const start = new Int32Array(SLOTS.length * 8 + 1);
  const data: number[] = [];
  const cands: Cand[] = [];
  const index = new Map<Cand, number>();
  for (let i = 0; i < SLOTS.length; i++) {
    const s = slots[i];
    if (s) kind[i] = s.hasModrm ? 2 : 1;
    for (let r = 0; r < 8; r++) {
      start[i * 8 + r] = data.length / 3;
      const list = s ? s.byReg[s.hasModrm ? r : 0]! : [];
      for (const k of list) {
        let ci = index.get(k.c);
        if (ci === undefined) { ci = cands.length; cands.push(k.c); index.set(k.c, ci); }
        data.push(k.mask, k.value, ci);
      }
    }
  }
  start[SLOTS.length * 8] = data.length / 3;
  const t: ModeTable = { kind, start, data: Int32Array.from(data), cands };
  modeTableCache.set(bits, t);
  return t;
}
