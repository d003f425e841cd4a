// System instructions: HLT, IN/OUT, LGDT/LIDT/SGDT/SIDT, MOV to/from CRn, LMSW/SMSW, CLTS,
// INVLPG, INVD/WBINVD, CPUID, RDTSC. Privilege checks follow shared/reference/sensitive-
// instructions.md part (a): #GP(0) when CPL > 0.
import { OpKind, Reg, type Instruction } from '@ringshift/decoder';
import type { Cpu, Handler } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';
import { UnsupportedFeature } from '../interrupts';
import { tlbControlWrite, tlbInvalidatePage } from '../tlb';
import { tss32 } from '../segments';
import { pdptesFor } from '../paging';

const CR4_PAE = 0x20;

function cpl0(cpu: Cpu): void {
  if (cpu.protectedMode && (cpu.cpl !== 0 || cpu.v86)) throw new Fault(Vector.GP, 0);
}

/**
 * I/O permission (SDM vol. 1 §19.5): allowed when CPL <= IOPL outside V86 mode; otherwise every
 * bit for the bytes accessed in the TSS I/O bitmap must be 0, or #GP(0).
 */
export function checkIo(cpu: Cpu, port: number, bytes: number): void {
  if (!cpu.protectedMode) return;
  const iopl = (cpu.eflags & F.IOPL) >>> 12;
  if (!cpu.v86 && cpu.cpl <= iopl) return;
  const limit = cpu.trLimit >>> 0;
  if (!tss32(cpu) || limit < 103) throw new Fault(Vector.GP, 0);
  const mapBase = cpu.mem.read16(cpu.phys((cpu.trBase + 0x66) | 0, false));
  const at = mapBase + (port >>> 3);
  if (at + 1 > limit) throw new Fault(Vector.GP, 0);
  const word = cpu.mem.read16(cpu.phys((cpu.trBase + at) | 0, false));
  const mask = ((1 << bytes) - 1) << (port & 7);
  if (word & mask) throw new Fault(Vector.GP, 0);
}

const sizeOfIo = (ins: Instruction): 1 | 2 | 4 => {
  const r = ins.opKinds[0] === OpKind.Register && ins.opRegs[0] !== DX ? ins.opRegs[0]! : ins.opRegs[1]!;
  return r === AL ? 1 : r === AX ? 2 : 4;
};
const AL = Reg.AL, AX = Reg.AX, DX = Reg.AX + 2;

const inHandler: Handler = (cpu, ins) => {
  const size = sizeOfIo(ins);
  const port = ins.opKinds[1] === OpKind.Register ? cpu.regs[2]! & 0xffff : ins.imm & 0xff;
  checkIo(cpu, port, size);
  const v = cpu.ports.read(port, size);
  cpu.writeReg(ins.opRegs[0]!, v);
};

const outHandler: Handler = (cpu, ins) => {
  const size = sizeOfIo(ins);
  const port = ins.opKinds[0] === OpKind.Register ? cpu.regs[2]! & 0xffff : ins.imm & 0xff;
  checkIo(cpu, port, size);
  cpu.ports.write(port, size, cpu.readReg(ins.opRegs[1]!));
};

/** LGDT/LIDT m16&32: limit then base; with a 16-bit operand size only 24 bits of base (SDM LGDT). */
function loadTable(which: 'gdtr' | 'idtr'): Handler {
  return (cpu, ins) => {
    cpl0(cpu);
    const seg = cpu.segmentOf(ins), ea = cpu.effectiveAddress(ins);
    const limit = cpu.read16(seg, ea);
    let base = cpu.read32(seg, (ea + 2) | 0);
    if (ins.operandSize === 16) base &= 0xffffff;
    if (which === 'gdtr') { cpu.gdtrLimit = limit; cpu.gdtrBase = base; }
    else { cpu.idtrLimit = limit; cpu.idtrBase = base; }
  };
}

function storeTable(which: 'gdtr' | 'idtr'): Handler {
  return (cpu, ins) => {
    const seg = cpu.segmentOf(ins), ea = cpu.effectiveAddress(ins);
    cpu.write16(seg, ea, which === 'gdtr' ? cpu.gdtrLimit : cpu.idtrLimit);
    cpu.write32(seg, (ea + 2) | 0, which === 'gdtr' ? cpu.gdtrBase : cpu.idtrBase);
  };
}

const movFromCr: Handler = (cpu, ins) => {
  cpl0(cpu);
  const n = ins.opRegs[1]! - Reg.CR0;
  const v = n === 0 ? cpu.cr0 : n === 2 ? cpu.cr2 : n === 3 ? cpu.cr3 : cpu.cr4;
  cpu.writeReg(ins.opRegs[0]!, v);
};

