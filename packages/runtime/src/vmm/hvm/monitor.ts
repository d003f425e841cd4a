// The HVM monitor: the guest kernel runs unmodified in ring 0 of (modelled) VMX non-root
// operation, and the CPU's interception hooks (cpu/intercept.ts) stand for the processor's VM-exit
// logic: each hook decides, from the VMCS's controls, bitmaps, masks and shadows, whether VT-x
// would exit (SDM vol. 3C ch. 26), and if so builds the exit exactly (exits.ts), writes the
// VMCS's exit-information fields, counts it in ExitAccounting, handles it and re-enters the guest.
// Handling an exit here is the monitor's business only: guest-visible behaviour is native's.
//
// Where a real VMM emulates with its own code, this one reuses the CPU's semantics:
//  - CPUID: computed by the monitor (cpuidLeaf, the virtual CPU's model, the same as native);
//  - IN/OUT: performed by the monitor on the machine's I/O bus; INS/OUTS (and REP) exit once and
//    are completed by the CPU's string engine on the same bus, as KVM's emulator would;
//  - MOV CR, LMSW, CLTS, MOV DR, INVLPG, INVD, WBINVD, RDTSC, RDMSR/WRMSR, HLT: the monitor lets
//    the CPU's own instruction carry out the effect after the exit (verdict CONTINUE), which is
//    the emulation a VMM performs for them, then updates the read shadows;
//  - RDPMC, PAUSE, descriptor-table instructions (LGDT ... STR): exit, then the CPU's instruction
//    (RDPMC: #GP(0), this CPU has no counters, as KVM injects for a counter it does not expose);
//  - task switches (always exit, reason 9): the CPU's task switch (cpu/task-switch.ts) performs
//    it after the exit, as KVM's emulator does after its handle_task_switch;
//  - events: a guest exception that exits, and every external interrupt (external-interrupt
//    exiting), is re-injected on VM entry (VM-entry interruption information) and delivered by the
//    CPU through the guest's IDT.
// Privilege before exit (SDM vol. 3C §26.1.1; QEMU's order): instructions that need CPL 0 raise
// #GP at CPL > 0 rather than exit, so their hooks answer CONTINUE there and the CPU's handler
// raises it; I/O checks IOPL and the TSS bitmap (checkIo) before deciding to exit.
//
// Memory: with EPT (the default) the CPU translates every guest-physical access through
// EptTranslator (ept.ts) over tables in the monitor's memory above guest RAM, populated lazily
// on EPT violations (RAM: identity, read/write/execute, write-back); guest-physical addresses
// that are not RAM are device accesses, emulated on each access: the first exits as an EPT
// violation and the page gets a misconfigured entry (write-only, as KVM marks MMIO), so later
// ones exit as EPT misconfigurations. Without EPT (`ept=off`) the CPU's TLB is the shadow page
// table: every TLB miss is a #PF exit in which the monitor walks the guest's tables (pageWalk
// hook), and CR3 loads and INVLPG exit, as with KVM's shadow MMU.
import { FORMS, OpKind, Prefix, Reg, VMX_EXIT_REASON, type Instruction, type InstructionClass } from '@ringshift/decoder';
import type { Cpu } from '../../cpu/cpu';
import { CONTINUE, EventKind, HANDLED, MonitorExit, type CrAccess, type ExceptionEvent, type Interceptor, type IoAccess, type MsrAccess, type PageWalk, type TaskSwitchAttempt, type Verdict } from '../../cpu/intercept';
import { checkIo, cpuidLeaf } from '../../cpu/ops/system';
import { SegReg } from '../../cpu/registers';
import type { Machine } from '../../machine/machine';
import { ExitAccounting, type ExitVia } from '../accounting';
import { ioBitmapExits, msrBitmapExits, setMsrBit, setUpBitmaps } from './bitmaps';
import { defaultControls, isOn, type ControlName, type ControlWords } from './controls';
import { EPT_MISCONFIGURED_W, EPT_RWX, EptTables, EptTranslator, accessQualification, type EptFaultHandler } from './ept';
import {
  crAccessExit, eptMisconfigurationExit, interruptWindowExit, eptViolationExit, exceptionExit, exceptionExits, externalInterruptExit, instructionExit,
  invlpgExit, ioExit, movDrExit, tripleFaultExit, writeExitInfo, writeInjection, type HvmExit,
  gdtrIdtrExit, ldtrTrExit, taskSwitchExit, type DescriptorInstruction, type DescriptorOperand,
} from './exits';
import { VMCS } from './vmcs-fields';
import { Vmcs } from './vmcs';

