// The block compiler: a block (blocks.ts) that the loop has entered JIT_THRESHOLD times becomes
// one JavaScript function, built with `new Function` from the families' emitters (emit.ts). Its
// instructions run one after another with their operands, registers and sizes as constants;
// an instruction without an emitter becomes a call of its handler (H[j](cpu, I[j]): one call
// site per instruction, so each stays monomorphic). Where `new Function` is not allowed (a page's
// Content-Security-Policy without 'unsafe-eval'), blocks stay interpreted.
//
// The compiled function keeps the architectural state exactly as the interpreter does:
//  - before an instruction that may fault or reach a monitor hook (anything that is not
//    register-only) it stores the instruction's EIP and cpu.faultSteps (the steps the block will
//    have taken if it faults: this one and the ones before it, which have retired);
//  - after one that accesses memory or calls a handler it compares cpu.blockBreaks and leaves
//    with EIP at the next instruction (self-modifying code, a memory-mapped device, Cpu.stop());
//  - the last instruction, if it is not straight, is compiled only when it has an emitter and
//    the monitor does not see it (near JMP/CALL relative or through r/m, Jcc, RET); otherwise
//    the function stops before it and the loop runs it with the single-step path.
// On top of that, optimiseFlags() computes conditions from the operands of the instruction that
// set the flags, where that is in the same block, and drops lazy-flag stores nothing can see.
// It returns the number of instructions it retired, having added them to cpu.retired; `left` is
// the budget (at least the block's length).
import { classOf, formatIntel } from '@ringshift/decoder';
import type { Block, BlockFn } from './blocks';
import { HELPERS, emitterOf } from './emit';
import { Fault } from './fault';
import * as F from './eflags';
import { LazyOp } from './lazy-flags';

/** Times a block runs interpreted before it is compiled. */
export const JIT_THRESHOLD = 16;

