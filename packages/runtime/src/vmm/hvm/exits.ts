// VM exits as VT-x reports them: Intel's basic exit reason (VMX_EXIT_REASON, SDM vol. 3D
// appendix C) and the exit qualification, guest-linear and guest-physical address, instruction
// length and instruction information exactly as SDM vol. 3C §28.2 (and shared/reference/vmx.md
// §3, §7) define them; plus writing them into the VMCS's exit-information fields and event
// injection on VM entry (§27.6). Each builder returns the common Exit record (cpu/intercept.ts)
// that ExitAccounting counts, extended by the two fields only hvm has.
import { VMX_EXIT_REASON } from '@ringshift/decoder';
import { EventKind, crQualification, interruptionInfo, ioQualification, type CrAccess, type ExceptionEvent, type Exit, type IoAccess } from '../../cpu/intercept';
import { VMCS } from './vmcs-fields';
import type { Vmcs } from './vmcs';

export interface HvmExit extends Exit {
  /** Guest-physical address (VMCS 0x2400): EPT violations and misconfigurations, else -1. */
  readonly guestPhysical: number;
  /** VM-exit instruction information (VMCS 0x440E) where §28.2.5 defines it, else 0. */
  readonly instructionInfo: number;
}

const R = { ...VMX_EXIT_REASON } as const;

// One literal with every field (no spreads): exits are built on hot paths (polling I/O loops).
function hvmExit(reason: number, f: Partial<Omit<HvmExit, 'reason'>> = NONE): HvmExit {
  return {
    reason, qualification: f.qualification ?? 0, interruptionInfo: f.interruptionInfo ?? 0, errorCode: f.errorCode ?? -1,
    linear: f.linear ?? 0, instructionLength: f.instructionLength ?? 0, guestPhysical: f.guestPhysical ?? -1, instructionInfo: f.instructionInfo ?? 0,
  };
}
const NONE: Partial<Omit<HvmExit, 'reason'>> = Object.freeze({});

/**
 * Exception or NMI (0): a guest exception whose exception-bitmap bit selects it. #PF:
 * qualification = the linear address (CR2 not yet written). INT3/INTO (software exceptions)
 * report their instruction length (§28.2.4).
 */
export function exceptionExit(e: ExceptionEvent, pfLinear = 0, length = 0): HvmExit {
  const soft = e.kind === EventKind.SOFTWARE_EXCEPTION || e.kind === EventKind.PRIVILEGED_SOFTWARE_EXCEPTION;
  return hvmExit(R.EXCEPTION_OR_NMI, {
    interruptionInfo: interruptionInfo(e), errorCode: e.errorCode, qualification: e.vector === 14 ? pfLinear >>> 0 : 0,
    instructionLength: soft ? length : 0,
  });
}

/** External interrupt (1), with "acknowledge interrupt on exit": the vector in the exit interruption information. */
export function externalInterruptExit(vector: number): HvmExit {
  return hvmExit(R.EXTERNAL_INTERRUPT, { interruptionInfo: ((vector & 0xff) | (EventKind.EXTERNAL_INTERRUPT << 8) | (1 << 31)) >>> 0 });
}

export const tripleFaultExit = (): HvmExit => hvmExit(R.TRIPLE_FAULT);
export const interruptWindowExit = (): HvmExit => hvmExit(R.INTERRUPT_WINDOW);

/**
 * Task switch (9): new TSS selector, source 0 CALL, 1 IRET, 2 JMP, 3 task gate in the IDT
 * (§28.2.1, table 28-2). The instruction length is that of the CALL/IRET/JMP or of the INT n
 * that met a task gate (§28.2.4); the caller gives 0 for exceptions and external interrupts.
 */
export function taskSwitchExit(selector: number, source: 0 | 1 | 2 | 3, length: number): HvmExit {
  return hvmExit(R.TASK_SWITCH, { qualification: ((selector & 0xffff) | (source << 30)) >>> 0, instructionLength: length });
}

/** Exits whose qualification is 0 and that report only the instruction length: CPUID, HLT, INVD, RDPMC, RDTSC, VMCALL, WBINVD, RDMSR, WRMSR, PAUSE. */
export function instructionExit(reason: number, length: number): HvmExit {
  return hvmExit(reason, { instructionLength: length });
}

/** INVLPG (14): qualification = the operand's linear address. */
export function invlpgExit(linear: number, length: number): HvmExit {
  return hvmExit(R.INVLPG, { qualification: linear >>> 0, instructionLength: length });
}

/**
 * Control-register access (28): CR number, access type, GPR, LMSW source data; bit 6 = LMSW
 * with a memory operand, whose linear address goes to the guest-linear address field.
 */
