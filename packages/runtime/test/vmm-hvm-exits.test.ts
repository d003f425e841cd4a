// The HVM monitor (vmm/hvm/) on crafted guests: each exit with Intel's basic reason and exact
// qualification (SDM vol. 3C §28.2; shared/reference/vmx.md §3), the VMCS exit-information
// fields, event injection, and the guest's view staying native's.
import { Assembler, imm, mem, reg, far, vmxExitReasonName, VMX_EXIT_REASON as R } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import {
  CONTINUE, EventKind, HvmMonitor, KVM_ENOSYS, Machine, VMCS, Vmcs, hvmMemoryBytes, parseControls,
} from '../src/index';
import type { HvmExit, RunReport } from '../src/index';
import { exceptionExits } from '../src/vmm/hvm/exits';
import { eptMisconfigured } from '../src/index';
import { flatCode, flatData } from './support/descriptors';
import { GDT, IDT, PSEUDO, setUpFlatGuest } from './support/flat-boot';

const GUEST_RAM = 16 << 20;

interface Booted { report: RunReport; machine: Machine; hvm: HvmMonitor | null; exits: HvmExit[] }

/** Boots `body` flat at CPL 0 with paging off (as a multiboot loader leaves it); IDT vector v exits with status (v << 1) | 1, the body with 0x42. */
function boot(body: (a: Assembler) => void, controls = '', setup?: (m: Machine) => void, native = false): Booted {
  const machine = new Machine({ memoryBytes: native ? GUEST_RAM : hvmMemoryBytes(GUEST_RAM) });
  setUpFlatGuest(machine, body);
  const cpu = machine.cpu;
  setup?.(machine);
  let hvm: HvmMonitor | null = null;
  if (!native) {
    hvm = new HvmMonitor(machine, { guestRamBytes: GUEST_RAM, controls: parseControls(controls), log: true });
    hvm.start();
  }
  const report = machine.run({ maxInstructions: 100_000 });
  if (hvm !== null && report.reason === 'triple-fault' && cpu.shutdownReason !== '') hvm.recordTripleFault();
  return { report, machine, hvm, exits: hvm?.log ?? [] };
}

const status = (v: number): number => (v << 1) | 1;
const only = (b: Booted, reason: number): HvmExit[] => b.exits.filter((e) => e.reason === reason);

describe('hvm exits: I/O (30)', () => {
  it('out 0xf8, al (imm8 reaches ports 0-0xFF only): port, size 1, OUT, not string, immediate; length 2', () => {
    const b = boot((a) => { a.asm('mov', reg('al'), imm(0x41)); a.asm('out', imm(0xf8), reg('al')); });
    const io = only(b, R.IO_INSTRUCTION);
    expect(io[0]!.qualification).toBe((0 | 0 << 3 | 0 << 4 | 0 << 5 | 1 << 6 | 0xf8 << 16) >>> 0);
    expect(io[0]!.instructionLength).toBe(2);
    expect(b.report.exitStatus).toBe(status(0x42));
  });

  it('out dx, al to 0x3f8: port in DX (bit 6 clear); the VMCS holds the last exit', () => {
    const b = boot((a) => { a.asm('mov', reg('edx'), imm(0x3f8)); a.asm('mov', reg('al'), imm(0x41)); a.asm('out', reg('dx'), reg('al')); });
    const e = only(b, R.IO_INSTRUCTION)[0]!;
    expect(e.qualification).toBe((0x3f8 << 16) >>> 0);
    expect(e.instructionLength).toBe(1);
    expect(b.hvm!.vmcs.vmread(VMCS.VM_EXIT_REASON)).toBe(R.IO_INSTRUCTION); // the last exit: out 0xf4
    expect(b.hvm!.vmcs.vmread(VMCS.EXIT_QUALIFICATION) >>> 16).toBe(0xf4);
  });

  it('in eax, dx: size 4, IN; rep outsb and insw: string, REP, linear address and instruction information', () => {
    const b = boot((a) => {
      a.asm('mov', reg('edx'), imm(0x80));
      a.asm('in', reg('eax'), reg('dx'));
      a.asm('mov', reg('esi'), imm(0x5000));
      a.asm('mov', reg('ecx'), imm(3));
      a.bytes([0xf3, 0x6e]); // rep outsb
      a.asm('mov', reg('edi'), imm(0x6000));
      a.bytes([0x66, 0x6d]); // insw
    });
    const [inE, outs, ins] = only(b, R.IO_INSTRUCTION);
    expect(inE!.qualification).toBe((3 | 1 << 3 | 0x80 << 16) >>> 0);
    expect(outs!.qualification).toBe((0 | 1 << 4 | 1 << 5 | 0x80 << 16) >>> 0);
    expect(outs!.linear).toBe(0x5000);
    expect(outs!.instructionInfo).toBe((1 << 7) | (3 << 15)); // 32-bit addresses, DS
    expect(outs!.instructionLength).toBe(2);
    expect(ins!.qualification).toBe((1 | 1 << 3 | 1 << 4 | 0x80 << 16) >>> 0);
    expect(ins!.linear).toBe(0x6000);
    expect(ins!.instructionInfo).toBe((1 << 7) | (0 << 15)); // ES
    expect(b.machine.cpu.regs[6]).toBe(0x5003); // REP OUTSB ran to its end
  });

  it('with I/O bitmaps, port 0x80 passes through (KVM clears its bit) and 0xF4 exits', () => {
    const b = boot((a) => { a.asm('out', imm(0x80), reg('al')); }, 'io-bitmaps');
    const ports = only(b, R.IO_INSTRUCTION).map((e) => e.qualification >>> 16);
    expect(ports).toEqual([0xf4]);
    expect(b.hvm!.ioExits(0x7fff, 2)).toBe(true);
    expect(b.hvm!.ioExits(0xffff, 2)).toBe(true); // wraps past 0xFFFF
  });
});

