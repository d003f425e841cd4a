// A paravirtualized domain on the emulated CPU: the guest kernel in ring 1 on Xen's flat
// segments, its own PAE page tables as the real ones (validated, mm.ts), and the monitor entered
// only by hypercalls (`int 0x82`), by the guest's exceptions (bounced to its trap table) and by
// the forced-CPUID prefix. Virtual interrupts are event channels (events.ts) delivered through the
// guest's event callback while vcpu_info.evtchn_upcall_mask is 0.
//
// The monitor sees everything through the CPU's Interceptor seam (cpu/intercept.ts): the
// exception hook for INT n, faults and the upcall (an "external interrupt" from the interrupt
// controller the domain installs), the page-walk hook for the hypervisor hole.
import { VMX_EXIT_REASON, formatIntel, mnemonicOf } from '@ringshift/decoder';
import type { Instruction } from '@ringshift/decoder';
import type { Cpu, StopReason } from '../../cpu/cpu';
import * as F from '../../cpu/eflags';
import { Fault, HAS_ERROR_CODE, Vector } from '../../cpu/fault';
import { buildHandlers } from '../../cpu/handlers';
import {
  CONTINUE, EventKind, HANDLED, exit, interruptionInfo,
  type ExceptionEvent, type Interceptor, type MsrAccess, type PageWalk, type Verdict,
} from '../../cpu/intercept';
import { UnsupportedFeature } from '../../cpu/interrupts';
import { cpuidLeaf } from '../../cpu/ops/system';
import { PfError } from '../../cpu/paging';
import { SegReg } from '../../cpu/registers';
import { hostNowMs } from '../../machine/clock';
import type { Machine, RunLimits, RunReason, RunReport } from '../../machine/machine';
import { SLICE_INSTRUCTIONS } from '../../machine/machine';
import { ExitAccounting } from '../accounting';
import {
  EVTCHNSTAT, HYPERCALL_VECTOR, MACH2PHYS_VIRT_START_PAE, SHARED_INFO, SHUTDOWN_NAMES, TI_DPL_MASK, TI_MASK_EVENTS,
  VCPU_INFO, VIRQ_TIMER, VMASST_TYPE, XENCONS, XEN_MAJOR, XEN_MINOR, HYPERVISOR_VIRT_START_PAE,
} from './abi';
import { DomainCrash, bounce, hypervisorIret } from './bounce';
import { EventChannels } from './events';
import { PV_GDT_LIMIT, PvGdt } from './gdt';
import { GuestMemory } from './guest-memory';
import { dispatchHypercall } from './hypercalls/table';
import { PV_GDT_LINEAR, type PvLayout } from './layout';
import { FrameTable } from './mm';
import { PV_CR4_GUEST_VISIBLE_MASK, emulateKernelPrivOp } from './priv-op';

/** The CPU's handler table, built on first use (only emulated I/O needs it). */
let sharedHandlers: ReturnType<typeof buildHandlers> | null = null;

/** The vector the domain's interrupt controller reports for "call the event callback". */
export const UPCALL_VECTOR = 0xf0;
/** Xen's default periodic timer for a PV vCPU: 100 Hz (xen/arch/x86/pv/domain.c, pv_vcpu_initialise). */
export const DEFAULT_PERIODIC_NS = 10_000_000;
/** ud2a; .ascii "xen"; cpuid (arch-x86/xen.h XEN_CPUID). */
export const XEN_CPUID_PREFIX = [0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2] as const;

export interface TrapEntry { flags: number; cs: number; address: number }
export interface Callback { cs: number; eip: number }
export interface FastCallback extends Callback { masksEvents: boolean }

export interface PvDomainOptions {
  /** SIF_INITDOMAIN: console_io writes reach the console; else the PV console ring does. */
  initialDomain: boolean;
  /** Receives each console byte (the machine's serial sink, the same as COM1's). */
  consoleOut: (byte: number) => void;
  cmdline: string;
}

export interface PvReport extends RunReport {
  /** SCHEDOP_shutdown reason name, or 'crash' when the monitor crashed the domain. */
  shutdown?: string;
}

