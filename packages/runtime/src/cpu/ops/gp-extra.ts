// Later general-purpose additions with legacy encodings: POPCNT, LZCNT, TZCNT, MOVBE, BSWAP,
// ADCX, ADOX (SDM vol. 2, each instruction's page). CRC32 (SSE4.2) is not here.
//
// CPUID (ops/system.ts cpuidLeaf) reports POPCNT (leaf 1 ECX bit 23), MOVBE (leaf 1 ECX bit 22),
// LZCNT (ABM, leaf 8000_0001h ECX bit 5) and ADX (leaf 7 EBX bit 19). TZCNT is enumerated by BMI1
// (leaf 7 EBX bit 3), which also covers VEX-encoded ANDN/BEXTR/BLSI/BLSMSK/BLSR that we do not
// implement, so BMI1 is NOT reported. A CPU without BMI1 runs F3 0F BC as BSF (the F3 prefix is
// ignored); we still execute it as TZCNT, as every current Intel and AMD part does. For a nonzero
// source both write the index of the lowest set bit; they differ in the flags (BSF: ZF = source
// is 0; TZCNT: CF = source is 0, ZF = result is 0) and for a zero source (BSF leaves the
// destination, TZCNT writes the operand size). Compilers emit TZCNT without checking CPUID only
// where either meaning will do, so taking the modern one is the safe side; reporting BMI1 would
// promise the VEX forms, which end in #UD here.
import { OpKind, type Instruction } from '@ringshift/decoder';
import type { Cpu, Handler } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';
import { OPSIZE } from '../handlers';
import { sizeMask } from './szp';

const popcount32 = (v: number): number => {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
};

/** Byte order of the low `size` bits reversed (16 or 32). */
const swapBytes = (v: number, size: number): number =>
  size === 16
    ? ((v & 0xff) << 8) | ((v >>> 8) & 0xff)
    : ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);

/** POPCNT: DEST = number of set bits; OF SF ZF AF CF PF cleared, then ZF = (SRC = 0) (SDM POPCNT). */
const popcnt: Handler = (cpu, ins) => {
  const size = OPSIZE[ins.form]!;
  const v = cpu.readOp(ins, 1, size) & sizeMask(size);
  cpu.writeOp(ins, 0, size, popcount32(v));
  cpu.setFlagBits(F.STATUS, v === 0 ? F.ZF : 0);
};

/**
 * LZCNT/TZCNT: DEST = the number of leading/trailing zero bits of SRC (the operand size when SRC
 * is 0); CF = (SRC = 0), ZF = (DEST = 0). OF, SF, PF, AF are undefined and left unchanged
 * (SDM LZCNT, TZCNT).
 */
function zeroCount(leading: boolean): Handler {
  return (cpu: Cpu, ins: Instruction) => {
    const size = OPSIZE[ins.form]!;
    const v = cpu.readOp(ins, 1, size) & sizeMask(size);
    let n: number;
    if (v === 0) n = size;
    else if (leading) n = Math.clz32(v) - (32 - size);
    else n = 31 - Math.clz32(v & -v);
    cpu.writeOp(ins, 0, size, n);
    cpu.setFlagBits(F.CF | F.ZF, (v === 0 ? F.CF : 0) | (n === 0 ? F.ZF : 0));
  };
}

/**
 * MOVBE: a load or store with the bytes reversed; memory operand only (the register-register
 * encoding is #UD, SDM MOVBE). Flags unchanged.
 */
const movbe: Handler = (cpu, ins) => {
  const size = OPSIZE[ins.form]!;
  const memAt = ins.opKinds[0] === OpKind.Memory ? 0 : 1;
  if (ins.opKinds[memAt] !== OpKind.Memory) throw new Fault(Vector.UD);
  const v = cpu.readOp(ins, 1, size);
  cpu.writeOp(ins, 0, size, swapBytes(v, size) & sizeMask(size));
};

/**
 * BSWAP r16 (BSWAP r32 is in ops/data.ts). The SDM leaves the result undefined with a 16-bit
 * operand size; Intel and AMD processors (and Bochs, QEMU) clear the 16-bit register, keeping
 * bits 31:16 of the full one, which is what is done here (checked against the host in test/host/).
 */
const bswap16: Handler = (cpu, ins) => cpu.writeReg(ins.opRegs[0]!, 0);

/**
 * ADCX/ADOX: DEST = DEST + SRC + carry, unsigned, where the carry in and out is CF (ADCX) or OF
 * (ADOX); every other flag is unchanged (SDM ADCX, ADOX).
 */
function addCarry(flag: number): Handler {
  return (cpu, ins) => {
    const d = cpu.readOp(ins, 0, 32) >>> 0;
    const s = cpu.readOp(ins, 1, 32) >>> 0;
    const sum = d + s + (cpu.getFlag(flag) ? 1 : 0);
    cpu.writeOp(ins, 0, 32, sum | 0);
    cpu.setFlagBits(flag, sum > 0xffffffff ? flag : 0);
  };
}

export const GP_EXTRA = {
  byMnemonic: {
    popcnt,
    lzcnt: zeroCount(true),
    tzcnt: zeroCount(false),
    movbe,
    adcx: addCarry(F.CF),
    adox: addCarry(F.OF),
  } satisfies Record<string, Handler>,
  byForm: { Bswap_r16: bswap16 } satisfies Record<string, Handler>,
};
