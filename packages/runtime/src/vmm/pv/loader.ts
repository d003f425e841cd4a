// The domain builder for a 32-bit PAE PV kernel (tools/libs/guest/xg_dom_x86.c and
// xg_dom_core.c for a domU, xen/arch/x86/pv/dom0_build.c for dom0): loads the image at its
// virtual addresses, lays out the bootstrap region after it as xen.h ("startofday") describes
// (P2M list, start_info, [xenstore page, console page,] page tables, stack; mapped up to a 4 MiB
// boundary at least 512 KiB past the end), builds the PAE tables (the tables themselves mapped
// read-only), pins the L3 and makes it the base pointer, fills start_info, shared_info, the M2P
// table and the hypercall page, and starts vCPU 0 in ring 1 with ESI = start_info.
import * as F from '../../cpu/eflags';
import { SegReg } from '../../cpu/registers';
import { readDescriptor, setCache } from '../../cpu/segments';
import { DEFAULT_RTC_EPOCH_MS } from '../../machine/devices/cmos';
import { Machine, type MachineOptions } from '../../machine/machine';
import {
  EVTCHNSTAT, FLAT_RING1_CS, FLAT_RING1_DS, INVALID_M2P_ENTRY, MAX_GUEST_CMDLINE, SHARED_INFO, SIF_INITDOMAIN,
  SIF_PRIVILEGED, START_INFO, START_INFO_MAGIC_X86_32P, VCPU_INFO,
} from './abi';
import { PvDomain } from './domain';
import { PT_LOAD, PvImageError, readPvElf } from './elf';
import { xenGuestParams, type XenGuestParams } from './elfnotes';
import { hypercallPage } from './hypercall-page';
import { pvLayout, type PvLayout } from './layout';
import { PT_L3 } from './mm';

export const DEFAULT_PV_MEMORY_BYTES = 64 << 20;

export interface PvLoadOptions {
  /** The guest's RAM (nr_pages * 4 KiB); default 64 MiB. */
  memoryBytes?: number;
  machine?: Omit<MachineOptions, 'memoryBytes'>;
  cmdline?: string;
  /** Boot as the initial domain (SIF_INITDOMAIN | SIF_PRIVILEGED, console_io) or as a domU (console ring). Default true. */
  initialDomain?: boolean;
}

/** Where the builder put things (guest virtual addresses unless named MFN). */
export interface PvBootstrap {
  params: XenGuestParams;
  layout: PvLayout;
  p2mVa: number;
  startInfoVa: number;
  storeVa: number;
  consoleVa: number;
  ptVa: number;
  nrPtFrames: number;
  l3Mfn: number;
  stackTop: number;
  /** End of the mapped bootstrap region. */
  vEnd: number;
}

export interface PvGuest {
  machine: Machine;
  domain: PvDomain;
  boot: PvBootstrap;
}

const PTE_P = 1, PTE_RW = 2, PTE_US = 4, PTE_A = 0x20, PTE_D = 0x40;
const MiB = 1 << 20;
const roundUp = (x: number, a: number): number => Math.ceil(x / a) * a;

/** Page tables for mapping [vb, ve): one L3, an L2 per 1 GiB slot (and always slot 3's), an L1 per 2 MiB. */
function tablesFor(vb: number, ve: number): { l2Slots: number[]; l1Regions: number[] } {
  const l2 = new Set<number>([3]);
  const l1: number[] = [];
  for (let r = Math.floor(vb / (2 * MiB)); r * 2 * MiB < ve; r++) {
    l1.push(r);
    l2.add(Math.floor((r * 2 * MiB) / (1 << 30)));
  }
  return { l2Slots: [...l2].sort((a, b) => a - b), l1Regions: l1 };
}

