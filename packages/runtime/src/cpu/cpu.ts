// The IA-32 processor: architectural state, memory access through segmentation (and paging,
// paging.ts), the decoded-instruction cache, the execution loop and exception delivery.
// Instruction semantics live in ops/ (one file per family), registered by form name in
// handlers.ts; this file knows no instruction.
import { Decoder, Instruction, OpKind, Reg, classOf } from '@ringshift/decoder';
import { Block, Decoded, MAX_BLOCK, type BlockFn } from './blocks';
import { JIT_THRESHOLD, compileBlock } from './jit';
import { EventKind, GpaAccess, MonitorExit, proceed, type Exit, type GuestPhysicalMap, type Interceptor } from './intercept';
import { WATCH_DECODE_CACHE, type PhysicalMemory } from '../machine/memory';
import * as F from './eflags';
import { Fault, HAS_ERROR_CODE, Vector } from './fault';
import { LazyOp, lazyAF, lazyCF, lazyOF, lazyPF, lazySF, lazyZF, type LazyState } from './lazy-flags';
import { GPR_INDEX, GPR_SHIFT, GPR_WIDTH, SEG_INDEX, SegReg } from './registers';
import { Tlb, tlbOf } from './tlb';
import { deliverException } from './interrupts';

/** I/O port space (one per machine, shared by every backend). */
export interface PortBus {
  read(port: number, size: 1 | 2 | 4): number;
  write(port: number, size: 1 | 2 | 4, value: number): void;
}

export type Handler = (cpu: Cpu, ins: Instruction) => void;

/** Why run() returned. 'exit': a monitor's interceptor asked for an exit (Cpu.lastExit). */
export type StopReason = 'budget' | 'halted' | 'shutdown' | 'stopped' | 'exit';

/** A handler for bytes that do not decode and forms this CPU does not implement. */
const raiseUD: Handler = () => {
  throw new Fault(Vector.UD);
};

// Descriptor-cache attribute bits kept per segment register (from the descriptor's access
// byte and flags, SDM vol. 3A §3.4.5): low byte = access byte, bit 14 = D/B, bit 15 = G.
export const ATTR_P = 0x80;
/** Cpu.codeRoleAt: the instruction retires unseen by the guest (a monitor's plumbing). */
export const CODE_PLUMBING = 1;
/** Cpu.codeRoleAt: the monitor's instruction hook sees the instruction before it runs. */
export const CODE_WATCHED = 2;
export const ATTR_S = 0x10;
export const ATTR_DB = 1 << 14;
export const ATTR_G = 1 << 15;
export const ATTR_CODE = 0x08;

const OP_REGISTER = OpKind.Register;
const GPA_READ = GpaAccess.READ, GPA_WRITE = GpaAccess.WRITE, GPA_FETCH = GpaAccess.FETCH;
const OP_MEMORY = OpKind.Memory;

export class Cpu implements LazyState {
  readonly mem: PhysicalMemory;
  ports: PortBus;

  /** EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI. */
  readonly regs = new Int32Array(8);
  /** Offset of the current instruction in CS. */
  eip = 0;
  /** Offset of the next instruction; branches write it. */
  nextEip = 0;

  /** EFLAGS except the status flags named in lazyMask, which come from the lazy state. */
  flagsStored = F.FIXED_ONE;
  lazyMask = 0;
  lazyOp = 0;
  lazyDst = 0;
  lazySrc = 0;
  lazyRes = 0;
  lazySize = 32;
  lazyCarry = 0;

  // Segment registers: visible selector and the hidden descriptor cache.
  readonly sel = new Uint16Array(6);
  readonly segBase = new Int32Array(6);
  /** Effective limit in bytes (granularity applied), unsigned in an Int32Array. */
  readonly segLimit = new Int32Array(6);
  readonly segAttr = new Uint16Array(6);

  cr0 = 0x60000010; // CD, NW, ET set at reset (SDM vol. 3A §9.1.1, table 9-1)
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  /** IA32_EFER (MSR C000_0080h): NXE (bit 11) enables execute-disable with PAE. */
  efer = 0;
  /** PDPTE0-3 registers (low, high dwords) of PAE paging, loaded by MOV to CR0/CR3/CR4 (paging.ts, SDM vol. 3A §4.4.1). */
  readonly pdpte = new Int32Array(8);
  readonly dr = new Int32Array(8);
  gdtrBase = 0;
  gdtrLimit = 0xffff;
  idtrBase = 0;
  idtrLimit = 0x3ff;
  ldtrSel = 0;
  ldtrBase = 0;
  ldtrLimit = 0;
  trSel = 0;
  trBase = 0;
  trLimit = 0;
  trAttr = 0;
  cpl = 0;

  halted = false;
  /** Interrupts are inhibited for one instruction after STI and MOV/POP SS (SDM vol. 3A §6.8.3). */
  inhibitInterrupts = false;
  /** Instructions retired since creation. */
  retired = 0;
  /**
   * Of `retired`, those the guest must not see retire: a rewrite monitor's patch jumps and stub
   * plumbing (Decoded.plumbing). Guest time (machine/clock.ts), hence the TSC and the timers,
   * follows `retired - plumbingRetired`, as a VMM with TSC offsetting hides its own time.
   */
  plumbingRetired = 0;
  /**
   * Set by a monitor before the run: the role of the instruction whose first byte is at this
   * physical address, CODE_PLUMBING and/or CODE_WATCHED (0: ordinary code). Asked once per
   * decode (the decode cache is keyed by physical address).
   */
  codeRoleAt: ((phys: number) => number) | null = null;
  /** Time-stamp counter (virtual: advanced by the machine's clock). */
  tsc = 0n;

