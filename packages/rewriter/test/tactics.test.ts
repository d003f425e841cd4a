// One tiny image per tactic: assemble it, rewrite it with a linear-sweep discovery, then decode
// the patched bytes with the decoder: the jump must land on the site's stub, the stub's listing
// must be the one docs/patch-abi.md and docs/tactics.md give, the stub must jump back to
// `resume`, and the displaced bytes must be the original ones.
import { Assembler, imm, mem, reg, rel } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { LOADER_CODE_SIZE, PATCHMAP_FLAG_LOADER, STUB_RANGE_LOAD, STUB_RANGE_LOADER, decodePatchMap, loaderImage, readElf, rewriteImage, verifyImage } from '../src/index';
import type { PatchedSite, RewriteResult, Tactic } from '../src/index';
import { buildImage, decodeAt, inStubRanges, listing, loadedImage, pickSites, readAt, stubListing, sweepDiscovery } from './support/image';

const hex = (n: number): string => `0x${n.toString(16)}`;

function rewrite(body: (a: Assembler) => void, opts: { kernel?: boolean; jumps?: boolean; inline?: boolean; targets?: string[]; tactics?: Tactic[] } = {}) {
  let labels = new Map<string, number>();
  const original = buildImage((a) => {
    body(a);
  }, { kernel: opts.kernel ?? true });
  // Labels: re-assemble to learn them (buildImage keeps them only as symbols).
  const elf0 = readElf(original);
  labels = new Map(elf0.symbols.map((s) => [s.name, s.value]));
  const targets = (opts.targets ?? []).map((n) => labels.get(n)!);
  const { discovery } = sweepDiscovery(original, targets);
  const sites = pickSites(original, discovery, opts.jumps ? 'jumps' : 'sensitive');
  const r = rewriteImage(original, {
    select: opts.jumps ? 'jumps' : 'sensitive', discovery, sites,
    ...(opts.inline === false ? { inline: false } : {}), ...(opts.tactics ? { tactics: opts.tactics } : {}),
  });
  const elf = loadedImage(r.image);
  const orig = readElf(original);
  return { r, elf, orig, original, labels };
}

function site(r: RewriteResult, addr: number): PatchedSite {
  const s = r.map.sites.find((x) => x.addr === addr);
  if (!s) throw new Error(`no record for ${hex(addr)}`);
  return s;
}

/** The common checks: displaced bytes are the original's; the stub returns to resume. */
function checkCommon(x: ReturnType<typeof rewrite>, s: PatchedSite): string[] {
  expect([...s.displaced]).toEqual([...readAt(x.orig, s.patchStart, s.displaced.length)]);
  expect([...s.original]).toEqual([...readAt(x.orig, s.addr, s.original.length)]);
  expect(s.resume).toBe(s.patchStart + s.displaced.length);
  const lo = x.r.map.stubVaddr, hi = lo + x.r.map.stubSize;
  const st = stubListing(x.elf, s.stubAddr, lo, hi);
  expect(st.exit, `stub of ${hex(s.addr)} must end with jmp resume`).toBe(s.resume);
  return st.lines;
}

describe('B1: jmp rel32 inside a site of 5 bytes or more', () => {
  it('patches SGDT m (7 bytes) with jmp + INT3 filler to an escape stub', () => {
    const x = rewrite((a) => {
      a.asm('mov', reg('eax'), imm(1));
      a.here('sgdt_site');
      a.asm('sgdt', mem({ disp: 0x12345678, size: 'Fword6' as never }));
      a.asm('ret');
    });
    const addr = x.labels.get('sgdt_site')!;
    const s = site(x.r, addr);
    expect(s.tactic).toBe('B1');
    expect(s.stub).toBe('escape');
    expect(s.assumesNoInnerTargets).toBe(false);
    const j = decodeAt(x.elf, addr);
    expect(j.length).toBe(5);
    expect(j.target).toBe(s.stubAddr);
    expect([...readAt(x.elf, addr + 5, 2)]).toEqual([0xcc, 0xcc]);
    expect(s.escapeAddr).toBe(s.stubAddr);
    expect(checkCommon(x, s)).toEqual(['int 0x81', `jmp ${hex(addr + 7)}`]);
    // Bytes outside the site are unchanged.
    expect([...readAt(x.elf, addr - 5, 5)]).toEqual([...readAt(x.orig, addr - 5, 5)]);
    expect([...readAt(x.elf, addr + 7, 1)]).toEqual([0xc3]);
  });
});

