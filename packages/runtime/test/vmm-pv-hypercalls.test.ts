// Each hypercall's success and error paths, issued by a guest (int 0x82 through the hypercall
// page), with Xen's errno values (errno.h): the results are stored by the guest and checked here.
import { Assembler, imm, mem } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { HYPERCALLS } from '../src/vmm/pv/hypercalls/table';
import { GUEST_DATA, VIRT_BASE, bootPv, hypercall, saveEax } from './support/pv-guest';

const EPERM = -1, ESRCH = -3, EFAULT = -14, EINVAL = -22, ENOENT = -2, ENOSYS = -38;
const ARGS = GUEST_DATA + 0x2000;
const UNMAPPED = 0x1000; // below VIRT_BASE: no L2 there

/** Writes dwords at va. */
function store(a: Assembler, va: number, words: number[]): void {
  words.forEach((w, i) => a.asm('mov', mem({ disp: va + i * 4, size: 4 }), imm(w >>> 0)));
}

// The layout is the same for every test guest (the image's extent is fixed), so a first boot tells the frames.
const probe = bootPv(() => {});
const L = probe.boot.layout;
const l3Mfn = probe.boot.l3Mfn;
const mfnOfVa = (va: number): number => L.firstGuestMfn + ((va - VIRT_BASE) >>> 12);
const MONITOR_MFN = L.gdtMfn; // a frame the guest does not own

interface Case { name: string; expect: number; emit: (a: Assembler) => void }

