// Entering and leaving the guest kernel as Xen does for a 32-bit PV guest: the bounce frame
// (xen/arch/x86/x86_64/compat/entry.S compat_create_bounce_frame) that delivers an exception, a
// software interrupt or the event callback, and HYPERVISOR_iret (xen/arch/x86/pv/iret.c
// compat_iret) that returns from one.
//
// Bounce frame, lowest address first: [error code], EIP, CS | saved_upcall_mask << 16, EFLAGS
// (IF = !saved_upcall_mask), and from ring 2/3 also ESP, SS; from ring 2/3 it goes on the stack
// stack_switch set (kernel_ss:kernel_sp), from ring 1 on the current one.
import type { Cpu } from '../../cpu/cpu';
import { ATTR_CODE, ATTR_P, ATTR_S } from '../../cpu/cpu';
import * as F from '../../cpu/eflags';
import { Fault } from '../../cpu/fault';
import { SegReg } from '../../cpu/registers';
import { readDescriptor, setCache, type Descriptor } from '../../cpu/segments';
import type { GuestMemory } from './guest-memory';

/** A guest state the monitor cannot continue from: Xen's domain_crash. */
export class DomainCrash extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DomainCrash';
  }
}

function descriptorOf(cpu: Cpu, selector: number): Descriptor | null {
  if ((selector & 0xfffc) === 0) return null;
  try {
    return readDescriptor(cpu, selector);
  } catch (e) {
    if (e instanceof Fault) return null;
    throw e;
  }
}

/** The checks of a far transfer to CS at `cpl` (SDM vol. 3A §5.8): a present code segment with DPL = cpl (or conforming, DPL <= cpl). */
export function codeDescriptor(cpu: Cpu, selector: number, cpl: number): Descriptor | null {
  const d = descriptorOf(cpu, selector);
  if (d === null || (d.attr & (ATTR_P | ATTR_S | ATTR_CODE)) !== (ATTR_P | ATTR_S | ATTR_CODE)) return null;
  const conforming = (d.attr & 4) !== 0;
  if (conforming ? d.dpl > cpl : d.dpl !== cpl) return null;
  return d;
}

/** A stack segment for `cpl`: present writable data, DPL = RPL = cpl (SDM MOV SS checks). */
export function stackDescriptor(cpu: Cpu, selector: number, cpl: number): Descriptor | null {
  const d = descriptorOf(cpu, selector);
  if (d === null || (selector & 3) !== cpl || d.dpl !== cpl) return null;
  if ((d.attr & (ATTR_P | ATTR_S | ATTR_CODE | 2)) !== (ATTR_P | ATTR_S | 2)) return null;
  return d;
}

export interface BounceTarget {
  cs: number;
  eip: number;
  /** -1: none pushed. */
  errorCode: number;
  /** Where the guest continues when the handler returns. */
  returnEip: number;
}

export interface BounceContext {
  cpu: Cpu;
  gm: GuestMemory;
  /** vcpu_info.evtchn_upcall_mask before the bounce. */
  savedMask: boolean;
  /** stack_switch's kernel_ss:kernel_sp, for bounces from ring 2/3. */
  kernelSs: number;
  kernelSp: number;
  /** The virtual IOPL to show in the frame's EFLAGS (architectural_iopl assist), or 0. */
  frameIopl: number;
}

/** Builds the bounce frame and enters the handler at CPL 1; throws DomainCrash when it cannot. */
export function bounce(c: BounceContext, t: BounceTarget): void {
  const { cpu, gm } = c;
  const fromCpl = cpu.cpl;
  // fixup_guest_code_selector: a ring-0 selector from the guest means its kernel ring, 1.
  const cs = (t.cs & 3) === 0 ? t.cs | 1 : t.cs;
  const csd = codeDescriptor(cpu, cs, 1);
  if (csd === null) throw new DomainCrash(`bounce to CS 0x${cs.toString(16)}: not a ring-1 code segment`);
  const words: number[] = [];
  if (t.errorCode >= 0) words.push(t.errorCode);
  const eflags = cpu.eflags;
  const shownFlags = ((eflags & ~(F.IF | F.IOPL)) | (c.savedMask ? 0 : F.IF) | (c.frameIopl << 12)) >>> 0;
  words.push(t.returnEip >>> 0, (cpu.sel[SegReg.CS]! | ((c.savedMask ? 1 : 0) << 16)) >>> 0, shownFlags);
  let ss = cpu.sel[SegReg.SS]!, ssd: Descriptor | null = null, esp = cpu.regs[4]! >>> 0;
  if (fromCpl !== 1) {
    words.push(esp, ss);
    const kss = (c.kernelSs & 3) === 0 ? c.kernelSs | 1 : c.kernelSs;
    ssd = stackDescriptor(cpu, kss, 1);
    if (ssd === null) throw new DomainCrash(`bounce from ring ${fromCpl}: kernel stack segment 0x${kss.toString(16)} (stack_switch) is not a ring-1 stack segment`);
    ss = kss;
    esp = c.kernelSp >>> 0;
  }
  const ssBase = ssd === null ? cpu.segBase[SegReg.SS]! : ssd.base;
  const size = words.length * 4;
  const newEsp = (esp - size) >>> 0;
  const lin = (ssBase + newEsp) >>> 0;
  if (!gm.ok(lin, size, true)) throw new DomainCrash(`bounce frame: the guest kernel stack at 0x${lin.toString(16)} is not writable`);
  for (let i = 0; i < words.length; i++) gm.write32(lin + i * 4, words[i]!);
  if (ssd !== null) setCache(cpu, SegReg.SS, ss, ssd);
  cpu.regs[4] = newEsp | 0;
  setCache(cpu, SegReg.CS, (cs & 0xfffc) | 1, csd);
  cpu.cpl = 1;
  cpu.setFlagBits(F.TF | F.NT | F.VM | F.RF | F.IF | F.IOPL, F.IF);
  cpu.eip = cpu.nextEip = t.eip | 0;
  cpu.halted = false;
}

