// String instructions: MOVS CMPS SCAS LODS STOS INS OUTS, byte/word/dword, with REP/REPE/REPNE
// (SDM vol. 2, each instruction's page, and "REP/REPE/REPZ/REPNE/REPNZ").
//
// The source is seg:(E)SI with the instruction's segment (DS or the override); the destination
// is always ES:(E)DI. The address size picks SI/DI/CX or ESI/EDI/ECX; with a 16-bit address
// size only the low halves change and wrap. Registers are updated after each iteration, so a
// fault in iteration k leaves them as the SDM requires (the completed iterations done, EIP at
// the instruction): the execution loop does not advance EIP when a handler throws.
//
// A repeated instruction runs at most MAX_ITERATIONS iterations per step and then restarts
// itself (nextEip = eip), as the hardware does when it takes an interrupt between iterations
// (SDM REP, "interrupts"): a huge ECX cannot stall the machine.
import { Prefix, type Instruction } from '@ringshift/decoder';
import type { Cpu, Handler } from '../cpu';
import * as F from '../eflags';
import { LazyOp } from '../lazy-flags';
import { SegReg } from '../registers';
import { checkIo } from './system';

const MAX_ITERATIONS = 0x10000;

const ECX = 1, ESI = 6, EDI = 7;

/** Adds `delta` to a register used as an address/count, at the address size. */
function bump(cpu: Cpu, r: number, delta: number, a16: boolean): void {
  const v = cpu.regs[r]!;
  cpu.regs[r] = a16 ? (v & ~0xffff) | ((v + delta) & 0xffff) : (v + delta) | 0;
}

const at = (cpu: Cpu, r: number, a16: boolean): number => (a16 ? cpu.regs[r]! & 0xffff : cpu.regs[r]!);

function setAcc(cpu: Cpu, size: number, v: number): void {
  if (size === 32) cpu.regs[0] = v;
  else if (size === 16) cpu.regs[0] = (cpu.regs[0]! & ~0xffff) | (v & 0xffff);
  else cpu.regs[0] = (cpu.regs[0]! & ~0xff) | (v & 0xff);
}

const accOf = (cpu: Cpu, size: number): number => (size === 32 ? cpu.regs[0]! : cpu.regs[0]! & (size === 16 ? 0xffff : 0xff));

/** One iteration; `delta` is +/- the element size by DF. */
type Step = (cpu: Cpu, ins: Instruction, size: number, delta: number, a16: boolean) => void;

const movs: Step = (cpu, ins, size, delta, a16) => {
  const v = cpu.readSized(cpu.segmentOf(ins), at(cpu, ESI, a16), size);
  cpu.writeSized(SegReg.ES, at(cpu, EDI, a16), size, v);
  bump(cpu, ESI, delta, a16);
  bump(cpu, EDI, delta, a16);
};

const cmps: Step = (cpu, ins, size, delta, a16) => {
  const a = cpu.readSized(cpu.segmentOf(ins), at(cpu, ESI, a16), size);
  const b = cpu.readSized(SegReg.ES, at(cpu, EDI, a16), size);
  cpu.setLazy(LazyOp.Sub, a, b, (a - b) | 0, size); // flags of CMP SRC1, SRC2 (SDM CMPS)
  bump(cpu, ESI, delta, a16);
  bump(cpu, EDI, delta, a16);
};

const scas: Step = (cpu, _ins, size, delta, a16) => {
  const a = accOf(cpu, size);
  const b = cpu.readSized(SegReg.ES, at(cpu, EDI, a16), size);
  cpu.setLazy(LazyOp.Sub, a, b, (a - b) | 0, size);
  bump(cpu, EDI, delta, a16);
};

const lods: Step = (cpu, ins, size, delta, a16) => {
  setAcc(cpu, size, cpu.readSized(cpu.segmentOf(ins), at(cpu, ESI, a16), size));
  bump(cpu, ESI, delta, a16);
};

