// Section 1, decoder throughput: ringshift's Decoder against iced-x86 on the same real code, in
// the same process, each in its fastest documented loop (one reused Instruction, decodeOut).
// Rounds alternate between the two decoders so that load from other processes on this shared
// machine falls on both alike; the ratio reported is the median of the per-pair ratios.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Decoder, Instruction } from '@ringshift/decoder';
import { readElf } from '@ringshift/rewriter';
import { barChartSvg } from '../lib/svg';
import { ratio, summarize, timeMs, type Summary } from '../lib/stats';
import type { SectionResult } from '../lib/section';

type Iced = typeof import('iced-x86');
// iced-x86 is CommonJS with a synchronously instantiated wasm module.
const require = createRequire(import.meta.url);

export interface DecoderBenchOptions {
  file: string;
  section: string;
  rounds: number;
  /** Decode only the first N bytes of the section (quick mode). */
  maxBytes?: number;
}

export const DEFAULT_DECODER_INPUT = { file: '/usr/lib/x86_64-linux-gnu/libc.so.6', section: '.text' };

export interface DecoderMeasured {
  instructions: number;
  timesMs: number[];
  /** Instructions per second, from the median and best round. */
  medianPerSecond: number;
  bestPerSecond: number;
  ms: Summary;
}

export interface DecoderBenchData {
  input: { file: string; section: string; bytes: number; bits: 16 | 32 | 64 };
  rounds: number;
  ringshift: DecoderMeasured;
  icedX86: DecoderMeasured & { version: string };
  /** ringshift / iced-x86 instructions per second: median of per-round ratios. */
  ratioMedian: number;
  ratio: Summary;
}

function measured(instructions: number, timesMs: number[]): DecoderMeasured {
  const ms = summarize(timesMs);
  return {
    instructions,
    timesMs: timesMs.map((t) => Math.round(t * 100) / 100),
    medianPerSecond: Math.round(instructions / (ms.median / 1000)),
    bestPerSecond: Math.round(instructions / (ms.min / 1000)),
    ms,
  };
}

export function benchDecoder(opts: DecoderBenchOptions): DecoderBenchData {
  if (!Number.isInteger(opts.rounds) || opts.rounds < 1) throw new RangeError(`rounds must be a positive integer, not ${opts.rounds}`);
  const iced = require('iced-x86') as Iced;
  const icedVersion = (require('iced-x86/package.json') as { version: string }).version;
  const elf = readElf(readFileSync(opts.file));
  const section = elf.sections.find((s) => s.name === opts.section);
  if (!section || section.bytes.length === 0) throw new Error(`${opts.file} has no section ${opts.section} with bytes`);
  const bytes = opts.maxBytes === undefined ? section.bytes : section.bytes.subarray(0, opts.maxBytes);
  const bits = elf.bits;

  const ours = (): number => {
    const decoder = new Decoder(bits, bytes, section.addr);
    const ins = new Instruction();
    let n = 0;
    while (decoder.position < bytes.length) {
      decoder.decodeOut(ins);
      n++;
    }
    return n;
  };
  const theirs = (): number => {
    const decoder = new iced.Decoder(bits, bytes, iced.DecoderOptions.None);
    decoder.ip = BigInt(section.addr);
    const ins = new iced.Instruction();
    let n = 0;
    while (decoder.canDecode) {
      decoder.decodeOut(ins);
      n++;
    }
    ins.free();
    decoder.free();
    return n;
  };

  const na = ours(), nb = theirs(); // warm-up: JIT for ours, wasm tier-up for iced
  const ta: number[] = [], tb: number[] = [], ratios: number[] = [];
  const round = (f: () => number, expected: number, out: number[]): number => {
    const { value, ms } = timeMs(f);
    if (value !== expected) throw new Error(`a round decoded ${value} instructions, the first ${expected}`);
    out.push(ms);
    return ms;
  };
  for (let r = 0; r < opts.rounds; r++) {
    const x = round(ours, na, ta);
    const y = round(theirs, nb, tb);
    ratios.push(na / x / (nb / y));
  }
  const rs = summarize(ratios);
  return {
    input: { file: opts.file, section: opts.section, bytes: bytes.length, bits },
    rounds: opts.rounds,
    ringshift: measured(na, ta),
    icedX86: { version: icedVersion, ...measured(nb, tb) },
    ratioMedian: Math.round(rs.median * 1000) / 1000,
    ratio: rs,
  };
}

const mps = (n: number): string => `${(n / 1e6).toFixed(2)} M/s`;

export function decoderMarkdown(d: DecoderBenchData): string {
  return [
    '## 1. Decoder throughput',
    '',
    `Input: ${d.input.file} ${d.input.section}, ${d.input.bytes} bytes, ${d.input.bits}-bit, ${d.ringshift.instructions} instructions (iced-x86: ${d.icedX86.instructions}).`,
    `Rounds: ${d.rounds} per decoder, alternating, after one warm-up round each; one reused Instruction, decodeOut.`,
    '',
    '| decoder | median | best | spread (IQR/median) | times (ms) |',
    '|---|---:|---:|---:|---|',
    `| ringshift | ${mps(d.ringshift.medianPerSecond)} | ${mps(d.ringshift.bestPerSecond)} | ${(100 * d.ringshift.ms.relIqr).toFixed(0)}% | ${d.ringshift.timesMs.join(', ')} |`,
    `| iced-x86 ${d.icedX86.version} (wasm) | ${mps(d.icedX86.medianPerSecond)} | ${mps(d.icedX86.bestPerSecond)} | ${(100 * d.icedX86.ms.relIqr).toFixed(0)}% | ${d.icedX86.timesMs.join(', ')} |`,
    '',
    `**ringshift / iced-x86: ${ratio(d.ratio.median)}** (median of per-round ratios; min ${ratio(d.ratio.min)}, max ${ratio(d.ratio.max)}).`,
    '',
  ].join('\n');
}

export function decoderSection(opts: DecoderBenchOptions): SectionResult {
  const data = benchDecoder(opts);
  const svg = barChartSvg({
    title: 'Decoder throughput', unit: 'million instructions per second', series: ['median', 'best'],
    rows: [
      { label: 'ringshift', values: [data.ringshift.medianPerSecond / 1e6, data.ringshift.bestPerSecond / 1e6] },
      { label: `iced-x86 ${data.icedX86.version}`, values: [data.icedX86.medianPerSecond / 1e6, data.icedX86.bestPerSecond / 1e6] },
    ],
  });
  return { id: 'decoder', title: 'Decoder throughput', markdown: decoderMarkdown(data), data, charts: [{ file: 'decoder.svg', svg }] };
}