export class PvDomain implements Interceptor {
  readonly cpu: Cpu;
  readonly accounting = new ExitAccounting();
  readonly gm: GuestMemory;
  readonly frames: FrameTable;
  readonly gdt: PvGdt;
  readonly events: EventChannels;
  readonly sharedInfo: number;
  readonly trapTable: TrapEntry[] = [];
  kernelSs = 0;
  kernelSp = 0;
  eventCallback: Callback = { cs: 0, eip: 0 };
  failsafeCallback: Callback = { cs: 0, eip: 0 };
  /** CALLBACKF_mask_events of the failsafe callback (_VGCF_failsafe_disables_events). */
  failsafeMasksEvents = false;
  /** CALLBACKTYPE_syscall32 / sysenter as registered (eip 0: none); recorded, never entered (docs/pv-abi.md). */
  syscall32Callback: FastCallback = { cs: 0, eip: 0, masksEvents: false };
  sysenterCallback: FastCallback = { cs: 0, eip: 0, masksEvents: false };
  /** MFNs of the guest's GDT frames (set_gdt) and its entry count. */
  gdtFrames: number[] = [];
  gdtEntries = 0;
  /** VMASST_TYPE_* bits enabled. */
  vmAssist = 0;
  /** PHYSDEVOP_set_iopl: the virtual IOPL. */
  iopl = 0;
  /** The guest's view of CR4 (pv.ctrlreg[4]); set at attach from the real CR4. */
  guestCr4 = 0;
  /** Single-shot timer deadline (ns of system time), or -1; periodic timer period (0: off) and next edge. */
  singleshotNs = -1;
  periodicNs = DEFAULT_PERIODIC_NS;
  nextPeriodicNs = DEFAULT_PERIODIC_NS;
  /** Ports the builder set up for a domU: console and xenstore (0 for none). */
  consolePort = 0;
  storePort = 0;
  /** Machine address of the console ring page (domU), or -1. */
  consoleRing = -1;
  /** Grant table frames set up (GNTTABOP_setup_table). */
  grantFrames = 0;
  /** Set when the guest asked to stop (SCHEDOP_shutdown) or the monitor crashed it. */
  shutdownReason: number | null = null;
  shutdownCode: number | null = null;
  crashReason: string | null = null;
  /** Depth of multicall nesting (a multicall may not contain one). */
  multicallDepth = 0;

  constructor(readonly machine: Machine, readonly layout: PvLayout, readonly opts: PvDomainOptions) {
    this.cpu = machine.cpu;
    this.frames = new FrameTable(this.cpu, { firstGuestMfn: layout.firstGuestMfn, nrGuestFrames: layout.nrPages, sharedMfn: layout.sharedInfoMfn, sharedCount: 1 + 4 }, layout.totalFrames);
    this.gm = new GuestMemory(this.cpu, (mfn) => this.frames.mappable(mfn));
    this.gdt = new PvGdt(machine.mem, layout.gdtMfn * 4096);
    this.sharedInfo = layout.sharedInfoMfn * 4096;
    this.events = new EventChannels(machine.mem, this.sharedInfo);
    for (let v = 0; v < 256; v++) this.trapTable.push({ flags: 0, cs: 0, address: 0 });
  }

  /** Takes over the CPU: hooks and the upcall as the interrupt controller. */
  attach(): void {
    const cpu = this.cpu;
    cpu.interceptor = this;
    cpu.interruptController = {
      pending: () => (this.upcallDue() ? UPCALL_VECTOR : -1),
      acknowledge: () => UPCALL_VECTOR,
    };
    cpu.gdtrBase = PV_GDT_LINEAR;
    cpu.gdtrLimit = PV_GDT_LIMIT;
    cpu.idtrBase = 0;
    cpu.idtrLimit = 0;
    this.guestCr4 = cpu.cr4 & PV_CR4_GUEST_VISIBLE_MASK;
  }

  upcallDue(): boolean {
    return this.eventCallback.eip !== 0 && this.crashReason === null && this.events.upcallPending && !this.events.upcallMask;
  }

  /** System time in ns (vcpu_time_info.system_time at tsc_timestamp 0, TSC at 1 GHz). */
  nowNs(): number {
    return this.machine.clock.nowNs();
  }

