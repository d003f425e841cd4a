// The VMCS field table against the layout each encoding carries (SDM vol. 3C §25.11.2), the
// VMCS's VMREAD/VMWRITE rules, and the controls table and `--hvm-controls` parser.
import { VMX_CONTROL } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { CONTROLS, ControlsError, VMCS, VMCS_FIELDS, Vmcs, VmcsError, VmcsType, VmcsWidth, controlIsOn, decodeEncoding, defaultControls, parseControls } from '../src/index';

describe('VMCS field table', () => {
  it.each(VMCS_FIELDS.map((f) => [f.id, f] as const))('%s: width and type match the encoding bits', (_id, f) => {
    const d = decodeEncoding(f.encoding);
    expect(d.width).toBe(VmcsWidth[f.width]);
    expect(d.type).toBe(VmcsType[f.type]);
    expect(d.high).toBe(false); // rows name the full (low) encoding
    expect(f.encoding & 0x9000).toBe(0); // bits 15 and 12 are reserved (0)
  });

  it('names and encodings are unique', () => {
    expect(new Set(VMCS_FIELDS.map((f) => f.id)).size).toBe(VMCS_FIELDS.length);
    expect(new Set(VMCS_FIELDS.map((f) => f.name)).size).toBe(VMCS_FIELDS.length);
    expect(new Set(VMCS_FIELDS.map((f) => f.encoding)).size).toBe(VMCS_FIELDS.length);
  });

  it('has the encodings the issue names (vmx.md §4)', () => {
    expect(VMCS.EXCEPTION_BITMAP).toBe(0x4004);
    expect(VMCS.VM_EXIT_REASON).toBe(0x4402);
    expect(VMCS.EXIT_QUALIFICATION).toBe(0x6400);
    expect(VMCS.GUEST_PHYSICAL_ADDRESS).toBe(0x2400);
    expect(VMCS.GUEST_LINEAR_ADDRESS).toBe(0x640a);
    expect(VMCS.VM_EXIT_INSTRUCTION_LEN).toBe(0x440c);
    expect(VMCS.VMX_INSTRUCTION_INFO).toBe(0x440e);
    expect(VMCS.VM_ENTRY_INTR_INFO_FIELD).toBe(0x4016);
    expect(VMCS.EPT_POINTER).toBe(0x201a);
  });
});

describe('Vmcs', () => {
  it('reads back what VMWRITE stored, truncated to the field width', () => {
    const v = new Vmcs();
    v.vmwrite(VMCS.EXCEPTION_BITMAP, 0x1_0004_0000);
    expect(v.vmread(VMCS.EXCEPTION_BITMAP)).toBe(0x40000);
    v.vmwrite(VMCS.CR0_GUEST_HOST_MASK, -1);
    expect(v.vmread(VMCS.CR0_GUEST_HOST_MASK)).toBe(0xffffffff);
  });

  it('accesses the high half of a 64-bit field through encoding | 1', () => {
    const v = new Vmcs();
    v.vmwrite(VMCS.EPT_POINTER, 0x12345000 + 0x1e);
    v.vmwrite(VMCS.EPT_POINTER | 1, 0x7);
    expect(v.vmread(VMCS.EPT_POINTER)).toBe(7 * 2 ** 32 + 0x1234501e);
    expect(v.vmread(VMCS.EPT_POINTER | 1)).toBe(7);
  });

  it('refuses unknown encodings (error 12), high access to a 32-bit field, and VMWRITE to read-only fields (error 13)', () => {
    const v = new Vmcs();
    expect(() => v.vmread(0x4826 + 2)).toThrow(/unsupported VMCS component 0x4828.*error 12/);
    expect(() => v.vmread(VMCS.EXCEPTION_BITMAP | 1)).toThrow(VmcsError);
    expect(() => v.vmwrite(VMCS.EXIT_QUALIFICATION, 1)).toThrow(/read-only.*error 13/);
    v.setExitInfo(VMCS.EXIT_QUALIFICATION, 5);
    expect(v.vmread(VMCS.EXIT_QUALIFICATION)).toBe(5);
  });
});

