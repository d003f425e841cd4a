// Real mode and exception delivery, with expectations from the SDM sections named.
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Cpu, Eflags, PhysicalMemory, Vector } from '../src/index';
import { HANDLERS, RecordingPorts, flatCpu } from './support/flat';

/** A CPU at reset (real mode), with code at 0000:7C00 and the IVT at 0. */
function realMode(build: (a: Assembler) => void): Cpu {
  const cpu = new Cpu(new PhysicalMemory(1 << 20), new RecordingPorts(), HANDLERS);
  const a = new Assembler(16, 0x7c00);
  build(a);
  cpu.mem.load(0x7c00, a.assemble().bytes);
  cpu.sel[1] = 0;
  cpu.segBase[1] = 0;
  cpu.eip = 0x7c00;
  cpu.regs[4] = 0x7000;
  return cpu;
}

describe('real-address mode', () => {
  it('starts at reset with CS.base FFFF0000 and EIP FFF0 (SDM vol. 3A §9.1.4)', () => {
    const cpu = new Cpu(new PhysicalMemory(1 << 20), new RecordingPorts(), HANDLERS);
    expect(cpu.segBase[1]! >>> 0).toBe(0xffff0000);
    expect(cpu.eip).toBe(0xfff0);
    expect(cpu.protectedMode).toBe(false);
    expect(cpu.codeBits).toBe(16);
  });

  it('forms addresses as segment * 16 + offset and wraps 16-bit registers', () => {
    const cpu = realMode((a) => {
      a.asm('mov', reg('ax'), imm(0x1234));
      a.asm('mov', reg('ds'), reg('ax'));
      a.asm('mov', mem({ disp: 0x10, size: 2 }), imm(0xbeef));
      a.asm('mov', reg('cx'), imm(0xffff));
      a.asm('inc', reg('cx'));
      a.asm('hlt');
    });
    expect(cpu.run(100)).toBe('halted');
    expect(cpu.mem.read16(0x12340 + 0x10)).toBe(0xbeef);
    expect(cpu.regs[1]! & 0xffff).toBe(0);
    expect(cpu.getFlag(Eflags.ZF)).toBe(true);
  });

  it('delivers INT n through the IVT: pushes FLAGS, CS, IP and clears IF/TF (SDM vol. 3A §20.1.4)', () => {
    const cpu = realMode((a) => {
      a.asm('sti');
      a.asm('int', imm(0x21));
      a.asm('hlt');
    });
    // IVT[0x21] -> 0000:8000, where the handler sets BX and returns with IRET.
    cpu.mem.write16(0x21 * 4, 0x8000);
    cpu.mem.write16(0x21 * 4 + 2, 0);
    const h = new Assembler(16, 0x8000);
    h.asm('mov', reg('bx'), imm(0x4242));
    h.asm('iret');
    cpu.mem.load(0x8000, h.assemble().bytes);
    cpu.step(); // sti
    cpu.step(); // int 21h
    expect(cpu.eip).toBe(0x8000);
    expect(cpu.getFlag(Eflags.IF)).toBe(false);
    expect(cpu.regs[4]! & 0xffff).toBe(0x7000 - 6);
    expect(cpu.mem.read16(0x7000 - 6)).toBe(0x7c03); // return IP: the instruction after INT
    expect(cpu.run(100)).toBe('halted');
    expect(cpu.regs[3]! & 0xffff).toBe(0x4242);
    expect(cpu.getFlag(Eflags.IF)).toBe(true); // IRET restored FLAGS
  });

  it('UD2 faults with #UD through IVT[6], returning to the faulting instruction (SDM vol. 3A §6.5)', () => {
    const cpu = realMode((a) => {
      a.bytes(Uint8Array.from([0x0f, 0x0b])); // UD2
    });
    cpu.mem.write16(Vector.UD * 4, 0x9000);
    cpu.step();
    expect(cpu.eip).toBe(0x9000);
    expect(cpu.mem.read16(0x7000 - 6)).toBe(0x7c00); // a fault: the return IP is the faulting instruction
  });
});

