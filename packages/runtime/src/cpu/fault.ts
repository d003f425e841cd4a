// Processor exceptions (SDM vol. 3A §6.3, table 6-1). A fault is thrown from deep inside an
// instruction (a memory access, a descriptor check) and caught by the execution loop, which
// delivers it; the object is not an Error, so throwing it captures no stack trace.

export const Vector = {
  DE: 0, DB: 1, NMI: 2, BP: 3, OF: 4, BR: 5, UD: 6, NM: 7, DF: 8, TS: 10, NP: 11, SS: 12, GP: 13, PF: 14,
  MF: 16, AC: 17, MC: 18, XM: 19,
} as const;

/** Vectors that push an error code (SDM vol. 3A table 6-1). */
export const HAS_ERROR_CODE = new Set<number>([Vector.DF, Vector.TS, Vector.NP, Vector.SS, Vector.GP, Vector.PF, Vector.AC]);

export class Fault {
  constructor(
    readonly vector: number,
    /** Error code, or -1 when the exception pushes none. */
    readonly errorCode: number = -1,
  ) {}
}

export const fault = (vector: number, errorCode = -1): Fault => new Fault(vector, errorCode);