  /** Ends the current CPU run after this instruction, so the run loop looks at timers and shutdown. */
  kick(): void {
    this.cpu.stop();
  }

  crash(why: string): void {
    if (this.crashReason === null) this.crashReason = why;
    this.kick();
  }

  // ---- Timers ------------------------------------------------------------------------------

  /** Guest time of the next timer edge, or -1. */
  nextTimerNs(): number {
    let n = this.singleshotNs;
    if (this.periodicNs > 0 && (n < 0 || this.nextPeriodicNs < n)) n = this.nextPeriodicNs;
    return n;
  }

  /** Raises VIRQ_TIMER for every timer that has expired. */
  fireTimers(): void {
    const now = this.nowNs();
    if (this.singleshotNs >= 0 && now >= this.singleshotNs) {
      this.singleshotNs = -1;
      this.events.raiseVirq(VIRQ_TIMER);
    }
    if (this.periodicNs > 0 && now >= this.nextPeriodicNs) {
      // Missed periods merge into one event, as a timer softirq that runs late does.
      this.nextPeriodicNs += Math.ceil((now - this.nextPeriodicNs + 1) / this.periodicNs) * this.periodicNs;
      this.events.raiseVirq(VIRQ_TIMER);
    }
  }

  // ---- The run loop -------------------------------------------------------------------------

  run(limits: RunLimits = {}): PvReport {
    const cpu = this.cpu, clock = this.machine.clock;
    if ((limits.traceLast ?? 0) > 0) throw new RangeError('tracing (traceLast) is not available with the pv backend');
    const max = limits.maxInstructions ?? Infinity;
    const deadline = limits.timeoutMs === undefined ? Infinity : hostNowMs() + limits.timeoutMs;
    const start = cpu.retired;
    const debugExit = this.machine.debugExit;
    debugExit.status = null;
    const report = (reason: RunReason, detail?: string): PvReport => {
      this.drainConsole();
      const r: PvReport = { reason, instructions: cpu.retired - start, guestInstructions: cpu.retired - start, registers: this.machine.registers() };
      if (detail !== undefined) r.detail = detail;
      return r;
    };
    // A loop that retires nothing this many times in a row cannot end by itself (a guard: every
    // path above should end a run that can make no progress with a reason of its own).
    let idle = 0, lastRetired = cpu.retired;
    for (;;) {
      if (cpu.retired !== lastRetired) { idle = 0; lastRetired = cpu.retired; }
      else if (++idle > 100_000) return report('halt', 'the vCPU makes no progress');
      if (this.crashReason !== null) {
        const r = report('exit', `domain crashed: ${this.crashReason}`);
        r.exitStatus = (3 << 1) | 1;
        r.shutdown = 'crash';
        return r;
      }
      if (this.shutdownReason !== null) {
        const name = SHUTDOWN_NAMES[this.shutdownReason] ?? `reason ${this.shutdownReason}`;
        const code = this.shutdownCode === null ? '' : `, code ${this.shutdownCode} (SCHEDOP_shutdown_code)`;
        const r = report('exit', `SCHEDOP_shutdown: SHUTDOWN_${name}${code}`);
        // As if the reason had been written to isa-debug-exit: poweroff (0) exits with status 1.
        r.exitStatus = ((this.shutdownCode ?? this.shutdownReason) << 1 | 1) >>> 0;
        r.shutdown = name;
        return r;
      }
      if (debugExit.status !== null) {
        const r = report('exit');
        r.exitStatus = debugExit.status;
        return r;
      }
      const done = cpu.retired - start;
      if (done >= max) return report('budget');
      if (hostNowMs() >= deadline) return report('timeout');
      let slice = Math.min(SLICE_INSTRUCTIONS, max - done);
      const next = this.nextTimerNs();
      if (!clock.realtime && next >= 0) slice = Math.min(slice, clock.instructionsIn(next - clock.nowNs()));
      let stop: StopReason;
      try {
        stop = cpu.run(slice);
      } catch (e) {
        if (e instanceof UnsupportedFeature) return report('unsupported', e.message);
        if (e instanceof DomainCrash) { this.crash(e.message); continue; }
        throw e;
      }
      this.fireTimers();
      if (stop === 'shutdown') return report('triple-fault', cpu.shutdownReason);
      if (stop === 'exit') return report('unsupported', `monitor exit: ${cpu.lastExit?.detail ?? cpu.lastExit?.reason ?? ''}`);
      if (stop !== 'halted' || this.upcallDue()) continue;
      // SCHEDOP_block: nothing wakes the vCPU but an event.
      if (this.events.upcallMask) return report('halt', 'blocked with events masked');
      if (this.events.upcallPending) {
        // An event is pending but there is no callback to deliver it to: block returns.
        cpu.halted = false;
        continue;
      }
      const t = this.nextTimerNs();
      if (t < 0) return report('halt', 'SCHEDOP_block with no timer armed and no event pending');
      const port = this.events.virqPort[VIRQ_TIMER]!;
      if (port === 0 || this.events.isMasked(port)) return report('halt', 'SCHEDOP_block: no event can arrive (VIRQ_TIMER is not bound, or its port is masked)');
      if (!clock.advanceTo(t, deadline)) return report('timeout');
      this.fireTimers();
    }
  }