const movToCr: Handler = (cpu, ins) => {
  cpl0(cpu);
  const n = ins.opRegs[0]! - Reg.CR0;
  const v = cpu.readReg(ins.opRegs[1]!);
  switch (n) {
    case 0: {
      // PG without PE, or NW without CD, is #GP(0) (SDM MOV CR, "Protected Mode Exceptions").
      if ((v & 0x80000000) && !(v & 1)) throw new Fault(Vector.GP, 0);
      if ((v & 0x20000000) && !(v & 0x40000000)) throw new Fault(Vector.GP, 0);
      const old = cpu.cr0;
      // PAE paging in use afterwards and CD/NW/PG changed: the PDPTEs load (SDM vol. 3A §4.4.1).
      if ((v & 0x80000001) === (0x80000001 | 0) && (cpu.cr4 & CR4_PAE) && ((old ^ v) & 0xe0000000)) cpu.pdpte.set(pdptesFor(cpu, cpu.cr3));
      cpu.cr0 = v | 0x10; // ET is hardwired to 1
      if (((old ^ v) & 0x80000001) !== 0) cpu.flushDecodeCache();
      tlbControlWrite(cpu, 0, old, cpu.cr0);
      break;
    }
    case 2: cpu.cr2 = v; break;
    case 3:
      // With PAE paging in use, MOV to CR3 loads the PDPTEs from the new CR3 (§4.4.1); #GP(0)
      // on a reserved bit leaves CR3 as it was.
      if (cpu.paging && (cpu.cr4 & CR4_PAE)) cpu.pdpte.set(pdptesFor(cpu, v));
      cpu.cr3 = v;
      tlbControlWrite(cpu, 3, 0, v);
      break;
    case 4: {
      // Bits this CPU does not implement are reserved: setting one is #GP(0).
      if (v & ~CR4_IMPLEMENTED) throw new Fault(Vector.GP, 0);
      const old = cpu.cr4;
      // PAE paging in use afterwards and PAE/PGE/PSE changed: the PDPTEs load (§4.4.1).
      if (cpu.paging && (v & CR4_PAE) && ((old ^ v) & (CR4_PAE | 0x80 | 0x10))) cpu.pdpte.set(pdptesFor(cpu, cpu.cr3));
      cpu.cr4 = v;
      tlbControlWrite(cpu, 4, old, v);
      break;
    }
    default: throw new Fault(Vector.UD);
  }
};

/**
 * CPUID reports exactly what this CPU implements (the rule): no FPU/MMX/SSE, no APIC, no
 * MTRR/PAT. Leaf 1 EDX: PSE (3), TSC (4), MSR (5), PAE (6), CX8 (8), SEP (11), PGE (13),
 * CMOV (15); leaf 1 ECX: MOVBE (22), POPCNT (23); leaf 7 subleaf 0 EBX: ADX (19); leaf
 * 8000_0001h ECX: ABM/LZCNT (5), EDX: NX (20). Not BMI1 although TZCNT is implemented: BMI1 also
 * promises VEX forms that are not (ops/gp-extra.ts). Family 6, model 3, stepping 3 or later is
 * needed for software to trust SEP (SDM SYSENTER, "IA-32 Architecture Compatibility").
 * The highest basic leaf is 7; leaves 2-6 and other leaf-7 subleaves report all zeros (no cache,
 * MONITOR, power or thermal information), as do leaves above the maximum.
 */
const CPUID_FEATURES_EDX = (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 11) | (1 << 13) | (1 << 15);
const CPUID_FEATURES_ECX = (1 << 22) | (1 << 23);
const CPUID_LEAF7_EBX = 1 << 19;
const CPUID_EXT_FEATURES_ECX = 1 << 5;
const VENDOR = [0x676e6952, 0x66696873, 0x55504374]; // "RingshiftCPU": EBX "Ring", EDX "shif", ECX "tCPU"

/** EAX, EBX, ECX, EDX of CPUID for `leaf` (EAX) and `subleaf` (ECX, used by leaf 7). */
export function cpuidLeaf(leaf: number, subleaf = 0): [number, number, number, number] {
  switch (leaf) {
    case 0: return [7, VENDOR[0]!, VENDOR[2]!, VENDOR[1]!];
    case 1: return [0x00000633, 0, CPUID_FEATURES_ECX, CPUID_FEATURES_EDX];
    // Leaf 7 subleaf 0: EAX = the highest subleaf (0).
    case 7: return subleaf === 0 ? [0, CPUID_LEAF7_EBX, 0, 0] : [0, 0, 0, 0];
    case 0x80000000: return [0x80000001 | 0, 0, 0, 0];
    case 0x80000001: return [0, 0, CPUID_EXT_FEATURES_ECX, 1 << 20];
    default: return [0, 0, 0, 0];
  }
}

/** CR4 bits implemented: VME PVI TSD DE PSE PAE PGE (VME/PVI report unsupported when used). */
const CR4_IMPLEMENTED = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x80;

