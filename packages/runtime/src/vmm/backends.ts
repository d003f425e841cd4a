// Running a multiboot guest under a named backend: `native` (no monitor), `deprivileged` (the
// original image in ring 1, trap-and-emulate only) and `rewrite` (the image patched by
// `ringshift rewrite`, in ring 1 under the monitor of docs/patch-abi.md). One Machine, one
// multiboot loader and one run loop for all of them; the monitor is an Interceptor on the CPU.
import * as F from '../cpu/eflags';
import { SegReg } from '../cpu/registers';
import { Machine, type MachineOptions, type RunLimits, type RunReport } from '../machine/machine';
import { MULTIBOOT_INFO_ADDRESS, loadMultiboot, type MultibootLoad } from '../machine/multiboot';
import type { ExitStats } from './accounting';
import { checkRewrittenImage, hasPatchMap, type RewrittenImage } from './rewrite/image';
import { PatchMapError } from './rewrite/patchmap';
import { Ring1Monitor, ring1MemoryBytes } from './ring1/monitor';

export const BACKENDS = ['native', 'rewrite', 'deprivileged'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface GuestOptions {
  backend: BackendName;
  /** Guest RAM (default 128 MiB); the monitor's memory is added above it. */
  memoryBytes?: number;
  machine?: Omit<MachineOptions, 'memoryBytes'>;
  cmdline?: string;
  /** For `rewrite`: the unpatched image, to check the patch map's SHA-256 against. */
  original?: Uint8Array;
}

export interface Guest {
  backend: BackendName;
  machine: Machine;
  loaded: MultibootLoad;
  /** The ring-1 monitor (rewrite, deprivileged), else null. */
  monitor: Ring1Monitor | null;
  rewritten: RewrittenImage | null;
}

export interface GuestReport extends RunReport {
  /** Exit counts (rewrite, deprivileged). */
  stats?: ExitStats;
}

/**
 * Loads `image` for `backend`. Throws MultibootError (the image cannot boot) or PatchMapError
 * (rewrite: no patch map, or one that does not match the image; deprivileged: a patched image).
 */
export function loadGuest(image: Uint8Array, opts: GuestOptions): Guest {
  const guestRam = opts.memoryBytes ?? 128 << 20;
  const cmdline = opts.cmdline === undefined ? {} : { cmdline: opts.cmdline };
  if (opts.backend === 'native') {
    const machine = new Machine({ ...opts.machine, memoryBytes: guestRam });
    const loaded = loadMultiboot(machine, image, cmdline);
    return { backend: 'native', machine, loaded, monitor: null, rewritten: null };
  }
  let rewritten: RewrittenImage | null = null;
  if (opts.backend === 'rewrite') {
    rewritten = checkRewrittenImage(image, opts.original === undefined ? {} : { original: opts.original });
  } else if (hasPatchMap(image)) {
    throw new PatchMapError('--backend deprivileged runs unpatched images (trap-and-emulate only); this one carries a patch map: use --backend rewrite');
  }
  const machine = new Machine({ ...opts.machine, memoryBytes: ring1MemoryBytes(guestRam, rewritten) });
  const loaded = loadMultiboot(machine, rewritten?.guestImage ?? image, cmdline);
  hideMonitorMemory(machine, guestRam);
  const monitor = new Ring1Monitor(machine, { guestRamBytes: guestRam, rewrite: rewritten });
  monitor.start();
  return { backend: opts.backend, machine, loaded, monitor, rewritten };
}

/** Runs a loaded guest; for the ring-1 backends the report shows the guest's virtual state. */
export function runGuest(g: Guest, limits: RunLimits = {}): GuestReport {
  const m = g.monitor;
  if (m !== null && (limits.traceLast ?? 0) > 0) {
    // Machine.run's tracer polls the PIC itself, past the monitor's virtual-IF gate.
    throw new RangeError(`tracing (traceLast) is not available with the ${g.backend} backend`);
  }
  const report: GuestReport = g.machine.run(limits);
  if (m === null) return report;
  const cpu = g.machine.cpu;
  if (report.reason === 'unsupported' && cpu.lastExit !== null && report.detail?.startsWith('monitor exit')) {
    report.detail = `the monitor refused: ${cpu.lastExit.detail ?? `exit reason ${cpu.lastExit.reason}`}`;
  }
  const r = report.registers;
  // Stopped right after an escaped instruction (e.g. the OUT to isa-debug-exit): report the
  // original next address, as native does, not the stub's.
  const site = g.rewritten?.byEscape.get((r.eip - 2) >>> 0);
  if (site !== undefined && site.stubKind === 'escape' && cpu.segBase[SegReg.CS] === 0) r.eip = (site.addr + site.original.length) >>> 0;
  const vcpl = m.vcpl;
  r.cr0 = m.v.cr0 >>> 0;
  r.cr3 = m.v.cr3 >>> 0;
  r.cr4 = m.v.cr4 >>> 0;
  r.cs = (cpu.sel[SegReg.CS]! & ~3) | vcpl;
  if ((r.ss & 0xfffc) !== 0) r.ss = (cpu.sel[SegReg.SS]! & ~3) | vcpl;
  r.eflags = ((r.eflags & ~(F.IF | F.IOPL)) | (m.vif ? F.IF : 0) | (m.viopl << 12)) >>> 0;
  report.stats = m.accounting.stats();
  return report;
}

/**
 * The monitor, as the guest's boot loader, gives it a memory map without the monitor's memory:
 * mem_upper and the last available range end at the guest's RAM (multiboot §3.3).
 */
function hideMonitorMemory(machine: Machine, guestRam: number): void {
  const mem = machine.mem;
  const info = MULTIBOOT_INFO_ADDRESS;
  mem.write32(info + 8, Math.max(0, guestRam - 0x100000) >>> 10);
  const mmapLength = mem.read32(info + 44) >>> 0;
  const mmapAddr = mem.read32(info + 48) >>> 0;
  for (let at = mmapAddr; at < mmapAddr + mmapLength; at += (mem.read32(at) >>> 0) + 4) {
    const base = mem.read32(at + 4) >>> 0;
    const length = mem.read32(at + 12) >>> 0;
    if (base + length > guestRam) mem.write32(at + 12, Math.max(0, guestRam - base));
  }
}