// Module-local copies of imported constants used on exit paths (an imported binding can cost a
// getter per access under some module loaders).
const R = { ...VMX_EXIT_REASON } as const;
const G_RIP = VMCS.GUEST_RIP, G_RSP = VMCS.GUEST_RSP, G_RFLAGS = VMCS.GUEST_RFLAGS, G_CR0 = VMCS.GUEST_CR0, G_CR3 = VMCS.GUEST_CR3, G_CR4 = VMCS.GUEST_CR4;
const CS = SegReg.CS;
const EFLAGS_IF = 0x200;
/** Primary processor-based control bit 2 (SDM table 25-6). */
const INTERRUPT_WINDOW_EXITING = 1 << 2;
const REG_AL = Reg.AL, REG_AX = Reg.AX, OP_REGISTER = OpKind.Register;

// Monitor memory above guest RAM (host-physical): the bitmaps, then the EPT pool.
const IO_BITMAPS_OFFSET = 0x0000; // A, then B at +0x1000
const MSR_BITMAP_OFFSET = 0x2000;
const EPT_POOL_OFFSET = 0x3000;
/** EPT pages beyond one page table per 2 MiB of RAM: PML4, PDPT, PDs and device pages. */
const EPT_SPARE_PAGES = 72;
/**
 * Host-physical address given for guest-physical addresses with nothing behind them that lie in
 * the monitor's memory: above the 3 GiB of RAM the CLI allows and in no device range, so reads
 * see the open bus and writes are dropped, as natively.
 */
const OPEN_BUS = 0xfffff000;

/** Host memory for an hvm guest: its RAM plus the monitor's bitmaps and EPT pool. */
export function hvmMemoryBytes(guestRamBytes: number): number {
  return guestRamBytes + EPT_POOL_OFFSET + eptPoolPages(guestRamBytes) * 4096;
}

function eptPoolPages(guestRamBytes: number): number {
  return Math.ceil(guestRamBytes / 0x200000) + EPT_SPARE_PAGES;
}

/** KVM's exception bitmap (vmx.c update_exception_bitmap): #DB, #UD, #AC, #MC; #PF too without EPT. */
const EXCEPTION_BITMAP_KVM = (1 << 1) | (1 << 6) | (1 << 17) | (1 << 18);
/** CR0 bits the guest owns (KVM_POSSIBLE_CR0_GUEST_BITS): TS, and WP with EPT; the mask is the rest. */
const CR0_TS = 8, CR0_WP = 1 << 16;
/** CR4 bits the guest owns (KVM_POSSIBLE_CR4_GUEST_BITS for IA-32): PVI, TSD, DE, PGE (with EPT only), PCE, OSFXSR, OSXMMEXCPT. */
const CR4_GUEST_OWNED = 0x2 | 0x4 | 0x8 | 0x100 | 0x200 | 0x400;
const CR4_PGE = 0x80;
/** KVM's VMCALL results (include/uapi/linux/kvm_para.h). */
export const KVM_ENOSYS = -1000;
export const KVM_EPERM = -1;
/** The hypercalls (docs/exits.md, "VMCALL"): number in EAX, result in EAX. */
export const HYPERCALL = { VERSION: 0, EXIT_COUNT: 1 } as const;
export const HYPERCALL_VERSION = 1;

const enum Kind { NONE, IF_SET, HLT, CPUID, RDTSC, INVD, WBINVD, INVLPG, VMCALL, IN, OUT, INS, OUTS, RDPMC, PAUSE, GDTR_IDTR, LDTR_TR, MOV_TO_CR, MOV_FROM_CR, MOV_TO_DR, MOV_FROM_DR, LMSW, CLTS }

const KIND_BY_MNEMONIC: Record<string, Kind> = {
  hlt: Kind.HLT, cpuid: Kind.CPUID, rdtsc: Kind.RDTSC, invd: Kind.INVD, wbinvd: Kind.WBINVD, invlpg: Kind.INVLPG, vmcall: Kind.VMCALL,
  in: Kind.IN, out: Kind.OUT, insb: Kind.INS, insw: Kind.INS, insd: Kind.INS, outsb: Kind.OUTS, outsw: Kind.OUTS, outsd: Kind.OUTS,
  lmsw: Kind.LMSW, clts: Kind.CLTS, rdpmc: Kind.RDPMC, pause: Kind.PAUSE,
  sgdt: Kind.GDTR_IDTR, sidt: Kind.GDTR_IDTR, lgdt: Kind.GDTR_IDTR, lidt: Kind.GDTR_IDTR,
  sldt: Kind.LDTR_TR, str: Kind.LDTR_TR, lldt: Kind.LDTR_TR, ltr: Kind.LDTR_TR,
  // Instructions that may set IF: where an interrupt held off while IF = 0 can open its window.
  sti: Kind.IF_SET, popf: Kind.IF_SET, popfd: Kind.IF_SET, iret: Kind.IF_SET, iretd: Kind.IF_SET,
};
const KIND_BY_FORM: Record<string, Kind> = { Mov_cr_r32: Kind.MOV_TO_CR, Mov_r32_cr: Kind.MOV_FROM_CR, Mov_dr_r32: Kind.MOV_TO_DR, Mov_r32_dr: Kind.MOV_FROM_DR };
const KIND = new Uint8Array(Math.max(...FORMS.map((f) => f.id)) + 1);
for (const f of FORMS) KIND[f.id] = KIND_BY_FORM[f.name] ?? KIND_BY_MNEMONIC[f.mnemonic] ?? Kind.NONE;

