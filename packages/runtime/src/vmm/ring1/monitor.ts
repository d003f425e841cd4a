// A ring-1 monitor on the emulated IA-32 CPU: the guest kernel runs at CPL 1 (its user code at
// CPL 3), the monitor owns the real GDTR, IDTR, CR0, CR3, CR4, EFLAGS.IF and EFLAGS.IOPL, and the
// guest's values of them live in a VirtualCpu. The two backends of issue 7 share it:
//  - `deprivileged`: the original image, trap-and-emulate only (privileged and IOPL-sensitive
//    instructions #GP at CPL 1 and are emulated; the other sensitive instructions run natively
//    and misbehave, which is the point);
//  - `rewrite`: the image patched by `ringshift rewrite` (docs/patch-abi.md): escapes from the
//    stubs (`int 0x81`) are emulated with the site's original addresses, inline stubs keep the
//    virtual IF/IOPL in the shared page, and trap sites (#GP, or #BP of INT3) are emulated and
//    counted as misses.
//
// What is a real ring-1 monitor here and what is a shortcut of an emulator-hosted one is listed
// in docs/rewrite-backend.md. In short: the shadow GDT and LDT (DPL 0 -> 1, limits clipped below
// the monitor's structures, kept current by write watches on the guest's tables), the virtual
// TLB (a shadow-paging design: the monitor walks the guest's tables on every TLB miss and answers
// with its own translation; the real CR3 points at an empty page directory), the linear hole,
// and the #GP/#BP trap paths are as on hardware. Events reach the monitor through the CPU's
// exception hook before any IDT is consulted (hardware would enter the monitor through its own
// IDT), and emulation reuses the CPU's own instruction handlers in a temporarily virtual context
// (CPL, GDTR, LDTR, IDTR, IF, IOPL, CS/SS RPL as the guest believes them).
import { Decoder, Instruction, OpKind, Reg, VMX_EXIT_REASON, classOf, formatIntel, mnemonicOf } from '@ringshift/decoder';
import { ATTR_CODE, ATTR_DB, ATTR_P, ATTR_S, CODE_PLUMBING, CODE_WATCHED, type Cpu, type Handler } from '../../cpu/cpu';
import * as F from '../../cpu/eflags';
import { Fault, Vector } from '../../cpu/fault';
import { buildHandlers } from '../../cpu/handlers';
import {
  CONTINUE, EventKind, HANDLED, MonitorExit, exit, interruptionInfo,
  type ExceptionEvent, type Interceptor, type MsrAccess, type PageWalk, type Verdict,
} from '../../cpu/intercept';
import { deliverException } from '../../cpu/interrupts';
import { msrState } from '../../cpu/msr-state';
import { newWalkRecord, walk, type PagingState, type WalkRecord } from '../../cpu/paging';
import { SegReg } from '../../cpu/registers';
import type { Machine } from '../../machine/machine';
import { WATCH_DECODE_CACHE, WATCH_DESCRIPTOR_TABLE } from '../../machine/memory';
import { ExitAccounting, exitReasonOfMnemonic, type ExitVia } from '../accounting';
import { HOLE_END, HOLE_START, HOLE_STUB_END, INLINE_PART, SHARED_PENDING, SHARED_VIF, SHARED_VIOPL, stubJumpTarget, type RewrittenImage } from '../rewrite/image';
import type { PatchMapSite } from '../rewrite/patchmap';

const CR0_PE = 1;
const CR0_ET = 0x10;
const CR0_WP = 1 << 16;
const CR0_PG = 1 << 31;
/** CR0 bits the real CR0 takes from the guest's: MP, EM, TS, NE, WP, AM, NW, CD. */
const CR0_FROM_GUEST = 0x2 | 0x4 | 0x8 | 0x20 | CR0_WP | (1 << 18) | (1 << 29) | (1 << 30);
const CR4_PGE = 1 << 7;
const PF_P = 1, PF_W = 2, PF_U = 4;
/** stiShadowAfter: the shadow covers the next guest instruction, wherever the CPU is now (no address). */
const STI_SHADOW_NEXT = 0xffffffff;

/**
 * Monitor structures in the top of the hole: the shadow GDT (64 KiB, the largest GDT), the
 * monitor's IDT and the shadow LDT. Guest segment limits are clipped to end below MONITOR_LINEAR.
 */
export const MONITOR_LINEAR = HOLE_STUB_END;
export const SEGMENT_CLIP = MONITOR_LINEAR - 1;
const SHADOW_GDT_OFFSET = 0;
const MONITOR_IDT_OFFSET = 0x10000;
/** The shadow LDT, up to the end of the linear window (HOLE_END): 7168 descriptors. */
const SHADOW_LDT_OFFSET = 0x11000;
export const SHADOW_LDT_BYTES = HOLE_END - MONITOR_LINEAR - SHADOW_LDT_OFFSET;
/** Physical only (past HOLE_END, so in no linear window): the real page directory, all not-present. */
const REAL_PD_OFFSET = 0x1f000;
/** Monitor memory before the stub segment's copy. */
export const MONITOR_BYTES = 0x20000;

/** The guest's view of the privileged state (what it believes it set). */
export class VirtualCpu {
  cr0 = 0x11;
  cr3 = 0;
  cr4 = 0;
  gdtrBase = 0;
  gdtrLimit = 0xffff;
  idtrBase = 0;
  idtrLimit = 0x3ff;
  /**
   * LDTR as the guest loaded it. The real LDTR keeps the guest's selector (so SLDT, which does
   * not trap, shows it) with the shadow LDT's base; the shadow GDT's entry at that selector is
   * the guest's LDT descriptor with the shadow LDT's base.
   */
  ldtrSel = 0;
  ldtrBase = 0;
  ldtrLimit = 0;
  /** EFLAGS.IF and IOPL, when there is no shared page (deprivileged). */
  ifFlag = false;
  iopl = 0;
  /**
   * IA32_SYSENTER_CS as the guest wrote it. The real one is 0 while the guest runs, so that
   * SYSENTER #GPs (SDM SYSENTER: IA32_SYSENTER_CS[15:2] = 0) instead of entering real ring 0.
   */
  sysenterCs = 0;
}

export interface Ring1Options {
  /** RAM the guest owns, from physical 0 (the monitor's memory follows it). */
  guestRamBytes: number;
  /** The checked patched image, for the rewrite backend; null: deprivileged. */
  rewrite: RewrittenImage | null;
}

/** The physical memory a Machine needs for a ring-1 guest with `guestRamBytes` of RAM. */
export function ring1MemoryBytes(guestRamBytes: number, rewrite: RewrittenImage | null): number {
  const stub = rewrite === null ? 0 : (rewrite.stubBytes.length + 0xfff) & ~0xfff;
  return guestRamBytes + MONITOR_BYTES + stub;
}

