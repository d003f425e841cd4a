// Random user-mode IA-32 programs for the CPU-versus-host oracle (test/host/README.md,
// "CPU differential"). A program is described by plain numbers (ProgramSeed) so that fast-check
// can shrink it and a plain seeded PRNG (the campaign) can make the same shape without
// fast-check; buildProgram() turns a seed into bytes + initial state, deterministically.
//
// Forms come from the decoder's table (FORMS + classOf), filtered to general-purpose 32-bit
// forms that a CPL-3 process may run and that the host and our CPU must agree on. What is left
// out, and why (the same list is in test/host/README.md):
//   - privileged and IOPL-sensitive forms (classOf: privileged !== 'no', ioplSensitive !== 'no'):
//     at CPL 3 they only #GP; HLT is kept as a rare fault probe instead.
//   - control transfers (classOf flow !== 'next': JMP, Jcc, CALL, RET, LOOP, INT n, SYSENTER...):
//     a random target leaves the code; INT n/SYSCALL talk to the Linux kernel. INT3 and UD2 are
//     kept as rare fault probes.
//   - forms that move ESP other than PUSH/POP/PUSHA/POPA (ENTER, LEAVE, MOV/ADD... to ESP): ESP is
//     never a generated register operand, and starts mid-scratch so that pushes and pops stay
//     in the compared area.
//   - POPF/POPFD: a random image sets TF (single-step trap) or AC (Linux sets CR0.AM, so #AC on
//     misaligned accesses), which the bare CPU model does not share with the host process.
//   - x87, MMX, SSE, AVX, VEX/EVEX/XOP encodings: our CPU does not implement them yet.
//   - segment-register loads and stores (MOV Sreg, PUSH/POP Sreg), segment-override prefixes,
//     LAR/LSL/VERR/VERW/ARPL: the selectors and descriptors are the Linux kernel's on the host and
//     ours in the model, so the answers legitimately differ. Except the far-pointer loads
//     LDS/LES/LFS/LGS/LSS: a MOV first stores a selector from FAR_SELECTORS after the offset, all
//     of them selectors whose outcome ours.ts mirrors with a copy of the relevant part of Linux's
//     x86-64 GDT (user code/data, kernel code/data, the TSS, the limit, no LDT).
//   - forms of features our CPU does not have (runtime absent-features.ts: x87, MMX, SSE*, CRC32,
//     fences, CLFLUSH, ...): the host has them, ours raises #UD or #NM by design.
//   - CPUID, RDTSC(P), RDPID, RDRAND/RDSEED, XGETBV, RDPKRU...: host-specific or nondeterministic.
//   - forms our CPU has no handler for (CRC32, fences, prefetches, ...): they would only report
//     "not implemented"; listed by unimplementedForms() so that the gap stays visible.
//   - 16-bit addressing (a16) and 64-bit-only forms: not what a 32-bit flat process runs.
// Kept on purpose: LOCK on lockable memory forms, string instructions with REP/REPNE and
// ECX <= 8 (set by a MOV just before), DIV/IDIV/AAM that may raise #DE, memory operands that
// occasionally cross the end of the scratch page (#PF on both sides, at the same instruction).
//
// Every memory access stays in the scratch page or faults on both sides. An access that lands
// anywhere else on the host succeeds there (the runner's data and I/O buffers, the code area)
// while ours faults: the host then corrupts its own input or results, or reads the appended JMP
// and earlier programs' bytes, and reports disagreements that are no CPU bug (campaign seed 11,
// test/host/README.md). So a [base + disp8] operand only uses a register that still holds its initial scratch
// pointer (no earlier instruction of the sequence may have written it; else the operand is an
// absolute scratch address), and BT/BTS/BTR/BTC m32, r32 (bit offset +-2^31, so +-256 MiB) get
// a MOV of the offset register that keeps the addressed dword in the page.
import fc from 'fast-check';
import { FORMS, OpKind, Prefix, classOf, encode, imm, ins, mem, mnemonicOf, reg, registerName, type Form, type Instruction, type Operand } from '@ringshift/decoder';
import { absentFeatureOf, buildHandlers } from '@ringshift/runtime';
import { SCRATCH_BASE, SCRATCH_SIZE, type NativeProgram } from '../host/native';

