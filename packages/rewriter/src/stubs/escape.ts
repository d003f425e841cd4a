// The escape to the monitor: `int 0x81` (CD 81). The monitor finds the site by the INT's address
// (PatchedSite.escapeAddr; the trap frame's EIP is escapeAddr + 2), emulates the site instruction
// with the site's ORIGINAL addresses (EIP = addr, next EIP = addr + length), and resumes at
// escapeAddr + 2 unless the instruction transferred control. docs/patch-abi.md §Escape.
import type { CodeBuffer } from './code';

export const ESCAPE_VECTOR = 0x81;
export const ESCAPE_BYTES = Uint8Array.of(0xcd, ESCAPE_VECTOR);

/** Appends the escape; returns its address. */
export function emitEscape(buf: CodeBuffer): number {
  const at = buf.here;
  buf.raw(ESCAPE_BYTES);
  return at;
}
