// Runs a NativeProgram on OUR CPU with the contract of runNative (native.ts): same addresses,
// same initial state, a result of the same shape. The CPU runs at CPL 3 in flat protected mode
// with ring-3 segments (DPL 3, selectors 0x23/0x2b as Linux's __USER32_CS/__USER_DS; FS = GS =
// null), and 32-bit paging maps the two linear areas into a small RAM:
//   CODE_BASE    -> phys 0x10000 (CODE_SIZE, 16 pages, user read-only)
//   SCRATCH_BASE -> phys 0x20000 (one page, user RW); linear 0x4000 -> phys 0x4000 (supervisor:
//   a copy of part of Linux's GDT, for LDS/LES/LFS/LGS/LSS); everything else is not present.
// The code area holds what the host's does when a program starts (native.ts appendedJump): the
// code, the runner's JMP to its epilogue, INT3 elsewhere, so a read of it agrees. It is
// read-only here, where the host's is RWX: a write to it (never generated on purpose; it could
// clobber the host's JMP, or the code) is a #PF here that compare.ts counts as an escape.
// Exceptions are taken through the interception seam (Interceptor.exception) instead of an IDT:
// the hook sees the vector, error code and return EIP before delivery, which is what the host's
// signal frame tells us; answering HANDLED skips delivery, so no IDT, TSS or ring-0 stack is
// needed. The run stops at the first exception, as the native runner does.
//
// It also follows which flags are undefined at the end: per executed instruction (classOf),
// refined by the shift count where the SDM makes the rule depend on it, and marks the run
// `tainted` when an instruction reads a flag that an earlier one left undefined (LAHF, PUSHF,
// ADC, SETcc... after, say, AND's AF): from there on host and model may rightly differ.
import { FORMS, OpKind, Prefix, classOf, formById, memorySizeBytes, registerWidth, type Instruction } from '@ringshift/decoder';
import {
  ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S, Cpu, HANDLED, PASS_THROUGH, PhysicalMemory, UnsupportedFeature, buildHandlers,
  type ExceptionEvent, type Interceptor, type PortBus,
} from '@ringshift/runtime';
import { CODE_BASE, CODE_SIZE, DEFAULT_ESP, EFLAGS_FIXED, EFLAGS_SETTABLE, SCRATCH_BASE, SCRATCH_SIZE, appendedJump } from './native';
import type { NativeFault, NativeProgram, NativeRegs, NativeResult, NativeSignal } from './native';

const HANDLERS = buildHandlers();
const CODE_PHYS = 0x10000;
const SCRATCH_PHYS = 0x20000;
const PD = 0x1000;
const PT_CODE = 0x2000;
const PT_SCRATCH = 0x3000;
const RAM = SCRATCH_PHYS + SCRATCH_SIZE;
const PTE_URW = 7; // present, writable, user
const PTE_UR = 5; // present, user, read-only: data writes to the code area fault
/**
 * The part of Linux's x86-64 GDT (arch/x86/include/asm/segment.h) that the far-pointer loads of
 * the program generator can name (programs.ts FAR_SELECTORS), at a supervisor-only linear page:
 * 2 __KERNEL_CS, 3 __KERNEL_DS (DPL 0), 4 __USER32_CS, 5 __USER_DS (DPL 3, accessed, flat),
 * 8 the TSS (a system descriptor); limit 0x7f (16 entries); no LDT.
 */
const GDT_LINEAR = 0x4000;
const GDT_PHYS = 0x4000;
const PT_LOW = 0x5000;
const GDT: readonly (readonly [number, number, number])[] = [
  [2, 0x0000ffff, 0x00cf9b00], [3, 0x0000ffff, 0x00cf9300], [4, 0x0000ffff, 0x00cffb00], [5, 0x0000ffff, 0x00cff300],
  [8, 0x00000067, 0x00008b00],
];
/** Steps before the run counts as a runaway (the host's watchdog, SIGALRM). */
const STEP_LIMIT = 100_000;

const CF = 0x1, OF = 0x800;
const STATUS = 0x8d5;

/** Signal Linux sends for each vector a user program can raise (arch/x86/kernel/traps.c). */
const SIGNAL_OF: Record<number, NativeSignal> = { 0: 'SIGFPE', 1: 'SIGTRAP', 3: 'SIGTRAP', 4: 'SIGSEGV', 5: 'SIGSEGV', 6: 'SIGILL', 12: 'SIGBUS', 13: 'SIGSEGV', 14: 'SIGSEGV', 17: 'SIGBUS' };

export interface OursResult extends NativeResult {
  /** EFLAGS bits undefined after the run (to mask on top of EFLAGS_COMPARED). */
  undefinedFlags: number;
  /** An instruction read a flag left undefined: registers, memory and flags may rightly differ. */
  tainted: boolean;
  /** An instruction's result was undefined (16-bit SHLD/SHRD by more than 16): nothing after it can be compared. */
  unpredictable: boolean;
  /** Form ids of the instructions run, in order (the faulting one last). */
  executed: number[];
  /** A JavaScript error or UnsupportedFeature from the CPU (a bug or a gap, never a match). */
  crash?: string;
}

