// Version, console and grant-table hypercalls (version.h, xen.h console_io, grant_table.h).
import {
  CONSOLEIO_read, CONSOLEIO_write, DOMID_SELF, EFAULT, EINVAL, ENOSYS, EPERM, GNTST_okay, GNTTABOP,
  HYPERVISOR_VIRT_START_PAE, START_INFO_MAGIC_X86_32P, XENVER, XEN_CAPABILITIES_INFO_LEN, XEN_CHANGESET_INFO_LEN,
  XEN_COMMANDLINE_LEN, XEN_COMPILE_INFO_FIELDS, XEN_EXTRAVERSION_LEN, XEN_MAJOR, XEN_MINOR,
} from '../abi';
import { GRANT_FRAMES } from '../layout';
import type { HypercallHandler } from './types';

/** features.h: XENFEAT_pae_pgdir_above_4gb (4) and XENFEAT_mmu_pt_update_preserve_ad (5). */
const FEATURES_SUBMAP_0 = (1 << 4) | (1 << 5);
/** grant_table.h GNTST_general_error. */
const GNTST_general_error = -1;
/** Most bytes one console_io write may carry here. */
const CONSOLE_MAX = 1 << 16;

function fixedString(s: string, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < s.length && i < len - 1; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

/** HYPERVISOR_xen_version(cmd, arg). */
export const xenVersion: HypercallHandler = (d, [cmd, arg]) => {
  const gm = d.gm;
  const put = (b: Uint8Array): number => (gm.writeBytes(arg!, b) ? 0 : EFAULT);
  switch (cmd) {
    case XENVER.version: return ((XEN_MAJOR << 16) | XEN_MINOR) >>> 0;
    case XENVER.extraversion: return put(fixedString('-ringshift', XEN_EXTRAVERSION_LEN));
    case XENVER.capabilities: return put(fixedString(`${START_INFO_MAGIC_X86_32P} `, XEN_CAPABILITIES_INFO_LEN));
    case XENVER.compile_info: { // open to every guest, as in Xen's default XSM policy (xsm_xen_version)
      const values = ['ringshift pv backend (TypeScript)', 'ringshift', 'ringshift', ''];
      const b = new Uint8Array(XEN_COMPILE_INFO_FIELDS.reduce((x, y) => x + y, 0));
      let at = 0;
      XEN_COMPILE_INFO_FIELDS.forEach((len, i) => { b.set(fixedString(values[i]!, len), at); at += len; });
      return put(b);
    }
    case XENVER.changeset: return put(fixedString('ringshift pv backend', XEN_CHANGESET_INFO_LEN));
    case XENVER.platform_parameters: { // xen_platform_parameters {xen_ulong_t virt_start}
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, HYPERVISOR_VIRT_START_PAE, true);
      return put(b);
    }
    case XENVER.get_features: { // xen_feature_info {u32 submap_idx; OUT u32 submap}
      const idx = gm.read32(arg!);
      if (idx === null) return EFAULT;
      return gm.write32((arg! + 4) >>> 0, idx === 0 ? FEATURES_SUBMAP_0 : 0) ? 0 : EFAULT;
    }
    case XENVER.pagesize: return 4096;
    case XENVER.guest_handle: return put(new Uint8Array(16));
    case XENVER.commandline:
      if (!d.opts.initialDomain) return EPERM;
      return put(new Uint8Array(XEN_COMMANDLINE_LEN));
    default: return ENOSYS;
  }
};

/** HYPERVISOR_console_io(cmd, count, buffer): the initial domain's console (others: -EPERM). */
export const consoleIo: HypercallHandler = (d, [cmd, count, buffer]) => {
  if (!d.opts.initialDomain) return EPERM;
  if (cmd === CONSOLEIO_write) {
    if (count! > CONSOLE_MAX) return EINVAL;
    const b = d.gm.readBytes(buffer!, count!);
    if (b === null) return EFAULT;
    for (const byte of b) d.opts.consoleOut(byte);
    return 0;
  }
  if (cmd === CONSOLEIO_read) return 0; // no console input: 0 bytes read
  return ENOSYS;
};

/** HYPERVISOR_grant_table_op(cmd, uop, count): setup_table and query_size; version 1 only. */
export const grantTableOp: HypercallHandler = (d, [cmd, uop, count]) => {
  const gm = d.gm;
  if (count! > 64) return EINVAL;
  if (cmd === GNTTABOP.setup_table) {
    // gnttab_setup_table {u16 dom; u32 nr_frames; OUT s16 status; handle frame_list} (16 bytes)
    for (let i = 0; i < count!; i++) {
      const at = (uop! + i * 16) >>> 0;
      const b = gm.readBytes(at, 16);
      if (b === null || !gm.ok(at + 8, 2, true)) return EFAULT;
      const v = new DataView(b.buffer);
      const dom = v.getUint16(0, true), nr = v.getUint32(4, true), list = v.getUint32(12, true);
      let status = GNTST_okay;
      if (dom !== DOMID_SELF && dom !== 0) status = -2; // GNTST_bad_domain
      else if (nr > GRANT_FRAMES || !gm.ok(list, nr * 4, true)) status = GNTST_general_error;
      else {
        for (let f = 0; f < nr; f++) gm.write32((list + f * 4) >>> 0, d.layout.grantMfn + f);
        d.grantFrames = Math.max(d.grantFrames, nr);
      }
      gm.writeBytes(at + 8, new Uint8Array([status & 0xff, (status >> 8) & 0xff]));
    }
    return 0;
  }
  if (cmd === GNTTABOP.query_size) {
    // gnttab_query_size {u16 dom; OUT u32 nr_frames; OUT u32 max_nr_frames; OUT s16 status} (16 bytes)
    for (let i = 0; i < count!; i++) {
      const at = (uop! + i * 16) >>> 0;
      const dom = gm.read16(at);
      if (dom === null || !gm.ok(at, 16, true)) return EFAULT;
      const ok = dom === DOMID_SELF || dom === 0;
      gm.write32(at + 4, ok ? d.grantFrames : 0);
      gm.write32(at + 8, ok ? GRANT_FRAMES : 0);
      gm.writeBytes(at + 12, ok ? new Uint8Array([0, 0]) : new Uint8Array([0xfe, 0xff]));
    }
    return 0;
  }
  return ENOSYS; // set_version and the mapping operations: grant table version 1 only, no other domains
};