/**
 * HYPERVISOR_iret: the frame at ESP is EAX (pushed by the hypercall page), EIP, CS, EFLAGS, and
 * for a return to ring 2/3 ESP, SS. Returns the upcall mask the frame's IF asks for.
 */
export function hypervisorIret(cpu: Cpu, gm: GuestMemory): { mask: boolean; iopl: number } {
  const esp = cpu.regs[4]! >>> 0;
  const at = (cpu.segBase[SegReg.SS]! + esp) >>> 0;
  const w = gm.readBytes(at, 16);
  if (w === null) throw new DomainCrash(`HYPERVISOR_iret: the frame at 0x${at.toString(16)} is not readable`);
  const dv = new DataView(w.buffer);
  const eax = dv.getUint32(0, true), eip = dv.getUint32(4, true), cs = dv.getUint32(8, true) & 0xffff, eflags = dv.getUint32(12, true);
  const rpl = cs & 3;
  if (rpl === 0) throw new DomainCrash('HYPERVISOR_iret to ring 0');
  if ((eflags & F.VM) !== 0) throw new DomainCrash('HYPERVISOR_iret to virtual-8086 mode (not supported for 32-bit PV guests)');
  const csd = codeDescriptor(cpu, cs, rpl);
  if (csd === null) throw new DomainCrash(`HYPERVISOR_iret: CS 0x${cs.toString(16)} is not a ring-${rpl} code segment`);
  let newEsp = (esp + 16) >>> 0;
  if (rpl !== 1) {
    const outer = gm.readBytes((at + 16) >>> 0, 8);
    if (outer === null) throw new DomainCrash(`HYPERVISOR_iret: the frame at 0x${at.toString(16)} is not readable`);
    const ov = new DataView(outer.buffer);
    const ss = ov.getUint32(4, true) & 0xffff;
    const ssd = stackDescriptor(cpu, ss, rpl);
    if (ssd === null) throw new DomainCrash(`HYPERVISOR_iret: SS 0x${ss.toString(16)} is not a ring-${rpl} stack segment`);
    newEsp = ov.getUint32(0, true);
    setCache(cpu, SegReg.SS, ss, ssd);
    // As IRET to an outer ring does (SDM IRET, RETURN-TO-OUTER-PRIVILEGE-LEVEL): data segments
    // the outer ring may not use become null.
    for (const s of [SegReg.ES, SegReg.DS, SegReg.FS, SegReg.GS]) {
      const a = cpu.segAttr[s]!;
      const conformingCode = (a & ATTR_CODE) !== 0 && (a & 4) !== 0;
      if ((cpu.sel[s]! & 0xfffc) !== 0 && !conformingCode && ((a >>> 5) & 3) < rpl) {
        cpu.sel[s] = 0; cpu.segBase[s] = 0; cpu.segLimit[s] = 0; cpu.segAttr[s] = 0;
      }
    }
  }
  setCache(cpu, SegReg.CS, cs, csd);
  cpu.cpl = rpl;
  cpu.regs[4] = newEsp | 0;
  cpu.regs[0] = eax | 0;
  // compat_iret: IOPL from the frame is ignored, IF is always set (the virtual IF is the mask).
  cpu.eflags = ((eflags & F.IMPLEMENTED & ~(F.IOPL | F.VM)) | F.IF | F.FIXED_ONE) >>> 0;
  cpu.eip = cpu.nextEip = eip | 0;
  return { mask: (eflags & F.IF) === 0, iopl: (eflags & F.IOPL) >>> 12 };
}
