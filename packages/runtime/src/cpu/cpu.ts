// The IA-32 processor: architectural state, memory access through segmentation (and paging,
// paging.ts), the decoded-instruction cache, the execution loop and exception delivery.
// Instruction semantics live in ops/ (one file per family), registered by form name in
// handlers.ts; this file knows no instruction.
import { Decoder, FORMS, Instruction, OpKind, Reg, classOf } from '@ringshift/decoder';
import { EventKind, MonitorExit, proceed, type Exit, type Interceptor } from './intercept';
import type { PhysicalMemory } from '../machine/memory';
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

/** Forms the instruction hook of an interceptor sees: privileged, IOPL-sensitive or sensitive-unprivileged. */
const SENSITIVE = new Uint8Array(Math.max(...FORMS.map((f) => f.id)) + 1);
for (const f of FORMS) {
  const c = classOf(f.id);
  if (c.privileged !== 'no' || c.ioplSensitive !== 'no' || c.sensitiveUnprivileged) SENSITIVE[f.id] = 1;
}

// Descriptor-cache attribute bits kept per segment register (from the descriptor's access
// byte and flags, SDM vol. 3A §3.4.5): low byte = access byte, bit 14 = D/B, bit 15 = G.
export const ATTR_P = 0x80;
export const ATTR_S = 0x10;
export const ATTR_DB = 1 << 14;
export const ATTR_G = 1 << 15;
export const ATTR_CODE = 0x08;