describe('T2: successor eviction', () => {
  it('CLI + MOV: inline stub, then the relocated MOV, then jmp resume', () => {
    const x = rewrite((a) => {
      a.here('cli_site');
      a.asm('cli');
      a.asm('mov', reg('eax'), imm(0x11223344));
      a.asm('ret');
    });
    const addr = x.labels.get('cli_site')!;
    const s = site(x.r, addr);
    expect(s.tactic).toBe('T2');
    expect(s.stub).toBe('inline');
    expect(s.assumesNoInnerTargets).toBe(true);
    expect(s.displaced.length).toBe(6);
    const j = decodeAt(x.elf, addr);
    expect(j.target).toBe(s.stubAddr);
    expect(readAt(x.elf, addr + 5, 1)[0]).toBe(0xcc);
    const sp = x.r.map.sharedPage;
    expect(checkCommon(x, s)).toEqual([`mov byte ptr [${hex(sp)}], 0`, 'mov eax, 0x11223344', `jmp ${hex(addr + 6)}`]);
  });

  it('a patch group: PUSHFD; CLI share one run, each with its own stub part in order', () => {
    const x = rewrite((a) => {
      a.here('grp');
      a.asm('pushfd');
      a.asm('cli');
      a.asm('mov', reg('ebx'), imm(7));
      a.asm('ret');
    });
    const addr = x.labels.get('grp')!;
    const p = site(x.r, addr);
    const c = site(x.r, addr + 1);
    expect(p.tactic).toBe('T2');
    expect(c.tactic).toBe('T2');
    expect(c.patchStart).toBe(addr);
    expect([...c.displaced]).toEqual([...p.displaced]);
    expect(c.stubAddr).toBeGreaterThan(p.stubAddr);
    const lines = checkCommon(x, p);
    const sp = x.r.map.sharedPage;
    // PUSHFD's inline listing (docs/patch-abi.md), then CLI's, then the relocated MOV.
    expect(lines).toEqual([
      'pushfd', 'pushfd', 'push eax', 'and dword ptr [esp+8], 0xffffcdff', `movzx eax, byte ptr [${hex(sp + 2)}]`, 'shl eax, 0xc',
      'or dword ptr [esp+8], eax', `movzx eax, byte ptr [${hex(sp)}]`, 'shl eax, 9', 'or dword ptr [esp+8], eax', 'pop eax', 'popfd',
      `mov byte ptr [${hex(sp)}], 0`, 'mov ebx, 7', `jmp ${hex(addr + 7)}`,
    ]);
  });

  it('relocates Jcc rel8 as Jcc rel32 and CALL as PUSH original-return; JMP', () => {
    const x = rewrite((a) => {
      const f = a.label('f');
      a.here('s1');
      a.asm('cli');
      a.asm('test', reg('eax'), reg('eax'));
      a.asm('je', rel(f));
      a.asm('nop');
      a.here('s2');
      a.asm('sti');
      a.asm('call', rel(f));
      a.asm('ret');
      a.bind(f);
      a.asm('ret');
    }, { inline: false });
    const s1 = x.labels.get('s1')!;
    const f = x.labels.get('f')!;
    const a1 = site(x.r, s1);
    expect(a1.tactic).toBe('T2');
    expect(a1.stub).toBe('escape');
    expect(checkCommon(x, a1)).toEqual(['int 0x81', 'test eax, eax', `je ${hex(f)}`, `jmp ${hex(s1 + 5)}`]);
    const s2 = x.labels.get('s2')!;
    const a2 = site(x.r, s2);
    expect(a2.tactic).toBe('T2');
    // The CALL is last in the run, so its original return address is resume.
    const lo = x.r.map.stubVaddr;
    const st = stubListing(x.elf, a2.stubAddr, lo, lo + x.r.map.stubSize);
    expect(st.lines).toEqual(['int 0x81', `push ${hex(s2 + 6)}`, `jmp ${hex(f)}`]);
    expect(a2.resume).toBe(s2 + 6);
  });

  it('refuses to evict a successor that is a jump target (then traps)', () => {
    const x = rewrite((a) => {
      a.here('p');
      a.asm('pushfd');
      a.here('tgt');
      a.asm('mov', reg('eax'), imm(1));
      a.asm('ret');
    }, { targets: ['tgt'] });
    const s = site(x.r, x.labels.get('p')!);
    expect(s.tactic).toBe('trap');
    const miss = x.r.report.misses.find((m) => m.addr === s.addr)!;
    expect(miss.tried.find((t) => t.tactic === 'T2')!.why).toMatch(/jump target/);
    // PUSHFD does not fault at CPL 1: INT3 over it.
    expect(readAt(x.elf, s.addr, 1)[0]).toBe(0xcc);
    expect([...s.displaced]).toEqual([0x9c]);
  });
});

