// Instruction classes, per form of the instruction table (forms.generated.ts): control flow,
// privilege, IOPL sensitivity, Robin & Irvine sensitivity, VT-x exits, memory access and EFLAGS.
//
// Hand-written from the Intel SDM (vol. 2 instruction pages; vol. 3A §5.9 privileged instructions;
// vol. 3B §20.2.7 V86 sensitive instructions; vol. 3C §26.1 instructions that cause VM exits;
// vol. 3D App. C exit reasons) and shared/reference/sensitive-instructions.md, with the AMD
// APM for AMD-only instructions. The data is two tables:
//   MNEMONIC_CLASSES  one line per mnemonic; a mnemonic that is not listed has the defaults
//                     (flow 'next', unprivileged, no VM exit, no flags; memory by operand position).
//   FORM_OVERRIDES    an explicit list of forms (by iced Code name) whose class differs from their
//                     mnemonic's: MOV Sreg/CRn/DRn, far and indirect CALL/JMP, PUSH/POP Sreg,
//                     1-bit shifts, and the SSE forms that share a mnemonic with a string instruction.
// Memory access is derived from operand positions (see `dest`/`src` below) because the SDM's
// Op/En tables describe it that way: operand 1 is "ModRM:r/m (r, w)" or "(w)"; sources are "(r)".
// Every departure from the SDM or from iced-x86 is listed in ./README.md.
import type { Form, OperandKind } from './form';
import { FORMS } from './forms.generated';
import { flagsFromNames } from './eflags';
import {
  VMX_CONTROL, VMX_EXIT_REASON,
  type VmxControl, type VmxControlName, type VmxExitReasonName,
} from './vmx-exit-reasons';

/** Control flow, with iced-x86's FlowControl meanings. */
export type Flow =
  | 'next'               // falls through
  | 'branch'             // unconditional direct JMP (near rel or far ptr16:xx)
  | 'conditional'        // Jcc, JCXZ/JECXZ/JRCXZ, LOOP/LOOPcc
  | 'call'               // direct CALL (near rel or far ptr16:xx)
  | 'indirect-branch'    // JMP r/m, JMP m16:xx
  | 'indirect-call'      // CALL r/m, CALL m16:xx
  | 'return'             // RET, RETF, IRET, SYSEXIT, SYSRET, ... (target from the stack or MSRs)
  | 'interrupt'          // INT n, INT3, INTO, INT1, SYSCALL, SYSENTER, VMCALL, ...
  | 'xbegin-xabort-xend' // RTM: may continue at the XBEGIN fallback address
  | 'exception';         // UD0, UD1, UD2: always #UD

/** Data memory access of a form, when its r/m operand selects memory. */
export type MemoryAccess = 'none' | 'read' | 'write' | 'read-write' | 'address-only';

export interface VmExitEntry {
  readonly reason: VmxExitReasonName;
  /** 'always', or the controls that make it exit (read with `note` where the rule is more than a bit). */
  readonly when: 'always' | readonly VmxControlName[];
  readonly note?: string;
}

/** One row of MNEMONIC_CLASSES or the `set` of a FORM_OVERRIDES row. Absent fields take defaults. */
export interface ClassEntry {
  readonly flow?: Flow;
  /** #GP(0) at CPL > 0 (SDM vol. 3A §5.9), always or under a condition given in `privilegedNote`. */
  readonly privileged?: 'no' | 'always' | 'conditional';
  /** The condition for 'conditional', or the fault when it is not #GP(0). */
  readonly privilegedNote?: string;
  /** Subject to IOPL in protected mode ('always') or only in virtual-8086 mode ('v86'). */
  readonly iopl?: 'no' | 'always' | 'v86';
  readonly ioplNote?: string;
  /**
   * Sensitive but unprivileged: Robin & Irvine's list (2000; reference sheet part (c)), and the
   * far-pointer loads LDS/LES/LFS/LGS/LSS, which their list leaves out although they make the
   * same segment-load checks against the real CPL as MOV/POP Sreg (FORM_OVERRIDES).
   */
  readonly sensitive?: boolean;
  /** VT-x exit caused by executing the instruction in VMX non-root operation. */
  readonly vmExit?: VmExitEntry;
  /** Access to operand 0 when it is memory ("ModRM:r/m (r, w)" in the SDM's Op/En table). Default 'write'. */
  readonly dest?: MemoryAccess;
  /** Access to memory operands after operand 0. Default 'read'. */
  readonly src?: MemoryAccess;
  /** Memory reached through an address in a register that is not an operand (MONITOR [rAX], ...). */
  readonly implicit?: MemoryAccess;
  /** Stack access: PUSH-like (writes below rSP) or POP-like (reads at rSP). */
  readonly stack?: 'push' | 'pop';
  /** EFLAGS, as space-separated SDM names (eflags.ts). `writes` includes undefined, cleared and set flags. */
  readonly reads?: string;
  readonly writes?: string;
  readonly undef?: string;
  readonly clears?: string;
  readonly sets?: string;
}

export interface FormOverride {
  /** iced Code names, or a pattern over them; every name must exist and a pattern must match. */
  readonly forms: readonly string[] | RegExp;
  readonly set: ClassEntry;
  readonly why: string;
}

// ---- Flag groups -------------------------------------------------------------------------
const OSZAPC = 'OF SF ZF AF PF CF';
const OSZAP = 'OF SF ZF AF PF';
const SZAPC = 'SF ZF AF PF CF';
/** What PUSHF/PUSHFD store: RF and VM are stored as 0 (SDM vol. 2B PUSHF). */
const EFLAGS_IMAGE = 'CF PF AF ZF SF TF IF DF OF IOPL NT AC VIF VIP ID';
const EFLAGS_ALL = 'CF PF AF ZF SF TF IF DF OF IOPL NT RF VM AC VIF VIP ID';
/** POPF: VIP, VIF and VM are never changed; RF is cleared (SDM vol. 2B POPF, Operation). */
const POPF_WRITES = 'CF PF AF ZF SF TF IF DF OF IOPL NT RF AC ID';
/** INT n/INT3/INTO/INT1: TF, NT, RF, VM cleared; IF cleared through an interrupt gate; AC cleared in real mode. */
const INT_WRITES = 'TF IF NT RF AC VM';
const INT_CLEARS = 'TF NT RF VM';
/** VMX instruction conventions (SDM vol. 3C §31.2): VMsucceed clears all six, VMfailInvalid sets CF,
 *  VMfailValid sets ZF; the other four are always cleared. */
const VMX_STATUS = { writes: OSZAPC, clears: 'OF SF AF PF' } as const;

// ---- Notes shared by several rows ----------------------------------------------------------
const UMIP = 'CR4.UMIP = 1 (SDM vol. 3A §2.5); otherwise unprivileged';
const UD_AT_CPL3 = '#UD, not #GP(0), at CPL > 0';
const POPF_IOPL =
  'in V86 mode with IOPL < 3: #GP(0) (unless CR4.VME); in protected mode no fault: IOPL changes only at CPL 0 and IF only at CPL <= IOPL (silently dropped otherwise)';
const IRET_IOPL =
  'in V86 mode with IOPL < 3: #GP(0) (unless CR4.VME); in protected mode the popped IOPL is kept only at CPL 0 and IF only at CPL <= IOPL, like POPF';
const CLI_STI_IOPL = '#GP(0) if CPL > IOPL, except that with CR4.PVI (CPL 3) or CR4.VME (V86) they change VIF instead';
const INT_IOPL = 'in V86 mode with IOPL < 3: #GP(0), unless CR4.VME and the TSS interrupt-redirection bitmap send it to the V86 handler';
const IO_IOPL = 'if CPL > IOPL or in V86 mode, the TSS I/O permission bitmap decides (#GP(0) if a bit is set)';
const IO_EXIT: VmExitEntry = {
  reason: 'IO_INSTRUCTION', when: ['UNCONDITIONAL_IO_EXITING', 'USE_IO_BITMAPS'],
  note: "if 'use I/O bitmaps' (primary bit 25) is 1, iff a bitmap bit of a port accessed is 1; otherwise iff 'unconditional I/O exiting' (primary bit 24)",
};
const MSR_NOTE = "always, unless 'use MSR bitmaps' (primary bit 28) is 1 and the MSR's bitmap bit is 0";
const CR_NOTE_WRITE =
  "MOV to CR0/CR4 iff it changes a bit that is set in the guest/host mask from the read shadow; to CR3 iff 'CR3-load exiting' and the value is not a CR3-target value; to CR8 iff 'CR8-load exiting'";
