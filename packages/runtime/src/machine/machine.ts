// A PC-compatible machine around the IA-32 CPU: physical memory, the I/O bus and the legacy
// devices every PC operating system expects (8259A pair, 8254 PIT, 16550 UART on COM1,
// MC146818 RTC/CMOS, port 0x92, POST port, debug console, isa-debug-exit), all driven by one
// clock. run() executes the CPU in slices and lets the devices act between them; it is the
// `native` way to run a guest and the machine every backend shares.
//
// Reproducibility: with the default virtual clock, guest time is a function of the instructions
// retired (clock.ts), each slice ends exactly at the next timer edge, and HLT skips virtual time
// to that edge, so two runs of the same image with the same input produce the same reports,
// serial output and RDTSC values.

import { formatIntel, mnemonicOf } from '@ringshift/decoder';
import { Cpu, type Handler, type StopReason } from '../cpu/cpu';
import * as F from '../cpu/eflags';
import { buildHandlers } from '../cpu/handlers';
import { UnsupportedFeature } from '../cpu/interrupts';
import { SegReg } from '../cpu/registers';
import { Clock, hostNowMs } from './clock';
import { Cmos } from './devices/cmos';
import { DebugConsole, DebugExit, PostCode, SystemControlA } from './devices/misc';
import { Pic8259 } from './devices/pic8259';
import { Pit8254 } from './devices/pit8254';
import { COM1_BASE, COM1_IRQ, Uart16550 } from './devices/uart16550';
import { IoBus } from './io-bus';
import { PhysicalMemory } from './memory';

export const DEFAULT_MEMORY_BYTES = 128 << 20;
/** Instructions per slice between device updates when no timer edge comes sooner. */
export const SLICE_INSTRUCTIONS = 10_000;

export interface MachineOptions {
  /** RAM size (default 128 MiB). */
  memoryBytes?: number;
  /** Receives each byte the guest transmits on COM1. */
  serialOut?: (byte: number) => void;
  /** Bytes queued for COM1's receiver (more can be added with machine.uart.receive()). */
  serialIn?: string | Uint8Array;
  /** Receives each byte written to the debug console port 0xE9. */
  debugConsoleOut?: (byte: number) => void;
  /** Guest time follows the host clock instead of the retired-instruction count (not reproducible). */
  realtime?: boolean;
  /** RTC time at guest time 0, ms since 1970 UTC (default 2000-01-01T00:00:00Z). */
  rtcEpochMs?: number;
}

export interface RunLimits {
  /** Instructions to retire at most in this run. */
  maxInstructions?: number;
  /** Host milliseconds at most (checked between slices). */
  timeoutMs?: number;
  /** Keep the last N instructions executed, formatted, in the report (slower: one step at a time). */
  traceLast?: number;
}

export type RunReason = 'exit' | 'triple-fault' | 'halt' | 'budget' | 'timeout' | 'unsupported';

export interface RunRegisters {
  eax: number; ecx: number; edx: number; ebx: number; esp: number; ebp: number; esi: number; edi: number;
  eip: number; eflags: number; cs: number; ds: number; ss: number;
  cr0: number; cr2: number; cr3: number; cr4: number;
}

export interface RunReport {
  reason: RunReason;
  /** (v << 1) | 1 for reason 'exit', as QEMU's isa-debug-exit exits. */
  exitStatus?: number;
  /** Instructions retired in this run. */
  instructions: number;
  /**
   * Of those, the ones the guest saw retire: all but a rewrite monitor's patch jumps and stub
   * plumbing (Cpu.plumbingRetired). Guest time follows this count.
   */
  guestInstructions: number;
  /** Unsigned 32-bit values. */
  registers: RunRegisters;
  /** The triple-fault or unsupported-feature text, or why a halt is final. */
  detail?: string;
  /** With traceLast > 0: the last instructions executed (and interrupts taken), oldest first. */
  lastInstructions?: { address: number; text: string }[];
}

const TSC_MNEMONICS = new Set(['rdtsc', 'rdtscp', 'rdmsr', 'wrmsr']);
let sharedHandlers: (Handler | undefined)[] | null = null;

export class Machine {
  readonly mem: PhysicalMemory;
  readonly bus: IoBus;
  readonly cpu: Cpu;
  readonly clock: Clock;
  readonly pic: Pic8259;
  readonly pit: Pit8254;
  readonly uart: Uart16550;
  readonly cmos: Cmos;
  readonly systemControl: SystemControlA;
  readonly post: PostCode;
  readonly debugExit: DebugExit;

  private exitStatus: number | null = null;
  private resetRequested = false;