  /** Pending maskable interrupt source: returns a vector or -1 (the PIC). */
  interruptController: { pending(): number; acknowledge(): number } | null = null;

  /**
   * The monitor's interception seam (intercept.ts). Null for the native backend, which then pays
   * one null check per hook site.
   */
  interceptor: Interceptor | null = null;
  /**
   * Guest-physical -> host-physical translation (intercept.ts: nested paging, the hvm backend's
   * EPT); null: guest-physical is host-physical.
   */
  guestPhysical: GuestPhysicalMap | null = null;
  /** The exit that ended the last run() with 'exit'. */
  lastExit: Exit | null = null;

  /** Set when a triple fault shuts the processor down. */
  shutdownReason = '';
  /** An exception that occurs while delivering another (for #DF / shutdown, SDM vol. 3A §6.15). */
  deliveringVector = -1;

  /** Translations cached by linear page (tlb.ts); the paging ops flush it as the SDM requires. */
  readonly tlb: Tlb;

  private readonly handlers: readonly (Handler | undefined)[];
  private readonly cache = new Map<number, (Decoded | undefined)[]>();
  private stopRequested = false;

  constructor(mem: PhysicalMemory, ports: PortBus, handlers: readonly (Handler | undefined)[]) {
    this.mem = mem;
    this.ports = ports;
    this.handlers = handlers;
    this.tlb = tlbOf(this);
    mem.onWrite = (page) => this.invalidatePage(page);
    mem.onMmio = () => { this.blockBreaks++; };
    this.reset();
  }

  /** Power-on state (SDM vol. 3A §9.1.1, table 9-1), except that CS:EIP = F000:FFF0 is left to the loader. */
  reset(): void {
    this.regs.fill(0);
    this.regs[2] = 0x633; // EDX after reset: family/model/stepping, as CPUID.1:EAX reports (SDM vol. 3A §9.1.4)
    this.eip = 0xfff0;
    this.flagsStored = F.FIXED_ONE;
    this.lazyMask = 0;
    for (let s = 0; s < 6; s++) {
      this.sel[s] = 0;
      this.segBase[s] = 0;
      this.segLimit[s] = 0xffff;
      this.segAttr[s] = ATTR_P | ATTR_S | 0x2 | (s === SegReg.CS ? ATTR_CODE : 0);
    }
    this.sel[SegReg.CS] = 0xf000;
    this.segBase[SegReg.CS] = 0xffff0000 | 0;
    this.cr0 = 0x60000010;
    this.cr2 = this.cr3 = this.cr4 = 0;
    this.cpl = 0;
    this.halted = false;
    this.inhibitInterrupts = false;
    this.cache.clear();
    this.fSlots = null;
    this.chained = false;
    this.tlb?.flushAll();
  }

  // ---- Modes -------------------------------------------------------------------------------

  get protectedMode(): boolean {
    return (this.cr0 & 1) !== 0;
  }

  get paging(): boolean {
    return (this.cr0 & 0x80000001) === (0x80000001 | 0);
  }

  get v86(): boolean {
    return (this.flagsStored & F.VM) !== 0;
  }

  /** Default operand and address size of the code segment. */
  get codeBits(): 16 | 32 {
    return (this.cr0 & 1) !== 0 && (this.flagsStored & F.VM) === 0 && (this.segAttr[SegReg.CS]! & ATTR_DB) !== 0 ? 32 : 16;
  }

  /** Stack address size (SS.B). */
  get stackBits(): 16 | 32 {
    return this.protectedMode && !this.v86 && (this.segAttr[SegReg.SS]! & ATTR_DB) !== 0 ? 32 : 16;
  }

  // ---- Flags -------------------------------------------------------------------------------

  /** The full EFLAGS value. */
  get eflags(): number {
    const m = this.lazyMask;
    if (m === 0) return this.flagsStored;
    let v = this.flagsStored & ~m;
    if (m & F.CF && lazyCF(this)) v |= F.CF;
    if (m & F.PF && lazyPF(this)) v |= F.PF;
    if (m & F.AF && lazyAF(this)) v |= F.AF;
    if (m & F.ZF && lazyZF(this)) v |= F.ZF;
    if (m & F.SF && lazySF(this)) v |= F.SF;
    if (m & F.OF && lazyOF(this)) v |= F.OF;
    return v;
  }

  /** Sets EFLAGS as stored (no privilege rules: POPF/IRET apply those before calling). */
  set eflags(v: number) {
    this.flagsStored = (v & F.IMPLEMENTED) | F.FIXED_ONE;
    this.lazyMask = 0;
  }

  /** Materialises the lazy flags so that individual bits can be changed. */
  private materialize(): void {
    if (this.lazyMask !== 0) {
      this.flagsStored = this.eflags;
      this.lazyMask = 0;
    }
  }

