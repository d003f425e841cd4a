// pnpm bench:cpu — guest MIPS of the IA-32 interpreter on a compute-bound loop (flat 32-bit
// protected mode, no devices). Prints Markdown; writes bench-results/cpu.json.
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

const ITER = 2_000_000;
const code = computeLoop(ITER);
const rounds: number[] = [];
let retired = 0;
for (let r = 0; r < 5; r++) {
  const cpu = flat();
  cpu.mem.load(0x100000, code);
  cpu.eip = 0x100000;
  const t0 = process.hrtime.bigint();
  const stop = cpu.run(1e9);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (stop !== 'halted') throw new Error(`compute loop ended with ${stop}`);
  retired = cpu.retired;
  rounds.push(retired / ms / 1000);
}
rounds.sort((x, y) => x - y);
const median = rounds[rounds.length >> 1]!;
const result = { date: new Date().toISOString(), cpu: cpus()[0]?.model, node: process.version, instructions: retired, mipsMedian: median, mips: rounds };
mkdirSync('bench-results', { recursive: true });
writeFileSync('bench-results/cpu.json', JSON.stringify(result, null, 2));
console.log(`## CPU interpreter\n\nMachine: ${cpus()[0]?.model}, ${cpus().length} cores, Node ${process.version}\n`);
console.log(`| loop | instructions | median MIPS | rounds (MIPS) |\n|---|---:|---:|---|`);
console.log(`| compute (ALU + memory + branch) | ${retired} | ${median.toFixed(1)} | ${rounds.map((x) => x.toFixed(1)).join(', ')} |`);
console.log('\nGoal (issue 4): >= 100 MIPS on the compute loop. The paging-heavy loop is still to be written.');
