// `ringshift verify`: re-checks a patched image against its patch map (and the original image,
// when given) with @ringshift/rewriter's verifyImage. Exit 0 when every check holds, 1 with the
// list of violations, 2 when a file cannot be read or is not ELF.
import type { Argv } from 'yargs';
import { ElfError, readElf, verifyImage } from '@ringshift/rewriter';
import type { Command } from '../main';
import { BufferedWriter, EXIT_FOUND, EXIT_OK, InputError, hex, readInputFile } from '../output';
import type { Io } from '../output';

interface VerifyArgs {
  patched: string;
  original?: string;
  json?: boolean;
}

export const verifyCommand: Command<VerifyArgs> = {
  command: 'verify <patched>',
  describe: 'check a rewritten image against its patch map (and the original image)',
  builder: (y: Argv) =>
    y
      .positional('patched', { type: 'string', demandOption: true, describe: 'image written by ringshift rewrite' })
      .option('original', { type: 'string', describe: 'the input the image was rewritten from: also compare every byte and segment' })
      .option('json', { type: 'boolean', describe: 'print the result as one JSON object on stdout' })
      .example('$0 verify sensitive.rewritten.elf --original sensitive.elf', '') as Argv<VerifyArgs>,
  run: async (args, io) => verify(args, io),
};

/** Reads a file that must be an ELF image; readElf's complaint names the file. */
function readImage(path: string): Uint8Array {
  const bytes = readInputFile(path);
  try {
    readElf(bytes);
  } catch (e) {
    if (e instanceof ElfError) throw new InputError(`${path}: ${e.message}`);
    throw e;
  }
  return bytes;
}

function verify(args: VerifyArgs, io: Io): number {
  const patched = readImage(args.patched);
  const original = args.original === undefined ? undefined : readImage(args.original);
  const result = verifyImage(patched, original);
  const out = new BufferedWriter(io.stdout);
  if (args.json) {
    out.write(`${JSON.stringify({
      image: args.patched,
      original: args.original ?? null,
      ok: result.ok,
      checked: result.checked,
      sites: result.map?.sites.length ?? null,
      violations: result.violations,
    })}\n`);
  } else {
    const c = result.checked;
    const against = args.original === undefined ? 'its patch map' : `its patch map and ${args.original}`;
    out.write(`${args.patched}: ${result.ok ? 'ok' : `${result.violations.length} violation${result.violations.length === 1 ? '' : 's'}`}, checked against ${against}\n`);
    out.write(
      `  ${c.sites} sites, ${c.stubs} stubs walked (${c.stubInstructions} instructions), ` +
        `${c.relocatedBranches} relocated branches, ${c.relocatedInstructions} relocated instructions, ` +
        `${c.innerTargetSites} runs against ${c.jumpTargets} jump targets` +
        (args.original === undefined ? '' : `, ${c.bytesCompared} original bytes, ${c.segments} segments${c.multiboot ? ', multiboot header' : ''}`) +
        '\n',
    );
    for (const v of result.violations) out.write(`  0x${hex(v.addr, 8)}  ${v.kind.padEnd(12)}  ${v.message}\n`);
  }
  out.flush();
  return result.ok ? EXIT_OK : EXIT_FOUND;
}
