// `ringshift run`: boots a multiboot kernel on the emulated PC, the way
// `qemu-system-i386 -kernel IMAGE -device isa-debug-exit,iobase=0xf4,iosize=0x04` does, so the
// two can be compared byte for byte: the serial output goes where QEMU's `-serial` would put
// it, and the process exit status is QEMU's for a guest that exits through isa-debug-exit.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Argv } from 'yargs';
import { BACKENDS, ControlsError, MultibootError, PatchMapError, PvImageError, loadGuest, parseControls, runGuest } from '@ringshift/runtime';
import type { BackendName, ExitStats, Guest, GuestReport, RunReport } from '@ringshift/runtime';
import type { Command } from '../main';
import { InputError, hex, parsePositive, parseSeconds, readInputFile } from '../output';
import type { Io } from '../output';

/**
 * Exit statuses of `ringshift run` besides the guest's own. A guest that writes v to
 * isa-debug-exit ends with (v << 1) | 1, truncated to 8 bits by the operating system, exactly as
 * under QEMU: always odd. The other outcomes have no QEMU equivalent that ends the process
 * (QEMU with -no-reboot exits 0 on a triple fault and spins forever on HLT with IF = 0), so they
 * get codes of their own. 2 keeps its meaning (bad usage or input, nothing was run) and 3 stays
 * the internal error. 3, 5 and 7 can also be a guest's status (v = 1, 2, 3): the report on
 * stderr (or `reason` in --json) tells them apart.
 */
export const EXIT_HALT = 4;
export const EXIT_TRIPLE_FAULT = 5;
export const EXIT_LIMIT = 6;
export const EXIT_UNSUPPORTED = 7;

interface RunArgs {
  image: string;
  backend: string;
  serial: string;
  maxInstructions?: string;
  timeout?: string;
  traceLast?: string;
  realtime?: boolean;
  input?: string;
  memory?: string;
  json?: boolean;
  cmdline?: string;
  stats?: boolean;
  hvmControls?: string;
  pvDomain?: string;
}

/** Backends named in ARCHITECTURE.md that later issues add, and what each one is. */
const PLANNED_BACKENDS: Record<string, string> = {};

export const runCommand: Command<RunArgs> = {
  command: 'run <image>',
  describe: 'boot a multiboot ELF32 kernel (or, with --backend pv, a Xen PV kernel) on the emulated PC (serial on stdout, guest exit status as QEMU gives it)',
  builder: (y: Argv) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'multiboot kernel (ELF32 i386, or any file whose header sets the a.out kludge), or a Xen PV kernel for --backend pv' })
      .option('backend', { type: 'string', default: 'native', describe: 'how the guest runs: native; rewrite (an image patched by `ringshift rewrite`, in ring 1 under the monitor); deprivileged (the original image in ring 1, trap-and-emulate only: shows what goes wrong); hvm (the original image in ring 0 of VT-x-style non-root operation, exits chosen by --hvm-controls); pv (a Xen 32-bit PAE PV kernel, recognised by its Xen ELF notes, in ring 1 under the hypercall ABI of docs/pv-abi.md)' })
      .option('hvm-controls', { type: 'string', describe: 'hvm: VM-execution controls to toggle, comma-separated NAME, NAME=on or NAME=off (e.g. rdtsc-exiting,ept=off,io-bitmaps); defaults and names in docs/exits.md' })
      .option('pv-domain', { type: 'string', describe: "pv: boot the kernel as Xen's initial domain ('dom0', the default: SIF_INITDOMAIN, console_io) or as an unprivileged guest ('domU': console ring and xenstore page, as the toolstack's domain builder sets up)" })
      .option('stats', { type: 'boolean', describe: 'rewrite/deprivileged/hvm/pv: print the monitor exits per reason (VT-x basic exit reasons for hvm, one line per hypercall for pv) and per site (in the report, or in --json)' })
      .option('serial', { type: 'string', default: 'stdio', describe: "where COM1 output goes: 'stdio', or a file written when the run ends" })
      .option('max-instructions', { type: 'string', describe: 'stop after this many instructions (reason budget, exit 6)' })
      .option('timeout', { type: 'string', describe: 'stop after this many seconds of host time (reason timeout, exit 6)' })
      .option('trace-last', { type: 'string', describe: 'show the last N instructions executed in the report' })
      .option('json', { type: 'boolean', describe: 'print the run report as JSON on stdout; serial output then goes to stderr (or --serial FILE)' })
      .option('realtime', { type: 'boolean', default: false, describe: 'guest time follows the host clock instead of retired instructions (runs are then not reproducible)' })
      .option('input', { type: 'string', describe: "bytes the guest receives on COM1 (UTF-8); '-' reads them all from stdin first" })
      .option('memory', { type: 'string', describe: 'guest RAM in MiB (default 128), like QEMU -m' })
      .option('cmdline', { type: 'string', describe: 'kernel command line; the kernel sees "IMAGE STR", as under QEMU -append' })
      .example('$0 run examples/hello/hello.elf', '')
      .example('$0 run examples/hello/hello.elf --json --serial out.txt --timeout 10', '') as Argv<RunArgs>,
  run: async (args, io) => run(args, io),
};

