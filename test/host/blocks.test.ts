// The block engine (packages/runtime/src/cpu/blocks.ts, jit.ts) against the single-step
// interpreter: the same random programs as the host differential (cpu-vs-host.test.ts), run by
// Cpu.step() one instruction at a time and by Cpu.run(n) with the same number of steps, both
// with blocks interpreted and with every block compiled on first entry. Registers, EFLAGS, EIP,
// the retired count, RAM and the exceptions raised must be identical, also when the budget
// ends part-way through a block (run(k) for every k: a budget of k stops after exactly k steps).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIntel } from '@ringshift/decoder';
import { HANDLED, PASS_THROUGH, type Cpu, type ExceptionEvent } from '@ringshift/runtime';
import { buildProgram, programSeedArb } from '../arbitraries/programs';
import { CODE_BASE } from './native';
import { prepareOurs } from './ours';

const SEED = 0x5eed_b10c;
const COUNT = 3000;
/** Programs for which every budget 1..steps is tried. */
const PREFIX_COUNT = 600;
const STEP_LIMIT = 10_000;

interface State {
  regs: number[];
  eflags: number;
  eip: number;
  retired: number;
  events: string[];
}

/** The CPU with an exception hook that records each event and skips its delivery (as runOurs does). */
function watched(cpu: Cpu): string[] {
  const events: string[] = [];
  cpu.interceptor = {
    ...PASS_THROUGH,
    exception: (c: Cpu, e: ExceptionEvent) => {
      events.push(`vector ${e.vector} error ${e.errorCode} at ${(c.eip >>> 0).toString(16)} next ${(e.nextEip >>> 0).toString(16)}`);
      return HANDLED;
    },
  };
  return events;
}

const stateOf = (cpu: Cpu, events: string[]): State => ({ regs: [...cpu.regs], eflags: cpu.eflags, eip: cpu.eip | 0, retired: cpu.retired, events: [...events] });

describe('block engine against single steps', () => {
  it(`agrees on ${COUNT} random programs (seed ${SEED})`, () => {
    const seeds = fc.sample(programSeedArb, { seed: SEED, numRuns: COUNT });
    const failures: string[] = [];
    let blockSteps = 0;
    seeds.forEach((seed, n) => {
      if (failures.length >= 3) return;
      const p = buildProgram(seed, CODE_BASE);
      if (p.code.length === 0) return;
      const end = (CODE_BASE + p.code.length) | 0;
      const a = prepareOurs(p);
      const aEvents = watched(a);
      const states: State[] = [stateOf(a, aEvents)];
      while (a.eip !== end && aEvents.length === 0 && states.length <= STEP_LIMIT) {
        a.step();
        states.push(stateOf(a, aEvents));
      }
      const steps = states.length - 1;
      blockSteps += steps;
      const listing = p.listing.map((i) => formatIntel(i)).join('; ');
      const budgets = n < PREFIX_COUNT ? Array.from({ length: steps }, (_, k) => k + 1) : [steps];
      for (const threshold of [Infinity, 1]) {
        for (const k of budgets) {
          const b = prepareOurs(p);
          b.jitThreshold = threshold;
          const bEvents = watched(b);
          b.run(k);
          const want = states[k]!, got = stateOf(b, bEvents);
          const sameRam = k < steps || Buffer.from(a.mem.u8).equals(Buffer.from(b.mem.u8));
          try {
            expect(got).toEqual(want);
            expect(sameRam, 'RAM').toBe(true);
          } catch (e) {
            failures.push(`program ${n} (${listing}), run(${k}) of ${steps} steps, jitThreshold ${threshold}:\n${(e as Error).message}`);
            return;
          }
        }
      }
    });
    expect(blockSteps).toBeGreaterThan(COUNT);
    expect(failures, failures.join('\n\n')).toEqual([]);
  }, 300_000);
});