  // ---- The console ---------------------------------------------------------------------------

  /** The console backend: takes the bytes between out_cons and out_prod (io/console.h). */
  drainConsole(): void {
    const ring = this.consoleRing;
    if (ring < 0) return;
    const mem = this.machine.mem;
    let cons = mem.read32(ring + XENCONS.out_cons) >>> 0;
    const prod = mem.read32(ring + XENCONS.out_prod) >>> 0;
    const n = (prod - cons) >>> 0;
    // A producer more than a ring ahead is corrupt (xenconsoled gives up on it): take nothing.
    if (n === 0 || n > XENCONS.out_size) return;
    for (let i = 0; i < n; i++, cons = (cons + 1) >>> 0) this.opts.consoleOut(mem.read8(ring + XENCONS.out + (cons & (XENCONS.out_size - 1))));
    mem.write32(ring + XENCONS.out_cons, cons);
  }

  /** EVTCHNOP_send to an interdomain port: the monitor is the backend. */
  notifyBackend(service: 'console' | 'store', port: number): void {
    if (service === 'console') {
      this.drainConsole();
      this.events.setPending(port);
    }
  }

  // ---- Hooks ---------------------------------------------------------------------------------

  exception(cpu: Cpu, e: ExceptionEvent): Verdict {
    try {
      this.event(cpu, e);
    } catch (err) {
      if (!(err instanceof DomainCrash)) throw err;
      this.crash(err.message);
    }
    return HANDLED;
  }

  private event(cpu: Cpu, e: ExceptionEvent): void {
    const software = e.kind === EventKind.SOFTWARE_INTERRUPT || e.kind === EventKind.SOFTWARE_EXCEPTION;
    if (e.kind === EventKind.EXTERNAL_INTERRUPT) {
      this.accounting.record(exit(-1, { interruptionInfo: interruptionInfo(e), detail: 'event upcall' }), 'event');
      this.upcall(e.nextEip);
      return;
    }
    if (software && e.vector === HYPERCALL_VECTOR && cpu.cpl === 1) {
      this.hypercall(e.nextEip);
      return;
    }
    if (e.kind === EventKind.HARDWARE_EXCEPTION && e.vector === Vector.UD && this.forcedCpuid()) return;
    if (e.kind === EventKind.HARDWARE_EXCEPTION && e.vector === Vector.GP && e.errorCode === 0 && cpu.cpl === 1 && this.kernelPrivOp()) return;
    if (e.kind === EventKind.HARDWARE_EXCEPTION && e.vector === Vector.GP && e.errorCode === 0 && this.ioplOk(cpu.cpl) && this.emulateIoplOp()) return;
    this.accounting.record(exit(VMX_EXIT_REASON.EXCEPTION_OR_NMI, { interruptionInfo: interruptionInfo(e), errorCode: e.errorCode, detail: `exception ${e.vector}` }), 'event');
    if (software) {
      // An INT n reaches its handler only if the trap table entry's DPL allows the guest's ring
      // (permit_softint: the kernel counts as DPL 1, user mode as 3); else #GP(vector << 3 | 2).
      const ti = this.trapTable[e.vector]!;
      const ring = cpu.cpl === 1 ? 1 : 3;
      // INT 0x82 is Xen's own gate (DPL 1): from ring 3 it #GPs like any gate above its DPL.
      if (e.vector === HYPERCALL_VECTOR || (ti.flags & TI_DPL_MASK) < ring || ti.address === 0) {
        this.inject(Vector.GP, (e.vector << 3) | 2, cpu.eip);
        return;
      }
      this.inject(e.vector, -1, e.nextEip);
      return;
    }
    if (e.vector === Vector.PF) this.machine.mem.write32(this.sharedInfo + SHARED_INFO.vcpu_info + VCPU_INFO.cr2, cpu.cr2);
    this.inject(e.vector, HAS_ERROR_CODE.has(e.vector) ? Math.max(0, e.errorCode) : -1, e.nextEip);
  }

