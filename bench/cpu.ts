// pnpm bench:cpu — guest MIPS of the IA-32 interpreter on a compute-bound loop (flat 32-bit
// protected mode, no devices), on a loop of short blocks (CALL/RET, PUSH/POP, CMP+Jcc: the
// cost of going from block to block, as in ordinary compiled code) and on a paging-heavy loop
// (32-bit paging, a sweep over 1024 pages with INVLPG after every touch and a CR3 reload per
// sweep, so that most accesses miss the TLB and walk the tables). Prints Markdown; writes
// bench-results/cpu.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import { ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S, Cpu, PhysicalMemory, buildHandlers } from '@ringshift/runtime';

const handlers = buildHandlers();

function flat(): Cpu {
  const cpu = new Cpu(new PhysicalMemory(1 << 24), { read: () => 0xff, write: () => {} }, handlers);
  cpu.cr0 = 0x11;
  for (let s = 0; s < 6; s++) {
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = -1;
    cpu.segAttr[s] = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x3 | (s === 1 ? ATTR_CODE | 0x8 : 0);
  }
  cpu.regs[4] = 0xf00000;
  return cpu;
}

/** A loop of ALU, memory and branch instructions, like a checksum kernel. */
function computeLoop(iterations: number): Uint8Array {
  const a = new Assembler(32, 0x100000);
  a.asm('mov', reg('ecx'), imm(iterations));
  a.asm('mov', reg('esi'), imm(0x200000));
  a.asm('xor', reg('eax'), reg('eax'));
  const top = a.here();
  a.asm('add', reg('eax'), mem({ base: 'esi', size: 4 }));
  a.asm('mov', reg('edx'), reg('eax'));
  a.asm('xor', reg('edx'), reg('ecx'));
  a.asm('mov', mem({ base: 'esi', disp: 4, size: 4 }), reg('edx'));
  a.asm('inc', reg('esi'));
  a.asm('and', reg('esi'), imm(0x2003ff));
  a.asm('dec', reg('ecx'));
  a.jcc('ne', top);
  a.asm('hlt');
  return a.assemble().bytes;
}

const PAGES_LINEAR = 0x40000000;
const PD = 0x300000;
const PT = 0x301000;
const FRAMES = 0x400000;

/**
 * 32-bit paging (CR4.PSE): 4 MiB identity pages below 16 MiB for code, stack and tables, and
 * 1024 4 KiB pages at 4000_0000h -> 0040_0000h for the loop to sweep.
 */
function paged(): Cpu {
  const cpu = flat();
  for (let i = 0; i < 4; i++) cpu.mem.write32(PD + i * 4, (i << 22) | 0x83);
  cpu.mem.write32(PD + (PAGES_LINEAR >>> 22) * 4, PT | 0x3);
  for (let p = 0; p < 1024; p++) cpu.mem.write32(PT + p * 4, (FRAMES + p * 0x1000) | 0x3);
  cpu.cr3 = PD;
  cpu.cr4 = 0x10;
  cpu.cr0 = (cpu.cr0 | 0x80000000) | 0;
  return cpu;
}

/** Reads and writes one dword per page, INVLPGs it, moves to the next page; reloads CR3 after each sweep. */
function pagingLoop(iterations: number): Uint8Array {
  const a = new Assembler(32, 0x100000);
  a.asm('mov', reg('ecx'), imm(iterations));
  a.asm('mov', reg('esi'), imm(PAGES_LINEAR));
  const top = a.here();
  a.asm('mov', reg('eax'), mem({ base: 'esi', size: 4 }));
  a.asm('add', reg('eax'), reg('ecx'));
  a.asm('mov', mem({ base: 'esi', disp: 4, size: 4 }), reg('eax'));
  a.asm('invlpg', mem({ base: 'esi', size: 1 }));
  a.asm('add', reg('esi'), imm(0x1000));
  a.asm('and', reg('esi'), imm(PAGES_LINEAR | 0x3ff000));
  a.asm('cmp', reg('esi'), imm(PAGES_LINEAR));
  const same = a.label();
  a.jcc('ne', same);
  a.asm('mov', reg('eax'), reg('cr3'));
  a.asm('mov', reg('cr3'), reg('eax'));
  a.bind(same);
  a.asm('dec', reg('ecx'));
  a.jcc('ne', top);
  a.asm('hlt');
  return a.assemble().bytes;
}