export function loadPv(image: Uint8Array, opts: PvLoadOptions = {}): PvGuest {
  const params = xenGuestParams(image);
  const elf = readPvElf(image);
  const ram = opts.memoryBytes ?? DEFAULT_PV_MEMORY_BYTES;
  if (ram < 4 * MiB || ram % 4096 !== 0) throw new PvImageError(`guest memory ${ram} bytes: at least 4 MiB, in whole pages`);
  const layout = pvLayout(ram);
  const initialDomain = opts.initialDomain ?? true;
  const cmdline = opts.cmdline ?? '';
  if (cmdline.length >= MAX_GUEST_CMDLINE) throw new PvImageError(`command line longer than ${MAX_GUEST_CMDLINE - 1} bytes (MAX_GUEST_CMDLINE)`);
  const vb = params.virtBase;

  // Bootstrap allocation, in xen.h's order.
  let cursor = roundUp(params.virtKend, 4096);
  const take = (pages: number): number => { const at = cursor; cursor += pages * 4096; return at; };
  const p2mVa = take(Math.ceil((layout.nrPages * 4) / 4096));
  const startInfoVa = take(1);
  const storeVa = initialDomain ? 0 : take(1);
  const consoleVa = initialDomain ? 0 : take(1);
  const ptVa = cursor;
  let nPt = 0, vEnd = 0, tables = tablesFor(vb, vb);
  for (;;) {
    const stackEnd = ptVa + (nPt + 1) * 4096;
    vEnd = roundUp(stackEnd + 512 * 1024, 4 * MiB);
    tables = tablesFor(vb, vEnd);
    const need = 1 + tables.l2Slots.length + tables.l1Regions.length;
    if (need === nPt) break;
    nPt = need;
  }
  const stackTop = ptVa + (nPt + 1) * 4096;
  if (vEnd > 0xf5800000) throw new PvImageError(`the bootstrap region would end at 0x${vEnd.toString(16)}, inside the hypervisor hole`);
  const mappedPages = (vEnd - vb) / 4096;
  if (mappedPages > layout.nrPages) {
    throw new PvImageError(`guest memory (${ram / MiB} MiB) is too small: the kernel and its bootstrap region need ${Math.ceil((mappedPages * 4096) / MiB)} MiB`);
  }

  const machine = new Machine({ ...opts.machine, memoryBytes: layout.totalFrames * 4096 });
  const mem = machine.mem;
  const mfnOf = (pfn: number): number => layout.firstGuestMfn + pfn;
  const machAddr = (va: number): number => mfnOf(Math.floor((va - vb) / 4096)) * 4096 + (va & 0xfff);

  // The kernel: each PT_LOAD at paddr + (virt_base - paddr_offset) (libelf elf_load_binary).
  const virtOffset = vb - params.paddrOffset;
  for (const h of elf.programHeaders) {
    if (h.type !== PT_LOAD || h.memsz === 0) continue;
    const va = h.paddr + virtOffset;
    for (let i = 0; i < h.filesz; i++) mem.write8(machAddr(va + i), image[h.offset + i]!);
  }
  if (params.virtHypercall !== -1) mem.load(machAddr(params.virtHypercall), hypercallPage());

  // P2M list (pfn -> mfn) in the guest, M2P (mfn -> pfn) in the monitor.
  for (let pfn = 0; pfn < layout.nrPages; pfn++) mem.write32(machAddr(p2mVa + pfn * 4), mfnOf(pfn));
  const m2p = layout.m2pMfn * 4096;
  for (let mfn = 0; mfn < layout.totalFrames; mfn++) mem.write32(m2p + mfn * 4, mfn >= layout.firstGuestMfn ? mfn - layout.firstGuestMfn : INVALID_M2P_ENTRY);

  // Page tables: L3, then the L2s, then the L1s, at ptVa.
  const ptPfn = (ptVa - vb) / 4096;
  const l3Mfn = mfnOf(ptPfn);
  const l2Mfn = new Map<number, number>(tables.l2Slots.map((s, i) => [s, mfnOf(ptPfn + 1 + i)]));
  const l1Base = ptPfn + 1 + tables.l2Slots.length;
  const ptEnd = ptPfn + nPt;
  for (const [slot, mfn] of l2Mfn) mem.write32(l3Mfn * 4096 + slot * 8, mfn * 4096 | PTE_P);
  tables.l1Regions.forEach((r, i) => {
    const l1 = mfnOf(l1Base + i);
    const regionVa = r * 2 * MiB;
    const slot = Math.floor(regionVa / (1 << 30));
    mem.write32(l2Mfn.get(slot)! * 4096 + ((regionVa >>> 21) & 511) * 8, l1 * 4096 | PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D);
    for (let k = 0; k < 512; k++) {
      const va = regionVa + k * 4096;
      if (va < vb || va >= vEnd) continue;
      const pfn = (va - vb) / 4096;
      const readOnly = pfn >= ptPfn && pfn < ptEnd;
      mem.write32(l1 * 4096 + k * 8, (mfnOf(pfn) * 4096) | PTE_P | PTE_A | (readOnly ? 0 : PTE_RW));
    }
  });

  const domain = new PvDomain(machine, layout, {
    initialDomain, cmdline,
    consoleOut: opts.machine?.serialOut ?? (() => {}),
  });

  // start_info
  const si = machAddr(startInfoVa);
  for (let i = 0; i < START_INFO_MAGIC_X86_32P.length; i++) mem.write8(si + START_INFO.magic + i, START_INFO_MAGIC_X86_32P.charCodeAt(i));
  mem.write32(si + START_INFO.nr_pages, layout.nrPages);
  mem.write32(si + START_INFO.shared_info, layout.sharedInfoMfn * 4096);
  mem.write32(si + START_INFO.flags, initialDomain ? SIF_INITDOMAIN | SIF_PRIVILEGED : 0);
  mem.write32(si + START_INFO.pt_base, ptVa);
  mem.write32(si + START_INFO.nr_pt_frames, nPt);
  mem.write32(si + START_INFO.mfn_list, p2mVa);
  for (let i = 0; i < cmdline.length; i++) mem.write8(si + START_INFO.cmd_line + i, cmdline.charCodeAt(i) & 0xff);
  if (!initialDomain) {
    // The toolstack's two channels: xenstore (nothing answers it here) and the console ring.
    domain.storePort = domain.events.allocate({ kind: EVTCHNSTAT.interdomain, service: 'store' });
    domain.consolePort = domain.events.allocate({ kind: EVTCHNSTAT.interdomain, service: 'console' });
    domain.consoleRing = machAddr(consoleVa);
    mem.write32(si + START_INFO.store_mfn, machAddr(storeVa) >>> 12);
    mem.write32(si + START_INFO.store_evtchn, domain.storePort);
    mem.write32(si + START_INFO.console_mfn, machAddr(consoleVa) >>> 12);
    mem.write32(si + START_INFO.console_evtchn, domain.consolePort);
  }
  // (dom0: console.dom0.info_off / info_size stay 0: no VGA console information.)

  // shared_info: events masked until the guest is ready (dom0_build.c masks every vCPU's upcalls),
  // the wallclock at boot, and a time base in which TSC cycles are nanoseconds (TSC_HZ = 1 GHz):
  // system_time = ((tsc - 0) << 1) * 0x80000000 >> 32.
  const sh = layout.sharedInfoMfn * 4096, vi = sh + SHARED_INFO.vcpu_info;
  mem.write8(vi + VCPU_INFO.evtchn_upcall_mask, 1);
  mem.write32(vi + VCPU_INFO.time_version, 2);
  mem.write32(vi + VCPU_INFO.tsc_to_system_mul, 0x80000000);
  mem.write8(vi + VCPU_INFO.tsc_shift, 1);
  mem.write8(vi + VCPU_INFO.time_flags, 1); // XEN_PVCLOCK_TSC_STABLE_BIT
  const epochMs = opts.machine?.rtcEpochMs ?? DEFAULT_RTC_EPOCH_MS;
  mem.write32(sh + SHARED_INFO.wc_version, 2);
  mem.write32(sh + SHARED_INFO.wc_sec, Math.floor(epochMs / 1000) >>> 0);
  mem.write32(sh + SHARED_INFO.wc_nsec, (epochMs % 1000) * 1_000_000);
  mem.write32(sh + SHARED_INFO.wc_sec_hi, Math.floor(epochMs / 1000 / 0x100000000));
  mem.write32(sh + SHARED_INFO.max_pfn, layout.nrPages);

  // vCPU 0: paging on the builder's tables, ring 1 on Xen's flat segments.
  const cpu = machine.cpu;
  cpu.cr0 = 0x80010033; // PG, WP (read-only pages hold for ring 1 too), NE, ET, MP, PE
  cpu.cr4 = 0x20; // PAE
  domain.attach();
  const pinned = domain.frames.pin(l3Mfn, PT_L3) ?? domain.frames.newBaseptr(l3Mfn);
  if (pinned !== null) throw new Error(`internal error: the builder's page tables do not validate: ${pinned}`);
  const csd = readDescriptor(cpu, FLAT_RING1_CS), dsd = readDescriptor(cpu, FLAT_RING1_DS);
  setCache(cpu, SegReg.CS, FLAT_RING1_CS, csd);
  for (const s of [SegReg.ES, SegReg.SS, SegReg.DS, SegReg.FS, SegReg.GS]) setCache(cpu, s, FLAT_RING1_DS, dsd);
  cpu.cpl = 1;
  cpu.regs.fill(0);
  cpu.regs[6] = startInfoVa | 0; // ESI
  cpu.regs[4] = stackTop | 0; // ESP
  cpu.eflags = F.FIXED_ONE | F.IF;
  cpu.eip = cpu.nextEip = params.virtEntry | 0;
  cpu.halted = false;
  cpu.flushDecodeCache();
  cpu.tlb.flushAll();
  return {
    machine, domain,
    boot: { params, layout, p2mVa, startInfoVa, storeVa, consoleVa, ptVa, nrPtFrames: nPt, l3Mfn, stackTop, vEnd },
  };
}
