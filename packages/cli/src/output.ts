// What every command shares: where output goes, which errors are the user's, and how numbers
// the user types are read. Exit codes (STYLE.md): 0 ok, 1 a difference or violation found,
// 2 bad usage or input, 3 internal error.
import { readFileSync } from 'node:fs';

export const EXIT_OK = 0;
export const EXIT_FOUND = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 3;

/** Output sinks, so tests can run main() in-process and read what it printed. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  /**
   * Raw bytes, for guest output that must reach the user unchanged (serial lines carry any byte,
   * not UTF-8 text). Sinks without them get the bytes as Latin-1 text through stdout/stderr.
   */
  stdoutBytes?(bytes: Uint8Array): void;
  stderrBytes?(bytes: Uint8Array): void;
}

export const processIo: Io = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  stdoutBytes: (bytes) => void process.stdout.write(bytes),
  stderrBytes: (bytes) => void process.stderr.write(bytes),
};

/**
 * A problem with what the user gave us (arguments, files): reported as one line, exit 2.
 * Library errors that mean the same (ElfError) are recognised by main() too.
 */
export class InputError extends Error {
  override name = 'InputError';
}

/** Reads a file, turning the usual failures into one-line InputErrors. */
export function readInputFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' :
      code === 'EISDIR' ? 'is a directory' :
      code === 'EACCES' ? 'permission denied' :
      (e as Error).message;
    throw new InputError(`cannot read ${path}: ${why}`);
  }
}

/** An address or count as the user typed it: decimal, or hex with 0x. */
export function parseNumber(text: string | number, option: string, what = 'an address like 0x100000 or 1048576'): number {
  const s = String(text).trim();
  const v = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s.slice(2), 16) : /^[0-9]+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(v)) throw new InputError(`invalid ${option} '${s}': expected ${what}`);
  return v;
}

/** A count option (--max-instructions, --memory ...): an integer of at least 1. */
export function parsePositive(text: string, option: string, what: string): number {
  const n = parseNumber(text, option, what);
  if (n < 1) throw new InputError(`invalid ${option} '${text}': expected ${what}`);
  return n;
}

/** --timeout: positive seconds (decimals allowed), returned in milliseconds. */
export function parseSeconds(text: string): number {
  const s = text.trim();
  const v = /^(\d+(\.\d*)?|\.\d+)$/.test(s) ? Number(s) : NaN;
  if (!(v > 0) || !Number.isFinite(v)) throw new InputError(`invalid --timeout '${text}': expected a positive number of seconds`);
  return v * 1000;
}

export function hex(n: number, width = 0): string {
  return n.toString(16).padStart(width, '0');
}

export function hexBytes(bytes: Uint8Array, sep = ' '): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += (i > 0 ? sep : '') + hex(bytes[i]!, 2);
  return s;
}

/**
 * Collects output and hands it to the sink in large pieces: one write per line would dominate
 * the run time of a listing of a few hundred thousand instructions.
 */
export class BufferedWriter {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly sink: (text: string) => void, private readonly chunk = 1 << 16) {}

  write(text: string): void {
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= this.chunk) this.flush();
  }

  flush(): void {
    if (this.parts.length === 0) return;
    this.sink(this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }
}
