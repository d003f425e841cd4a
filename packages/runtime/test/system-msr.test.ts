// RDMSR/WRMSR (SDM vol. 2B RDMSR, vol. 2D WRMSR; MSRs in vol. 4 table 2-2) and SYSENTER/SYSEXIT
// (vol. 2B SYSENTER, SYSEXIT "Operation": flat segments derived from IA32_SYSENTER_CS).
import { Assembler, imm, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Eflags } from '../src/index';
import { HANDLED, PASS_THROUGH, attachInterceptor, exitFor } from '../src/cpu/intercept';
import { Sel, catchExceptions, enterRing3, loadTss, runOn, systemCpu } from './support/descriptors';

describe('RDMSR / WRMSR', () => {
  it('IA32_APIC_BASE reads FEE00900h on the BSP (vol. 3A §11.4.4)', () => {
    const cpu = systemCpu();
    runOn(cpu, (a) => { a.asm('mov', reg('ecx'), imm(0x1b)); a.asm('rdmsr'); });
    expect([cpu.regs[0]! >>> 0, cpu.regs[2]]).toEqual([0xfee00900, 0]);
  });

  it('round-trips SYSENTER_CS/ESP/EIP, the TSC (64 bits) and EFER.NXE', () => {
    const cpu = systemCpu();
    const cases: [number, number, number][] = [
      [0x174, 0x08, 0], [0x175, 0x00c00000, 0], [0x176, 0x00123456, 0], [0x10, 0x89abcdef, 0x01234567], [0xc0000080, 0x800, 0],
      [0x1b, 0xfec00800 | 0, 0],
    ];
    for (const [msr, lo, hi] of cases) {
      runOn(cpu, (a) => {
        a.asm('mov', reg('ecx'), imm(msr | 0));
        a.asm('mov', reg('eax'), imm(lo | 0));
        a.asm('mov', reg('edx'), imm(hi));
        a.asm('wrmsr');
        a.asm('xor', reg('eax'), reg('eax'));
        a.asm('xor', reg('edx'), reg('edx'));
        a.asm('rdmsr');
      });
      expect([cpu.regs[0]! >>> 0, cpu.regs[2]! >>> 0], `MSR ${msr.toString(16)}`).toEqual([lo >>> 0, hi >>> 0]);
    }
    expect(cpu.tsc).toBe(0x0123456789abcdefn);
    expect(cpu.efer).toBe(0x800);
  });

  const gp = (build: Parameters<typeof runOn>[1], ring3 = false): [number, number] => {
    const cpu = systemCpu();
    loadTss(cpu);
    catchExceptions(cpu);
    if (ring3) enterRing3(cpu);
    runOn(cpu, build);
    return [cpu.regs[7]!, cpu.regs[6]!];
  };
  it('#GP(0): unknown MSR, EFER.LME (not supported), reserved APIC_BASE bits, and CPL > 0', () => {
    expect(gp((a) => { a.asm('mov', reg('ecx'), imm(0x12345)); a.asm('rdmsr'); })).toEqual([13, 0]);
    expect(gp((a) => { a.asm('mov', reg('ecx'), imm(0x12345)); a.asm('wrmsr'); })).toEqual([13, 0]);
    expect(gp((a) => {
      a.asm('mov', reg('ecx'), imm(0xc0000080 | 0)); a.asm('mov', reg('eax'), imm(0x100)); a.asm('xor', reg('edx'), reg('edx')); a.asm('wrmsr');
    })).toEqual([13, 0]);
    expect(gp((a) => {
      a.asm('mov', reg('ecx'), imm(0x1b)); a.asm('mov', reg('eax'), imm(0xfee00901 | 0)); a.asm('xor', reg('edx'), reg('edx')); a.asm('wrmsr');
    })).toEqual([13, 0]);
    expect(gp((a) => { a.asm('mov', reg('ecx'), imm(0x10)); a.asm('rdmsr'); }, true)).toEqual([13, 0]);
  });

  it('an interceptor sees RDMSR before the lookup: HANDLED retires it, an Exit leaves run() with reason 31', () => {
    const cpu = systemCpu();
    attachInterceptor(cpu, { ...PASS_THROUGH, msr: (c, a) => { if (a.msr === 0x12345) { c.regs[0] = 7; return HANDLED; } return exitFor.msr(a, 2); } });
    runOn(cpu, (a) => { a.asm('mov', reg('ecx'), imm(0x12345)); a.asm('rdmsr'); });
    expect(cpu.regs[0]).toBe(7);
    expect(runOn(cpu, (a) => { a.asm('mov', reg('ecx'), imm(0x10)); a.asm('rdmsr'); })).toBe('exit');
    expect(cpu.lastExit?.reason).toBe(31);
    expect(cpu.eip).toBe(0x100005); // stopped at RDMSR, not after it
  });
});

