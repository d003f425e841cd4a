// Running IA-32 code on the host processor, for CPU differential tests: the oracle for user-level
// instruction semantics (shared/ARCHITECTURE.md, "Oracles"). Protocol, state and limits:
// test/host/README.md.
//
// One static ELF32 executable (written with writeElf32, code from our Assembler, no libc) reads
// program records from stdin and, for each, copies the code and scratch area in, loads the
// registers and flags, jumps to the code, saves the state in an epilogue the code jumps back to,
// and writes a result record to stdout. Faults end in a signal handler that records the
// signal and the faulting state from the signal frame and goes back to the loop, so one process
// runs thousands of programs a second.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Assembler, Prefix, asm1, imm, mem, reg } from '@ringshift/decoder';
import type { Label, Operand } from '@ringshift/decoder';
import { writeElf32 } from '@ringshift/rewriter';

/** Where a program's code runs: it is copied here and must be position-dependent on this address. */
export const CODE_BASE = 0x10000000;
/** Bytes available for code, including the 5-byte jump back to the runner that is appended. */
export const CODE_SIZE = 0x10000;
/** Longest code a program may have. */
export const MAX_CODE_LENGTH = CODE_SIZE - 5;
/** The scratch (data) area: exactly one page, so that any access outside it faults. */
export const SCRATCH_BASE = 0x20000000;
export const SCRATCH_SIZE = 0x1000;
/** ESP when a program does not set one: the top of the scratch area, so pushes are compared too. */
export const DEFAULT_ESP = SCRATCH_BASE + SCRATCH_SIZE;
/** EFLAGS bits a program may set (CF PF AF ZF SF DF OF); POPF at CPL 3 ignores or must not get the rest. */
export const EFLAGS_SETTABLE = 0x0cd5;
/** Bits that are always 1 in user mode (bit 1 and IF); accepted in the initial eflags and ignored. */
export const EFLAGS_FIXED = 0x0202;
/** EFLAGS bits to compare: the status flags and DF. Mask instruction-undefined flags on top of this. */
export const EFLAGS_COMPARED = EFLAGS_SETTABLE;

export interface NativeRegs {
  eax: number;
  ecx: number;
  edx: number;
  ebx: number;
  esp: number;
  ebp: number;
  esi: number;
  edi: number;
}

export interface NativeProgram {
  /** Machine code placed at CODE_BASE; it ends by running off its last byte. */
  code: Uint8Array;
  initial: Omit<NativeRegs, 'esp'> & {
    /** Default DEFAULT_ESP. */
    esp?: number;
    /** Bits of EFLAGS_SETTABLE (and EFLAGS_FIXED); anything else is refused. */
    eflags: number;
  };
  /** Initial contents of the scratch area at SCRATCH_BASE (at most SCRATCH_SIZE bytes; zero-padded). */
  scratch: Uint8Array;
}

export type NativeSignal = 'SIGILL' | 'SIGTRAP' | 'SIGBUS' | 'SIGFPE' | 'SIGSEGV' | 'SIGALRM';

export interface NativeFault {
  /** SIGALRM: the program ran past the time limit (NativeOptions.timeoutMs); eip is where it was. */
  signal: NativeSignal;
  /** EIP in the signal frame: the faulting instruction for faults, the next one for traps (INT3). */
  eip: number;
  /** Exception vector (sigcontext.trapno): 0 #DE, 3 #BP, 6 #UD, 13 #GP, 14 #PF, 17 #AC, ... */
  trapno: number;
  /** Error code the CPU pushed (sigcontext.err); for #PF bit 1 = write, bit 0 = protection. */
  error: number;
  /** siginfo si_code: e.g. FPE_INTDIV 1, SEGV_MAPERR 1, SEGV_ACCERR 2, SI_KERNEL 0x80 (#GP). */
  code: number;
  /** siginfo si_addr for SIGSEGV and SIGBUS: the address accessed (0 for #GP). */
  address?: number;
}

export interface NativeResult {
  /** At the end, or at the faulting instruction when `fault` is set. */
  regs: NativeRegs;
  /** The whole EFLAGS value; compare `eflags & EFLAGS_COMPARED`. */
  eflags: number;
  /** The whole scratch area (SCRATCH_SIZE bytes) after the run or at the fault. */
  scratch: Uint8Array;
  fault?: NativeFault;
}

export interface NativeOptions {
  /**
   * Watchdog period in ms (default 1000): a program still running at the second tick of a
   * wall-clock timer after it started, so after between one and two periods, ends with SIGALRM.
   */
  timeoutMs?: number;
}

/** The host cannot run the runner, or the runner failed; the message says which and why. */
export class NativeRunnerError extends Error {
  override name = 'NativeRunnerError';
}

// ---------------------------------------------------------------------------------------------
// The runner's memory: code at RUNNER_CODE, and one data segment laid out as below.

