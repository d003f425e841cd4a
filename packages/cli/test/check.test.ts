// The rewrite-correctness property (src/check/) and `ringshift check`: the property holds on a
// fixed seed, it fails where it must (deprivileged, a broken POPFD stub) with a shrunk
// counterexample that names the site, and the command's exits and errors.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mnemonicOf } from '@ringshift/decoder';
import { readElf, type RewriteResult } from '@ringshift/rewriter';
import { buildGuest, checkProgram, runCampaign, type GuestImage, type GuestProgram } from '../src/check/index';
import { run } from './support/cli';

const ROOT = join(import.meta.dirname, '../../..');
const HELLO = join(ROOT, 'examples/hello/hello.elf');
const SENSITIVE = join(ROOT, 'examples/sensitive/sensitive.elf');
const SEED = 20261125;

/** Prints the counterexample when an expectation on a campaign fails (seed and listing). */
function reportOf(r: ReturnType<typeof runCampaign>): string {
  return r.failures.map((f) => f.report).join('\n\n');
}

describe('the property on generated programs', () => {
  it('holds for a fixed seed (every backend but deprivileged and pv)', { timeout: 120_000 }, () => {
    const r = runCampaign({ seed: SEED, runs: 6, maxItems: 16 });
    expect(r.failures, reportOf(r)).toHaveLength(0);
    expect(r.runs).toBe(6);
    // The programs reached sensitive sites in their bodies, patched by more than one tactic.
    expect(r.coverage.sites).toBeGreaterThan(6);
    expect(r.coverage.byTactic.size).toBeGreaterThan(1);
  });

  it('a program dumps its state: the record and the log reach COM1 and the run exits through isa-debug-exit', { timeout: 30_000 }, () => {
    const p: GuestProgram = { items: [{ kind: 'int', r: [5, 1, 0, 0, 0, 0] }], regs: [1, 2, 3, 4, 5, 6, 7], eflags: 0x200, paging: true, ending: 'iret', dataSeed: 1 };
    const r = checkProgram(p, { backends: ['native', 'rewrite'] });
    expect(r.difference).toBeNull();
    const native = r.runs[0]!;
    expect(native.reason).toBe('exit');
    expect(native.exitStatus).toBe(1);
    // 128-byte record + one 32-byte log entry: INT 0x31 (a trap gate), returned from.
    expect(native.serial.length).toBe(0x80 + 32);
    const dv = new DataView(native.serial.buffer);
    expect(dv.getUint32(0x80, true)).toBe(0x31);
    expect(dv.getUint32(0x80 + 16, true) & 0x200).toBe(0x200); // the IF the INT pushed
    expect(dv.getUint32(32, true) & 0x200).toBe(0x200); // EFLAGS.IF at the end, as PUSHFD shows it
    expect(dv.getUint32(72, true) >>> 31).toBe(1); // CR0.PG
  });
});

describe('self-tests: the property can fail', () => {
  it('deprivileged (no rewriting) fails within a few runs, with a shrunk counterexample', { timeout: 120_000 }, () => {
    const r = runCampaign({ seed: SEED, runs: 5, maxItems: 6, backends: ['native', 'deprivileged'] });
    expect(r.failures).toHaveLength(1);
    const f = r.failures[0]!;
    expect(r.runs).toBeLessThanOrEqual(5);
    expect(f.program.items.length).toBe(1); // shrunk
    expect(f.report).toMatch(/^counterexample \(seed 20261125, path [0-9:]+\)/);
    expect(f.report).toMatch(/first difference \(deprivileged vs native\): /);
    expect(f.report).toMatch(/\nbody:\n/);
  });

  it('a POPFD stub that ignores the popped IF is caught, and the counterexample names that site', { timeout: 120_000 }, () => {
    // Small words and few items: the failure is found at once and shrinks in a few dozen steps.
    const r = runCampaign({ seed: SEED, runs: 40, maxItems: 3, kinds: ['flags', 'gp'], wordMax: 0xfff, backends: ['native', 'rewrite'], mutateRewritten: breakPopfdStubs });
    expect(r.failures).toHaveLength(1);
    const f = r.failures[0]!;
    expect(f.result.difference?.text).toMatch(/IF native 1, rewrite 0/);
    // The listing marks the POPFD site with its tactic and inline stub.
    expect(f.report).toMatch(/ popfd\s+; <- site \(sensitive-unprivileged\): tactic (B1|B2|T1|T2e|T3e|T2|T3), inline stub/);
    const broken = f.result.rewrite!.map.sites.filter((s) => mnemonicOf(s.formId) === 'popfd' && s.stub === 'inline' && s.addr >= f.result.guest.body.start);
    expect(broken.length).toBeGreaterThan(0);
    expect(f.report).toContain(`sites in the body: `);
  });
});

