// The pv backend's domain builder and first instructions: start_info, shared_info, the
// hypercall page, the initial page tables, ring 1 on Xen's flat segments, the forced CPUID.
import { imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { FLAT_RING1_CS, FLAT_RING1_DS, SHARED_INFO, START_INFO, VCPU_INFO } from '../src/vmm/pv/abi';
import { xenCpuidLeaf } from '../src/vmm/pv/domain';
import { hypercallPage } from '../src/vmm/pv/hypercall-page';
import { GUEST_DATA, HYPERCALL_PAGE, bootPv, hypercall, saveEax } from './support/pv-guest';

describe('pv: the hypercall page', () => {
  it('is 128 slots of mov eax, nr; int 0x82; ret over 0xCC, slot 23 push eax; mov eax, 23; int 0x82', () => {
    const p = hypercallPage();
    // Independent oracle: the byte strings of xen/arch/x86/pv/hypercall.c, written out.
    expect([...p.subarray(0, 32)]).toEqual([0xb8, 0, 0, 0, 0, 0xcd, 0x82, 0xc3, ...Array(24).fill(0xcc)]);
    expect([...p.subarray(29 * 32, 29 * 32 + 9)]).toEqual([0xb8, 29, 0, 0, 0, 0xcd, 0x82, 0xc3, 0xcc]);
    expect([...p.subarray(23 * 32, 23 * 32 + 9)]).toEqual([0x50, 0xb8, 23, 0, 0, 0, 0xcd, 0x82, 0xcc]);
    expect([...p.subarray(127 * 32, 127 * 32 + 8)]).toEqual([0xb8, 127, 0, 0, 0, 0xcd, 0x82, 0xc3]);
  });

  it('is filled at the HYPERCALL_PAGE note address', () => {
    const g = bootPv(() => {});
    const page = hypercallPage();
    for (let i = 0; i < 4096; i += 4) expect(g.read32(HYPERCALL_PAGE + i)).toBe(new DataView(page.buffer).getUint32(i, true));
  });
});

describe('pv: start of day', () => {
  it('enters at the ENTRY note in ring 1 on FLAT_RING1_CS/DS with ESI = start_info and events masked', () => {
    const g = bootPv((a) => {
      a.asm('mov', reg('eax'), reg('esi')); saveEax(a, 0);
      a.asm('mov', reg('eax'), reg('cs')); saveEax(a, 1);
      a.asm('mov', reg('eax'), reg('ss')); saveEax(a, 2);
      a.asm('mov', reg('eax'), reg('esp')); saveEax(a, 3);
      a.asm('pushfd'); a.asm('pop', reg('eax')); saveEax(a, 4);
    });
    expect(g.report.reason).toBe('exit');
    expect(g.report.exitStatus).toBe(1);
    expect(g.read32(GUEST_DATA)).toBe(g.boot.startInfoVa);
    expect(g.read32(GUEST_DATA + 4) & 0xffff).toBe(FLAT_RING1_CS);
    expect(g.read32(GUEST_DATA + 8) & 0xffff).toBe(FLAT_RING1_DS);
    expect(g.read32(GUEST_DATA + 12)).toBe(g.boot.stackTop);
    expect(g.read32(GUEST_DATA + 16) & 0x3200).toBe(0x200); // IF set, IOPL 0
    const sh = g.boot.layout.sharedInfoMfn * 4096;
    expect(g.machine.mem.read8(sh + VCPU_INFO.evtchn_upcall_mask)).toBe(1);
  });

  it('fills start_info as xen.h lays it out', () => {
    const g = bootPv(() => {}, { cmdline: 'console=hvc0 quiet' });
    const si = g.boot.startInfoVa;
    let magic = '';
    for (let i = 0; i < 32; i++) { const c = g.read32(si + i) & 0xff; if (c === 0) break; magic += String.fromCharCode(c); }
    expect(magic).toBe('xen-3.0-x86_32p');
    const L = g.boot.layout;
    expect(g.read32(si + START_INFO.nr_pages)).toBe((8 << 20) / 4096);
    expect(g.read32(si + START_INFO.shared_info)).toBe(L.sharedInfoMfn * 4096);
    expect(g.read32(si + START_INFO.flags)).toBe(3); // SIF_PRIVILEGED | SIF_INITDOMAIN
    expect(g.read32(si + START_INFO.pt_base)).toBe(g.boot.ptVa);
    expect(g.read32(si + START_INFO.nr_pt_frames)).toBe(g.boot.nrPtFrames);
    expect(g.read32(si + START_INFO.mfn_list)).toBe(g.boot.p2mVa);
    let cmd = '';
    for (let i = 0; ; i++) { const c = g.read32(si + START_INFO.cmd_line + i) & 0xff; if (c === 0) break; cmd += String.fromCharCode(c); }
    expect(cmd).toBe('console=hvc0 quiet');
    // The P2M list: pfn -> mfn, and the M2P inverse.
    for (const pfn of [0, 1, 100, L.nrPages - 1]) {
      const mfn = g.read32(g.boot.p2mVa + pfn * 4);
      expect(mfn).toBe(L.firstGuestMfn + pfn);
      expect(g.machine.mem.read32(L.m2pMfn * 4096 + mfn * 4) >>> 0).toBe(pfn);
    }
    // xen.h "startofday": kernel, p2m, start_info, page tables, stack, each after the one before.
    expect(g.boot.p2mVa).toBeGreaterThanOrEqual(0xc0020000);
    expect(g.boot.startInfoVa).toBeGreaterThan(g.boot.p2mVa);
    expect(g.boot.ptVa).toBeGreaterThan(g.boot.startInfoVa);
    expect(g.boot.stackTop).toBe(g.boot.ptVa + (g.boot.nrPtFrames + 1) * 4096);
    expect(g.boot.vEnd % (4 << 20)).toBe(0);
    expect(g.boot.vEnd - g.boot.stackTop).toBeGreaterThanOrEqual(512 * 1024);
  });

  it('gives a domU the console ring and xenstore page with their event channels, and no SIF flags', () => {
    const g = bootPv(() => {}, { initialDomain: false });
    const si = g.boot.startInfoVa;
    expect(g.read32(si + START_INFO.flags)).toBe(0);
    expect(g.read32(si + START_INFO.console_mfn)).toBe(g.boot.layout.firstGuestMfn + ((g.boot.consoleVa - 0xc0000000) >>> 12));
    expect(g.read32(si + START_INFO.console_evtchn)).toBe(g.domain.consolePort);
    expect(g.read32(si + START_INFO.store_evtchn)).toBe(g.domain.storePort);
    expect(g.domain.consolePort).not.toBe(g.domain.storePort);
    expect(g.domain.consolePort).toBeGreaterThan(0);
  });

  it('fills shared_info: wallclock, max_pfn, a time base where TSC cycles are nanoseconds', () => {
    const g = bootPv(() => {}, { machine: { rtcEpochMs: Date.UTC(2001, 0, 1) } });
    const sh = g.boot.layout.sharedInfoMfn * 4096, m = g.machine.mem;
    expect(m.read32(sh + SHARED_INFO.wc_sec)).toBe(Date.UTC(2001, 0, 1) / 1000);
    expect(m.read32(sh + SHARED_INFO.wc_version) % 2).toBe(0);
    expect(m.read32(sh + SHARED_INFO.max_pfn)).toBe(2048);
    const mul = m.read32(sh + VCPU_INFO.tsc_to_system_mul) >>> 0, shift = (m.read8(sh + VCPU_INFO.tsc_shift) << 24) >> 24;
    const tsc = 123456789n;
    const scaled = ((shift >= 0 ? tsc << BigInt(shift) : tsc >> BigInt(-shift)) * BigInt(mul)) >> 32n;
    expect(scaled).toBe(tsc);
  });

  it('maps the page tables read-only: a write to one faults (and with no trap table, crashes the domain)', () => {
    // The builder's L3 is at pt_base (the same address in every boot of the same image size).
    const ptVa = bootPv(() => {}).boot.ptVa;
    const g2 = bootPv((a) => {
      a.asm('mov', reg('edi'), imm(ptVa));
      a.asm('mov', mem({ base: 'edi', size: 4 }), imm(0));
    });
    expect(g2.report.shutdown).toBe('crash');
    expect(g2.report.detail).toMatch(/unhandled exception #PF/);
  });
});

describe('pv: forced CPUID', () => {
  it('emulates ud2a; .ascii "xen"; cpuid from the first instruction, with Xen\'s leaves at 0x40000000', () => {
    const g = bootPv((a) => {
      a.asm('mov', reg('eax'), imm(0x40000000));
      a.bytes([0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2]);
      a.asm('mov', reg('eax'), reg('ebx')); saveEax(a, 0);
      a.asm('mov', reg('eax'), reg('ecx')); saveEax(a, 1);
      a.asm('mov', reg('eax'), reg('edx')); saveEax(a, 2);
      a.asm('mov', reg('eax'), imm(1));
      a.bytes([0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2]);
      a.asm('mov', reg('eax'), reg('ecx')); saveEax(a, 3);
    });
    expect(g.report.exitStatus).toBe(1);
    const sig = [0, 1, 2].map((i) => g.read32(GUEST_DATA + i * 4)).map((w) => String.fromCharCode(w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24)).join('');
    expect(sig).toBe('XenVMMXenVMM');
    expect(g.read32(GUEST_DATA + 12) >>> 31).toBe(1); // hypervisor bit
    expect(xenCpuidLeaf(0x40000001)[0]).toBe((4 << 16) | 19);
  });

  it('a plain ud2 is #UD for the guest (no trap table: crash)', () => {
    const g = bootPv((a) => { a.bytes([0x0f, 0x0b, 0x90, 0x90, 0x90]); });
    expect(g.report.shutdown).toBe('crash');
    expect(g.report.detail).toMatch(/#UD/);
  });
});

describe('pv: console_io', () => {
  it('writes the initial domain\'s console to the serial sink', () => {
    const g = bootPv((a) => {
      const text = 'hello, xen\n';
      text.split('').forEach((c, i) => a.asm('mov', mem({ disp: GUEST_DATA + 0x100 + i, size: 1 }), imm(c.charCodeAt(0))));
      hypercall(a, 18, 0, text.length, GUEST_DATA + 0x100);
      saveEax(a, 0);
    });
    expect(g.out).toBe('hello, xen\n');
    expect(g.read32(GUEST_DATA)).toBe(0);
  });
});
