// rewriteImage end to end: the example kernels (coverage per tactic, verifyImage, determinism,
// multiboot header), a Linux i386 program rewritten with --select jumps and run on the host
// next to the original (the host CPU is the oracle for "behaviour unchanged"), the inline stubs
// run on the host CPU at CPL 3 (where POPFD keeps IF/IOPL as it does at CPL 1), and refusals.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Assembler, imm, mem, reg } from '@ringshift/decoder';
import { afterAll, describe, expect, it } from 'vitest';
import {
  PATCHMAP_FLAG_INLINE_FLAT_DS, PATCHMAP_FLAG_KERNEL, RewriteInputError, decodePatchMap, findMultibootHeader, readElf,
  planLayout, rewriteImage, verifyImage, writeElf32,
} from '../src/index';
import { buildImage, pickSites, sweepDiscovery } from './support/image';

const ROOT = join(import.meta.dirname, '../../..');
const EXAMPLES = ['hello', 'interrupts', 'nanobench', 'paging', 'sensitive', 'usermode'];
const dir = mkdtempSync(join(tmpdir(), 'ringshift-rewrite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the example kernels, --select sensitive', () => {
  for (const name of EXAMPLES) {
    const file = join(ROOT, 'examples', name, `${name}.elf`);
    it.runIf(existsSync(file))(`${name}: every site accounted for, verify passes, header and entry kept`, () => {
      const original = new Uint8Array(readFileSync(file));
      const r = rewriteImage(original);
      const rep = r.report;
      expect(rep.kernel).toBe(true);
      expect(r.map.flags & PATCHMAP_FLAG_KERNEL).toBe(PATCHMAP_FLAG_KERNEL);
      expect(r.map.stubVaddr).toBe(0xffc00000);
      expect(r.map.originalSha256).toBe(createHash('sha256').update(original).digest('hex'));
      // Every site has a record (sensitive never skips), the counts add up.
      expect(r.map.sites.filter((s) => s.reason !== 'evicted').length).toBe(rep.sites);
      expect(rep.misses.every((m) => m.outcome === 'trap')).toBe(true);
      expect(Object.values(rep.tactics).reduce((a, b) => a + b, 0)).toBe(rep.sites);
      expect(rep.patched).toBe(rep.sites - rep.tactics.trap);
      // Coverage floor: at least 75% of the sites get a jump in every example (docs/tactics.md has the numbers).
      expect(rep.patched / rep.sites).toBeGreaterThan(0.75);
      expect(r.map.flags & PATCHMAP_FLAG_INLINE_FLAT_DS).toBe(rep.stubs.inline > 0 ? PATCHMAP_FLAG_INLINE_FLAT_DS : 0);
      const v = verifyImage(r.image, original);
      expect(v.violations.map((x) => `${x.kind} ${x.message}`)).toEqual([]);
      const mb0 = findMultibootHeader(original)!;
      const mb1 = findMultibootHeader(r.image)!;
      expect(mb1.flags).toBe(mb0.flags);
      const e0 = readElf(original), e1 = readElf(r.image);
      expect(e1.entry).toBe(e0.entry);
      const sec = e1.sections.find((s) => s.name === '.ringshift.patchmap')!;
      expect(decodePatchMap(sec.bytes)).toEqual(r.map);
      expect(Buffer.from(rewriteImage(original).image).equals(Buffer.from(r.image))).toBe(true);
      // The CLI passes a Node Buffer, whose slice() is a view: the same image, the input untouched.
      const buf = Buffer.from(original);
      expect(Buffer.from(rewriteImage(buf).image).equals(Buffer.from(r.image))).toBe(true);
      expect(buf.equals(original)).toBe(true);
      console.log(`${name}: ${rep.sites} sites, ${JSON.stringify(rep.tactics)}, stubs ${JSON.stringify(rep.stubs)}`);
    }, 60_000);
  }

  it.runIf(existsSync(join(ROOT, 'examples/hello/hello.elf')))('--inline false: every CLI/STI/PUSHF/POPF escapes instead', () => {
    const original = new Uint8Array(readFileSync(join(ROOT, 'examples/hello/hello.elf')));
    const r = rewriteImage(original, { inline: false });
    expect(r.report.stubs.inline).toBe(0);
    expect(r.map.flags & PATCHMAP_FLAG_INLINE_FLAT_DS).toBe(0);
    expect(verifyImage(r.image, original).ok).toBe(true);
  });
});

/** An i386 Linux program: loops, Jcc, a CALL and a JMP r/m; prints "ok" and exits with a checksum. */
function linuxProgram(): Uint8Array {
  const TEXT = 0x08049000;
  const a = new Assembler(32, TEXT);
  const loop = a.label('loop'), skip = a.label('skip'), f = a.label('f'), done = a.label('done'), msg = a.label('msg');
  a.here('_start');
  a.asm('xor', reg('ebx'), reg('ebx'));
  a.asm('mov', reg('ecx'), imm(100));
  a.bind(loop);
  a.asm('test', reg('ecx'), imm(1));
  a.jcc('e', skip);
  a.asm('add', reg('ebx'), reg('ecx'));
  a.bind(skip);
  a.call(f);
  a.asm('dec', reg('ecx'));
  a.jcc('ne', loop);
  a.asm('mov', reg('eax'), imm(4)); // write(1, msg, 3)
  a.asm('push', reg('ebx'));
  a.asm('mov', reg('ebx'), imm(1));
  a.asm('mov', reg('ecx'), imm(msg));
  a.asm('mov', reg('edx'), imm(3));
  a.asm('int', imm(0x80));
  a.asm('pop', reg('ebx'));
  a.asm('mov', reg('eax'), imm(done));
  a.asm('jmp', reg('eax'));
  a.bind(f);
  a.asm('xor', reg('ebx'), imm(0x55));
  a.asm('ret');
  a.bind(done);
  a.asm('and', reg('ebx'), imm(0xff));
  a.asm('mov', reg('eax'), imm(1)); // exit(ebx)
  a.asm('int', imm(0x80));
  a.bind(msg);
  a.db('ok\n');
  const { bytes, labels } = a.assemble();
  return writeElf32({
    type: 'exec', machine: 'i386', entry: labels.get('_start')!, stack: 'rw',
    segments: [{ vaddr: TEXT, flags: 'rx', bytes }],
    sections: [{ name: '.text', addr: TEXT, size: bytes.length }],
    symbols: [{ name: '_start', value: TEXT, type: 'func' }, { name: 'f', value: labels.get('f')!, type: 'func' }],
  });
}

function run(bytes: Uint8Array, name: string): { status: number | null; stdout: string } {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  chmodSync(file, 0o755);
  const r = spawnSync(file, [], { encoding: 'latin1', timeout: 10_000 });
  return { status: r.status, stdout: r.stdout };
}

const hostRunsI386 = (() => {
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'ia32')) return false;
  try {
    return run(linuxProgram(), 'probe').stdout === 'ok\n';
  } catch {
    return false;
  }
})();