export interface HvmOptions {
  /** Guest RAM; the machine's memory must be hvmMemoryBytes(guestRamBytes). */
  guestRamBytes: number;
  /** VM-execution controls (default: KVM's, controls.ts). */
  controls?: ControlWords;
  /** Keep every exit in `log` (tests, tracing). */
  log?: boolean;
}

export class HvmMonitor implements Interceptor, EptFaultHandler {
  readonly vmcs = new Vmcs();
  readonly accounting = new ExitAccounting();
  readonly controls: ControlWords;
  /** Every exit, oldest first, with options.log. */
  readonly log: HvmExit[] | null;
  /** The EPT translator (null with EPT off). */
  readonly ept: EptTranslator | null;
  /** Events injected on VM entry. */
  injections = 0;
  private readonly cpu: Cpu;
  private readonly guestRam: number;
  private readonly monitorBase: number;
  /** Set by the shadow-paging walk hook when the guest's own walk faults: the #PF that follows is its re-injection. */
  private pfFromWalk = false;
  /** An interrupt arrived while the guest had IF = 0: it has exited (1) and waits for its window (7). */
  private windowRequested = false;

  constructor(private readonly machine: Machine, opts: HvmOptions) {
    this.cpu = machine.cpu;
    this.guestRam = opts.guestRamBytes;
    this.monitorBase = opts.guestRamBytes;
    if (machine.mem.size < hvmMemoryBytes(opts.guestRamBytes)) throw new RangeError(`hvm: the machine needs ${hvmMemoryBytes(opts.guestRamBytes)} bytes of memory for ${opts.guestRamBytes} of guest RAM`);
    this.controls = opts.controls ?? defaultControls();
    this.log = opts.log ? [] : null;
    const mem = machine.mem;
    mem.u8.fill(0, this.monitorBase, this.monitorBase + EPT_POOL_OFFSET);
    this.ept = this.on('enable-ept')
      ? new EptTranslator(new EptTables(mem, this.monitorBase + EPT_POOL_OFFSET, eptPoolPages(opts.guestRamBytes)), this, opts.guestRamBytes)
      : null;
    this.setUpVmcs();
  }

  /** The controls are fixed for a run: each looked up once. */
  private readonly onCache = new Map<ControlName, boolean>();
  private on(name: ControlName): boolean {
    let v = this.onCache.get(name);
    if (v === undefined) { v = isOn(this.controls, name); this.onCache.set(name, v); }
    return v;
  }

  /** The VMCS as KVM would leave it before the first VM entry (controls, bitmaps, masks, shadows, EPTP). */
  private setUpVmcs(): void {
    const v = this.vmcs, c = this.controls, cpu = this.cpu, mem = this.machine.mem;
    const ept = this.ept !== null;
    v.vmwrite(VMCS.PIN_BASED_VM_EXEC_CONTROL, c.pin);
    v.vmwrite(VMCS.CPU_BASED_VM_EXEC_CONTROL, c.primary);
    v.vmwrite(VMCS.SECONDARY_VM_EXEC_CONTROL, c.secondary);
    // Exit controls: acknowledge interrupt on exit (15); entry controls: none needed for IA-32.
    v.vmwrite(VMCS.VM_EXIT_CONTROLS, 1 << 15);
    v.vmwrite(VMCS.VM_ENTRY_CONTROLS, 0);
    v.vmwrite(VMCS.EXCEPTION_BITMAP, EXCEPTION_BITMAP_KVM | (ept ? 0 : 1 << 14));
    v.vmwrite(VMCS.PAGE_FAULT_ERROR_CODE_MASK, 0);
    v.vmwrite(VMCS.PAGE_FAULT_ERROR_CODE_MATCH, 0);
    v.vmwrite(VMCS.CR3_TARGET_COUNT, 0);
    v.vmwrite(VMCS.CR0_GUEST_HOST_MASK, ~(CR0_TS | (ept ? CR0_WP : 0)) >>> 0);
    v.vmwrite(VMCS.CR4_GUEST_HOST_MASK, ~(CR4_GUEST_OWNED | (ept ? CR4_PGE : 0)) >>> 0);
    v.vmwrite(VMCS.CR0_READ_SHADOW, cpu.cr0);
    v.vmwrite(VMCS.CR4_READ_SHADOW, cpu.cr4);
    // I/O bitmaps (every port exits but 0x80) and the MSR bitmap (all but KVM's pass-throughs).
    setUpBitmaps(mem, v, this.monitorBase + IO_BITMAPS_OFFSET, this.monitorBase + MSR_BITMAP_OFFSET);
    v.vmwrite(VMCS.TSC_OFFSET, 0);
    if (this.ept !== null) v.vmwrite(VMCS.EPT_POINTER, this.ept.tables.eptp);
    v.vmwrite(VMCS.GUEST_ACTIVITY_STATE, 0);
  }

