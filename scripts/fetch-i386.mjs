#!/usr/bin/env node
// Fetches a real, stripped, statically linked i386 Linux executable for the tests: Debian's
// busybox-static:i386, into test/fixtures-cache/busybox. Nothing is installed: apt reads the i386
// package index into a private state directory (so `dpkg --add-architecture` is not needed and
// the system's apt lists stay as they were), downloads the .deb and dpkg-deb unpacks it.
//
// Idempotent: when the file is there and is an ELF32 i386 executable, it returns at once.
// Without apt (not Debian) or without network it says so and exits 1; tests that need the file
// skip when it is missing. Plain Node, no dependencies.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = join(root, 'test', 'fixtures-cache');
const TARGET = join(CACHE, 'busybox');
const PACKAGE = 'busybox-static:i386';

function log(msg) {
  process.stderr.write(`fetch-i386: ${msg}\n`);
}

/** ELF magic, ELFCLASS32, EM_386 (e_machine 3). */
function isElf32I386(file) {
  const b = readFileSync(file);
  return b.length > 20 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46 && b[4] === 1 && b[18] === 3 && b[19] === 0;
}

function fetch() {
  if (spawnSync('sh', ['-c', 'command -v apt-get && command -v dpkg-deb'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('apt-get and dpkg-deb are needed (a Debian or Ubuntu host)');
  }
  const work = mkdtempSync(join(tmpdir(), 'ringshift-i386-'));
  try {
    const lists = join(work, 'lists');
    const cache = join(work, 'cache');
    mkdirSync(join(lists, 'partial'), { recursive: true });
    mkdirSync(join(cache, 'archives', 'partial'), { recursive: true });
    // A private apt state: i386 indexes only, an empty dpkg status, this directory's lists.
    const apt = [
      '-q', '-o', 'APT::Architecture=i386', '-o', 'APT::Architectures::=i386',
      '-o', `Dir::State::Lists=${lists}`, '-o', `Dir::Cache=${cache}`, '-o', 'Dir::State::status=/dev/null',
      // Downloading into a directory the _apt user cannot write to is fine for a one-off fetch.
      '-o', 'APT::Sandbox::User=root',
    ];
    log(`apt-get update (i386 index, private state in ${work})`);
    // A secondary index that fails (a security mirror mid-sync) makes apt complain but does not
    // matter for the download, so apt's complaints are shown only if the download fails.
    const update = spawnSync('apt-get', [...apt, 'update'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    log(`apt-get download ${PACKAGE}`);
    const download = spawnSync('apt-get', [...apt, 'download', PACKAGE], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (download.status !== 0) {
      process.stderr.write(update.stderr + download.stderr);
      throw new Error(`apt-get download ${PACKAGE} failed (exit ${download.status})`);
    }
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${PACKAGE} left no .deb in ${work}`);
    const unpacked = join(work, 'x');
    execFileSync('dpkg-deb', ['-x', join(work, deb), unpacked]);
    const bin = join(unpacked, 'bin', 'busybox');
    if (!existsSync(bin) || !isElf32I386(bin)) throw new Error(`${deb} holds no ELF32 i386 bin/busybox`);
    mkdirSync(CACHE, { recursive: true });
    copyFileSync(bin, TARGET);
    chmodSync(TARGET, 0o755);
    log(`${deb} -> ${TARGET}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  if (existsSync(TARGET) && isElf32I386(TARGET)) process.exit(0);
  fetch();
} catch (e) {
  log(`cannot fetch ${PACKAGE}: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
