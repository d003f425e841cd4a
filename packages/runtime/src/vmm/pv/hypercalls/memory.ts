// Page-table and memory hypercalls (xen.h mmu_update/mmuext_op/update_va_mapping, memory.h):
// every change goes through the frame table (mm.ts), which refuses what would let the guest map a
// frame it does not own or a page table writable. Batches stop at the first failing entry, with
// the number done written to *done, as Xen does.
import {
  DOMID_SELF, EFAULT, EINVAL, ENOSYS, ESRCH, HYPERVISOR_VIRT_START_PAE, INVALID_M2P_ENTRY, MACH2PHYS_VIRT_END_PAE,
  MACH2PHYS_VIRT_START_PAE, MMUEXT, MMUEXT_OP_SIZE, MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD,
  MMU_UPDATE_SIZE, UVMF_FLUSHTYPE_MASK, XENMEM, XEN_MEMORY_RESERVATION, EPERM,
} from '../abi';
import type { PvDomain } from '../domain';
import { PT_L1, PT_L2, PT_L3, PT_WRITABLE } from '../mm';
import { MAX_BATCH, type HypercallHandler } from './types';

/** foreigndom: only the domain itself (DOMID_SELF, or 0, its own id here). */
function selfDomain(foreigndom: number): boolean {
  const fd = foreigndom & 0xffff;
  return (foreigndom >>> 16) === 0 && (fd === DOMID_SELF || fd === 0);
}

/** A checked write of the PTE at machine address `ptr` (mmu_update NORMAL / PRESERVE_AD). */
export function writePte(d: PvDomain, ptr: number, lo: number, hi: number, preserveAd: boolean): number {
  if ((ptr & 7) !== 0) return EINVAL;
  const mfn = ptr >>> 12, index = (ptr & 0xfff) >>> 3;
  const f = d.frames;
  if (!f.owns(mfn)) return EINVAL;
  const t = f.count[mfn]! > 0 ? f.type[mfn]! : 0;
  if (t === PT_L1 || t === PT_L2 || t === PT_L3) {
    if (t === PT_L3 && index >= 4) return EINVAL;
    return f.updateEntry(mfn, index, t, lo, hi, preserveAd) === null ? 0 : EINVAL;
  }
  // Not a page table: a plain write, allowed when the frame could be mapped writable.
  if (!f.getType(mfn, PT_WRITABLE)) return EINVAL;
  d.machine.mem.write32(ptr, lo);
  d.machine.mem.write32(ptr + 4, hi);
  f.putType(mfn);
  return 0;
}

/** HYPERVISOR_mmu_update(reqs[], count, *done, foreigndom). */
export const mmuUpdate: HypercallHandler = (d, [reqs, count, pdone, foreigndom]) => {
  if (!selfDomain(foreigndom!)) return ESRCH;
  if (count! > MAX_BATCH) return EINVAL;
  let done = 0, rc = 0;
  for (; done < count!; done++) {
    const b = d.gm.readBytes((reqs! + done * MMU_UPDATE_SIZE) >>> 0, MMU_UPDATE_SIZE);
    if (b === null) { rc = EFAULT; break; }
    const v = new DataView(b.buffer);
    const ptrLo = v.getUint32(0, true), ptrHi = v.getUint32(4, true), valLo = v.getUint32(8, true), valHi = v.getUint32(12, true);
    const cmd = ptrLo & 3, ptr = (ptrLo & ~3) >>> 0;
    if (ptrHi !== 0) { rc = EINVAL; break; }
    if (cmd === MMU_NORMAL_PT_UPDATE || cmd === MMU_PT_UPDATE_PRESERVE_AD) rc = writePte(d, ptr, valLo, valHi, cmd === MMU_PT_UPDATE_PRESERVE_AD);
    else if (cmd === MMU_MACHPHYS_UPDATE) {
      const mfn = ptr >>> 12;
      if (!d.frames.owns(mfn) || valHi !== 0) rc = EINVAL;
      else d.machine.mem.write32(d.layout.m2pMfn * 4096 + mfn * 4, valLo);
    } else rc = ENOSYS; // MMU_PT_UPDATE_NO_TRANSLATE: for translated guests only
    if (rc !== 0) break;
  }
  if (pdone !== 0 && !d.gm.write32(pdone!, done)) return EFAULT;
  return rc;
};

