// The two ways the CLI tests drive `ringshift`: main() in-process (fast; captures the text it
// writes) and the bin shim in a child process (for exit statuses, signals and files on disk).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { main } from '../../src/main';

export const ROOT = join(import.meta.dirname, '../../../..');
export const BIN = join(ROOT, 'packages/cli/bin/ringshift.mjs');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** main(argv) in this process, with stdout and stderr collected as text. */
export async function run(...argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

/** The installed entry point in a child process, as a user's shell would run it. */
export function spawn(...argv: string[]): Run {
  const r = spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
