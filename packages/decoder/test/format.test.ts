// Differential property test of formatIntel() against iced-x86's Intel formatter (configured
// by makeIcedIntelFormatter) on random instruction bytes in 16-, 32- and 64-bit code.
// iced decodes the bytes and formats the expected text; the Instruction under test comes from
// UNDER_TEST below: iced's decoding converted by fromIced, or (SOURCES.ours) our own decoder.
// Fixed seed; on failure fast-check reports the seed and the shrunk counterexample, and the
// thrown message names the bytes, mode, form and both texts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type IntelFormatOptions, formatIntel } from '../src/format/intel';
import { Decoder } from '../src/index';
import { Instruction } from '../src/instruction';
import type { Form } from '../src/table/form';
import { FORMS, formById } from '../src/table/lookup';
import { fromIced } from './support/from-iced';
import { iced, makeIcedIntelFormatter } from './support/iced-formatter';

type Bits = 16 | 32 | 64;
type IcedInstruction = InstanceType<(typeof iced)['Instruction']>;

/** Where the Instruction under test comes from. */
interface Source {
  /** iced DecoderOptions cycled through for the reference decoding. */
  readonly decoderOptions: readonly number[];
  /**
   * Fills `out` for `bytes`, which iced decoded as `ref`. False skips the string (counted as
   * "not compared"): a form our table lacks, or our decoder disagreeing with iced about the
   * form, which test/decode-iced.test.ts reports.
   */
  fill(bits: Bits, bytes: Uint8Array, ip: number, ref: IcedInstruction, out: Instruction): boolean;
}

const SOURCES = {
  /** iced's own decoding, converted field by field. */
  iced: {
    // AMD: o16 near branches in 64-bit code. Options enabling other CPUs' opcodes (MPX, Cyrix,
    // UMOV...) yield forms our table omits.
    decoderOptions: [iced.DecoderOptions.None, iced.DecoderOptions.AMD],
    fill: (bits, _bytes, _ip, ref, out) => fromIced(ref, bits, out),
  },
  /** Our decoder. */
  ours: {
    decoderOptions: [iced.DecoderOptions.None],
    fill: (bits, bytes, ip, ref, out) => {
      new Decoder(bits, bytes, ip).decodeOut(out);
      return out.valid && out.form === ref.code && out.length === ref.length;
    },
  },
} satisfies Record<string, Source>;

// Our decoder feeds the formatter, so this is the end-to-end check (decoder + formatter vs
// iced's decoder + formatter). SOURCES.iced isolates the formatter when hunting a bug.
const UNDER_TEST: Source = SOURCES.ours;

const SEED = 42;
/** Strings per fast-check run; batching keeps per-run overhead small. */
const BATCH = 100;
const MIN_LEGACY_PER_MODE = 50_000;

// --- random instruction-like bytes -------------------------------------------------------

const PREFIXES = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];
const MAP_ESCAPE: Readonly<Record<string, readonly number[]>> = { normal: [], '0F': [0x0f], '0F38': [0x0f, 0x38], '0F3A': [0x0f, 0x3a] };

interface Recipe {
  /**
   * 0-29 a legacy or 3DNow! form from the table, 30-44 a VEX/EVEX/XOP form from the table, 45-64 one-byte
   * map, 65-79 0F, 80-85 0F38/0F3A, 86-93 x87, 94-99 VEX/EVEX/XOP escape + random bytes.
   */
  readonly template: number;
  readonly prefixes: readonly number[];
  /** 16-31: a REX prefix 40+(n&15) in 64-bit code. */
  readonly rex: number;
  readonly pick: number;
  readonly ipSeed: number;
  readonly body: Uint8Array;
}

const recipeArb: fc.Arbitrary<Recipe> = fc.record({
  template: fc.nat({ max: 99 }),
  prefixes: fc.array(fc.nat({ max: PREFIXES.length - 1 }), { maxLength: 3 }),
  rex: fc.nat({ max: 31 }),
  pick: fc.nat(),
  ipSeed: fc.nat(),
  body: fc.uint8Array({ minLength: 14, maxLength: 14 }),
});

