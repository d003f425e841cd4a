// The shape of one row of the instruction table (forms.generated.ts). Every name follows the
// Intel SDM opcode-table notation as iced-x86 spells it, so a row reads like the SDM line
// quoted in its trailing comment.

/** Operand encodings, as in the SDM's "Op/En" columns (iced-x86 OpCodeOperandKind names). */
export type OperandKind =
  | 'al' | 'ax' | 'eax' | 'rax' | 'cl' | 'dx' | 'es' | 'cs' | 'ss' | 'ds' | 'fs' | 'gs' | 'st0'
  | 'br16_1' | 'br16_2' | 'br32_1' | 'br32_4' | 'br64_1' | 'br64_4' | 'xbegin_2' | 'xbegin_4'
  | 'farbr2_2' | 'farbr4_2'
  | 'cr_reg' | 'dr_reg' | 'seg_reg'
  | 'es_rDI' | 'seg_rDI' | 'seg_rSI' | 'seg_rBX_al'
  | 'imm16' | 'imm32' | 'imm32sex64' | 'imm4_m2z' | 'imm64' | 'imm8' | 'imm8_const_1'
  | 'imm8sex16' | 'imm8sex32' | 'imm8sex64'
  | 'mem' | 'mem_offs' | 'sibmem'
  | 'mem_vsib32x' | 'mem_vsib32y' | 'mem_vsib32z' | 'mem_vsib64x' | 'mem_vsib64y' | 'mem_vsib64z'
  | 'k_or_mem' | 'k_reg' | 'k_rm' | 'k_vvvv' | 'kp1_reg'
  | 'mm_or_mem' | 'mm_reg' | 'mm_rm'
  | 'r8_opcode' | 'r8_or_mem' | 'r8_reg'
  | 'r16_opcode' | 'r16_or_mem' | 'r16_reg' | 'r16_reg_mem' | 'r16_rm'
  | 'r32_opcode' | 'r32_or_mem' | 'r32_reg' | 'r32_reg_mem' | 'r32_rm' | 'r32_vvvv'
  | 'r64_opcode' | 'r64_or_mem' | 'r64_reg' | 'r64_reg_mem' | 'r64_rm' | 'r64_vvvv'
  | 'sti_opcode'
  | 'tmm_reg' | 'tmm_rm' | 'tmm_vvvv'
  | 'xmm_is4' | 'xmm_is5' | 'xmm_or_mem' | 'xmm_reg' | 'xmm_rm' | 'xmm_vvvv' | 'xmmp3_vvvv'
  | 'ymm_is4' | 'ymm_is5' | 'ymm_or_mem' | 'ymm_reg' | 'ymm_rm' | 'ymm_vvvv'
  | 'zmm_or_mem' | 'zmm_reg' | 'zmm_rm' | 'zmm_vvvv' | 'zmmp3_vvvv';

export type FormFlag =
  | 'lock' | 'xacquire' | 'xrelease' | 'rep' | 'repne' | 'bnd' | 'hint' | 'notrack'
  | 'k' | 'kreq' | 'z' | 'er' | 'sae' | 'ignoresEr'
  | 'fwait' | 'd64' | 'f64' | 'intelF64' | 'ignoresMod' | 'uniqueRegs' | 'uniqueDest'
  | 'no66' | 'nfx' | 'nop' | 'reservedNop' | 'amdLockRegBit';

export interface Form {
  /** Stable identity of the form; equals iced-x86's Code value (documented in table/README.md). */
  readonly id: number;
  /** iced-x86 Code name, e.g. 'Add_rm32_r32'. */
  readonly name: string;
  readonly mnemonic: string;
  readonly enc: 'legacy' | 'vex' | 'evex' | 'xop' | '3dnow';
  /** Opcode map: one-byte ('normal'), 0F, 0F38, 0F3A, 3DNow! 0F0F (op = suffix byte), VEX/EVEX maps 5/6, XOP 8/9/10. */
  readonly map: 'normal' | '0F' | '0F38' | '0F3A' | '0F0F' | 'map5' | 'map6' | 'map8' | 'map9' | 'map10';
  /** Opcode; with opLen 2 the low byte is a fixed ModRM byte (0F 01 C1) or x87 second byte (D8 C0+i). */
  readonly op: number;
  readonly opLen?: 2;
  /** Mandatory prefix: 'np' means none of 66/F2/F3 may act as one. Absent: prefixes are ordinary. */
  readonly pp?: 'np' | '66' | 'F3' | 'F2';
  /** ModRM.reg must equal this (/digit). */
  readonly reg?: number;
  /** ModRM.rm must equal this (with mod = 11). */
  readonly rm?: number;
  /** Modes in which the form decodes; absent = 16, 32 and 64. */
  readonly modes?: readonly (16 | 32 | 64)[];
  /** Operand size the form requires (o16/o32/o64 in the SDM opcode column). */
  readonly osz?: 16 | 32 | 64;
  /** Address size the form requires (a16/a32/a64). */
  readonly asz?: 16 | 32 | 64;
  /** REX.W / VEX.W / EVEX.W: 0, 1, ignored, or ignored outside 64-bit mode. */
  readonly W?: 0 | 1 | 'ig' | 'ig32';
  /** VEX.L / EVEX.L'L: 0 (128), 1 (256), 2 (512), or ignored. */
  readonly L?: 0 | 1 | 2 | 'ig';
  readonly ops: readonly OperandKind[];
  /** Memory operand size (key of MEMORY_SIZES). */
  readonly mem?: string;
  /** EVEX embedded-broadcast element size (key of MEMORY_SIZES). */
  readonly bcst?: string;
  /** EVEX tuple type (SDM vol. 2 §2.7.5), which scales disp8 (disp8*N). */
  readonly tuple?: string;
  readonly flags?: readonly FormFlag[];
}
