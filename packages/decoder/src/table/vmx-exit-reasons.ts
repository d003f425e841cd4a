// VMX basic exit reasons (Intel SDM vol. 3D Appendix C, Table C-1) and the VM-execution controls
// that decide whether an instruction exits (SDM vol. 3C §25.6, Tables 25-5, 25-6, 25-7; §26.1).
// Numbers and bit positions were checked against shared/reference/vmx.md (Xen, Bochs,
// kvm-unit-tests, Linux); rows that only one of those sources has are marked "(B)".

/** Basic exit reason (bits 15:0 of the exit-reason field, VMCS 0x4402). Names as in the SDM. */
export const VMX_EXIT_REASON = {
  EXCEPTION_OR_NMI: 0,
  EXTERNAL_INTERRUPT: 1,
  TRIPLE_FAULT: 2,
  INIT_SIGNAL: 3,
  SIPI: 4,
  IO_SMI: 5,
  OTHER_SMI: 6,
  INTERRUPT_WINDOW: 7,
  NMI_WINDOW: 8,
  TASK_SWITCH: 9,
  CPUID: 10,
  GETSEC: 11,
  HLT: 12,
  INVD: 13,
  INVLPG: 14,
  RDPMC: 15,
  RDTSC: 16,
  RSM: 17,
  VMCALL: 18,
  VMCLEAR: 19,
  VMLAUNCH: 20,
  VMPTRLD: 21,
  VMPTRST: 22,
  VMREAD: 23,
  VMRESUME: 24,
  VMWRITE: 25,
  VMXOFF: 26,
  VMXON: 27,
  CONTROL_REGISTER_ACCESS: 28,
  MOV_DR: 29,
  IO_INSTRUCTION: 30,
  RDMSR: 31,
  WRMSR: 32,
  VM_ENTRY_FAILURE_INVALID_GUEST_STATE: 33,
  VM_ENTRY_FAILURE_MSR_LOADING: 34,
  MWAIT: 36,
  MONITOR_TRAP_FLAG: 37,
  MONITOR: 39,
  PAUSE: 40,
  VM_ENTRY_FAILURE_MACHINE_CHECK: 41,
  TPR_BELOW_THRESHOLD: 43,
  APIC_ACCESS: 44,
  VIRTUALIZED_EOI: 45,
  GDTR_IDTR_ACCESS: 46,
  LDTR_TR_ACCESS: 47,
  EPT_VIOLATION: 48,
  EPT_MISCONFIGURATION: 49,
  INVEPT: 50,
  RDTSCP: 51,
  VMX_PREEMPTION_TIMER_EXPIRED: 52,
  INVVPID: 53,
  /** "WBINVD or WBNOINVD" in Table C-1. */
  WBINVD: 54,
  XSETBV: 55,
  APIC_WRITE: 56,
  RDRAND: 57,
  INVPCID: 58,
  VMFUNC: 59,
  ENCLS: 60,
  RDSEED: 61,
  PML_FULL: 62,
  XSAVES: 63,
  XRSTORS: 64,
  PCONFIG: 65,
  SPP_RELATED_EVENT: 66,
  UMWAIT: 67,
  TPAUSE: 68,
  LOADIWKEY: 69,
  ENCLV: 70,
  ENQCMD_PASID_TRANSLATION_FAILURE: 72,
  ENQCMDS_PASID_TRANSLATION_FAILURE: 73,
  BUS_LOCK: 74,
  /** Xen calls it NOTIFY. */
  INSTRUCTION_TIMEOUT: 75,
  SEAMCALL: 76,
  TDCALL: 77,
  RDMSRLIST: 78,
  WRMSRLIST: 79,
  URDMSR: 80,
  UWRMSR: 81,
  RDMSR_IMMEDIATE: 84,
  WRMSRNS_IMMEDIATE: 85,
} as const;
export type VmxExitReasonName = keyof typeof VMX_EXIT_REASON;

const reasonNames: string[] = [];
for (const [name, n] of Object.entries(VMX_EXIT_REASON)) reasonNames[n] = name;

/** Name of a basic exit reason, or undefined for a reserved number. */
export function vmxExitReasonName(reason: number): VmxExitReasonName | undefined {
  return reasonNames[reason] as VmxExitReasonName | undefined;
}

/** Where a control bit lives: the VM-execution control fields, or a bitmap field of the VMCS. */
export type VmxControlField = 'pin' | 'primary' | 'secondary' | 'tertiary' | 'exception-bitmap';

