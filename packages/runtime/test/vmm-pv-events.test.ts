// Traps and virtual interrupts in the pv backend: exceptions bounced to the trap table (Xen's
// bounce frame, CR2 in vcpu_info), software interrupts by the trap table's DPL, the event
// callback for VIRQ_TIMER only while evtchn_upcall_mask allows, HYPERVISOR_iret restoring the
// mask from the frame's IF, and returns to ring 3.
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { FLAT_RING1_CS, FLAT_RING3_CS, FLAT_RING3_DS, SHARED_INFO, VCPU_INFO } from '../src/vmm/pv/abi';
import { GUEST_DATA, HYPERCALL_PAGE, bootPv, hypercall, saveEax, shutdown } from './support/pv-guest';

/** Where the tests map shared_info in the guest (a page of the image's data area). */
const SHARED_VA = GUEST_DATA + 0x8000;
const TRAPS = GUEST_DATA + 0x1000;
const IRET_SLOT = HYPERCALL_PAGE + 23 * 32;

/** Maps shared_info at SHARED_VA: update_va_mapping(va, shared_info | P | RW | A, 0, UVMF_INVLPG); its machine address is in start_info (ESI). */
function mapSharedInfo(a: Assembler): void {
  a.asm('mov', reg('edx'), mem({ base: 'esi', disp: 0x24, size: 4 }));
  a.asm('or', reg('edx'), imm(0x23));
  a.asm('mov', reg('ecx'), reg('edx'));
  a.asm('mov', reg('ebx'), imm(SHARED_VA));
  a.asm('mov', reg('edx'), imm(0));
  a.asm('mov', reg('esi'), imm(2));
  a.call(HYPERCALL_PAGE + 14 * 32);
}

/** A trap table at TRAPS: [vector, flags, cs, address] entries, then the terminator. */
function trapTable(a: Assembler, entries: [number, number, number][]): void {
  entries.forEach(([vector, flags, addr], i) => {
    a.asm('mov', mem({ disp: TRAPS + i * 8, size: 4 }), imm((vector | (flags << 8) | (FLAT_RING1_CS << 16)) >>> 0));
    a.asm('mov', mem({ disp: TRAPS + i * 8 + 4, size: 4 }), imm(addr));
  });
  a.asm('mov', mem({ disp: TRAPS + entries.length * 8 + 4, size: 4 }), imm(0));
  hypercall(a, 0, TRAPS);
}

