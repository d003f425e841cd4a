// Register-level tests of the machine's devices against their datasheets: the I/O bus, the
// PC16550D UART, the 8259A pair, the 8254 PIT, the MC146818 RTC/CMOS and the small ports.
import { describe, expect, it } from 'vitest';
import { UnsupportedFeature } from '../src/index';
import {
  Cmos, DebugExit, IoBus, Machine, PIT_HZ, Pic8259, Pit8254, Uart16550, nsAtPitTicks, pitTicksAt, type PortDevice,
} from '../src/index';

class Reg implements PortDevice {
  readonly log: [string, number, number, number][] = [];
  constructor(private readonly value = 0x5a, readonly wide = false) {}
  read(port: number, size: 1 | 2 | 4): number { this.log.push(['r', port, size, 0]); return this.value; }
  write(port: number, size: 1 | 2 | 4, v: number): void { this.log.push(['w', port, size, v]); }
}

describe('IoBus', () => {
  it('reads all ones from unassigned ports and drops writes to them', () => {
    const bus = new IoBus();
    expect(bus.read(0x1234, 1)).toBe(0xff);
    expect(bus.read(0x1234, 2)).toBe(0xffff);
    expect(bus.read(0x1234, 4) >>> 0).toBe(0xffffffff);
    bus.write(0x1234, 4, 0); // nothing to observe, nothing thrown
  });

  it('rejects overlapping claims', () => {
    const bus = new IoBus();
    bus.register(0x60, 4, new Reg(), 'a');
    expect(() => bus.register(0x63, 2, new Reg(), 'b')).toThrow(/overlap a/);
    bus.register(0x64, 1, new Reg(), 'c');
  });

  it('splits wide accesses to byte-wide devices into byte accesses, as the ISA bus does', () => {
    const bus = new IoBus();
    const d = new Reg(0x12);
    bus.register(0x300, 2, d, 'byte device');
    // 0x300 and 0x301 are the device; 0x302-0x303 are unassigned and read 0xFF.
    expect(bus.read(0x300, 4) >>> 0).toBe(0xffff1212);
    bus.write(0x300, 2, 0xbeef);
    expect(d.log.filter((l) => l[0] === 'w')).toEqual([['w', 0x300, 1, 0xef], ['w', 0x301, 1, 0xbe]]);
  });

  it('passes wide accesses whole to devices that decode them', () => {
    const bus = new IoBus();
    const d = new Reg(0x11223344, true);
    bus.register(0xf4, 4, d, 'wide');
    expect(bus.read(0xf4, 4)).toBe(0x11223344);
    bus.write(0xf4, 4, 0xcafebabe | 0);
    expect(d.log.at(-1)).toEqual(['w', 0xf4, 4, 0xcafebabe | 0]);
  });
});

