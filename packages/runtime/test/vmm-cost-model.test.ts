// The bench's cost model (vmm/cost-model.ts): its table of defaults, the arithmetic against
// hand-computed cycles, linearity in the counts, and the override parser's errors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COST_PARAMETERS, CostModelError, DEFAULT_COST_MODEL, costModel, modelCycles, parseCostOverrides } from '../src/index';
import type { OperationCounts } from '../src/index';

const NAMES = ['instruction', 'exceptionDelivery', 'portIo', 'monitorTrap', 'vmExit', 'hypercall', 'monitorWork'];

describe('cost model table', () => {
  it('has each parameter once, with a source, and the defaults come from it', () => {
    expect(COST_PARAMETERS.map((p) => p.name).sort()).toEqual([...NAMES].sort());
    for (const p of COST_PARAMETERS) {
      expect(p.source.length, p.name).toBeGreaterThan(10);
      expect(p.cycles, p.name).toBeGreaterThanOrEqual(0);
      expect(DEFAULT_COST_MODEL[p.name]).toBe(p.cycles);
    }
  });

  it('prices the paper-calibrated cases as the paper does', () => {
    // Native IN (A&A: 3209 cycles): one port access and a handful of loop instructions.
    expect(modelCycles({ instructions: 4, guestEvents: 0, portIo: 1, transfers: {} }).total).toBe(3204);
    // Hardware VMM IN (A&A: 15826): one VM exit round trip plus the monitor's work.
    expect(modelCycles({ instructions: 4, guestEvents: 0, portIo: 0, transfers: { 'vm-exit': 1 } }).total).toBe(4 + 15000 + 300);
  });
});

describe('modelCycles', () => {
  it('adds each kind at its price (hand-computed)', () => {
    const m = costModel({ instruction: 2, exceptionDelivery: 10, portIo: 100, monitorTrap: 1000, vmExit: 10000, hypercall: 100000, monitorWork: 1 });
    const c: OperationCounts = { instructions: 3, guestEvents: 1, portIo: 2, transfers: { 'monitor-trap': 1, 'vm-exit': 2, hypercall: 3 } };
    const b = modelCycles(c, m);
    expect(b).toEqual({ instructions: 6, guestEvents: 10, portIo: 200, transfers: 1001 + 2 * 10001 + 3 * 100001, total: 6 + 10 + 200 + 1001 + 20002 + 300003 });
  });

  it('is linear in the counts (seed 11)', () => {
    const counts = fc.record({
      instructions: fc.nat(10_000), guestEvents: fc.nat(10), portIo: fc.nat(10),
      transfers: fc.record({ 'monitor-trap': fc.nat(10), 'vm-exit': fc.nat(10), hypercall: fc.nat(10) }),
    });
    fc.assert(
      fc.property(counts, counts, (a, b) => {
        const sum: OperationCounts = {
          instructions: a.instructions + b.instructions, guestEvents: a.guestEvents + b.guestEvents, portIo: a.portIo + b.portIo,
          transfers: { 'monitor-trap': a.transfers['monitor-trap'] + b.transfers['monitor-trap'], 'vm-exit': a.transfers['vm-exit'] + b.transfers['vm-exit'], hypercall: a.transfers.hypercall + b.transfers.hypercall },
        };
        expect(modelCycles(sum).total).toBe(modelCycles(a).total + modelCycles(b).total);
      }),
      { seed: 11, numRuns: 200 },
    );
  });
});

describe('parseCostOverrides', () => {
  it('reads name=cycles pairs', () => {
    expect(parseCostOverrides('vmExit=1000, monitorWork=150')).toEqual({ vmExit: 1000, monitorWork: 150 });
    expect(parseCostOverrides('')).toEqual({});
    expect(costModel(parseCostOverrides('vmExit=1000')).vmExit).toBe(1000);
    expect(costModel(parseCostOverrides('vmExit=1000')).portIo).toBe(DEFAULT_COST_MODEL.portIo);
  });

  it('names what is wrong', () => {
    expect(() => parseCostOverrides('vmexit=1')).toThrow(CostModelError);
    expect(() => parseCostOverrides('vmexit=1')).toThrow(/unknown cost parameter 'vmexit'/);
    expect(() => parseCostOverrides('vmExit')).toThrow(/not name=cycles/);
    expect(() => parseCostOverrides('vmExit=-3')).toThrow(/not a non-negative number/);
    expect(() => parseCostOverrides('vmExit=')).toThrow(/not a non-negative number/);
  });
});

describe('docs/bench.md', () => {
  it('lists every parameter with its default', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../../docs/bench.md', import.meta.url), 'utf8');
    for (const p of COST_PARAMETERS) expect(doc, p.name).toMatch(new RegExp(`\\| \`${p.name}\` \\| ${p.cycles} \\|`));
  });
});
