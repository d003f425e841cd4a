// Code discovery: which bytes of an ELF32 i386 image's executable sections are instructions, where
// each instruction starts, and which addresses control may reach other than by falling through.
//
// The usual pair for stripped x86 code (Schwarz, Debray & Andrews, "Disassembly of executable
// code revisited", WCRE 2002), in this order so that the better evidence claims bytes first:
//   0. STT_OBJECT symbols inside executable sections are data before anything is decoded.
//   1. Recursive traversal from the entry point and the symbols, following direct JMP/Jcc/LOOP/
//      JECXZ/CALL targets, fall-through, and jump tables of the non-PIC gcc shape
//      (`cmp x, imm` / `ja default` / ... / `jmp [idx*4 + table]`). The first interpretation of a
//      byte wins; a later one that disagrees is a conflict, recorded and not followed.
//   2. A sweep over every byte still unclaimed: zero runs and INT3 runs where no control flow
//      reaches are padding; elsewhere a valid decode seeds the same traversal, with every
//      instruction it finds marked Evidence.sweep only, because no trusted path reaches it.
//      Bytes that do not decode are 'unknown' and the sweep resynchronises at the next byte.
//   3. Address-taken code (32-bit immediates and aligned data words equal to an instruction
//      start) joins the jump targets, because indirect transfers may land there.
// Per-byte state lives in typed arrays, and one Instruction is reused: busybox's 1.5 MB .text is
// 469,000 instructions, and an object per byte or per decode would dominate the run time.
import { Decoder, FORMS, Instruction, OpKind, classOf } from '@ringshift/decoder';
import { PF_X, SHF_ALLOC, SHF_EXECINSTR } from './elf/constants';
import type { ElfImage } from './elf/read';
import { RewriteInputError } from './errors';
import { Evidence } from './model';
import type { ByteRange, CodeInstruction, Discovery } from './model';

const hex = (n: number): string => `0x${n.toString(16)}`;

/** A run of executable bytes discovery classifies: an executable section, or without section headers a PT_LOAD segment. */
export interface CodeRegion {
  readonly name: string;
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
  readonly bytes: Uint8Array;
}

/** Executable sections with file bytes, sorted by address; executable PT_LOAD segments when there are no section headers. */
export function codeRegions(elf: ElfImage): CodeRegion[] {
  const out: CodeRegion[] = [];
  if (elf.sections.length > 0) {
    for (const s of elf.sections) {
      // Not SHF_ALLOC: not loaded, so its address means nothing (and is usually 0).
      if ((s.flags & SHF_EXECINSTR) === 0 || (s.flags & SHF_ALLOC) === 0 || s.bytes.length === 0) continue;
      out.push({ name: s.name, start: s.addr, end: s.addr + s.bytes.length, bytes: s.bytes });
    }
  } else {
    for (const g of elf.segments) {
      if (g.type !== 'load' || (g.flags & PF_X) === 0 || g.bytes.length === 0) continue;
      out.push({ name: `segment ${g.index}`, start: g.vaddr, end: g.vaddr + g.bytes.length, bytes: g.bytes });
    }
  }
  out.sort((a, b) => a.start - b.start);
  for (let i = 1; i < out.length; i++) {
    const a = out[i - 1]!, b = out[i]!;
    if (b.start < a.end) {
      throw new RewriteInputError(`executable ${a.name} [${hex(a.start)}, ${hex(a.end)}) and ${b.name} [${hex(b.start)}, ${hex(b.end)}) overlap`);
    }
  }
  return out;
}

/** Refuses what the rewriter does not patch, with the reason in one line. */
export function checkRewritable(elf: ElfImage): void {
  if (elf.class !== 32 || elf.machine !== 'i386') {
    throw new RewriteInputError(`ELF${elf.class} ${elf.machine} image: ringshift rewrites ELF32 i386 (EM_386) executables only`);
  }
  if (elf.type === 'rel') {
    throw new RewriteInputError('relocatable object (ET_REL): its addresses are not final; link it into an executable first');
  }
  if (elf.type !== 'exec' && elf.type !== 'dyn') {
    throw new RewriteInputError(`ELF type '${elf.type}': ringshift rewrites executables (ET_EXEC, or ET_DYN position-independent executables) only`);
  }
}

