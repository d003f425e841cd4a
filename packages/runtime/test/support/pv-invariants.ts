// Checks of the pv backend's memory invariants, shared by the direct-paging and fuzz tests.
import type { PvDomain } from '../../src/vmm/pv/domain';
import { PT_L1, PT_L2, PT_L3, PT_SEGDESC, TYPE_NAMES } from '../../src/vmm/pv/mm';

/**
 * "A frame is a page table or writable, never both": every present writable entry of every live
 * L1 table maps a frame that is no page table or descriptor table; every L2/L3 entry points at a
 * live table of the level below; nothing maps a frame the guest does not own. Returns the
 * violations (empty when none).
 */
export function typeViolations(d: PvDomain): string[] {
  const f = d.frames, mem = d.machine.mem, out: string[] = [];
  const table = (t: number): boolean => t === PT_L1 || t === PT_L2 || t === PT_L3 || t === PT_SEGDESC;
  for (let mfn = 0; mfn < d.layout.totalFrames; mfn++) {
    if (f.count[mfn] === 0) continue;
    const t = f.type[mfn]!;
    if (t !== PT_L1 && t !== PT_L2 && t !== PT_L3) continue;
    for (let i = 0; i < (t === PT_L3 ? 4 : 512); i++) {
      const lo = mem.read32(mfn * 4096 + i * 8);
      if ((lo & 1) === 0) continue;
      const target = lo >>> 12;
      if (!f.mappable(target)) out.push(`${TYPE_NAMES[t]} 0x${mfn.toString(16)}[${i}] maps frame 0x${target.toString(16)} the guest does not own`);
      if (t === PT_L1 && (lo & 2) !== 0 && f.count[target]! > 0 && table(f.type[target]!)) out.push(`L1 0x${mfn.toString(16)}[${i}] maps ${TYPE_NAMES[f.type[target]!]} 0x${target.toString(16)} writable`);
      if (t !== PT_L1 && (f.count[target] === 0 || f.type[target] !== t - 1)) out.push(`${TYPE_NAMES[t]} 0x${mfn.toString(16)}[${i}] points at 0x${target.toString(16)}, not a live ${TYPE_NAMES[t - 1]}`);
    }
  }
  return out;
}
