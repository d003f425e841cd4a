// findSites(): reasons, selection words, text; iced-x86 as the oracle for form and text, and
// objdump plus a hand-written list of sensitive mnemonics (ARCHITECTURE.md, the SDM) on the
// example kernels.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Assembler, mem, reg } from '@ringshift/decoder';
import type { Operand } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { iced, makeIcedIntelFormatter } from '../../decoder/test/support/iced-formatter';
import { Evidence, RewriteInputError, discover, findSites, readElf, writeElf32 } from '../src/index';
import type { Discovery, ElfImage } from '../src/index';

const ROOT = join(import.meta.dirname, '../../..');
const TEXT = 0x00100000;

function kernel(): { elf: ElfImage; d: Discovery; labels: Map<string, number> } {
  const a = new Assembler(32, TEXT);
  const loop = a.label('loop'), f = a.label('f');
  /** A labelled instruction: the label names the site in the assertions. */
  const op = (name: string, mnemonic: string, ...operands: Operand[]): void => {
    a.here(name);
    a.asm(mnemonic, ...operands);
  };
  a.here('_start');
  op('cli', 'cli');
  op('mov_cr', 'mov', reg('cr0'), reg('eax'));
  op('pushfd', 'pushfd');
  op('popfd', 'popfd');
  op('in', 'in', reg('al'), reg('dx'));
  op('cpuid', 'cpuid');
  op('smsw', 'smsw', reg('eax'));
  a.here('call');
  a.call(f);
  a.bind(loop);
  a.here('jne'); a.jcc('ne', loop);
  op('jmp_ind', 'jmp', reg('eax'));
  a.bind(f);
  op('mov_ds', 'mov', reg('ds'), reg('ax'));
  op('iretd', 'iretd');
  a.here('data'); a.db(0xfa, 0xfb); // CLI STI as bytes, inside an object symbol: data, not sites
  op('hlt', 'hlt');
  a.asm('jmp', mem({ base: 'ebx', size: 4 }));
  const { bytes, labels } = a.assemble();
  const elf = readElf(writeElf32({
    type: 'exec', machine: 'i386', entry: TEXT,
    segments: [{ vaddr: TEXT, flags: 'rx', bytes }],
    sections: [{ name: '.text', addr: TEXT, size: bytes.length }],
    symbols: [
      { name: 'consts', value: labels.get('data')!, size: 2, type: 'object' },
      { name: 'idle', value: labels.get('hlt')!, type: 'func' },
    ],
  }));
  return { elf, d: discover(elf), labels };
}

describe('findSites', () => {
  const k = kernel();
  const L = (n: string): number => k.labels.get(n)!;
  const byAddr = (select: string) => new Map(findSites(k.elf, k.d, select).map((s) => [s.addr, s]));

  it('gives each sensitive instruction its most specific class', () => {
    const sites = byAddr('sensitive');
    const reasons = Object.fromEntries([...k.labels].filter(([n, a]) => n !== '_start' && n !== 'f' && sites.has(a)).map(([n, a]) => [n, sites.get(a)!.reason]));
    expect(reasons).toEqual({
      cli: 'iopl',
      mov_cr: 'privileged',
      // PUSHF/POPF/IRET are IOPL-sensitive only in virtual-8086 mode; in a protected-mode kernel
      // what matters is that they misbehave silently (Robin & Irvine), except IRET, not in their list.
      pushfd: 'sensitive-unprivileged',
      popfd: 'sensitive-unprivileged',
      in: 'iopl',
      smsw: 'privileged', // privileged under CR4.UMIP ('conditional') outranks sensitive
      mov_ds: 'sensitive-unprivileged',
      iretd: 'iopl',
      hlt: 'privileged',
    });
    expect(sites.size).toBe(9);
    expect(sites.has(L('data'))).toBe(false);
  });

  it("marks jumps 'jumps' only when the selection asks for them", () => {
    const sites = byAddr('sensitive,jumps');
    expect(sites.get(L('jne'))!.reason).toBe('jumps');
    expect(sites.get(L('jmp_ind'))!.reason).toBe('jumps');
    expect(sites.has(L('call'))).toBe(false);
    expect(sites.size).toBe(9 + 3);
    const named = byAddr('jne');
    expect(named.get(L('jne'))!.reason).toBe('selected');
  });

  it('takes mnemonics and form names, and keeps the class as the reason', () => {
    const sites = byAddr('cpuid, Mov_cr_r32');
    expect([...sites.keys()]).toEqual([L('mov_cr'), L('cpuid')]);
    expect(sites.get(L('cpuid'))!.reason).toBe('selected');
    expect(sites.get(L('mov_cr'))!.reason).toBe('privileged');
  });

  it('carries length, form, evidence and text that iced-x86 agrees with', () => {
    const formatter = makeIcedIntelFormatter();
    const text = k.elf.sections.find((s) => s.name === '.text')!;
    try {
      for (const s of findSites(k.elf, k.d, 'sensitive,jumps,cpuid')) {
        const bytes = text.bytes.subarray(s.addr - TEXT, s.addr - TEXT + 15);
        const dec = new iced.Decoder(32, bytes, iced.DecoderOptions.None);
        dec.ip = BigInt(s.addr);
        const ins = dec.decode();
        expect([ins.length, ins.code], `0x${s.addr.toString(16)}`).toEqual([s.length, s.formId]);
        expect(s.text).toBe(formatter.format(ins));
        ins.free();
        dec.free();
      }
    } finally {
      formatter.free();
    }
    const sites = byAddr('sensitive');
    expect(sites.get(L('cli'))!.evidence).toBe(Evidence.entry);
    expect(sites.get(L('hlt'))!.evidence).toBe(Evidence.symbol);
    expect(sites.get(L('mov_ds'))!.evidence).toBe(Evidence.directTarget);
  });

  it('refuses an unknown selection word with the decoder’s message, and an empty selection', () => {
    expect(() => findSites(k.elf, k.d, 'sensitive,bogus')).toThrow(RewriteInputError);
    expect(() => findSites(k.elf, k.d, 'sensitive,bogus')).toThrow(/^unknown selection 'bogus': expected sensitive, privileged, /);
    expect(() => findSites(k.elf, k.d, ' , ')).toThrow("empty selection ' , ': name at least one class, mnemonic or form");
  });

  it('refuses a discovery that does not belong to the image', () => {
    const wrong: Discovery = { ...k.d, instructions: [{ addr: L('cli'), length: 1, formId: k.d.instructions[1]!.formId, evidence: 1 }] };
    expect(() => findSites(k.elf, wrong, 'Mov_cr_r32')).toThrow(/^discovery does not match this image at 0x100000: it says Mov_cr_r32 \(1 bytes\), the bytes decode as Cli \(1\)$/);
  });
});

