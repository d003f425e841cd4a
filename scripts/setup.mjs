#!/usr/bin/env node
// Brings a fresh clone (Node 20 + npm only) to a working state, and does nothing
// slow when everything is already there: pnpm at the pinned version, the Debian
// tools the tests and examples use, workspace dependencies, the CLI's bundle, and the example
// guests.
// Plain Node with no dependencies, because it runs before anything is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM_VERSION = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split('@')[1];

// command on PATH -> Debian package that provides it
const APT_TOOLS = {
  objdump: 'binutils',
  ld: 'binutils',
  gcc: 'gcc',
  make: 'make',
  'llvm-mc': 'llvm',
  // The whole-guest oracle (test/e2e/qemu.test.ts): examples boot under QEMU and ringshift run.
  'qemu-system-i386': 'qemu-system-x86',
};

function log(msg) {
  process.stderr.write(`setup: ${msg}\n`);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd, args, opts = {}) {
  log(`${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: root, ...opts });
}

function ensurePnpm() {
  const r = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim() === PNPM_VERSION) return;
  run('npm', ['i', '-g', `pnpm@${PNPM_VERSION}`]);
}

function ensureApt() {
  const missing = [...new Set(Object.entries(APT_TOOLS).filter(([c]) => !has(c)).map(([, p]) => p))];
  // gcc -m32 needs the 32-bit C runtime headers; check by compiling nothing.
  const m32 = spawnSync('sh', ['-c', 'echo "int x;" | gcc -m32 -x c -c -o /dev/null -'], { stdio: 'ignore' });
  if (m32.status !== 0 && !missing.includes('gcc-multilib')) missing.push('gcc-multilib');
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`missing Debian packages (${missing.join(', ')}); install them as root`);
  }
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function ensureDeps() {
  const lock = join(root, 'pnpm-lock.yaml');
  const stamp = join(root, 'node_modules', '.ringshift-setup');
  const inputs = ['package.json', 'pnpm-workspace.yaml', 'pnpm-lock.yaml',
    ...['decoder', 'rewriter', 'runtime', 'cli'].map((p) => `packages/${p}/package.json`)];
  const h = createHash('sha256');
  for (const f of inputs) if (existsSync(join(root, f))) h.update(readFileSync(join(root, f)));
  const digest = h.digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return;
  const frozen = existsSync(lock) && process.env.CI ? ['--frozen-lockfile'] : [];
  run('pnpm', ['install', ...frozen], { env: { ...process.env, CI: process.env.CI ?? '' } });
  writeFileSync(stamp, digest);
}

/** The CLI's ahead-of-time bundle (scripts/build-cli.mjs): optional, the bin shim falls back to tsx. */
function ensureCliBundle() {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-cli.mjs'), '--if-stale'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) log('the CLI bundle was not built; ringshift runs its sources through tsx');
}

function ensureExamples() {
  if (!existsSync(join(root, 'examples', 'Makefile'))) return;
  // make is itself the up-to-date check.
  run('make', ['-s', '-C', join(root, 'examples')]);
}

/** A real i386 Linux executable (Debian's busybox-static) for the rewriter's native-run oracle. */
function ensureI386Fixtures() {
  // fetch-i386.mjs returns at once when the file is already there.
  run(process.execPath, [join(root, 'scripts', 'fetch-i386.mjs')]);
}

try {
  ensurePnpm();
  ensureApt();
  ensureDeps();
  ensureCliBundle();
  ensureExamples();
  ensureI386Fixtures();
} catch (e) {
  log(`failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(2);
}