/** The machine address of the L1 entry that maps `va` in the current tables, or -1. */
export function l1EntryOf(d: PvDomain, va: number): number {
  const mem = d.machine.mem, base = d.frames.baseptr;
  if (base < 0) return -1;
  const l3e = mem.read32(base * 4096 + (va >>> 30) * 8);
  if ((l3e & 1) === 0) return -1;
  const l2e = mem.read32((l3e & 0xfffff000) + ((va >>> 21) & 511) * 8);
  if ((l2e & 1) === 0 || (l2e & 0x80) !== 0) return -1;
  return ((l2e & 0xfffff000) + ((va >>> 12) & 511) * 8) >>> 0;
}

/** HYPERVISOR_update_va_mapping(va, val_lo, val_hi, flags): mmu_update of the L1 entry of va, then a flush. */
export const updateVaMapping: HypercallHandler = (d, [va, lo, hi, flags]) => {
  if (va! >= HYPERVISOR_VIRT_START_PAE) return EINVAL;
  if ((flags! & UVMF_FLUSHTYPE_MASK) === 3) return EINVAL;
  const pte = l1EntryOf(d, va!);
  if (pte < 0) return EINVAL;
  const rc = writePte(d, pte, lo!, hi!, false);
  if (rc !== 0) return rc;
  // updateEntry flushed the whole TLB already: UVMF_INVLPG and UVMF_TLB_FLUSH are covered.
  return 0;
};

const PIN_LEVEL: Record<number, number> = { [MMUEXT.PIN_L1_TABLE]: PT_L1, [MMUEXT.PIN_L2_TABLE]: PT_L2, [MMUEXT.PIN_L3_TABLE]: PT_L3 };

function mmuextOne(d: PvDomain, cmd: number, arg1: number, arg2: number): number {
  const f = d.frames, cpu = d.cpu;
  switch (cmd) {
    case MMUEXT.PIN_L1_TABLE: case MMUEXT.PIN_L2_TABLE: case MMUEXT.PIN_L3_TABLE:
      return f.pin(arg1, PIN_LEVEL[cmd]!) === null ? 0 : EINVAL;
    case MMUEXT.PIN_L4_TABLE: return EINVAL; // 4-level tables are for 64-bit guests
    case MMUEXT.UNPIN_TABLE: return f.unpin(arg1) === null ? 0 : EINVAL;
    case MMUEXT.NEW_BASEPTR: return f.newBaseptr(arg1) === null ? 0 : EINVAL;
    case MMUEXT.TLB_FLUSH_LOCAL: case MMUEXT.TLB_FLUSH_MULTI: case MMUEXT.TLB_FLUSH_ALL:
      cpu.tlb.flushAll();
      return 0;
    case MMUEXT.INVLPG_LOCAL: case MMUEXT.INVLPG_MULTI: case MMUEXT.INVLPG_ALL:
      cpu.tlb.invalidatePage(arg1);
      return 0;
    case MMUEXT.FLUSH_CACHE: case MMUEXT.FLUSH_CACHE_GLOBAL: return 0;
    case MMUEXT.SET_LDT: return arg2 === 0 ? 0 : EINVAL; // LDTs are not modelled for PV guests
    case MMUEXT.NEW_USER_BASEPTR: return EINVAL; // x86-64 only
    case MMUEXT.CLEAR_PAGE: case MMUEXT.COPY_PAGE: {
      if (!f.getType(arg1, PT_WRITABLE)) return EINVAL;
      const mem = d.machine.mem;
      if (cmd === MMUEXT.COPY_PAGE && !f.owns(arg2)) { f.putType(arg1); return EINVAL; }
      for (let i = 0; i < 4096; i += 4) mem.write32(arg1 * 4096 + i, cmd === MMUEXT.CLEAR_PAGE ? 0 : mem.read32(arg2 * 4096 + i));
      f.putType(arg1);
      return 0;
    }
    default: return ENOSYS;
  }
}

/** HYPERVISOR_mmuext_op(ops[], count, *done, foreigndom). */
export const mmuextOp: HypercallHandler = (d, [ops, count, pdone, foreigndom]) => {
  if (!selfDomain(foreigndom!)) return ESRCH;
  if (count! > MAX_BATCH) return EINVAL;
  let done = 0, rc = 0;
  for (; done < count!; done++) {
    const b = d.gm.readBytes((ops! + done * MMUEXT_OP_SIZE) >>> 0, MMUEXT_OP_SIZE);
    if (b === null) { rc = EFAULT; break; }
    const v = new DataView(b.buffer);
    rc = mmuextOne(d, v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true));
    if (rc !== 0) break;
  }
  if (pdone !== 0 && !d.gm.write32(pdone!, done)) return EFAULT;
  return rc;
};