describe('hvm exits: control registers (28), MOV DR (29)', () => {
  it('mov cr3, eax with CR3-load exiting: CR 3, access type 0, GPR EAX; none by default', () => {
    const body = (a: Assembler): void => { a.asm('mov', reg('eax'), imm(0x7000)); a.asm('mov', reg('cr3'), reg('eax')); a.asm('mov', reg('ecx'), reg('cr3')); };
    const b = boot(body, 'cr3-load-exiting,cr3-store-exiting');
    const cr = only(b, R.CONTROL_REGISTER_ACCESS);
    expect(cr.map((e) => e.qualification)).toEqual([3 | 0 << 4 | 0 << 8, 3 | 1 << 4 | 1 << 8]);
    expect(cr[0]!.instructionLength).toBe(3);
    expect(b.machine.cpu.cr3).toBe(0x7000);
    expect(only(boot(body), R.CONTROL_REGISTER_ACCESS)).toEqual([]);
  });

  it('mov cr0 exits when a host-owned bit changes against the shadow, not for TS (guest-owned)', () => {
    const b = boot((a) => {
      a.asm('mov', reg('ebx'), reg('cr0'));
      a.asm('or', reg('ebx'), imm(8)); // TS
      a.asm('mov', reg('cr0'), reg('ebx'));
      a.asm('or', reg('ebx'), imm(2)); // MP
      a.asm('mov', reg('cr0'), reg('ebx'));
    });
    const cr = only(b, R.CONTROL_REGISTER_ACCESS);
    expect(cr.map((e) => e.qualification)).toEqual([0 | 0 << 4 | 3 << 8]);
    expect(b.machine.cpu.cr0 & 0xa).toBe(0xa);
    expect(b.hvm!.vmcs.vmread(VMCS.CR0_READ_SHADOW) & 2).toBe(2);
  });

  it('LMSW: access type 3, source data in 31:16; a memory operand sets bit 6 and the guest-linear address', () => {
    const b = boot((a) => {
      a.asm('mov', reg('eax'), imm(0x3));
      a.asm('lmsw', reg('ax'));
      a.asm('mov', mem({ disp: 0x6000, size: 4 }), imm(0x7));
      a.asm('lmsw', mem({ disp: 0x6000, size: 2 }));
    });
    const [r, m] = only(b, R.CONTROL_REGISTER_ACCESS);
    expect(r!.qualification).toBe((0 | 3 << 4 | 0x3 << 16) >>> 0);
    expect(m!.qualification).toBe((0 | 3 << 4 | 1 << 6 | 0x7 << 16) >>> 0);
    expect(m!.linear).toBe(0x6000);
    expect(b.machine.cpu.cr0 & 0xf).toBe(0x7);
  });

  it('MOV DR: DR number, direction, GPR', () => {
    const b = boot((a) => { a.asm('mov', reg('dr0'), reg('eax')); a.asm('mov', reg('ebx'), reg('dr7')); });
    expect(only(b, R.MOV_DR).map((e) => e.qualification)).toEqual([0, 7 | 1 << 4 | 3 << 8]);
  });
});

