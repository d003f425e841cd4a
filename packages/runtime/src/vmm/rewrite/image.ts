// The loader check of the rewrite backend: a patched image and its patch map must agree before
// anything runs (docs/patch-map.md: "the runtime trusts nothing in the map that it can re-check
// against the image"). Refuses a mismatch with a PatchMapError naming the first disagreement.
import { Decoder, Instruction, OpKind, classOf, mnemonicOf } from '@ringshift/decoder';
import { sha256Hex } from '../sha256';
import { PT_LOAD, PT_NULL, readElf32, sectionBytes, type Elf32, type ProgramHeader } from './elf';
import { PATCHMAP_FLAG_KERNEL, PATCHMAP_FLAG_LOADER, PATCHMAP_SECTION, PatchMapError, STUB_RANGE_LOAD, decodePatchMap, type PatchMap, type PatchMapSite } from './patchmap';

/** The monitor's reserved linear hole (docs/patch-abi.md): [0xFFC00000, 0xFFFFF000). */
export const HOLE_START = 0xffc00000;
export const HOLE_END = 0xfffff000;
/** Stub ranges end below this; above it, up to HOLE_END, lie the monitor's own structures (docs/patch-abi.md §Address space). */
export const HOLE_STUB_END = 0xfffe0000;
/** Shared page layout (docs/patch-abi.md). */
export const SHARED_VIF = 0;
export const SHARED_PENDING = 1;
export const SHARED_VIOPL = 2;
export const SHARED_VERSION = 4;

export interface RewrittenImage {
  map: PatchMap;
  /** The program headers of the stub segments (one per cluster of stub ranges in version 2). */
  stubSegments: ProgramHeader[];
  /**
   * The hole as the monitor maps it, from 0xFFC00000 (range 0, the shared page) to the end of
   * the last stub segment: each stub segment at its place (bss zeroed), zeros between.
   */
  stubBytes: Uint8Array;
  /** The image with the stub PT_LOADs turned into PT_NULL: what the guest's loader places in its RAM. */
  guestImage: Uint8Array;
  /** Sites by the address of their `int 0x81` escape. */
  byEscape: Map<number, PatchMapSite>;
  /** Trap sites replaced by INT3, by site address. */
  byInt3: Map<number, PatchMapSite>;
  /** Every site, by address. */
  byAddr: Map<number, PatchMapSite>;
  /**
   * Where flow enters stub code from the original code (a patch's jump target, or a site's stub
   * part), with the original address it stands for: user-mode code that reaches a patch runs the
   * original instructions instead (the stubs are kernel-only; see the monitor).
   */
  entries: Map<number, { site: PatchMapSite; start: number }>;
  /**
   * Each instruction of a relocated form in a trampoline (a relocated copy, a rewritten branch,
   * the `push` and `jmp` of a relocated call), by its stub address: what the monitor reports
   * instead when it faults there (docs/rewrite-backend.md, "Faults in relocated instructions").
   * Always set by checkRewrittenImage; optional for images put together by hand (tests).
   */
  relocated?: Map<number, RelocatedPart>;
  /**
   * Guest time (docs/rewrite-backend.md, "Guest time"): the stub addresses of the instructions
   * that stand for one guest instruction each, the first instruction of each site's stub part
   * and of each relocated form. Every other instruction in the stub ranges is plumbing, which
   * the guest does not see retire. Set by checkRewrittenImage, with `patchJumpsPhys`.
   */
  standIns?: Set<number>;
  /** Physical addresses of the patch jumps in the guest's code (plumbing too). */
  patchJumpsPhys?: Set<number>;
}

/**
 * One instruction of the relocated form of the displaced instruction at `addr`. `undo` is what
 * the relocated form did before this part that the original, faulting, would not have done:
 * `esp` the `push` of a relocated call (ESP 4 lower), `count` the decrement of a relocated LOOP
 * whose `jmp` to the target faults (ECX, or CX with a 16-bit address size, 1 lower).
 */