  /** Sets or clears the given flag bits (status or system). */
  setFlag(bits: number, on: boolean): void {
    this.materialize();
    this.flagsStored = on ? this.flagsStored | bits : this.flagsStored & ~bits;
  }

  /** Replaces the bits in `bits` with those of `values`. */
  setFlagBits(bits: number, values: number): void {
    this.materialize();
    this.flagsStored = (this.flagsStored & ~bits) | (values & bits);
  }

  getFlag(bit: number): boolean {
    if (this.lazyMask & bit) {
      switch (bit) {
        case F.CF: return lazyCF(this);
        case F.ZF: return lazyZF(this);
        case F.SF: return lazySF(this);
        case F.OF: return lazyOF(this);
        case F.PF: return lazyPF(this);
        case F.AF: return lazyAF(this);
      }
    }
    return (this.flagsStored & bit) !== 0;
  }

  /** Records an arithmetic result for lazy flags. INC/DEC keep CF as it was. */
  setLazy(op: number, dst: number, src: number, res: number, size: number, carry = 0): void {
    if (op === LazyOp.Inc || op === LazyOp.Dec) {
      // Only CF survives from the previous result; the other status flags are about to be
      // replaced, so there is no need to materialise them.
      if (this.lazyMask & F.CF) this.flagsStored = (this.flagsStored & ~F.CF) | (lazyCF(this) ? F.CF : 0);
      this.lazyMask = F.STATUS & ~F.CF;
    } else {
      this.lazyMask = F.STATUS;
    }
    this.lazyOp = op;
    this.lazyDst = dst;
    this.lazySrc = src;
    this.lazyRes = res;
    this.lazySize = size;
    this.lazyCarry = carry;
  }

  // ---- General registers -------------------------------------------------------------------

  readReg(r: number): number {
    const i = GPR_INDEX[r]!;
    switch (GPR_WIDTH[r]) {
      case 32: return this.regs[i]!;
      case 16: return this.regs[i]! & 0xffff;
      case 8: return (this.regs[i]! >>> GPR_SHIFT[r]!) & 0xff;
    }
    const s = SEG_INDEX[r]!;
    if (s >= 0) return this.sel[s]!;
    throw new Error(`readReg: register ${r} is not a general or segment register`);
  }

  writeReg(r: number, v: number): void {
    const i = GPR_INDEX[r]!;
    switch (GPR_WIDTH[r]) {
      case 32: this.regs[i] = v; return;
      case 16: this.regs[i] = (this.regs[i]! & ~0xffff) | (v & 0xffff); return;
      case 8: {
        const sh = GPR_SHIFT[r]!;
        this.regs[i] = (this.regs[i]! & ~(0xff << sh)) | ((v & 0xff) << sh);
        return;
      }
    }
    throw new Error(`writeReg: register ${r} is not a general register`);
  }

  // ---- Memory ------------------------------------------------------------------------------

  /**
   * Linear address of seg:offset for an access of `size` bytes, after the segment checks of
   * SDM vol. 3A §5.3 (limit, expand-down) and §5.5-5.6 (type): #GP(0), or #SS(0) for SS.
   */
  linear(seg: number, offset: number, size: number, write: boolean): number {
    const attr = this.segAttr[seg]!;
    // The common case first: a present, writable, expand-up data segment passes every check of
    // every mode but the limit's.
    if ((attr & (ATTR_P | ATTR_CODE | 0x4 | 0x2)) === (ATTR_P | 0x2) && (offset >>> 0) + size - 1 <= (this.segLimit[seg]! >>> 0)) {
      return (this.segBase[seg]! + offset) | 0;
    }
    return this.linearChecked(seg, offset, size, write, attr);
  }

  private linearChecked(seg: number, offset: number, size: number, write: boolean, attr: number): number {
    const limit = this.segLimit[seg]! >>> 0;
    const fail = seg === SegReg.SS ? Vector.SS : Vector.GP;
    if (this.protectedMode && !this.v86) {
      if ((attr & ATTR_P) === 0) throw new Fault(fail, 0); // null selector or not present
      if (attr & ATTR_CODE) {
        if (write || (attr & 0x2) === 0 && seg !== SegReg.CS) throw new Fault(fail, 0);
      } else if (write && (attr & 0x2) === 0) {
        throw new Fault(fail, 0);
      }
    }
    const last = (offset >>> 0) + size - 1;
    if ((attr & (ATTR_CODE | 0x4)) === 0x4) {
      // Expand-down data segment: valid offsets are limit+1 .. 0xFFFF or 0xFFFFFFFF (SDM vol. 3A §5.3).
      const upper = attr & ATTR_DB ? 0xffffffff : 0xffff;
      if ((offset >>> 0) <= limit || last > upper) throw new Fault(fail, 0);
    } else if (last > limit) {
      throw new Fault(fail, 0);
    }
    return (this.segBase[seg]! + offset) | 0;
  }

