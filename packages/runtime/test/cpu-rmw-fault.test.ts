// Read-modify-write instructions whose write would fault change nothing (SDM vol. 3A §6.5:
// faults are precise; each instruction page's "Flags Affected" describes a completed
// instruction only): EFLAGS, the registers and memory stay as they were, EIP stays at the
// instruction, and a #PF has W = 1 in its error code because the destination is read with write
// intent (§4.7). For every RMW family: ALU ops, INC/DEC/NEG/NOT, shifts and rotates (count 0
// included), SHLD/SHRD, BTS/BTR/BTC, XADD, XCHG, CMPXCHG and CMPXCHG8B (equal and not), ARPL;
// against a read-only page, a not-present page, accesses that cross into either, a supervisor
// page at CPL 3, a read-only data segment and a readable code segment in DS (the campaign's
// selector 0x23, seed 4242). Each runs through Cpu.step() and the interpreted block loop; on the
// read-only page and across into the not-present one, also in a loop that runs 30 times before
// its RMW faults, interpreted block by block and compiled (jit.ts).
import { describe, expect, it } from 'vitest';
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import { ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S, Cpu } from '../src/cpu/cpu';
import * as F from '../src/cpu/eflags';
import { Vector } from '../src/cpu/fault';
import { buildHandlers } from '../src/cpu/handlers';
import { JIT_THRESHOLD } from '../src/cpu/jit';
import { MonitorExit, PASS_THROUGH, exit, type ExceptionEvent } from '../src/cpu/intercept';
import { PfError } from '../src/cpu/paging';
import { PhysicalMemory } from '../src/machine/memory';

const HANDLERS = buildHandlers();

// Linear = physical below 4 MiB, 4 KiB pages.
const CODE = 0x100000;
const DATA = 0x200000; // writable, and so is the next page
const RO = 0x202000; // R/W = 0 (CR0.WP = 1: supervisor writes fault too)
const NP = 0x204000; // not present
const SUPER = 0x205000; // U/S = 0
const TABLE = DATA + 0x800; // the loop's pointers
const AREA = [DATA, SUPER + 0x1000] as const; // compared byte for byte
const PD = 0x300000, PT = 0x301000;

const DS = 3;
const SEG_DATA_RW = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x3;

// One CPU for every case (building one costs more than running a case), reset in between.
const CPU = new Cpu(new PhysicalMemory(1 << 22), { read: () => 0xff, write: () => {} }, HANDLERS);

function machine(): { cpu: Cpu; seen: ExceptionEvent[] } {
  const cpu = CPU;
  cpu.reset();
  cpu.retired = 0;
  cpu.faultSteps = 0;
  cpu.jitThreshold = JIT_THRESHOLD;
  cpu.mem.u8.fill(0, CODE, 1 << 22);
  for (let s = 0; s < 6; s++) {
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = -1;
    cpu.segAttr[s] = s === 1 ? ATTR_P | ATTR_S | ATTR_DB | ATTR_G | ATTR_CODE | 0xb : SEG_DATA_RW;
  }
  cpu.mem.write32(PD, PT | 7);
  for (let p = 0; p < 1024; p++) {
    const at = p << 12;
    const rights = at === RO ? 0x5 : at === NP ? 0 : at === SUPER ? 0x3 : 0x7;
    cpu.mem.write32(PT + p * 4, at | rights);
  }
  cpu.cr3 = PD;
  cpu.cr0 = 0x80010011; // PG, WP, ET, PE
  cpu.regs[4] = 0x3f0000;
  for (let a = AREA[0]; a < AREA[1]; a++) cpu.mem.write8(a, (a * 37 + 11) & 0xff);
  const seen: ExceptionEvent[] = [];
  cpu.interceptor = {
    ...PASS_THROUGH,
    exception: (_cpu, e) => {
      seen.push(e);
      return exit(-1, { detail: 'exception', errorCode: e.errorCode });
    },
  };
  return { cpu, seen };
}

interface Snapshot {
  regs: number[];
  eflags: number;
  eip: number;
  bytes: Uint8Array;
}

function snapshot(cpu: Cpu): Snapshot {
  return { regs: Array.from(cpu.regs), eflags: cpu.eflags, eip: cpu.eip, bytes: cpu.mem.u8.slice(AREA[0], AREA[1]) };
}

function expectSame(cpu: Cpu, before: Snapshot): void {
  const after = snapshot(cpu);
  expect(after.regs.map((v) => (v >>> 0).toString(16))).toEqual(before.regs.map((v) => (v >>> 0).toString(16)));
  expect(after.eflags.toString(16)).toBe(before.eflags.toString(16));
  expect(after.eip.toString(16)).toBe(before.eip.toString(16));
  // The first differing address, if any, rather than 20 KiB of bytes.
  const diff = after.bytes.findIndex((b, i) => b !== before.bytes[i]);
  expect(diff < 0 ? 'unchanged' : `byte at ${(AREA[0] + diff).toString(16)} changed`).toBe('unchanged');
}

