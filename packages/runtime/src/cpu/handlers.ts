// The dispatch table: form id -> handler. Families in ops/ export handlers keyed by mnemonic
// (for every form of it) or by exact form name (overrides); this is the one place that joins
// the decoder's table to the semantics, so an instruction's handler is found by its name.
import { FORMS, type Form } from '@ringshift/decoder';
import type { Handler } from './cpu';
import { registerEmitter, type Emitter } from './emit';
import { ARITH } from './ops/arith';
import { BCD } from './ops/bcd';
import { BITS } from './ops/bits';
import { CONTROL } from './ops/control';
import { DATA } from './ops/data';
import { DESCRIPTORS } from './ops/descriptors';
import { FLAGS_OPS } from './ops/flags';
import { GP_EXTRA } from './ops/gp-extra';
import { MSR } from './ops/msr';
import { MULDIV } from './ops/muldiv';
import { SHIFT } from './ops/shift';
import { STACK } from './ops/stack';
import { STRING } from './ops/string';
import { SYSTEM } from './ops/system';
import { FAR_POINTER } from './ops/far-pointer';
import { HINT_NOPS } from './ops/hint-nops';
import { TRAPPING } from './ops/trapping';
import { ABSENT_FEATURES, ABSENT_RULE_HANDLERS } from './absent-features';

export interface Family {
  readonly byMnemonic?: Readonly<Record<string, Handler>>;
  readonly byForm?: Readonly<Record<string, Handler>>;
  /**
   * Source emitters for the block compiler (emit.ts), keyed like the handlers (a mnemonic of
   * byMnemonic or a form name of byForm): each stands for that handler and only for it.
   */
  readonly jit?: Readonly<Record<string, Emitter>>;
}

export const FAMILIES: readonly Family[] = [DATA, ARITH, STACK, CONTROL, FLAGS_OPS, SYSTEM, SHIFT, MULDIV, BCD, BITS, STRING, DESCRIPTORS, MSR, GP_EXTRA, FAR_POINTER, TRAPPING, HINT_NOPS];

/** Forms a 32-bit processor can execute: legacy encodings in 16/32-bit mode. */
const ia32 = (f: Form): boolean => (f.enc === 'legacy') && (!f.modes || f.modes.includes(32) || f.modes.includes(16));

export function buildHandlers(families: readonly Family[] = FAMILIES): (Handler | undefined)[] {
  const table: (Handler | undefined)[] = [];
  const byName = new Map(FORMS.map((f) => [f.name, f]));
  for (const fam of families) {
    for (const [m, h] of Object.entries(fam.byMnemonic ?? {})) {
      let n = 0;
      for (const f of FORMS) if (f.mnemonic === m && ia32(f)) { table[f.id] = h; n++; }
      if (n === 0) throw new Error(`handler for unknown mnemonic ${m}`);
    }
  }
  for (const fam of families) {
    for (const [key, e] of Object.entries(fam.jit ?? {})) {
      const h = fam.byMnemonic?.[key] ?? fam.byForm?.[key];
      if (!h) throw new Error(`emitter for ${key}, which the family has no handler for`);
      registerEmitter(h, e);
    }
    for (const [name, h] of Object.entries(fam.byForm ?? {})) {
      const f = byName.get(name);
      if (!f) throw new Error(`handler for unknown form ${name}`);
      table[f.id] = h;
    }
  }
  // Features this CPU does not have (absent-features.ts): every form a row covers that decodes in
  // 16/32-bit mode (VEX/EVEX/XOP included) and has no handler gets the row's rule. A form with a
  // handler keeps it (the absent-features test checks that no row covers one).
  for (const f of FORMS) {
    if (table[f.id] !== undefined || (f.modes && !f.modes.includes(32) && !f.modes.includes(16))) continue;
    const row = ABSENT_FEATURES.find((r) => r.forms.some((p) => p.test(f.name)));
    if (row) table[f.id] = ABSENT_RULE_HANDLERS[row.rule];
  }
  return table;
}

/**
 * Operand size in bits of each form: its first operand's register width, or for a first
 * operand that does not say (moffs, as in A2 MOV moffs8, AL) the second's, else o16/o32.
 */
export const OPSIZE = new Uint8Array(Math.max(...FORMS.map((f) => f.id)) + 1);
const widthOf = (k: string): number =>
  /^(r8_|al$)/.test(k) ? 8 : /^(r16_|ax$)/.test(k) ? 16 : /^(r32_|eax$)/.test(k) ? 32 : 0;
for (const f of FORMS) {
  const first = f.ops[0] ?? '';
  const w = widthOf(first) || (first === 'mem_offs' ? widthOf(f.ops[1] ?? '') : 0);
  OPSIZE[f.id] = w || (f.osz === 16 ? 16 : 32);
}