const RUNNER_CODE = 0x08048000;
const RUNNER_DATA = 0x08100000;
/** Stream header, first in the input: magic, then the watchdog's struct itimerval. */
const STREAM = RUNNER_DATA;
const STREAM_SIZE = 20;
const STREAM_MAGIC = 0x314e5352; // 'RSN1'
/** Program record header. */
const IN = RUNNER_DATA + 0x20;
const IN_SIZE = 40;
const IN_CODE_LEN = 0;
/** EFLAGS then the eight registers in POPAD order (EDI ESI EBP ESP EBX EDX ECX EAX), so that
 *  POPFD; POPAD loads them all (POPAD skips the ESP slot, which is loaded separately). */
const IN_EFLAGS = 4;
const IN_REGS = 8;
/** Result record header. */
const OUT = RUNNER_DATA + 0x60;
const OUT_SIZE = 64;
const OUT_STATUS = 0;
const OUT_EIP = 4;
const OUT_TRAPNO = 8;
const OUT_ERR = 12;
const OUT_CODE = 16;
const OUT_ADDR = 20;
/** EDI..EAX in PUSHAD order, then EFLAGS: what PUSHFD then PUSHAD leave below OUT+60. */
const OUT_REGS = 24;
const OUT_EFLAGS = 56;
const SAVED_ESP = RUNNER_DATA + 0xa0;
const PROG_ESP = RUNNER_DATA + 0xa4;
const RUNNING = RUNNER_DATA + 0xa8;
const MXCSR_INIT = RUNNER_DATA + 0xac;
/** Programs started so far, and the value the watchdog saw at its previous tick. */
const SEQ = RUNNER_DATA + 0xb0;
const SEQ_SEEN = RUNNER_DATA + 0xb4;
/** Input buffer cursor and end; output buffer cursor. */
const IPOS = RUNNER_DATA + 0xb8;
const IEND = RUNNER_DATA + 0xbc;
const OPOS = RUNNER_DATA + 0xc0;
const ALT_STACK_T = RUNNER_DATA + 0xd0;
const SIGACTION = RUNNER_DATA + 0xe0;
const INIT_SIZE = 0x100;
const STACK_TOP = RUNNER_DATA + 0x5000;
const ALT_STACK = RUNNER_DATA + 0x10000;
/** Signal frames carry the XSAVE area (AVX-512 makes it ~3 KiB), so the alternate stack is large. */
const ALT_STACK_SIZE = 0x10000;
/** Buffered I/O: system calls cost microseconds here, a 4 KiB copy far less. */
const IBUF = RUNNER_DATA + 0x20000;
const IBUF_SIZE = 0x100000;
const OBUF = IBUF + IBUF_SIZE;
const OBUF_SIZE = 0x100000;
const RUNNER_DATA_SIZE = OBUF + OBUF_SIZE - RUNNER_DATA;

// Linux i386 system call numbers (arch/x86/entry/syscalls/syscall_32.tbl) and ABI constants.
const NR_exit = 1;
const NR_read = 3;
const NR_write = 4;
const NR_fcntl = 55;
const NR_setitimer = 104;
const NR_rt_sigreturn = 173;
const NR_rt_sigaction = 174;
const NR_sigaltstack = 186;
const ITIMER_REAL = 0;
const F_SETPIPE_SZ = 1031;
const EINTR = 4;
const SIGALRM = 14;
/** include/uapi/asm-generic/signal-defs.h and arch/x86/include/uapi/asm/signal.h. */
const SA_SIGINFO = 0x4;
const SA_RESTORER = 0x04000000;
const SA_ONSTACK = 0x08000000;
const SA_RESTART = 0x10000000;
const SA_NODEFER = 0x40000000;
const SIGNALS: Record<number, NativeSignal> = { 4: 'SIGILL', 5: 'SIGTRAP', 7: 'SIGBUS', 8: 'SIGFPE', 11: 'SIGSEGV', [SIGALRM]: 'SIGALRM' };
/**
 * Offsets in the 32-bit signal frame (arch/x86/include/uapi/asm/sigcontext.h, struct
 * sigcontext_32; arch/x86/include/asm/ia32.h, struct ucontext_ia32): uc_mcontext follows
 * uc_flags, uc_link and the 12-byte uc_stack; in it gs fs es ds take 4 bytes each, then the
 * registers in PUSHAD order (EDI at 16 ... EAX at 44), trapno 48, err 52, eip 56, cs 60,
 * eflags 64.
 */
const UC_MCONTEXT = 20;
const SC_EDI = 16;
const SC_TRAPNO = 48;
const SC_ERR = 52;
const SC_EIP = 56;
const SC_EFLAGS = 64;
/** siginfo_t (include/uapi/asm-generic/siginfo.h): si_signo, si_errno, si_code, then si_addr. */
const SI_CODE = 8;
const SI_ADDR = 12;