const CASES: Case[] = [
  { name: 'unknown hypercall 99', expect: ENOSYS, emit: (a) => hypercall(a, 99) },
  { name: 'set_trap_table: unreadable list', expect: EFAULT, emit: (a) => hypercall(a, 0, UNMAPPED) },
  { name: 'set_trap_table(NULL) clears', expect: 0, emit: (a) => hypercall(a, 0, 0) },
  { name: 'update_va_mapping: a frame the guest does not own', expect: EINVAL, emit: (a) => hypercall(a, 14, GUEST_DATA + 0x9000, (MONITOR_MFN << 12) | 3, 0, 0) },
  { name: 'update_va_mapping: a page table writable', expect: EINVAL, emit: (a) => hypercall(a, 14, GUEST_DATA + 0x9000, (l3Mfn << 12) | 3, 0, 0) },
  { name: 'update_va_mapping: a page table read-only is fine', expect: 0, emit: (a) => hypercall(a, 14, GUEST_DATA + 0x9000, (l3Mfn << 12) | 1, 0, 0) },
  { name: 'update_va_mapping: inside the hypervisor hole', expect: EINVAL, emit: (a) => hypercall(a, 14, 0xf5800000, (mfnOfVa(GUEST_DATA) << 12) | 1, 0, 0) },
  { name: 'update_va_mapping: no L1 for the address', expect: EINVAL, emit: (a) => hypercall(a, 14, UNMAPPED, (mfnOfVa(GUEST_DATA) << 12) | 1, 0, 0) },
  { name: 'update_va_mapping: bits above 31 (NX/reserved)', expect: EINVAL, emit: (a) => hypercall(a, 14, GUEST_DATA + 0x9000, (mfnOfVa(GUEST_DATA) << 12) | 1, 0x80000000, 0) },
  { name: 'mmuext_op PIN_L1 of a frame mapped writable', expect: EINVAL, emit: (a) => { store(a, ARGS, [0, mfnOfVa(GUEST_DATA + 0xa000), 0]); hypercall(a, 26, ARGS, 1, 0, 0x7ff0); } },
  { name: 'mmuext_op NEW_BASEPTR of a frame not owned', expect: EINVAL, emit: (a) => { store(a, ARGS, [5, MONITOR_MFN, 0]); hypercall(a, 26, ARGS, 1, 0, 0x7ff0); } },
  { name: 'mmuext_op UNPIN of a frame not pinned', expect: EINVAL, emit: (a) => { store(a, ARGS, [4, mfnOfVa(GUEST_DATA), 0]); hypercall(a, 26, ARGS, 1, 0, 0x7ff0); } },
  { name: 'mmuext_op unknown command', expect: ENOSYS, emit: (a) => { store(a, ARGS, [99, 0, 0]); hypercall(a, 26, ARGS, 1, 0, 0x7ff0); } },
  { name: 'mmuext_op TLB_FLUSH_LOCAL', expect: 0, emit: (a) => { store(a, ARGS, [6, 0, 0]); hypercall(a, 26, ARGS, 1, 0, 0x7ff0); } },
  { name: 'mmu_update: another domain', expect: ESRCH, emit: (a) => hypercall(a, 1, ARGS, 1, 0, 5) },
  { name: 'mmu_update: unreadable requests', expect: EFAULT, emit: (a) => hypercall(a, 1, UNMAPPED, 1, 0, 0x7ff0) },
  { name: 'mmu_update: a PTE in a frame not owned', expect: EINVAL, emit: (a) => { store(a, ARGS, [MONITOR_MFN << 12, 0, 0, 0]); hypercall(a, 1, ARGS, 1, 0, 0x7ff0); } },
  { name: 'mmu_update: the L3 entry of a frame not owned', expect: EINVAL, emit: (a) => { store(a, ARGS, [l3Mfn << 12, 0, (MONITOR_MFN << 12) | 1, 0]); hypercall(a, 1, ARGS, 1, 0, 0x7ff0); } },
  { name: 'mmu_update: MACHPHYS_UPDATE of an owned frame', expect: 0, emit: (a) => { store(a, ARGS, [(mfnOfVa(GUEST_DATA) << 12) | 1, 0, (GUEST_DATA - VIRT_BASE) >>> 12, 0]); hypercall(a, 1, ARGS, 1, 0, 0x7ff0); } },
  { name: 'set_gdt: more entries than the guest owns', expect: EINVAL, emit: (a) => hypercall(a, 2, ARGS, 7169) },
  { name: 'set_gdt: a frame mapped writable', expect: EINVAL, emit: (a) => { store(a, ARGS, [mfnOfVa(GUEST_DATA + 0xb000)]); hypercall(a, 2, ARGS, 16); } },
  { name: 'stack_switch', expect: 0, emit: (a) => hypercall(a, 3, 0xe021, GUEST_DATA + 0x7000) },
  { name: 'fpu_taskswitch', expect: 0, emit: (a) => hypercall(a, 5, 1) },
  { name: 'update_descriptor: address above 4 GiB', expect: EINVAL, emit: (a) => hypercall(a, 10, 0, 1, 0, 0) },
  { name: 'update_descriptor: a page table frame', expect: EINVAL, emit: (a) => hypercall(a, 10, l3Mfn << 12, 0, 0xffff, 0x00cf9a00) },
  { name: 'update_descriptor: a call gate', expect: EINVAL, emit: (a) => hypercall(a, 10, mfnOfVa(GUEST_DATA + 0xc000) << 12, 0, 0xe0190000, 0x0000ec00) },
  { name: 'update_descriptor: a code segment in a free frame', expect: 0, emit: (a) => hypercall(a, 10, mfnOfVa(GUEST_DATA + 0xc000) << 12, 0, 0xffff, 0x00cf9a00) },
  { name: 'memory_op unknown', expect: ENOSYS, emit: (a) => hypercall(a, 12, 99, 0) },
  { name: 'memory_op current_reservation', expect: L.nrPages, emit: (a) => { store(a, ARGS, [0x7ff0]); hypercall(a, 12, 3, ARGS); } },
  { name: 'memory_op current_reservation of another domain', expect: ESRCH, emit: (a) => { store(a, ARGS, [7]); hypercall(a, 12, 3, ARGS); } },
  { name: 'memory_op memory_map', expect: 0, emit: (a) => { store(a, ARGS, [4, ARGS + 16]); hypercall(a, 12, 9, ARGS); } },
  { name: 'xen_version', expect: (4 << 16) | 19, emit: (a) => hypercall(a, 17, 0, 0) },
  { name: 'xen_version compile_info', expect: 0, emit: (a) => hypercall(a, 17, 2, ARGS) },
  { name: 'xen_version compile_info into an unwritable buffer', expect: EFAULT, emit: (a) => hypercall(a, 17, 2, UNMAPPED) },
  { name: 'xen_version unknown', expect: ENOSYS, emit: (a) => hypercall(a, 17, 99, 0) },
  { name: 'xen_version capabilities into an unwritable buffer', expect: EFAULT, emit: (a) => hypercall(a, 17, 3, UNMAPPED) },
  { name: 'console_io unknown', expect: ENOSYS, emit: (a) => hypercall(a, 18, 99, 0, 0) },
  { name: 'console_io write from an unreadable buffer', expect: EFAULT, emit: (a) => hypercall(a, 18, 0, 4, UNMAPPED) },
  { name: 'grant_table_op set_version', expect: ENOSYS, emit: (a) => hypercall(a, 20, 8, ARGS, 1) },
  { name: 'grant_table_op query_size', expect: 0, emit: (a) => { store(a, ARGS, [0x7ff0, 0, 0, 0]); hypercall(a, 20, 6, ARGS, 1); } },
  { name: 'vm_assist writable_pagetables', expect: EINVAL, emit: (a) => hypercall(a, 21, 0, 2) },
  { name: 'vm_assist pae_extended_cr3', expect: 0, emit: (a) => hypercall(a, 21, 0, 3) },
  { name: 'vm_assist bad command', expect: EINVAL, emit: (a) => hypercall(a, 21, 7, 3) },
  { name: 'vcpu_op on vCPU 1', expect: ENOENT, emit: (a) => hypercall(a, 24, 3, 1, 0) },
  { name: 'vcpu_op is_up', expect: 1, emit: (a) => hypercall(a, 24, 3, 0, 0) },
  { name: 'vcpu_op set_periodic_timer below 1 ms', expect: EINVAL, emit: (a) => { store(a, ARGS, [1000, 0]); hypercall(a, 24, 6, 0, ARGS); } },
  { name: 'sched_op yield', expect: 0, emit: (a) => hypercall(a, 29, 0, 0) },
  { name: 'sched_op unknown', expect: ENOSYS, emit: (a) => hypercall(a, 29, 99, 0) },
  { name: 'sched_op shutdown with an unreadable argument', expect: EFAULT, emit: (a) => hypercall(a, 29, 2, UNMAPPED) },
  { name: 'callback_op register from an unreadable argument', expect: EFAULT, emit: (a) => hypercall(a, 30, 0, UNMAPPED) },
  { name: 'callback_op unregister the event callback', expect: EINVAL, emit: (a) => { store(a, ARGS, [0]); hypercall(a, 30, 1, ARGS); } },
  // pv/callback.c, compat path: syscall32 and sysenter are accepted; syscall (64-bit only) and unknown types -ENOSYS.
  { name: 'callback_op register syscall32', expect: 0, emit: (a) => { store(a, ARGS, [7 | (1 << 16), 0xe019, 0xc0002100]); hypercall(a, 30, 0, ARGS); } },
  { name: 'callback_op register sysenter', expect: 0, emit: (a) => { store(a, ARGS, [5, 0xe019, 0xc0002200]); hypercall(a, 30, 0, ARGS); } },
  { name: 'callback_op register syscall (64-bit only)', expect: ENOSYS, emit: (a) => { store(a, ARGS, [2, 0xe019, 0xc0002200]); hypercall(a, 30, 0, ARGS); } },
  { name: 'callback_op register type 99', expect: ENOSYS, emit: (a) => { store(a, ARGS, [99, 0xe019, 0xc0002200]); hypercall(a, 30, 0, ARGS); } },
  { name: 'callback_op unregister sysenter', expect: EINVAL, emit: (a) => { store(a, ARGS, [5]); hypercall(a, 30, 1, ARGS); } },
  { name: 'callback_op unregister syscall', expect: ENOSYS, emit: (a) => { store(a, ARGS, [2]); hypercall(a, 30, 1, ARGS); } },
  { name: 'callback_op unregister NMI', expect: 0, emit: (a) => { store(a, ARGS, [4]); hypercall(a, 30, 1, ARGS); } },
  { name: 'callback_op unknown command', expect: EINVAL, emit: (a) => hypercall(a, 30, 9, ARGS) },
  { name: 'event_channel_op bind_virq of VIRQ 99', expect: EINVAL, emit: (a) => { store(a, ARGS, [99, 0, 0]); hypercall(a, 32, 1, ARGS); } },
  { name: 'event_channel_op bind_virq twice', expect: -17, emit: (a) => { store(a, ARGS, [0, 0, 0]); hypercall(a, 32, 1, ARGS); hypercall(a, 32, 1, ARGS); } },
  { name: 'event_channel_op send on port 0', expect: EINVAL, emit: (a) => { store(a, ARGS, [0]); hypercall(a, 32, 4, ARGS); } },
  { name: 'event_channel_op send on a VIRQ port', expect: EINVAL, emit: (a) => { store(a, ARGS, [1]); hypercall(a, 32, 4, ARGS); } },
  { name: 'event_channel_op unmask', expect: 0, emit: (a) => { store(a, ARGS, [1]); hypercall(a, 32, 9, ARGS); } },
  { name: 'event_channel_op unknown', expect: ENOSYS, emit: (a) => hypercall(a, 32, 99, ARGS) },
  { name: 'physdev_op set_iopl 4', expect: EINVAL, emit: (a) => { store(a, ARGS, [4]); hypercall(a, 33, 6, ARGS); } },
  { name: 'physdev_op set_iopl 1', expect: 0, emit: (a) => { store(a, ARGS, [1]); hypercall(a, 33, 6, ARGS); } },
  { name: 'physdev_op unknown', expect: ENOSYS, emit: (a) => hypercall(a, 33, 99, ARGS) },
  { name: 'set_timer_op stop', expect: 0, emit: (a) => hypercall(a, 15, 0, 0) },
  { name: 'multicall', expect: 0, emit: (a) => { store(a, ARGS, [17, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0]); hypercall(a, 13, ARGS, 2); } },
];

