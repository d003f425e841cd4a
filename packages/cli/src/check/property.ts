// The rewrite-correctness property: for every generated program, `native` and every other
// backend under test (the image rewritten for `rewrite`) leave the same guest-visible state.
// `pv` is never run on generated programs: they are plain multiboot kernels, and a PV guest is a
// port to Xen's ABI (there is no PV form of them). `deprivileged` (no rewriting) is run only when
// asked for: it is the backend the property must catch (the self-test).
import fc from 'fast-check';
import { Decoder, Instruction, formatIntel, mnemonicOf } from '@ringshift/decoder';
import { BACKENDS, type BackendName } from '@ringshift/runtime';
import type { PatchMap, RewriteResult } from '@ringshift/rewriter';
import { hex } from '../output';
import { buildGuest, type GuestImage } from './harness';
import { EFLAGS_RANDOM, guestProgramArb, type GuestProgram, type ItemKind } from './program';
import { firstDifference, rewriteForCheck, runBackend, type BackendRun, type Difference } from './runs';

/** Instructions a generated program may retire at most (the body is bounded; this is a safety net). */
export const PROGRAM_BUDGET = 3_000_000;

/** Guest RAM for generated programs (they use the first 4 MiB). */
export const PROGRAM_RAM = 4 << 20;

/** The backends a campaign compares by default: all there are, but `deprivileged` and `pv`. */
export function defaultRandomBackends(): BackendName[] {
  return (BACKENDS as readonly string[]).filter((b) => b !== 'deprivileged' && b !== 'pv') as BackendName[];
}

export interface CheckOptions {
  /** Backends, the first the reference (default: defaultRandomBackends()). */
  readonly backends?: readonly BackendName[];
  /** Tests only: change the rewritten image before it runs (a broken stub). */
  readonly mutateRewritten?: (r: RewriteResult, guest: GuestImage) => Uint8Array;
}

export interface ProgramResult {
  readonly guest: GuestImage;
  readonly rewrite: RewriteResult | null;
  readonly runs: readonly BackendRun[];
  readonly difference: Difference | null;
}

/** Builds, rewrites and runs one program under every backend; the first difference, if any. */
export function checkProgram(p: GuestProgram, opts: CheckOptions = {}): ProgramResult {
  const backends = opts.backends ?? defaultRandomBackends();
  const guest = buildGuest(p);
  let rewrite: RewriteResult | null = null;
  let rewritten: Uint8Array | undefined;
  if (backends.includes('rewrite')) {
    rewrite = rewriteForCheck(guest.image);
    rewritten = opts.mutateRewritten ? opts.mutateRewritten(rewrite, guest) : rewrite.image;
  }
  const runs = backends.map((b) => {
    try {
      return runBackend(guest.image, b, { maxInstructions: PROGRAM_BUDGET, memoryBytes: PROGRAM_RAM, ...(b === 'rewrite' ? { rewritten: rewritten! } : {}) });
    } catch (e) {
      // A backend that throws on a guest is a bug too (a misbehaving guest must end its run
      // with a report): compared as a run that ended with reason 'crash'.
      return crashed(b, e);
    }
  });
  const reference = runs[0]!;
  if (reference.reason === 'budget') {
    throw new Error(`internal error: a generated program did not end within ${PROGRAM_BUDGET} instructions under ${reference.backend} (the generator must make terminating programs)`);
  }
  let difference: Difference | null = null;
  for (const r of runs.slice(1)) {
    difference = firstDifference(reference, r, true);
    if (difference) break;
  }
  return { guest, rewrite, runs, difference };
}

function crashed(backend: BackendName, e: unknown): BackendRun {
  const registers = { eax: 0, ecx: 0, edx: 0, ebx: 0, esp: 0, ebp: 0, esi: 0, edi: 0, eip: 0, eflags: 0, cs: 0, ds: 0, ss: 0, cr0: 0, cr2: 0, cr3: 0, cr4: 0 };
  const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { backend, reason: 'crash', detail, instructions: 0, guestInstructions: 0, registers, serial: new Uint8Array(0), debugConsole: new Uint8Array(0) };
}

/** What a campaign saw: sites per mnemonic (class) and per tactic, in the generated bodies. */
export interface Coverage {
  programs: number;
  sites: number;
  byMnemonic: Map<string, number>;
  byTactic: Map<string, number>;
  byStub: Map<string, number>;
  byReason: Map<string, number>;
  /** Programs whose body ended in an exception handler (the rest ran to their end). */
  endedByException: number;
  /** Programs with at least one logged interrupt or exception. */
  withEvents: number;
  /** Programs with a timer, those that took at least one tick, and the ticks (IRQ 0) in all. */
  withTimer: number;
  withTicks: number;
  ticks: number;
}

