// MOV to/from DR0-DR7 (SDM vol. 2B MOV—Move to/from Debug Registers; vol. 3B §18.2): storage,
// fixed bits, DR4/DR5 aliasing, CPL 0 only. Found missing by examples/sensitive (QEMU runs it).
import { imm, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { catchExceptions, enterRing3, loadTss, runOn, systemCpu } from './support/descriptors';

describe('MOV DRn', () => {
  it('DR0-DR3 round-trip; DR6/DR7 read their fixed bits (FFFF0FF0h, 400h)', () => {
    const cpu = systemCpu();
    runOn(cpu, (a) => {
      a.asm('mov', reg('eax'), imm(0x12345678));
      a.asm('mov', reg('dr3'), reg('eax'));
      a.asm('mov', reg('ebx'), reg('dr3'));
      a.asm('mov', reg('ecx'), reg('dr6'));
      a.asm('mov', reg('edx'), reg('dr7'));
      a.asm('xor', reg('eax'), reg('eax'));
      a.asm('mov', reg('dr6'), reg('eax'));
      a.asm('mov', reg('esi'), reg('dr6'));
      a.asm('mov', reg('eax'), imm(0x00000300)); // LE | GE: no breakpoint enabled
      a.asm('mov', reg('dr7'), reg('eax'));
      a.asm('mov', reg('edi'), reg('dr5')); // CR4.DE = 0: DR5 is DR7
    });
    expect([cpu.regs[3]! >>> 0, cpu.regs[1]! >>> 0, cpu.regs[2]! >>> 0, cpu.regs[6]! >>> 0, cpu.regs[7]! >>> 0])
      .toEqual([0x12345678, 0xffff0ff0, 0x400, 0xffff0ff0, 0x700]);
  });

  it('#GP(0) at CPL 3', () => {
    const cpu = systemCpu();
    loadTss(cpu);
    catchExceptions(cpu);
    enterRing3(cpu);
    runOn(cpu, (a) => { a.asm('mov', reg('eax'), reg('dr7')); });
    expect([cpu.regs[7], cpu.regs[6]]).toEqual([13, 0]);
  });
});
