// `ringshift scan`: what `ringshift rewrite` would patch and how, without writing anything — the
// sites a selection picks out of the discovered code, each with the evidence that it is code and
// the tactic the planner would use, plus a summary of discovery (how much of each executable
// section is code, data or unknown, and where the evidence disagreed).
import type { Argv } from 'yargs';
import { formName } from '@ringshift/decoder';
import { ElfError, Evidence, RewriteInputError, discover, findSites, readElf, rewriteImage } from '@ringshift/rewriter';
import type { Discovery, ElfImage, PatchedSite, Site, StubKind, Tactic } from '@ringshift/rewriter';
import type { Command } from '../main';
import { BufferedWriter, EXIT_OK, InputError, hex, hexBytes, readInputFile } from '../output';
import type { Io } from '../output';

interface ScanArgs {
  file: string;
  select: string;
  json?: boolean;
}

/** Evidence bits by name, in bit order (model.ts), for listings and JSON. */
const EVIDENCE_NAMES = Object.entries(Evidence) as [keyof typeof Evidence, number][];

function evidenceNames(bits: number): string[] {
  return EVIDENCE_NAMES.filter(([, bit]) => bits & bit).map(([name]) => name);
}

/** The JSON record of one site (also what the text listing prints). */
interface SiteRow {
  address: number;
  length: number;
  bytes: string;
  text: string;
  form: string;
  reason: Site['reason'];
  evidence: string[];
  /** The tactic rewrite would use, or null when the site would be skipped or planning was not possible. */
  tactic: Tactic | null;
  stub: StubKind | null;
}

interface DiscoverySummary {
  instructions: number;
  codeBytes: number;
  dataBytes: number;
  unknownBytes: number;
  jumpTargets: number;
  indirectTransfers: number;
  /** Instructions by evidence: each bit counted where it is set. */
  evidence: Record<string, number>;
  conflicts: { address: number; reason: string }[];
  /** Every range that is not code, with why. */
  nonCode: { start: number; end: number; kind: string; reason: string }[];
}

export const scanCommand: Command<ScanArgs> = {
  command: 'scan <file>',
  describe: 'list the sites rewrite would patch (and the tactic for each), with a summary of code discovery',
  builder: (y: Argv) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'ELF32 i386 executable or multiboot kernel' })
      .option('select', {
        type: 'string', default: 'sensitive',
        describe: 'which instructions are sites: classes (sensitive, privileged, iopl, sensitive-unprivileged, jumps, ...), mnemonics or form names, comma-separated',
      })
      .option('json', { type: 'boolean', describe: 'print one JSON document on stdout' })
      .example('$0 scan examples/sensitive/sensitive.elf', '')
      .example('$0 scan examples/hello/hello.elf --select cli,sti,popfd --json', '') as Argv<ScanArgs>,
  run: async (args, io) => scan(args, io),
};