  /** Physical address for a linear address (identity without paging). */
  phys(lin: number, write: boolean, fetch = false): number {
    if ((this.cr0 & 0x80000000) === 0) {
      const g = this.guestPhysical;
      return g === null ? lin >>> 0 : g.translate(lin >>> 0, write ? GPA_WRITE : fetch ? GPA_FETCH : GPA_READ, lin >>> 0);
    }
    return this.tlb.translate(this, lin >>> 0, write, this.cpl === 3, fetch);
  }

  read8(seg: number, off: number): number {
    return this.mem.read8(this.phys(this.linear(seg, off, 1, false), false));
  }

  read16(seg: number, off: number): number {
    const lin = this.linear(seg, off, 2, false);
    if ((lin & 0xfff) <= 0xffe) return this.mem.read16(this.phys(lin, false));
    return this.mem.read8(this.phys(lin, false)) | (this.mem.read8(this.phys(lin + 1, false)) << 8);
  }

  read32(seg: number, off: number): number {
    const lin = this.linear(seg, off, 4, false);
    if ((lin & 0xfff) <= 0xffc) return this.mem.read32(this.phys(lin, false));
    let v = 0;
    for (let i = 0; i < 4; i++) v |= this.mem.read8(this.phys(lin + i, false)) << (8 * i);
    return v;
  }

  write8(seg: number, off: number, v: number): void {
    this.mem.write8(this.phys(this.linear(seg, off, 1, true), true), v);
  }

  write16(seg: number, off: number, v: number): void {
    const lin = this.linear(seg, off, 2, true);
    if ((lin & 0xfff) <= 0xffe) { this.mem.write16(this.phys(lin, true), v); return; }
    // Translate both pages before writing either byte, so a page fault leaves memory unchanged.
    const a = this.phys(lin, true), b = this.phys(lin + 1, true);
    this.mem.write8(a, v);
    this.mem.write8(b, v >>> 8);
  }

  write32(seg: number, off: number, v: number): void {
    const lin = this.linear(seg, off, 4, true);
    if ((lin & 0xfff) <= 0xffc) { this.mem.write32(this.phys(lin, true), v); return; }
    const p = [0, 1, 2, 3].map((i) => this.phys(lin + i, true));
    for (let i = 0; i < 4; i++) this.mem.write8(p[i]!, v >>> (8 * i));
  }

  readSized(seg: number, off: number, size: number): number {
    return size === 32 ? this.read32(seg, off) : size === 16 ? this.read16(seg, off) : this.read8(seg, off);
  }

  // Read-modify-write: the destination of ADD/OR/ADC/SBB/AND/SUB/XOR/INC/DEC/NEG/NOT m, the
  // shifts and rotates (count 0 included), SHLD/SHRD, BTS/BTR/BTC, XADD, XCHG, CMPXCHG,
  // CMPXCHG8B and ARPL is read with write intent, as the processor does: the segment is checked
  // for writing and every page the access touches is translated for writing (#PF error code
  // W = 1, SDM vol. 3A §4.7; dirty bits set, §4.8) before a byte is read. The write that follows
  // makes the same checks and hits the TLB entries this filled, so it cannot fault: the
  // instruction's flags, registers and memory change together or not at all, as faults are
  // precise (§6.5).

  readRmw8(seg: number, off: number): number {
    return this.mem.read8(this.phys(this.linear(seg, off, 1, true), true));
  }

  readRmw16(seg: number, off: number): number {
    const lin = this.linear(seg, off, 2, true);
    if ((lin & 0xfff) <= 0xffe) return this.mem.read16(this.phys(lin, true));
    const a = this.phys(lin, true), b = this.phys(lin + 1, true);
    return this.mem.read8(a) | (this.mem.read8(b) << 8);
  }

  readRmw32(seg: number, off: number): number {
    const lin = this.linear(seg, off, 4, true);
    if ((lin & 0xfff) <= 0xffc) return this.mem.read32(this.phys(lin, true));
    // Across a page: both pages checked for writing before either is read.
    const first = 4096 - (lin & 0xfff);
    const a = this.phys(lin, true), b = this.phys(lin + first, true);
    let v = 0;
    for (let i = 0; i < 4; i++) v |= this.mem.read8(i < first ? a + i : b + i - first) << (8 * i);
    return v;
  }

  readRmwSized(seg: number, off: number, size: number): number {
    return size === 32 ? this.readRmw32(seg, off) : size === 16 ? this.readRmw16(seg, off) : this.readRmw8(seg, off);
  }

  writeSized(seg: number, off: number, size: number, v: number): void {
    if (size === 32) this.write32(seg, off, v);
    else if (size === 16) this.write16(seg, off, v);
    else this.write8(seg, off, v);
  }

  /** Effective address (offset) of the instruction's memory operand, wrapped to the address size. */
  effectiveAddress(ins: Instruction): number {
    let ea = ins.memDisp;
    if (ins.memBase !== 0) ea += this.readReg(ins.memBase);
    if (ins.memIndex !== 0) ea += this.readReg(ins.memIndex) * ins.memScale;
    return ins.addressSize === 16 ? ea & 0xffff : ea | 0;
  }

  /** Segment register index of the memory operand. */
  segmentOf(ins: Instruction): number {
    return SEG_INDEX[ins.memSegment]!;
  }