export function crAccessExit(a: CrAccess, length: number, lmswMemory: number | null = null): HvmExit {
  const q = crQualification(a) | (a.type === 3 && lmswMemory !== null ? 1 << 6 : 0);
  return hvmExit(R.CONTROL_REGISTER_ACCESS, { qualification: q >>> 0, instructionLength: length, linear: lmswMemory ?? 0 });
}

/** MOV DR (29): DR number (2:0), direction (bit 4: 1 = MOV from DR), GPR (11:8). */
export function movDrExit(dr: number, fromDr: boolean, gpr: number, length: number): HvmExit {
  return hvmExit(R.MOV_DR, { qualification: ((dr & 7) | (fromDr ? 1 << 4 : 0) | ((gpr & 15) << 8)) >>> 0, instructionLength: length });
}

/** Segment numbering of instruction information bits 17:15 (§28.2.5): ES, CS, SS, DS, FS, GS. */
export interface StringIo {
  /** ES:EDI for INS, seg:ESI for OUTS. */
  readonly linear: number;
  readonly addressSize: 16 | 32;
  /** Segment register index 0-5 (ES, CS, SS, DS, FS, GS). */
  readonly segment: number;
}

/** I/O instruction (30); INS/OUTS also give the guest-linear address and instruction information (address size 9:7, segment 17:15). */
export function ioExit(a: IoAccess, length: number, str: StringIo | null = null): HvmExit {
  if (str === null) return hvmExit(R.IO_INSTRUCTION, { qualification: ioQualification(a), instructionLength: length });
  const info = ((str.addressSize === 32 ? 1 : 0) << 7) | ((str.segment & 7) << 15);
  return hvmExit(R.IO_INSTRUCTION, { qualification: ioQualification(a), instructionLength: length, linear: str.linear >>> 0, instructionInfo: info });
}

/** The memory operand or register of LGDT/LIDT/SGDT/SIDT and LLDT/LTR/SLDT/STR, as the instruction-information fields number them. */
export interface DescriptorOperand {
  /** Register number 0-7 (EAX..EDI) when the operand is a register (LLDT/LTR/SLDT/STR only), else -1. */
  readonly reg: number;
  /** Memory operand: scaling (0-3 for 1/2/4/8), index and base GPR (-1: none), segment (0-5), address size, displacement. */
  readonly scale: number;
  readonly index: number;
  readonly base: number;
  readonly segment: number;
  readonly addressSize: 16 | 32;
  readonly displacement: number;
}

/** Instruction identity (bits 29:28): 0 SGDT, 1 SIDT, 2 LGDT, 3 LIDT, and 0 SLDT, 1 STR, 2 LLDT, 3 LTR. */
export type DescriptorInstruction = 0 | 1 | 2 | 3;

/**
 * GDTR/IDTR access (46): instruction information per SDM vol. 3C §28.2.5 table "Format of the
 * VM-Exit Instruction-Information Field as Used for LIDT, LGDT, SIDT, or SGDT": scaling 1:0,
 * address size 9:7, operand size 11 (1 = 32-bit), segment 17:15, index 21:18 (22 invalid),
 * base 26:23 (27 invalid), identity 29:28. The qualification is the displacement.
 */
export function gdtrIdtrExit(identity: DescriptorInstruction, op: DescriptorOperand, operandSize: 16 | 32, length: number): HvmExit {
  const info = memoryInfo(op) | (operandSize === 32 ? 1 << 11 : 0) | (identity << 28);
  return hvmExit(R.GDTR_IDTR_ACCESS, { qualification: op.displacement >>> 0, instructionLength: length, instructionInfo: info >>> 0 });
}

/**
 * LDTR/TR access (47): the LLDT/LTR/SLDT/STR table of §28.2.5: as for GDTR/IDTR but bits 6:3
 * the register operand and bit 10 = 1 for a register operand (then the memory fields are
 * undefined, written 0 here, and so is the qualification).
 */
export function ldtrTrExit(identity: DescriptorInstruction, op: DescriptorOperand, length: number): HvmExit {
  const info = op.reg >= 0 ? ((op.reg & 15) << 3) | (1 << 10) : memoryInfo(op);
  return hvmExit(R.LDTR_TR_ACCESS, { qualification: op.reg >= 0 ? 0 : op.displacement >>> 0, instructionLength: length, instructionInfo: (info | (identity << 28)) >>> 0 });
}

