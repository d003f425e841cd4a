// Small PC ports: System Control Port A (0x92: fast A20 gate and fast reset), the POST code
// port (0x80), the Bochs/QEMU debug console (0xE9) and QEMU's isa-debug-exit (0xF4).

import type { PortDevice } from '../io-bus';

/**
 * System Control Port A, 0x92 (IBM PS/2 and every AT-compatible chipset since): bit 1 is the
 * A20 gate, bit 0 a write-1 fast reset. The A20 state is kept and readable, but memory is NOT
 * wrapped at 1 MiB while A20 is off: every guest this project runs enables A20 before leaving
 * real mode, and the multiboot loader hands over with A20 on.
 */
export class SystemControlA implements PortDevice {
  a20 = true;
  constructor(private readonly reset: () => void) {}
  read(_port: number, _size: 1 | 2 | 4): number {
    return this.a20 ? 0x02 : 0x00;
  }
  write(_port: number, _size: 1 | 2 | 4, value: number): void {
    this.a20 = (value & 0x02) !== 0;
    if (value & 0x01) this.reset();
  }
}

/** Port 0x80: firmware writes progress codes here (a POST card shows them); the last is kept. */
export class PostCode implements PortDevice {
  /** The last code written, or -1. */
  last = -1;
  read(_port: number, _size: 1 | 2 | 4): number {
    return this.last < 0 ? 0xff : this.last;
  }
  write(_port: number, _size: 1 | 2 | 4, value: number): void {
    this.last = value & 0xff;
  }
}

/**
 * Port 0xE9, the Bochs "port e9 hack" that QEMU's isa-debugcon also provides: each byte written
 * goes to the host; reading returns 0xE9 so a guest can detect it (QEMU hw/char/debugcon.c
 * readback default 0xe9).
 */
export class DebugConsole implements PortDevice {
  constructor(private readonly sink: (byte: number) => void) {}
  read(_port: number, _size: 1 | 2 | 4): number {
    return 0xe9;
  }
  write(_port: number, _size: 1 | 2 | 4, value: number): void {
    this.sink(value & 0xff);
  }
}

/**
 * QEMU's isa-debug-exit (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`). QEMU hw/misc/debugexit.c:
 * `debug_exit_write(..., uint64_t val, unsigned width) { exit((val << 1) | 1); }` — any write,
 * of any width, to any of its ports ends QEMU with status (val << 1) | 1, where val is the
 * written value zero-extended from the access width; reads return 0. The host shell sees only
 * the low 8 bits of that status; `status` keeps the full 32-bit value.
 */
export class DebugExit implements PortDevice {
  readonly wide = true;
  /** (value << 1) | 1 of the write that requested the exit, or null. */
  status: number | null = null;
  constructor(private readonly onExit: (status: number) => void) {}
  read(_port: number, _size: 1 | 2 | 4): number {
    return 0;
  }
  write(_port: number, size: 1 | 2 | 4, value: number): void {
    const v = size === 1 ? value & 0xff : size === 2 ? value & 0xffff : value >>> 0;
    this.status = ((v << 1) | 1) >>> 0;
    this.onExit(this.status);
  }
}
