// Test doubles for the rewriter's inputs: tiny ELF images assembled with the decoder's Assembler
// and writeElf32, a linear-sweep Discovery (independent of src/discover.ts), sites chosen by
// the decoder's classes, and a listing helper that decodes the rewritten image.
import { Assembler, Decoder, Instruction, OpKind, classOf, formatIntel, isSensitive } from '@ringshift/decoder';
import { STUB_RANGE_LOADER, decodePatchMap, readElf, writeElf32 } from '../../src/index';
import type { ElfImage, PatchMap } from '../../src/index';
import type { CodeInstruction, Discovery, Site, SiteReason } from '../../src/model';
import { Evidence } from '../../src/model';

export const KERNEL_BASE = 0x100000;
export const USER_BASE = 0x08049000;
export const MB_MAGIC = 0x1badb002;

/** A multiboot kernel (header at the start of its text) or a Linux-style executable with `body` as code. */
export function buildImage(body: (a: Assembler) => void, opts: { kernel?: boolean } = {}): Uint8Array {
  const kernel = opts.kernel ?? true;
  const base = kernel ? KERNEL_BASE : USER_BASE;
  const a = new Assembler(32, base);
  if (kernel) a.dd(MB_MAGIC, 0, (-MB_MAGIC) >>> 0, 0);
  const entry = a.here('_start');
  void entry;
  body(a);
  const { bytes, labels } = a.assemble();
  return writeElf32({
    type: 'exec', machine: 'i386', entry: labels.get('_start')!,
    segments: [
      { vaddr: base, flags: 'rx', bytes },
      { vaddr: base + 0x10000, flags: 'rw', bytes: Uint8Array.of(1, 2, 3, 4), memsz: 0x2000 },
    ],
    sections: [
      // The multiboot header in its own non-executable section, as examples/common/link.ld does.
      ...(kernel ? [{ name: '.multiboot', addr: base, size: 16, flags: 'a' }] : []),
      { name: '.text', addr: base + (kernel ? 16 : 0), size: bytes.length - (kernel ? 16 : 0), flags: 'ax' },
      { name: '.data', addr: base + 0x10000, size: 4, flags: 'aw' },
    ],
    symbols: [...labels].filter(([n]) => !n.startsWith('.')).map(([name, value]) => ({ name, value, type: 'func' as const })),
  });
}

/**
 * Linear sweep of the executable segments from their first byte (the multiboot header is
 * skipped as data), with jump targets: the entry, every label passed in `targets`, direct
 * branch/call targets and return sites. The test programs are straight-line code, so every
 * instruction is marked as reached by fall-through (trusted), not Evidence.sweep.
 */
export function sweepDiscovery(bytes: Uint8Array, extraTargets: readonly number[] = []): { elf: ElfImage; discovery: Discovery } {
  const elf = readElf(bytes);
  const instructions: CodeInstruction[] = [];
  const targets = new Set<number>([elf.entry, ...extraTargets]);
  const ranges: Discovery['ranges'][number][] = [];
  for (const seg of elf.segments) {
    if (seg.type !== 'load' || (seg.flags & 1) === 0 || seg.bytes.length === 0) continue;
    let off = seg.bytes.length >= 16 && new DataView(seg.bytes.buffer, seg.bytes.byteOffset).getUint32(0, true) === MB_MAGIC ? 16 : 0;
    if (off) ranges.push({ start: seg.vaddr, end: seg.vaddr + off, kind: 'data', reason: 'multiboot header' });
    const d = new Decoder(32, seg.bytes, seg.vaddr + off, off);
    const ins = new Instruction();
    const start = seg.vaddr + off;
    while (off < seg.bytes.length) {
      d.seek(seg.bytes, seg.vaddr + off, off);
      d.decodeAt(ins);
      if (!ins.valid) break;
      instructions.push({ addr: ins.ip, length: ins.length, formId: ins.form, evidence: Evidence.fallthrough });
      const flow = classOf(ins.form).flow;
      if (ins.opKinds[0] === OpKind.NearBranch32) targets.add(ins.target);
      if (flow === 'call' || flow === 'indirect-call') targets.add(ins.ip + ins.length);
      off += ins.length;
    }
    ranges.push({ start, end: seg.vaddr + off, kind: 'code', reason: 'instructions' });
  }
  return { elf, discovery: { instructions, ranges, jumpTargets: targets, indirectTransfers: [] } };
}

