// The rewriter's data model: what discovery finds, what a site is, what a plan decides and what
// the patch map records. One file so that the stages (discover → sites → plan → emit → verify)
// and their tests agree on one vocabulary. The on-disk form of PatchMap is docs/patch-map.md;
// the stub ABI the monitor relies on is docs/patch-abi.md.

/** How discovery came to believe an instruction starts at an address (a bit set; several may hold). */
export const Evidence = {
  /** The ELF entry point (e_entry). */
  entry: 1 << 0,
  /** A STT_FUNC symbol, or a NOTYPE symbol in an executable section. */
  symbol: 1 << 1,
  /** The target of a direct JMP/Jcc/CALL/LOOP found by recursive traversal. */
  directTarget: 1 << 2,
  /** Reached by falling through from a recursively discovered instruction. */
  fallthrough: 1 << 3,
  /** Found only by the linear sweep of an executable section (no control-flow path seen). */
  sweep: 1 << 4,
  /** An entry of a recognised jump table. */
  jumpTable: 1 << 5,
  /** The return address of a CALL (the instruction after it). */
  returnSite: 1 << 6,
} as const;
export type EvidenceBit = (typeof Evidence)[keyof typeof Evidence];

/** One decoded instruction that discovery accepted as code. */
export interface CodeInstruction {
  readonly addr: number;
  readonly length: number;
  /** Decoder form id (iced Code value); see @ringshift/decoder formName/classOf. */
  readonly formId: number;
  /** Evidence bits (Evidence.*). */
  readonly evidence: number;
}

/** What a byte of an executable section is, after discovery. */
export type ByteKind = 'code' | 'data' | 'unknown';

/** A maximal run of bytes of one kind, with the reason. */
export interface ByteRange {
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
  readonly kind: ByteKind;
  /** Why: 'instructions', 'object symbol', 'padding', 'undecodable', 'conflicts with code at 0x...', ... */
  readonly reason: string;
}

/** Discovery's result for the whole image. Addresses are virtual (ELF p_vaddr / sh_addr). */
export interface Discovery {
  /** Every accepted instruction, sorted by address, non-overlapping. */
  readonly instructions: readonly CodeInstruction[];
  /** Every byte of every executable section, as consecutive ranges sorted by address. */
  readonly ranges: readonly ByteRange[];
  /**
   * Addresses that some evidence says control may reach other than by falling through: entry,
   * symbols, direct branch/call targets, jump-table entries, return sites. Tactics that overwrite
   * more than their own site must not cover any of these except at their first byte.
   */
  readonly jumpTargets: ReadonlySet<number>;
  /** Indirect JMP/CALL sites whose targets are unknown (their presence is why boundaries matter). */
  readonly indirectTransfers: readonly number[];
  /**
   * Places where two pieces of evidence disagree about an instruction boundary (a branch into the
   * middle of an accepted instruction, code running into an object symbol, ...). Discovery keeps
   * the first interpretation and records the other here.
   */
  readonly conflicts?: readonly { readonly addr: number; readonly reason: string }[];
}

/**
 * Why an instruction is a site: the selector word that matched it. 'evicted' is never a site's:
 * it marks the patch-map record of an instruction a tactic (T2e) patched to make room for a
 * site's jump; such records are not sites and are counted apart.
 */
export type SiteReason = 'privileged' | 'iopl' | 'sensitive-unprivileged' | 'jumps' | 'selected' | 'evicted';

/** An instruction to patch. */
export interface Site {
  readonly addr: number;
  readonly length: number;
  readonly formId: number;
  /** Intel-syntax listing of the original instruction, for reports. */
  readonly text: string;
  readonly reason: SiteReason;
  readonly evidence: number;
}

/**
 * Tactics, named after E9Patch (Duck et al., PLDI 2020) where they match; docs/tactics.md has
 * each one's preconditions and whether it assumes that no jump targets the bytes it overwrites.
 */
export type Tactic =
  | 'B1'    // jmp rel32 over the site itself (site ≥ 5 bytes)
  | 'B2'    // punned jmp rel32: the rel32 overlaps the following bytes, trampoline at the target they fix
  | 'T1'    // B2 with segment-override prefixes as padding to move the pun (site ≥ 2 bytes)
  | 'T2e'   // E9Patch's successor eviction: the next instruction gets its own jump (an 'evicted' record), the site a pun over it
  | 'T3e'   // E9Patch's neighbour eviction: jmp rel8 into a neighbour (an 'evicted' record) whose freed tail holds the site's jmp rel32
  | 'T2'    // successor relocation: jmp rel32 over the site and the instructions after it, all relocated (assumes no inner targets)
  | 'T3'    // neighbour relocation: short jmp at the site to neighbours relocated to hold the rel32 jmps (assumes no inner targets)
  | 'trap'; // no jump fits: the site is left to fault (or replaced by INT3) and the monitor resolves it