describe('T3: neighbour eviction', () => {
  it('MOV SS (2 bytes, successor is a target): jmp rel8 back into 10+ evicted bytes before it', () => {
    const x = rewrite((a) => {
      a.here('n');
      a.asm('mov', reg('ecx'), imm(0x01020304));
      a.asm('mov', reg('edx'), imm(0x05060708));
      a.here('site');
      a.asm('mov', reg('ss'), reg('ax'));
      a.here('after');
      a.asm('ret');
    }, { targets: ['after'] });
    const addr = x.labels.get('site')!;
    const n = x.labels.get('n')!;
    const s = site(x.r, addr);
    expect(s.tactic).toBe('T3');
    expect(s.patchStart).toBe(n);
    const end = addr + s.original.length;
    expect(s.resume).toBe(end);
    const short = decodeAt(x.elf, addr);
    expect(short.length).toBe(2);
    expect(short.target).toBe(n + 5);
    expect(decodeAt(x.elf, n + 5).target).toBe(s.stubAddr);
    const entry = decodeAt(x.elf, n).target;
    const lo = x.r.map.stubVaddr;
    const st = stubListing(x.elf, entry, lo, lo + x.r.map.stubSize);
    expect(st.lines).toEqual(['mov ecx, 0x1020304', 'mov edx, 0x5060708', 'int 0x81', `jmp ${hex(end)}`]);
    expect(entry + 10).toBe(s.stubAddr);
    expect(checkCommon(x, s)).toEqual(['int 0x81', `jmp ${hex(end)}`]);
    // Filler: the site's bytes after the jmp rel8 are INT3.
    expect([...readAt(x.elf, addr + 2, s.original.length - 2)].every((b) => b === 0xcc)).toBe(true);
  });
});

