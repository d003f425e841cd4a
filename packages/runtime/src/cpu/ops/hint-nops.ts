// Encodings a P6-family processor (CPUID.1:EAX = 0633h, ops/system.ts) executes as NOPs, and
// one it executes as an older instruction because it ignores a prefix (SDM vol. 2 NOP, PAUSE;
// vol. 2 appendix A, opcode map table A-3 "0F 0D", "0F 18-0F 1F: NOP/hint"):
//   - PAUSE (F3 90): REP NOP, a spin-loop hint; a NOP on every processor.
//   - the reserved-NOP / hint space 0F 0D and 0F 18-0F 1F with any ModRM: NOP r/m (0F 1F /0, the
//     multi-byte NOP gcc and binutils pad with; "supported on P6 family" by the NOP page),
//     PREFETCHh, PREFETCHW/PREFETCH (0F 0D), PREFETCHIT0/1, CLDEMOTE (0F 1C /0), ENDBR32/64 and
//     RDSSPD (F3 0F 1E: NOPs without CET), and the plain reserved NOPs. None of them accesses
//     memory, so a memory operand neither faults nor is translated.
//   - WBNOINVD (F3 0F 09): WBINVD with a REP prefix that older processors ignore (SDM vol. 2
//     WBNOINVD), so it is WBINVD here, privileged like it.
// The hint space is data (HINT_NOP_SPACE); the handler table gives every form in it this NOP.
import { FORMS, type Form } from '@ringshift/decoder';
import type { Handler } from '../cpu';
import { Fault, Vector } from '../fault';

/** Opcode ranges of the two-byte map that are NOPs on this processor (primary opcode byte). */
export const HINT_NOP_SPACE: readonly { readonly map: '0F'; readonly from: number; readonly to: number }[] = [
  { map: '0F', from: 0x0d, to: 0x0d },
  { map: '0F', from: 0x18, to: 0x1f },
];

/** True for a legacy form whose opcode lies in HINT_NOP_SPACE (two-byte-opcode forms by their first byte). */
export function inHintNopSpace(f: Form): boolean {
  if (f.enc !== 'legacy') return false;
  const op = f.opLen === 2 ? f.op >>> 8 : f.op;
  return HINT_NOP_SPACE.some((r) => r.map === f.map && op >= r.from && op <= r.to);
}

const nop: Handler = () => {};

const byForm: Record<string, Handler> = {
  Pause: nop,
  Wbnoinvd: (cpu) => {
    if (cpu.protectedMode && (cpu.cpl !== 0 || cpu.v86)) throw new Fault(Vector.GP, 0);
  },
};
for (const f of FORMS) if (inHintNopSpace(f) && (!f.modes || f.modes.includes(32) || f.modes.includes(16))) byForm[f.name] = nop;

export const HINT_NOPS = { byForm };