describe('hvm exits: instructions', () => {
  it('CPUID (10) is emulated with the values native gives; HLT (12) leaves the vCPU halted', () => {
    const body = (a: Assembler): void => { a.asm('xor', reg('eax'), reg('eax')); a.asm('cpuid'); a.asm('hlt'); };
    const b = boot(body);
    const n = boot(body, '', undefined, true);
    expect(only(b, R.CPUID)).toHaveLength(1);
    expect(only(b, R.HLT)).toHaveLength(1);
    expect(b.report.reason).toBe('halt');
    expect(b.report.registers).toEqual(n.report.registers);
    expect(b.hvm!.vmcs.vmread(VMCS.GUEST_ACTIVITY_STATE)).toBe(1);
  });

  it('RDTSC (16) exits only with rdtsc-exiting', () => {
    const body = (a: Assembler): void => { a.asm('rdtsc'); };
    expect(only(boot(body, 'rdtsc-exiting'), R.RDTSC)).toHaveLength(1);
    expect(only(boot(body), R.RDTSC)).toHaveLength(0);
  });

  it('RDMSR (31) / WRMSR (32) through the MSR bitmap: SYSENTER_CS and TSC reads pass, EFER and TSC writes exit', () => {
    const b = boot((a) => {
      a.asm('mov', reg('ecx'), imm(0x174)); a.asm('rdmsr');
      a.asm('mov', reg('ecx'), imm(0x10)); a.asm('rdmsr'); a.asm('wrmsr');
      a.asm('mov', reg('ecx'), imm(0xc0000080)); a.asm('rdmsr');
    });
    expect(b.exits.filter((e) => e.reason === R.RDMSR || e.reason === R.WRMSR).map((e) => e.reason)).toEqual([R.WRMSR, R.RDMSR]);
    const all = boot((a) => { a.asm('mov', reg('ecx'), imm(0x174)); a.asm('rdmsr'); }, 'msr-bitmaps=off');
    expect(only(all, R.RDMSR)).toHaveLength(1);
  });

  it('INVLPG (14) with EPT off: qualification = the linear address', () => {
    const b = boot((a) => { a.asm('mov', reg('ebx'), imm(0x12000)); a.asm('invlpg', mem({ base: 'ebx', disp: 0x345, size: 1 })); }, 'ept=off');
    const e = only(b, R.INVLPG);
    expect(e.map((x) => x.qualification)).toEqual([0x12345]);
    expect(e[0]!.instructionLength).toBe(7);
    expect(only(boot((a) => { a.asm('invlpg', mem({ disp: 0x1000, size: 1 })); }), R.INVLPG)).toHaveLength(0);
  });

  it('INVD (13), WBINVD (54); VMCALL (18): the hypercall ABI of docs/exits.md', () => {
    const b = boot((a) => {
      a.asm('invd'); a.asm('wbinvd');
      a.asm('xor', reg('eax'), reg('eax')); a.asm('vmcall'); a.asm('mov', reg('ebx'), reg('eax'));
      a.asm('mov', reg('eax'), imm(99)); a.asm('vmcall'); a.asm('mov', reg('esi'), reg('eax'));
    });
    expect(b.exits.map((e) => e.reason).filter((r) => r === R.INVD || r === R.WBINVD || r === R.VMCALL)).toEqual([R.INVD, R.WBINVD, R.VMCALL, R.VMCALL]);
    expect(b.report.registers.ebx).toBe(1);
    expect(b.report.registers.esi | 0).toBe(KVM_ENOSYS);
    expect(only(b, R.VMCALL)[0]!.instructionLength).toBe(3);
  });

  it('a CPL-0-only instruction at CPL 3 is not an exit: the hook lets the CPU raise #GP', () => {
    const b = boot(() => {});
    const cpu = b.machine.cpu;
    const notEpt = (): number => b.exits.filter((e) => e.reason !== R.EPT_VIOLATION).length;
    const before = notEpt();
    cpu.cpl = 3;
    for (const bytes of [[0xf4], [0x0f, 0x08], [0x0f, 0x22, 0xd8], [0x0f, 0x21, 0xc0]]) { // hlt, invd, mov cr3,eax, mov eax,dr0
      b.machine.mem.load(0x8000, Uint8Array.from(bytes));
      cpu.eip = 0x8000;
      const ins = cpu.fetch();
      expect(b.hvm!.instruction(cpu, ins, undefined as never)).toBe(CONTINUE);
      expect(() => cpu.handlerOf(ins)(cpu, ins)).toThrow(expect.objectContaining({ vector: 13 }));
    }
    expect(notEpt()).toBe(before);
  });
});

