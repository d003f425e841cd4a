// Xen's acceptance rules for PV images (libelf-dominfo.c elf_xen_parse / elf_xen_note_check /
// elf_xen_addr_calc_check; xg_dom_elfloader.c for PAE), from notes and from __xen_guest.
import { describe, expect, it } from 'vitest';
import { PvImageError } from '../src/vmm/pv/elf';
import { isPvImage, xenGuestParams } from '../src/vmm/pv/elfnotes';
import { loadGuest } from '../src/vmm/backends';
import { loadPv } from '../src/vmm/pv/loader';
import { DEFAULT_NOTES, GUEST_CODE, HYPERCALL_PAGE, NOTE, VIRT_BASE, bootImage, pvImage, type NoteValue } from './support/pv-guest';

const code = Uint8Array.from([0x90]);
function withNotes(changes: [number, NoteValue | null][]): Uint8Array {
  const m = new Map(DEFAULT_NOTES);
  for (const [k, v] of changes) { if (v === null) m.delete(k); else m.set(k, v); }
  return pvImage(code, { notes: m });
}
const reject = (image: Uint8Array, why: RegExp): void => {
  expect(() => xenGuestParams(image)).toThrow(PvImageError);
  expect(() => xenGuestParams(image)).toThrow(why);
  expect(() => loadPv(image)).toThrow(why);
};

describe('pv loader: Xen ELF notes', () => {
  it('reads the notes: entry, hypercall page, virt base, strings', () => {
    const p = xenGuestParams(pvImage(code));
    expect(p.source).toBe('notes');
    expect(p.virtEntry).toBe(GUEST_CODE);
    expect(p.virtHypercall).toBe(HYPERCALL_PAGE);
    expect(p.virtBase).toBe(VIRT_BASE);
    expect(p.virtKstart).toBe(HYPERCALL_PAGE);
    expect(p.pae).toBe('extended-cr3');
    expect(p.loader).toBe('generic');
    expect(isPvImage(pvImage(code))).toBe(true);
  });

  it('accepts GUEST_OS linux* without LOADER, and PAE_MODE bimodal', () => {
    expect(xenGuestParams(withNotes([[NOTE.LOADER, null], [NOTE.GUEST_OS, 'linux-6.1']])).guestOs).toBe('linux-6.1');
    expect(xenGuestParams(withNotes([[NOTE.PAE_MODE, 'yes,bimodal']])).pae).toBe('bimodal');
  });

  it('rejects what Xen rejects, with Xen\'s reason', () => {
    reject(withNotes([[NOTE.LOADER, 'grub'], [NOTE.GUEST_OS, 'minios']]), /generic loader or Linux/);
    reject(withNotes([[NOTE.LOADER, null], [NOTE.GUEST_OS, null]]), /generic loader or Linux/);
    reject(withNotes([[NOTE.XEN_VERSION, 'xen-4.0']]), /Xen v3\.0/);
    reject(withNotes([[NOTE.XEN_VERSION, null]]), /Xen v3\.0/);
    reject(withNotes([[NOTE.PAE_MODE, null]]), /not PAE.*x86_32p/);
    reject(withNotes([[NOTE.PAE_MODE, 'no']]), /not PAE/);
    reject(withNotes([[NOTE.ENTRY, 0x1000]]), /out of bounds/);
    reject(withNotes([[NOTE.VIRT_BASE, null]]), /ELF_PADDR_OFFSET set, VIRT_BASE unset/);
    reject(withNotes([[NOTE.FEATURES, '!no_such_feature']]), /does not know/);
    reject(withNotes([[NOTE.FEATURES, 'writable_page_tables|!auto_translated_physmap']]), /requires XENFEAT auto_translated_physmap/);
    reject(pvImage(code, { notes: null }), /not a Xen-ELF image/);
    expect(isPvImage(pvImage(code, { notes: null }))).toBe(false);
    expect(() => xenGuestParams(Uint8Array.from([1, 2, 3]))).toThrow(/not an ELF image/);
  });

  it('a required writable_page_tables is accepted, as Xen\'s builders accept it (XTF\'s FEATURES note), and turns on no assist', () => {
    const features = '!writable_page_tables|pae_pgdir_above_4gb'; // xtf arch/x86/pv/head.S
    expect(xenGuestParams(withNotes([[NOTE.FEATURES, features]])).requiredFeatures).toEqual(['writable_page_tables']);
    for (const initialDomain of [true, false]) {
      const g = loadPv(withNotes([[NOTE.FEATURES, features]]), { memoryBytes: 4 << 20, initialDomain });
      expect(g.domain.vmAssist & (1 << 2)).toBe(0); // VMASST_TYPE_writable_pagetables stays off
    }
    reject(withNotes([[NOTE.FEATURES, '!writable_descriptor_tables']]), /requires XENFEAT writable_descriptor_tables/);
  });

  it('optional unknown features are ignored, as libelf does', () => {
    expect(xenGuestParams(withNotes([[NOTE.FEATURES, 'writable_page_tables|frobnicate|!pae_pgdir_above_4gb']])).requiredFeatures).toEqual(['pae_pgdir_above_4gb']);
  });

  it('an over-long command line is refused before anything runs (MAX_GUEST_CMDLINE)', () => {
    expect(() => loadPv(pvImage(code), { memoryBytes: 4 << 20, cmdline: 'x'.repeat(1024) })).toThrow(/command line/);
  });
});

