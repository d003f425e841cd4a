// Linear -> physical translation (SDM vol. 3A ch. 4): 32-bit paging with 4 KiB and (CR4.PSE)
// 4 MiB pages, and PAE paging (CR4.PAE) with 2 MiB pages and execute-disable (EFER.NXE).
// Access rights follow §4.6: user accesses need U/S = 1 at every level, writes need R/W = 1
// at every level for users and, with CR0.WP = 1, for supervisors too. Accessed and dirty bits
// are set as §4.8 describes. A failed walk throws #PF with CR2 and the §4.7 error code.
//
// Not yet: a TLB (every access walks the tables, so INVLPG and CR3 writes need no flushing
// yet); global pages therefore behave correctly by construction.
import { Fault, Vector } from './fault';

const CR0_WP = 1 << 16;
const CR4_PSE = 1 << 4;
const CR4_PAE = 1 << 5;
const EFER_NXE = 1 << 11;

const PTE_P = 1;
const PTE_RW = 2;
const PTE_US = 4;
const PTE_A = 0x20;
const PTE_D = 0x40;
const PTE_PS = 0x80;

/** #PF error code bits (SDM vol. 3A §4.7). */
export const PfError = { P: 1, W: 2, U: 4, RSVD: 8, I: 16 } as const;

export interface PagingState {
  cr0: number;
  cr2: number;
  cr3: number;
  cr4: number;
  /** IA32_EFER (NXE, bit 11). */
  efer?: number;
  readonly mem: { read32(a: number): number; write32(a: number, v: number): void };
}

function pageFault(cpu: PagingState, lin: number, code: number): Fault {
  cpu.cr2 = lin | 0;
  return new Fault(Vector.PF, code);
}

export function translate(cpu: PagingState, lin: number, write: boolean, user: boolean, fetch: boolean): number {
  if (cpu.cr4 & CR4_PAE) return translatePae(cpu, lin, write, user, fetch);
  const wp = (cpu.cr0 & CR0_WP) !== 0;
  const errBase = (write ? PfError.W : 0) | (user ? PfError.U : 0);
  const pdeAddr = (cpu.cr3 & 0xfffff000) + ((lin >>> 22) << 2);
  const pde = cpu.mem.read32(pdeAddr >>> 0);
  if ((pde & PTE_P) === 0) throw pageFault(cpu, lin, errBase);
  if ((pde & PTE_PS) && (cpu.cr4 & CR4_PSE)) {
    if (!allowed(pde, pde, write, user, wp)) throw pageFault(cpu, lin, errBase | PfError.P);
    // PDE bits 21:13 are reserved (must be 0) for 4 MiB pages without PSE-36 (§4.3, table 4-4).
    if (pde & 0x003fe000) throw pageFault(cpu, lin, errBase | PfError.P | PfError.RSVD);
    const set = PTE_A | (write ? PTE_D : 0);
    if ((pde & set) !== set) cpu.mem.write32(pdeAddr >>> 0, pde | set);
    return ((pde & 0xffc00000) | (lin & 0x3fffff)) >>> 0;
  }
  const pteAddr = (pde & 0xfffff000) + (((lin >>> 12) & 0x3ff) << 2);
  const pte = cpu.mem.read32(pteAddr >>> 0);
  if ((pte & PTE_P) === 0) throw pageFault(cpu, lin, errBase);
  if (!allowed(pde, pte, write, user, wp)) throw pageFault(cpu, lin, errBase | PfError.P);
  if ((pde & PTE_A) === 0) cpu.mem.write32(pdeAddr >>> 0, pde | PTE_A);
  const set = PTE_A | (write ? PTE_D : 0);
  if ((pte & set) !== set) cpu.mem.write32(pteAddr >>> 0, pte | set);
  return ((pte & 0xfffff000) | (lin & 0xfff)) >>> 0;
}

/** Rights combined over the levels: both must allow (SDM vol. 3A §4.6.1). */
function allowed(upper: number, leaf: number, write: boolean, user: boolean, wp: boolean): boolean {
  const us = upper & leaf & PTE_US;
  const rw = upper & leaf & PTE_RW;
  if (user) return us !== 0 && (!write || rw !== 0);
  return !write || rw !== 0 || !wp;
}

/**
 * PAE (SDM vol. 3A §4.4): CR3 points at four 64-bit PDPTEs; PDEs and PTEs are 64-bit with the
 * physical address in bits 12..51 (we keep physical addresses below 4 GiB) and XD in bit 63.
 * The PDPTEs are read here on each walk; the SDM loads them on CR3 writes (§4.4.1) — the
 * difference is visible only to a guest that edits its PDPTEs without reloading CR3.
 */
function translatePae(cpu: PagingState, lin: number, write: boolean, user: boolean, fetch: boolean): number {
  const wp = (cpu.cr0 & CR0_WP) !== 0;
  const nxe = ((cpu.efer ?? 0) & EFER_NXE) !== 0;
  const errBase = (write ? PfError.W : 0) | (user ? PfError.U : 0) | (fetch && nxe ? PfError.I : 0);
  const read64 = (a: number): [number, number] => [cpu.mem.read32(a >>> 0), cpu.mem.read32((a + 4) >>> 0)];
  const pdpteAddr = (cpu.cr3 & 0xffffffe0) + ((lin >>> 30) << 3);
  const [pdpte] = read64(pdpteAddr);
  if ((pdpte & PTE_P) === 0) throw pageFault(cpu, lin, errBase);
  const pdeAddr = (pdpte & 0xfffff000) + (((lin >>> 21) & 0x1ff) << 3);
  const [pde, pdeHi] = read64(pdeAddr);
  if ((pde & PTE_P) === 0) throw pageFault(cpu, lin, errBase);
  const xdPde = nxe && pdeHi < 0;
  if (pde & PTE_PS) {
    if (!allowed(pde, pde, write, user, wp) || (fetch && xdPde)) throw pageFault(cpu, lin, errBase | PfError.P);
    const set = PTE_A | (write ? PTE_D : 0);
    if ((pde & set) !== set) cpu.mem.write32(pdeAddr >>> 0, pde | set);
    return ((pde & 0xffe00000) | (lin & 0x1fffff)) >>> 0;
  }
  const pteAddr = (pde & 0xfffff000) + (((lin >>> 12) & 0x1ff) << 3);
  const [pte, pteHi] = read64(pteAddr);
  if ((pte & PTE_P) === 0) throw pageFault(cpu, lin, errBase);
  const xd = xdPde || (nxe && pteHi < 0);
  if (!allowed(pde, pte, write, user, wp) || (fetch && xd)) throw pageFault(cpu, lin, errBase | PfError.P);
  if ((pde & PTE_A) === 0) cpu.mem.write32(pdeAddr >>> 0, pde | PTE_A);
  const set = PTE_A | (write ? PTE_D : 0);
  if ((pte & set) !== set) cpu.mem.write32(pteAddr >>> 0, pte | set);
  return ((pte & 0xfffff000) | (lin & 0xfff)) >>> 0;
}
