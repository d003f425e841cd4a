// The VMCS fields the HVM backend uses: one row each, keyed by the field's real 32-bit encoding
// (SDM vol. 3D appendix B; values cross-checked in shared/reference/vmx.md §4). An encoding
// carries its own layout (SDM vol. 3C §25.11.2): bit 0 access type (1 = high 32 bits of a 64-bit
// field), bits 9:1 index, bits 11:10 type, bits 14:13 width. test/vmm-hvm-vmcs.test.ts checks
// every row's declared width and type against those bits.

/** Bits 14:13 of an encoding. */
export const VmcsWidth = { BITS16: 0, BITS64: 1, BITS32: 2, NATURAL: 3 } as const;
/** Bits 11:10 of an encoding. */
export const VmcsType = { CONTROL: 0, EXIT_INFO: 1, GUEST: 2, HOST: 3 } as const;

export type VmcsWidthName = keyof typeof VmcsWidth;
export type VmcsTypeName = keyof typeof VmcsType;

export interface VmcsFieldRow {
  /** The constant's name, as KVM and Xen spell it. */
  readonly id: string;
  /** The field's name in SDM vol. 3D appendix B. */
  readonly name: string;
  readonly encoding: number;
  readonly width: VmcsWidthName;
  readonly type: VmcsTypeName;
}

