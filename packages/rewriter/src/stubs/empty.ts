// 'empty' stubs (--select jumps): instrumentation points that do nothing but run the original
// instruction, relocated, so the rewritten program behaves exactly like the original. They
// exist to measure and test the patching machinery on programs that run natively.
import type { Instruction } from '@ringshift/decoder';
import type { CodeBuffer } from './code';
import { relocate } from './relocate';

/** Appends the relocated site instruction; returns a refusal reason instead when it cannot move. */
export function emitEmpty(buf: CodeBuffer, ins: Instruction, bytes: Uint8Array, last: boolean): string | undefined {
  return relocate(buf, ins, bytes, last);
}
