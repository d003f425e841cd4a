// Privileged instructions a PV kernel may use at CPL 1, emulated as Xen's emulate_privileged_op
// does for guest kernel mode (xen/arch/x86/pv/emul-priv-op.c read_cr / write_cr / read_dr /
// write_dr, x86_emulate's CLTS): the control registers are the vCPU's view, the debug registers
// the CPU's own after Xen's checks. Anything else, or a value Xen refuses (X86EMUL_UNHANDLEABLE),
// stays the #GP(0) the instruction raised, for the domain to bounce.
import { Reg, formName, type Instruction } from '@ringshift/decoder';
import type { Cpu } from '../../cpu/cpu';
import { buildHandlers } from '../../cpu/handlers';
import { HYPERVISOR_VIRT_START_PAE } from './abi';
import type { FrameTable } from './mm';

const CR0_TS = 0x8;
/** pv/domain.c PV_CR4_GUEST_VISIBLE_MASK: PAE, MCE, OSFXSR, OSXMMEXCPT read as the host's. */
export const PV_CR4_GUEST_VISIBLE_MASK = 0x20 | 0x40 | 0x200 | 0x400;
/** PV_CR4_GUEST_MASK: TSD, DE (FSGSBASE and OSXSAVE: CPUID features this CPU lacks) are the guest's. */
export const PV_CR4_GUEST_MASK = 0x4 | 0x8;

export interface PrivOpState {
  cpu: Cpu;
  frames: FrameTable;
  /** The guest's CR4 (pv.ctrlreg[4], pv_fixup_guest_cr4): recorded and read back, not applied. */
  cr4: number;
  /** do_fpu_taskswitch. */
  setTs(ts: boolean): void;
  /** arch_set_cr2: CR2 and vcpu_info.arch.cr2. */
  setCr2(v: number): void;
}

let sharedHandlers: ReturnType<typeof buildHandlers> | null = null;

/** True if `ins` (at CPL 1, which raised #GP(0)) was emulated; EIP is then past it. */
export function emulateKernelPrivOp(s: PrivOpState, ins: Instruction): boolean {
  const cpu = s.cpu;
  const form = formName(ins.form);
  let done = false;
  switch (form) {
    case 'Mov_r32_cr': {
      const n = ins.opRegs[1]! - Reg.CR0;
      // compat_pfn_to_cr3(mfn): pfn << 12 | pfn >> 20 (the L3's MFN; machine and guest frames are the same under PV).
      const l3 = cpu.cr3 >>> 12;
      const v = n === 0 ? cpu.cr0 : n === 2 ? cpu.cr2 : n === 3 ? (l3 << 12) | (l3 >>> 20) : n === 4 ? s.cr4 : null;
      if (v === null) return false;
      cpu.writeReg(ins.opRegs[0]!, v);
      done = true;
      break;
    }
    case 'Mov_cr_r32': {
      const n = ins.opRegs[0]! - Reg.CR0;
      const v = cpu.readReg(ins.opRegs[1]!);
      if (n === 0) {
        // "Attempt to change unmodifiable CR0 flags": only TS may change.
        if (((v ^ cpu.cr0) & ~CR0_TS) !== 0) return false;
        s.setTs((v & CR0_TS) !== 0);
      } else if (n === 2) s.setCr2(v);
      else if (n === 3) {
        const l3 = ((v >>> 12) | (v << 20)) >>> 0; // compat_cr3_to_pfn
        if (s.frames.newBaseptr(l3) !== null) return false;
      } else if (n === 4) s.cr4 = (cpu.cr4 & PV_CR4_GUEST_VISIBLE_MASK) | (v & PV_CR4_GUEST_MASK);
      else return false;
      done = true;
      break;
    }
    case 'Clts':
      s.setTs(false);
      done = true;
      break;
    case 'Mov_r32_dr':
    case 'Mov_dr_r32': {
      // set_debugreg: breakpoint addresses must lie below the hypervisor hole (else -EPERM, #GP).
      const n = form === 'Mov_dr_r32' ? ins.opRegs[0]! - Reg.DR0 : -1;
      if (n >= 0 && n <= 3 && (cpu.readReg(ins.opRegs[1]!) >>> 0) >= HYPERVISOR_VIRT_START_PAE) return false;
      // The CPU's own MOV DR, run as at CPL 0 (DR4/5 aliasing, DR6/DR7 fixed bits, #UD with CR4.DE).
      sharedHandlers ??= buildHandlers();
      const h = sharedHandlers[ins.form]!;
      const cpl = cpu.cpl;
      cpu.cpl = 0;
      try {
        h(cpu, ins);
      } finally {
        cpu.cpl = cpl;
      }
      done = true;
      break;
    }
    default:
      return false;
  }
  if (done) cpu.eip = cpu.nextEip = (cpu.eip + ins.length) | 0;
  return done;
}