  constructor(opts: MachineOptions = {}) {
    const memoryBytes = opts.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    this.mem = new PhysicalMemory(memoryBytes);
    this.bus = new IoBus();
    sharedHandlers ??= buildHandlers();
    // RDTSC and RDMSR/WRMSR of IA32_TIME_STAMP_COUNTER read and write the plain field `cpu.tsc`.
    // This machine's copy of the handler table wraps exactly those instructions to bring the
    // field in from the clock first (and hand a WRMSR'd value back), so every RDTSC sees the
    // time of its own instruction, not of the last slice boundary. (An accessor on cpu.tsc would
    // do the same but turns the Cpu object's properties slow: measured 2x on every instruction.)
    let clock: Clock | null = null;
    const handlers = sharedHandlers.map((h, id) => {
      if (h === undefined || !TSC_MNEMONICS.has(mnemonicOf(id))) return h;
      const wrapped: Handler = (c, ins) => {
        c.tsc = clock!.tsc;
        h(c, ins);
        clock!.tsc = c.tsc;
      };
      return wrapped;
    });
    const cpu = new Cpu(this.mem, this.bus, handlers);
    this.cpu = cpu;
    clock = new Clock({ retired: () => cpu.retired - cpu.plumbingRetired, realtime: opts.realtime ?? false });
    this.clock = clock;
    const now = (): number => clock!.nowNs();
    this.pic = new Pic8259();
    cpu.interruptController = this.pic;
    // A new count for counter 0 ends the slice (cpu.stop), which is then cut at the new edge.
    this.pit = new Pit8254(now, () => this.pic.pulseIrq(0), () => cpu.stop());
    this.uart = new Uart16550(COM1_BASE, opts.serialOut ?? (() => {}), (level) => this.pic.setIrq(COM1_IRQ, level));
    if (opts.serialIn !== undefined) this.uart.receive(opts.serialIn);
    this.cmos = new Cmos(opts.rtcEpochMs === undefined ? { memoryBytes, nowNs: now } : { memoryBytes, nowNs: now, epochMs: opts.rtcEpochMs });
    this.systemControl = new SystemControlA(() => { this.resetRequested = true; cpu.stop(); });
    this.post = new PostCode();
    this.debugExit = new DebugExit((status) => { this.exitStatus = status; cpu.stop(); });
    const debugConsole = new DebugConsole(opts.debugConsoleOut ?? (() => {}));

    const bus = this.bus;
    bus.register(0x20, 2, this.pic, '8259A master');
    bus.register(0xa0, 2, this.pic, '8259A slave');
    bus.register(0x40, 4, this.pit, '8254 PIT');
    bus.register(0x61, 1, this.pit, 'port 0x61 (PIT counter 2 gate/output)');
    bus.register(0x70, 2, this.cmos, 'MC146818 RTC/CMOS');
    bus.register(0x80, 1, this.post, 'POST code');
    bus.register(0x92, 1, this.systemControl, 'system control port A');
    bus.register(0xe9, 1, debugConsole, 'debug console');
    bus.register(0xf4, 4, this.debugExit, 'isa-debug-exit');
    bus.register(COM1_BASE, 8, this.uart, '16550A UART (COM1)');
  }

  /** Runs the guest from the CPU's current state until one of the report's reasons. */
  run(limits: RunLimits = {}): RunReport {
    const cpu = this.cpu;
    const max = limits.maxInstructions ?? Infinity;
    const deadline = limits.timeoutMs === undefined ? Infinity : hostNowMs() + limits.timeoutMs;
    const trace = (limits.traceLast ?? 0) > 0 ? new TraceRing(limits.traceLast!) : null;
    const start = cpu.retired;
    const startPlumbing = cpu.plumbingRetired;
    this.exitStatus = null;
    this.resetRequested = false;
    const report = (reason: RunReason, detail?: string): RunReport => {
      const instructions = cpu.retired - start;
      const r: RunReport = { reason, instructions, guestInstructions: instructions - (cpu.plumbingRetired - startPlumbing), registers: this.registers() };
      if (reason === 'exit') r.exitStatus = this.exitStatus!;
      if (detail !== undefined) r.detail = detail;
      if (trace) r.lastInstructions = trace.entries();
      return r;
    };

    this.pit.update();
    for (;;) {
      const done = cpu.retired - start;
      if (done >= max) return report('budget');
      if (hostNowMs() >= deadline) return report('timeout');
      let slice = Math.min(SLICE_INSTRUCTIONS, max - done);
      if (!this.clock.realtime) {
        // End the slice at the next timer edge, so the interrupt arrives at the same instruction
        // in every run rather than at a slice boundary. Masked at the PIC too: the edge still
        // sets IRR, which a guest can poll (OCW3), so it must land at the same instruction.
        const next = this.pit.nextIrqNs();
        if (next >= 0) slice = Math.min(slice, this.clock.instructionsIn(next - this.clock.nowNs()));
      }
      let stop: StopReason;
      try {
        stop = trace ? this.runTraced(slice, trace) : cpu.run(slice);
      } catch (e) {
        if (e instanceof UnsupportedFeature) return report('unsupported', e.message);
        throw e;
      }
      this.pit.update();
      if (this.exitStatus !== null) return report('exit');
      if (this.resetRequested) return report('triple-fault', 'system reset requested through port 0x92 bit 0');
      if (stop === 'shutdown') return report('triple-fault', cpu.shutdownReason);
      if (stop === 'exit') return report('unsupported', `monitor exit ${cpu.lastExit?.reason ?? ''} without a monitor to handle it`);
      if (stop !== 'halted' || this.pic.pending() >= 0) continue;
      // HLT: nothing can wake the CPU but an interrupt.
      if ((cpu.eflags & F.IF) === 0) return report('halt', 'HLT with IF = 0');
      const next = this.nextEventNs();
      if (next < 0) return report('halt', 'HLT with IF = 1 and no interrupt source armed');
      if (!this.clock.advanceTo(next, deadline)) return report('timeout');
      this.pit.update();
      // An edge that the PIC cannot pass on (blocked by a higher-priority interrupt in service)
      // will not change by waiting longer: further edges merge into the same IRR bit.
      if (this.pic.pending() < 0) return report('halt', 'HLT with IF = 1; the next timer interrupt is blocked at the PIC');
    }
  }

