// The plan: tactic order, restriction, miss reasons, and the refusals that keep T2/T3 off bytes
// that something may jump to (known targets, conflicts, code after a jump, sweep-only code).
import type { Assembler } from '@ringshift/decoder';
import { imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { Evidence, TACTIC_ORDER, readElf, rewriteImage } from '../src/index';
import type { Discovery, Tactic } from '../src/index';
import { buildImage, pickSites, sweepDiscovery } from './support/image';

function plan(body: (a: Assembler) => void, opts: { targets?: string[]; tactics?: Tactic[]; edit?: (d: Discovery, labels: Map<string, number>) => Discovery } = {}) {
  const original = buildImage(body);
  const labels = new Map(readElf(original).symbols.map((s) => [s.name, s.value]));
  let { discovery } = sweepDiscovery(original, (opts.targets ?? []).map((n) => labels.get(n)!));
  if (opts.edit) discovery = opts.edit(discovery, labels);
  const sites = pickSites(original, discovery);
  const r = rewriteImage(original, { discovery, sites, ...(opts.tactics ? { tactics: opts.tactics } : {}) });
  return { r, labels, at: (name: string) => r.map.sites.find((s) => s.addr === labels.get(name))!, miss: (name: string) => r.report.misses.find((m) => m.addr === labels.get(name))! };
}

describe('tactic order', () => {
  it("is E9Patch's: B1, B2, T1, T2 (as T2e), then the relocating T2 and T3 (trap last)", () => {
    expect(TACTIC_ORDER.map((t) => t.tactic)).toEqual(['B1', 'B2', 'T1', 'T2e', 'T3e', 'T2', 'T3']);
  });

  it('a restricted plan tries only the given tactics and says why each failed', () => {
    const p = plan((a) => {
      a.here('s');
      a.asm('cli');
      a.asm('mov', reg('eax'), imm(1));
      a.asm('ret');
    }, { tactics: ['B1', 'T3'] });
    expect(p.at('s').tactic).toBe('trap');
    const m = p.miss('s');
    expect(m.tried.map((t) => t.tactic)).toEqual(['B1', 'T3']);
    expect(m.tried[0]!.why).toMatch(/1 bytes, a jmp rel32 needs 5/);
    expect(m.tried[1]!.why).toMatch(/1 byte: no room for jmp rel8/);
    expect(m.outcome).toBe('trap');
    // Unrestricted, T2 takes it.
    expect(plan((a) => { a.here('s'); a.asm('cli'); a.asm('mov', reg('eax'), imm(1)); a.asm('ret'); }).at('s').tactic).toBe('T2');
  });
});

describe('refusals that protect jump targets', () => {
  it('T2 refuses a run with a conflict (a jump into the middle of an instruction)', () => {
    const p = plan((a) => {
      a.here('s');
      a.asm('pushfd');
      a.here('m');
      a.asm('mov', reg('eax'), imm(0x01020304));
      a.asm('ret');
    }, { edit: (d, l) => ({ ...d, conflicts: [{ addr: l.get('m')! + 2, reason: 'branch into an instruction' }] }) });
    expect(p.at('s').tactic).toBe('trap');
    expect(p.miss('s').tried.find((t) => t.tactic === 'T2')!.why).toMatch(/inside the bytes to overwrite is a jump target/);
  });

  it('B1 refuses a site with a known jump into its middle', () => {
    const p = plan((a) => {
      a.here('s');
      a.asm('sgdt', mem({ disp: 0x3000, size: 'Fword6' as never }));
      a.asm('ret');
    }, { edit: (d, l) => ({ ...d, jumpTargets: new Set([...d.jumpTargets, l.get('s')! + 1]) }) });
    expect(p.miss('s').tried[0]!.why).toMatch(/jump target/);
  });

  it('T2 does not evict an instruction after an unconditional jump, but may evict padding there', () => {
    const hidden = plan((a) => {
      const l = a.label('x');
      a.here('s');
      a.asm('cli');
      a.jmp(l);
      a.asm('mov', reg('eax'), imm(1));
      a.bind(l);
      a.asm('ret');
    });
    expect(hidden.miss('s').tried.find((t) => t.tactic === 'T2')!.why).toMatch(/follows an unconditional transfer/);
    const padding = plan((a) => {
      const l = a.label('x');
      a.here('s');
      a.asm('cli');
      a.jmp(l);
      a.asm('nop');
      a.asm('nop');
      a.bind(l);
      a.asm('ret');
    });
    expect(padding.at('s').tactic).toBe('T2');
  });

  it('T2 does not evict code that only the linear sweep found', () => {
    const p = plan((a) => {
      a.here('s');
      a.asm('cli');
      a.here('n');
      a.asm('mov', reg('eax'), imm(1));
      a.asm('ret');
    }, {
      edit: (d, l) => ({ ...d, instructions: d.instructions.map((i) => (i.addr === l.get('n') ? { ...i, evidence: Evidence.sweep } : i)) }),
    });
    expect(p.miss('s').tried.find((t) => t.tactic === 'T2')!.why).toMatch(/only by the linear sweep/);
  });

  it('an INT n (reveals its next address) is not extended by T2 but may use T2e (its successor evicted) or T3', () => {
    const p = plan((a) => {
      a.asm('mov', reg('ecx'), imm(1));
      a.asm('mov', reg('edx'), imm(2));
      a.here('s');
      a.asm('int', imm(0x80));
      a.asm('mov', reg('eax'), imm(1));
      a.asm('ret');
    });
    const s = p.at('s');
    expect(s.tactic).toBe('T2e');
    expect(s.resume).toBe(p.labels.get('s')! + 2);
    expect(p.r.report.misses.length).toBe(0);
    // T2e out of the way, T3 takes it: the INT's next address stays an intact boundary either way.
    const q = plan((a) => {
      a.asm('mov', reg('ecx'), imm(1));
      a.asm('mov', reg('edx'), imm(2));
      a.here('s');
      a.asm('int', imm(0x80));
      a.asm('mov', reg('eax'), imm(1));
      a.asm('ret');
    }, { tactics: ['B1', 'B2', 'T1', 'T2', 'T3'] });
    expect(q.at('s').tactic).toBe('T3');
  });
});

describe('report', () => {
  it('counts tactics and stub kinds over the records and lists every miss', () => {
    const p = plan((a) => {
      a.asm('cli');
      a.asm('mov', reg('eax'), imm(1));
      a.here('t');
      a.asm('pushfd');
      a.here('u');
      a.asm('ret');
    }, { targets: ['u'] });
    expect(p.r.report.sites).toBe(2);
    expect(p.r.report.tactics).toEqual({ B1: 0, B2: 0, T1: 0, T2e: 0, T3e: 0, T2: 1, T3: 0, trap: 1 });
    expect(p.r.report.stubs).toEqual({ inline: 1, escape: 0, empty: 0, trap: 1 });
    expect(p.r.report.patched).toBe(1);
    expect(p.r.report.misses.map((m) => m.addr)).toEqual([p.labels.get('t')]);
  });
});
