// National Semiconductor PC16550D UART (datasheet "PC16550D Universal Asynchronous
// Receiver/Transmitter with FIFOs", June 1995), at COM1 (0x3F8-0x3FF, IRQ 4) by default.
// Registers (table II of the datasheet): RBR/THR/DLL at +0, IER/DLM at +1, IIR (read) / FCR
// (write) at +2, LCR at +3 (bit 7 DLAB selects the divisor latch at +0/+1), MCR at +4, LSR at +5,
// MSR at +6, SCR at +7.
//
// Serial timing is not modelled: a byte written to THR leaves at once (to the sink, or to the
// receiver in loopback), so LSR.THRE and TEMT read 1 again right after a write; received bytes
// are taken from the input queue as soon as the receiver (the 16-byte FIFO, or the holding
// register with FIFOs off) has room, so overrun never happens. The FIFO character-timeout
// interrupt (IIR = 0xC) is raised as soon as data sits below the trigger level, rather than after
// four character times. The interrupt output reaches the PIC only while MCR.OUT2 is set, as on
// the PC, where OUT2 enables the IRQ driver (IBM PC/AT Technical Reference, asynchronous adapter).

import type { PortDevice } from '../io-bus';

export const COM1_BASE = 0x3f8;
export const COM1_IRQ = 4;

// IER bits.
const ERBFI = 0x01, ETBEI = 0x02, ELSI = 0x04, EDSSI = 0x08;
// LSR bits.
const DR = 0x01, OE = 0x02, THRE = 0x20, TEMT = 0x40;
// MCR bits.
const OUT2 = 0x08, LOOP = 0x10;
const TRIGGER = [1, 4, 8, 14] as const;

export class Uart16550 implements PortDevice {
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private fcr = 0;
  private divisor = 12; // 9600 baud from 1.8432 MHz; the BIOS leaves something like it
  private lsrErrors = 0;
  private msrDeltas = 0;
  private readonly rx: number[] = [];
  private readonly input: number[] = [];
  /** A THRE interrupt is pending (cleared by reading IIR when it is the source, or writing THR). */
  private thrInterrupt = false;
  private irqLevel = false;

  /**
   * @param base first port (COM1 0x3F8)
   * @param sink receives every transmitted byte (outside loopback)
   * @param setIrq drives the IRQ line (the PIC input)
   */
  constructor(
    readonly base: number,
    private readonly sink: (byte: number) => void,
    private readonly setIrq: (level: boolean) => void,
  ) {}

  /** Queues bytes (or a string, as Latin-1/UTF-16 code units masked to 8 bits) for the receiver. */
  receive(data: string | Uint8Array): void {
    if (typeof data === 'string') for (let i = 0; i < data.length; i++) this.input.push(data.charCodeAt(i) & 0xff);
    else for (const b of data) this.input.push(b);
    this.fill();
    this.update();
  }

  /** Bytes still waiting in the input queue and the receiver. */
  get inputPending(): number {
    return this.input.length + this.rx.length;
  }

  private get fifoEnabled(): boolean {
    return (this.fcr & 1) !== 0;
  }

  private fill(): void {
    if (this.mcr & LOOP) return; // loopback disconnects the serial input (datasheet, MCR bit 4)
    const room = this.fifoEnabled ? 16 : 1;
    while (this.rx.length < room && this.input.length > 0) this.rx.push(this.input.shift()!);
  }

  private lsr(): number {
    return (this.rx.length > 0 ? DR : 0) | THRE | TEMT | this.lsrErrors;
  }