/** One RMW instruction on [ESI]; `prepare` sets the registers it needs, given the target address. */
interface Case {
  name: string;
  /** Access size in bytes (1: no page-crossing variant). */
  bytes: number;
  emit(a: Assembler): void;
  prepare?(cpu: Cpu, target: number): void;
}

const m = (size: number) => mem({ base: 'esi', size });
const CASES: Case[] = [];
for (const op of ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor']) {
  CASES.push({ name: `${op} dword [esi], ebx`, bytes: 4, emit: (a) => a.asm(op, m(4), reg('ebx')) });
  CASES.push({ name: `${op} word [esi], imm16`, bytes: 2, emit: (a) => a.asm(op, m(2), imm(0x1234)) });
  CASES.push({ name: `${op} byte [esi], imm8`, bytes: 1, emit: (a) => a.asm(op, m(1), imm(0x81)) });
}
for (const op of ['inc', 'dec', 'neg', 'not']) {
  CASES.push({ name: `${op} dword [esi]`, bytes: 4, emit: (a) => a.asm(op, m(4)) });
  CASES.push({ name: `${op} word [esi]`, bytes: 2, emit: (a) => a.asm(op, m(2)) });
  CASES.push({ name: `${op} byte [esi]`, bytes: 1, emit: (a) => a.asm(op, m(1)) });
}
for (const op of ['shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr']) {
  CASES.push({ name: `${op} dword [esi], 1`, bytes: 4, emit: (a) => a.asm(op, m(4), imm(1)) });
  CASES.push({ name: `${op} word [esi], cl (5)`, bytes: 2, emit: (a) => a.asm(op, m(2), reg('cl')), prepare: (cpu) => { cpu.regs[1] = 5; } });
  CASES.push({ name: `${op} byte [esi], 3`, bytes: 1, emit: (a) => a.asm(op, m(1), imm(3)) });
  // A masked count of 0 writes the operand back all the same.
  CASES.push({ name: `${op} dword [esi], cl (0x20: count 0)`, bytes: 4, emit: (a) => a.asm(op, m(4), reg('cl')), prepare: (cpu) => { cpu.regs[1] = 0x20; } });
  CASES.push({ name: `${op} dword [esi], 0`, bytes: 4, emit: (a) => a.asm(op, m(4), imm(0)) });
}
CASES.push({ name: 'rcl byte [esi], 9 (count 0 mod 9)', bytes: 1, emit: (a) => a.asm('rcl', m(1), imm(9)) });
for (const op of ['shld', 'shrd']) {
  CASES.push({ name: `${op} dword [esi], ebx, 7`, bytes: 4, emit: (a) => a.asm(op, m(4), reg('ebx'), imm(7)) });
  CASES.push({ name: `${op} word [esi], bx, cl (20)`, bytes: 2, emit: (a) => a.asm(op, m(2), reg('bx'), reg('cl')), prepare: (cpu) => { cpu.regs[1] = 20; } });
  CASES.push({ name: `${op} dword [esi], ebx, 0`, bytes: 4, emit: (a) => a.asm(op, m(4), reg('ebx'), imm(0)) });
}
for (const op of ['bts', 'btr', 'btc']) {
  CASES.push({ name: `${op} dword [esi], 13`, bytes: 4, emit: (a) => a.asm(op, m(4), imm(13)) });
  CASES.push({ name: `${op} word [esi], dx (bit 6)`, bytes: 2, emit: (a) => a.asm(op, m(2), reg('dx')), prepare: (cpu) => { cpu.regs[2] = 6; } });
  CASES.push({ name: `${op} dword [esi], edx (bit 30)`, bytes: 4, emit: (a) => a.asm(op, m(4), reg('edx')), prepare: (cpu) => { cpu.regs[2] = 30; } });
}
CASES.push({ name: 'xadd dword [esi], ebx', bytes: 4, emit: (a) => a.asm('xadd', m(4), reg('ebx')) });
CASES.push({ name: 'xadd byte [esi], bl', bytes: 1, emit: (a) => a.asm('xadd', m(1), reg('bl')) });
CASES.push({ name: 'xchg dword [esi], ebx', bytes: 4, emit: (a) => a.asm('xchg', m(4), reg('ebx')) });
CASES.push({ name: 'xchg word [esi], bx', bytes: 2, emit: (a) => a.asm('xchg', m(2), reg('bx')) });
CASES.push({ name: 'xchg byte [esi], bl', bytes: 1, emit: (a) => a.asm('xchg', m(1), reg('bl')) });
const accFrom = (cpu: Cpu, t: number, equal: boolean): void => {
  const v = cpu.mem.read32(t);
  cpu.regs[0] = equal ? v : ~v;
  cpu.regs[2] = equal ? cpu.mem.read32(t + 4) : 0;
};
CASES.push({ name: 'cmpxchg dword [esi], ebx (equal)', bytes: 4, emit: (a) => a.asm('cmpxchg', m(4), reg('ebx')), prepare: (cpu, t) => accFrom(cpu, t, true) });
CASES.push({ name: 'cmpxchg dword [esi], ebx (not equal: writes back)', bytes: 4, emit: (a) => a.asm('cmpxchg', m(4), reg('ebx')), prepare: (cpu, t) => accFrom(cpu, t, false) });
CASES.push({ name: 'cmpxchg word [esi], bx (not equal)', bytes: 2, emit: (a) => a.asm('cmpxchg', m(2), reg('bx')), prepare: (cpu, t) => accFrom(cpu, t, false) });
CASES.push({ name: 'cmpxchg byte [esi], bl (equal)', bytes: 1, emit: (a) => a.asm('cmpxchg', m(1), reg('bl')), prepare: (cpu, t) => accFrom(cpu, t, true) });
CASES.push({ name: 'cmpxchg8b [esi] (equal)', bytes: 8, emit: (a) => a.asm('cmpxchg8b', m(8)), prepare: (cpu, t) => accFrom(cpu, t, true) });
CASES.push({ name: 'cmpxchg8b [esi] (not equal: writes back)', bytes: 8, emit: (a) => a.asm('cmpxchg8b', m(8)), prepare: (cpu, t) => accFrom(cpu, t, false) });
CASES.push({ name: 'arpl word [esi], bx (adjusts)', bytes: 2, emit: (a) => a.asm('arpl', m(2), reg('bx')), prepare: (cpu) => { cpu.regs[3] = 3; } });
CASES.push({ name: 'arpl word [esi], bx (leaves it)', bytes: 2, emit: (a) => a.asm('arpl', m(2), reg('bx')), prepare: (cpu) => { cpu.regs[3] = 0; } });

