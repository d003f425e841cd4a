// The bench guest's parameter block (bench/guests/loops.S, `bench_params`): the magic
// "RSBENCH1", then the loop (0 compute, 1 paging) and the iteration count, both little-endian
// dwords. The bench patches a copy of the image, so one build serves every run.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOOP_MODES = { compute: 0, paging: 1 } as const;
export type LoopName = keyof typeof LOOP_MODES;

const MAGIC = new TextEncoder().encode('RSBENCH1');

export function patchLoops(image: Uint8Array, loop: LoopName, iterations: number): Uint8Array {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 0xffffffff) throw new RangeError(`iterations must be a positive 32-bit integer, not ${iterations}`);
  let at = -1;
  outer: for (let i = 0; i + MAGIC.length + 8 <= image.length; i++) {
    for (let j = 0; j < MAGIC.length; j++) if (image[i + j] !== MAGIC[j]) continue outer;
    if (at >= 0) throw new Error('the bench guest holds two RSBENCH1 parameter blocks');
    at = i;
  }
  if (at < 0) throw new Error('the bench guest has no RSBENCH1 parameter block');
  const out = image.slice();
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setUint32(at + 8, LOOP_MODES[loop], true);
  v.setUint32(at + 12, iterations >>> 0, true);
  return out;
}

/** Builds bench/guests (make) and returns loops.elf's bytes, or why it cannot. */
export function buildLoops(root: string): { image: Uint8Array } | { error: string } {
  const dir = join(root, 'bench', 'guests');
  const r = spawnSync('make', ['-s', '-C', dir], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { error: `make -C bench/guests failed: ${(r.error?.message ?? r.stderr ?? '').trim().split('\n').slice(-2).join(' ')}` };
  const file = join(dir, 'loops.elf');
  if (!existsSync(file)) return { error: 'make -C bench/guests built no loops.elf' };
  return { image: new Uint8Array(readFileSync(file)) };
}
