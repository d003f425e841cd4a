// Register numbering. A register id is its index in REGISTER_NAMES; families are contiguous
// so that "family base + encoded number" gives the register, as in the SDM's ModRM tables
// (vol. 2 §2.1.5, table 2-2) and REX/VEX/EVEX extensions (§2.2.1, §2.3.5, §2.7.2).

const range = (prefix: string, n: number, suffix = ''): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}${i}${suffix}`);

/** r8..r15 with a size suffix. */
const upper = (suffix: string): string[] => Array.from({ length: 8 }, (_, i) => `r${i + 8}${suffix}`);

export const REGISTER_NAMES: readonly string[] = [
  'none',
  // 8-bit: encodings 0-7 without REX, then 4-7 with REX (spl..dil), then r8b..r15b
  'al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh', 'spl', 'bpl', 'sil', 'dil', ...upper('b'),
  'ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di', ...upper('w'),
  'eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', ...upper('d'),
  'rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', ...upper(''),
  'eip', 'rip',
  'es', 'cs', 'ss', 'ds', 'fs', 'gs',
  ...range('st', 8),
  ...range('mm', 8),
  ...range('xmm', 32),
  ...range('ymm', 32),
  ...range('zmm', 32),
  ...range('k', 8),
  ...range('cr', 16),
  ...range('dr', 16),
  ...range('tr', 8),
  ...range('bnd', 4),
  ...range('tmm', 8),
];

const at = (name: string): number => {
  const i = REGISTER_NAMES.indexOf(name);
  if (i < 0) throw new Error(`register table lacks ${name}`);
  return i;
};

/** Family bases: register = base + number. */
export const Reg = {
  None: 0,
  AL: at('al'),
  /** AH..BH for encodings 4-7 when no REX prefix is present. */
  AH: at('ah'),
  SPL: at('spl'),
  R8B: at('r8b'),
  AX: at('ax'),
  SP: at('sp'),
  BP: at('bp'),
  EAX: at('eax'),
  ESP: at('esp'),
  EBP: at('ebp'),
  RAX: at('rax'),
  RSP: at('rsp'),
  RBP: at('rbp'),
  EIP: at('eip'),
  RIP: at('rip'),
  ES: at('es'),
  CS: at('cs'),
  SS: at('ss'),
  DS: at('ds'),
  FS: at('fs'),
  GS: at('gs'),
  ST0: at('st0'),
  MM0: at('mm0'),
  XMM0: at('xmm0'),
  YMM0: at('ymm0'),
  ZMM0: at('zmm0'),
  K0: at('k0'),
  CR0: at('cr0'),
  DR0: at('dr0'),
  TR0: at('tr0'),
  BND0: at('bnd0'),
  TMM0: at('tmm0'),
} as const;

export const REGISTER_COUNT = REGISTER_NAMES.length;

/** 8-bit register for ModRM/opcode encoding n (0-15); REX present selects SPL..DIL over AH..BH. */
export function gpr8(n: number, rex: boolean): number {
  if (n < 4) return Reg.AL + n;
  if (n < 8) return rex ? Reg.SPL + (n - 4) : Reg.AH + (n - 4);
  return Reg.R8B + (n - 8);
}

export function registerName(r: number): string {
  return REGISTER_NAMES[r] ?? `reg${r}`;
}

export function registerByName(name: string): number | undefined {
  const i = REGISTER_NAMES.indexOf(name.toLowerCase());
  return i < 0 ? undefined : i;
}

/** Width in bits of a general-purpose, segment or special register; 0 for others. */
export function registerWidth(r: number): number {
  if (r >= Reg.AL && r < Reg.AX) return 8;
  if (r >= Reg.AX && r < Reg.EAX) return 16;
  if (r >= Reg.EAX && r < Reg.RAX) return 32;
  if (r >= Reg.RAX && r < Reg.EIP) return 64;
  if (r === Reg.EIP) return 32;
  if (r === Reg.RIP) return 64;
  if (r >= Reg.ES && r <= Reg.GS) return 16;
  return 0;
}
