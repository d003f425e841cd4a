// `ringshift disasm`: an objdump-like listing in which every sensitive instruction is marked
// with its class, so the sites the rewriter must patch can be read off a listing.
import type { Argv } from 'yargs';
import { Decoder, Instruction, INVALID_REASON_TEXT, OpKind, classOf, formName, formatIntel } from '@ringshift/decoder';
import { ElfError, PF_X, readElf } from '@ringshift/rewriter';
import type { ElfImage, ElfSymbol } from '@ringshift/rewriter';
import type { Command } from '../main';
import { BufferedWriter, EXIT_OK, InputError, hex, hexBytes, parseNumber, readInputFile } from '../output';
import type { Io } from '../output';

interface DisasmArgs {
  file: string;
  bits?: number;
  section?: string;
  start?: string;
  count?: string;
  json?: boolean;
  raw?: boolean;
  base?: string;
}

/** A run of bytes to disassemble: a section, an executable segment, or a whole flat file. */
interface Region {
  /** "section .text", "segment 2", "raw file". */
  title: string;
  name: string;
  addr: number;
  bytes: Uint8Array;
  /** Symbols in the region, sorted by address, one per address. */
  symbols: { value: number; name: string }[];
  /** The same, by address, for the label lines. */
  labels: Map<number, string>;
}

/** One line of the listing, also the JSON record. */
interface Row {
  address: number;
  bytes: string;
  text: string;
  length: number;
  form: string;
  section: string;
  classes: Classes;
  invalid?: string;
}

/** The JSON shape of an instruction's classes (a stable subset of the decoder's InstructionClass). */
interface Classes {
  /** #GP(0) at CPL > 0: 'always', or 'conditional' (e.g. RDTSC under CR4.TSD). */
  privileged: 'no' | 'always' | 'conditional';
  /** Subject to IOPL in protected mode ('always') or only in virtual-8086 mode ('v86'). */
  ioplSensitive: 'no' | 'always' | 'v86';
  /** Sensitive but unprivileged (Robin & Irvine): misbehaves silently outside ring 0. */
  sensitiveUnprivileged: boolean;
  flow: string;
  memory: string;
  /** VT-x exit: basic reason (SDM vol. 3D appendix C), its name, and 'always' or the controlling condition. */
  vmExit: { reason: number; name: string; when: string } | null;
}

export const disasmCommand: Command<DisasmArgs> = {
  command: 'disasm <file>',
  describe: 'disassemble an ELF32/ELF64 image or a flat binary, marking sensitive instructions',
  builder: (y: Argv) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'ELF image, or flat binary with --raw' })
      .option('bits', { type: 'number', choices: [16, 32, 64], describe: 'code size (default: from the ELF machine; 32 with --raw)' })
      .option('section', { type: 'string', describe: 'only this section (default: every executable section)' })
      .option('start', { type: 'string', describe: 'first address to disassemble (hex with 0x, or decimal)' })
      .option('count', { type: 'string', describe: 'stop after this many instructions' })
      .option('json', { type: 'boolean', describe: 'print a JSON array of instructions on stdout' })
      .option('raw', { type: 'boolean', describe: 'treat the file as flat code, not ELF' })
      .option('base', { type: 'string', describe: 'with --raw: address of the first byte (default 0)' })
      .example('$0 disasm examples/hello/hello.elf --count 40', '')
      .example('$0 disasm boot.bin --raw --bits 16 --base 0x7c00', '') as Argv<DisasmArgs>,
  run: async (args, io) => disasm(args, io),
};