/** Runner exit statuses; a status of 100 + n means signal n hit the runner's own code. */
const EXIT_SETUP = 90;
const EXIT_TRUNCATED = 91;
const EXIT_TOO_LONG = 92;
const EXIT_READ = 93;
const EXIT_WRITE = 94;
const EXIT_MAGIC = 95;
const EXIT_RUNNER_SIGNAL = 100;
const EXIT_TEXT: Record<number, string> = {
  [EXIT_SETUP]: 'failed in a set-up system call (sigaltstack, rt_sigaction or setitimer)',
  [EXIT_TRUNCATED]: 'found the input ending inside a program record',
  [EXIT_TOO_LONG]: 'found a program record with code longer than CODE_SIZE',
  [EXIT_READ]: 'failed reading stdin',
  [EXIT_WRITE]: 'failed writing stdout',
  [EXIT_MAGIC]: 'found no RSN1 stream header',
};

const d32 = (addr: number): Operand => mem({ disp: addr, size: 4 });

/** rep-prefixed string instruction (the assembler's mnemonics take no prefixes). */
function rep(a: Assembler, mnemonic: string): void {
  const i = asm1(mnemonic);
  i.prefixes |= Prefix.Rep;
  a.emit(i);
}

function syscall(a: Assembler, nr: number, ebx: number | Label, ecx: number | Label = 0, edx = 0, esi?: number): void {
  a.asm('mov', reg('eax'), imm(nr));
  a.asm('mov', reg('ebx'), imm(ebx));
  a.asm('mov', reg('ecx'), imm(ecx));
  a.asm('mov', reg('edx'), imm(edx));
  if (esi !== undefined) a.asm('mov', reg('esi'), imm(esi));
  a.asm('int', imm(0x80));
}