describe('B2 and T1: punned jumps', () => {
  it('B2: a 4-byte site followed by FF: E9 + 3 free bytes, the FF fixes the high byte', () => {
    const x = rewrite((a) => {
      a.here('site');
      a.asm('sldt', mem({ base: 'eax', disp: 0x12, size: 2 }));
      a.asm('inc', mem({ base: 'eax', size: 4 })); // FF 00
      a.asm('ret');
    });
    const addr = x.labels.get('site')!;
    const s = site(x.r, addr);
    expect(s.tactic).toBe('B2');
    expect(readAt(x.elf, addr, 1)[0]).toBe(0xe9);
    expect([...readAt(x.elf, addr + 4, 2)]).toEqual([0xff, 0x00]); // the following instruction is untouched
    const j = decodeAt(x.elf, addr);
    expect(j.target).toBe(s.stubAddr);
    expect(s.assumesNoInnerTargets).toBe(false);
    expect(checkCommon(x, s)).toEqual(['int 0x81', `jmp ${hex(addr + 4)}`]);
  });

  it('T1: when B2 cannot reach the stub window, a prefix moves the pun onto other bytes', () => {
    const x = rewrite((a) => {
      a.here('site');
      a.asm('sldt', mem({ base: 'eax', disp: 0x12, size: 2 }));
      a.asm('mov', reg('al'), imm(0xff)); // B0 FF
      a.asm('ret');
    }, { tactics: ['B1', 'B2', 'T1'] });
    const addr = x.labels.get('site')!;
    const s = site(x.r, addr);
    expect(s.tactic).toBe('T1');
    const b = readAt(x.elf, addr, 4);
    expect(b[0]).toBe(0x26);
    expect(b[1]).toBe(0xe9);
    expect([...readAt(x.elf, addr + 4, 2)]).toEqual([0xb0, 0xff]);
    expect(decodeAt(x.elf, addr).target).toBe(s.stubAddr);
    expect(checkCommon(x, s)).toEqual(['int 0x81', `jmp ${hex(addr + 4)}`]);
  });
});

describe('settling a following site first', () => {
  it('jne; jne; mov: the second jne is patched first, then the first puns over its patched bytes', () => {
    const x = rewrite((a) => {
      const l = a.label('l');
      a.here('j1');
      a.asm('jne', rel(l));
      a.here('j2');
      a.asm('jne', rel(l));
      a.asm('mov', reg('eax'), imm(0x11223344));
      a.bind(l);
      a.asm('ret');
    }, { kernel: false, jumps: true, tactics: ['B1', 'B2', 'T1'] });
    const j1 = x.labels.get('j1')!, j2 = x.labels.get('j2')!;
    const s1 = site(x.r, j1), s2 = site(x.r, j2);
    expect([s1.tactic, s2.tactic]).toEqual(['B2', 'B2']);
    const b = readAt(x.elf, j1, 7);
    // j1: E9 <free>; its rel32's high bytes are j2's patched E9 <free> and the MOV's B8.
    expect([b[0], b[2], b[4]]).toEqual([0xe9, 0xe9, 0xb8]);
    expect(decodeAt(x.elf, j1).target).toBe(s1.stubAddr);
    expect(decodeAt(x.elf, j2).target).toBe(s2.stubAddr);
    expect([s1.displaced.length, s2.displaced.length]).toEqual([2, 2]);
    expect(checkCommon(x, s1)).toEqual([`jne ${hex(x.labels.get('l')!)}`, `jmp ${hex(j2)}`]);
    expect(checkCommon(x, s2)).toEqual([`jne ${hex(x.labels.get('l')!)}`, `jmp ${hex(j2 + 2)}`]);
    expect(verifyImage(x.r.image, x.original).violations).toEqual([]);
  });
});

