// `ringshift compare`: runs one guest under several backends and diffs what the guest made
// visible: its serial output, how the run ended (exit status), its final registers as the
// guest sees them (the ring-1 backends report the virtual CR0/CR3/CR4, IF, IOPL and CS/SS RPL,
// runtime/src/vmm/backends.ts), and its guest time: the instructions it saw retire, which its
// TSC and timers follow (the rewrite backend's patch jumps and stub plumbing do not count). Where a backend needs a patched image (`rewrite`), the image is
// rewritten in memory with @ringshift/rewriter's rewriteImage, exactly as `ringshift rewrite`
// does with its defaults. Exit 0 when every backend agrees with the first, 1 with the first
// divergence of each kind, 2 on bad input. The runtime never imports the rewriter: the two meet
// here.
import type { Argv } from 'yargs';
import { ElfError, RewriteInputError, rewriteImage } from '@ringshift/rewriter';
import { BACKENDS, MultibootError, PatchMapError, PvImageError, hasPatchMap, loadGuest, runGuest } from '@ringshift/runtime';
import type { BackendName, ExitStats, GuestReport, RunRegisters } from '@ringshift/runtime';
import type { Command } from '../main';
import { BufferedWriter, EXIT_FOUND, EXIT_OK, InputError, hex, parsePositive, parseSeconds, readInputFile } from '../output';
import type { Io } from '../output';
import { exitCodeOf } from './run';

interface CompareArgs {
  image: string;
  backends: string;
  maxInstructions?: string;
  timeout?: string;
  json?: boolean;
}

/** The registers compared, in the report's order (runtime RunRegisters). */
export const COMPARED_REGISTERS: readonly (keyof RunRegisters)[] = [
  'eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'eip', 'eflags', 'cs', 'ds', 'ss', 'cr0', 'cr2', 'cr3', 'cr4',
];
/** Lines of serial output shown before the diverging line, from each side. */
const CONTEXT_BEFORE = 2;
/** Lines shown after it. */
const CONTEXT_AFTER = 1;

export const compareCommand: Command<CompareArgs> = {
  command: 'compare <image>',
  describe: 'run a kernel under several backends (rewriting it in memory where needed) and diff serial output, exit status and final guest state',
  builder: (y: Argv) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'the original multiboot kernel (not one patched by ringshift rewrite)' })
      .option('backends', { type: 'string', default: 'native,rewrite', describe: `comma-separated, two or more of ${BACKENDS.join(', ')}; the first is the reference` })
      .option('max-instructions', { type: 'string', describe: 'stop each run after this many instructions (rewrite retires more than native for the same work)' })
      .option('timeout', { type: 'string', describe: 'stop each run after this many seconds of host time' })
      .option('json', { type: 'boolean', describe: 'print the runs and the differences as one JSON object on stdout' })
      .example('$0 compare examples/hello/hello.elf', 'native and rewrite: exit 0, identical')
      .example('$0 compare examples/sensitive/sensitive.elf --backends native,deprivileged', 'exit 1: the first divergence') as Argv<CompareArgs>,
  run: async (args, io) => compare(args, io),
};

/** One backend's run, as compared and as printed with --json. */
export interface CompareRun {
  backend: BackendName;
  reason: GuestReport['reason'];
  exitStatus?: number;
  /** What `ringshift run` would exit with. */
  exitCode: number;
  detail?: string;
  instructions: number;
  /** Instructions the guest saw retire (its guest time; runtime RunReport.guestInstructions). */
  guestInstructions: number;
  registers: RunRegisters;
  serialBytes: number;
  elapsedMs: number;
  /** Monitor exits (rewrite, deprivileged). */
  exits?: { total: number; perMillionInstructions: number; misses: number; byVia: ExitStats['byVia'] };
}