/** The runner's code; returns it with the epilogue's address (where program code jumps back to). */
function assembleRunner(): { code: Uint8Array; entry: number; epilogue: number; labels: Map<string, number> } {
  const a = new Assembler(32, RUNNER_CODE);
  const start = a.here('_start');
  const next = a.label('next');
  const epilogue = a.label('epilogue');
  const after = a.label('after');
  const handler = a.label('handler');
  const restorer = a.label('restorer');
  const fetch = a.label('fetch');
  const emit = a.label('emit');
  const flush = a.label('flush');
  const setupFail = a.label();
  const truncated = a.label();
  const tooLong = a.label();
  const readFail = a.label();
  const writeFail = a.label();
  const badMagic = a.label();
  const eof = a.label();
  const runnerSignal = a.label();
  const record = a.label();
  const sigReturn = a.label();

  // Set-up: a private stack, the alternate signal stack, one handler for every signal a
  // user-mode instruction can raise, bigger pipes, and the watchdog timer. SA_NODEFER because
  // the handler mostly does not return (it jumps back into the loop), so the kernel must not
  // leave the signal blocked; SA_ONSTACK because the program may have any ESP when it faults.
  a.asm('mov', reg('esp'), imm(STACK_TOP));
  a.asm('cld');
  syscall(a, NR_sigaltstack, ALT_STACK_T, 0);
  a.asm('test', reg('eax'), reg('eax'));
  a.jcc('ne', setupFail);
  a.asm('mov', d32(SIGACTION), imm(handler));
  a.asm('mov', d32(SIGACTION + 8), imm(restorer));
  for (const sig of Object.keys(SIGNALS).map(Number)) {
    syscall(a, NR_rt_sigaction, sig, SIGACTION, 0, 8 /* sizeof(sigset_t) */);
    a.asm('test', reg('eax'), reg('eax'));
    a.jcc('ne', setupFail);
  }
  // Fewer wake-ups with 1 MiB pipes; failure (not a pipe, or a lower pipe-max-size) is harmless.
  for (const fd of [0, 1]) syscall(a, NR_fcntl, fd, F_SETPIPE_SZ, 0x100000);
  a.asm('mov', d32(IPOS), imm(IBUF));
  a.asm('mov', d32(IEND), imm(IBUF));
  a.asm('mov', d32(OPOS), imm(OBUF));
  a.asm('mov', reg('edi'), imm(STREAM));
  a.asm('mov', reg('edx'), imm(STREAM_SIZE));
  a.call(fetch);
  a.asm('test', reg('eax'), reg('eax'));
  a.jcc('e', eof);
  a.asm('cmp', reg('eax'), imm(STREAM_SIZE));
  a.jcc('ne', truncated);
  a.asm('cmp', d32(STREAM), imm(STREAM_MAGIC));
  a.jcc('ne', badMagic);
  syscall(a, NR_setitimer, ITIMER_REAL, STREAM + 4, 0);
  a.asm('test', reg('eax'), reg('eax'));
  a.jcc('ne', setupFail);
  // INT3 everywhere no program's code is: running off the code traps instead of running stale code.
  a.asm('mov', reg('edi'), imm(CODE_BASE));
  a.asm('mov', reg('ecx'), imm(CODE_SIZE));
  a.asm('mov', reg('al'), imm(0xcc));
  rep(a, 'stosb');

  // One program record: header, code, scratch.
  a.bind(next);
  a.asm('mov', reg('edi'), imm(IN));
  a.asm('mov', reg('edx'), imm(IN_SIZE));
  a.call(fetch);
  a.asm('test', reg('eax'), reg('eax'));
  a.jcc('e', eof);
  a.asm('cmp', reg('eax'), imm(IN_SIZE));
  a.jcc('ne', truncated);
  a.asm('mov', reg('edx'), d32(IN + IN_CODE_LEN));
  a.asm('cmp', reg('edx'), imm(CODE_SIZE));
  a.jcc('a', tooLong);
  a.asm('mov', reg('edi'), imm(CODE_BASE));
  a.call(fetch);
  a.asm('cmp', reg('eax'), d32(IN + IN_CODE_LEN));
  a.jcc('ne', truncated);
  a.asm('mov', reg('edi'), imm(SCRATCH_BASE));
  a.asm('mov', reg('edx'), imm(SCRATCH_SIZE));
  a.call(fetch);
  a.asm('cmp', reg('eax'), imm(SCRATCH_SIZE));
  a.jcc('ne', truncated);

  // Well-defined state besides what the record gives: the settable flags only (TF would trap,
  // AC would make misaligned accesses fault), x87 and SSE control in their reset state, data
  // segments = SS (__USER_DS), FS = GS = 0.
  a.asm('mov', reg('eax'), d32(IN + IN_EFLAGS));
  a.asm('and', reg('eax'), imm(EFLAGS_SETTABLE));
  a.asm('or', reg('eax'), imm(EFLAGS_FIXED));
  a.asm('mov', d32(IN + IN_EFLAGS), reg('eax'));
  a.asm('fninit');
  a.asm('ldmxcsr', d32(MXCSR_INIT));
  a.asm('mov', reg('ax'), reg('ss'));
  a.asm('mov', reg('ds'), reg('ax'));
  a.asm('mov', reg('es'), reg('ax'));
  a.asm('xor', reg('eax'), reg('eax'));
  a.asm('mov', reg('fs'), reg('ax'));
  a.asm('mov', reg('gs'), reg('ax'));
  a.asm('inc', d32(SEQ));
  a.asm('mov', d32(RUNNING), imm(1));
  a.asm('mov', d32(SAVED_ESP), reg('esp'));
  a.asm('mov', reg('esp'), imm(IN + IN_EFLAGS));
  a.asm('popfd');
  a.asm('popad');
  a.asm('mov', reg('esp'), d32(IN + IN_REGS + 12)); // MOV leaves the flags alone
  a.jmp(CODE_BASE);

  // Program code jumps here. Nothing but MOV/PUSH touches state until it is saved. The first
  // store goes through SS because the program may have loaded DS with an unusable selector;
  // SS at CPL 3 can only ever hold the one writable user data selector.
  a.bind(epilogue);
  a.asm('mov', mem({ disp: PROG_ESP, seg: 'ss', size: 4 }), reg('esp'));
  a.asm('mov', reg('esp'), imm(OUT + OUT_EFLAGS + 4));
  a.asm('pushfd');
  a.asm('pushad');
  a.asm('mov', reg('ax'), reg('ss'));
  a.asm('mov', reg('ds'), reg('ax'));
  a.asm('mov', reg('es'), reg('ax'));
  a.asm('mov', reg('eax'), d32(PROG_ESP));
  a.asm('mov', d32(OUT + OUT_REGS + 12), reg('eax'));
  a.asm('xor', reg('eax'), reg('eax'));
  for (const f of [OUT_STATUS, OUT_EIP, OUT_TRAPNO, OUT_ERR, OUT_CODE, OUT_ADDR]) a.asm('mov', d32(OUT + f), reg('eax'));
  a.asm('mov', reg('esp'), d32(SAVED_ESP));
  a.asm('cld');

  // Common tail of a finished or faulted program. INT3 over the whole code area, not only the
  // program's bytes: a program may have written anywhere in it (a stray memory operand), and the
  // next one must not read or run those bytes (~1 µs a program).
  a.bind(after);
  a.asm('mov', d32(RUNNING), imm(0));
  a.asm('mov', reg('edi'), imm(CODE_BASE));
  a.asm('mov', reg('ecx'), imm(CODE_SIZE >>> 2));
  a.asm('mov', reg('eax'), imm(0xcccccccc));
  rep(a, 'stosd');
  a.asm('mov', reg('esi'), imm(OUT));
  a.asm('mov', reg('edx'), imm(OUT_SIZE));
  a.call(emit);
  a.asm('mov', reg('esi'), imm(SCRATCH_BASE));
  a.asm('mov', reg('edx'), imm(SCRATCH_SIZE));
  a.call(emit);
  a.jmp(next);

  a.bind(eof);
  a.call(flush);
  syscall(a, NR_exit, 0);

  // void handler(int sig, siginfo_t *info, struct ucontext_ia32 *uc), on the alternate stack.
  // The kernel enters it with DS = ES = __USER_DS and DF = 0 (arch/x86/kernel/signal_32.c,
  // ia32_setup_rt_frame; arch/x86/kernel/signal.c, handle_signal clears DF and TF).
  // SIGALRM is the watchdog: a program still running at the second tick since it started is
  // stopped; otherwise the handler returns (through the restorer, rt_sigreturn) and the
  // interrupted code goes on, whether the program's or the runner's.
  a.bind(handler);
  a.asm('cmp', mem({ base: 'esp', disp: 4, size: 4 }), imm(SIGALRM));
  a.jcc('ne', record);
  a.asm('cmp', d32(RUNNING), imm(1));
  a.jcc('ne', sigReturn);
  a.asm('mov', reg('eax'), d32(SEQ));
  a.asm('cmp', reg('eax'), d32(SEQ_SEEN));
  a.jcc('e', record);
  a.asm('mov', d32(SEQ_SEEN), reg('eax'));
  a.bind(sigReturn);
  a.asm('ret');
  a.bind(record);
  a.asm('cmp', d32(RUNNING), imm(1));
  a.jcc('ne', runnerSignal);
  a.asm('mov', reg('eax'), mem({ base: 'esp', disp: 4 }));
  a.asm('mov', d32(OUT + OUT_STATUS), reg('eax'));
  a.asm('mov', reg('ebx'), mem({ base: 'esp', disp: 8 }));
  a.asm('mov', reg('eax'), mem({ base: 'ebx', disp: SI_CODE }));
  a.asm('mov', d32(OUT + OUT_CODE), reg('eax'));
  a.asm('mov', reg('eax'), mem({ base: 'ebx', disp: SI_ADDR }));
  a.asm('mov', d32(OUT + OUT_ADDR), reg('eax'));
  a.asm('mov', reg('esi'), mem({ base: 'esp', disp: 12 }));
  a.asm('add', reg('esi'), imm(UC_MCONTEXT));
  for (const [from, to] of [[SC_EIP, OUT_EIP], [SC_TRAPNO, OUT_TRAPNO], [SC_ERR, OUT_ERR], [SC_EFLAGS, OUT_EFLAGS]] as const) {
    a.asm('mov', reg('eax'), mem({ base: 'esi', disp: from }));
    a.asm('mov', d32(OUT + to), reg('eax'));
  }
  a.asm('add', reg('esi'), imm(SC_EDI));
  a.asm('mov', reg('edi'), imm(OUT + OUT_REGS));
  a.asm('mov', reg('ecx'), imm(8));
  rep(a, 'movsd');
  a.asm('mov', reg('esp'), d32(SAVED_ESP)); // the longjmp: back onto the runner's stack
  a.jmp(after);
  a.bind(runnerSignal);
  a.asm('mov', reg('ebx'), mem({ base: 'esp', disp: 4 }));
  a.asm('add', reg('ebx'), imm(EXIT_RUNNER_SIGNAL));
  a.asm('mov', reg('eax'), imm(NR_exit));
  a.asm('int', imm(0x80));
  // sa_restorer: the handler's `ret` lands here with ESP just past the frame's return address,
  // which is where rt_sigreturn expects it (arch/x86/ia32/ia32_signal.c, sys32_rt_sigreturn).
  a.bind(restorer);
  a.asm('mov', reg('eax'), imm(NR_rt_sigreturn));
  a.asm('int', imm(0x80));

  // fetch(edi = destination, edx = length) -> eax = bytes copied; fewer only at end of input.
  {
    const loop = a.label();
    const copy = a.label();
    const done = a.label();
    const some = a.label();
    a.bind(fetch);
    a.asm('push', reg('edx'));
    a.asm('mov', reg('ebp'), reg('edx')); // still wanted
    a.bind(loop);
    a.asm('test', reg('ebp'), reg('ebp'));
    a.jcc('e', done);
    a.asm('mov', reg('esi'), d32(IPOS));
    a.asm('mov', reg('ecx'), d32(IEND));
    a.asm('sub', reg('ecx'), reg('esi'));
    a.jcc('ne', copy);
    syscall(a, NR_read, 0, IBUF, IBUF_SIZE);
    a.asm('cmp', reg('eax'), imm(-EINTR));
    a.jcc('e', loop);
    a.asm('test', reg('eax'), reg('eax'));
    a.jcc('e', done); // end of input
    a.jcc('l', readFail);
    a.asm('mov', d32(IPOS), imm(IBUF));
    a.asm('add', reg('eax'), imm(IBUF));
    a.asm('mov', d32(IEND), reg('eax'));
    a.jmp(loop);
    a.bind(copy);
    a.asm('cmp', reg('ecx'), reg('ebp'));
    a.jcc('be', some);
    a.asm('mov', reg('ecx'), reg('ebp'));
    a.bind(some);
    a.asm('sub', reg('ebp'), reg('ecx'));
    a.asm('add', d32(IPOS), reg('ecx'));
    rep(a, 'movsb');
    a.jmp(loop);
    a.bind(done);
    a.asm('pop', reg('eax'));
    a.asm('sub', reg('eax'), reg('ebp'));
    a.asm('ret');
  }
  // emit(esi = source, edx = length <= OBUF_SIZE): append to the output buffer.
  {
    const fits = a.label();
    a.bind(emit);
    a.asm('mov', reg('eax'), d32(OPOS));
    a.asm('add', reg('eax'), reg('edx'));
    a.asm('cmp', reg('eax'), imm(OBUF + OBUF_SIZE));
    a.jcc('be', fits);
    a.asm('push', reg('esi'));
    a.asm('push', reg('edx'));
    a.call(flush);
    a.asm('pop', reg('edx'));
    a.asm('pop', reg('esi'));
    a.bind(fits);
    a.asm('mov', reg('edi'), d32(OPOS));
    a.asm('mov', reg('ecx'), reg('edx'));
    rep(a, 'movsb');
    a.asm('mov', d32(OPOS), reg('edi'));
    a.asm('ret');
  }
  // flush(): write the output buffer out; a blocking pipe write may still return short.
  {
    const loop = a.label();
    const done = a.label();
    a.bind(flush);
    a.asm('mov', reg('esi'), imm(OBUF));
    a.bind(loop);
    a.asm('mov', reg('edx'), d32(OPOS));
    a.asm('sub', reg('edx'), reg('esi'));
    a.jcc('e', done);
    a.asm('mov', reg('eax'), imm(NR_write));
    a.asm('mov', reg('ebx'), imm(1));
    a.asm('mov', reg('ecx'), reg('esi'));
    a.asm('int', imm(0x80));
    a.asm('cmp', reg('eax'), imm(-EINTR));
    a.jcc('e', loop);
    a.asm('test', reg('eax'), reg('eax'));
    a.jcc('le', writeFail);
    a.asm('add', reg('esi'), reg('eax'));
    a.jmp(loop);
    a.bind(done);
    a.asm('mov', d32(OPOS), imm(OBUF));
    a.asm('ret');
  }

  for (const [l, status] of [[setupFail, EXIT_SETUP], [truncated, EXIT_TRUNCATED], [tooLong, EXIT_TOO_LONG], [readFail, EXIT_READ], [writeFail, EXIT_WRITE], [badMagic, EXIT_MAGIC]] as const) {
    a.bind(l);
    syscall(a, NR_exit, status);
  }
  const r = a.assemble();
  return { code: r.bytes, entry: r.labels.get(start.name!)!, epilogue: r.labels.get('epilogue')!, labels: r.labels };
}