describe('PC16550D UART', () => {
  const make = () => {
    const out: number[] = [];
    const irq: boolean[] = [];
    const u = new Uart16550(0x3f8, (b) => out.push(b), (l) => irq.push(l));
    return { u, out, irq };
  };

  it('transmits THR writes to the sink; LSR shows THRE and TEMT again at once', () => {
    const { u, out } = make();
    expect(u.read(0x3fd, 1) & 0x60).toBe(0x60);
    u.write(0x3f8, 1, 0x41);
    expect(out).toEqual([0x41]);
    expect(u.read(0x3fd, 1) & 0x61).toBe(0x60); // THRE | TEMT, no DR
  });

  it('DLAB selects the divisor latch at +0/+1 instead of THR/IER', () => {
    const { u, out } = make();
    u.write(0x3fb, 1, 0x80);
    u.write(0x3f8, 1, 0x01); // DLL: 115200 baud
    u.write(0x3f9, 1, 0x00); // DLM
    expect(u.read(0x3f8, 1)).toBe(0x01);
    expect(u.read(0x3f9, 1)).toBe(0x00);
    u.write(0x3fb, 1, 0x03); // 8N1, DLAB off
    expect(out).toEqual([]);
    expect(u.read(0x3f9, 1)).toBe(0); // IER untouched
    expect(u.read(0x3fb, 1)).toBe(0x03);
  });

  it('loopback returns transmitted bytes to the receiver and wires MCR to MSR', () => {
    const { u, out } = make();
    u.write(0x3fc, 1, 0x10 | 0x0b); // LOOP, OUT2, RTS, DTR
    u.write(0x3f8, 1, 0xa5);
    expect(out).toEqual([]);
    expect(u.read(0x3fd, 1) & 1).toBe(1);
    expect(u.read(0x3f8, 1)).toBe(0xa5);
    expect(u.read(0x3fd, 1) & 1).toBe(0);
    // CTS = RTS, DSR = DTR, RI = OUT1 (0), DCD = OUT2.
    expect(u.read(0x3fe, 1) & 0xf0).toBe(0x10 | 0x20 | 0x80);
  });

  it('receives queued input with an RX interrupt on IRQ 4 (gated by OUT2) and IIR identification', () => {
    const { u, irq } = make();
    u.receive('hi');
    expect(u.read(0x3fa, 1)).toBe(0x01); // no interrupt enabled
    u.write(0x3f9, 1, 0x01); // ERBFI
    expect(u.read(0x3fa, 1)).toBe(0x04); // received data available
    expect(irq).toEqual([]); // OUT2 clear: the PC's IRQ driver is off
    u.write(0x3fc, 1, 0x08);
    expect(irq).toEqual([true]);
    expect(u.read(0x3f8, 1)).toBe(0x68);
    expect(u.read(0x3f8, 1)).toBe(0x69);
    expect(u.read(0x3fa, 1)).toBe(0x01);
    expect(irq).toEqual([true, false]);
  });

  it('FIFO mode: IIR bits 7-6 set, trigger level, character timeout, THRE interrupt', () => {
    const { u } = make();
    u.write(0x3fa, 1, 0x47); // enable + clear, trigger 4
    expect(u.read(0x3fa, 1) & 0xc0).toBe(0xc0);
    u.receive('ab');
    u.write(0x3f9, 1, 0x01);
    expect(u.read(0x3fa, 1)).toBe(0xcc); // below trigger: character timeout
    u.receive('cd');
    expect(u.read(0x3fa, 1)).toBe(0xc4); // at trigger: data available
    u.write(0x3f9, 1, 0x02); // ETBEI only: THR empty
    expect(u.read(0x3fa, 1)).toBe(0xc2);
    expect(u.read(0x3fa, 1)).toBe(0xc1); // reading IIR cleared the THRE source
    expect(u.read(0x3ff, 1)).toBe(0);
    u.write(0x3ff, 1, 0x77);
    expect(u.read(0x3ff, 1)).toBe(0x77); // SCR
  });
});

/** The initialisation every PC OS performs: vectors 0x20/0x28, cascade on IR2, 8086 mode. */
function initPic(p: Pic8259, masterMask = 0, slaveMask = 0): void {
  p.write(0x20, 1, 0x11); p.write(0x21, 1, 0x20); p.write(0x21, 1, 0x04); p.write(0x21, 1, 0x01);
  p.write(0xa0, 1, 0x11); p.write(0xa1, 1, 0x28); p.write(0xa1, 1, 0x02); p.write(0xa1, 1, 0x01);
  p.write(0x21, 1, masterMask); p.write(0xa1, 1, slaveMask);
}

describe('8259A pair', () => {
  it('ICW1-4 set the vector base; OCW1 masks; the IMR reads back', () => {
    const p = new Pic8259();
    initPic(p, 0xfe, 0xff);
    expect(p.read(0x21, 1)).toBe(0xfe);
    expect(p.read(0xa1, 1)).toBe(0xff);
    p.setIrq(1, true);
    expect(p.pending()).toBe(-1); // masked
    p.pulseIrq(0);
    expect(p.pending()).toBe(0x20);
    expect(p.acknowledge()).toBe(0x20);
    expect(p.state(0).isr).toBe(1);
  });

  it('edge-triggered: IRR on a rising edge, ISR on acknowledge, cleared by EOI; OCW3 selects IRR/ISR', () => {
    const p = new Pic8259();
    initPic(p);
    p.pulseIrq(3);
    p.write(0x20, 1, 0x0a); // OCW3: read IRR
    expect(p.read(0x20, 1)).toBe(0x08);
    expect(p.acknowledge()).toBe(0x23);
    expect(p.read(0x20, 1)).toBe(0x00);
    p.write(0x20, 1, 0x0b); // OCW3: read ISR
    expect(p.read(0x20, 1)).toBe(0x08);
    p.write(0x20, 1, 0x20); // non-specific EOI
    expect(p.read(0x20, 1)).toBe(0x00);
    // A level held high does not request again: edge-triggered.
    p.setIrq(5, true);
    expect(p.acknowledge()).toBe(0x25);
    p.write(0x20, 1, 0x65); // specific EOI for IR5
    expect(p.pending()).toBe(-1);
  });

  it('fully nested priority: IR0 highest; a lower request waits for EOI, a higher one nests', () => {
    const p = new Pic8259();
    initPic(p);
    p.pulseIrq(4);
    expect(p.acknowledge()).toBe(0x24);
    p.pulseIrq(6);
    expect(p.pending()).toBe(-1); // lower priority than the IR4 in service
    p.pulseIrq(1);
    expect(p.pending()).toBe(0x21); // higher: nests
    expect(p.acknowledge()).toBe(0x21);
    p.write(0x20, 1, 0x20); // EOI clears IR1 (highest in service)
    expect(p.state(0).isr).toBe(0x10);
    p.write(0x20, 1, 0x20);
    expect(p.acknowledge()).toBe(0x26);
  });

  it('cascade: a slave IRQ arrives through the master IR2 with the slave vector', () => {
    const p = new Pic8259();
    initPic(p);
    p.pulseIrq(12);
    expect(p.pending()).toBe(0x2c);
    expect(p.acknowledge()).toBe(0x2c);
    expect(p.state(0).isr).toBe(0x04);
    expect(p.state(1).isr).toBe(0x10);
    p.write(0xa0, 1, 0x20);
    p.write(0x20, 1, 0x20);
    expect(p.state(0).isr).toBe(0);
    expect(p.state(1).isr).toBe(0);
    // Masking IR2 on the master masks every slave line.
    p.write(0x21, 1, 0x04);
    p.pulseIrq(9);
    expect(p.pending()).toBe(-1);
    expect(p.unmasked(9)).toBe(false);
  });

  it('spurious: an acknowledge with nothing requestable returns IR7 (master) without setting ISR', () => {
    const p = new Pic8259();
    initPic(p);
    expect(p.acknowledge()).toBe(0x27);
    expect(p.state(0).isr).toBe(0);
  });
});