/** How a site's stub reproduces the original instruction. */
export type StubKind =
  | 'inline'  // emulated in the stub against the shared page (CLI, STI, PUSHF, POPF)
  | 'escape'  // the stub escapes to the monitor (docs/patch-abi.md), which emulates the instruction
  | 'empty'   // instrumentation only (--select jumps): the original instruction runs relocated
  | 'trap';   // no stub: the instruction faults (or hits INT3) and the monitor emulates it

/** One patched site, as the patch map records it. */
export interface PatchedSite {
  readonly addr: number;
  /** The site instruction's original bytes. */
  readonly original: Uint8Array;
  readonly formId: number;
  readonly reason: SiteReason;
  readonly tactic: Tactic;
  readonly stub: StubKind;
  /** Start of the site's code in a stub range; 0 for 'trap'. */
  readonly stubAddr: number;
  /**
   * Address of the escape instruction in the stub (the monitor identifies the site by it);
   * 0 when the stub does not escape.
   */
  readonly escapeAddr: number;
  /** First address of the original bytes this patch overwrote (≤ addr for T3, = addr otherwise). */
  readonly patchStart: number;
  /** The original bytes overwritten by this patch (site plus evicted instructions), in order. */
  readonly displaced: Uint8Array;
  /** Where the stub returns to in the original code (end of the displaced run); 0 for 'trap'. */
  readonly resume: number;
  /** True when the tactic assumed that no jump targets an overwritten byte after patchStart. */
  readonly assumesNoInnerTargets: boolean;
}

/** A site the rewriter could not patch with a jump, and why (machine-readable). */
export interface Miss {
  readonly addr: number;
  readonly formId: number;
  readonly text: string;
  /** The tactics tried, each with the reason it failed. */
  readonly tried: readonly { readonly tactic: Tactic; readonly why: string }[];
  /** What happens instead: 'trap' (counted as trap fallback) or 'skipped' (never, with --select sensitive). */
  readonly outcome: 'trap' | 'skipped';
}

/**
 * One range of stub code (docs/patch-map.md §Stub range record): a PT_LOAD of the image, or pages the
 * stub loader maps from the executable file at startup (user executables only).
 */
export interface StubRange {
  readonly vaddr: number;
  /** Physical address (PT_LOAD ranges; = vaddr for user executables). */
  readonly paddr: number;
  /** File offset of the range's bytes (loader ranges; 0 for PT_LOAD ranges, whose program header says). */
  readonly offset: number;
  /** Bytes, a multiple of 4 KiB for loader ranges. */
  readonly size: number;
  /** STUB_RANGE_* bits: exactly one of LOAD and LOADER. */
  readonly flags: number;
}

/** The range is (inside) a PT_LOAD segment of the image. */
export const STUB_RANGE_LOAD = 1 << 0;
/** The stub loader maps the range from the executable file (mmap2 at `offset`, PROT_READ|PROT_EXEC). */
export const STUB_RANGE_LOADER = 1 << 1;

/** The contents of the `.ringshift.patchmap` section (docs/patch-map.md is its byte layout). */
export interface PatchMap {
  readonly version: number;
  /** SHA-256 of the original input image, lowercase hex. */
  readonly originalSha256: string;
  /** The selection the image was rewritten with, as given (e.g. 'sensitive'). */
  readonly select: string;
  /**
   * The primary stub range (range 0: the PT_LOAD with the shared page and the loader): virtual
   * and physical start, and size in bytes. 0/0/0 when nothing was patched.
   */
  readonly stubVaddr: number;
  readonly stubPaddr: number;
  readonly stubSize: number;
  /** The per-vCPU shared page (docs/patch-abi.md), inside stub range 0; 0 when none. */
  readonly sharedPage: number;
  /** Patch-map flags (PATCHMAP_FLAG_*). */
  readonly flags: number;
  /** Every stub range, range 0 first (= stubVaddr/stubPaddr/stubSize), the others by vaddr. Empty when nothing was patched. */
  readonly stubRanges: readonly StubRange[];
  /** With PATCHMAP_FLAG_LOADER: the original e_entry, where the loader jumps; 0 otherwise. */
  readonly originalEntry: number;
  readonly sites: readonly PatchedSite[];
}

/** Inline stubs address the shared page through DS with a zero base (the monitor checks DS loads). */
export const PATCHMAP_FLAG_INLINE_FLAT_DS = 1 << 0;
/** The image is a multiboot kernel: every stub range lives in the monitor's reserved hole. */
export const PATCHMAP_FLAG_KERNEL = 1 << 1;
/** e_entry is the stub loader (docs/patch-abi.md §Loader), which maps the LOADER ranges and jumps to originalEntry. */
export const PATCHMAP_FLAG_LOADER = 1 << 2;