export interface NativeRunnerImage {
  /** The static ELF32 executable. */
  elf: Uint8Array;
  /** Where program code jumps back to (the JMP appended to every program's code). */
  epilogue: number;
}

let runner: NativeRunnerImage | undefined;

/** The runner executable's bytes (built once; pure: nothing is written or run). */
export function nativeRunner(): NativeRunnerImage {
  if (runner) return runner;
  const { code, entry, epilogue, labels } = assembleRunner();
  const data = new Uint8Array(INIT_SIZE);
  const dv = new DataView(data.buffer);
  dv.setUint32(MXCSR_INIT - RUNNER_DATA, 0x1f80, true); // MXCSR at reset: all exceptions masked
  // stack_t { ss_sp, ss_flags, ss_size }
  dv.setUint32(ALT_STACK_T - RUNNER_DATA, ALT_STACK, true);
  dv.setUint32(ALT_STACK_T - RUNNER_DATA + 8, ALT_STACK_SIZE, true);
  // struct sigaction for rt_sigaction { sa_handler, sa_flags, sa_restorer, sa_mask }; the code
  // fills in the two addresses. SA_RESTART: the watchdog's ticks must not fail the runner's reads.
  dv.setUint32(SIGACTION - RUNNER_DATA + 4, SA_SIGINFO | SA_RESTORER | SA_ONSTACK | SA_RESTART | SA_NODEFER, true);
  const elf = writeElf32({
    type: 'exec',
    machine: 'i386',
    entry,
    stack: 'rw',
    segments: [
      { vaddr: RUNNER_CODE, flags: 'rx', bytes: code },
      { vaddr: RUNNER_DATA, flags: 'rw', bytes: data, memsz: RUNNER_DATA_SIZE },
      { vaddr: CODE_BASE, flags: 'rwx', bytes: new Uint8Array(0), memsz: CODE_SIZE },
      { vaddr: SCRATCH_BASE, flags: 'rw', bytes: new Uint8Array(0), memsz: SCRATCH_SIZE },
    ],
    sections: [{ name: '.text', addr: RUNNER_CODE, size: code.length }],
    // Every named label, so that objdump -d and gdb show where they are.
    symbols: [...labels].map(([name, value]) => ({ name, value, type: 'func' as const, section: '.text' })),
  });
  runner = { elf, epilogue };
  return runner;
}

