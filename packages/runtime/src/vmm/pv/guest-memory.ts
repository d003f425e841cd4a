// copy_from_guest / copy_to_guest: hypercall arguments are guest virtual addresses, read and
// written through the guest's current page tables with the guest kernel's rights (supervisor,
// CR0.WP = 1, so read-only pages stay read-only), never through the hypervisor hole. Every
// access is checked before anything is written: a multi-byte write that would fault partway
// writes nothing.
import type { Cpu } from '../../cpu/cpu';
import { walk } from '../../cpu/paging';
import { HYPERVISOR_VIRT_START_PAE } from './abi';

export class GuestMemory {
  constructor(private readonly cpu: Cpu, private readonly mappable: (mfn: number) => boolean) {}

  /** Machine address of guest-virtual `va`, or -1 when the guest could not make that access. */
  phys(va: number, write: boolean): number {
    va >>>= 0;
    if (va >= HYPERVISOR_VIRT_START_PAE) return -1;
    const r = walk(this.cpu, va, write, false, false, null);
    if (r < 0 || !this.mappable(r >>> 12)) return -1;
    return r;
  }

  /** True when [va, va + n) is accessible (every page checked). */
  ok(va: number, n: number, write: boolean): boolean {
    if (n <= 0) return true;
    if (va + n > 0x100000000) return false;
    for (let p = (va & ~0xfff) >>> 0; p < va + n; p += 0x1000) if (this.phys(Math.max(p, va), write) < 0) return false;
    return true;
  }

  read8(va: number): number | null {
    const a = this.phys(va, false);
    return a < 0 ? null : this.cpu.mem.read8(a);
  }

  read16(va: number): number | null {
    if (!this.ok(va, 2, false)) return null;
    return this.read8(va)! | (this.read8(va + 1)! << 8);
  }

  /** Unsigned 32-bit, or null. */
  read32(va: number): number | null {
    if ((va & 0xfff) <= 0xffc) {
      const a = this.phys(va, false);
      return a < 0 ? null : this.cpu.mem.read32(a) >>> 0;
    }
    if (!this.ok(va, 4, false)) return null;
    let v = 0;
    for (let i = 3; i >= 0; i--) v = (v << 8) | this.read8(va + i)!;
    return v >>> 0;
  }

  readBytes(va: number, n: number): Uint8Array | null {
    if (!this.ok(va, n, false)) return null;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.read8(va + i)!;
    return out;
  }

  write32(va: number, v: number): boolean {
    if (!this.ok(va, 4, true)) return false;
    if ((va & 0xfff) <= 0xffc) this.cpu.mem.write32(this.phys(va, true), v);
    else for (let i = 0; i < 4; i++) this.cpu.mem.write8(this.phys(va + i, true), (v >>> (8 * i)) & 0xff);
    return true;
  }

  writeBytes(va: number, bytes: Uint8Array): boolean {
    if (!this.ok(va, bytes.length, true)) return false;
    for (let i = 0; i < bytes.length; i++) this.cpu.mem.write8(this.phys(va + i, true), bytes[i]!);
    return true;
  }
}