function disasm(args: DisasmArgs, io: Io): number {
  const count = args.count === undefined ? Infinity : parseNumber(args.count, '--count', 'a positive number of instructions');
  if (count < 1) throw new InputError(`invalid --count '${args.count}': expected a positive number of instructions`);
  if (args.base !== undefined && !args.raw) {
    throw new InputError('--base only applies with --raw: an ELF image carries its own addresses');
  }
  if (args.raw && args.section !== undefined) throw new InputError('--section does not apply with --raw: a flat binary has no sections');

  const bytes = readInputFile(args.file);
  let regions: Region[];
  let bits: 16 | 32 | 64;
  let header: string;
  if (args.raw) {
    const base = args.base === undefined ? 0 : parseNumber(args.base, '--base');
    bits = (args.bits as 16 | 32 | 64 | undefined) ?? 32;
    regions = [{ title: 'raw file', name: 'raw', addr: base, bytes, symbols: [], labels: new Map() }];
    header = `${args.file}: flat binary, ${bytes.length} bytes at 0x${hex(base)}, ${bits}-bit code`;
  } else {
    let elf: ElfImage;
    try {
      elf = readElf(bytes);
    } catch (e) {
      if (e instanceof ElfError) throw new InputError(`${args.file}: ${e.message}${e.message.startsWith('not an ELF') ? ' (use --raw for a flat binary)' : ''}`);
      throw e;
    }
    bits = (args.bits as 16 | 32 | 64 | undefined) ?? elf.bits;
    regions = elfRegions(elf, args.file, args.section);
    header = `${args.file}: ELF${elf.class} ${elf.machine} ${elf.type}, entry 0x${hex(elf.entry)}, ${bits}-bit code`;
  }

  let startAt: { region: number; offset: number } | undefined;
  if (args.start !== undefined) {
    const start = parseNumber(args.start, '--start');
    const i = regions.findIndex((r) => start >= r.addr && start < r.addr + r.bytes.length);
    if (i < 0) {
      const where = regions.map((r) => `${r.name} 0x${hex(r.addr)}-0x${hex(r.addr + r.bytes.length)}`).join(', ');
      throw new InputError(`--start 0x${hex(start)} is outside what is being disassembled (${where || 'nothing'})`);
    }
    startAt = { region: i, offset: start - regions[i]!.addr };
  }

  const out = new BufferedWriter(io.stdout);
  const listing = args.json ? undefined : new Listing(out, regions);
  if (listing) out.write(`${header}\n`);
  else out.write('[');
  let emitted = 0;
  let separator = '';
  for (let r = startAt?.region ?? 0; r < regions.length && emitted < count; r++) {
    const region = regions[r]!;
    const offset = r === startAt?.region ? startAt.offset : 0;
    listing?.beginRegion(region, region.addr + offset);
    emitted += decodeRegion(region, bits, offset, count - emitted, regions, (row) => {
      if (listing) listing.row(row, region);
      else {
        out.write(`${separator}\n${JSON.stringify(row)}`);
        separator = ',';
      }
    });
  }
  if (!listing) out.write('\n]\n');
  out.flush();
  return EXIT_OK;
}

function elfRegions(elf: ElfImage, file: string, only: string | undefined): Region[] {
  const symbolsOf = (test: (s: ElfSymbol) => boolean): Region['symbols'] => labelSymbols(elf.symbols.filter(test));
  if (elf.sections.length === 0) {
    if (only !== undefined) {
      throw new InputError(`${file} has no section headers, so --section cannot select anything (without it, the executable segments are disassembled)`);
    }
    return elf.segments
      .filter((s) => s.type === 'load' && (s.flags & PF_X) !== 0 && s.bytes.length > 0)
      .map((s) => ({
        title: `segment ${s.index} (load, no section headers)`, name: `segment ${s.index}`, addr: s.vaddr, bytes: s.bytes,
        symbols: [], labels: new Map(),
      }));
  }
  const chosen = only === undefined
    ? elf.sections.filter((s) => s.executable && s.bytes.length > 0)
    : elf.sections.filter((s) => s.name === only);
  if (only !== undefined) {
    if (chosen.length === 0) {
      const names = elf.sections.filter((s) => s.name !== '').map((s) => s.name);
      throw new InputError(`${file} has no section named '${only}' (it has ${names.join(', ')})`);
    }
    if (chosen[0]!.bytes.length === 0) {
      throw new InputError(`section ${only} of ${file} has no bytes in the file (type ${chosen[0]!.type}, size ${chosen[0]!.size})`);
    }
  }
  return chosen.map((s) => {
    const symbols = symbolsOf((y) => y.sectionIndex === s.index);
    return {
      title: `section ${s.name}`, name: s.name, addr: s.addr, bytes: s.bytes,
      symbols, labels: new Map(symbols.map((y) => [y.value, y.name])),
    };
  });
}

/** objdump's choice of label where several symbols share an address: global over weak over local, functions first. */
function labelSymbols(symbols: ElfSymbol[]): Region['symbols'] {
  const rank = (s: ElfSymbol): number =>
    (s.binding === 'global' ? 0 : s.binding === 'weak' ? 1 : 2) * 2 + (s.type === 'func' ? 0 : 1);
  const named = symbols.filter((s) => s.name !== '' && s.type !== 'section' && s.type !== 'file');
  named.sort((a, b) => a.value - b.value || rank(a) - rank(b));
  const out: Region['symbols'] = [];
  for (const s of named) if (out.at(-1)?.value !== s.value) out.push({ value: s.value, name: s.name });
  return out;
}

/** `<name+0x12>` for an address, from the region that contains it (the current one first). */
function symbolize(address: number, current: Region, regions: readonly Region[]): string {
  const inside = (r: Region): boolean => address >= r.addr && address < r.addr + r.bytes.length;
  const region = inside(current) ? current : regions.find(inside);
  if (!region) return '';
  const syms = region.symbols;
  let lo = 0, hi = syms.length - 1, best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (syms[mid]!.value <= address) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (best < 0) return '';
  const s = syms[best]!;
  return address === s.value ? `<${s.name}>` : `<${s.name}+0x${hex(address - s.value)}>`;
}

