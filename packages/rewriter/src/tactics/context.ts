// What every tactic sees while the plan is made: the original image by address, the discovered
// instructions, the sites, which bytes earlier patches already own, and the stub-space allocator.
// Tactics are tried in order per site (plan.ts); each returns a Patch or the reason it failed.
import { Decoder, Instruction, OpKind, classOf, mnemonicOf } from '@ringshift/decoder';
import { AddrIndex, ByteSet, spanOf } from '../byteset';
import type { ElfImage } from '../elf/read';
import { Evidence } from '../model';
import type { Discovery, Site, StubKind, Tactic } from '../model';
import { CodeBuffer } from '../stubs/code';
import { emitEmpty } from '../stubs/empty';
import { emitEscape } from '../stubs/escape';
import { inlineFormOf, inlineStub } from '../stubs/inline';
import { relocate } from '../stubs/relocate';

const hex = (n: number): string => `0x${n.toString(16)}`;

/** One site's part of a trampoline. */
export interface SiteStub {
  readonly site: Site;
  readonly stub: StubKind;
  readonly stubAddr: number;
  readonly escapeAddr: number;
}

/** What a tactic decided for one site (or one group of sites sharing a run). */
export interface Patch {
  readonly tactic: Tactic;
  /** First original byte overwritten. */
  readonly patchStart: number;
  /** End (exclusive) of the overwritten run; resume for every tactic but trap. */
  readonly patchEnd: number;
  readonly resume: number;
  /** Bytes written into the original code (within [patchStart, patchEnd)). */
  readonly writes: readonly { readonly addr: number; readonly bytes: Uint8Array }[];
  /** Original bytes after patchEnd that must never change (the fixed bytes of a punned rel32). */
  readonly pins: readonly number[];
  readonly trampoline: { readonly addr: number; readonly bytes: Uint8Array } | undefined;
  readonly sites: readonly SiteStub[];
  readonly assumesNoInnerTargets: boolean;
  /**
   * Set on the patch of an evicted instruction (T2e's successor): not a site, it gets a record of
   * its own (reason 'evicted', an 'empty' stub at stubAddr that runs it relocated).
   */
  readonly evicted?: { readonly addr: number; readonly formId: number; readonly stubAddr: number };
  /** The patches of instructions this patch evicted (applied with it, each with its own trampoline). */
  readonly evictions?: readonly Patch[];
}

/** A tactic: a Patch, or why it does not apply to the site. */
export type TacticResult = Patch | string;

/** Instructions whose semantics reveal their own next address (they push it or hand it to a handler). */
export function revealsNextAddress(formId: number): boolean {
  const f = classOf(formId).flow;
  return f === 'call' || f === 'indirect-call' || f === 'interrupt';
}

/**
 * The stub space: sequential trampolines fill [start, limit) from the bottom; punned ones go at
 * chosen addresses anywhere in [punLo, punHi). Reserved ranges (the image, the brk margin) and
 * every committed trampoline are used.
 */
export class StubSpace {
  // Sorted, non-overlapping [starts[i], ends[i]): reserved ranges and committed trampolines. Two
  // number arrays rather than an array of pairs: inserting among tens of thousands of punned
  // trampolines is then a plain memmove of unboxed doubles.
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private cursor: number;
  /** End of the highest sequential trampoline. */
  private seqEnd: number;
  constructor(
    readonly start: number,
    readonly limit: number,
    readonly punLo: number = start,
    readonly punHi: number = limit,
    reserved: readonly (readonly [number, number])[] = [],
    readonly separate = false,
  ) {
    this.cursor = start;
    this.seqEnd = start;
    const sorted = [...reserved].filter(([x, y]) => y > x).sort((x, y) => x[0] - y[0]);
    for (const [x, y] of sorted) {
      const n = this.ends.length;
      if (n > 0 && x <= this.ends[n - 1]!) this.ends[n - 1] = Math.max(this.ends[n - 1]!, y);
      else {
        this.starts.push(x);
        this.ends.push(y);
      }
    }
  }
  /** End of the sequential trampolines (the primary range's code end). */
  get end(): number {
    return this.seqEnd;
  }
  /** Where the next sequential slot starts unless something used lies there. */
  get next(): number {
    return this.cursor;
  }
  /** Index of the first used interval whose end is above `at` (binary search). */
  private firstEndingAfter(at: number): number {
    let lo = 0, hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid]! <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  /** The first free address ≥ from where `size` bytes fit below `limit`, at most `last`; undefined if none. */
  private firstFit(from: number, last: number, size: number, limit: number): number | undefined {
    let at = from;
    for (let i = this.firstEndingAfter(at); i < this.starts.length; i++) {
      if (this.starts[i]! >= at + size) break;
      at = Math.max(at, this.ends[i]!);
      if (at > last) return undefined;
    }
    return at <= last && at + size <= limit ? at : undefined;
  }
  /** Next sequential slot (for ordinary trampolines). */
  allocate(size: number): number | undefined {
    const at = this.firstFit(this.cursor, this.limit, size, this.limit);
    if (at !== undefined) {
      this.cursor = at + size;
      this.seqEnd = Math.max(this.seqEnd, at + size);
    }
    return at;
  }
  /**
   * A slot whose start lies in [lo, hi] ∩ [punLo, punHi) (for punned trampolines); not committed.
   * With `separate`, not in the sequential region [start, limit) either (a user executable's
   * punned trampolines go on loader pages, clear of range 0 and the heap above it).
   */
  findIn(lo: number, hi: number, size: number): number | undefined {
    const from = Math.max(lo, this.punLo);
    const at = this.firstFit(from, hi, size, this.punHi);
    if (at === undefined || !this.separate || at + size <= this.start || at >= this.limit) return at;
    return this.firstFit(Math.max(from, this.limit), hi, size, this.punHi);
  }
  commit(at: number, size: number): void {
    const i = this.firstEndingAfter(at);
    // Sequential trampolines are contiguous: extend the interval before instead of inserting.
    if (i > 0 && this.ends[i - 1] === at) {
      this.ends[i - 1] = at + size;
      if (i < this.starts.length && this.starts[i] === at + size) {
        this.ends[i - 1] = this.ends[i]!;
        this.starts.splice(i, 1);
        this.ends.splice(i, 1);
      }
      return;
    }
    this.starts.splice(i, 0, at);
    this.ends.splice(i, 0, at + size);
  }
}