function run(args: RunArgs, io: Io): number {
  checkBackend(args.backend);
  const maxInstructions = args.maxInstructions === undefined ? undefined : parsePositive(args.maxInstructions, '--max-instructions', 'a positive number of instructions');
  const traceLast = args.traceLast === undefined ? undefined : parsePositive(args.traceLast, '--trace-last', 'a positive number of instructions');
  if (traceLast !== undefined && args.backend !== 'native') throw new InputError(`--trace-last is available with --backend native only (its tracer bypasses the ${args.backend} monitor's virtual interrupt flag)`);
  const timeoutMs = args.timeout === undefined ? undefined : parseSeconds(args.timeout);
  const toFile = args.serial !== 'stdio';
  if (args.serial === '') throw new InputError("invalid --serial '': expected 'stdio' or a file name");

  if (args.hvmControls !== undefined && args.backend !== 'hvm') throw new InputError(`--hvm-controls applies to --backend hvm only, not ${args.backend}`);
  if (args.pvDomain !== undefined && args.backend !== 'pv') throw new InputError(`--pv-domain applies to --backend pv only, not ${args.backend}`);
  if (args.pvDomain !== undefined && args.pvDomain !== 'dom0' && args.pvDomain !== 'domU') throw new InputError(`invalid --pv-domain '${args.pvDomain}': expected dom0 (the initial domain) or domU`);
  let hvmControls;
  try {
    hvmControls = args.hvmControls === undefined ? undefined : parseControls(args.hvmControls);
  } catch (e) {
    if (e instanceof ControlsError) throw new InputError(e.message);
    throw e;
  }
  const image = readInputFile(args.image);
  const serial = toFile ? new Collector() : new Streamer(args.json ? bytesSink(io, 'stderr') : bytesSink(io, 'stdout'));
  const memoryMiB = args.memory === undefined ? 128 : parsePositive(args.memory, '--memory', 'a positive number of MiB');
  if (memoryMiB > 3072) throw new InputError(`invalid --memory '${args.memory}': at most 3072 MiB (the top of the 4 GiB space is for devices)`);
  const input = args.input === undefined ? undefined : args.input === '-' ? new Uint8Array(readFileSync(0)) : new TextEncoder().encode(args.input);
  let guest: Guest;
  try {
    // QEMU hands the kernel "IMAGE ARGS" as its command line (GRUB likewise starts it with the
    // kernel's path); doing the same keeps a guest that prints it comparable.
    guest = loadGuest(image, {
      backend: args.backend as BackendName,
      memoryBytes: memoryMiB * 1024 * 1024,
      machine: { serialOut: (b) => serial.put(b), realtime: args.realtime === true, ...(input === undefined ? {} : { serialIn: input }) },
      // Xen gives a PV kernel the command line alone (xl's cmdline=; dom0's with the image name
      // stripped by cmdline_cook in xen/arch/x86/setup.c).
      cmdline: args.backend === 'pv' ? args.cmdline ?? '' : `${args.image} ${args.cmdline ?? ''}`,
      ...(hvmControls === undefined ? {} : { hvmControls }),
      ...(args.pvDomain === undefined ? {} : { pvInitialDomain: args.pvDomain === 'dom0' }),
    });
  } catch (e) {
    if (e instanceof MultibootError || e instanceof PatchMapError || e instanceof PvImageError) throw new InputError(`${args.image}: ${e.message}`);
    throw e;
  }
  const loaded = guest.loaded;

  const limits: { maxInstructions?: number; timeoutMs?: number; traceLast?: number } = {};
  if (maxInstructions !== undefined) limits.maxInstructions = maxInstructions;
  if (timeoutMs !== undefined) limits.timeoutMs = timeoutMs;
  if (traceLast !== undefined) limits.traceLast = traceLast;
  const started = performance.now();
  const { stats, ...report } = runGuest(guest, limits);
  const elapsedMs = performance.now() - started;
  serial.end();
  if (serial instanceof Collector) writeAtomically(args.serial, serial.bytes());

  const code = exitCodeOf(report);
  if (args.json) {
    io.stdout(`${JSON.stringify({
      image: args.image, backend: args.backend, entry: loaded.entry, ...report, exitCode: code,
      serialBytes: serial.count, elapsedMs: Math.round(elapsedMs), ...(args.stats && stats ? { stats } : {}),
    })}\n`);
  } else {
    io.stderr(describeReport(report, code, elapsedMs));
    if (args.stats && stats) io.stderr(describeStats(stats, report.instructions));
  }
  return code;
}

