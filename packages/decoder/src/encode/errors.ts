// One error type for everything the encoder, builders and assembler reject, so callers
// (the rewriter, tests) can tell "this instruction cannot be encoded" from a programming bug.

export class EncodeError extends Error {
  /** Form the bytes would decode as instead, when the operands select a more specific form. */
  readonly shadowedBy: number | undefined;

  constructor(message: string, shadowedBy?: number) {
    super(message);
    this.name = 'EncodeError';
    this.shadowedBy = shadowedBy;
  }
}