const legacyForms = (bits: Bits): Form[] =>
  FORMS.filter(
    (f) => (f.enc === 'legacy' ? f.map in MAP_ESCAPE : f.enc === '3dnow') && (!f.modes || f.modes.includes(bits)),
  );
const FORMS_BY_MODE: Record<Bits, Form[]> = { 16: legacyForms(16), 32: legacyForms(32), 64: legacyForms(64) };
const vectorForms = (bits: Bits): Form[] =>
  FORMS.filter((f) => (f.enc === 'vex' || f.enc === 'evex' || f.enc === 'xop') && (!f.modes || f.modes.includes(bits)));
const VECTOR_FORMS_BY_MODE: Record<Bits, Form[]> = { 16: vectorForms(16), 32: vectorForms(32), 64: vectorForms(64) };
const MAP_NUMBER: Readonly<Record<string, number>> = { '0F': 1, '0F38': 2, '0F3A': 3, map5: 5, map6: 6, map8: 8, map9: 9, map10: 10 };
const PP_BITS: Readonly<Record<string, number>> = { np: 0, '66': 1, F3: 2, F2: 3 };

/** VEX3/XOP/EVEX prefix + opcode + ModRM for a vector form, other fields random. */
function vectorBytes(bits: Bits, f: Form, rnd: Uint8Array): number[] {
  const [a = 0, b = 0, c = 0, d = 0] = rnd;
  const W = f.W === 0 || f.W === 1 ? f.W : a & 1;
  const L = f.L === 0 || f.L === 1 || f.L === 2 ? f.L : (a >> 1) & 3;
  const pp = PP_BITS[f.pp ?? 'np']!;
  // Outside 64-bit code the inverted R/X bits must be 1, or the bytes read as LDS/LES/BOUND/POP.
  const rx = bits === 64 ? b & 0xe0 : 0xc0 | (b & 0x20);
  let modrm = c;
  if (f.reg !== undefined) modrm = (modrm & 0xc7) | (f.reg << 3);
  if (f.rm !== undefined) modrm = 0xc0 | (modrm & 0x38) | f.rm;
  const vvvv = bits === 64 ? (d & 0x78) : (d & 0x78) | 0x40;
  if (f.enc === 'evex') {
    const p0 = (bits === 64 ? b & 0xf0 : 0xc0 | (b & 0x30)) | MAP_NUMBER[f.map]!;
    const p1 = (W << 7) | vvvv | 0x04 | pp;
    const p2 = (d & 0x80) | (L << 5) | (a & 0x10) | (bits === 64 ? c & 0x08 : 0x08) | (b & 7);
    return [0x62, p0, p1, p2, f.op, modrm];
  }
  return [f.enc === 'xop' ? 0x8f : 0xc4, rx | MAP_NUMBER[f.map]!, (W << 7) | vvvv | (L << 2) | pp, f.op, modrm];
}