describe('hvm exits: events', () => {
  it('#UD (in KVM\'s exception bitmap) exits as reason 0 and is injected on VM entry', () => {
    const b = boot((a) => { a.asm('ud2'); });
    const e = only(b, R.EXCEPTION_OR_NMI)[0]!;
    expect(e.interruptionInfo).toBe((6 | EventKind.HARDWARE_EXCEPTION << 8 | 1 << 31) >>> 0);
    expect(b.hvm!.vmcs.vmread(VMCS.VM_ENTRY_INTR_INFO_FIELD)).toBe(e.interruptionInfo);
    expect(b.hvm!.injections).toBe(1);
    expect(b.report.exitStatus).toBe(status(6)); // the guest's own #UD handler ran
  });

  it('an interrupt held off by IF = 0: external-interrupt exit (1), then the interrupt-window exit (7) once STI opens it, then injection', () => {
    const b = boot((a) => { a.asm('nop'); a.asm('sti'); a.asm('nop'); a.asm('nop'); }, '', (m) => m.pic.pulseIrq(5)); // vector 5 (the PIC's base is 0 at reset)
    const events = b.exits.filter((e) => e.reason === R.EXTERNAL_INTERRUPT || e.reason === R.INTERRUPT_WINDOW);
    expect(events.map((e) => e.reason)).toEqual([R.EXTERNAL_INTERRUPT, R.INTERRUPT_WINDOW]);
    expect(events[0]!.interruptionInfo).toBe((5 | 1 << 31) >>> 0);
    expect(b.hvm!.vmcs.vmread(VMCS.VM_ENTRY_INTR_INFO_FIELD)).toBe((5 | EventKind.EXTERNAL_INTERRUPT << 8 | 1 << 31) >>> 0);
    expect(b.hvm!.vmcs.vmread(VMCS.CPU_BASED_VM_EXEC_CONTROL) & (1 << 2)).toBe(0); // the window request is cleared again
    expect(b.report.exitStatus).toBe(status(5)); // the guest's handler for vector 5 ran, as natively
    expect(boot((a) => { a.asm('nop'); a.asm('sti'); a.asm('nop'); a.asm('nop'); }, '', (m) => m.pic.pulseIrq(5), true).report.exitStatus).toBe(status(5));
  });

  it('#GP (not in the bitmap) does not exit; triple fault is reason 2', () => {
    const b = boot((a) => { a.asm('lidt', mem({ disp: 0x6000, size: 6 })); a.asm('ud2'); });
    expect(b.report.reason).toBe('triple-fault');
    expect(b.exits.at(-1)!.reason).toBe(R.TRIPLE_FAULT);
  });

  it('#PF error-code mask/match (§26.2): a #PF exits iff ((PFEC & mask) == match) equals bitmap bit 14', () => {
    const v = new Vmcs();
    const pf = (errorCode: number) => ({ vector: 14, errorCode, kind: EventKind.HARDWARE_EXCEPTION, nextEip: 0 } as const);
    v.vmwrite(VMCS.EXCEPTION_BITMAP, 1 << 14);
    v.vmwrite(VMCS.PAGE_FAULT_ERROR_CODE_MASK, 2);
    v.vmwrite(VMCS.PAGE_FAULT_ERROR_CODE_MATCH, 2);
    expect([exceptionExits(v, pf(2)), exceptionExits(v, pf(3)), exceptionExits(v, pf(0)), exceptionExits(v, pf(4))]).toEqual([true, true, false, false]);
    v.vmwrite(VMCS.EXCEPTION_BITMAP, 0);
    expect([exceptionExits(v, pf(2)), exceptionExits(v, pf(0))]).toEqual([false, true]);
    // INT n (type 4) never exits through the bitmap.
    v.vmwrite(VMCS.EXCEPTION_BITMAP, -1);
    expect(exceptionExits(v, { vector: 3, errorCode: -1, kind: EventKind.SOFTWARE_INTERRUPT, nextEip: 0 })).toBe(false);
    expect(exceptionExits(v, { vector: 3, errorCode: -1, kind: EventKind.SOFTWARE_EXCEPTION, nextEip: 0 })).toBe(true);
  });
});

