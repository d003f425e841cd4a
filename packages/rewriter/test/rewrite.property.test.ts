// Property: random instruction streams (assembled with the decoder's Assembler) that contain
// sensitive instructions and branches are rewritten; then, decoding the result independently:
// every site has a record (or, for jumps, a reported skip), the patched bytes are what its
// tactic writes and lead to its stub, every byte outside the overwritten runs and the new
// segment is unchanged, displaced bytes are the original's, the map section decodes to the
// returned map, the output is deterministic, and verifyImage (src/verify.ts) accepts the image.
// Then the host CPU as an independent oracle for --select jumps (below). fast-check with fixed
// seeds; a failure prints the seed and the counterexample. RINGSHIFT_PROPERTY_RUNS=n runs more.
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import type { Label } from '@ringshift/decoder';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { decodePatchMap, readElf, rewriteImage, verifyImage, writeElf32 } from '../src/index';
import type { Tactic } from '../src/index';
import { buildImage, decodeAt, inStubRanges, loadedImage, pickSites, readAt, sweepDiscovery } from './support/image';

type Op =
  | { k: 'plain'; v: number }
  | { k: 'sens'; v: number }
  | { k: 'jmp' | 'jcc' | 'call'; to: number }
  | { k: 'label' };

const PLAIN: ((a: Assembler) => void)[] = [
  (a) => a.asm('mov', reg('eax'), imm(0x12345678)),
  (a) => a.asm('mov', reg('ebx'), reg('ecx')),
  (a) => a.asm('add', reg('edx'), imm(3)),
  (a) => a.asm('push', reg('esi')),
  (a) => a.asm('pop', reg('edi')),
  (a) => a.asm('nop'),
  (a) => a.asm('lea', reg('eax'), mem({ base: 'ebx', disp: 0x40, size: 4 })),
  (a) => a.asm('test', reg('eax'), reg('eax')),
  (a) => a.asm('mov', mem({ base: 'ebp', disp: -8, size: 4 }), reg('eax')),
  (a) => a.asm('inc', reg('ecx')),
  // 150 bytes: pushes branches across it out of rel8 range, so rel32 forms (B1 jumps) occur too.
  (a) => { for (let i = 0; i < 30; i++) a.asm('mov', reg('eax'), imm(i)); },
];
const SENSITIVE: ((a: Assembler) => void)[] = [
  (a) => a.asm('cli'),
  (a) => a.asm('sti'),
  (a) => a.asm('pushfd'),
  (a) => a.asm('popfd'),
  (a) => a.asm('hlt'),
  (a) => a.asm('sgdt', mem({ disp: 0x3000, size: 'Fword6' as never })),
  (a) => a.asm('sldt', mem({ base: 'eax', size: 2 })),
  (a) => a.asm('mov', reg('ss'), reg('ax')),
  (a) => a.asm('mov', reg('ax'), reg('cs')),
  (a) => a.asm('in', reg('al'), reg('dx')),
  (a) => a.asm('out', reg('dx'), reg('al')),
  (a) => a.asm('int', imm(0x80)),
  (a) => a.asm('mov', reg('eax'), reg('cr0')),
  (a) => a.asm('smsw', reg('ax')),
  (a) => a.asm('push', reg('ds')),
  (a) => a.asm('lgdt', mem({ disp: 0x3000, size: 'Fword6' as never })),
];

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: PLAIN.length - 1 }).map((v) => ({ k: 'plain' as const, v })) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: SENSITIVE.length - 1 }).map((v) => ({ k: 'sens' as const, v })) },
  { weight: 1, arbitrary: fc.constantFrom('jmp' as const, 'jcc' as const, 'call' as const).chain((k) => fc.nat(40).map((to) => ({ k, to }))) },
  { weight: 1, arbitrary: fc.constant({ k: 'label' as const }) },
);

