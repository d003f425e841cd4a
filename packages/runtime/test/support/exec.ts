// Runs a short program in flat 32-bit mode from a given register/flag/memory state, and calls
// one handler directly (for the faults, which have no IDT to go to in these tests).
import { Assembler, Decoder, Instruction } from '@ringshift/decoder';
import { type Cpu, Eflags } from '../../src/index';
import { HANDLERS, flatCpu, type RecordingPorts } from './flat';

export const ORIGIN = 0x100000;
const NAMES = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'] as const;
export type Gpr = (typeof NAMES)[number];

export interface Start {
  regs?: Partial<Record<Gpr, number>>;
  /** Status and DF bits to set (others clear). */
  flags?: number;
  mem?: [address: number, bytes: readonly number[]][];
  /** Anything else to configure (segment bases and limits, ...). */
  setup?: (cpu: Cpu) => void;
}

function prepare(start: Start): { cpu: Cpu; ports: RecordingPorts } {
  const made = flatCpu();
  const { cpu } = made;
  for (const [name, v] of Object.entries(start.regs ?? {})) cpu.regs[NAMES.indexOf(name as Gpr)] = v;
  cpu.eflags = start.flags ?? 0;
  for (const [at, bytes] of start.mem ?? []) cpu.mem.load(at, Uint8Array.from(bytes));
  start.setup?.(cpu);
  return made;
}

/** Assembles `build` + HLT at ORIGIN and runs it from `start`. */
export function exec(start: Start, build: (a: Assembler) => void): { cpu: Cpu; ports: RecordingPorts } {
  const made = prepare(start);
  const a = new Assembler(32, ORIGIN);
  build(a);
  a.asm('hlt');
  made.cpu.mem.load(ORIGIN, a.assemble().bytes);
  made.cpu.eip = ORIGIN;
  made.cpu.run(1_000_000);
  if (!made.cpu.halted) throw new Error(`did not reach HLT (eip ${made.cpu.eip.toString(16)})`);
  return made;
}

/** Decodes one instruction from `bytes` and runs its handler; returns the thrown value, if any. */
export function execOne(start: Start, bytes: readonly number[]): { cpu: Cpu; thrown: unknown } {
  const { cpu } = prepare(start);
  const ins = new Instruction();
  new Decoder(32, Uint8Array.from(bytes), ORIGIN, 0).decodeAt(ins);
  if (!ins.valid) throw new Error('invalid instruction bytes');
  cpu.eip = ORIGIN;
  cpu.nextEip = ORIGIN + ins.length;
  try {
    HANDLERS[ins.form]!(cpu, ins);
    return { cpu, thrown: undefined };
  } catch (e) {
    return { cpu, thrown: e };
  }
}

/** The status flags named in `which`, from the CPU's EFLAGS. */
export const flags = (cpu: Cpu, which = Eflags.STATUS): number => cpu.eflags & which;

export const u32 = (v: number): number => v >>> 0;
