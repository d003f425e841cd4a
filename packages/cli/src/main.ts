// The `ringshift` command: yargs parses, one module per command does the work, and this file
// turns every outcome into an exit code and at most one line on stderr. yargs only parses here
// (its handlers just record which command was chosen), so that errors from the work itself are
// handled in one place instead of passing through yargs' failure callback.
import yargs from 'yargs';
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { ElfError } from '@ringshift/rewriter';
import { benchCommand } from './commands/bench';
import { checkCommand } from './commands/check';
import { compareCommand } from './commands/compare';
import { disasmCommand } from './commands/disasm';
import { rewriteCommand } from './commands/rewrite';
import { runCommand } from './commands/run';
import { scanCommand } from './commands/scan';
import { verifyCommand } from './commands/verify';
import { EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, InputError, processIo } from './output';
import type { Io } from './output';

/** One subcommand: its yargs syntax, and the function that runs it. */
export interface Command<A> {
  command: string;
  describe: string;
  builder: (y: Argv) => Argv<A>;
  run: (args: ArgumentsCamelCase<A>, io: Io) => Promise<number>;
}

/** Raised from yargs' failure callback: unknown option, missing argument, bad choice. */
class UsageError extends Error {}

/** The command yargs chose, run after parsing has finished. */
interface Chosen {
  run?: () => Promise<number>;
}

function register<A>(y: Argv, c: Command<A>, io: Io, chosen: Chosen): void {
  y.command(c.command, c.describe, c.builder, (args) => {
    chosen.run = () => c.run(args, io);
  });
}

/** yargs and some messages span lines; the contract is one line per error. */
const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

function report(e: unknown, io: Io): number {
  if (e instanceof UsageError || e instanceof InputError || e instanceof ElfError) {
    io.stderr(`ringshift: ${oneLine(e.message)}\n`);
    return EXIT_USAGE;
  }
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  io.stderr(`ringshift: internal error: ${oneLine(message)} (RINGSHIFT_DEBUG=1 shows where)\n`);
  if (process.env.RINGSHIFT_DEBUG && e instanceof Error && e.stack) io.stderr(`${e.stack}\n`);
  return EXIT_INTERNAL;
}

let pipeHandled = false;

/** `ringshift disasm big.elf | head` closes the pipe early: that is a normal end, not a crash. */
function exitQuietlyOnClosedPipe(): void {
  if (pipeHandled) return;
  pipeHandled = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT_OK);
    process.stderr.write(`ringshift: cannot write output: ${oneLine(e.message)}\n`);
    process.exit(EXIT_INTERNAL);
  });
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  if (io === processIo) exitQuietlyOnClosedPipe();
  const chosen: Chosen = {};
  const parser = yargs()
    .scriptName('ringshift')
    .usage('$0 <command> [options]\n\nOffline binary translation for x86 virtualization.')
    .strict()
    .exitProcess(false)
    .demandCommand(1, 'no command given (ringshift --help lists them)')
    .recommendCommands()
    .help()
    .version(false)
    .wrap(100)
    .fail((message: string | null, error: Error | undefined) => {
      const text = message ?? error?.message ?? 'invalid arguments';
      // recommendCommands() replaces the "Unknown argument" message by its suggestion alone.
      if (text.startsWith('Did you mean')) throw new UsageError(`unknown command '${argv[0]}'; did you mean${text.slice(12)}`);
      throw new UsageError(text);
    });
  register(parser, disasmCommand, io, chosen);
  register(parser, scanCommand, io, chosen);
  register(parser, rewriteCommand, io, chosen);
  register(parser, runCommand, io, chosen);
  register(parser, compareCommand, io, chosen);
  register(parser, verifyCommand, io, chosen);
  register(parser, checkCommand, io, chosen);
  register(parser, benchCommand, io, chosen);

  try {
    const helpText = await new Promise<string>((resolve, reject) => {
      parser
        .parseAsync(argv, {}, (error: Error | null | undefined, _args: unknown, output: string) => {
          if (error) reject(new UsageError(error.message));
          else resolve(output);
        })
        .catch(reject);
    });
    if (!chosen.run) {
      if (helpText) io.stdout(`${helpText}\n`);
      return EXIT_OK;
    }
    return await chosen.run();
  } catch (e) {
    return report(e, io);
  }
}
