// Picking a form from a mnemonic and operand shapes, as an assembler does: every form of
// the mnemonic that accepts the operands is a candidate, and the shortest encoding in the
// mode's operand size wins (last tie-break: the lower form id, which is the SDM's primary
// opcode before aliases such as 82 /r, F6 /1, DC D0+i or the 0F 0D/18-1F reserved NOPs).
import type { Instruction } from '../instruction';
import type { Form } from '../table/form';
import { FORMS, memorySizeBytes } from '../table/lookup';
import { buildInstruction, type Operand } from './builders';
import { encodedLength } from './encoder';
import { EncodeError } from './errors';
import { slotOf } from './kinds';
import type { LabelResolver } from './label';

const CC_ALIASES: Record<string, string> = {
  c: 'b', nae: 'b', nb: 'ae', nc: 'ae', z: 'e', nz: 'ne', na: 'be', nbe: 'a',
  pe: 'p', po: 'np', nge: 'l', nl: 'ge', ng: 'le', nle: 'g',
};

// SAL is SHL (/4); the table's "sal" rows are the undocumented /6 alias that decoders name
// sal, which no assembler emits for SAL.
// ljmp/lcall/lret are the far spellings llvm-mc and GNU as accept in Intel mode too.
const ALIASES: Record<string, string> = {
  sal: 'shl', xlat: 'xlatb', fwait: 'wait', loopz: 'loope', loopnz: 'loopne', retn: 'ret',
  ljmp: 'jmp', lcall: 'call', lret: 'retf',
};

/** Canonical table mnemonic for an assembler spelling (jz -> je, sal -> shl, ...). */
export function canonicalMnemonic(m: string): string {
  const s = m.toLowerCase();
  if (ALIASES[s]) return ALIASES[s];
  for (const p of ['j', 'set', 'cmov']) {
    if (s.startsWith(p)) {
      const cc = CC_ALIASES[s.slice(p.length)];
      if (cc) return p + cc;
    }
  }
  return s;
}

const COMMUTATIVE = new Set(['xchg', 'test']);

let byMnemonic: Map<string, Form[]> | undefined;

function formsOf(mnemonic: string): readonly Form[] {
  if (!byMnemonic) {
    byMnemonic = new Map();
    for (const f of FORMS) {
      if (f.enc !== 'legacy' && f.enc !== '3dnow') continue;
      if (f.modes && !f.modes.includes(16) && !f.modes.includes(32)) continue;
      // The FSTCW-style forms are "WAIT; FNSTCW": the assembler spells them, decoders split them.
      const list = byMnemonic.get(f.mnemonic);
      if (list) list.push(f);
      else byMnemonic.set(f.mnemonic, [f]);
    }
  }
  return byMnemonic.get(mnemonic) ?? [];
}

export interface Candidate {
  readonly form: Form;
  /** The operands in the form's order (swapped for XCHG/TEST when that is what matched). */
  readonly operands: readonly Operand[];
  readonly length: number;
  readonly swapped: boolean;
}

/** 1 when the form's operand size is not the mode's (it needs a 66 prefix), else 0. */
function oszPenalty(f: Form, bits: 16 | 32): number {
  return f.osz !== undefined && f.osz !== bits ? 1 : 0;
}

function immBytes(f: Form): number {
  let n = 0;
  for (const k of f.ops) {
    const s = slotOf(k);
    if (s?.t === 'imm') n += s.size;
  }
  return n;
}

/**
 * Preference between candidates: the mode's operand size unless the operands force another
 * (PUSH 1000 in 32-bit code is PUSH imm32, not the shorter 66 PUSH imm16, which moves 2
 * bytes); then the shortest encoding; then the smaller immediate (ADD AX, 0FFFFh is 83 /0 ib,
 * as other assemblers write it); for XCHG the register order other assemblers use (reg =
 * first operand); then the lower form id.
 */
function compareCandidates(a: Candidate, b: Candidate, bits: 16 | 32): number {
  return oszPenalty(a.form, bits) - oszPenalty(b.form, bits)
    || a.length - b.length
    || immBytes(a.form) - immBytes(b.form)
    || (a.form.mnemonic === 'xchg' ? Number(b.swapped) - Number(a.swapped) : Number(a.swapped) - Number(b.swapped))
    || a.form.id - b.form.id;
}

function memSlotSize(form: Form): number | undefined {
  const hasMem = form.ops.some((k) => {
    const s = slotOf(k);
    return s !== undefined && (s.t === 'rmOrMem' || s.t === 'mem' || s.t === 'moffs');
  });
  return hasMem ? (form.mem ? memorySizeBytes(form.mem) : 0) : undefined;
}

/**
 * All forms of `mnemonic` that accept `operands` in `bits`-bit code, best first (see
 * compareCandidates). Label operands are resolved with `resolve`.
 */
