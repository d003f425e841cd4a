// Decoder throughput: ringshift's Decoder against iced-x86 on the same real code, in the same
// process, each in its fastest documented loop (one reused Instruction, decodeOut). Prints
// Markdown and writes bench-results/decoder.json.
//
//   pnpm bench:decoder [--file ELF] [--section NAME] [--rounds N]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Decoder, Instruction } from '@ringshift/decoder';
import { readElf } from '@ringshift/rewriter';

type Iced = typeof import('iced-x86');
// iced-x86 is CommonJS with a synchronously instantiated wasm module.
const iced = createRequire(import.meta.url)('iced-x86') as Iced;
const ICED_VERSION = (createRequire(import.meta.url)('iced-x86/package.json') as { version: string }).version;

const { values } = parseArgs({
  options: {
    file: { type: 'string', default: '/usr/lib/x86_64-linux-gnu/libc.so.6' },
    section: { type: 'string', default: '.text' },
    rounds: { type: 'string', default: '15' },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, not ${values.rounds}`);

const elf = readElf(readFileSync(values.file));
const section = elf.sections.find((s) => s.name === values.section);
if (!section || section.bytes.length === 0) throw new Error(`${values.file} has no section ${values.section} with bytes`);
const bytes = section.bytes;
const bits = elf.bits;

function oursRound(): number {
  const decoder = new Decoder(bits, bytes, section!.addr);
  const ins = new Instruction();
  let n = 0;
  while (decoder.position < bytes.length) {
    decoder.decodeOut(ins);
    n++;
  }
  return n;
}

function icedRound(): number {
  const decoder = new iced.Decoder(bits, bytes, iced.DecoderOptions.None);
  decoder.ip = BigInt(section!.addr);
  const ins = new iced.Instruction();
  let n = 0;
  while (decoder.canDecode) {
    decoder.decodeOut(ins);
    n++;
  }
  ins.free();
  decoder.free();
  return n;
}

interface Measured {
  instructions: number;
  timesMs: number[];
  bestPerSecond: number;
  medianPerSecond: number;
}

function summarize(instructions: number, timesMs: number[]): Measured {
  const sorted = [...timesMs].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1]!;
  return {
    instructions,
    timesMs: timesMs.map((t) => Math.round(t * 100) / 100),
    bestPerSecond: Math.round(instructions / (sorted[0]! / 1000)),
    medianPerSecond: Math.round(instructions / (median / 1000)),
  };
}

/**
 * Rounds alternate between the two decoders so that load from other processes on this shared
 * machine falls on both alike; the ratio reported is the median of the per-pair ratios.
 */
function measurePair(a: () => number, b: () => number): { a: Measured; b: Measured; ratio: number } {
  const na = a(), nb = b(); // warm-up: JIT for ours, wasm tier-up for iced
  const ta: number[] = [], tb: number[] = [], ratios: number[] = [];
  const time = (round: () => number, expected: number, out: number[]): number => {
    const t0 = process.hrtime.bigint();
    const n = round();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (n !== expected) throw new Error(`a round decoded ${n} instructions, the first ${expected}`);
    out.push(ms);
    return ms;
  };
  for (let r = 0; r < rounds; r++) {
    const x = time(a, na, ta);
    const y = time(b, nb, tb);
    ratios.push((na / x) / (nb / y));
  }
  ratios.sort((p, q) => p - q);
  return { a: summarize(na, ta), b: summarize(nb, tb), ratio: ratios[ratios.length >> 1]! };
}

function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  } catch {
    return cpus()[0]?.model ?? 'unknown';
  }
}

process.stderr.write(`bench: decoding ${bytes.length} bytes of ${values.section}, ${rounds} rounds each\n`);
const pair = measurePair(oursRound, icedRound);
const ours = pair.a;
const theirs = pair.b;
const ratio = pair.ratio;

const result = {
  date: new Date().toISOString(),
  machine: { cpu: cpuModel(), cores: cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` },
  input: { file: values.file, section: values.section, bytes: bytes.length, bits },
  rounds,
  ringshift: ours,
  icedX86: { version: ICED_VERSION, ...theirs },
  ratioMedian: Math.round(ratio * 1000) / 1000,
};

const fmt = (n: number): string => `${(n / 1e6).toFixed(2)} M/s`;
const md = [
  '## Decoder throughput',
  '',
  `Machine: ${result.machine.cpu}, ${result.machine.cores} cores, Node ${result.machine.node} (${result.machine.platform})`,
  `Input: ${values.file} ${values.section}, ${bytes.length} bytes, ${bits}-bit, ${ours.instructions} instructions (iced: ${theirs.instructions})`,
  `Rounds: ${rounds} per decoder, alternating, after one warm-up round each; one reused Instruction, decodeOut`,
  '',
  '| decoder | median | best | times (ms) |',
  '|---|---:|---:|---|',
  `| ringshift | ${fmt(ours.medianPerSecond)} | ${fmt(ours.bestPerSecond)} | ${ours.timesMs.join(', ')} |`,
  `| iced-x86 ${ICED_VERSION} (wasm) | ${fmt(theirs.medianPerSecond)} | ${fmt(theirs.bestPerSecond)} | ${theirs.timesMs.join(', ')} |`,
  '',
  `ringshift / iced-x86 (median of per-round ratios, rounds alternating): ${ratio.toFixed(2)}×`,
  '',
].join('\n');
process.stdout.write(md);

const dir = join(import.meta.dirname, '..', 'bench-results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'decoder.json'), `${JSON.stringify(result, null, 2)}\n`);
process.stderr.write(`bench: wrote ${join('bench-results', 'decoder.json')}\n`);
