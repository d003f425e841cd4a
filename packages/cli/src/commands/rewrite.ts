// `ringshift rewrite`: patches an image's sites (sensitive instructions by default) into jumps to
// stubs with @ringshift/rewriter's rewriteImage, and writes the patched image atomically: to a
// temporary file in the output's directory, then renamed over the output, so that a failure at
// any point leaves no output file (and never a partial one). Prints per-tactic counts and the
// sites no jump could patch, with each tactic's reason; --json the same as one object; --diff
// each site before and after, as Intel listings.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Argv } from 'yargs';
import { Decoder, Instruction, classOf, formName, formatIntel } from '@ringshift/decoder';
import { ElfError, RewriteInputError, readElf, rewriteImage } from '@ringshift/rewriter';
import type { ElfImage, Miss, PatchMap, RewriteReport, Tactic } from '@ringshift/rewriter';
import type { Command } from '../main';
import { BufferedWriter, EXIT_OK, InputError, hex, hexBytes, readInputFile } from '../output';
import type { Io } from '../output';

interface RewriteArgs {
  input: string;
  output: string;
  select: string;
  inline: boolean;
  json?: boolean;
  diff?: boolean;
}

const TACTICS: readonly Tactic[] = ['B1', 'B2', 'T1', 'T2e', 'T3e', 'T2', 'T3', 'trap'];
/** The jumps an evicted (non-site) instruction may get (patch-map reason 'evicted'). */
const EVICTION_TACTICS = ['B1', 'B2', 'T1'] as const;
/** Misses in the text summary; --json has them all (busybox in jumps mode has tens of thousands). */
const MISSES_LISTED = 50;
const STUB_KINDS = ['inline', 'escape', 'empty', 'trap'] as const;

export const rewriteCommand: Command<RewriteArgs> = {
  command: 'rewrite <input>',
  describe: 'patch the sensitive instructions (or a --select-ion) of an ELF32 image into jumps to stubs',
  builder: (y: Argv) =>
    y
      .positional('input', { type: 'string', demandOption: true, describe: 'ELF32 i386 image (multiboot kernel or executable)' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'where to write the patched image (atomically)' })
      .option('select', {
        type: 'string', default: 'sensitive',
        describe: 'which instructions to patch: sensitive, privileged, jumps, or comma-separated classes, mnemonics and form names',
      })
      .option('inline', { type: 'boolean', default: true, describe: 'emulate CLI/STI/PUSHFD/POPFD inline in the stub (--no-inline: escape to the monitor)' })
      .option('json', { type: 'boolean', describe: 'print the report (counts, every miss with its reasons) as one JSON object on stdout' })
      .option('diff', { type: 'boolean', describe: 'print each site before and after, with its stub, as Intel listings' })
      .example('$0 rewrite examples/sensitive/sensitive.elf -o sensitive.rewritten.elf', '')
      .example('$0 rewrite busybox -o busybox.jumps --select jumps --json', '') as unknown as Argv<RewriteArgs>,
  run: async (args, io) => rewrite(args, io),
};

/** The report as printed with --json (and the source of the text summary). */
export interface RewriteSummary {
  input: string;
  output: string;
  select: string;
  inline: boolean;
  kernel: boolean;
  /** Instructions discovery accepted as code. */
  instructions: number;
  /** Sites selected. */
  sites: number;
  /** Sites patched with a jump (every tactic but trap). */
  patched: number;
  /** Sites per tactic, from the patch map written; with `skipped` they add up to `sites`. */
  tactics: Record<Tactic, number>;
  /** Sites per stub kind (evicted instructions not counted). */
  stubs: Record<(typeof STUB_KINDS)[number], number>;
  /**
   * Instructions that are not sites but were patched to make room for a site's jump (T2e's
   * successors; map records with reason 'evicted'), by the tactic of their own jump.
   */
  evicted: Record<(typeof EVICTION_TACTICS)[number], number>;
  /** Selected sites not in the map: no jump fits and a trap would change the program (--select jumps). */
  skipped: number;
  stubSegment: { vaddr: number; paddr: number; size: number; sharedPage: number };
  inputBytes: number;
  outputBytes: number;
  elapsedMs: number;
  /** What of the input the output does not keep (program headers, sections). */
  warnings: readonly string[];
  misses: {
    addr: number;
    text: string;
    form: string;
    outcome: Miss['outcome'];
    tried: { tactic: Tactic; why: string }[];
  }[];
}