describe('pv loader: the legacy __xen_guest section', () => {
  const guest = (s: string): Uint8Array => pvImage(code, { notes: null, xenGuest: s });
  it('boots from GUEST_OS/XEN_VER/PAE/VIRT_BASE/HYPERCALL_PAGE (a page number), ELF_PADDR_OFFSET defaulting to VIRT_BASE', () => {
    const img = guest(`GUEST_OS=linux,XEN_VER=xen-3.0,PAE=yes[extended-cr3],VIRT_BASE=0xC0000000,ELF_PADDR_OFFSET=0,HYPERCALL_PAGE=0x1,VIRT_ENTRY=0x${GUEST_CODE.toString(16)}`);
    const p = xenGuestParams(img);
    expect(p.source).toBe('__xen_guest');
    expect(p.pae).toBe('extended-cr3');
    expect(p.virtHypercall).toBe(HYPERCALL_PAGE);
    expect(p.virtEntry).toBe(GUEST_CODE);
    expect(isPvImage(img)).toBe(true);
    expect(xenGuestParams(guest('LOADER=generic,XEN_VER=xen-3.0,PAE=yes,VIRT_BASE=0xC0000000,ELF_PADDR_OFFSET=0')).pae).toBe('yes');
    // A __xen_guest image boots (the one instruction is a NOP, then it runs off: a crash, but a boot).
    expect(bootImage(img, { maxInstructions: 10 }).report.instructions).toBeGreaterThan(0);
  });
  it('rejects a non-PAE, a non-3.0 and a non-generic/linux one', () => {
    reject(guest('GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,ELF_PADDR_OFFSET=0'), /not PAE/);
    reject(guest('GUEST_OS=linux,XEN_VER=xen-2.0,PAE=yes,VIRT_BASE=0xC0000000,ELF_PADDR_OFFSET=0'), /Xen v3\.0/);
    reject(guest('GUEST_OS=netbsd,XEN_VER=xen-3.0,PAE=yes,VIRT_BASE=0xC0000000,ELF_PADDR_OFFSET=0'), /generic loader/);
  });
});

describe('pv: which backend runs which image', () => {
  it('a PV image under another backend is refused with a pointer to --backend pv, and a multiboot image under pv', () => {
    expect(() => loadGuest(pvImage(code), { backend: 'native' })).toThrow(/Xen PV kernel.*--backend pv/);
    expect(() => loadGuest(pvImage(code), { backend: 'deprivileged' })).toThrow(PvImageError);
    expect(() => loadGuest(pvImage(code, { notes: null }), { backend: 'pv' })).toThrow(/--backend pv runs Xen PV kernels.*--backend native/);
    const g = loadGuest(pvImage(code), { backend: 'pv', memoryBytes: 8 << 20 });
    expect(g.backend).toBe('pv');
    expect(g.loaded.entry).toBe(GUEST_CODE);
  });
});
