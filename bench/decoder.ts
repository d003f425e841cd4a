// pnpm bench:decoder — section 1 of `pnpm bench` alone (bench/sections/decoder.ts): ringshift's
// Decoder against iced-x86 on the same real .text bytes. Prints Markdown and writes
// bench-results/decoder.json.
//
//   pnpm bench:decoder [--file ELF] [--section NAME] [--rounds N]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine, machineLine } from './lib/machine';
import { DEFAULT_DECODER_INPUT, benchDecoder, decoderMarkdown } from './sections/decoder';

const { values } = parseArgs({
  options: {
    file: { type: 'string', default: DEFAULT_DECODER_INPUT.file },
    section: { type: 'string', default: DEFAULT_DECODER_INPUT.section },
    rounds: { type: 'string', default: '15' },
  },
});
const machine = describeMachine();
process.stderr.write(`bench: decoding ${values.section} of ${values.file}, ${values.rounds} rounds each\n`);
const data = benchDecoder({ file: values.file, section: values.section, rounds: Number(values.rounds) });
process.stdout.write(`${machineLine(machine)}\n\n${decoderMarkdown(data)}`);
const dir = join(import.meta.dirname, '..', 'bench-results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'decoder.json'), `${JSON.stringify({ date: new Date().toISOString(), machine, ...data }, null, 2)}\n`);
process.stderr.write(`bench: wrote ${join('bench-results', 'decoder.json')}\n`);
