// Hypercalls for the vCPU's protected-mode state: trap table, GDT, kernel stack, callbacks, FPU
// switch, descriptors, vm_assist, iret, I/O privilege (xen.h, arch-x86/xen.h, callback.h, physdev.h).
import {
  CALLBACKF_mask_events, CALLBACKOP_register, CALLBACKOP_unregister, CALLBACKTYPE, EFAULT, EINVAL, ENOSYS, FIRST_RESERVED_GDT_ENTRY,
  PHYSDEVOP_set_iopl, TRAP_INFO_SIZE, VMASST_CMD_disable, VMASST_CMD_enable, VMASST_TYPE,
} from '../abi';
import { checkDescriptor } from '../gdt';
import { PT_SEGDESC, PT_WRITABLE } from '../mm';
import type { HypercallHandler } from './types';

/** HYPERVISOR_set_trap_table(trap_info[]): entries until one with address 0; NULL clears the table. */
export const setTrapTable: HypercallHandler = (d, [table]) => {
  if (table === 0) {
    for (const t of d.trapTable) { t.flags = 0; t.cs = 0; t.address = 0; }
    return 0;
  }
  // Read the whole list first: a fault partway leaves the table as it was.
  const entries: { vector: number; flags: number; cs: number; address: number }[] = [];
  for (let i = 0; ; i++) {
    if (i > 4096) return EINVAL;
    const b = d.gm.readBytes((table! + i * TRAP_INFO_SIZE) >>> 0, TRAP_INFO_SIZE);
    if (b === null) return EFAULT;
    const address = (b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24)) >>> 0;
    if (address === 0) break;
    entries.push({ vector: b[0]!, flags: b[1]!, cs: b[2]! | (b[3]! << 8), address });
  }
  for (const e of entries) d.trapTable[e.vector] = { flags: e.flags, cs: (e.cs & 3) === 0 ? e.cs | 1 : e.cs, address: e.address };
  return 0;
};

/** HYPERVISOR_set_gdt(frame_list, entries): the guest's GDT frames, read-only from now on. */
export const setGdt: HypercallHandler = (d, [list, entries]) => {
  if (entries! > FIRST_RESERVED_GDT_ENTRY) return EINVAL;
  const nr = Math.ceil(entries! / 512);
  const mfns: number[] = [];
  for (let i = 0; i < nr; i++) {
    const m = d.gm.read32((list! + i * 4) >>> 0);
    if (m === null) return EFAULT;
    mfns.push(m);
  }
  const installed: [number, number][] = [];
  const taken: number[] = [];
  const undo = (): number => { for (const m of taken) d.frames.putType(m); return EINVAL; };
  for (let i = 0; i < entries!; i++) {
    const mfn = mfns[i >>> 9]!;
    if ((i & 511) === 0) {
      if (!d.frames.getType(mfn, PT_SEGDESC)) return undo();
      taken.push(mfn);
    }
    const at = mfn * 4096 + (i & 511) * 8;
    const desc = checkDescriptor(d.machine.mem.read32(at), d.machine.mem.read32(at + 4));
    if (desc === null) return undo();
    installed.push(desc);
  }
  for (const m of d.gdtFrames) d.frames.putType(m);
  d.gdtFrames = mfns;
  d.gdtEntries = entries!;
  d.gdt.clearGuest();
  installed.forEach(([lo, hi], i) => d.gdt.write(i, lo, hi));
  d.cpu.tlb.flushAll();
  return 0;
};

/** HYPERVISOR_stack_switch(ss, esp): the ring-1 stack for bounces from ring 3 (checked when used). */
export const stackSwitch: HypercallHandler = (d, [ss, esp]) => {
  d.kernelSs = (ss! & 3) === 0 ? (ss! | 1) & 0xffff : ss! & 0xffff;
  d.kernelSp = esp!;
  return 0;
};

/** fixup_guest_code_selector: a 32-bit PV kernel's selectors with RPL 0 get RPL 1. */
const guestCs = (cs: number): number => ((cs & 3) === 0 ? cs | 1 : cs) & 0xffff;

/** HYPERVISOR_set_callbacks(event_cs, event_eip, failsafe_cs, failsafe_eip) (pv/callback.c compat_set_callbacks). */
export const setCallbacks: HypercallHandler = (d, [ecs, eeip, fcs, feip]) => {
  d.eventCallback = { cs: guestCs(ecs!), eip: eeip! };
  d.failsafeCallback = { cs: guestCs(fcs!), eip: feip! };
  d.failsafeMasksEvents = false;
  return 0;
};

/**
 * HYPERVISOR_callback_op(cmd, callback_register *), as Xen's 32-bit (compat) path
 * (pv/callback.c compat_register_guest_callback / compat_unregister_guest_callback /
 * compat_callback_op): register event, failsafe, syscall32, sysenter and NMI; other types
 * (syscall, sysenter_deprecated, unknown) -ENOSYS; unregister only NMI (the others -EINVAL);
 * an unknown command -EINVAL. callback_register is {u16 type, u16 flags, {u32 cs, u32 eip}}.
 */
