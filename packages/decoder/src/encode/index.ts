// Public surface of the IA-32 encoder, builders and assembler (named re-exports only).
export { EncodeError } from './errors';
export { encode, encodeInto, encodedLength, type EncodeOptions } from './encoder';
export {
  buildInstruction, far, formNamed, imm, ins, mem, reg, rel,
  type FarOperand, type ImmOperand, type MemOperand, type MemSpec, type Operand, type RegOperand, type RelOperand,
} from './builders';
export { asm1, branchCandidates, candidates, canonicalMnemonic, type Candidate } from './select';
export { Assembler, type AssembleResult } from './assembler';
export { Label, type LabelResolver } from './label';