/** Where the write faults: the address, the expected exception, and anything to set up. */
interface Target {
  name: string;
  at(c: Case): number;
  vector: number;
  errorCode: number;
  /** CR2 for #PF. */
  cr2?(c: Case): number;
  /** Byte-sized accesses cannot cross a page. */
  multiByteOnly?: boolean;
  setup?(cpu: Cpu): void;
}

const W = PfError.W, P = PfError.P, U = PfError.U;
const TARGETS: Target[] = [
  { name: 'a read-only page (CR0.WP = 1)', at: () => RO + 0x10, vector: Vector.PF, errorCode: P | W, cr2: () => RO + 0x10 },
  { name: 'a not-present page', at: () => NP + 0x20, vector: Vector.PF, errorCode: W, cr2: () => NP + 0x20 },
  { name: 'an access crossing into a not-present page', at: () => NP - 1, vector: Vector.PF, errorCode: W, cr2: () => NP, multiByteOnly: true },
  { name: 'an access crossing into a read-only page', at: () => RO - 1, vector: Vector.PF, errorCode: P | W, cr2: () => RO, multiByteOnly: true },
  { name: 'a supervisor page at CPL 3', at: () => SUPER + 0x30, vector: Vector.PF, errorCode: P | W | U, cr2: () => SUPER + 0x30, setup: (cpu) => { cpu.cpl = 3; } },
  { name: 'a read-only data segment', at: () => DATA + 0x40, vector: Vector.GP, errorCode: 0, setup: (cpu) => { cpu.segAttr[DS] = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x1; } },
  {
    name: 'a readable code segment in DS (selector 0x23)', at: () => DATA + 0x40, vector: Vector.GP, errorCode: 0,
    setup: (cpu) => { cpu.segAttr[DS] = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | ATTR_CODE | 0xb; },
  },
];

const START_FLAGS = F.CF | F.AF | F.SF | F.OF | F.FIXED_ONE; // ZF = PF = 0: changes show

function loadCode(cpu: Cpu, build: (a: Assembler) => void): void {
  const a = new Assembler(32, CODE);
  build(a);
  a.asm('hlt');
  cpu.mem.load(CODE, a.assemble().bytes);
  cpu.eip = CODE;
}

function single(c: Case, t: Target): { cpu: Cpu; seen: ExceptionEvent[] } {
  const made = machine();
  const { cpu } = made;
  loadCode(cpu, (a) => c.emit(a));
  cpu.regs.set([0x11223344, 0x0000001f, 0x00000006, 0x8899aabb, cpu.regs[4]!, 0x0badf00d, t.at(c), 0x76543210]);
  c.prepare?.(cpu, t.at(c));
  t.setup?.(cpu);
  cpu.eflags = START_FLAGS;
  return made;
}