function rewrite(args: RewriteArgs, io: Io): number {
  if (args.json && args.diff) throw new InputError('--diff prints listings and --json one JSON object: use one of them');
  const input = readInputFile(args.input);
  checkOutputPath(args.output);
  const t0 = performance.now();
  let result: ReturnType<typeof rewriteImage>;
  try {
    result = rewriteImage(input, { select: args.select, inline: args.inline });
  } catch (e) {
    if (e instanceof ElfError || e instanceof RewriteInputError) throw new InputError(`${args.input}: ${e.message}`);
    throw e;
  }
  const elapsedMs = performance.now() - t0;
  writeAtomically(args.output, result.image);

  const summary = summarize(args, result.map, result.report, input.length, result.image.length, elapsedMs);
  const out = new BufferedWriter(io.stdout);
  if (args.json) {
    out.write(`${JSON.stringify(summary)}\n`);
  } else {
    printSummary(out, summary);
    if (args.diff) printDiff(out, input, result.image, result.map);
  }
  out.flush();
  return EXIT_OK;
}

/** Refuses an output path that cannot be a file before doing any work. */
function checkOutputPath(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    return; // does not exist yet: the write tells whether the directory takes it
  }
  if (st.isDirectory()) throw new InputError(`cannot write ${path}: is a directory`);
}

/**
 * Writes bytes to a temporary file next to `path` (same directory, so the rename cannot cross
 * file systems), flushes it, and renames it over `path`. On any failure the temporary file is
 * removed and `path` is untouched.
 */
export function writeAtomically(path: string, bytes: Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o755);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? `no such directory ${dirname(path)}` :
      code === 'EACCES' || code === 'EPERM' ? 'permission denied' :
      code === 'EISDIR' ? 'is a directory' :
      code === 'ENOSPC' ? 'no space left on the device' :
      code === 'EROFS' ? 'read-only file system' :
      (e as Error).message;
    throw new InputError(`cannot write ${path}: ${why}`);
  }
}

function summarize(args: RewriteArgs, map: PatchMap, report: RewriteReport, inputBytes: number, outputBytes: number, elapsedMs: number): RewriteSummary {
  // Counted from the map the image carries, so the summary says what was written.
  const tactics = Object.fromEntries(TACTICS.map((t) => [t, 0])) as Record<Tactic, number>;
  const stubs = Object.fromEntries(STUB_KINDS.map((k) => [k, 0])) as RewriteSummary['stubs'];
  const evicted = Object.fromEntries(EVICTION_TACTICS.map((t) => [t, 0])) as RewriteSummary['evicted'];
  for (const s of map.sites) {
    if (s.reason === 'evicted') {
      evicted[s.tactic as (typeof EVICTION_TACTICS)[number]]++;
      continue;
    }
    tactics[s.tactic]++;
    stubs[s.stub]++;
  }
  return {
    input: args.input,
    output: args.output,
    select: args.select,
    inline: args.inline,
    kernel: report.kernel,
    instructions: report.discovery.instructions,
    sites: report.sites,
    patched: TACTICS.reduce((n, t) => n + (t === 'trap' ? 0 : tactics[t]), 0),
    tactics,
    stubs,
    evicted,
    skipped: report.misses.filter((m) => m.outcome === 'skipped').length,
    stubSegment: { vaddr: map.stubVaddr, paddr: map.stubPaddr, size: map.stubSize, sharedPage: map.sharedPage },
    inputBytes,
    outputBytes,
    elapsedMs: Math.round(elapsedMs),
    warnings: report.warnings,
    misses: report.misses.map((m) => ({
      addr: m.addr, text: m.text, form: formName(m.formId), outcome: m.outcome,
      tried: m.tried.map((t) => ({ tactic: t.tactic, why: t.why })),
    })),
  };
}

