// What the decoded-instruction cache holds (cpu.ts): per physical code page, one Decoded per
// instruction start and code size, and a Block per instruction that a run of the execution
// loop began at.
//
// A block is a straight run of instructions on one page that the loop executes without going
// back to fetch between them: every instruction but the last is "straight" (STRAIGHT below), so
// nothing inside the block can change what the loop checks before a block: CS, CPL, the code
// size, paging, the TLB, EFLAGS.IF/TF, the interrupt shadow, the PIC (no I/O), the monitor's
// instruction hook. What a straight instruction can still do, and how the loop stays exact:
//  - fault (a memory access, #DE): the handler throws; EIP is the instruction's, the earlier
//    instructions of the block have retired, the later ones have not run;
//  - write to a code page (self-modifying code), touch a memory-mapped device (which may raise
//    an interrupt line), or make a device call Cpu.stop(): each bumps Cpu.blockBreaks, which the
//    loop compares after every instruction and then leaves the block;
//  - leave run() through a monitor's page-walk exit (MonitorExit): EIP is the instruction's.
// The last instruction of a block runs with the full single-step path (interrupt shadow,
// monitor hook), so control transfer and system instructions need nothing special.
import { FORMS, Prefix, classOf, type Instruction } from '@ringshift/decoder';
import type { Cpu, Handler } from './cpu';

/** The longest block (a bound on the work between checks of the budget and of interrupts). */
export const MAX_BLOCK = 64;

const formCount = Math.max(...FORMS.map((f) => f.id)) + 1;

/**
 * Forms the monitor's instruction hook sees: privileged, IOPL-sensitive or sensitive-unprivileged,
 * and those that exit VMX non-root operation unconditionally (CPUID, INVD, GETSEC, XSETBV: SDM
 * vol. 3C §26.1.2), which the hvm monitor must see although they are not sensitive, and PAUSE
 * (for 'PAUSE exiting', §26.1.3).
 */
export const SENSITIVE = new Uint8Array(formCount);
/**
 * Forms after which a block may go on: flow 'next' and not sensitive (which leaves out every
 * system instruction, I/O, segment-register loads, PUSHF/POPF, CLI/STI, HLT). String forms with
 * a REP prefix are left out per instruction (they restart themselves through nextEip).
 */
export const STRAIGHT = new Uint8Array(formCount);
/** String forms, whose REP-prefixed instances end a block. */
const STRING_FORM = new Uint8Array(formCount);
const STRING_MNEMONIC = /^(movs|cmps|stos|lods|scas|ins|outs)[bwdq]?$/;
for (const f of FORMS) {
  const c = classOf(f.id);
  // PAUSE too: 'PAUSE exiting' (vmm/hvm) must see it although it is neither sensitive nor privileged.
  const sensitive = c.privileged !== 'no' || c.ioplSensitive !== 'no' || c.sensitiveUnprivileged || c.vmExit?.when === 'always' || f.mnemonic === 'pause';
  if (sensitive) SENSITIVE[f.id] = 1;
  if (c.flow === 'next' && !sensitive) STRAIGHT[f.id] = 1;
  if (STRING_MNEMONIC.test(f.mnemonic)) STRING_FORM[f.id] = 1;
}

/** A cached instruction: the decoder's record and how the loop runs it. */
export class Decoded {
  /** The block that starts at this instruction, once a run has begun here. */
  block: Block | null = null;
  /** SENSITIVE[form] for a valid, implemented form. */
  readonly sensitive: boolean;
  /** A block may continue after it. */
  readonly straight: boolean;
  /**
   * Retires unseen by the guest (Cpu.plumbingAt): a rewrite monitor's patch jump or stub
   * plumbing. Never part of a block, so that only Cpu.execute has to count it.
   */
  plumbing = false;
  /** The monitor's instruction hook sees it first (Cpu.codeRoleAt); never part of a block either. */
  watched = false;

  constructor(
    readonly ins: Instruction,
    /** The form's handler, or one that raises #UD (invalid bytes, unimplemented form). */
    readonly exec: Handler,
    implemented: boolean,
  ) {
    this.sensitive = implemented && SENSITIVE[ins.form] === 1;
    this.straight = implemented && STRAIGHT[ins.form] === 1 &&
      !(STRING_FORM[ins.form] === 1 && (ins.prefixes & (Prefix.Rep | Prefix.Repne)) !== 0);
  }
}

/** Compiled form of a block (jit.ts): returns how many instructions it retired. */
export type BlockFn = (cpu: Cpu, left: number, handlers: readonly Handler[], instructions: readonly Instruction[]) => number;

export class Block {
  /** Instructions in order, their handlers, and each one's offset from the block's first byte. */
  readonly decoded: Decoded[];
  readonly execs: Handler[];
  readonly inss: Instruction[];
  /** offs[i]: offset of instruction i; offs[length]: the block's size in bytes. */
  readonly offs: Int32Array;
  readonly length: number;
  /** Times the loop entered it (for the compile threshold). */
  runs = 0;
  /** The compiled block, null until compiled; undefined when it will not be (see jit.ts). */
  fn: BlockFn | null | undefined = null;
  /** Instructions the compiled function runs: all, or all but a last one it leaves to the loop. */
  covers = 0;
  /**
   * Up to two blocks on the same page that followed this one, by the EIP they start at (the
   * taken and fall-through sides of a branch): the loop goes on to them directly (cpu.ts
   * runCompiled). A page write drops the page's blocks together, links included.
   */
  next0: Block | null = null;
  nextEip0 = 0;
  next1: Block | null = null;
  nextEip1 = 0;

  constructor(decoded: Decoded[]) {
    this.decoded = decoded;
    this.execs = decoded.map((d) => d.exec);
    this.inss = decoded.map((d) => d.ins);
    this.length = decoded.length;
    this.offs = new Int32Array(decoded.length + 1);
    for (let i = 0; i < decoded.length; i++) this.offs[i + 1] = this.offs[i]! + decoded[i]!.ins.length;
    this.bytes = this.offs[decoded.length]!;
  }

  /** Size in bytes. */
  readonly bytes: number;
}