function classesOf(form: number): Classes {
  const c = classOf(form);
  return {
    privileged: c.privileged,
    ioplSensitive: c.ioplSensitive,
    sensitiveUnprivileged: c.sensitiveUnprivileged,
    flow: c.flow,
    memory: c.memory,
    vmExit: c.vmExit ? { reason: c.vmExit.reason, name: c.vmExit.name, when: c.vmExit.when } : null,
  };
}

function isNearBranch(kind: number): boolean {
  return kind === OpKind.NearBranch16 || kind === OpKind.NearBranch32 || kind === OpKind.NearBranch64;
}

/** Decodes region bytes from `offset`, at most `limit` instructions; returns how many. */
function decodeRegion(region: Region, bits: 16 | 32 | 64, offset: number, limit: number, regions: readonly Region[], emit: (row: Row) => void): number {
  const { bytes, addr } = region;
  const decoder = new Decoder(bits, bytes, addr + offset, offset);
  const ins = new Instruction();
  let n = 0;
  while (n < limit && decoder.position < bytes.length) {
    const pos = decoder.position;
    decoder.decodeOut(ins);
    const address = addr + pos;
    if (ins.valid) {
      let text = formatIntel(ins);
      for (let i = 0; i < ins.opCount; i++) {
        if (isNearBranch(ins.opKinds[i]!)) {
          const label = symbolize(ins.target + ins.targetHi * 2 ** 32, region, regions);
          if (label) text += ` ${label}`;
        }
      }
      emit({
        address, bytes: hexBytes(bytes.subarray(pos, pos + ins.length), ''), text, length: ins.length,
        form: formName(ins.form), section: region.name, classes: classesOf(ins.form),
      });
    } else {
      // Like objdump: one byte of (bad), then try again at the next byte.
      emit({
        address, bytes: hexBytes(bytes.subarray(pos, pos + 1), ''), text: '(bad)', length: 1,
        form: formName(0), section: region.name, classes: classesOf(0), invalid: INVALID_REASON_TEXT[ins.invalid],
      });
    }
    const next = pos + (ins.valid ? ins.length : 1);
    decoder.position = next;
    decoder.ip = addr + next;
    n++;
  }
  return n;
}

/** The text listing: objdump -d's layout plus a marker column. */
class Listing {
  private width = 8;
  constructor(private readonly out: BufferedWriter, regions: readonly Region[]) {
    // Wide enough for every address shown, never narrower than objdump's 8 digits.
    const top = Math.max(0, ...regions.map((r) => r.addr + r.bytes.length));
    this.width = Math.max(8, hex(top).length);
  }

  /** The section heading, and a label for the first address unless a symbol's label follows anyway. */
  beginRegion(region: Region, start: number): void {
    this.out.write(`\nDisassembly of ${region.title}:\n`);
    if (region.labels.has(start)) return;
    const label = symbolize(start, region, [region]) || `<${region.name}>`;
    this.out.write(`\n${hex(start, this.width)} ${label}:\n`);
  }

  row(row: Row, region: Region): void {
    const label = region.labels.get(row.address);
    if (label !== undefined) this.out.write(`\n${hex(row.address, this.width)} <${label}>:\n`);
    const bytes = row.bytes.replace(/(..)(?!$)/g, '$1 ').padEnd(20);
    const markers = markersOf(row.classes);
    const text = markers ? `${row.text.padEnd(36)}  ${markers}` : row.text;
    this.out.write(`${hex(row.address).padStart(this.width)}:\t${bytes}\t${text}\n`);
  }
}

/**
 * The marker column: [priv] privileged (#GP at CPL > 0), [priv?] privileged under a condition,
 * [iopl] IOPL-sensitive in protected mode, [sens] sensitive but unprivileged, [exit N NAME] a
 * VT-x exit on every execution. Sensitivity that only applies in virtual-8086 mode and exits
 * that depend on VM-execution controls are in --json, not here: a listing for a protected-mode
 * kernel would otherwise mark half of its instructions.
 */
function markersOf(c: Classes): string {
  const m: string[] = [];
  if (c.privileged === 'always') m.push('[priv]');
  if (c.privileged === 'conditional') m.push('[priv?]');
  if (c.ioplSensitive === 'always') m.push('[iopl]');
  if (c.sensitiveUnprivileged) m.push('[sens]');
  if (c.vmExit && c.vmExit.when === 'always') m.push(`[exit ${c.vmExit.reason} ${c.vmExit.name}]`);
  return m.join(' ');
}