/** Initial ESP: mid-scratch, so that POPs read and PUSHes write compared bytes. */
export const PROGRAM_ESP = SCRATCH_BASE + 0x800;
export const MAX_INSTRUCTIONS = 8;

const OPERANDS_OK = new Set<string>([
  'al', 'ax', 'eax', 'cl', 'dx', 'imm8', 'imm16', 'imm32', 'imm8sex16', 'imm8sex32', 'imm8_const_1',
  'r8_opcode', 'r8_or_mem', 'r8_reg', 'r16_opcode', 'r16_or_mem', 'r16_reg', 'r32_opcode', 'r32_or_mem', 'r32_reg',
  'mem', 'es_rDI', 'seg_rDI', 'seg_rSI', 'seg_rBX_al', 'mem_offs',
]);
/** Mnemonics left out although their forms pass the table filter (see the header for why). */
const EXCLUDED_MNEMONICS = new Set<string>([
  'cpuid', 'enter', 'leave', 'popf', 'popfd', 'lar', 'lsl', 'verr', 'verw', 'arpl', 'bound', 'rdtsc', 'rdtscp', 'rdpid',
  'rdrand', 'rdseed', 'xgetbv', 'rdpkru', 'wrpkru', 'ptwrite', 'monitorx', 'mwaitx', 'clzero', 'wait', 'into',
]);
const STRING_MNEMONICS = /^(movs|cmps|scas|lods|stos)[bwd]$/;
/**
 * Forms whose behaviour differs by vendor: 0F 0D with a register operand is a reserved NOP on
 * Intel's P6 family (our CPU, runtime ops/hint-nops.ts) but #UD on AMD (APM vol. 3 PREFETCHW).
 */
const EXCLUDED_FORMS = new Set<string>(['Reservednop_rm16_r16_0F0D', 'Reservednop_rm32_r32_0F0D']);

function tableCandidate(f: Form): boolean {
  if (f.enc !== 'legacy' || (f.modes && !f.modes.includes(32)) || f.osz === 64 || f.asz === 16 || f.asz === 64) return false;
  const c = classOf(f.id);
  if (c.flow !== 'next' || c.privileged !== 'no' || c.ioplSensitive !== 'no') return false;
  if (EXCLUDED_MNEMONICS.has(f.mnemonic) || EXCLUDED_FORMS.has(f.name)) return false;
  return f.ops.every((k) => OPERANDS_OK.has(k));
}

const HANDLERS = buildHandlers();

/** The forms programs are drawn from, in table order (stable for a given table). */
export const PROGRAM_FORMS: readonly Form[] = FORMS.filter((f) => tableCandidate(f) && HANDLERS[f.id] !== undefined && absentFeatureOf(f.name) === undefined);

/** Forms that pass the table filter but that our CPU does not implement (none left), or only as an absent feature (#UD/#NM). */
export function unimplementedForms(): readonly Form[] {
  return FORMS.filter((f) => tableCandidate(f) && (HANDLERS[f.id] === undefined || absentFeatureOf(f.name) !== undefined));
}

const FAR_POINTER = /^L(ds|es|ss|fs|gs)_r(16|32)_m16(16|32)$/;
/**
 * Selectors the far-pointer loads get, and what each does at CPL 3 on Linux (x86-64 kernel, 32-bit
 * process): 0x2b __USER_DS (and RPL 0-2, which DS/ES/FS/GS accept and SS refuses), null (SS
 * #GP(0); a later access through the register #GP(0)), 0x10/0x18 kernel code/data (DPL 0: #GP),
 * 0x43 the TSS (system: #GP), 0x83 past the GDT limit 0x7f, 0x07 the LDT (none: #GP), 0x23
 * __USER32_CS (readable code: DS/ES/FS/GS accept it, SS #GP; a later read through the register
 * works and a write or read-modify-write #GP(0)s, which must leave EFLAGS unchanged: runtime
 * Cpu.readRmw32, campaign seed 4242).
 */
