// The hypercall table: number -> handler, with the public header that defines each (xen.h
// __HYPERVISOR_*). Numbers not listed return -ENOSYS, as Xen's table does for empty slots.
import { EFAULT, EINVAL, ENOSYS, HYPERVISOR, MULTICALL_ENTRY_SIZE } from '../abi';
import type { PvDomain } from '../domain';
import { callbackOp, fpuTaskswitch, iret, physdevOp, setCallbacks, setGdt, setTrapTable, stackSwitch, updateDescriptor, vmAssist } from './cpu-state';
import { eventChannelOp, schedOp, setTimerOp, vcpuOp } from './events';
import { consoleIo, grantTableOp, xenVersion } from './info';
import { memoryOp, mmuUpdate, mmuextOp, updateVaMapping } from './memory';
import { MAX_BATCH, type HypercallHandler } from './types';

export interface HypercallEntry {
  readonly nr: number;
  readonly name: keyof typeof HYPERVISOR;
  /** Where the hypercall and its structures are defined (xen/include/public/). */
  readonly header: string;
  readonly handler: HypercallHandler;
  /** False for hypercalls a multicall may not contain (they transfer control). */
  readonly inMulticall: boolean;
}

/**
 * HYPERVISOR_multicall(entries[], nr): each entry {op, result, args[6]} (32 bytes); results written
 * back. An iret entry performs the iret and ends the multicall there (pv/hypercall.c
 * pv_do_multicall_call: mc_exit, the XSA-213 fix): later entries do not run, and EAX is the
 * frame's, as after a plain HYPERVISOR_iret.
 */
const multicall: HypercallHandler = (d, [list, nr]) => {
  if (d.multicallDepth > 0) return ENOSYS;
  if (nr! > MAX_BATCH) return EINVAL;
  d.multicallDepth++;
  try {
    for (let i = 0; i < nr!; i++) {
      const at = (list! + i * MULTICALL_ENTRY_SIZE) >>> 0;
      const b = d.gm.readBytes(at, MULTICALL_ENTRY_SIZE);
      if (b === null || !d.gm.ok(at + 4, 4, true)) return EFAULT;
      const v = new DataView(b.buffer);
      const op = v.getUint32(0, true);
      const args = [0, 1, 2, 3, 4].map((k) => v.getUint32(8 + k * 4, true));
      if (op === HYPERVISOR.iret) {
        d.iret();
        d.gm.write32(at + 4, d.cpu.regs[0]!);
        return null;
      }
      const e = HYPERCALLS_BY_NR.get(op);
      const r = e === undefined || !e.inMulticall ? ENOSYS : e.handler(d, args);
      d.gm.write32(at + 4, r ?? 0);
      if (d.shutdownReason !== null || d.crashReason !== null) break;
    }
  } finally {
    d.multicallDepth--;
  }
  return 0;
};

export const HYPERCALLS: readonly HypercallEntry[] = [
  { nr: HYPERVISOR.set_trap_table, name: 'set_trap_table', header: 'arch-x86/xen.h (trap_info)', handler: setTrapTable, inMulticall: true },
  { nr: HYPERVISOR.mmu_update, name: 'mmu_update', header: 'xen.h (mmu_update_t, MMU_*)', handler: mmuUpdate, inMulticall: true },
  { nr: HYPERVISOR.set_gdt, name: 'set_gdt', header: 'xen.h', handler: setGdt, inMulticall: true },
  { nr: HYPERVISOR.stack_switch, name: 'stack_switch', header: 'xen.h', handler: stackSwitch, inMulticall: true },
  { nr: HYPERVISOR.set_callbacks, name: 'set_callbacks', header: 'xen.h, arch-x86/xen-x86_32.h', handler: setCallbacks, inMulticall: true },
  { nr: HYPERVISOR.fpu_taskswitch, name: 'fpu_taskswitch', header: 'xen.h', handler: fpuTaskswitch, inMulticall: true },
  { nr: HYPERVISOR.update_descriptor, name: 'update_descriptor', header: 'xen.h', handler: updateDescriptor, inMulticall: true },
  { nr: HYPERVISOR.memory_op, name: 'memory_op', header: 'memory.h (XENMEM_*)', handler: memoryOp, inMulticall: true },
  { nr: HYPERVISOR.multicall, name: 'multicall', header: 'xen.h (multicall_entry_t)', handler: multicall, inMulticall: false },
  { nr: HYPERVISOR.update_va_mapping, name: 'update_va_mapping', header: 'xen.h (UVMF_*)', handler: updateVaMapping, inMulticall: true },
  { nr: HYPERVISOR.set_timer_op, name: 'set_timer_op', header: 'xen.h', handler: setTimerOp, inMulticall: true },
  { nr: HYPERVISOR.xen_version, name: 'xen_version', header: 'version.h (XENVER_*)', handler: xenVersion, inMulticall: true },
  { nr: HYPERVISOR.console_io, name: 'console_io', header: 'xen.h (CONSOLEIO_*)', handler: consoleIo, inMulticall: true },
  { nr: HYPERVISOR.grant_table_op, name: 'grant_table_op', header: 'grant_table.h (GNTTABOP_*)', handler: grantTableOp, inMulticall: true },
  { nr: HYPERVISOR.vm_assist, name: 'vm_assist', header: 'xen.h (VMASST_*)', handler: vmAssist, inMulticall: true },
  { nr: HYPERVISOR.iret, name: 'iret', header: 'arch-x86/xen-x86_32.h (iret_context)', handler: iret, inMulticall: false },
  { nr: HYPERVISOR.vcpu_op, name: 'vcpu_op', header: 'vcpu.h (VCPUOP_*)', handler: vcpuOp, inMulticall: true },
  { nr: HYPERVISOR.mmuext_op, name: 'mmuext_op', header: 'xen.h (MMUEXT_*)', handler: mmuextOp, inMulticall: true },
  { nr: HYPERVISOR.sched_op, name: 'sched_op', header: 'sched.h (SCHEDOP_*)', handler: schedOp, inMulticall: true },
  { nr: HYPERVISOR.callback_op, name: 'callback_op', header: 'callback.h (CALLBACKOP_*)', handler: callbackOp, inMulticall: true },
  { nr: HYPERVISOR.event_channel_op, name: 'event_channel_op', header: 'event_channel.h (EVTCHNOP_*)', handler: eventChannelOp, inMulticall: true },
  { nr: HYPERVISOR.physdev_op, name: 'physdev_op', header: 'physdev.h (PHYSDEVOP_*)', handler: physdevOp, inMulticall: true },
];

export const HYPERCALLS_BY_NR: ReadonlyMap<number, HypercallEntry> = new Map(HYPERCALLS.map((e) => [e.nr, e]));

/** Runs hypercall `nr`; `record` is told its name first (for the exit accounting). */
export function dispatchHypercall(d: PvDomain, nr: number, args: readonly number[], record: (name: string) => void): number | null {
  const e = HYPERCALLS_BY_NR.get(nr);
  record(e === undefined ? `unknown ${nr}` : e.name);
  return e === undefined ? ENOSYS : e.handler(d, args);
}
