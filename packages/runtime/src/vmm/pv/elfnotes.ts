// Xen's guest parameters from a PV kernel image, with Xen's acceptance rules
// (xen/common/libelf/libelf-dominfo.c: elf_xen_parse, elf_xen_note_check, elf_xen_addr_calc_check;
// tools/libs/guest/xg_dom_elfloader.c for the PAE guest type). Notes come from PT_NOTE segments,
// else SHT_NOTE sections, else the legacy `__xen_guest` string ("NAME=VALUE,...").
import { XEN_ELFNOTE } from './abi';
import { EM_386, PT_LOAD, PT_NOTE, PvImageError, SHT_NOTE, readPvElf, type PvElf } from './elf';

/** elfnote.h XEN_ELFNOTE_PAE_MODE / __xen_guest PAE=: what the kernel says about PAE paging. */
export type PaeMode = 'no' | 'yes' | 'extended-cr3' | 'bimodal';

export interface XenGuestParams {
  /** Where the parameters came from. */
  source: 'notes' | '__xen_guest';
  guestOs: string;
  guestVersion: string;
  xenVersion: string;
  loader: string;
  pae: PaeMode;
  features: string;
  virtBase: number;
  paddrOffset: number;
  virtEntry: number;
  /** Virtual address of the hypercall page, or -1 (none asked for). */
  virtHypercall: number;
  /** Virtual addresses of the image: [virtKstart, virtKend). */
  virtKstart: number;
  virtKend: number;
  /** Required XENFEAT names (FEATURES entries with a leading '!'). */
  requiredFeatures: string[];
}

/** features.h XENFEAT_* names libelf knows (libelf-dominfo.c elf_xen_feature_names). */
export const XENFEAT_NAMES = ['writable_page_tables', 'writable_descriptor_tables', 'auto_translated_physmap', 'supervisor_mode_kernel', 'pae_pgdir_above_4gb', 'hvm_callback_vector', 'dom0'] as const;
/** Features this monitor offers: the rest need hardware or modes it does not model. */
export const SUPPORTED_XENFEATS: readonly string[] = ['pae_pgdir_above_4gb'];
/**
 * Required features accepted although not offered, because Xen accepts them too: the domU builder
 * checks required features only against the kernel's own FEATURES list (xg_dom_core.c
 * xc_dom_parse_image: f_active & parms->f_supported, both from the note) and dom0_build.c not at
 * all, and neither turns anything on for writable_page_tables (the builders set only the
 * pae_extended_cr3 assist). A kernel that wants writes to its tables emulated must itself ask for
 * VMASST_TYPE_writable_pagetables, which this monitor refuses (docs/pv-abi.md).
 */
export const ACCEPTED_UNOFFERED_XENFEATS: readonly string[] = ['writable_page_tables'];

interface RawNotes { strings: Map<number, string>; numbers: Map<number, number>; count: number }

const STRING_NOTES: ReadonlySet<number> = new Set([XEN_ELFNOTE.XEN_VERSION, XEN_ELFNOTE.GUEST_OS, XEN_ELFNOTE.GUEST_VERSION, XEN_ELFNOTE.LOADER, XEN_ELFNOTE.PAE_MODE, XEN_ELFNOTE.FEATURES, XEN_ELFNOTE.BSD_SYMTAB]);

function parseNotes(image: Uint8Array, start: number, end: number, into: RawNotes): void {
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  let at = start;
  while (at + 12 <= end) {
    const namesz = v.getUint32(at, true), descsz = v.getUint32(at + 4, true), type = v.getUint32(at + 8, true);
    const nameAt = at + 12, descAt = nameAt + ((namesz + 3) & ~3), next = descAt + ((descsz + 3) & ~3);
    if (namesz > end - nameAt || descsz > end || next > end) throw new PvImageError(`ELF note at file offset 0x${at.toString(16)} runs past its segment`);
    let name = '';
    for (let i = 0; i < namesz && image[nameAt + i] !== 0; i++) name += String.fromCharCode(image[nameAt + i]!);
    if (name === 'Xen') {
      into.count++;
      if (STRING_NOTES.has(type)) {
        let s = '';
        for (let i = 0; i < descsz && image[descAt + i] !== 0; i++) s += String.fromCharCode(image[descAt + i]!);
        into.strings.set(type, s);
      } else if (descsz === 1 || descsz === 2 || descsz === 4 || descsz === 8) {
        // elf_note_numeric: 1, 2, 4 or 8 bytes; a 64-bit value's high word must be 0 for a 32-bit guest.
        const lo = descsz === 1 ? image[descAt]! : descsz === 2 ? v.getUint16(descAt, true) : v.getUint32(descAt, true);
        if (descsz === 8 && v.getUint32(descAt + 4, true) !== 0) throw new PvImageError(`Xen note ${type}: a 64-bit value above 4 GiB for a 32-bit guest`);
        into.numbers.set(type, lo);
      }
    }
    at = next;
  }
}