export type Difference =
  | { backend: BackendName; against: BackendName; kind: 'exit'; values: [Outcome, Outcome] }
  | {
      backend: BackendName; against: BackendName; kind: 'serial';
      /** Byte offset (from 0) of the first differing byte; line and column count from 1. */
      offset: number; line: number; column: number;
      /** The bytes at `offset` on each side, null past the end. */
      bytes: [number | null, number | null];
      lengths: [number, number];
      /** Lines around the divergence on each side, escaped, with their line numbers. */
      context: [ContextLine[], ContextLine[]];
    }
  | { backend: BackendName; against: BackendName; kind: 'registers'; registers: { name: keyof RunRegisters; values: [number, number] }[] }
  /** The instructions the guest saw retire (guest time, which RDTSC and the timers read). */
  | { backend: BackendName; against: BackendName; kind: 'guest-time'; values: [number, number] };

interface Outcome { reason: GuestReport['reason']; exitCode: number }
interface ContextLine { line: number; text: string }

interface Ran { run: CompareRun; serial: Uint8Array }

function compare(args: CompareArgs, io: Io): number {
  const backends = parseBackendList(args.backends);
  const maxInstructions = args.maxInstructions === undefined ? undefined : parsePositive(args.maxInstructions, '--max-instructions', 'a positive number of instructions');
  const timeoutMs = args.timeout === undefined ? undefined : parseSeconds(args.timeout);
  const image = readInputFile(args.image);
  if (hasPatchMap(image)) {
    throw new InputError(`${args.image} carries a patch map (it was written by \`ringshift rewrite\`): pass the original image; compare rewrites it in memory for the backends that need it`);
  }

  let rewrite: { image: Uint8Array; sites: number; patched: number } | null = null;
  if (backends.includes('rewrite')) {
    try {
      const r = rewriteImage(image);
      rewrite = { image: r.image, sites: r.report.sites, patched: r.report.patched };
    } catch (e) {
      if (e instanceof ElfError || e instanceof RewriteInputError) throw new InputError(`${args.image}: ${e.message}`);
      throw e;
    }
  }

  const limits: { maxInstructions?: number; timeoutMs?: number } = {};
  if (maxInstructions !== undefined) limits.maxInstructions = maxInstructions;
  if (timeoutMs !== undefined) limits.timeoutMs = timeoutMs;
  // Every backend boots first, so that an image one of them refuses is bad input (exit 2)
  // before anything has run.
  const guests = backends.map((backend) => {
    const serial: number[] = [];
    const bytes = backend === 'rewrite' ? rewrite!.image : image;
    try {
      const guest = loadGuest(bytes, {
        backend,
        machine: { serialOut: (b) => void serial.push(b) },
        // As `ringshift run` (and QEMU -kernel) give it, the same for every backend.
        cmdline: `${args.image} `,
        ...(backend === 'rewrite' ? { original: image } : {}),
      });
      return { backend, guest, serial };
    } catch (e) {
      if (e instanceof MultibootError || e instanceof PatchMapError || e instanceof PvImageError) throw new InputError(`${args.image} (${backend}): ${e.message}`);
      throw e;
    }
  });
  const runs: Ran[] = guests.map(({ backend, guest, serial }) => {
    const started = performance.now();
    const { stats, ...report } = runGuest(guest, limits);
    const elapsedMs = Math.round(performance.now() - started);
    const run: CompareRun = {
      backend, reason: report.reason, exitCode: exitCodeOf(report), instructions: report.instructions, guestInstructions: report.guestInstructions,
      registers: report.registers, serialBytes: serial.length, elapsedMs,
    };
    if (report.exitStatus !== undefined) run.exitStatus = report.exitStatus;
    if (report.detail !== undefined) run.detail = report.detail;
    if (stats !== undefined) {
      run.exits = { total: stats.total, perMillionInstructions: perMillion(stats.total, report.instructions), misses: stats.misses, byVia: stats.byVia };
    }
    return { run, serial: Uint8Array.from(serial) };
  });

  const reference = runs[0]!;
  const differences = runs.slice(1).flatMap((other) => diffRuns(reference, other));
  const out = new BufferedWriter(io.stdout);
  if (args.json) {
    out.write(`${JSON.stringify({
      image: args.image,
      equal: differences.length === 0,
      reference: reference.run.backend,
      ...(rewrite === null ? {} : { rewrite: { sites: rewrite.sites, patched: rewrite.patched, trapped: rewrite.sites - rewrite.patched } }),
      runs: runs.map((r) => r.run),
      differences,
    })}\n`);
  } else {
    printText(out, args.image, runs, differences, rewrite);
  }
  out.flush();
  return differences.length === 0 ? EXIT_OK : EXIT_FOUND;
}

