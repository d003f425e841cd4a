// Motorola MC146818A real-time clock and 128 bytes of CMOS RAM, at index port 0x70 and data port
// 0x71 as on the PC/AT. Bit 7 of the index write is the NMI mask (kept; this machine raises no
// NMI). Registers 0x00-0x09 are the time, read from the machine clock plus a start epoch; 0x0A-0x0D
// are status A-D (MC146818A datasheet, "Register A" ... "Register D"): B.DM selects binary or
// BCD, B.24/12 the hour format. The memory-size bytes are filled from the RAM size the way the
// PC BIOS does (IBM PC/AT Technical Reference, "CMOS RAM address map"; QEMU hw/i386/pc.c
// pc_cmos_init): 0x15/0x16 base memory in KiB (640), 0x17/0x18 and 0x30/0x31 extended memory in
// KiB above 1 MiB (at most 0xFFFF), 0x34/0x35 memory above 16 MiB in 64 KiB blocks.
// Not implemented: the periodic, alarm and update-ended interrupts (IRQ 8 is never raised; status
// C reads 0) and daylight saving (B.DSE is kept, not applied).

import type { PortDevice } from '../io-bus';

const SEC = 0x00, MIN = 0x02, HOUR = 0x04, WDAY = 0x06, MDAY = 0x07, MONTH = 0x08, YEAR = 0x09;
const A = 0x0a, B = 0x0b, C = 0x0c, D = 0x0d, CENTURY = 0x32;
const TIME = new Set([SEC, MIN, HOUR, WDAY, MDAY, MONTH, YEAR, CENTURY]);
const B_DM = 0x04, B_24H = 0x02;

/** Default RTC start: 2000-01-01 00:00:00 UTC, fixed so that runs are reproducible. */
export const DEFAULT_RTC_EPOCH_MS = Date.UTC(2000, 0, 1);

export interface CmosOptions {
  /** RAM size in bytes, for the memory-size bytes. */
  memoryBytes: number;
  /** Guest time in nanoseconds (the machine clock). */
  nowNs: () => number;
  /** Wall-clock time (ms since 1970, UTC) that guest time 0 corresponds to. */
  epochMs?: number;
}

export class Cmos implements PortDevice {
  readonly ram = new Uint8Array(128);
  private index = 0;
  /** NMI disabled (bit 7 of the last index write). */
  nmiMasked = false;
  /** Milliseconds added to epoch + guest time; the guest changes it by setting the clock. */
  private offsetMs = 0;
  private readonly epochMs: number;
  private readonly nowNs: () => number;

  constructor(opts: CmosOptions) {
    this.nowNs = opts.nowNs;
    this.epochMs = opts.epochMs ?? DEFAULT_RTC_EPOCH_MS;
    const r = this.ram;
    r[A] = 0x26; // DV = 010 (32.768 kHz time base), RS = 0110 (1024 Hz): the BIOS setting
    r[B] = B_24H; // 24-hour, BCD, no interrupts
    r[D] = 0x80; // VRT: the battery is good
    this.setMemorySize(opts.memoryBytes);
  }

  /**
   * Fills the memory-size bytes for `bytes` of RAM. A monitor whose own memory sits above the
   * guest's RAM sets the guest's size here, as it does in the memory map it hands the guest.
   */
  setMemorySize(bytes: number): void {
    const r = this.ram;
    const kib = Math.floor(bytes / 1024);
    r[0x15] = 640 & 0xff;
    r[0x16] = 640 >> 8;
    const ext = Math.min(0xffff, Math.max(0, kib - 1024));
    r[0x17] = r[0x30] = ext & 0xff;
    r[0x18] = r[0x31] = ext >> 8;
    const above16 = Math.min(0xffff, Math.max(0, Math.floor((bytes - (16 << 20)) / 65536)));
    r[0x34] = above16 & 0xff;
    r[0x35] = above16 >> 8;
  }