/** A guest did something the monitor refuses (reaching monitor memory, leaving protected mode). */
function refuse(detail: string): never {
  throw new MonitorExit(exit(-1, { detail }));
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

export class Ring1Monitor implements Interceptor {
  readonly v = new VirtualCpu();
  readonly accounting = new ExitAccounting();
  readonly cpu: Cpu;
  private readonly mem: Machine['mem'];
  private readonly handlers: readonly (Handler | undefined)[];
  private readonly monitorPhys: number;
  private readonly stubPhys: number;
  private readonly stubEnd: number;
  /** The image has a shared page (docs/patch-abi.md): the virtual IF and IOPL live there. */
  private readonly shared: boolean;
  /** Per page of [0xFFC00000, stubEnd): 1 where a stub segment is (the gaps between are not mapped). */
  private readonly stubPages: Uint8Array;
  /** Depth of virtual contexts: events inside one are delivered by the CPU itself. */
  private depth = 0;
  /**
   * Each inline stub part by its first byte: the site, where the part ends, and whether it uses
   * the stack (PUSHFD/POPFD). See instruction().
   */
  private readonly inlineParts = new Map<number, { site: PatchMapSite; end: number; stack: boolean; sti: boolean }>();
  /** Each site with a stub part, by its stub address (originalAt). */
  private readonly siteByStub = new Map<number, PatchMapSite>();
  /** The `jmp rel32` at P + 5 of each T3 patch: no original instruction starts there (docs/tactics.md §T3). */
  private readonly t3Inner = new Set<number>();
  /**
   * The STI shadow of an STI that a stub or the monitor ran (-1: none): it covers the next guest
   * instruction after the plumbing that follows. Set to the inline STI's `int 0x81` address + 2
   * by its escape, else to STI_SHADOW_NEXT; pendingInterrupt moves it along the plumbing.
   */
  private stiShadowAfter = -1;
  /** [start, end) of each inline STI stub part: no interrupt is taken inside one, after its first instruction has set vif. */
  private readonly stiStubs: [number, number][] = [];
  /**
   * Jumps that are patch plumbing, not guest instructions: each patched run's first byte in the
   * original code, and an STI stub's closing `jmp resume`. The STI shadow passes over them to the
   * guest instruction they lead to (e.g. a T2e-evicted successor run from its trampoline).
   */
  private readonly patchJumps = new Set<number>();
  private readonly rec: WalkRecord = newWalkRecord();
  private readonly vpaging: PagingState;
  private readonly siteIns = new Map<number, Instruction>();
  /** A user-mode fetch from stub code faulted (pageWalk): the exception hook runs the original code. */
  private userStubFetch = false;
  private savedCr2 = 0;
  /**
   * Physical address of each shadowed guest descriptor's low and high dword (-1: not mapped),
   * GDT then LDT: a guest write to a watched page refreshes the entries on it (tableWrite).
   */
  private readonly gdtPhys = new Float64Array(8192 * 2);
  private gdtEntries = 0;
  private readonly ldtPhys = new Float64Array((SHADOW_LDT_BYTES >>> 3) * 2);
  private ldtEntries = 0;
  /** Pages this monitor set WATCH_DESCRIPTOR_TABLE on. */
  private readonly tablePages = new Set<number>();
  private refreshing = false;

  constructor(readonly machine: Machine, readonly opts: Ring1Options) {
    this.cpu = machine.cpu;
    this.mem = machine.mem;
    this.handlers = buildHandlers();
    this.monitorPhys = opts.guestRamBytes;
    this.stubPhys = opts.guestRamBytes + MONITOR_BYTES;
    const rw = opts.rewrite;
    this.stubEnd = rw === null ? HOLE_START : HOLE_START + rw.stubBytes.length;
    this.shared = rw !== null && rw.map.sharedPage !== 0;
    this.stubPages = new Uint8Array((this.stubEnd - HOLE_START + 0xfff) >>> 12);
    for (const p of rw?.stubSegments ?? []) {
      for (let a = p.vaddr & ~0xfff; a < p.vaddr + p.memsz; a += 0x1000) this.stubPages[(a - HOLE_START) >>> 12] = 1;
    }
    for (const site of rw?.map.sites ?? []) {
      if (site.tactic !== 'trap') this.patchJumps.add(site.patchStart >>> 0);
      if (site.stubKind === 'inline' && site.escapeAddr !== 0 && mnemonicOf(this.siteInstruction(site).form) === 'sti') {
        // docs/patch-abi.md: mov [S], 1 ... int 0x81 ; jmp .done ; .nopending: popfd ; .done:
        this.stiStubs.push([site.stubAddr >>> 0, (site.escapeAddr + 5) >>> 0]);
        // When nothing was relocated after the STI, `.done` is the stub's `jmp resume`: plumbing too.
        const done = (site.escapeAddr + 5) >>> 0;
        if (rw!.stubBytes[done - HOLE_START] === 0xe9 && stubJumpTarget(rw!.stubBytes, done) === site.resume >>> 0) {
          this.patchJumps.add(done);
        }
      }
    }
    for (const site of rw?.map.sites ?? []) {
      if (site.tactic === 'T3') this.t3Inner.add((site.patchStart + 5) >>> 0);
      if (site.tactic !== 'trap' && site.stubKind !== 'empty') this.siteByStub.set(site.stubAddr >>> 0, site);
      if (site.stubKind !== 'inline') continue;
      const m = mnemonicOf(this.siteInstruction(site).form);
      this.inlineParts.set(site.stubAddr >>> 0, { site, end: (site.stubAddr + INLINE_PART[m]!) | 0, stack: m === 'pushfd' || m === 'popfd', sti: m === 'sti' });
    }
    if (rw?.standIns !== undefined && rw.patchJumpsPhys !== undefined) {
      // Guest time leaves out the patch jumps and stub plumbing (docs/rewrite-backend.md, "Guest
      // time"); the first instruction of each inline stub is watched (instruction()).
      const standIns = rw.standIns, jumps = rw.patchJumpsPhys, lo = this.stubPhys, hi = this.stubPhys + rw.stubBytes.length;
      const inline = this.inlineParts;
      this.cpu.codeRoleAt = (phys) => {
        if (phys < lo || phys >= hi) return jumps.has(phys) ? CODE_PLUMBING : 0;
        const lin = (HOLE_START + (phys - lo)) >>> 0;
        return (standIns.has(lin) ? 0 : CODE_PLUMBING) | (inline.has(lin) ? CODE_WATCHED : 0);
      };
    }
    if (this.mem.size < ring1MemoryBytes(opts.guestRamBytes, rw)) throw new RangeError('machine memory too small for the monitor (use ring1MemoryBytes)');
    if (rw !== null && this.stubEnd > MONITOR_LINEAR) throw new RangeError(`stub segments of ${rw.stubBytes.length} bytes overlap the monitor's structures at ${hex(MONITOR_LINEAR)}`);
    const v = this.v;
    const cpu = this.cpu;
    this.vpaging = {
      get cr0() { return v.cr0; }, set cr0(_x: number) { /* walks do not write CR0 */ },
      get cr3() { return v.cr3; }, set cr3(_x: number) { /* walks do not write CR3 */ },
      get cr4() { return v.cr4; }, set cr4(_x: number) { /* walks do not write CR4 */ },
      get cr2() { return cpu.cr2; }, set cr2(x: number) { cpu.cr2 = x; },
      get efer() { return cpu.efer; },
      // The real CR4.PAE is always 0, so the CPU's PDPTE registers hold the guest's.
      pdpte: cpu.pdpte,
      mem: this.mem,
    };
  }

  // ---- Start ---------------------------------------------------------------------------------

  /**
   * Takes over a machine whose CPU holds the guest's boot state at CPL 0 (after loadMultiboot):
   * records it as the virtual state and deprivileges the guest to ring 1.
   */
  start(): void {
    const cpu = this.cpu, v = this.v;
    if (!cpu.protectedMode || cpu.v86) refuse('the ring-1 monitor starts guests in protected mode only');
    v.cr0 = cpu.cr0; v.cr3 = cpu.cr3; v.cr4 = cpu.cr4;
    v.gdtrBase = cpu.gdtrBase; v.gdtrLimit = cpu.gdtrLimit;
    v.idtrBase = cpu.idtrBase; v.idtrLimit = cpu.idtrLimit;
    v.ldtrSel = cpu.ldtrSel; v.ldtrBase = cpu.ldtrBase; v.ldtrLimit = cpu.ldtrLimit;
    const cpuOnWrite = this.mem.onWrite;
    this.mem.onWrite = (page) => {
      const w = this.mem.watched[page]!;
      if ((w & WATCH_DECODE_CACHE) !== 0) cpuOnWrite?.(page);
      if ((w & WATCH_DESCRIPTOR_TABLE) !== 0) this.tableWrite(page);
    };
    this.vif = (cpu.eflags & F.IF) !== 0;
    this.viopl = (cpu.eflags & F.IOPL) >>> 12;
    v.sysenterCs = msrState(cpu).sysenterCs;
    msrState(cpu).sysenterCs = 0;
    const rw = this.opts.rewrite;
    if (rw !== null) this.mem.load(this.stubPhys, rw.stubBytes);
    cpu.cr4 = 0;
    cpu.cr3 = this.monitorPhys + REAL_PD_OFFSET;
    this.deprivilege(cpu.cpl, true);
    cpu.flushDecodeCache();
    cpu.tlb.flushAll();
    cpu.interceptor = this;
    const pic = this.machine.pic;
    cpu.interruptController = {
      pending: () => this.pendingInterrupt(),
      acknowledge: () => {
        if (this.shared) this.mem.write8(this.stubPhys + SHARED_PENDING, 0);
        return pic.acknowledge();
      },
    };
  }

  // ---- Virtual IF and IOPL (the shared page in the rewrite backend) ----------------------------

  get vif(): boolean {
    return this.shared ? this.mem.u8[this.stubPhys + SHARED_VIF] !== 0 : this.v.ifFlag;
  }

  set vif(on: boolean) {
    if (this.shared) this.mem.write8(this.stubPhys + SHARED_VIF, on ? 1 : 0);
    else this.v.ifFlag = on;
  }

  get viopl(): number {
    return this.shared ? this.mem.u8[this.stubPhys + SHARED_VIOPL]! & 3 : this.v.iopl;
  }

  set viopl(n: number) {
    if (this.shared) this.mem.write8(this.stubPhys + SHARED_VIOPL, n & 3);
    else this.v.iopl = n & 3;
  }

  /** The guest's CPL: the kernel's 0 runs in ring 1. */
  get vcpl(): number {
    return this.cpu.cpl === 1 ? 0 : this.cpu.cpl;
  }

  /**
   * The interrupt controller as the CPU sees it: the PIC, gated by the virtual IF. While the
   * virtual IF is 0 an interrupt waits at the PIC (the shared page's `pending` tells the stubs to
   * escape when they set IF). After the escape of an inline STI the rest of the STI stub (its
   * `jmp .done`) runs, then the STI shadow covers one guest instruction, as on hardware.
   * (The CPU polls between blocks, and every jump ends a block.)
   */
  private pendingInterrupt(): number {
    const pic = this.machine.pic;
    const cpu = this.cpu;
    const lin = (cpu.segBase[SegReg.CS]! + cpu.eip) >>> 0;
    if (lin >= HOLE_START && this.stiStubs.length > 0) {
      for (const [a, b] of this.stiStubs) if (lin > a && lin < b && lin !== this.stiShadowAfter) return -1;
    }
    if (this.stiShadowAfter >= 0) {
      if (lin !== this.stiShadowAfter && !cpu.halted) {
        // Plumbing (a patch jump, stub code that is not a stand-in) is not the next guest
        // instruction: the shadow moves on with it.
        if (this.patchJumps.has(lin) || (lin >= HOLE_START && lin < this.stubEnd && this.opts.rewrite?.standIns?.has(lin) === false)) {
          this.stiShadowAfter = lin;
          return -1;
        }
        this.stiShadowAfter = -1;
        cpu.inhibitInterrupts = true;
      }
      return -1;
    }
    // The shadow above runs out at the next guest instruction whatever the virtual IF is (after a
    // MOV SS with IF = 0 it must not outlive that instruction and delay a later POPF's interrupt).
    if (!this.vif) {
      if (this.shared && pic.pending() >= 0) this.mem.write8(this.stubPhys + SHARED_PENDING, 1);
      return -1;
    }
    // Only between guest instructions: inside stub plumbing the guest's next instruction has no
    // address yet (a halted CPU is always at one: after an escape, or after the original HLT).
    if (!cpu.halted && lin >= HOLE_START && lin < this.stubEnd && this.originalAt(lin) === null) return -1;
    if (!cpu.halted && this.t3Inner.size > 0 && this.t3Inner.has(lin)) return -1;
    return pic.pending();
  }

  /**
   * The original address of the guest instruction that runs next from stub address `lin`, or
   * null inside plumbing that is not a jump: a stand-in (a relocated form's first instruction, a
   * site's stub part) stands for its original; a plumbing jump (`jmp resume`, an inline STI's
   * `jmp .done`) is followed. An interrupt taken there is delivered with that address, and the
   * IRET back resumes at the stand-in (restartInTrampoline), as after a fault in a relocated
   * instruction (docs/rewrite-backend.md, "Interrupts in stubs").
   */
  private originalAt(lin: number): number | null {
    const rw = this.opts.rewrite;
    if (rw === null || rw.standIns === undefined) return null;
    for (let hops = 0; hops < 4; hops++) {
      if (lin < HOLE_START || lin >= this.stubEnd) return lin;
      if (rw.standIns.has(lin)) return rw.relocated?.get(lin)?.addr ?? this.siteByStub.get(lin)?.addr ?? null;
      const target = stubJumpTarget(rw.stubBytes, lin);
      if (target === null) return null;
      lin = target;
    }
    return null;
  }

  // ---- Deprivileging: the real state for the guest's virtual state ------------------------------

  /**
   * Sets the real state after the guest's virtual state changed (at start and after every
   * emulation): CPL 0 -> 1, CS/SS RPL = CPL, DPL 0 descriptors in the caches -> 1, limits clipped,
   * real GDTR = shadow GDT, LDTR = the guest's selector on the shadow LDT, IDTR = the monitor's,
   * IF = 1, IOPL = 0, CR0/CR4 from the guest's.
   */
  private deprivilege(vcpl: number, refreshTables: boolean): void {
    const cpu = this.cpu, v = this.v;
    const cpl = vcpl === 0 ? 1 : vcpl;
    cpu.cpl = cpl;
    for (let s = 0; s < 6; s++) {
      let attr = cpu.segAttr[s]!;
      if ((attr & (ATTR_P | ATTR_S)) !== (ATTR_P | ATTR_S)) continue;
      if (((attr >>> 5) & 3) === 0) attr |= 1 << 5;
      cpu.segAttr[s] = attr;
      const expandDown = (attr & (ATTR_CODE | 0x4)) === 0x4;
      const base = cpu.segBase[s]! >>> 0;
      if (expandDown) cpu.segLimit[s] = expandDownLimit(base, cpu.segLimit[s]! >>> 0, (attr & ATTR_DB) !== 0 ? 0xffffffff : 0xffff) | 0;
      else if (base + (cpu.segLimit[s]! >>> 0) > SEGMENT_CLIP) cpu.segLimit[s] = base > SEGMENT_CLIP ? 0 : (SEGMENT_CLIP - base) | 0;
    }
    cpu.sel[SegReg.CS] = (cpu.sel[SegReg.CS]! & ~3) | cpl;
    if ((cpu.sel[SegReg.SS]! & 0xfffc) !== 0) cpu.sel[SegReg.SS] = (cpu.sel[SegReg.SS]! & ~3) | cpl;
    if (refreshTables) this.refreshShadowTables();
    cpu.gdtrBase = (MONITOR_LINEAR + SHADOW_GDT_OFFSET) | 0;
    cpu.gdtrLimit = v.gdtrLimit;
    cpu.ldtrSel = v.ldtrSel;
    const ldtValid = (v.ldtrSel & 0xfffc) !== 0;
    cpu.ldtrBase = ldtValid ? (MONITOR_LINEAR + SHADOW_LDT_OFFSET) | 0 : 0;
    cpu.ldtrLimit = ldtValid ? v.ldtrLimit : 0;
    cpu.idtrBase = (MONITOR_LINEAR + MONITOR_IDT_OFFSET) | 0;
    cpu.idtrLimit = 0x7ff;
    cpu.setFlagBits(F.IF | F.IOPL, F.IF);
    if ((v.cr0 & CR0_PE) === 0) refuse('the guest cleared CR0.PE: real mode is not supported under the ring-1 monitor');
    cpu.cr0 = (v.cr0 & CR0_FROM_GUEST) | CR0_PE | CR0_ET | CR0_PG;
    cpu.cr4 = v.cr4 & CR4_PGE;
  }

  /**
   * Copies the guest's GDT and LDT into the shadow GDT and LDT (shadowDescriptor: DPL 0 code and
   * data -> DPL 1, limits clipped), and watches the physical pages they are on, so that a guest
   * write to a descriptor reaches the shadow at once (tableWrite), as a native segment load
   * would read it. The guest's LDT descriptor for its current LDTR gets the shadow LDT's base.
   */
  private refreshShadowTables(): void {
    const v = this.v;
    for (const page of this.tablePages) this.mem.watched[page] = this.mem.watched[page]! & ~WATCH_DESCRIPTOR_TABLE;
    this.tablePages.clear();
    const ldtValid = (v.ldtrSel & 0xfffc) !== 0;
    if (ldtValid && (v.ldtrLimit >>> 0) >= SHADOW_LDT_BYTES) refuse(`the guest's LDT (limit ${hex(v.ldtrLimit)}) is larger than the monitor's shadow LDT (${SHADOW_LDT_BYTES} bytes)`);
    this.gdtEntries = Math.min(8192, ((v.gdtrLimit & 0xffff) + 1) >>> 3);
    this.ldtEntries = ldtValid ? ((v.ldtrLimit >>> 0) + 1) >>> 3 : 0;
    this.locateTable(v.gdtrBase, this.gdtEntries, this.gdtPhys);
    this.locateTable(v.ldtrBase, this.ldtEntries, this.ldtPhys);
    for (let i = 0; i < this.gdtEntries; i++) this.shadowEntry(false, i);
    for (let i = 0; i < this.ldtEntries; i++) this.shadowEntry(true, i);
  }

  /** Finds where each of `n` guest descriptors from linear `base` lies in physical memory, and watches those pages. */
  private locateTable(base: number, n: number, phys: Float64Array): void {
    for (let i = 0; i < n; i++) {
      const lin = (base + i * 8) >>> 0;
      const p = this.translate(lin, false, false, false, false);
      const p2 = this.translate((lin + 4) >>> 0, false, false, false, false);
      const ok = p >= 0 && p2 >= 0 && p < this.opts.guestRamBytes;
      phys[i * 2] = ok ? p : -1;
      phys[i * 2 + 1] = ok ? p2 : -1;
      if (!ok) continue;
      for (const a of [p, p + 3, p2, p2 + 3]) {
        const page = a >>> 12;
        this.tablePages.add(page);
        this.mem.watched[page] = this.mem.watched[page]! | WATCH_DESCRIPTOR_TABLE;
      }
    }
  }

  /** Writes shadow entry `i` of the GDT (or LDT) from the guest's descriptor. */
  private shadowEntry(ldt: boolean, i: number): void {
    const v = this.v;
    const phys = ldt ? this.ldtPhys : this.gdtPhys;
    const p = phys[i * 2]!, p2 = phys[i * 2 + 1]!;
    let lo = 0, hi = 0;
    if (p >= 0) { lo = this.mem.read32(p); hi = this.mem.read32(p2); }
    [lo, hi] = shadowDescriptor(lo, hi);
    if (!ldt && (v.ldtrSel & 0xfffc) !== 0 && (v.ldtrSel & 4) === 0 && i === v.ldtrSel >>> 3) {
      // The real LDTR's descriptor: the shadow LDT's base (the limit stays the guest's, for LSL).
      const base = MONITOR_LINEAR + SHADOW_LDT_OFFSET;
      lo = (lo & 0xffff) | ((base & 0xffff) << 16);
      hi = (hi & 0x00ffff00) | ((base >>> 16) & 0xff) | (base & 0xff000000);
    }
    const dst = this.monitorPhys + (ldt ? SHADOW_LDT_OFFSET : SHADOW_GDT_OFFSET) + i * 8;
    this.mem.write32(dst, lo);
    this.mem.write32(dst + 4, hi);
  }

  /**
   * A write to a page that holds guest descriptors (PhysicalMemory.watched): refreshes the
   * shadow entries on that page. Hardware monitors write-protect these pages and emulate the
   * faulting write; here the physical memory reports the write after it is done.
   */
  private tableWrite(page: number): void {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      for (const [ldt, n, phys] of [[false, this.gdtEntries, this.gdtPhys], [true, this.ldtEntries, this.ldtPhys]] as const) {
        for (let i = 0; i < n; i++) {
          const p = phys[i * 2]!, p2 = phys[i * 2 + 1]!;
          if (p >= 0 && ((p >>> 12) === page || ((p + 3) >>> 12) === page || (p2 >>> 12) === page || ((p2 + 3) >>> 12) === page)) this.shadowEntry(ldt, i);
        }
      }
    } finally {
      this.refreshing = false;
    }
  }

  // ---- The virtual TLB -------------------------------------------------------------------------

  /**
   * The translation the monitor gives a guest access: the hole (stub segment, monitor
   * structures) first, then the guest's own tables (identity while its CR0.PG = 0). Returns the
   * physical address, or -1 - errorCode for a guest #PF. Refuses (MonitorExit) a translation to
   * physical memory outside the guest's RAM, and guest writes to stub code.
   */
  translate(lin: number, write: boolean, user: boolean, fetch: boolean, setAccessed = true): number {
    lin >>>= 0;
    if (lin >= HOLE_START && lin < HOLE_END) {
      if (lin >= MONITOR_LINEAR) {
        if (user) return -1 - (PF_P | PF_U | (write ? PF_W : 0));
        return this.monitorPhys + (lin - MONITOR_LINEAR);
      }
      const rw = this.opts.rewrite;
      if (rw !== null && lin < this.stubEnd && this.stubPages[(lin - HOLE_START) >>> 12] === 1) {
        const off = lin - HOLE_START;
        // Stub code and the shared page are the guest kernel's only: user-mode code that
        // reaches a patch is run from its original bytes instead (exception()).
        if (user) return -1 - (PF_P | PF_U | (write ? PF_W : 0));
        if (write && (rw.map.sharedPage === 0 || off >= 0x1000)) refuse(`the guest wrote to the stub code at ${hex(lin)}`);
        return this.stubPhys + off;
      }
    }
    let phys: number;
    if ((this.v.cr0 & CR0_PG) === 0) {
      phys = lin;
    } else {
      const r = walk(this.vpaging, lin, write && setAccessed, user, fetch, this.rec);
      if (r < 0) return r;
      phys = r;
    }
    if (phys >= this.opts.guestRamBytes) refuse(`the guest's ${(this.v.cr0 & CR0_PG) ? 'page tables map' : 'access reaches'} linear ${hex(lin)} to physical ${hex(phys)}, outside its ${this.opts.guestRamBytes >>> 20} MiB of RAM (monitor memory)`);
    return phys;
  }

  pageWalk(_cpu: Cpu, w: PageWalk): Verdict {
    this.accounting.count('virtual TLB miss', 'page-walk');
    this.rec.pageSize = 4096;
    this.rec.global = false;
    const r = this.translate(w.linear, w.write, w.user, w.fetch);
    w.pageSize = 4096;
    w.global = false;
    if (r < 0) {
      w.physical = -1;
      w.errorCode = -1 - r;
      const lin = w.linear >>> 0;
      if (w.user && w.fetch && this.opts.rewrite !== null && lin >= HOLE_START && lin < this.stubEnd && this.stubPages[(lin - HOLE_START) >>> 12] === 1) {
        this.userStubFetch = true;
        this.savedCr2 = this.cpu.cr2;
      }
    } else {
      w.physical = r;
      w.errorCode = -1;
      if ((this.v.cr0 & CR0_PG) !== 0 && !(w.linear >>> 0 >= HOLE_START && w.linear >>> 0 < HOLE_END)) {
        w.pageSize = this.rec.pageSize;
        w.global = this.rec.global;
      }
    }
    return HANDLED;
  }

  // ---- The virtual context: the CPU's own handlers on the guest's view --------------------------

  /**
   * Runs `fn` with the CPU showing the guest's virtual state (CPL, GDTR, LDTR, IDTR, IF, IOPL,
   * CS/SS RPL; with `crs` also CR0, CR3, CR4), then takes the changes back into the virtual state
   * and deprivileges again. A Fault from `fn` propagates after the state is restored.
   */
  private inVirtual(fn: () => void, crs = false): void {
    const cpu = this.cpu, v = this.v;
    const realCr0 = cpu.cr0, realCr3 = cpu.cr3, realCr4 = cpu.cr4;
    const vcpl = this.vcpl;
    cpu.cpl = vcpl;
    cpu.sel[SegReg.CS] = (cpu.sel[SegReg.CS]! & ~3) | vcpl;
    if ((cpu.sel[SegReg.SS]! & 0xfffc) !== 0) cpu.sel[SegReg.SS] = (cpu.sel[SegReg.SS]! & ~3) | vcpl;
    cpu.gdtrBase = v.gdtrBase; cpu.gdtrLimit = v.gdtrLimit;
    cpu.idtrBase = v.idtrBase; cpu.idtrLimit = v.idtrLimit;
    cpu.ldtrSel = v.ldtrSel; cpu.ldtrBase = v.ldtrBase; cpu.ldtrLimit = v.ldtrLimit;
    cpu.setFlagBits(F.IF | F.IOPL, (this.vif ? F.IF : 0) | (this.viopl << 12));
    if (crs) { cpu.cr0 = v.cr0; cpu.cr3 = v.cr3; cpu.cr4 = v.cr4; }
    const msr = msrState(cpu);
    msr.sysenterCs = v.sysenterCs;
    const oldGdtBase = v.gdtrBase, oldGdtLimit = v.gdtrLimit;
    const oldLdt = [v.ldtrSel, v.ldtrBase, v.ldtrLimit].join();
    this.depth++;
    try {
      fn();
    } finally {
      this.depth--;
      v.sysenterCs = msr.sysenterCs;
      msr.sysenterCs = 0;
      if (crs) { v.cr0 = cpu.cr0; v.cr3 = cpu.cr3; v.cr4 = cpu.cr4; }
      else { cpu.cr0 = realCr0; cpu.cr3 = realCr3; cpu.cr4 = realCr4; }
      cpu.cr3 = this.monitorPhys + REAL_PD_OFFSET;
      v.gdtrBase = cpu.gdtrBase; v.gdtrLimit = cpu.gdtrLimit;
      v.idtrBase = cpu.idtrBase; v.idtrLimit = cpu.idtrLimit;
      v.ldtrSel = cpu.ldtrSel; v.ldtrBase = cpu.ldtrBase; v.ldtrLimit = cpu.ldtrLimit;
      const flags = cpu.eflags;
      this.vif = (flags & F.IF) !== 0;
      this.viopl = (flags & F.IOPL) >>> 12;
      // A changed GDTR or LDTR, or paging (the tables' linear pages may now be elsewhere).
      const tablesMoved = v.gdtrBase !== oldGdtBase || v.gdtrLimit !== oldGdtLimit || [v.ldtrSel, v.ldtrBase, v.ldtrLimit].join() !== oldLdt || crs;
      this.deprivilege(cpu.cpl, tablesMoved || this.refreshAfter);
      this.refreshAfter = false;
    }
  }

  /** Set by emulations that may change descriptors (LTR, LLDT, LGDT): refresh the shadow tables after. */
  private refreshAfter = false;

  /** Delivers an event to the guest through its virtual IDT, in ring 1 (or from ring 3). */
  private reflect(vector: number, errorCode: number, software: boolean, nextEip: number): void {
    this.inVirtual(() => deliverException(this.cpu, vector, errorCode, software, nextEip));
  }

  /**
   * Emulates `ins` at EIP `at` (the guest's address) in the virtual context. `resume`: where to
   * continue when the instruction does not transfer control (the escape's return address), else
   * the next instruction. A fault is delivered to the guest at `at`.
   */
  private emulate(ins: Instruction, at: number, resume: number | null): boolean {
    const cpu = this.cpu;
    cpu.eip = at;
    cpu.nextEip = (at + ins.length) | 0;
    // The instruction retires here: an interrupt shadow from the one before it ends (Cpu.execute
    // does the same for instructions that complete), unless this one starts a new one (STI, MOV SS).
    cpu.inhibitInterrupts = false;
    try {
      this.execVirtual(ins);
    } catch (e) {
      if (!(e instanceof Fault)) throw e;
      cpu.eip = cpu.nextEip = at;
      const back = this.faultAtOriginal();
      this.reflect(e.vector, e.errorCode, false, back);
      return false;
    }
    if (cpu.inhibitInterrupts) {
      // An interrupt shadow (STI that set IF, MOV SS, POP SS): the CPU's would cover the next
      // instruction the CPU runs, which may be plumbing (`jmp resume`); the monitor's covers the
      // next guest instruction instead.
      cpu.inhibitInterrupts = false;
      this.stiShadowAfter = STI_SHADOW_NEXT;
    }
    if (resume !== null && classOf(ins.form).flow === 'next') cpu.eip = cpu.nextEip = resume;
    else {
      cpu.eip = cpu.nextEip;
      if (classOf(ins.form).flow !== 'next') this.restartInTrampoline();
    }
    return true;
  }

  /**
   * After an emulated control transfer (IRET, RETF, far JMP/CALL): a target on a displaced
   * instruction, which the guest sees as a fault's EIP (faultAtOriginal), lies inside the patch's
   * jump bytes; the instruction is resumed at its relocated copy instead, so that a handler that
   * restarts the faulting instruction (demand paging) runs it, then the rest of the trampoline.
   */
  private restartInTrampoline(): void {
    const rw = this.opts.rewrite;
    if (rw === null || rw.relocated === undefined) return;
    let at = this.restartAt;
    if (at === null) {
      at = new Map<number, number>();
      for (const [stub, part] of rw.relocated) {
        const known = at.get(part.addr);
        if (known === undefined || stub < known) at.set(part.addr, stub);
      }
      // A site's own stub part: the return address of an interrupt taken before it, and the
      // only way back into it when it is not the first instruction of its patched run.
      for (const [stub, site] of this.siteByStub) at.set(site.addr >>> 0, stub);
      this.restartAt = at;
    }
    const cpu = this.cpu;
    const base = cpu.segBase[SegReg.CS]!;
    const stub = at.get((base + cpu.eip) >>> 0);
    if (stub !== undefined) cpu.eip = cpu.nextEip = (stub - base) | 0;
  }

  /** Runs one instruction (EIP and nextEip set) on the guest's virtual view; a Fault propagates. */
  private execVirtual(ins: Instruction): void {
    const cpu = this.cpu;
    const m = mnemonicOf(ins.form);
    {
      if (m === 'smsw') {
        this.inVirtual(() => smsw(cpu, ins, this.v.cr0));
      } else if (m === 'lmsw') {
        this.inVirtual(() => {
          const w = cpu.readOp(ins, 0, 16);
          const v = this.v;
          v.cr0 = (v.cr0 & ~0xe) | (w & 0xe) | (v.cr0 & 1) | (w & 1);
          cpu.tlb.flushAll();
        });
      } else {
        const h = ins.valid ? this.handlers[ins.form] : undefined;
        if (h === undefined) throw new Fault(Vector.UD);
        const crs = m === 'clts' || m === 'invlpg' || (m === 'mov' && isCrMove(ins));
        if (m === 'ltr' || m === 'lldt' || m === 'lgdt') this.refreshAfter = true;
        if (m === 'rdtsc' || m === 'rdmsr' || m === 'wrmsr') {
          // As the Machine's own handler table does: the TSC comes from the clock (machine.ts).
          const clock = this.machine.clock;
          this.inVirtual(() => { cpu.tsc = clock.tsc; h(cpu, ins); clock.tsc = cpu.tsc; });
        } else {
          this.inVirtual(() => h(cpu, ins), crs);
        }
      }
    }
  }

  private record(reason: number, via: ExitVia, ins: Instruction | null, address: number, extra: Partial<Parameters<typeof exit>[1]> = {}): void {
    const e = exit(reason, { instructionLength: ins?.length ?? 0, ...(reason < 0 ? { detail: ins ? mnemonicOf(ins.form) : 'event' } : {}), ...extra });
    if (ins === null) this.accounting.record(e, via);
    else this.accounting.record(e, via, address, () => formatIntel(ins));
  }

  // ---- Hooks -----------------------------------------------------------------------------------

  exception(cpu: Cpu, e: ExceptionEvent): Verdict {
    if (this.depth > 0) return CONTINUE; // delivery inside an emulation: the CPU does it, on the virtual view
    const rw = this.opts.rewrite;
    const software = e.kind === EventKind.SOFTWARE_INTERRUPT || e.kind === EventKind.SOFTWARE_EXCEPTION;
    if (rw !== null && software) {
      const lin = (cpu.segBase[SegReg.CS]! + e.nextEip) >>> 0;
      if (e.vector === 0x81) {
        const site = rw.byEscape.get((lin - 2) >>> 0);
        if (site !== undefined) { this.escape(site); return HANDLED; }
      } else if (e.vector === Vector.BP) {
        const site = rw.byInt3.get((lin - 1) >>> 0);
        if (site !== undefined) { this.trapSite(site); return HANDLED; }
      }
    }
    if (e.kind === EventKind.HARDWARE_EXCEPTION && e.nextEip === cpu.eip && this.inlineStubFault()) return HANDLED;
    if (e.vector === Vector.GP && e.kind === EventKind.HARDWARE_EXCEPTION && this.trapGp()) return HANDLED;
    if (e.vector === Vector.PF && this.userStubFetch) {
      this.userStubFetch = false;
      const entry = rw?.entries.get((cpu.segBase[SegReg.CS]! + cpu.eip) >>> 0);
      if (entry !== undefined) {
        cpu.cr2 = this.savedCr2;
        this.runOriginal(entry.site, entry.start);
        return HANDLED;
      }
    }
    const reason = e.kind === EventKind.EXTERNAL_INTERRUPT ? VMX_EXIT_REASON.EXTERNAL_INTERRUPT : VMX_EXIT_REASON.EXCEPTION_OR_NMI;
    this.accounting.record(exit(reason, { interruptionInfo: interruptionInfo(e), errorCode: e.errorCode }), 'event');
    // Faults report the instruction (nextEip = EIP = it); the traps of #DB report the next one
    // and are not translated. Software interrupts never come from a relocated instruction: the
    // rewriter does not relocate INT n, INT3 or INTO (docs/patch-abi.md, "Relocation of
    // displaced instructions").
    let nextEip = e.nextEip;
    if (e.kind === EventKind.HARDWARE_EXCEPTION && e.vector !== Vector.DB && e.nextEip === cpu.eip) nextEip = this.faultAtOriginal();
    else if (e.kind === EventKind.EXTERNAL_INTERRUPT) {
      const base = cpu.segBase[SegReg.CS]!;
      const original = this.originalAt((base + nextEip) >>> 0);
      if (original !== null) cpu.eip = nextEip = (original - base) | 0;
    }
    cpu.nextEip = nextEip;
    this.reflect(e.vector, e.errorCode, software, nextEip);
    return HANDLED;
  }

  /**
   * A fault at CS:EIP: when EIP is on the relocated form of a displaced instruction in a
   * trampoline, undoes what the relocated form did before the faulting part (the push of a
   * relocated CALL, the decrement of a relocated LOOP) and moves EIP to the original
   * instruction, which natively faults with the same operands and no state changed (SDM vol. 3A
   * §6.5: a fault reports the faulting instruction with the state before it). Returns the EIP.
   */
  /** Original address of each relocated instruction → the first stub address of its relocated form (built on first use). */
  private restartAt: Map<number, number> | null = null;

  private faultAtOriginal(): number {
    const cpu = this.cpu;
    const base = cpu.segBase[SegReg.CS]!;
    const part = this.opts.rewrite?.relocated?.get((base + cpu.eip) >>> 0);
    if (part === undefined) return cpu.eip;
    const r = cpu.regs; // EAX, ECX, EDX, EBX, ESP, ...
    const add = (i: number, n: number, wide: boolean): void => { r[i] = wide ? r[i]! + n : (r[i]! & ~0xffff) | ((r[i]! + n) & 0xffff); };
    if (part.undo === 'esp') add(4, 4, (cpu.segAttr[SegReg.SS]! & ATTR_DB) !== 0);
    else if (part.undo === 'count') add(1, 1, true);
    else if (part.undo === 'count16') add(1, 1, false);
    // The part before this one retired and stood for the original, which natively faults instead.
    if (part.undo !== 'none') cpu.plumbingRetired++;
    cpu.eip = cpu.nextEip = (part.addr - base) | 0;
    return cpu.eip;
  }

  /** A #GP at the current instruction: emulate it if it is sensitive (the trap of a deprivileged instruction). */
  private trapGp(): boolean {
    const cpu = this.cpu;
    let ins: Instruction;
    try {
      ins = cpu.fetch();
    } catch {
      return false;
    }
    const c = classOf(ins.form);
    const m = mnemonicOf(ins.form);
    if (c.privileged === 'no' && c.ioplSensitive === 'no' && !c.sensitiveUnprivileged && m !== 'sysenter') return false;
    const at = cpu.eip;
    const lin = (cpu.segBase[SegReg.CS]! + at) >>> 0;
    if (this.opts.rewrite !== null) this.accounting.misses++;
    this.record(exitReasonOfMnemonic(m === 'mov' && isCrMove(ins) ? 'mov_cr' : m), 'trap', ins, lin, { errorCode: 0 });
    // The trapped instruction retires when its emulation completes, as it does natively.
    if (this.emulate(ins, at, null)) cpu.retired++;
    // HLT with the virtual IF = 0 is final, as on hardware: let the machine see IF = 0.
    if (m === 'hlt' && !this.vif && cpu.halted) cpu.setFlagBits(F.IF, 0);
    return true;
  }

  /** An escape (`int 0x81`) from a stub. */
  private escape(site: PatchMapSite): void {
    const cpu = this.cpu;
    const ins = this.siteInstruction(site);
    if (site.stubKind === 'inline') {
      // The stub did the work; the escape says "vif went 0 -> 1 with an interrupt pending".
      this.record(-1, 'escape', ins, site.addr);
      const back = (site.escapeAddr + 2) | 0;
      cpu.eip = cpu.nextEip = back;
      // After POPF (no interrupt shadow) the CPU takes the interrupt at the next boundary
      // (pendingInterrupt): the rest of the stub is plumbing, so no guest instruction runs first.
      // Only an STI that set the virtual IF has a shadow (SDM STI): the watch of its first
      // instruction (instruction()) saw IF = 0 then and armed STI_SHADOW_NEXT.
      if (mnemonicOf(ins.form) === 'sti' && this.stiShadowAfter === STI_SHADOW_NEXT) this.stiShadowAfter = back >>> 0;
      return;
    }
    const m = mnemonicOf(ins.form);
    this.record(exitReasonOfMnemonic(m === 'mov' && isCrMove(ins) ? 'mov_cr' : m), 'escape', ins, site.addr);
    // The escape retired standing for the site, which natively faults instead of retiring.
    if (!this.emulate(ins, site.addr | 0, (site.escapeAddr + 2) | 0)) cpu.plumbingRetired++;
    if (m === 'hlt' && !this.vif && cpu.halted) cpu.setFlagBits(F.IF, 0);
  }

  /** The #BP of a trap site replaced by INT3: emulate the original instruction (a miss). */
  private trapSite(site: PatchMapSite): void {
    const ins = this.siteInstruction(site);
    const m = mnemonicOf(ins.form);
    this.accounting.misses++;
    this.record(exitReasonOfMnemonic(m), 'trap', ins, site.addr);
    // The INT3 retired standing for the site, which natively faults instead of retiring.
    if (!this.emulate(ins, site.addr | 0, null)) this.cpu.plumbingRetired++;
    if (m === 'hlt' && !this.vif && this.cpu.halted) this.cpu.setFlagBits(F.IF, 0);
  }

  /**
   * User-mode code reached a patch: run the displaced original instructions, from `start`, one
   * by one with the CPU's handlers at CPL 3 (IF and IOPL virtual), until flow leaves the
   * patched run. Sensitive ones then behave as they do natively at CPL 3 (CLI #GPs, POPF keeps
   * IF), which the kernel-mode stubs would not.
   */
  private runOriginal(site: PatchMapSite, start: number): void {
    const cpu = this.cpu;
    const lo = site.patchStart >>> 0, hi = lo + site.displaced.length;
    this.record(VMX_EXIT_REASON.EXCEPTION_OR_NMI, 'trap', this.siteInstruction(site), site.addr, { detail: 'user-mode patch' });
    let eip = start >>> 0;
    for (let n = 0; n < 64 && eip >= lo && eip < hi && cpu.cpl === 3 && !cpu.halted; n++) {
      const ins = new Instruction();
      new Decoder(32, site.displaced.subarray(eip - lo), eip).decodeAt(ins);
      cpu.eip = eip;
      cpu.nextEip = (eip + ins.length) | 0;
      try {
        this.execVirtual(ins);
      } catch (e) {
        if (!(e instanceof Fault)) throw e;
        cpu.eip = cpu.nextEip = eip;
        this.reflect(e.vector, e.errorCode, false, eip);
        return;
      }
      cpu.retired++;
      cpu.eip = cpu.nextEip;
      eip = cpu.eip >>> 0;
    }
  }

  private siteInstruction(site: PatchMapSite): Instruction {
    let ins = this.siteIns.get(site.addr);
    if (ins === undefined) {
      ins = new Instruction();
      new Decoder(32, site.original, site.addr).decodeAt(ins);
      this.siteIns.set(site.addr, ins);
    }
    return ins;
  }

  /**
   * The first instruction of an inline stub (CODE_WATCHED): the stubs reach the shared page as
   * `ds:[S]` and assume DS is a present, writable data segment with base 0 whose limit covers S,
   * and PUSHFD/POPFD's stubs address the stack with ESP (docs/patch-abi.md, "Shared page"). When
   * the guest's DS or SS is not so (LDS of a null selector, a based or small DS, a 16-bit stack),
   * the monitor emulates the site itself and resumes after the stub part, as for an escape stub.
   */
  instruction(cpu: Cpu, _ins: Instruction): Verdict {
    if (this.inlineParts.size === 0 || this.depth > 0) return CONTINUE;
    const part = this.inlineParts.get((cpu.segBase[SegReg.CS]! + cpu.eip) >>> 0);
    if (part === undefined) return CONTINUE;
    if (this.inlineStubFits(part.stack)) {
      // An inline STI that sets the virtual IF: its shadow covers the guest instruction after
      // the stub (SDM STI), whether or not the stub escapes.
      if (!this.vif && part.sti) this.stiShadowAfter = STI_SHADOW_NEXT;
      // What the stub may change before a fault in it (inlineStubFault).
      const snap = this.inlineSnap;
      snap.part = part; snap.eax = cpu.regs[0]!; snap.esp = cpu.regs[4]!; snap.eflags = cpu.eflags; snap.vif = this.vif; snap.viopl = this.viopl;
      return CONTINUE;
    }
    const ins = this.siteInstruction(part.site);
    this.record(exitReasonOfMnemonic(mnemonicOf(ins.form)), 'escape', ins, part.site.addr, { detail: 'inline stub emulated: DS or SS unfit' });
    // The stub's first instruction retires standing for the site (Cpu.execute), unless it faults.
    if (!this.emulate(ins, part.site.addr | 0, part.end)) cpu.plumbingRetired++;
    cpu.nextEip = cpu.eip;
    return HANDLED;
  }

  /**
   * The state before the inline stub that is running now (set by instruction()). The stubs push
   * scratch slots below ESP that the original instruction does not (docs/patch-abi.md): a fault
   * there, or any fault inside a stub, is undone and the site emulated instead, which faults, if
   * it does, as natively and at the site's address.
   */
  private readonly inlineSnap = { part: null as { site: PatchMapSite; end: number } | null, eax: 0, esp: 0, eflags: 0, vif: false, viopl: 0 };

  private inlineStubFault(): boolean {
    const snap = this.inlineSnap, part = snap.part, cpu = this.cpu;
    if (part === null) return false;
    const lin = (cpu.segBase[SegReg.CS]! + cpu.eip) >>> 0;
    if (lin < (part.site.stubAddr >>> 0) || lin >= (part.end >>> 0)) return false;
    snap.part = null;
    cpu.regs[0] = snap.eax; cpu.regs[4] = snap.esp; cpu.eflags = snap.eflags;
    this.vif = snap.vif; this.viopl = snap.viopl;
    const ins = this.siteInstruction(part.site);
    this.record(exitReasonOfMnemonic(mnemonicOf(ins.form)), 'trap', ins, part.site.addr, { detail: 'fault in an inline stub: site emulated' });
    // The stub's first instruction retired standing for the site; unless it was the one that faulted.
    const standInRetired = lin !== (part.site.stubAddr >>> 0);
    const done = this.emulate(ins, part.site.addr | 0, part.end);
    if (done && !standInRetired) cpu.retired++;
    if (!done && standInRetired) cpu.plumbingRetired++;
    return true;
  }

  /** Whether the guest's DS (and SS, for a stub that uses the stack) lets the inline stubs run. */
  private inlineStubFits(stack: boolean): boolean {
    const cpu = this.cpu;
    const a = cpu.segAttr[SegReg.DS]!;
    if ((a & (ATTR_P | ATTR_S | ATTR_CODE | 2)) !== (ATTR_P | ATTR_S | 2) || cpu.segBase[SegReg.DS] !== 0) return false;
    const first = this.opts.rewrite!.map.sharedPage >>> 0, last = first + SHARED_VIOPL;
    const limit = cpu.segLimit[SegReg.DS]! >>> 0;
    // Expand-down (type bit 2): the valid offsets are limit + 1 .. 0xFFFFFFFF with B = 1.
    if ((a & 4) !== 0 ? (a & ATTR_DB) === 0 || first <= limit : last > limit) return false;
    return !stack || (cpu.segAttr[SegReg.SS]! & ATTR_DB) !== 0;
  }

  // A task switch would load CS and SS from a TSS at the guest's own RPLs, outside the monitor: refused, as before the CPU had them.
  taskSwitch(): Verdict { return refuse('task switches (hardware task switching under a ring-1 monitor)'); }
  msr(_cpu: Cpu, _a: MsrAccess): Verdict { return CONTINUE; }
}

