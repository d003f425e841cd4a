// Privileged instructions of a PV kernel at CPL 1 that Xen emulates (pv/emul-priv-op.c: MOV CR,
// MOV DR, CLTS) and an iret inside a multicall (pv/hypercall.c pv_do_multicall_call, XSA-213):
// the cases of XTF's debug-regs and xsa-213 tests, checked against the values Xen gives.
import { imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { GUEST_DATA, bootPv, saveEax } from './support/pv-guest';

const ARGS = GUEST_DATA + 0x2000;

describe('pv: MOV CR, MOV DR and CLTS in the kernel are emulated as Xen does', () => {
  it('reads CR0, CR2, CR3 (the L3 frame, compat_pfn_to_cr3) and the guest CR4 view', () => {
    const g = bootPv((a) => {
      for (const [i, cr] of ['cr0', 'cr3', 'cr4'].entries()) { a.asm('mov', reg('eax'), reg(cr)); saveEax(a, i); }
      a.asm('mov', reg('eax'), imm(0x12345678)); a.asm('mov', reg('cr2'), reg('eax'));
      a.asm('mov', reg('eax'), imm(0)); a.asm('mov', reg('eax'), reg('cr2')); saveEax(a, 3);
    });
    expect(g.report.detail).toBe('SCHEDOP_shutdown: SHUTDOWN_poweroff');
    expect([0, 1, 2, 3].map((i) => g.read32(GUEST_DATA + 4 * i))).toEqual([0x80010033, g.boot.l3Mfn * 4096, 0x20, 0x12345678]);
  });

  it('CR0: only TS may change (MOV and CLTS); another bit is #GP; CR3 takes a valid L3', () => {
    const g = bootPv((a) => {
      a.asm('mov', reg('eax'), imm(0x80010033 | 8)); a.asm('mov', reg('cr0'), reg('eax'));
      a.asm('mov', reg('eax'), reg('cr0')); saveEax(a, 0);
      a.asm('clts');
      a.asm('mov', reg('eax'), reg('cr0')); saveEax(a, 1);
      a.asm('mov', reg('eax'), reg('cr3')); a.asm('mov', reg('cr3'), reg('eax')); saveEax(a, 2);
    });
    expect(g.report.detail).toBe('SCHEDOP_shutdown: SHUTDOWN_poweroff');
    expect([0, 1, 2].map((i) => g.read32(GUEST_DATA + 4 * i))).toEqual([0x8001003b, 0x80010033, g.boot.l3Mfn * 4096]);
    const wp = bootPv((a) => { a.asm('mov', reg('eax'), imm(0x80000033)); a.asm('mov', reg('cr0'), reg('eax')); });
    expect(wp.report.detail).toMatch(/domain crashed: unhandled exception #GP \(error code 0x0\)/);
  });

  it('debug registers: reset values, DR0 takes a kernel address, an address in the hypervisor hole is #GP', () => {
    const g = bootPv((a) => {
      a.asm('mov', reg('eax'), reg('dr6')); saveEax(a, 0);
      a.asm('mov', reg('eax'), reg('dr7')); saveEax(a, 1);
      a.asm('mov', reg('dr0'), reg('esp'));
      a.asm('mov', reg('eax'), reg('dr0')); saveEax(a, 2);
      a.asm('mov', reg('eax'), reg('esp')); saveEax(a, 3);
    });
    expect(g.report.detail).toBe('SCHEDOP_shutdown: SHUTDOWN_poweroff');
    expect(g.read32(GUEST_DATA)).toBe(0xffff0ff0);
    expect(g.read32(GUEST_DATA + 4)).toBe(0x400);
    expect(g.read32(GUEST_DATA + 8)).toBe(g.read32(GUEST_DATA + 12));
    const hole = bootPv((a) => { a.asm('mov', reg('eax'), imm(0xf5800000)); a.asm('mov', reg('dr1'), reg('eax')); });
    expect(hole.report.detail).toMatch(/#GP \(error code 0x0\)/);
  });

  it('counts each as an exit of its VT-x reason', () => {
    const g = bootPv((a) => { a.asm('mov', reg('eax'), reg('cr4')); a.asm('mov', reg('eax'), reg('dr7')); });
    const s = g.domain.accounting.stats();
    expect(s.byReason.CONTROL_REGISTER_ACCESS).toBe(1);
    expect(s.byReason.MOV_DR).toBe(1);
    expect(s.bySite.map((x) => x.text).filter((t) => t.startsWith('mov'))).toEqual(['mov eax, cr4', 'mov eax, dr7']);
  });
});

describe('pv: an iret inside a multicall', () => {
  it('performs the iret and ends the multicall: later entries do not run, EAX is the frame\'s (XSA-213)', () => {
    const g = bootPv((a) => {
      // entries: [iret], [xen_version(XENVER_version)]; results preset to 0x5555.
      const words = [23, 0x5555, 0, 0, 0, 0, 0, 0, 17, 0x5555, 0, 0, 0, 0, 0, 0];
      words.forEach((w, i) => a.asm('mov', mem({ disp: ARGS + 4 * i, size: 4 }), imm(w)));
      const back = a.label();
      a.asm('pushfd');
      a.asm('push', imm(0xe019));
      a.asm('push', imm(back));
      a.asm('push', imm(0xdead)); // EAX for the iret to restore
      a.asm('mov', reg('eax'), imm(13));
      a.asm('mov', reg('ebx'), imm(ARGS));
      a.asm('mov', reg('ecx'), imm(2));
      a.asm('int', imm(0x82));
      a.asm('mov', reg('eax'), imm(0xbad)); // not reached: the iret returns to `back`
      a.bind(back);
      saveEax(a, 0);
    });
    expect(g.report.detail).toBe('SCHEDOP_shutdown: SHUTDOWN_poweroff');
    expect(g.read32(GUEST_DATA)).toBe(0xdead);
    expect(g.read32(ARGS + 4)).toBe(0xdead);
    expect(g.read32(ARGS + 32 + 4)).toBe(0x5555);
  });
});