/** __xen_guest: "NAME=VALUE,NAME=VALUE" (libelf-dominfo.c elf_xen_parse_guest_info). */
function parseGuestInfo(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of s.split(',')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    out.set((eq < 0 ? item : item.slice(0, eq)).slice(0, 31), eq < 0 ? '' : item.slice(eq + 1, eq + 1 + 127));
  }
  return out;
}

function strtoull(s: string): number {
  const t = s.trim();
  const n = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t, 16) : /^0[0-7]*$/.test(t) ? parseInt(t || '0', 8) : /^[0-9]+$/.test(t) ? parseInt(t, 10) : NaN;
  if (!Number.isFinite(n)) throw new PvImageError(`__xen_guest: '${s}' is not a number`);
  return n;
}

/** True when the image carries Xen notes or a `__xen_guest` section (what `ringshift run` checks). */
export function isPvImage(image: Uint8Array): boolean {
  let elf: PvElf;
  try {
    elf = readPvElf(image);
  } catch {
    return false;
  }
  try {
    return collect(image, elf).kind !== 'none';
  } catch {
    return true; // it has notes, just broken ones: the PV loader will say what is wrong
  }
}

type Collected = { kind: 'notes'; notes: RawNotes } | { kind: 'guest'; info: Map<string, string> } | { kind: 'none' };

function collect(image: Uint8Array, elf: PvElf): Collected {
  const notes: RawNotes = { strings: new Map(), numbers: new Map(), count: 0 };
  for (const p of elf.programHeaders) {
    // Some binutils leave p_offset 0 in note segments: libelf skips those.
    if (p.type === PT_NOTE && p.offset !== 0) parseNotes(image, p.offset, p.offset + p.filesz, notes);
  }
  if (notes.count === 0) {
    for (const s of elf.sections.slice(1)) if (s.type === SHT_NOTE && s.offset + s.size <= image.length) parseNotes(image, s.offset, s.offset + s.size, notes);
  }
  if (notes.count > 0) return { kind: 'notes', notes };
  const g = elf.sections.find((s) => s.name === '__xen_guest');
  if (g !== undefined && g.offset < image.length) {
    let s = '';
    for (let i = g.offset; i < image.length && image[i] !== 0 && i < g.offset + g.size; i++) s += String.fromCharCode(image[i]!);
    return { kind: 'guest', info: parseGuestInfo(s) };
  }
  return { kind: 'none' };
}

