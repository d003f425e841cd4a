// Random-bytes campaign: ringshift's decoder against iced-x86 in 16-, 32- and 64-bit mode.
// Each sample is 15 bytes from a seeded PRNG, built like the property tests' arbitraries
// (packages/decoder/test/support/arbitraries.ts): some uniform, most assembled from legacy
// prefixes, a REX byte, an opcode escape (0F, 0F38, 0F3A, 3DNow!, VEX, XOP, EVEX) and random
// tail bytes, because uniform bytes rarely reach the interesting maps. For every sample the
// two must agree on validity and, when valid, on length, form (our form id is iced's Code) and
// every operand (test/support/compare-iced.ts, the same check as the property test).
//
//   pnpm campaign:decoder [--per-mode N] [--seed S] [--modes 16,32,64]
//
// Every disagreement is printed on stdout (mode, bytes, both answers); a summary follows.
// Progress goes to stderr. Exit status: 0 all agree, 1 disagreements found.
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { Decoder, INVALID_REASON_TEXT, Instruction, formName } from '@ringshift/decoder';
import { compareWithIced } from '../packages/decoder/test/support/compare-iced';

type Iced = typeof import('iced-x86');
const iced = createRequire(import.meta.url)('iced-x86') as Iced;

const { values } = parseArgs({
  options: {
    'per-mode': { type: 'string', default: '10000000' },
    seed: { type: 'string', default: '1' },
    modes: { type: 'string', default: '16,32,64' },
  },
});
const perMode = Number(values['per-mode']);
const seed = Number(values.seed);
const modes = values.modes.split(',').map(Number) as (16 | 32 | 64)[];
if (!Number.isSafeInteger(perMode) || perMode < 1) throw new Error(`--per-mode must be a positive integer, not ${values['per-mode']}`);
if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer, not ${values.seed}`);
if (modes.some((m) => m !== 16 && m !== 32 && m !== 64)) throw new Error(`--modes takes 16, 32, 64, not ${values.modes}`);

/** sfc32 (Chris Doty-Humphrey's Small Fast Counter): small, fast and statistically sound. */
function sfc32(s: number): () => number {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = s >>> 0;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

const SAMPLE = 15;
const LEGACY_PREFIXES = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];

/** Writes one sample at out[at..at+15). The weights are the arbitraries' (uniform 1 : built 3). */
function sample(rand: () => number, bits: 16 | 32 | 64, out: Uint8Array, at: number): void {
  const r = (n: number): number => rand() % n;
  const bytes: number[] = [];
  if (r(4) !== 0) {
    for (let n = r(5); n > 0; n--) bytes.push(LEGACY_PREFIXES[r(LEGACY_PREFIXES.length)]!);
    if (bits === 64 && r(2) === 0) bytes.push(0x40 + r(16));
    // Escape weights 6:3:1:1:1:1:1:1:2 as in the arbitraries: none, 0F, 0F38, 0F3A, 0F0F, VEX3, VEX2, XOP, EVEX.
    const e = r(17);
    if (e < 6) {
      // one-byte map: nothing to add
    } else if (e < 9) bytes.push(0x0f);
    else if (e < 10) bytes.push(0x0f, 0x38);
    else if (e < 11) bytes.push(0x0f, 0x3a);
    else if (e < 12) bytes.push(0x0f, 0x0f);
    else if (e < 13) bytes.push(0xc4, (r(8) << 5) | (1 + r(3)));
    else if (e < 14) bytes.push(0xc5, r(256));
    else if (e < 15) bytes.push(0x8f, (r(8) << 5) | (8 + r(3)));
    else bytes.push(0x62, (r(16) << 4) | [1, 2, 3, 5, 6][r(5)]!, r(256) | 0x04);
  }
  for (let i = 0; i < SAMPLE; i++) out[at + i] = i < bytes.length ? bytes[i]! : r(256);
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const icedCodeName = new Map<number, string>(
  Object.entries(iced.Code).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]),
);

interface ModeSummary {
  bits: number;
  samples: number;
  bothValid: number;
  bothInvalid: number;
  disagreements: number;
  byKind: Record<string, number>;
  seconds: number;
}

// Samples are decoded in chunks: one iced Decoder per chunk (creating one copies the bytes into
// wasm memory) and `position` moved to each sample. A decoder never reads past 15 bytes of one
// instruction, so the next sample cannot change the answer for this one: an instruction longer
// than 15 bytes is invalid either way.
const CHUNK = 1 << 14;

function runMode(bits: 16 | 32 | 64): ModeSummary {
  const rand = sfc32(seed * 1_000_003 + bits);
  const buffer = new Uint8Array(CHUNK * SAMPLE);
  const ours = new Instruction();
  const theirs = new iced.Instruction();
  const s: ModeSummary = { bits, samples: 0, bothValid: 0, bothInvalid: 0, disagreements: 0, byKind: {}, seconds: 0 };
  const t0 = Date.now();
  let lastReport = t0;
  for (let done = 0; done < perMode; ) {
    const n = Math.min(CHUNK, perMode - done);
    for (let i = 0; i < n; i++) sample(rand, bits, buffer, i * SAMPLE);
    const chunk = buffer.subarray(0, n * SAMPLE);
    const decoder = new Decoder(bits, chunk);
    const icedDecoder = new iced.Decoder(bits, chunk, iced.DecoderOptions.None);
    for (let i = 0; i < n; i++) {
      const at = i * SAMPLE;
      decoder.position = at;
      decoder.ip = 0;
      decoder.decodeOut(ours);
      icedDecoder.position = at;
      icedDecoder.ip = 0n;
      icedDecoder.decodeOut(theirs);
      const code = theirs.code;
      const icedValid = code !== iced.Code.INVALID;
      let kind = '';
      if (ours.valid !== icedValid) kind = ours.valid ? 'valid only to ringshift' : 'valid only to iced';
      else if (ours.valid && ours.length !== theirs.length) kind = 'length';
      else if (ours.valid && ours.form !== code) kind = 'form';
      let operandDiff = '';
      if (kind === '' && ours.valid) {
        operandDiff = compareWithIced(ours, theirs);
        if (operandDiff) kind = 'operands';
      }
      if (kind === '') {
        if (ours.valid) s.bothValid++;
        else s.bothInvalid++;
        continue;
      }
      s.disagreements++;
      s.byKind[kind] = (s.byKind[kind] ?? 0) + 1;
      const oursText = ours.valid ? `${formName(ours.form)} len ${ours.length}` : `invalid (${INVALID_REASON_TEXT[ours.invalid]})`;
      const icedText = icedValid ? `${icedCodeName.get(code)} len ${theirs.length}` : `invalid (DecoderError ${icedDecoder.lastError})`;
      process.stdout.write(`${bits}-bit ${kind}: ${hex(chunk.subarray(at, at + SAMPLE))} | ringshift ${oursText} | iced ${icedText}${operandDiff ? ` | ${operandDiff}` : ''}\n`);
    }
    icedDecoder.free();
    done += n;
    s.samples = done;
    const now = Date.now();
    if (now - lastReport > 2000 || done === perMode) {
      lastReport = now;
      const rate = done / ((now - t0) / 1000);
      process.stderr.write(`campaign: ${bits}-bit ${done}/${perMode} (${(rate / 1e3).toFixed(0)}k/s), ${s.disagreements} disagreements\n`);
    }
  }
  theirs.free();
  s.seconds = (Date.now() - t0) / 1000;
  return s;
}

process.stderr.write(`campaign: ${perMode} samples per mode, seed ${seed}, modes ${modes.join(', ')}\n`);
const summaries = modes.map(runMode);
const lines = [
  '',
  `## Decoder campaign: ringshift vs iced-x86 ${(createRequire(import.meta.url)('iced-x86/package.json') as { version: string }).version}`,
  '',
  `seed ${seed}, ${perMode} random 15-byte samples per mode`,
  '',
  '| mode | samples | both valid | both invalid | disagreements | by kind | seconds |',
  '|---|---:|---:|---:|---:|---|---:|',
  ...summaries.map((s) =>
    `| ${s.bits}-bit | ${s.samples} | ${s.bothValid} | ${s.bothInvalid} | ${s.disagreements} | ${Object.entries(s.byKind).map(([k, v]) => `${k}: ${v}`).join(', ') || '-'} | ${s.seconds.toFixed(1)} |`),
  '',
];
process.stdout.write(lines.join('\n'));
process.exitCode = summaries.some((s) => s.disagreements > 0) ? 1 : 0;