  /** Sets one MSR's read or write bit in the MSR bitmap (tests, tuning). */
  setMsrExiting(msr: number, write: boolean, exits: boolean): void {
    setMsrBit(this.machine.mem, this.vmcs, msr, write, exits);
  }

  /** Attaches the monitor (and, with EPT, the guest-physical translator) to the CPU: the first VM entry. */
  start(): void {
    this.cpu.interceptor = this;
    this.cpu.guestPhysical = this.ept;
    this.cpu.tlb.flushAll();
  }

  // ---- Recording ---------------------------------------------------------------------------

  /** A VM exit: the exit-information fields and guest state written, counted, logged. */
  private vmExit(e: HvmExit, via: ExitVia): void {
    const v = this.vmcs, cpu = this.cpu;
    writeExitInfo(v, e);
    v.vmwrite(G_RIP, cpu.eip);
    v.vmwrite(G_RSP, cpu.regs[4]!);
    v.vmwrite(G_RFLAGS, cpu.eflags);
    v.vmwrite(G_CR0, cpu.cr0);
    v.vmwrite(G_CR3, cpu.cr3);
    v.vmwrite(G_CR4, cpu.cr4);
    this.accounting.record(e, via, (cpu.segBase[CS]! + cpu.eip) >>> 0);
    this.log?.push(e);
  }

  /** Event injection on VM entry, then delivery by the CPU through the guest's IDT. */
  private inject(e: ExceptionEvent): void {
    writeInjection(this.vmcs, e, (e.nextEip - this.cpu.eip) >>> 0);
    this.vmcs.vmwrite(VMCS.GUEST_ACTIVITY_STATE, 0);
    this.injections++;
  }

  /** The triple fault that ended a run (runGuest calls this: the CPU's shutdown is the exit). */
  recordTripleFault(): void {
    this.vmExit(tripleFaultExit(), 'event');
  }

  // ---- Hooks -------------------------------------------------------------------------------

  exception(cpu: Cpu, e: ExceptionEvent): Verdict {
    if (e.kind === EventKind.EXTERNAL_INTERRUPT) {
      if (this.windowRequested) {
        // The guest can take the interrupt now: the interrupt-window exit, then the injection.
        this.windowRequested = false;
        this.setPrimary(INTERRUPT_WINDOW_EXITING, false);
        this.vmExit(interruptWindowExit(), 'event');
        this.inject(e);
      } else if (this.on('external-interrupt-exiting')) {
        this.vmExit(externalInterruptExit(e.vector), 'event');
        this.inject(e);
      }
      return CONTINUE;
    }
    if (e.vector === 14 && this.pfFromWalk) {
      // The #PF exit was taken in the walk (shadow paging); this is its re-injection.
      this.pfFromWalk = false;
      this.inject(e);
      return CONTINUE;
    }
    if (exceptionExits(this.vmcs, e)) {
      this.vmExit(exceptionExit(e, cpu.cr2 /* unused unless #PF */, (e.nextEip - cpu.eip) >>> 0), 'event');
      this.inject(e);
    }
    return CONTINUE;
  }

  /** Task switch (9): unconditional in VMX non-root operation; the CPU then performs it (the emulation). */
  taskSwitch(_cpu: Cpu, t: TaskSwitchAttempt): Verdict {
    this.vmExit(taskSwitchExit(t.selector, t.source, t.instructionLength), t.source === 3 && t.instructionLength === 0 ? 'event' : 'trap');
    return CONTINUE;
  }

  msr(_cpu: Cpu, a: MsrAccess): Verdict {
    if (this.msrExits(a.msr, a.write)) this.vmExit(instructionExit(a.write ? R.WRMSR : R.RDMSR, 2), 'trap');
    return CONTINUE;
  }

