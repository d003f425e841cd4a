// Condition codes (SDM vol. 1 appendix B, table B-1), by the suffix the mnemonics use.
import type { Cpu } from '../cpu';
import * as F from '../eflags';

export const CONDITIONS: Readonly<Record<string, (cpu: Cpu) => boolean>> = {
  o: (c) => c.getFlag(F.OF),
  no: (c) => !c.getFlag(F.OF),
  b: (c) => c.getFlag(F.CF),
  ae: (c) => !c.getFlag(F.CF),
  e: (c) => c.getFlag(F.ZF),
  ne: (c) => !c.getFlag(F.ZF),
  be: (c) => c.getFlag(F.CF) || c.getFlag(F.ZF),
  a: (c) => !c.getFlag(F.CF) && !c.getFlag(F.ZF),
  s: (c) => c.getFlag(F.SF),
  ns: (c) => !c.getFlag(F.SF),
  p: (c) => c.getFlag(F.PF),
  np: (c) => !c.getFlag(F.PF),
  l: (c) => c.getFlag(F.SF) !== c.getFlag(F.OF),
  ge: (c) => c.getFlag(F.SF) === c.getFlag(F.OF),
  le: (c) => c.getFlag(F.ZF) || c.getFlag(F.SF) !== c.getFlag(F.OF),
  g: (c) => !c.getFlag(F.ZF) && c.getFlag(F.SF) === c.getFlag(F.OF),
};
