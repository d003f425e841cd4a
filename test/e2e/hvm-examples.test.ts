// The hvm backend's end-to-end property (issue 9): every example gives the same serial bytes and
// exit status under `hvm` (EPT on, and EPT off = shadow paging) as under `native`, byte for byte
// (nanobench included: guest time is retired instructions, and exits retire none). Also the exit
// mix each configuration must show, and the CLI's --hvm-controls and compare with hvm.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadGuest, parseControls, runGuest, type GuestReport } from '@ringshift/runtime';
import { main } from '../../packages/cli/src/main';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const GUESTS = ['hello', 'interrupts', 'sensitive', 'paging', 'usermode', 'nanobench'];

interface Run { serial: string; report: GuestReport }

function run(image: Uint8Array, backend: 'native' | 'hvm', controls = ''): Run {
  const out: number[] = [];
  const g = loadGuest(image, { backend, machine: { serialOut: (b) => out.push(b) }, cmdline: 'guest', ...(backend === 'hvm' ? { hvmControls: parseControls(controls) } : {}) });
  const report = runGuest(g, { maxInstructions: 200_000_000, timeoutMs: 120_000 });
  return { serial: Buffer.from(out).toString('latin1'), report };
}

describe('native vs hvm (EPT on and off): same serial output, same exit status', () => {
  it.each(GUESTS)('%s', (g) => {
    const file = `${examples}${g}/${g}.elf`;
    expect(existsSync(file), 'run `make -C examples`').toBe(true);
    const image = new Uint8Array(readFileSync(file));
    const native = run(image, 'native');
    expect(native.report.reason).toBe('exit');
    for (const controls of ['', 'ept=off']) {
      const hvm = run(image, 'hvm', controls);
      expect(hvm.report.reason, `${controls}: ${hvm.report.detail}`).toBe(native.report.reason);
      expect(hvm.report.exitStatus).toBe(native.report.exitStatus);
      expect(hvm.serial).toBe(native.serial);
      expect(hvm.report.instructions).toBe(native.report.instructions);
      const byReason = hvm.report.stats!.byReason;
      expect(byReason.IO_INSTRUCTION).toBeGreaterThan(0); // unconditional I/O exiting: the serial port
      if (controls === '') {
        expect(byReason.EPT_VIOLATION).toBeGreaterThan(0);
        expect(byReason.INVLPG).toBeUndefined();
      } else {
        expect(byReason.EPT_VIOLATION).toBeUndefined();
      }
      if (g === 'interrupts') expect(byReason.EXTERNAL_INTERRUPT).toBeGreaterThan(0);
      if (g === 'paging' && controls !== '') expect(byReason.EXCEPTION_OR_NMI).toBeGreaterThan(0); // shadow-paging #PF exits
    }
  }, 120_000);
});

describe('CLI', () => {
  async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = { code: -1, stdout: '', stderr: '' };
    r.code = await main(argv, { stdout: (t) => void (r.stdout += t), stderr: (t) => void (r.stderr += t), stdoutBytes: () => {}, stderrBytes: () => {} });
    return r;
  }

  it('ringshift compare --backends native,rewrite,hvm is clean on hello', async () => {
    const r = await cli(['compare', `${examples}hello/hello.elf`, '--backends', 'native,rewrite,hvm']);
    expect(r.stderr + r.stdout).not.toMatch(/differ/i);
    expect(r.code).toBe(0);
  });

  it('run --backend hvm --stats prints exit reasons; a bad --hvm-controls is exit 2 listing the names', async () => {
    const ok = await cli(['run', `${examples}hello/hello.elf`, '--backend', 'hvm', '--hvm-controls', 'rdtsc-exiting,ept=off', '--stats']);
    expect(ok.code).toBe(1); // hello exits with status 0 → (0 << 1) | 1
    expect(ok.stderr).toMatch(/IO_INSTRUCTION/);
    const bad = await cli(['run', `${examples}hello/hello.elf`, '--backend', 'hvm', '--hvm-controls', 'rdtsc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown VM-execution control 'rdtsc'.*rdtsc-exiting/);
  });
});