function isCrMove(ins: Instruction): boolean {
  for (let i = 0; i < ins.opCount; i++) {
    const k = ins.opKinds[i];
    const r = ins.opRegs[i]!;
    if (k === OpKind.Register && r >= Reg.CR0 && r <= Reg.CR0 + 15) return true;
  }
  return false;
}

/** SMSW with the guest's CR0 (SDM SMSW: a 32-bit register form stores all of CR0). */
function smsw(cpu: Cpu, ins: Instruction, cr0: number): void {
  if (ins.opKinds[0] === OpKind.Register) cpu.writeOp(ins, 0, ins.operandSize === 32 ? 32 : 16, cr0);
  else cpu.writeSized(cpu.segmentOf(ins), cpu.effectiveAddress(ins), 16, cr0);
}

/**
 * A guest descriptor as the shadow GDT/LDT holds it: code/data DPL 0 -> 1, limit clipped (also
 * when not present: at CPL 1 a load then #NPs as natively, and LAR/LSL/VERR see it).
 */
export function shadowDescriptor(lo: number, hi: number): [number, number] {
  if ((hi & (1 << 12)) === 0) return [lo, hi]; // system descriptor
  if (((hi >>> 13) & 3) === 0) hi |= 1 << 13;
  const code = (hi & (1 << 11)) !== 0;
  const expandDown = !code && (hi & (1 << 10)) !== 0;
  const base = ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
  const g = (hi & (1 << 23)) !== 0;
  const raw = (lo & 0xffff) | (hi & 0xf0000);
  const limit = g ? raw * 4096 + 4095 : raw;
  if (expandDown) {
    const clipped = expandDownLimit(base, limit, (hi & (1 << 22)) !== 0 ? 0xffffffff : 0xffff);
    if (clipped === limit) return [lo, hi];
    // A larger limit, rounded up to what the descriptor can say (G = 1 when a byte limit cannot).
    const useG = g || clipped > 0xfffff;
    const r = useG ? Math.min(0xfffff, Math.max(0, Math.ceil((clipped - 4095) / 4096))) : clipped;
    lo = (lo & ~0xffff) | (r & 0xffff);
    hi = (hi & ~0xf0000) | (r & 0xf0000) | (useG ? 1 << 23 : 0);
    return [lo | 0, hi | 0];
  }
  if (base + limit <= SEGMENT_CLIP) return [lo, hi];
  const max = base > SEGMENT_CLIP ? 0 : SEGMENT_CLIP - base;
  const nraw = g ? Math.floor((max + 1) / 4096) - 1 : Math.min(max, 0xfffff);
  const r = Math.max(0, nraw);
  lo = (lo & ~0xffff) | (r & 0xffff);
  hi = (hi & ~0xf0000) | (r & 0xf0000);
  return [lo | 0, hi | 0];
}

/**
 * The effective limit of an expand-down data segment (valid offsets limit+1 .. upper, SDM vol. 3A
 * §5.3; upper = 0xFFFFFFFF with B = 1, else 0xFFFF) raised so that no valid offset reaches the
 * monitor's structures: the offsets cover linear base+limit+1 .. base+upper (mod 2^32), so the
 * limit can only cut the bottom of that range. A range that wraps past 4 GiB keeps its part from
 * linear 0; one whose top (base + upper) lies above SEGMENT_CLIP keeps no offset at all.
 */
export function expandDownLimit(base: number, limit: number, upper: number): number {
  if (limit >= upper) return limit;
  const top = (base + upper) % 0x100000000;
  if (top > SEGMENT_CLIP) return upper;
  return upper - limit <= top + 1 ? limit : upper - (top + 1);
}