export function emptyCoverage(): Coverage {
  return { programs: 0, sites: 0, byMnemonic: new Map(), byTactic: new Map(), byStub: new Map(), byReason: new Map(), endedByException: 0, withEvents: 0, withTimer: 0, withTicks: 0, ticks: 0 };
}

const bump = (m: Map<string, number>, k: string, n = 1): void => void m.set(k, (m.get(k) ?? 0) + n);

export function addCoverage(c: Coverage, r: ProgramResult, p: GuestProgram): void {
  c.programs++;
  const ref = r.runs[0]!;
  const log = ref.serial.subarray(0x80);
  if (log.length > 0) c.withEvents++;
  for (let o = 0; o + 4 <= log.length; o += 32) if (log[o + 1]! & 1) { c.endedByException++; break; }
  if ((p.timer ?? 0) > 0) {
    c.withTimer++;
    // Counted by a monitor (rewrite, hvm): native keeps no exit accounting.
    const ticks = r.runs.find((x) => x.externalInterrupts !== undefined)?.externalInterrupts ?? 0;
    if (ticks > 0) c.withTicks++;
    c.ticks += ticks;
  }
  if (!r.rewrite) return;
  for (const s of r.rewrite.map.sites) {
    if (s.reason === 'evicted' || s.addr < r.guest.body.start || s.addr >= r.guest.body.end) continue;
    c.sites++;
    bump(c.byMnemonic, mnemonicOf(s.formId));
    bump(c.byTactic, s.tactic);
    bump(c.byStub, s.stub);
    bump(c.byReason, s.reason);
  }
}

export interface CampaignOptions extends CheckOptions {
  readonly seed: number;
  readonly runs: number;
  readonly maxItems?: number;
  /** Item kinds to draw from (default all). */
  readonly kinds?: readonly ItemKind[];
  /** Bound on the raw words (program.ts guestProgramArb); self-tests use a small one to shrink fast. */
  readonly wordMax?: number;
  /** After a failure (shrunk and reported), go on with the next seed until `runs` programs have run. */
  readonly keepGoing?: boolean;
  /** Stop generating after this many milliseconds (long campaigns); the summary covers what ran. */
  readonly timeLimitMs?: number;
  /** Called after each program (progress lines). */
  readonly onProgram?: (done: number, coverage: Coverage, failures: number) => void;
  /** Called with each failure as soon as it is shrunk. */
  readonly onFailure?: (f: CampaignFailure) => void;
}

export interface CampaignFailure {
  readonly seed: number;
  readonly program: GuestProgram;
  readonly result: ProgramResult;
  readonly shrinks: number;
  readonly path?: string;
  readonly report: string;
}

export interface CampaignResult {
  readonly seed: number;
  /** Programs generated and run (shrinking steps not counted). */
  readonly runs: number;
  readonly coverage: Coverage;
  /** The shrunk counterexamples (at most one unless keepGoing). */
  readonly failures: readonly CampaignFailure[];
}

/**
 * The property over `runs` random programs from `seed`; on failure fast-check shrinks the
 * program to a minimal one. With keepGoing, the campaign then resumes from seed + 1, + 2, ...
 * (each a fresh fast-check run) until `runs` programs have run.
 */
export function runCampaign(opts: CampaignOptions): CampaignResult {
  const coverage = emptyCoverage();
  const failures: CampaignFailure[] = [];
  const started = performance.now();
  let done = 0;
  for (let seed = opts.seed; done < opts.runs; seed = (seed + 1) | 0) {
    let shrinking = false;
    const prop = fc.property(guestProgramArb(opts.maxItems, opts.kinds, opts.wordMax), (p) => {
      const r = checkProgram(p, opts);
      if (!shrinking) {
        addCoverage(coverage, r, p);
        done++;
        opts.onProgram?.(done, coverage, failures.length);
      }
      if (r.difference) shrinking = true;
      return r.difference === null;
    });
    const left = opts.timeLimitMs === undefined ? undefined : opts.timeLimitMs - (performance.now() - started);
    if (left !== undefined && left <= 0) break;
    const out = fc.check(prop, {
      seed, numRuns: opts.runs - done, endOnFailure: false,
      ...(left === undefined ? {} : { interruptAfterTimeLimit: left, markInterruptAsFailure: false }),
    });
    if (!out.failed) break;
    if (!out.counterexample) {
      const err: unknown = out.errorInstance;
      throw err instanceof Error ? err : new Error(String(err));
    }
    const program = out.counterexample[0];
    const result = checkProgram(program, opts);
    const f: CampaignFailure = {
      seed, program, result, shrinks: out.numShrinks, ...(out.counterexamplePath ? { path: out.counterexamplePath } : {}),
      report: counterexampleReport(program, result, seed, out.counterexamplePath),
    };
    failures.push(f);
    opts.onFailure?.(f);
    if (!opts.keepGoing) break;
  }
  return { seed: opts.seed, runs: done, coverage, failures };
}

