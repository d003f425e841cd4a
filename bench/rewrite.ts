// pnpm bench:rewrite — section 3 of `pnpm bench` alone (bench/sections/rewrite.ts): rewriter
// scan and rewrite throughput and coverage per tactic, on busybox (jumps) and every example
// kernel (sensitive). Prints Markdown and writes bench-results/rewrite.json.
//
//   pnpm bench:rewrite [--rounds N] [--busybox PATH]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine, machineLine } from './lib/machine';
import { benchRewrite, rewriteMarkdown } from './sections/rewrite';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    busybox: { type: 'string', default: join(ROOT, 'test/fixtures-cache/busybox') },
  },
});
const machine = describeMachine();
const data = benchRewrite({ root: ROOT, rounds: Number(values.rounds), busybox: values.busybox, log: (l) => process.stderr.write(`${l}\n`) });
for (const n of data.notes) process.stderr.write(`bench: ${n}\n`);
process.stdout.write(`${machineLine(machine)}\n\n${rewriteMarkdown(data)}`);
const dir = join(ROOT, 'bench-results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'rewrite.json'), `${JSON.stringify({ date: new Date().toISOString(), machine, ...data }, null, 2)}\n`);
process.stderr.write(`bench: wrote ${join('bench-results', 'rewrite.json')}\n`);