describe('hvm exits: EPT (48, 49)', () => {
  it('a write to a page not yet in the EPT: reason 48, write bit, linear valid, translation; guest-physical address', () => {
    const b = boot((a) => { a.asm('mov', reg('eax'), imm(0x1234)); a.asm('mov', mem({ disp: 0x200010, size: 4 }), reg('eax')); });
    const v = only(b, R.EPT_VIOLATION).find((e) => e.guestPhysical >>> 12 === 0x200)!;
    expect(v.qualification).toBe(2 | 1 << 7 | 1 << 8);
    expect(v.guestPhysical).toBe(0x200010);
    expect(v.linear).toBe(0x200010);
    expect(b.machine.mem.read32(0x200010)).toBe(0x1234);
    // The fetch of the first instruction: bit 2.
    expect(only(b, R.EPT_VIOLATION)[0]!.qualification & 7).toBe(4);
  });

  it('a device page: the first access exits as a violation, later ones as misconfigurations (KVM\'s MMIO marking)', () => {
    const reads: number[] = [];
    const b = boot((a) => {
      a.asm('mov', reg('ecx'), mem({ disp: 0x00f00004, size: 4 }));
      a.asm('mov', reg('ebx'), mem({ disp: 0x00f00008, size: 4 }));
    }, '', (m) => m.mem.mapMmio(0x00f00000, 0x1000, { read: (off) => { reads.push(off); return 0xabc0 + off; }, write: () => {} }));
    const v = only(b, R.EPT_VIOLATION).find((e) => e.guestPhysical === 0x00f00004)!;
    expect(v.qualification).toBe(1 | 1 << 7 | 1 << 8);
    expect(only(b, R.EPT_MISCONFIGURATION).map((e) => e.guestPhysical)).toEqual([0x00f00008]);
    expect(b.hvm!.vmcs.vmread(VMCS.GUEST_PHYSICAL_ADDRESS)).not.toBe(0);
    expect([b.report.registers.ecx, b.report.registers.ebx]).toEqual([0xabc4, 0xabc8]);
    expect(reads).toEqual([4, 8]);
  });

  it('with paging on, the walk\'s read of a page-directory entry not yet in the EPT: bit 8 clear (paging-structure access)', () => {
    const PD = 0x300000;
    const b = boot((a) => {
      a.asm('mov', reg('eax'), reg('cr4')); a.asm('or', reg('eax'), imm(0x10)); a.asm('mov', reg('cr4'), reg('eax')); // PSE
      a.asm('mov', reg('eax'), imm(PD)); a.asm('mov', reg('cr3'), reg('eax'));
      a.asm('mov', reg('eax'), reg('cr0')); a.asm('or', reg('eax'), imm(0x80000000)); a.asm('mov', reg('cr0'), reg('eax'));
      a.asm('mov', reg('ebx'), mem({ disp: 0x2000, size: 4 }));
    }, '', (m) => { m.mem.write32(PD, 0x83); }); // PDE 0: a 4 MiB page at 0, present, writable
    expect(b.report.exitStatus).toBe(status(0x42));
    const pde = only(b, R.EPT_VIOLATION).find((e) => e.guestPhysical === PD)!;
    expect(pde.qualification).toBe(1 | 1 << 7); // read, linear valid, to a paging-structure entry
    expect(b.machine.mem.read32(PD) & 0x20).toBe(0x20); // the walk set A (an EPT write)
    // CR4.PSE and CR0.PG are host-owned: both writes exit.
    expect(only(b, R.CONTROL_REGISTER_ACCESS).map((e) => e.qualification & 0xf)).toEqual([4, 0]);
  });

  it('misconfiguration rules (SDM vol. 3C §29.3.3.1): W without R, reserved memory types, reserved bits', () => {
    expect(eptMisconfigured(0x2, 0, 3, true)).toBe(true); // -W-
    expect(eptMisconfigured(0x6, 0, 3, true)).toBe(true); // -WX
    expect(eptMisconfigured(0x4 | 6 << 3, 0, 3, true)).toBe(false); // execute-only is supported
    for (const type of [2, 3, 7]) expect(eptMisconfigured(0x7 | type << 3, 0, 3, true)).toBe(true);
    expect(eptMisconfigured(0x7 | 6 << 3, 0, 3, true)).toBe(false);
    expect(eptMisconfigured(0x7 | 6 << 3, 0, 1, false)).toBe(true); // memory type bits in a non-leaf
    expect(eptMisconfigured(0x87, 0, 0, false)).toBe(true); // large page in a PML4E
    expect(eptMisconfigured(0x7 | 6 << 3, 0x10, 3, true)).toBe(true); // address bit 36 > MAXPHYADDR
  });

  it('the monitor\'s memory above guest RAM is not the guest\'s: reads see the open bus, writes are dropped (as natively)', () => {
    const EPT_PML4 = GUEST_RAM + 0x3000;
    const body = (a: Assembler): void => {
      a.asm('mov', mem({ disp: EPT_PML4, size: 4 }), imm(0));
      a.asm('mov', reg('ecx'), mem({ disp: EPT_PML4, size: 4 }));
      a.asm('mov', reg('ebx'), mem({ disp: 0x200000, size: 4 })); // RAM still maps after the write
    };
    const b = boot(body);
    const n = boot(body, '', undefined, true);
    expect(b.report.registers.ecx).toBe(0xffffffff);
    expect(b.report.registers).toEqual(n.report.registers);
    expect(b.machine.mem.read32(EPT_PML4) & 7).toBe(7); // the PML4 entry is intact
    expect(b.report.exitStatus).toBe(status(0x42));
  });

  it('PAE: the PDPTE load of MOV to CR0 reads the PDPT through the EPT with no linear address (bits 7 and 8 clear)', () => {
    const PDPT = 0x400000, PD = 0x401000;
    const b = boot((a) => {
      a.asm('mov', reg('eax'), reg('cr4')); a.asm('or', reg('eax'), imm(0x20)); a.asm('mov', reg('cr4'), reg('eax')); // PAE
      a.asm('mov', reg('eax'), imm(PDPT)); a.asm('mov', reg('cr3'), reg('eax'));
      a.asm('mov', reg('eax'), reg('cr0')); a.asm('or', reg('eax'), imm(0x80000000)); a.asm('mov', reg('cr0'), reg('eax'));
    }, '', (m) => { m.mem.write32(PDPT, PD | 1); m.mem.write32(PD, 0x83); }); // PDPTE0 -> PD; PDE 0: 2 MiB at 0
    expect(b.report.exitStatus).toBe(status(0x42));
    const v = only(b, R.EPT_VIOLATION);
    expect(v.find((e) => e.guestPhysical === PDPT)!.qualification).toBe(1);
    expect(v.find((e) => e.guestPhysical === PD)!.qualification).toBe(1 | 1 << 7);
  });
});