/** Sites: sensitive instructions (or, with jumps, JMP/Jcc/JMP r/m), with our own reason words. */
export function pickSites(bytes: Uint8Array, discovery: Discovery, mode: 'sensitive' | 'jumps' = 'sensitive'): Site[] {
  const elf = readElf(bytes);
  const out: Site[] = [];
  for (const i of discovery.instructions) {
    const c = classOf(i.formId);
    let reason: SiteReason | undefined;
    if (mode === 'sensitive' && isSensitive(i.formId)) {
      reason = c.privileged !== 'no' ? 'privileged' : c.ioplSensitive === 'always' ? 'iopl' : c.sensitiveUnprivileged ? 'sensitive-unprivileged' : 'iopl';
    } else if (mode === 'jumps' && (c.flow === 'branch' || c.flow === 'conditional' || c.flow === 'indirect-branch')) {
      reason = 'jumps';
    }
    if (!reason) continue;
    out.push({ addr: i.addr, length: i.length, formId: i.formId, text: listing(elf, i.addr, 1)[0]!, reason, evidence: i.evidence });
  }
  return out;
}

/** Reads `len` bytes at a virtual address of an ELF image (zero-filled past the file bytes). */
export function readAt(elf: ElfImage, addr: number, len: number): Uint8Array {
  const seg = elf.segments.find((s) => s.type === 'load' && addr >= s.vaddr && addr < s.vaddr + s.memsz);
  if (!seg) throw new Error(`0x${addr.toString(16)} is not loaded`);
  const out = new Uint8Array(len);
  out.set(seg.bytes.subarray(addr - seg.vaddr, addr - seg.vaddr + len));
  // The rest from the next range (a trampoline across a loader page boundary).
  const got = Math.min(len, seg.vaddr + seg.bytes.length - addr);
  if (got < len && got > 0 && elf.segments.some((s) => s.type === 'load' && s.vaddr === seg.vaddr + seg.memsz)) {
    out.set(readAt(elf, addr + got, len - got), got);
  }
  return out;
}

/**
 * The rewritten image as the process sees it after the stub loader ran: readElf plus every
 * LOADER stub range of its patch map as a segment over the file bytes it maps.
 */
export function loadedImage(bytes: Uint8Array): ElfImage {
  const elf = readElf(bytes);
  const sec = elf.sections.find((s) => s.name === '.ringshift.patchmap');
  if (!sec) return elf;
  const map = decodePatchMap(sec.bytes);
  const extra = map.stubRanges.filter((r) => r.flags === STUB_RANGE_LOADER).map((r, i) => ({
    index: 1000 + i, type: 'load', offset: r.offset, vaddr: r.vaddr, paddr: r.paddr, filesz: r.size, memsz: r.size,
    flags: 5, align: 4096, bytes: bytes.subarray(r.offset, r.offset + r.size),
  }));
  return { ...elf, segments: [...elf.segments, ...extra] };
}

/** Whether addr lies in any stub range of the map. */
export function inStubRanges(map: PatchMap, addr: number): boolean {
  return map.stubRanges.some((r) => addr >= r.vaddr && addr < r.vaddr + r.size);
}

/** Decodes one instruction at addr from the image. */
export function decodeAt(elf: ElfImage, addr: number): Instruction {
  const b = readAt(elf, addr, 16);
  const d = new Decoder(32, b, addr, 0);
  const ins = new Instruction();
  d.decodeAt(ins);
  return ins;
}

/** Intel-syntax listing of `count` instructions from addr. */
export function listing(elf: ElfImage, addr: number, count: number): string[] {
  const out: string[] = [];
  let a = addr;
  for (let i = 0; i < count; i++) {
    const ins = decodeAt(elf, a);
    out.push(formatIntel(ins));
    a += ins.valid ? ins.length : 1;
  }
  return out;
}

/** Listing from addr up to and including the first unconditional jmp that leaves [lo, hi). */
export function stubListing(elf: ElfImage, addr: number, lo: number, hi: number, max = 60): { lines: string[]; exit: number | undefined } {
  const lines: string[] = [];
  let a = addr;
  for (let i = 0; i < max; i++) {
    const ins = decodeAt(elf, a);
    lines.push(formatIntel(ins));
    if (classOf(ins.form).flow === 'branch' && ins.opKinds[0] === OpKind.NearBranch32 && (ins.target < lo || ins.target >= hi)) {
      return { lines, exit: ins.target };
    }
    a += ins.valid ? ins.length : 1;
  }
  return { lines, exit: undefined };
}