describe('stub ranges in a kernel', () => {
  it('a far B2 trampoline is its own small PT_LOAD in the hole, physically right after range 0', () => {
    const x = rewrite((a) => {
      a.here('site');
      a.bytes(Uint8Array.of(0x0f, 0x00, 0xc0)); // sldt eax (3 bytes)
      a.asm('mov', reg('dh'), imm(0xff)); // B6 FF: rel32's high bytes FF B6 → 0xFFB6xxxx
      a.asm('ret');
    });
    const addr = x.labels.get('site')!;
    const s = site(x.r, addr);
    expect(s.tactic).toBe('B2');
    const j = decodeAt(x.elf, addr);
    expect(j.target).toBe(s.stubAddr);
    const ranges = x.r.map.stubRanges;
    expect(ranges.every((r) => r.flags === STUB_RANGE_LOAD)).toBe(true);
    expect(ranges.length).toBeGreaterThanOrEqual(2);
    const far = ranges.find((r) => s.stubAddr >= r.vaddr && s.stubAddr < r.vaddr + r.size)!;
    expect(far).not.toBe(ranges[0]);
    expect(far.size).toBeLessThan(0x1000); // one trampoline, not the 0x60000 bytes from the stub start
    expect(far.paddr).toBe(ranges[0]!.paddr + Math.ceil(ranges[0]!.size / 0x1000) * 0x1000);
    const seg = x.elf.segments.find((g) => g.type === 'load' && g.vaddr === far.vaddr)!;
    expect([seg.paddr, seg.memsz, seg.flags & 1]).toEqual([far.paddr, far.size, 1]);
    expect(x.r.image.length).toBeLessThan(64 * 1024);
    expect(checkCommon(x, s)).toEqual(['int 0x81', `jmp ${hex(addr + s.original.length)}`]);
    expect(verifyImage(x.r.image, x.original).violations).toEqual([]);
  });
});

describe('trap fallback', () => {
  it('leaves an instruction that already faults at CPL 1 unchanged and INT3s one that does not', () => {
    const x = rewrite((a) => {
      a.here('c');
      a.asm('cli');
      a.here('t1');
      a.asm('ret');
      a.here('p');
      a.asm('popfd');
      a.here('t2');
      a.asm('ret');
    }, { targets: ['t1', 't2'] });
    const c = site(x.r, x.labels.get('c')!);
    const p = site(x.r, x.labels.get('p')!);
    expect([c.tactic, c.stub, c.displaced.length]).toEqual(['trap', 'trap', 0]);
    expect(readAt(x.elf, c.addr, 1)[0]).toBe(0xfa);
    expect([p.tactic, p.displaced.length]).toEqual(['trap', 1]);
    expect(readAt(x.elf, p.addr, 1)[0]).toBe(0xcc);
    const misses = x.r.report.misses.map((m) => [m.addr, m.outcome, m.tried.map((t) => t.tactic).join(',')]);
    expect(misses).toEqual([[c.addr, 'trap', 'B1,B2,T1,T2e,T3e,T2,T3'], [p.addr, 'trap', 'B1,B2,T1,T2e,T3e,T2,T3']]);
  });
});

describe('inline stubs with an escape: STI and POPFD', () => {
  it('STI escapes only after restoring the flags; escapeAddr points at the int 0x81', () => {
    const x = rewrite((a) => {
      a.here('s');
      a.asm('sti');
      a.asm('mov', reg('eax'), imm(5));
      a.asm('ret');
    });
    const s = site(x.r, x.labels.get('s')!);
    const sp = x.r.map.sharedPage;
    expect(s.stub).toBe('inline');
    const lines = stubListing(x.elf, s.stubAddr, s.stubAddr, s.stubAddr + 24, 8).lines;
    expect(lines).toEqual([
      `mov byte ptr [${hex(sp)}], 1`, 'pushfd', `cmp byte ptr [${hex(sp + 1)}], 0`, `je ${hex(s.stubAddr + 0x16)}`, 'popfd', 'int 0x81',
      `jmp ${hex(s.stubAddr + 0x17)}`, 'popfd',
    ]);
    expect(s.escapeAddr).toBe(s.stubAddr + 0x12);
    expect([...readAt(x.elf, s.escapeAddr, 2)]).toEqual([0xcd, 0x81]);
  });

  it('POPFD records IF/IOPL in the shared page and escapes after its real POPFD', () => {
    const x = rewrite((a) => {
      a.here('s');
      a.asm('popfd');
      a.asm('mov', reg('eax'), imm(5));
      a.asm('ret');
    });
    const s = site(x.r, x.labels.get('s')!);
    expect(s.stub).toBe('inline');
    const b = readAt(x.elf, s.escapeAddr - 2, 4);
    expect([...b]).toEqual([0x58, 0x9d, 0xcd, 0x81]); // pop eax; popfd; int 0x81
  });
});