export class PlanContext {
  readonly decoder = new Decoder(32, new Uint8Array(0));
  /** Index into discovery.instructions by address. */
  readonly index: AddrIndex;
  readonly sites = new Map<number, Site>();
  /** Bytes owned by earlier patches (overwritten, or the site of a trap). */
  readonly claimed: ByteSet;
  /** Bytes that must keep their original value (fixed bytes of punned jumps). */
  readonly pinned: ByteSet;
  /** Bytes of any site's instruction (not yet patched sites must keep their bytes to be patched later). */
  readonly siteBytes: ByteSet;
  /** Bytes of sites the plan has finished with (patched, trapped or skipped): they will not change again. */
  readonly settled: ByteSet;
  /** The bytes written so far by applied patches (and trap INT3s): per load segment, a copy and a mask. */
  private readonly overlays = new Map<number, { readonly value: Uint8Array; readonly has: Uint8Array }>();
  /** Addresses of Discovery.conflicts: evidence of control reaching the middle of an instruction. */
  readonly conflictAddrs: ReadonlySet<number>;
  /** Discovery.jumpTargets and conflictAddrs together, for targetInside's per-byte scan. */
  private readonly targets: ByteSet;

  constructor(
    readonly elf: ElfImage,
    readonly discovery: Discovery,
    sites: readonly Site[],
    readonly space: StubSpace,
    /** The shared page address, for inline stubs; undefined disables inline stubs. */
    readonly sharedPage: number | undefined,
    readonly kernel: boolean,
  ) {
    const span = spanOf(elf.segments.filter((s) => s.type === 'load').map((s) => [s.vaddr, s.vaddr + Math.max(s.memsz, s.bytes.length)] as const));
    this.index = new AddrIndex(span);
    this.claimed = new ByteSet(span);
    this.pinned = new ByteSet(span);
    this.siteBytes = new ByteSet(span);
    this.settled = new ByteSet(span);
    discovery.instructions.forEach((ins, i) => this.index.set(ins.addr, i));
    this.conflictAddrs = new Set((discovery.conflicts ?? []).map((c) => c.addr));
    this.targets = new ByteSet(span);
    for (const a of discovery.jumpTargets) this.targets.add(a);
    for (const a of this.conflictAddrs) this.targets.add(a);
    for (const s of sites) {
      this.sites.set(s.addr, s);
      for (let a = s.addr; a < s.addr + s.length; a++) this.siteBytes.add(a);
    }
  }

  /** The original bytes [addr, addr + len) when one segment's file bytes hold them all. */
  read(addr: number, len: number): Uint8Array | undefined {
    for (const s of this.elf.segments) {
      if (s.type !== 'load') continue;
      if (addr >= s.vaddr && addr + len <= s.vaddr + s.bytes.length) return s.bytes.subarray(addr - s.vaddr, addr - s.vaddr + len);
    }
    return undefined;
  }