// ---- Task switches (9) and the CPU's task switch (cpu/task-switch.ts) ----------------------------

const TSS_A = 0x4000, TSS_B = 0x4100, COUNTER = 0x5000, TASK_B = 0x120000;
const SEL_A = 0x18, SEL_B = 0x20, SEL_GATE = 0x28;
const tssDesc = (base: number, limit = 0x67): [number, number] => [((base & 0xffff) << 16) | limit, ((base >>> 16) & 0xff) | (0x89 << 8) | (base & 0xff000000)];

/**
 * GDT: null, code 0x08, data 0x10, TSS A 0x18, TSS B 0x20 (limit `limitB`), task gate 0x28 -> B;
 * IDT vector 31: task gate -> B. Task B resumes where it left each time: +1 at COUNTER, then JMP
 * back to A; +1, IRET; +1, IRET.
 */
function taskSetup(limitB = 0x67): (m: Machine) => void {
  return (machine) => {
    const m = machine.mem;
    const gdt: (readonly [number, number])[] = [[0, 0], flatCode(0), flatData(0), tssDesc(TSS_A), tssDesc(TSS_B, limitB), [SEL_B << 16, 0x8500]];
    gdt.forEach(([lo, hi], i) => { m.write32(GDT + i * 8, lo); m.write32(GDT + i * 8 + 4, hi); });
    m.write16(PSEUDO, gdt.length * 8 - 1);
    m.write32(IDT + 31 * 8, SEL_B << 16); m.write32(IDT + 31 * 8 + 4, 0x8500);
    m.write32(TSS_B + 0x20, TASK_B); m.write32(TSS_B + 0x24, 2); m.write32(TSS_B + 0x38, 0x80000);
    [0x10, 0x08, 0x10, 0x10, 0, 0].forEach((s, i) => m.write32(TSS_B + 0x48 + 4 * i, s));
    const b = new Assembler(32, TASK_B);
    b.asm('inc', mem({ disp: COUNTER, size: 4 })); b.asm('jmp', far(SEL_A, 0));
    b.asm('inc', mem({ disp: COUNTER, size: 4 })); b.asm('iretd');
    b.asm('inc', mem({ disp: COUNTER, size: 4 })); b.asm('iretd');
    m.load(TASK_B, b.assemble().bytes);
  };
}