describe("'empty' stubs (--select jumps) in a user executable", () => {
  it('JMP rel32 (B1) and a 2-byte Jcc (T2) run relocated and return', () => {
    const x = rewrite((a) => {
      const far = a.label('far');
      a.here('j');
      a.bytes(Uint8Array.of(0xe9, 0x0a, 0x00, 0x00, 0x00)); // jmp rel32 +10
      a.here('jc');
      a.asm('jne', rel(far));
      a.asm('mov', reg('eax'), imm(1));
      a.asm('nop');
      a.bind(far);
      a.asm('ret');
    }, { kernel: false, jumps: true, tactics: ['B1', 'T2'] });
    const j = x.labels.get('j')!;
    const sj = site(x.r, j);
    expect([sj.tactic, sj.stub]).toEqual(['B1', 'empty']);
    expect(x.r.map.sharedPage).toBe(0);
    const lo = x.r.map.stubVaddr;
    expect(stubListing(x.elf, sj.stubAddr, lo, lo + x.r.map.stubSize).lines).toEqual([`jmp ${hex(j + 15)}`]);
    const jc = x.labels.get('jc')!;
    const sc = site(x.r, jc);
    expect([sc.tactic, sc.stub]).toEqual(['T2', 'empty']);
    expect(checkCommon(x, sc)).toEqual([`jne ${hex(x.labels.get('far')!)}`, 'mov eax, 1', `jmp ${hex(jc + 7)}`]);
    expect(x.r.map.flags).toBe(0);
  });

  it('B2 on a loader page: the punned jmp lands on its trampoline, which the loader maps from the file', () => {
    const x = rewrite((a) => {
      const far = a.label('far');
      a.here('jc');
      a.asm('jne', rel(far));
      a.asm('mov', reg('eax'), imm(0x11223344));
      a.bind(far);
      a.asm('ret');
    }, { kernel: false, jumps: true });
    const jc = x.labels.get('jc')!;
    const s = site(x.r, jc);
    expect([s.tactic, s.stub, s.assumesNoInnerTargets]).toEqual(['B2', 'empty', false]);
    // E9 + one free byte; the next three bytes are the MOV's, unchanged (B8 44 33).
    expect([...readAt(x.elf, jc, 5)]).toEqual([0xe9, expect.any(Number), 0xb8, 0x44, 0x33]);
    const j = decodeAt(x.elf, jc);
    expect(j.target).toBe(s.stubAddr);
    const range = x.r.map.stubRanges.find((r) => s.stubAddr >= r.vaddr && s.stubAddr < r.vaddr + r.size)!;
    expect(range.flags).toBe(STUB_RANGE_LOADER);
    expect(range.vaddr % 0x1000 + range.size % 0x1000 + range.offset % 0x1000).toBe(0);
    // The trampoline at that address in the file page the range maps.
    const fileAt = range.offset + (s.stubAddr - range.vaddr);
    expect(x.r.image[fileAt]).toBe(0x0f); // jne rel32
    expect(checkCommon(x, s)).toEqual([`jne ${hex(x.labels.get('far')!)}`, `jmp ${hex(jc + 2)}`]);
    expect(x.r.map.flags).toBe(PATCHMAP_FLAG_LOADER);
    expect(x.r.map.originalEntry).toBe(x.orig.entry);
    expect(x.elf.entry).not.toBe(x.orig.entry);
    expect(inStubRanges(x.r.map, x.elf.entry)).toBe(true);
    expect(verifyImage(x.r.image, x.original).violations).toEqual([]);
  });

  it('the loader: maps each LOADER range, restores the registers and jumps to the original entry', () => {
    const x = rewrite((a) => {
      const far = a.label('far');
      a.asm('jne', rel(far));
      a.asm('mov', reg('eax'), imm(0x11223344));
      a.bind(far);
      a.asm('ret');
    }, { kernel: false, jumps: true });
    const at = x.elf.entry;
    const lines = listing(x.elf, at, 46);
    const m = x.r.map.stubRanges.filter((r) => r.flags === STUB_RANGE_LOADER);
    expect(m.length).toBeGreaterThan(0);
    expect(lines.slice(0, 4)).toEqual(['pushad', 'pushfd', 'mov eax, 5', `mov ebx, ${hex(at + LOADER_CODE_SIZE)}`]);
    expect(lines).toContain('mov eax, 0xc0'); // mmap2
    expect(lines).toContain('mov esi, 0x100012'); // MAP_PRIVATE|MAP_FIXED|MAP_FIXED_NOREPLACE
    expect(lines).toContain('mov edx, 5'); // PROT_READ|PROT_EXEC
    const back = lines.indexOf('popad');
    expect(lines.slice(back - 1, back + 2)).toEqual(['popfd', 'popad', `jmp ${hex(x.orig.entry)}`]);
    // The table after the code and strings: (vaddr, size, offset / 4096) per range, then 0.
    const img = loaderImage(at, x.orig.entry, m.map((r) => ({ vaddr: r.vaddr, size: r.size, offset: r.offset })));
    const tab = new DataView(img.buffer, img.length - 4 - 12 * m.length);
    m.forEach((r, i) => expect([tab.getUint32(12 * i, true), tab.getUint32(12 * i + 4, true), tab.getUint32(12 * i + 8, true)]).toEqual([r.vaddr, r.size, r.offset / 4096]));
    expect(tab.getUint32(12 * m.length, true)).toBe(0);
    expect([...readAt(x.elf, at, img.length)]).toEqual([...img]);
  });
});

