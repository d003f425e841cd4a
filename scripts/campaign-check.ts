// `pnpm campaign:check`: the rewrite-correctness property (packages/cli/src/check/) on many
// generated guest programs, for long runs outside the test suite. Failures are printed as soon
// as fast-check has shrunk them and the campaign goes on with the next seed; the coverage
// summary is printed every --every programs and at the end.
//
//   pnpm campaign:check [--runs N] [--seed S] [--backends native,rewrite] [--minutes M] [--every K]
import { parseArgs } from 'node:util';
import type { BackendName } from '@ringshift/runtime';
import { defaultRandomBackends, formatCoverage, runCampaign } from '../packages/cli/src/check/property';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
    backends: { type: 'string' },
    minutes: { type: 'string' },
    every: { type: 'string', default: '1000' },
  },
});
const runs = Number(values.runs);
const seed = Number(values.seed);
const every = Number(values.every);
const minutes = values.minutes === undefined ? undefined : Number(values.minutes);
if (!(runs > 0) || !Number.isInteger(seed) || !(every > 0) || (minutes !== undefined && !(minutes > 0))) {
  process.stderr.write('campaign-check: --runs, --every and --minutes take positive numbers, --seed a whole number\n');
  process.exit(2);
}
const backends = (values.backends?.split(',') ?? defaultRandomBackends()) as BackendName[];
const started = performance.now();
const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(0)} s`;
process.stdout.write(`campaign-check: seed ${seed}, up to ${runs} programs${minutes ? ` or ${minutes} min` : ''}, backends ${backends.join(', ')}\n`);
const result = runCampaign({
  seed, runs, backends, keepGoing: true,
  ...(minutes === undefined ? {} : { timeLimitMs: minutes * 60_000 }),
  onProgram: (done, coverage, failures) => {
    if (done % 100 === 0) process.stderr.write(`campaign-check: ${done} programs, ${failures} failure(s), ${elapsed()}\n`);
    if (done % every === 0) process.stdout.write(`--- after ${done} programs (${elapsed()}):\n${formatCoverage(coverage).join('\n')}\n`);
  },
  onFailure: (f) => process.stdout.write(`\nFAILURE (seed ${f.seed}, ${f.shrinks} shrink steps, at ${elapsed()}):\n${f.report}\n\n`),
});
process.stdout.write(`=== ${result.runs} programs in ${elapsed()}, ${result.failures.length} failure(s)\n${formatCoverage(result.coverage).join('\n')}\n`);
process.exit(result.failures.length === 0 ? 0 : 1);
