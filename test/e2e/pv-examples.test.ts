// The PV examples (issue 8; examples/pv-common/README.md). Two properties:
//
// 1. Their Xen ELF notes parse as Xen would require: read back with `readelf -n` (binutils,
//    an independent parser of the note format) and checked against the acceptance rules of
//    Xen's libelf (xen/common/libelf/libelf-dominfo.c: elf_xen_note_check,
//    elf_xen_addr_calc_check) and of the domain builder (tools/libs/guest/xg_dom_elfloader.c:
//    PAE_MODE "yes" makes a xen-3.0-x86_32p guest).
// 2. Each runs under `--backend pv` and matches its native counterpart: the same console
//    lines, in order, except the lines listed per example below (each with the reason it must
//    differ), and the same exit status (README: SHUTDOWN_poweroff gives status 1, as native code 0).
//    The runs go through the runtime's API (as the initial domain, console_io; some also as a
//    domU, PV console ring); one goes through `ringshift run --backend pv` itself.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadGuest, runGuest } from '@ringshift/runtime';

const ROOT = join(import.meta.dirname, '../..');
const EXAMPLES = join(ROOT, 'examples');
const BIN = join(ROOT, 'packages/cli/bin/ringshift.mjs');

interface Port {
  pv: string;
  native: string;
  /** Lines that necessarily differ: native lines with no PV counterpart and PV lines with no
   * native one. Every line left over by the line diff must match one of them, and each must
   * match a left-over line (so the lists cannot go stale). */
  nativeOnly: readonly RegExp[];
  pvOnly: readonly RegExp[];
  /** Rewrites applied to both outputs first: values that differ by construction (each says why). */
  normalize?: readonly (readonly [RegExp, string])[];
}

/** RDTSC deltas are times: they differ between runs and backends (as in qemu.test.ts). */
const TIMES: readonly (readonly [RegExp, string])[] = [[/\b(cycles|per-op)=[0-9]+/g, '$1=#']];

