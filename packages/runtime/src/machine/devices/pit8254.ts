// Intel 8254 programmable interval timer (datasheet order no. 231164) as wired in the PC/AT:
// counters 0-2 at ports 0x40-0x42, the control word register at 0x43, a 1.193182 MHz input
// clock, counter 0's OUT on IRQ 0, counter 2's GATE and OUT on port 0x61 bits 0 and 5 (with the
// speaker-data bit 1 kept but not sounded). Counters 0 and 1 have GATE tied high.
//
// Time comes from the machine's clock: nothing ticks, each counter keeps the tick at which its
// count was loaded and computes its value and OUT from the current tick, so reading a counter
// costs the same at any frequency and the result is exact and reproducible.
//
// Implemented: modes 0 (interrupt on terminal count), 2 (rate generator) and 3 (square wave),
// modes 6 and 7 as their aliases 2 and 3; binary counting; read/write of LSB, MSB or LSB then MSB;
// the counter latch command; the 8254 read-back command. A new count written in mode 2 or 3 takes
// effect at the end of the current period, in mode 0 immediately (datasheet, mode definitions).
// Simplifications: the count is loaded at the write itself rather than on the next CLK edge
// (one tick, 838 ns, early); GATE low stops counter 2 only between its loads (the count is
// frozen, not suspended mid-period). Not implemented: modes 1, 4 and 5 (hardware-retriggered and
// strobe modes, unused by PC operating systems on these counters) and BCD counting — programming
// one ends the run with an UnsupportedFeature report naming it, never a silent wrong timer.

import { UnsupportedFeature } from '../../cpu/interrupts';
import type { PortDevice } from '../io-bus';

export const PIT_HZ = 1_193_182;

/** PIT input ticks elapsed at guest time `ns` (floor), exact in double arithmetic for any run under 104 days. */
export function pitTicksAt(ns: number): number {
  const sec = Math.floor(ns / 1e9);
  return sec * PIT_HZ + Math.floor(((ns - sec * 1e9) * PIT_HZ) / 1e9);
}

/** The first guest nanosecond at which `ticks` PIT ticks have elapsed. */
export function nsAtPitTicks(ticks: number): number {
  const sec = Math.floor(ticks / PIT_HZ);
  return sec * 1e9 + Math.ceil(((ticks - sec * PIT_HZ) * 1e9) / PIT_HZ);
}

type Access = 1 | 2 | 3; // RW1 RW0: LSB, MSB, LSB then MSB

class Counter {
  mode = 0;
  access: Access = 3;
  /** Count register value; 0 means 65536. */
  count = 0x10000;
  /** Tick at which counting (with `count`) began, or -1 while no count has been written. */
  loadTick = -1;
  /** The period that runs until loadTick when a mode 2/3 reload was deferred. */
  prevCount = 0;
  prevLoadTick = -1;
  /** Byte-toggle state of LSB-then-MSB access, for writes and for reads. */
  writeMsbNext = false;
  readMsbNext = false;
  lsbWritten = 0;
  latched: number | null = null;
  latchedStatus: number | null = null;
  /** Output right after the control word, before a count runs (mode 0: low; 2, 3: high). */
  gate = true;
  nullCount = true;

  /** Count and load tick in effect at tick `t`. */
  private phase(t: number): { n: number; start: number } {
    if (t < this.loadTick && this.prevLoadTick >= 0) return { n: this.prevCount, start: this.prevLoadTick };
    return { n: this.count, start: this.loadTick };
  }

  /** Counting element value at tick t (what a latch captures). */
  value(t: number): number {
    if (this.loadTick < 0 || !this.gate) return this.count & 0xffff;
    const { n, start } = this.phase(t);
    const e = t - start;
    switch (this.mode) {
      case 0: return (n - e) & 0xffff; // keeps counting down (wrapping) after the terminal count
      case 2: return (n - (e % n)) & 0xffff;
      default: { // mode 3: decrements by two; the half-periods are ceil(N/2) high, floor(N/2) low
        const p = e % n, high = Math.ceil(n / 2);
        const inHalf = p < high ? p : p - high;
        // An odd count loads N - 1 (datasheet: "the count is decremented by two on each clock").
        return ((n & ~1) - 2 * inHalf) & 0xffff;
      }
    }
  }

