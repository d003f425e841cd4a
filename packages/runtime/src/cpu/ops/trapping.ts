// Base IA-32 instructions whose work is (mostly) to raise an exception: BOUND (#BR), INT1/ICEBP
// (#DB), UD0/UD1/UD2 (#UD), RSM (#UD: this processor has no SMM) and RDPMC (#GP: it has no
// performance counters). Each is an instruction of the base architecture, so each has a handler
// rather than a row in absent-features.ts (which is for features CPUID can deny).
import type { Handler } from '../cpu';
import { Fault, Vector } from '../fault';

/**
 * BOUND r16, m16&16 / r32, m32&32 (SDM vol. 2 BOUND): the signed index must lie in
 * [lower, upper] read from the operand (lower first), else #BR, a fault (EIP at BOUND).
 */
function bound(size: 16 | 32): Handler {
  return (cpu, ins) => {
    const s = cpu.segmentOf(ins), ea = cpu.effectiveAddress(ins);
    const sx = (v: number): number => (size === 16 ? (v << 16) >> 16 : v | 0);
    const lower = sx(cpu.readSized(s, ea, size));
    const upper = sx(cpu.readSized(s, (ea + (size >>> 3)) | 0, size));
    const index = sx(cpu.readReg(ins.opRegs[0]!));
    if (index < lower || index > upper) throw new Fault(Vector.BR);
  };
}

const ud: Handler = () => {
  throw new Fault(Vector.UD);
};

/**
 * RDPMC (SDM vol. 2 RDPMC): #GP(0) at CPL > 0 unless CR4.PCE (not implemented here, so always
 * clear); #GP(0) for an ECX that names no counter, and this processor has none (CPUID leaf 0Ah,
 * architectural performance monitoring, is not reported).
 */
const rdpmc: Handler = () => {
  throw new Fault(Vector.GP, 0);
};

export const TRAPPING = {
  byForm: {
    Bound_r16_m1616: bound(16),
    Bound_r32_m3232: bound(32),
    // INT1 (F1): a #DB trap delivered like a hardware exception (no gate-DPL check, EXT = 1 in
    // error codes), with the return address after the instruction (SDM vol. 2 INTn/INTO/INT3/INT1,
    // vol. 3A §6.13 "EXT"; VT-x reports it as a privileged software exception, type 5).
    Int1: (cpu) => cpu.raise(Vector.DB, -1, false, cpu.nextEip),
    Ud0_r16_rm16: ud,
    Ud0_r32_rm32: ud,
    Ud1_r16_rm16: ud,
    Ud1_r32_rm32: ud,
    Ud2: ud,
    // RSM outside system-management mode is #UD (SDM vol. 2 RSM); this CPU never enters SMM.
    Rsm: ud,
    Rdpmc: rdpmc,
  } satisfies Record<string, Handler>,
};