const PORTS: readonly Port[] = [
  // Same program, same single line.
  { pv: 'pv-hello', native: 'hello', nativeOnly: [], pvOnly: [] },
  // The lines that name hardware a PV guest does not have: the IDT (limit), the 8259A (masks,
  // in-service register) and the STI shadow (unmasking is a store; the pending event comes
  // inside the unmask, by its forced callback). PV-only check lines must say "ok".
  {
    pv: 'pv-interrupts', native: 'interrupts',
    nativeOnly: [/^interrupts: IDT, 8259A, 8254, CLI\/STI\/PUSHF\/POPF$/, /^  sidt returns the loaded IDT: /, /^  idt limit /,
      /^  pic mask /, /^  ticks \+\d+ in the shadow/, /^  one instruction runs in the shadow: /, /^\[5\] pic mask with IF = 1$/,
      /^  masked IRQ 0 not delivered: /, /^\[6\] ISR inside the handler$/, /^  isr [0-9a-f]+$/, /^  IRQ 0 in service until EOI: /,
      /^  no level in service after EOI: /],
    pvOnly: [/^interrupts: trap table, event channels, VIRQ_TIMER, upcall mask$/, /^  periodic timer stopped: ok$/,
      /^  event callback registered again by callback_op: ok$/,
      /^  timer port bound, nothing pending: ok$/, /^  ticks \+1 once unmasked: no shadow under PV$/, /^  delivered by the unmask itself: ok$/,
      /^\[5\] evtchn mask with IF = 1$/, /^  masked timer port not delivered: ok$/, /^\[6\] upcall mask inside the handler$/,
      /^  upcall mask 1, port pending 0$/, /^  events masked in the callback: ok$/, /^  unmasked again by the iret hypercall: ok$/],
  },
  // PAE tables loaded through Xen instead of CR0/CR4/CR3; no superpages (4 KiB pages where native
  // used 4 MiB ones), no CR0.WP = 0, no paging off; a PV-only section of refused updates.
  {
    pv: 'pv-paging', native: 'paging',
    nativeOnly: [/^cr0 & \(PG\|WP\|PE\)=/, /^cr4 & PSE=/, /^\[1\] 4 MiB pages$/, /^alias pde A\/D after (read|write)=/,
      /^WP=0 supervisor write to a read-only page, faults=/, /^read=0xaaaa0000$/, /^cr0\.WP=/, /^  mapped a 4 MiB read-only page$/,
      /^pde flags=/, /^paging off, frame 0 read=/],
    pvOnly: [/^pinned and loaded PAE tables$/, /^\[1\] an alias of the frames \(4 KiB pages\)$/, /^alias pte A\/D after read=0x00000020$/,
      /^alias pte A\/D after write=0x00000060$/, /^  mapped a 4 KiB read-only page \(no superpages under PV\)$/,
      /^pte flags \(4 KiB page\)=0x00000063$/, /^\[10\] updates Xen refuses$/, /^  a page table mapped writable: refused$/,
      /^  a frame we do not own: refused$/],
  },
  // Ring 3 under Xen: FLAT_RING3_CS/SS (0xe02b/0xe033) where native has its GDT's 0x1b/0x23; the
  // image is laid out differently, so the faulting addresses inside it differ. No TSS (I/O
  // bitmap, IOPL, TR), no direct console access from ring 3, no SYSENTER in the port; the
  // protection probes use Xen's selectors (#GP error codes 0xe020, 0xe028) and the hypercall
  // gate (DPL 1: #GP 0x412) instead of INT 3.
  {
    pv: 'pv-usermode', native: 'usermode',
    normalize: [[/\b0x0000(001b|e02b)\b/g, '<user cs>'], [/\b0x0000(0023|e033)\b/g, '<user ds>'], [/cr2=0x001[0-9a-f]{5}\b/g, 'cr2=<in the image>']],
    nativeOnly: [/^IA32_SYSENTER_CS=/, /^tss iomap_base=/, /^tr=/, /^\[u2\] and directly on COM1 through the I\/O bitmap$/,
      /^  #GP error=0x000000(1a|10|18) /, /^\[u6\] the I\/O bitmap$/, /^LSR with the limit one byte further=/, /^COM1 scratch register=/,
      /^\[u8\] SYSENTER$/, /^hello through sysenter$/, /^kernel (cs|ss|IF)=/, /^after SYSEXIT (cs|ss|IF)=/, /^  #GP error=0x00000000 /,
      /^eflags & IOPL=/, /^IF after cli=/, /^exit\(0x00000000\) from ring 3, traps=20$/],
    pvOnly: [/^stack_switch=0x00000000$/, /^\[u2\] no port access from ring 3 under PV: output through int 0x80$/,
      /^  #GP error=0x0000(0412|e020|e028) cs=<user cs> ss=<user ds> frame=esp0-0x0000004c$/,
      /^\[u6\] ports: no I\/O bitmap under PV, every access faults$/, /^PHYSDEVOP_set_iopl\([03]\)=0x00000000$/,
      /^exit\(0x00000000\) from ring 3, traps=18$/],
  },
  // The same ten operations in their PV form (the guest's header comment); only the title differs.
  {
    pv: 'pv-nanobench', native: 'nanobench', normalize: TIMES,
    nativeOnly: [/^nanobench: Adams & Agesen \(ASPLOS 2006\) nanobenchmarks, IA-32$/],
    pvOnly: [/^nanobench: Adams & Agesen \(ASPLOS 2006\) nanobenchmarks, IA-32 PAE PV$/],
  },
];

const image = (g: string): string => join(EXAMPLES, g, `${g}.elf`);

// ---- 1. the notes ----

interface Note { type: number; desc: Buffer }

/** The types readelf names by the generic (owner-less) note tables; all others it prints as
 * "Unknown note type: (0x...)". Whichever it prints, the number must come out. */
const READELF_GENERIC_NAMES: Record<string, number> = {
  'NT_VERSION (version)': 1,
  'NT_ARCH (architecture)': 2,
  'GO BUILDID': 4,
};

