// The block engine (src/cpu/blocks.ts, jit.ts) against one instruction at a time: each program
// runs once as run(1) repeated (every step on its own, interrupts polled before each) and again
// as run(k) for many k, with blocks interpreted and with every block compiled on first entry.
// After k steps both must be in the same state: a budget of k stops after exactly k steps, a
// fault part-way through a block leaves EIP at the faulting instruction with the ones before it
// retired, a write to the block's own code takes effect at the next instruction, and an
// interrupt raised by an I/O write is taken at the same instruction boundary.
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { EventKind, HANDLED, PASS_THROUGH, type Cpu, type ExceptionEvent } from '../src/index';
import { flatCpu } from './support/flat';

const ORIGIN = 0x100000;

interface Machine {
  cpu: Cpu;
  events: string[];
}

/** A flat CPU with the program loaded, an exception hook that records events and skips delivery. */
function machine(code: Uint8Array, setup?: (cpu: Cpu) => void, origin = ORIGIN): Machine {
  const { cpu } = flatCpu(0x300000);
  cpu.regs[4] = 0x2ff000;
  cpu.mem.load(origin, code);
  cpu.eip = origin;
  const events: string[] = [];
  cpu.interceptor = {
    ...PASS_THROUGH,
    exception: (c: Cpu, e: ExceptionEvent) => {
      events.push(`${e.kind === EventKind.EXTERNAL_INTERRUPT ? 'irq' : 'exc'} ${e.vector} at ${(c.eip >>> 0).toString(16)} after ${c.retired}`);
      return HANDLED;
    },
  };
  setup?.(cpu);
  return { cpu, events };
}

const stateOf = (m: Machine): unknown => ({
  regs: [...m.cpu.regs], eflags: m.cpu.eflags, eip: m.cpu.eip | 0, retired: m.cpu.retired, halted: m.cpu.halted,
  events: [...m.events], code: Buffer.from(m.cpu.mem.u8.subarray(ORIGIN, ORIGIN + 0x1100)).toString('base64'),
  data: Buffer.from(m.cpu.mem.u8.subarray(0x200000, 0x200400)).toString('base64'),
});

/** Compares run(k) with k times run(1): every k up to 40, then every 9th, and `steps` (or to HLT). */
function agree(build: (a: Assembler) => void, steps: number, setup?: (cpu: Cpu) => void, origin = ORIGIN, bits: 16 | 32 = 32): Cpu {
  const a = new Assembler(bits, origin);
  build(a);
  a.asm('hlt');
  const code = a.assemble().bytes;
  const ref = machine(code, setup, origin);
  const states = [stateOf(ref)];
  for (let k = 1; k <= steps; k++) {
    ref.cpu.run(1);
    states.push(stateOf(ref));
    if (ref.cpu.halted) steps = k;
  }
  for (const threshold of [Infinity, 1, 3]) {
    for (let k = 1; k <= steps; k++) {
      if (k !== steps && (threshold === 3 || (k > 40 && k % 9 !== 0))) continue;
      const m = machine(code, setup, origin);
      m.cpu.jitThreshold = threshold;
      m.cpu.run(k);
      expect(stateOf(m), `run(${k}), jitThreshold ${threshold}`).toEqual(states[k]);
    }
  }
  // One long run, in pieces of uneven size.
  const m = machine(code, setup, origin);
  m.cpu.jitThreshold = 1;
  for (let done = 0, piece = 1; done < steps; piece = (piece * 7 + 3) % 23 + 1) {
    const n = Math.min(piece, steps - done);
    m.cpu.run(n);
    done += n;
  }
  expect(stateOf(m), 'uneven pieces').toEqual(states[steps]);
  return ref.cpu;
}

