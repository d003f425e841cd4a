// The VM-execution controls the HVM monitor honours, as one table (bit numbers: SDM vol. 3C
// §25.6.1-25.6.2, tables 25-5 to 25-7; shared/reference/vmx.md §5), with the defaults KVM sets
// up on a CPU with EPT (arch/x86/kvm/vmx/vmx.c setup_vmcs_config: HLT, MOV-DR, unconditional I/O,
// RDPMC, MWAIT and MONITOR exiting, MSR bitmaps, secondary controls; EPT with unrestricted guest,
// WBINVD exiting; CR3-load/store and INVLPG exiting only without EPT; descriptor-table exiting
// only to emulate UMIP, and PAUSE-loop rather than PAUSE exiting, so both off). `--hvm-controls`
// toggles rows by name.

export type ControlField = 'pin' | 'primary' | 'secondary';

export interface ControlRow {
  /** The name `--hvm-controls` takes. */
  readonly name: string;
  /** The control's name in the SDM. */
  readonly sdm: string;
  readonly field: ControlField;
  readonly bit: number;
  /** KVM's setting on a CPU with EPT. */
  readonly default: boolean;
  /** Other names accepted on the command line. */
  readonly aliases?: readonly string[];
}

export const CONTROLS = [
  { name: 'external-interrupt-exiting', sdm: 'External-interrupt exiting', field: 'pin', bit: 0, default: true },
  { name: 'nmi-exiting', sdm: 'NMI exiting', field: 'pin', bit: 3, default: true },
  { name: 'virtual-nmis', sdm: 'Virtual NMIs', field: 'pin', bit: 5, default: true },
  { name: 'interrupt-window-exiting', sdm: 'Interrupt-window exiting', field: 'primary', bit: 2, default: false },
  { name: 'use-tsc-offsetting', sdm: 'Use TSC offsetting', field: 'primary', bit: 3, default: true },
  { name: 'hlt-exiting', sdm: 'HLT exiting', field: 'primary', bit: 7, default: true },
  { name: 'invlpg-exiting', sdm: 'INVLPG exiting', field: 'primary', bit: 9, default: false },
  // MWAIT/MONITOR: this CPU lacks them (CPUID.1:ECX.MONITOR = 0, cpu/absent-features.ts), so they
  // raise #UD, which comes before these exits (SDM vol. 3C §26.1.1): set as KVM sets them, never taken.
  { name: 'mwait-exiting', sdm: 'MWAIT exiting', field: 'primary', bit: 10, default: true },
  { name: 'rdpmc-exiting', sdm: 'RDPMC exiting', field: 'primary', bit: 11, default: true },
  { name: 'rdtsc-exiting', sdm: 'RDTSC exiting', field: 'primary', bit: 12, default: false },
  { name: 'cr3-load-exiting', sdm: 'CR3-load exiting', field: 'primary', bit: 15, default: false },
  { name: 'cr3-store-exiting', sdm: 'CR3-store exiting', field: 'primary', bit: 16, default: false },
  { name: 'mov-dr-exiting', sdm: 'MOV-DR exiting', field: 'primary', bit: 23, default: true },
  { name: 'unconditional-io-exiting', sdm: 'Unconditional I/O exiting', field: 'primary', bit: 24, default: true, aliases: ['unconditional-io'] },
  { name: 'use-io-bitmaps', sdm: 'Use I/O bitmaps', field: 'primary', bit: 25, default: false, aliases: ['io-bitmaps'] },
  { name: 'use-msr-bitmaps', sdm: 'Use MSR bitmaps', field: 'primary', bit: 28, default: true, aliases: ['msr-bitmaps'] },
  { name: 'monitor-exiting', sdm: 'MONITOR exiting', field: 'primary', bit: 29, default: true },
  { name: 'pause-exiting', sdm: 'PAUSE exiting', field: 'primary', bit: 30, default: false },
  { name: 'activate-secondary-controls', sdm: 'Activate secondary controls', field: 'primary', bit: 31, default: true },
  { name: 'enable-ept', sdm: 'Enable EPT', field: 'secondary', bit: 1, default: true, aliases: ['ept'] },
  { name: 'descriptor-table-exiting', sdm: 'Descriptor-table exiting', field: 'secondary', bit: 2, default: false, aliases: ['desc-exiting'] },
  { name: 'wbinvd-exiting', sdm: 'WBINVD exiting', field: 'secondary', bit: 6, default: true },
  { name: 'unrestricted-guest', sdm: 'Unrestricted guest', field: 'secondary', bit: 7, default: true },
] as const satisfies readonly ControlRow[];

