// The interception seam: how a monitor (a VT-x-style or ring-deprivileging backend) sees and
// takes over the events the CPU would otherwise handle natively. The native backend installs
// nothing, so every hook site costs one null check:
//
//     const m = cpu.interceptor;                 // Interceptor | null
//     if (m !== null && !proceed(m.msr(cpu, access))) return;
//
// Contract of every hook (a Verdict):
//   CONTINUE  the CPU carries on natively, as if no monitor were installed.
//   HANDLED   the monitor has produced the effect itself (e.g. written EDX:EAX for RDMSR, or
//             delivered an exception its own way): the CPU skips its own action and, for an
//             instruction, retires it (EIP = next instruction).
//   an Exit   the CPU stops before the instruction (or event) changes any architectural state,
//             EIP still at the instruction, like a fault. proceed() throws a MonitorExit, which
//             is not a Fault, so Cpu.step() lets it out of run(); the monitor resumes the guest
//             with run() after acting on `exit`.
//
// Where the hooks run, in QEMU's order (decode-new.c.inc: #UD checks, then CPL/IOPL #GP, then the
// intercept) which is also Bochs's for all but MOV DR, XSETBV and the VMX instructions
// (shared/reference/sensitive-instructions.md, "#GP versus VM exit order"):
//   instruction  in Cpu.step() after the handler is found (NOTE: today this is before the
//                handler's own CPL/IOPL checks, which still live in each handler, so a monitor
//                that must not exit where the CPU faults first makes those checks itself, as
//                vmm/hvm does with checkIo() and its CPL tests), for forms whose classOf(form)
//                is privileged, IOPL-sensitive or sensitive-unprivileged, exits VMX non-root
//                operation unconditionally (vmExit.when 'always': CPUID), or is PAUSE (blocks.ts
//                SENSITIVE; classOf is precomputed per form id, a Uint8Array of "sensitive" per
//                form keeps the fast path to one load and compare). This one hook is where I/O
//                (IN/OUT/INS/OUTS) and control-register accesses (MOV CR, CLTS, LMSW) are seen:
//                IoAccess and CrAccess below are the records a monitor builds from the
//                instruction, with the VT-x qualifications they give.
//   taskSwitch   in cpu/task-switch.ts, once a far JMP/CALL, an IRET with NT = 1 or an event
//                through an IDT task gate has passed the checks on the gate and the new TSS
//                descriptor, before either TSS is read or written (Bochs tasking.cc's order
//                for VMexit_TaskSwitch; VT-x exits on every task switch, vmx.md §3).
//   msr          in RDMSR/WRMSR after the CPL check, before the MSR index is looked up (so a
//                monitor may implement MSRs this CPU does not know).
//   exception    in Cpu.raise() before deliverException(): for faults, traps, INT n and
//                external interrupts alike (`kind` tells them apart, as the interruption-
//                information type field of SDM vol. 3C §25.9.2 does).
//   pageWalk     on every TLB miss (tlb.ts), after the walk and before its outcome takes effect:
//                before the TLB is filled, and for a fault before CR2 is written and #PF raised
//                (a VT-x #PF exit leaves guest CR2 unwritten, vmx.md §3). The PageWalk carries
//                the entries read, the combined rights and the outcome. CONTINUE: the outcome
//                stands. HANDLED: the outcome the monitor wrote into the PageWalk replaces it
//                (physical >= 0: use that translation, e.g. a shadow page table's; else
//                errorCode >= 0: #PF with that code, e.g. to trap writes to guest page tables;
//                both -1: the monitor fixed the tables, walk again once). An Exit: stop before
//                the access. TLB hits do not call it: a monitor that changes its answers flushes
//                the TLB (cpu.tlb.flushAll()), as guest software would with INVLPG or MOV CR3.
//
// Guest-physical translation (a second seam, for nested paging: vmm/hvm/ept.ts): `cpu.guestPhysical`
// (a GuestPhysicalMap, null for every backend but hvm) turns each guest-physical address into the
// host-physical address the access uses. It applies to every guest-physical access: with paging
// off in Cpu.phys() (one null check on that path), on a TLB miss to each paging-structure entry
// the walk reads or updates (paging.ts) and to the walk's result (tlb.ts), and to the PAE PDPTE
// loads of MOV to CR (paging.ts pdptesFor) and the real-mode IVT reads (interrupts.ts). The TLB
// caches the combined linear -> host-physical translation, so a hit costs nothing more; a
// translation the map marks not cacheable (an emulated device access) is used once and not
// cached. The map may throw MonitorExit (an EPT violation the monitor does not resolve).
import type { InstructionClass } from '@ringshift/decoder';
import { VMX_EXIT_REASON } from '@ringshift/decoder';
import type { Instruction } from '@ringshift/decoder';
import type { Cpu } from './cpu';
import type { WalkRecord } from './paging';