/** XENMEM_increase/decrease_reservation, populate_physmap: order-0 extents of this domain. */
function reservation(d: PvDomain, cmd: number, arg: number): number {
  const b = d.gm.readBytes(arg, 20);
  if (b === null) return EFAULT;
  const v = new DataView(b.buffer);
  const list = v.getUint32(XEN_MEMORY_RESERVATION.extent_start, true), n = v.getUint32(XEN_MEMORY_RESERVATION.nr_extents, true);
  const order = v.getUint32(XEN_MEMORY_RESERVATION.extent_order, true), dom = v.getUint16(XEN_MEMORY_RESERVATION.domid, true);
  if (dom !== DOMID_SELF && dom !== 0) return ESRCH;
  if (order !== 0 || n > MAX_BATCH) return EINVAL;
  const f = d.frames, L = d.layout, m2p = L.m2pMfn * 4096;
  let i = 0;
  for (; i < n; i++) {
    const at = (list + i * 4) >>> 0;
    if (cmd === XENMEM.decrease_reservation) {
      const mfn = d.gm.read32(at);
      // Only a frame nothing references (no table, no mapping, read-only ones included) can go.
      if (mfn === null || !f.owns(mfn) || f.count[mfn] !== 0 || f.mapped[mfn] !== 0 || f.pinned[mfn] !== 0) break;
      f.owned[mfn] = 0;
      d.machine.mem.write32(m2p + mfn * 4, INVALID_M2P_ENTRY);
    } else {
      if (!d.gm.ok(at, 4, true)) break;
      let mfn = -1;
      for (let m = L.firstGuestMfn; m < L.firstGuestMfn + L.nrPages; m++) if (f.owned[m] === 0) { mfn = m; break; }
      if (mfn < 0) break;
      f.owned[mfn] = 1;
      for (let o = 0; o < 4096; o += 4) d.machine.mem.write32(mfn * 4096 + o, 0);
      d.gm.write32(at, mfn);
    }
  }
  return i;
}

/** HYPERVISOR_memory_op(cmd, arg): reservations and memory-map queries (memory.h). */
export const memoryOp: HypercallHandler = (d, [cmd, arg]) => {
  const L = d.layout;
  switch (cmd) {
    case XENMEM.increase_reservation: case XENMEM.decrease_reservation: case XENMEM.populate_physmap:
      return reservation(d, cmd, arg!);
    case XENMEM.maximum_ram_page: return L.totalFrames - 1;
    case XENMEM.current_reservation: case XENMEM.maximum_reservation: {
      const dom = d.gm.read16(arg!);
      if (dom === null) return EFAULT;
      if (dom !== DOMID_SELF && dom !== 0) return ESRCH;
      let n = 0;
      for (let m = 0; m < L.totalFrames; m++) n += d.frames.owned[m]!;
      return cmd === XENMEM.current_reservation ? n : L.nrPages;
    }
    case XENMEM.maximum_gpfn: {
      const dom = d.gm.read16(arg!);
      if (dom === null) return EFAULT;
      return dom === DOMID_SELF || dom === 0 ? L.nrPages - 1 : ESRCH;
    }
    case XENMEM.memory_map: case XENMEM.machine_memory_map: {
      // xen_memory_map {u32 nr_entries; handle buffer}: one e820 RAM entry {u64 addr, u64 size, u32 type}.
      if (cmd === XENMEM.machine_memory_map && !d.opts.initialDomain) return EPERM;
      const nr = d.gm.read32(arg!), buf = d.gm.read32((arg! + 4) >>> 0);
      if (nr === null || buf === null) return EFAULT;
      if (nr < 1) return EINVAL;
      const size = (cmd === XENMEM.memory_map ? L.nrPages : L.totalFrames) * 4096;
      const e = new Uint8Array(20);
      const ev = new DataView(e.buffer);
      ev.setUint32(8, size >>> 0, true);
      ev.setUint32(12, Math.floor(size / 0x100000000), true);
      ev.setUint32(16, 1, true); // E820_RAM
      if (!d.gm.writeBytes(buf, e) || !d.gm.write32(arg!, 1)) return EFAULT;
      return 0;
    }
    case XENMEM.machphys_mapping: {
      // xen_machphys_mapping {v_start, v_end, max_mfn} (32-bit fields for a 32-bit guest).
      const e = new Uint8Array(12);
      const ev = new DataView(e.buffer);
      ev.setUint32(0, MACH2PHYS_VIRT_START_PAE, true);
      ev.setUint32(4, MACH2PHYS_VIRT_END_PAE, true);
      ev.setUint32(8, (MACH2PHYS_VIRT_END_PAE - MACH2PHYS_VIRT_START_PAE) / 4 - 1, true);
      return d.gm.writeBytes(arg!, e) ? 0 : EFAULT;
    }
    default: return ENOSYS;
  }
};