describe('pv hypercalls: success and error paths (initial domain)', () => {
  const g = bootPv((a) => CASES.forEach((c, i) => { c.emit(a); saveEax(a, 64 + i); }), { maxInstructions: 1_000_000 });
  it('the guest ran every case and powered off', () => {
    expect(g.report.detail).toBe('SCHEDOP_shutdown: SHUTDOWN_poweroff');
  });
  for (const [i, c] of CASES.entries()) {
    it(`${c.name}: ${c.expect}`, () => expect(g.read32(GUEST_DATA + 4 * (64 + i)) | 0).toBe(c.expect));
  }
  it('multicall wrote each entry\'s result', () => {
    expect(g.read32(ARGS + 4)).toBe((4 << 16) | 19);
    expect(g.read32(ARGS + 32 + 4) | 0).toBe(ENOSYS);
  });
  it('counts each hypercall as an exit named after it', () => {
    const s = g.domain.accounting.stats();
    // One exit per transfer to the monitor: a multicall is one, whatever it carries.
    expect(s.byReason['hypercall xen_version']).toBe(5);
    expect(s.byReason['hypercall multicall']).toBe(1);
    expect(s.byReason['hypercall unknown 99']).toBe(1);
  });
});

describe('pv hypercalls: callback_op records syscall32 and sysenter as Xen does', () => {
  it('keeps CS (RPL 0 made 1), EIP and CALLBACKF_mask_events of each; a later registration replaces it', () => {
    const g = bootPv((a) => {
      store(a, ARGS, [7 | (1 << 16), 0xe018, 0xc0002100]); hypercall(a, 30, 0, ARGS); saveEax(a, 0);
      store(a, ARGS, [5, 0xe019, 0xc0002200]); hypercall(a, 30, 0, ARGS); saveEax(a, 1);
      store(a, ARGS, [5 | (1 << 16), 0xe019, 0xc0002300]); hypercall(a, 30, 0, ARGS); saveEax(a, 2);
      store(a, ARGS, [1 | (1 << 16), 0xe018, 0xc0002400]); hypercall(a, 30, 0, ARGS); saveEax(a, 3);
    });
    expect([0, 1, 2, 3].map((i) => g.read32(GUEST_DATA + 4 * i))).toEqual([0, 0, 0, 0]);
    expect(g.domain.syscall32Callback).toEqual({ cs: 0xe019, eip: 0xc0002100, masksEvents: true });
    expect(g.domain.sysenterCallback).toEqual({ cs: 0xe019, eip: 0xc0002300, masksEvents: true });
    expect(g.domain.failsafeCallback).toEqual({ cs: 0xe019, eip: 0xc0002400 });
    expect(g.domain.failsafeMasksEvents).toBe(true);
  });
});