export const FAR_SELECTORS: readonly number[] = [0x2b, 0x2b, 0x2b, 0x2b, 0x28, 0x29, 0x2a, 0x00, 0x03, 0x10, 0x1b, 0x23, 0x43, 0x83, 0x07];

const FAULT_PROBES: readonly string[] = ['Int3', 'Ud2', 'Hlt'];

/** One instruction: a form pick and raw random words that choose its operands. */
export interface InstructionSeed {
  readonly form: number;
  readonly r: readonly number[];
}

export interface ProgramSeed {
  readonly instructions: readonly InstructionSeed[];
  /** EAX ECX EDX EBX EBP ESI EDI, raw; EBX/EBP/ESI/EDI usually become scratch pointers. */
  readonly regs: readonly number[];
  readonly eflags: number;
  /** Seeds the scratch contents (xorshift), so the 4 KiB need not be shrunk byte by byte. */
  readonly scratchSeed: number;
}

export interface BuiltProgram extends NativeProgram {
  /** The instructions, at their addresses, for listings. */
  readonly listing: readonly Instruction[];
}

const R8 = ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'] as const;
const R16 = ['ax', 'cx', 'dx', 'bx', 'bp', 'si', 'di'] as const;
const R32 = ['eax', 'ecx', 'edx', 'ebx', 'ebp', 'esi', 'edi'] as const;
const BASES = ['ebx', 'ebp', 'esi', 'edi'] as const;
const RAW_WORDS = 8;

/** Immediates and register values biased toward the edges where flag bugs live. */
function interesting(r: number, bits: number): number {
  const m = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  const top = 2 ** (bits - 1);
  switch (r & 7) {
    case 0: return 0;
    case 1: return (r >>> 3) & 0x1f;
    case 2: return m;
    case 3: return top;
    case 4: return top - 1;
    default: return (r >>> 3) * 2654435761 % 2 ** bits & m;
  }
}

function sizeOf(kind: string): number {
  return kind.startsWith('r8') || kind === 'al' || kind === 'cl' ? 8 : kind.startsWith('r16') || kind === 'ax' || kind === 'dx' ? 16 : 32;
}

type Base = (typeof BASES)[number];

/**
 * What the generator knows while it emits a sequence: the base registers that still hold their
 * initial scratch pointer (no instruction so far may have written them), with that value.
 */
interface BuildContext {
  readonly bases: Map<Base, number>;
}

/** A memory operand and, when it is known before the run, the address it accesses. */
interface MemChoice {
  readonly op: Operand;
  readonly base?: Base;
  readonly address: number;
}

/**
 * A memory operand of `bytes` bytes inside the scratch page (or crossing its end, as a #PF
 * probe). `noAccess` (LEA, NOP r/m): the address is only computed, so any base will do.
 */
function memOperand(r: number, r2: number, bytes: number, ctx: BuildContext, noAccess = false, absoluteOnly = false): MemChoice {
  const off = (r >>> 4) % (SCRATCH_SIZE - bytes + 1);
  const absolute = (address: number): MemChoice => ({ op: mem({ disp: address, size: bytes }), address });
  switch (r & 15) {
    case 0: return absolute(SCRATCH_BASE + SCRATCH_SIZE - 1 - (r2 & 3)); // crosses the page end: #PF
    case 1: case 2: case 3: case 4: case 5: case 6: case 7:
      return absolute(SCRATCH_BASE + off);
    default: {
      if (absoluteOnly) return absolute(SCRATCH_BASE + off);
      const base = BASES[r2 & 3]!;
      const disp = ((r2 >>> 2) & 0xff) - 0x80;
      const value = ctx.bases.get(base);
      // A register that an earlier instruction may have changed could point anywhere (the code
      // area, the host runner's buffers): address the same bytes without it.
      if (value === undefined && !noAccess) return absolute(SCRATCH_BASE + off);
      return { op: mem({ base, disp, size: bytes }), base, address: ((value ?? 0) + disp) >>> 0 };
    }
  }
}