  /** Value of operand `n` at `size` bits (register, memory or immediate). */
  readOp(ins: Instruction, n: number, size: number): number {
    const k = ins.opKinds[n]!;
    if (k === OP_REGISTER) return this.readReg(ins.opRegs[n]!);
    if (k === OP_MEMORY) return this.readSized(this.segmentOf(ins), this.effectiveAddress(ins), size);
    // Immediates: the decoder keeps sign-extended ones at their operand width already.
    if (k === OpKind.Immediate8_2nd) return ins.imm2;
    return ins.imm | 0;
  }

  /** readOp() of an operand the instruction then writes: a memory operand is read with write intent (readRmw32). */
  readOpRmw(ins: Instruction, n: number, size: number): number {
    const k = ins.opKinds[n]!;
    if (k === OP_REGISTER) return this.readReg(ins.opRegs[n]!);
    if (k === OP_MEMORY) return this.readRmwSized(this.segmentOf(ins), this.effectiveAddress(ins), size);
    return this.readOp(ins, n, size);
  }

  writeOp(ins: Instruction, n: number, size: number, v: number): void {
    if (ins.opKinds[n] === OP_REGISTER) this.writeReg(ins.opRegs[n]!, v);
    else this.writeSized(this.segmentOf(ins), this.effectiveAddress(ins), size, v);
  }

  // ---- Stack -------------------------------------------------------------------------------

  push(size: number, v: number): void {
    const bytes = size >>> 3;
    if (this.stackBits === 32) {
      const esp = (this.regs[4]! - bytes) | 0;
      this.writeSized(SegReg.SS, esp, size, v);
      this.regs[4] = esp;
    } else {
      const sp = (this.regs[4]! - bytes) & 0xffff;
      this.writeSized(SegReg.SS, sp, size, v);
      this.regs[4] = (this.regs[4]! & ~0xffff) | sp;
    }
  }

  /** push(32, v) (the compiled blocks' PUSH). */
  push32(v: number): void {
    if ((this.segAttr[SegReg.SS]! & ATTR_DB) !== 0 && (this.cr0 & 1) !== 0 && (this.flagsStored & F.VM) === 0) {
      const esp = (this.regs[4]! - 4) | 0;
      this.write32(SegReg.SS, esp, v);
      this.regs[4] = esp;
    } else {
      this.push(32, v);
    }
  }

  /** pop(32) (the compiled blocks' POP). */
  pop32(): number {
    if ((this.segAttr[SegReg.SS]! & ATTR_DB) !== 0 && (this.cr0 & 1) !== 0 && (this.flagsStored & F.VM) === 0) {
      const v = this.read32(SegReg.SS, this.regs[4]!);
      this.regs[4] = (this.regs[4]! + 4) | 0;
      return v;
    }
    return this.pop(32);
  }

  pop(size: number): number {
    const bytes = size >>> 3;
    if (this.stackBits === 32) {
      const v = this.readSized(SegReg.SS, this.regs[4]!, size);
      this.regs[4] = (this.regs[4]! + bytes) | 0;
      return v;
    }
    const sp = this.regs[4]! & 0xffff;
    const v = this.readSized(SegReg.SS, sp, size);
    this.regs[4] = (this.regs[4]! & ~0xffff) | ((sp + bytes) & 0xffff);
    return v;
  }

  // ---- Instruction cache and execution ------------------------------------------------------
  //
  // The cache (blocks.ts): per physical page of RAM, a dense array of Decoded indexed by
  // (offset in page, code size); an entry is used only for the EIP it was decoded at (a branch
  // target is absolute). Any write to a cached page drops the page (PhysicalMemory.watched).

  private invalidatePage(page: number): void {
    this.cache.delete(page);
    this.mem.watched[page] = this.mem.watched[page]! & ~WATCH_DECODE_CACHE;
    this.fSlots = null;
    this.blockBreaks++;
  }

  /** Drops every decoded instruction (mode switches change how bytes decode). */
  flushDecodeCache(): void {
    for (const page of this.cache.keys()) this.mem.watched[page] = this.mem.watched[page]! & ~WATCH_DECODE_CACHE;
    this.cache.clear();
    this.fSlots = null;
    this.blockBreaks++;
  }

  /**
   * Bumped by whatever must end a block early (blocks.ts): a write to a cached code page, a
   * flush, an access to a memory-mapped device, stop(). The block loop compares it after every
   * instruction.
   */
  blockBreaks = 0;
  /** Blocks entered this many times are compiled (jit.ts); Infinity: never. */
  jitThreshold = JIT_THRESHOLD;

  private scratch = new Uint8Array(16);
  private readonly decoder16 = new Decoder(16, new Uint8Array(0));
  private readonly decoder32 = new Decoder(32, new Uint8Array(0));

  // The page the last instruction came from: while CS, CPL, the TLB and the page's decoded
  // instructions stay as they were, the next fetch from the same linear page skips the segment
  // check, the translation and the cache lookup.
  private fLinPage = -1;
  private fSlots: (Decoded | undefined)[] | null = null;
  private fEpoch = -1;
  private fCpl = -1;
  private fCsBase = 0;
  private fBits = 0;
  private fPhysPage = 0;

  /** The decoded instruction at CS:EIP, from the cache keyed by physical address and code size. */
  fetch(): Instruction {
    return this.lookup().ins;
  }

