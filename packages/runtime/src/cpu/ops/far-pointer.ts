// Far-pointer loads LDS/LES/LSS/LFS/LGS r16/r32, m16:16 / m16:32 (SDM vol. 2 "LDS/LES/LFS/LGS/
// LSS—Load Far Pointer"). The offset (16 or 32 bits, by operand size) is read at the operand's
// address and the selector from the word after it; then the segment register is loaded with
// every check of MOV to Sreg (segments.ts loadDataSegment: protected mode — null SS #GP(0), SS
// RPL/DPL = CPL and writable data, DS/ES/FS/GS readable with the DPL rule, #NP/#SS for not
// present; real and virtual-8086 mode — base = selector * 16); only then the general register.
// A fault at any step leaves both registers unchanged ("Operation": the destination is written
// last).
//
// No interrupt shadow for LSS: SDM vol. 3A §6.8.3 inhibits interrupts after MOV SS and POP SS
// only, which need a second instruction to load ESP; LSS loads SS:ESP in one instruction, which
// is why it exists. Bochs (MOV_SwEw/POP_Sw set the inhibit, LSS_GdMp does not) and QEMU's
// translator agree.
import type { Handler } from '../cpu';
import { SegReg } from '../registers';
import { loadDataSegment } from '../segments';

function loadFar(seg: number): Handler {
  return (cpu, ins) => {
    const size = ins.operandSize === 16 ? 16 : 32;
    const s = cpu.segmentOf(ins), ea = cpu.effectiveAddress(ins);
    const offset = cpu.readSized(s, ea, size);
    const selector = cpu.read16(s, (ea + (size >>> 3)) | 0);
    loadDataSegment(cpu, seg, selector);
    cpu.writeReg(ins.opRegs[0]!, offset);
  };
}

export const FAR_POINTER = {
  byMnemonic: {
    lds: loadFar(SegReg.DS),
    les: loadFar(SegReg.ES),
    lss: loadFar(SegReg.SS),
    lfs: loadFar(SegReg.FS),
    lgs: loadFar(SegReg.GS),
  } satisfies Record<string, Handler>,
};