const CR_NOTE_READ =
  "MOV from CR3 iff 'CR3-store exiting'; from CR8 iff 'CR8-store exiting'; MOV from CR0/CR4 never exits (it reads the read shadow)";
const DT_EXIT_GDT: VmExitEntry = { reason: 'GDTR_IDTR_ACCESS', when: ['DESCRIPTOR_TABLE_EXITING'] };
const DT_EXIT_LDT: VmExitEntry = { reason: 'LDTR_TR_ACCESS', when: ['DESCRIPTOR_TABLE_EXITING'] };

// ---- The table: one line per mnemonic ---------------------------------------------------------
export const MNEMONIC_CLASSES = {
  // Binary arithmetic (SDM vol. 1 §7.3.2; vol. 2 pages of each instruction)
  add:        { dest: 'read-write', writes: OSZAPC },
  adc:        { dest: 'read-write', reads: 'CF', writes: OSZAPC },
  sub:        { dest: 'read-write', writes: OSZAPC },
  sbb:        { dest: 'read-write', reads: 'CF', writes: OSZAPC },
  cmp:        { dest: 'read', writes: OSZAPC },
  inc:        { dest: 'read-write', writes: OSZAP },
  dec:        { dest: 'read-write', writes: OSZAP },
  neg:        { dest: 'read-write', writes: OSZAPC },
  mul:        { dest: 'read', writes: OSZAPC, undef: 'SF ZF AF PF' },
  imul:       { dest: 'read', writes: OSZAPC, undef: 'SF ZF AF PF' },
  div:        { dest: 'read', writes: OSZAPC, undef: OSZAPC },
  idiv:       { dest: 'read', writes: OSZAPC, undef: OSZAPC },
  xadd:       { dest: 'read-write', writes: OSZAPC },
  cmpxchg:    { dest: 'read-write', writes: OSZAPC },
  cmpxchg8b:  { dest: 'read-write', writes: 'ZF' },
  cmpxchg16b: { dest: 'read-write', writes: 'ZF' },
  adcx:       { reads: 'CF', writes: 'CF' },
  adox:       { reads: 'OF', writes: 'OF' },
  // Decimal arithmetic (vol. 1 §7.3.3)
  daa:        { reads: 'AF CF', writes: OSZAPC, undef: 'OF' },
  das:        { reads: 'AF CF', writes: OSZAPC, undef: 'OF' },
  aaa:        { reads: 'AF', writes: OSZAPC, undef: 'OF SF ZF PF' },
  aas:        { reads: 'AF', writes: OSZAPC, undef: 'OF SF ZF PF' },
  aam:        { writes: OSZAPC, undef: 'OF AF CF' },
  aad:        { writes: OSZAPC, undef: 'OF AF CF' },
  // Logical (vol. 1 §7.3.4)
  and:        { dest: 'read-write', writes: OSZAPC, undef: 'AF', clears: 'OF CF' },
  or:         { dest: 'read-write', writes: OSZAPC, undef: 'AF', clears: 'OF CF' },
  xor:        { dest: 'read-write', writes: OSZAPC, undef: 'AF', clears: 'OF CF' },
  test:       { dest: 'read', writes: OSZAPC, undef: 'AF', clears: 'OF CF' },
  not:        { dest: 'read-write' },
  // Shifts and rotates (vol. 2B SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR): OF is defined only for 1-bit
  // shifts (FORM_OVERRIDES); a masked count of 0 leaves every flag unchanged.
  sal:        { dest: 'read-write', writes: OSZAPC, undef: 'OF AF' },
  shl:        { dest: 'read-write', writes: OSZAPC, undef: 'OF AF' },
  shr:        { dest: 'read-write', writes: OSZAPC, undef: 'OF AF' },
  sar:        { dest: 'read-write', writes: OSZAPC, undef: 'OF AF' },
  shld:       { dest: 'read-write', writes: OSZAPC, undef: 'OF AF' },
  shrd:       { dest: 'read-write', writes: OSZAPC, undef: 'OF AF' },
  rol:        { dest: 'read-write', writes: 'OF CF', undef: 'OF' },
  ror:        { dest: 'read-write', writes: 'OF CF', undef: 'OF' },
  rcl:        { dest: 'read-write', reads: 'CF', writes: 'OF CF', undef: 'OF' },
  rcr:        { dest: 'read-write', reads: 'CF', writes: 'OF CF', undef: 'OF' },
  // Bit and byte (vol. 1 §7.3.7)
  bt:         { dest: 'read', writes: 'OF SF AF PF CF', undef: 'OF SF AF PF' },
  bts:        { dest: 'read-write', writes: 'OF SF AF PF CF', undef: 'OF SF AF PF' },
  btr:        { dest: 'read-write', writes: 'OF SF AF PF CF', undef: 'OF SF AF PF' },
  btc:        { dest: 'read-write', writes: 'OF SF AF PF CF', undef: 'OF SF AF PF' },
  bsf:        { writes: OSZAPC, undef: 'OF SF AF PF CF' },
  bsr:        { writes: OSZAPC, undef: 'OF SF AF PF CF' },
  lzcnt:      { writes: OSZAPC, undef: 'OF SF AF PF' },
  tzcnt:      { writes: OSZAPC, undef: 'OF SF AF PF' },
  popcnt:     { writes: OSZAPC, clears: 'OF SF AF PF CF' },
  seto:       { reads: 'OF' },
  setno:      { reads: 'OF' },
  setb:       { reads: 'CF' },
  setae:      { reads: 'CF' },
  sete:       { reads: 'ZF' },
  setne:      { reads: 'ZF' },
  setbe:      { reads: 'ZF CF' },
  seta:       { reads: 'ZF CF' },
  sets:       { reads: 'SF' },
  setns:      { reads: 'SF' },
  setp:       { reads: 'PF' },
  setnp:      { reads: 'PF' },
  setl:       { reads: 'SF OF' },
  setge:      { reads: 'SF OF' },
  setle:      { reads: 'ZF SF OF' },
  setg:       { reads: 'ZF SF OF' },
  cmovo:      { reads: 'OF' },
  cmovno:     { reads: 'OF' },
  cmovb:      { reads: 'CF' },
  cmovae:     { reads: 'CF' },
  cmove:      { reads: 'ZF' },
  cmovne:     { reads: 'ZF' },
  cmovbe:     { reads: 'ZF CF' },
  cmova:      { reads: 'ZF CF' },
  cmovs:      { reads: 'SF' },
  cmovns:     { reads: 'SF' },
  cmovp:      { reads: 'PF' },
  cmovnp:     { reads: 'PF' },
  cmovl:      { reads: 'SF OF' },
  cmovge:     { reads: 'SF OF' },
  cmovle:     { reads: 'ZF SF OF' },
  cmovg:      { reads: 'ZF SF OF' },
  salc:       { reads: 'CF' },
  // BMI1/BMI2 (vol. 2 ANDN, BEXTR, BLSI, BLSMSK, BLSR, BZHI); PDEP/PEXT/MULX/RORX/SARX/SHLX/SHRX: no flags
  andn:       { writes: OSZAPC, undef: 'AF PF', clears: 'OF CF' },
  bextr:      { writes: OSZAPC, undef: 'SF AF PF', clears: 'OF CF' },
  blsi:       { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  blsmsk:     { writes: OSZAPC, undef: 'AF PF', clears: 'OF ZF' },
  blsr:       { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  bzhi:       { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  // AMD TBM (APM vol. 3): ZF, SF, CF written; OF cleared; AF, PF undefined
  blcfill:    { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  blci:       { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  blcic:      { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  blcmsk:     { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  blcs:       { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  blsfill:    { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  blsic:      { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  t1mskc:     { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  tzmsk:      { writes: OSZAPC, undef: 'AF PF', clears: 'OF' },
  // Atomic RMW (RAO-INT, CMPccXADD): memory destination is read and written
  aadd:       { dest: 'read-write' },
  aand:       { dest: 'read-write' },
  aor:        { dest: 'read-write' },
  axor:       { dest: 'read-write' },
  cmpoxadd:   { dest: 'read-write', writes: OSZAPC },
  cmpnoxadd:  { dest: 'read-write', writes: OSZAPC },
  cmpbxadd:   { dest: 'read-write', writes: OSZAPC },
  cmpnbxadd:  { dest: 'read-write', writes: OSZAPC },
  cmpzxadd:   { dest: 'read-write', writes: OSZAPC },
  cmpnzxadd:  { dest: 'read-write', writes: OSZAPC },
  cmpbexadd:  { dest: 'read-write', writes: OSZAPC },
  cmpnbexadd: { dest: 'read-write', writes: OSZAPC },
  cmpsxadd:   { dest: 'read-write', writes: OSZAPC },
  cmpnsxadd:  { dest: 'read-write', writes: OSZAPC },
  cmppxadd:   { dest: 'read-write', writes: OSZAPC },
  cmpnpxadd:  { dest: 'read-write', writes: OSZAPC },
  cmplxadd:   { dest: 'read-write', writes: OSZAPC },
  cmpnlxadd:  { dest: 'read-write', writes: OSZAPC },
  cmplexadd:  { dest: 'read-write', writes: OSZAPC },
  cmpnlexadd: { dest: 'read-write', writes: OSZAPC },

  // Data transfer (vol. 1 §7.3.1). MOV Sreg/CRn/DRn: FORM_OVERRIDES.
  xchg:       { dest: 'read-write', src: 'read-write' },
  lea:        { src: 'address-only' },
  xlatb:      { dest: 'read' },
  push:       { dest: 'read', stack: 'push' },   // PUSH Sreg forms: FORM_OVERRIDES
  pop:        { stack: 'pop' },                  // POP Sreg forms: FORM_OVERRIDES
  pusha:      { stack: 'push' },
  pushad:     { stack: 'push' },
  popa:       { stack: 'pop' },
  popad:      { stack: 'pop' },
  enter:      { stack: 'push' },
  leave:      { stack: 'pop' },

  // Control transfer (vol. 1 §7.3.8). Near indirect and far forms of CALL/JMP: FORM_OVERRIDES.
  jmp:        { flow: 'branch', dest: 'read' },
  call:       { flow: 'call', dest: 'read', stack: 'push' },
  ret:        { flow: 'return', stack: 'pop' },
  retf:       { flow: 'return', stack: 'pop', sensitive: true },
  jo:         { flow: 'conditional', reads: 'OF' },
  jno:        { flow: 'conditional', reads: 'OF' },
  jb:         { flow: 'conditional', reads: 'CF' },
  jae:        { flow: 'conditional', reads: 'CF' },
  je:         { flow: 'conditional', reads: 'ZF' },
  jne:        { flow: 'conditional', reads: 'ZF' },
  jbe:        { flow: 'conditional', reads: 'ZF CF' },
  ja:         { flow: 'conditional', reads: 'ZF CF' },
  js:         { flow: 'conditional', reads: 'SF' },
  jns:        { flow: 'conditional', reads: 'SF' },
  jp:         { flow: 'conditional', reads: 'PF' },
  jnp:        { flow: 'conditional', reads: 'PF' },
  jl:         { flow: 'conditional', reads: 'SF OF' },
  jge:        { flow: 'conditional', reads: 'SF OF' },
  jle:        { flow: 'conditional', reads: 'ZF SF OF' },
  jg:         { flow: 'conditional', reads: 'ZF SF OF' },
  jcxz:       { flow: 'conditional' },
  jecxz:      { flow: 'conditional' },
  jrcxz:      { flow: 'conditional' },
  loop:       { flow: 'conditional' },
  loope:      { flow: 'conditional', reads: 'ZF' },
  loopne:     { flow: 'conditional', reads: 'ZF' },
  // Software interrupts (vol. 2A INT n/INTO/INT3/INT1; vol. 3B §20.2.7: only INT n is IOPL-sensitive in V86)
  int:        { flow: 'interrupt', stack: 'push', iopl: 'v86', ioplNote: INT_IOPL, sensitive: true, reads: 'IOPL VM', writes: INT_WRITES, clears: INT_CLEARS },
  int3:       { flow: 'interrupt', stack: 'push', sensitive: true, writes: INT_WRITES, clears: INT_CLEARS, vmExit: { reason: 'EXCEPTION_OR_NMI', when: ['EXCEPTION_BITMAP_BP'] } },
  into:       { flow: 'interrupt', stack: 'push', sensitive: true, reads: 'OF', writes: INT_WRITES, clears: INT_CLEARS, vmExit: { reason: 'EXCEPTION_OR_NMI', when: ['EXCEPTION_BITMAP_OF'], note: "iff OF = 1 and exception bitmap bit 4 (#OF)" } },
  int1:       { flow: 'interrupt', stack: 'push', sensitive: true, writes: INT_WRITES, clears: INT_CLEARS, vmExit: { reason: 'EXCEPTION_OR_NMI', when: ['EXCEPTION_BITMAP_DB'] } },
  iret:       { flow: 'return', stack: 'pop', iopl: 'v86', ioplNote: IRET_IOPL, reads: 'IOPL NT VM', writes: 'CF PF AF ZF SF TF IF DF OF IOPL NT' },  // o16: FLAGS only
  iretd:      { flow: 'return', stack: 'pop', iopl: 'v86', ioplNote: IRET_IOPL, reads: 'IOPL NT VM', writes: EFLAGS_ALL },
  iretq:      { flow: 'return', stack: 'pop', reads: 'IOPL NT', writes: EFLAGS_ALL },  // 64-bit mode: no V86
  bound:      {},
  ud0:        { flow: 'exception', dest: 'none', src: 'none' },
  ud1:        { flow: 'exception', dest: 'none', src: 'none' },
  ud2:        { flow: 'exception' },
  // Fast system calls (vol. 2B SYSCALL, SYSENTER, SYSEXIT, SYSRET)
  syscall:    { flow: 'interrupt', reads: EFLAGS_ALL, writes: EFLAGS_ALL },
  sysenter:   { flow: 'interrupt', writes: 'IF RF VM', clears: 'IF RF VM' },
  sysexit:    { flow: 'return', privileged: 'always' },
  sysexitq:   { flow: 'return', privileged: 'always' },
  sysret:     { flow: 'return', privileged: 'always', writes: EFLAGS_ALL, clears: 'RF VM' },
  sysretq:    { flow: 'return', privileged: 'always', writes: EFLAGS_ALL, clears: 'RF VM' },
  rsm:        { flow: 'return', writes: EFLAGS_ALL, vmExit: { reason: 'RSM', when: [], note: 'in SMM under the dual-monitor treatment of SMIs (otherwise RSM is #UD outside SMM)' } },

  // String instructions (vol. 1 §7.3.9): the SSE CMPSD/MOVSD forms are in FORM_OVERRIDES
  movsb:      { reads: 'DF' },
  movsw:      { reads: 'DF' },
  movsd:      { reads: 'DF' },
  movsq:      { reads: 'DF' },
  cmpsb:      { dest: 'read', reads: 'DF', writes: OSZAPC },
  cmpsw:      { dest: 'read', reads: 'DF', writes: OSZAPC },
  cmpsd:      { dest: 'read', reads: 'DF', writes: OSZAPC },
  cmpsq:      { dest: 'read', reads: 'DF', writes: OSZAPC },
  scasb:      { reads: 'DF', writes: OSZAPC },
  scasw:      { reads: 'DF', writes: OSZAPC },
  scasd:      { reads: 'DF', writes: OSZAPC },
  scasq:      { reads: 'DF', writes: OSZAPC },
  lodsb:      { reads: 'DF' },
  lodsw:      { reads: 'DF' },
  lodsd:      { reads: 'DF' },
  lodsq:      { reads: 'DF' },
  stosb:      { reads: 'DF' },
  stosw:      { reads: 'DF' },
  stosd:      { reads: 'DF' },
  stosq:      { reads: 'DF' },
  // I/O (vol. 1 §19.5, §19.8; vol. 3C §26.1.3)
  in:         { iopl: 'always', ioplNote: IO_IOPL, reads: 'IOPL VM', vmExit: IO_EXIT },
  out:        { iopl: 'always', ioplNote: IO_IOPL, reads: 'IOPL VM', vmExit: IO_EXIT },
  insb:       { iopl: 'always', ioplNote: IO_IOPL, reads: 'DF IOPL VM', vmExit: IO_EXIT },
  insw:       { iopl: 'always', ioplNote: IO_IOPL, reads: 'DF IOPL VM', vmExit: IO_EXIT },
  insd:       { iopl: 'always', ioplNote: IO_IOPL, reads: 'DF IOPL VM', vmExit: IO_EXIT },
  outsb:      { iopl: 'always', ioplNote: IO_IOPL, reads: 'DF IOPL VM', vmExit: IO_EXIT },
  outsw:      { iopl: 'always', ioplNote: IO_IOPL, reads: 'DF IOPL VM', vmExit: IO_EXIT },
  outsd:      { iopl: 'always', ioplNote: IO_IOPL, reads: 'DF IOPL VM', vmExit: IO_EXIT },

  // Flag control (vol. 1 §7.3.13)
  stc:        { writes: 'CF', sets: 'CF' },
  clc:        { writes: 'CF', clears: 'CF' },
  cmc:        { reads: 'CF', writes: 'CF' },
  std:        { writes: 'DF', sets: 'DF' },
  cld:        { writes: 'DF', clears: 'DF' },
  sti:        { iopl: 'always', ioplNote: CLI_STI_IOPL, reads: 'IOPL VM VIP', writes: 'IF VIF' },
  cli:        { iopl: 'always', ioplNote: CLI_STI_IOPL, reads: 'IOPL VM', writes: 'IF VIF' },
  stac:       { privileged: 'always', privilegedNote: UD_AT_CPL3, writes: 'AC', sets: 'AC' },
  clac:       { privileged: 'always', privilegedNote: UD_AT_CPL3, writes: 'AC', clears: 'AC' },
  lahf:       { reads: SZAPC },
  sahf:       { writes: SZAPC },
  pushf:      { stack: 'push', iopl: 'v86', sensitive: true, reads: 'CF PF AF ZF SF TF IF DF OF IOPL NT' },
  pushfd:     { stack: 'push', iopl: 'v86', sensitive: true, reads: EFLAGS_IMAGE },
  pushfq:     { stack: 'push', sensitive: true, reads: EFLAGS_IMAGE },  // 64-bit mode: no V86
  popf:       { stack: 'pop', iopl: 'v86', ioplNote: POPF_IOPL, sensitive: true, reads: 'IOPL VM', writes: 'CF PF AF ZF SF TF IF DF OF IOPL NT' },
  popfd:      { stack: 'pop', iopl: 'v86', ioplNote: POPF_IOPL, sensitive: true, reads: 'IOPL VM', writes: POPF_WRITES, clears: 'RF' },
  popfq:      { stack: 'pop', sensitive: true, reads: 'IOPL', writes: POPF_WRITES, clears: 'RF' },

  // Segment and descriptor-table instructions (vol. 3A §2.6, §5.9; reference sheet parts (a), (c))
  sgdt:       { privileged: 'conditional', privilegedNote: UMIP, sensitive: true, vmExit: DT_EXIT_GDT },
  sidt:       { privileged: 'conditional', privilegedNote: UMIP, sensitive: true, vmExit: DT_EXIT_GDT },
  sldt:       { privileged: 'conditional', privilegedNote: UMIP, sensitive: true, vmExit: DT_EXIT_LDT },
  str:        { privileged: 'conditional', privilegedNote: UMIP, sensitive: true, vmExit: DT_EXIT_LDT },
  smsw:       { privileged: 'conditional', privilegedNote: UMIP, sensitive: true },
  lgdt:       { dest: 'read', privileged: 'always', vmExit: DT_EXIT_GDT },
  lidt:       { dest: 'read', privileged: 'always', vmExit: DT_EXIT_GDT },
  lldt:       { dest: 'read', privileged: 'always', vmExit: DT_EXIT_LDT },
  ltr:        { dest: 'read', privileged: 'always', vmExit: DT_EXIT_LDT },
  lmsw:       { dest: 'read', privileged: 'always', vmExit: { reason: 'CONTROL_REGISTER_ACCESS', when: [], note: 'iff it would change a CR0 bit (PE, MP, EM, TS) that is set in the CR0 guest/host mask from the read shadow' } },
  clts:       { privileged: 'always', vmExit: { reason: 'CONTROL_REGISTER_ACCESS', when: [], note: 'iff CR0.TS is set in the CR0 guest/host mask and in the CR0 read shadow' } },
  lar:        { sensitive: true, writes: 'ZF' },
  lsl:        { sensitive: true, writes: 'ZF' },
  verr:       { dest: 'read', sensitive: true, writes: 'ZF' },
  verw:       { dest: 'read', sensitive: true, writes: 'ZF' },
  arpl:       { dest: 'read-write', writes: 'ZF' },
  swapgs:     { privileged: 'always' },
  lkgs:       { dest: 'read', privileged: 'always' },

  // System instructions (vol. 3A §5.9; reference sheet part (a))
  hlt:        { privileged: 'always', vmExit: { reason: 'HLT', when: ['HLT_EXITING'] } },
  invd:       { privileged: 'always', vmExit: { reason: 'INVD', when: 'always' } },
  wbinvd:     { privileged: 'always', vmExit: { reason: 'WBINVD', when: ['WBINVD_EXITING'] } },
  wbnoinvd:   { privileged: 'always', vmExit: { reason: 'WBINVD', when: ['WBINVD_EXITING'] } },
  invlpg:     { dest: 'address-only', privileged: 'always', vmExit: { reason: 'INVLPG', when: ['INVLPG_EXITING'] } },
  invpcid:    { privileged: 'always', vmExit: { reason: 'INVPCID', when: ['INVLPG_EXITING', 'ENABLE_INVPCID'], note: "iff 'INVLPG exiting' (primary bit 9) and 'enable INVPCID' (secondary bit 12) are both 1" } },
  rdmsr:      { privileged: 'always', vmExit: { reason: 'RDMSR', when: ['USE_MSR_BITMAPS'], note: MSR_NOTE } },
  wrmsr:      { privileged: 'always', vmExit: { reason: 'WRMSR', when: ['USE_MSR_BITMAPS'], note: MSR_NOTE } },
  wrmsrns:    { privileged: 'always', vmExit: { reason: 'WRMSR', when: ['USE_MSR_BITMAPS'], note: MSR_NOTE } },
  rdmsrlist:  { privileged: 'always', implicit: 'read-write', vmExit: { reason: 'RDMSRLIST', when: ['USE_MSR_BITMAPS'], note: 'per MSR of the list, as for RDMSR' } },
  wrmsrlist:  { privileged: 'always', implicit: 'read', vmExit: { reason: 'WRMSRLIST', when: ['USE_MSR_BITMAPS'], note: 'per MSR of the list, as for WRMSR' } },
  rdpmc:      { privileged: 'conditional', privilegedNote: 'CR4.PCE = 0', vmExit: { reason: 'RDPMC', when: ['RDPMC_EXITING'] } },
  rdtsc:      { privileged: 'conditional', privilegedNote: 'CR4.TSD = 1', vmExit: { reason: 'RDTSC', when: ['RDTSC_EXITING'] } },
  rdtscp:     { privileged: 'conditional', privilegedNote: 'CR4.TSD = 1', vmExit: { reason: 'RDTSCP', when: ['RDTSC_EXITING'], note: "iff 'RDTSC exiting' (primary bit 12); #UD instead if 'enable RDTSCP' (secondary bit 3) is 0" } },
  xsetbv:     { privileged: 'always', vmExit: { reason: 'XSETBV', when: 'always' } },
  cpuid:      { vmExit: { reason: 'CPUID', when: 'always' } },
  getsec:     { privileged: 'conditional', privilegedNote: 'leaf-dependent: GETSEC[CAPABILITIES] runs at any CPL, the SMX leaves that change state need CPL 0', vmExit: { reason: 'GETSEC', when: 'always' } },
  getsecq:    { privileged: 'conditional', privilegedNote: 'leaf-dependent, as GETSEC', vmExit: { reason: 'GETSEC', when: 'always' } },
  monitor:    { implicit: 'read', privileged: 'always', privilegedNote: UD_AT_CPL3, vmExit: { reason: 'MONITOR', when: ['MONITOR_EXITING'] } },
  mwait:      { privileged: 'always', privilegedNote: UD_AT_CPL3, vmExit: { reason: 'MWAIT', when: ['MWAIT_EXITING'] } },
  pause:      { vmExit: { reason: 'PAUSE', when: ['PAUSE_EXITING', 'PAUSE_LOOP_EXITING'], note: "iff 'PAUSE exiting' (primary bit 30), or at CPL 0 when 'PAUSE-loop exiting' (secondary bit 10) detects a spin loop" } },
  rdrand:     { writes: OSZAPC, clears: OSZAP, vmExit: { reason: 'RDRAND', when: ['RDRAND_EXITING'] } },
  rdseed:     { writes: OSZAPC, clears: OSZAP, vmExit: { reason: 'RDSEED', when: ['RDSEED_EXITING'] } },

  // VMX instructions (vol. 3C ch. 31): #GP(0) at CPL > 0 in VMX root operation, #UD outside VMX operation
  vmcall:     { flow: 'interrupt', privileged: 'always', privilegedNote: 'in VMX root operation; in VMX non-root operation it exits at any CPL', ...VMX_STATUS, vmExit: { reason: 'VMCALL', when: 'always' } },
  vmclear:    { dest: 'read', privileged: 'always', ...VMX_STATUS, vmExit: { reason: 'VMCLEAR', when: 'always' } },
  vmlaunch:   { flow: 'interrupt', privileged: 'always', ...VMX_STATUS, vmExit: { reason: 'VMLAUNCH', when: 'always' } },
  vmresume:   { flow: 'interrupt', privileged: 'always', ...VMX_STATUS, vmExit: { reason: 'VMRESUME', when: 'always' } },
  vmptrld:    { dest: 'read', privileged: 'always', ...VMX_STATUS, vmExit: { reason: 'VMPTRLD', when: 'always' } },
  vmptrst:    { privileged: 'always', writes: OSZAPC, clears: OSZAPC, vmExit: { reason: 'VMPTRST', when: 'always' } },
  vmread:     { privileged: 'always', ...VMX_STATUS, vmExit: { reason: 'VMREAD', when: ['VMCS_SHADOWING'], note: "always, unless 'VMCS shadowing' (secondary bit 14) is 1 and the field's VMREAD-bitmap bit is 0" } },
  vmwrite:    { privileged: 'always', ...VMX_STATUS, vmExit: { reason: 'VMWRITE', when: ['VMCS_SHADOWING'], note: "always, unless 'VMCS shadowing' (secondary bit 14) is 1 and the field's VMWRITE-bitmap bit is 0" } },
  vmxoff:     { privileged: 'always', ...VMX_STATUS, vmExit: { reason: 'VMXOFF', when: 'always' } },
  vmxon:      { dest: 'read', privileged: 'always', ...VMX_STATUS, vmExit: { reason: 'VMXON', when: 'always' } },
  invept:     { privileged: 'always', ...VMX_STATUS, vmExit: { reason: 'INVEPT', when: 'always' } },
  invvpid:    { privileged: 'always', ...VMX_STATUS, vmExit: { reason: 'INVVPID', when: 'always' } },
  vmfunc:     { writes: OSZAPC, vmExit: { reason: 'VMFUNC', when: ['ENABLE_VM_FUNCTIONS'], note: 'iff the VM function in EAX is not enabled, or it fails (EPTP switching to an invalid entry)' } },
  // SGX (vol. 3D ch. 38-41)
  encls:      { privileged: 'always', writes: OSZAPC, vmExit: { reason: 'ENCLS', when: ['ENCLS_EXITING'], note: "iff 'enable ENCLS exiting' (secondary bit 15) and the leaf's ENCLS-exiting-bitmap bit are 1" } },
  enclv:      { privileged: 'always', writes: OSZAPC, vmExit: { reason: 'ENCLV', when: ['ENCLV_EXITING'], note: "iff 'enable ENCLV exiting' (secondary bit 28) and the leaf's ENCLV-exiting-bitmap bit are 1" } },
  enclu:      { writes: OSZAPC },  // leaf-dependent: the SGX leaves report status in ZF/CF and clear the others
  // XSAVE family (vol. 1 ch. 13): XSAVE/XSAVEOPT update XSTATE_BV bit by bit, so they read it too
  xsave:      { dest: 'read-write' },
  xsave64:    { dest: 'read-write' },
  xsaveopt:   { dest: 'read-write' },
  xsaveopt64: { dest: 'read-write' },
  xrstor:     { dest: 'read' },
  xrstor64:   { dest: 'read' },
  xsaves:     { privileged: 'always', vmExit: { reason: 'XSAVES', when: ['ENABLE_XSAVES_XRSTORS'], note: "iff 'enable XSAVES/XRSTORS' and the requested-feature bitmap meets the XSS-exiting bitmap" } },
  xsaves64:   { privileged: 'always', vmExit: { reason: 'XSAVES', when: ['ENABLE_XSAVES_XRSTORS'], note: "iff 'enable XSAVES/XRSTORS' and the requested-feature bitmap meets the XSS-exiting bitmap" } },
  xrstors:    { dest: 'read', privileged: 'always', vmExit: { reason: 'XRSTORS', when: ['ENABLE_XSAVES_XRSTORS'], note: "iff 'enable XSAVES/XRSTORS' and the requested-feature bitmap meets the XSS-exiting bitmap" } },
  xrstors64:  { dest: 'read', privileged: 'always', vmExit: { reason: 'XRSTORS', when: ['ENABLE_XSAVES_XRSTORS'], note: "iff 'enable XSAVES/XRSTORS' and the requested-feature bitmap meets the XSS-exiting bitmap" } },
  fxrstor:    { dest: 'read' },
  fxrstor64:  { dest: 'read' },
  ldmxcsr:    { dest: 'read' },
  vldmxcsr:   { dest: 'read' },
  // Cache and TLB control, prefetch: an address, no data access
  // CLFLUSH/CLFLUSHOPT/CLWB/MONITOR/UMONITOR are checked as a 1-byte load (may #PF), so 'read'
  clflush:    { dest: 'read' },
  clflushopt: { dest: 'read' },
  clwb:       { dest: 'read' },
  cldemote:   { dest: 'address-only' },
  prefetch:   { dest: 'address-only' },
  prefetchw:  { dest: 'address-only' },
  prefetchwt1:{ dest: 'address-only' },
  prefetchnta:{ dest: 'address-only' },
  prefetcht0: { dest: 'address-only' },
  prefetcht1: { dest: 'address-only' },
  prefetcht2: { dest: 'address-only' },
  prefetchit0:{ dest: 'address-only' },
  prefetchit1:{ dest: 'address-only' },
  vgatherpf0dpd: { dest: 'address-only' },
  vgatherpf0dps: { dest: 'address-only' },
  vgatherpf0qpd: { dest: 'address-only' },
  vgatherpf0qps: { dest: 'address-only' },
  vgatherpf1dpd: { dest: 'address-only' },
  vgatherpf1dps: { dest: 'address-only' },
  vgatherpf1qpd: { dest: 'address-only' },
  vgatherpf1qps: { dest: 'address-only' },
  vscatterpf0dpd: { dest: 'address-only' },
  vscatterpf0dps: { dest: 'address-only' },
  vscatterpf0qpd: { dest: 'address-only' },
  vscatterpf0qps: { dest: 'address-only' },
  vscatterpf1dpd: { dest: 'address-only' },
  vscatterpf1dps: { dest: 'address-only' },
  vscatterpf1qpd: { dest: 'address-only' },
  vscatterpf1qps: { dest: 'address-only' },
  nop:        { dest: 'none' },         // NOP r/m (0F 1F /0): the address is never formed
  reservednop:{ dest: 'none' },
  ptwrite:    { dest: 'read' },
  umonitor:   { implicit: 'read' },
  umwait:     { writes: OSZAPC, clears: OSZAP, vmExit: { reason: 'UMWAIT', when: ['ENABLE_USER_WAIT_AND_PAUSE', 'RDTSC_EXITING'], note: "iff 'enable user wait and pause' (secondary bit 26) and 'RDTSC exiting' (primary bit 12) are both 1" } },
  tpause:     { writes: OSZAPC, clears: OSZAP, vmExit: { reason: 'TPAUSE', when: ['ENABLE_USER_WAIT_AND_PAUSE', 'RDTSC_EXITING'], note: "iff 'enable user wait and pause' (secondary bit 26) and 'RDTSC exiting' (primary bit 12) are both 1" } },
  // CET shadow stack (vol. 1 ch. 17)
  rstorssp:   { dest: 'read-write', writes: OSZAPC, clears: OSZAP },
  clrssbsy:   { dest: 'read-write', privileged: 'always', writes: OSZAPC, clears: OSZAP },
  setssbsy:   { privileged: 'always' },
  saveprevssp:{ reads: 'CF' },  // CF from RSTORSSP says a 4-byte alignment hole is to be popped
  wrussd:     { privileged: 'always' },
  wrussq:     { privileged: 'always' },
  // RTM (vol. 1 ch. 16)
  xbegin:     { flow: 'xbegin-xabort-xend' },
  xabort:     { flow: 'xbegin-xabort-xend' },
  xend:       { flow: 'xbegin-xabort-xend' },
  xtest:      { writes: OSZAPC, clears: 'OF SF AF PF CF' },
  // Key Locker (Intel Key Locker spec.): ZF reports a bad handle, the other status flags are cleared
  loadiwkey:  { privileged: 'always', writes: OSZAPC, clears: 'OF SF AF PF CF', vmExit: { reason: 'LOADIWKEY', when: ['LOADIWKEY_EXITING'] } },
  encodekey128: { writes: OSZAPC, clears: OSZAPC },
  encodekey256: { writes: OSZAPC, clears: OSZAPC },
  aesenc128kl:  { writes: OSZAPC, clears: 'OF SF AF PF CF' },
  aesdec128kl:  { writes: OSZAPC, clears: 'OF SF AF PF CF' },
  aesenc256kl:  { writes: OSZAPC, clears: 'OF SF AF PF CF' },
  aesdec256kl:  { writes: OSZAPC, clears: 'OF SF AF PF CF' },
  aesencwide128kl: { dest: 'read', writes: OSZAPC, clears: 'OF SF AF PF CF' },
  aesdecwide128kl: { dest: 'read', writes: OSZAPC, clears: 'OF SF AF PF CF' },
  aesencwide256kl: { dest: 'read', writes: OSZAPC, clears: 'OF SF AF PF CF' },
  aesdecwide256kl: { dest: 'read', writes: OSZAPC, clears: 'OF SF AF PF CF' },
  // ENQCMD/ENQCMDS, PCONFIG, HRESET
  enqcmd:     { writes: OSZAPC, clears: 'OF SF AF PF CF', vmExit: { reason: 'ENQCMD_PASID_TRANSLATION_FAILURE', when: [], note: 'iff PASID translation is enabled and the PASID does not translate' } },
  enqcmds:    { privileged: 'always', writes: OSZAPC, clears: 'OF SF AF PF CF', vmExit: { reason: 'ENQCMDS_PASID_TRANSLATION_FAILURE', when: [], note: 'iff PASID translation is enabled and the PASID does not translate' } },
  pconfig:    { privileged: 'always', writes: OSZAPC, clears: 'OF SF AF PF CF', vmExit: { reason: 'PCONFIG', when: ['ENABLE_PCONFIG'], note: "iff 'enable PCONFIG' (secondary bit 27) and the leaf's PCONFIG-exiting-bitmap bit are 1" } },
  hreset:     { privileged: 'always' },
  // User interrupts
  uiret:      { flow: 'return', stack: 'pop', writes: 'CF PF AF ZF SF TF DF OF RF AC ID' },
  testui:     { writes: OSZAPC, clears: OSZAP },
  // FRED (Intel FRED spec.): return from event delivery, CPL 0 only
  erets:      { flow: 'return', stack: 'pop', privileged: 'always', writes: EFLAGS_ALL },
  eretu:      { flow: 'return', stack: 'pop', privileged: 'always', writes: EFLAGS_ALL },
  // TDX (Intel TDX module spec.)
  seamcall:   { flow: 'interrupt', privileged: 'always', writes: OSZAPC, clears: OSZAP, vmExit: { reason: 'SEAMCALL', when: 'always' } },
  seamret:    { flow: 'return', privileged: 'always', writes: OSZAPC, clears: 'OF SF AF PF' },
  seamops:    { privileged: 'always', writes: OSZAPC, clears: 'OF SF AF PF CF' },
  tdcall:     { flow: 'interrupt', privileged: 'always', vmExit: { reason: 'TDCALL', when: 'always' } },
  // AMD SVM and SEV-SNP (APM vol. 2 §15, vol. 3): CPL 0 only; the physical address is in rAX
  vmrun:      { flow: 'interrupt', privileged: 'always', implicit: 'read-write', reads: EFLAGS_ALL },  // host RFLAGS saved
  vmload:     { privileged: 'always', implicit: 'read' },
  vmsave:     { privileged: 'always', implicit: 'write' },
  vmmcall:    { flow: 'interrupt' },
  vmgexit:    { flow: 'interrupt' },
  stgi:       { privileged: 'always' },
  clgi:       { privileged: 'always' },
  skinit:     { flow: 'indirect-branch', privileged: 'always', writes: EFLAGS_ALL, clears: EFLAGS_ALL },  // reinitialises EFLAGS, jumps into the SLB
  invlpga:    { privileged: 'always', implicit: 'address-only' },
  invlpgb:    { privileged: 'always', implicit: 'address-only' },
  tlbsync:    { privileged: 'always' },
  // SEV-SNP, TDX, PBNDKB: not in the SDM volumes used here; flags and memory as iced-x86 has them (README)
  psmash:     { privileged: 'always', writes: OSZAP },
  rmpupdate:  { privileged: 'always', writes: OSZAP, implicit: 'read' },
  rmpadjust:  { privileged: 'always', writes: OSZAP },
  rmpquery:   { privileged: 'always', writes: OSZAP },
  pvalidate:  { privileged: 'always', writes: OSZAPC },
  pbndkb:     { privileged: 'always', implicit: 'read-write', writes: OSZAPC, clears: 'OF SF AF PF CF' },
  clzero:     { implicit: 'write' },
  monitorx:   { implicit: 'read' },
  mcommit:    { writes: OSZAPC, clears: OSZAP },
  rdpru:      { privileged: 'conditional', privilegedNote: 'CR4.TSD = 1 (#UD at CPL > 0; AMD APM vol. 3 RDPRU)', writes: OSZAPC, clears: OSZAP },
  lwpins:     { writes: 'CF' },
  llwpcb:     { implicit: 'read' },  // loads the LWPCB at the address in the register
  // VIA/Zhaoxin PadLock and GMI (not in the SDM): implicit buffers at rSI/rDI, as iced-x86 has them
  xstore:     { implicit: 'write' },
  xstore_alt: { implicit: 'write' },
  xcryptecb:  { implicit: 'read-write' },
  xcryptcbc:  { implicit: 'read-write' },
  xcryptctr:  { implicit: 'read-write' },
  xcryptcfb:  { implicit: 'read-write' },
  xcryptofb:  { implicit: 'read-write' },
  xsha1:      { implicit: 'read-write' },
  xsha256:    { implicit: 'read-write' },
  xsha512:    { implicit: 'read-write' },
  xsha512_alt:{ implicit: 'read-write' },
  montmul:    { implicit: 'read' },
  ccs_hash:   { implicit: 'read-write' },
  ccs_encrypt:{ implicit: 'read-write' },

  // x87 (vol. 1 ch. 8): memory loads; FCOMI family and FCMOVcc are the only ones that touch EFLAGS
  fld:        { dest: 'read' },
  fild:       { dest: 'read' },
  fbld:       { dest: 'read' },
  fadd:       { dest: 'read' },
  fsub:       { dest: 'read' },
  fsubr:      { dest: 'read' },
  fmul:       { dest: 'read' },
  fdiv:       { dest: 'read' },
  fdivr:      { dest: 'read' },
  fiadd:      { dest: 'read' },
  fisub:      { dest: 'read' },
  fisubr:     { dest: 'read' },
  fimul:      { dest: 'read' },
  fidiv:      { dest: 'read' },
  fidivr:     { dest: 'read' },
  fcom:       { dest: 'read' },
  fcomp:      { dest: 'read' },
  ficom:      { dest: 'read' },
  ficomp:     { dest: 'read' },
  fldcw:      { dest: 'read' },
  fldenv:     { dest: 'read' },
  frstor:     { dest: 'read' },
  fcomi:      { writes: OSZAPC, clears: 'OF SF AF' },
  fcomip:     { writes: OSZAPC, clears: 'OF SF AF' },
  fucomi:     { writes: OSZAPC, clears: 'OF SF AF' },
  fucomip:    { writes: OSZAPC, clears: 'OF SF AF' },
  fcmovb:     { reads: 'CF' },
  fcmovnb:    { reads: 'CF' },
  fcmove:     { reads: 'ZF' },
  fcmovne:    { reads: 'ZF' },
  fcmovbe:    { reads: 'ZF CF' },
  fcmovnbe:   { reads: 'ZF CF' },
  fcmovu:     { reads: 'PF' },
  fcmovnu:    { reads: 'PF' },

  // SSE/AVX/AVX-512 instructions that write EFLAGS (vol. 2 COMISS, PTEST, PCMPESTRI, KORTESTW, ...)
  comiss:     { writes: OSZAPC, clears: 'OF SF AF' },
  comisd:     { writes: OSZAPC, clears: 'OF SF AF' },
  ucomiss:    { writes: OSZAPC, clears: 'OF SF AF' },
  ucomisd:    { writes: OSZAPC, clears: 'OF SF AF' },
  vcomiss:    { writes: OSZAPC, clears: 'OF SF AF' },
  vcomisd:    { writes: OSZAPC, clears: 'OF SF AF' },
  vucomiss:   { writes: OSZAPC, clears: 'OF SF AF' },
  vucomisd:   { writes: OSZAPC, clears: 'OF SF AF' },
  vcomish:    { writes: OSZAPC, clears: 'OF SF AF' },
  vucomish:   { writes: OSZAPC, clears: 'OF SF AF' },
  ptest:      { writes: OSZAPC, clears: 'OF SF AF PF' },
  vptest:     { writes: OSZAPC, clears: 'OF SF AF PF' },
  vtestps:    { writes: OSZAPC, clears: 'OF SF AF PF' },
  vtestpd:    { writes: OSZAPC, clears: 'OF SF AF PF' },
  pcmpestri:  { writes: OSZAPC, clears: 'AF PF' },
  pcmpestri64:{ writes: OSZAPC, clears: 'AF PF' },
  pcmpestrm:  { writes: OSZAPC, clears: 'AF PF' },
  pcmpestrm64:{ writes: OSZAPC, clears: 'AF PF' },
  pcmpistri:  { writes: OSZAPC, clears: 'AF PF' },
  pcmpistrm:  { writes: OSZAPC, clears: 'AF PF' },
  vpcmpestri: { writes: OSZAPC, clears: 'AF PF' },
  vpcmpestri64: { writes: OSZAPC, clears: 'AF PF' },
  vpcmpestrm: { writes: OSZAPC, clears: 'AF PF' },
  vpcmpestrm64: { writes: OSZAPC, clears: 'AF PF' },
  vpcmpistri: { writes: OSZAPC, clears: 'AF PF' },
  vpcmpistrm: { writes: OSZAPC, clears: 'AF PF' },
  kortestb:   { writes: OSZAPC, clears: 'OF SF AF PF' },
  kortestw:   { writes: OSZAPC, clears: 'OF SF AF PF' },
  kortestd:   { writes: OSZAPC, clears: 'OF SF AF PF' },
  kortestq:   { writes: OSZAPC, clears: 'OF SF AF PF' },
  ktestb:     { writes: OSZAPC, clears: 'OF SF AF PF' },
  ktestw:     { writes: OSZAPC, clears: 'OF SF AF PF' },
  ktestd:     { writes: OSZAPC, clears: 'OF SF AF PF' },
  ktestq:     { writes: OSZAPC, clears: 'OF SF AF PF' },
  ldtilecfg:  { dest: 'read' },
} as const satisfies Record<string, ClassEntry>;

// ---- Per-form overrides: forms whose class differs from their mnemonic's row ------------------
const CR_ACCESS_FLAGS = { writes: OSZAPC, undef: OSZAPC } as const;

export const FORM_OVERRIDES: readonly FormOverride[] = [
  { forms: ['Mov_rm16_Sreg', 'Mov_r32m16_Sreg', 'Mov_r64m16_Sreg', 'Mov_Sreg_rm16', 'Mov_Sreg_r32m16', 'Mov_Sreg_r64m16'],
    set: { sensitive: true }, why: 'MOV to/from Sreg (8E /r, 8C /r): Robin & Irvine' },
  { forms: ['Mov_r32_cr', 'Mov_r64_cr'],
    set: { privileged: 'always', ...CR_ACCESS_FLAGS, vmExit: { reason: 'CONTROL_REGISTER_ACCESS', when: ['CR3_STORE_EXITING', 'CR8_STORE_EXITING'], note: CR_NOTE_READ } },
    why: 'MOV r, CRn (0F 20): SDM vol. 3A §5.9; OSZAPC undefined (vol. 2B MOV—Move to/from Control Registers)' },
  { forms: ['Mov_cr_r32', 'Mov_cr_r64'],
    set: { privileged: 'always', ...CR_ACCESS_FLAGS, vmExit: { reason: 'CONTROL_REGISTER_ACCESS', when: ['CR3_LOAD_EXITING', 'CR8_LOAD_EXITING'], note: CR_NOTE_WRITE } },
    why: 'MOV CRn, r (0F 22)' },
  { forms: ['Mov_r32_dr', 'Mov_r64_dr', 'Mov_dr_r32', 'Mov_dr_r64'],
    set: { privileged: 'always', ...CR_ACCESS_FLAGS, vmExit: { reason: 'MOV_DR', when: ['MOV_DR_EXITING'] } },
    why: 'MOV to/from DRn (0F 21, 0F 23); the exit is checked before the CPL #GP' },
  { forms: ['Call_rm16', 'Call_rm32', 'Call_rm64'], set: { flow: 'indirect-call' }, why: 'CALL r/m (FF /2)' },
  { forms: ['Call_ptr1616', 'Call_ptr1632'], set: { sensitive: true }, why: 'far CALL ptr16:16/32 (9A)' },
  { forms: ['Call_m1616', 'Call_m1632', 'Call_m1664'], set: { flow: 'indirect-call', sensitive: true }, why: 'far CALL m16:xx (FF /3)' },
  { forms: ['Jmp_rm16', 'Jmp_rm32', 'Jmp_rm64'], set: { flow: 'indirect-branch' }, why: 'JMP r/m (FF /4)' },
  { forms: ['Jmp_ptr1616', 'Jmp_ptr1632'], set: { sensitive: true }, why: 'far JMP ptr16:16/32 (EA)' },
  { forms: ['Jmp_m1616', 'Jmp_m1632', 'Jmp_m1664'], set: { flow: 'indirect-branch', sensitive: true }, why: 'far JMP m16:xx (FF /5)' },
  { forms: ['Pushw_ES', 'Pushd_ES', 'Pushw_CS', 'Pushd_CS', 'Pushw_SS', 'Pushd_SS', 'Pushw_DS', 'Pushd_DS',
            'Pushw_FS', 'Pushd_FS', 'Pushq_FS', 'Pushw_GS', 'Pushd_GS', 'Pushq_GS'],
    set: { sensitive: true }, why: 'PUSH Sreg: Robin & Irvine' },
  { forms: ['Popw_ES', 'Popd_ES', 'Popw_CS', 'Popw_SS', 'Popd_SS', 'Popw_DS', 'Popd_DS',
            'Popw_FS', 'Popd_FS', 'Popq_FS', 'Popw_GS', 'Popd_GS', 'Popq_GS'],
    set: { sensitive: true }, why: 'POP Sreg (POP CS: 8086 only): Robin & Irvine' },
  { forms: /^L(d|e|f|g|s)s_r(16|32|64)_m16(16|32|64)$/, set: { sensitive: true },
    why: 'LDS/LES/LFS/LGS/LSS (C5, C4, 0F B4, 0F B5, 0F B2): not in Robin & Irvine, but the segment load makes the checks of MOV/POP Sreg against the real CPL (SDM vol. 2A "LDS/LES/LFS/LGS/LSS", Protected Mode Exceptions): LSS with an RPL-0 selector #GPs at CPL 1' },
  { forms: /^(Shl|Sal|Shr|Sar)_rm(8|16|32|64)_1$/, set: { undef: 'AF' },
    why: 'shift by 1 (D0/D1): OF is defined (vol. 2B SAL/SAR/SHL/SHR, Flags Affected)' },
  { forms: /^(Rol|Ror|Rcl|Rcr)_rm(8|16|32|64)_1$/, set: { undef: '' },
    why: 'rotate by 1 (D0/D1): OF is defined (vol. 2B RCL/RCR/ROL/ROR, Flags Affected)' },
  { forms: ['Cmpsd_xmm_xmmm64_imm8', 'Movsd_xmm_xmmm64', 'Movsd_xmmm64_xmm'], set: { reads: '', writes: '' },
    why: 'SSE2 CMPSD/MOVSD share the mnemonic of the string instructions but neither reads DF nor writes flags' },
];

// ---- Derived classes ------------------------------------------------------------------------
export interface VmExit {
  readonly reason: number;
  readonly name: VmxExitReasonName;
  /** 'always', or a description of the control(s) and condition. */
  readonly when: 'always' | string;
  /** Controls that take part in the decision (empty for 'always' and for rules on VMCS masks). */
  readonly controls: readonly VmxControl[];
}

export interface InstructionClass {
  readonly flow: Flow;
  readonly privileged: 'no' | 'always' | 'conditional';
  readonly privilegedNote?: string;
  readonly ioplSensitive: 'no' | 'always' | 'v86';
  readonly ioplNote?: string;
  readonly sensitiveUnprivileged: boolean;
  readonly vmExit?: VmExit;
  /** Data access of the memory operand(s), explicit or implicit, when the form uses memory. */
  readonly memory: MemoryAccess;
  readonly stack?: 'push' | 'pop';
  /** EFLAGS bit sets (Flag). flagsWritten includes flagsUndefined, flagsCleared and flagsSet. */
  readonly flagsRead: number;
  readonly flagsWritten: number;
  readonly flagsUndefined: number;
  readonly flagsCleared: number;
  readonly flagsSet: number;
}

const MEMORY_OPERANDS: ReadonlySet<OperandKind> = new Set<OperandKind>([
  'mem', 'mem_offs', 'sibmem', 'mem_vsib32x', 'mem_vsib32y', 'mem_vsib32z', 'mem_vsib64x', 'mem_vsib64y', 'mem_vsib64z',
  'k_or_mem', 'mm_or_mem', 'r8_or_mem', 'r16_or_mem', 'r32_or_mem', 'r64_or_mem', 'xmm_or_mem', 'ymm_or_mem', 'zmm_or_mem',
  // A register that holds an address: MOVDIR64B/ENQCMD destination ES:[reg]
  'r16_reg_mem', 'r32_reg_mem', 'r64_reg_mem',
  // Implicit string and XLAT operands
  'es_rDI', 'seg_rDI', 'seg_rSI', 'seg_rBX_al',
]);

/** True if some operand of the form can be memory (for r/m operands: when ModRM.mod != 11). */
export function formHasMemoryOperand(form: Form): boolean {
  return form.ops.some((k) => MEMORY_OPERANDS.has(k));
}

function combineMemory(accesses: readonly MemoryAccess[]): MemoryAccess {
  let read = false, write = false, address = false;
  for (const a of accesses) {
    if (a === 'read' || a === 'read-write') read = true;
    if (a === 'write' || a === 'read-write') write = true;
    if (a === 'address-only') address = true;
  }
  if (read && write) return 'read-write';
  if (read) return 'read';
  if (write) return 'write';
  return address ? 'address-only' : 'none';
}

function memoryOf(form: Form, e: ClassEntry): MemoryAccess {
  const accesses: MemoryAccess[] = [];
  form.ops.forEach((k, i) => {
    if (MEMORY_OPERANDS.has(k)) accesses.push(i === 0 ? (e.dest ?? 'write') : (e.src ?? 'read'));
  });
  if (e.implicit) accesses.push(e.implicit);
  return combineMemory(accesses);
}

function vmExitOf(v: VmExitEntry): VmExit {
  const controls = v.when === 'always' ? [] : v.when.map((c) => VMX_CONTROL[c]);
  const when = v.when === 'always' ? 'always'
    : v.note ?? controls.map((c) => `'${c.name}' (${c.field} bit ${c.bit})`).join(' or ');
  return Object.freeze({ reason: VMX_EXIT_REASON[v.reason], name: v.reason, when, controls: Object.freeze(controls) });
}

function deriveClass(form: Form, e: ClassEntry): InstructionClass {
  const flagsWritten = flagsFromNames(e.writes ?? '');
  const flagsUndefined = flagsFromNames(e.undef ?? '');
  const flagsCleared = flagsFromNames(e.clears ?? '');
  const flagsSet = flagsFromNames(e.sets ?? '');
  const outside = (flagsUndefined | flagsCleared | flagsSet) & ~flagsWritten;
  if (outside) throw new Error(`${form.name}: undefined/cleared/set flags must also be written`);
  const c: InstructionClass = {
    flow: e.flow ?? 'next',
    privileged: e.privileged ?? 'no',
    ...(e.privilegedNote !== undefined && { privilegedNote: e.privilegedNote }),
    ioplSensitive: e.iopl ?? 'no',
    ...(e.ioplNote !== undefined && { ioplNote: e.ioplNote }),
    sensitiveUnprivileged: e.sensitive ?? false,
    ...(e.vmExit !== undefined && { vmExit: vmExitOf(e.vmExit) }),
    memory: memoryOf(form, e),
    ...(e.stack !== undefined && { stack: e.stack }),
    flagsRead: flagsFromNames(e.reads ?? ''),
    flagsWritten, flagsUndefined, flagsCleared, flagsSet,
  };
  return Object.freeze(c);
}

function overrideMatches(o: FormOverride, name: string): boolean {
  return o.forms instanceof RegExp ? o.forms.test(name) : o.forms.includes(name);
}

// Build and check the table once at load: unknown mnemonics, form names and flag names are errors.
const entries = MNEMONIC_CLASSES as Readonly<Record<string, ClassEntry>>;
const mnemonics = new Set(FORMS.map((f) => f.mnemonic));
for (const m of Object.keys(entries)) {
  if (!mnemonics.has(m)) throw new Error(`MNEMONIC_CLASSES: '${m}' is not a mnemonic of the instruction table`);
}
const formNames = new Set(FORMS.map((f) => f.name));
for (const o of FORM_OVERRIDES) {
  if (o.forms instanceof RegExp) {
    const re = o.forms;
    if (!FORMS.some((f) => re.test(f.name))) throw new Error(`FORM_OVERRIDES: ${re} matches no form`);
  } else {
    for (const n of o.forms) if (!formNames.has(n)) throw new Error(`FORM_OVERRIDES: no form '${n}'`);
  }
}

const byId: InstructionClass[] = [];
for (const f of FORMS) {
  let e: ClassEntry = entries[f.mnemonic] ?? {};
  for (const o of FORM_OVERRIDES) if (overrideMatches(o, f.name)) e = { ...e, ...o.set };
  byId[f.id] = deriveClass(f, e);
}

/** The class of an id that is not in the table (0 = invalid bytes): executing it raises #UD. */
export const INVALID_CLASS: InstructionClass = Object.freeze({
  flow: 'exception', privileged: 'no', ioplSensitive: 'no', sensitiveUnprivileged: false, memory: 'none',
  flagsRead: 0, flagsWritten: 0, flagsUndefined: 0, flagsCleared: 0, flagsSet: 0,
});

// ---- Queries ----------------------------------------------------------------------------------
export function classOf(formId: number): InstructionClass {
  return byId[formId] ?? INVALID_CLASS;
}

export function isPrivileged(formId: number): boolean {
  return classOf(formId).privileged !== 'no';
}

export function isIoplSensitive(formId: number): boolean {
  return classOf(formId).ioplSensitive !== 'no';
}

export function isSensitiveUnprivileged(formId: number): boolean {
  return classOf(formId).sensitiveUnprivileged;
}

/** Sensitive in Popek & Goldberg's sense: privileged, IOPL-sensitive, or sensitive but unprivileged. */
export function isSensitive(formId: number): boolean {
  const c = classOf(formId);
  return c.privileged !== 'no' || c.ioplSensitive !== 'no' || c.sensitiveUnprivileged;
}

/** Anything but 'next': the instruction may transfer control elsewhere. */
export function isControlTransfer(formId: number): boolean {
  return classOf(formId).flow !== 'next';
}

/** Class names accepted by selectForms, besides mnemonics and form names. */
export const CLASS_SELECTORS = {
  sensitive: (c: InstructionClass) => c.privileged !== 'no' || c.ioplSensitive !== 'no' || c.sensitiveUnprivileged,
  privileged: (c: InstructionClass) => c.privileged !== 'no',
  iopl: (c: InstructionClass) => c.ioplSensitive !== 'no',
  'sensitive-unprivileged': (c: InstructionClass) => c.sensitiveUnprivileged,
  vmexit: (c: InstructionClass) => c.vmExit !== undefined,
  'vmexit-always': (c: InstructionClass) => c.vmExit?.when === 'always',
  jumps: (c: InstructionClass) => c.flow === 'branch' || c.flow === 'conditional' || c.flow === 'indirect-branch',
  calls: (c: InstructionClass) => c.flow === 'call' || c.flow === 'indirect-call',
  returns: (c: InstructionClass) => c.flow === 'return',
  interrupts: (c: InstructionClass) => c.flow === 'interrupt' || c.flow === 'exception',
  'control-flow': (c: InstructionClass) => c.flow !== 'next',
  memory: (c: InstructionClass) => c.memory !== 'none',
  stack: (c: InstructionClass) => c.stack !== undefined,
} as const satisfies Record<string, (c: InstructionClass) => boolean>;
export type ClassSelectorName = keyof typeof CLASS_SELECTORS;

/**
 * Forms named by a selection such as `--select sensitive,jumps,cpuid`: a comma-separated list of
 * class names (CLASS_SELECTORS), mnemonics (any case) and form names (exact). Throws on an unknown word.
 */
export function selectForms(spec: string): ReadonlySet<number> {
  const out = new Set<number>();
  for (const raw of spec.split(',')) {
    const word = raw.trim();
    if (word === '') continue;
    const sel = Object.hasOwn(CLASS_SELECTORS, word) ? CLASS_SELECTORS[word as ClassSelectorName] : undefined;
    const lower = word.toLowerCase();
    let hit = false;
    for (const f of FORMS) {
      if (sel ? sel(byId[f.id]!) : f.mnemonic === lower || f.name === word) { out.add(f.id); hit = true; }
    }
    if (!hit && !sel) {
      throw new Error(`unknown selection '${word}': expected ${Object.keys(CLASS_SELECTORS).join(', ')}, a mnemonic or a form name`);
    }
  }
  return out;
}