  private lookup(): Decoded {
    const eip = this.eip;
    const csBase = this.segBase[SegReg.CS]!;
    const bits = this.codeBits;
    const lin = (csBase + eip) | 0;
    if (
      this.fSlots !== null && (lin >>> 12) === this.fLinPage && this.fEpoch === this.tlb.epoch && this.fCpl === this.cpl &&
      this.fCsBase === csBase && this.fBits === bits && (eip >>> 0) + 15 <= (this.segLimit[SegReg.CS]! >>> 0)
    ) {
      const hit = this.fSlots[((lin & 0xfff) << 1) | (bits === 32 ? 1 : 0)];
      if (hit !== undefined && (hit.ins.ip | 0) === (eip | 0)) return hit;
    }
    return this.lookupSlow(bits);
  }

  private lookupSlow(bits: 16 | 32): Decoded {
    const lin = this.linear(SegReg.CS, this.eip, 1, false);
    const phys = this.phys(lin, false, true);
    const page = phys >>> 12;
    // The page of the last fetch (after, say, an INVLPG of another page) needs no map lookup.
    let slots = this.fSlots !== null && page === this.fPhysPage ? this.fSlots : this.cache.get(page);
    const key = ((phys & 0xfff) << 1) | (bits === 32 ? 1 : 0);
    if (slots !== undefined) {
      this.remember(lin, page, slots, bits);
      const hit = slots[key];
      if (hit !== undefined && (hit.ins.ip | 0) === (this.eip | 0)) return hit;
    }
    const ins = this.decodeRam(phys, this.eip, bits);
    if (ins === null) return this.decoded(this.decodeGathered(bits), phys); // not cached
    if (!slots) {
      // A dense array of all 2 x 4096 keys: filling sparse indices would turn it into a dictionary.
      slots = new Array<Decoded | undefined>(8192).fill(undefined);
      this.cache.set(page, slots);
      this.mem.watched[page] = this.mem.watched[page]! | WATCH_DECODE_CACHE;
      this.remember(lin, page, slots, bits);
    }
    const d = this.decoded(ins, phys);
    slots[key] = d;
    return d;
  }

  private remember(lin: number, page: number, slots: (Decoded | undefined)[], bits: number): void {
    this.fLinPage = lin >>> 12;
    this.fSlots = slots;
    this.fEpoch = this.tlb.epoch;
    this.fCpl = this.cpl;
    this.fCsBase = this.segBase[SegReg.CS]!;
    this.fBits = bits;
    this.fPhysPage = page;
  }

  /** Decodes at `phys` when all 15 bytes an instruction may take are RAM on the same page; else null. */
  private decodeRam(phys: number, eip: number, bits: 16 | 32): Instruction | null {
    if (4096 - (phys & 0xfff) < 15 || !this.mem.isRam(phys) || !this.mem.isRam(phys + 14)) return null;
    const ins = new Instruction();
    const d = bits === 32 ? this.decoder32 : this.decoder16;
    d.seek(this.mem.u8, eip, phys);
    d.decodeAt(ins);
    return ins;
  }

  /**
   * Near the end of a page or in MMIO: gathers the bytes through translation one by one,
   * stopping at the first unmapped byte (which faults only if the instruction needs it).
   * Instructions that cross a page boundary are not cached: either page may change.
   */
  private decodeGathered(bits: 16 | 32): Instruction {
    const ins = new Instruction();
    let n = 0;
    for (; n < 15; n++) {
      try {
        const l = this.linear(SegReg.CS, this.eip + n, 1, false);
        this.scratch[n] = this.mem.read8(this.phys(l, false, true));
      } catch (e) {
        if (n === 0) throw e;
        break;
      }
    }
    new Decoder(bits, this.scratch.subarray(0, n), this.eip, 0).decodeAt(ins);
    if (!ins.valid && ins.invalid === 1 /* truncated */ && n < 15) {
      // The instruction runs into an unmapped page: fetching its next byte faults.
      this.phys(this.linear(SegReg.CS, this.eip + n, 1, false), false, true);
    }
    return ins;
  }

  private decoded(ins: Instruction, phys: number): Decoded {
    const h = ins.valid ? this.handlers[ins.form] : undefined;
    const d = new Decoded(ins, h ?? raiseUD, h !== undefined);
    if (this.codeRoleAt !== null) {
      const role = this.codeRoleAt(phys >>> 0);
      d.plumbing = (role & CODE_PLUMBING) !== 0;
      d.watched = (role & CODE_WATCHED) !== 0;
    }
    return d;
  }