const byMnemonic: Record<string, Handler> = {
  hlt: (cpu) => { cpl0(cpu); cpu.halted = true; },
  in: inHandler,
  out: outHandler,
  lgdt: loadTable('gdtr'),
  lidt: loadTable('idtr'),
  sgdt: storeTable('gdtr'),
  sidt: storeTable('idtr'),
  clts: (cpu) => { cpl0(cpu); cpu.cr0 &= ~8; },
  lmsw: (cpu, ins) => {
    cpl0(cpu);
    // LMSW changes PE, MP, EM, TS only, and cannot clear PE (SDM LMSW).
    const v = cpu.readOp(ins, 0, 16);
    cpu.cr0 = (cpu.cr0 & ~0xe) | (v & 0xe) | (cpu.cr0 & 1) | (v & 1);
  },
  smsw: (cpu, ins) => {
    const v = cpu.cr0;
    if (ins.opKinds[0] === OpKind.Register) cpu.writeOp(ins, 0, ins.operandSize === 32 ? 32 : 16, v);
    else cpu.writeSized(cpu.segmentOf(ins), cpu.effectiveAddress(ins), 16, v);
  },
  // INVLPG takes the operand's linear address with no segment-limit check (SDM INVLPG).
  invlpg: (cpu, ins) => {
    cpl0(cpu);
    tlbInvalidatePage(cpu, (cpu.segBase[cpu.segmentOf(ins)]! + cpu.effectiveAddress(ins)) | 0);
  },
  invd: (cpu) => cpl0(cpu),
  wbinvd: (cpu) => cpl0(cpu),
  rdtsc: (cpu) => {
    if ((cpu.cr4 & 0x4) && cpu.protectedMode && cpu.cpl !== 0) throw new Fault(Vector.GP, 0);
    cpu.regs[0] = Number(cpu.tsc & 0xffffffffn) | 0;
    cpu.regs[2] = Number((cpu.tsc >> 32n) & 0xffffffffn) | 0;
  },
  cpuid: (cpu) => {
    const leaf = cpu.regs[0]! >>> 0;
    const [a, b, c, d] = cpuidLeaf(leaf, cpu.regs[1]! >>> 0);
    cpu.regs[0] = a; cpu.regs[3] = b; cpu.regs[1] = c; cpu.regs[2] = d;
  },
};

/**
 * Debug registers DR0-DR3, DR6, DR7 (SDM vol. 3B §18.2), kept beside the Cpu in a WeakMap (like
 * MsrState) so that no cpu.ts change is needed. Only storage: breakpoints are not modelled, so a
 * DR7 write that enables one (L0-G3, bits 7:0) ends the run as unsupported rather than silently
 * never trapping; DR7.GD (bit 13) likewise. Reset values: DR6 FFFF0FF0h, DR7 400h.
 */
const debugRegs = new WeakMap<Cpu, Int32Array>();
function drs(cpu: Cpu): Int32Array {
  let d = debugRegs.get(cpu);
  if (d === undefined) {
    d = new Int32Array([0, 0, 0, 0, 0, 0, 0xffff0ff0 | 0, 0x400]);
    debugRegs.set(cpu, d);
  }
  return d;
}

/** DR4/DR5 alias DR6/DR7 when CR4.DE = 0 and are #UD when CR4.DE = 1 (SDM vol. 3B §18.2.2). */
function drIndex(cpu: Cpu, n: number): number {
  if (n === 4 || n === 5) {
    if (cpu.cr4 & 0x8) throw new Fault(Vector.UD);
    return n + 2;
  }
  return n;
}

/** MOV r32, DRn / MOV DRn, r32: CPL 0 only (#GP(0)), in real mode too; register operands only. */
const movFromDr: Handler = (cpu, ins) => {
  cpl0(cpu);
  const n = drIndex(cpu, ins.opRegs[1]! - Reg.DR0);
  cpu.writeReg(ins.opRegs[0]!, drs(cpu)[n]!);
};

const movToDr: Handler = (cpu, ins) => {
  cpl0(cpu);
  const n = drIndex(cpu, ins.opRegs[0]! - Reg.DR0);
  const v = cpu.readReg(ins.opRegs[1]!);
  if (n === 6) { drs(cpu)[6] = (v & 0x0000e00f) | 0xffff0ff0; return; }
  if (n === 7) {
    if (v & 0x20ff) throw new UnsupportedFeature('debug breakpoints (DR7 L0-G3 or GD set)');
    drs(cpu)[7] = (v & 0xffff23ff) | 0x400;
    return;
  }
  drs(cpu)[n] = v;
};

export const SYSTEM = {
  byMnemonic,
  byForm: {
    Mov_r32_cr: movFromCr,
    Mov_cr_r32: movToCr,
    Mov_r32_dr: movFromDr,
    Mov_dr_r32: movToDr,
  } satisfies Record<string, Handler>,
};