export const CONTINUE = 0;
export const HANDLED = 1;

/**
 * Why the CPU stopped for the monitor. `reason` is an Intel basic exit reason (VMX_EXIT_REASON,
 * SDM vol. 3D table C-1) where one applies, else -1 with `detail` naming the event.
 */
export interface Exit {
  readonly reason: number;
  /** Exit qualification as VT-x would report it (vmx.md §3); 0 where VT-x has none. */
  readonly qualification: number;
  /** Interruption information for exception exits (vmx.md §7), else 0. */
  readonly interruptionInfo: number;
  /** Error code of an exception exit, or -1. */
  readonly errorCode: number;
  /** Guest-linear address (INVLPG operand, #PF address, INS/OUTS pointer), or 0. */
  readonly linear: number;
  /** Length of the instruction that exited (0 for events). */
  readonly instructionLength: number;
  readonly detail?: string;
}

export type Verdict = typeof CONTINUE | typeof HANDLED | Exit;

/** Interruption types (bits 10:8 of interruption information, SDM vol. 3C §25.9.2). */
export const EventKind = {
  EXTERNAL_INTERRUPT: 0,
  NMI: 2,
  HARDWARE_EXCEPTION: 3,
  SOFTWARE_INTERRUPT: 4,
  PRIVILEGED_SOFTWARE_EXCEPTION: 5,
  SOFTWARE_EXCEPTION: 6,
} as const;

export interface ExceptionEvent {
  readonly vector: number;
  /** -1 when none is pushed. */
  readonly errorCode: number;
  readonly kind: (typeof EventKind)[keyof typeof EventKind];
  /** Return address the delivery would push. */
  readonly nextEip: number;
}

export interface IoAccess {
  readonly port: number;
  readonly size: 1 | 2 | 4;
  readonly input: boolean;
  readonly string: boolean;
  readonly rep: boolean;
  readonly immediate: boolean;
  /** The value an OUT writes (undefined for IN; a HANDLED IN writes the register itself). */
  readonly value?: number;
}

export interface CrAccess {
  readonly cr: 0 | 2 | 3 | 4 | 8;
  /** Access type as VT-x encodes it: 0 MOV to CR, 1 MOV from CR, 2 CLTS, 3 LMSW. */
  readonly type: 0 | 1 | 2 | 3;
  /** GPR index (0 = EAX .. 7 = EDI) for MOV CR, else 0. */
  readonly gpr: number;
  /** Value to be written (MOV to CR, LMSW source), else 0. */
  readonly value: number;
}

/** A task switch about to happen (task-switch.ts): the new TSS selector and what started it. */
export interface TaskSwitchAttempt {
  readonly selector: number;
  /** As VT-x's qualification bits 31:30 encode it: 0 CALL, 1 IRET, 2 JMP, 3 task gate in the IDT. */
  readonly source: 0 | 1 | 2 | 3;
  /** Length of the JMP/CALL/IRET or INT n; 0 for exceptions and external interrupts. */
  readonly instructionLength: number;
}

export interface MsrAccess {
  readonly msr: number;
  readonly write: boolean;
  /** EDX:EAX for WRMSR. */
  readonly value: bigint;
}

/**
 * A page walk (paging.ts WalkRecord: entries read, rights, `physical` or `errorCode`, page size,
 * G bit) and the access that caused it. A monitor that answers HANDLED edits the outcome fields.
 */
export interface PageWalk extends WalkRecord {
  readonly linear: number;
  readonly write: boolean;
  readonly user: boolean;
  readonly fetch: boolean;
}

/**
 * Access bits for GuestPhysicalMap.translate: bits 2:0 are the kinds of an EPT-violation
 * qualification (SDM vol. 3C §28.3.3.2, table 28-7: read, write, instruction fetch); PAGING_ENTRY:
 * the access is to a guest paging-structure entry, not to the translation of a linear address
 * (qualification bit 8 = 0); NO_LINEAR: there is no linear address (PDPTE loads; bit 7 = 0).
 */