/**
 * The 5 bytes the runner finds after a program's `codeLength` bytes: JMP rel32 to its epilogue
 * (relative to the end of the jump). The code area at the start of a program is these, the
 * program's code before them, and INT3 (0xCC) everywhere else; ours.ts builds the same image.
 */
export function appendedJump(codeLength: number, epilogue = nativeRunner().epilogue): Uint8Array {
  const rel = (epilogue - (CODE_BASE + codeLength + 5)) >>> 0;
  return Uint8Array.of(0xe9, rel & 0xff, (rel >>> 8) & 0xff, (rel >>> 16) & 0xff, rel >>> 24);
}

let runnerFile: string | undefined;

/** Path of the runner executable, written once per content into the temp directory. */
export function nativeRunnerPath(): string {
  if (runnerFile) return runnerFile;
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'ia32')) {
    throw new NativeRunnerError(
      `the host is ${process.platform}/${process.arch}: running code natively needs Linux on an x86 processor that runs 32-bit processes`,
    );
  }
  const { elf } = nativeRunner();
  const file = join(tmpdir(), `ringshift-native-${createHash('sha256').update(elf).digest('hex').slice(0, 16)}`);
  if (!existsSync(file)) {
    // Write then rename, so parallel test workers never run a half-written file.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, elf);
    chmodSync(tmp, 0o755);
    renameSync(tmp, file);
  }
  runnerFile = file;
  return file;
}