  /** Bounces `vector` to the guest's trap table handler (pv_inject_event); no handler crashes the domain. */
  inject(vector: number, errorCode: number, returnEip: number): void {
    const ti = this.trapTable[vector]!;
    if (ti.address === 0) throw new DomainCrash(`unhandled exception ${vectorName(vector)}${errorCode >= 0 ? ` (error code 0x${errorCode.toString(16)})` : ''} at EIP 0x${(returnEip >>> 0).toString(16)}: no trap table entry`);
    const savedMask = this.events.upcallMask;
    bounce(this.bounceContext(savedMask), { cs: ti.cs, eip: ti.address, errorCode, returnEip });
    if ((ti.flags & TI_MASK_EVENTS) !== 0) this.events.upcallMask = true;
  }

  /** The event callback, with events masked during delivery (compat entry.S: upcall_mask = 1). */
  private upcall(returnEip: number): void {
    const savedMask = this.events.upcallMask;
    bounce(this.bounceContext(savedMask), { cs: this.eventCallback.cs, eip: this.eventCallback.eip, errorCode: -1, returnEip });
    this.events.upcallMask = true;
  }

  private bounceContext(savedMask: boolean): Parameters<typeof bounce>[0] {
    const archIopl = (this.vmAssist & (1 << VMASST_TYPE.architectural_iopl)) !== 0;
    return { cpu: this.cpu, gm: this.gm, savedMask, kernelSs: this.kernelSs, kernelSp: this.kernelSp, frameIopl: archIopl ? this.iopl : 0 };
  }

  /** HYPERVISOR_iret (called by the iret hypercall). */
  iret(): void {
    const { mask, iopl } = hypervisorIret(this.cpu, this.gm);
    this.events.upcallMask = mask;
    // pv/iret.c: with architectural_iopl the frame's IOPL becomes the virtual IOPL.
    if ((this.vmAssist & (1 << VMASST_TYPE.architectural_iopl)) !== 0) this.iopl = iopl;
  }

  /**
   * Xen's iopl_ok (pv/emul-priv-op.c): the virtual IOPL against the guest's ring, the kernel
   * counting as ring 1, or as ring 0 with the architectural_iopl assist; user mode as ring 3.
   */
  ioplOk(cpl: number): boolean {
    const ring = cpl === 3 ? 3 : (this.vmAssist & (1 << VMASST_TYPE.architectural_iopl)) !== 0 ? 0 : 1;
    return ring <= this.iopl;
  }

  private hypercall(returnEip: number): void {
    const cpu = this.cpu;
    const r = cpu.regs;
    const nr = r[0]! >>> 0;
    const at = (cpu.segBase[SegReg.CS]! + returnEip - 2) >>> 0;
    cpu.eip = cpu.nextEip = returnEip;
    const args = [r[3]! >>> 0, r[1]! >>> 0, r[2]! >>> 0, r[6]! >>> 0, r[7]! >>> 0];
    const result = dispatchHypercall(this, nr, args, (name) => {
      this.accounting.record(exit(-1, { qualification: nr, instructionLength: 2, detail: `hypercall ${name}` }), 'escape', at, () => `int 0x82 (${name})`);
    });
    if (result !== null) r[0] = result | 0;
  }

