// Public API of @ringshift/decoder: named re-exports only.
export { Decoder } from './decode/decoder';
export { Instruction, Invalid, INVALID_REASON_TEXT, OpKind, Prefix, Rounding, MAX_OPERANDS } from './instruction';
export type { Form, FormFlag, OperandKind } from './table/form';
export { FORMS, MEMORY_SIZES, formById, formName, mnemonicOf, memorySizeBytes } from './table/lookup';
export { Reg, REGISTER_NAMES, REGISTER_COUNT, gpr8, registerByName, registerName, registerWidth } from './table/registers';
