// The virtual IOPL (PHYSDEVOP_set_iopl, VMASST_TYPE_architectural_iopl) and what it lets a PV
// kernel or its user mode do, as Xen's iopl_ok and emulate_privileged_op (pv/emul-priv-op.c) and
// HYPERVISOR_iret (pv/iret.c) decide; the cases of XTF's pv-iopl test.
import { imm, mem, reg, type Assembler } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { GUEST_DATA, HYPERCALL_PAGE, bootPv, hypercall, saveEax } from './support/pv-guest';

const ARGS = GUEST_DATA + 0x2000;
const IRET_SLOT = HYPERCALL_PAGE + 23 * 32;
const setIopl = (a: Assembler, iopl: number): void => {
  a.asm('mov', mem({ disp: ARGS, size: 4 }), imm(iopl));
  hypercall(a, 33, 6, ARGS);
};

describe('pv: the virtual IOPL', () => {
  it('vIOPL 0: a kernel CLI is #GP for the guest (no trap table here: the domain crashes)', () => {
    const g = bootPv((a) => { a.asm('sti'); });
    expect(g.report.shutdown).toBe('crash');
    expect(g.report.detail).toMatch(/#GP \(error code 0x0\)/);
  });

  it('vIOPL 1: kernel CLI and STI set and clear evtchn_upcall_mask; OUT reaches the port (isa-debug-exit)', () => {
    const sti = bootPv((a) => { setIopl(a, 1); saveEax(a, 0); a.asm('sti'); });
    expect(sti.read32(GUEST_DATA)).toBe(0);
    expect(sti.report.detail).toBe('SCHEDOP_shutdown: SHUTDOWN_poweroff');
    expect(sti.domain.events.upcallMask).toBe(false); // the builder left it masked
    const cli = bootPv((a) => { setIopl(a, 1); a.asm('sti'); a.asm('cli'); });
    expect(cli.domain.events.upcallMask).toBe(true);
    const out = bootPv((a) => { setIopl(a, 1); a.asm('mov', reg('al'), imm(5)); a.asm('out', imm(0xf4), reg('al')); });
    expect(out.report.reason).toBe('exit');
    expect(out.report.exitStatus).toBe(11);
    expect(out.report.shutdown).toBeUndefined();
  });

  it('architectural_iopl: the kernel counts as ring 0 (CLI at vIOPL 0), and HYPERVISOR_iret sets the vIOPL from the frame', () => {
    const g = bootPv((a) => {
      hypercall(a, 21, 0, 4); saveEax(a, 0); // VMASST_CMD_enable, VMASST_TYPE_architectural_iopl
      a.asm('sti');
      const back = a.label();
      a.asm('push', imm(0x3202)); // EFLAGS: IF, IOPL 3
      a.asm('push', imm(0xe019));
      a.asm('push', imm(back));
      a.jmp(IRET_SLOT); // the slot pushes EAX, completing the frame
      a.bind(back);
    });
    expect(g.read32(GUEST_DATA)).toBe(0);
    expect(g.report.detail).toBe('SCHEDOP_shutdown: SHUTDOWN_poweroff');
    expect(g.domain.iopl).toBe(3);
    expect(g.domain.ioplOk(3)).toBe(true);
  });

  it('without architectural_iopl, HYPERVISOR_iret leaves the vIOPL alone; ring 3 needs vIOPL 3', () => {
    const g = bootPv((a) => {
      setIopl(a, 1);
      const back = a.label();
      a.asm('push', imm(0x3202));
      a.asm('push', imm(0xe019));
      a.asm('push', imm(back));
      a.jmp(IRET_SLOT); // the slot pushes EAX, completing the frame
      a.bind(back);
    });
    expect(g.report.detail).toBe('SCHEDOP_shutdown: SHUTDOWN_poweroff');
    expect(g.domain.iopl).toBe(1);
    expect([1, 3].map((cpl) => g.domain.ioplOk(cpl))).toEqual([true, false]);
  });
});