function assemble(ops: readonly Op[]) {
  return (a: Assembler) => {
    const labels: Label[] = [];
    for (let i = 0; i < ops.length; i++) if (ops[i]!.k === 'label') labels.push(a.label(`L${i}`));
    const end = a.label('end');
    let li = 0;
    for (const op of ops) {
      if (op.k === 'label') a.bind(labels[li++]!);
      else if (op.k === 'plain') PLAIN[op.v]!(a);
      else if (op.k === 'sens') SENSITIVE[op.v]!(a);
      else {
        const t = labels.length ? labels[op.to % labels.length]! : end;
        if (op.k === 'jmp') a.jmp(t);
        else if (op.k === 'jcc') a.jcc('ne', t);
        else a.call(t);
      }
    }
    a.bind(end);
    a.asm('ret');
  };
}

const zero = (): Record<Tactic, number> => ({ B1: 0, B2: 0, T1: 0, T2e: 0, T3e: 0, T2: 0, T3: 0, trap: 0 });
const seen = { sensitive: zero(), jumps: zero() };

function check(ops: readonly Op[], kernel: boolean, mode: 'sensitive' | 'jumps'): void {
  const original = buildImage(assemble(ops), { kernel });
  const orig = readElf(original);
  const { discovery } = sweepDiscovery(original, orig.symbols.map((s) => s.value));
  const sites = pickSites(original, discovery, mode);
  const r = rewriteImage(original, { select: mode, discovery, sites });
  const elf = loadedImage(r.image);

  // Every site is accounted for: a record, or (jumps) a skip.
  const recorded = new Set(r.map.sites.map((s) => s.addr));
  const skipped = new Set(r.report.misses.filter((m) => m.outcome === 'skipped').map((m) => m.addr));
  for (const s of sites) expect(recorded.has(s.addr) || skipped.has(s.addr), `site 0x${s.addr.toString(16)}`).toBe(true);
  expect(Object.values(r.report.tactics).reduce((x, y) => x + y, 0)).toBe(r.map.sites.filter((s) => s.reason !== 'evicted').length);

  const inStubs = (t: number) => inStubRanges(r.map, t);
  const overwritten = new Set<number>();
  for (const s of r.map.sites) {
    expect([...s.original]).toEqual([...readAt(orig, s.addr, s.original.length)]);
    expect([...s.displaced]).toEqual([...readAt(orig, s.patchStart, s.displaced.length)]);
    for (let a = s.patchStart; a < s.patchStart + s.displaced.length; a++) overwritten.add(a);
    if (s.tactic === 'trap') {
      const now = readAt(elf, s.addr, s.original.length);
      if (s.displaced.length === 0) expect([...now]).toEqual([...s.original]);
      else expect(now[0]).toBe(0xcc);
      continue;
    }
    expect(s.resume).toBe(s.patchStart + s.displaced.length);
    const j = decodeAt(elf, s.addr);
    if (s.tactic === 'T3') {
      expect(j.target).toBe(s.patchStart + 5);
      expect(decodeAt(elf, s.patchStart + 5).target).toBe(s.stubAddr);
      expect(inStubs(decodeAt(elf, s.patchStart).target)).toBe(true);
    } else if (s.tactic === 'T3e') {
      // jmp rel8 into an evicted neighbour's freed bytes, which hold the jmp to the site's stub.
      const host = r.map.sites.find((x) => x.reason === 'evicted' && j.target >= x.addr + 5 && j.target < x.addr + x.original.length);
      expect(host).toBeDefined();
      expect(decodeAt(elf, j.target).target).toBe(s.stubAddr);
    } else if (s.addr === s.patchStart) {
      // B1/B2/T1/T2: the head of the run jumps to the head site's stub.
      expect(inStubs(j.target)).toBe(true);
      const head = r.map.sites.find((x) => x.patchStart === s.patchStart && x.addr === s.patchStart)!;
      expect(j.target).toBe(head.stubAddr);
    }
    expect(inStubs(s.stubAddr)).toBe(true);
    if (s.escapeAddr) expect([...readAt(elf, s.escapeAddr, 2)]).toEqual([0xcd, 0x81]);
  }
  // Every byte outside the overwritten runs is unchanged, in every original segment.
  for (const seg of orig.segments.filter((g) => g.type === 'load')) {
    const now = elf.segments.find((g) => g.type === 'load' && g.vaddr === seg.vaddr)!;
    expect([now.paddr, now.memsz, now.flags]).toEqual([seg.paddr, seg.memsz, seg.flags]);
    for (let i = 0; i < seg.bytes.length; i++) {
      if (!overwritten.has(seg.vaddr + i) && now.bytes[i] !== seg.bytes[i]) {
        expect.fail(`byte 0x${(seg.vaddr + i).toString(16)} changed outside every patched run`);
      }
    }
  }
  const sec = elf.sections.find((s) => s.name === '.ringshift.patchmap')!;
  expect(decodePatchMap(sec.bytes)).toEqual(r.map);
  const again = rewriteImage(original, { select: mode, discovery, sites });
  expect(Buffer.from(again.image).equals(Buffer.from(r.image))).toBe(true);
  for (const rec of r.map.sites) seen[mode][rec.tactic]++;
  const v = verifyImage(r.image, original);
  expect(v.violations.map((x) => `${x.kind}: ${x.message}`)).toEqual([]);
}

