// "Which form would a decoder see in these bytes?" Some forms overlap: the generic
// RESERVEDNOP 0F 18-1F /r rows share bytes with PREFETCHh/NOP/CLDEMOTE, XCHG eAX,eAX (90) is
// NOP, F3 90 is PAUSE, and a REP prefix in front of BSF/BSR/POPCNT-like 0F opcodes becomes a
// mandatory prefix (TZCNT, LZCNT). Decoders resolve such overlaps by taking the most
// specific row (SDM vol. 2 §2.1.2, "Opcodes" / appendix A: fixed ModRM bytes before
// /digit, /digit before /r, mandatory prefix before none, exact opcode before +r). The
// encoder runs its own output through that rule and refuses operands that would come back
// as a different form, instead of silently emitting a different instruction.
import type { Form } from '../table/form';
import { FORMS } from '../table/lookup';
import { slotOf } from './kinds';

/** The decode-relevant facts of an encoding the encoder is about to emit. */
export interface ByteView {
  readonly bits: 16 | 32;
  readonly map: Form['map'];
  /** First opcode byte after the map escape. */
  readonly opcode: number;
  /** The byte after the opcode when the form has a ModRM (or fixed second byte), else -1. */
  readonly modrm: number;
  readonly has66: boolean;
  readonly has67: boolean;
  /** The last of F2/F3 emitted (as REP/REPNE or mandatory prefix), or 0. */
  readonly lastRep: 0 | 0xf2 | 0xf3;
}

interface Shape {
  readonly form: Form;
  readonly opreg: boolean;
  readonly sti: boolean;
  readonly hasModrm: boolean;
  readonly memOnly: boolean;
  readonly regOnly: boolean;
  readonly score: number;
}

function shapeOf(f: Form): Shape {
  let opreg = false, sti = false, modrm = f.opLen === 2 || f.reg !== undefined, memOnly = false, regOnly = false;
  for (const k of f.ops) {
    const s = slotOf(k);
    if (!s) continue;
    switch (s.t) {
      case 'opreg': opreg = true; break;
      case 'sti': sti = true; break;
      case 'mem': case 'regmem': modrm = true; memOnly = true; break;
      case 'rm': modrm = true; regOnly = true; break;
      case 'reg': case 'rmOrMem': modrm = true; break;
      default: break;
    }
  }
  if (f.opLen === 2) regOnly = true;
  if (f.flags?.includes('ignoresMod')) regOnly = false;
  const score = (f.opLen === 2 ? 16 : 0) + (f.reg !== undefined ? 8 : 0) + (f.pp !== undefined ? 4 : 0) + (opreg ? 0 : 2) + (memOnly || regOnly ? 1 : 0);
  return { form: f, opreg, sti, hasModrm: modrm, memOnly, regOnly, score };
}

let index: Map<string, Shape[]> | undefined;

function buildIndex(): Map<string, Shape[]> {
  const m = new Map<string, Shape[]>();
  const add = (key: string, s: Shape): void => {
    const list = m.get(key);
    if (list) list.push(s);
    else m.set(key, [s]);
  };
  for (const f of FORMS) {
    if (f.enc !== 'legacy' || f.flags?.includes('fwait')) continue;
    if (f.modes && !f.modes.includes(16) && !f.modes.includes(32)) continue;
    const s = shapeOf(f);
    const first = f.opLen === 2 ? f.op >> 8 : f.op;
    for (let k = 0; k < (s.opreg ? 8 : 1); k++) add(`${f.map}:${first + k}`, s);
  }
  return m;
}

function matches(s: Shape, v: ByteView): boolean {
  const f = s.form;
  if (f.modes && !f.modes.includes(v.bits)) return false;
  if (s.hasModrm !== v.modrm >= 0) return false;
  if (f.opLen === 2) {
    const second = f.op & 0xff;
    if (s.sti ? (v.modrm & 0xf8) !== second : v.modrm !== second) return false;
  }
  if (f.reg !== undefined && ((v.modrm >> 3) & 7) !== f.reg) return false;
  const mod = v.modrm >> 6;
  if (s.memOnly && mod === 3) return false;
  if (s.regOnly && mod !== 3) return false;
  // The last F2/F3 wins as mandatory prefix; 66 counts only when neither is present.
  const mp = v.lastRep || (v.has66 ? 0x66 : 0);
  switch (f.pp) {
    case 'np': if (mp !== 0) return false; break;
    case '66': if (mp !== 0x66) return false; break;
    case 'F3': if (mp !== 0xf3) return false; break;
    case 'F2': if (mp !== 0xf2) return false; break;
    default: break;
  }
  // MOVBE/RDRAND/RDSEED (nfx) and PTWRITE (no66) are #UD with those prefixes.
  if (v.lastRep && f.flags?.includes('nfx')) return false;
  if (v.has66 && f.flags?.includes('no66')) return false;
  const other = v.bits === 16 ? 32 : 16;
  if (f.osz !== undefined && f.pp !== '66' && f.osz !== (v.has66 ? other : v.bits)) return false;
  if (f.asz !== undefined && f.asz !== (v.has67 ? other : v.bits)) return false;
  return true;
}

/**
 * The form a decoder would pick for the bytes described by `v`: the most specific matching
 * row. `prefer` wins ties (two rows of equal specificity are the same encoding seen twice).
 */
export function decodesAs(v: ByteView, prefer: Form): Form | undefined {
  index ??= buildIndex();
  const list = index.get(`${v.map}:${v.opcode}`);
  if (!list) return undefined;
  let best: Shape | undefined;
  let bestHasPrefer = false;
  for (const s of list) {
    if (!matches(s, v)) continue;
    if (!best || s.score > best.score) {
      best = s;
      bestHasPrefer = s.form === prefer;
    } else if (s.score === best.score && s.form === prefer) {
      bestHasPrefer = true;
    }
  }
  if (!best) return undefined;
  return bestHasPrefer ? prefer : best.form;
}
