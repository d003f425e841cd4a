// Random guest programs for `ringshift check --random` and the rewrite-correctness tests: the
// shape of a program (plain numbers, so that fast-check can shrink it) and its arbitraries.
// harness.ts turns a program into a multiboot image; what each item kind emits is documented
// there, next to the code that emits it.
//
// A program is a list of items. Each item is one kind (ITEM_KINDS) and raw random words that
// choose its forms and operands deterministically, so that shrinking an item's words simplifies
// it without changing its kind.
import fc from 'fast-check';
import { FORMS, classOf, isSensitive, type Form } from '@ringshift/decoder';
import { absentFeatureOf, buildHandlers } from '@ringshift/runtime';

/**
 * Item kinds, by the instruction classes they draw from:
 *   gp      general-purpose forms of the decoder's table, memory operands in the data pages
 *   pad     NOPs of 1 to 8 bytes: moves sites across the tactics' reach (rel8, T3's 131 bytes)
 *   flags   CLI, STI, PUSHF(D), POPF(D) with random IF, IOPL and status flags
 *   burst   1-byte sites back to back (CLI, STI, PUSHFD, POPFD, PUSH/POP Sreg, IN/OUT DX, INT3)
 *   sreg    MOV/PUSH/POP Sreg, LDS/LES/LFS/LGS/LSS with good and faulting selectors
 *   dtr     SGDT, SIDT, SLDT, STR, SMSW
 *   lar     LAR, LSL, VERR, VERW on every kind of descriptor and selector
 *   far     far JMP/CALL (direct and through memory), RETF (imm16), IRETD through the GDT/LDT
 *   int     INT n to logging handlers, not-present gates and past the IDT limit; INT3, INTO
 *   io      IN/OUT/INS/OUTS to COM1's scratch register, CMOS NVRAM, POST, debug console, PIC masks
 *   paging  MOV from CR0/2/3/4, MOV CR3, INVLPG, CR0.WP, CLTS/LMSW, page-table edits (paging on)
 *   gdt     stores into a GDT or LDT descriptor that later loads and LAR read
 *   branch  forward JMP/Jcc (short and near) and near CALL to later item boundaries
 *   loop    a bounded backward jump (a counter in memory) to an earlier item boundary
 *   sys     LGDT/LIDT (the same tables again), LLDT (good, null and bad selectors), LTR of the
 *           busy TSS (#GP), WBINVD/INVD, RDMSR/WRMSR of IA32_SYSENTER_CS, MOV from DR6/DR7 and to DR0-DR3,
 *           RDTSC (guest time), CPUID, STI; HLT (with a timer: the next tick wakes it)
 */
export const ITEM_KINDS = ['gp', 'pad', 'flags', 'burst', 'sreg', 'dtr', 'lar', 'far', 'int', 'io', 'paging', 'gdt', 'branch', 'loop', 'sys'] as const;
export type ItemKind = (typeof ITEM_KINDS)[number];

/** How often each kind is drawn (relative). */
export const ITEM_WEIGHTS: Readonly<Record<ItemKind, number>> = {
  gp: 6, pad: 1, flags: 5, burst: 2, sreg: 4, dtr: 2, lar: 2, far: 2, int: 2, io: 3, paging: 2, gdt: 1, branch: 3, loop: 1, sys: 2,
};

export const RAW_WORDS = 6;
export const MAX_ITEMS = 24;

export interface Item {
  readonly kind: ItemKind;
  readonly r: readonly number[];
}

/**
 * How the body ends: `fall` (the body falls into the epilogue that follows it), or the body is
 * the last thing in the text section and ends with a near `jump`, a far JMP (`far`) or an
 * `iret` to the epilogue: sites at the very end of a section and of the segment.
 */
export const ENDINGS = ['fall', 'jump', 'far', 'iret'] as const;
export type Ending = (typeof ENDINGS)[number];

export interface GuestProgram {
  readonly items: readonly Item[];
  /** Initial EAX ECX EDX EBX EBP ESI EDI, raw. */
  readonly regs: readonly number[];
  /** Initial EFLAGS, raw (masked to EFLAGS_RANDOM). */
  readonly eflags: number;
  /** Identity paging of the first 4 MiB before the body runs (page-table items then edit it). */
  readonly paging: boolean;
  readonly ending: Ending;
  /** Seeds the initial contents of the two data pages (xorshift). */
  readonly dataSeed: number;
  /**
   * Device interrupts: the PIT channel 0 divisor (mode 2) for IRQ 0, delivered as vector 0x30
   * (a logging handler) with automatic EOI; 0 or absent: the PIC stays masked. One count is
   * 838 ns, so 838 guest instructions (machine/clock.ts).
   */
  readonly timer?: number;
  /**
   * With a timer: about how many body instructions run before the first tick (the prologue
   * waits out the rest of the period in a counted loop), so that ticks land inside the body.
   */
  readonly timerDelay?: number;
}