function expectFault(cpu: Cpu, seen: ExceptionEvent[], c: Case, t: Target): void {
  expect(seen.map((e) => [e.vector, e.errorCode])).toEqual([[t.vector, t.errorCode]]);
  if (t.cr2) expect((cpu.cr2 >>> 0).toString(16)).toBe(t.cr2(c).toString(16));
}

describe('a read-modify-write whose write faults changes nothing', () => {
  for (const t of TARGETS) {
    describe(t.name, () => {
      for (const c of CASES) {
        if (t.multiByteOnly && c.bytes === 1) continue;
        it(c.name, () => {
          // Cpu.step(): the single-instruction path.
          {
            const { cpu, seen } = single(c, t);
            const before = snapshot(cpu);
            expect(() => cpu.step()).toThrow(MonitorExit);
            expectFault(cpu, seen, c, t);
            expectSame(cpu, before);
            expect(cpu.retired).toBe(0);
          }
          // run(): the block loop, interpreted.
          {
            const { cpu, seen } = single(c, t);
            const before = snapshot(cpu);
            expect(cpu.run(10)).toBe('exit');
            expectFault(cpu, seen, c, t);
            expectSame(cpu, before);
            expect(cpu.retired).toBe(0);
          }
        });
      }
    });
  }

  it('and the same instructions on a writable page complete (the cases are not vacuous)', () => {
    for (const c of CASES) {
      // Across the boundary of two writable pages.
      const { cpu, seen } = single(c, { name: 'writable', at: () => DATA + 0xfff, vector: -1, errorCode: -1 });
      expect(cpu.run(10), c.name).toBe('halted');
      expect(seen, c.name).toEqual([]);
    }
  });
});

/**
 * A loop on one page that runs 30 times on DATA, then once on the target, where the RMW faults:
 *     mov ecx, 40
 *   top:
 *     mov esi, [TABLE + ecx*4]   ; DATA, or the target when ECX = 10
 *     inc ebp
 *     <rmw [esi]>
 *     dec ecx
 *     jnz top
 */
function loop(c: Case, t: Target, jitThreshold: number): { cpu: Cpu; seen: ExceptionEvent[] } {
  const made = machine();
  const { cpu } = made;
  loadCode(cpu, (a) => {
    a.asm('mov', reg('ecx'), imm(40));
    const top = a.here();
    a.asm('mov', reg('esi'), mem({ index: 'ecx', scale: 4, disp: TABLE, size: 4 }));
    a.asm('inc', reg('ebp'));
    c.emit(a);
    a.asm('dec', reg('ecx'));
    a.jcc('ne', top);
  });
  for (let i = 0; i <= 40; i++) cpu.mem.write32(TABLE + i * 4, i === 10 ? t.at(c) : DATA + 8);
  cpu.regs.set([0x11223344, 0, 0x00000006, 0x8899aabb, cpu.regs[4]!, 0, 0, 0x76543210]);
  c.prepare?.(cpu, DATA + 8);
  t.setup?.(cpu);
  cpu.eflags = START_FLAGS;
  cpu.jitThreshold = jitThreshold;
  return made;
}

/** The loop by single steps: the state before the instruction that faults, and the steps retired. */
function stepped(c: Case, t: Target): { before: Snapshot; retired: number } {
  const { cpu, seen } = loop(c, t, Infinity);
  for (let n = 0; n < 1000; n++) {
    const before = snapshot(cpu);
    try {
      cpu.step();
    } catch (e) {
      if (!(e instanceof MonitorExit)) throw e;
      expectFault(cpu, seen, c, t);
      expect(before.regs[1]).toBe(10); // ECX: the pass on the target
      expectSame(cpu, before);
      return { before, retired: cpu.retired };
    }
  }
  throw new Error('no fault');
}

describe('in a loop, interpreted block by block and compiled (the fault on the 31st pass, EIP and the retired count as by single steps)', () => {
  for (const t of TARGETS.filter((x) => x.name === 'a read-only page (CR0.WP = 1)' || x.name === 'an access crossing into a not-present page')) {
    describe(t.name, () => {
      for (const c of CASES) {
        if (t.multiByteOnly && c.bytes === 1) continue;
        it(c.name, () => {
          const ref = stepped(c, t);
          for (const threshold of [Infinity, JIT_THRESHOLD]) {
            const { cpu, seen } = loop(c, t, threshold);
            expect(cpu.run(10_000)).toBe('exit');
            expectFault(cpu, seen, c, t);
            expectSame(cpu, ref.before);
            expect(cpu.retired).toBe(ref.retired);
            // Only compiled code sets faultSteps: the fault came from the compiled loop.
            if (threshold === JIT_THRESHOLD) expect(cpu.faultSteps).toBeGreaterThan(0);
            else expect(cpu.faultSteps).toBe(0);
          }
        });
      }
    });
  }
});
