// Every backend whose monitor keeps memory above the guest's RAM hides it from the guest in every
// place a kernel can read its memory size: the multiboot mem_upper and memory map, and the CMOS
// memory-size bytes (found by `ringshift check`: under rewrite the CMOS said 128 KiB more).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGuest, type BackendName } from '../src/index';
import { MULTIBOOT_INFO_ADDRESS } from '../src/machine/multiboot';

const EXAMPLES = join(import.meta.dirname, '../../../examples');
const ORIGINAL = readFileSync(join(EXAMPLES, 'hello/hello.elf'));
const REWRITTEN = readFileSync(join(EXAMPLES, 'hello/hello.rewritten.elf'));
const CMOS_SIZE_BYTES = [0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35];

function memorySizeAsSeen(backend: BackendName, memoryBytes: number): { cmos: number[]; memUpper: number } {
  const g = loadGuest(backend === 'rewrite' ? REWRITTEN : ORIGINAL, { backend, memoryBytes });
  return { cmos: CMOS_SIZE_BYTES.map((i) => g.machine.cmos.ram[i]!), memUpper: g.machine.mem.read32(MULTIBOOT_INFO_ADDRESS + 8) >>> 0 };
}

describe('the guest sees its own RAM size, not the monitor memory', () => {
  for (const memoryBytes of [32 << 20, 128 << 20]) {
    const native = memorySizeAsSeen('native', memoryBytes);
    it(`native reports ${memoryBytes >> 20} MiB in the CMOS`, () => {
      expect(native.cmos[6]! | (native.cmos[7]! << 8)).toBe((memoryBytes - (16 << 20)) / 65536);
    });
    for (const backend of ['deprivileged', 'rewrite', 'hvm'] as const) {
      it(`${backend}, ${memoryBytes >> 20} MiB: CMOS memory-size bytes and mem_upper as native`, () => {
        expect(memorySizeAsSeen(backend, memoryBytes)).toEqual(native);
      });
    }
  }
});

describe('loading leaves the caller\'s image alone', () => {
  // checkRewrittenImage hides the stub segments from the multiboot loader in a copy; on a Node
  // Buffer (readFileSync), slice() was a view and the caller's program headers were overwritten.
  it('rewrite: a Buffer input is not modified and can be loaded again', () => {
    const img = readFileSync(join(EXAMPLES, 'hello/hello.rewritten.elf'));
    const before = Uint8Array.from(img);
    loadGuest(img, { backend: 'rewrite' });
    expect(Buffer.compare(img, before)).toBe(0);
    expect(() => loadGuest(img, { backend: 'rewrite' })).not.toThrow();
  });
});