function memoryInfo(op: DescriptorOperand): number {
  return (op.scale & 3) | ((op.addressSize === 32 ? 1 : 0) << 7) | ((op.segment & 7) << 15)
    | (op.index >= 0 ? (op.index & 15) << 18 : 1 << 22) | (op.base >= 0 ? (op.base & 15) << 23 : 1 << 27);
}

/**
 * EPT violation (48): qualification bits 2:0 the access (read, write, fetch), 5:3 what the
 * walk allowed (R, W, X), 7 guest-linear address valid, 8 access to the translation rather than
 * to a paging-structure entry (§28.2.1, table 28-7).
 */
export function eptViolationExit(gpa: number, accessQual: number, rights: number, linear: number): HvmExit {
  const q = (accessQual & 0x187) | ((rights & 7) << 3);
  return hvmExit(R.EPT_VIOLATION, { qualification: q >>> 0, guestPhysical: gpa >>> 0, linear: q & (1 << 7) ? linear >>> 0 : 0 });
}

/** EPT misconfiguration (49): no qualification; the guest-physical address is reported. */
export function eptMisconfigurationExit(gpa: number): HvmExit {
  return hvmExit(R.EPT_MISCONFIGURATION, { guestPhysical: gpa >>> 0 });
}

// Encodings as module-local constants (exit-time writes are hot; see vmcs.ts).
const F_REASON = VMCS.VM_EXIT_REASON, F_QUAL = VMCS.EXIT_QUALIFICATION, F_LEN = VMCS.VM_EXIT_INSTRUCTION_LEN;
const F_INFO = VMCS.VMX_INSTRUCTION_INFO, F_LINEAR = VMCS.GUEST_LINEAR_ADDRESS, F_INTR = VMCS.VM_EXIT_INTR_INFO;
const F_INTR_ERR = VMCS.VM_EXIT_INTR_ERROR_CODE, F_GPA = VMCS.GUEST_PHYSICAL_ADDRESS;

/** Writes the exit-information fields of a VM exit (§28.2). */
export function writeExitInfo(vmcs: Vmcs, e: HvmExit): void {
  vmcs.setExitInfo(F_REASON, e.reason);
  vmcs.setExitInfo(F_QUAL, e.qualification);
  vmcs.setExitInfo(F_LEN, e.instructionLength);
  vmcs.setExitInfo(F_INFO, e.instructionInfo);
  vmcs.setExitInfo(F_LINEAR, e.linear);
  vmcs.setExitInfo(F_INTR, e.interruptionInfo);
  vmcs.setExitInfo(F_INTR_ERR, e.errorCode < 0 ? 0 : e.errorCode);
  if (e.guestPhysical >= 0) vmcs.setExitInfo(F_GPA, e.guestPhysical);
}

/**
 * Event injection on VM entry (§27.6): the VM-entry interruption-information field (0x4016),
 * its error code (0x4018) and, for software interrupts and exceptions, the instruction length
 * (0x401A). The caller then lets the CPU deliver the event through the guest's IDT.
 */
export function writeInjection(vmcs: Vmcs, e: ExceptionEvent, instructionLength: number): number {
  const info = interruptionInfo(e);
  vmcs.vmwrite(VMCS.VM_ENTRY_INTR_INFO_FIELD, info);
  vmcs.vmwrite(VMCS.VM_ENTRY_EXCEPTION_ERROR_CODE, e.errorCode < 0 ? 0 : e.errorCode);
  const soft = e.kind === EventKind.SOFTWARE_INTERRUPT || e.kind === EventKind.SOFTWARE_EXCEPTION || e.kind === EventKind.PRIVILEGED_SOFTWARE_EXCEPTION;
  vmcs.vmwrite(VMCS.VM_ENTRY_INSTRUCTION_LEN, soft ? instructionLength : 0);
  return info;
}

/**
 * Whether a guest exception exits (§26.2: exception bitmap; for #PF, it exits iff
 * ((PFEC & mask) == match) equals bit 14 of the bitmap). INT n (type 4) never does.
 */
export function exceptionExits(vmcs: Vmcs, e: ExceptionEvent): boolean {
  if (e.kind === EventKind.SOFTWARE_INTERRUPT || e.kind === EventKind.EXTERNAL_INTERRUPT) return false;
  const bit = (vmcs.vmread(VMCS.EXCEPTION_BITMAP) >>> e.vector) & 1;
  if (e.vector !== 14) return bit === 1;
  const matches = ((e.errorCode & vmcs.vmread(VMCS.PAGE_FAULT_ERROR_CODE_MASK)) >>> 0) === vmcs.vmread(VMCS.PAGE_FAULT_ERROR_CODE_MATCH);
  return matches === (bit === 1);
}