  pageWalk(cpu: Cpu, w: PageWalk): Verdict {
    if (this.ept !== null) return CONTINUE;
    // Shadow paging: the TLB miss is a #PF on the shadow tables; the monitor walks the guest's.
    const code = w.errorCode >= 0 ? w.errorCode : (w.write ? 2 : 0) | (w.user ? 4 : 0) | (w.fetch && (cpu.efer & 0x800) && (cpu.cr4 & 0x20) ? 16 : 0);
    const e: ExceptionEvent = { vector: 14, errorCode: code, kind: EventKind.HARDWARE_EXCEPTION, nextEip: cpu.eip };
    this.vmExit(exceptionExit(e, w.linear), 'page-walk');
    if (w.errorCode >= 0) this.pfFromWalk = true;
    return CONTINUE;
  }

  instruction(cpu: Cpu, ins: Instruction, _cls: InstructionClass): Verdict {
    const kind = KIND[ins.form] as Kind;
    if (kind === Kind.NONE) return CONTINUE;
    const len = ins.length;
    // CPL-0-only instructions fault before they exit (SDM vol. 3C §26.1.1).
    const ring0 = !cpu.protectedMode || (cpu.cpl === 0 && !cpu.v86);
    switch (kind) {
      case Kind.IF_SET:
        this.interruptHeldOff(cpu);
        return CONTINUE;
      case Kind.CPUID: {
        this.vmExit(instructionExit(R.CPUID, len), 'trap');
        const [a, b, c, d] = cpuidLeaf(cpu.regs[0]! >>> 0, cpu.regs[1]! >>> 0);
        cpu.regs[0] = a; cpu.regs[3] = b; cpu.regs[1] = c; cpu.regs[2] = d;
        return HANDLED;
      }
      case Kind.VMCALL:
        this.vmExit(instructionExit(R.VMCALL, len), 'trap');
        cpu.regs[0] = ring0 ? this.hypercall(cpu.regs[0]! >>> 0) : KVM_EPERM;
        return HANDLED;
      case Kind.HLT:
        if (!ring0 || !this.on('hlt-exiting')) return CONTINUE;
        this.vmExit(instructionExit(R.HLT, len), 'trap');
        this.vmcs.vmwrite(VMCS.GUEST_ACTIVITY_STATE, 1);
        return CONTINUE; // the vCPU waits in the HLT state until the next interrupt
      case Kind.RDTSC:
        if ((cpu.cr4 & 0x4) && cpu.protectedMode && cpu.cpl !== 0) return CONTINUE; // CR4.TSD: #GP first
        if (this.on('rdtsc-exiting')) this.vmExit(instructionExit(R.RDTSC, len), 'trap');
        return CONTINUE;
      case Kind.INVD:
        if (ring0) this.vmExit(instructionExit(R.INVD, len), 'trap');
        return CONTINUE;
      case Kind.WBINVD:
        if (ring0 && this.on('wbinvd-exiting')) this.vmExit(instructionExit(R.WBINVD, len), 'trap');
        return CONTINUE;
      case Kind.INVLPG:
        if (ring0 && this.on('invlpg-exiting')) this.vmExit(invlpgExit((cpu.segBase[cpu.segmentOf(ins)]! + cpu.effectiveAddress(ins)) >>> 0, len), 'trap');
        return CONTINUE;
      case Kind.RDPMC:
        // CPL > 0 with CR4.PCE = 0 is #GP before the exit (SDM vol. 3C §26.1.1).
        if ((ring0 || (cpu.cr4 & CR4_PCE) !== 0) && this.on('rdpmc-exiting')) this.vmExit(instructionExit(R.RDPMC, len), 'trap');
        return CONTINUE;
      case Kind.PAUSE:
        if (this.on('pause-exiting')) this.vmExit(instructionExit(R.PAUSE, len), 'trap');
        return CONTINUE;
      case Kind.GDTR_IDTR: case Kind.LDTR_TR:
        if (this.on('descriptor-table-exiting')) this.descriptorTable(cpu, ins, kind);
        return CONTINUE;
      case Kind.IN: case Kind.OUT: return this.portIo(cpu, ins, kind === Kind.IN);
      case Kind.INS: case Kind.OUTS: return this.stringIo(cpu, ins, kind === Kind.INS);
      default:
        return ring0 ? this.crDr(cpu, ins, kind) : CONTINUE;
    }
  }