export interface RelocatedPart {
  addr: number;
  length: number;
  undo: 'none' | 'esp' | 'count' | 'count16';
}

export interface CheckOptions {
  /** The unpatched input file, to compare with the map's SHA-256. */
  original?: Uint8Array;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

/** True when the image carries a `.ringshift.patchmap` section. */
export function hasPatchMap(image: Uint8Array): boolean {
  try {
    return sectionBytes(image, readElf32(image), PATCHMAP_SECTION) !== null;
  } catch {
    return false;
  }
}

/** Reads the patch map of a patched image and checks it against the image. Throws PatchMapError. */
export function checkRewrittenImage(image: Uint8Array, opts: CheckOptions = {}): RewrittenImage {
  const elf = readElf32(image);
  const section = sectionBytes(image, elf, PATCHMAP_SECTION);
  if (section === null) {
    throw new PatchMapError(`no ${PATCHMAP_SECTION} section: this is not an image patched by \`ringshift rewrite\` (run it first, or use --backend native or deprivileged)`);
  }
  const map = decodePatchMap(section);
  if (opts.original !== undefined) {
    const got = sha256Hex(opts.original);
    if (got !== map.originalSha256) throw new PatchMapError(`the patch map was made from another input: its SHA-256 is ${map.originalSha256}, the original given has ${got}`);
  }
  if (map.sites.length === 0 || map.stubVaddr === 0) throw new PatchMapError('the patch map records no patched site and no stub segment: nothing for the rewrite backend to do');
  if ((map.flags & PATCHMAP_FLAG_KERNEL) === 0) throw new PatchMapError('the patch map is for a user executable (PATCHMAP_FLAG_KERNEL clear); the rewrite backend runs multiboot kernels');

  if ((map.flags & PATCHMAP_FLAG_LOADER) !== 0) throw new PatchMapError('the patch map has a stub loader (PATCHMAP_FLAG_LOADER), which only user executables have');

  // The stub ranges, recomputed from the program headers: each LOAD range inside one executable
  // PT_LOAD at the stated paddr, all in the monitor's hole, range 0 at its start.
  if (map.stubVaddr !== HOLE_START) throw new PatchMapError(`stub range 0 starts at ${hex(map.stubVaddr)}, not at the monitor's hole ${hex(HOLE_START)}`);
  const stubs: ProgramHeader[] = [];
  let stubEnd = HOLE_START;
  for (const r of map.ranges) {
    const what = `stub range ${hex(r.vaddr)}-${hex(r.vaddr + r.size)}`;
    if (r.flags !== STUB_RANGE_LOAD) throw new PatchMapError(`${what} is not a LOAD range`);
    if (r.vaddr < HOLE_START || r.vaddr + r.size > HOLE_STUB_END) throw new PatchMapError(`${what} is not inside the stub part of the monitor's hole ${hex(HOLE_START)}-${hex(HOLE_STUB_END)} (above it lie the monitor's own structures)`);
    const p = elf.programHeaders.find((q) => q.type === PT_LOAD && r.vaddr >= q.vaddr && r.vaddr + r.size <= q.vaddr + q.memsz);
    if (p === undefined) throw new PatchMapError(`${what} is in no PT_LOAD of the image`);
    if ((p.flags & 1) === 0) throw new PatchMapError(`${what} is in segment ${p.index}, which is not executable`);
    if (p.paddr + (r.vaddr - p.vaddr) !== r.paddr) throw new PatchMapError(`${what}: the map says paddr ${hex(r.paddr)}, segment ${p.index} puts it at ${hex(p.paddr + (r.vaddr - p.vaddr))}`);
    if (!stubs.includes(p)) stubs.push(p);
    stubEnd = Math.max(stubEnd, p.vaddr + p.memsz);
  }
  if (stubEnd > HOLE_STUB_END) throw new PatchMapError(`the segments holding stub ranges end at ${hex(stubEnd)}, inside the monitor's own structures at ${hex(HOLE_STUB_END)}-${hex(HOLE_END)}`);
  for (const p of elf.programHeaders) {
    if (stubs.includes(p) || p.type !== PT_LOAD || p.memsz === 0) continue;
    if (p.vaddr + p.memsz > HOLE_START) throw new PatchMapError(`segment ${p.index} (${hex(p.vaddr)}-${hex(p.vaddr + p.memsz)}) reaches into the monitor's hole and holds no stub range`);
  }
  // The hole as the monitor maps it: every stub segment at its place, zeros between.
  const stubBytes = new Uint8Array(stubEnd - HOLE_START);
  for (const p of stubs) {
    if (p.offset + p.filesz > image.length) throw new PatchMapError(`stub segment ${p.index} runs past the end of the file`);
    stubBytes.set(image.subarray(p.offset, p.offset + p.filesz), p.vaddr - HOLE_START);
  }
  const inStub = (a: number, n = 1): boolean => map.ranges.some((r) => a >= r.vaddr && a + n <= r.vaddr + r.size);
  if (map.sharedPage !== 0) {
    if (map.sharedPage !== map.stubVaddr) throw new PatchMapError(`shared page ${hex(map.sharedPage)} is not the first page of stub range 0 ${hex(map.stubVaddr)}`);
    const version = new DataView(stubBytes.buffer).getUint32(4, true);
    if (version !== 1) throw new PatchMapError(`the shared page holds version ${version}, expected 1 (docs/patch-abi.md)`);
  }

  const byte = (a: number): number => imageByte(image, elf, stubs, a);
  const byEscape = new Map<number, PatchMapSite>();
  const byInt3 = new Map<number, PatchMapSite>();
  const byAddr = new Map<number, PatchMapSite>();
  const entries = new Map<number, { site: PatchMapSite; start: number }>();
  const ins = new Instruction();
  for (const s of map.sites) {
    const where = `site ${hex(s.addr)}`;
    byAddr.set(s.addr, s);
    // The original bytes decode to the recorded form, at the recorded length.
    new Decoder(32, s.original, s.addr).decodeAt(ins);
    if (!ins.valid || ins.length !== s.original.length || ins.form !== s.formId) {
      throw new PatchMapError(`${where}: the recorded original bytes do not decode to form ${s.formId} of ${s.original.length} bytes`);
    }
    // `original` is where it belongs in `displaced`.
    const inDisplaced = s.addr - s.patchStart;
    if (s.displaced.length > 0) {
      if (inDisplaced < 0 || inDisplaced + s.original.length > s.displaced.length && !(s.tactic === 'trap' && s.displaced.length === 1)) {
        throw new PatchMapError(`${where}: the site lies outside its displaced bytes (patch start ${hex(s.patchStart)}, ${s.displaced.length} bytes)`);
      }
      for (let i = 0; i < Math.min(s.original.length, s.displaced.length - inDisplaced); i++) {
        if (s.displaced[inDisplaced + i] !== s.original[i]) throw new PatchMapError(`${where}: the original bytes differ from the displaced bytes at +${i}`);
      }
    }
    if (s.tactic === 'trap') {
      if (s.displaced.length === 0) {
        for (let i = 0; i < s.original.length; i++) {
          if (byte(s.addr + i) !== s.original[i]) throw new PatchMapError(`${where}: a trap site left unchanged, but the image holds other bytes than the map's original (image and map do not match)`);
        }
      } else {
        if (byte(s.addr) !== 0xcc) throw new PatchMapError(`${where}: a trap site replaced by INT3, but the image holds ${hex(byte(s.addr))} there (image and map do not match)`);
        byInt3.set(s.addr, s);
      }
      continue;
    }
    // A patched site: the first overwritten byte holds a jump into the stub segment.
    const jumpAt = s.tactic === 'T3' ? s.addr : s.patchStart;
    const target = jumpTarget(byte, jumpAt);
    if (target === null) throw new PatchMapError(`${where}: the image holds no jump at ${hex(jumpAt)} (tactic ${s.tactic}); image and map do not match`);
    if (s.tactic !== 'T3' && !inStub(target)) throw new PatchMapError(`${where}: the jump at ${hex(jumpAt)} goes to ${hex(target)}, outside the stub segment`);
    // T3: the site holds `jmp rel8` back to the neighbours, whose first jump enters the trampoline.
    const entry = s.tactic === 'T3' ? jumpTarget(byte, s.patchStart) : target;
    if (entry === null || !inStub(entry)) throw new PatchMapError(`${where}: the jump at ${hex(s.patchStart)} does not enter the stub segment; image and map do not match`);
    if (!entries.has(entry)) entries.set(entry, { site: s, start: s.patchStart });
    if (!entries.has(s.stubAddr)) entries.set(s.stubAddr, { site: s, start: s.addr });
    if (!inStub(s.stubAddr)) throw new PatchMapError(`${where}: stub address ${hex(s.stubAddr)} is outside the stub segment`);
    if (s.escapeAddr !== 0) {
      if (!inStub(s.escapeAddr, 2)) throw new PatchMapError(`${where}: escape address ${hex(s.escapeAddr)} is outside the stub segment`);
      const o = s.escapeAddr - map.stubVaddr;
      if (stubBytes[o] !== 0xcd || stubBytes[o + 1] !== 0x81) throw new PatchMapError(`${where}: no \`int 0x81\` at its escape address ${hex(s.escapeAddr)}`);
      if (byEscape.has(s.escapeAddr)) throw new PatchMapError(`${where}: escape address ${hex(s.escapeAddr)} is shared with another site`);
      byEscape.set(s.escapeAddr, s);
    } else if (s.stubKind === 'escape') {
      throw new PatchMapError(`${where}: an escape stub without an escape address`);
    }
  }

  // Each patched run's trampoline holds, in order, the site parts and the relocated copies of the
  // displaced instructions, then `jmp resume` (docs/patch-abi.md, "Stub layout").
  const groups = new Map<number, PatchMapSite[]>();
  for (const s of map.sites) {
    if (s.tactic === 'trap') continue;
    const g = groups.get(s.patchStart);
    if (g) g.push(s);
    else groups.set(s.patchStart, [s]);
  }
  const relocated = new Map<number, RelocatedPart>();
  const standIns = new Set<number>();
  const patchJumps: number[] = [];
  for (const [patchStart, group] of groups) {
    const entry = jumpTarget(byte, patchStart)!;
    checkTrampoline(map.stubVaddr, stubBytes, group, entry, relocated, standIns);
    patchJumps.push(patchStart);
    // T3: the site's `jmp rel8` and the `jmp rel32` at P + 5 it goes to (docs/tactics.md §T3).
    for (const s of group) if (s.tactic === 'T3') patchJumps.push(s.addr, jumpTarget(byte, s.addr)!);
  }
  const patchJumpsPhys = new Set<number>();
  for (const a of patchJumps) {
    const p = elf.programHeaders.find((q) => q.type === PT_LOAD && !stubs.includes(q) && a >= q.vaddr && a < q.vaddr + q.memsz)!;
    patchJumpsPhys.add((p.paddr + (a - p.vaddr)) >>> 0);
  }

  // A copy, never a view: a Node Buffer's slice() shares the caller's bytes (and its pool offset).
  const guestImage = new Uint8Array(image);
  for (const p of stubs) new DataView(guestImage.buffer).setUint32(p.entryOffset, PT_NULL, true);
  return { map, stubSegments: stubs, stubBytes, guestImage, byEscape, byInt3, byAddr, entries, relocated, standIns, patchJumpsPhys };
}

/** The image byte at virtual address `a` (outside the stub segment), from the PT_LOAD holding it. */
function imageByte(image: Uint8Array, elf: Elf32, stubs: ProgramHeader[], a: number): number {
  for (const p of elf.programHeaders) {
    if (stubs.includes(p) || p.type !== PT_LOAD) continue;
    if (a >= p.vaddr && a < p.vaddr + p.memsz) return a - p.vaddr < p.filesz ? image[p.offset + (a - p.vaddr)]! : 0;
  }
  throw new PatchMapError(`address 0x${(a >>> 0).toString(16)} named by the patch map is in no loadable segment of the image`);
}

/** Target of `jmp rel32` (after optional 0x26 prefixes) or `jmp rel8` at `a`, else null. */
function jumpTarget(byte: (a: number) => number, a: number): number | null {
  let at = a;
  while (byte(at) === 0x26 && at - a < 4) at++;
  const op = byte(at);
  if (op === 0xe9) {
    const rel = byte(at + 1) | (byte(at + 2) << 8) | (byte(at + 3) << 16) | (byte(at + 4) << 24);
    return (at + 5 + rel) >>> 0;
  }
  if (op === 0xeb && at === a) return (at + 2 + ((byte(at + 1) << 24) >> 24)) >>> 0;
  return null;
}

/** Target of the `jmp rel32`/`jmp rel8` at stub address `lin` in the hole `stubBytes` (from HOLE_START), else null. */
export function stubJumpTarget(stubBytes: Uint8Array, lin: number): number | null {
  return jumpTarget((a) => stubBytes[a - HOLE_START] ?? 0, lin);
}

/** Bytes of an inline stub part by mnemonic (docs/patch-abi.md, "Inline stubs"). */
export const INLINE_PART: Readonly<Record<string, number>> = { cli: 7, sti: 23, pushfd: 41, popfd: 60 };
const LOOP_LIKE = new Set(['loop', 'loope', 'loopne', 'jecxz', 'jcxz']);

/**
 * Walks the trampoline of one patched run (the sites sharing `patch start`) from `entry` and
 * checks it against the displaced bytes: each site's part where its record says, each other
 * instruction relocated as docs/patch-abi.md's table says, then `jmp resume`. Adds each part of
 * each relocated form to `relocated`, and the first instruction of each site part and relocated
 * form to `standIns`.
 */
function checkTrampoline(stubVaddr: number, stub: Uint8Array, group: PatchMapSite[], entry: number, relocated: Map<number, RelocatedPart>, standIns: Set<number>): void {
  const first = group[0]!;
  const where = `patched run at ${hex(first.patchStart)}`;
  const displaced = first.displaced;
  const at = (p: number): number => {
    const o = p - stubVaddr;
    if (o < 0 || o >= stub.length) throw new PatchMapError(`${where}: its trampoline runs out of the stub segment at ${hex(p)}`);
    return stub[o]!;
  };
  const decodeStub = (p: number): Instruction => {
    const ins = new Instruction();
    const o = p - stubVaddr;
    new Decoder(32, stub.subarray(o, Math.min(stub.length, o + 15)), p).decodeAt(ins);
    if (!ins.valid) throw new PatchMapError(`${where}: undecodable trampoline bytes at ${hex(p)}`);
    return ins;
  };
  const expectJump = (p: number, mnemonic: string, target: number): number => {
    const j = decodeStub(p);
    if (mnemonicOf(j.form) !== mnemonic || (j.target >>> 0) !== (target >>> 0)) {
      throw new PatchMapError(`${where}: expected \`${mnemonic} ${hex(target)}\` at ${hex(p)} in its trampoline`);
    }
    return p + j.length;
  };
  let p = entry >>> 0;
  let x = first.patchStart >>> 0;
  const end = (first.patchStart + displaced.length) >>> 0;
  const ins = new Instruction();
  while (x < end) {
    new Decoder(32, displaced.subarray(x - first.patchStart), x).decodeAt(ins);
    if (!ins.valid) throw new PatchMapError(`${where}: its displaced bytes do not decode at ${hex(x)}`);
    const bytes = displaced.subarray(x - first.patchStart, x - first.patchStart + ins.length);
    const m = mnemonicOf(ins.form);
    const site = group.find((s) => s.addr === x);
    if (site !== undefined && site.stubKind !== 'empty') {
      if (site.stubAddr !== p) throw new PatchMapError(`site ${hex(site.addr)}: its stub part is at ${hex(p)} in the trampoline, the map says ${hex(site.stubAddr)}`);
      standIns.add(p >>> 0);
      if (site.stubKind === 'escape') {
        if (site.escapeAddr !== p) throw new PatchMapError(`site ${hex(site.addr)}: an escape stub is \`int 0x81\` at its stub address`);
        p += 2;
      } else {
        const size = INLINE_PART[m];
        if (size === undefined) throw new PatchMapError(`site ${hex(site.addr)}: no inline stub is defined for ${m}`);
        if (site.escapeAddr !== 0 && (site.escapeAddr < p || site.escapeAddr >= p + size)) throw new PatchMapError(`site ${hex(site.addr)}: its escape lies outside its inline stub`);
        p += size;
      }
    } else {
      if (site !== undefined && site.stubAddr !== p) throw new PatchMapError(`site ${hex(site.addr)}: its stub part is at ${hex(p)} in the trampoline, the map says ${hex(site.stubAddr)}`);
      const next = (x + ins.length) >>> 0;
      const flow = classOf(ins.form).flow;
      // The parts of this relocated form, by stub address (see RelocatedPart).
      const parts: [number, RelocatedPart['undo']][] = [[p, 'none']];
      if (ins.opCount > 0 && ins.opKinds[0] === OpKind.NearBranch32) {
        if (m === 'jmp') p = expectJump(p, 'jmp', ins.target);
        else if (m === 'call') {
          const push = decodeStub(p);
          if (mnemonicOf(push.form) !== 'push' || (push.imm >>> 0) !== next) throw new PatchMapError(`${where}: the relocated call at ${hex(x)} does not push its original return address ${hex(next)}`);
          parts.push([p + push.length, 'esp']);
          p = expectJump(p + push.length, 'jmp', ins.target);
        } else if (LOOP_LIKE.has(m)) {
          for (let i = 0; i < bytes.length - 1; i++) if (at(p + i) !== bytes[i]) throw new PatchMapError(`${where}: the relocated ${m} at ${hex(x)} differs`);
          p += bytes.length - 1;
          if (at(p) !== 0x02 || at(p + 1) !== 0xeb || at(p + 2) !== 0x05) throw new PatchMapError(`${where}: the relocated ${m} at ${hex(x)} differs`);
          // `jmp .+5` stays inside the stub and cannot fault; the `jmp target` after it runs
          // only when the branch is taken, after a LOOP decremented its count.
          parts.push([p + 3, m.startsWith('loop') ? (ins.addressSize === 16 ? 'count16' : 'count') : 'none']);
          p = expectJump(p + 3, 'jmp', ins.target);
        } else {
          p = expectJump(p, m, ins.target);
        }
      } else if (flow === 'indirect-call') {
        const push = decodeStub(p);
        if (mnemonicOf(push.form) !== 'push' || (push.imm >>> 0) !== next) throw new PatchMapError(`${where}: the relocated call at ${hex(x)} does not push its original return address ${hex(next)}`);
        p += push.length;
        const j = decodeStub(p);
        if (mnemonicOf(j.form) !== 'jmp' || j.length !== ins.length) throw new PatchMapError(`${where}: the relocated indirect call at ${hex(x)} is not the same operand's jmp`);
        parts.push([p, 'esp']);
        p += j.length;
      } else {
        for (let i = 0; i < bytes.length; i++) {
          if (at(p + i) !== bytes[i]) throw new PatchMapError(`${where}: the trampoline's copy of the instruction at ${hex(x)} differs from the displaced bytes`);
        }
        p += bytes.length;
      }
      for (const [a, undo] of parts) relocated.set(a >>> 0, { addr: x, length: ins.length, undo });
      standIns.add(parts[0]![0] >>> 0);
    }
    x = (x + ins.length) >>> 0;
  }
  expectJump(p, 'jmp', first.resume);
}
