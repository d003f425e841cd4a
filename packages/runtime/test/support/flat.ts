// A CPU in flat 32-bit protected mode (base 0, limit 4 GiB for CS/DS/ES/SS/FS/GS, CPL 0), the
// state a multiboot loader hands over, without building a GDT: tests of instruction semantics
// start here; descriptor-table behaviour has its own tests.
import { Assembler } from '@ringshift/decoder';
import { ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S, Cpu, PhysicalMemory, buildHandlers, type PortBus } from '../../src/index';

export const HANDLERS = buildHandlers();

export class RecordingPorts implements PortBus {
  readonly writes: [number, number, number][] = [];
  read(_port: number, size: 1 | 2 | 4): number {
    return size === 1 ? 0xff : size === 2 ? 0xffff : -1;
  }
  write(port: number, size: 1 | 2 | 4, value: number): void {
    this.writes.push([port, size, value]);
  }
}

export function flatCpu(memBytes = 1 << 24): { cpu: Cpu; ports: RecordingPorts } {
  const ports = new RecordingPorts();
  const cpu = new Cpu(new PhysicalMemory(memBytes), ports, HANDLERS);
  cpu.cr0 = 0x11; // PE, ET
  for (let s = 0; s < 6; s++) {
    cpu.sel[s] = s === 1 ? 0x08 : 0x10;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = -1;
    cpu.segAttr[s] = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x3 | (s === 1 ? ATTR_CODE | 0x8 : 0);
  }
  cpu.segAttr[1] = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | ATTR_CODE | 0x3; // code, readable, accessed
  cpu.regs[4] = 0x00f00000;
  return { cpu, ports };
}

/** Assembles `build` at `origin`, loads it, points EIP at it; runs until HLT (or the budget). */
export function runFlat(build: (a: Assembler) => void, origin = 0x100000, budget = 100_000): { cpu: Cpu; ports: RecordingPorts; stop: string } {
  const { cpu, ports } = flatCpu();
  const a = new Assembler(32, origin);
  build(a);
  a.asm('hlt');
  const { bytes } = a.assemble();
  cpu.mem.load(origin, bytes);
  cpu.eip = origin;
  const stop = cpu.run(budget);
  return { cpu, ports, stop };
}
