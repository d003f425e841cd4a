// Regressions found by the CPU-versus-host oracle (test/host/cpu-vs-host.test.ts,
// `pnpm campaign:cpu`): each case is the shrunk program that disagreed with the host.
import { ins, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { exec } from './support/exec';

describe('found by the host differential', () => {
  it('MOV moffs8, AL (A2) stores one byte, not four', () => {
    const { cpu } = exec({ regs: { eax: 0x11223344 }, mem: [[0x2000, [0xaa, 0xbb, 0xcc, 0xdd]]] }, (a) => {
      a.emit(ins('Mov_moffs8_AL', mem({ disp: 0x2001, size: 1 }), reg('al')));
    });
    expect([...cpu.mem.u8.subarray(0x2000, 0x2004)]).toEqual([0xaa, 0x44, 0xcc, 0xdd]);
  });
});
