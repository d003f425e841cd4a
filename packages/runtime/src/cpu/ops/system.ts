// System instructions: HLT, IN/OUT, LGDT/LIDT/SGDT/SIDT, MOV to/from CRn, LMSW/SMSW, CLTS,
// INVLPG, INVD/WBINVD, CPUID, RDTSC. Privilege checks follow shared/reference/sensitive-
// instructions.md part (a): #GP(0) when CPL > 0.
import { OpKind, Reg, type Instruction } from '@ringshift/decoder';
import type { Cpu, Handler } from '../cpu';
import * as F from '../eflags';
import { Fault, Vector } from '../fault';

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
  const tss32 = (cpu.trAttr & 0xf) === 0x9 || (cpu.trAttr & 0xf) === 0xb;
  const limit = cpu.trLimit >>> 0;
  if (!tss32 || limit < 103) throw new Fault(Vector.GP, 0);
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
      cpu.cr0 = v | 0x10; // ET is hardwired to 1
      if (((old ^ v) & 0x80000001) !== 0) cpu.flushDecodeCache();
      break;
    }
    case 2: cpu.cr2 = v; break;
    case 3: cpu.cr3 = v; break;
    case 4:
      // Bits this CPU does not implement are reserved: setting one is #GP(0).
      if (v & ~CR4_IMPLEMENTED) throw new Fault(Vector.GP, 0);
      cpu.cr4 = v;
      break;
    default: throw new Fault(Vector.UD);
  }
};

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
  invlpg: (cpu) => cpl0(cpu),
  invd: (cpu) => cpl0(cpu),
  wbinvd: (cpu) => cpl0(cpu),
  rdtsc: (cpu) => {
    if ((cpu.cr4 & 0x4) && cpu.protectedMode && cpu.cpl !== 0) throw new Fault(Vector.GP, 0);
    cpu.regs[0] = Number(cpu.tsc & 0xffffffffn) | 0;
    cpu.regs[2] = Number((cpu.tsc >> 32n) & 0xffffffffn) | 0;
  },
  cpuid: (cpu) => {
    // Leaf 0: highest leaf 1, vendor "GenuineIntel"-style string of our own; leaf 1: family 6
    // and only the features implemented: FPU absent, TSC (4), PSE (3), PAE (6), CX8 (8) later.
    const leaf = cpu.regs[0]!;
    if (leaf === 0) {
      cpu.regs[0] = 1;
      cpu.regs[3] = 0x676e6952; // "Ring"
      cpu.regs[2] = 0x74666968; // "hift"  (EBX, EDX, ECX spell "RingshiftCPU")
      cpu.regs[1] = 0x55504320; // " CPU"
    } else if (leaf === 1) {
      cpu.regs[0] = 0x00000600;
      cpu.regs[3] = 0;
      cpu.regs[1] = 0;
      cpu.regs[2] = (1 << 3) | (1 << 4) | (1 << 6); // PSE, TSC, PAE
    } else {
      cpu.regs[0] = cpu.regs[3] = cpu.regs[1] = cpu.regs[2] = 0;
    }
  },
};

export const SYSTEM = {
  byMnemonic,
  byForm: {
    Mov_r32_cr: movFromCr,
    Mov_cr_r32: movToCr,
  } satisfies Record<string, Handler>,
};
