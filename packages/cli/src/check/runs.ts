// Running one image under several backends and finding the first guest-visible difference:
// how the run ended, the serial output (for generated programs: the dump record field by
// field, then the handler log), the debug console (port 0xE9), the final registers as the
// guest sees them (compare.ts COMPARED_REGISTERS) and the guest time (the instructions the guest
// saw retire, which its TSC and timers follow). `rewrite` runs the image rewritten in memory
// by rewriteImage (sensitive selection); the other backends run the image as it is.
import { rewriteImage, type RewriteResult } from '@ringshift/rewriter';
import { loadGuest, runGuest, type BackendName, type RunRegisters } from '@ringshift/runtime';
import { COMPARED_REGISTERS } from '../commands/compare';
import { hex } from '../output';
import * as L from './layout';

export interface BackendRun {
  readonly backend: BackendName;
  readonly reason: string;
  readonly exitStatus?: number;
  readonly detail?: string;
  readonly instructions: number;
  /** Instructions the guest saw retire (runtime RunReport.guestInstructions). */
  readonly guestInstructions: number;
  readonly registers: RunRegisters;
  readonly serial: Uint8Array;
  readonly debugConsole: Uint8Array;
  /** External interrupts the monitor delivered (backends with exit accounting), for coverage. */
  readonly externalInterrupts?: number;
}

export interface RunOptions {
  readonly maxInstructions?: number;
  readonly timeoutMs?: number;
  /** For `rewrite`: the rewritten image to run instead of rewriting `image` here (tests inject broken stubs this way). */
  readonly rewritten?: Uint8Array;
  /** As `ringshift run` gives it; the same for every backend. */
  readonly cmdline?: string;
  /** Guest RAM (default: the runtime's 128 MiB). Generated programs use a few MiB: less RAM boots faster. */
  readonly memoryBytes?: number;
}

/** Rewrites `image` as `ringshift rewrite` does by default (sensitive sites, inline stubs). */
export function rewriteForCheck(image: Uint8Array): RewriteResult {
  return rewriteImage(image, { select: 'sensitive' });
}

/** Loads and runs `image` under `backend`. Throws what loadGuest throws for images a backend refuses. */
export function runBackend(image: Uint8Array, backend: BackendName, opts: RunOptions = {}): BackendRun {
  const serial: number[] = [];
  const debugConsole: number[] = [];
  const rewrite = backend === 'rewrite';
  const bytes = rewrite ? opts.rewritten ?? rewriteForCheck(image).image : image;
  const guest = loadGuest(bytes, {
    backend,
    machine: { serialOut: (b) => void serial.push(b), debugConsoleOut: (b) => void debugConsole.push(b) },
    ...(opts.cmdline === undefined ? {} : { cmdline: opts.cmdline }),
    ...(opts.memoryBytes === undefined ? {} : { memoryBytes: opts.memoryBytes }),
    ...(rewrite ? { original: image } : {}),
  });
  const limits: { maxInstructions?: number; timeoutMs?: number } = {};
  if (opts.maxInstructions !== undefined) limits.maxInstructions = opts.maxInstructions;
  if (opts.timeoutMs !== undefined) limits.timeoutMs = opts.timeoutMs;
  const r = runGuest(guest, limits);
  return {
    backend, reason: r.reason, instructions: r.instructions, guestInstructions: r.guestInstructions, registers: r.registers,
    serial: Uint8Array.from(serial), debugConsole: Uint8Array.from(debugConsole),
    ...(r.exitStatus === undefined ? {} : { exitStatus: r.exitStatus }),
    ...(r.detail === undefined ? {} : { detail: r.detail }),
    ...(r.stats === undefined ? {} : { externalInterrupts: r.stats.byReason.EXTERNAL_INTERRUPT ?? 0 }),
  };
}

/** The first guest-visible difference of `b` from the reference `a`, in words; null when equal. */
export interface Difference {
  readonly backend: BackendName;
  readonly against: BackendName;
  /** What differs: 'exit', 'serial', 'debug console', 'registers' or 'guest time'. */
  readonly kind: 'exit' | 'serial' | 'debug console' | 'registers' | 'guest time';
  /** One line naming the first differing thing and both values. */
  readonly text: string;
}

const outcome = (r: BackendRun): string =>
  r.reason === 'exit'
    ? `exit status ${r.exitStatus}${r.exitStatus === ((L.EXIT_EPILOGUE_FAULT << 1) | 1) ? ' (a generated program\'s harness faulted in its epilogue)' : ''}`
    : `${r.reason}${r.detail ? ` (${r.detail})` : ''}`;

/**
 * The first difference, in the order: how the run ended, serial output, debug console, final
 * registers, guest time. `dump` names serial differences by the epilogue's record fields (generated programs).
 */