// Sensitive instructions by mnemonic as objdump spells them, written from ARCHITECTURE.md's list
// and SDM vol. 3A §5.9, independently of the decoder's class table. Operand-dependent ones
// (MOV to/from CRn, DRn, Sreg; PUSH/POP Sreg) are matched on the operand text.
const SENSITIVE_MNEMONICS = new Set([
  'cli', 'sti', 'hlt', 'in', 'out', 'ins', 'outs', 'insb', 'insd', 'outsb', 'outsd', 'pushf', 'pushfd', 'popf', 'popfd',
  'iret', 'iretd', 'lgdt', 'lidt', 'lldt', 'ltr', 'sgdt', 'sidt', 'sldt', 'str', 'smsw', 'lmsw', 'clts', 'invd', 'wbinvd',
  'invlpg', 'rdmsr', 'wrmsr', 'lar', 'lsl', 'verr', 'verw', 'int', 'int3', 'sysexit', 'rdpmc', 'lret', 'retf', 'ljmp', 'lcall',
  // objdump's operand-size spellings of the descriptor-table instructions
  'lgdtd', 'lidtd', 'sgdtd', 'sidtd', 'lgdtw', 'lidtw', 'sgdtw', 'sidtw',
  // privileged when CR4.TSD = 1 (SDM vol. 2B RDTSC, RDTSCP)
  'rdtsc', 'rdtscp',
]);
const SREG = /\b(cs|ds|es|fs|gs|ss)$|^(cs|ds|es|fs|gs|ss),|\bcr\d\b|\bdb\d\b|\bdr\d\b/;

describe.each(['sensitive', 'usermode', 'paging'])('examples/%s: sites against objdump', (g) => {
  const file = join(ROOT, `examples/${g}/${g}.elf`);
  it.skipIf(!existsSync(file))('every sensitive instruction objdump shows in .text is a site, and nothing else is', () => {
    const elf = readElf(readFileSync(file));
    const sites = new Map(findSites(elf, discover(elf), 'sensitive').map((s) => [s.addr, s]));
    const out = execFileSync('objdump', ['-d', '-w', '-M', 'intel', '--no-show-raw-insn', '-j', '.text', file], { encoding: 'utf8' });
    const expected = new Set<number>();
    for (const line of out.split('\n')) {
      const m = /^\s*([0-9a-f]+):\t(\S+)\s*(.*)$/.exec(line);
      if (!m) continue;
      const [, addr, mnemonic, operands] = m;
      const ops = operands!.replace(/\s+<.*$/, '');
      const isSreg = (mnemonic === 'mov' || mnemonic === 'push' || mnemonic === 'pop') && SREG.test(ops);
      if (SENSITIVE_MNEMONICS.has(mnemonic!) || isSreg || (mnemonic === 'jmp' || mnemonic === 'call') && /^(0x[0-9a-f]+:|FWORD)/.test(ops)) {
        expected.add(parseInt(addr!, 16));
      }
    }
    expect(expected.size).toBeGreaterThan(10);
    const missing = [...expected].filter((a) => !sites.has(a)).map((a) => a.toString(16));
    const extra = [...sites.values()].filter((s) => !expected.has(s.addr)).map((s) => `${s.addr.toString(16)} ${s.text}`);
    expect({ missing, extra }).toEqual({ missing: [], extra: [] });
  });
});
