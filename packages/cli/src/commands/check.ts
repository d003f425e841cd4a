// `ringshift check`: evidence that rewriting changed nothing a guest can observe.
//
//   ringshift check <image> [--backends native,rewrite,...]
//     runs a user's multiboot kernel under each backend (rewriting it in memory for `rewrite`,
//     as `ringshift compare` does) and compares how each run ended, the serial and debug-console
//     output and the final registers as the guest sees them. Exit 0 equal, 1 the first
//     difference of each backend from the first one, 2 bad input.
//   ringshift check --random [--runs N] [--seed S] [--backends ...] [--keep-going]
//     the property campaign (check/property.ts): random guest programs over every sensitive
//     class, each run under every backend; a failure is shrunk by fast-check and printed with its
//     seed, the minimal program as a listing marking each site and its tactic, and the first
//     difference. Progress on stderr, the summary (runs, sites per class and tactic, failures)
//     on stdout. Exit 0 no failure, 1 failures, 2 bad input.
import type { Argv } from 'yargs';
import { ElfError, RewriteInputError } from '@ringshift/rewriter';
import { BACKENDS, MultibootError, PatchMapError, hasPatchMap } from '@ringshift/runtime';
import type { BackendName } from '@ringshift/runtime';
import type { Command } from '../main';
import { parseBackendList } from './compare';
import { BufferedWriter, EXIT_FOUND, EXIT_OK, InputError, parseNumber, readInputFile } from '../output';
import type { Io } from '../output';
import { MAX_ITEMS } from '../check/program';
import { defaultRandomBackends, formatCoverage, runCampaign } from '../check/property';
import { firstDifference, rewriteForCheck, runBackend, type BackendRun } from '../check/runs';

interface CheckArgs {
  image?: string;
  random?: boolean;
  runs?: string;
  seed?: string;
  backends?: string;
  maxItems?: string;
  keepGoing?: boolean;
  maxInstructions?: string;
  timeout?: string;
}

export const checkCommand: Command<CheckArgs> = {
  command: 'check [image]',
  describe: 'check that rewriting changes nothing a guest can observe: one kernel under several backends, or --random programs (property test)',
  builder: (y: Argv) =>
    y
      .positional('image', { type: 'string', describe: 'the original multiboot kernel (not with --random)' })
      .option('random', { type: 'boolean', describe: 'run the property on generated guest programs instead of an image' })
      .option('runs', { type: 'string', describe: 'with --random: programs to generate (default 100)' })
      .option('seed', { type: 'string', describe: 'with --random: the fast-check seed (default: from the clock; printed)' })
      .option('backends', { type: 'string', describe: `comma-separated, two or more of ${BACKENDS.join(', ')}; the first is the reference (default: every backend but deprivileged and pv)` })
      .option('max-items', { type: 'string', describe: `with --random: items per program at most (default ${MAX_ITEMS})` })
      .option('keep-going', { type: 'boolean', describe: 'with --random: after a failure, go on with the next seed until --runs programs have run' })
      .option('max-instructions', { type: 'string', describe: 'with an image: stop each run after this many instructions' })
      .option('timeout', { type: 'string', describe: 'with an image: stop each run after this many seconds of host time' })
      .example('$0 check examples/hello/hello.elf', 'every backend agrees with native: exit 0')
      .example('$0 check --random --runs 1000 --seed 42', 'the property on 1000 generated programs') as Argv<CheckArgs>,
  run: async (args, io) => (args.random ? checkRandom(args, io) : checkImage(args, io)),
};

function parseBackends(text: string | undefined, forRandom: boolean): BackendName[] {
  if (text === undefined) return defaultRandomBackends();
  const names = parseBackendList(text);
  if (forRandom && names.includes('pv')) {
    throw new InputError(`invalid --backends '${text}': generated programs are plain multiboot kernels, which have no PV form; leave pv out with --random`);
  }
  return names;
}

function count(text: string | undefined, option: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = parseNumber(text, option, 'a positive whole number');
  if (n < 1) throw new InputError(`invalid ${option} '${text}': expected a positive whole number`);
  return n;
}

