// The decoded instruction: one mutable object that the decoder refills (decodeOut), so the
// fast path allocates nothing per instruction. Operands are kept as parallel fixed-size
// fields rather than an array of objects for the same reason.

/** Kinds of operand, named like iced-x86's OpKind so listings can be compared line by line. */
export const OpKind = {
  Register: 0,
  NearBranch16: 1,
  NearBranch32: 2,
  NearBranch64: 3,
  FarBranch16: 4,
  FarBranch32: 5,
  Immediate8: 6,
  /** Second 8-bit immediate (ENTER's nesting level, EXTRQ/INSERTQ). */
  Immediate8_2nd: 7,
  Immediate16: 8,
  Immediate32: 9,
  Immediate64: 10,
  Immediate8to16: 11,
  Immediate8to32: 12,
  Immediate8to64: 13,
  Immediate32to64: 14,
  /** Implicit seg:[SI/ESI/RSI] of string instructions (seg overridable). */
  MemorySegSI: 15,
  MemorySegESI: 16,
  MemorySegRSI: 17,
  /** Implicit seg:[DI/EDI/RDI] (MASKMOVQ/MASKMOVDQU). */
  MemorySegDI: 18,
  MemorySegEDI: 19,
  MemorySegRDI: 20,
  /** Implicit ES:[DI/EDI/RDI] of string instructions (not overridable). */
  MemoryESDI: 21,
  MemoryESEDI: 22,
  MemoryESRDI: 23,
  /** Explicit memory operand: see mem* fields (also moffs and XLAT's seg:[rBX+AL]). */
  Memory: 24,
} as const;
export type OpKind = (typeof OpKind)[keyof typeof OpKind];

/** Why bytes did not decode. */
export const Invalid = {
  None: 0,
  /** The bytes end before the instruction does (iced: NoMoreBytes). */
  Truncated: 1,
  /** More than 15 bytes (SDM vol. 2 §2.3.11). */
  TooLong: 2,
  /** No instruction is defined for this opcode / ModRM / prefix combination. */
  Undefined: 3,
  /** Defined, but not in this mode (e.g. AAA or PUSH ES in 64-bit mode). */
  NotInMode: 4,
  /** LOCK on an instruction or operand form that does not allow it (#UD). */
  Lock: 5,
  /** Register form where only memory is allowed, or the reverse. */
  ModRM: 6,
  /** Invalid register number (segment register 6/7, CR1, ...). */
  Register: 7,
  /** VEX/XOP/EVEX preceded by 66/F2/F3/REX/LOCK, or reserved VEX/EVEX field values. */
  VexPrefix: 8,
  VexField: 9,
  EvexField: 10,
} as const;
export type Invalid = (typeof Invalid)[keyof typeof Invalid];

export const INVALID_REASON_TEXT: Record<Invalid, string> = {
  0: 'valid',
  1: 'truncated: the bytes end inside the instruction',
  2: 'longer than 15 bytes',
  3: 'undefined opcode',
  4: 'not valid in this processor mode',
  5: 'LOCK prefix not allowed here',
  6: 'ModRM form (register vs memory) not allowed here',
  7: 'invalid register encoding',
  8: 'VEX/XOP/EVEX prefix not allowed after 66/F2/F3/REX/LOCK',
  9: 'reserved VEX/XOP field value',
  10: 'reserved EVEX field value',
};

/** Bits of Instruction.prefixes: which legacy prefixes were present (last of each group wins). */
export const Prefix = {
  Lock: 1,
  Rep: 2,
  Repne: 4,
  OperandSize: 8,
  AddressSize: 16,
  Segment: 32,
  Rex: 64,
  Vex: 128,
  Evex: 256,
  Xop: 512,
} as const;

/** Embedded rounding (EVEX.b with register operands). */
export const Rounding = { None: 0, RoundToNearest: 1, RoundDown: 2, RoundUp: 3, RoundTowardZero: 4 } as const;

export const MAX_OPERANDS = 5;

/** Groups of optional Instruction fields, for cheap clearing between decodes. */
export const Parts = { Operands: 1, Memory: 2, Immediate: 4, Branch: 8, Evex: 16, All: 31 } as const;

export class Instruction {
  /** Address of the first byte (instruction pointer), below 2^53. */
  ip = 0;
  length = 0;
  /** Code size the bytes were decoded in. */
  bits: 16 | 32 | 64 = 32;
  /** Form id (see table/forms.generated.ts); 0 when invalid. */
  form = 0;
  invalid: Invalid = Invalid.None;

