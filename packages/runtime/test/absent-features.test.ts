// Features this CPU does not have (src/cpu/absent-features.ts), the hint NOPs it executes
// (ops/hint-nops.ts), the trapping base instructions (ops/trapping.ts) and CPUID's report of all
// that. Oracles: iced-x86's CPUID feature of every form (independent of our table), a hand-written
// list of what CPUID reports, and the SDM's rules (vol. 3A §2.5 table 2-2 for EM/MP/TS; each
// instruction page's #UD "If CPUID.xx = 0").
import { Assembler, FORMS, mem, reg } from '@ringshift/decoder';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ABSENT_FEATURES, Vector, buildHandlers, type Cpu, type CpuidBit } from '../src/index';
import { ABSENT_RULE_HANDLERS } from '../src/cpu/absent-features';
import { cpuidLeaf } from '../src/cpu/ops/system';
import { catchExceptions, enterRing3, loadTss, runOn, systemCpu } from './support/descriptors';

const require = createRequire(import.meta.url);
const iced = require('iced-x86') as {
  Code: Record<string, number>;
  CpuidFeature: Record<string, number | string>;
  Instruction: { create(code: number): { cpuidFeatures(): Int32Array; free(): void } };
};
const FEATURE_NAME: Record<number, string> = Object.fromEntries(
  Object.entries(iced.CpuidFeature).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k]),
);
function icedFeatures(name: string): string[] {
  const i = iced.Instruction.create(iced.Code[name]!);
  const out = [...i.cpuidFeatures()].map((x) => FEATURE_NAME[x]!);
  i.free();
  return out;
}

const HANDLERS = buildHandlers();
const RULE_HANDLERS = new Set<unknown>(Object.values(ABSENT_RULE_HANDLERS));
const in1632 = (f: (typeof FORMS)[number]): boolean => !f.modes || f.modes.includes(32) || f.modes.includes(16);
const rowsOf = (name: string) => ABSENT_FEATURES.filter((r) => r.forms.some((p) => p.test(name)));

