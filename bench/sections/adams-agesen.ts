// Adams & Agesen, "A Comparison of Software and Hardware Techniques for x86 Virtualization"
// (ASPLOS 2006): the nanobenchmark cycles, as shared/reference/adams-agesen-2006.md gives them
// (stated in the paper's text, derived from a ratio it states, or not found), one row per
// benchmark, with the nanobench operation (examples/nanobench) that stands for it and why ours
// may differ. Data only; the cost section (cost.ts) computes the comparison.

export type Provenance = 'stated' | 'derived' | 'not found';

export interface PaperCell {
  cycles: number | null;
  provenance: Provenance;
  note?: string;
  /** Stated as cycles more than native rather than as a count (syscall's "about 2000 more"). */
  overNative?: number;
}

export interface PaperRow {
  /** The paper's name for the benchmark. */
  paper: string;
  /** nanobench's line name for the operation that stands for it. */
  ours: string;
  native: PaperCell;
  software: PaperCell;
  hardware: PaperCell;
  /** What differs between their setup and ours, whatever the numbers say. */
  difference: string;
  /** False when our operation is a different one (cr3wr for cr8wr): no verdict. */
  comparable: boolean;
}

export const ADAMS_AGESEN_2006: readonly PaperRow[] = [
  {
    paper: 'syscall', ours: 'syscall',
    native: { cycles: null, provenance: 'not found' },
    software: { cycles: null, provenance: 'stated', note: 'about 2000 cycles more than native', overNative: 2000 },
    hardware: { cycles: null, provenance: 'stated', note: 'native speed' },
    comparable: true,
    difference: 'theirs is SYSENTER/SYSEXIT-style syscall/sysret; ours is INT 0x80 through a DPL-3 trap gate and IRET',
  },
  {
    paper: 'in', ours: 'in',
    native: { cycles: 3209, provenance: 'stated' },
    software: { cycles: 214, provenance: 'derived', note: '"fifteen times faster than native"' },
    hardware: { cycles: 15826, provenance: 'stated' },
    comparable: true,
    difference: "their BT emulates the port inside the translated code; our rewriter escapes to the monitor (INT 0x81) for IN, as for every non-inline site",
  },
  {
    paper: 'cr8wr', ours: 'cr3wr',
    native: { cycles: 140, provenance: 'derived', note: '"about four times" the software VMM\'s 35' },
    software: { cycles: 35, provenance: 'stated' },
    hardware: { cycles: null, provenance: 'stated', note: 'similar to native (TPR shadow: no exit)' },
    comparable: false,
    difference: 'IA-32 has no CR8; nanobench writes CR3 (its own value), which flushes the TLB and, under a software MMU, always reaches the monitor: not the same operation',
  },
  {
    paper: 'call/ret', ours: 'call/ret',
    native: { cycles: 11, provenance: 'stated' },
    software: { cycles: 51, provenance: 'stated' },
    hardware: { cycles: 11, provenance: 'stated' },
    comparable: true,
    difference: 'their BT translates every indirect branch (RET) through a lookup; ringshift rewrites only sensitive instructions, ahead of time, so CALL/RET run unmodified. A fraction of an exit per operation is a one-off event inside the 1000-iteration window, spread over it',
  },
  {
    paper: 'pgfault', ours: 'pgfault',
    native: { cycles: 1093, provenance: 'stated' },
    software: { cycles: 3927, provenance: 'stated' },
    hardware: { cycles: 11242, provenance: 'stated' },
    comparable: true,
    difference: 'both their VMMs ran a software MMU that intercepts every true guest page fault (no nested paging in 2006); our rewrite monitor reflects the #PF and fills its virtual TLB, our hvm has nested paging (EPT-style), so the guest takes its own #PF without an exit, the outcome the paper looked ahead to',
  },
  {
    paper: 'divzero', ours: 'divzero',
    native: { cycles: 889, provenance: 'stated' },
    software: { cycles: 3223, provenance: 'stated' },
    hardware: { cycles: 1014, provenance: 'stated' },
    comparable: true,
    difference: 'the same operation: a #DE delivered to the guest kernel, which skips the DIV. Under rewrite, the guest\'s trap entry and exit code (segment register pushes, pops and loads, IRET: sensitive instructions patched as escapes) costs more exits than the fault itself',
  },
  {
    paper: 'ptemod', ours: 'ptemod',
    native: { cycles: 1, provenance: 'stated', note: 'a "single cycle store"' },
    software: { cycles: 391, provenance: 'stated' },
    hardware: { cycles: 12733, provenance: 'stated' },
    comparable: true,
    difference: 'their VMMs traced guest page tables (write-protected PTE pages), so the hardware VMM paid an exit per PTE store; nanobench follows each store with INVLPG, which our rewrite monitor sees as an escape and which nested paging (our hvm) does not need to intercept',
  },
];
