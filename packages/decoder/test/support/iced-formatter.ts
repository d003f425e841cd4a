// The iced-x86 Intel formatter configured so that its text is what formatIntel() prints; the
// reference for test/format*.test.ts. Each setting is spelled out (defaults included) so the
// contract is visible in one place; src/format/README.md lists the same table.
import { createRequire } from 'node:module';
import type { IntelFormatOptions } from '../../src/format/intel';

type IcedModule = typeof import('iced-x86');
export type IcedFormatter = InstanceType<IcedModule['Formatter']>;

// iced-x86's package is CommonJS with a synchronously loaded wasm module.
export const iced: IcedModule = createRequire(import.meta.url)('iced-x86') as IcedModule;

/**
 * iced-x86 1.21 Intel formatter matching formatIntel(ins, opts). With no `opts` this is the
 * fixed reference configuration:
 *   lowercase, hex as 0x1a2b (0-9 in decimal), ", " between operands, memory size always
 *   ("dword ptr [eax+4]"), no "short"/"near" branch keywords, branch targets and
 *   displacements without leading zeros, RIP-relative operands as absolute addresses,
 *   immediates unsigned at operand size, no pseudo-ops (cmpps xmm0, xmm1, 1 — not cmpltps).
 */
export function makeIcedIntelFormatter(opts: IntelFormatOptions = {}): IcedFormatter {
  const f = new iced.Formatter(iced.FormatterSyntax.Intel);
  // Chosen (differ from iced-x86's defaults).
  f.memorySizeOptions = iced.MemorySizeOptions.Always;
  f.hexPrefix = opts.hexPrefix ?? '0x';
  f.hexSuffix = opts.hexSuffix ?? '';
  f.uppercaseHex = opts.uppercaseHex ?? false;
  f.spaceAfterOperandSeparator = opts.spaceAfterComma ?? true;
  f.showBranchSize = false;
  f.branchLeadingZeros = false;
  f.usePseudoOps = false;
  // iced-x86 defaults, pinned.
  f.uppercaseAll = opts.uppercase ?? false;
  f.uppercasePrefixes = false;
  f.uppercaseMnemonics = false;
  f.uppercaseRegisters = false;
  f.uppercaseKeywords = false;
  f.uppercaseDecorators = false;
  f.smallHexNumbersInDecimal = opts.smallNumbersInDecimal ?? true;
  f.addLeadingZeroToHexNumbers = true;
  f.leadingZeros = false;
  f.displacementLeadingZeros = false;
  f.signedImmediateOperands = opts.signedImmediates ?? false;
  f.signedMemoryDisplacements = true;
  f.ripRelativeAddresses = opts.ripRelative ?? false;
  f.showZeroDisplacements = false;
  f.showUselessPrefixes = false;
  f.alwaysShowSegmentRegister = false;
  f.alwaysShowScale = false;
  f.scaleBeforeIndex = false;
  f.spaceAfterMemoryBracket = false;
  f.spaceBetweenMemoryAddOperators = false;
  f.spaceBetweenMemoryMulOperators = false;
  f.preferSt0 = false;
  f.numberBase = 16;
  f.digitSeparator = '';
  f.firstOperandCharIndex = 0;
  f.tabSize = 0;
  return f;
}
