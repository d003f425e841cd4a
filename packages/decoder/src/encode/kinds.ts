// What each operand encoding of the table (form.ts OperandKind) means to the IA-32 encoder:
// where its value goes in the bytes and which Instruction operand kinds may fill it.
// Only the kinds that occur in 16/32-bit legacy and 3DNow! forms are described; anything
// else (VEX/EVEX vvvv, is4, 64-bit registers, VSIB, ...) has no slot and is rejected.
import type { OperandKind } from '../table/form';
import { Reg } from '../table/registers';

/** Register families addressable by a 3-bit field without REX. */
export type Family = 'r8' | 'r16' | 'r32' | 'seg' | 'cr' | 'dr' | 'st' | 'mm' | 'xmm';

export type Slot =
  /** Implicit register (AL, DX, ES, ST(0), ...): nothing encoded. */
  | { readonly t: 'fixed'; readonly reg: number }
  /** The constant 1 of the D0-D3 shift forms: nothing encoded. */
  | { readonly t: 'one' }
  /** ModRM.reg. */
  | { readonly t: 'reg'; readonly fam: Family }
  /** ModRM.rm with mod = 11 only. */
  | { readonly t: 'rm'; readonly fam: Family }
  /** ModRM.rm: a register (mod = 11) or a memory operand. */
  | { readonly t: 'rmOrMem'; readonly fam: Family }
  /** ModRM.rm: memory only. */
  | { readonly t: 'mem' }
  /** A0-A3 moffs: a bare address-size displacement, no ModRM. */
  | { readonly t: 'moffs' }
  /** Register in the low 3 bits of the (last) opcode byte: 40+rd, B0+rb, 0F C8+rd. */
  | { readonly t: 'opreg'; readonly fam: Family }
  /** ST(i) in the low 3 bits of the x87 second opcode byte (D8 C0+i). */
  | { readonly t: 'sti' }
  /** Immediate of `size` bytes; `sext` when the CPU sign-extends an imm8 to that width. */
  | { readonly t: 'imm'; readonly size: 1 | 2 | 4; readonly sext: 0 | 16 | 32 }
  /** Relative branch displacement of `size` bytes. */
  | { readonly t: 'rel'; readonly size: 1 | 2 | 4; readonly xbegin: boolean }
  /** ptr16:16 / ptr16:32 (offset, then selector). */
  | { readonly t: 'far'; readonly offSize: 2 | 4 }
  /** Implicit string operand: ES:[rDI], seg:[rSI] or seg:[rDI]. */
  | { readonly t: 'str'; readonly which: 'esdi' | 'segsi' | 'segdi' }
  /** XLAT's seg:[rBX+AL]. */
  | { readonly t: 'xlat' }
  /** MOVDIR64B/ENQCMD destination: ModRM.reg, a GPR as wide as the address size. */
  | { readonly t: 'regmem'; readonly fam: 'r16' | 'r32' };