  /**
   * With external-interrupt exiting, VT-x exits when an interrupt arrives even while the guest
   * has IF = 0; KVM then holds it in its virtual PIC and sets interrupt-window exiting, which
   * exits (7) as soon as the guest can take it, and injects it. The CPU here polls the PIC only
   * while IF = 1, so the monitor notices such an interrupt at the instruction that may open the
   * window (STI, POPF, IRET with IF = 0): the external-interrupt exit is counted there, and the
   * interrupt's acceptance (exception hook) becomes the interrupt-window exit.
   */
  private interruptHeldOff(cpu: Cpu): void {
    if (this.windowRequested || !this.on('external-interrupt-exiting') || (cpu.eflags & EFLAGS_IF) !== 0) return;
    const pic = cpu.interruptController;
    if (pic === null) return;
    const vector = pic.pending();
    if (vector < 0) return;
    this.vmExit(externalInterruptExit(vector), 'event');
    this.windowRequested = true;
    this.setPrimary(INTERRUPT_WINDOW_EXITING, true);
  }

  private setPrimary(bit: number, on: boolean): void {
    const v = this.vmcs.vmread(VMCS.CPU_BASED_VM_EXEC_CONTROL);
    this.vmcs.vmwrite(VMCS.CPU_BASED_VM_EXEC_CONTROL, on ? v | bit : v & ~bit);
  }

  /**
   * Descriptor-table exiting (46, 47). The faults that come first (SDM vol. 3C §26.1.1): #UD for
   * LLDT/LTR/SLDT/STR outside protected mode, #GP(0) for the loads at CPL > 0 and for the stores
   * at CPL > 0 with CR4.UMIP; the operand's own faults come after (the CPU's instruction, run
   * after the exit, raises them).
   */
  private descriptorTable(cpu: Cpu, ins: Instruction, kind: Kind): void {
    const m = FORMS_BY_ID[ins.form]!.mnemonic;
    const identity = DT_IDENTITY[m]!;
    const load = identity >= 2;
    const cpl0 = !cpu.protectedMode || (cpu.cpl === 0 && !cpu.v86);
    if (kind === Kind.LDTR_TR && (!cpu.protectedMode || cpu.v86)) return;
    if (load ? !cpl0 : !cpl0 && (cpu.cr4 & CR4_UMIP) !== 0) return;
    const op = descriptorOperand(cpu, ins);
    if (kind === Kind.GDTR_IDTR) this.vmExit(gdtrIdtrExit(identity, op, ins.operandSize === 32 ? 32 : 16, ins.length), 'trap');
    else this.vmExit(ldtrTrExit(identity, op, ins.length), 'trap');
  }

  // ---- I/O ---------------------------------------------------------------------------------

  /** Whether an access of `size` bytes at `port` exits (§26.1.3, vmx.md §8). */
  ioExits(port: number, size: number): boolean {
    // With "use I/O bitmaps" set, "unconditional I/O exiting" is ignored (§26.1.3).
    if (this.on('use-io-bitmaps')) return ioBitmapExits(this.machine.mem, this.vmcs, port, size);
    return this.on('unconditional-io-exiting');
  }

  private portIo(cpu: Cpu, ins: Instruction, input: boolean): Verdict {
    const portOp = input ? 1 : 0, regOp = input ? 0 : 1;
    const immediate = ins.opKinds[portOp] !== OP_REGISTER;
    const port = immediate ? ins.imm & 0xff : cpu.regs[2]! & 0xffff;
    const r = ins.opRegs[regOp]!;
    const size: 1 | 2 | 4 = r === REG_AL ? 1 : r === REG_AX ? 2 : 4;
    checkIo(cpu, port, size); // IOPL / TSS bitmap #GP comes before the exit
    if (!this.ioExits(port, size)) return CONTINUE;
    const a: IoAccess = { port, size, input, string: false, rep: false, immediate };
    this.vmExit(ioExit(a, ins.length), 'trap');
    // The monitor performs the access on the machine's bus (the same devices native uses).
    if (input) cpu.writeReg(r, cpu.ports.read(port, size));
    else cpu.ports.write(port, size, cpu.readReg(r));
    return HANDLED;
  }

  private stringIo(cpu: Cpu, ins: Instruction, input: boolean): Verdict {
    const port = cpu.regs[2]! & 0xffff;
    const n = STRING_SIZE[ins.form]! as 1 | 2 | 4;
    checkIo(cpu, port, n);
    if (!this.ioExits(port, n)) return CONTINUE;
    const a16 = ins.addressSize === 16;
    const seg = input ? SegReg.ES : cpu.segmentOf(ins);
    const off = (input ? cpu.regs[7]! : cpu.regs[6]!) & (a16 ? 0xffff : -1);
    const a: IoAccess = { port, size: n, input, string: true, rep: (ins.prefixes & (Prefix.Rep | Prefix.Repne)) !== 0, immediate: false };
    this.vmExit(ioExit(a, ins.length, { linear: (cpu.segBase[seg]! + off) >>> 0, addressSize: a16 ? 16 : 32, segment: seg }), 'trap');
    return CONTINUE; // completed by the CPU's string engine on the same bus
  }