  /** The RTC's current time (UTC). */
  now(): Date {
    return new Date(this.epochMs + this.offsetMs + Math.floor(this.nowNs() / 1e6));
  }

  private encode(v: number): number {
    return this.ram[B]! & B_DM ? v : ((Math.floor(v / 10) << 4) | (v % 10));
  }

  private decode(v: number): number {
    return this.ram[B]! & B_DM ? v : (v >> 4) * 10 + (v & 0x0f);
  }

  private timeRegister(i: number): number {
    const t = this.now();
    switch (i) {
      case SEC: return this.encode(t.getUTCSeconds());
      case MIN: return this.encode(t.getUTCMinutes());
      case HOUR: {
        const h = t.getUTCHours();
        if (this.ram[B]! & B_24H) return this.encode(h);
        // 12-hour mode: 1-12 with bit 7 = PM.
        return this.encode(h % 12 === 0 ? 12 : h % 12) | (h >= 12 ? 0x80 : 0);
      }
      case WDAY: return this.encode(t.getUTCDay() + 1); // 1 = Sunday
      case MDAY: return this.encode(t.getUTCDate());
      case MONTH: return this.encode(t.getUTCMonth() + 1);
      case YEAR: return this.encode(t.getUTCFullYear() % 100);
      default: return this.encode(Math.floor(t.getUTCFullYear() / 100)); // CENTURY
    }
  }

  /** Sets one time field from a guest write: the clock jumps to the changed date. */
  private setTime(i: number, raw: number): void {
    const t = this.now();
    let v = i === HOUR && !(this.ram[B]! & B_24H) ? this.decode(raw & 0x7f) : this.decode(raw);
    if (i === HOUR && !(this.ram[B]! & B_24H)) v = (v % 12) + (raw & 0x80 ? 12 : 0);
    const f = {
      y: t.getUTCFullYear(), mo: t.getUTCMonth(), d: t.getUTCDate(),
      h: t.getUTCHours(), mi: t.getUTCMinutes(), s: t.getUTCSeconds(), ms: t.getUTCMilliseconds(),
    };
    switch (i) {
      case SEC: f.s = v; f.ms = 0; break;
      case MIN: f.mi = v; break;
      case HOUR: f.h = v; break;
      case MDAY: f.d = v; break;
      case MONTH: f.mo = v - 1; break;
      case YEAR: f.y = Math.floor(f.y / 100) * 100 + v; break;
      case CENTURY: f.y = v * 100 + (f.y % 100); break;
      default: return; // the day of week follows from the date
    }
    this.offsetMs += Date.UTC(f.y, f.mo, f.d, f.h, f.mi, f.s, f.ms) - t.getTime();
  }

  read(port: number, _size: 1 | 2 | 4): number {
    if (port === 0x70) return 0xff; // the index register is write-only on the AT
    const i = this.index;
    if (TIME.has(i)) return this.timeRegister(i);
    if (i === A) {
      // UIP: set during the 244 us before each once-a-second update (datasheet, "Register A" and
      // figure "Update-ended and periodic interrupt relationships").
      const inSecond = ((((this.epochMs + this.offsetMs) % 1000) + 1000) % 1000 * 1e6 + this.nowNs()) % 1e9;
      return (this.ram[A]! & 0x7f) | (inSecond >= 1e9 - 244_000 ? 0x80 : 0);
    }
    if (i === C) return 0; // no interrupt flags: none of the RTC interrupts is modelled
    return this.ram[i]!;
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    value &= 0xff;
    if (port === 0x70) {
      this.index = value & 0x7f;
      this.nmiMasked = (value & 0x80) !== 0;
      return;
    }
    const i = this.index;
    if (i === C || i === D) return; // read-only
    if (i === A) { this.ram[A] = value & 0x7f; return; } // UIP is read-only
    if (i === SEC || i === MIN || i === HOUR || i === MDAY || i === MONTH || i === YEAR || i === CENTURY) {
      this.setTime(i, value);
      return;
    }
    this.ram[i] = value;
  }
}