  /** The bytes [addr, addr + len) as the plan has left them so far: the original with every applied write. */
  current(addr: number, len: number): Uint8Array | undefined {
    const orig = this.read(addr, len);
    if (!orig) return undefined;
    const out = new Uint8Array(orig);
    for (const [vaddr, o] of this.overlays) {
      for (let i = 0; i < len; i++) {
        const off = addr + i - vaddr;
        if (off >= 0 && off < o.has.length && o.has[off]) out[i] = o.value[off]!;
      }
    }
    return out;
  }

  /** Records bytes written into the original code (a patch's writes, a trap's INT3). */
  record(writes: readonly { readonly addr: number; readonly bytes: Uint8Array }[]): void {
    for (const w of writes) {
      const seg = this.elf.segments.find((s) => s.type === 'load' && w.addr >= s.vaddr && w.addr + w.bytes.length <= s.vaddr + s.bytes.length);
      if (!seg) throw new Error(`internal error: a write at ${hex(w.addr)} outside the file bytes of every segment`);
      let o = this.overlays.get(seg.vaddr);
      if (!o) {
        o = { value: new Uint8Array(seg.bytes.length), has: new Uint8Array(seg.bytes.length) };
        this.overlays.set(seg.vaddr, o);
      }
      o.value.set(w.bytes, w.addr - seg.vaddr);
      o.has.fill(1, w.addr - seg.vaddr, w.addr - seg.vaddr + w.bytes.length);
    }
  }

  /** Scratch for decode(): one Instruction per decode was a large share of a busybox rewrite's garbage. */
  private readonly scratch = new Instruction();

  /** Decodes the original instruction at addr, into a scratch object valid until the next call. */
  decode(addr: number): Instruction | undefined {
    for (const s of this.elf.segments) {
      if (s.type !== 'load' || addr < s.vaddr || addr >= s.vaddr + s.bytes.length) continue;
      const ins = this.scratch;
      this.decoder.seek(s.bytes, addr, addr - s.vaddr);
      this.decoder.decodeAt(ins);
      return ins.valid ? ins : undefined;
    }
    return undefined;
  }

  /** The discovered instruction that starts where `addr` ends, as [addr, length], or undefined. */
  next(addr: number): { addr: number; length: number } | undefined {
    const i = this.index.get(addr);
    if (i === undefined) return undefined;
    const cur = this.discovery.instructions[i]!;
    const n = this.discovery.instructions[i + 1];
    return n && n.addr === cur.addr + cur.length ? { addr: n.addr, length: n.length } : undefined;
  }

  /** The discovered instruction that ends exactly at addr. */
  previous(addr: number): { addr: number; length: number } | undefined {
    // Instructions are sorted: find the one before the instruction at addr, or by scanning back.
    const i = this.index.get(addr);
    if (i === undefined || i === 0) return undefined;
    const p = this.discovery.instructions[i - 1]!;
    return p.addr + p.length === addr ? { addr: p.addr, length: p.length } : undefined;
  }

  /**
   * A known jump target strictly inside (start, end): a direct target, or an address where
   * discovery saw a jump into the middle of an instruction (Discovery.conflicts, e.g. the
   * `je 1f; lock; 1: cmpxchg` idiom that skips a prefix).
   */
  targetInside(start: number, end: number): number | undefined {
    for (let a = start + 1; a < end; a++) if (this.targets.has(a)) return a;
    return undefined;
  }

  /**
   * An instruction in [start, end) that follows an unconditional transfer (padding aside): only a
   * jump reaches it (a jump-table case, a label jumped over), so it is a jump target whether or not
   * discovery knows the jump. `except` (a site whose first byte may be a target) is allowed.
   */
  hiddenTarget(start: number, end: number, except = -1): number | undefined {
    let after = false;
    for (let a = start; a < end; ) {
      const ins = this.decode(a);
      if (!ins) return undefined;
      if (after && a !== start && a !== except && !isPadding(ins)) return a;
      if (ENDS_PATH.has(classOf(ins.form).flow)) after = true;
      else if (!isPadding(ins)) after = false;
      a += ins.length;
    }
    return undefined;
  }

  /**
   * An instruction in (start, end) that only the linear sweep found (Evidence.sweep alone): no
   * known control flow reaches it, so control reaches it by jumps discovery cannot see (an
   * unrecognised jump table, a function pointer), and any of its instructions may be a target.
   */
  untrusted(start: number, end: number): number | undefined {
    for (let a = start; a < end; ) {
      const i = this.index.get(a);
      const ins = i === undefined ? undefined : this.discovery.instructions[i];
      if (!ins) return a === start ? undefined : a;
      // Alignment padding after a jump is found only by the sweep too; nothing jumps to it.
      if (a !== start && ins.evidence === Evidence.sweep && !isPaddingAt(this, a)) return a;
      a += ins.length;
    }
    return undefined;
  }