function readelf(args: readonly string[], file: string): string {
  const r = spawnSync('readelf', ['-W', ...args, file], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`readelf ${args.join(' ')} ${file}: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

function xenNotes(file: string): Note[] {
  const lines = readelf(['-n'], file).split('\n');
  const notes: Note[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s+(\S+)\s+0x([0-9a-f]+)\s+(.*)$/.exec(lines[i]!);
    if (!m || m[1] !== 'Xen') continue;
    // The description follows on the same line (-W) or on the next one.
    const rest = m[3]!.includes('description data:') ? m[3]! : `${m[3]!} ${lines[i + 1] ?? ''}`;
    const what = rest.split('description data:')[0]!.trim();
    const unknown = /Unknown note type: \(0x([0-9a-f]+)\)/.exec(what);
    const type = unknown ? parseInt(unknown[1]!, 16) : READELF_GENERIC_NAMES[what];
    if (type === undefined) throw new Error(`readelf names a Xen note "${what}" this test does not know`);
    const data = /description data:\s*((?:[0-9a-f]{2}\s*)*)$/.exec(rest);
    const desc = Buffer.from((data?.[1] ?? '').replace(/\s+/g, ''), 'hex');
    expect(desc.length, `note ${type} size`).toBe(parseInt(m[2]!, 16));
    notes.push({ type, desc });
  }
  return notes;
}

interface Segment { type: string; offset: number; vaddr: number; paddr: number; filesz: number; memsz: number; flags: string }

function segments(file: string): Segment[] {
  const out: Segment[] = [];
  for (const line of readelf(['-l'], file).split('\n')) {
    const m = /^\s+(LOAD|NOTE)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+([RWE ]+?)\s+0x/.exec(line);
    if (m) out.push({ type: m[1]!, offset: parseInt(m[2]!, 16), vaddr: parseInt(m[3]!, 16), paddr: parseInt(m[4]!, 16), filesz: parseInt(m[5]!, 16), memsz: parseInt(m[6]!, 16), flags: m[7]!.replace(/\s/g, '') });
  }
  return out;
}

function symbol(file: string, name: string): number | undefined {
  for (const line of readelf(['-s'], file).split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[7] === name) return parseInt(f[1]!, 16);
  }
  return undefined;
}

const XEN_ELFNOTE = { ENTRY: 1, HYPERCALL_PAGE: 2, VIRT_BASE: 3, PADDR_OFFSET: 4, XEN_VERSION: 5, GUEST_OS: 6, LOADER: 8, PAE_MODE: 9, FEATURES: 10 } as const;
/** libelf-dominfo.c: elf_xen_feature_names (a '!' feature outside this list fails the load). */
const LIBELF_FEATURES = ['writable_page_tables', 'writable_descriptor_tables', 'auto_translated_physmap', 'supervisor_mode_kernel', 'pae_pgdir_above_4gb', 'hvm_callback_vector', 'dom0'];

describe('PV images: Xen notes as libelf requires', () => {
  it('every PV example is built', () => {
    expect(PORTS.filter((p) => !existsSync(image(p.pv))).map((p) => p.pv), 'run `make -C examples`').toEqual([]);
  });

  it.each(PORTS.map((p) => p.pv))('%s', (g) => {
    const file = image(g);
    const notes = xenNotes(file);
    const one = (type: number): Buffer => {
      const found = notes.filter((n) => n.type === type);
      expect(found.length, `exactly one note of type ${type}`).toBe(1);
      return found[0]!.desc;
    };
    const str = (type: number): string => {
      const d = one(type);
      expect(d[d.length - 1], `note ${type} is NUL-terminated`).toBe(0);
      return d.subarray(0, d.length - 1).toString('latin1');
    };
    const num = (type: number): number => {
      const d = one(type);
      expect(d.length, `note ${type} is a 32-bit number`).toBe(4);
      return d.readUInt32LE(0);
    };
    // elf_xen_note_check
    expect(str(XEN_ELFNOTE.XEN_VERSION).startsWith('xen-3.0')).toBe(true);
    expect(str(XEN_ELFNOTE.LOADER).startsWith('generic') || str(XEN_ELFNOTE.GUEST_OS).startsWith('linux')).toBe(true);
    // xg_dom_guest_type: only a PAE guest is loadable on today's Xen (xen-3.0-x86_32p).
    expect(str(XEN_ELFNOTE.PAE_MODE)).toBe('yes');
    for (const f of str(XEN_ELFNOTE.FEATURES).split('|')) {
      if (f.startsWith('!')) expect(LIBELF_FEATURES, `required feature ${f}`).toContain(f.slice(1));
    }
    // elf_xen_addr_calc_check, with the image's own program headers.
    const segs = segments(file);
    const loads = segs.filter((s) => s.type === 'LOAD');
    const note = segs.filter((s) => s.type === 'NOTE');
    expect(note.length).toBe(1);
    expect(note[0]!.offset, 'libelf skips a PT_NOTE with p_offset 0').not.toBe(0);
    const virtBase = num(XEN_ELFNOTE.VIRT_BASE);
    const paddrOffset = num(XEN_ELFNOTE.PADDR_OFFSET);
    const pstart = Math.min(...loads.map((s) => s.paddr));
    const pend = Math.max(...loads.map((s) => s.paddr + s.memsz));
    const kstart = pstart + virtBase - paddrOffset;
    const kend = pend + virtBase - paddrOffset;
    const entry = num(XEN_ELFNOTE.ENTRY);
    expect(virtBase).toBeLessThanOrEqual(kstart);
    expect(entry).toBeGreaterThanOrEqual(kstart);
    expect(entry).toBeLessThanOrEqual(kend);
    expect(entry).toBe(symbol(file, '_start'));
    expect(entry).toBe(parseInt(/Entry point address:\s+0x([0-9a-f]+)/.exec(readelf(['-h'], file))![1]!, 16));
    // The hypercall page: page-aligned, a whole page of the image, where the symbol is.
    const hpage = num(XEN_ELFNOTE.HYPERCALL_PAGE);
    expect(hpage).toBe(symbol(file, 'hypercall_page'));
    expect(hpage % 4096).toBe(0);
    expect(loads.some((s) => s.vaddr <= hpage && hpage + 4096 <= s.vaddr + s.filesz && s.flags.includes('E'))).toBe(true);
  });
});

// ---- 2. the runs ----

interface Outcome { status: number | null; lines: string[]; report: { reason?: string; exitStatus?: number; detail?: string } | null; stderr: string }

const work = mkdtempSync(join(tmpdir(), 'ringshift-pv-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A PV example through the command line (`ringshift run --backend pv`), as a user runs it. */
function runPvCli(file: string): Outcome {
  const serial = join(work, `${file.replace(/\W/g, '_')}.txt`);
  const r = spawnSync(process.execPath, [BIN, 'run', file, '--backend', 'pv', '--json', '--serial', serial, '--max-instructions', '200000000'],
    { encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 26 });
  let report: Outcome['report'] = null;
  try { report = JSON.parse(r.stdout) as Outcome['report']; } catch { report = null; }
  return { status: r.status, lines: toLines(existsSync(serial) ? readFileSync(serial, 'latin1') : ''), report, stderr: r.stderr };
}

/** A PV example in-process, as the initial domain (console_io) or as a domU (the PV console
 * ring). The runtime's API, without a process start-up per run. */
function runPv(file: string, initialDomain: boolean): Outcome {
  const out: number[] = [];
  const g = loadGuest(new Uint8Array(readFileSync(file)), { backend: 'pv', pvInitialDomain: initialDomain, machine: { serialOut: (b) => out.push(b) } });
  const report = runGuest(g, { maxInstructions: 200_000_000, timeoutMs: 120_000 });
  return { status: report.exitStatus ?? null, lines: toLines(Buffer.from(out).toString('latin1')), report, stderr: report.detail ?? '' };
}

/** The native example in-process (the runtime's API; no process start-up). */
function runNative(file: string): Outcome {
  const out: number[] = [];
  const g = loadGuest(new Uint8Array(readFileSync(file)), { backend: 'native', machine: { serialOut: (b) => out.push(b) } });
  const report = runGuest(g, { maxInstructions: 200_000_000, timeoutMs: 120_000 });
  return { status: report.exitStatus ?? null, lines: toLines(Buffer.from(out).toString('latin1')), report, stderr: report.detail ?? '' };
}

function toLines(text: string): string[] {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The lines of a and of b that a longest common subsequence leaves out, in order. */
function lineDiff(a: readonly string[], b: readonly string[]): { onlyA: string[]; onlyB: string[] } {
  const n = a.length, m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const onlyA: string[] = [], onlyB: string[] = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { i++; j++; } else if (j >= m || (i < n && lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) onlyA.push(a[i++]!); else onlyB.push(b[j++]!);
  }
  return { onlyA, onlyB };
}

describe('the line diff the comparison relies on', () => {
  it('leaves out exactly the lines outside a longest common subsequence', () => {
    expect(lineDiff(['a', 'x', 'b', 'c', 'c'], ['a', 'b', 'y', 'c'])).toEqual({ onlyA: ['x', 'c'], onlyB: ['y'] });
    expect(lineDiff([], ['z'])).toEqual({ onlyA: [], onlyB: ['z'] });
  });
});

/** The PV run matches the native one: same lines but the declared ones, same exit status. */
function expectMatch({ nativeOnly, pvOnly, normalize }: Port, n: Outcome, p: Outcome): void {
  expect(n.report?.reason, n.stderr).toBe('exit');
  expect(p.report, `--backend pv gave no run report (status ${p.status}): ${p.stderr.trim()}`).not.toBeNull();
  expect(p.report!.reason, `${p.report!.detail ?? ''} ${p.stderr}\n${p.lines.join('\n')}`).toBe('exit');
  const norm = (l: string): string => (normalize ?? []).reduce((s, [re, to]) => s.replace(re, to), l);
  const { onlyA: nativeLeft, onlyB: pvLeft } = lineDiff(n.lines.map(norm), p.lines.map(norm));
  const unexplained = (left: string[], only: readonly RegExp[]): string[] => left.filter((l) => !only.some((re) => re.test(l)));
  expect({ native: unexplained(nativeLeft, nativeOnly), pv: unexplained(pvLeft, pvOnly) }, 'lines that differ without a declared reason').toEqual({ native: [], pv: [] });
  for (const re of nativeOnly) expect(nativeLeft.some((l) => re.test(l)), `a native-only line matches ${re}`).toBe(true);
  for (const re of pvOnly) expect(pvLeft.some((l) => re.test(l)), `a PV-only line matches ${re}`).toBe(true);
  expect(p.report!.exitStatus).toBe(n.report!.exitStatus);
}

describe('PV examples under --backend pv match their native counterparts', () => {
  it.each(PORTS)('$pv vs $native', (port) => {
    expectMatch(port, runNative(image(port.native)), runPv(image(port.pv), true));
  }, 240_000);

  // The other console: as a domU the same bytes go through the PV console ring and its event
  // channel (pv-common/console.c). pv-paging replaces Xen's page tables with its own, which must
  // keep the ring page mapped; pv-usermode prints from its system-call handler.
  const DOMU = ['pv-hello', 'pv-paging', 'pv-usermode'];
  it.each(PORTS.filter((p) => DOMU.includes(p.pv)))('$pv as a domU vs $native', (port) => {
    expectMatch(port, runNative(image(port.native)), runPv(image(port.pv), false));
  }, 240_000);

  // The command a user types: `ringshift run --backend pv` recognises the image, prints the
  // console and exits with the guest's status (poweroff: 1, as the native run's).
  it('ringshift run --backend pv (pv-hello)', () => {
    const n = runNative(image('hello'));
    const p = runPvCli(image('pv-hello'));
    expectMatch(PORTS[0]!, n, p);
    expect(p.status).toBe(n.report!.exitStatus);
  }, 240_000);
});