describe('controls', () => {
  it('defaults are KVM-with-EPT: HLT, unconditional I/O, MOV DR, MSR bitmaps, EPT; no CR3 or INVLPG exiting', () => {
    const w = defaultControls();
    for (const on of ['hlt-exiting', 'unconditional-io-exiting', 'mov-dr-exiting', 'use-msr-bitmaps', 'enable-ept', 'external-interrupt-exiting', 'wbinvd-exiting'] as const) expect(controlIsOn(w, on), on).toBe(true);
    for (const off of ['cr3-load-exiting', 'cr3-store-exiting', 'invlpg-exiting', 'rdtsc-exiting', 'use-io-bitmaps'] as const) expect(controlIsOn(w, off), off).toBe(false);
    // Bit positions from SDM tables 25-5..25-7 (vmx.md §5).
    expect(w.primary & (1 << 7)).not.toBe(0);
    expect(w.primary & (1 << 24)).not.toBe(0);
    expect(w.secondary & (1 << 1)).not.toBe(0);
    expect(w.pin & 1).toBe(1);
  });

  it('RDPMC, MWAIT, MONITOR exiting on as in KVM; PAUSE and descriptor-table exiting off; bits of SDM tables 25-6/25-7', () => {
    const w = defaultControls();
    for (const on of ['rdpmc-exiting', 'mwait-exiting', 'monitor-exiting'] as const) expect(controlIsOn(w, on), on).toBe(true);
    for (const off of ['pause-exiting', 'descriptor-table-exiting'] as const) expect(controlIsOn(w, off), off).toBe(false);
    expect((w.primary >>> 10) & 3).toBe(3); // MWAIT 10, RDPMC 11
    expect((w.primary >>> 29) & 3).toBe(1); // MONITOR 29 on, PAUSE 30 off
    const p = parseControls('pause-exiting,desc-exiting');
    expect((p.primary >>> 30) & 1).toBe(1);
    expect((p.secondary >>> 2) & 1).toBe(1);
  });

  it('ept=off turns on shadow-paging exits; explicit items win', () => {
    const w = parseControls('ept=off');
    expect(controlIsOn(w, 'enable-ept')).toBe(false);
    expect(controlIsOn(w, 'cr3-load-exiting')).toBe(true);
    expect(controlIsOn(w, 'invlpg-exiting')).toBe(true);
    expect(controlIsOn(w, 'unrestricted-guest')).toBe(false);
    expect(controlIsOn(parseControls('ept=off,invlpg-exiting=off'), 'invlpg-exiting')).toBe(false);
    expect(controlIsOn(parseControls('rdtsc-exiting, io-bitmaps'), 'rdtsc-exiting')).toBe(true);
    expect(controlIsOn(parseControls('io-bitmaps'), 'use-io-bitmaps')).toBe(true);
  });

  it('a secondary control counts only with activate-secondary-controls', () => {
    expect(controlIsOn(parseControls('activate-secondary-controls=off,unrestricted-guest=off'), 'enable-ept')).toBe(false);
  });

  it('bad items are clear errors listing the valid names', () => {
    expect(() => parseControls('rdtsc')).toThrow(ControlsError);
    expect(() => parseControls('rdtsc')).toThrow(/unknown VM-execution control 'rdtsc'.*valid names: .*rdtsc-exiting/);
    expect(() => parseControls('hlt-exiting=maybe')).toThrow(/expected NAME, NAME=on or NAME=off/);
    expect(() => parseControls('hlt-exiting,hlt-exiting=off')).toThrow(/twice/);
    expect(() => parseControls('ept=off,unrestricted-guest')).toThrow(/requires enable-ept/);
    expect(() => parseControls('interrupt-window-exiting')).toThrow(/set by the monitor itself/);
  });

  it('bits agree with the decoder\'s VMX_CONTROL table (an independent transcription of SDM tables 25-6/25-7) where both name the control', () => {
    const decoder = VMX_CONTROL as Record<string, { field: string; bit: number }>;
    const shared = CONTROLS.filter((r) => decoder[r.name.toUpperCase().replace(/-/g, '_')] !== undefined);
    expect(shared.length).toBeGreaterThanOrEqual(9);
    for (const r of shared) {
      const d = decoder[r.name.toUpperCase().replace(/-/g, '_')]!;
      expect([r.name, r.field, r.bit]).toEqual([r.name, d.field, d.bit]);
    }
  });

  it('table rows have unique names and bits per field', () => {
    const names = CONTROLS.flatMap((r) => [r.name, ...(('aliases' in r ? r.aliases : []) as readonly string[])]);
    expect(new Set(names).size).toBe(names.length);
    const bits = CONTROLS.map((r) => `${r.field}:${r.bit}`);
    expect(new Set(bits).size).toBe(bits.length);
  });
});