/** The patch-map site at each original address, for listings. */
function sitesByAddress(map: PatchMap | undefined): Map<number, PatchMap['sites'][number]> {
  return new Map((map?.sites ?? []).map((s) => [s.addr, s]));
}

/**
 * The body as an Intel-syntax listing: item boundaries, each sensitive site marked with its
 * tactic and stub kind (from the patch map), and instructions a tactic evicted.
 */
export function bodyListing(guest: GuestImage, rewrite: RewriteResult | null): string[] {
  const { start, end } = guest.body;
  const text = textBytes(guest.image, start, end);
  const sites = sitesByAddress(rewrite?.map);
  const itemAt = new Map(guest.items.map((it, k) => [it.addr, { k, kind: it.kind }]));
  const lines: string[] = [];
  const d = new Decoder(32, text, start, 0);
  const ins = new Instruction();
  let off = 0;
  const seenItems = new Set<number>();
  while (off < text.length) {
    const addr = start + off;
    for (const [at, it] of itemAt) {
      if (at === addr && !seenItems.has(it.k)) {
        seenItems.add(it.k);
        lines.push(`                                    ; item ${it.k}: ${it.kind}`);
      }
    }
    d.seek(text, addr, off);
    d.decodeAt(ins);
    const len = ins.valid ? ins.length : 1;
    const bytes = Array.from(text.subarray(off, off + len), (b) => hex(b, 2)).join(' ');
    const site = sites.get(addr);
    const mark = site === undefined ? '' : site.reason === 'evicted' ? `   ; evicted by a neighbour's patch (${site.tactic})` : `   ; <- site (${site.reason}): tactic ${site.tactic}, ${site.stub} stub`;
    lines.push(`  ${hex(addr, 8)}  ${bytes.padEnd(30)} ${ins.valid ? formatIntel(ins) : '(bad)'}${mark}`);
    off += len;
  }
  return lines;
}

function textBytes(image: Uint8Array, start: number, end: number): Uint8Array {
  // The text segment is the first PT_LOAD (harness.ts): find its file offset from the program header.
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const phoff = dv.getUint32(28, true), phnum = dv.getUint16(44, true), phentsize = dv.getUint16(42, true);
  for (let k = 0; k < phnum; k++) {
    const ph = phoff + k * phentsize;
    const vaddr = dv.getUint32(ph + 8, true), offset = dv.getUint32(ph + 4, true), filesz = dv.getUint32(ph + 16, true);
    if (dv.getUint32(ph, true) === 1 && start >= vaddr && end <= vaddr + filesz) return image.subarray(offset + start - vaddr, offset + end - vaddr);
  }
  return new Uint8Array(0);
}

/** The report of a failed property: seed, the shrunk program as a listing with its sites, the first difference. */
export function counterexampleReport(p: GuestProgram, r: ProgramResult, seed: number, path?: string): string {
  const out: string[] = [];
  out.push(`counterexample (seed ${seed}${path ? `, path ${path}` : ''}): ${p.items.length} item(s), paging ${p.paging ? 'on' : 'off'}, ending '${p.ending}', ${(p.timer ?? 0) > 0 ? `timer divisor ${p.timer} (first tick ~${p.timerDelay ?? 0} instructions into the body)` : 'no timer'}, initial EFLAGS ${hex(((p.eflags & EFLAGS_RANDOM) | 2 | ((p.timer ?? 0) > 0 ? 0x200 : 0)) >>> 0, 8)}`);
  if (r.difference) out.push(`first difference (${r.difference.backend} vs ${r.difference.against}): ${r.difference.text}`);
  const named = r.rewrite?.map.sites.filter((s) => s.reason !== 'evicted' && s.addr >= r.guest.body.start && s.addr < r.guest.body.end) ?? [];
  if (named.length > 0) out.push(`sites in the body: ${named.map((s) => `${hex(s.addr, 8)} ${mnemonicOf(s.formId)} (${s.tactic}, ${s.stub})`).join(', ')}`);
  out.push('body:');
  out.push(...bodyListing(r.guest, r.rewrite));
  out.push(`program: ${JSON.stringify(p)}`);
  return out.join('\n');
}

export function formatCoverage(c: Coverage): string[] {
  const line = (m: Map<string, number>): string => [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
  return [
    `programs: ${c.programs} (${c.withEvents} with interrupts or exceptions, ${c.endedByException} ended by an exception; ${c.withTimer} with a timer, ${c.withTicks} of them took ${c.ticks} ticks)`,
    `sites exercised in the generated bodies: ${c.sites}`,
    `  by class (mnemonic): ${line(c.byMnemonic)}`,
    `  by site reason: ${line(c.byReason)}`,
    `  by tactic: ${line(c.byTactic)}`,
    `  by stub: ${line(c.byStub)}`,
  ];
}