describe('the rewritten image', () => {
  it('keeps the multiboot header, the entry and every original segment; the map section decodes to the returned map', () => {
    const x = rewrite((a) => {
      a.asm('cli');
      a.asm('mov', reg('eax'), imm(1));
      a.asm('ret');
    });
    expect(x.elf.entry).toBe(x.orig.entry);
    for (const s of x.orig.segments.filter((g) => g.type === 'load')) {
      const t = x.elf.segments.find((g) => g.type === 'load' && g.vaddr === s.vaddr)!;
      expect([t.paddr, t.memsz, t.filesz, t.flags]).toEqual([s.paddr, s.memsz, s.filesz, s.flags]);
    }
    const mb = new DataView(x.r.image.buffer);
    let found = -1;
    for (let off = 0; off < 8192; off += 4) if (mb.getUint32(off, true) === 0x1badb002) { found = off; break; }
    expect(found).toBeGreaterThanOrEqual(0);
    const sec = x.elf.sections.find((s) => s.name === '.ringshift.patchmap')!;
    expect(decodePatchMap(sec.bytes)).toEqual(x.r.map);
    const stub = x.elf.segments.find((g) => g.vaddr === 0xffc00000)!;
    expect(stub.paddr).toBe(0x112000); // first page after the highest p_paddr + p_memsz (0x110000 + 0x2000)
    expect(x.r.map.stubPaddr).toBe(0x112000);
  });

  it('is byte-identical when rewritten twice', () => {
    const body = (a: Assembler) => {
      a.asm('pushfd');
      a.asm('cli');
      a.asm('sgdt', mem({ disp: 0x1000, size: 'Fword6' as never }));
      a.asm('ret');
    };
    const x1 = rewrite(body);
    const x2 = rewrite(body);
    expect(Buffer.from(x1.r.image).equals(Buffer.from(x2.r.image))).toBe(true);
  });
});
