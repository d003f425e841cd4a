// Shared by the families that compute their status flags eagerly (shifts, multiply, BCD, bit
// scans): the SF/ZF/PF bits of a result, which every one of them defines the same way
// (SDM vol. 1 §3.4.3.1).
import * as F from '../eflags';
import { parity } from '../lazy-flags';

export const sizeMask = (size: number): number => (size === 32 ? -1 : (1 << size) - 1);

/** SF, ZF and PF of a `size`-bit result, as EFLAGS bits. */
export function szpOf(res: number, size: number): number {
  const m = sizeMask(size);
  let f = 0;
  if ((res & m) === 0) f |= F.ZF;
  if ((res >>> (size - 1)) & 1) f |= F.SF;
  if (parity(res)) f |= F.PF;
  return f;
}
