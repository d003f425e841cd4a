// The CPU differential oracle (test/host/README.md, "CPU differential"): random user-mode
// programs from the instruction table run on the host processor and on our CPU from the same
// state; registers, defined flags, the scratch page and faults must agree. CI runs a fixed
// seed and a bounded count; `pnpm campaign:cpu` runs millions.
import fc from 'fast-check';
import { describe as suite, expect, it } from 'vitest';
import { buildProgram, programSeedArb, type ProgramSeed } from '../arbitraries/programs';
import { describe, firstDifference } from './compare';
import { CODE_BASE, runNative, runNativeBatch } from './native';
import { runOurs } from './ours';

const SEED = 0x5eed_0004;
const COUNT = 4000;

/** Drops instructions while the disagreement stays (each try is one host run). */
function shrink(seed: ProgramSeed): ProgramSeed {
  let cur = seed;
  for (let k = cur.instructions.length - 1; k >= 0 && cur.instructions.length > 1; k--) {
    const cand = { ...cur, instructions: cur.instructions.filter((_, j) => j !== k) };
    const p = buildProgram(cand, CODE_BASE);
    if (p.code.length && firstDifference(runNative(p), runOurs(p))) cur = cand;
  }
  return cur;
}

suite('our CPU against the host processor', () => {
  it(`agrees on ${COUNT} random programs (seed ${SEED})`, () => {
    console.log(`cpu-vs-host: seed ${SEED}, ${COUNT} programs`);
    const seeds = fc.sample(programSeedArb, { seed: SEED, numRuns: COUNT });
    const programs = seeds.map((s) => buildProgram(s, CODE_BASE));
    const host = runNativeBatch(programs);
    const failures: string[] = [];
    let tainted = 0;
    programs.forEach((p, i) => {
      const ours = runOurs(p);
      if (ours.tainted) tainted++;
      if (failures.length >= 3 || !firstDifference(host[i]!, ours)) return;
      const small = shrink(seeds[i]!);
      const sp = buildProgram(small, CODE_BASE);
      const h = runNative(sp), o = runOurs(sp);
      const d = firstDifference(h, o) ?? firstDifference(host[i]!, ours)!;
      failures.push(describe(sp, h, o, d, `${SEED} (program ${i})`));
    });
    console.log(`cpu-vs-host: ${tainted} programs read an undefined flag (not compared)`);
    expect(failures, failures.join('\n\n')).toEqual([]);
  }, 120_000);
});