/**
 * The seam for the broken-stub self-test: in every inline POPFD stub of the body, `and al, 1`
 * (the popped IF, docs/patch-abi.md) becomes `and al, 0`, so the stub always clears the virtual IF.
 */
function breakPopfdStubs(r: RewriteResult, guest: GuestImage): Uint8Array {
  const image = Uint8Array.from(r.image);
  const elf = readElf(image);
  for (const s of r.map.sites) {
    if (s.stub !== 'inline' || mnemonicOf(s.formId) !== 'popfd' || s.addr < guest.body.start || s.addr >= guest.body.end) continue;
    const seg = elf.segments.find((g) => g.type === 'load' && s.stubAddr >= g.vaddr && s.stubAddr < g.vaddr + g.filesz)!;
    const at = seg.offset + s.stubAddr - seg.vaddr;
    // shr eax, 9 ; and al, 1
    const k = image.subarray(at, at + 32).findIndex((_, i, b) => b[i] === 0xc1 && b[i + 1] === 0xe8 && b[i + 2] === 0x09 && b[i + 3] === 0x24 && b[i + 4] === 0x01);
    if (k < 0) throw new Error(`no 'shr eax, 9; and al, 1' in the POPFD stub at 0x${s.stubAddr.toString(16)}: the stub changed (update the test)`);
    image[at + k + 4] = 0x00;
  }
  return image;
}

