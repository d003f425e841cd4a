// The I/O bitmaps and the MSR bitmap (SDM vol. 3C §25.6.4, §25.6.9; vmx.md §8): 4 KiB pages in the
// monitor's host memory whose addresses the VMCS holds (0x2000, 0x2002, 0x2004), filled as KVM
// fills them, and the lookups the exit logic makes.
import type { PhysicalMemory } from '../../machine/memory';
import { VMCS } from './vmcs-fields';
import type { Vmcs } from './vmcs';

/** The POST/delay port, which KVM lets through (vmx.c: "the vmexits simply slow things down"). */
const IO_PASS_THROUGH = [0x80];
/** MSRs KVM passes through (vmx.c: vmx_disable_intercept_for_msr): SYSENTER_CS/ESP/EIP both ways, IA32_TSC reads. */
const MSR_PASS_READ_WRITE = [0x174, 0x175, 0x176];
const MSR_PASS_READ = [0x10];

/** Writes bitmap A at `ioBase`, B at `ioBase + 0x1000` and the MSR bitmap at `msrBase`, and their addresses into the VMCS. */
export function setUpBitmaps(mem: PhysicalMemory, vmcs: Vmcs, ioBase: number, msrBase: number): void {
  mem.u8.fill(0xff, ioBase, ioBase + 0x2000);
  for (const port of IO_PASS_THROUGH) mem.u8[ioBase + (port >>> 3)]! &= ~(1 << (port & 7));
  vmcs.vmwrite(VMCS.IO_BITMAP_A, ioBase);
  vmcs.vmwrite(VMCS.IO_BITMAP_B, ioBase + 0x1000);
  mem.u8.fill(0xff, msrBase, msrBase + 0x1000);
  vmcs.vmwrite(VMCS.MSR_BITMAP, msrBase);
  for (const msr of MSR_PASS_READ_WRITE) { setMsrBit(mem, vmcs, msr, false, false); setMsrBit(mem, vmcs, msr, true, false); }
  for (const msr of MSR_PASS_READ) setMsrBit(mem, vmcs, msr, false, false);
}

/** An access of `size` bytes at `port` exits if the bit of any byte it touches is set, or if it wraps past 0xFFFF. */
export function ioBitmapExits(mem: PhysicalMemory, vmcs: Vmcs, port: number, size: number): boolean {
  if (port + size > 0x10000) return true;
  for (let p = port; p < port + size; p++) {
    const base = vmcs.vmread(p < 0x8000 ? VMCS.IO_BITMAP_A : VMCS.IO_BITMAP_B);
    const bit = p & 0x7fff;
    if (mem.u8[base + (bit >>> 3)]! & (1 << (bit & 7))) return true;
  }
  return false;
}

/** The byte holding an MSR's bit: read bitmaps at +0x000 (low MSRs) and +0x400 (0xC0000000…), write bitmaps 0x800 further; -1 outside both ranges. */
export function msrBitAddress(vmcs: Vmcs, msr: number, write: boolean): number {
  const base = vmcs.vmread(VMCS.MSR_BITMAP) + (write ? 0x800 : 0);
  msr >>>= 0;
  if (msr <= 0x1fff) return base + (msr >>> 3);
  if (msr >= 0xc0000000 && msr <= 0xc0001fff) return base + 0x400 + ((msr - 0xc0000000) >>> 3);
  return -1;
}

/** MSRs outside both ranges always exit. */
export function msrBitmapExits(mem: PhysicalMemory, vmcs: Vmcs, msr: number, write: boolean): boolean {
  const at = msrBitAddress(vmcs, msr, write);
  return at < 0 || (mem.u8[at]! & (1 << (msr & 7))) !== 0;
}

export function setMsrBit(mem: PhysicalMemory, vmcs: Vmcs, msr: number, write: boolean, exits: boolean): void {
  const at = msrBitAddress(vmcs, msr, write);
  if (at < 0) throw new RangeError(`MSR 0x${msr.toString(16)} is outside the MSR bitmap's ranges`);
  mem.u8[at] = exits ? mem.u8[at]! | (1 << (msr & 7)) : mem.u8[at]! & ~(1 << (msr & 7));
}