export const callbackOp: HypercallHandler = (d, [cmd, arg]) => {
  if (cmd === CALLBACKOP_register) {
    const b = d.gm.readBytes(arg!, 12);
    if (b === null) return EFAULT;
    const type = b[0]! | (b[1]! << 8);
    const masks = ((b[2]! | (b[3]! << 8)) & CALLBACKF_mask_events) !== 0;
    const cs = guestCs(b[4]! | (b[5]! << 8));
    const eip = (b[8]! | (b[9]! << 8) | (b[10]! << 16) | (b[11]! << 24)) >>> 0;
    switch (type) {
      case CALLBACKTYPE.event: d.eventCallback = { cs, eip }; return 0;
      case CALLBACKTYPE.failsafe: d.failsafeCallback = { cs, eip }; d.failsafeMasksEvents = masks; return 0;
      // Recorded as Xen records them; this IA-32 CPU never enters them (docs/pv-abi.md).
      case CALLBACKTYPE.syscall32: d.syscall32Callback = { cs, eip, masksEvents: masks }; return 0;
      case CALLBACKTYPE.sysenter: d.sysenterCallback = { cs, eip, masksEvents: masks }; return 0;
      case CALLBACKTYPE.nmi: return 0; // accepted; this machine raises no NMI
      default: return ENOSYS;
    }
  }
  if (cmd === CALLBACKOP_unregister) {
    const t = d.gm.read16(arg!);
    if (t === null) return EFAULT;
    if (t === CALLBACKTYPE.nmi) return 0;
    const fixed: number[] = [CALLBACKTYPE.event, CALLBACKTYPE.failsafe, CALLBACKTYPE.syscall32, CALLBACKTYPE.sysenter];
    return fixed.includes(t) ? EINVAL : ENOSYS;
  }
  return EINVAL;
};

/** HYPERVISOR_fpu_taskswitch(set): CR0.TS. */
export const fpuTaskswitch: HypercallHandler = (d, [set]) => {
  d.cpu.cr0 = set ? d.cpu.cr0 | 8 : d.cpu.cr0 & ~8;
  return 0;
};

/** HYPERVISOR_update_descriptor(pa_lo, pa_hi, desc_lo, desc_hi): one checked descriptor at a machine address. */
export const updateDescriptor: HypercallHandler = (d, [paLo, paHi, lo, hi]) => {
  if (paHi !== 0 || (paLo! & 7) !== 0) return EINVAL;
  const mfn = paLo! >>> 12;
  const desc = checkDescriptor(lo!, hi!);
  if (!d.frames.owns(mfn) || desc === null) return EINVAL;
  const f = d.frames;
  const inGdt = f.count[mfn]! > 0 && f.type[mfn] === PT_SEGDESC;
  if (!inGdt) {
    if (!f.getType(mfn, PT_WRITABLE)) return EINVAL;
    f.putType(mfn);
  }
  d.machine.mem.write32(paLo!, lo!);
  d.machine.mem.write32(paLo! + 4, hi!);
  const page = d.gdtFrames.indexOf(mfn);
  if (inGdt && page >= 0) {
    const index = page * 512 + ((paLo! & 0xfff) >>> 3);
    if (index < d.gdtEntries) d.gdt.write(index, desc[0], desc[1]);
  }
  return 0;
};

/** HYPERVISOR_vm_assist(cmd, type): the assists a 32-bit PV guest may turn on. */
export const vmAssist: HypercallHandler = (d, [cmd, type]) => {
  if (cmd !== VMASST_CMD_enable && cmd !== VMASST_CMD_disable) return EINVAL;
  const allowed: number[] = [VMASST_TYPE['4gb_segments'], VMASST_TYPE['4gb_segments_notify'], VMASST_TYPE.pae_extended_cr3, VMASST_TYPE.architectural_iopl, VMASST_TYPE.runstate_update_flag];
  // writable_pagetables (guest writes to its tables emulated) is not modelled; m2p_strict is 64-bit only.
  if (!allowed.includes(type!)) return EINVAL;
  if (cmd === VMASST_CMD_enable) d.vmAssist |= 1 << type!;
  else d.vmAssist &= ~(1 << type!);
  return 0;
};

/** HYPERVISOR_iret: jumped to through hypercall page slot 23 with the frame on the stack. */
export const iret: HypercallHandler = (d) => {
  d.iret();
  return null;
};

/** HYPERVISOR_physdev_op(cmd, arg): PHYSDEVOP_set_iopl {u32 iopl} only. */
export const physdevOp: HypercallHandler = (d, [cmd, arg]) => {
  if (cmd !== PHYSDEVOP_set_iopl) return ENOSYS;
  const iopl = d.gm.read32(arg!);
  if (iopl === null) return EFAULT;
  if (iopl > 3) return EINVAL;
  d.iopl = iopl;
  return 0;
};