describe('pv hypercalls: XENVER_compile_info', () => {
  it('fills xen_compile_info (144 bytes), each field NUL-terminated and zero after, for a domU too (XSA-122)', () => {
    const g = bootPv((a) => { store(a, ARGS, Array<number>(40).fill(0xa5a5a5a5)); hypercall(a, 17, 2, ARGS); saveEax(a, 0); }, { initialDomain: false });
    expect(g.read32(GUEST_DATA)).toBe(0);
    const bytes = Array.from({ length: 160 }, (_, i) => (g.read32(ARGS + (i & ~3)) >>> ((i & 3) * 8)) & 0xff);
    let at = 0;
    for (const len of [64, 16, 32, 32]) {
      const field = bytes.slice(at, at + len);
      const nul = field.indexOf(0);
      expect(nul).toBeGreaterThanOrEqual(0);
      expect(field.slice(nul).every((b) => b === 0)).toBe(true);
      at += len;
    }
    expect(String.fromCharCode(...bytes.slice(64, 73))).toBe('ringshift');
    expect(bytes.slice(144, 160).every((b) => b === 0xa5)).toBe(true); // nothing written past the structure
  });
});

describe('pv hypercalls: a domU', () => {
  it('console_io and XENVER_commandline are the initial domain\'s; the console ring reaches the serial sink', () => {
    const con = bootPv(() => {}, { initialDomain: false }).boot.consoleVa;
    const g2 = bootPv((a) => {
      hypercall(a, 18, 0, 1, GUEST_DATA); saveEax(a, 0);
      hypercall(a, 17, 9, ARGS); saveEax(a, 1);
      [0x6f, 0x6b, 0x0a].forEach((b, i) => a.asm('mov', mem({ disp: con + 1024 + i, size: 1 }), imm(b)));
      a.asm('mov', mem({ disp: con + 3084, size: 4 }), imm(3)); // out_prod
      a.asm('mov', mem({ disp: ARGS, size: 4 }), imm(2)); // the console port (store is 1)
      hypercall(a, 32, 4, ARGS); saveEax(a, 2);
    }, { initialDomain: false });
    expect(g2.read32(GUEST_DATA) | 0).toBe(EPERM);
    expect(g2.read32(GUEST_DATA + 4) | 0).toBe(EPERM);
    expect(g2.read32(GUEST_DATA + 8)).toBe(0);
    expect(g2.domain.consolePort).toBe(2);
    expect(g2.out).toBe('ok\n');
    expect(g2.read32(con + 3080)).toBe(3); // out_cons caught up
  });
});

describe('pv hypercall table', () => {
  it('has xen.h\'s numbers (an independent list, from shared/reference/xen-x86_32-pv.md §2), once each', () => {
    const XEN_H: Record<string, number> = {
      set_trap_table: 0, mmu_update: 1, set_gdt: 2, stack_switch: 3, set_callbacks: 4, fpu_taskswitch: 5,
      update_descriptor: 10, memory_op: 12, multicall: 13, update_va_mapping: 14, set_timer_op: 15, xen_version: 17,
      console_io: 18, grant_table_op: 20, vm_assist: 21, iret: 23, vcpu_op: 24, mmuext_op: 26, sched_op: 29,
      callback_op: 30, event_channel_op: 32, physdev_op: 33,
    };
    expect(Object.fromEntries(HYPERCALLS.map((h) => [h.name, h.nr]))).toEqual(XEN_H);
    expect(new Set(HYPERCALLS.map((h) => h.nr)).size).toBe(HYPERCALLS.length);
    for (const h of HYPERCALLS) expect(h.header).toMatch(/\.h/);
  });
});