function scan(args: ScanArgs, io: Io): number {
  const bytes = readInputFile(args.file);
  let elf: ElfImage;
  let discovery: Discovery;
  let sites: Site[];
  try {
    elf = readElf(bytes);
    discovery = discover(elf);
    sites = findSites(elf, discovery, args.select);
  } catch (e) {
    if (e instanceof ElfError || e instanceof RewriteInputError) throw new InputError(`${args.file}: ${e.message}`);
    throw e;
  }
  const { planned, note } = planTactics(bytes, args.select, discovery, sites);

  const rows: SiteRow[] = sites.map((s) => {
    const p = planned.get(s.addr);
    return {
      address: s.addr, length: s.length, bytes: hexBytes(siteBytes(elf, s), ''), text: s.text, form: formName(s.formId),
      reason: s.reason, evidence: evidenceNames(s.evidence), tactic: p?.tactic ?? null, stub: p?.stub ?? null,
    };
  });
  const summary = summarize(discovery);
  const tactics: Record<string, number> = {};
  for (const r of rows) if (r.tactic) tactics[r.tactic] = (tactics[r.tactic] ?? 0) + 1;
  const reasons: Record<string, number> = {};
  for (const r of rows) reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;

  const out = new BufferedWriter(io.stdout);
  if (args.json) {
    out.write(`${JSON.stringify({
      file: args.file,
      elf: { class: elf.class, machine: elf.machine, type: elf.type, entry: elf.entry },
      select: args.select,
      discovery: summary,
      sites: rows,
      reasons,
      tactics: note === undefined ? tactics : null,
      ...(note !== undefined && { tacticsNote: note }),
    }, null, 1)}\n`);
    out.flush();
    return EXIT_OK;
  }

  const n = (x: number): string => x.toLocaleString('en-US');
  out.write(`${args.file}: ELF${elf.class} ${elf.machine} ${elf.type}, entry 0x${hex(elf.entry)}, select '${args.select}'\n`);
  out.write(
    `discovery: ${n(summary.instructions)} instructions; ${n(summary.codeBytes)} bytes code, ${n(summary.dataBytes)} data, ` +
    `${n(summary.unknownBytes)} unknown; ${n(summary.jumpTargets)} jump targets, ${n(summary.indirectTransfers)} indirect transfers, ` +
    `${n(summary.conflicts.length)} conflicts\n`,
  );
  out.write(`evidence: ${Object.entries(summary.evidence).map(([k, v]) => `${k} ${n(v)}`).join(', ')}\n`);
  for (const c of summary.conflicts) out.write(`conflict at 0x${hex(c.address)}: ${c.reason}\n`);
  const reasonText = Object.entries(reasons).map(([k, v]) => `${k} ${v}`).join(', ');
  const tacticText = note ?? (Object.entries(tactics).map(([k, v]) => `${k} ${v}`).join(', ') || 'none');
  out.write(`sites: ${rows.length}${reasonText ? ` (${reasonText})` : ''}; tactics: ${tacticText}\n`);
  if (rows.length > 0) {
    const width = Math.max(8, ...rows.map((r) => hex(r.address).length));
    const textWidth = Math.max(11, ...rows.map((r) => r.text.length));
    out.write(`\n${'address'.padStart(width)}  ${'bytes'.padEnd(20)}  ${'instruction'.padEnd(textWidth)}  ${'reason'.padEnd(22)}  ${'tactic'.padEnd(6)}  evidence\n`);
    for (const r of rows) {
      const b = r.bytes.replace(/(..)(?!$)/g, '$1 ');
      out.write(
        `${hex(r.address).padStart(width)}  ${b.padEnd(20)}  ${r.text.padEnd(textWidth)}  ${r.reason.padEnd(22)}  ` +
        `${(r.tactic ?? '-').padEnd(6)}  ${r.evidence.join('+')}\n`,
      );
    }
  }
  out.flush();
  return EXIT_OK;
}

/**
 * The tactic per site, from a dry run of the rewriter on the same discovery and sites (nothing is
 * written). An image rewrite refuses (a PIE, no room for the stub segment) still gets its sites
 * listed, with the reason in place of the tactics.
 */
function planTactics(bytes: Uint8Array, select: string, discovery: Discovery, sites: Site[]): { planned: Map<number, PatchedSite>; note?: string } {
  if (sites.length === 0) return { planned: new Map() };
  try {
    const { map } = rewriteImage(bytes, { select, discovery, sites });
    return { planned: new Map(map.sites.map((s) => [s.addr, s])) };
  } catch (e) {
    if (e instanceof RewriteInputError) return { planned: new Map(), note: `not planned: ${e.message}` };
    throw e;
  }
}

function siteBytes(elf: ElfImage, s: Site): Uint8Array {
  for (const sec of elf.sections) {
    if (sec.executable && s.addr >= sec.addr && s.addr + s.length <= sec.addr + sec.bytes.length) {
      return sec.bytes.subarray(s.addr - sec.addr, s.addr - sec.addr + s.length);
    }
  }
  for (const g of elf.segments) {
    if (g.type === 'load' && s.addr >= g.vaddr && s.addr + s.length <= g.vaddr + g.bytes.length) {
      return g.bytes.subarray(s.addr - g.vaddr, s.addr - g.vaddr + s.length);
    }
  }
  return new Uint8Array(0);
}

function summarize(d: Discovery): DiscoverySummary {
  let codeBytes = 0, dataBytes = 0, unknownBytes = 0;
  const nonCode: DiscoverySummary['nonCode'] = [];
  for (const r of d.ranges) {
    const len = r.end - r.start;
    if (r.kind === 'code') codeBytes += len;
    else {
      if (r.kind === 'data') dataBytes += len;
      else unknownBytes += len;
      nonCode.push({ start: r.start, end: r.end, kind: r.kind, reason: r.reason });
    }
  }
  const evidence: Record<string, number> = Object.fromEntries(EVIDENCE_NAMES.map(([name]) => [name, 0]));
  for (const i of d.instructions) for (const [name, bit] of EVIDENCE_NAMES) if (i.evidence & bit) evidence[name]!++;
  return {
    instructions: d.instructions.length, codeBytes, dataBytes, unknownBytes,
    jumpTargets: d.jumpTargets.size, indirectTransfers: d.indirectTransfers.length, evidence,
    conflicts: (d.conflicts ?? []).map((c) => ({ address: c.addr, reason: c.reason })), nonCode,
  };
}
