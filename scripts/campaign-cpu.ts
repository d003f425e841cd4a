// pnpm campaign:cpu [--sequences N] [--seed S]: the CPU differential oracle at scale (see
// test/host/README.md, "CPU differential"). Prints each disagreement as a listing with the
// state, then a summary by the form of the last instruction our CPU ran. Exit 0 when all
// agree, 1 on any disagreement, 2 on bad usage.
import { parseArgs } from 'node:util';
import { PROGRAM_FORMS, buildProgram, prng, randomProgramSeed, unimplementedForms } from '../test/arbitraries/programs';
import { describe, firstDifference } from '../test/host/compare';
import { CODE_BASE, runNativeBatch } from '../test/host/native';
import { runOurs } from '../test/host/ours';

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({ options: { sequences: { type: 'string', default: '1000000' }, seed: { type: 'string' }, 'max-print': { type: 'string', default: '50' } }, strict: true }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\nusage: pnpm campaign:cpu [--sequences N] [--seed S] [--max-print K]\n`);
    return 2;
  }
  const total = Number(values.sequences);
  const seed = values.seed !== undefined ? Number(values.seed) : (Date.now() & 0x7fffffff);
  const maxPrint = Number(values['max-print']);
  if (!Number.isInteger(total) || total < 1 || !Number.isInteger(seed)) {
    process.stderr.write('--sequences and --seed must be integers\n');
    return 2;
  }
  process.stderr.write(`campaign:cpu seed ${seed}, ${total} sequences, ${PROGRAM_FORMS.length} forms (${unimplementedForms().length} candidate forms not implemented by our CPU, left out)\n`);
  const next = prng(seed);
  const byForm = new Map<string, number>();
  let done = 0, disagreements = 0, tainted = 0, faults = 0, printed = 0;
  const started = Date.now();
  const BATCH = 4096;
  while (done < total) {
    const n = Math.min(BATCH, total - done);
    const programs = Array.from({ length: n }, () => buildProgram(randomProgramSeed(next), CODE_BASE));
    const host = runNativeBatch(programs);
    programs.forEach((p, i) => {
      const o = runOurs(p);
      if (o.tainted) tainted++;
      if (host[i]!.fault) faults++;
      const d = firstDifference(host[i]!, o);
      if (!d) return;
      disagreements++;
      byForm.set(d.form, (byForm.get(d.form) ?? 0) + 1);
      if (printed++ < maxPrint) process.stdout.write(`${describe(p, host[i]!, o, d, `${seed} (sequence ${done + i})`)}\n\n`);
    });
    done += n;
    const s = (Date.now() - started) / 1000;
    process.stderr.write(`\r${done}/${total} sequences, ${disagreements} disagreements, ${(done / s).toFixed(0)}/s   `);
  }
  process.stderr.write('\n');
  process.stdout.write(`summary: ${done} sequences (seed ${seed}), ${disagreements} disagreements, ${faults} host faults, ${tainted} read an undefined flag\n`);
  for (const [f, c] of [...byForm].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${String(c).padStart(8)}  ${f}\n`);
  return disagreements ? 1 : 0;
}

process.exitCode = main();