  /** OUT at tick t. */
  out(t: number): boolean {
    if (this.loadTick < 0) return this.mode !== 0;
    if (!this.gate) return this.mode !== 0;
    const { n, start } = this.phase(t);
    const e = t - start;
    switch (this.mode) {
      case 0: return e >= n;
      case 2: return e % n !== n - 1; // low for one clock when the count reaches 1
      default: return e % n < Math.ceil(n / 2);
    }
  }

  /**
   * The first tick > `after` at which OUT rises (what IRQ 0 sees: the 8259A is edge-triggered),
   * or -1 if it never will without the guest reprogramming the counter.
   */
  nextRise(after: number): number {
    if (this.loadTick < 0 || !this.gate) return -1;
    if (after < this.loadTick && this.prevLoadTick >= 0) {
      const r = riseIn(this.mode, this.prevCount, this.prevLoadTick, after);
      if (r >= 0 && r <= this.loadTick) return r;
      if (this.loadTick > after) return this.loadTick; // the new period starts with OUT high
    }
    return riseIn(this.mode, this.count, this.loadTick, after);
  }

  /** Writes the count register (after the access-mode byte sequencing). */
  load(n: number, t: number): void {
    const c = n === 0 ? 0x10000 : n;
    this.nullCount = false;
    if ((this.mode === 2 || this.mode === 3) && this.loadTick >= 0 && this.gate && t >= this.loadTick) {
      // Counting already: the new count is used from the end of the current period.
      const e = t - this.loadTick;
      const end = this.loadTick + (Math.floor(e / this.count) + 1) * this.count;
      this.prevCount = this.count;
      this.prevLoadTick = this.loadTick;
      this.count = c;
      this.loadTick = end;
      return;
    }
    this.prevLoadTick = -1;
    this.count = c;
    this.loadTick = t;
  }
}

/** First tick > after where OUT rises for a counter of `n` loaded at `start`. */
function riseIn(mode: number, n: number, start: number, after: number): number {
  if (mode === 0) return start + n > after ? start + n : -1;
  // Modes 2 and 3: OUT rises at the reload, every n ticks.
  const k = Math.floor((after - start) / n) + 1;
  return start + Math.max(1, k) * n;
}

export class Pit8254 implements PortDevice {
  private readonly counters = [new Counter(), new Counter(), new Counter()] as const;
  /** Port 0x61 bits 0 (counter 2 GATE) and 1 (speaker data). */
  private port61 = 0;
  /** Tick up to which IRQ 0 edges have been delivered. */
  private irqTick = 0;

  /**
   * @param nowNs the machine clock
   * @param raiseIrq0 called once per rising edge of counter 0's OUT (at update())
   * @param rescheduled called when a write changes when counter 0's next edge comes, so that the
   *   machine ends its slice there and the edge lands on the same instruction in every run
   */
  constructor(private readonly nowNs: () => number, private readonly raiseIrq0: () => void, private readonly rescheduled: () => void = () => {}) {
    this.counters[2].gate = false;
  }

  private tick(): number {
    return pitTicksAt(this.nowNs());
  }

  /**
   * Delivers the IRQ 0 edges that occurred up to now. Edges the PIC has not yet taken merge in
   * its IRR, as on hardware when the CPU runs with interrupts disabled for longer than a period.
   */
  update(): void {
    const t = this.tick();
    const c = this.counters[0];
    const r = c.nextRise(this.irqTick);
    if (r >= 0 && r <= t) this.raiseIrq0();
    this.irqTick = t;
  }

  /** Guest time (ns) of the next IRQ 0 edge after the last update(), or -1 if none is armed. */
  nextIrqNs(): number {
    const r = this.counters[0].nextRise(this.irqTick);
    return r < 0 ? -1 : nsAtPitTicks(r);
  }

  /** Output of counter `i` now (tests, port 0x61). */
  output(i: 0 | 1 | 2): boolean {
    return this.counters[i].out(this.tick());
  }