/** The 32-bit register a register name is part of (bh -> ebx), for the base bookkeeping. */
function family(name: string): string {
  return name.length === 2 ? `e${name.endsWith('l') || name.endsWith('h') ? `${name[0]}x` : name}` : name;
}

/**
 * Registers the instruction may write. Explicit: the first operand, and both for XCHG/XADD (no
 * other IA-32 form writes a later explicit register operand). Implicit, of the four bases:
 * POPA/POPAD (all) and the string instructions (ESI, EDI). Reading counts as writing where it is
 * simpler (CMP, TEST, BT, PUSH): that only drops a base that was still good.
 */
function written(i: Instruction): Set<string> {
  const out = new Set<string>();
  const m = mnemonicOf(i.form);
  for (let k = 0; k < i.opCount; k++) {
    if (i.opKinds[k] !== OpKind.Register || (k > 0 && m !== 'xchg' && m !== 'xadd')) continue;
    out.add(family(registerName(i.opRegs[k]!)));
  }
  if (/^popa/.test(m)) BASES.forEach((b) => out.add(b));
  if (STRING_MNEMONICS.test(m)) { out.add('esi'); out.add('edi'); }
  return out;
}

const BIT_TEST = /^Bt[src]?_rm32_r32$/;

/**
 * A bit offset for BT* m32, r32 that keeps the dword it addresses (address + 4 * (offset SAR 5),
 * SDM vol. 2A BT) inside the scratch page: edge bits, the page's first and last dword, or
 * somewhere between.
 */
function bitOffsetInPage(w: number, address: number): number {
  const kMin = Math.ceil((SCRATCH_BASE - address) / 4);
  const kMax = Math.floor((SCRATCH_BASE + SCRATCH_SIZE - 4 - address) / 4);
  // The operand's own dword, the one below it, the page's first and last, or anywhere in the page.
  const k = (w & 7) < 4 ? Math.min(kMax, Math.max(kMin, [0, -1, kMin, kMax][w & 3]!)) : kMin + ((w >>> 3) % (kMax - kMin + 1));
  const bit = (w >>> 12) & 1 ? (w >>> 13) & 31 : ((w >>> 13) & 1) * 31;
  return (k * 32 + bit) | 0;
}

const MEM_BYTES: Record<string, number> = { UInt8: 1, Int8: 1, UInt16: 2, Int16: 2, UInt32: 4, Int32: 4, UInt64: 8, Unknown: 4 };

