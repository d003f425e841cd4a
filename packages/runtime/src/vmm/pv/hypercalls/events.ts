// Event channels, timers and the scheduler (event_channel.h, sched.h, vcpu.h, xen.h set_timer_op).
import {
  DOMID_SELF, EEXIST, EFAULT, EINVAL, ENOENT, ENOSPC, ENOSYS, ESRCH, EVTCHNOP, EVTCHNSTAT, NR_EVENT_CHANNELS,
  NR_VIRQS, SCHEDOP, SHUTDOWN, VCPUOP,
} from '../abi';
import type { HypercallHandler } from './types';

/** -ETIME (errno.h 62): VCPUOP_set_singleshot_timer with VCPU_SSHOTTMR_future and a past deadline. */
const ETIME = -62;
const VCPU_SSHOTTMR_future = 1;

function validPort(port: number): boolean {
  return port > 0 && port < NR_EVENT_CHANNELS;
}

/** HYPERVISOR_event_channel_op(cmd, arg). */
export const eventChannelOp: HypercallHandler = (d, [cmd, arg]) => {
  const gm = d.gm, ev = d.events;
  switch (cmd) {
    case EVTCHNOP.bind_virq: {
      // evtchn_bind_virq {u32 virq, u32 vcpu, OUT u32 port}
      const virq = gm.read32(arg!), vcpu = gm.read32((arg! + 4) >>> 0);
      if (virq === null || vcpu === null || !gm.ok((arg! + 8) >>> 0, 4, true)) return EFAULT;
      if (virq >= NR_VIRQS) return EINVAL;
      if (vcpu !== 0) return ENOENT;
      if (ev.virqPort[virq] !== 0) return EEXIST;
      const port = ev.allocate({ kind: EVTCHNSTAT.virq, virq });
      if (port < 0) return ENOSPC;
      ev.virqPort[virq] = port;
      gm.write32((arg! + 8) >>> 0, port);
      return 0;
    }
    case EVTCHNOP.alloc_unbound: {
      // evtchn_alloc_unbound {u16 dom, u16 remote_dom, OUT u32 port}
      const dom = gm.read16(arg!), remote = gm.read16((arg! + 2) >>> 0);
      if (dom === null || remote === null || !gm.ok((arg! + 4) >>> 0, 4, true)) return EFAULT;
      if (dom !== DOMID_SELF && dom !== 0) return ESRCH;
      const port = ev.allocate({ kind: EVTCHNSTAT.unbound, remoteDom: remote });
      if (port < 0) return ENOSPC;
      gm.write32((arg! + 4) >>> 0, port);
      return 0;
    }
    case EVTCHNOP.close: case EVTCHNOP.send: case EVTCHNOP.unmask: {
      const port = gm.read32(arg!);
      if (port === null) return EFAULT;
      if (!validPort(port)) return EINVAL;
      const s = ev.ports[port]!;
      if (cmd === EVTCHNOP.unmask) { ev.unmask(port); return 0; }
      if (s.kind === EVTCHNSTAT.closed) return EINVAL;
      if (cmd === EVTCHNOP.close) {
        if (port === d.consolePort) d.consolePort = 0;
        ev.close(port);
        return 0;
      }
      // evtchn_send: interdomain -> the other end (here the monitor's backend); unbound -> nothing;
      // VIRQ ports cannot be sent on.
      if (s.kind === EVTCHNSTAT.interdomain) d.notifyBackend(s.service, port);
      else if (s.kind === EVTCHNSTAT.virq) return EINVAL;
      return 0;
    }
    case EVTCHNOP.status: {
      // evtchn_status {u16 dom, u32 port, OUT u32 status, OUT u32 vcpu, OUT union u (8)}
      const dom = gm.read16(arg!), port = gm.read32((arg! + 4) >>> 0);
      if (dom === null || port === null || !gm.ok((arg! + 8) >>> 0, 16, true)) return EFAULT;
      if (dom !== DOMID_SELF && dom !== 0) return ESRCH;
      if (port >= NR_EVENT_CHANNELS) return EINVAL;
      const s = ev.ports[port]!;
      gm.write32((arg! + 8) >>> 0, s.kind);
      gm.write32((arg! + 12) >>> 0, 0);
      gm.write32((arg! + 16) >>> 0, s.kind === EVTCHNSTAT.virq ? s.virq : s.kind === EVTCHNSTAT.unbound ? s.remoteDom : 0);
      gm.write32((arg! + 20) >>> 0, 0);
      return 0;
    }
    default: return ENOSYS;
  }
};