  /** Xen's forced-emulation prefix: ud2a; .ascii "xen"; cpuid (arch-x86/xen.h XEN_CPUID). */
  private forcedCpuid(): boolean {
    const cpu = this.cpu;
    const lin = (cpu.segBase[SegReg.CS]! + cpu.eip) >>> 0;
    const bytes = this.gm.readBytes(lin, XEN_CPUID_PREFIX.length);
    if (bytes === null || XEN_CPUID_PREFIX.some((b, i) => bytes[i] !== b)) return false;
    this.accounting.record(exit(VMX_EXIT_REASON.CPUID, { instructionLength: XEN_CPUID_PREFIX.length, detail: 'forced cpuid' }), 'trap', lin, () => 'ud2; .ascii "xen"; cpuid');
    const leaf = cpu.regs[0]! >>> 0, sub = cpu.regs[1]! >>> 0;
    let v: [number, number, number, number];
    if ((leaf & 0xffffff00) === 0x40000000) v = xenCpuidLeaf(leaf);
    else {
      v = cpuidLeaf(leaf, sub);
      // CPUID.1:ECX bit 31: running under a hypervisor.
      if (leaf === 1) v = [v[0], v[1], (v[2] | (1 << 31)) | 0, v[3]];
    }
    cpu.regs[0] = v[0] | 0; cpu.regs[3] = v[1] | 0; cpu.regs[1] = v[2] | 0; cpu.regs[2] = v[3] | 0;
    cpu.eip = cpu.nextEip = (cpu.eip + XEN_CPUID_PREFIX.length) | 0;
    return true;
  }

  /** MOV CR, MOV DR and CLTS in the kernel, as Xen emulates them (priv-op.ts). */
  private kernelPrivOp(): boolean {
    const cpu = this.cpu;
    let ins: Instruction;
    try {
      ins = cpu.fetch();
    } catch {
      return false;
    }
    const at = cpu.eip, lin = (cpu.segBase[SegReg.CS]! + at) >>> 0;
    const state = {
      cpu, frames: this.frames, cr4: this.guestCr4,
      setTs: (ts: boolean): void => { cpu.cr0 = ts ? cpu.cr0 | 8 : cpu.cr0 & ~8; },
      setCr2: (v: number): void => { cpu.cr2 = v; this.machine.mem.write32(this.sharedInfo + SHARED_INFO.vcpu_info + VCPU_INFO.cr2, v); },
    };
    let done: boolean;
    try {
      done = emulateKernelPrivOp(state, ins);
    } catch (e) {
      if (!(e instanceof Fault)) throw e;
      cpu.eip = cpu.nextEip = at;
      this.inject(e.vector, HAS_ERROR_CODE.has(e.vector) ? e.errorCode : -1, at);
      return true;
    }
    if (!done) return false;
    this.guestCr4 = state.cr4;
    const dr = mnemonicOf(ins.form) === 'mov' && /dr/.test(formatIntel(ins));
    this.accounting.record(exit(dr ? VMX_EXIT_REASON.MOV_DR : VMX_EXIT_REASON.CONTROL_REGISTER_ACCESS, { instructionLength: ins.length, detail: `emulated ${formatIntel(ins)}` }), 'trap', lin, () => formatIntel(ins));
    return true;
  }