/** Bytes of one candidate instruction (at most 15 bytes; may not decode). */
function bytesFor(bits: Bits, r: Recipe): Uint8Array {
  const out: number[] = r.prefixes.map((p) => PREFIXES[p]!);
  const body = r.body;
  const rex = (): void => {
    if (bits === 64 && r.rex >= 16) out.push(0x40 | (r.rex & 15));
  };
  let tail = 1;
  const t = r.template;
  if (t < 30) {
    // The encoding of a random legacy form from the table, so rare forms are reached too.
    const forms = FORMS_BY_MODE[bits];
    const f = forms[r.pick % forms.length]!;
    if (f.enc === '3dnow') {
      // 0F 0F /r ib: the opcode is the trailing byte; a register ModRM keeps it in place.
      out.push(0x0f, 0x0f, 0xc0 | (body[1]! & 0x3f), f.op);
      return Uint8Array.from(out);
    }
    if ((f.osz === 16 && bits !== 16) || (f.osz === 32 && bits === 16)) out.push(0x66);
    if ((f.asz === 16 && bits === 32) || (f.asz === 32 && bits !== 32)) out.push(0x67);
    if (f.pp && f.pp !== 'np') out.push(parseInt(f.pp, 16));
    if (f.osz === 64) out.push(0x48 | (r.rex & 7));
    else rex();
    out.push(...MAP_ESCAPE[f.map]!);
    const plusReg = f.ops.some((k) => k.endsWith('_opcode')) ? body[0]! & 7 : 0;
    if (f.opLen === 2) {
      out.push(f.op >> 8, (f.op & 0xff) | plusReg);
    } else {
      out.push(f.op | plusReg);
      if (f.reg !== undefined || f.rm !== undefined || f.ops.some((k) => /rm|mem|_reg$/.test(k))) {
        let modrm = body[1]!;
        if (f.reg !== undefined) modrm = (modrm & 0xc7) | (f.reg << 3);
        if (f.rm !== undefined) modrm = 0xc0 | (modrm & 0x38) | f.rm;
        out.push(modrm);
        tail = 2;
      }
    }
  } else if (t < 45) {
    const forms = VECTOR_FORMS_BY_MODE[bits];
    out.push(...vectorBytes(bits, forms[r.pick % forms.length]!, body));
    tail = 4;
  } else if (t < 65) {
    rex();
    out.push(body[0]!);
  } else if (t < 80) {
    rex();
    out.push(0x0f, body[0]!);
  } else if (t < 86) {
    rex();
    out.push(0x0f, body[0]! & 1 ? 0x3a : 0x38, body[1]!);
    tail = 2;
  } else if (t < 94) {
    rex();
    out.push(0xd8 | (body[0]! & 7));
  } else {
    out.push([0xc5, 0xc4, 0x62, 0x62, 0x8f][t % 5]!);
    tail = 0;
  }
  for (let i = tail; i < body.length && out.length < 15; i++) out.push(body[i]!);
  return Uint8Array.from(out.slice(0, 15));
}

/** Instruction pointers: small, full-width, and (64-bit) above 4 GiB but below 2^53. */
function ipFor(bits: Bits, seed: number): number {
  if (bits === 16) return seed & 0xffff;
  if (bits === 32) return (seed * 2654435761) >>> 0;
  return seed % 4 === 0 ? seed & 0xffff : (seed >>> 4) * 0x1_0000 + (seed & 0xffff);
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

// --- the check -------------------------------------------------------------------------

interface Stats {
  valid: number;
  byEnc: Record<string, number>;
  forms: Set<number>;
  skipped: number;
  /** Agreements only after emulating iced's wasm small-number quirk (see below). */
  quirk: number;
}

/**
 * iced-x86's wasm build decides "small number, print in decimal" on the value cast to usize,
 * which is 32 bits in wasm: a 64-bit value such as 0x40000000003 prints as "3". formatIntel
 * prints the real value; this rewrites its text the way iced would, to compare the rest.
 */
function withIcedWasmSmallNumberQuirk(text: string, opts: IntelFormatOptions = {}): string {
  if (opts.smallNumbersInDecimal === false) return text;
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`${esc(opts.hexPrefix ?? '0x')}([0-9a-fA-F]{9,17})${esc(opts.hexSuffix ?? '')}`, 'g');
  return text.replace(re, (tok, digits: string) => {
    const v = BigInt('0x' + digits);
    const low = Number(v & 0xffff_ffffn);
    return v > 0xffff_ffffn && low <= 9 ? String(low) : tok;
  });
}

