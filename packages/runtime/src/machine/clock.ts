// Guest time. By default it is virtual: derived from the instructions the CPU has retired at a
// fixed, documented rate, plus the time skipped while the CPU idles in HLT, so that a run is
// reproducible bit for bit (same image, same inputs: same timer interrupts at the same
// instructions, same RDTSC values, same RTC readings). With `realtime` it follows the host's
// monotonic clock (performance.now()) instead. The TSC, the PIT and the RTC all read this clock.

/**
 * Virtual rate: one retired instruction = 1 ns of guest time, i.e. a 1000 MHz processor that
 * retires one instruction per cycle. The TSC counts these cycles (TSC_HZ).
 */
export const NS_PER_INSTRUCTION = 1;
export const TSC_HZ = 1_000_000_000;

interface HostClock { now(): number }
// `performance` is a global in Node and browsers but not in the ES2022 lib this package builds
// against; reach it through globalThis rather than pulling in DOM or Node types.
const host = (): HostClock => (globalThis as unknown as { performance: HostClock }).performance;

export interface ClockOptions {
  /** Instructions retired so far (the CPU's counter). */
  retired: () => number;
  realtime?: boolean;
}

export class Clock {
  readonly realtime: boolean;
  private readonly retired: () => number;
  private readonly retiredAtStart: number;
  private readonly hostStart: number;
  /** Guest nanoseconds added by idling (virtual mode: skipped, never spent). */
  private skippedNs = 0;
  /** TSC = cycles(now) + tscOffset; WRMSR IA32_TIME_STAMP_COUNTER changes the offset. */
  private tscOffset = 0n;

  constructor(opts: ClockOptions) {
    this.retired = opts.retired;
    this.realtime = opts.realtime ?? false;
    this.retiredAtStart = opts.retired();
    this.hostStart = this.realtime ? host().now() : 0;
  }

  /** Guest time since the machine was built, in nanoseconds (an integer in virtual mode). */
  nowNs(): number {
    if (this.realtime) return Math.floor((host().now() - this.hostStart) * 1e6) + this.skippedNs;
    return (this.retired() - this.retiredAtStart) * NS_PER_INSTRUCTION + this.skippedNs;
  }

  /**
   * Moves guest time forward to `ns` while the CPU is halted. Virtual mode jumps (HLT idles at no
   * host cost); realtime mode waits on the host clock, because that clock is the guest's.
   * `deadlineHostMs` bounds the wait (the run's timeout); returns false when it was reached first.
   */
  advanceTo(ns: number, deadlineHostMs = Infinity): boolean {
    if (!this.realtime) {
      const now = this.nowNs();
      if (ns > now) this.skippedNs += ns - now;
      return true;
    }
    // A pure package cannot sleep synchronously; spinning is the honest realtime idle.
    while (this.nowNs() < ns) if (host().now() >= deadlineHostMs) return false;
    return true;
  }

  /** Instructions the CPU retires in `ns` of guest time (virtual mode), at least 1. */
  instructionsIn(ns: number): number {
    return Math.max(1, Math.ceil(ns / NS_PER_INSTRUCTION));
  }

  /** The time-stamp counter: cycles at TSC_HZ since the machine was built (SDM vol. 3B §18.17). */
  get tsc(): bigint {
    return (BigInt(this.nowNs()) * BigInt(TSC_HZ / 1_000_000_000) + this.tscOffset) & 0xffff_ffff_ffff_ffffn;
  }

  set tsc(v: bigint) {
    this.tscOffset = v - BigInt(this.nowNs()) * BigInt(TSC_HZ / 1_000_000_000);
  }
}

/** Host milliseconds, for run timeouts (the only use of the host clock outside realtime mode). */
export const hostNowMs = (): number => host().now();