const REG_ORDER = ['edi', 'esi', 'ebp', 'esp', 'ebx', 'edx', 'ecx', 'eax'] as const;
const u32 = (n: number): boolean => Number.isInteger(n) && n >= -0x80000000 && n <= 0xffffffff;

function encodeRecord(p: NativeProgram, i: number, epilogue: number, out: Buffer, at: number): number {
  const what = `program ${i}`;
  if (!(p.code instanceof Uint8Array)) throw new NativeRunnerError(`${what}: code must be a Uint8Array`);
  if (p.code.length > MAX_CODE_LENGTH) throw new NativeRunnerError(`${what}: ${p.code.length} bytes of code, more than ${MAX_CODE_LENGTH}`);
  if (!(p.scratch instanceof Uint8Array) || p.scratch.length > SCRATCH_SIZE) {
    throw new NativeRunnerError(`${what}: scratch must be a Uint8Array of at most ${SCRATCH_SIZE} bytes`);
  }
  const { eflags } = p.initial;
  if (!u32(eflags) || (eflags >>> 0) & ~(EFLAGS_SETTABLE | EFLAGS_FIXED)) {
    throw new NativeRunnerError(
      `${what}: eflags 0x${(eflags >>> 0).toString(16)} sets bits other than CF PF AF ZF SF DF OF (0x${EFLAGS_SETTABLE.toString(16)}) ` +
        'and the always-set bit 1 and IF, which a user program cannot set',
    );
  }
  const codeLen = p.code.length + 5;
  out.writeUInt32LE(codeLen, at + IN_CODE_LEN);
  out.writeUInt32LE(eflags >>> 0, at + IN_EFLAGS);
  REG_ORDER.forEach((r, k) => {
    const v = r === 'esp' ? (p.initial.esp ?? DEFAULT_ESP) : p.initial[r];
    if (!u32(v)) throw new NativeRunnerError(`${what}: ${r} ${String(v)} is not a 32-bit value`);
    out.writeUInt32LE(v >>> 0, at + IN_REGS + 4 * k);
  });
  let pos = at + IN_SIZE;
  out.set(p.code, pos);
  pos += p.code.length;
  out.set(appendedJump(p.code.length, epilogue), pos);
  pos += 5;
  out.set(p.scratch, pos); // the rest of the area stays 0 (Buffer.alloc)
  return pos + SCRATCH_SIZE;
}