/**
 * EFLAGS bits programs set at random (POPF, IRET, the initial state): CF PF AF ZF SF IF DF OF
 * IOPL AC ID. Not TF (single-step traps would land inside stubs), NT (IRET would switch tasks,
 * which the CPU does not model), RF, VM, VIF, VIP.
 */
export const EFLAGS_RANDOM = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x200 | 0x400 | 0x800 | 0x3000 | 0x40000 | 0x200000;

const HANDLERS = buildHandlers();
const OPERANDS_OK = new Set<string>([
  'al', 'ax', 'eax', 'cl', 'dx', 'imm8', 'imm16', 'imm32', 'imm8sex16', 'imm8sex32', 'imm8_const_1',
  'r8_opcode', 'r8_or_mem', 'r8_reg', 'r16_opcode', 'r16_or_mem', 'r16_reg', 'r32_opcode', 'r32_or_mem', 'r32_reg', 'mem', 'mem_offs',
]);
/**
 * Left out of `gp` although the table filter passes them: host- or time-dependent (CPUID, RDTSC,
 * RDRAND...), moving ESP to a computed place (ENTER, LEAVE), segment loads (`sreg` covers
 * them with chosen selectors), BOUND, and forms that the other kinds emit themselves.
 */
const EXCLUDED_MNEMONICS = new Set<string>([
  'cpuid', 'rdtsc', 'rdtscp', 'rdpid', 'rdrand', 'rdseed', 'xgetbv', 'rdpkru', 'wrpkru', 'enter', 'leave', 'bound', 'wait',
  'lds', 'les', 'lfs', 'lgs', 'lss', 'ptwrite', 'monitorx', 'mwaitx', 'clzero', 'arpl', 'xlatb', 'pushf', 'pushfd', 'popf', 'popfd',
]);

function gpCandidate(f: Form): boolean {
  if (f.enc !== 'legacy' || (f.modes && !f.modes.includes(32)) || f.osz === 64 || f.asz === 16 || f.asz === 64) return false;
  const c = classOf(f.id);
  if (c.flow !== 'next' || isSensitive(f.id)) return false;
  if (EXCLUDED_MNEMONICS.has(f.mnemonic)) return false;
  return f.ops.every((k) => OPERANDS_OK.has(k));
}

/** The general-purpose forms `gp` items draw from, in table order. */
export const GP_FORMS: readonly Form[] = FORMS.filter((f) => gpCandidate(f) && HANDLERS[f.id] !== undefined && absentFeatureOf(f.name) === undefined);

/**
 * Items of the given kinds (default all), drawn by ITEM_WEIGHTS; `wordMax` bounds the raw words
 * (default 2^32 - 1; a smaller bound shrinks faster, for self-tests that need few choices).
 */
export function itemArb(kinds: readonly ItemKind[] = ITEM_KINDS, wordMax = 0xffffffff): fc.Arbitrary<Item> {
  return fc.record({
    kind: fc.oneof(...kinds.map((k) => ({ arbitrary: fc.constant(k), weight: ITEM_WEIGHTS[k] }))),
    r: fc.array(fc.integer({ min: 0, max: wordMax }), { minLength: RAW_WORDS, maxLength: RAW_WORDS }),
  });
}

/** Programs of 1..maxItems items; shrinks toward fewer items, earlier kinds and smaller words. */
export function guestProgramArb(maxItems = MAX_ITEMS, kinds: readonly ItemKind[] = ITEM_KINDS, wordMax = 0xffffffff): fc.Arbitrary<GuestProgram> {
  const word = fc.integer({ min: 0, max: wordMax });
  return fc.record({
    // size 'max': fast-check's default size ('small') caps an array at about 12 elements
    // whatever maxLength says, so that programs never had more than 12 items.
    items: fc.array(itemArb(kinds, wordMax), { minLength: 1, maxLength: maxItems, size: 'max' }),
    regs: fc.array(word, { minLength: 7, maxLength: 7 }),
    eflags: word,
    paging: fc.boolean(),
    ending: fc.constantFrom(...ENDINGS),
    dataSeed: word,
    timer: fc.oneof(fc.constant(0), fc.integer({ min: 2, max: 4 })),
    timerDelay: fc.integer({ min: 0, max: 400 }),
  });
}
