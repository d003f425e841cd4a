// The cost model of `pnpm bench`'s virtualization-cost section: it turns what a run counted
// per operation (instructions retired, guest exceptions, port accesses, transfers to the
// monitor by kind) into modelled cycles of a physical machine, so that ringshift's backends can
// be set beside the nanobenchmark cycles of Adams & Agesen, "A Comparison of Software and
// Hardware Techniques for x86 Virtualization" (ASPLOS 2006; shared/reference/adams-agesen-2006.md).
//
// The emulator's own speed says nothing about those costs: a VM exit here is a TypeScript call.
// What carries over is the count of each kind of event; the model prices each kind once. The
// defaults come from the paper's own native and VMM figures where it states one, and each entry
// says which and how; every value can be overridden (parseCostOverrides, `--cost name=cycles`).
// Pure: no I/O.

export type CostParameter = 'instruction' | 'exceptionDelivery' | 'portIo' | 'monitorTrap' | 'vmExit' | 'hypercall' | 'monitorWork';

export interface CostEntry {
  name: CostParameter;
  cycles: number;
  what: string;
  source: string;
}

/** The defaults, one row per parameter: the documented source of each number. */
export const COST_PARAMETERS: readonly CostEntry[] = [
  {
    name: 'instruction', cycles: 1,
    what: 'one guest or stub instruction retired',
    source: "CPI 1, the rate of ringshift's virtual clock (runtime/src/machine/clock.ts: 1 instruction = 1 TSC cycle)",
  },
  {
    name: 'exceptionDelivery', cycles: 800,
    what: 'the processor delivering an exception or INT n through the IDT with a privilege change, and the IRET back',
    source: 'calibrated on A&A native divzero, 889 cycles for one #DE delivered, a handler of a few dozen instructions, and IRET',
  },
  {
    name: 'portIo', cycles: 3200,
    what: 'an IN/OUT that reaches a device on the chipset (native only: under a monitor the device is emulated)',
    source: 'A&A native in: 3209 cycles for an off-chip register read (port 0x80)',
  },
  {
    name: 'monitorTrap', cycles: 800,
    what: 'a transfer into a software monitor and back (rewrite, deprivileged): #GP or #BP of a trapping instruction, an INT 0x81 escape from a stub, an event reflected through the virtual IDT, a virtual-TLB miss (hidden page fault)',
    source: 'the same hardware path as exceptionDelivery (a fault or INT n into ring 0 and IRET back)',
  },
  {
    name: 'vmExit', cycles: 15000,
    what: 'a VM exit and the VM entry back (hvm)',
    source: 'A&A hardware VMM in: 15826 cycles for an exit, the VMM emulating the port and the entry; less monitorWork. First-generation VT-x: later parts cut the round trip to well under 1000',
  },
  {
    name: 'hypercall', cycles: 800,
    what: 'a hypercall (INT 0x82 or the hypercall page) into the hypervisor and back (pv)',
    source: 'the same hardware path as exceptionDelivery (Xen x86_32: a trap gate into ring 0, IRET back)',
  },
  {
    name: 'monitorWork', cycles: 300,
    what: "the monitor's own work per transfer: decode, check, emulate, resume (added to each monitorTrap, vmExit and hypercall)",
    source: 'estimate: a few hundred instructions of monitor code per emulated instruction',
  },
] as const;

export type CostModel = Record<CostParameter, number>;

export const DEFAULT_COST_MODEL: Readonly<CostModel> = Object.freeze(
  Object.fromEntries(COST_PARAMETERS.map((p) => [p.name, p.cycles])) as CostModel,
);

/** How a transfer reached the monitor, as the model prices it. */
export type TransferKind = 'monitor-trap' | 'vm-exit' | 'hypercall';

/** What one operation of a nanobenchmark did, per iteration (fractions are averages). */
export interface OperationCounts {
  /** Instructions retired: the guest's and its stubs'. */
  instructions: number;
  /** Exceptions and software interrupts the processor delivered to the guest's own handlers. */
  guestEvents: number;
  /** Port accesses that reach a physical device (native: every IN/OUT; 0 under a monitor). */
  portIo: number;
  transfers: Partial<Record<TransferKind, number>>;
}

export interface CycleBreakdown {
  instructions: number;
  guestEvents: number;
  portIo: number;
  transfers: number;
  total: number;
}

export function modelCycles(c: OperationCounts, m: Readonly<CostModel> = DEFAULT_COST_MODEL): CycleBreakdown {
  const t = c.transfers;
  const instructions = c.instructions * m.instruction;
  const guestEvents = c.guestEvents * m.exceptionDelivery;
  const portIo = c.portIo * m.portIo;
  const transfers = (t['monitor-trap'] ?? 0) * (m.monitorTrap + m.monitorWork)
    + (t['vm-exit'] ?? 0) * (m.vmExit + m.monitorWork)
    + (t.hypercall ?? 0) * (m.hypercall + m.monitorWork);
  return { instructions, guestEvents, portIo, transfers, total: instructions + guestEvents + portIo + transfers };
}

export class CostModelError extends Error {}

/**
 * Overrides as "name=cycles,name=cycles" (e.g. "vmExit=1000,monitorWork=150"). Throws
 * CostModelError naming the unknown parameter or the bad number.
 */
export function parseCostOverrides(text: string): Partial<CostModel> {
  const out: Partial<CostModel> = {};
  const names = new Set<string>(COST_PARAMETERS.map((p) => p.name));
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new CostModelError(`cost override '${part}' is not name=cycles`);
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!names.has(name)) throw new CostModelError(`unknown cost parameter '${name}' (one of: ${[...names].join(', ')})`);
    const cycles = Number(value);
    if (value === '' || !Number.isFinite(cycles) || cycles < 0) throw new CostModelError(`cost parameter ${name}: '${value}' is not a non-negative number of cycles`);
    out[name as CostParameter] = cycles;
  }
  return out;
}

export function costModel(overrides: Partial<CostModel> = {}): CostModel {
  return { ...DEFAULT_COST_MODEL, ...overrides };
}