/** LTR A; JMP to TSS B; CALL through the task gate; INT 31 through the IDT task gate. */
function taskBody(a: Assembler): void {
  a.asm('mov', reg('eax'), imm(SEL_A)); a.asm('ltr', reg('ax'));
  a.asm('mov', reg('ebx'), imm(0x1234));
  a.asm('jmp', far(SEL_B, 0));
  a.asm('call', far(SEL_GATE, 0));
  a.asm('int', imm(31));
}

describe('task switches: the CPU (native)', () => {
  it('JMP, CALL through a task gate, IRET with NT = 1 and INT n through an IDT task gate run task B three times and return to A', () => {
    const b = boot(taskBody, '', taskSetup(), true);
    const { cpu, mem: m } = b.machine;
    expect(b.report.exitStatus).toBe(status(0x42));
    expect(m.read32(COUNTER)).toBe(3);
    expect(cpu.trSel).toBe(SEL_A);
    expect(cpu.regs[3]).toBe(0x1234); // A's EBX saved and restored through its TSS
    expect(cpu.eflags & (1 << 14)).toBe(0); // NT clear again in A
    expect(cpu.cr0 & 8).toBe(8); // every task switch sets CR0.TS
    // Busy bits: A busy (current), B free again after its IRET; B's back link names A.
    expect((m.read32(GDT + 3 * 8 + 4) >>> 8) & 0xf).toBe(0xb);
    expect((m.read32(GDT + 4 * 8 + 4) >>> 8) & 0xf).toBe(0x9);
    expect(m.read16(TSS_B)).toBe(SEL_A);
    // B's saved state: its EIP after the last IRET, EFLAGS with NT cleared by that IRET.
    expect(m.read32(TSS_B + 0x20)).toBe(TASK_B + 27); // inc (6), jmp far (7), inc, iretd (1), inc, iretd
    expect(m.read32(TSS_B + 0x24) & (1 << 14)).toBe(0);
  });

  it('a new TSS with limit < 0x67 is #TS(selector) in the old task', () => {
    const b = boot(taskBody, '', taskSetup(0x60), true);
    expect(b.report.exitStatus).toBe(status(10));
    expect(b.machine.cpu.trSel).toBe(SEL_A);
    expect(b.machine.mem.read32(COUNTER)).toBe(0);
  });

  it('JMP to a busy TSS is #GP', () => {
    const b = boot((a) => { a.asm('mov', reg('eax'), imm(SEL_A)); a.asm('ltr', reg('ax')); a.asm('jmp', far(SEL_A, 0)); }, '', taskSetup(), true);
    expect(b.report.exitStatus).toBe(status(13));
  });
});

describe('hvm exits: task switch (9)', () => {
  it('every task switch exits: TSS selector in 15:0, source in 31:30 (2 JMP, 0 CALL, 1 IRET, 3 IDT gate), instruction length; the guest runs as natively', () => {
    const b = boot(taskBody, '', taskSetup());
    const ts = only(b, R.TASK_SWITCH);
    expect(ts.map((e) => [e.qualification >>> 0, e.instructionLength])).toEqual([
      [(SEL_B | 2 << 30) >>> 0, 7], // jmp far 0x20:0
      [(SEL_A | 2 << 30) >>> 0, 7], // task B: jmp far 0x18:0
      [(SEL_B | 0 << 30) >>> 0, 7], // call far 0x28:0: the gate's TSS
      [(SEL_A | 1 << 30) >>> 0, 1], // task B: iretd to the back link
      [(SEL_B | 3 << 30) >>> 0, 2], // int 31 through the IDT task gate
      [(SEL_A | 1 << 30) >>> 0, 1],
    ]);
    expect(b.hvm!.accounting.stats().byReason[vmxExitReasonName(R.TASK_SWITCH)!]).toBe(6);
    const n = boot(taskBody, '', taskSetup(), true);
    expect(b.report.exitStatus).toBe(n.report.exitStatus);
    expect(b.machine.mem.read32(COUNTER)).toBe(3);
    expect(Array.from(b.machine.cpu.regs)).toEqual(Array.from(n.machine.cpu.regs));
  });

  it('a task switch that faults on the new TSS still exits first (the check is the emulation\'s)', () => {
    const b = boot(taskBody, '', taskSetup(0x60));
    expect(only(b, R.TASK_SWITCH).map((e) => e.qualification >>> 0)).toEqual([(SEL_B | 2 << 30) >>> 0]);
    expect(b.report.exitStatus).toBe(status(10));
  });
});