describe('pv: exceptions are bounced to the trap table', () => {
  it('#PF: error code and EIP on the kernel stack, the address in vcpu_info.arch.cr2 (M2P is read-only)', () => {
    const g = bootPv((a) => {
      const handler = a.label(), after = a.label(), fault = a.label();
      mapSharedInfo(a); saveEax(a, 10);
      a.asm('mov', reg('eax'), imm(0)); // handler address patched via label below
      trapTable(a, []);
      // Install via a label: write the table by hand with the handler's address.
      a.asm('mov', mem({ disp: TRAPS, size: 4 }), imm((14 | (FLAT_RING1_CS << 16)) >>> 0));
      a.asm('mov', mem({ disp: TRAPS + 4, size: 4 }), imm(handler));
      a.asm('mov', mem({ disp: TRAPS + 12, size: 4 }), imm(0));
      hypercall(a, 0, TRAPS); saveEax(a, 11);
      // A read of the M2P works: the entry of the guest's first frame is pfn 0.
      a.asm('mov', reg('eax'), mem({ disp: 0xf5800000 + 4 * 256, size: 4 })); saveEax(a, 12);
      a.bind(fault);
      a.asm('mov', mem({ disp: 0xf5800000, size: 4 }), imm(1)); // #PF: present, write
      a.bind(after);
      shutdown(a, 0);
      a.bind(handler);
      a.asm('pop', reg('eax')); saveEax(a, 0); // error code
      a.asm('pop', reg('eax')); saveEax(a, 1); // EIP
      a.asm('pop', reg('eax')); saveEax(a, 2); // CS | mask << 16
      a.asm('pop', reg('eax')); saveEax(a, 3); // EFLAGS
      a.asm('mov', reg('eax'), mem({ disp: SHARED_VA + VCPU_INFO.cr2, size: 4 })); saveEax(a, 4);
      a.jmp(after);
    });
    expect(g.report.exitStatus).toBe(1);
    expect(g.read32(GUEST_DATA + 40)).toBe(0);
    expect(g.read32(GUEST_DATA + 44)).toBe(0);
    expect(g.read32(GUEST_DATA + 48)).toBe(0);
    expect(g.read32(GUEST_DATA)).toBe(3); // P | W, supervisor
    expect(g.read32(GUEST_DATA + 8)).toBe(FLAT_RING1_CS | (1 << 16)); // events were masked at the fault
    expect(g.read32(GUEST_DATA + 12) & 0x200).toBe(0); // so the frame's IF is 0
    expect(g.read32(GUEST_DATA + 16)).toBe(0xf5800000);
    // The fault EIP is the faulting instruction: re-running it would fault again.
    expect(g.read32(GUEST_DATA + 4)).toBeGreaterThan(0xc0002000);
  });

  it('INT n needs a trap table DPL that allows the ring; else #GP(vector << 3 | 2)', () => {
    const g = bootPv((a) => {
      const h80 = a.label(), h81 = a.label(), gp = a.label(), back = a.label();
      a.asm('mov', mem({ disp: TRAPS, size: 4 }), imm((0x80 | (1 << 8) | (FLAT_RING1_CS << 16)) >>> 0)); // DPL 1
      a.asm('mov', mem({ disp: TRAPS + 4, size: 4 }), imm(h80));
      a.asm('mov', mem({ disp: TRAPS + 8, size: 4 }), imm((0x81 | (0 << 8) | (FLAT_RING1_CS << 16)) >>> 0)); // DPL 0: nobody may INT it
      a.asm('mov', mem({ disp: TRAPS + 12, size: 4 }), imm(h81));
      a.asm('mov', mem({ disp: TRAPS + 16, size: 4 }), imm((13 | (FLAT_RING1_CS << 16)) >>> 0));
      a.asm('mov', mem({ disp: TRAPS + 20, size: 4 }), imm(gp));
      a.asm('mov', mem({ disp: TRAPS + 28, size: 4 }), imm(0));
      hypercall(a, 0, TRAPS);
      a.asm('int', imm(0x80));
      a.asm('int', imm(0x81));
      a.bind(back);
      shutdown(a, 0);
      a.bind(h80);
      a.asm('mov', mem({ disp: GUEST_DATA, size: 4 }), imm(0x80));
      a.jmp(IRET_SLOT); // back after the INT 0x80
      a.bind(h81);
      a.asm('mov', mem({ disp: GUEST_DATA + 4, size: 4 }), imm(0x81));
      a.bind(gp);
      a.asm('pop', reg('eax')); saveEax(a, 2);
      a.jmp(back);
    });
    expect(g.report.reason).toBe('exit');
    expect(g.report.shutdown).toBe('poweroff');
    expect(g.read32(GUEST_DATA)).toBe(0x80);
    expect(g.read32(GUEST_DATA + 4)).toBe(0); // the DPL-0 entry never ran
    expect(g.read32(GUEST_DATA + 8)).toBe((0x81 << 3) | 2);
  });

  it('the event callback runs for VIRQ_TIMER only while events are unmasked; iret restores the mask', () => {
    const PORT = GUEST_DATA + 0x200, COUNT = GUEST_DATA + 0x204, MASK_IN_CB = GUEST_DATA + 0x208, PENDING_MASKED = GUEST_DATA + 0x20c;
    const g = bootPv((a) => {
      const cb = a.label(), spin = a.label(), done = a.label();
      mapSharedInfo(a);
      a.asm('mov', mem({ disp: PORT, size: 4 }), imm(0)); // bind_virq {virq 0, vcpu 0, port}
      a.asm('mov', mem({ disp: PORT + 4, size: 4 }), imm(0));
      hypercall(a, 32, 1, PORT); saveEax(a, 0);
      a.asm('mov', reg('eax'), mem({ disp: PORT + 8, size: 4 }));
      a.asm('mov', mem({ disp: PORT, size: 4 }), reg('eax'));
      a.asm('mov', reg('ebx'), imm(FLAT_RING1_CS)); a.asm('mov', reg('ecx'), imm(cb));
      a.asm('mov', reg('edx'), imm(FLAT_RING1_CS)); a.asm('mov', reg('esi'), imm(cb));
      a.call(HYPERCALL_PAGE + 4 * 32);
      hypercall(a, 24, 7, 0, 0); // VCPUOP_stop_periodic_timer
      // Events still masked (as at boot): a timer 1000 ns from now must not call back.
      a.asm('rdtsc');
      a.asm('add', reg('eax'), imm(1000)); a.asm('adc', reg('edx'), imm(0));
      a.asm('mov', reg('ebx'), reg('eax')); a.asm('mov', reg('ecx'), reg('edx'));
      a.call(HYPERCALL_PAGE + 15 * 32);
      a.asm('mov', reg('ecx'), imm(3000));
      a.bind(spin); a.asm('dec', reg('ecx')); a.jcc('nz', spin);
      a.asm('mov', reg('eax'), mem({ disp: COUNT, size: 4 }));
      a.asm('movzx', reg('ebx'), mem({ disp: SHARED_VA + VCPU_INFO.evtchn_upcall_pending, size: 1 }));
      a.asm('shl', reg('ebx'), imm(8)); a.asm('or', reg('eax'), reg('ebx'));
      a.asm('mov', mem({ disp: PENDING_MASKED, size: 4 }), reg('eax'));
      // Unmask: the pending event is delivered right away.
      a.asm('mov', mem({ disp: SHARED_VA + VCPU_INFO.evtchn_upcall_mask, size: 1 }), imm(0));
      a.asm('nop');
      a.asm('nop');
      // And a second one through SCHEDOP_block.
      a.asm('rdtsc');
      a.asm('add', reg('eax'), imm(50000)); a.asm('adc', reg('edx'), imm(0));
      a.asm('mov', reg('ebx'), reg('eax')); a.asm('mov', reg('ecx'), reg('edx'));
      a.call(HYPERCALL_PAGE + 15 * 32);
      hypercall(a, 29, 1, 0);
      a.bind(done);
      a.asm('movzx', reg('eax'), mem({ disp: SHARED_VA + VCPU_INFO.evtchn_upcall_mask, size: 1 })); saveEax(a, 1);
      shutdown(a, 0);
      // The callback: note the mask, clear the selector and the port's pending bit, count, return by HYPERVISOR_iret.
      a.bind(cb);
      a.asm('push', reg('ebx'));
      a.asm('movzx', reg('ebx'), mem({ disp: SHARED_VA + VCPU_INFO.evtchn_upcall_mask, size: 1 }));
      a.asm('mov', mem({ disp: MASK_IN_CB, size: 4 }), reg('ebx'));
      a.asm('mov', mem({ disp: SHARED_VA + VCPU_INFO.evtchn_upcall_pending, size: 1 }), imm(0));
      a.asm('mov', mem({ disp: SHARED_VA + VCPU_INFO.evtchn_pending_sel, size: 4 }), imm(0));
      a.asm('mov', mem({ disp: SHARED_VA + SHARED_INFO.evtchn_pending, size: 4 }), imm(0));
      a.asm('inc', mem({ disp: COUNT, size: 4 }));
      a.asm('pop', reg('ebx'));
      a.jmp(IRET_SLOT);
    }, { maxInstructions: 500_000 });
    expect(g.report.reason).toBe('exit');
    expect(g.read32(GUEST_DATA)).toBe(0); // bind_virq
    expect(g.read32(PORT)).toBeGreaterThan(0);
    expect(g.read32(PENDING_MASKED)).toBe(0x100); // count 0, upcall_pending 1 while masked
    expect(g.read32(COUNT)).toBe(2);
    expect(g.read32(MASK_IN_CB)).toBe(1); // masked during the callback
    expect(g.read32(GUEST_DATA + 4)).toBe(0); // iret restored mask = !IF = 0
    const upcalls = g.domain.accounting.stats().byReason['event upcall'];
    expect(upcalls).toBe(2);
  });

  it('Xen\'s default 100 Hz periodic timer wakes a blocked vCPU 10 ms in', () => {
    const g = bootPv((a) => {
      const cb = a.label();
      mapSharedInfo(a);
      a.asm('mov', mem({ disp: GUEST_DATA + 0x200, size: 4 }), imm(0));
      a.asm('mov', mem({ disp: GUEST_DATA + 0x204, size: 4 }), imm(0));
      hypercall(a, 32, 1, GUEST_DATA + 0x200);
      hypercall(a, 4, FLAT_RING1_CS, 0, FLAT_RING1_CS, 0);
      a.asm('mov', reg('ebx'), imm(FLAT_RING1_CS)); a.asm('mov', reg('ecx'), imm(cb));
      a.call(HYPERCALL_PAGE + 4 * 32);
      hypercall(a, 29, 1, 0);
      a.asm('rdtsc'); saveEax(a, 0);
      shutdown(a, 0);
      a.bind(cb);
      a.asm('mov', mem({ disp: SHARED_VA + VCPU_INFO.evtchn_upcall_pending, size: 1 }), imm(0));
      a.jmp(IRET_SLOT);
    });
    expect(g.report.reason).toBe('exit');
    const t = g.read32(GUEST_DATA);
    expect(t).toBeGreaterThanOrEqual(10_000_000);
    expect(t).toBeLessThan(10_100_000);
  });

  it('HYPERVISOR_iret to ring 3, INT 0x80 back through the trap table on the stack_switch stack', () => {
    const USER_VA = GUEST_DATA + 0x9000, KSTACK = GUEST_DATA + 0x7000;
    const g = bootPv((a) => {
      const sys = a.label(), userCode = a.label();
      // Map USER_VA user-accessible (P | RW | US | A) over the same frame: read its PTE's frame via the P2M.
      // Simpler: copy the user code there after mapping a fresh frame: the frame of GUEST_DATA + 0xa000.
      a.asm('mov', reg('eax'), mem({ base: 'esi', disp: 0x44, size: 4 })); // mfn_list
      a.asm('mov', reg('ecx'), mem({ base: 'eax', disp: ((GUEST_DATA + 0xa000 - 0xc0000000) >>> 12) * 4, size: 4 }));
      a.asm('shl', reg('ecx'), imm(12));
      a.asm('or', reg('ecx'), imm(0x27));
      a.asm('mov', reg('ebx'), imm(USER_VA)); a.asm('mov', reg('edx'), imm(0)); a.asm('mov', reg('esi'), imm(2));
      a.call(HYPERCALL_PAGE + 14 * 32); saveEax(a, 0);
      // User code: int 0x80 with EAX = 0x1234, then spin.
      [0xb8, 0x34, 0x12, 0, 0, 0xcd, 0x80, 0xeb, 0xfe].forEach((b, i) => a.asm('mov', mem({ disp: USER_VA + i, size: 1 }), imm(b)));
      a.asm('mov', mem({ disp: TRAPS, size: 4 }), imm((0x80 | (3 << 8) | (FLAT_RING1_CS << 16)) >>> 0));
      a.asm('mov', mem({ disp: TRAPS + 4, size: 4 }), imm(sys));
      a.asm('mov', mem({ disp: TRAPS + 12, size: 4 }), imm(0));
      hypercall(a, 0, TRAPS);
      hypercall(a, 3, 0xe021, KSTACK);
      // iret frame: EAX, EIP, CS, EFLAGS, ESP, SS (lowest first): push in reverse.
      a.asm('push', imm(FLAT_RING3_DS)); a.asm('push', imm(USER_VA + 0x800));
      a.asm('push', imm(0x202)); a.asm('push', imm(FLAT_RING3_CS)); a.asm('push', imm(USER_VA));
      a.asm('mov', reg('eax'), imm(0x5555));
      a.jmp(IRET_SLOT);
      a.bind(userCode);
      a.bind(sys);
      // Ring 3 ran with null DS/ES (IRET to an outer ring nulls ring-1 data segments): reload them.
      a.asm('mov', reg('ebx'), imm(0xe021)); a.asm('mov', reg('ds'), reg('bx')); a.asm('mov', reg('es'), reg('bx'));
      a.asm('mov', mem({ disp: GUEST_DATA + 4, size: 4 }), reg('eax'));
      a.asm('mov', mem({ disp: GUEST_DATA + 8, size: 4 }), reg('esp'));
      a.asm('mov', reg('eax'), mem({ base: 'esp', disp: 4, size: 4 })); saveEax(a, 3); // CS
      a.asm('mov', reg('eax'), mem({ base: 'esp', disp: 12, size: 4 })); saveEax(a, 4); // ESP
      a.asm('mov', reg('eax'), mem({ base: 'esp', disp: 16, size: 4 })); saveEax(a, 5); // SS
      shutdown(a, 0);
    });
    expect(g.report.reason).toBe('exit');
    expect(g.read32(GUEST_DATA)).toBe(0);
    expect(g.read32(GUEST_DATA + 4)).toBe(0x1234);
    expect(g.read32(GUEST_DATA + 8)).toBe(KSTACK - 20);
    expect(g.read32(GUEST_DATA + 12) & 0xffff).toBe(FLAT_RING3_CS);
    expect(g.read32(GUEST_DATA + 16)).toBe(USER_VA + 0x800);
    expect(g.read32(GUEST_DATA + 20)).toBe(FLAT_RING3_DS);
  });

  it('int 0x82 from ring 3 is #GP(0x82 << 3 | 2), not a hypercall', () => {
    const USER_VA = GUEST_DATA + 0x9000, KSTACK = GUEST_DATA + 0x7000;
    const g = bootPv((a) => {
      const gp = a.label();
      a.asm('mov', reg('eax'), mem({ base: 'esi', disp: 0x44, size: 4 }));
      a.asm('mov', reg('ecx'), mem({ base: 'eax', disp: ((GUEST_DATA + 0xa000 - 0xc0000000) >>> 12) * 4, size: 4 }));
      a.asm('shl', reg('ecx'), imm(12)); a.asm('or', reg('ecx'), imm(0x27));
      a.asm('mov', reg('ebx'), imm(USER_VA)); a.asm('mov', reg('edx'), imm(0)); a.asm('mov', reg('esi'), imm(2));
      a.call(HYPERCALL_PAGE + 14 * 32);
      // User code: mov eax, 29 (sched_op); int 0x82
      [0xb8, 29, 0, 0, 0, 0xcd, 0x82, 0xeb, 0xfe].forEach((b, i) => a.asm('mov', mem({ disp: USER_VA + i, size: 1 }), imm(b)));
      a.asm('mov', mem({ disp: TRAPS, size: 4 }), imm((13 | (FLAT_RING1_CS << 16)) >>> 0));
      a.asm('mov', mem({ disp: TRAPS + 4, size: 4 }), imm(gp));
      a.asm('mov', mem({ disp: TRAPS + 12, size: 4 }), imm(0));
      hypercall(a, 0, TRAPS);
      hypercall(a, 3, 0xe021, KSTACK);
      a.asm('push', imm(FLAT_RING3_DS)); a.asm('push', imm(USER_VA + 0x800));
      a.asm('push', imm(0x202)); a.asm('push', imm(FLAT_RING3_CS)); a.asm('push', imm(USER_VA));
      a.jmp(IRET_SLOT);
      a.bind(gp);
      a.asm('mov', reg('ebx'), imm(0xe021)); a.asm('mov', reg('ds'), reg('bx')); a.asm('mov', reg('es'), reg('bx'));
      a.asm('pop', reg('eax')); saveEax(a, 0);
      shutdown(a, 0);
    });
    expect(g.report.reason).toBe('exit');
    expect(g.report.shutdown).toBe('poweroff');
    expect(g.read32(GUEST_DATA)).toBe((0x82 << 3) | 2);
  });

  it('SCHEDOP_block ends the run when no event can arrive, and returns when one is pending without a callback', () => {
    // Nothing bound: the periodic timer fires into no port.
    const g = bootPv((a) => { hypercall(a, 29, 1, 0); });
    expect(g.report.reason).toBe('halt');
    expect(g.report.detail).toMatch(/VIRQ_TIMER is not bound/);
    // VIRQ_TIMER bound, no callback: the tick wakes the vCPU, block returns 0, the guest goes on.
    const g2 = bootPv((a) => {
      a.asm('mov', mem({ disp: GUEST_DATA + 0x200, size: 4 }), imm(0));
      a.asm('mov', mem({ disp: GUEST_DATA + 0x204, size: 4 }), imm(0));
      hypercall(a, 32, 1, GUEST_DATA + 0x200);
      hypercall(a, 29, 1, 0); saveEax(a, 0);
      a.asm('rdtsc'); saveEax(a, 1);
    });
    expect(g2.report.shutdown).toBe('poweroff');
    expect(g2.read32(GUEST_DATA)).toBe(0);
    expect(g2.read32(GUEST_DATA + 4)).toBeGreaterThanOrEqual(10_000_000);
  });
});