// ---- Per-form facts the traversal needs, computed once from the decoder's class table ----------
const F_NEXT = 0, F_BRANCH = 1, F_COND = 2, F_CALL = 3, F_IBRANCH = 4, F_ICALL = 5, F_STOP = 6;
/** Jump-table pattern roles: a CMP with an immediate, JA, JAE. */
const P_NONE = 0, P_CMP_IMM = 1, P_JA = 2, P_JAE = 3;
// Indexed by form id, which is iced's Code value: the table skips some, so ids run past FORMS.length.
const FORM_ID_LIMIT = FORMS.reduce((m, f) => Math.max(m, f.id), 0) + 1;
if (FORM_ID_LIMIT > 0x10000) throw new Error(`form ids reach ${FORM_ID_LIMIT - 1}: discovery stores them in 16 bits`);
const FLOW = new Uint8Array(FORM_ID_LIMIT);
const PATTERN = new Uint8Array(FORM_ID_LIMIT);
for (const f of FORMS) {
  const c = classOf(f.id);
  FLOW[f.id] =
    c.flow === 'branch' ? F_BRANCH
    : c.flow === 'conditional' || c.flow === 'xbegin-xabort-xend' ? F_COND
    : c.flow === 'call' ? F_CALL
    : c.flow === 'indirect-branch' ? F_IBRANCH
    : c.flow === 'indirect-call' ? F_ICALL
    // INT n, INT3, INTO, SYSCALL...: the handler returns to the next instruction.
    : c.flow === 'interrupt' ? F_NEXT
    : c.flow === 'return' || c.flow === 'exception' ? F_STOP
    // HLT is 'next': an interrupt resumes after it.
    : F_NEXT;
  PATTERN[f.id] =
    f.mnemonic === 'cmp' && f.ops.length === 2 && f.ops[1]!.startsWith('imm') ? P_CMP_IMM
    : f.mnemonic === 'ja' ? P_JA
    : f.mnemonic === 'jae' ? P_JAE
    : P_NONE;
}

// Module-level copies of the constants the hot loops read: bundlers and tsx turn imported
// objects' properties into getter calls (the decoder README measured it), const numbers stay numbers.
const EV_DIRECT = Evidence.directTarget, EV_FALL = Evidence.fallthrough, EV_SWEEP = Evidence.sweep;
const EV_TABLE = Evidence.jumpTable, EV_RETURN = Evidence.returnSite;
const OPK_IMM32 = OpKind.Immediate32, OPK_MEMORY = OpKind.Memory;
const OPK_NEAR32 = OpKind.NearBranch32, OPK_NEAR16 = OpKind.NearBranch16, OPK_FAR32 = OpKind.FarBranch32, OPK_FAR16 = OpKind.FarBranch16;

/** Byte states. */
const S_FREE = 0, S_HEAD = 1, S_BODY = 2, S_DATA = 3, S_UNKNOWN = 4;
/** Largest jump table believed: a bound above this is more likely a misread pattern than a switch. */
const MAX_TABLE_ENTRIES = 4096;
/** Instructions allowed between `ja default` and the table jump (gcc: movzx/mov of the index). */
const MAX_TABLE_GAP = 3;

interface Region extends CodeRegion {
  readonly state: Uint8Array;
  readonly length: Uint8Array;
  readonly form: Uint16Array;
  readonly evidence: Uint8Array;
  /** Index into Discoverer.reasons, for S_DATA and S_UNKNOWN bytes. */
  readonly reason: Uint16Array;
}

class Discoverer {
  readonly regions: Region[];
  readonly reasons: string[] = ['instructions', 'one of too many distinct reasons to keep'];
  private readonly reasonIds = new Map<string, number>(this.reasons.map((r, i) => [r, i]));
  readonly jumpTargets = new Set<number>();
  readonly indirect: number[] = [];
  readonly conflicts: { addr: number; reason: string }[] = [];
  /** 32-bit immediates of accepted instructions: the code addresses among them are address-taken. */
  private readonly immediates: number[] = [];
  private readonly decoder: Decoder;
  private readonly ins = new Instruction();
  private readonly work: number[] = [];
  private readonly workEvidence: number[] = [];
  private last: Region | undefined;