export function firstDifference(a: BackendRun, b: BackendRun, dump = false): Difference | null {
  const pair = { backend: b.backend, against: a.backend };
  if (a.reason !== b.reason || a.exitStatus !== b.exitStatus) {
    return { ...pair, kind: 'exit', text: `the run ended differently: ${a.backend} ${outcome(a)}, ${b.backend} ${outcome(b)}` };
  }
  const s = firstByte(a.serial, b.serial);
  if (s !== null) return { ...pair, kind: 'serial', text: dump ? describeDumpDifference(a, b, s) : describeBytes('serial output', a, b, a.serial, b.serial, s) };
  const d = firstByte(a.debugConsole, b.debugConsole);
  if (d !== null) return { ...pair, kind: 'debug console', text: describeBytes('debug console (port 0xe9) output', a, b, a.debugConsole, b.debugConsole, d) };
  const regs = COMPARED_REGISTERS.filter((k) => a.registers[k] >>> 0 !== b.registers[k] >>> 0);
  if (regs.length > 0) {
    return { ...pair, kind: 'registers', text: `final registers differ: ${regs.map((k) => `${k} ${a.backend} ${hex(a.registers[k] >>> 0, 8)}, ${b.backend} ${hex(b.registers[k] >>> 0, 8)}`).join('; ')}` };
  }
  if (a.guestInstructions !== b.guestInstructions) {
    return { ...pair, kind: 'guest time', text: `guest time differs: the guest saw ${a.guestInstructions} instructions retire under ${a.backend}, ${b.guestInstructions} under ${b.backend} (its TSC and timers follow this count)` };
  }
  return null;
}

function firstByte(a: Uint8Array, b: Uint8Array): number | null {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? null : n;
}

function describeBytes(what: string, ra: BackendRun, rb: BackendRun, a: Uint8Array, b: Uint8Array, at: number): string {
  const show = (x: Uint8Array): string => (at < x.length ? hex(x[at]!, 2) : 'end of output');
  return `${what} differs at byte ${at}: ${ra.backend} ${show(a)}, ${rb.backend} ${show(b)} (${a.length} and ${b.length} bytes)`;
}

/** Reads `size` little-endian bytes at `offset` (up to 4 as a number; more as hex bytes). */
function field(x: Uint8Array, offset: number, size: number): string {
  if (offset + size > x.length) return 'missing';
  if (size > 4) return Array.from(x.subarray(offset, offset + size), (v) => hex(v, 2)).join(' ');
  let v = 0;
  for (let k = size - 1; k >= 0; k--) v = v * 256 + x[offset + k]!;
  return hex(v, size * 2);
}

/** Names the dump field (or handler log entry field) at byte `at` of two epilogue dumps. */
function describeDumpDifference(a: BackendRun, b: BackendRun, at: number): string {
  if (at < L.SAVE_BYTES) {
    const f = L.DUMP_FIELDS.find((x) => at >= x.offset && at < x.offset + x.size);
    if (f) {
      let extra = '';
      if (f.name.startsWith('EFLAGS')) extra = ` (${eflagsDelta(a.serial, b.serial, f.offset, a.backend, b.backend)})`;
      return `${f.name} differs: ${a.backend} ${field(a.serial, f.offset, f.size)}, ${b.backend} ${field(b.serial, f.offset, f.size)}${extra}`;
    }
    return `dump byte ${at} differs`;
  }
  const rel = at - L.SAVE_BYTES;
  const entry = Math.floor(rel / L.LOG_ENTRY_BYTES);
  const k = Math.floor((rel % L.LOG_ENTRY_BYTES) / 4);
  const off = L.SAVE_BYTES + entry * L.LOG_ENTRY_BYTES + k * 4;
  const vec = (x: Uint8Array): string => {
    const o = L.SAVE_BYTES + entry * L.LOG_ENTRY_BYTES;
    if (o + 4 > x.length) return 'none';
    const v = x[o]! | (x[o + 1]! << 8);
    return `${v & 0x100 ? 'exception' : 'interrupt'} ${hex(v & 0xff, 2)}`;
  };
  return `handler log entry ${entry} (${a.backend}: ${vec(a.serial)}, ${b.backend}: ${vec(b.serial)}): ${L.LOG_FIELDS[k]} differs: ${a.backend} ${field(a.serial, off, 4)}, ${b.backend} ${field(b.serial, off, 4)}`;
}

const FLAG_NAMES: readonly [number, string][] = [
  [0x1, 'CF'], [0x4, 'PF'], [0x10, 'AF'], [0x40, 'ZF'], [0x80, 'SF'], [0x100, 'TF'], [0x200, 'IF'], [0x400, 'DF'], [0x800, 'OF'],
  [0x3000, 'IOPL'], [0x4000, 'NT'], [0x10000, 'RF'], [0x20000, 'VM'], [0x40000, 'AC'], [0x200000, 'ID'],
];

function eflagsDelta(a: Uint8Array, b: Uint8Array, offset: number, na: string, nb: string): string {
  const read = (x: Uint8Array): number => (x[offset]! | (x[offset + 1]! << 8) | (x[offset + 2]! << 16) | (x[offset + 3]! << 24)) >>> 0;
  const x = read(a), y = read(b);
  return FLAG_NAMES.filter(([m]) => (x & m) !== (y & m)).map(([m, n]) => (m === 0x3000 ? `IOPL ${na} ${(x >> 12) & 3}, ${nb} ${(y >> 12) & 3}` : `${n} ${na} ${x & m ? 1 : 0}, ${nb} ${y & m ? 1 : 0}`)).join('; ');
}