function checkImage(args: CheckArgs, io: Io): number {
  if (args.image === undefined) throw new InputError('no image given: ringshift check <image>, or ringshift check --random');
  for (const o of ['runs', 'seed', 'maxItems', 'keepGoing'] as const) {
    if (args[o] !== undefined) throw new InputError(`--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} goes with --random, not with an image`);
  }
  const backends = parseBackends(args.backends, false);
  const maxInstructions = args.maxInstructions === undefined ? undefined : count(args.maxInstructions, '--max-instructions', 0);
  let timeoutMs: number | undefined;
  if (args.timeout !== undefined) {
    const v = /^(\d+(\.\d*)?|\.\d+)$/.test(args.timeout.trim()) ? Number(args.timeout) : NaN;
    if (!(v > 0)) throw new InputError(`invalid --timeout '${args.timeout}': expected a positive number of seconds`);
    timeoutMs = v * 1000;
  }
  const image = readInputFile(args.image);
  if (hasPatchMap(image)) {
    throw new InputError(`${args.image} carries a patch map (it was written by \`ringshift rewrite\`): pass the original image; check rewrites it in memory for the backends that need it`);
  }
  let rewritten: Uint8Array | undefined;
  let sites = '';
  if (backends.includes('rewrite')) {
    try {
      const r = rewriteForCheck(image);
      rewritten = r.image;
      sites = ` (rewritten in memory: ${r.report.sites} sites, ${r.report.patched} patched with a jump, ${r.report.sites - r.report.patched} left to trap)`;
    } catch (e) {
      if (e instanceof ElfError || e instanceof RewriteInputError) throw new InputError(`${args.image}: ${e.message}`);
      throw e;
    }
  }
  const runs: BackendRun[] = backends.map((backend) => {
    try {
      return runBackend(image, backend, {
        cmdline: `${args.image} `,
        ...(maxInstructions === undefined ? {} : { maxInstructions }),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        ...(backend === 'rewrite' ? { rewritten: rewritten! } : {}),
      });
    } catch (e) {
      if (e instanceof MultibootError || e instanceof PatchMapError) throw new InputError(`${args.image} (${backend}): ${e.message}`);
      throw e;
    }
  });
  const out = new BufferedWriter(io.stdout);
  out.write(`${args.image}: ${backends.join(', ')}${sites}\n`);
  const width = Math.max(...backends.map((b) => b.length));
  for (const r of runs) {
    const ending = r.reason === 'exit' ? `exit status ${r.exitStatus! & 0xff} (guest wrote ${(r.exitStatus! >>> 1)})` : r.reason;
    out.write(`  ${r.backend.padEnd(width)}  ${ending}; ${r.instructions} instructions; ${r.serial.length} serial bytes${r.detail ? `; ${r.detail}` : ''}\n`);
  }
  const differences = runs.slice(1).map((r) => firstDifference(runs[0]!, r)).filter((d) => d !== null);
  for (const d of differences) out.write(`${d.backend} vs ${d.against}: ${d.text}\n`);
  out.write(differences.length === 0
    ? `equal: the same ending, serial and debug-console output, and final registers under ${backends.join(', ')}\n`
    : `different: ${differences.length} backend(s) differ from ${backends[0]}\n`);
  out.flush();
  return differences.length === 0 ? EXIT_OK : EXIT_FOUND;
}

function checkRandom(args: CheckArgs, io: Io): number {
  if (args.image !== undefined) throw new InputError(`--random generates its own programs: leave out the image (${args.image})`);
  if (args.maxInstructions !== undefined || args.timeout !== undefined) throw new InputError('--max-instructions and --timeout go with an image, not with --random');
  const backends = parseBackends(args.backends, true);
  const runs = count(args.runs, '--runs', 100);
  const maxItems = count(args.maxItems, '--max-items', MAX_ITEMS);
  const seed = args.seed === undefined ? Date.now() % 0x7fffffff : seedOf(args.seed);
  const started = performance.now();
  let lastProgress = 0;
  let lastLine = '';
  const progress = (done: number, failures: number, final = false): void => {
    const now = performance.now();
    if (!final && now - lastProgress < 1000) return;
    const line = `${done}/${failures}`;
    if (final && line === lastLine) return;
    lastProgress = now;
    lastLine = line;
    io.stderr(`check: ${done}/${runs} programs, ${failures} failure(s), ${((now - started) / 1000).toFixed(0)} s\n`);
  };
  const result = runCampaign({
    seed, runs, maxItems, backends, keepGoing: args.keepGoing === true,
    onProgram: (done, _c, failures) => progress(done, failures),
    // Long campaigns: say at once which seed replays a failure; its report comes with the summary.
    onFailure: (f) => io.stderr(`check: failure found, replay with --seed ${f.seed}: ${/^first difference.*$/m.exec(f.report)?.[0] ?? 'see the report'}\n`),
  });
  progress(result.runs, result.failures.length, true);
  const out = new BufferedWriter(io.stdout);
  const seconds = (performance.now() - started) / 1000;
  out.write(`ringshift check --random: seed ${seed}, ${result.runs} programs in ${seconds.toFixed(1)} s, backends ${backends.join(', ')} (reference ${backends[0]})\n`);
  for (const l of formatCoverage(result.coverage)) out.write(`${l}\n`);
  for (const f of result.failures) out.write(`\nFAILED after ${f.shrinks} shrink step(s); replay with --seed ${f.seed}\n${f.report}\n`);
  out.write(result.failures.length === 0 ? `passed: every backend agreed with ${backends[0]} on all ${result.runs} programs\n` : `failures: ${result.failures.length}\n`);
  out.flush();
  return result.failures.length === 0 ? EXIT_OK : EXIT_FOUND;
}

function seedOf(text: string): number {
  const s = text.trim();
  const v = /^-?[0-9]+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new InputError(`invalid --seed '${text}': expected a whole number from -2147483648 to 2147483647`);
  return v;
}