  /**
   * The block that starts at `d` (the instruction at CS:EIP, just looked up): `d` and the
   * instructions after it on the same page while each is straight, or null when `d` is not
   * cached (it crosses a page or is not in RAM).
   */
  private blockAt(d: Decoded): Block | null {
    const slots = this.fSlots;
    const bits = this.fBits;
    const off0 = (this.segBase[SegReg.CS]! + this.eip) & 0xfff;
    const b32 = bits === 32 ? 1 : 0;
    if (slots === null || slots[(off0 << 1) | b32] !== d || d.plumbing || d.watched) return null;
    const run = [d];
    const eip0 = this.eip;
    let size = d.ins.length;
    let last = d;
    while (last.straight && run.length < MAX_BLOCK) {
      const off = off0 + size;
      // The next instruction might cross the page (or, in 16-bit code, wrap IP): leave it to a
      // single step.
      if (off + 15 > 4096 || (bits === 16 && (eip0 & 0xffff) + size + 15 > 0xffff)) break;
      const eip = eip0 + size;
      const key = (off << 1) | b32;
      let next = slots[key];
      if (next === undefined || (next.ins.ip | 0) !== (eip | 0)) {
        const phys = this.fPhysPage * 4096 + off;
        const ins = this.decodeRam(phys, eip, bits as 16 | 32);
        if (ins === null) break;
        next = this.decoded(ins, phys);
        slots[key] = next;
      }
      if (next.plumbing || next.watched) break;
      run.push(next);
      size += next.ins.length;
      last = next;
    }
    const b = new Block(run);
    d.block = b;
    return b;
  }

  /** The handler the CPU runs for `ins` (a monitor that emulates an instruction after an exit calls it). */
  handlerOf(ins: Instruction): Handler {
    return (ins.valid ? this.handlers[ins.form] : undefined) ?? raiseUD;
  }

  /** Executes one instruction (or delivers a pending interrupt). */
  step(): void {
    if (this.halted) return;
    let d: Decoded;
    try {
      d = this.lookup();
    } catch (e) {
      if (!(e instanceof Fault)) throw e;
      this.raise(e.vector, e.errorCode, false);
      return;
    }
    this.execute(d);
  }

  /** Executes the instruction at CS:EIP, `d`, with every per-instruction rule. */
  private execute(d: Decoded): void {
    const ins = d.ins;
    this.chained = false;
    try {
      this.nextEip = this.eip + ins.length;
      if (ins.bits === 16) this.nextEip &= 0xffff;
      const inhibit = this.inhibitInterrupts;
      const m = this.interceptor;
      if (m !== null && (d.sensitive || d.watched) && !proceed(m.instruction(this, ins, classOf(ins.form)))) {
        // HANDLED: the monitor emulated it; the instruction retires, and with it ends the
        // interrupt shadow of the one before (an STI or MOV SS before an exiting IN, say).
        this.eip = this.nextEip;
        this.retired++;
        if (d.plumbing) this.plumbingRetired++;
        if (inhibit) this.inhibitInterrupts = false;
        return;
      }
      d.exec(this, ins);
      this.eip = this.nextEip;
      this.retired++;
      if (d.plumbing) this.plumbingRetired++;
      if (inhibit) this.inhibitInterrupts = false;
    } catch (e) {
      if (!(e instanceof Fault)) throw e;
      this.raise(e.vector, e.errorCode, false);
    }
  }

  /**
   * Runs the block at CS:EIP, at most `left` instructions of it; returns how many steps that
   * took (retired instructions, plus one for a fault). Called only when no interrupt shadow or
   * single-step trap is pending (they need the per-instruction path).
   */
  private runBlock(left: number): number {
    let d: Decoded | undefined;
    const eip = this.eip;
    if (this.chained) {
      // The last block was compiled code that ran to its end: nothing it did can have changed
      // CS, CPL, the code size, the TLB or the cache (blocks.ts), so the page is the same if
      // the linear page is.
      const lin = (this.fCsBase + eip) | 0;
      if ((lin >>> 12) === this.fLinPage && (eip >>> 0) + 15 <= (this.segLimit[SegReg.CS]! >>> 0)) {
        d = this.fSlots![((lin & 0xfff) << 1) | (this.fBits === 32 ? 1 : 0)];
        if (d !== undefined && (d.ins.ip | 0) !== (eip | 0)) d = undefined;
        // Link the last block to this one (same page: both go when the page is written).
        const last = this.lastBlock!;
        if (d !== undefined && d.block !== null) {
          if (last.next0 === null) { last.next0 = d.block; last.nextEip0 = eip; }
          else if (last.next1 === null && last.nextEip0 !== eip) { last.next1 = d.block; last.nextEip1 = eip; }
        }
      }
      this.chained = false;
    }
    if (d === undefined) {
      try {
        d = this.lookup();
      } catch (e) {
        if (!(e instanceof Fault)) throw e;
        this.raise(e.vector, e.errorCode, false);
        return 1;
      }
    }
    const b = d.block ?? this.blockAt(d);
    // Every byte of the block within the CS limit, or instruction by instruction.
    if (b === null || b.length === 1 || left < 2 || (eip >>> 0) + b.bytes - 1 > (this.segLimit[SegReg.CS]! >>> 0)) {
      this.execute(d);
      return 1;
    }
    if (left >= b.length && b.fn !== undefined) {
      if (b.fn === null && ++b.runs >= this.jitThreshold) b.fn = compileBlock(b);
      if (b.fn) return this.runCompiled(b, b.fn, left);
    }
    const count = b.length <= left ? b.length : left;
    const execs = b.execs, inss = b.inss, offs = b.offs;
    const eip0 = this.eip;
    const breaks = this.blockBreaks;
    let j = 0;
    try {
      for (; j < count - 1; j++) {
        this.eip = eip0 + offs[j]!;
        execs[j]!(this, inss[j]!);
        if (this.blockBreaks !== breaks) {
          this.eip = eip0 + offs[j + 1]!;
          this.retired += j + 1;
          return j + 1;
        }
      }
    } catch (e) {
      this.retired += j;
      if (!(e instanceof Fault)) throw e;
      this.raise(e.vector, e.errorCode, false);
      return j + 1;
    }
    this.retired += j;
    this.eip = eip0 + offs[j]!;
    this.execute(b.decoded[j]!);
    return count;
  }