describe('protected mode faults', () => {
  it('a write through a read-only data segment is #GP(0); with no IDT entry it escalates to #DF and a triple fault (SDM vol. 3A §5.5, §6.15)', () => {
    const { cpu } = flatCpu();
    cpu.segAttr[3] = (cpu.segAttr[3]! & ~0x2); // DS: read-only data
    const a = new Assembler(32, 0x100000);
    a.asm('mov', mem({ disp: 0x200000, size: 4 }), reg('eax'));
    cpu.mem.load(0x100000, a.assemble().bytes);
    cpu.eip = 0x100000;
    cpu.idtrLimit = 0; // no IDT entry for #GP: the delivery fails, which escalates
    cpu.step();
    expect(cpu.shutdownReason).toMatch(/triple fault/);
  });
});

describe('CPUID', () => {
  it('names the vendor and reports exactly the implemented features (no FPU, PSE TSC MSR PAE CX8 SEP PGE CMOV, MOVBE POPCNT, NX)', () => {
    const { cpu } = flatCpu();
    const a = new Assembler(32, 0x100000);
    a.asm('xor', reg('eax'), reg('eax'));
    a.asm('cpuid');
    a.asm('mov', mem({ disp: 0x200000, size: 4 }), reg('ebx'));
    a.asm('mov', mem({ disp: 0x200004, size: 4 }), reg('edx'));
    a.asm('mov', mem({ disp: 0x200008, size: 4 }), reg('ecx'));
    a.asm('mov', mem({ disp: 0x20000c, size: 4 }), reg('eax'));
    a.asm('mov', reg('eax'), imm(1));
    a.asm('cpuid');
    a.asm('hlt');
    cpu.mem.load(0x100000, a.assemble().bytes);
    cpu.eip = 0x100000;
    expect(cpu.run(100)).toBe('halted');
    expect(new TextDecoder().decode(cpu.mem.u8.subarray(0x200000, 0x20000c))).toBe('RingshiftCPU');
    expect(cpu.mem.read32(0x20000c)).toBe(7); // highest basic leaf
    expect(cpu.regs[2]! & 1).toBe(0); // FPU absent
    expect(cpu.regs[2]! >>> 0).toBe((1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 11) | (1 << 13) | (1 << 15));
    expect(cpu.regs[1]! >>> 0).toBe((1 << 22) | (1 << 23)); // ECX: MOVBE, POPCNT; no SSE*
  });

  /** Runs CPUID with EAX = leaf, ECX = subleaf; returns [EAX, EBX, ECX, EDX]. */
  function cpuid(leaf: number, subleaf: number): number[] {
    const { cpu } = flatCpu();
    const a = new Assembler(32, 0x100000);
    a.asm('mov', reg('eax'), imm(leaf));
    a.asm('mov', reg('ecx'), imm(subleaf));
    a.asm('cpuid');
    a.asm('hlt');
    cpu.mem.load(0x100000, a.assemble().bytes);
    cpu.eip = 0x100000;
    expect(cpu.run(100)).toBe('halted');
    return [cpu.regs[0]!, cpu.regs[3]!, cpu.regs[1]!, cpu.regs[2]!].map((v) => v >>> 0);
  }

  it('leaf 7 subleaf 0 reports ADX only (no BMI1: its VEX forms are not implemented); leaves 2-6 and other subleaves are zero', () => {
    expect(cpuid(7, 0)).toEqual([0, 1 << 19, 0, 0]);
    expect(cpuid(7, 1)).toEqual([0, 0, 0, 0]);
    for (const leaf of [2, 3, 4, 5, 6]) expect(cpuid(leaf, 0)).toEqual([0, 0, 0, 0]);
  });

  it('leaf 8000_0001h reports ABM/LZCNT (ECX bit 5) and NX (EDX bit 20)', () => {
    expect(cpuid(0x80000000, 0)[0]).toBe(0x80000001);
    expect(cpuid(0x80000001, 0)).toEqual([0, 0, 1 << 5, 1 << 20]);
  });
});
