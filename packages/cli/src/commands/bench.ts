// `ringshift bench`: the benchmark report of `pnpm bench` (bench/run.ts at the repository root):
// decoder, execution, rewriter and virtualization-cost sections, written to bench-results/
// (Markdown, JSON, SVG) and printed as Markdown. Progress goes to stderr.
import type { Argv } from 'yargs';
import { CostModelError, parseCostOverrides } from '@ringshift/runtime';
import { SECTION_IDS, runBench, type SectionId } from '../../../../bench/run';
import type { Command } from '../main';
import { EXIT_OK, InputError } from '../output';
import type { Io } from '../output';

interface BenchArgs {
  quick?: boolean;
  only?: string;
  out?: string;
  cost?: string;
  json?: boolean;
}

export const benchCommand: Command<BenchArgs> = {
  command: 'bench',
  describe: 'measure ringshift against its peers on this machine (decoder vs iced-x86, guest MIPS vs v86 and QEMU, rewriter, virtualization cost vs Adams & Agesen 2006)',
  builder: (y: Argv) =>
    y
      .option('quick', { type: 'boolean', describe: 'one short run of everything (CI: proves the bench works; the figures mean nothing)' })
      .option('only', { type: 'string', describe: `comma-separated sections to run: ${SECTION_IDS.join(', ')}` })
      .option('out', { type: 'string', describe: 'output directory (default bench-results/ at the repository root)' })
      .option('cost', { type: 'string', describe: 'cost-model overrides, name=cycles,... (docs/bench.md lists the parameters)' })
      .option('json', { type: 'boolean', describe: 'print report.json instead of the Markdown' }) as Argv<BenchArgs>,
  run: async (args, io: Io) => {
    let sections: SectionId[] | undefined;
    if (args.only !== undefined) {
      const names = args.only.split(',').map((s) => s.trim()).filter((s) => s !== '');
      const bad = names.filter((s) => !(SECTION_IDS as readonly string[]).includes(s));
      if (bad.length || names.length === 0) throw new InputError(`invalid --only '${args.only}': sections are ${SECTION_IDS.join(', ')}`);
      sections = names as SectionId[];
    }
    let cost;
    try {
      cost = args.cost === undefined ? undefined : parseCostOverrides(args.cost);
    } catch (e) {
      if (e instanceof CostModelError) throw new InputError(`invalid --cost: ${e.message}`);
      throw e;
    }
    const r = await runBench({
      quick: args.quick ?? false,
      ...(sections ? { sections } : {}),
      ...(args.out !== undefined ? { outDir: args.out } : {}),
      ...(cost ? { cost } : {}),
      log: (l) => io.stderr(`${l}\n`),
    });
    io.stdout(args.json ? `${JSON.stringify(r.report, null, 2)}\n` : r.markdown.endsWith('\n') ? r.markdown : `${r.markdown}\n`);
    io.stderr(`bench: wrote ${r.files.length} files to ${r.outDir}\n`);
    return EXIT_OK;
  },
};
