// Generates src/table/forms.generated.ts: the encoding facts of every x86 instruction form,
// read from iced-x86's OpCodeInfo (the same facts as the Intel SDM opcode tables, one row per
// form). Only facts are taken: the decoder, formatter and encoder that interpret them are ours.
// Forms that iced decodes only under a non-default DecoderOptions flag (Cyrix, MPX, KNC/MVEX,
// UMOV, ...) are left out, because the default decoder treats those bytes as something else.
//
// Run: pnpm --filter @ringshift/decoder gen   (a test fails when the committed file differs)
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const iced = require('iced-x86');

const enumNames = (e: Record<string, unknown>): string[] => Object.keys(e).filter((k) => Number.isNaN(Number(k)));
const nameOf = (e: Record<string, unknown>, v: number): string => {
  for (const k of enumNames(e)) if (e[k] === v) return k;
  throw new Error(`no name for ${v}`);
};

const TABLES = ['normal', '0F', '0F38', '0F3A', 'map5', 'map6', 'map8', 'map9', 'map10'];
const ENCODINGS = ['legacy', 'vex', 'evex', 'xop', '3dnow', 'mvex'];
const PREFIXES = ['none', 'np', '66', 'F3', 'F2'];

function d3nowSuffixes(): Map<number, number> {
  const m = new Map<number, number>();
  for (let s = 0; s < 256; s++) {
    const dec = new iced.Decoder(32, new Uint8Array([0x0f, 0x0f, 0xc1, s]), iced.DecoderOptions.None);
    const ins = dec.decode();
    if (ins.code !== 0) m.set(ins.code, s);
    ins.free();
    dec.free();
  }
  return m;
}

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export function generate(): string {
  const suffix = d3nowSuffixes();
  const lines: string[] = [];
  const memNames = new Set<string>();
  for (const name of enumNames(iced.Code)) {
    const code: number = iced.Code[name];
    if (code <= 4) continue; // INVALID and the data pseudo-ops (db/dw/dd/dq)
    const o = iced.CodeExt.opCode(code);
    if (o.decoderOption !== 0 || o.encoding === 5 || !o.isInstruction) { o.free(); continue; }
    const f: string[] = [];
    const q = (s: string) => `'${s.replace(/'/g, "\\'")}'`;
    f.push(`id: ${code}`, `name: ${q(name)}`, `mnemonic: ${q(nameOf(iced.Mnemonic, o.mnemonic).toLowerCase())}`);
    f.push(`enc: ${q(ENCODINGS[o.encoding]!)}`);
    if (o.encoding === 4) {
      f.push(`map: '0F0F'`, `op: 0x${suffix.get(code)!.toString(16).padStart(2, '0').toUpperCase()}`);
    } else {
      f.push(`map: ${q(TABLES[o.table]!)}`);
      const len = o.opCodeLength;
      f.push(`op: 0x${o.opCode.toString(16).padStart(len * 2, '0').toUpperCase()}`);
      if (len !== 1) f.push(`opLen: ${len}`);
    }
    if (o.mandatoryPrefix !== 0) f.push(`pp: ${q(PREFIXES[o.mandatoryPrefix]!)}`);
    if (o.isGroup) f.push(`reg: ${o.groupIndex}`);
    if (o.isRmGroup) f.push(`rm: ${o.rmGroupIndex}`);
    const modes = [o.intelDecoder16 ? 16 : 0, o.intelDecoder32 ? 32 : 0, o.intelDecoder64 ? 64 : 0].filter((x) => x);
    if (modes.length !== 3) f.push(`modes: [${modes.join(', ')}]`);
    if (o.operandSize) f.push(`osz: ${o.operandSize}`);
    if (o.addressSize) f.push(`asz: ${o.addressSize}`);
    if (o.encoding !== 0 && o.encoding !== 4) {
      f.push(`W: ${o.isWIG ? "'ig'" : o.isWIG32 ? "'ig32'" : o.W}`);
      f.push(`L: ${o.isLIG ? "'ig'" : o.L}`);
    } else if (o.W) {
      f.push(`W: 1`);
    }
    const ops: string[] = [];
    for (let k = 0; k < o.opCount; k++) ops.push(q(nameOf(iced.OpCodeOperandKind, o.opKind(k))));
    f.push(`ops: [${ops.join(', ')}]`);
    if (o.memorySize) { const m = nameOf(iced.MemorySize, o.memorySize); memNames.add(m); f.push(`mem: ${q(m)}`); }
    if (o.canBroadcast) { const m = nameOf(iced.MemorySize, o.broadcastMemorySize); memNames.add(m); f.push(`bcst: ${q(m)}`); }
    if (o.encoding === 2) f.push(`tuple: ${q(nameOf(iced.TupleType, o.tupleType))}`);
    const flags: string[] = [];
    const flag = (cond: boolean, n: string) => { if (cond) flags.push(q(n)); };
    flag(o.canUseLockPrefix, 'lock');
    flag(o.canUseXacquirePrefix, 'xacquire');
    flag(o.canUseXreleasePrefix, 'xrelease');
    flag(o.canUseRepPrefix, 'rep');
    flag(o.canUseRepnePrefix, 'repne');
    flag(o.canUseBndPrefix, 'bnd');
    flag(o.canUseHintTakenPrefix, 'hint');
    flag(o.canUseNotrackPrefix, 'notrack');
    flag(o.canUseOpMaskRegister, 'k');
    flag(o.requireOpMaskRegister, 'kreq');
    flag(o.canUseZeroingMasking, 'z');
    flag(o.canUseRoundingControl, 'er');
    flag(o.canSuppressAllExceptions, 'sae');
    flag(o.fwait, 'fwait');
    flag(o.defaultOpSize64, 'd64');
    flag(o.forceOpSize64, 'f64');
    flag(o.intelForceOpSize64, 'intelF64');
    flag(o.ignoresModBits, 'ignoresMod');
    flag(o.requiresUniqueRegNums, 'uniqueRegs');
    flag(o.requiresUniqueDestRegNum, 'uniqueDest');
    flag(o.no66, 'no66');
    flag(o.nfx, 'nfx');
    flag(o.isNop, 'nop');
    flag(o.isReservedNop, 'reservedNop');
    flag(o.amdLockRegBit, 'amdLockRegBit');
    flag(o.ignoresRoundingControl, 'ignoresEr');
    if (flags.length) f.push(`flags: [${flags.join(', ')}]`);
    const opstr = o.encoding === 4 ? `0F 0F /r ${suffix.get(code)!.toString(16).padStart(2, '0').toUpperCase()}` : o.opCodeString;
    lines.push(`  { ${f.join(', ')} }, // ${opstr} | ${o.instructionString}`);
    o.free();
  }
  const mem: string[] = [];
  for (const m of [...memNames].sort()) {
    const v = iced.MemorySize[m];
    mem.push(`  ${m}: { size: ${iced.MemorySizeExt.size(v)}, element: ${iced.MemorySizeExt.elementSize(v)}, broadcast: ${iced.MemorySizeExt.isBroadcast(v)} },`);
  }
  return [
    '// GENERATED by packages/decoder/scripts/gen-forms.ts from iced-x86 1.21.0 OpCodeInfo. Do not edit.',
    '// One row per instruction form. Field meanings: ./form.ts.',
    "import type { Form } from './form';",
    '',
    // Chunks keep each array literal small enough for tsc to check against Form.
    ...chunks(lines, 250).flatMap((c, i) => [`const F${i}: readonly Form[] = [`, ...c, '];']),
    `export const FORMS: readonly Form[] = [${chunks(lines, 250).map((_, i) => `...F${i}`).join(', ')}];`,
    '',
    '/** Memory operand sizes named like iced-x86 MemorySize: total bytes, element bytes, broadcast. */',
    'export const MEMORY_SIZES = {',
    ...mem,
    '} as const;',
    '',
  ].join('\n');
}

const out = fileURLToPath(new URL('../src/table/forms.generated.ts', import.meta.url));
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(out, generate());
  process.stderr.write(`wrote ${out}\n`);
}