describe('rewriteImage on random instruction streams', () => {
  for (const [kernel, mode, seed] of [[true, 'sensitive', 0x51735], [false, 'jumps', 0x7a3b5], [false, 'sensitive', 0x2c0de]] as const) {
    it(`${kernel ? 'multiboot kernel' : 'user executable'}, --select ${mode} (seed ${seed})`, () => {
      const r = fc.check(fc.property(fc.array(arbOp, { minLength: 1, maxLength: 60, size: 'medium' }), (ops) => check(ops, kernel, mode)), { seed, numRuns: Number(process.env.RINGSHIFT_PROPERTY_RUNS ?? 100) });
      if (r.failed) {
        throw new Error(`seed ${seed}, counterexample ${JSON.stringify(r.counterexample)}:\n${String(r.errorInstance)}`);
      }
    }, 120_000);
  }
  it('exercised the tactics (the generator is not vacuous)', () => {
    for (const t of ['B1', 'T2', 'T3', 'trap'] as const) expect(seen.sensitive[t], t).toBeGreaterThan(0);
    for (const t of ['B1', 'T2'] as const) expect(seen.jumps[t], t).toBeGreaterThan(0);
    console.log('tactics seen:', JSON.stringify(seen));
  });
});

// The host CPU as the oracle for --select jumps: random straight-line register code with forward
// JMP/Jcc (so it always terminates), run natively before and after rewriting; the registers it
// prints at the end must be the same.
const CCS = ['e', 'ne', 'b', 'ae', 'l', 'ge', 'le', 'g', 's', 'ns', 'o', 'no', 'p', 'np', 'be', 'a'];
const REGS = ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp'];
type HostOp = { k: 'op'; v: number; r: number; s: number; i: number } | { k: 'jmp' | 'jcc'; cc: number; to: number } | { k: 'label' };
const arbHostOp: fc.Arbitrary<HostOp> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ k: fc.constant('op' as const), v: fc.nat(7), r: fc.nat(6), s: fc.nat(6), i: fc.integer({ min: -300, max: 300 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constantFrom('jmp' as const, 'jcc' as const), cc: fc.nat(15), to: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'label' as const }) },
);