  /** Runs a compiled block (jit.ts), which keeps EIP and the retired count itself. */
  private runCompiled(b: Block, fn: BlockFn, left: number): number {
    let total = 0;
    for (;;) {
      const breaks = this.blockBreaks;
      let done: number;
      try {
        done = fn(this, left - total, b.execs, b.inss);
      } catch (e) {
        this.retired += this.faultSteps - 1;
        if (!(e instanceof Fault)) throw e;
        this.raise(e.vector, e.errorCode, false);
        return total + this.faultSteps;
      }
      total += done;
      if (b.covers !== b.length) {
        if (done < b.covers || this.blockBreaks !== breaks) return total;
        // The function stopped before a last instruction it does not cover.
        this.execute(b.decoded[done]!);
        return total + 1;
      }
      if (this.blockBreaks !== breaks) return total;
      // Ran to its end: the fetch context is as it was (see runBlock). Go on to a linked block
      // on the same page without going back to the loop, whose checks between blocks (interrupts,
      // stop, shutdown, halt, shadow, TF) nothing a straight instruction or a covered jump does
      // can change.
      const eip = this.eip;
      const next = b.nextEip0 === eip ? b.next0 : b.nextEip1 === eip ? b.next1 : null;
      if (next === null || !next.fn || left - total < next.length || (eip >>> 0) + next.bytes - 1 > (this.segLimit[SegReg.CS]! >>> 0)) {
        this.chained = true;
        this.lastBlock = b;
        return total;
      }
      b = next;
      fn = next.fn;
    }
  }

  /** Set by a compiled block before it can fault: the steps it will have taken if it does. */
  faultSteps = 0;
  /** The last step was a compiled block that ran to its end (runBlock's shortcut). */
  private chained = false;
  /** That block, to link to the block that follows it. */
  private lastBlock: Block | null = null;

  /** Delivers an exception or interrupt at the current instruction (faults restart it). */
  raise(vector: number, errorCode: number, software: boolean, nextEip = this.eip, external = false): void {
    this.chained = false;
    if (errorCode < 0 && HAS_ERROR_CODE.has(vector) && !software) errorCode = 0;
    const m = this.interceptor;
    if (m !== null) {
      // The interruption type VT-x would report (SDM vol. 3C §25.9.2): INT3/INTO are software
      // exceptions, INT n a software interrupt.
      const kind = external ? EventKind.EXTERNAL_INTERRUPT
        : !software ? EventKind.HARDWARE_EXCEPTION
        : vector === Vector.BP || vector === Vector.OF ? EventKind.SOFTWARE_EXCEPTION
        : EventKind.SOFTWARE_INTERRUPT;
      if (!proceed(m.exception(this, { vector, errorCode: software ? -1 : errorCode, kind, nextEip }))) return;
    }
    deliverException(this, vector, errorCode, software, nextEip);
  }

  /** Accepts a maskable interrupt if IF is set and nothing inhibits it (SDM vol. 3A §6.8.1). */
  private pollInterrupt(): void {
    const pic = this.interruptController;
    if (!pic || this.inhibitInterrupts || (this.flagsStored & F.IF) === 0) return;
    if (pic.pending() < 0) return;
    const vector = pic.acknowledge();
    this.halted = false;
    this.raise(vector, -1, false, this.eip, true);
  }

  /** Runs until the budget is spent, the CPU halts with interrupts off, or shutdown. */
  run(budget: number): StopReason {
    this.stopRequested = false;
    this.chained = false;
    this.lastExit = null;
    try {
      return this.loop(budget);
    } catch (e) {
      if (!(e instanceof MonitorExit)) throw e;
      this.lastExit = e.exit;
      return 'exit';
    }
  }

  private loop(budget: number): StopReason {
    let left = budget;
    while (left > 0) {
      if (this.shutdownReason) return 'shutdown';
      if (this.stopRequested) return 'stopped';
      if (this.interruptController !== null && (this.flagsStored & F.IF) !== 0) this.pollInterrupt();
      if (this.halted) {
        if ((this.flagsStored & F.IF) === 0 || !this.interruptController) return 'halted';
        if (this.interruptController.pending() < 0) return 'halted';
        left--;
        continue;
      }
      if (this.inhibitInterrupts || (this.flagsStored & F.TF) !== 0) {
        this.step();
        left--;
      } else {
        left -= this.runBlock(left);
      }
    }
    return this.shutdownReason ? 'shutdown' : 'budget';
  }

  /** Ends run() after the current instruction (devices call this, e.g. isa-debug-exit). */
  stop(): void {
    this.stopRequested = true;
    this.blockBreaks++;
  }
}

export { Reg };