/** Median MIPS over five rounds of `code` on a fresh CPU from `make`. */
function measure(name: string, make: () => Cpu, code: Uint8Array): { instructions: number; mipsMedian: number; mips: number[]; cpuMipsMedian: number; tlbMisses: number } {
  const rounds: number[] = [];
  const cpuRounds: number[] = [];
  let retired = 0, misses = 0;
  for (let r = 0; r < 5; r++) {
    const cpu = make();
    cpu.mem.load(0x100000, code);
    cpu.eip = 0x100000;
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const stop = cpu.run(1e9);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const used = process.cpuUsage(c0);
    if (stop !== 'halted') throw new Error(`${name} loop ended with ${stop}`);
    retired = cpu.retired;
    misses = cpu.tlb.misses;
    rounds.push(retired / ms / 1000);
    cpuRounds.push(retired / ((used.user + used.system) / 1000) / 1000);
  }
  rounds.sort((x, y) => x - y);
  cpuRounds.sort((x, y) => x - y);
  return { instructions: retired, mipsMedian: rounds[rounds.length >> 1]!, mips: rounds, cpuMipsMedian: cpuRounds[cpuRounds.length >> 1]!, tlbMisses: misses };
}

/** A call per iteration and branches both ways: blocks of two to five instructions. */
function callsLoop(iterations: number): Uint8Array {
  const a = new Assembler(32, 0x100000);
  const f = a.label('f');
  const skip = a.label('skip');
  a.asm('mov', reg('ecx'), imm(iterations));
  a.asm('mov', reg('esi'), imm(0x200000));
  const top = a.here();
  a.asm('mov', reg('eax'), mem({ base: 'esi', size: 4 }));
  a.call(f);
  a.asm('cmp', reg('eax'), imm(5));
  a.jcc('l', skip);
  a.asm('add', reg('ebx'), reg('eax'));
  a.bind(skip);
  a.asm('movzx', reg('edx'), mem({ base: 'esi', index: 'ecx', scale: 1, size: 1 }));
  a.asm('dec', reg('ecx'));
  a.jcc('ne', top);
  a.asm('hlt');
  a.bind(f);
  a.asm('push', reg('ebp'));
  a.asm('mov', reg('ebp'), reg('esp'));
  a.asm('add', reg('eax'), reg('ecx'));
  a.asm('pop', reg('ebp'));
  a.asm('ret');
  return a.assemble().bytes;
}

const ITER = 2_000_000;
const compute = measure('compute', flat, computeLoop(ITER));
const calls = measure('calls', flat, callsLoop(ITER / 2));
const paging = measure('paging', paged, pagingLoop(ITER / 4));
const result = {
  date: new Date().toISOString(), cpu: cpus()[0]?.model, node: process.version,
  // The compute loop's figures stay at the top level, where earlier results have them.
  instructions: compute.instructions, mipsMedian: compute.mipsMedian, mips: compute.mips, cpuMipsMedian: compute.cpuMipsMedian,
  calls,
  paging,
};
mkdirSync('bench-results', { recursive: true });
writeFileSync('bench-results/cpu.json', JSON.stringify(result, null, 2));
console.log(`## CPU interpreter\n\nMachine: ${cpus()[0]?.model}, ${cpus().length} cores, Node ${process.version}\n`);
// MIPS in process CPU time beside wall time: this machine is shared, and other jobs on its two
// cores lower the wall-time figure far more than the CPU-time one.
console.log(`| loop | instructions | median MIPS | rounds (MIPS) | median MIPS (CPU time) | TLB misses |\n|---|---:|---:|---|---:|---:|`);
const row = (name: string, m: typeof compute): string =>
  `| ${name} | ${m.instructions} | ${m.mipsMedian.toFixed(1)} | ${m.mips.map((x) => x.toFixed(1)).join(', ')} | ${m.cpuMipsMedian.toFixed(1)} | ${m.tlbMisses} |`;
console.log(row('compute (ALU + memory + branch)', compute));
console.log(row('calls (CALL/RET, PUSH/POP, CMP+Jcc: short blocks)', calls));
console.log(row('paging (1024 pages, INVLPG per touch, CR3 reload per sweep)', paging));
console.log('\nGoal (issue 4): >= 100 MIPS on the compute loop.');