/** A fault or a call that may reach a hook: anything but register arithmetic and flag reads. */
const EXITS = /throw|H\[|cpu\.(?!getFlag\(|setLazy\()\w+\(/;
/**
 * Accesses memory (a code write, or a memory-mapped device), or calls a handler (which may):
 * the block checks blockBreaks after it.
 */
const WRITES = /cpu\.(read|write|push|pop)|H\[/;
/** Reads or writes the flags other than through the markers (handlers, getFlag, POPF-like code). */
const FLAGS = /getFlag|setLazy|lazy|flagsStored|setFlag|eflags|H\[|X\./;
const LZ = /\/\*LZ (\d+) (\d+) (\S+) (\S+) (\S+)\*\/.*?\/\*ZL\*\//s;
const LI = /\/\*LI (\d+) (\d+) (\S+) (\S+)\*\/.*?\/\*IL\*\//s;
const CC = /\/\*CC (\w+)\*\/(.*?)\/\*CC\*\//gs;

let available: boolean | undefined;

/** The last instruction of the block so far that set all of the status flags, and from what. */
interface Producer {
  op: number;
  size: number;
  /** LZ: all six flags; LI: INC/DEC (CF from before). */
  incDec: boolean;
}

/**
 * A condition as an expression of the producer's operands (fa, fb) and result (fx), or
 * undefined where it needs a flag the producer does not determine alone (CF of INC/DEC, PF, OF
 * of most operations) or a size this does not cover.
 */
function staticCondition(cc: string, p: Producer): string | undefined {
  const s = p.size;
  const zf = s === 32 ? '(fx === 0)' : `((fx & ${(1 << s) - 1}) === 0)`;
  const sf = s === 32 ? '(fx < 0)' : `((fx & ${1 << (s - 1)}) !== 0)`;
  switch (cc) {
    case 'e': return zf;
    case 'ne': return `!${zf}`;
    case 's': return sf;
    case 'ns': return `!${sf}`;
  }
  if (p.incDec) return undefined;
  if (p.op === LazyOp.Logic) {
    // CF = OF = 0.
    switch (cc) {
      case 'b': case 'o': return 'false';
      case 'ae': case 'no': return 'true';
      case 'a': return `!${zf}`;
      case 'be': return zf;
      case 'l': return sf;
      case 'ge': return `!${sf}`;
      case 'g': return `(!${zf} && !${sf})`;
      case 'le': return `(${zf} || ${sf})`;
    }
    return undefined;
  }
  if (s !== 32) return undefined;
  if (p.op === LazyOp.Sub) {
    // CMP/SUB a, b: the unsigned and signed comparisons of a with b.
    switch (cc) {
      case 'b': return '((fa >>> 0) < (fb >>> 0))';
      case 'ae': return '((fa >>> 0) >= (fb >>> 0))';
      case 'a': return '((fa >>> 0) > (fb >>> 0))';
      case 'be': return '((fa >>> 0) <= (fb >>> 0))';
      case 'l': return '(fa < fb)';
      case 'ge': return '(fa >= fb)';
      case 'g': return '(fa > fb)';
      case 'le': return '(fa <= fb)';
    }
  }
  if (p.op === LazyOp.Add) {
    switch (cc) {
      case 'b': return '((fx >>> 0) < (fa >>> 0))';
      case 'ae': return '((fx >>> 0) >= (fa >>> 0))';
    }
  }
  return undefined;
}

/**
 * Conditions from the flags of an earlier instruction of the block become expressions of its
 * operands; the lazy-flag stores of a register-only instruction whose flags are overwritten
 * before any instruction reads them or can leave the block are dropped.
 */
function optimiseFlags(srcs: string[]): string[] {
  const out = srcs.slice();
  let p: Producer | null = null;
  for (let j = 0; j < out.length; j++) {
    let src = out[j]!;
    const prod = p;
    src = src.replace(CC, (_whole, cc: string, expr: string) => {
      const e = prod === null ? undefined : staticCondition(cc, prod);
      return e === undefined ? expr : e;
    });
    const lz = LZ.exec(src), li = LI.exec(src);
    if (lz !== null) {
      p = { op: Number(lz[1]), size: Number(lz[2]), incDec: false };
      src = src.replace(LZ, (m) => `${m} fa = ${lz[3]}; fb = ${lz[4]}; fx = ${lz[5]};`);
    } else if (li !== null) {
      const op = Number(li[1]), size = Number(li[2]);
      const cf = prod === null ? undefined : staticCondition('b', prod);
      if (cf !== undefined) {
        // INC/DEC after an instruction whose CF is known here: CF goes straight into EFLAGS and
        // the rest is lazy, as setLazy() would leave them, without reading the earlier state.
        p = { op, size, incDec: false };
        src = src.replace(LI, () =>
          `/*LZ ${op} ${size} ${li[3]} 1 ${li[4]}*/ cpu.flagsStored = (cpu.flagsStored & ${~F.CF}) | (${cf} ? ${F.CF} : 0); ` +
          `cpu.lazyMask = ${F.STATUS & ~F.CF}; cpu.lazyOp = ${op}; cpu.lazyDst = ${li[3]}; cpu.lazySrc = 1; cpu.lazyRes = ${li[4]}; ` +
          `cpu.lazySize = ${size}; cpu.lazyCarry = 0; /*ZL*/ fa = ${li[3]}; fb = 1; fx = ${li[4]};`);
      } else {
        p = { op, size, incDec: true };
        src = src.replace(LI, (m) => `${m} fa = ${li[3]}; fx = ${li[4]};`);
      }
    } else if (FLAGS.test(src)) {
      p = null;
    }
    out[j] = src;
  }
  // Backwards: are the flags in cpu needed after instruction j (live)?
  // A fault before the instruction's flag stores needs the flags from before it. The write of a
  // read-modify-write after them cannot fault (its read had write intent: Cpu.readRmw32), but it
  // can end the block (a code page, a device), which then needs the instruction's own flags.
  let live = true;
  for (let j = out.length - 1; j >= 0; j--) {
    const src = out[j]!;
    const region = LZ.exec(src) ?? LI.exec(src);
    if (region === null) {
      if (EXITS.test(src) || FLAGS.test(src)) live = true;
      continue;
    }
    const before = src.slice(0, region.index), after = src.slice(region.index + region[0].length);
    const rest = before + after;
    const drop: boolean = !live && !EXITS.test(after);
    if (drop) out[j] = before + region[0].replace(/\*\/.*\/\*(ZL|IL)/s, '*/ /*$1') + after;
    // INC/DEC kept keeps CF: it reads the flags before it.
    live = EXITS.test(rest) || FLAGS.test(rest) || (!drop && region[0].startsWith('/*LI'));
  }
  return out;
}

/** Generated source of a block function, and how many instructions it covers. */
export function blockSource(b: Block): { source: string; covers: number } {
  const n = b.length;
  const bits16 = b.inss[0]!.bits === 16;
  const eipAt = (j: number): string => {
    const off = b.offs[j]!;
    const s = off === 0 ? 'e' : `(e + ${off})`;
    return bits16 && j === n ? `(${s} & 0xffff)` : s;
  };
  let covers = n;
  const srcs: string[] = [];
  for (let j = 0; j < n; j++) {
    const d = b.decoded[j]!;
    const last = j === n - 1;
    const emit = emitterOf(d.exec);
    const src = emit?.(d.ins, eipAt(j + 1));
    if (!d.straight) {
      // Only the last instruction of a block can be a control transfer or a system instruction.
      if (src === undefined || d.sensitive || !last) {
        covers = j;
        break;
      }
    }
    srcs.push(src ?? `H[${j}](cpu, I[${j}]);`);
  }
  const opt = optimiseFlags(srcs);
  const body: string[] = [];
  for (let j = 0; j < covers; j++) {
    const d = b.decoded[j]!;
    const src = opt[j]!;
    body.push(`// ${formatIntel(d.ins).replace(/\n/g, ' ')}`);
    if (EXITS.test(src)) body.push(`cpu.eip = ${eipAt(j)}; cpu.faultSteps = done + ${j + 1};`);
    body.push(`{ ${src} }`);
    if (d.straight && j < n - 1 && WRITES.test(src)) {
      body.push(`if (cpu.blockBreaks !== k) { cpu.eip = ${eipAt(j + 1)}; cpu.retired += done + ${j + 1}; return done + ${j + 1}; }`);
    }
  }
  if (covers === n && b.decoded[n - 1]!.straight) body.push(`cpu.eip = ${eipAt(n)};`);
  if (covers < n) body.push(`cpu.eip = ${eipAt(covers)};`);
  body.push(`done += ${covers};`);
  // A block that ends in a jump back to its own start (a loop on one page) goes round inside the
  // function while the budget allows: nothing a straight instruction does can make an interrupt
  // deliverable, and blockBreaks covers code writes and stop().
  const ins = b.inss[n - 1]!;
  const flow = classOf(ins.form).flow;
  const loops = covers === n && (flow === 'branch' || flow === 'conditional') && (ins.target | 0) === (b.inss[0]!.ip | 0);
  const lines = [
    'return function block(cpu, left, H, I) {',
    'const r = cpu.regs; const e = cpu.eip; const k = cpu.blockBreaks; let done = 0; let fa = 0, fb = 0, fx = 0;',
    loops ? `do {\n${body.join('\n')}\n} while (cpu.eip === e && left - done >= ${n} && cpu.blockBreaks === k);` : body.join('\n'),
    'cpu.retired += done; return done;',
    '};',
  ];
  return { source: lines.join('\n'), covers };
}

/**
 * Compiled functions by source. A function depends on nothing but its source (the handlers and
 * instructions it calls come in as H and I), so every block with the same bytes at the same
 * place, in this CPU or another (the backends run the same guest), shares one function, and
 * the JavaScript engine's optimised code for it.
 */
const CODE = new Map<string, BlockFn>();
const CODE_LIMIT = 4096;

/** The compiled block, or undefined when it cannot be compiled (then it stays interpreted). */
export function compileBlock(b: Block): BlockFn | undefined {
  if (available === false) return undefined;
  const { source, covers } = blockSource(b);
  if (covers < 2) return undefined;
  let fn = CODE.get(source);
  if (fn === undefined) {
    try {
      fn = new Function('Fault', 'X', source)(Fault, HELPERS) as BlockFn;
      available = true;
    } catch (e) {
      if (available === undefined && e instanceof EvalError) {
        available = false;
        return undefined;
      }
      throw e;
    }
    if (CODE.size >= CODE_LIMIT) CODE.clear();
    CODE.set(source, fn);
  }
  b.covers = covers;
  return fn;
}