// ---- Descriptor-table exiting (46, 47), RDPMC (15), PAUSE (40) ------------------------------------

const DT_MEM32 = (1 << 7) | (3 << 15); // 32-bit address size, DS
const NO_INDEX = 1 << 22, NO_BASE = 1 << 27;

describe('hvm exits: descriptor-table exiting (46, 47)', () => {
  it('off by default (KVM sets it only to emulate UMIP)', () => {
    const b = boot((a) => { a.asm('sgdt', mem({ disp: 0x6000, size: 6 })); });
    expect(only(b, R.GDTR_IDTR_ACCESS)).toEqual([]);
  });

  it('LGDT/LIDT/SGDT/SIDT: identity 29:28, operand size 11, address size, segment, index/base; displacement as qualification', () => {
    const b = boot((a) => {
      a.asm('mov', reg('ebx'), imm(0x6000)); a.asm('mov', reg('esi'), imm(4));
      a.asm('sidt', mem({ base: 'ebx', index: 'esi', scale: 4, disp: 0x10, size: 6 }));
      a.asm('sgdt', mem({ disp: 0x6100, size: 6 }));
    }, 'descriptor-table-exiting');
    const e = only(b, R.GDTR_IDTR_ACCESS);
    expect(e.map((x) => [x.instructionInfo >>> 0, x.qualification >>> 0])).toEqual([
      [(DT_MEM32 | 1 << 11 | NO_INDEX | NO_BASE | 2 << 28) >>> 0, PSEUDO], // the prologue's lgdt [PSEUDO]
      [(DT_MEM32 | 1 << 11 | NO_INDEX | NO_BASE | 3 << 28) >>> 0, PSEUDO + 8], // lidt
      [(2 | (1 << 7) | 1 << 11 | (3 << 15) | 6 << 18 | 3 << 23 | 1 << 28) >>> 0, 0x10], // sidt [ebx+esi*4+0x10]
      [(DT_MEM32 | 1 << 11 | NO_INDEX | NO_BASE | 0 << 28) >>> 0, 0x6100],
    ]);
    expect(b.machine.mem.read32(0x6000 + 4 * 4 + 0x10 + 2)).toBe(IDT); // the store still happened
    expect(b.report.exitStatus).toBe(status(0x42));
  });

  it('LLDT/LTR/SLDT/STR: register operand in 6:3 with bit 10 set, or a memory operand', () => {
    const b = boot((a) => {
      a.asm('xor', reg('eax'), reg('eax')); a.asm('lldt', reg('ax'));
      a.asm('sldt', reg('ecx'));
      a.asm('str', mem({ disp: 0x6200, size: 2 }));
    }, 'descriptor-table-exiting');
    const e = only(b, R.LDTR_TR_ACCESS);
    expect(e.map((x) => [x.instructionInfo >>> 0, x.qualification >>> 0])).toEqual([
      [((0 << 3) | 1 << 10 | 2 << 28) >>> 0, 0],
      [((1 << 3) | 1 << 10 | 0 << 28) >>> 0, 0],
      [(DT_MEM32 | NO_INDEX | NO_BASE | 1 << 28) >>> 0, 0x6200],
    ]);
    expect(b.report.exitStatus).toBe(status(0x42));
  });
});

describe('hvm exits: RDPMC (15) and PAUSE (40)', () => {
  it('RDPMC at CPL 0 exits (KVM default), then #GP(0) as natively (this CPU has no counters)', () => {
    const body = (a: Assembler): void => { a.asm('xor', reg('ecx'), reg('ecx')); a.asm('rdpmc'); };
    const b = boot(body);
    expect(only(b, R.RDPMC).map((e) => e.instructionLength)).toEqual([2]);
    expect(b.report.exitStatus).toBe(status(13));
    expect(only(boot(body, 'rdpmc-exiting=off'), R.RDPMC)).toEqual([]);
  });

  it('PAUSE exits only with pause-exiting', () => {
    const body = (a: Assembler): void => { a.asm('pause'); a.asm('pause'); };
    expect(only(boot(body), R.PAUSE)).toEqual([]);
    const b = boot(body, 'pause-exiting');
    expect(only(b, R.PAUSE).map((e) => [e.qualification, e.instructionLength])).toEqual([[0, 2], [0, 2]]);
    expect(b.report.exitStatus).toBe(status(0x42));
  });
});