  // ---- CR and DR ---------------------------------------------------------------------------

  private crDr(cpu: Cpu, ins: Instruction, kind: Kind): Verdict {
    const v = this.vmcs, len = ins.length;
    switch (kind) {
      case Kind.MOV_TO_CR: {
        const cr = ins.opRegs[0]! - Reg.CR0;
        const gpr = ins.opRegs[1]! - Reg.EAX;
        const value = cpu.readReg(ins.opRegs[1]!) >>> 0;
        const a: CrAccess = { cr: cr as 0 | 3 | 4, type: 0, gpr, value };
        if (cr === 0 || cr === 4) {
          const mask = v.vmread(cr === 0 ? VMCS.CR0_GUEST_HOST_MASK : VMCS.CR4_GUEST_HOST_MASK);
          const shadow = v.vmread(cr === 0 ? VMCS.CR0_READ_SHADOW : VMCS.CR4_READ_SHADOW);
          if (((value ^ shadow) & mask) === 0) return CONTINUE;
          this.vmExit(crAccessExit(a, len), 'trap');
          return this.emulateThenShadow(cpu, ins);
        }
        if (cr === 3 && this.on('cr3-load-exiting') && !this.cr3Target(value)) this.vmExit(crAccessExit(a, len), 'trap');
        return CONTINUE;
      }
      case Kind.MOV_FROM_CR: {
        const cr = ins.opRegs[1]! - Reg.CR0;
        if (cr === 3 && this.on('cr3-store-exiting')) this.vmExit(crAccessExit({ cr: 3, type: 1, gpr: ins.opRegs[0]! - Reg.EAX, value: 0 }, len), 'trap');
        return CONTINUE; // CR0/CR4 reads see the shadow for owned bits, which equals the real value here
      }
      case Kind.LMSW: {
        const memory = ins.opKinds[0] === OpKind.Memory;
        const src = cpu.readOp(ins, 0, 16) & 0xffff;
        const mask = v.vmread(VMCS.CR0_GUEST_HOST_MASK), shadow = v.vmread(VMCS.CR0_READ_SHADOW);
        // §26.1.3: an owned bit among MP/EM/TS that would differ, or an owned PE that LMSW sets while the shadow's is 0.
        if ((mask & (src ^ shadow) & 0xe) === 0 && !((mask & 1) && (src & 1) && !(shadow & 1))) return CONTINUE;
        const linear = memory ? (cpu.segBase[cpu.segmentOf(ins)]! + cpu.effectiveAddress(ins)) >>> 0 : null;
        this.vmExit(crAccessExit({ cr: 0, type: 3, gpr: 0, value: src }, len, linear), 'trap');
        return this.emulateThenShadow(cpu, ins);
      }
      case Kind.CLTS: {
        if ((v.vmread(VMCS.CR0_GUEST_HOST_MASK) & CR0_TS) === 0 || (v.vmread(VMCS.CR0_READ_SHADOW) & CR0_TS) === 0) return CONTINUE;
        this.vmExit(crAccessExit({ cr: 0, type: 2, gpr: 0, value: 0 }, len), 'trap');
        return this.emulateThenShadow(cpu, ins);
      }
      case Kind.MOV_TO_DR: case Kind.MOV_FROM_DR: {
        if (!this.on('mov-dr-exiting')) return CONTINUE;
        const to = kind === Kind.MOV_TO_DR;
        const dr = ins.opRegs[to ? 0 : 1]! - Reg.DR0;
        if ((dr === 4 || dr === 5) && (cpu.cr4 & 0x8)) return CONTINUE; // #UD first
        this.vmExit(movDrExit(dr, !to, ins.opRegs[to ? 1 : 0]! - Reg.EAX, len), 'trap');
        return CONTINUE;
      }
    }
    return CONTINUE;
  }

  /** MOV to CR0/CR4, LMSW, CLTS after an exit: the CPU's instruction performs it; the shadows follow the guest's value. */
  private emulateThenShadow(cpu: Cpu, ins: Instruction): Verdict {
    const handler = cpu.handlerOf(ins);
    handler(cpu, ins); // a #GP it raises propagates: the monitor injects it (the CPU delivers it)
    this.vmcs.vmwrite(VMCS.CR0_READ_SHADOW, cpu.cr0);
    this.vmcs.vmwrite(VMCS.CR4_READ_SHADOW, cpu.cr4);
    return HANDLED;
  }