/** Builds one seed into instructions (a MOV prelude for string/XLAT and BT* m32, r32 forms), or none if unencodable. */
function buildInstruction(seed: InstructionSeed, ctx: BuildContext): Instruction[] {
  const r = (k: number): number => seed.r[k % seed.r.length]! >>> 0;
  if ((r(7) & 0xff) < 2) return [ins(FAULT_PROBES[r(6) % FAULT_PROBES.length]!)];
  const form = PROGRAM_FORMS[seed.form % PROGRAM_FORMS.length]!;
  const out: Instruction[] = [];
  const mov = (name: (typeof R32)[number], v: number): void => void out.push(ins('Mov_r32_imm32', reg(name), imm(v)));
  if (STRING_MNEMONICS.test(form.mnemonic) || form.mnemonic === 'xlatb') {
    // Pointers mid-scratch and a small count: 8 iterations of 4 bytes either way stay in bounds.
    if (form.mnemonic === 'xlatb') mov('ebx', SCRATCH_BASE + 0x40 + (r(0) % 0xe00));
    else {
      mov('esi', SCRATCH_BASE + 0x40 + (r(0) % 0xf80));
      mov('edi', SCRATCH_BASE + 0x40 + (r(1) % 0xf80));
      mov('ecx', r(2) % 9);
    }
    const i = ins(form.name);
    if (form.mnemonic !== 'xlatb' && (r(3) & 1)) i.prefixes |= /^(cmps|scas)/.test(form.mnemonic) && r(3) & 2 ? Prefix.Repne : Prefix.Rep;
    out.push(i);
    return encodable(out);
  }
  if (FAR_POINTER.test(form.name)) {
    // LDS/LES/LFS/LGS/LSS r, m16:16/m16:32 in the scratch page, with a known selector after the offset.
    const bytes = form.name.endsWith('32') ? 4 : 2;
    const address = SCRATCH_BASE + (r(1) % (SCRATCH_SIZE - 8));
    const selector = FAR_SELECTORS[r(2) % FAR_SELECTORS.length]!;
    out.push(ins('Mov_rm16_imm16', mem({ disp: address + bytes, size: 2 }), imm(selector)));
    const dest = bytes === 4 ? R32[r(0) % 7]! : R16[r(0) % 7]!;
    out.push(ins(form.name, reg(dest), mem({ disp: address, size: bytes + 2 })));
    return encodable(out);
  }
  const memBytes = MEM_BYTES[form.mem ?? 'Unknown'] ?? 4;
  const access = classOf(form.id).memory;
  const noAccess = access === 'none' || access === 'address-only';
  const ops: Operand[] = [];
  let usesMem = false;
  let memChoice: MemChoice | undefined;
  form.ops.forEach((k, n) => {
    const w = r(n);
    switch (k) {
      case 'al': case 'ax': case 'eax': case 'cl': case 'dx': ops.push(reg(k)); break;
      case 'imm8_const_1': ops.push(imm(1)); break;
      // 16-bit SHLD/SHRD by more than 16 leave the result undefined (SDM vol. 2B SHLD): keep it defined.
      case 'imm8': ops.push(imm(/^Sh[lr]d_rm16/.test(form.name) ? interesting(w, 8) % 17 : interesting(w, 8))); break;
      case 'imm8sex16': case 'imm8sex32': ops.push(imm(interesting(w, 8))); break;
      case 'imm16': ops.push(imm(interesting(w, 16))); break;
      case 'imm32': ops.push(imm(interesting(w, 32))); break;
      case 'mem': case 'mem_offs':
        usesMem = true;
        memChoice = memOperand(w, r(n + 4), memBytes, ctx, noAccess, k === 'mem_offs');
        ops.push(memChoice.op);
        break;
      default: {
        const size = sizeOf(k);
        if (k.endsWith('_or_mem') && (w & 1) && !usesMem) {
          usesMem = true;
          memChoice = memOperand(w >>> 1, r(n + 4), size >>> 3, ctx, noAccess);
          ops.push(memChoice.op);
        } else if (memChoice && BIT_TEST.test(form.name)) {
          // The bit offset reaches +-256 MiB from the operand: load it, with a register other than the base.
          const candidates = R32.filter((x) => x !== memChoice!.base);
          const offReg = candidates[(w >>> 1) % candidates.length]!;
          mov(offReg, bitOffsetInPage(r(n + 4), memChoice.address));
          ops.push(reg(offReg));
        } else {
          ops.push(reg(size === 8 ? R8[(w >>> 1) % 8]! : size === 16 ? R16[(w >>> 1) % 7]! : R32[(w >>> 1) % 7]!));
        }
      }
    }
  });
  let i: Instruction;
  try {
    i = ins(form.name, ...ops);
  } catch {
    return [];
  }
  if (usesMem && form.flags?.includes('lock') && (r(5) & 3) === 0) i.prefixes |= Prefix.Lock;
  out.push(i);
  return encodable(out);
}

/** Drops what the encoder refuses (shadowed forms such as XCHG EAX, EAX; LOCK on a register form). */
function encodable(list: Instruction[]): Instruction[] {
  for (const i of list) {
    try {
      encode(i, 32);
    } catch {
      if (i.prefixes & Prefix.Lock) {
        i.prefixes &= ~Prefix.Lock;
        try { encode(i, 32); continue; } catch { /* fall through */ }
      }
      return [];
    }
  }
  return list;
}

