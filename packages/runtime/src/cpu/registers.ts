// Maps the decoder's register ids onto the CPU's storage: general registers live in one
// Int32Array (EAX..EDI), 8- and 16-bit registers are views into those slots.
import { REGISTER_COUNT, Reg } from '@ringshift/decoder';

/** Index 0-7 into Cpu.regs for a general register id, or -1. */
export const GPR_INDEX = new Int8Array(REGISTER_COUNT).fill(-1);
/** Bit position of the register inside its 32-bit slot (8 for AH..BH). */
export const GPR_SHIFT = new Uint8Array(REGISTER_COUNT);
/** Width in bits (8, 16, 32), or 0 when not a general register. */
export const GPR_WIDTH = new Uint8Array(REGISTER_COUNT);

for (let n = 0; n < 4; n++) {
  GPR_INDEX[Reg.AL + n] = n; GPR_WIDTH[Reg.AL + n] = 8;
  GPR_INDEX[Reg.AH + n] = n; GPR_WIDTH[Reg.AH + n] = 8; GPR_SHIFT[Reg.AH + n] = 8;
}
for (let n = 0; n < 8; n++) {
  GPR_INDEX[Reg.AX + n] = n; GPR_WIDTH[Reg.AX + n] = 16;
  GPR_INDEX[Reg.EAX + n] = n; GPR_WIDTH[Reg.EAX + n] = 32;
}

/** Segment register index (ES=0, CS=1, SS=2, DS=3, FS=4, GS=5, the SDM's Sreg encoding) for a register id, or -1. */
export const SEG_INDEX = new Int8Array(REGISTER_COUNT).fill(-1);
for (let n = 0; n < 6; n++) SEG_INDEX[Reg.ES + n] = n;

export const SegReg = { ES: 0, CS: 1, SS: 2, DS: 3, FS: 4, GS: 5 } as const;
export const GprIndex = { EAX: 0, ECX: 1, EDX: 2, EBX: 3, ESP: 4, EBP: 5, ESI: 6, EDI: 7 } as const;