  private cr3Target(value: number): boolean {
    const n = Math.min(4, this.vmcs.vmread(VMCS.CR3_TARGET_COUNT));
    for (let i = 0; i < n; i++) if (this.vmcs.vmread(VMCS.CR3_TARGET_VALUE0 + 2 * i) === value) return true;
    return false;
  }

  // ---- MSRs --------------------------------------------------------------------------------

  /** §26.1.3: without MSR bitmaps every RDMSR/WRMSR exits. */
  msrExits(msr: number, write: boolean): boolean {
    return !this.on('use-msr-bitmaps') || msrBitmapExits(this.machine.mem, this.vmcs, msr, write);
  }

  // ---- VMCALL ------------------------------------------------------------------------------

  private hypercall(nr: number): number {
    switch (nr) {
      case HYPERCALL.VERSION: return HYPERCALL_VERSION;
      case HYPERCALL.EXIT_COUNT: return this.accounting.total | 0;
      default: return KVM_ENOSYS;
    }
  }

  // ---- EPT ---------------------------------------------------------------------------------

  violation(gpa: number, access: number, rights: number, linear: number): number {
    this.vmExit(eptViolationExit(gpa, accessQualification(access), rights, linear), 'page-walk');
    const tables = this.ept!.tables;
    if (gpa < this.guestRam && this.machine.mem.isRam(gpa)) {
      if (!tables.map(gpa, gpa, EPT_RWX)) this.refuse(`the EPT pool is spent at guest-physical 0x${gpa.toString(16)}`);
      return -1;
    }
    // A device (or nothing): emulate this access; mark the page so later ones exit as misconfigurations.
    tables.setLeaf(gpa, ((gpa & 0xfffff000) | EPT_MISCONFIGURED_W) >>> 0);
    return this.deviceAddress(gpa);
  }

  misconfiguration(gpa: number, _access: number, _linear: number): number {
    this.vmExit(eptMisconfigurationExit(gpa), 'page-walk');
    return this.deviceAddress(gpa);
  }

  /** Where an emulated device access goes: the device's own address, or the open bus for the monitor's memory. */
  private deviceAddress(gpa: number): number {
    if (gpa >= this.guestRam && gpa < this.machine.mem.size) return (OPEN_BUS | (gpa & 0xfff)) >>> 0;
    return gpa;
  }

  private refuse(why: string): never {
    throw new MonitorExit({ reason: -1, qualification: 0, interruptionInfo: 0, errorCode: -1, linear: 0, instructionLength: 0, detail: why });
  }
}

const CR4_PCE = 0x100, CR4_UMIP = 0x800;
const FORMS_BY_ID: (typeof FORMS)[number][] = [];
for (const f of FORMS) FORMS_BY_ID[f.id] = f;
/** Instruction identity, bits 29:28 of the instruction information (§28.2.5). */
const DT_IDENTITY: Record<string, DescriptorInstruction> = { sgdt: 0, sidt: 1, lgdt: 2, lidt: 3, sldt: 0, str: 1, lldt: 2, ltr: 3 };

/** GPR number 0-7 of a 32- or 16-bit register (EAX/AX = 0 ... EDI/DI = 7), or -1. */
function gprNumber(r: number): number {
  if (r >= Reg.EAX && r < Reg.EAX + 8) return r - Reg.EAX;
  if (r >= Reg.AX && r < Reg.AX + 8) return r - Reg.AX;
  return -1;
}

/** The operand fields of a descriptor-table instruction's exit (exits.ts DescriptorOperand). */
function descriptorOperand(cpu: Cpu, ins: Instruction): DescriptorOperand {
  if (ins.opKinds[0] === OP_REGISTER) return { reg: gprNumber(ins.opRegs[0]!), scale: 0, index: -1, base: -1, segment: 0, addressSize: 32, displacement: 0 };
  const index = gprNumber(ins.memIndex);
  return {
    reg: -1, scale: index >= 0 ? [0, 0, 1, 0, 2, 0, 0, 0, 3][ins.memScale]! : 0, index, base: gprNumber(ins.memBase),
    segment: cpu.segmentOf(ins), addressSize: ins.addressSize === 16 ? 16 : 32, displacement: ins.memDisp,
  };
}

/** Element size of INS/OUTS by form id. */
const STRING_SIZE = new Uint8Array(KIND.length);
for (const f of FORMS) if (/^(ins|outs)[bwd]$/.test(f.mnemonic)) STRING_SIZE[f.id] = f.mnemonic.endsWith('b') ? 1 : f.mnemonic.endsWith('w') ? 2 : 4;