  /** Why [start, end) cannot be overwritten, or undefined. */
  busy(start: number, end: number): string | undefined {
    for (let a = start; a < end; a++) {
      if (this.claimed.has(a)) return `${hex(a)} is already overwritten by another patch`;
      if (this.pinned.has(a)) return `${hex(a)} is a fixed byte of a punned jump`;
    }
    return undefined;
  }

  stubKindOf(site: Site): StubKind {
    if (site.reason === 'jumps') return 'empty';
    if (this.sharedPage !== undefined && inlineFormOf(site.formId)) return 'inline';
    return 'escape';
  }

  /**
   * Builds a trampoline at `origin` for the whole instructions [start, end): sites get their
   * stubs, the others are relocated; `firstSite` is where the patch enters for the head site
   * (its stub address), and the trampoline ends with jmp resume. Returns the bytes and stubs,
   * or why not.
   */
  buildRun(origin: number, start: number, end: number, resume: number): { bytes: Uint8Array; stubs: SiteStub[] } | string {
    const buf = new CodeBuffer(origin);
    const stubs: SiteStub[] = [];
    for (let a = start; a < end; ) {
      const ins = this.decode(a);
      if (!ins) return `undecodable bytes at ${hex(a)}`;
      const bytes = this.read(a, ins.length)!;
      const nextAddr = a + ins.length;
      // The instruction's next address survives as an original boundary only at the run's end.
      const last = nextAddr === end;
      const site = this.sites.get(a);
      if (site) {
        const kind = this.stubKindOf(site);
        const stubAddr = buf.here;
        let escapeAddr = 0;
        if (kind === 'empty') {
          const why = emitEmpty(buf, ins, bytes, last);
          if (why) return `site ${hex(a)}: ${why}`;
        } else {
          if (revealsNextAddress(site.formId) && !last) {
            return `site ${hex(a)} pushes or reveals its next address ${hex(nextAddr)}, which this tactic overwrites`;
          }
          if (kind === 'inline') {
            const st = inlineStub(inlineFormOf(site.formId)!, buf.here, this.sharedPage!);
            if (st.escapeOffset !== undefined) escapeAddr = (buf.here + st.escapeOffset) >>> 0;
            buf.raw(st.bytes);
          } else {
            escapeAddr = emitEscape(buf);
          }
        }
        stubs.push({ site, stub: kind, stubAddr, escapeAddr });
      } else {
        const why = relocate(buf, ins, bytes, last);
        if (why) return `${hex(a)}: ${why}`;
      }
      a = nextAddr;
    }
    buf.jmp(resume);
    return { bytes: buf.bytes(), stubs };
  }

  /** buildRun in the sequential stub space: measures, allocates, rebuilds at the slot. */
  placeRun(start: number, end: number, resume: number): { addr: number; bytes: Uint8Array; stubs: SiteStub[] } | string {
    // Built at the cursor first: the slot is almost always there, and then one build is enough.
    const guess = this.space.next;
    const probe = this.buildRun(guess, start, end, resume);
    if (typeof probe === 'string') return probe;
    const at = this.space.allocate(probe.bytes.length);
    if (at === undefined) return 'the sequential stub region is full';
    if (at === guess) {
      this.space.commit(at, probe.bytes.length);
      return { addr: at, ...probe };
    }
    const r = this.buildRun(at, start, end, resume);
    if (typeof r === 'string') return r;
    this.space.commit(at, r.bytes.length);
    return { addr: at, ...r };
  }

  /** Marks a patch's bytes as owned. */
  apply(p: Patch): void {
    for (let a = p.patchStart; a < p.patchEnd; a++) this.claimed.add(a);
    for (const a of p.pins) this.pinned.add(a);
    this.record(p.writes);
  }
}

/** Flows after which the next instruction is reached only by a jump. */
const ENDS_PATH: ReadonlySet<string> = new Set(['branch', 'indirect-branch', 'return', 'exception']);

/** Alignment padding compilers and assemblers put after jumps and between functions (the same list as verify.ts). */
export function isPadding(ins: Instruction): boolean {
  const m = mnemonicOf(ins.form);
  if (m === 'nop' || m === 'int3') return true;
  if (m === 'lea') return ins.opRegs[0] === ins.memBase && ins.memIndex === 0 && ins.memDisp === 0;
  if (m === 'mov' || m === 'xchg') {
    return ins.opCount === 2 && ins.opKinds[0] === OpKind.Register && ins.opKinds[1] === OpKind.Register && ins.opRegs[0] === ins.opRegs[1];
  }
  return false;
}

function isPaddingAt(ctx: PlanContext, addr: number): boolean {
  const ins = ctx.decode(addr);
  return ins !== undefined && isPadding(ins);
}

/** INT3 filler for overwritten bytes no one should reach. */
export const INT3 = 0xcc;

export function fill(len: number): Uint8Array {
  return new Uint8Array(len).fill(INT3);
}