describe('ringshift check <image>', () => {
  it('hello: native and rewrite agree, exit 0', { timeout: 30_000 }, async () => {
    const r = await run('check', HELLO, '--backends', 'native,rewrite');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/hello\.elf: native, rewrite \(rewritten in memory: \d+ sites/);
    expect(r.stdout).toMatch(/\nequal: the same ending, serial and debug-console output, and final registers under native, rewrite\n$/);
  });

  it('sensitive under deprivileged differs: exit 1 and the first difference', { timeout: 30_000 }, async () => {
    const r = await run('check', SENSITIVE, '--backends', 'native,deprivileged');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/\ndeprivileged vs native: /);
    expect(r.stdout).toMatch(/\ndifferent: 1 backend\(s\) differ from native\n$/);
  });

  it('bad input: one line on stderr, exit 2', { timeout: 30_000 }, async () => {
    for (const [argv, message] of [
      [['check'], /no image given/],
      [['check', join(ROOT, 'no-such.elf')], /cannot read .*no-such\.elf: no such file/],
      [['check', HELLO, '--backends', 'native'], /name two or more backends/],
      [['check', HELLO, '--backends', 'native,warp'], /unknown backend 'warp'/],
      [['check', HELLO, '--runs', '3'], /--runs goes with --random/],
      [['check', '--random', HELLO], /leave out the image/],
      [['check', '--random', '--runs', '0'], /invalid --runs '0'/],
      [['check', '--random', '--seed', 'x'], /invalid --seed 'x'/],
      [['check', '--random', '--backends', 'native,pv'], /pv/],
    ] as const) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('ringshift check --random', () => {
  it('runs the campaign: progress on stderr, the summary on stdout, exit 0', { timeout: 60_000 }, async () => {
    const r = await run('check', '--random', '--runs', '2', '--seed', '7', '--max-items', '6', '--backends', 'native,rewrite');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stderr).toMatch(/^check: 2\/2 programs, 0 failure\(s\), \d+ s\n$/m);
    expect(r.stdout).toMatch(/^ringshift check --random: seed 7, 2 programs in [\d.]+ s, backends native, rewrite \(reference native\)\n/);
    expect(r.stdout).toMatch(/\nprograms: 2 \(/);
    expect(r.stdout).toMatch(/\n {2}by tactic: /);
    expect(r.stdout).toMatch(/\npassed: every backend agreed with native on all 2 programs\n$/);
  });

  it('a failure (deprivileged) prints the seed to replay, the listing and exit 1', { timeout: 60_000 }, async () => {
    const r = await run('check', '--random', '--runs', '3', '--seed', '7', '--max-items', '3', '--backends', 'native,deprivileged');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/\nFAILED after \d+ shrink step\(s\); replay with --seed 7\ncounterexample \(seed 7, path/);
    expect(r.stdout).toMatch(/\nfailures: 1\n$/);
    expect(r.stderr).toMatch(/^check: failure found, replay with --seed 7: first difference \(deprivileged vs native\): /m);
  });
});

describe('the harness', () => {
  // The first tick lands `timerDelay` instructions into the body (the prologue counts its own
  // instructions), which needs the PIT's reprogramming to end the machine's slice: otherwise the
  // edge is seen only at the end of the slice, thousands of instructions later.
  it.each([[2, 10, false], [3, 200, true], [4, 0, false]] as const)('timer divisor %i, delay %i (paging %s): the first tick lands in the body', async (timer, timerDelay, paging) => {
    const { loadGuest, runGuest } = await import('@ringshift/runtime');
    const items = Array.from({ length: 24 }, (_, i) => ({ kind: 'gp' as const, r: [77 + i, 0x200, 3, 4, 5, 6] }));
    const guest = buildGuest({ items, regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging, ending: 'fall', dataSeed: 7, timer, timerDelay });
    const g = loadGuest(guest.image, { backend: 'native' });
    const { cpu, pic } = g.machine;
    const ticks: number[] = [];
    let bodyAt = -1;
    const ack = pic.acknowledge.bind(pic);
    pic.acknowledge = () => { ticks.push(cpu.retired); return ack(); };
    const enter = cpu.retired;
    runGuest(g, { maxInstructions: 1 });
    while (bodyAt < 0 && cpu.retired - enter < 20_000) {
      if ((cpu.eip >>> 0) === guest.body.start) bodyAt = cpu.retired;
      else runGuest(g, { maxInstructions: 1 });
    }
    runGuest(g, {});
    expect(bodyAt).toBeGreaterThan(0);
    expect(ticks.length).toBeGreaterThan(0);
    expect(Math.abs(ticks[0]! - bodyAt - timerDelay)).toBeLessThanOrEqual(3);
  });

  it('builds the same image for the same program (runs are reproducible)', () => {
    const p: GuestProgram = { items: [{ kind: 'far', r: [4, 2, 3, 4, 5, 6] }, { kind: 'branch', r: [1, 1, 0, 0, 0, 0] }], regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'far', dataSeed: 3 };
    expect(buildGuest(p).image).toEqual(buildGuest(p).image);
    // The body ends its section (and the text segment) with the far JMP to the epilogue.
    const g = buildGuest(p);
    const text = readElf(g.image).sections.find((s) => s.name === '.text.body')!;
    expect(text.addr + text.size).toBe(g.body.end);
    expect(text.bytes[text.size - 7]).toBe(0xea);
  });
});

describe('regressions found by the property', () => {
  // Found by `ringshift check --random` (about 1 program in 1,000): a punned trampoline placed at
  // the top of the hole, over the monitor's own structures at 0xFFFE0000, and the rewrite backend
  // threw a RangeError instead of running. Stubs now stay below HOLE_STUB_END.
  it('trampolines stay below the monitor structures (LAR then paging, ending in IRET)', { timeout: 60_000 }, () => {
    const p: GuestProgram = { items: [{ kind: 'lar', r: [0, 4294967278, 0, 0, 0, 0] }, { kind: 'paging', r: [0, 0, 0, 0, 0, 0] }], regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'iret', dataSeed: 0 };
    const r = checkProgram(p, { backends: ['native', 'rewrite'] });
    expect(r.difference).toBeNull();
    expect(r.runs[1]!.reason).toBe('exit');
  });

  // Found by `ringshift check --random`: a DIV by zero that T2 relocated into a trampoline (the
  // successor of an escaped instruction) was reported with its stub address (EIP 0xFFC0xxxx)
  // instead of its own. The monitor now reports faults in relocated instructions at the original.
  it('a fault in a relocated instruction reports its original address', { timeout: 60_000 }, () => {
    const p: GuestProgram = { items: [{ kind: 'gp', r: [2157898192, 5531747, 0, 0, 0, 0] }], regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'fall', dataSeed: 1452908296 };
    const r = checkProgram(p, { backends: ['native', 'rewrite'] });
    expect(r.difference).toBeNull();
    expect(r.runs[1]!.reason).toBe('exit');
  });

  // Found by `ringshift check --random`: after the guest made DS unusable (MOV DS of the null
  // selector), the inline CLI/STI/PUSHFD/POPFD stubs, which write the shared page as ds:[S],
  // faulted. The monitor now sees each inline stub's first instruction and, when DS (or SS for
  // PUSHFD/POPFD) does not fit, emulates the site itself.
  it('inline stubs with an unusable DS: the monitor emulates the sites', { timeout: 60_000 }, () => {
    const p: GuestProgram = {
      items: [
        { kind: 'sreg', r: [0, 0, 11, 0, 0, 0] }, // mov eax, 0; mov ds, eax
        { kind: 'flags', r: [8, 0x200, 0, 0, 0, 0] }, // pushfd; cli; push imm32; popfd; popfd
        { kind: 'flags', r: [1, 0, 0, 0, 0, 0] }, // sti
      ],
      regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'fall', dataSeed: 7,
    };
    const r = checkProgram(p, { backends: ['native', 'rewrite'] });
    expect(r.rewrite!.map.sites.filter((s) => s.stub === 'inline').length).toBeGreaterThanOrEqual(4);
    expect(r.difference).toBeNull();
    expect(r.runs[1]!.reason).toBe('exit');
  });

  // Found by `ringshift check --random`: LSS was not a site, so at CPL 1 it #GP'd on the guest's
  // RPL-0 stack selector. The far-pointer loads are now sensitive (decoder classes.ts).
  it('LSS of the guest\'s RPL-0 stack selector is a site and runs as natively', { timeout: 60_000 }, () => {
    const p: GuestProgram = {
      items: [{ kind: 'sreg', r: [5, 4, 0, 0, 0, 0x90000] }], // lss eax, [m] with SS = 0x10
      regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'fall', dataSeed: 7,
    };
    const r = checkProgram(p, { backends: ['native', 'rewrite'] });
    expect(r.rewrite!.map.sites.some((s) => mnemonicOf(s.formId) === 'lss')).toBe(true);
    expect(r.difference).toBeNull();
    expect(r.runs[0]!.reason).toBe('exit');
  });

  // Found by `ringshift check --random` with timer interrupts (seed 9000): the rewrite backend
  // took interrupts inside stub plumbing, with a stub address in the frame or before the STI
  // shadow's instruction; an inline STI that did not escape left no shadow; one that found IF
  // already 1 had one. Each program starts with CLI, so that the first STI sets IF.
  const cli = { kind: 'flags', r: [0, 0, 0, 0, 0, 0] } as const;
  const farJmpAfterSti = { kind: 'flags', r: [34024891, 0, 0, 0, 0, 0] } as const; // sti; jmp far
  const stiPopSti = { kind: 'flags', r: [1765684039, 0, 570916915, 0, 0, 0] } as const; // sti; pop eax
  const stiSti = { kind: 'flags', r: [2410438631, 0, 0, 0, 0, 0] } as const; // sti
  const timerProgram = (items: GuestProgram['items'], timerDelay: number): GuestProgram =>
    ({ items, regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'far', dataSeed: 0, timer: 2, timerDelay });
  // Each failed before the fix (native EIP in the frame, then rewrite's): 0x100736 vs 0x1000b5,
  // 0x100736 vs 0xffc01232 (a stub address), 0x100735 vs 0xffc01208.
  const timerPrograms: [string, GuestProgram][] = [
    ['CLI; STI; POP; STI; far JMP, tick pending at the first STI: taken before the second STI', timerProgram([cli, stiPopSti, farJmpAfterSti], 1)],
    ['the same, tick inside the first STI\'s stub: not delivered with a stub address', timerProgram([cli, stiPopSti, farJmpAfterSti], 3)],
    ['CLI; STI; STI; far JMP: the second STI has no shadow', timerProgram([cli, stiSti, farJmpAfterSti], 1)],
  ];
  // Found by the 10,000-program campaign (seeds 200000-200002): under hvm, an IN that exits in an
  // STI shadow left the shadow on for one more instruction; under rewrite, an escaped MOV SS's
  // shadow covered the stub's `jmp resume` instead of the next guest instruction.
  timerPrograms.push(
    ['hvm: CLI; INT3; STI; IN (exits): taken right after the IN', { items: [{ kind: 'flags', r: [0, 0, 0, 0, 0, 0] }, { kind: 'burst', r: [480411205, 0, 1600378152, 0, 0, 0] }], regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'fall', dataSeed: 0, timer: 2, timerDelay: 0 }],
    ['hvm: CLI; STI; IN (exits); INT3: taken before the INT3', { items: [{ kind: 'flags', r: [0, 0, 0, 0, 0, 0] }, { kind: 'burst', r: [0, 0, 2658486178, 0, 0, 0] }, { kind: 'int', r: [0, 0, 0, 0, 0, 0] }], regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'fall', dataSeed: 0, timer: 2, timerDelay: 0 }],
    ['rewrite: MOV SS (escaped) shadows the relocated ADD after it', { items: [{ kind: 'sreg', r: [0, 506256494, 0, 0, 0, 0] }, { kind: 'gp', r: [0, 563958861, 0, 0, 0, 0] }], regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'iret', dataSeed: 0, timer: 2, timerDelay: 1 }],
    // Found by reading: a MOV SS shadow armed while the virtual IF was 0 outlived its instruction
    // and delayed the interrupt a later POPF made deliverable.
    ['rewrite: CLI; MOV SS; ...; POPF (IF = 1): taken right after the POPF', { items: [cli, { kind: 'sreg', r: [0, 4, 0, 0, 0, 0] }, { kind: 'gp', r: [5, 0, 0, 0, 0, 0] }, { kind: 'gp', r: [6, 0, 0, 0, 0, 0] }, { kind: 'flags', r: [3, 0x200, 0, 0, 0, 0] }, { kind: 'gp', r: [7, 0, 0, 0, 0, 0] }, { kind: 'gp', r: [8, 0, 0, 0, 0, 0] }], regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'fall', dataSeed: 0, timer: 2, timerDelay: 4 }],
  );
  it.each(timerPrograms)('timer: %s', { timeout: 60_000 }, (_name, p) => {
    const r = checkProgram(p);
    expect(r.difference, r.difference?.text).toBeNull();
    // The tick was taken (the monitors count it), and the handler logged it.
    expect(r.runs.find((x) => x.backend === 'rewrite')!.externalInterrupts).toBeGreaterThan(0);
    expect(r.runs.find((x) => x.backend === 'hvm')!.externalInterrupts).toBeGreaterThan(0);
  });

  it('the loader maps every relocated instruction of that counterexample to its original address', async () => {
    const { checkRewrittenImage } = await import('@ringshift/runtime');
    const { Decoder, Instruction } = await import('@ringshift/decoder');
    const p: GuestProgram = { items: [{ kind: 'gp', r: [2157898192, 5531747, 0, 0, 0, 0] }], regs: [0, 0, 0, 0, 0, 0, 0], eflags: 0, paging: false, ending: 'fall', dataSeed: 1452908296 };
    const rw = checkRewrittenImage(checkProgram(p, { backends: ['rewrite'] }).rewrite!.image);
    const mapped = new Set([...rw.relocated!.values()].map((q) => q.addr));
    // Independently of the loader's walk: every displaced instruction that is not a site with a stub part.
    const expected: number[] = [];
    const runs = new Map(rw.map.sites.filter((t) => t.tactic !== 'trap').map((t) => [t.patchStart, t]));
    for (const s of runs.values()) {
      const ins = new Instruction();
      for (let x = s.patchStart; x < s.patchStart + s.displaced.length; x += ins.length) {
        new Decoder(32, s.displaced.subarray(x - s.patchStart), x).decodeAt(ins);
        const site = rw.map.sites.find((t) => t.addr === x);
        if (site === undefined || site.stubKind === 'empty') expected.push(x);
      }
    }
    expect(expected.length).toBeGreaterThan(0);
    expect([...mapped].sort((a, b) => a - b)).toEqual(expected.sort((a, b) => a - b));
  });
});