const NO_PORTS: PortBus = { read: () => -1, write: () => undefined };

const MNEMONIC = FORMS.reduce<string[]>((a, f) => ((a[f.id] = f.mnemonic), a), []);

/** Flags the instruction leaves undefined, refined by the runtime shift count (SDM vol. 2B SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD/SHRD). */
function undefinedBy(cpu: Cpu, ins: Instruction): { written: number; undef: number; taintResult: boolean } {
  const c = classOf(ins.form);
  let written = c.flagsWritten & STATUS, undef = c.flagsUndefined & STATUS;
  const m = MNEMONIC[ins.form]!;
  // REP/REPNE with ECX = 0 runs no iteration: the flags stay as they were (SDM vol. 2B REP).
  if (ins.prefixes & (Prefix.Rep | Prefix.Repne) && /^(cmps|scas)[bwd]$/.test(m) && cpu.regs[1] === 0) return { written: 0, undef: 0, taintResult: false };
  if (/^(sh[lr]d?|sa[lr]|ro[lr]|rc[lr])$/.test(m)) {
    const last = ins.opCount - 1;
    const size = destBits(ins);
    const k = ins.opKinds[last];
    const raw = formById(ins.form)?.ops.includes('imm8_const_1') ? 1 : k === OpKind.Register ? cpu.readReg(ins.opRegs[last]!) : k === OpKind.Immediate8 || k === OpKind.Immediate8_2nd ? (k === OpKind.Immediate8_2nd ? ins.imm2 : ins.imm) : 1;
    const count = raw & 0x1f;
    if (count === 0) return { written: 0, undef: 0, taintResult: false };
    if (count === 1) undef &= ~OF;
    else if (m === 'rol' || m === 'ror' || m === 'rcl' || m === 'rcr') undef |= OF;
    if ((m === 'shl' || m === 'sal' || m === 'shr' || m === 'sar') && count >= size && size < 32) undef |= CF;
    if ((m === 'shld' || m === 'shrd') && count > size) return { written: STATUS, undef: STATUS, taintResult: true };
  }
  return { written, undef, taintResult: false };
}

/** Operand size of the shifted operand: the register's width, or the form's memory size. */
function destBits(ins: Instruction): number {
  if (ins.opKinds[0] === OpKind.Register) return registerWidth(ins.opRegs[0]!);
  return 8 * (memorySizeBytes(formById(ins.form)?.mem ?? '') || 4);
}

const REGS: readonly (keyof NativeRegs)[] = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];

function regsOf(cpu: Cpu): NativeRegs {
  const r = {} as NativeRegs;
  REGS.forEach((n, i) => (r[n] = cpu.regs[i]! >>> 0));
  return r;
}

function newCpu(): Cpu {
  const cpu = new Cpu(new PhysicalMemory(RAM), NO_PORTS, HANDLERS);
  const m = cpu.mem;
  m.write32(PD + ((CODE_BASE >>> 22) << 2), PT_CODE | PTE_URW);
  m.write32(PD + ((SCRATCH_BASE >>> 22) << 2), PT_SCRATCH | PTE_URW);
  for (let p = 0; p < CODE_SIZE >>> 12; p++) m.write32(PT_CODE + (((CODE_BASE >>> 12) & 0x3ff) + p) * 4, (CODE_PHYS + p * 4096) | PTE_UR);
  m.write32(PT_SCRATCH + ((SCRATCH_BASE >>> 12) & 0x3ff) * 4, SCRATCH_PHYS | PTE_URW);
  m.write32(PD, PT_LOW | 3); // supervisor, writable
  m.write32(PT_LOW + (GDT_LINEAR >>> 12) * 4, GDT_PHYS | 3);
  for (const [i, lo, hi] of GDT) { m.write32(GDT_PHYS + i * 8, lo); m.write32(GDT_PHYS + i * 8 + 4, hi | 0); }
  cpu.gdtrBase = GDT_LINEAR;
  cpu.gdtrLimit = 0x7f;
  cpu.cr3 = PD;
  cpu.cr0 = 0x80010011 | 0; // PG, WP, ET, PE
  const dpl3 = 0x60;
  for (let s = 0; s < 6; s++) {
    if (s >= 4) { // FS, GS: null, as Linux leaves them for a 32-bit process here
      cpu.sel[s] = 0; cpu.segBase[s] = 0; cpu.segLimit[s] = 0; cpu.segAttr[s] = 0;
      continue;
    }
    cpu.sel[s] = s === 1 ? 0x23 : 0x2b;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = -1;
    cpu.segAttr[s] = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | dpl3 | (s === 1 ? ATTR_CODE | 0xb : 0x3);
  }
  cpu.cpl = 3;
  return cpu;
}