/** HYPERVISOR_set_timer_op(lo, hi): single-shot VIRQ_TIMER at absolute system time (ns); 0 stops it. */
export const setTimerOp: HypercallHandler = (d, [lo, hi]) => {
  const ns = hi! * 0x100000000 + lo!;
  if (ns === 0) d.singleshotNs = -1;
  else if (ns <= d.nowNs()) {
    d.singleshotNs = -1;
    d.events.raiseVirq(0);
  } else d.singleshotNs = ns;
  d.kick();
  return 0;
};

/** HYPERVISOR_sched_op(cmd, arg). */
export const schedOp: HypercallHandler = (d, [cmd, arg]) => {
  switch (cmd) {
    case SCHEDOP.yield: return 0;
    case SCHEDOP.block:
      // Re-enables events, then sleeps unless one is already pending (do_block).
      d.events.upcallMask = false;
      if (!d.events.upcallPending) d.cpu.halted = true;
      return 0;
    case SCHEDOP.shutdown: case SCHEDOP.shutdown_code: {
      const reason = d.gm.read32(arg!);
      if (reason === null) return EFAULT;
      if (reason > SHUTDOWN.soft_reset) return EINVAL;
      if (cmd === SCHEDOP.shutdown_code) { d.shutdownCode = reason; return 0; }
      d.shutdownReason = reason;
      d.kick();
      return null;
    }
    default: return ENOSYS;
  }
};

/** HYPERVISOR_vcpu_op(cmd, vcpuid, arg): vCPU 0's state and timers. */
export const vcpuOp: HypercallHandler = (d, [cmd, vcpu, arg]) => {
  if (vcpu !== 0) return ENOENT;
  const gm = d.gm;
  switch (cmd) {
    case VCPUOP.is_up: return 1;
    case VCPUOP.up: case VCPUOP.down: return EINVAL; // vCPU 0 is running; bringing it down is not modelled
    case VCPUOP.set_periodic_timer: {
      const lo = gm.read32(arg!), hi = gm.read32((arg! + 4) >>> 0);
      if (lo === null || hi === null) return EFAULT;
      const period = hi * 0x100000000 + lo;
      if (period < 1_000_000) return EINVAL; // at least 1 ms (vcpu.h, common/domain.c)
      d.periodicNs = period;
      d.nextPeriodicNs = d.nowNs() + period;
      d.kick();
      return 0;
    }
    case VCPUOP.stop_periodic_timer: d.periodicNs = 0; return 0;
    case VCPUOP.set_singleshot_timer: {
      // vcpu_set_singleshot_timer {u64 timeout_abs_ns, u32 flags}
      const b = gm.readBytes(arg!, 12);
      if (b === null) return EFAULT;
      const v = new DataView(b.buffer);
      const ns = v.getUint32(4, true) * 0x100000000 + v.getUint32(0, true);
      if ((v.getUint32(8, true) & VCPU_SSHOTTMR_future) !== 0 && ns < d.nowNs()) return ETIME;
      d.singleshotNs = ns <= d.nowNs() ? -1 : ns;
      if (ns <= d.nowNs()) d.events.raiseVirq(0);
      d.kick();
      return 0;
    }
    case VCPUOP.stop_singleshot_timer: d.singleshotNs = -1; return 0;
    case VCPUOP.get_runstate_info: {
      // vcpu_runstate_info {int state; u64 state_entry_time; u64 time[4]} (i386 packing: 44 bytes); running = 0.
      const b = new Uint8Array(44);
      const v = new DataView(b.buffer);
      const now = d.nowNs();
      v.setUint32(12, now >>> 0, true);
      v.setUint32(16, Math.floor(now / 0x100000000), true);
      return gm.writeBytes(arg!, b) ? 0 : EFAULT;
    }
    default: return ENOSYS;
  }
};
