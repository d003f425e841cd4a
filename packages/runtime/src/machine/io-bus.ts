// The I/O port space of one machine (64 Ki byte-wide ports), shared by every backend. Devices
// claim port ranges; the bus routes IN/OUT to them.
import type { PortBus } from '../cpu/cpu';

/** A device on the port bus. `port` is the absolute port number. */
export interface PortDevice {
  read(port: number, size: 1 | 2 | 4): number;
  write(port: number, size: 1 | 2 | 4, value: number): void;
  /**
   * True when the device decodes 16- and 32-bit accesses itself (e.g. isa-debug-exit with
   * iosize 4). Otherwise the bus splits a wider access into byte accesses to consecutive ports,
   * as an 8-bit ISA device sees it (the bus controller performs one byte cycle per port).
   */
  readonly wide?: boolean;
}

interface Claim {
  readonly first: number;
  readonly count: number;
  readonly device: PortDevice;
  readonly name: string;
}

const PORTS = 0x10000;
const OPEN_BUS = [0, 0xff, 0xffff, 0, -1] as const;

export class IoBus implements PortBus {
  private readonly claims: Claim[] = [];
  /** Per port: 1 + index into claims, or 0 when unassigned (one typed-array load per access). */
  private readonly owner = new Uint16Array(PORTS);

  /** Claims ports [first, first + count). Overlapping another claim is a wiring bug: it throws. */
  register(first: number, count: number, device: PortDevice, name: string): void {
    if (!Number.isInteger(first) || !Number.isInteger(count) || count <= 0 || first < 0 || first + count > PORTS) {
      throw new RangeError(`${name}: bad port range ${hex(first)}+${count}`);
    }
    for (let p = first; p < first + count; p++) {
      const o = this.owner[p]!;
      if (o !== 0) {
        const c = this.claims[o - 1]!;
        throw new RangeError(`${name}: ports ${hex(first)}-${hex(first + count - 1)} overlap ${c.name} at ${hex(c.first)}-${hex(c.first + c.count - 1)}`);
      }
    }
    this.claims.push({ first, count, device, name });
    this.owner.fill(this.claims.length, first, first + count);
  }

  /** Name of the device owning `port`, or undefined (for diagnostics). */
  nameOf(port: number): string | undefined {
    const o = this.owner[port & 0xffff]!;
    return o === 0 ? undefined : this.claims[o - 1]!.name;
  }

  read(port: number, size: 1 | 2 | 4): number {
    port &= 0xffff;
    const o = this.owner[port]!;
    if (o !== 0) {
      const d = this.claims[o - 1]!.device;
      if (size === 1) return d.read(port, 1) & 0xff;
      if (d.wide) return size === 2 ? d.read(port, 2) & 0xffff : d.read(port, 4) | 0;
    } else if (size === 1) {
      return 0xff; // nothing drives the data lines: the pull-ups read as all ones
    }
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.read((port + i) & 0xffff, 1) << (8 * i);
    return size === 2 ? v & 0xffff : v | 0;
  }

  write(port: number, size: 1 | 2 | 4, value: number): void {
    port &= 0xffff;
    const o = this.owner[port]!;
    if (o !== 0) {
      const d = this.claims[o - 1]!.device;
      if (size === 1) { d.write(port, 1, value & 0xff); return; }
      if (d.wide) { d.write(port, size, size === 2 ? value & 0xffff : value | 0); return; }
    } else if (size === 1) {
      return; // unassigned: the write goes nowhere
    }
    for (let i = 0; i < size; i++) this.write((port + i) & 0xffff, 1, (value >>> (8 * i)) & 0xff);
  }
}

/** All-ones value of an access of `size` bytes (what an unassigned port reads). */
export const openBus = (size: 1 | 2 | 4): number => OPEN_BUS[size];

const hex = (n: number): string => `0x${n.toString(16)}`;
