// Spellings the Intel formatter prints that differ from the table's own names: x87 stack
// registers, memory-size keywords and broadcast decorators. Built once at load.
import { MEMORY_SIZES } from '../table/lookup';
import { REGISTER_COUNT, REGISTER_NAMES, Reg } from '../table/registers';

/**
 * Pseudo register id for the bare "st" that iced-x86 prints where the SDM writes ST(0) as an
 * implied or explicit stack-top operand (FADD ST, ST(1); FLD ST, ST(1); FST ST(1), ST).
 */
export const REG_ST = REGISTER_COUNT;

/** Register names as iced-x86's Intel formatter spells them (st(0) rather than st0). */
export const INTEL_REGISTER_NAMES: readonly string[] = (() => {
  const names = REGISTER_NAMES.slice();
  for (let i = 0; i < 8; i++) names[Reg.ST0 + i] = `st(${i})`;
  names[REG_ST] = 'st';
  return names;
})();

// Keyword by operand size in bytes. Sizes with no keyword (FXSAVE's 512 bytes, XSAVE areas,
// tiles) print no size at all, as in iced-x86.
const KEYWORD_BY_SIZE: Readonly<Record<number, string>> = {
  1: 'byte ptr',
  2: 'word ptr',
  4: 'dword ptr',
  6: 'fword ptr',
  8: 'qword ptr',
  10: 'tbyte ptr',
  14: 'fpuenv14 ptr',
  16: 'xmmword ptr',
  28: 'fpuenv28 ptr',
  32: 'ymmword ptr',
  48: 'mem384 ptr',
  64: 'zmmword ptr',
  94: 'fpustate94 ptr',
  108: 'fpustate108 ptr',
};

// Where iced-x86's keyword is not the one its byte size suggests.
const KEYWORD_BY_NAME: Readonly<Record<string, string>> = {
  // m16:64 far pointer (REX.W JMP/CALL FAR [mem]) is 10 bytes but iced calls it fword.
  Fword10: 'fword ptr',
};

/** Memory-size keyword (e.g. 'dword ptr') for an iced-x86 MemorySize name, or '' for none. */
export function memoryKeyword(name: string | undefined): string {
  if (!name) return '';
  const special = KEYWORD_BY_NAME[name];
  if (special !== undefined) return special;
  const info = (MEMORY_SIZES as Readonly<Record<string, { size: number; element: number; broadcast: boolean }>>)[name];
  if (!info) return '';
  // A broadcast operand reads one element, so the keyword names the element size.
  return KEYWORD_BY_SIZE[info.broadcast ? info.element : info.size] ?? '';
}

/** Broadcast decorator text ('1to16') for a Broadcast<bits>_<element> MemorySize name, or ''. */
export function broadcastDecorator(name: string | undefined): string {
  if (!name || !name.startsWith('Broadcast')) return '';
  const info = (MEMORY_SIZES as Readonly<Record<string, { element: number }>>)[name];
  if (!info || info.element === 0) return '';
  const vectorBits = parseInt(name.slice('Broadcast'.length), 10);
  return `1to${vectorBits / (info.element * 8)}`;
}