describe('a Linux i386 program, --select jumps', () => {
  it.runIf(hostRunsI386)('runs on the host exactly like the original', () => {
    const original = linuxProgram();
    const r = rewriteImage(original, { select: 'jumps' });
    expect(r.report.kernel).toBe(false);
    expect(r.map.sharedPage).toBe(0);
    expect(r.report.patched).toBeGreaterThan(0);
    expect(r.report.stubs.empty).toBe(r.report.patched);
    expect(verifyImage(r.image, original).violations).toEqual([]);
    const a = run(original, 'orig');
    const b = run(r.image, 'rewritten');
    expect(b).toEqual(a);
    expect(a.stdout).toBe('ok\n');
  });
});

describe('refusals', () => {
  it('refuses an ELF64 image, a PIE and a multiboot a.out kludge', () => {
    const elf64 = new Uint8Array(64);
    elf64.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    new DataView(elf64.buffer).setUint16(18, 62, true);
    new DataView(elf64.buffer).setUint16(16, 2, true);
    expect(() => rewriteImage(elf64)).toThrow();
    const dyn = buildImage((a) => { a.asm('ret'); });
    new DataView(dyn.buffer).setUint16(16, 3, true); // ET_DYN
    expect(() => rewriteImage(dyn)).toThrow(RewriteInputError);
    const kludge = buildImage((a) => { a.asm('cli'); a.asm('ret'); });
    const mb = findMultibootHeader(kludge)!;
    const dv = new DataView(kludge.buffer);
    dv.setUint32(mb.offset + 4, 1 << 16, true);
    dv.setUint32(mb.offset + 8, (-(0x1badb002 + (1 << 16))) >>> 0, true);
    expect(() => rewriteImage(kludge)).toThrow(/a\.out kludge/);
  });

  it('writes nothing new but the map when nothing is selected', () => {
    const img = buildImage((a) => { a.asm('mov', reg('eax'), mem({ base: 'ebx', size: 4 })); a.asm('ret'); });
    const r = rewriteImage(img);
    expect(r.report.sites).toBe(0);
    expect([r.map.stubVaddr, r.map.stubSize, r.map.sharedPage]).toEqual([0, 0, 0]);
    expect(readElf(r.image).segments.filter((s) => s.type === 'load').length).toBe(2);
  });
});

/**
 * The inline stubs against the host CPU. At CPL 3 with IOPL 0 a real POPFD keeps IF and IOPL
 * exactly as it does at CPL 1, so a Linux process is a faithful place to run them: the shared
 * page is the RWX stub segment's first page, DS is flat. The program reads the real flags with
 * an unpatched PUSHFD next to each patched instruction and prints what it saw.
 */