/** The process exit status for a run report (table in packages/cli/README.md). */
export function exitCodeOf(report: Pick<RunReport, 'reason' | 'exitStatus'>): number {
  switch (report.reason) {
    case 'exit':
      if (report.exitStatus === undefined) throw new Error("run report with reason 'exit' has no exitStatus");
      // What exit((v << 1) | 1) gives QEMU's parent: the low 8 bits.
      return report.exitStatus & 0xff;
    case 'halt': return EXIT_HALT;
    case 'triple-fault': return EXIT_TRIPLE_FAULT;
    case 'budget':
    case 'timeout': return EXIT_LIMIT;
    case 'unsupported': return EXIT_UNSUPPORTED;
  }
}

function checkBackend(backend: string): void {
  if ((BACKENDS as readonly string[]).includes(backend)) return;
  const planned = PLANNED_BACKENDS[backend];
  if (planned) {
    throw new InputError(`--backend ${backend} is not available yet: it is ${planned}, which is still to come; only --backend native runs guests for now`);
  }
  throw new InputError(`unknown --backend '${backend}': expected ${BACKENDS.join(', ')}`);
}

function bytesSink(io: Io, stream: 'stdout' | 'stderr'): (bytes: Uint8Array) => void {
  const raw = stream === 'stdout' ? io.stdoutBytes : io.stderrBytes;
  if (raw) return (bytes) => raw.call(io, bytes);
  const text = stream === 'stdout' ? io.stdout : io.stderr;
  return (bytes) => text.call(io, String.fromCharCode(...bytes));
}

/** Serial bytes to a stream as the guest writes them: a line at a time, or 4 KiB without a newline. */
class Streamer {
  private buf = new Uint8Array(4096);
  private n = 0;
  count = 0;
  constructor(private readonly sink: (bytes: Uint8Array) => void) {}

  put(byte: number): void {
    this.buf[this.n++] = byte;
    this.count++;
    if (byte === 0x0a || this.n === this.buf.length) this.end();
  }

  end(): void {
    if (this.n === 0) return;
    // A copy: the sink may keep the array (an asynchronous pipe write) while we refill ours.
    this.sink(this.buf.slice(0, this.n));
    this.n = 0;
  }
}

/** Serial bytes kept in memory for --serial FILE. */
class Collector {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(1 << 16);
  private n = 0;
  count = 0;