const stos: Step = (cpu, _ins, size, delta, a16) => {
  cpu.writeSized(SegReg.ES, at(cpu, EDI, a16), size, accOf(cpu, size));
  bump(cpu, EDI, delta, a16);
};

const ins_: Step = (cpu, _ins, size, delta, a16) => {
  const port = cpu.regs[2]! & 0xffff;
  const bytes = (size >>> 3) as 1 | 2 | 4;
  checkIo(cpu, port, bytes);
  // Check the destination before reading the port, so that a #GP/#PF on ES:DI does not
  // consume a device read that the restarted instruction would repeat.
  const off = at(cpu, EDI, a16);
  const lin = cpu.linear(SegReg.ES, off, bytes, true);
  cpu.phys(lin, true);
  cpu.phys((lin + bytes - 1) | 0, true);
  cpu.writeSized(SegReg.ES, off, size, cpu.ports.read(port, bytes));
  bump(cpu, EDI, delta, a16);
};

const outs: Step = (cpu, ins, size, delta, a16) => {
  const port = cpu.regs[2]! & 0xffff;
  const bytes = (size >>> 3) as 1 | 2 | 4;
  checkIo(cpu, port, bytes);
  const v = cpu.readSized(cpu.segmentOf(ins), at(cpu, ESI, a16), size);
  cpu.ports.write(port, bytes, v);
  bump(cpu, ESI, delta, a16);
};

/** `compares`: CMPS/SCAS, where REPE/REPNE also stop on ZF. */
function stringOp(step: Step, size: number, compares: boolean): Handler {
  const bytes = size >>> 3;
  return (cpu, ins) => {
    const a16 = ins.addressSize === 16;
    const delta = cpu.getFlag(F.DF) ? -bytes : bytes;
    const rep = ins.prefixes & (Prefix.Rep | Prefix.Repne);
    if (rep === 0) {
      step(cpu, ins, size, delta, a16);
      return;
    }
    // REPE stops when ZF = 0, REPNE when ZF = 1; the other string instructions treat both
    // prefixes as REP (SDM REP, table "Repeat Prefixes").
    const stopOnZf = (rep & Prefix.Repne) !== 0;
    for (let n = 0; ; n++) {
      if (at(cpu, ECX, a16) === 0) return;
      if (n === MAX_ITERATIONS) {
        cpu.nextEip = cpu.eip;
        return;
      }
      step(cpu, ins, size, delta, a16);
      bump(cpu, ECX, -1, a16);
      if (compares && cpu.getFlag(F.ZF) === stopOnZf) return;
    }
  };
}

export const STRING = {
  byForm: {
    Movsb_m8_m8: stringOp(movs, 8, false),
    Movsw_m16_m16: stringOp(movs, 16, false),
    Movsd_m32_m32: stringOp(movs, 32, false),
    Cmpsb_m8_m8: stringOp(cmps, 8, true),
    Cmpsw_m16_m16: stringOp(cmps, 16, true),
    Cmpsd_m32_m32: stringOp(cmps, 32, true),
    Scasb_AL_m8: stringOp(scas, 8, true),
    Scasw_AX_m16: stringOp(scas, 16, true),
    Scasd_EAX_m32: stringOp(scas, 32, true),
    Lodsb_AL_m8: stringOp(lods, 8, false),
    Lodsw_AX_m16: stringOp(lods, 16, false),
    Lodsd_EAX_m32: stringOp(lods, 32, false),
    Stosb_m8_AL: stringOp(stos, 8, false),
    Stosw_m16_AX: stringOp(stos, 16, false),
    Stosd_m32_EAX: stringOp(stos, 32, false),
    Insb_m8_DX: stringOp(ins_, 8, false),
    Insw_m16_DX: stringOp(ins_, 16, false),
    Insd_m32_DX: stringOp(ins_, 32, false),
    Outsb_DX_m8: stringOp(outs, 8, false),
    Outsw_DX_m16: stringOp(outs, 16, false),
    Outsd_DX_m32: stringOp(outs, 32, false),
  } satisfies Record<string, Handler>,
};
