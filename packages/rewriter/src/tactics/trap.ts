// The fallback when no jump fits: the site traps and the monitor emulates it. Instructions that
// already fault at CPL 1 (privileged ones #GP; CLI/STI/IN/OUT/INS/OUTS #GP because the monitor
// runs the guest with IOPL 0) are left unchanged; the others (PUSHF, POPF, SGDT, MOV Sreg, ...)
// would silently misbehave, so their first byte becomes INT3 and the monitor maps the #BP
// (EIP = addr + 1) back to the site. With 'empty' stubs (--select jumps) a trap would change the
// program's behaviour, so the site is skipped instead.
import { classOf, mnemonicOf } from '@ringshift/decoder';
import type { Site } from '../model';
import { INT3 } from './context';
import type { PlanContext } from './context';

/** IOPL-sensitive mnemonics that #GP at CPL > IOPL (the monitor keeps the guest's real IOPL at 0). */
export const FAULT_AT_CPL1_IOPL: ReadonlySet<string> = new Set([
  'cli', 'sti', 'in', 'out', 'insb', 'insw', 'insd', 'outsb', 'outsw', 'outsd',
]);

/** True when the instruction always faults at CPL 1 with IOPL 0, so it needs no INT3. */
export function faultsAtCpl1(formId: number): boolean {
  const c = classOf(formId);
  return c.privileged === 'always' || FAULT_AT_CPL1_IOPL.has(mnemonicOf(formId));
}

export interface TrapPatch {
  /** The INT3 written over the first byte, or undefined when the site is left unchanged. */
  readonly write: Uint8Array | undefined;
}

export function trap(ctx: PlanContext, site: Site): TrapPatch | string {
  if (ctx.stubKindOf(site) === 'empty') return 'a trap would change the behaviour of a native program';
  if (faultsAtCpl1(site.formId)) return { write: undefined };
  if (ctx.claimed.has(site.addr) || ctx.pinned.has(site.addr)) return 'the site\'s first byte is owned by another patch';
  return { write: Uint8Array.of(INT3) };
}