  /** Guest time of the next interrupt a device will raise by itself, or -1. */
  private nextEventNs(): number {
    // The UART raises its interrupts only in response to guest accesses or receive(), which
    // happen between slices already; the RTC raises none. Only the PIT's IRQ 0 is timed.
    return this.pic.unmasked(0) ? this.pit.nextIrqNs() : -1;
  }

  /**
   * The CPU's loop (Cpu.run) one instruction at a time, recording each instruction before it
   * executes. Interrupt acceptance is done here, exactly as Cpu.pollInterrupt does it, so that a
   * delivered interrupt is recorded as such instead of being hidden inside a step.
   */
  private runTraced(budget: number, trace: TraceRing): StopReason {
    const cpu = this.cpu;
    const pic = this.pic;
    cpu.interruptController = null;
    try {
      for (let i = 0; i < budget; i++) {
        if (cpu.shutdownReason) return 'shutdown';
        if (this.exitStatus !== null || this.resetRequested) return 'stopped';
        const ifSet = (cpu.eflags & F.IF) !== 0;
        if (ifSet && !cpu.inhibitInterrupts && pic.pending() >= 0) {
          const vector = pic.acknowledge();
          trace.push(cpu.eip >>> 0, `<external interrupt, vector 0x${vector.toString(16)}>`);
          cpu.halted = false;
          cpu.raise(vector, -1, false, cpu.eip, true);
        }
        if (cpu.halted) {
          if (!ifSet || pic.pending() < 0) return 'halted';
          continue;
        }
        let text: string;
        try {
          text = formatIntel(cpu.fetch());
        } catch {
          text = '(fetch faults)';
        }
        trace.push(cpu.eip >>> 0, text);
        const r = cpu.run(1);
        if (r === 'shutdown' || r === 'exit') return r;
      }
      return cpu.shutdownReason ? 'shutdown' : 'budget';
    } finally {
      cpu.interruptController = pic;
    }
  }

  /** The register state a report carries (unsigned). */
  registers(): RunRegisters {
    const c = this.cpu;
    const g = (i: number): number => c.regs[i]! >>> 0;
    return {
      eax: g(0), ecx: g(1), edx: g(2), ebx: g(3), esp: g(4), ebp: g(5), esi: g(6), edi: g(7),
      eip: c.eip >>> 0, eflags: c.eflags >>> 0,
      cs: c.sel[SegReg.CS]!, ds: c.sel[SegReg.DS]!, ss: c.sel[SegReg.SS]!,
      cr0: c.cr0 >>> 0, cr2: c.cr2 >>> 0, cr3: c.cr3 >>> 0, cr4: c.cr4 >>> 0,
    };
  }
}

/** The last N trace entries. */
class TraceRing {
  private readonly buf: { address: number; text: string }[] = [];
  private at = 0;
  constructor(private readonly size: number) {}
  push(address: number, text: string): void {
    if (this.buf.length < this.size) this.buf.push({ address, text });
    else { this.buf[this.at] = { address, text }; this.at = (this.at + 1) % this.size; }
  }
  entries(): { address: number; text: string }[] {
    return [...this.buf.slice(this.at), ...this.buf.slice(0, this.at)];
  }
}