/** Scratch contents from a 32-bit seed (xorshift32), biased toward 0 and FF bytes now and then. */
export function scratchFrom(seed: number): Uint8Array {
  const s = new Uint8Array(SCRATCH_SIZE);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < SCRATCH_SIZE; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    const v = (x & 0xf) === 0 ? 0 : (x & 0xf) === 1 ? 0xffffffff : x;
    s[i] = v; s[i + 1] = v >>> 8; s[i + 2] = v >>> 16; s[i + 3] = v >>> 24;
  }
  return s;
}

export function buildProgram(seed: ProgramSeed, codeBase: number): BuiltProgram {
  const g = (k: number): number => seed.regs[k]! >>> 0;
  // EBX EBP ESI EDI: a scratch pointer (with room for disp8 either side) 7 times in 8.
  const ptr = (k: number): number => ((g(k) & 7) === 7 ? interesting(g(k) >>> 3, 32) : SCRATCH_BASE + 0x80 + ((g(k) >>> 3) % (SCRATCH_SIZE - 0x100)));
  const initial = {
    eax: interesting(g(0), 32), ecx: interesting(g(1), 32), edx: interesting(g(2), 32),
    ebx: ptr(3), ebp: ptr(4), esi: ptr(5), edi: ptr(6),
    esp: PROGRAM_ESP,
    eflags: seed.eflags & 0xcd5,
  };
  const ctx: BuildContext = { bases: new Map() };
  for (const b of BASES) {
    const v = initial[b];
    if (v >= SCRATCH_BASE + 0x80 && v < SCRATCH_BASE + SCRATCH_SIZE - 0x80) ctx.bases.set(b, v);
  }
  const listing: Instruction[] = [];
  const parts: Uint8Array[] = [];
  let at = codeBase;
  for (const s of seed.instructions) {
    for (const i of buildInstruction(s, ctx)) {
      i.ip = at;
      const bytes = encode(i, 32);
      listing.push(i);
      parts.push(bytes);
      at += bytes.length;
      for (const w of written(i)) ctx.bases.delete(w as Base);
    }
  }
  const code = new Uint8Array(at - codeBase);
  let o = 0;
  for (const p of parts) { code.set(p, o); o += p.length; }
  return { code, listing, initial, scratch: scratchFrom(seed.scratchSeed) };
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });

export const instructionSeedArb: fc.Arbitrary<InstructionSeed> = fc.record({
  form: fc.nat({ max: PROGRAM_FORMS.length - 1 }),
  r: fc.array(u32, { minLength: RAW_WORDS, maxLength: RAW_WORDS }),
});

/** fast-check arbitrary of program seeds (1-8 instructions); shrinks toward fewer, simpler instructions. */
export const programSeedArb: fc.Arbitrary<ProgramSeed> = fc.record({
  instructions: fc.array(instructionSeedArb, { minLength: 1, maxLength: MAX_INSTRUCTIONS }),
  regs: fc.array(u32, { minLength: 7, maxLength: 7 }),
  eflags: fc.nat({ max: 0xfff }),
  scratchSeed: u32,
});

/** A small seeded PRNG (mulberry32) for the campaign, where fast-check's machinery is not needed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** The same shape as programSeedArb, from a plain PRNG. */
export function randomProgramSeed(next: () => number): ProgramSeed {
  const n = 1 + (next() % MAX_INSTRUCTIONS);
  const instructions: InstructionSeed[] = [];
  for (let k = 0; k < n; k++) {
    instructions.push({ form: next() % PROGRAM_FORMS.length, r: Array.from({ length: RAW_WORDS }, next) });
  }
  return { instructions, regs: Array.from({ length: 7 }, next), eflags: next() & 0xfff, scratchSeed: next() };
}
