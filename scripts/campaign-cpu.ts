// pnpm campaign:cpu [--sequences N] [--seed S] [--only I]: the CPU differential oracle at scale
// (see test/host/README.md, "CPU differential"). Prints each disagreement as a listing with the
// state, then a summary by the form of the last instruction our CPU ran. Exit 0 when all
// agree, 1 on any disagreement, 2 on bad usage. --only I re-runs sequence I of the seed alone
// (its own runner process), to tell a disagreement of the sequence from one that needs the
// earlier or later programs of its batch.
import { parseArgs } from 'node:util';
import { PROGRAM_FORMS, buildProgram, prng, randomProgramSeed, unimplementedForms } from '../test/arbitraries/programs';
import { describe, escaped, firstDifference } from '../test/host/compare';
import { CODE_BASE, runNative, runNativeBatch } from '../test/host/native';
import { runOurs } from '../test/host/ours';

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({ options: { sequences: { type: 'string', default: '1000000' }, seed: { type: 'string' }, 'max-print': { type: 'string', default: '50' }, only: { type: 'string' } }, strict: true }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\nusage: pnpm campaign:cpu [--sequences N] [--seed S] [--max-print K] [--only I]\n`);
    return 2;
  }
  const total = Number(values.sequences);
  const seed = values.seed !== undefined ? Number(values.seed) : (Date.now() & 0x7fffffff);
  const maxPrint = Number(values['max-print']);
  if (!Number.isInteger(total) || total < 1 || !Number.isInteger(seed)) {
    process.stderr.write('--sequences and --seed must be integers\n');
    return 2;
  }
  if (values.only !== undefined) {
    const only = Number(values.only);
    if (!Number.isInteger(only) || only < 0 || values.seed === undefined) {
      process.stderr.write('--only needs a sequence index (an integer >= 0) and --seed\n');
      return 2;
    }
    return runOnly(seed, only);
  }
  process.stderr.write(`campaign:cpu seed ${seed}, ${total} sequences, ${PROGRAM_FORMS.length} forms (${unimplementedForms().length} candidate forms not implemented by our CPU, left out)\n`);
  const next = prng(seed);
  const byForm = new Map<string, number>();
  let done = 0, disagreements = 0, tainted = 0, faults = 0, escapes = 0, printed = 0;
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
      // Counted among compared programs only: after a read of an undefined flag ours may take another path.
      if (!o.tainted && !o.unpredictable && escaped(host[i]!, o)) escapes++;
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
  process.stdout.write(`summary: ${done} sequences (seed ${seed}), ${disagreements} disagreements, ${faults} host faults, ${tainted} read an undefined flag, ${escapes} compared programs escaped the scratch page\n`);
  for (const [f, c] of [...byForm].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${String(c).padStart(8)}  ${f}\n`);
  return disagreements ? 1 : 0;
}

/** Sequence `index` of the campaign with `seed`, run alone; prints it whether or not it agrees. */
function runOnly(seed: number, index: number): number {
  const next = prng(seed);
  for (let k = 0; k < index; k++) randomProgramSeed(next); // the PRNG is sequential: skip to it
  const p = buildProgram(randomProgramSeed(next), CODE_BASE);
  const h = runNative(p), o = runOurs(p);
  const d = firstDifference(h, o);
  const note = o.tainted ? 'agree (not compared: read an undefined flag)' : o.unpredictable ? 'agree (not compared: undefined result)' : escaped(h, o) ? 'agree (not compared: escaped the scratch page)' : 'agree';
  process.stdout.write(`${describe(p, h, o, d ?? { what: note, form: '' }, `${seed} (sequence ${index}, alone)`)}\n`);
  return d ? 1 : 0;
}

process.exitCode = main();
