// EFLAGS bit positions (SDM vol. 1 §3.4.3, vol. 3A §2.3).
export const CF = 1 << 0;
export const PF = 1 << 2;
export const AF = 1 << 4;
export const ZF = 1 << 6;
export const SF = 1 << 7;
export const TF = 1 << 8;
export const IF = 1 << 9;
export const DF = 1 << 10;
export const OF = 1 << 11;
export const IOPL = 3 << 12;
export const NT = 1 << 14;
export const RF = 1 << 16;
export const VM = 1 << 17;
export const AC = 1 << 18;
export const VIF = 1 << 19;
export const VIP = 1 << 20;
export const ID = 1 << 21;
/** The six status flags that arithmetic computes. */
export const STATUS = CF | PF | AF | ZF | SF | OF;
/** Bit 1 always reads as 1. */
export const FIXED_ONE = 1 << 1;
/** Flags a 386-class processor with CPUID implements (bits 22-31 and 3, 5, 15 are reserved as 0). */
export const IMPLEMENTED = STATUS | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;

/** All bits by name, for callers outside the CPU. */
export const Eflags = { CF, PF, AF, ZF, SF, TF, IF, DF, OF, IOPL, NT, RF, VM, AC, VIF, VIP, ID, STATUS } as const;
