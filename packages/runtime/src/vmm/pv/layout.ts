// Where things are: the machine frames the monitor keeps for itself (below the guest's) and the
// monitor's part of the guest's linear space (the hypervisor hole, from 0xF5800000).
//
//   machine frames (MFN)                          guest linear (hole)
//   0                    unused                   0xF5800000  M2P table, read-only (MACH2PHYS_VIRT_START)
//   1 ..                 M2P table                0xFFFE0000  the real GDT, read-only, supervisor only
//   ..  +15              the real GDT             everything else in the hole: not present
//   ..  +1               shared_info
//   ..  +GRANT_FRAMES    grant table frames
//   firstGuestMfn ..     the guest's RAM (pfn p is mfn p + firstGuestMfn at boot)
//
// The guest's frames do not start at machine 0 on purpose: a PV kernel must translate between
// its pseudo-physical frames and machine frames (P2M, M2P) as it would under Xen, and a kernel
// that confuses the two fails here as it would there.
import { MONITOR_LINEAR } from '../ring1/monitor';
import { MACH2PHYS_VIRT_END_PAE, MACH2PHYS_VIRT_START_PAE } from './abi';
import { PV_GDT_PAGES } from './gdt';

/** Linear address of the real GDT (the ring-1 monitor's window at the top of the space). */
export const PV_GDT_LINEAR = MONITOR_LINEAR;
/** grant_table.h: frames offered by GNTTABOP_setup_table (max_grant_frames). */
export const GRANT_FRAMES = 4;

export interface PvLayout {
  nrPages: number;
  m2pMfn: number;
  m2pFrames: number;
  gdtMfn: number;
  sharedInfoMfn: number;
  grantMfn: number;
  firstGuestMfn: number;
  totalFrames: number;
}

export function pvLayout(guestRamBytes: number): PvLayout {
  const nrPages = Math.floor(guestRamBytes / 4096);
  let monitorFrames = 256;
  for (;;) {
    const totalFrames = monitorFrames + nrPages;
    const m2pFrames = Math.ceil((totalFrames * 4) / 4096);
    const need = 1 + m2pFrames + PV_GDT_PAGES + 1 + GRANT_FRAMES;
    if (need <= monitorFrames) {
      const m2pMfn = 1, gdtMfn = m2pMfn + m2pFrames, sharedInfoMfn = gdtMfn + PV_GDT_PAGES, grantMfn = sharedInfoMfn + 1;
      if (MACH2PHYS_VIRT_START_PAE + totalFrames * 4 > MACH2PHYS_VIRT_END_PAE) throw new RangeError('guest memory too large for the PAE M2P window');
      return { nrPages, m2pMfn, m2pFrames, gdtMfn, sharedInfoMfn, grantMfn, firstGuestMfn: monitorFrames, totalFrames };
    }
    monitorFrames = Math.ceil(need / 256) * 256;
  }
}