function checkBatch(
  bits: Bits,
  recipes: readonly Recipe[],
  run: number,
  formatter: ReturnType<typeof makeIcedIntelFormatter>,
  opts: IntelFormatOptions | undefined,
  stats: Stats,
): void {
  // One iced decoder per batch: each string sits in its own 16-byte slot.
  const buf = new Uint8Array(recipes.length * 16);
  const slots = recipes.map((r, i) => {
    const b = bytesFor(bits, r);
    buf.set(b, i * 16);
    return b;
  });
  const options = UNDER_TEST.decoderOptions;
  const decoder = new iced.Decoder(bits, buf, options[run % options.length]!);
  const ref = new iced.Instruction();
  const ours = new Instruction();
  try {
    for (let i = 0; i < recipes.length; i++) {
      const ip = ipFor(bits, recipes[i]!.ipSeed);
      decoder.position = i * 16;
      decoder.ip = BigInt(ip);
      decoder.decodeOut(ref);
      if (ref.code === iced.Code.INVALID || ref.length > slots[i]!.length) continue;
      const bytes = buf.subarray(i * 16, i * 16 + ref.length);
      if (!UNDER_TEST.fill(bits, bytes, ip, ref, ours)) {
        stats.skipped++;
        continue;
      }
      const expected = formatter.format(ref);
      let actual = formatIntel(ours, opts);
      if (actual !== expected && bits === 64) {
        const quirk = withIcedWasmSmallNumberQuirk(actual, opts);
        if (quirk === expected) {
          stats.quirk++;
          actual = quirk;
        }
      }
      if (actual !== expected) {
        const form = formById(ref.code);
        throw new Error(
          `${bits}-bit ip=0x${ip.toString(16)} bytes ${hex(bytes)} (${form?.name ?? ref.code}, ${form?.enc}):\n` +
            `  iced:   ${expected}\n  ours:   ${actual}`,
        );
      }
      stats.valid++;
      const enc = formById(ref.code)!.enc;
      stats.byEnc[enc] = (stats.byEnc[enc] ?? 0) + 1;
      stats.forms.add(ref.code);
    }
  } finally {
    ref.free();
    decoder.free();
  }
}

function runCampaign(bits: Bits, numRuns: number, opts?: IntelFormatOptions, seed = SEED): Stats {
  const formatter = makeIcedIntelFormatter(opts);
  const stats: Stats = { valid: 0, byEnc: {}, forms: new Set(), skipped: 0, quirk: 0 };
  let run = 0;
  try {
    fc.assert(
      fc.property(fc.array(recipeArb, { minLength: 1, maxLength: BATCH, size: 'max' }), (recipes) => {
        checkBatch(bits, recipes, run++, formatter, opts, stats);
      }),
      { seed: seed + bits, numRuns },
    );
  } finally {
    formatter.free();
  }
  return stats;
}

const RUNS_PER_MODE = 2500;

describe.each([16, 32, 64] as const)('formatIntel vs iced-x86 Intel formatter, %i-bit', (bits) => {
  it(`matches on random instructions (seed ${SEED + bits})`, () => {
    const s = runCampaign(bits, RUNS_PER_MODE);
    const legacy = s.byEnc.legacy ?? 0;
    const reached = FORMS_BY_MODE[bits].filter((f) => s.forms.has(f.id)).length;
    console.log(
      `${bits}-bit: ${s.valid} instructions agree (${Object.entries(s.byEnc)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}); ${s.forms.size} distinct forms, ${reached} of the ${FORMS_BY_MODE[bits].length} ` +
        `legacy/3DNow! forms of this mode; ${s.skipped} not compared; ${s.quirk} via the iced wasm small-number quirk`,
    );
    expect(legacy).toBeGreaterThanOrEqual(MIN_LEGACY_PER_MODE);
    // A string our decoder reads differently from iced is a decoder bug, not a formatter pass.
    expect(s.skipped).toBe(0);
  }, 60_000);
});

// Each option against the iced setting it documents, on fewer instructions.
const VARIANTS: IntelFormatOptions[] = [
  { uppercase: true },
  { uppercaseHex: true },
  { hexPrefix: '', hexSuffix: 'h' },
  { smallNumbersInDecimal: false },
  { spaceAfterComma: false },
  { ripRelative: true },
  { signedImmediates: true },
];

describe.each(VARIANTS.map((v) => [JSON.stringify(v), v] as const))('option %s', (_name, opts) => {
  it.each([16, 32, 64] as const)('matches iced in %i-bit code', (bits) => {
    const s = runCampaign(bits, 100, opts, SEED + 1000);
    expect(s.valid).toBeGreaterThan(2000);
  });
});
