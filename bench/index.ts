// pnpm bench [--quick] [--only decoder,execution,rewrite,cost] [--out DIR] [--cost name=cycles,...]
// The whole bench (bench/run.ts); `ringshift bench` is the same with the CLI's error handling.
import { parseArgs } from 'node:util';
import { parseCostOverrides } from '@ringshift/runtime';
import { SECTION_IDS, runBench, type SectionId } from './run';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
    cost: { type: 'string' },
  },
});
const sections = values.only?.split(',').map((s) => s.trim()) as SectionId[] | undefined;
const bad = sections?.filter((s) => !(SECTION_IDS as readonly string[]).includes(s)) ?? [];
if (bad.length) {
  process.stderr.write(`bench: unknown section ${bad.join(', ')} (one of ${SECTION_IDS.join(', ')})\n`);
  process.exit(2);
}
const r = await runBench({
  quick: values.quick, ...(sections ? { sections } : {}), ...(values.out ? { outDir: values.out } : {}),
  ...(values.cost ? { cost: parseCostOverrides(values.cost) } : {}), log: (l) => process.stderr.write(`${l}\n`),
});
process.stdout.write(r.markdown.endsWith('\n') ? r.markdown : `${r.markdown}\n`);
process.stderr.write(`bench: wrote ${r.files.length} files to ${r.outDir}\n`);