  constructor(private readonly elf: ElfImage, regions: CodeRegion[]) {
    this.regions = regions.map((r) => {
      const n = r.bytes.length;
      return {
        ...r, state: new Uint8Array(n), length: new Uint8Array(n), form: new Uint16Array(n),
        evidence: new Uint8Array(n), reason: new Uint16Array(n),
      };
    });
    this.decoder = new Decoder(32, new Uint8Array(0));
  }

  reasonId(text: string): number {
    let id = this.reasonIds.get(text);
    // Reasons are stored per byte in 16 bits; past that many distinct ones, the address detail goes.
    if (id === undefined && this.reasons.length >= 0xffff) return this.reasonIds.get(text.replace(/ at 0x[0-9a-f]+$/, '')) ?? 1;
    if (id === undefined) {
      id = this.reasons.length;
      this.reasons.push(text);
      this.reasonIds.set(text, id);
    }
    return id;
  }

  regionOf(addr: number): Region | undefined {
    const l = this.last;
    if (l && addr >= l.start && addr < l.end) return l;
    const rs = this.regions;
    let lo = 0, hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = rs[mid]!;
      if (addr < r.start) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else return (this.last = r);
    }
    return undefined;
  }

  /** Start of the instruction whose body holds the byte at `off`. */
  private headOf(r: Region, off: number): number {
    let o = off;
    while (o > 0 && r.state[o] === S_BODY) o--;
    return r.start + o;
  }

  private describe(r: Region, off: number): string {
    const st = r.state[off]!;
    if (st === S_HEAD || st === S_BODY) return `the instruction at ${hex(this.headOf(r, off))}`;
    return `${this.reasons[r.reason[off]!]!} at ${hex(r.start + off)}`;
  }

  /**
   * glibc's lock elision idiom, `je 1f; lock; 1: cmpxchg ...`, jumps over a LOCK prefix: both
   * boundaries are real, so the conflict says so rather than looking like a disassembly error.
   */
  private lockSkip(r: Region, off: number): string {
    if (r.state[off] !== S_BODY || off === 0 || r.state[off - 1] !== S_HEAD || r.bytes[off - 1] !== 0xf0) return '';
    return ' (a jump over its LOCK prefix)';
  }

  markData(r: Region, from: number, to: number, kind: number, reason: string): void {
    const id = this.reasonId(reason);
    for (let o = from; o < to; o++) {
      if (r.state[o] !== S_FREE) continue;
      r.state[o] = kind;
      r.reason[o] = id;
    }
  }

  /** Follows control flow from every queued address until the queue is empty. */
  traverse(addr: number, evidence: number, trusted: boolean): void {
    this.work.push(addr);
    this.workEvidence.push(evidence);
    while (this.work.length > 0) {
      const a = this.work.pop()!;
      const e = this.workEvidence.pop()!;
      this.run(a, e, trusted);
    }
  }

  private queue(addr: number, evidence: number): void {
    if (!this.regionOf(addr)) return;
    this.jumpTargets.add(addr);
    this.work.push(addr);
    this.workEvidence.push(evidence);
  }

  /** Decodes the straight-line run that starts at `addr`, queueing every other place it may go. */
  private run(addr: number, evidence: number, trusted: boolean): void {
    const ins = this.ins;
    const d = this.decoder;
    // Off a trusted path, every instruction is EV_SWEEP alone, however it was reached.
    const sweep = !trusted;
    let ev = sweep ? EV_SWEEP : evidence;
    // Jump-table pattern state: 0 none, 1 after CMP x, imm, 2 after the JA/JAE that bounds it.
    let stage = 0, bound = 0, gap = 0;
    let r = this.regionOf(addr);
    for (;;) {
      if (!r || addr >= r.end) {
        r = this.regionOf(addr);
        // Outside every executable region: a call to an absolute address, or code the image does not hold.
        if (!r) return;
      }
      const off = addr - r.start;
      const st = r.state[off]!;
      if (st === S_HEAD) {
        // A sweep path adds nothing to what a trusted one found: EV_SWEEP means "only the sweep".
        if (trusted) r.evidence[off] |= ev;
        return;
      }
      if (st !== S_FREE) {
        if (st === S_BODY || trusted) {
          this.conflicts.push({
            addr,
            reason: `${trusted ? '' : 'sweep: '}control reaches ${hex(addr)}, inside ${this.describe(r, off)}${this.lockSkip(r, off)}`,
          });
        }
        return;
      }
      const bytes = r.bytes;
      // A sweep-seeded path that runs into zeros is reading data or padding: `add [eax], al` is
      // what 00 00 decodes as, and no compiler pads with it.
      if (!trusted && bytes[off] === 0 && off + 1 < bytes.length && bytes[off + 1] === 0) return;
      d.seek(bytes, addr, off);
      d.decodeAt(ins);
      if (ins.invalid !== 0) {
        if (trusted) this.conflicts.push({ addr, reason: `control reaches undecodable bytes at ${hex(addr)}` });
        return;
      }
      const len = ins.length;
      for (let k = 1; k < len; k++) {
        if (r.state[off + k] !== S_FREE) {
          if (trusted) {
            this.conflicts.push({
              addr,
              reason: `the instruction at ${hex(addr)} (${len} bytes) would overlap ${this.describe(r, off + k)}`,
            });
          }
          return;
        }
      }
      const form = ins.form;
      r.state[off] = S_HEAD;
      for (let k = 1; k < len; k++) r.state[off + k] = S_BODY;
      r.length[off] = len;
      r.form[off] = form;
      r.evidence[off] |= ev;
      for (let k = 0; k < ins.opCount; k++) if (ins.opKinds[k] === OPK_IMM32) this.immediates.push(ins.imm);

      const next = addr + len;
      const flow = FLOW[form]!;
      const pattern = PATTERN[form]!;
      if (pattern === P_CMP_IMM) {
        stage = 1;
        bound = ins.imm;
      } else if (stage === 1 && (pattern === P_JA || pattern === P_JAE)) {
        stage = 2;
        gap = 0;
        if (pattern === P_JA) bound += 1;
      } else if (stage === 2 && flow === F_NEXT && gap < MAX_TABLE_GAP) {
        gap++;
      } else if (!(stage === 2 && flow === F_IBRANCH)) {
        stage = 0;
      }

      switch (flow) {
        case F_NEXT:
          ev = sweep ? EV_SWEEP : EV_FALL;
          break;
        case F_BRANCH:
          if (hasTarget(ins)) this.queue(ins.target, EV_DIRECT);
          return;
        case F_COND:
          if (hasTarget(ins)) this.queue(ins.target, EV_DIRECT);
          ev = sweep ? EV_SWEEP : EV_FALL;
          break;
        case F_CALL:
          if (hasTarget(ins)) this.queue(ins.target, EV_DIRECT);
          if (next < r.end) this.jumpTargets.add(next);
          ev = sweep ? EV_SWEEP : EV_FALL | EV_RETURN;
          break;
        case F_ICALL:
          this.indirect.push(addr);
          if (next < r.end) this.jumpTargets.add(next);
          ev = sweep ? EV_SWEEP : EV_FALL | EV_RETURN;
          break;
        case F_IBRANCH:
          this.indirect.push(addr);
          if (stage === 2) this.jumpTable(ins, bound);
          return;
        default:
          return;
      }
      addr = next;
    }
  }

  /** `jmp [idx*4 + table]` bounded by a preceding `cmp x, imm; ja`: queue every entry, or none. */
  private jumpTable(ins: Instruction, entries: number): void {
    if (ins.opKinds[0] !== OPK_MEMORY || ins.memBase !== 0 || ins.memIndex === 0 || ins.memScale !== 4) return;
    if (ins.operandSize !== 32 || ins.addressSize !== 32 || ins.segmentPrefix !== 0) return;
    if (entries < 1 || entries > MAX_TABLE_ENTRIES) return;
    const table = ins.memDisp;
    const targets: number[] = [];
    for (let i = 0; i < entries; i++) {
      const t = this.readU32(table + 4 * i);
      // Every entry must be code we can see; one that is not means this was not a table.
      if (t === undefined || !this.regionOf(t)) return;
      targets.push(t);
    }
    for (const t of targets) this.queue(t, EV_TABLE);
  }

  /** A little-endian word from the file bytes of a loaded segment. */
  private readU32(addr: number): number | undefined {
    for (const g of this.elf.segments) {
      if (g.type !== 'load' || addr < g.vaddr || addr + 4 > g.vaddr + g.bytes.length) continue;
      const o = addr - g.vaddr, b = g.bytes;
      return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
    }
    return undefined;
  }

  /** Pass 2: every byte still free becomes padding, sweep-found code, or unknown. */
  sweep(): void {
    const padding = this.reasonId('padding');
    const undecodable = this.reasonId('undecodable');
    const ins = this.ins;
    const d = this.decoder;
    for (const r of this.regions) {
      const { state, bytes } = r;
      const n = bytes.length;
      let off = 0;
      // True at a place no fall-through reaches: after a JMP/RET, padding, or the region start.
      let unreached = true;
      while (off < n) {
        const st = state[off]!;
        if (st !== S_FREE) {
          if (st === S_HEAD) {
            const f = FLOW[r.form[off]!]!;
            unreached = f === F_BRANCH || f === F_IBRANCH || f === F_STOP;
            off += r.length[off]!;
          } else {
            unreached = true;
            off++;
          }
          continue;
        }
        const b = bytes[off]!;
        // Alignment fill: runs of 00 (ld's default fill) or of INT3 (CC) that nothing falls into.
        const zeroRun = b === 0 && (off + 1 < n && state[off + 1] === S_FREE ? bytes[off + 1] === 0 : unreached);
        if (zeroRun || (b === 0xcc && unreached)) {
          let o = off;
          while (o < n && bytes[o] === b && state[o] === S_FREE) o++;
          for (let k = off; k < o; k++) {
            state[k] = S_DATA;
            r.reason[k] = padding;
          }
          off = o;
          unreached = true;
          continue;
        }
        d.seek(bytes, r.start + off, off);
        d.decodeAt(ins);
        if (ins.invalid === 0) {
          const len = ins.length;
          this.traverse(r.start + off, EV_SWEEP, false);
          if (state[off] === S_HEAD) continue;
          // It decodes but would overlap code or data already claimed: that decides against it.
          let k = 1;
          while (k < len && state[off + k] === S_FREE) k++;
          state[off] = S_UNKNOWN;
          r.reason[off] = k < len ? this.reasonId(`overlaps ${this.describe(r, off + k)}`) : undecodable;
        } else {
          state[off] = S_UNKNOWN;
          r.reason[off] = undecodable;
        }
        unreached = true;
        off++;
      }
    }
  }

  /**
   * Address-taken code: a 32-bit immediate (`push offset handler`, `mov [resume], offset 1f`) or
   * an aligned word of loaded data (function-pointer and stub tables) whose value is the start of
   * an accepted instruction. Control may arrive there indirectly, so they are jump targets; they
   * are not traversal seeds, because a constant that happens to equal a code address is common.
   */
  addressTaken(): void {
    const lo = this.regions[0]?.start ?? 0, hi = this.regions.at(-1)?.end ?? 0;
    const isHead = (v: number): boolean => {
      if (v < lo || v >= hi) return false;
      const r = this.regionOf(v);
      return r !== undefined && r.state[v - r.start] === S_HEAD;
    };
    for (const v of this.immediates) if (isHead(v)) this.jumpTargets.add(v);
    for (const g of this.elf.segments) {
      if (g.type !== 'load') continue;
      const b = g.bytes;
      for (let o = (4 - (g.vaddr & 3)) & 3; o + 4 <= b.length; o += 4) {
        const v = (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
        if (!isHead(v)) continue;
        // Instruction bytes are not a table: their immediates were taken above.
        const here = this.regionOf(g.vaddr + o);
        if (here) {
          const st = here.state[g.vaddr + o - here.start]!;
          if (st === S_HEAD || st === S_BODY) continue;
        }
        this.jumpTargets.add(v);
      }
    }
  }

  result(): Discovery {
    const instructions: CodeInstruction[] = [];
    const ranges: ByteRange[] = [];
    for (const r of this.regions) {
      const { state, start } = r;
      const n = state.length;
      let runStart = 0, runKind = -1, runReason = -1;
      const flush = (end: number): void => {
        if (runKind < 0) return;
        ranges.push({
          start: start + runStart, end: start + end,
          kind: runKind === S_DATA ? 'data' : runKind === S_UNKNOWN ? 'unknown' : 'code',
          reason: this.reasons[runReason]!,
        });
      };
      // Every S_BODY byte follows its S_HEAD, so stepping by instruction length visits each head.
      for (let o = 0; o < n;) {
        const st = state[o]!;
        const reason = st === S_HEAD ? 0 : r.reason[o]!;
        if (st !== runKind || reason !== runReason) {
          flush(o);
          runStart = o;
          runKind = st;
          runReason = reason;
        }
        if (st === S_HEAD) {
          const len = r.length[o]!;
          instructions.push({ addr: start + o, length: len, formId: r.form[o]!, evidence: r.evidence[o]! });
          o += len;
        } else {
          o++;
        }
      }
      flush(n);
    }
    this.indirect.sort((a, b) => a - b);
    this.conflicts.sort((a, b) => a.addr - b.addr);
    return { instructions, ranges, jumpTargets: this.jumpTargets, indirectTransfers: this.indirect, conflicts: this.conflicts };
  }
}