function decodeRecord(buf: Buffer, at: number): NativeResult {
  const regs = {} as NativeRegs;
  REG_ORDER.forEach((r, k) => (regs[r] = buf.readUInt32LE(at + OUT_REGS + 4 * k)));
  const result: NativeResult = {
    regs,
    eflags: buf.readUInt32LE(at + OUT_EFLAGS),
    scratch: new Uint8Array(buf.buffer, buf.byteOffset + at + OUT_SIZE, SCRATCH_SIZE).slice(),
  };
  const status = buf.readUInt32LE(at + OUT_STATUS);
  if (status !== 0) {
    const signal = SIGNALS[status];
    if (!signal) throw new NativeRunnerError(`runner reported signal ${status}, for which it installs no handler`);
    result.fault = {
      signal,
      eip: buf.readUInt32LE(at + OUT_EIP),
      trapno: buf.readUInt32LE(at + OUT_TRAPNO),
      error: buf.readUInt32LE(at + OUT_ERR),
      code: buf.readInt32LE(at + OUT_CODE),
    };
    if (signal === 'SIGSEGV' || signal === 'SIGBUS') result.fault.address = buf.readUInt32LE(at + OUT_ADDR);
  }
  return result;
}

/** Programs per runner process: bounds the pipe buffers (~8.3 KiB per program, both ways). */
const CHUNK = 4096;

/** Runs each program on the host CPU, all in one process (per 4096 programs), in order. */
export function runNativeBatch(programs: readonly NativeProgram[], options: NativeOptions = {}): NativeResult[] {
  const timeoutMs = options.timeoutMs ?? 1000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new NativeRunnerError(`timeoutMs ${timeoutMs} is not a positive integer`);
  const results: NativeResult[] = [];
  for (let first = 0; first < programs.length; first += CHUNK) {
    const chunk = programs.slice(first, first + CHUNK);
    const r = runChunk(chunk, first, timeoutMs);
    if (r.failure === undefined) {
      results.push(...r.results);
      continue;
    }
    let message = `native runner ${r.failure} (program ${first} to ${first + chunk.length - 1} of ${programs.length})`;
    if (r.culpritSearch) {
      // Results are buffered, so an early exit does not say whose it was: find the shortest
      // failing prefix, in log2(n) runs.
      let lo = 0;
      let hi = chunk.length;
      while (hi - lo > 1) {
        const mid = (lo + hi) >>> 1;
        if (runChunk(chunk.slice(0, mid), first, timeoutMs).failure === undefined) lo = mid;
        else hi = mid;
      }
      message =
        `native runner ${r.failure} at program ${first + hi - 1} of ${programs.length}: ` +
        'it probably made a system call (INT 0x80; with EAX = 1 that is exit(EBX))';
    }
    throw new NativeRunnerError(message);
  }
  return results;
}

function runChunk(
  chunk: readonly NativeProgram[],
  first: number,
  timeoutMs: number,
): { results: NativeResult[]; failure?: string; culpritSearch?: boolean } {
  const file = nativeRunnerPath();
  const { epilogue } = nativeRunner();
  const size = chunk.reduce((n, p) => n + IN_SIZE + (p.code?.length ?? 0) + 5 + SCRATCH_SIZE, STREAM_SIZE);
  const input = Buffer.alloc(size);
  // Stream header: magic, then the watchdog's struct itimerval { it_interval, it_value }, both
  // one period.
  input.writeUInt32LE(STREAM_MAGIC, 0);
  for (const off of [4, 12]) {
    input.writeUInt32LE(Math.floor(timeoutMs / 1000), off);
    input.writeUInt32LE((timeoutMs % 1000) * 1000, off + 4);
  }
  let at = STREAM_SIZE;
  chunk.forEach((p, k) => (at = encodeRecord(p, first + k, epilogue, input, at)));
  const record = OUT_SIZE + SCRATCH_SIZE;
  const r = spawnSync(file, [], {
    input,
    maxBuffer: chunk.length * record + 4096,
    timeout: 30_000 + 2 * chunk.length * timeoutMs,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOEXEC') {
      throw new NativeRunnerError(
        `the kernel would not run the 32-bit runner ${file} (${code}): this host lacks IA-32 emulation ` +
          '(CONFIG_IA32_EMULATION, or booted with ia32_emulation=0), so native differential tests cannot run here',
      );
    }
    throw new NativeRunnerError(`could not run ${file}: ${r.error.message}`);
  }
  const out = r.stdout;
  if (r.signal === null && r.status === 0 && out.length === chunk.length * record) {
    return { results: chunk.map((_, k) => decodeRecord(out, k * record)) };
  }
  if (r.signal) return { results: [], failure: `was killed by ${r.signal}`, culpritSearch: r.signal !== 'SIGTERM' };
  const status = r.status!;
  if (EXIT_TEXT[status]) return { results: [], failure: EXIT_TEXT[status] };
  if (status >= EXIT_RUNNER_SIGNAL) return { results: [], failure: `got signal ${status - EXIT_RUNNER_SIGNAL} in its own code` };
  return { results: [], failure: `exited with status ${status}`, culpritSearch: true };
}

/** Runs one program on the host CPU. For many programs use runNativeBatch (one process for all). */
export function runNative(program: NativeProgram, options: NativeOptions = {}): NativeResult {
  return runNativeBatch([program], options)[0]!;
}