function hostProgram(ops: readonly HostOp[]): Uint8Array {
  const TEXT = 0x08049000;
  const a = new Assembler(32, TEXT);
  a.here('_start');
  const labels = ops.map((o, i) => (o.k === 'label' ? a.label(`L${i}`) : undefined));
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i]!;
    if (o.k === 'label') {
      a.bind(labels[i]!);
      continue;
    }
    if (o.k === 'jmp' || o.k === 'jcc') {
      // Forward only: the first label at least `to` ops later, else the end.
      const later = labels.slice(i + 1 + (o.to % 8)).find((l) => l) ?? labels.slice(i + 1).find((l) => l);
      if (!later) continue;
      if (o.k === 'jmp') a.jmp(later);
      else a.jcc(CCS[o.cc]!, later);
      continue;
    }
    if (o.k !== 'op') continue;
    const r = reg(REGS[o.r]!), s = reg(REGS[o.s]!);
    switch (o.v) {
      case 0: a.asm('mov', r, imm(o.i)); break;
      case 1: a.asm('add', r, s); break;
      case 2: a.asm('xor', r, s); break;
      case 3: a.asm('sub', r, imm(o.i)); break;
      case 4: a.asm('cmp', r, s); break;
      case 5: a.asm('inc', r); break;
      case 6: a.asm('shl', r, imm(o.i & 31)); break;
      default: a.asm('push', r); a.asm('pop', s); break;
    }
  }
  for (let i = REGS.length - 1; i >= 0; i--) a.asm('push', reg(REGS[i]!));
  a.asm('mov', reg('ecx'), reg('esp'));
  a.asm('mov', reg('edx'), imm(REGS.length * 4));
  a.asm('mov', reg('ebx'), imm(1));
  a.asm('mov', reg('eax'), imm(4));
  a.asm('int', imm(0x80));
  a.asm('xor', reg('ebx'), reg('ebx'));
  a.asm('mov', reg('eax'), imm(1));
  a.asm('int', imm(0x80));
  const { bytes, labels: named } = a.assemble();
  return writeElf32({
    type: 'exec', machine: 'i386', entry: named.get('_start')!, stack: 'rw',
    segments: [{ vaddr: TEXT, flags: 'rx', bytes }],
    sections: [{ name: '.text', addr: TEXT, size: bytes.length }],
    symbols: [{ name: '_start', value: TEXT, type: 'func' }],
  });
}

const hostDir = mkdtempSync(join(tmpdir(), 'ringshift-rewrite-host-'));
afterAll(() => rmSync(hostDir, { recursive: true, force: true }));
let serial = 0;
function runHost(bytes: Uint8Array): string {
  const file = join(hostDir, `p${serial++}`);
  writeFileSync(file, bytes);
  chmodSync(file, 0o755);
  const r = spawnSync(file, [], { timeout: 10_000 });
  return `${r.status}/${r.signal}/${r.stdout?.toString('hex')}`;
}
const hostOk = process.platform === 'linux' && process.arch === 'x64' && (() => {
  try {
    return runHost(hostProgram([])).startsWith('0/null/');
  } catch {
    return false;
  }
})();

describe('--select jumps against the host CPU', () => {
  it.runIf(hostOk)('random forward-branching programs print the same registers after rewriting (seed 0x40570)', () => {
    let patched = 0;
    const r = fc.check(fc.property(fc.array(arbHostOp, { minLength: 10, maxLength: 80, size: 'max' }), (ops) => {
      const original = hostProgram(ops);
      const out = rewriteImage(original, { select: 'jumps' });
      patched += out.report.patched;
      if (process.env.DEBUG_HOST) for (const m of out.report.misses) console.log(m.text, m.tried.map((t) => `${t.tactic}: ${t.why}`).join(' | '));
      expect(runHost(out.image)).toBe(runHost(original));
    }), { seed: 0x40570, numRuns: Number(process.env.RINGSHIFT_PROPERTY_RUNS ?? 60) });
    if (r.failed) throw new Error(`seed 0x40570, counterexample ${JSON.stringify(r.counterexample)}:\n${String(r.errorInstance)}`);
    console.log(`host oracle: ${patched} jumps patched`);
    expect(patched).toBeGreaterThan(30);
  }, 300_000);
});