/**
 * A direct branch whose destination is known: near ones, and far ones (JMP/CALL ptr16:32) by
 * their offset, which is where they land in the flat segments every i386 kernel and Linux
 * process runs with (a kernel's `ljmp $0x8, $1f` after LGDT reloads CS and continues at 1f).
 */
function hasTarget(ins: Instruction): boolean {
  const k = ins.opKinds[0];
  return k === OPK_NEAR32 || k === OPK_NEAR16 || k === OPK_FAR32 || k === OPK_FAR16;
}

/**
 * Finds the code in an ELF32 i386 executable (ET_EXEC, or ET_DYN PIE); see the file comment for
 * the method and README.md for the limits. Throws RewriteInputError for other images.
 */
export function discover(elf: ElfImage): Discovery {
  checkRewritable(elf);
  const dis = new Discoverer(elf, codeRegions(elf));

  // Objects first: a symbol that says "data" outranks a path that runs into it.
  for (const s of elf.symbols) {
    if (s.type !== 'object' || s.size === 0) continue;
    const r = dis.regionOf(s.value);
    if (!r) continue;
    dis.markData(r, s.value - r.start, Math.min(r.end, s.value + s.size) - r.start, S_DATA, `object symbol ${s.name}`);
  }

  const seeds: { addr: number; evidence: number }[] = [];
  if (dis.regionOf(elf.entry)) seeds.push({ addr: elf.entry, evidence: Evidence.entry });
  const symbols = elf.symbols
    .filter((s) => (s.type === 'func' || s.type === 'notype') && s.name !== '' && s.sectionIndex !== 0 && dis.regionOf(s.value))
    // Functions before bare labels: a NOTYPE label in .text may name data placed there by hand.
    .sort((a, b) => (a.type === b.type ? a.value - b.value : a.type === 'func' ? -1 : 1));
  for (const s of symbols) seeds.push({ addr: s.value, evidence: Evidence.symbol });
  for (const s of seeds) dis.jumpTargets.add(s.addr);
  for (const s of seeds) dis.traverse(s.addr, s.evidence, true);

  dis.sweep();
  dis.addressTaken();
  return dis.result();
}
