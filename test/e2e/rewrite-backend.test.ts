// The rewrite backend's end-to-end property (issue 7): every example, rewritten by
// `ringshift rewrite` (`make -C examples` builds examples/<g>/<g>.rewritten.elf), gives the
// same serial bytes and the same exit status under `rewrite` as the original under `native`.
// And the `deprivileged` backend (the original image in ring 1, trap-and-emulate only) makes
// the `sensitive` example print visibly different results (docs/rewrite-backend.md).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadGuest, runGuest, type BackendName, type GuestReport } from '@ringshift/runtime';
import { main } from '../../packages/cli/src/main';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const GUESTS = ['hello', 'interrupts', 'sensitive', 'paging', 'usermode', 'nanobench'];
/** nanobench prints RDTSC deltas, which depend on the instructions the monitor adds (as in qemu.test.ts). */
const MASKED_NUMBER_GUESTS: readonly string[] = ['nanobench'];
const maskNumbers = (s: string): string => s.replace(/\b(cycles|per-op)=[0-9]+/g, '$1=#');

interface Run { serial: string; report: GuestReport }

function run(file: string, backend: BackendName): Run {
  const out: number[] = [];
  const g = loadGuest(new Uint8Array(readFileSync(file)), { backend, machine: { serialOut: (b) => out.push(b) }, cmdline: 'guest' });
  const report = runGuest(g, { maxInstructions: 200_000_000, timeoutMs: 120_000 });
  return { serial: Buffer.from(out).toString('latin1'), report };
}

const built = GUESTS.filter((g) => existsSync(`${examples}${g}/${g}.rewritten.elf`));

describe('native vs rewrite: same serial output, same exit status', () => {
  it('the rewritten examples are built', () => {
    expect(built, 'run `make -C examples`').toEqual(GUESTS);
  });

  it.each(built)('%s', (g) => {
    const native = run(`${examples}${g}/${g}.elf`, 'native');
    const rewrite = run(`${examples}${g}/${g}.rewritten.elf`, 'rewrite');
    const mask = MASKED_NUMBER_GUESTS.includes(g) ? maskNumbers : (s: string) => s;
    expect(native.report.reason).toBe('exit');
    expect(rewrite.report.reason, rewrite.report.detail).toBe(native.report.reason);
    expect(rewrite.report.exitStatus).toBe(native.report.exitStatus);
    expect(mask(rewrite.serial)).toBe(mask(native.serial));
    // The guest-visible registers at the exit (the monitor reports the virtual CR0/CR3/CR4, IF,
    // IOPL, CS/SS RPL and the original EIP). nanobench's differ: they hold RDTSC deltas.
    if (!MASKED_NUMBER_GUESTS.includes(g)) expect(rewrite.report.registers).toEqual(native.report.registers);
    // The monitor was really in the loop: escapes from stubs were taken; every trap of an
    // unpatched privileged site (or INT3 trap site) counts as a miss.
    const stats = rewrite.report.stats!;
    expect(stats.byVia.escape).toBeGreaterThan(0);
    const trapsAtSites = stats.bySite.filter((x) => x.via === 'trap' && !x.text.startsWith('sysenter')).reduce((n, x) => n + x.count, 0);
    expect(stats.misses).toBeLessThanOrEqual(trapsAtSites);
    if (g === 'sensitive') expect(stats.misses).toBeGreaterThan(0);
  });
});

describe('deprivileged: the silent failures the rewriter exists to prevent', () => {
  const file = `${examples}sensitive/sensitive.elf`;
  it.runIf(existsSync(file))('sensitive prints different results and fails its checks', () => {
    const native = run(file, 'native');
    const dep = run(file, 'deprivileged');
    expect(native.serial).toContain('sensitive: done');
    expect(dep.report.exitStatus).not.toBe(native.report.exitStatus);
    // SGDT/SIDT reveal the monitor's tables, SMSW the real CR0 (PG set by shadow paging),
    // MOV/PUSH of CS and SS the real RPL 1, LAR/LSL the compressed DPL and clipped limits.
    for (const line of ['FAIL: sgdt', 'FAIL: sidt', 'FAIL: smsw', 'FAIL: cs/ss']) expect(dep.serial).toContain(line);
    expect(dep.serial).toMatch(/smsw r32 80000011/);
    expect(dep.serial).toMatch(/push cs\/ss\/ds \(low 16 bits\): 0009 0011 0010/);
    expect(dep.serial).toMatch(/0008: lar 00c0bb00 lsl fffdffff/);
  });

  const hello = `${examples}hello/hello.elf`;
  it.runIf(existsSync(hello))('hello differs in SGDT only; everything trapped was emulated', () => {
    const native = run(hello, 'native');
    const dep = run(hello, 'deprivileged');
    const lines = (s: string): string[] => s.split('\n').map((l) => l.replace(/\r$/, ''));
    expect(lines(dep.serial).filter((l) => l !== 'FAIL: sgdt' && l !== 'failures: 0x00000001')).toEqual(lines(native.serial));
    expect(dep.serial).toContain('FAIL: sgdt');
    expect(dep.report.exitStatus).toBe(3);
    expect(dep.report.stats!.byVia.trap).toBeGreaterThan(0);
  });
});

describe('ringshift run --backend rewrite --stats', () => {
  const image = `${examples}hello/hello.rewritten.elf`;
  async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string; serial: number[] }> {
    const r = { code: 0, stdout: '', stderr: '', serial: [] as number[] };
    r.code = await main(argv, {
      stdout: (t) => void (r.stdout += t),
      stderr: (t) => void (r.stderr += t),
      stdoutBytes: (b) => void r.serial.push(...b),
      stderrBytes: (b) => void r.serial.push(...b),
    });
    return r;
  }

  it.runIf(existsSync(image))('prints the exits per reason and per site', async () => {
    const r = await cli('run', image, '--backend', 'rewrite', '--stats');
    expect(r.code).toBe(1);
    expect(Buffer.from(r.serial).toString('latin1')).toBe('hello from ringshift\r\n');
    expect(r.stderr).toMatch(/monitor exits: \d+ \(\d+ per million instructions\); traps of unpatched sites \(misses\): 0/);
    expect(r.stderr).toMatch(/IO_INSTRUCTION/);
    expect(r.stderr).toMatch(/escape\s+in al, dx/);
  });

  it.runIf(existsSync(image))('--json carries the stats; the report shows the guest\'s virtual state', async () => {
    const r = await cli('run', image, '--backend', 'rewrite', '--stats', '--json');
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ backend: 'rewrite', reason: 'exit', exitCode: 1 });
    expect(j.registers.cs).toBe(0x08);
    expect(j.registers.cr0).toBe(0x11);
    expect(j.stats.byReason.IO_INSTRUCTION).toBeGreaterThan(0);
    expect(j.stats.bySite[0]).toMatchObject({ via: 'escape' });
  });

  it.runIf(existsSync(image))('refuses a patched image under deprivileged and an unpatched one under rewrite', async () => {
    expect((await cli('run', image, '--backend', 'deprivileged')).stderr).toMatch(/carries a patch map: use --backend rewrite/);
    const plain = await cli('run', `${examples}hello/hello.elf`, '--backend', 'rewrite');
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/no \.ringshift\.patchmap section/);
  });
});