  /**
   * What the virtual IOPL allows (iopl_ok above), emulated as Xen's emulate_privileged_op does:
   * IN/OUT/INS/OUTS (guest_io_okay) and CLI/STI, which set and clear evtchn_upcall_mask, the
   * virtual IF (Xen mirrors IF into the mask around the emulator).
   */
  private emulateIoplOp(): boolean {
    const cpu = this.cpu;
    let ins: Instruction;
    try {
      ins = cpu.fetch();
    } catch {
      return false;
    }
    const m = mnemonicOf(ins.form);
    if (m === 'cli' || m === 'sti') {
      this.accounting.record(exit(VMX_EXIT_REASON.EXCEPTION_OR_NMI, { instructionLength: ins.length, detail: `emulated ${m}` }), 'trap', (cpu.segBase[SegReg.CS]! + cpu.eip) >>> 0, () => m);
      this.events.upcallMask = m === 'cli';
      cpu.eip = cpu.nextEip = (cpu.eip + ins.length) | 0;
      return true;
    }
    if (!/^(in|out|ins[bwd]|outs[bwd])$/.test(m)) return false;
    sharedHandlers ??= buildHandlers();
    const h = sharedHandlers[ins.form];
    if (h === undefined) return false;
    const at = cpu.eip;
    this.accounting.record(exit(VMX_EXIT_REASON.IO_INSTRUCTION, { instructionLength: ins.length }), 'trap', (cpu.segBase[SegReg.CS]! + at) >>> 0, () => formatIntel(ins));
    cpu.nextEip = (at + ins.length) | 0;
    const flags = cpu.eflags;
    cpu.setFlagBits(F.IOPL, F.IOPL);
    try {
      h(cpu, ins);
    } catch (e) {
      cpu.setFlagBits(F.IOPL, flags & F.IOPL);
      if (!(e instanceof Fault)) throw e;
      cpu.eip = cpu.nextEip = at;
      this.inject(e.vector, HAS_ERROR_CODE.has(e.vector) ? e.errorCode : -1, at);
      return true;
    }
    cpu.setFlagBits(F.IOPL, flags & F.IOPL);
    cpu.eip = cpu.nextEip;
    return true;
  }

  /**
   * The hypervisor hole: the read-only M2P table and the real GDT; the rest is not present.
   * Other addresses: the guest's own tables decide.
   */
  pageWalk(_cpu: Cpu, w: PageWalk): Verdict {
    const lin = w.linear >>> 0;
    if (lin < HYPERVISOR_VIRT_START_PAE) return CONTINUE;
    const L = this.layout;
    const base = (w.write ? PfError.W : 0) | (w.user ? PfError.U : 0);
    let phys = -1, code = base;
    const m2pEnd = MACH2PHYS_VIRT_START_PAE + L.totalFrames * 4;
    if (lin < m2pEnd) {
      // Read-only to everyone (Xen maps the compat M2P read-only, user-readable).
      if (w.write) code = base | PfError.P;
      else phys = L.m2pMfn * 4096 + (lin - MACH2PHYS_VIRT_START_PAE);
    } else if (lin >= PV_GDT_LINEAR && lin <= PV_GDT_LINEAR + PV_GDT_LIMIT) {
      if (w.write || w.user) code = base | PfError.P;
      else phys = L.gdtMfn * 4096 + (lin - PV_GDT_LINEAR);
    }
    w.physical = phys;
    w.errorCode = phys >= 0 ? -1 : code;
    w.pageSize = 4096;
    w.global = false;
    return HANDLED;
  }

  instruction(): Verdict { return CONTINUE; }
  // Xen's PV ABI has no task gates or TSS switches (docs/pv-abi.md): the run ends with a report.
  taskSwitch(): Verdict { return exit(-1, { detail: 'task switches (not in the Xen PV ABI)' }); }
  msr(_cpu: Cpu, _a: MsrAccess): Verdict { return CONTINUE; }

  /** EVTCHNSTAT of a port, for tests and event_channel_op status. */
  portState(port: number): number {
    return this.events.ports[port]?.kind ?? EVTCHNSTAT.closed;
  }
}

/** Xen's CPUID leaves at 0x40000000 (xen/arch/x86/cpuid.c, arch-x86/cpuid.h). */
export function xenCpuidLeaf(leaf: number): [number, number, number, number] {
  switch (leaf & 0xff) {
    case 0: return [0x40000002, 0x566e6558, 0x65584d4d, 0x4d4d566e]; // "XenVMMXenVMM"
    case 1: return [((XEN_MAJOR << 16) | XEN_MINOR) >>> 0, 0, 0, 0];
    case 2: return [1, 0x40000000, 0, 0]; // one hypercall page, set up through MSR 0x40000000
    default: return [0, 0, 0, 0];
  }
}

const VECTOR_NAMES = ['#DE', '#DB', 'NMI', '#BP', '#OF', '#BR', '#UD', '#NM', '#DF', 'vector 9', '#TS', '#NP', '#SS', '#GP', '#PF', 'vector 15', '#MF', '#AC', '#MC', '#XM'];
function vectorName(v: number): string {
  return VECTOR_NAMES[v] ?? `vector 0x${v.toString(16)}`;
}
