// EFLAGS bits (Intel SDM vol. 1 §3.4.3, Figure 3-8) and the flag-name notation that the class
// table (classes.ts) uses: a space-separated list of SDM flag names, e.g. 'OF SF ZF AF PF CF'.

/** EFLAGS bit masks. IOPL is the two-bit field 13:12. */
export const Flag = {
  CF: 1 << 0,
  PF: 1 << 2,
  AF: 1 << 4,
  ZF: 1 << 6,
  SF: 1 << 7,
  TF: 1 << 8,
  IF: 1 << 9,
  DF: 1 << 10,
  OF: 1 << 11,
  IOPL: 3 << 12,
  NT: 1 << 14,
  RF: 1 << 16,
  VM: 1 << 17,
  AC: 1 << 18,
  VIF: 1 << 19,
  VIP: 1 << 20,
  ID: 1 << 21,
} as const;
export type FlagName = keyof typeof Flag;

/** The six status flags (SDM vol. 1 §3.4.3.1). */
export const STATUS_FLAGS = Flag.OF | Flag.SF | Flag.ZF | Flag.AF | Flag.PF | Flag.CF;

const FLAG_NAMES = Object.keys(Flag) as FlagName[];

/** Bits for a space-separated list of flag names; throws on a name that is not in `Flag`. */
export function flagsFromNames(names: string): number {
  let bits = 0;
  for (const n of names.split(' ')) {
    if (n === '') continue;
    if (!Object.hasOwn(Flag, n)) throw new Error(`unknown EFLAGS flag name '${n}' in '${names}'`);
    bits |= Flag[n as FlagName];
  }
  return bits;
}

/** Names of the flags set in `bits`, in EFLAGS bit order, space-separated. */
export function flagNames(bits: number): string {
  return FLAG_NAMES.filter((n) => (bits & Flag[n]) === Flag[n]).join(' ');
}
