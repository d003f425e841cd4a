// Comparing ringshift's decoder with GNU objdump (binutils) instruction by instruction.
//
// For every line objdump prints, we decode at the same address and require: the same length
// (so the same instruction boundaries), the same validity, the same mnemonic, and prefix words
// that our decoder also saw. objdump and the decoder (whose mnemonics are iced-x86's, which
// follow the SDM) spell some instructions differently; NORMALISATIONS below lists every such
// difference that is accepted, each checked against the decoded instruction (an immediate, an
// operand size) rather than waved through, and every use is counted and reported.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Decoder, Instruction, Prefix, formName, mnemonicOf } from '@ringshift/decoder';
import { readElf } from '@ringshift/rewriter';

export interface ObjdumpLine {
  address: number;
  text: string;
}

/** objdump -d output, by section name. -z: print zero runs as code too, never "...". */
export function runObjdump(file: string, extra: readonly string[] = []): Map<string, ObjdumpLine[]> {
  const out = execFileSync('objdump', ['-d', '-z', '-w', '-M', 'intel', '--no-show-raw-insn', ...extra, file], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  const sections = new Map<string, ObjdumpLine[]>();
  let current: ObjdumpLine[] | undefined;
  for (const line of out.split('\n')) {
    const s = /^Disassembly of section (.+):$/.exec(line);
    if (s) {
      current = [];
      sections.set(s[1]!, current);
      continue;
    }
    const m = /^\s*([0-9a-f]+):\t(.*)$/.exec(line);
    if (m && current) current.push({ address: parseInt(m[1]!, 16), text: m[2]!.trim() });
  }
  return sections;
}

/**
 * Words objdump prints before the mnemonic for prefixes. They are not part of the mnemonic;
 * each is removed, counted, and checked against the prefixes our decoder reports.
 */
const PREFIX_WORDS: Record<string, (ins: Instruction) => boolean> = {
  lock: (i) => (i.prefixes & Prefix.Lock) !== 0,
  rep: (i) => (i.prefixes & Prefix.Rep) !== 0,
  repz: (i) => (i.prefixes & Prefix.Rep) !== 0,
  repe: (i) => (i.prefixes & Prefix.Rep) !== 0,
  repnz: (i) => (i.prefixes & Prefix.Repne) !== 0,
  repne: (i) => (i.prefixes & Prefix.Repne) !== 0,
  // F2/F3 under other names: MPX BND, TSX hints.
  bnd: (i) => (i.prefixes & Prefix.Repne) !== 0,
  xacquire: (i) => (i.prefixes & Prefix.Repne) !== 0,
  xrelease: (i) => (i.prefixes & Prefix.Rep) !== 0,
  // 3E on an indirect branch (CET): a DS segment prefix to the decoder.
  notrack: (i) => (i.prefixes & Prefix.Segment) !== 0,
  // A segment prefix objdump cannot attach to an operand (cs nop, ds jmp).
  cs: (i) => (i.prefixes & Prefix.Segment) !== 0,
  ds: (i) => (i.prefixes & Prefix.Segment) !== 0,
  es: (i) => (i.prefixes & Prefix.Segment) !== 0,
  ss: (i) => (i.prefixes & Prefix.Segment) !== 0,
  fs: (i) => (i.prefixes & Prefix.Segment) !== 0,
  gs: (i) => (i.prefixes & Prefix.Segment) !== 0,
  // 66/67 that change nothing objdump can show (padding: data16 cs nop ...).
  data16: (i) => (i.prefixes & Prefix.OperandSize) !== 0,
  data32: (i) => (i.prefixes & Prefix.OperandSize) !== 0,
  addr16: (i) => (i.prefixes & Prefix.AddressSize) !== 0,
  addr32: (i) => (i.prefixes & Prefix.AddressSize) !== 0,
};

const SIZE_LETTER: Record<number, string> = { 16: 'w', 32: 'd', 64: 'q' };
const PTR_LETTER: Record<string, string> = { BYTE: 'b', WORD: 'w', DWORD: 'd', QWORD: 'q' };

// Comparison predicates that objdump folds into the mnemonic (SDM vol. 2, CMPPS table 3-1 and
// VPCMP table 5-x): objdump writes vpcmpltub where the form is VPCMPUB with imm8 = 1.
const VPCMP_PREDICATES = ['eq', 'lt', 'le', 'false', 'neq', 'nlt', 'nle', 'true'];
const SSE_PREDICATES = ['eq', 'lt', 'le', 'unord', 'neq', 'nlt', 'nle', 'ord'];
const AVX_PREDICATES = [
  ...SSE_PREDICATES, 'eq_uq', 'nge', 'ngt', 'false', 'neq_oq', 'ge', 'gt', 'true',
  'eq_os', 'lt_oq', 'le_oq', 'unord_s', 'neq_us', 'nlt_uq', 'nle_uq', 'ord_s',
  'eq_us', 'nge_uq', 'ngt_uq', 'false_os', 'neq_os', 'ge_oq', 'gt_oq', 'true_us',
];
const PREDICATE_FAMILIES: { ours: RegExp; predicates: readonly string[] }[] = [
  { ours: /^(vpcmp)(u?[bwdq])$/, predicates: VPCMP_PREDICATES },
  { ours: /^(cmp)([ps][sd])$/, predicates: SSE_PREDICATES },
  { ours: /^(vcmp)([ps][sdh])$/, predicates: AVX_PREDICATES },
];

export interface Normalisation {
  id: string;
  /** Why objdump and the decoder differ here (and why it is the same instruction). */
  why: string;
  /** objdump's mnemonic (prefix words removed), ours, objdump's whole text, our instruction. */
  applies(objdump: string, ours: string, text: string, ins: Instruction): boolean;
}

/** Every accepted naming difference. Nothing else is accepted. */
export const NORMALISATIONS: readonly Normalisation[] = [
  {
    id: 'movabs',
    why: 'objdump calls MOV with a 64-bit immediate or a 64-bit moffs "movabs" (AT&T heritage); the SDM and iced say mov',
    applies: (o, m) => o === 'movabs' && m === 'mov',
  },
  {
    id: 'xchg-ax-nop',
    why: '66 90 / 66 90 in 16-bit mode: objdump prints "xchg ax,ax" (eax,eax); the SDM defines 90 as NOP whatever the operand size, and iced decodes Nopw/Nopd',
    applies: (o, m, t, i) => o === 'xchg' && m === 'nop' && /^xchg\s+(ax,ax|eax,eax)$/.test(t) && /^Nop[wd]$/.test(formName(i.form)),
  },
  {
    id: 'fwait',
    why: '9B: the SDM names it WAIT/FWAIT; objdump prints fwait, iced wait',
    applies: (o, m) => o === 'fwait' && m === 'wait',
  },
  {
    id: 'shl-sal-alias',
    why: 'shift group /6 is an undocumented alias of /4 (SHL = SAL); objdump prints shl, iced sal',
    applies: (o, m) => o === 'shl' && m === 'sal',
  },
  {
    id: 'comparison-predicate',
    why: 'objdump folds the imm8 comparison predicate into the mnemonic (vpcmpltub = vpcmpub with imm8 1; cmpltsd = cmpsd with 1); the predicate is checked against our imm8',
    applies: (o, m, _t, i) =>
      PREDICATE_FAMILIES.some(({ ours, predicates }) => {
        const x = ours.exec(m);
        return x !== null && i.imm < predicates.length && o === `${x[1]}${predicates[i.imm]}${x[2]}`;
      }),
  },
  {
    id: 'string-op-size',
    why: 'objdump spells string instructions without the element size (rep stos QWORD PTR ...); the SDM/iced mnemonic carries it (stosq); the letter is checked against objdump\'s operand',
    applies: (o, m, t) => {
      if (!['movs', 'cmps', 'stos', 'lods', 'scas', 'ins', 'outs', 'xlat'].includes(o)) return false;
      const ptr = /\b(BYTE|WORD|DWORD|QWORD) PTR\b/.exec(t);
      return ptr !== null && m === o + PTR_LETTER[ptr[1]!];
    },
  },
  {
    id: 'objdump-size-suffix',
    why: 'objdump adds w/d/q to these when the operand size is not the mode default (retw, pushd fs, enterd) and to LGDT/SGDT-family always (sgdtd); iced keeps the SDM mnemonic. The letter is checked against our operand size',
    applies: (o, m, _t, i) =>
      ['ret', 'retf', 'call', 'jmp', 'leave', 'enter', 'push', 'pop', 'pushf', 'popf', 'pusha', 'popa', 'iret', 'sgdt', 'sidt', 'lgdt', 'lidt'].includes(m) &&
      o === m + SIZE_LETTER[i.operandSize],
  },
  {
    id: 'sdm-size-suffix',
    why: 'the SDM names the 32/64-bit forms pushfd/popfd/pushad/popad/iretd (and q); objdump uses the bare name for the mode-default size. The letter is checked against our operand size',
    applies: (o, m, _t, i) =>
      ['pushf', 'popf', 'pusha', 'popa', 'iret'].includes(o) && m === o + SIZE_LETTER[i.operandSize],
  },
];

/** Valid to us, (bad) to objdump: instructions binutils does not know. Each is listed and counted. */
export const OBJDUMP_UNKNOWN: Record<string, string> = {
  salc: 'D6 (SALC/SETALC): undocumented in the SDM opcode tables but decoded by iced and by real CPUs in 16/32-bit mode; binutils has no name for it',
};

export interface Mismatch {
  section: string;
  address: number;
  bytes: string;
  objdump: string;
  ours: string;
  kind: 'length' | 'validity' | 'mnemonic' | 'prefix';
}

export interface Comparison {
  name: string;
  bits: 16 | 32 | 64;
  instructions: number;
  /** objdump lines that were (bad), and how many of them we also found invalid. */
  objdumpBad: number;
  bothBad: number;
  exact: number;
  normalised: Record<string, number>;
  objdumpUnknown: Record<string, number>;
  prefixWords: Record<string, number>;
  mismatches: Mismatch[];
}

const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

/**
 * Decodes every instruction objdump lists in `file` (the sections objdump was asked for) and
 * compares. After each line the decoder restarts at objdump's next address, so a disagreement
 * (or objdump's "(bad)") is counted once and never shifts what follows.
 */
export function compareWithObjdump(name: string, file: string, bits: 16 | 32 | 64, objdumpArgs: readonly string[] = []): Comparison {
  const elf = readElf(readFileSync(file));
  const listing = runObjdump(file, objdumpArgs);
  const result: Comparison = {
    name, bits, instructions: 0, objdumpBad: 0, bothBad: 0, exact: 0,
    normalised: {}, objdumpUnknown: {}, prefixWords: {}, mismatches: [],
  };
  const bump = (table: Record<string, number>, key: string): void => {
    table[key] = (table[key] ?? 0) + 1;
  };
  const ins = new Instruction();
  for (const [sectionName, lines] of listing) {
    const section = elf.sections.find((s) => s.name === sectionName && s.executable);
    if (!section) throw new Error(`objdump listed section ${sectionName}, which readElf does not show as executable`);
    const decoder = new Decoder(bits, section.bytes, section.addr);
    const end = section.addr + section.size;
    for (let k = 0; k < lines.length; k++) {
      const line = lines[k]!;
      const next = k + 1 < lines.length ? lines[k + 1]!.address : end;
      const offset = line.address - section.addr;
      decoder.position = offset;
      decoder.ip = line.address;
      decoder.decodeOut(ins);
      result.instructions++;

      const words = line.text.split(/\s+/);
      let w = 0;
      const prefixWords: string[] = [];
      while (w < words.length - 1 && PREFIX_WORDS[words[w]!]) prefixWords.push(words[w++]!);
      const objdumpMnemonic = words[w]!;
      const ours = ins.valid ? mnemonicOf(ins.form) : '(invalid)';
      const fail = (kind: Mismatch['kind']): void => {
        result.mismatches.push({
          section: sectionName, address: line.address, kind, objdump: line.text,
          ours: ins.valid ? `${ours} (${formName(ins.form)}, ${ins.length} bytes)` : `invalid (${ins.invalid})`,
          bytes: hexOf(section.bytes.subarray(offset, offset + Math.max(next - line.address, ins.valid ? ins.length : 1))),
        });
      };

      if (objdumpMnemonic.startsWith('(bad)')) {
        result.objdumpBad++;
        if (!ins.valid) result.bothBad++;
        else if (OBJDUMP_UNKNOWN[ours] !== undefined) bump(result.objdumpUnknown, ours);
        else fail('validity');
        continue;
      }
      if (!ins.valid) {
        fail('validity');
        continue;
      }
      if (ins.length !== next - line.address) {
        fail('length');
        continue;
      }
      const missing = prefixWords.filter((p) => !PREFIX_WORDS[p]!(ins));
      if (missing.length > 0) {
        fail('prefix');
        continue;
      }
      for (const p of prefixWords) bump(result.prefixWords, p);
      if (objdumpMnemonic === ours) {
        result.exact++;
        continue;
      }
      const rule = NORMALISATIONS.find((r) => r.applies(objdumpMnemonic, ours, words.slice(w).join(' '), ins));
      if (rule) bump(result.normalised, rule.id);
      else fail('mnemonic');
    }
  }
  return result;
}

/** A Markdown summary: what was compared, what agreed, and every normalisation used. */
export function describeComparison(c: Comparison): string {
  const agreed = c.instructions - c.mismatches.length;
  const pct = (n: number): string => ((100 * n) / Math.max(1, c.instructions)).toFixed(3);
  const rows = [
    `### ${c.name} (${c.bits}-bit)`,
    `- instructions compared: ${c.instructions}; agreeing: ${agreed} (${pct(agreed)}%)`,
    `- mnemonic identical: ${c.exact}; equal after a normalisation: ${Object.values(c.normalised).reduce((a, b) => a + b, 0)}`,
    `- objdump (bad): ${c.objdumpBad}, also invalid to us: ${c.bothBad}, known to us but not to binutils: ${JSON.stringify(c.objdumpUnknown)}`,
    `- normalisations: ${Object.entries(c.normalised).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}`,
    `- prefix words removed (each checked against our prefixes): ${Object.entries(c.prefixWords).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}`,
    `- mismatches: ${c.mismatches.length}`,
    ...c.mismatches.slice(0, 25).map((m) => `  - ${m.kind} at ${m.section}:0x${m.address.toString(16)} [${m.bytes}] objdump "${m.objdump}" / ours ${m.ours}`),
  ];
  return rows.join('\n');
}
