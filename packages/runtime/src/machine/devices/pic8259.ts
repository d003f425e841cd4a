// Two cascaded Intel 8259A programmable interrupt controllers as wired in the PC/AT: master at
// 0x20/0x21 (IRQ 0-7), slave at 0xA0/0xA1 (IRQ 8-15) on the master's IR2. Register behaviour
// follows the Intel 8259A datasheet (order no. 231468): ICW1-ICW4 initialisation, OCW1 mask,
// OCW2 EOI/rotation, OCW3 register select and poll. Edge-triggered only (the PC's power-on
// mode; there is no ELCR here): a rising edge on IRn sets IRR bit n, which stays set until the
// interrupt is acknowledged, as QEMU's hw/intc/i8259.c models it. Spurious interrupts: if the
// CPU acknowledges when nothing is requestable any more, the master answers with IRQ 7's vector
// (and the slave with IRQ 15's), without setting an ISR bit (datasheet, "Interrupt sequence").
// Not implemented: special mask mode (OCW3 ESMM/SMM is accepted and ignored), level-triggered
// mode (ICW1.LTIM is accepted and ignored), 8080/8085 mode (ICW4.uPM = 0 is treated as x86).

import type { PortDevice } from '../io-bus';

class Chip {
  irr = 0;
  isr = 0;
  imr = 0;
  /** Input levels last seen, for edge detection. */
  lines = 0;
  vectorBase = 0;
  /** Lowest-priority rotation: the IR with the highest priority is priorityAdd (datasheet "Rotating priority"). */
  priorityAdd = 0;
  readIsr = false;
  autoEoi = false;
  rotateOnAutoEoi = false;
  specialFullyNested = false;
  poll = false;
  /** 0: ready for OCWs; 2, 3, 4: expecting ICW2, ICW3, ICW4. */
  initStep = 0;
  single = false;
  needIcw4 = false;
  icw3 = 0;

  constructor(readonly master: boolean) {}

  setLine(irq: number, level: boolean): void {
    const m = 1 << irq;
    if (level) {
      if ((this.lines & m) === 0) this.irr |= m;
      this.lines |= m;
    } else {
      this.lines &= ~m;
    }
  }

  /** Priority rank (0 highest) of the highest-priority bit in `mask`, or 8 if none. */
  private priority(mask: number): number {
    if (mask === 0) return 8;
    let p = 0;
    while ((mask & (1 << ((p + this.priorityAdd) & 7))) === 0) p++;
    return p;
  }

  /** The IRQ this chip would present to the CPU now, or -1 (datasheet "Fully nested mode"). */
  requested(): number {
    const p = this.priority(this.irr & ~this.imr);
    if (p === 8) return -1;
    let isr = this.isr;
    // In special fully nested mode the master lets a slave interrupt through while another from
    // the same slave is in service (ISR bit 2 does not block IR2).
    if (this.master && this.specialFullyNested) isr &= ~(1 << 2);
    return p < this.priority(isr) ? (p + this.priorityAdd) & 7 : -1;
  }

  /** INTA: moves the request from IRR to ISR (or straight through in automatic EOI mode). */
  acknowledge(irq: number): void {
    const m = 1 << irq;
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.priorityAdd = (irq + 1) & 7;
    } else {
      this.isr |= m;
    }
    this.irr &= ~m;
  }

  writeCommand(v: number): void {
    if (v & 0x10) {
      // ICW1: starts initialisation; clears IMR, ISR and the rotation, selects IRR for reading.
      this.initStep = 2;
      this.single = (v & 0x02) !== 0;
      this.needIcw4 = (v & 0x01) !== 0;
      this.imr = 0;
      this.isr = 0;
      this.irr = 0;
      this.lines = 0;
      this.priorityAdd = 0;
      this.readIsr = false;
      this.autoEoi = false;
      this.rotateOnAutoEoi = false;
      this.specialFullyNested = false;
      this.poll = false;
      return;
    }
    if (v & 0x08) {
      // OCW3.
      if (v & 0x04) this.poll = true;
      if (v & 0x02) this.readIsr = (v & 0x01) !== 0;
      return;
    }
    // OCW2: R, SL, EOI in bits 7-5, level in bits 2-0.
    const level = v & 7;
    switch (v >> 5) {
      case 0: this.rotateOnAutoEoi = false; break;
      case 4: this.rotateOnAutoEoi = true; break;
      case 1: case 5: { // non-specific EOI (5: and rotate): clears the highest-priority ISR bit
        const p = this.priority(this.isr);
        if (p !== 8) {
          const irq = (p + this.priorityAdd) & 7;
          this.isr &= ~(1 << irq);
          if (v >> 5 === 5) this.priorityAdd = (irq + 1) & 7;
        }
        break;
      }
      case 3: this.isr &= ~(1 << level); break; // specific EOI
      case 7: this.isr &= ~(1 << level); this.priorityAdd = (level + 1) & 7; break;
      case 6: this.priorityAdd = (level + 1) & 7; break; // set priority: `level` becomes lowest
      default: break; // 2: no operation
    }
  }

  writeData(v: number): void {
    switch (this.initStep) {
      case 2:
        this.vectorBase = v & 0xf8; // ICW2: T7-T3; the IR number fills bits 2-0
        this.initStep = this.single ? (this.needIcw4 ? 4 : 0) : 3;
        return;
      case 3:
        this.icw3 = v; // master: which IRs have slaves; slave: its ID (cascade wiring is fixed here)
        this.initStep = this.needIcw4 ? 4 : 0;
        return;
      case 4:
        this.autoEoi = (v & 0x02) !== 0;
        this.specialFullyNested = (v & 0x10) !== 0;
        this.initStep = 0;
        return;
      default:
        this.imr = v & 0xff; // OCW1
    }
  }

  readCommand(): number {
    return this.readIsr ? this.isr : this.irr;
  }
}