export const VMCS_FIELDS = [
  // 64-bit control fields (B.2.1)
  { id: 'IO_BITMAP_A', name: 'Address of I/O bitmap A', encoding: 0x2000, width: 'BITS64', type: 'CONTROL' },
  { id: 'IO_BITMAP_B', name: 'Address of I/O bitmap B', encoding: 0x2002, width: 'BITS64', type: 'CONTROL' },
  { id: 'MSR_BITMAP', name: 'Address of MSR bitmaps', encoding: 0x2004, width: 'BITS64', type: 'CONTROL' },
  { id: 'TSC_OFFSET', name: 'TSC offset', encoding: 0x2010, width: 'BITS64', type: 'CONTROL' },
  { id: 'EPT_POINTER', name: 'EPT pointer (EPTP)', encoding: 0x201a, width: 'BITS64', type: 'CONTROL' },
  // 64-bit read-only data field (B.2.2)
  { id: 'GUEST_PHYSICAL_ADDRESS', name: 'Guest-physical address', encoding: 0x2400, width: 'BITS64', type: 'EXIT_INFO' },
  // 64-bit guest-state fields (B.2.3)
  { id: 'VMCS_LINK_POINTER', name: 'VMCS link pointer', encoding: 0x2800, width: 'BITS64', type: 'GUEST' },
  { id: 'GUEST_IA32_EFER', name: 'Guest IA32_EFER', encoding: 0x2806, width: 'BITS64', type: 'GUEST' },
  { id: 'GUEST_PDPTE0', name: 'Guest PDPTE0', encoding: 0x280a, width: 'BITS64', type: 'GUEST' },
  { id: 'GUEST_PDPTE1', name: 'Guest PDPTE1', encoding: 0x280c, width: 'BITS64', type: 'GUEST' },
  { id: 'GUEST_PDPTE2', name: 'Guest PDPTE2', encoding: 0x280e, width: 'BITS64', type: 'GUEST' },
  { id: 'GUEST_PDPTE3', name: 'Guest PDPTE3', encoding: 0x2810, width: 'BITS64', type: 'GUEST' },
  // 32-bit control fields (B.3.1)
  { id: 'PIN_BASED_VM_EXEC_CONTROL', name: 'Pin-based VM-execution controls', encoding: 0x4000, width: 'BITS32', type: 'CONTROL' },
  { id: 'CPU_BASED_VM_EXEC_CONTROL', name: 'Primary processor-based VM-execution controls', encoding: 0x4002, width: 'BITS32', type: 'CONTROL' },
  { id: 'EXCEPTION_BITMAP', name: 'Exception bitmap', encoding: 0x4004, width: 'BITS32', type: 'CONTROL' },
  { id: 'PAGE_FAULT_ERROR_CODE_MASK', name: 'Page-fault error-code mask', encoding: 0x4006, width: 'BITS32', type: 'CONTROL' },
  { id: 'PAGE_FAULT_ERROR_CODE_MATCH', name: 'Page-fault error-code match', encoding: 0x4008, width: 'BITS32', type: 'CONTROL' },
  { id: 'CR3_TARGET_COUNT', name: 'CR3-target count', encoding: 0x400a, width: 'BITS32', type: 'CONTROL' },
  { id: 'VM_EXIT_CONTROLS', name: 'Primary VM-exit controls', encoding: 0x400c, width: 'BITS32', type: 'CONTROL' },
  { id: 'VM_ENTRY_CONTROLS', name: 'VM-entry controls', encoding: 0x4012, width: 'BITS32', type: 'CONTROL' },
  { id: 'VM_ENTRY_INTR_INFO_FIELD', name: 'VM-entry interruption-information field', encoding: 0x4016, width: 'BITS32', type: 'CONTROL' },
  { id: 'VM_ENTRY_EXCEPTION_ERROR_CODE', name: 'VM-entry exception error code', encoding: 0x4018, width: 'BITS32', type: 'CONTROL' },
  { id: 'VM_ENTRY_INSTRUCTION_LEN', name: 'VM-entry instruction length', encoding: 0x401a, width: 'BITS32', type: 'CONTROL' },
  { id: 'SECONDARY_VM_EXEC_CONTROL', name: 'Secondary processor-based VM-execution controls', encoding: 0x401e, width: 'BITS32', type: 'CONTROL' },
  // 32-bit read-only data fields (B.3.2)
  { id: 'VM_INSTRUCTION_ERROR', name: 'VM-instruction error', encoding: 0x4400, width: 'BITS32', type: 'EXIT_INFO' },
  { id: 'VM_EXIT_REASON', name: 'Exit reason', encoding: 0x4402, width: 'BITS32', type: 'EXIT_INFO' },
  { id: 'VM_EXIT_INTR_INFO', name: 'VM-exit interruption information', encoding: 0x4404, width: 'BITS32', type: 'EXIT_INFO' },
  { id: 'VM_EXIT_INTR_ERROR_CODE', name: 'VM-exit interruption error code', encoding: 0x4406, width: 'BITS32', type: 'EXIT_INFO' },
  { id: 'IDT_VECTORING_INFO_FIELD', name: 'IDT-vectoring information field', encoding: 0x4408, width: 'BITS32', type: 'EXIT_INFO' },
  { id: 'IDT_VECTORING_ERROR_CODE', name: 'IDT-vectoring error code', encoding: 0x440a, width: 'BITS32', type: 'EXIT_INFO' },
  { id: 'VM_EXIT_INSTRUCTION_LEN', name: 'VM-exit instruction length', encoding: 0x440c, width: 'BITS32', type: 'EXIT_INFO' },
  { id: 'VMX_INSTRUCTION_INFO', name: 'VM-exit instruction information', encoding: 0x440e, width: 'BITS32', type: 'EXIT_INFO' },
  // 32-bit guest-state fields (B.3.3)
  { id: 'GUEST_INTERRUPTIBILITY_INFO', name: 'Guest interruptibility state', encoding: 0x4824, width: 'BITS32', type: 'GUEST' },
  { id: 'GUEST_ACTIVITY_STATE', name: 'Guest activity state', encoding: 0x4826, width: 'BITS32', type: 'GUEST' },
  { id: 'GUEST_SYSENTER_CS', name: 'Guest IA32_SYSENTER_CS', encoding: 0x482a, width: 'BITS32', type: 'GUEST' },
  // Natural-width control fields (B.4.1)
  { id: 'CR0_GUEST_HOST_MASK', name: 'CR0 guest/host mask', encoding: 0x6000, width: 'NATURAL', type: 'CONTROL' },
  { id: 'CR4_GUEST_HOST_MASK', name: 'CR4 guest/host mask', encoding: 0x6002, width: 'NATURAL', type: 'CONTROL' },
  { id: 'CR0_READ_SHADOW', name: 'CR0 read shadow', encoding: 0x6004, width: 'NATURAL', type: 'CONTROL' },
  { id: 'CR4_READ_SHADOW', name: 'CR4 read shadow', encoding: 0x6006, width: 'NATURAL', type: 'CONTROL' },
  { id: 'CR3_TARGET_VALUE0', name: 'CR3-target value 0', encoding: 0x6008, width: 'NATURAL', type: 'CONTROL' },
  { id: 'CR3_TARGET_VALUE1', name: 'CR3-target value 1', encoding: 0x600a, width: 'NATURAL', type: 'CONTROL' },
  { id: 'CR3_TARGET_VALUE2', name: 'CR3-target value 2', encoding: 0x600c, width: 'NATURAL', type: 'CONTROL' },
  { id: 'CR3_TARGET_VALUE3', name: 'CR3-target value 3', encoding: 0x600e, width: 'NATURAL', type: 'CONTROL' },
  // Natural-width read-only data fields (B.4.2)
  { id: 'EXIT_QUALIFICATION', name: 'Exit qualification', encoding: 0x6400, width: 'NATURAL', type: 'EXIT_INFO' },
  { id: 'GUEST_LINEAR_ADDRESS', name: 'Guest-linear address', encoding: 0x640a, width: 'NATURAL', type: 'EXIT_INFO' },
  // Natural-width guest-state fields (B.4.3)
  { id: 'GUEST_CR0', name: 'Guest CR0', encoding: 0x6800, width: 'NATURAL', type: 'GUEST' },
  { id: 'GUEST_CR3', name: 'Guest CR3', encoding: 0x6802, width: 'NATURAL', type: 'GUEST' },
  { id: 'GUEST_CR4', name: 'Guest CR4', encoding: 0x6804, width: 'NATURAL', type: 'GUEST' },
  { id: 'GUEST_RSP', name: 'Guest RSP', encoding: 0x681c, width: 'NATURAL', type: 'GUEST' },
  { id: 'GUEST_RIP', name: 'Guest RIP', encoding: 0x681e, width: 'NATURAL', type: 'GUEST' },
  { id: 'GUEST_RFLAGS', name: 'Guest RFLAGS', encoding: 0x6820, width: 'NATURAL', type: 'GUEST' },
] as const satisfies readonly VmcsFieldRow[];

export type VmcsFieldId = (typeof VMCS_FIELDS)[number]['id'];

/** Encodings by constant name: `VMCS.EXIT_QUALIFICATION === 0x6400`. */
export const VMCS = Object.freeze(Object.fromEntries(VMCS_FIELDS.map((f) => [f.id, f.encoding]))) as Readonly<Record<VmcsFieldId, number>>;

/** The layout an encoding's own bits declare (SDM vol. 3C §25.11.2). */
export function decodeEncoding(encoding: number): { high: boolean; index: number; type: number; width: number } {
  return { high: (encoding & 1) !== 0, index: (encoding >>> 1) & 0x1ff, type: (encoding >>> 10) & 3, width: (encoding >>> 13) & 3 };
}