  put(byte: number): void {
    if (this.n === this.buf.length) {
      this.chunks.push(this.buf);
      this.buf = new Uint8Array(this.buf.length);
      this.n = 0;
    }
    this.buf[this.n++] = byte;
    this.count++;
  }

  end(): void {}

  bytes(): Uint8Array {
    const out = new Uint8Array(this.count);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    out.set(this.buf.subarray(0, this.n), at);
    return out;
  }
}

/** Writes next to the target and renames, so a reader never sees half a file. */
function writeAtomically(path: string, bytes: Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new InputError(`cannot write --serial ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

const REASONS: Record<RunReport['reason'], string> = {
  exit: 'the guest exited through isa-debug-exit',
  'triple-fault': 'triple fault: the processor shut down',
  halt: 'halted with interrupts disabled: nothing can wake it',
  budget: 'instruction budget used up (--max-instructions)',
  timeout: 'time limit reached (--timeout)',
  unsupported: 'the guest used something the emulator does not implement',
};

/** --stats: monitor exits per reason, per way in, and the busiest sites. */
export function describeStats(s: ExitStats, instructions: number): string {
  const lines = [`  monitor exits: ${s.total} (${instructions > 0 ? Math.round((s.total * 1e6) / instructions) : 0} per million instructions); traps of unpatched sites (misses): ${s.misses}`];
  lines.push(`  by way in: ${Object.entries(s.byVia).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  lines.push('  by reason:');
  for (const [k, n] of Object.entries(s.byReason)) lines.push(`    ${String(n).padStart(10)}  ${k}`);
  const top = s.bySite.slice(0, 20);
  if (top.length > 0) {
    lines.push(`  by site (${top.length} of ${s.bySite.length}):`);
    for (const x of top) lines.push(`    ${String(x.count).padStart(10)}  ${hex(x.address, 8)}  ${x.via.padEnd(6)}  ${x.text}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The human-readable report, for stderr. */
export function describeReport(report: RunReport & Pick<GuestReport, 'shutdown'>, code: number, elapsedMs: number): string {
  const lines: string[] = [];
  // pv: the guest stopped by SCHEDOP_shutdown (or the monitor crashed it), status (reason << 1) | 1.
  const pv = report.reason === 'exit' ? report.shutdown : undefined;
  const how = pv === undefined ? REASONS[report.reason]
    : report.detail?.startsWith('domain crashed') ? 'the monitor crashed the PV domain (docs/pv-abi.md)'
      : 'the PV guest shut down through SCHEDOP_shutdown (docs/pv-abi.md)';
  const status = report.reason === 'exit' ? `, status ${code} (${pv === undefined ? `guest wrote ${(report.exitStatus ?? 1) >>> 1}` : `SHUTDOWN_${pv}`})` : '';
  lines.push(`ringshift run: ${report.reason}${status}: ${how}`);
  lines.push(`  ${report.instructions} instructions in ${(elapsedMs / 1000).toFixed(3)} s; exit code ${code}`);
  if (report.detail) lines.push(`  ${report.detail}`);
  const r = report.registers;
  const row = (names: (keyof RunReport['registers'])[], width: number): string =>
    `  ${names.map((k) => `${k.padStart(6)}=${hex(r[k] >>> 0, width)}`).join(' ')}`;
  lines.push(row(['eax', 'ecx', 'edx', 'ebx'], 8));
  lines.push(row(['esp', 'ebp', 'esi', 'edi'], 8));
  lines.push(row(['eip', 'eflags'], 8) + row(['cs', 'ds', 'ss'], 4).slice(1));
  lines.push(row(['cr0', 'cr2', 'cr3', 'cr4'], 8));
  if (report.lastInstructions && report.lastInstructions.length > 0) {
    lines.push(`  last ${report.lastInstructions.length} instructions:`);
    for (const i of report.lastInstructions) lines.push(`    ${hex(i.address >>> 0, 8)}  ${i.text}`);
  }
  return `${lines.join('\n')}\n`;
}