describe('block engine', () => {
  it('runs a loop (the benchmark kernel) exactly as single steps, for every budget', () => {
    const cpu = agree((a) => {
      a.asm('mov', reg('ecx'), imm(40));
      a.asm('mov', reg('esi'), imm(0x200000));
      a.asm('xor', reg('eax'), reg('eax'));
      const top = a.here();
      a.asm('add', reg('eax'), mem({ base: 'esi', size: 4 }));
      a.asm('mov', reg('edx'), reg('eax'));
      a.asm('xor', reg('edx'), reg('ecx'));
      a.asm('mov', mem({ base: 'esi', disp: 4, size: 4 }), reg('edx'));
      a.asm('inc', reg('esi'));
      a.asm('and', reg('esi'), imm(0x2003ff));
      a.asm('adc', reg('ebx'), imm(3));
      a.asm('dec', reg('ecx'));
      a.jcc('ne', top);
    }, 3 + 40 * 9 + 1);
    expect(cpu.halted).toBe(true);
  });

  it('runs calls, returns and branches between linked blocks, across a page boundary too', () => {
    for (const origin of [ORIGIN, ORIGIN + 0xfd0]) {
      const cpu = agree((a) => {
        const f = a.label('f');
        const skip = a.label('skip');
        const end = a.label('end');
        a.asm('mov', reg('ecx'), imm(25));
        a.asm('mov', reg('esi'), imm(0x200000));
        const top = a.here();
        a.asm('mov', reg('eax'), mem({ base: 'esi', size: 4 }));
        a.call(f);
        a.asm('cmp', reg('eax'), imm(20));
        a.jcc('l', skip);
        a.asm('add', reg('ebx'), reg('eax'));
        a.asm('sub', reg('ebx'), imm(3));
        a.jcc('b', skip);
        a.asm('inc', reg('edi'));
        a.bind(skip);
        a.asm('movzx', reg('edx'), mem({ base: 'esi', index: 'ecx', scale: 1, size: 1 }));
        a.asm('test', reg('edx'), reg('ecx'));
        a.asm('setg', reg('dl'));
        a.asm('dec', reg('ecx'));
        a.jcc('ne', top);
        a.jmp(end);
        a.bind(f);
        a.asm('push', reg('ebp'));
        a.asm('mov', reg('ebp'), reg('esp'));
        a.asm('add', reg('eax'), reg('ecx'));
        a.asm('mov', mem({ base: 'esi', index: 'ecx', scale: 4, size: 4 }), reg('eax'));
        a.asm('pop', reg('ebp'));
        a.asm('ret');
        a.bind(end);
      }, 1000, undefined, origin);
      expect(cpu.halted).toBe(true);
    }
  });

  it('runs 16-bit real-mode code the same way', () => {
    const cpu = agree((a) => {
      a.asm('mov', reg('cx'), imm(30));
      a.asm('mov', reg('si'), imm(0x2000));
      const top = a.here();
      a.asm('add', reg('ax'), mem({ base: 'si', size: 2 }));
      a.asm('push', reg('ax'));
      a.asm('xor', reg('dx'), reg('cx'));
      a.asm('mov', mem({ base: 'si', disp: 2, size: 2 }), reg('dx'));
      a.asm('pop', reg('bx'));
      a.asm('inc', reg('si'));
      a.asm('cmp', reg('bl'), imm(0x40));
      a.asm('adc', reg('di'), imm(1));
      a.asm('and', reg('si'), imm(0x20ff));
      a.asm('dec', reg('cx'));
      a.jcc('ne', top);
    }, 1000, (cpu) => {
      cpu.cr0 = 0x10;
      for (let s = 0; s < 6; s++) {
        cpu.segBase[s] = 0;
        cpu.sel[s] = 0;
        cpu.segLimit[s] = 0xffff;
        cpu.segAttr[s] = 0x80 | 0x10 | 0x2 | (s === 1 ? 0x8 : 0);
      }
      cpu.regs[4] = 0xfff0;
    }, 0x1000, 16);
    expect(cpu.halted).toBe(true);
  });

  it('sees a write to the code of the running block at the next instruction', () => {
    // The loop stores CL into the immediate of a MOV further down the same block.
    const cpu = agree((a) => {
      const patch = a.label('patch');
      a.asm('mov', reg('ecx'), imm(20));
      a.asm('xor', reg('ebx'), reg('ebx'));
      const top = a.here();
      a.asm('mov', reg('edi'), imm(0));
      a.asm('add', reg('edi'), imm(0)); // padding: the store is not the first instruction
      a.asm('mov', mem({ base: 'edi', disp: 0, size: 1 }), reg('cl'));
      a.bind(patch);
      a.asm('mov', reg('eax'), imm(0x11111111));
      a.asm('add', reg('ebx'), reg('eax'));
      a.asm('dec', reg('ecx'));
      a.jcc('ne', top);
    }, 2 + 20 * 7 + 1, (cpu) => {
      // Point the store at the MOV's immediate: find B8 11 11 11 11 in the loaded code.
      const u8 = cpu.mem.u8;
      let at = ORIGIN;
      while (!(u8[at] === 0xb8 && u8[at + 1] === 0x11 && u8[at + 2] === 0x11)) at++;
      // mov edi, imm32 is the 3rd instruction (BF imm32): set its immediate to the byte to patch.
      let movEdi = ORIGIN;
      while (u8[movEdi] !== 0xbf) movEdi++;
      cpu.mem.u8.set([(at + 1) & 0xff, ((at + 1) >>> 8) & 0xff, ((at + 1) >>> 16) & 0xff, 0], movEdi + 1);
    });
    // Each iteration adds 0x111111nn with nn = CL at the store: sum over CL = 20..1.
    let want = 0;
    for (let c = 20; c >= 1; c--) want = (want + (0x11111100 | c)) | 0;
    expect(cpu.regs[3]).toBe(want);
  });

  it('sees a write to the code of the last instruction of a compiled block before running it', () => {
    // The loop turns its own PUSHFD (which a compiled block leaves to the single-step path) into
    // a NOP on the first iteration: it must never run.
    const cpu = agree((a) => {
      const patch = a.label('patch');
      a.asm('mov', reg('ecx'), imm(20));
      a.asm('mov', reg('edi'), imm(0));
      const top = a.here();
      a.asm('add', reg('eax'), imm(1));
      a.asm('mov', mem({ base: 'edi', size: 1 }), imm(0x90));
      a.bind(patch);
      a.asm('pushfd');
      a.asm('dec', reg('ecx'));
      a.jcc('ne', top);
    }, 1000, (cpu) => {
      const u8 = cpu.mem.u8;
      let at = ORIGIN;
      while (u8[at] !== 0x9c) at++;
      let movEdi = ORIGIN;
      while (u8[movEdi] !== 0xbf) movEdi++;
      u8.set([at & 0xff, (at >>> 8) & 0xff, (at >>> 16) & 0xff, 0], movEdi + 1);
    });
    expect(cpu.regs[4]).toBe(0x2ff000);
  });

  it('leaves EIP at an instruction that faults part-way through a block, the ones before it retired', () => {
    // DS limit 0x2000ff: the loop's load walks off the end and faults (#GP) on every try after.
    agree((a) => {
      a.asm('mov', reg('esi'), imm(0x2000f0));
      const top = a.here();
      a.asm('inc', reg('ebx'));
      a.asm('mov', reg('eax'), mem({ base: 'esi', size: 4 }));
      a.asm('add', reg('esi'), imm(4));
      a.jmp(top);
    }, 40, (cpu) => {
      cpu.segLimit[3] = 0x2000ff;
      cpu.segAttr[3]! &= ~(1 << 15); // byte granular
    });
  });

  it('takes an interrupt raised by a memory-mapped device at the same instruction boundary', () => {
    // A device at 0x280000: a write of a value with bit 0 set makes vector 0x31 pending.
    agree((a) => {
      a.asm('sti');
      a.asm('mov', reg('ecx'), imm(30));
      a.asm('mov', reg('edi'), imm(0x280000));
      const top = a.here();
      a.asm('add', reg('eax'), reg('ecx'));
      a.asm('mov', mem({ base: 'edi', size: 4 }), reg('ecx'));
      a.asm('add', reg('ebx'), mem({ base: 'edi', disp: 4, size: 4 }));
      a.asm('dec', reg('ecx'));
      a.jcc('ne', top);
    }, 200, (cpu) => {
      let pending = -1;
      cpu.mem.mapMmio(0x280000, 0x1000, {
        read: (offset) => offset,
        write: (_offset, _size, value) => { if (value & 1) pending = 0x31; },
      });
      cpu.interruptController = { pending: () => pending, acknowledge: () => { const v = pending; pending = -1; return v; } };
    });
  });

  it('takes an interrupt raised by an OUT at the same instruction boundary', () => {
    // A PIC stand-in: a write to port 0x99 makes vector 0x30 pending; IF = 1.
    agree((a) => {
      a.asm('sti');
      a.asm('mov', reg('ecx'), imm(30));
      const top = a.here();
      a.asm('add', reg('eax'), reg('ecx'));
      a.asm('test', reg('ecx'), imm(7));
      const skip = a.label('skip');
      a.jcc('ne', skip);
      a.asm('out', imm(0x99), reg('al'));
      a.bind(skip);
      a.asm('dec', reg('ecx'));
      a.jcc('ne', top);
    }, 150, (cpu) => {
      let pending = -1;
      cpu.ports = { read: () => 0, write: (port) => { if (port === 0x99) pending = 0x30; } };
      cpu.interruptController = { pending: () => pending, acknowledge: () => { const v = pending; pending = -1; return v; } };
    });
  });
});
