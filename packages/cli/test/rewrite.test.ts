// `ringshift rewrite` end to end: main() in-process for output, the bin shim in a child process
// for exit statuses and what is (not) left on disk. The patched image is checked with
// verifyImage against the original, and its patch map against the printed counts.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePatchMap, readElf, verifyImage } from '@ringshift/rewriter';
import { ROOT, run, spawn, type Run } from './support/cli';

const SENSITIVE = join(ROOT, 'examples/sensitive/sensitive.elf');
const HELLO = join(ROOT, 'examples/hello/hello.elf');




function expectOneLineError(r: Run, code: number, message: RegExp): void {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^ringshift: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr.trimEnd()).toMatch(message);
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ringshift-rewrite-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Files in a directory other than the ones named: temporary files left behind would show here. */
const others = (d: string, ...known: string[]): string[] => readdirSync(d).filter((f) => !known.includes(f));

describe('ringshift rewrite examples/sensitive/sensitive.elf', { timeout: 60_000 }, () => {
  it('writes a patched image that verifies against the original, and prints per-tactic counts', async () => {
    const out = join(dir, 'sensitive.rewritten.elf');
    const r = await run('rewrite', SENSITIVE, '-o', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const image = readFileSync(out);
    const original = readFileSync(SENSITIVE);
    const v = verifyImage(image, original);
    expect(v.violations).toEqual([]);
    const map = v.map!;
    expect(map.select).toBe('sensitive');
    expect(map.sites.length).toBeGreaterThan(10);
    // The first line counts what the map holds; each tactic's line its count in the map. Evicted
    // instructions (T2e's successors) have records too, but are not sites: counted apart.
    const first = r.stdout.split('\n')[0]!;
    const siteRecords = map.sites.filter((s) => s.reason !== 'evicted');
    const evicted = map.sites.length - siteRecords.length;
    const patched = siteRecords.filter((s) => s.tactic !== 'trap').length;
    expect(first).toMatch(new RegExp(`sensitive\\.elf -> .*sensitive\\.rewritten\\.elf: ${siteRecords.length} sites selected by 'sensitive' in \\d+ instructions, ${patched} patched with a jump, ${siteRecords.length - patched} left to trap`));
    for (const t of ['B1', 'B2', 'T1', 'T2e', 'T3e', 'T2', 'T3', 'trap']) {
      const n = siteRecords.filter((s) => s.tactic === t).length;
      expect(r.stdout).toMatch(new RegExp(`\\n  ${t} +${n} `));
    }
    expect(map.sites.filter((s) => s.tactic === 'T2e' || s.tactic === 'T3e').length).toBe(evicted);
    if (evicted > 0) expect(r.stdout).toMatch(new RegExp(`evicted \\(not sites, patched to make room for T2e/T3e\\): ${evicted} `));
    // Independent of the rewriter: every sensitive instruction `disasm` marks in the text is a site.
    const listing = await run('disasm', SENSITIVE, '--json');
    const marked = (JSON.parse(listing.stdout) as { address: number; classes: { privileged: string; ioplSensitive: string; sensitiveUnprivileged: boolean } }[])
      .filter((i) => i.classes.privileged !== 'no' || i.classes.ioplSensitive !== 'no' || i.classes.sensitiveUnprivileged)
      .map((i) => i.address);
    const sites = new Set(map.sites.map((s) => s.addr));
    const missing = marked.filter((a) => !sites.has(a));
    // disasm sweeps linearly, so it may see data as code; discovery must not miss real code.
    expect(missing.length).toBeLessThanOrEqual(marked.length * 0.05);
    expect(others(dir, 'sensitive.rewritten.elf')).toEqual([]);
    rmSync(out);
  });

  it('--json: the report with every miss and its reasons', async () => {
    const out = join(dir, 'j.elf');
    const r = await run('rewrite', SENSITIVE, '-o', out, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as {
      sites: number; patched: number; tactics: Record<string, number>; stubs: Record<string, number>; evicted: Record<string, number>; skipped: number;
      misses: { addr: number; text: string; outcome: string; tried: { tactic: string; why: string }[] }[];
    };
    const map = decodePatchMap(readElf(readFileSync(out)).sections.find((s) => s.name === '.ringshift.patchmap')!.bytes);
    // Per site: tactic counts + skipped = sites; the evicted instructions' records are counted apart.
    const siteRecords = map.sites.filter((s) => s.reason !== 'evicted');
    expect(Object.values(j.tactics).reduce((a, b) => a + b, 0) + j.skipped).toBe(j.sites);
    expect(Object.values(j.tactics).reduce((a, b) => a + b, 0)).toBe(siteRecords.length);
    expect(Object.values(j.stubs).reduce((a, b) => a + b, 0)).toBe(siteRecords.length);
    expect(Object.values(j.evicted).reduce((a, b) => a + b, 0)).toBe(map.sites.length - siteRecords.length);
    expect(j.patched).toBe(siteRecords.filter((s) => s.tactic !== 'trap').length);
    expect(j.tactics.trap).toBe(j.misses.filter((m) => m.outcome === 'trap').length);
    for (const m of j.misses) {
      expect(m.tried.length).toBeGreaterThan(0);
      for (const t of m.tried) expect(t.why).not.toBe('');
    }
    rmSync(out);
  });

  it('--no-inline: no inline stubs', async () => {
    const out = join(dir, 'noinline.elf');
    const inl = JSON.parse((await run('rewrite', SENSITIVE, '-o', out, '--json')).stdout) as { stubs: Record<string, number> };
    const r = await run('rewrite', SENSITIVE, '-o', out, '--json', '--no-inline');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { inline: boolean; stubs: Record<string, number> };
    expect(j.inline).toBe(false);
    expect(j.stubs.inline).toBe(0);
    expect(inl.stubs.inline).toBeGreaterThan(0);
    expect(j.stubs.escape).toBe(inl.stubs.escape + inl.stubs.inline);
    expect(verifyImage(readFileSync(out), readFileSync(SENSITIVE)).violations).toEqual([]);
    rmSync(out);
  });

  it('--diff: each site before and after, and its stub', async () => {
    const out = join(dir, 'diff.elf');
    const r = await run('rewrite', SENSITIVE, '-o', out, '--diff');
    expect(r.code).toBe(0);
    const map = verifyImage(readFileSync(out)).map!;
    const blocks = r.stdout.split('\nsite 0x').slice(1);
    expect(blocks).toHaveLength(map.sites.filter((s) => s.reason !== 'evicted').length);
    expect(r.stdout.split('\nevicted 0x').length - 1).toBe(map.sites.filter((s) => s.reason === 'evicted').length);
    const b1 = map.sites.find((s) => s.tactic === 'B1');
    if (b1) {
      const block = blocks.find((b) => b.startsWith(b1.addr.toString(16).padStart(8, '0')))!;
      expect(block).toMatch(/\n  before:\n/);
      // After: a jmp to the stub at the site; the stub ends with a jmp back to resume.
      expect(block).toMatch(new RegExp(`\\n  after:\\n    ${b1.addr.toString(16).padStart(8, '0')}:  e9 .*jmp 0x0*${b1.stubAddr.toString(16)}\\b`, 'i'));
      expect(block).toMatch(new RegExp(`jmp 0x0*${b1.resume.toString(16)}\\b[^\\n]*\\n?$`, 'i'));
    }
    rmSync(out);
  });

  it('jumps mode on examples/hello/hello.elf', async () => {
    const out = join(dir, 'hello.jumps.elf');
    const r = await run('rewrite', HELLO, '-o', out, '--select', 'jumps', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { sites: number; stubs: Record<string, number> };
    expect(j.sites).toBeGreaterThan(5);
    expect(j.stubs.empty).toBeGreaterThan(0);
    expect(verifyImage(readFileSync(out), readFileSync(HELLO)).violations).toEqual([]);
    rmSync(out);
  });
});

describe('determinism and atomic writes (the real command)', { timeout: 60_000 }, () => {
  it('two runs write byte-identical images', () => {
    const a = join(dir, 'a.elf');
    const b = join(dir, 'b.elf');
    expect(spawn('rewrite', SENSITIVE, '-o', a).code).toBe(0);
    expect(spawn('rewrite', SENSITIVE, '-o', b).code).toBe(0);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    rmSync(a);
    rmSync(b);
  });

  it('an output directory that does not exist: exit 2, nothing written', () => {
    const out = join(dir, 'no-such-dir', 'out.elf');
    expectOneLineError(spawn('rewrite', SENSITIVE, '-o', out), 2, /^ringshift: cannot write .*no-such-dir\/out\.elf: no such directory .*no-such-dir$/);
    expect(existsSync(join(dir, 'no-such-dir'))).toBe(false);
  });

  it('an output path that is a directory: exit 2, the directory untouched, no temporary file left', () => {
    const sub = join(dir, 'is-a-dir');
    mkdirSync(sub);
    writeFileSync(join(sub, 'keep'), 'x');
    expectOneLineError(spawn('rewrite', SENSITIVE, '-o', sub), 2, /cannot write .*is-a-dir: is a directory$/);
    expect(readdirSync(sub)).toEqual(['keep']);
    expect(others(dir, 'is-a-dir')).toEqual([]);
    rmSync(sub, { recursive: true });
  });

  it('a bad input: exit 2, no output file; an existing output is left as it was', () => {
    const bad = join(dir, 'bad.elf');
    writeFileSync(bad, 'not an elf at all');
    const out = join(dir, 'never.elf');
    expectOneLineError(spawn('rewrite', bad, '-o', out), 2, /^ringshift: .*bad\.elf: not an ELF file: starts with 6e 6f 74 20/);
    expect(existsSync(out)).toBe(false);
    writeFileSync(out, 'old');
    expectOneLineError(spawn('rewrite', bad, '-o', out), 2, /not an ELF file/);
    expect(readFileSync(out, 'utf8')).toBe('old');
    expectOneLineError(spawn('rewrite', join(dir, 'missing.elf'), '-o', out), 2, /^ringshift: cannot read .*missing\.elf: no such file$/);
    expect(readFileSync(out, 'utf8')).toBe('old');
    expect(others(dir, 'bad.elf', 'never.elf')).toEqual([]);
    rmSync(bad);
    rmSync(out);
  });

  it('an unknown --select word, or no -o: exit 2, one line', () => {
    const out = join(dir, 'sel.elf');
    expectOneLineError(spawn('rewrite', SENSITIVE, '-o', out, '--select', 'sensitive,frobnicate'), 2, /unknown selection 'frobnicate'/);
    expect(existsSync(out)).toBe(false);
    expectOneLineError(spawn('rewrite', SENSITIVE), 2, /Missing required argument: (o|output)/);
    expectOneLineError(spawn('rewrite', SENSITIVE, '-o', out, '--json', '--diff'), 2, /--diff prints listings and --json one JSON object/);
    expect(existsSync(out)).toBe(false);
  });
});