  /** Bit set of Prefix.*. */
  prefixes = 0;
  /** Segment-override prefix register (Reg.ES..Reg.GS), or 0. */
  segmentPrefix = 0;
  /** Effective operand size and address size in bits. */
  operandSize: 16 | 32 | 64 = 32;
  addressSize: 16 | 32 | 64 = 32;

  opCount = 0;
  readonly opKinds: OpKind[] = [0, 0, 0, 0, 0];
  /** Register per operand (when kind is Register), else 0. */
  readonly opRegs: number[] = [0, 0, 0, 0, 0];

  // The (single) memory operand.
  memBase = 0;
  memIndex = 0;
  memScale: 1 | 2 | 4 | 8 = 1;
  /** Displacement, sign-extended and wrapped to the address size (unsigned, low 32 bits). */
  memDisp = 0;
  /** High 32 bits of a 64-bit displacement/absolute address (64-bit mode only). */
  memDispHi = 0;
  /** Bytes of displacement in the encoding: 0, 1, 2, 4 or 8 (moffs). */
  memDispSize = 0;
  /** Effective segment (the override, or the default for the base register). */
  memSegment = 0;
  /** Memory operand size in bytes (0: none or not applicable, e.g. LEA/INVLPG treat as 0). */
  memSize = 0;
  /** iced-x86 MemorySize name of the memory operand, e.g. 'UInt32', 'Packed128_Float32'. */
  memSizeName = '';
  /** EVEX embedded broadcast in effect (memSizeName then names the broadcast element). */
  broadcast = false;

  /** First immediate (unsigned low 32 bits) and its high 32 bits for 64-bit immediates. */
  imm = 0;
  immHi = 0;
  /** Second immediate (ENTER's nesting level, EXTRQ/INSERTQ second byte). */
  imm2 = 0;

  /** Near branch target, unsigned: low 32 bits and high 32 bits (64-bit mode). */
  target = 0;
  targetHi = 0;
  /** Far branch pointer. */
  farSelector = 0;

  // VEX/EVEX extras.
  /** EVEX opmask register (Reg.K0+n) or 0 when k0/none. */
  opmask = 0;
  zeroing = false;
  suppressAllExceptions = false;
  rounding: (typeof Rounding)[keyof typeof Rounding] = Rounding.None;

  get valid(): boolean {
    return this.invalid === Invalid.None;
  }

  /** Address of the next instruction. */
  get nextIp(): number {
    return this.ip + this.length;
  }

  /**
   * Which groups of optional fields hold values (Parts bits): the decoder clears only those
   * before refilling the object, which keeps decodeOut cheap. Code that writes fields itself
   * should call reset() before handing the object back to a decoder.
   */
  parts: number = Parts.All;

  /** Clears every field. */
  reset(): void {
    this.parts = Parts.All;
    this.clear();
  }

  /** Clears the always-present fields and the optional groups marked in `parts`. */
  clear(): void {
    this.length = 0;
    this.form = 0;
    this.invalid = Invalid.None;
    this.prefixes = 0;
    this.segmentPrefix = 0;
    this.opCount = 0;
    const parts = this.parts;
    if (parts === 0) return;
    this.parts = 0;
    if (parts & Parts.Operands) {
      const k = this.opKinds, r = this.opRegs;
      k[0] = k[1] = k[2] = k[3] = k[4] = 0;
      r[0] = r[1] = r[2] = r[3] = r[4] = 0;
    }
    if (parts & Parts.Memory) {
      this.memBase = this.memIndex = 0;
      this.memScale = 1;
      this.memDisp = this.memDispHi = this.memDispSize = 0;
      this.memSegment = this.memSize = 0;
      this.memSizeName = '';
      this.broadcast = false;
    }
    if (parts & Parts.Immediate) this.imm = this.immHi = this.imm2 = 0;
    if (parts & Parts.Branch) this.target = this.targetHi = this.farSelector = 0;
    if (parts & Parts.Evex) {
      this.opmask = 0;
      this.zeroing = false;
      this.suppressAllExceptions = false;
      this.rounding = Rounding.None;
    }
  }

  /** A detached copy (the decoder reuses its output object). */
  clone(): Instruction {
    const c = new Instruction();
    Object.assign(c, this);
    (c as { opKinds: OpKind[] }).opKinds = this.opKinds.slice();
    (c as { opRegs: number[] }).opRegs = this.opRegs.slice();
    return c;
  }
}
