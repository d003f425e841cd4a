// Flag instructions: CLC STC CMC CLD STD CLI STI LAHF SAHF (SDM vol. 2). CLI/STI follow the
// IOPL rule of the reference sheet (shared/reference/sensitive-instructions.md, part (b)).
import type { Cpu, Handler } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';
import { UnsupportedFeature } from '../interrupts';

/** CLI/STI are allowed when CPL <= IOPL in protected mode (#GP(0) otherwise; VME/PVI not implemented). */
function checkIopl(cpu: Cpu): void {
  if (!cpu.protectedMode) return;
  const iopl = (cpu.eflags & F.IOPL) >>> 12;
  if (cpu.v86 ? iopl < 3 : cpu.cpl > iopl) {
    if (cpu.cr4 & 0x3) throw new UnsupportedFeature('CR4.VME / CR4.PVI virtual interrupt flag');
    throw new Fault(Vector.GP, 0);
  }
}

const cli: Handler = (cpu) => {
  checkIopl(cpu);
  cpu.setFlagBits(F.IF, 0);
};

const sti: Handler = (cpu) => {
  checkIopl(cpu);
  // STI that sets IF delays interrupts until after the next instruction (SDM STI).
  if (!cpu.getFlag(F.IF)) cpu.inhibitInterrupts = true;
  cpu.setFlagBits(F.IF, F.IF);
};

export const FLAGS_OPS = {
  byMnemonic: {
    clc: (cpu: Cpu) => cpu.setFlagBits(F.CF, 0),
    stc: (cpu: Cpu) => cpu.setFlagBits(F.CF, F.CF),
    cmc: (cpu: Cpu) => cpu.setFlagBits(F.CF, cpu.getFlag(F.CF) ? 0 : F.CF),
    cld: (cpu: Cpu) => cpu.setFlagBits(F.DF, 0),
    std: (cpu: Cpu) => cpu.setFlagBits(F.DF, F.DF),
    cli,
    sti,
    // LAHF/SAHF: AH <-> SF:ZF:0:AF:0:PF:1:CF (SDM LAHF/SAHF).
    lahf: (cpu: Cpu) => { cpu.regs[0] = (cpu.regs[0]! & ~0xff00) | (((cpu.eflags & 0xd5) | 2) << 8); },
    sahf: (cpu: Cpu) => cpu.setFlagBits(F.SF | F.ZF | F.AF | F.PF | F.CF, (cpu.regs[0]! >>> 8) & 0xd5),
  } satisfies Record<string, Handler>,
};