describe('8254 PIT', () => {
  const make = () => {
    let ns = 0;
    let irqs = 0;
    const pit = new Pit8254(() => ns, () => irqs++);
    return { pit, set: (v: number) => { ns = v; }, irqs: () => irqs };
  };

  it('converts between guest nanoseconds and 1.193182 MHz ticks exactly', () => {
    expect(pitTicksAt(1e9)).toBe(PIT_HZ);
    expect(pitTicksAt(nsAtPitTicks(12345))).toBe(12345);
    expect(pitTicksAt(nsAtPitTicks(12345) - 1)).toBe(12344);
  });

  it('mode 2 (rate generator): one IRQ 0 edge every N ticks; OUT low for the last tick', () => {
    const { pit, set, irqs } = make();
    pit.write(0x43, 1, 0x34); // counter 0, LSB then MSB, mode 2, binary
    pit.write(0x40, 1, 1193 & 0xff);
    pit.write(0x40, 1, 1193 >> 8);
    expect(pit.nextIrqNs()).toBe(nsAtPitTicks(1193));
    for (let k = 1; k <= 5; k++) {
      set(nsAtPitTicks(k * 1193) - 1);
      pit.update();
      expect(irqs()).toBe(k - 1);
      set(nsAtPitTicks(k * 1193 - 1));
      expect(pit.output(0)).toBe(false);
      set(nsAtPitTicks(k * 1193));
      pit.update();
      expect(irqs()).toBe(k);
      expect(pit.output(0)).toBe(true);
    }
  });

  it('mode 3 (square wave): OUT high for N/2 ticks, low for N/2, rising every N', () => {
    const { pit, set, irqs } = make();
    pit.write(0x43, 1, 0x36);
    pit.write(0x40, 1, 100);
    pit.write(0x40, 1, 0);
    set(nsAtPitTicks(49));
    expect(pit.output(0)).toBe(true);
    set(nsAtPitTicks(50));
    expect(pit.output(0)).toBe(false);
    set(nsAtPitTicks(99));
    expect(pit.output(0)).toBe(false);
    set(nsAtPitTicks(100));
    expect(pit.output(0)).toBe(true);
    pit.update();
    expect(irqs()).toBe(1);
    expect(pit.nextIrqNs()).toBe(nsAtPitTicks(200));
  });

  it('latch command freezes the count for an LSB/MSB read; mode 0 fires once', () => {
    const { pit, set, irqs } = make();
    pit.write(0x43, 1, 0x30); // mode 0
    pit.write(0x40, 1, 0x00);
    pit.write(0x40, 1, 0x10); // 4096
    set(nsAtPitTicks(96));
    pit.write(0x43, 1, 0x00); // latch counter 0
    set(nsAtPitTicks(500));
    const lo = pit.read(0x40, 1), hi = pit.read(0x40, 1);
    expect(lo | (hi << 8)).toBe(4096 - 96);
    expect(pit.output(0)).toBe(false);
    set(nsAtPitTicks(5000));
    pit.update();
    expect(irqs()).toBe(1);
    expect(pit.output(0)).toBe(true);
    expect(pit.nextIrqNs()).toBe(-1);
  });

  it('rejects the unimplemented modes and BCD with UnsupportedFeature', () => {
    const { pit } = make();
    expect(() => pit.write(0x43, 1, 0x32)).toThrow(UnsupportedFeature); // mode 1
    expect(() => pit.write(0x43, 1, 0x38)).toThrow(/mode 4/);
    expect(() => pit.write(0x43, 1, 0x35)).toThrow(/BCD/);
  });
});

