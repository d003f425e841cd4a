// Public API of @ringshift/decoder: named re-exports only.
export { Decoder } from './decode/decoder';
export { Instruction, Invalid, INVALID_REASON_TEXT, OpKind, Parts, Prefix, Rounding, MAX_OPERANDS } from './instruction';
export type { Form, FormFlag, OperandKind } from './table/form';
export { FORMS, MEMORY_SIZES, formById, formName, mnemonicOf, memorySizeBytes } from './table/lookup';
export { Reg, REGISTER_NAMES, REGISTER_COUNT, gpr8, registerByName, registerName, registerWidth } from './table/registers';
export {
  CLASS_SELECTORS, FORM_OVERRIDES, INVALID_CLASS, MNEMONIC_CLASSES, classOf, formHasMemoryOperand, isControlTransfer,
  isIoplSensitive, isPrivileged, isSensitive, isSensitiveUnprivileged, selectForms,
} from './table/classes';
export type { ClassSelectorName, Flow, InstructionClass, MemoryAccess, VmExit } from './table/classes';
export { Flag, STATUS_FLAGS, flagNames, flagsFromNames } from './table/eflags';
export type { FlagName } from './table/eflags';
export { VMX_CONTROL, VMX_EXIT_REASON, vmxExitReasonName } from './table/vmx-exit-reasons';
export type { VmxControlName, VmxExitReasonName } from './table/vmx-exit-reasons';
export { formatIntel } from './format/intel';
export type { IntelFormatOptions } from './format/intel';
export {
  Assembler, EncodeError, Label, asm1, branchCandidates, buildInstruction, candidates, canonicalMnemonic, encode, encodeInto,
  encodedLength, far, formNamed, imm, ins, mem, reg, rel,
} from './encode/index';
export type {
  AssembleResult, Candidate, EncodeOptions, FarOperand, ImmOperand, LabelResolver, MemOperand, MemSpec, Operand, RegOperand,
  RelOperand,
} from './encode/index';
