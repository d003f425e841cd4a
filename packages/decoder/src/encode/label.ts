// A position in an Assembler's output, usable as a branch target, immediate or displacement
// before it is known. Labels belong to the assembler that made them.

export class Label {
  /** Address once bound and assembled; -1 before. */
  address = -1;

  constructor(
    readonly owner: object,
    readonly id: number,
    readonly name: string | undefined,
  ) {}

  toString(): string {
    return this.name ?? `L${this.id}`;
  }
}

/** Resolves a label to its (estimated or final) address. */
export type LabelResolver = (label: Label) => number;