describe('MC146818 RTC / CMOS', () => {
  const at = Date.UTC(2024, 1, 29, 13, 45, 59); // a leap day, 13:45:59 UTC, a Thursday
  const make = (ns = 0) => new Cmos({ memoryBytes: 128 << 20, nowNs: () => ns, epochMs: at });
  const reg = (c: Cmos, i: number) => { c.write(0x70, 1, i); return c.read(0x71, 1); };

  it('reads the time in BCD by default and binary with status B.DM', () => {
    const c = make();
    expect([0, 2, 4, 6, 7, 8, 9, 0x32].map((i) => reg(c, i))).toEqual([0x59, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20]);
    c.write(0x70, 1, 0x0b);
    c.write(0x71, 1, 0x06); // binary, 24 h
    expect([0, 2, 4, 9].map((i) => reg(c, i))).toEqual([59, 45, 13, 24]);
    c.write(0x70, 1, 0x0b);
    c.write(0x71, 1, 0x00); // BCD, 12 h: 1 PM
    expect(reg(c, 4)).toBe(0x81);
  });

  it('follows the machine clock', () => {
    expect(reg(make(1e9), 0)).toBe(0x00);
    expect(reg(make(1e9), 2)).toBe(0x46);
  });

  it('status registers, NMI mask bit, RAM and memory-size bytes as the BIOS fills them', () => {
    const c = make();
    expect(reg(c, 0x0a) & 0x7f).toBe(0x26);
    expect(reg(c, 0x0d)).toBe(0x80);
    c.write(0x70, 1, 0x80 | 0x40);
    expect(c.nmiMasked).toBe(true);
    c.write(0x71, 1, 0x99);
    expect(reg(c, 0x40)).toBe(0x99);
    expect(c.nmiMasked).toBe(false);
    expect(reg(c, 0x15) | (reg(c, 0x16) << 8)).toBe(640);
    // 127 MiB of extended memory is more than the 16-bit KiB field holds: capped at 0xFFFF.
    expect(reg(c, 0x17) | (reg(c, 0x18) << 8)).toBe(0xffff);
    expect(reg(c, 0x30) | (reg(c, 0x31) << 8)).toBe(0xffff);
    const small = new Cmos({ memoryBytes: 8 << 20, nowNs: () => 0 });
    expect(reg(small, 0x17) | (reg(small, 0x18) << 8)).toBe(7 * 1024);
    expect(reg(small, 0x34) | (reg(small, 0x35) << 8)).toBe(0);
    expect(reg(c, 0x34) | (reg(c, 0x35) << 8)).toBe((112 << 20) / 65536);
  });

  it('setting the minutes moves the clock', () => {
    const c = make();
    c.write(0x70, 1, 0x02);
    c.write(0x71, 1, 0x10);
    expect(reg(c, 2)).toBe(0x10);
    expect(reg(c, 4)).toBe(0x13);
  });
});

describe('isa-debug-exit and the small ports', () => {
  it('a write of v exits with (v << 1) | 1, as QEMU hw/misc/debugexit.c', () => {
    const seen: number[] = [];
    const d = new DebugExit((s) => seen.push(s));
    d.write(0xf4, 1, 0x10);
    d.write(0xf4, 4, 0x7fffffff);
    expect(seen).toEqual([0x21, 0xffffffff]);
  });

  it('machine ports: 0xFF from an unassigned port, POST code, debug console, A20', () => {
    const con: number[] = [];
    const m = new Machine({ memoryBytes: 1 << 20, debugConsoleOut: (b) => con.push(b) });
    expect(m.bus.read(0x2f8, 1)).toBe(0xff); // COM2 is not fitted
    m.bus.write(0x80, 1, 0x42);
    expect(m.post.last).toBe(0x42);
    m.bus.write(0xe9, 1, 0x58);
    expect(con).toEqual([0x58]);
    expect(m.bus.read(0xe9, 1)).toBe(0xe9);
    m.bus.write(0x92, 1, 0x00);
    expect(m.systemControl.a20).toBe(false);
    expect(m.bus.read(0x92, 1)).toBe(0);
  });
});