describe('SYSENTER / SYSEXIT', () => {
  const KERNEL = 0x110000, USER = 0x120000;
  function place(cpu: ReturnType<typeof systemCpu>, at: number, build: (a: Assembler) => void): void {
    const a = new Assembler(32, at);
    build(a);
    cpu.mem.load(at, a.assemble().bytes);
  }

  it('SYSEXIT: CS = SYSENTER_CS+16|3, SS = +24|3, ESP = ECX, EIP = EDX, CPL 3; SYSENTER: CS = SYSENTER_CS, SS = +8, ESP/EIP from the MSRs, CPL 0, IF = VM = RF = 0', () => {
    const cpu = systemCpu();
    cpu.setFlag(Eflags.IF, true);
    place(cpu, USER, (a) => {
      a.asm('mov', reg('ebx'), reg('cs'));
      a.asm('mov', reg('esi'), reg('ss'));
      a.asm('mov', reg('edi'), reg('esp'));
      a.asm('sysenter');
    });
    place(cpu, KERNEL, (a) => a.asm('hlt'));
    runOn(cpu, (a) => {
      for (const [msr, v] of [[0x174, Sel.CODE0], [0x175, 0x00c00000], [0x176, KERNEL]] as const) {
        a.asm('mov', reg('ecx'), imm(msr)); a.asm('mov', reg('eax'), imm(v)); a.asm('xor', reg('edx'), reg('edx')); a.asm('wrmsr');
      }
      a.asm('mov', reg('ecx'), imm(0x00d00000));
      a.asm('mov', reg('edx'), imm(USER));
      a.asm('sysexit');
    });
    expect(cpu.halted).toBe(true);
    expect([cpu.regs[3], cpu.regs[6], cpu.regs[7]]).toEqual([0x1b, 0x23, 0x00d00000]);
    expect([cpu.sel[1], cpu.sel[2], cpu.cpl]).toEqual([0x08, 0x10, 0]);
    expect(cpu.regs[4]).toBe(0x00c00000);
    expect(cpu.eip).toBe(KERNEL + 1);
    expect(cpu.eflags & (Eflags.IF | Eflags.VM | Eflags.RF)).toBe(0);
    // The loaded caches are flat 4 GiB segments: base 0, limit FFFFFFFFh, type 11 / 3, D/B = G = 1.
    expect(cpu.segLimit[1]).toBe(-1);
    expect(cpu.segAttr[1]! & 0xff).toBe(0x9b);
    expect(cpu.segAttr[2]! & 0xff).toBe(0x93);
  });

  it('#GP(0): SYSENTER with SYSENTER_CS = 0; SYSEXIT at CPL 3', () => {
    const cpu = systemCpu();
    loadTss(cpu);
    catchExceptions(cpu);
    runOn(cpu, (a) => a.asm('sysenter'));
    expect([cpu.regs[7], cpu.regs[6]]).toEqual([13, 0]);
    const c3 = systemCpu();
    loadTss(c3);
    catchExceptions(c3);
    runOn(c3, (a) => { a.asm('mov', reg('ecx'), imm(0x174)); a.asm('mov', reg('eax'), imm(8)); a.asm('xor', reg('edx'), reg('edx')); a.asm('wrmsr'); });
    catchExceptions(c3);
    enterRing3(c3);
    runOn(c3, (a) => a.asm('sysexit'));
    expect([c3.regs[7], c3.regs[6], c3.cpl]).toEqual([13, 0, 0]);
  });
});