  read(port: number, _size: 1 | 2 | 4): number {
    if (port === 0x61) return this.readPort61();
    if (port === 0x43) return 0xff; // the control word register is write-only
    const c = this.counters[port - 0x40]!;
    if (c.latchedStatus !== null) {
      const s = c.latchedStatus;
      c.latchedStatus = null;
      return s;
    }
    const v = c.latched ?? c.value(this.tick());
    let b: number;
    if (c.access === 1) b = v & 0xff;
    else if (c.access === 2) b = v >>> 8;
    else {
      b = c.readMsbNext ? v >>> 8 : v & 0xff;
      c.readMsbNext = !c.readMsbNext;
      if (c.readMsbNext) return b; // the latch holds until both bytes are read
    }
    c.latched = null;
    return b & 0xff;
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    value &= 0xff;
    if (port === 0x61) {
      // Counter 2's GATE: a rising edge (re)starts modes 2 and 3 with the current count.
      const c = this.counters[2];
      const gate = (value & 1) !== 0;
      if (gate && !c.gate && !c.nullCount) c.loadTick = this.tick();
      c.gate = gate;
      c.prevLoadTick = -1;
      this.port61 = value & 0x03;
      return;
    }
    if (port === 0x43) { this.control(value); return; }
    const c = this.counters[port - 0x40]!;
    const t = this.tick();
    if (c.access === 1) c.load(value, t);
    else if (c.access === 2) c.load(value << 8, t);
    else if (!c.writeMsbNext) {
      c.lsbWritten = value;
      c.writeMsbNext = true;
      if (c.mode === 0) c.loadTick = -1; // mode 0: writing the first byte stops the count
    } else {
      c.writeMsbNext = false;
      c.load(c.lsbWritten | (value << 8), t);
    }
    if (port === 0x40 && c.loadTick >= 0) this.irqTick = Math.min(this.irqTick, t);
    if (port === 0x40) this.rescheduled();
  }

  private control(v: number): void {
    const sc = v >> 6;
    const t = this.tick();
    if (sc === 3) {
      // Read-back (8254 only): bit 5 = 0 latches counts, bit 4 = 0 latches status, bits 3-1 select.
      for (let i = 0; i < 3; i++) {
        if ((v & (2 << i)) === 0) continue;
        const c = this.counters[i]!;
        if ((v & 0x20) === 0 && c.latched === null) c.latched = c.value(t);
        if ((v & 0x10) === 0 && c.latchedStatus === null) c.latchedStatus = this.status(c, t);
      }
      return;
    }
    const c = this.counters[sc]!;
    const rw = (v >> 4) & 3;
    if (rw === 0) {
      if (c.latched === null) c.latched = c.value(t); // counter latch command
      return;
    }
    let mode = (v >> 1) & 7;
    if (mode >= 6) mode -= 4;
    if (mode === 1 || mode === 4 || mode === 5) throw new UnsupportedFeature(`8254 PIT counter ${sc} mode ${mode} (only modes 0, 2 and 3 are implemented)`);
    if (v & 1) throw new UnsupportedFeature(`8254 PIT counter ${sc} BCD counting`);
    if (sc === 0) this.rescheduled();
    c.mode = mode;
    c.access = rw as Access;
    c.loadTick = -1;
    c.prevLoadTick = -1;
    c.nullCount = true;
    c.writeMsbNext = false;
    c.readMsbNext = false;
    c.latched = null;
    c.latchedStatus = null;
  }

  /** Read-back status byte: OUT, NULL COUNT, RW1-0, M2-0, BCD. */
  private status(c: Counter, t: number): number {
    return (c.out(t) ? 0x80 : 0) | (c.nullCount ? 0x40 : 0) | (c.access << 4) | (c.mode << 1);
  }

  private readPort61(): number {
    // Bit 5: counter 2's OUT. Bit 4 toggles with DRAM refresh (counter 1, ~15 us) on the AT;
    // here it follows bit 4 of the PIT tick count, which toggles at a similar rate and is
    // what delay loops that poll it need.
    const t = this.tick();
    const out2 = this.counters[2].out(t);
    return this.port61 | (out2 ? 0x20 : 0) | ((t >> 4) & 1 ? 0x10 : 0);
  }
}