  private msr(): number {
    // In loopback the modem inputs are wired to the modem outputs (datasheet, MCR bit 4):
    // CTS = RTS, DSR = DTR, RI = OUT1, DCD = OUT2. Otherwise a connected terminal is assumed:
    // CTS, DSR and DCD asserted, RI not, so that guests waiting for "clear to send" proceed.
    if (this.mcr & LOOP) {
      const m = this.mcr;
      return this.msrDeltas | ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4);
    }
    return this.msrDeltas | 0xb0;
  }

  /** Interrupt identification (datasheet table IV): priority RLS > RDA/timeout > THRE > MSR. */
  private iir(): number {
    const fifo = this.fifoEnabled ? 0xc0 : 0;
    if (this.ier & ELSI && this.lsrErrors) return fifo | 0x06;
    if (this.ier & ERBFI && this.rx.length > 0) {
      if (!this.fifoEnabled || this.rx.length >= TRIGGER[this.fcr >> 6]!) return fifo | 0x04;
      return fifo | 0x0c;
    }
    if (this.ier & ETBEI && this.thrInterrupt) return fifo | 0x02;
    if (this.ier & EDSSI && this.msrDeltas) return fifo | 0x00;
    return fifo | 0x01;
  }

  private update(): void {
    const level = (this.iir() & 1) === 0 && (this.mcr & OUT2) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrq(level);
    }
  }

  read(port: number, _size: 1 | 2 | 4): number {
    const dlab = (this.lcr & 0x80) !== 0;
    let v: number;
    switch (port - this.base) {
      case 0:
        if (dlab) { v = this.divisor & 0xff; break; }
        v = this.rx.length > 0 ? this.rx.shift()! : 0;
        this.fill();
        break;
      case 1: v = dlab ? this.divisor >>> 8 : this.ier; break;
      case 2:
        v = this.iir();
        if ((v & 0x0f) === 0x02) this.thrInterrupt = false; // reading IIR clears a THRE source
        break;
      case 3: v = this.lcr; break;
      case 4: v = this.mcr; break;
      case 5:
        v = this.lsr();
        this.lsrErrors = 0; // OE, PE, FE, BI clear on read
        break;
      case 6:
        v = this.msr();
        this.msrDeltas = 0;
        break;
      default: v = this.scr;
    }
    this.update();
    return v & 0xff;
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    value &= 0xff;
    const dlab = (this.lcr & 0x80) !== 0;
    switch (port - this.base) {
      case 0:
        if (dlab) { this.divisor = (this.divisor & 0xff00) | value; break; }
        this.transmit(value);
        break;
      case 1:
        if (dlab) { this.divisor = (this.divisor & 0xff) | (value << 8); break; }
        // Enabling ETBEI while THR is empty raises THRE at once (the datasheet's THRE interrupt
        // is "set" by THR becoming or being empty; QEMU's serial.c does the same).
        if (value & ETBEI && !(this.ier & ETBEI)) this.thrInterrupt = true;
        this.ier = value & 0x0f;
        break;
      case 2: {
        const enabling = (value & 1) !== (this.fcr & 1);
        if (value & 0x02 || enabling) { this.rx.length = 0; this.lsrErrors &= ~OE; } // clear RCVR FIFO
        this.fcr = value & 0xc1;
        this.fill();
        break;
      }
      case 3: this.lcr = value; break;
      case 4: {
        const before = this.mcr;
        this.mcr = value & 0x1f;
        if (before & LOOP && !(this.mcr & LOOP)) this.fill();
        if ((before ^ this.mcr) & LOOP && this.mcr & LOOP) this.msrDeltas = 0;
        else if (this.mcr & LOOP) {
          // Loopback: changes of the looped outputs show as delta bits (DCTS, DDSR, TERI on the
          // falling edge of RI, DDCD).
          const ch = before ^ this.mcr;
          if (ch & 0x02) this.msrDeltas |= 0x01;
          if (ch & 0x01) this.msrDeltas |= 0x02;
          if (ch & 0x04 && before & 0x04) this.msrDeltas |= 0x04;
          if (ch & 0x08) this.msrDeltas |= 0x08;
        }
        break;
      }
      case 5: break; // LSR is read-only here (the datasheet reserves writes for factory test)
      case 6: break;
      default: this.scr = value;
    }
    this.update();
  }

  private transmit(byte: number): void {
    this.thrInterrupt = false;
    if (this.mcr & LOOP) {
      // Loopback: the transmitter shift register feeds the receiver; nothing leaves the chip.
      if (this.rx.length < (this.fifoEnabled ? 16 : 1)) this.rx.push(byte);
      else this.lsrErrors |= OE;
    } else {
      this.sink(byte);
    }
    this.thrInterrupt = true; // THR is empty again at once
  }
}