export function candidates(bits: 16 | 32, mnemonic: string, operands: readonly Operand[], resolve?: LabelResolver): Candidate[] {
  const mn = canonicalMnemonic(mnemonic);
  const forms = formsOf(mn);
  if (forms.length === 0) throw new EncodeError(`unknown mnemonic '${mnemonic}'`);
  const orders: [readonly Operand[], boolean][] = [[operands, false]];
  if (COMMUTATIVE.has(mn) && operands.length === 2) orders.push([[operands[1]!, operands[0]!], true]);
  const out: Candidate[] = [];
  let lastError: unknown;
  for (const f of forms) {
    if (f.modes && !f.modes.includes(bits)) continue;
    for (const [ops, swapped] of orders) {
      try {
        const ins = buildInstruction(f, ops, bits, resolve);
        const length = encodedLength(ins, bits);
        out.push({ form: f, operands: ops, length, swapped });
      } catch (e) {
        if (!(e instanceof EncodeError)) throw e;
        lastError = e;
      }
    }
  }
  out.sort((a, b) => compareCandidates(a, b, bits));
  if (out.length === 0) {
    const why = lastError instanceof Error ? ` (last mismatch: ${lastError.message})` : '';
    throw new EncodeError(`no form of '${mnemonic}' takes these operands in ${bits}-bit code${why}`);
  }
  // A memory operand without a size must not be what decides between operand sizes.
  const m = operands.find((o) => o.kind === 'mem');
  if (m && m.kind === 'mem' && (m.size === 0 || m.size === '')) {
    // FPU environment/state images are sized by the operand size, which defaults to the
    // mode's: no ambiguity there (FLDENV [eax] is the 28-byte image in 32-bit code).
    const sizes = new Set(out.filter((c) => !/^Fpu(Env|State)/.test(c.form.mem ?? '')).map((c) => memSlotSize(c.form)).filter((s) => s !== undefined && s !== 0));
    if (sizes.size > 1) {
      throw new EncodeError(`'${mnemonic}': operand size is ambiguous (${[...sizes].join('/')} bytes); give the memory operand a size`);
    }
  }
  return out;
}

/** The IP-sized near-branch operand kind: NearBranch16 forms in 16-bit code, 32 in 32-bit. */
function naturalBranch(form: Form, bits: 16 | 32): boolean {
  return form.ops.some((k) => (bits === 16 ? k === 'br16_1' || k === 'br16_2' || k === 'xbegin_2' : k === 'br32_1' || k === 'br32_4' || k === 'xbegin_4'));
}

function relSize(form: Form): number {
  for (const k of form.ops) {
    const s = slotOf(k);
    if (s?.t === 'rel') return s.size;
  }
  return 0;
}

/**
 * Branch candidates for relaxation: IP-sized forms (if any), shortest displacement first.
 * Longer forms are only used when the target is out of reach of shorter ones.
 */
export function branchCandidates(bits: 16 | 32, mnemonic: string, operands: readonly Operand[], resolve?: LabelResolver): Candidate[] {
  const all = candidates(bits, mnemonic, operands, resolve);
  const nat = all.filter((c) => naturalBranch(c.form, bits));
  const list = nat.length ? nat : all;
  // Growing may only change the displacement size: LOOP must not turn from ECX into CX
  // (a 67 prefix) nor JMP from EIP into IP (a 66 prefix) to reach further.
  const best = list[0]!.form;
  const same = list.filter((c) => c.form.asz === best.asz && c.form.osz === best.osz);
  return same.sort((a, b) => relSize(a.form) - relSize(b.form) || a.length - b.length || a.form.id - b.form.id);
}

type AsmArgs = [mnemonic: string, ...operands: Operand[]] | [bits: 16 | 32, mnemonic: string, ...operands: Operand[]];

/**
 * asm1('mov', reg('eax'), imm(5)) or asm1(16, 'push', imm(5)): an Instruction for the best
 * form of the mnemonic (default 32-bit code). Near branches get the IP-sized displacement
 * (rel32, or rel16 in 16-bit code) since the distance is not known here; the Assembler
 * picks rel8 when it reaches.
 */
export function asm1(...args: AsmArgs): Instruction {
  let bits: 16 | 32 = 32;
  let rest: unknown[] = args;
  if (args[0] === 16 || args[0] === 32) {
    bits = args[0];
    rest = args.slice(1);
  }
  const [mnemonic, ...operands] = rest as [string, ...Operand[]];
  const hasRel = operands.some((o) => o.kind === 'rel');
  const list = hasRel ? branchCandidates(bits, mnemonic, operands) : candidates(bits, mnemonic, operands);
  let best = list[0]!;
  if (hasRel) {
    const widest = relSize(list[list.length - 1]!.form);
    best = list.find((c) => relSize(c.form) === widest)!;
  }
  return buildInstruction(best.form, best.operands, bits);
}