export type ControlName = (typeof CONTROLS)[number]['name'];

/** The three control words, as written to VMCS 0x4000, 0x4002 and 0x401E. */
export interface ControlWords {
  pin: number;
  primary: number;
  secondary: number;
}

export class ControlsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlsError';
  }
}

const BY_NAME = new Map<string, ControlRow>();
for (const row of CONTROLS as readonly ControlRow[]) {
  for (const n of [row.name, ...(row.aliases ?? [])]) BY_NAME.set(n, row);
}

/** Without EPT KVM intercepts what shadow paging needs (vmx.c: "!enable_ept" branch). */
const SHADOW_PAGING: readonly ControlName[] = ['cr3-load-exiting', 'cr3-store-exiting', 'invlpg-exiting'];

function set(w: ControlWords, row: ControlRow, on: boolean): void {
  const bit = (1 << row.bit) >>> 0;
  w[row.field] = (on ? w[row.field] | bit : w[row.field] & ~bit) >>> 0;
}

export function defaultControls(): ControlWords {
  const w: ControlWords = { pin: 0, primary: 0, secondary: 0 };
  for (const row of CONTROLS as readonly ControlRow[]) set(w, row, row.default);
  return w;
}

/** The valid names, for error messages and --help. */
export function controlNames(): string {
  return (CONTROLS as readonly ControlRow[]).map((r) => (r.aliases ? `${r.name} (${r.aliases.join(', ')})` : r.name)).join(', ');
}

/**
 * Parses `--hvm-controls`: comma-separated `NAME`, `NAME=on` or `NAME=off`. Turning EPT off
 * also turns on CR3-load, CR3-store and INVLPG exiting and turns off unrestricted guest (which
 * needs EPT, SDM vol. 3C §26.2.1.1) unless the same list sets those itself.
 */
export function parseControls(text: string): ControlWords {
  const w = defaultControls();
  const explicit = new Map<ControlRow, boolean>();
  for (const item of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^([a-z0-9-]+)(?:=(on|off|1|0|true|false))?$/.exec(item);
    if (m === null) throw new ControlsError(`invalid --hvm-controls item '${item}': expected NAME, NAME=on or NAME=off`);
    const row = BY_NAME.get(m[1]!);
    if (row === undefined) throw new ControlsError(`unknown VM-execution control '${m[1]}' in --hvm-controls; valid names: ${controlNames()}`);
    if (explicit.has(row)) throw new ControlsError(`--hvm-controls sets '${row.name}' twice`);
    explicit.set(row, m[2] === undefined || m[2] === 'on' || m[2] === '1' || m[2] === 'true');
  }
  const ept = BY_NAME.get('enable-ept')!;
  if (explicit.get(ept) === false) {
    for (const n of SHADOW_PAGING) set(w, BY_NAME.get(n)!, true);
    set(w, BY_NAME.get('unrestricted-guest')!, false);
  }
  for (const [row, on] of explicit) set(w, row, on);
  if (isOn(w, 'interrupt-window-exiting')) {
    throw new ControlsError('--hvm-controls: interrupt-window-exiting is set by the monitor itself, while an interrupt waits for the guest to set IF (docs/exits.md)');
  }
  if (isOn(w, 'unrestricted-guest') && !isOn(w, 'enable-ept')) {
    throw new ControlsError('--hvm-controls: unrestricted-guest requires enable-ept (SDM vol. 3C §26.2.1.1)');
  }
  return w;
}

/**
 * Whether a control is in effect: a secondary control counts only while "activate secondary
 * controls" is set (SDM vol. 3C §25.6.2).
 */
export function isOn(w: ControlWords, name: ControlName): boolean {
  const row = BY_NAME.get(name)!;
  if (row.field === 'secondary' && (w.primary & (1 << 31)) === 0) return false;
  return (w[row.field] & (1 << row.bit)) !== 0;
}

/** The names in effect, in table order (for reports). */
export function controlsOn(w: ControlWords): ControlName[] {
  return (CONTROLS as readonly ControlRow[]).filter((r) => isOn(w, r.name as ControlName)).map((r) => r.name as ControlName);
}