/** Parses and checks the image's Xen parameters; throws PvImageError with Xen's reason. */
export function xenGuestParams(image: Uint8Array): XenGuestParams {
  const elf = readPvElf(image);
  if (elf.machine !== EM_386) throw new PvImageError(`ELF machine ${elf.machine} is not EM_386: the pv backend runs 32-bit x86 PV kernels`);
  const c = collect(image, elf);
  if (c.kind === 'none') throw new PvImageError("not a Xen-ELF image: no ELF notes or '__xen_guest' section found (libelf elf_xen_note_check); run multiboot kernels with --backend native, rewrite or deprivileged");
  let p: Omit<XenGuestParams, 'virtKstart' | 'virtKend' | 'virtBase' | 'paddrOffset' | 'virtEntry'> & { virtBase: number | null; paddrOffset: number | null; virtEntry: number | null };
  if (c.kind === 'notes') {
    const s = (t: number): string => c.notes.strings.get(t) ?? '';
    const n = (t: number): number | null => c.notes.numbers.get(t) ?? null;
    const paeNote = s(XEN_ELFNOTE.PAE_MODE);
    p = {
      source: 'notes', guestOs: s(XEN_ELFNOTE.GUEST_OS), guestVersion: s(XEN_ELFNOTE.GUEST_VERSION), xenVersion: s(XEN_ELFNOTE.XEN_VERSION),
      loader: s(XEN_ELFNOTE.LOADER), features: s(XEN_ELFNOTE.FEATURES),
      // libelf: "yes" means extended-cr3; any string containing "bimodal" is bimodal; else no PAE.
      pae: paeNote.includes('bimodal') ? 'bimodal' : paeNote === 'yes' ? 'extended-cr3' : 'no',
      virtBase: n(XEN_ELFNOTE.VIRT_BASE), paddrOffset: n(XEN_ELFNOTE.PADDR_OFFSET), virtEntry: n(XEN_ELFNOTE.ENTRY),
      virtHypercall: n(XEN_ELFNOTE.HYPERCALL_PAGE) ?? -1, requiredFeatures: [],
    };
  } else {
    const g = c.info;
    const num = (k: string): number | null => (g.has(k) ? strtoull(g.get(k)!) : null);
    const pae = g.get('PAE');
    const virtBase = num('VIRT_BASE');
    const hp = num('HYPERCALL_PAGE');
    p = {
      source: '__xen_guest', guestOs: g.get('GUEST_OS') ?? '', guestVersion: g.get('GUEST_VER') ?? '', xenVersion: g.get('XEN_VER') ?? '',
      loader: g.get('LOADER') ?? '', features: g.get('FEATURES') ?? '',
      pae: pae === 'yes[extended-cr3]' ? 'extended-cr3' : pae?.startsWith('yes') ? 'yes' : 'no',
      virtBase, paddrOffset: num('ELF_PADDR_OFFSET'), virtEntry: num('VIRT_ENTRY'),
      // __xen_guest gives the hypercall page as a page number from VIRT_BASE.
      virtHypercall: hp === null ? -1 : (hp * 4096 + (virtBase ?? 0)) >>> 0, requiredFeatures: [],
    };
  }
  // elf_xen_parse_features: an unknown required feature is an error; unknown optional ones are ignored.
  for (const f of p.features.split('|')) {
    if (!f.startsWith('!')) continue;
    const name = f.slice(1);
    if (!(XENFEAT_NAMES as readonly string[]).includes(name)) throw new PvImageError(`FEATURES requires '${name}', a feature Xen does not know`);
    p.requiredFeatures.push(name);
  }
  // elf_xen_note_check
  if (!p.loader.startsWith('generic') && !p.guestOs.startsWith('linux')) {
    throw new PvImageError(`Xen will only load images built for the generic loader or Linux images (LOADER '${p.loader}', GUEST_OS '${p.guestOs}')`);
  }
  if (!p.xenVersion.startsWith('xen-3.0')) throw new PvImageError(`Xen will only load images built for Xen v3.0 (XEN_VERSION '${p.xenVersion}')`);
  // xg_dom_elfloader.c: without PAE the guest type is xen-3.0-x86_32, which no 64-bit Xen offers.
  if (p.pae === 'no') throw new PvImageError("the kernel is not PAE (PAE_MODE must be 'yes' or 'bimodal', or __xen_guest PAE=yes): non-PAE 32-bit PV (xen-3.0-x86_32) was removed in Xen 3.3; this backend runs xen-3.0-x86_32p");
  for (const f of p.requiredFeatures) {
    if (!SUPPORTED_XENFEATS.includes(f) && !ACCEPTED_UNOFFERED_XENFEATS.includes(f)) throw new PvImageError(`the kernel requires XENFEAT ${f}, which this monitor does not offer`);
  }
  // elf_xen_addr_calc_check
  if (p.paddrOffset !== null && p.virtBase === null) throw new PvImageError('ELF_PADDR_OFFSET set, VIRT_BASE unset');
  const virtBase = p.virtBase ?? 0;
  const paddrOffset = p.paddrOffset ?? (p.source === 'notes' ? 0 : virtBase);
  const loads = elf.programHeaders.filter((h) => h.type === PT_LOAD && h.memsz > 0);
  if (loads.length === 0) throw new PvImageError('the image has no PT_LOAD segment');
  const pstart = Math.min(...loads.map((h) => h.paddr));
  const pend = Math.max(...loads.map((h) => h.paddr + h.memsz));
  const virtOffset = virtBase - paddrOffset;
  const virtKstart = pstart + virtOffset, virtKend = pend + virtOffset;
  const virtEntry = p.virtEntry ?? elf.entry;
  if (virtKstart > virtKend || virtEntry < virtKstart || virtEntry > virtKend || virtBase > virtKstart) {
    throw new PvImageError(`ELF start or entries are out of bounds (virt_base 0x${virtBase.toString(16)}, kernel 0x${virtKstart.toString(16)}-0x${virtKend.toString(16)}, entry 0x${virtEntry.toString(16)})`);
  }
  if (virtKstart < 0 || virtKend > 0xf5800000) throw new PvImageError(`the kernel (0x${virtKstart.toString(16)}-0x${virtKend.toString(16)}) overlaps the hypervisor hole at 0xf5800000`);
  if (p.virtHypercall !== -1 && (p.virtHypercall < virtKstart || p.virtHypercall + 4096 > virtKend || (p.virtHypercall & 0xfff) !== 0)) {
    throw new PvImageError(`HYPERCALL_PAGE 0x${p.virtHypercall.toString(16)} is not a page-aligned page inside the kernel image`);
  }
  return { ...p, virtBase, paddrOffset, virtEntry, virtKstart, virtKend };
}