const SLOTS: Partial<Record<OperandKind, Slot>> = {
  al: { t: 'fixed', reg: Reg.AL },
  cl: { t: 'fixed', reg: Reg.AL + 1 },
  ax: { t: 'fixed', reg: Reg.AX },
  dx: { t: 'fixed', reg: Reg.AX + 2 },
  eax: { t: 'fixed', reg: Reg.EAX },
  es: { t: 'fixed', reg: Reg.ES },
  cs: { t: 'fixed', reg: Reg.CS },
  ss: { t: 'fixed', reg: Reg.SS },
  ds: { t: 'fixed', reg: Reg.DS },
  fs: { t: 'fixed', reg: Reg.FS },
  gs: { t: 'fixed', reg: Reg.GS },
  st0: { t: 'fixed', reg: Reg.ST0 },
  imm8_const_1: { t: 'one' },
  r8_reg: { t: 'reg', fam: 'r8' },
  r16_reg: { t: 'reg', fam: 'r16' },
  r32_reg: { t: 'reg', fam: 'r32' },
  seg_reg: { t: 'reg', fam: 'seg' },
  cr_reg: { t: 'reg', fam: 'cr' },
  dr_reg: { t: 'reg', fam: 'dr' },
  mm_reg: { t: 'reg', fam: 'mm' },
  xmm_reg: { t: 'reg', fam: 'xmm' },
  r16_rm: { t: 'rm', fam: 'r16' },
  r32_rm: { t: 'rm', fam: 'r32' },
  mm_rm: { t: 'rm', fam: 'mm' },
  xmm_rm: { t: 'rm', fam: 'xmm' },
  r8_or_mem: { t: 'rmOrMem', fam: 'r8' },
  r16_or_mem: { t: 'rmOrMem', fam: 'r16' },
  r32_or_mem: { t: 'rmOrMem', fam: 'r32' },
  mm_or_mem: { t: 'rmOrMem', fam: 'mm' },
  xmm_or_mem: { t: 'rmOrMem', fam: 'xmm' },
  mem: { t: 'mem' },
  sibmem: { t: 'mem' },
  mem_offs: { t: 'moffs' },
  r8_opcode: { t: 'opreg', fam: 'r8' },
  r16_opcode: { t: 'opreg', fam: 'r16' },
  r32_opcode: { t: 'opreg', fam: 'r32' },
  sti_opcode: { t: 'sti' },
  imm8: { t: 'imm', size: 1, sext: 0 },
  imm16: { t: 'imm', size: 2, sext: 0 },
  imm32: { t: 'imm', size: 4, sext: 0 },
  imm8sex16: { t: 'imm', size: 1, sext: 16 },
  imm8sex32: { t: 'imm', size: 1, sext: 32 },
  br16_1: { t: 'rel', size: 1, xbegin: false },
  br32_1: { t: 'rel', size: 1, xbegin: false },
  br16_2: { t: 'rel', size: 2, xbegin: false },
  br32_4: { t: 'rel', size: 4, xbegin: false },
  xbegin_2: { t: 'rel', size: 2, xbegin: true },
  xbegin_4: { t: 'rel', size: 4, xbegin: true },
  farbr2_2: { t: 'far', offSize: 2 },
  farbr4_2: { t: 'far', offSize: 4 },
  es_rDI: { t: 'str', which: 'esdi' },
  seg_rSI: { t: 'str', which: 'segsi' },
  seg_rDI: { t: 'str', which: 'segdi' },
  seg_rBX_al: { t: 'xlat' },
  r16_reg_mem: { t: 'regmem', fam: 'r16' },
  r32_reg_mem: { t: 'regmem', fam: 'r32' },
};

export function slotOf(kind: OperandKind): Slot | undefined {
  return SLOTS[kind];
}

const FAMILY_BASE: Record<Family, number> = {
  r8: Reg.AL,
  r16: Reg.AX,
  r32: Reg.EAX,
  seg: Reg.ES,
  cr: Reg.CR0,
  dr: Reg.DR0,
  st: Reg.ST0,
  mm: Reg.MM0,
  xmm: Reg.XMM0,
};

/** How many registers of the family a 3-bit field can name (segment: ES..GS). */
const FAMILY_SIZE: Record<Family, number> = { r8: 8, r16: 8, r32: 8, seg: 6, cr: 8, dr: 8, st: 8, mm: 8, xmm: 8 };

/**
 * The 3-bit number of `reg` within `fam`, or -1 when the register is not in the family or
 * needs a REX/VEX extension. CR1, CR5-CR7 are reserved (#UD, SDM vol. 2 MOV—Move to/from
 * Control Registers) and CR8 is reachable only from 64-bit mode, so only CR0/2/3/4 pass.
 */
export function regNumber(reg: number, fam: Family): number {
  const n = reg - FAMILY_BASE[fam];
  if (!Number.isInteger(n) || n < 0 || n >= FAMILY_SIZE[fam]) return -1;
  if (fam === 'cr' && n !== 0 && n !== 2 && n !== 3 && n !== 4) return -1;
  return n;
}

export const FAMILY_LABEL: Record<Family, string> = {
  r8: '8-bit GPR (al..bh)',
  r16: '16-bit GPR (ax..di)',
  r32: '32-bit GPR (eax..edi)',
  seg: 'segment register (es..gs)',
  cr: 'control register (cr0, cr2, cr3, cr4)',
  dr: 'debug register (dr0..dr7)',
  st: 'x87 register st(0)..st(7)',
  mm: 'MMX register (mm0..mm7)',
  xmm: 'XMM register (xmm0..xmm7)',
};