function inlineProgram(stubVaddr: number, pending: number): Uint8Array {
  const TEXT = 0x08049000, DATA = 0x0804c000;
  const S = (off: number, size = 1) => mem({ disp: stubVaddr + off, size });
  const a = new Assembler(32, TEXT);
  a.here('_start');
  a.asm('mov', S(0), imm(1)); // vif = 1
  a.asm('mov', S(2), imm(2)); // viopl = 2
  a.asm('mov', S(1), imm(pending));
  a.asm('stc');
  a.asm('pushfd'); // real
  a.asm('pop', reg('esi'));
  a.asm('pushfd'); // patched
  a.asm('pop', reg('eax'));
  a.asm('mov', mem({ disp: DATA, size: 4 }), reg('esi'));
  a.asm('mov', mem({ disp: DATA + 4, size: 4 }), reg('eax'));
  a.asm('push', imm(0x1042)); // IOPL 1, ZF, IF 0
  a.asm('popfd'); // patched
  a.asm('pushfd'); // real
  a.asm('pop', reg('eax'));
  a.asm('mov', mem({ disp: DATA + 8, size: 4 }), reg('eax'));
  a.asm('movzx', reg('eax'), S(0));
  a.asm('mov', mem({ disp: DATA + 12, size: 4 }), reg('eax'));
  a.asm('movzx', reg('eax'), S(2));
  a.asm('mov', mem({ disp: DATA + 16, size: 4 }), reg('eax'));
  a.asm('sti'); // patched: vif 0 -> 1, escapes iff pending
  a.asm('movzx', reg('eax'), S(0));
  a.asm('mov', mem({ disp: DATA + 20, size: 4 }), reg('eax'));
  a.asm('cli'); // patched
  a.asm('movzx', reg('eax'), S(0));
  a.asm('mov', mem({ disp: DATA + 24, size: 4 }), reg('eax'));
  a.asm('mov', reg('eax'), imm(4));
  a.asm('mov', reg('ebx'), imm(1));
  a.asm('mov', reg('ecx'), imm(DATA));
  a.asm('mov', reg('edx'), imm(28));
  a.asm('int', imm(0x80));
  a.asm('xor', reg('ebx'), reg('ebx'));
  a.asm('mov', reg('eax'), imm(1));
  a.asm('int', imm(0x80));
  const { bytes } = a.assemble();
  return writeElf32({
    type: 'exec', machine: 'i386', entry: TEXT, stack: 'rw',
    segments: [{ vaddr: TEXT, flags: 'rx', bytes }, { vaddr: DATA, flags: 'rw', bytes: new Uint8Array(4), memsz: 0x1000 }],
    sections: [{ name: '.text', addr: TEXT, size: bytes.length }],
    symbols: [{ name: '_start', value: TEXT, type: 'func' }],
  });
}

describe('inline stubs on the host CPU', () => {
  const STUB = 0x0804d000 + 0x10000; // planLayout: first page after the highest segment end + 64 KiB

  function rewriteInline(pending: number) {
    const bytes = inlineProgram(STUB, pending);
    const elf = readElf(bytes);
    const { discovery } = sweepDiscovery(bytes);
    // Only the second PUSHFD, the POPFD, STI and CLI are sites: the other PUSHFDs read the real flags.
    const all = pickSites(bytes, discovery);
    const sites = [all.filter((s) => s.text === 'pushfd')[1]!, ...all.filter((s) => s.text === 'popfd' || s.text === 'sti' || s.text === 'cli')];
    expect(sites.length).toBe(4);
    expect(planLayout(elf, bytes).stubVaddr).toBe(STUB);
    return { original: bytes, r: rewriteImage(bytes, { discovery, sites }) };
  }

  it.runIf(hostRunsI386)('PUSHFD shows vif/viopl, POPFD records IF/IOPL and loads the rest, STI/CLI set vif', () => {
    const { r } = rewriteInline(0);
    expect(r.report.stubs.inline).toBe(4);
    expect(r.map.sharedPage).toBe(STUB);
    const out = run(r.image, 'inline0');
    expect(out.status).toBe(0);
    const w = Buffer.from(out.stdout, 'latin1');
    const word = (i: number) => w.readUInt32LE(i * 4);
    const real = word(0);
    expect(real & 0x3200).toBe(0x200); // the host: IF = 1, IOPL = 0
    expect(word(1)).toBe((real & ~0x3200) | (1 << 9) | (2 << 12)); // PUSHFD: IF = vif = 1, IOPL = viopl = 2
    const afterPop = word(2);
    expect(afterPop & 0x8d5).toBe(0x1042 & 0x8d5); // status flags from the popped value (ZF set, CF clear)
    expect(afterPop & 0x3200).toBe(0x200); // real IF/IOPL untouched
    expect([word(3), word(4)]).toEqual([0, 1]); // vif = popped IF (0), viopl = popped IOPL (1)
    expect([word(5), word(6)]).toEqual([1, 0]); // STI then CLI
  });

  it.runIf(hostRunsI386)('STI escapes (int 0x81) when an interrupt is pending: at CPL 3 that is a #GP, so SIGSEGV', () => {
    const { r } = rewriteInline(1);
    const file = join(dir, 'inline1');
    writeFileSync(file, r.image);
    chmodSync(file, 0o755);
    expect(spawnSync(file, [], { timeout: 10_000 }).signal).toBe('SIGSEGV');
  });
});