/** The PC/AT pair of 8259As; also the CPU's interrupt controller (Cpu.interruptController). */
export class Pic8259 implements PortDevice {
  private readonly chips = [new Chip(true), new Chip(false)] as const;
  /** Cached answer of pending(): the CPU asks before every instruction while IF = 1. */
  private intr = -1;

  constructor() {
    // Before ICW1 the 8259A's state is undefined; here it is vector base 0 with nothing masked
    // and nothing requested. Guests always initialise the PIC before enabling interrupts.
    this.update();
  }

  /** Sets the level of input line `irq` (0-15); a rising edge requests the interrupt. */
  setIrq(irq: number, level: boolean): void {
    this.chips[irq >> 3]!.setLine(irq & 7, level);
    this.update();
  }

  /** A rising then falling edge on `irq`: how an edge source (the PIT's OUT0) requests once. */
  pulseIrq(irq: number): void {
    this.setIrq(irq, true);
    this.setIrq(irq, false);
  }

  /** True when `irq` could reach the CPU now if requested (unmasked here and on the cascade). */
  unmasked(irq: number): boolean {
    const [m, s] = this.chips;
    if (irq < 8) return (m.imr & (1 << irq)) === 0;
    return (s.imr & (1 << (irq - 8))) === 0 && (m.imr & 4) === 0;
  }

  /** Vector the CPU would receive, or -1 when INTR is low. */
  pending(): number {
    return this.intr;
  }

  /** The INTA cycle pair: returns the vector and updates IRR/ISR (datasheet "Interrupt sequence"). */
  acknowledge(): number {
    const [m, s] = this.chips;
    const irq = m.requested();
    let vector: number;
    if (irq < 0) {
      vector = m.vectorBase + 7; // spurious on the master: IR7's vector, no ISR bit
    } else if (irq === 2) {
      const irq2 = s.requested();
      if (irq2 >= 0) {
        s.acknowledge(irq2);
        vector = s.vectorBase + irq2;
      } else {
        vector = s.vectorBase + 7; // spurious on the slave: IR15's vector (the master's IR2 is in service)
      }
      m.acknowledge(2);
    } else {
      m.acknowledge(irq);
      vector = m.vectorBase + irq;
    }
    this.update();
    return vector;
  }

  /** IRR, ISR and IMR of the master (0) or slave (1), for tests and diagnostics. */
  state(chip: 0 | 1): { irr: number; isr: number; imr: number; vectorBase: number } {
    const c = this.chips[chip];
    return { irr: c.irr, isr: c.isr, imr: c.imr, vectorBase: c.vectorBase };
  }

  read(port: number, _size: 1 | 2 | 4): number {
    const c = this.chips[port >= 0xa0 ? 1 : 0];
    let v: number;
    if (c.poll) {
      // Poll command (OCW3.P): the read acknowledges; bit 7 = interrupt, bits 2-0 = its level.
      c.poll = false;
      const irq = c.requested();
      if (irq >= 0) {
        c.acknowledge(irq);
        v = 0x80 | irq;
      } else {
        v = 0;
      }
      this.update();
      return v;
    }
    return (port & 1) === 0 ? c.readCommand() : c.imr;
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    const c = this.chips[port >= 0xa0 ? 1 : 0];
    if ((port & 1) === 0) c.writeCommand(value & 0xff);
    else c.writeData(value & 0xff);
    this.update();
  }

  /** Recomputes the slave's INT into the master's IR2 and the master's INTR to the CPU. */
  private update(): void {
    const [m, s] = this.chips;
    // The slave's INT output drives the master's IR2 as a level (QEMU pulses it; with an
    // edge-triggered master a pulse and a level differ only in re-triggering, which the IRR
    // latch absorbs).
    m.setLine(2, s.requested() >= 0);
    const irq = m.requested();
    if (irq < 0) { this.intr = -1; return; }
    if (irq === 2) {
      const irq2 = s.requested();
      this.intr = s.vectorBase + (irq2 >= 0 ? irq2 : 7);
    } else {
      this.intr = m.vectorBase + irq;
    }
  }
}
