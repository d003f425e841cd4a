// Running a multiboot guest under a named backend: `native` (no monitor), `deprivileged` (the
// original image in ring 1, trap-and-emulate only) and `rewrite` (the image patched by
// `ringshift rewrite`, in ring 1 under the monitor of docs/patch-abi.md) and `hvm` (the original
// image in ring 0 of modelled VMX non-root operation, vmm/hvm/, docs/exits.md). One Machine, one
// multiboot loader and one run loop for all of them; the monitor is an Interceptor on the CPU.
// `pv` is the exception: a Xen PV kernel (vmm/pv/, docs/pv-abi.md) has its own domain builder
// and run loop (its timer is Xen's, not the PIT), on the same Machine.
import * as F from '../cpu/eflags';
import { SegReg } from '../cpu/registers';
import { Machine, type MachineOptions, type RunLimits, type RunReport } from '../machine/machine';
import { MULTIBOOT_INFO_ADDRESS, loadMultiboot, type MultibootLoad } from '../machine/multiboot';
import type { ExitStats } from './accounting';
import { checkRewrittenImage, hasPatchMap, type RewrittenImage } from './rewrite/image';
import { PatchMapError } from './rewrite/patchmap';
import { Ring1Monitor, ring1MemoryBytes } from './ring1/monitor';
import type { ControlWords } from './hvm/controls';
import { HvmMonitor, hvmMemoryBytes } from './hvm/monitor';
import { isPvImage } from './pv/elfnotes';
import { PvImageError } from './pv/elf';
import { loadPv, type PvGuest } from './pv/loader';

export const BACKENDS = ['native', 'rewrite', 'deprivileged', 'hvm', 'pv'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface GuestOptions {
  backend: BackendName;
  /** Guest RAM (default 128 MiB); the monitor's memory is added above it. */
  memoryBytes?: number;
  machine?: Omit<MachineOptions, 'memoryBytes'>;
  cmdline?: string;
  /** For `rewrite`: the unpatched image, to check the patch map's SHA-256 against. */
  original?: Uint8Array;
  /** For `hvm`: the VM-execution controls (vmm/hvm/controls.ts parseControls; default KVM's). */
  hvmControls?: ControlWords;
  /** For `pv`: boot as the initial domain (console_io, default) or as a domU (console ring). */
  pvInitialDomain?: boolean;
}

export interface Guest {
  backend: BackendName;
  machine: Machine;
  loaded: MultibootLoad;
  /** The ring-1 monitor (rewrite, deprivileged), else null. */
  monitor: Ring1Monitor | null;
  rewritten: RewrittenImage | null;
  /** The VT-x-style monitor (hvm). */
  hvm?: HvmMonitor;
  /** The PV domain (pv). */
  pv?: PvGuest;
}

export interface GuestReport extends RunReport {
  /** Exit counts (rewrite, deprivileged, hvm). */
  stats?: ExitStats;
  /** pv: the SHUTDOWN_* reason name the run ended with (SCHEDOP_shutdown), 'crash' also when the monitor crashed the domain. */
  shutdown?: string;
}

/**
 * Loads `image` for `backend`. Throws MultibootError (the image cannot boot) or PatchMapError
 * (rewrite: no patch map, or one that does not match the image; deprivileged: a patched image).
 */
export function loadGuest(image: Uint8Array, opts: GuestOptions): Guest {
  const guestRam = opts.memoryBytes ?? 128 << 20;
  const cmdline = opts.cmdline === undefined ? {} : { cmdline: opts.cmdline };
  const pvImage = isPvImage(image);
  if (opts.backend === 'pv') {
    if (!pvImage) throw new PvImageError('--backend pv runs Xen PV kernels (ELF notes or a __xen_guest section, elfnote.h); this image has neither: use --backend native, rewrite, deprivileged or hvm for a multiboot kernel');
    const pv = loadPv(image, { memoryBytes: guestRam, ...(opts.machine === undefined ? {} : { machine: opts.machine }), ...cmdline, ...(opts.pvInitialDomain === undefined ? {} : { initialDomain: opts.pvInitialDomain }) });
    const loaded: MultibootLoad = { entry: pv.boot.params.virtEntry, infoAddress: pv.boot.startInfoVa, loaded: [{ start: pv.boot.params.virtKstart, end: pv.boot.params.virtKend }] };
    return { backend: 'pv', machine: pv.machine, loaded, monitor: null, rewritten: null, pv };
  }
  if (pvImage && !hasMultibootHeader(image)) {
    throw new PvImageError(`this is a Xen PV kernel (it has Xen ELF notes and no multiboot header): run it with --backend pv, not --backend ${opts.backend}`);
  }
  if (opts.backend === 'native') {
    const machine = new Machine({ ...opts.machine, memoryBytes: guestRam });
    const loaded = loadMultiboot(machine, image, cmdline);
    return { backend: 'native', machine, loaded, monitor: null, rewritten: null };
  }
  if (opts.backend === 'hvm') {
    if (hasPatchMap(image)) throw new PatchMapError('--backend hvm runs unpatched images (the guest runs unmodified in VMX non-root ring 0); this one carries a patch map');
    const machine = new Machine({ ...opts.machine, memoryBytes: hvmMemoryBytes(guestRam) });
    const loaded = loadMultiboot(machine, image, cmdline);
    hideMonitorMemory(machine, guestRam);
    const hvm = new HvmMonitor(machine, { guestRamBytes: guestRam, ...(opts.hvmControls === undefined ? {} : { controls: opts.hvmControls }) });
    hvm.start();
    return { backend: 'hvm', machine, loaded, monitor: null, rewritten: null, hvm };
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
  if (g.pv !== undefined) {
    return { ...g.pv.domain.run(limits), stats: g.pv.domain.accounting.stats() };
  }
  const report: GuestReport = g.machine.run(limits);
  if (g.hvm !== undefined) return hvmReport(g.hvm, g.machine, report);
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

/** hvm: the guest's state is the CPU's own (ring 0, real CRs); a triple fault is exit reason 2. */
function hvmReport(hvm: HvmMonitor, machine: Machine, report: GuestReport): GuestReport {
  const cpu = machine.cpu;
  if (report.reason === 'triple-fault' && cpu.shutdownReason !== '') hvm.recordTripleFault();
  if (report.reason === 'unsupported' && cpu.lastExit !== null && report.detail?.startsWith('monitor exit')) {
    report.detail = `the monitor refused: ${cpu.lastExit.detail ?? `exit reason ${cpu.lastExit.reason}`}`;
  }
  report.stats = hvm.accounting.stats();
  return report;
}

/**
 * The monitor, as the guest's boot loader, gives it a memory map without the monitor's memory:
 * mem_upper and the last available range end at the guest's RAM (multiboot §3.3); so do the
 * CMOS memory-size bytes, which a kernel may read instead (found by `ringshift check`).
 */
function hideMonitorMemory(machine: Machine, guestRam: number): void {
  machine.cmos.setMemorySize(guestRam);
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

/** A multiboot header (magic 0x1BADB002, checksum) in the first 8 KiB, 4-byte aligned (multiboot §3.1.1). */
function hasMultibootHeader(image: Uint8Array): boolean {
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  for (let at = 0; at + 12 <= Math.min(image.length, 8192); at += 4) {
    const magic = v.getUint32(at, true);
    if (magic === 0x1badb002 && ((magic + v.getUint32(at + 4, true) + v.getUint32(at + 8, true)) >>> 0) === 0) return true;
  }
  return false;
}