/** Runs one program on our CPU: the same contract as runNative, plus flag bookkeeping. */
export function runOurs(p: NativeProgram): OursResult {
  const cpu = newCpu();
  cpu.mem.u8.fill(0xcc, CODE_PHYS, CODE_PHYS + CODE_SIZE);
  cpu.mem.u8.set(p.code, CODE_PHYS);
  cpu.mem.u8.set(appendedJump(p.code.length), CODE_PHYS + p.code.length);
  cpu.mem.u8.set(p.scratch, SCRATCH_PHYS);
  cpu.flushDecodeCache();
  const i = p.initial;
  cpu.regs.set([i.eax, i.ecx, i.edx, i.ebx, i.esp ?? DEFAULT_ESP, i.ebp, i.esi, i.edi].map((v) => v | 0));
  cpu.eflags = (i.eflags & EFLAGS_SETTABLE) | EFLAGS_FIXED;
  cpu.eip = CODE_BASE;

  let fault: NativeFault | undefined;
  let faultRegs: NativeRegs | undefined;
  let faultFlags = 0;
  const hook: Interceptor = {
    ...PASS_THROUGH,
    exception: (c: Cpu, e: ExceptionEvent) => {
      if (!fault) {
        const trap = e.vector === 3 || e.vector === 4;
        fault = { signal: SIGNAL_OF[e.vector] ?? 'SIGSEGV', eip: (trap ? e.nextEip : c.eip) >>> 0, trapno: e.vector, error: e.errorCode < 0 ? 0 : e.errorCode, code: 0 };
        if (e.vector === 14) fault.address = c.cr2 >>> 0;
        faultRegs = regsOf(c);
        faultFlags = c.eflags;
      }
      return HANDLED;
    },
  };
  cpu.interceptor = hook;

  const end = (CODE_BASE + p.code.length) | 0;
  let undef = 0;
  let tainted = false;
  let unpredictable = false;
  const executed: number[] = [];
  let crash: string | undefined;
  let steps = 0;
  try {
    while (cpu.eip !== end && !fault) {
      if (++steps > STEP_LIMIT) {
        fault = { signal: 'SIGALRM', eip: cpu.eip >>> 0, trapno: 0, error: 0, code: 0 };
        break;
      }
      const eipBefore = cpu.eip;
      let ins: Instruction | undefined;
      try {
        ins = cpu.fetch();
      } catch {
        ins = undefined; // the fetch faults: step() raises it
      }
      let u: ReturnType<typeof undefinedBy> | undefined;
      if (ins?.valid) {
        u = undefinedBy(cpu, ins);
        if (classOf(ins.form).flagsRead & undef & STATUS) tainted = true;
      }
      if (u?.taintResult) unpredictable = true;
      cpu.step();
      if (ins?.valid && (executed.length === 0 || eipBefore !== cpu.eip || fault)) {
        // REP string instructions step once per iteration: count the instruction once.
        if (executed[executed.length - 1] !== ins.form || eipBefore !== cpu.eip || fault) executed.push(ins.form);
      }
      if (u && !fault) {
        undef = (undef & ~u.written) | u.undef;
        if (u.taintResult) unpredictable = true;
      }
    }
  } catch (e) {
    crash = e instanceof UnsupportedFeature ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  const scratch = cpu.mem.u8.slice(SCRATCH_PHYS, SCRATCH_PHYS + SCRATCH_SIZE);
  const result: OursResult = {
    regs: faultRegs ?? regsOf(cpu),
    eflags: fault ? faultFlags : cpu.eflags,
    scratch,
    undefinedFlags: undef,
    tainted,
    unpredictable,
    executed,
  };
  if (fault) result.fault = fault;
  if (crash !== undefined) result.crash = crash;
  return result;
}

/**
 * Our CPU loaded and set up to run `p` exactly as runOurs() starts it, without an interceptor
 * (blocks.test.ts compares the block engine's run() against step() from this state).
 */
export function prepareOurs(p: NativeProgram): Cpu {
  const cpu = newCpu();
  cpu.mem.u8.fill(0xcc, CODE_PHYS, CODE_PHYS + CODE_SIZE);
  cpu.mem.u8.set(p.code, CODE_PHYS);
  cpu.mem.u8.set(appendedJump(p.code.length), CODE_PHYS + p.code.length);
  cpu.mem.u8.set(p.scratch, SCRATCH_PHYS);
  cpu.flushDecodeCache();
  const i = p.initial;
  cpu.regs.set([i.eax, i.ecx, i.edx, i.ebx, i.esp ?? DEFAULT_ESP, i.ebp, i.esi, i.edi].map((v) => v | 0));
  cpu.eflags = (i.eflags & EFLAGS_SETTABLE) | EFLAGS_FIXED;
  cpu.eip = CODE_BASE;
  return cpu;
}