export const GpaAccess = { READ: 1, WRITE: 2, FETCH: 4, PAGING_ENTRY: 8, NO_LINEAR: 16 } as const;

/** Guest-physical -> host-physical translation (see the header). */
export interface GuestPhysicalMap {
  /** The host-physical address for an access (GpaAccess bits) to `gpa`, on behalf of `linear`. */
  translate(gpa: number, access: number, linear: number): number;
  /** False after a translate() whose answer must not be cached (an emulated device access). */
  readonly cacheable: boolean;
}

/** What a monitor implements. Every hook is required so the call sites need only the null check. */
export interface Interceptor {
  exception(cpu: Cpu, e: ExceptionEvent): Verdict;
  instruction(cpu: Cpu, ins: Instruction, cls: InstructionClass): Verdict;
  /** HANDLED is treated as CONTINUE: the task switch is the CPU's to perform. */
  taskSwitch(cpu: Cpu, t: TaskSwitchAttempt): Verdict;
  msr(cpu: Cpu, a: MsrAccess): Verdict;
  pageWalk(cpu: Cpu, w: PageWalk): Verdict;
}

/** A monitor that intercepts nothing: spread it and override the hooks you need. */
export const PASS_THROUGH: Interceptor = Object.freeze({
  exception: () => CONTINUE,
  instruction: () => CONTINUE,
  taskSwitch: () => CONTINUE,
  msr: () => CONTINUE,
  pageWalk: () => CONTINUE,
});

/** Thrown to leave run() with an Exit; not a Fault, so the CPU does not deliver it. */
export class MonitorExit {
  constructor(readonly exit: Exit) {}
}

/** True: carry on natively. False: the monitor handled it. An Exit throws MonitorExit. */
export function proceed(v: Verdict): boolean {
  if (v === CONTINUE) return true;
  if (v === HANDLED) return false;
  throw new MonitorExit(v);
}

export function exit(reason: number, fields: Partial<Omit<Exit, 'reason'>> = {}): Exit {
  return { reason, qualification: 0, interruptionInfo: 0, errorCode: -1, linear: 0, instructionLength: 0, ...fields };
}

/** I/O exit qualification (vmx.md §3, reason 30). */
export function ioQualification(a: IoAccess): number {
  return ((a.size - 1) | (a.input ? 8 : 0) | (a.string ? 16 : 0) | (a.rep ? 32 : 0) | (a.immediate ? 64 : 0) | ((a.port & 0xffff) << 16)) >>> 0;
}

/** Control-register access qualification (vmx.md §3, reason 28). */
export function crQualification(a: CrAccess): number {
  return (a.cr | (a.type << 4) | (a.gpr << 8) | (a.type === 3 ? (a.value & 0xffff) << 16 : 0)) >>> 0;
}

/** Interruption information (vmx.md §7): vector, type, error-code-valid, valid. */
export function interruptionInfo(e: ExceptionEvent): number {
  return ((e.vector & 0xff) | (e.kind << 8) | (e.errorCode >= 0 ? 1 << 11 : 0) | (1 << 31)) >>> 0;
}

/** The exit VT-x would take for each event, for monitors that want "exit on everything". */
export const exitFor = {
  exception: (e: ExceptionEvent): Exit =>
    exit(e.kind === EventKind.EXTERNAL_INTERRUPT ? VMX_EXIT_REASON.EXTERNAL_INTERRUPT : VMX_EXIT_REASON.EXCEPTION_OR_NMI, {
      interruptionInfo: interruptionInfo(e), errorCode: e.errorCode,
    }),
  io: (a: IoAccess, length: number): Exit => exit(VMX_EXIT_REASON.IO_INSTRUCTION, { qualification: ioQualification(a), instructionLength: length }),
  controlRegister: (a: CrAccess, length: number): Exit =>
    exit(VMX_EXIT_REASON.CONTROL_REGISTER_ACCESS, { qualification: crQualification(a), instructionLength: length }),
  msr: (a: MsrAccess, length: number): Exit => exit(a.write ? VMX_EXIT_REASON.WRMSR : VMX_EXIT_REASON.RDMSR, { instructionLength: length }),
} as const;

/** Installs (or with null removes) a monitor's interceptor. */
export function attachInterceptor(cpu: Cpu, m: Interceptor | null): void {
  cpu.interceptor = m;
}

export function interceptorOf(cpu: Cpu): Interceptor | null {
  return cpu.interceptor;
}
