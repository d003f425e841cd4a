// A VMCS read and written by field encoding, with VMREAD/VMWRITE's rules (SDM vol. 3C §31.3,
// VMREAD/VMWRITE pages): an encoding not in the table is an unsupported component (VM-instruction
// error 12), software may not VMWRITE a read-only exit-information field (error 13), and the
// high-access encoding of a 64-bit field (bit 0 = 1) reads or writes its upper 32 bits. The
// processor side (the exit logic, exits.ts) fills the read-only fields with setExitInfo().
// Values are numbers: natural-width fields are 32 bits wide on this IA-32 host, and the 64-bit
// fields we use hold addresses below 2^53.
import { VMCS_FIELDS, VmcsType, VmcsWidth } from './vmcs-fields';

export class VmcsError extends Error {
  constructor(message: string, readonly instructionError: number) {
    super(message);
    this.name = 'VmcsError';
  }
}

// Module-local copies: imported bindings cost a getter per access under some module loaders.
const W16: number = VmcsWidth.BITS16, W64: number = VmcsWidth.BITS64, EXIT_INFO: number = VmcsType.EXIT_INFO;

interface Slot { readonly index: number; readonly high: boolean; readonly type: number; readonly width: number; readonly id: string }

/**
 * Every valid encoding (a 64-bit field's high-access one too) -> its storage slot, decoded once;
 * indexed directly by encoding (all are below 0x8000: bit 15 must be 0), for exit-time writes.
 */
const SLOTS: (Slot | undefined)[] = new Array<Slot | undefined>(0x8000).fill(undefined);
VMCS_FIELDS.forEach((f, index) => {
  const base = { index, type: VmcsType[f.type], width: VmcsWidth[f.width], id: f.id };
  SLOTS[f.encoding] = { ...base, high: false };
  // Only 64-bit fields have a high-access encoding (SDM vol. 3C §25.11.2).
  if (base.width === W64) SLOTS[f.encoding | 1] = { ...base, high: true };
});

const hex = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;
const TWO32 = 2 ** 32;

export class Vmcs {
  private readonly values = new Float64Array(VMCS_FIELDS.length);

  /** VMREAD. */
  vmread(encoding: number): number {
    const s = this.lookup(encoding, 'VMREAD');
    const v = this.values[s.index]!;
    return s.high ? Math.floor(v / TWO32) : v;
  }

  /** VMWRITE (software: the monitor); read-only fields refuse. */
  vmwrite(encoding: number, value: number): void {
    const s = this.lookup(encoding, 'VMWRITE');
    if (s.type === EXIT_INFO) {
      throw new VmcsError(`VMWRITE to read-only VMCS component ${hex(encoding)} (${s.id}) (VM-instruction error 13)`, 13);
    }
    this.store(s, value);
  }

  /** The processor's own write of an exit-information field at a VM exit. */
  setExitInfo(encoding: number, value: number): void {
    this.store(this.lookup(encoding, 'VM exit'), value);
  }

  private store(s: Slot, value: number): void {
    if (s.high) {
      this.values[s.index] = (value >>> 0) * TWO32 + (this.values[s.index]! % TWO32);
      return;
    }
    switch (s.width) {
      case W16: this.values[s.index] = value & 0xffff; return;
      case W64:
        if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`VMWRITE ${hex(VMCS_FIELDS[s.index]!.encoding)}: ${value} is not a 64-bit value this VMCS can hold`);
        this.values[s.index] = value;
        return;
      default: this.values[s.index] = value >>> 0;
    }
  }

  private lookup(encoding: number, what: string): Slot {
    const s = encoding >= 0 && encoding < 0x8000 ? SLOTS[encoding] : undefined;
    if (s === undefined) {
      throw new VmcsError(`${what}: unsupported VMCS component ${hex(encoding >>> 0)} (VM-instruction error 12); this VMCS has ${VMCS_FIELDS.length} fields (vmm/hvm/vmcs-fields.ts)`, 12);
    }
    return s;
  }
}
