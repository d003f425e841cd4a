// Event channels, 2-level ABI (event_channel.h, xen/common/event_2l.c): per port a pending and a
// mask bit in shared_info, a selector bit per pending word in vcpu_info.evtchn_pending_sel, and
// vcpu_info.evtchn_upcall_pending, which the monitor turns into a call of the guest's event
// callback while vcpu_info.evtchn_upcall_mask (the virtual IF, inverted) is 0.
import type { PhysicalMemory } from '../../machine/memory';
import { EVTCHNSTAT, NR_EVENT_CHANNELS, NR_VIRQS, SHARED_INFO, VCPU_INFO } from './abi';

export type PortState =
  | { kind: typeof EVTCHNSTAT.closed }
  | { kind: typeof EVTCHNSTAT.unbound; remoteDom: number }
  /** A port to a backend in another domain; here the monitor plays the backend (`service`). */
  | { kind: typeof EVTCHNSTAT.interdomain; service: 'console' | 'store' }
  | { kind: typeof EVTCHNSTAT.virq; virq: number };

export class EventChannels {
  readonly ports: PortState[] = [];
  /** Port bound to each VIRQ, or 0. */
  readonly virqPort = new Int32Array(NR_VIRQS);

  constructor(private readonly mem: PhysicalMemory, private readonly sharedInfo: number) {
    for (let p = 0; p < NR_EVENT_CHANNELS; p++) this.ports.push({ kind: EVTCHNSTAT.closed });
  }

  /** The lowest closed port above 0 (port 0 is never allocated: evtchn_init reserves it), or -1. */
  allocate(state: PortState): number {
    for (let p = 1; p < NR_EVENT_CHANNELS; p++) {
      if (this.ports[p]!.kind === EVTCHNSTAT.closed) {
        this.ports[p] = state;
        return p;
      }
    }
    return -1;
  }

  close(port: number): void {
    const s = this.ports[port]!;
    if (s.kind === EVTCHNSTAT.virq) this.virqPort[s.virq] = 0;
    this.ports[port] = { kind: EVTCHNSTAT.closed };
    // evtchn_close leaves the pending bit as it is; the guest clears it.
  }

  private bit(base: number, port: number): [number, number] {
    return [this.sharedInfo + base + (port >>> 5) * 4, 1 << (port & 31)];
  }

  isPending(port: number): boolean {
    const [a, b] = this.bit(SHARED_INFO.evtchn_pending, port);
    return (this.mem.read32(a) & b) !== 0;
  }

  isMasked(port: number): boolean {
    const [a, b] = this.bit(SHARED_INFO.evtchn_mask, port);
    return (this.mem.read32(a) & b) !== 0;
  }

  /** evtchn_2l_set_pending: pending bit, then (unmasked) the selector bit and upcall_pending. */
  setPending(port: number): void {
    const [a, b] = this.bit(SHARED_INFO.evtchn_pending, port);
    const w = this.mem.read32(a);
    if ((w & b) !== 0) return;
    this.mem.write32(a, w | b);
    if (!this.isMasked(port)) this.markSelector(port);
  }

  /** evtchn_2l_unmask: clears the mask and re-raises a pending event. */
  unmask(port: number): void {
    const [a, b] = this.bit(SHARED_INFO.evtchn_mask, port);
    this.mem.write32(a, this.mem.read32(a) & ~b);
    if (this.isPending(port)) this.markSelector(port);
  }

  private markSelector(port: number): void {
    const vi = this.sharedInfo + SHARED_INFO.vcpu_info;
    const sel = vi + VCPU_INFO.evtchn_pending_sel;
    const word = 1 << (port >>> 5);
    const s = this.mem.read32(sel);
    if ((s & word) !== 0) return;
    this.mem.write32(sel, s | word);
    this.mem.write8(vi + VCPU_INFO.evtchn_upcall_pending, 1);
  }

  /** Raises the port bound to `virq`, if any (send_guest_vcpu_virq). */
  raiseVirq(virq: number): void {
    const p = this.virqPort[virq]!;
    if (p > 0) this.setPending(p);
  }

  get upcallPending(): boolean {
    return this.mem.read8(this.sharedInfo + SHARED_INFO.vcpu_info + VCPU_INFO.evtchn_upcall_pending) !== 0;
  }

  get upcallMask(): boolean {
    return this.mem.read8(this.sharedInfo + SHARED_INFO.vcpu_info + VCPU_INFO.evtchn_upcall_mask) !== 0;
  }

  set upcallMask(on: boolean) {
    this.mem.write8(this.sharedInfo + SHARED_INFO.vcpu_info + VCPU_INFO.evtchn_upcall_mask, on ? 1 : 0);
  }
}
