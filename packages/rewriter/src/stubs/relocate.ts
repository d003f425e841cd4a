// Moving an original instruction into a trampoline so that it does exactly what it did in place.
// In 32-bit code only relative branches depend on where an instruction sits (there is no
// EIP-relative addressing), so everything else is copied byte for byte, and:
//   JMP rel8/rel32          -> JMP rel32 to the original target
//   Jcc rel8/rel32          -> Jcc rel32 to the original target
//   CALL rel32              -> PUSH imm32 (the ORIGINAL return address); JMP rel32 target
//   CALL r/m32 (no ESP use) -> PUSH imm32 (the original return address); JMP r/m32 (FF /4)
//   LOOP/LOOPcc/JECXZ rel8  -> the same bytes with rel8 = 2; JMP short +5; JMP rel32 target
// A relocated CALL pushes its original next address, so the callee sees (and returns to) the
// original code: that address must still be an instruction boundary of the original, which
// holds only for the last instruction of an evicted run (its next address is `resume`). The
// caller passes `last` and we refuse calls elsewhere. Refused outright: 16-bit-operand
// branches (they truncate EIP), XBEGIN (its fallback address is relative), and anything with
// flow 'interrupt' (INT n, INT3, INTO, SYSENTER, ...: they would reveal the trampoline's
// address to the handler as the return address).
import { OpKind, Reg, classOf, mnemonicOf } from '@ringshift/decoder';
import type { Instruction } from '@ringshift/decoder';
import { CONDITION_CODES, CodeBuffer } from './code';

const LOOP_LIKE = new Set(['loop', 'loope', 'loopne', 'jecxz', 'jcxz']);

/** Why an instruction cannot be relocated, or undefined if it can. */
export function relocationRefusal(ins: Instruction, last: boolean): string | undefined {
  const cls = classOf(ins.form);
  const m = mnemonicOf(ins.form);
  if (!ins.valid) return 'undecodable bytes';
  if (cls.flow === 'interrupt') return `${m} would push the trampoline's address as its return address`;
  if (cls.flow === 'xbegin-xabort-xend' && m === 'xbegin') return 'XBEGIN has a relative fallback address';
  for (let k = 0; k < ins.opCount; k++) {
    const kind = ins.opKinds[k];
    if (kind === OpKind.NearBranch16) return `${m} with a 16-bit operand size truncates EIP`;
  }
  if (cls.flow === 'call' || cls.flow === 'indirect-call') {
    if (!last) return `${m} pushes its next address, which would be inside the overwritten bytes`;
    if (cls.flow === 'indirect-call') {
      if (ins.opKinds[0] !== OpKind.Register && ins.opKinds[0] !== OpKind.Memory) return `far ${m} is not relocated`;
      if (ins.operandSize !== 32) return `${m} with a ${ins.operandSize}-bit operand`;
      if (ins.opKinds[0] === OpKind.Memory && (usesEsp(ins.memBase) || usesEsp(ins.memIndex))) {
        return `${m} through an ESP-based address (PUSH would move it)`;
      }
      if (ins.opKinds[0] === OpKind.Register && usesEsp(ins.opRegs[0]!)) return `${m} ESP`;
    } else if (ins.opKinds[0] !== OpKind.NearBranch32) {
      return `far ${m} pushes CS:EIP of the trampoline`;
    }
  }
  return undefined;
}

const usesEsp = (r: number): boolean => r === Reg.ESP || r === Reg.SP;

/**
 * Appends the relocated form of `ins` (whose original bytes are `bytes`) to `buf`.
 * Returns a refusal reason instead, writing nothing.
 */
export function relocate(buf: CodeBuffer, ins: Instruction, bytes: Uint8Array, last: boolean): string | undefined {
  const why = relocationRefusal(ins, last);
  if (why) return why;
  const m = mnemonicOf(ins.form);
  const cls = classOf(ins.form);
  const next = (ins.ip + ins.length) >>> 0;
  const isNear = ins.opCount > 0 && ins.opKinds[0] === OpKind.NearBranch32;
  if (isNear) {
    const target = ins.target >>> 0;
    if (m === 'jmp') {
      buf.jmp(target);
    } else if (m === 'call') {
      buf.push32(next).jmp(target);
    } else if (LOOP_LIKE.has(m)) {
      // The original bytes up to the rel8 (prefixes included), aimed 2 bytes ahead.
      buf.raw(bytes.subarray(0, bytes.length - 1)).raw([0x02, 0xeb, 0x05]).jmp(target);
    } else {
      const cc = CONDITION_CODES[m];
      if (cc === undefined) return `near branch ${m} has no rel32 form known to the relocator`;
      buf.jcc(cc, target);
    }
    return undefined;
  }
  if (cls.flow === 'indirect-call') {
    // FF /2 -> FF /4: same ModRM/SIB/displacement, reg field 2 -> 4; prefixes kept.
    const out = new Uint8Array(bytes);
    const ff = out.indexOf(0xff);
    const modrm = ff >= 0 ? out[ff + 1] : undefined;
    if (ff < 0 || modrm === undefined || ((modrm >> 3) & 7) !== 2) return `${m}: not an FF /2 encoding`;
    out[ff + 1] = (modrm & 0xc7) | (4 << 3);
    buf.push32(next).raw(out);
    return undefined;
  }
  buf.raw(bytes);
  return undefined;
}