const pct = (n: number, of: number): string => (of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`);

function printSummary(out: BufferedWriter, s: RewriteSummary): void {
  out.write(
    `${s.input} -> ${s.output}: ${s.sites} site${s.sites === 1 ? '' : 's'} selected by '${s.select}' in ${s.instructions} instructions, ` +
      `${s.patched} patched with a jump, ${s.tactics.trap} left to trap` +
      (s.skipped > 0 ? `, ${s.skipped} skipped` : '') +
      ` (${s.elapsedMs} ms)\n`,
  );
  out.write('\n  tactic   sites   share\n');
  for (const t of TACTICS) out.write(`  ${t.padEnd(6)} ${String(s.tactics[t]).padStart(7)} ${pct(s.tactics[t], s.sites).padStart(7)}\n`);
  if (s.skipped > 0) out.write(`  ${'skip'.padEnd(6)} ${String(s.skipped).padStart(7)} ${pct(s.skipped, s.sites).padStart(7)}\n`);
  const nEvicted = EVICTION_TACTICS.reduce((n, t) => n + s.evicted[t], 0);
  if (nEvicted > 0) {
    out.write(`\n  evicted (not sites, patched to make room for T2e/T3e): ${nEvicted} (${EVICTION_TACTICS.map((t) => `${t} ${s.evicted[t]}`).join(', ')})\n`);
  }
  const seg = s.stubSegment;
  out.write(
    `\n  stubs: ${STUB_KINDS.map((k) => `${k} ${s.stubs[k]}`).join(', ')}\n` +
      (seg.size > 0 ? `  stub segment: 0x${hex(seg.vaddr)} (physical 0x${hex(seg.paddr)}), ${seg.size} bytes${seg.sharedPage ? `, shared page 0x${hex(seg.sharedPage)}` : ''}\n` : '') +
      `  image: ${s.inputBytes} -> ${s.outputBytes} bytes\n`,
  );
  for (const w of s.warnings) out.write(`  warning: ${w}\n`);
  if (s.misses.length > 0) {
    out.write(`\nmisses (${s.misses.length}): no jump fits; a miss traps (the monitor emulates it) or, with empty stubs, is skipped\n`);
    for (const m of s.misses.slice(0, MISSES_LISTED)) {
      const tried = m.tried.map((t) => `${t.tactic}: ${t.why}`).join('; ');
      out.write(`  0x${hex(m.addr, 8)}  ${m.text.padEnd(28)} ${m.outcome.padEnd(7)}  ${tried}\n`);
    }
    if (s.misses.length > MISSES_LISTED) out.write(`  ... and ${s.misses.length - MISSES_LISTED} more (--json lists every one)\n`);
  }
}

/** Loaded bytes by virtual address (PT_LOAD file bytes, zero up to p_memsz). */
function reader(elf: ElfImage): (addr: number, len: number) => Uint8Array {
  const loads = elf.segments.filter((s) => s.type === 'load');
  return (addr, len) => {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      const a = addr + i;
      const s = loads.find((g) => a >= g.vaddr && a < g.vaddr + g.memsz);
      out[i] = s && a - s.vaddr < s.bytes.length ? s.bytes[a - s.vaddr]! : 0;
    }
    return out;
  };
}

/** Listing lines for `bytes` at `addr`: every instruction that starts before addr + cover (all of them when cover is omitted). */
function listing(bytes: Uint8Array, addr: number, cover = bytes.length, stopAtExit?: (ins: Instruction) => boolean): string[] {
  const dec = new Decoder(32, bytes, addr, 0);
  const ins = new Instruction();
  const lines: string[] = [];
  while (dec.position < cover && dec.position < bytes.length) {
    const off = dec.position;
    dec.decodeOut(ins);
    const len = ins.valid ? ins.length : 1;
    const text = ins.valid ? formatIntel(ins) : '(bad)';
    lines.push(`    ${hex(addr + off, 8)}:  ${hexBytes(bytes.subarray(off, off + len)).padEnd(24)} ${text}`);
    if (ins.valid && stopAtExit?.(ins)) break;
  }
  return lines;
}

/** Each site: the original instructions it displaced, the patched bytes re-decoded, and its stub. */
function printDiff(out: BufferedWriter, input: Uint8Array, image: Uint8Array, map: PatchMap): void {
  const before = reader(readElf(input));
  const after = reader(readElf(image));
  const inStubs = (a: number): boolean => a >= map.stubVaddr && a < map.stubVaddr + map.stubSize;
  for (const s of map.sites) {
    const runLen = Math.max(s.displaced.length, s.original.length);
    const start = s.displaced.length > 0 ? s.patchStart : s.addr;
    const head = `\n${s.reason === 'evicted' ? 'evicted' : 'site'} 0x${hex(s.addr, 8)} ${formName(s.formId)} (${s.reason}): ${s.tactic}, ${s.stub} stub` +
      (s.stubAddr ? ` at 0x${hex(s.stubAddr, 8)}` : '') + (s.resume ? `, resumes at 0x${hex(s.resume, 8)}` : '');
    out.write(`${head}\n  before:\n`);
    for (const l of listing(before(start, runLen + 15), start, runLen)) out.write(`${l}\n`);
    out.write('  after:\n');
    for (const l of listing(after(start, runLen + 15), start, runLen)) out.write(`${l}\n`);
    if (s.stubAddr !== 0 && inStubs(s.stubAddr)) {
      out.write('  stub:\n');
      const end = map.stubVaddr + map.stubSize;
      const bytes = after(s.stubAddr, Math.min(4096, end - s.stubAddr));
      const leaves = (ins: Instruction): boolean => {
        const flow = classOf(ins.form).flow;
        if (flow === 'return' || flow === 'indirect-branch') return true;
        return flow === 'branch' && !inStubs(ins.target);
      };
      for (const l of listing(bytes, s.stubAddr, bytes.length, leaves).slice(0, 64)) out.write(`${l}\n`);
    }
  }
}