describe('every form of 16/32-bit mode is implemented or absent by one named feature', () => {
  it('each form has a real handler, or exactly one absent-feature row and that row\'s rule as handler', () => {
    const problems: string[] = [];
    let absent = 0;
    for (const f of FORMS.filter(in1632)) {
      const rows = rowsOf(f.name);
      const h = HANDLERS[f.id];
      if (rows.length > 1) problems.push(`${f.name}: ${rows.length} rows (${rows.map((r) => r.feature).join(', ')})`);
      else if (rows.length === 1) {
        absent++;
        if (h !== ABSENT_RULE_HANDLERS[rows[0]!.rule]) problems.push(`${f.name}: covered by "${rows[0]!.feature}" but has a real handler`);
      } else if (h === undefined || RULE_HANDLERS.has(h)) problems.push(`${f.name}: no handler and no absent-feature row`);
    }
    expect(problems).toEqual([]);
    expect(absent).toBeGreaterThan(3000); // x87, MMX, SSE*, and the VEX/EVEX/XOP spaces
  });

  it('each row covers at least one form, and the forms it covers are of its feature (iced-x86 CpuidFeature, or its encoding)', () => {
    const problems: string[] = [];
    for (const row of ABSENT_FEATURES) {
      const covered = FORMS.filter((f) => in1632(f) && row.forms.some((p) => p.test(f.name)));
      if (covered.length === 0) problems.push(`${row.feature}: covers nothing`);
      for (const f of covered) {
        if (row.encoding !== undefined) {
          if (f.enc !== row.encoding) problems.push(`${row.feature}: ${f.name} is ${f.enc}`);
        } else if (!icedFeatures(f.name).some((x) => row.iced.includes(x))) {
          problems.push(`${row.feature}: ${f.name} is ${icedFeatures(f.name).join('+')}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('every legacy form with a real handler belongs to the base architecture or to a feature CPUID reports (or is a hint NOP)', () => {
    const BASE = ['INTEL8086', 'INTEL8086_ONLY', 'INTEL186', 'INTEL286', 'INTEL386', 'INTEL486', 'CPUID'];
    const REPORTED = ['TSC', 'MSR', 'CX8', 'SEP', 'CMOV', 'MOVBE', 'POPCNT', 'ADX', 'LZCNT'];
    // Executed as NOPs by a P6 (ops/hint-nops.ts), or trapping by design (ops/trapping.ts).
    const HINTS = ['PAUSE', 'MULTIBYTENOP', 'PREFETCHW', 'PREFETCHWT1', 'CLDEMOTE', 'CET_IBT', 'PREFETCHITI', 'WBNOINVD', 'RDPMC', 'SMM'];
    // SSE's PREFETCHh and CET's RDSSPD lie in the hint-NOP space; TZCNT is implemented without BMI1
    // being reported (ops/system.ts: BMI1 also promises VEX forms) — a known departure: a real
    // processor without BMI1 runs F3 0F BC as BSF.
    const DEPARTURES = new Set(['Prefetchnta_m8', 'Prefetcht0_m8', 'Prefetcht1_m8', 'Prefetcht2_m8', 'Rdsspd_r32', 'Tzcnt_r16_rm16', 'Tzcnt_r32_rm32']);
    const allowed = new Set([...BASE, ...REPORTED, ...HINTS]);
    const problems: string[] = [];
    for (const f of FORMS) {
      if (f.enc !== 'legacy' || !in1632(f) || rowsOf(f.name).length > 0 || DEPARTURES.has(f.name)) continue;
      const fs = icedFeatures(f.name);
      if (!fs.every((x) => allowed.has(x))) problems.push(`${f.name}: ${fs.join('+')}`);
    }
    expect(problems).toEqual([]);
  });
});

const L1 = (reg: CpuidBit['reg'], bit: number): CpuidBit => ({ leaf: 1, reg, bit });
const L7 = (reg: CpuidBit['reg'], bit: number): CpuidBit => ({ leaf: 7, subleaf: 0, reg, bit });
const X1 = (reg: CpuidBit['reg'], bit: number): CpuidBit => ({ leaf: 0x80000001, reg, bit });
/** What CPUID reports, written out by hand with the forms each bit promises (SDM vol. 2 CPUID tables 3-8, 3-10; AMD CPUID spec). */
const REPORTED: readonly { name: string; bit: CpuidBit; forms: RegExp | null }[] = [
  { name: 'PSE', bit: L1('edx', 3), forms: null },
  { name: 'TSC', bit: L1('edx', 4), forms: /^Rdtsc$/ },
  { name: 'MSR', bit: L1('edx', 5), forms: /^(Rdmsr|Wrmsr)$/ },
  { name: 'PAE', bit: L1('edx', 6), forms: null },
  { name: 'CX8', bit: L1('edx', 8), forms: /^Cmpxchg8b_m64$/ },
  { name: 'SEP', bit: L1('edx', 11), forms: /^(Sysenter|Sysexitd)$/ },
  { name: 'PGE', bit: L1('edx', 13), forms: null },
  { name: 'CMOV', bit: L1('edx', 15), forms: /^Cmov[a-z]+_r(16|32)_rm(16|32)$/ },
  { name: 'MOVBE', bit: L1('ecx', 22), forms: /^Movbe_(r16|r32|m16|m32)_/ },
  { name: 'POPCNT', bit: L1('ecx', 23), forms: /^Popcnt_r(16|32)_/ },
  { name: 'ADX', bit: L7('ebx', 19), forms: /^Ad[co]x_r32_/ },
  { name: 'LZCNT', bit: X1('ecx', 5), forms: /^Lzcnt_r(16|32)_/ },
  { name: 'NX', bit: X1('edx', 20), forms: null },
];
const REGS = ['eax', 'ebx', 'ecx', 'edx'] as const;
const LEAVES: readonly [number, number][] = [[1, 0], [7, 0], [0x80000001, 0]];
const isSet = (b: CpuidBit): boolean => ((cpuidLeaf(b.leaf, b.subleaf ?? 0)[REGS.indexOf(b.reg)]! >>> b.bit) & 1) === 1;

describe('CPUID reports exactly the implemented features', () => {
  it('the feature bits of leaves 1, 7.0 and 8000_0001h are exactly the hand-written list', () => {
    for (const [leaf, sub] of LEAVES) {
      const got = cpuidLeaf(leaf, sub);
      for (const r of (leaf === 1 ? ['ecx', 'edx'] : ['eax', 'ebx', 'ecx', 'edx']) as CpuidBit['reg'][]) {
        const want = REPORTED.filter((f) => f.bit.leaf === leaf && f.bit.reg === r).reduce((m, f) => m | (1 << f.bit.bit), 0);
        // Leaf 7.0 EAX is the highest subleaf (0); leaf 8000_0001h EAX/EBX carry no features here.
        expect(got[REGS.indexOf(r)]! >>> 0, `leaf ${leaf.toString(16)} ${r}`).toBe(want >>> 0);
      }
    }
  });

  it('every reported feature\'s instructions have real handlers', () => {
    for (const f of REPORTED) {
      if (!f.forms) continue;
      const forms = FORMS.filter((x) => x.enc === 'legacy' && in1632(x) && f.forms!.test(x.name));
      expect(forms.length, f.name).toBeGreaterThan(0);
      for (const x of forms) expect(HANDLERS[x.id] !== undefined && !RULE_HANDLERS.has(HANDLERS[x.id]), x.name).toBe(true);
    }
  });

  it('no absent feature\'s CPUID bit is reported (FPU, MMX, SSE*, FXSR, CLFSH, AVX, ...)', () => {
    const reported = ABSENT_FEATURES.flatMap((r) => r.cpuid.filter(isSet).map((b) => `${r.feature}: leaf ${b.leaf.toString(16)} ${b.reg}[${b.bit}]`));
    expect(reported).toEqual([]);
    expect(isSet(L1('edx', 0)), 'CPUID.1:EDX.FPU').toBe(false);
  });

  it('family 6 (P6: NOP r/m and the hint-NOP space), and EDX after reset holds the same signature (SDM vol. 3A §9.1.4)', () => {
    const [eax] = cpuidLeaf(1);
    expect((eax! >>> 8) & 0xf).toBe(6);
    const cpu = systemCpu();
    cpu.reset();
    expect(cpu.regs[2]).toBe(eax);
  });
});

const CR0_MP = 2, CR0_EM = 4, CR0_TS = 8;
const PROBE = 0x200000;

/** Runs `bytes` (then HLT) at CPL 0 with CR0's MP/EM/TS from `cr0`; returns the CPU (EDI = vector, or -1). */
function run(bytes: readonly number[], cr0 = 0, setup?: (cpu: Cpu) => void): Cpu {
  const cpu = systemCpu();
  catchExceptions(cpu);
  cpu.cr0 = (cpu.cr0 & ~0xe) | cr0;
  setup?.(cpu);
  runOn(cpu, (a: Assembler) => a.bytes(bytes));
  return cpu;
}

const FNINIT = [0xdb, 0xe3];
const FNSTSW_PROBE = [0xdd, 0x3d, ...le32(PROBE)]; // fnstsw [PROBE]
const FNSTSW_AX = [0xdf, 0xe0];
const FLD_FAR = [0xd9, 0x05, 0x00, 0xff, 0xff, 0xff]; // fld dword [FFFFFF00h]: past RAM
const WAIT = [0x9b];
function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}

describe('x87 without an FPU (SDM vol. 3A §2.5 table 2-2, §9.2.1)', () => {
  it('the presence probe (FNINIT; FNSTSW [w], w = 5A5Ah) finds no FPU: w unchanged, no exception', () => {
    const cpu = run([...FNINIT, ...FNSTSW_PROBE], 0, (c) => c.mem.write16(PROBE, 0x5a5a));
    expect(cpu.regs[7], 'no exception').toBe(-1);
    expect(cpu.mem.read16(PROBE)).toBe(0x5a5a);
  });

  it('with EM = 0 and TS = 0 an x87 instruction changes no register and accesses no memory', () => {
    const cpu = run([...FNSTSW_AX, ...FLD_FAR], 0, (c) => { c.regs[0] = 0x12345678; });
    expect(cpu.regs[7]).toBe(-1);
    expect(cpu.regs[0]! >>> 0).toBe(0x12345678);
  });

  // Table 2-2: x87 instructions fault #NM when EM or TS is set; WAIT/FWAIT only when MP and TS are.
  for (let bits = 0; bits < 8; bits++) {
    const em = (bits & 4) !== 0, mp = (bits & 2) !== 0, ts = (bits & 1) !== 0;
    const cr0 = (em ? CR0_EM : 0) | (mp ? CR0_MP : 0) | (ts ? CR0_TS : 0);
    it(`EM=${+em} MP=${+mp} TS=${+ts}: FNINIT ${em || ts ? '#NM' : 'no effect'}, WAIT ${mp && ts ? '#NM' : 'no effect'}`, () => {
      const x87 = run(FNINIT, cr0);
      expect(x87.regs[7]).toBe(em || ts ? Vector.NM : -1);
      // #NM is a fault: the return address pushed is the x87 instruction's own.
      if (em || ts) expect(x87.mem.read32(x87.regs[4]! >>> 0)).toBe(0x100000);
      const wait = run(WAIT, cr0);
      expect(wait.regs[7]).toBe(mp && ts ? Vector.NM : -1);
      // FINIT (9B DB E3) as one form: #NM whenever EM or TS, like FNINIT.
      const finit = run([0x9b, ...FNINIT], cr0);
      expect(finit.regs[7]).toBe(em || ts ? Vector.NM : -1);
    });
  }
});

describe('absent instruction-set extensions raise #UD, not #NM (each page\'s "#UD If CPUID.xx = 0"; vol. 3A §13.1)', () => {
  const cases: [string, number[]][] = [
    ['XORPS xmm0, xmm0 (SSE)', [0x0f, 0x57, 0xc0]],
    ['PXOR mm0, mm0 (MMX)', [0x0f, 0xef, 0xc0]],
    ['EMMS (MMX)', [0x0f, 0x77]],
    ['CRC32 eax, cl (SSE4.2)', [0xf2, 0x0f, 0x38, 0xf0, 0xc1]],
    ['LFENCE (SSE2)', [0x0f, 0xae, 0xe8]],
    ['SFENCE (SSE)', [0x0f, 0xae, 0xf8]],
    ['MOVNTI [PROBE], eax (SSE2)', [0x0f, 0xc3, 0x05, ...le32(PROBE)]],
    ['CLFLUSH [PROBE]', [0x0f, 0xae, 0x3d, ...le32(PROBE)]],
    ['FXSAVE [PROBE]', [0x0f, 0xae, 0x05, ...le32(PROBE)]],
    ['RDRAND eax', [0x0f, 0xc7, 0xf0]],
    ['XGETBV (XSAVE)', [0x0f, 0x01, 0xd0]],
    ['VZEROUPPER (VEX C5 F8 77)', [0xc5, 0xf8, 0x77]],
    ['SYSCALL', [0x0f, 0x05]],
    ['RDTSCP', [0x0f, 0x01, 0xf9]],
  ];
  for (const [name, bytes] of cases) {
    it(`${name}: #UD with CR0.TS = 0 or 1 and EM = 0 or 1; memory untouched`, () => {
      for (const cr0 of [0, CR0_TS, CR0_EM | CR0_TS | CR0_MP]) {
        const cpu = run(bytes, cr0, (c) => c.mem.write32(PROBE, 0x5a5a5a5a));
        expect(cpu.regs[7], `CR0 bits ${cr0}`).toBe(Vector.UD);
        expect(cpu.mem.read32(PROBE)).toBe(0x5a5a5a5a);
      }
    });
  }
});

describe('hint NOPs of a P6 (SDM vol. 2 NOP, PAUSE, PREFETCHh; opcode map "0F 0D", "0F 18-1F")', () => {
  const cases: [string, number[]][] = [
    ['PAUSE', [0xf3, 0x90]],
    ['NOP dword [FFFFFF00h] (0F 1F /0: no access, so no fault)', [0x0f, 0x1f, 0x05, 0x00, 0xff, 0xff, 0xff]],
    ['the 9-byte NOP gcc pads with (66 0F 1F 84 00 00000000)', [0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00]],
    ['PREFETCHNTA [FFFFFF00h]', [0x0f, 0x18, 0x05, 0x00, 0xff, 0xff, 0xff]],
    ['PREFETCHW [FFFFFF00h] (0F 0D /1)', [0x0f, 0x0d, 0x0d, 0x00, 0xff, 0xff, 0xff]],
    ['0F 0D with a register operand (reserved NOP on Intel)', [0x0f, 0x0d, 0xc0]],
    ['0F 19 /r (reserved NOP)', [0x0f, 0x19, 0xc8]],
    ['ENDBR32 (F3 0F 1E FB)', [0xf3, 0x0f, 0x1e, 0xfb]],
    ['ENDBR64 (F3 0F 1E FA)', [0xf3, 0x0f, 0x1e, 0xfa]],
    ['RDSSPD eax (F3 0F 1E C8: NOP without CET)', [0xf3, 0x0f, 0x1e, 0xc8]],
    ['CLDEMOTE [FFFFFF00h] (0F 1C /0)', [0x0f, 0x1c, 0x05, 0x00, 0xff, 0xff, 0xff]],
  ];
  for (const [name, bytes] of cases) {
    it(`${name} retires with no effect`, () => {
      const cpu = run(bytes, 0, (c) => { c.regs[0] = 0x600dcafe; c.segLimit[3] = 0xfffff; });
      expect(cpu.regs[7], 'no exception').toBe(-1);
      expect(cpu.regs[0]! >>> 0).toBe(0x600dcafe);
      expect(cpu.eip >>> 0, 'stopped at the HLT after it').toBe(0x100000 + bytes.length + 1);
    });
  }

  it('WBNOINVD (F3 0F 09) is WBINVD on a processor without it: fine at CPL 0, #GP(0) at CPL 3', () => {
    expect(run([0xf3, 0x0f, 0x09]).regs[7]).toBe(-1);
    const cpu = systemCpu();
    catchExceptions(cpu);
    loadTss(cpu);
    enterRing3(cpu);
    runOn(cpu, (a) => a.bytes([0xf3, 0x0f, 0x09]));
    expect([cpu.regs[7], cpu.regs[6]]).toEqual([Vector.GP, 0]);
  });
});

describe('base instructions that trap', () => {
  it('BOUND: an index inside [lower, upper] passes; below or above is #BR (SDM vol. 2 BOUND), signed', () => {
    const bound = (index: number): number => {
      const cpu = run([], 0, (c) => {
        c.mem.write32(PROBE, -5);
        c.mem.write32(PROBE + 4, 7);
      });
      cpu.regs[7] = -1;
      cpu.regs[0] = index;
      runOn(cpu, (a) => a.asm('bound', reg('eax'), mem({ disp: PROBE, size: 8 })));
      return cpu.regs[7]!;
    };
    expect(bound(-5)).toBe(-1);
    expect(bound(7)).toBe(-1);
    expect(bound(-6)).toBe(Vector.BR);
    expect(bound(8)).toBe(Vector.BR);
  });

  it('INT1 delivers #DB with the return address after it; UD0, UD1, UD2 and RSM are #UD; RDPMC is #GP(0) (no counters)', () => {
    const int1 = run([0xf1]);
    expect(int1.regs[7]).toBe(Vector.DB);
    expect(int1.mem.read32(int1.regs[4]! >>> 0), 'pushed EIP').toBe(0x100001);
    for (const bytes of [[0x0f, 0xff, 0xc0], [0x0f, 0xb9, 0xc0], [0x0f, 0x0b], [0x0f, 0xaa]]) expect(run(bytes).regs[7]).toBe(Vector.UD);
    const rdpmc = run([0x0f, 0x33], 0, (c) => { c.regs[1] = 0; });
    expect([rdpmc.regs[7], rdpmc.regs[6]]).toEqual([Vector.GP, 0]);
  });
});