export interface VmxControl {
  readonly field: VmxControlField;
  readonly bit: number;
  /** The SDM's name for the control. */
  readonly name: string;
}

/** VM-execution controls that decide instruction exits (vmx.md §5; SDM vol. 3C Tables 25-6, 25-7). */
export const VMX_CONTROL = {
  HLT_EXITING:                 { field: 'primary', bit: 7, name: 'HLT exiting' },
  INVLPG_EXITING:              { field: 'primary', bit: 9, name: 'INVLPG exiting' },
  MWAIT_EXITING:               { field: 'primary', bit: 10, name: 'MWAIT exiting' },
  RDPMC_EXITING:               { field: 'primary', bit: 11, name: 'RDPMC exiting' },
  RDTSC_EXITING:               { field: 'primary', bit: 12, name: 'RDTSC exiting' },
  CR3_LOAD_EXITING:            { field: 'primary', bit: 15, name: 'CR3-load exiting' },
  CR3_STORE_EXITING:           { field: 'primary', bit: 16, name: 'CR3-store exiting' },
  CR8_LOAD_EXITING:            { field: 'primary', bit: 19, name: 'CR8-load exiting' },
  CR8_STORE_EXITING:           { field: 'primary', bit: 20, name: 'CR8-store exiting' },
  MOV_DR_EXITING:              { field: 'primary', bit: 23, name: 'MOV-DR exiting' },
  UNCONDITIONAL_IO_EXITING:    { field: 'primary', bit: 24, name: 'unconditional I/O exiting' },
  USE_IO_BITMAPS:              { field: 'primary', bit: 25, name: 'use I/O bitmaps' },
  USE_MSR_BITMAPS:             { field: 'primary', bit: 28, name: 'use MSR bitmaps' },
  MONITOR_EXITING:             { field: 'primary', bit: 29, name: 'MONITOR exiting' },
  PAUSE_EXITING:               { field: 'primary', bit: 30, name: 'PAUSE exiting' },
  DESCRIPTOR_TABLE_EXITING:    { field: 'secondary', bit: 2, name: 'descriptor-table exiting' },
  ENABLE_RDTSCP:               { field: 'secondary', bit: 3, name: 'enable RDTSCP' },
  WBINVD_EXITING:              { field: 'secondary', bit: 6, name: 'WBINVD exiting' },
  PAUSE_LOOP_EXITING:          { field: 'secondary', bit: 10, name: 'PAUSE-loop exiting' },
  RDRAND_EXITING:              { field: 'secondary', bit: 11, name: 'RDRAND exiting' },
  ENABLE_INVPCID:              { field: 'secondary', bit: 12, name: 'enable INVPCID' },
  ENABLE_VM_FUNCTIONS:         { field: 'secondary', bit: 13, name: 'enable VM functions' },
  VMCS_SHADOWING:              { field: 'secondary', bit: 14, name: 'VMCS shadowing' },
  ENCLS_EXITING:               { field: 'secondary', bit: 15, name: 'enable ENCLS exiting' },
  RDSEED_EXITING:              { field: 'secondary', bit: 16, name: 'RDSEED exiting' },
  ENABLE_XSAVES_XRSTORS:       { field: 'secondary', bit: 20, name: 'enable XSAVES/XRSTORS' },
  // Bits 26-28 are not in vmx.md (its sources stop at bit 25 apart from 30/31); from SDM vol. 3C Table 25-7.
  ENABLE_USER_WAIT_AND_PAUSE:  { field: 'secondary', bit: 26, name: 'enable user wait and pause' },
  ENABLE_PCONFIG:              { field: 'secondary', bit: 27, name: 'enable PCONFIG' },
  ENCLV_EXITING:               { field: 'secondary', bit: 28, name: 'enable ENCLV exiting' },
  LOADIWKEY_EXITING:           { field: 'tertiary', bit: 0, name: 'LOADIWKEY exiting' },
  EXCEPTION_BITMAP_DB:         { field: 'exception-bitmap', bit: 1, name: 'exception bitmap bit 1 (#DB)' },
  EXCEPTION_BITMAP_BP:         { field: 'exception-bitmap', bit: 3, name: 'exception bitmap bit 3 (#BP)' },
  EXCEPTION_BITMAP_OF:         { field: 'exception-bitmap', bit: 4, name: 'exception bitmap bit 4 (#OF)' },
} as const satisfies Record<string, VmxControl>;
export type VmxControlName = keyof typeof VMX_CONTROL;