const OP_REGISTER = OpKind.Register;
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
  /** Time-stamp counter (virtual: advanced by the machine's clock). */
  tsc = 0n;

  /** Pending maskable interrupt source: returns a vector or -1 (the PIC). */
  interruptController: { pending(): number; acknowledge(): number } | null = null;

  /**
   * The monitor's interception seam (intercept.ts). Null for the native backend, which then pays
   * one null check per hook site.
   */
  interceptor: Interceptor | null = null;
  /** The exit that ended the last run() with 'exit'. */
  lastExit: Exit | null = null;

  /** Set when a triple fault shuts the processor down. */
  shutdownReason = '';
  /** An exception that occurs while delivering another (for #DF / shutdown, SDM vol. 3A §6.15). */
  deliveringVector = -1;

  /** Translations cached by linear page (tlb.ts); the paging ops flush it as the SDM requires. */
  readonly tlb: Tlb;

  private readonly handlers: readonly (Handler | undefined)[];
  private readonly cache = new Map<number, (Instruction | undefined)[]>();
  private stopRequested = false;

  constructor(mem: PhysicalMemory, ports: PortBus, handlers: readonly (Handler | undefined)[]) {
    this.mem = mem;
    this.ports = ports;
    this.handlers = handlers;
    this.tlb = tlbOf(this);
    mem.onWrite = (page) => this.invalidatePage(page);
    this.reset();
  }

  /** Power-on state (SDM vol. 3A §9.1.1, table 9-1), except that CS:EIP = F000:FFF0 is left to the loader. */
  reset(): void {
    this.regs.fill(0);
    this.regs[2] = 0x600; // EDX: family/model/stepping of a 386-class part after reset
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
    if ((this.cr0 & 0x80000000) === 0) return lin >>> 0;
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

  private invalidatePage(page: number): void {
    this.cache.delete(page);
    this.mem.watched[page] = 0;
    this.fSlots = null;
  }

  /** Drops every decoded instruction (mode switches change how bytes decode). */
  flushDecodeCache(): void {
    for (const page of this.cache.keys()) this.mem.watched[page] = 0;
    this.cache.clear();
    this.fSlots = null;
  }

  private scratch = new Uint8Array(16);
  private readonly decoder16 = new Decoder(16, new Uint8Array(0));
  private readonly decoder32 = new Decoder(32, new Uint8Array(0));

  // The page the last instruction came from: while CS, CPL, the TLB and the page's decoded
  // instructions stay as they were, the next fetch from the same linear page skips the segment
  // check, the translation and the cache lookup.
  private fLinPage = -1;
  private fSlots: (Instruction | undefined)[] | null = null;
  private fEpoch = -1;
  private fCpl = -1;
  private fCsBase = 0;
  private fBits = 0;

  /** The decoded instruction at CS:EIP, from the cache keyed by physical address and code size. */
  fetch(): Instruction {
    const eip = this.eip;
    const csBase = this.segBase[SegReg.CS]!;
    const bits = this.codeBits;
    const lin = (csBase + eip) | 0;
    if (
      this.fSlots !== null && (lin >>> 12) === this.fLinPage && this.fEpoch === this.tlb.epoch && this.fCpl === this.cpl &&
      this.fCsBase === csBase && this.fBits === bits && (eip >>> 0) + 15 <= (this.segLimit[SegReg.CS]! >>> 0)
    ) {
      const hit = this.fSlots[((lin & 0xfff) << 1) | (bits === 32 ? 1 : 0)];
      if (hit !== undefined) return hit;
    }
    return this.fetchSlow(bits);
  }

  private fetchSlow(bits: 16 | 32): Instruction {
    const lin = this.linear(SegReg.CS, this.eip, 1, false);
    const phys = this.phys(lin, false, true);
    const page = phys >>> 12;
    let slots = this.cache.get(page);
    const key = ((phys & 0xfff) << 1) | (bits === 32 ? 1 : 0);
    if (slots !== undefined) {
      this.fLinPage = lin >>> 12;
      this.fSlots = slots;
      this.fEpoch = this.tlb.epoch;
      this.fCpl = this.cpl;
      this.fCsBase = this.segBase[SegReg.CS]!;
      this.fBits = bits;
      const hit = slots[key];
      if (hit) return hit;
    }
    const ins = new Instruction();
    const inPage = 4096 - (phys & 0xfff);
    if (inPage >= 15 && this.mem.isRam(phys) && this.mem.isRam(phys + 14)) {
      const d = bits === 32 ? this.decoder32 : this.decoder16;
      d.seek(this.mem.u8, this.eip, phys);
      d.decodeAt(ins);
    } else {
      // Near the end of a page or in MMIO: gather the bytes through translation one by one,
      // stopping at the first unmapped byte (which faults only if the instruction needs it).
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
      // Instructions that cross a page boundary are not cached: either page may change.
      return ins;
    }
    if (this.mem.isRam(phys)) {
      if (!slots) {
        // A dense array of all 2 x 4096 keys: filling sparse indices would turn it into a dictionary.
        slots = new Array<Instruction | undefined>(8192).fill(undefined);
        this.cache.set(page, slots);
        this.mem.watched[page] = 1;
      }
      slots[key] = ins;
    }
    return ins;
  }

  /** Executes one instruction (or delivers a pending interrupt). */
  step(): void {
    if (this.halted) return;
    try {
      const ins = this.fetch();
      this.nextEip = this.eip + ins.length;
      if (ins.bits === 16) this.nextEip &= 0xffff;
      if (!ins.valid) throw new Fault(Vector.UD);
      const h = this.handlers[ins.form];
      if (h === undefined) throw new Fault(Vector.UD);
      const inhibit = this.inhibitInterrupts;
      const m = this.interceptor;
      if (m !== null && SENSITIVE[ins.form] === 1 && !proceed(m.instruction(this, ins, classOf(ins.form)))) {
        // HANDLED: the monitor emulated it; the instruction retires.
        this.eip = this.nextEip;
        this.retired++;
        return;
      }
      h(this, ins);
      this.eip = this.nextEip;
      this.retired++;
      if (inhibit) this.inhibitInterrupts = false;
    } catch (e) {
      if (!(e instanceof Fault)) throw e;
      this.raise(e.vector, e.errorCode, false);
    }
  }

  /** Delivers an exception or interrupt at the current instruction (faults restart it). */
  raise(vector: number, errorCode: number, software: boolean, nextEip = this.eip, external = false): void {
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
    for (let i = 0; i < budget; i++) {
      if (this.shutdownReason) return 'shutdown';
      if (this.stopRequested) return 'stopped';
      if (this.interruptController !== null && (this.flagsStored & F.IF) !== 0) this.pollInterrupt();
      if (this.halted) {
        if ((this.flagsStored & F.IF) === 0 || !this.interruptController) return 'halted';
        if (this.interruptController.pending() < 0) return 'halted';
        continue;
      }
      this.step();
    }
    return this.shutdownReason ? 'shutdown' : 'budget';
  }

  /** Ends run() after the current instruction (devices call this, e.g. isa-debug-exit). */
  stop(): void {
    this.stopRequested = true;
  }
}

export { Reg };
