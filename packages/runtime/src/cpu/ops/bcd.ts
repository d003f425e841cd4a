// Decimal adjust: DAA DAS AAA AAS AAM AAD (SDM vol. 2, each instruction's page; the IA-32
// variants, where AAA/AAS adjust AX as a whole).
//
// Undefined flags follow Bochs's model of P6-and-later parts: DAA/DAS OF = 0; AAA/AAS
// SF = OF = 0 with ZF/PF from AL; AAM/AAD OF = AF = CF = 0. The host oracle masks them.
import type { Cpu, Handler } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';
import { szpOf } from './szp';

const al = (cpu: Cpu): number => cpu.regs[0]! & 0xff;
const setAL = (cpu: Cpu, v: number): void => { cpu.regs[0] = (cpu.regs[0]! & ~0xff) | (v & 0xff); };
const setAX = (cpu: Cpu, v: number): void => { cpu.regs[0] = (cpu.regs[0]! & ~0xffff) | (v & 0xffff); };

/** DAA (add: true) and DAS, SDM "Operation" step by step. */
function decimalAdjust(add: boolean): Handler {
  return (cpu) => {
    const oldAL = al(cpu);
    const oldCF = cpu.getFlag(F.CF);
    let v = oldAL, cf = false, af = false;
    if ((v & 0xf) > 9 || cpu.getFlag(F.AF)) {
      v = add ? v + 6 : v - 6;
      cf = oldCF || (add ? v > 0xff : v < 0);
      af = true;
    }
    if (oldAL > 0x99 || oldCF) {
      v = add ? v + 0x60 : v - 0x60;
      cf = true;
    } else if (add) {
      cf = false; // DAA's ELSE branch; DAS has none (SDM DAS)
    }
    setAL(cpu, v);
    cpu.setFlagBits(F.STATUS, szpOf(v, 8) | (cf ? F.CF : 0) | (af ? F.AF : 0));
  };
}

/** AAA (add: true) and AAS. */
function asciiAdjust(add: boolean): Handler {
  return (cpu) => {
    const adjust = (al(cpu) & 0xf) > 9 || cpu.getFlag(F.AF);
    let ax = cpu.regs[0]! & 0xffff;
    // AAS subtracts 6 from AX as a whole (a borrow reaches AH) and then 1 from AH (SDM AAS).
    if (adjust) ax = add ? ax + 0x106 : (ax - 6 - 0x100) & 0xffff;
    ax = (ax & 0xff00) | (ax & 0x0f);
    setAX(cpu, ax);
    const low = ax & 0xff;
    cpu.setFlagBits(F.STATUS, (szpOf(low, 8) & ~F.SF) | (adjust ? F.AF | F.CF : 0));
  };
}

export const BCD = {
  byMnemonic: {
    daa: decimalAdjust(true),
    das: decimalAdjust(false),
    aaa: asciiAdjust(true),
    aas: asciiAdjust(false),
    aam: (cpu, ins) => {
      const base = ins.imm & 0xff;
      if (base === 0) throw new Fault(Vector.DE);
      const t = al(cpu);
      const lo = t % base;
      setAX(cpu, (Math.floor(t / base) << 8) | lo);
      cpu.setFlagBits(F.STATUS, szpOf(lo, 8));
    },
    aad: (cpu, ins) => {
      const base = ins.imm & 0xff;
      const ax = cpu.regs[0]!;
      const v = ((ax & 0xff) + ((ax >>> 8) & 0xff) * base) & 0xff;
      setAX(cpu, v);
      cpu.setFlagBits(F.STATUS, szpOf(v, 8));
    },
  } satisfies Record<string, Handler>,
};
