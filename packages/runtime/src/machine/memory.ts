// Guest physical memory: one RAM array shared by every backend, plus memory-mapped I/O ranges.
// RAM is a Uint8Array with aligned Int32/Uint16 views over the same buffer so that naturally
// aligned accesses are one typed-array load.

export interface MmioDevice {
  read(offset: number, size: 1 | 2 | 4): number;
  write(offset: number, size: 1 | 2 | 4, value: number): void;
}

interface MmioRange {
  readonly start: number;
  readonly end: number;
  readonly device: MmioDevice;
}

/** PhysicalMemory.watched bits: the CPU's decoded-instruction cache holds the page. */
export const WATCH_DECODE_CACHE = 1;
/** PhysicalMemory.watched bits: the ring-1 monitor shadows a guest GDT/LDT on the page. */
export const WATCH_DESCRIPTOR_TABLE = 2;

export class PhysicalMemory {
  readonly size: number;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly i32: Int32Array;
  private readonly mmio: MmioRange[] = [];
  /**
   * Called with the physical page number after every write to RAM, when set: the CPU uses it
   * to drop decoded instructions of pages that are written (self-modifying code).
   */
  onWrite: ((page: number) => void) | null = null;
  /**
   * Called before every access to a memory-mapped device, when set: a device may raise an
   * interrupt or stop the run, so the CPU ends its current block there (blocks.ts).
   */
  onMmio: (() => void) | null = null;
  /**
   * One byte per page: non-zero when some observer watches writes to it, one bit per observer
   * (WATCH_DECODE_CACHE, WATCH_DESCRIPTOR_TABLE); `onWrite` is called for any of them.
   */
  readonly watched: Uint8Array;

  constructor(size: number) {
    if (size <= 0 || size % 4096 !== 0 || size > 0xffff_f000) {
      throw new RangeError(`memory size must be a positive multiple of 4 KiB below 4 GiB, not ${size}`);
    }
    this.size = size;
    const buffer = new ArrayBuffer(size);
    this.u8 = new Uint8Array(buffer);
    this.u16 = new Uint16Array(buffer);
    this.i32 = new Int32Array(buffer);
    this.watched = new Uint8Array(size >>> 12);
  }

  /** Maps a device at [start, start + length). Ranges may not overlap each other. */
  mapMmio(start: number, length: number, device: MmioDevice): void {
    const end = start + length;
    for (const r of this.mmio) {
      if (start < r.end && r.start < end) throw new RangeError(`MMIO range ${hex(start)}-${hex(end)} overlaps ${hex(r.start)}-${hex(r.end)}`);
    }
    this.mmio.push({ start, end, device });
  }

  private device(addr: number): MmioRange | undefined {
    for (const r of this.mmio) if (addr >= r.start && addr < r.end) return r;
    return undefined;
  }

  /** True when the address is plain RAM (not MMIO, not beyond the end). */
  isRam(addr: number): boolean {
    return addr < this.size && (this.mmio.length === 0 || this.device(addr) === undefined);
  }

  read8(addr: number): number {
    addr >>>= 0;
    if (addr < this.size && this.mmio.length === 0) return this.u8[addr]!;
    const d = this.device(addr);
    if (d) { this.onMmio?.(); return d.device.read(addr - d.start, 1) & 0xff; }
    // Unbacked physical addresses read as all ones, as an open bus does.
    return addr < this.size ? this.u8[addr]! : 0xff;
  }

  read16(addr: number): number {
    addr >>>= 0;
    if (this.mmio.length === 0 && addr + 1 < this.size) {
      return (addr & 1) === 0 ? this.u16[addr >>> 1]! : this.u8[addr]! | (this.u8[addr + 1]! << 8);
    }
    const d = this.device(addr);
    if (d && addr + 1 < d.end) { this.onMmio?.(); return d.device.read(addr - d.start, 2) & 0xffff; }
    return this.read8(addr) | (this.read8(addr + 1) << 8);
  }

  read32(addr: number): number {
    addr >>>= 0;
    if (this.mmio.length === 0 && addr + 3 < this.size) {
      if ((addr & 3) === 0) return this.i32[addr >>> 2]!;
      const u = this.u8;
      return u[addr]! | (u[addr + 1]! << 8) | (u[addr + 2]! << 16) | (u[addr + 3]! << 24);
    }
    const d = this.device(addr);
    if (d && addr + 3 < d.end) { this.onMmio?.(); return d.device.read(addr - d.start, 4) | 0; }
    return (this.read8(addr) | (this.read8(addr + 1) << 8) | (this.read8(addr + 2) << 16) | (this.read8(addr + 3) << 24)) | 0;
  }

  write8(addr: number, v: number): void {
    addr >>>= 0;
    if (addr < this.size && (this.mmio.length === 0 || !this.device(addr))) {
      this.u8[addr] = v;
      if (this.watched[addr >>> 12]) this.onWrite?.(addr >>> 12);
      return;
    }
    const d = this.device(addr);
    if (d) { this.onMmio?.(); d.device.write(addr - d.start, 1, v & 0xff); }
    // Writes to unbacked addresses are dropped.
  }

  write16(addr: number, v: number): void {
    addr >>>= 0;
    if (this.mmio.length === 0 && addr + 1 < this.size) {
      if ((addr & 1) === 0) this.u16[addr >>> 1] = v;
      else { this.u8[addr] = v; this.u8[addr + 1] = v >>> 8; }
      if (this.watched[addr >>> 12] || this.watched[(addr + 1) >>> 12]) this.touched(addr, 2);
      return;
    }
    const d = this.device(addr);
    if (d && addr + 1 < d.end) { this.onMmio?.(); d.device.write(addr - d.start, 2, v & 0xffff); return; }
    this.write8(addr, v);
    this.write8(addr + 1, v >>> 8);
  }

  write32(addr: number, v: number): void {
    addr >>>= 0;
    if (this.mmio.length === 0 && addr + 3 < this.size) {
      if ((addr & 3) === 0) this.i32[addr >>> 2] = v;
      else { const u = this.u8; u[addr] = v; u[addr + 1] = v >>> 8; u[addr + 2] = v >>> 16; u[addr + 3] = v >>> 24; }
      if (this.watched[addr >>> 12] || this.watched[(addr + 3) >>> 12]) this.touched(addr, 4);
      return;
    }
    const d = this.device(addr);
    if (d && addr + 3 < d.end) { this.onMmio?.(); d.device.write(addr - d.start, 4, v | 0); return; }
    this.write8(addr, v);
    this.write8(addr + 1, v >>> 8);
    this.write8(addr + 2, v >>> 16);
    this.write8(addr + 3, v >>> 24);
  }

  /** Reports a write of `size` bytes at `addr` to the observer, once per page it touches. */
  private touched(addr: number, size: number): void {
    const first = addr >>> 12, last = (addr + size - 1) >>> 12;
    if (this.watched[first]) this.onWrite?.(first);
    if (last !== first && this.watched[last]) this.onWrite?.(last);
  }

  /** Copies bytes into RAM (loaders); MMIO ranges are not written through. */
  load(addr: number, bytes: Uint8Array): void {
    if (addr < 0 || addr + bytes.length > this.size) {
      throw new RangeError(`cannot load ${bytes.length} bytes at ${hex(addr)}: RAM is ${hex(this.size)} bytes`);
    }
    this.u8.set(bytes, addr);
    for (let p = addr >>> 12; p <= (addr + bytes.length - 1) >>> 12; p++) if (this.watched[p]) this.onWrite?.(p);
  }
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