/** The differences of `b` from the reference `a`, at most one of each kind. */
function diffRuns(a: Ran, b: Ran): Difference[] {
  const pair = { backend: b.run.backend, against: a.run.backend };
  const out: Difference[] = [];
  if (a.run.reason !== b.run.reason || a.run.exitCode !== b.run.exitCode) {
    out.push({ ...pair, kind: 'exit', values: [outcome(a.run), outcome(b.run)] });
  }
  const serial = diffSerial(a.serial, b.serial);
  if (serial !== null) out.push({ ...pair, kind: 'serial', ...serial });
  const registers = COMPARED_REGISTERS
    .filter((k) => a.run.registers[k] >>> 0 !== b.run.registers[k] >>> 0)
    .map((name) => ({ name, values: [a.run.registers[name] >>> 0, b.run.registers[name] >>> 0] as [number, number] }));
  if (registers.length > 0) out.push({ ...pair, kind: 'registers', registers });
  if (a.run.guestInstructions !== b.run.guestInstructions) out.push({ ...pair, kind: 'guest-time', values: [a.run.guestInstructions, b.run.guestInstructions] });
  return out;
}

const outcome = (r: CompareRun): Outcome => ({ reason: r.reason, exitCode: r.exitCode });

/** The first byte where two outputs differ (or where the shorter one ends), with context; null if equal. */
export function diffSerial(a: Uint8Array, b: Uint8Array): Omit<Extract<Difference, { kind: 'serial' }>, 'backend' | 'against' | 'kind'> | null {
  const n = Math.min(a.length, b.length);
  let offset = 0;
  while (offset < n && a[offset] === b[offset]) offset++;
  if (offset === n && a.length === b.length) return null;
  // Line and column of the offset: the same on both sides, as everything before it is equal.
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (a[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return {
    offset, line, column: offset - lineStart + 1,
    bytes: [offset < a.length ? a[offset]! : null, offset < b.length ? b[offset]! : null],
    lengths: [a.length, b.length],
    context: [contextLines(a, line), contextLines(b, line)],
  };
}

/** Lines line-CONTEXT_BEFORE .. line+CONTEXT_AFTER of `bytes` (those that exist), escaped. */
function contextLines(bytes: Uint8Array, line: number): ContextLine[] {
  const lines: ContextLine[] = [];
  let number = 1;
  let start = 0;
  for (let i = 0; i <= bytes.length && number <= line + CONTEXT_AFTER; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      if (number >= line - CONTEXT_BEFORE && (i > start || i < bytes.length || number === line)) {
        lines.push({ line: number, text: escapeLine(bytes.subarray(start, i)) });
      }
      number++;
      start = i + 1;
    }
  }
  return lines;
}

/** A serial line for the terminal: printable ASCII as is, CR at the end dropped, other bytes escaped. */
function escapeLine(bytes: Uint8Array): string {
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
  let s = '';
  for (let i = 0; i < end; i++) s += escapeByte(bytes[i]!);
  return s;
}

function escapeByte(b: number): string {
  if (b >= 0x20 && b < 0x7f) return b === 0x5c ? '\\\\' : String.fromCharCode(b);
  if (b === 0x0d) return '\\r';
  if (b === 0x09) return '\\t';
  return `\\x${hex(b, 2)}`;
}

function describeByte(b: number | null): string {
  if (b === null) return 'end of output';
  return b === 0x0a ? "0x0a '\\n'" : `0x${hex(b, 2)} '${escapeByte(b)}'`;
}

function describeOutcome(o: Outcome): string {
  return o.reason === 'exit' ? `exit status ${o.exitCode}` : `${o.reason} (exit code ${o.exitCode})`;
}

function printText(out: BufferedWriter, image: string, runs: Ran[], differences: Difference[], rewrite: { sites: number; patched: number } | null): void {
  const reference = runs[0]!.run;
  out.write(`${image}: ${runs.map((r) => r.run.backend).join(', ')}${rewrite === null ? '' : ` (rewritten in memory: ${rewrite.sites} sites, ${rewrite.patched} patched with a jump, ${rewrite.sites - rewrite.patched} left to trap)`}\n`);
  const width = Math.max(...runs.map((r) => r.run.backend.length));
  for (const { run } of runs) {
    const ending = run.reason === 'exit' ? `exit status ${run.exitCode} (guest wrote ${(run.exitStatus ?? 1) >>> 1})` : `${run.reason}, exit code ${run.exitCode}`;
    const seen = run.guestInstructions === run.instructions ? '' : `${run === reference ? ' (' : ', '}${run.guestInstructions} seen by the guest`;
    const ratio = run === reference || reference.instructions === 0 ? (seen === '' ? '' : `${seen})`) : ` (x${(run.instructions / reference.instructions).toFixed(3)}${seen})`;
    const exits = run.exits === undefined ? '' : `; ${run.exits.total} monitor exits (${run.exits.perMillionInstructions} per million instructions, ${run.exits.misses} misses)`;
    out.write(`  ${run.backend.padEnd(width)}  ${ending}; ${run.instructions} instructions${ratio}; ${run.serialBytes} serial bytes${exits}\n`);
    if (run.detail !== undefined) out.write(`  ${' '.repeat(width)}  ${run.detail}\n`);
  }
  if (differences.length === 0) {
    out.write(`equal: the same serial output (${reference.serialBytes} bytes), exit status, guest time (${reference.guestInstructions} instructions seen) and final registers (${COMPARED_REGISTERS.join(' ')})\n`);
    return;
  }
  for (const d of differences) {
    const who = `${d.backend} vs ${d.against}`;
    if (d.kind === 'exit') {
      out.write(`${who}: exit differs: ${d.against} ${describeOutcome(d.values[0])}, ${d.backend} ${describeOutcome(d.values[1])}\n`);
    } else if (d.kind === 'serial') {
      out.write(`${who}: serial output differs at byte ${d.offset} (line ${d.line}, column ${d.column}): ${d.against} ${describeByte(d.bytes[0])}, ${d.backend} ${describeByte(d.bytes[1])}; ${d.lengths[0]} and ${d.lengths[1]} bytes in all\n`);
      const w = Math.max(d.against.length, d.backend.length);
      for (const [name, lines] of [[d.against, d.context[0]], [d.backend, d.context[1]]] as const) {
        if (lines.length === 0) out.write(`  ${name.padEnd(w)}  (no output)\n`);
        for (const l of lines) out.write(`  ${name.padEnd(w)} ${l.line === d.line ? '>' : ' '}${String(l.line).padStart(5)} | ${l.text}\n`);
      }
    } else if (d.kind === 'guest-time') {
      out.write(`${who}: guest time differs: the guest saw ${d.values[0]} instructions retire under ${d.against}, ${d.values[1]} under ${d.backend} (its TSC and timers follow this count)\n`);
    } else {
      out.write(`${who}: final registers differ: ${d.registers.map((r) => `${r.name} ${hex(r.values[0], 8)} -> ${hex(r.values[1], 8)}`).join(', ')}\n`);
    }
  }
  const kinds = new Set(differences.map((d) => d.kind));
  out.write(`different: ${[...kinds].join(', ')}\n`);
}

/** `--backends` of compare and check: two or more distinct names from BACKENDS, the first the reference. */
export function parseBackendList(text: string): BackendName[] {
  const names = text.split(',').map((s) => s.trim());
  const known = BACKENDS as readonly string[];
  for (const n of names) {
    if (!known.includes(n)) throw new InputError(`invalid --backends '${text}': unknown backend '${n}' (expected ${BACKENDS.join(', ')})`);
  }
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new InputError(`invalid --backends '${text}': ${dup} is named twice`);
  if (names.length < 2) throw new InputError(`invalid --backends '${text}': name two or more backends to compare, e.g. native,rewrite`);
  return names as BackendName[];
}

function perMillion(n: number, instructions: number): number {
  return instructions > 0 ? Math.round((n * 1e6) / instructions) : 0;
}
