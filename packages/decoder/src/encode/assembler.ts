// A small two-phase assembler over the encoder: instructions, labels and data go into a list;
// assemble() lays them out, growing branches whose target is out of reach (rel8 -> rel32, or
// rel16 in 16-bit code) until nothing changes, then emits. Branches only ever grow, so the
// iteration ends; this is the classic "start short, relax" scheme (as in GNU as / LLVM MC).
import type { Instruction } from '../instruction';
import { buildInstruction, formNamed, imm, rel, type Operand } from './builders';
import { encodedLength, encodeInto } from './encoder';
import { EncodeError } from './errors';
import { Label, type LabelResolver } from './label';
import { branchCandidates, candidates, type Candidate } from './select';

export interface AssembleResult {
  readonly bytes: Uint8Array;
  /** Address of every named label. */
  readonly labels: Map<string, number>;
}

type Item =
  | { readonly t: 'label'; readonly label: Label }
  | { readonly t: 'fixed'; readonly ins: Instruction; readonly length: number }
  | { readonly t: 'deferred'; readonly what: string; readonly cands: readonly Candidate[]; choice: number }
  | { readonly t: 'data'; readonly width: 1 | 2 | 4; readonly values: readonly (number | Label)[] }
  | { readonly t: 'bytes'; readonly data: Uint8Array }
  | { readonly t: 'align'; readonly boundary: number; readonly fill: number }
  | { readonly t: 'fill'; readonly count: number; readonly value: number };

const hex = (v: number): string => `0x${v.toString(16)}`;

function labelsIn(ops: readonly Operand[]): Label[] {
  const out: Label[] = [];
  for (const o of ops) {
    if (o.kind === 'imm' && o.value instanceof Label) out.push(o.value);
    else if (o.kind === 'rel' && o.target instanceof Label) out.push(o.target);
    else if (o.kind === 'mem' && o.disp instanceof Label) out.push(o.disp);
  }
  return out;
}

export class Assembler {
  private readonly items: Item[] = [];
  private readonly named = new Map<string, Label>();
  private readonly bound = new Set<Label>();
  private readonly used = new Set<Label>();
  private nextId = 0;

  constructor(
    readonly bits: 16 | 32,
    readonly origin = 0,
  ) {
    if (bits !== 16 && bits !== 32) throw new EncodeError(`Assembler: bits must be 16 or 32, not ${String(bits)}`);
    if (!Number.isInteger(origin) || origin < 0 || origin > 0xffffffff) throw new EncodeError(`Assembler: origin ${origin} is not a 32-bit address`);
  }

  /** A new, unbound label; named labels appear in assemble().labels. */
  label(name?: string): Label {
    if (name !== undefined) {
      if (this.named.has(name)) throw new EncodeError(`label "${name}" already exists`);
    }
    const l = new Label(this, this.nextId++, name);
    if (name !== undefined) this.named.set(name, l);
    return l;
  }

  /** Binds `label` to the current position. */
  bind(label: Label): this {
    this.own(label);
    if (this.bound.has(label)) throw new EncodeError(`label "${label.toString()}" is already bound`);
    this.bound.add(label);
    this.items.push({ t: 'label', label });
    return this;
  }

  /** A new label bound here. */
  here(name?: string): Label {
    const l = this.label(name);
    this.bind(l);
    return l;
  }

  /** Appends a ready Instruction (its ip is set to where it lands; branch targets are absolute). */
  emit(ins: Instruction): this {
    const copy = ins.clone();
    this.items.push({ t: 'fixed', ins: copy, length: encodedLength(copy, this.bits) });
    return this;
  }

  /** Appends the named form with operands that may mention labels. */
  ins(formName: string | number, ...operands: Operand[]): this {
    const form = formNamed(formName);
    this.track(operands);
    const ins = buildInstruction(form, operands, this.bits, this.placeholder(0));
    const length = encodedLength(ins, this.bits);
    this.items.push({ t: 'deferred', what: form.name, cands: [{ form, operands, length, swapped: false }], choice: 0 });
    return this;
  }

  /**
   * Appends the best form of `mnemonic` for the operands. Near branches start with the
   * shortest displacement and grow when the target is out of reach.
   */
  asm(mnemonic: string, ...operands: Operand[]): this {
    this.track(operands);
    const what = mnemonic;
    if (operands.some((o) => o.kind === 'rel')) {
      const cands = branchCandidates(this.bits, mnemonic, operands, this.placeholder(0));
      this.items.push({ t: 'deferred', what, cands, choice: 0 });
      return this;
    }
    // Label values are unknown while choosing: pick as if they needed the mode's width
    // (never an imm8 form), then the 32-bit width if that fails.
    let list: Candidate[];
    try {
      list = candidates(this.bits, mnemonic, operands, this.placeholder(0));
    } catch (e) {
      if (!(e instanceof EncodeError) || labelsIn(operands).length === 0) throw e;
      list = candidates(this.bits, mnemonic, operands, this.placeholder(1));
    }
    this.items.push({ t: 'deferred', what, cands: [list[0]!], choice: 0 });
    return this;
  }

  jmp(target: Label | number): this {
    return this.asm('jmp', rel(target));
  }

  /** Conditional jump: jcc('ne', l), jcc('z', l), ... */
  jcc(cc: string, target: Label | number): this {
    return this.asm(`j${cc}`, rel(target));
  }

  call(target: Label | number): this {
    return this.asm('call', rel(target));
  }

  /** Bytes: numbers -128..255, or strings of characters below U+0100. */
  db(...values: (number | string)[]): this {
    const out: number[] = [];
    for (const v of values) {
      if (typeof v === 'string') {
        for (let i = 0; i < v.length; i++) {
          const c = v.charCodeAt(i);
          if (c > 0xff) throw new EncodeError(`db: character U+${c.toString(16)} does not fit a byte`);
          out.push(c);
        }
      } else {
        out.push(v);
      }
    }
    this.items.push({ t: 'data', width: 1, values: out });
    return this;
  }

  /** 16-bit little-endian words (labels: their address, which must fit 16 bits). */
  dw(...values: (number | Label)[]): this {
    this.track(values.map((v) => imm(v)));
    this.items.push({ t: 'data', width: 2, values });
    return this;
  }

  /** 32-bit little-endian dwords (labels: their address). */
  dd(...values: (number | Label)[]): this {
    this.track(values.map((v) => imm(v)));
    this.items.push({ t: 'data', width: 4, values });
    return this;
  }

  bytes(data: Uint8Array | readonly number[]): this {
    const copy = Uint8Array.from(data as ArrayLike<number>);
    this.items.push({ t: 'bytes', data: copy });
    return this;
  }

  /** Pads with `fill` (default 0x90, NOP) up to a multiple of `boundary` (absolute address). */
  align(boundary: number, fill = 0x90): this {
    if (!Number.isInteger(boundary) || boundary < 1) throw new EncodeError(`align: boundary ${boundary} is not a positive integer`);
    checkByte(fill, 'align fill');
    this.items.push({ t: 'align', boundary, fill });
    return this;
  }

  /** `count` copies of the byte `value`. */
  fill(count: number, value = 0): this {
    if (!Number.isInteger(count) || count < 0) throw new EncodeError(`fill: count ${count} is not a non-negative integer`);
    checkByte(value, 'fill value');
    this.items.push({ t: 'fill', count, value });
    return this;
  }

  assemble(): AssembleResult {
    for (const l of this.used) {
      if (!this.bound.has(l)) throw new EncodeError(`label "${l.toString()}" is used but never bound`);
    }
    const addr = new Map<Label, number>();
    const resolve: LabelResolver = (l) => {
      const a = addr.get(l);
      if (a === undefined) throw new EncodeError(`label "${l.toString()}" is used but never bound`);
      return a;
    };
    const at: number[] = new Array<number>(this.items.length).fill(0);
    let end = this.origin;
    // Each round lays out with the current choices, then grows every branch that does not
    // reach. Choices only increase, so this ends after at most (candidates - 1) * items rounds.
    for (;;) {
      end = this.layout(addr, at);
      let grew = false;
      for (let i = 0; i < this.items.length; i++) {
        const it = this.items[i]!;
        if (it.t !== 'deferred' || it.choice >= it.cands.length - 1) continue;
        const c = it.cands[it.choice]!;
        try {
          const ins = buildInstruction(c.form, c.operands, this.bits, resolve);
          ins.ip = at[i]!;
          encodeInto(ins, this.bits, scratchOut, 0);
        } catch (e) {
          if (!(e instanceof EncodeError)) throw e;
          it.choice++;
          grew = true;
        }
      }
      if (!grew) break;
    }
    if (end - this.origin > 0x7fffffff) throw new EncodeError('assembled output is too large');
    const out = new Uint8Array(end - this.origin);
    for (let i = 0; i < this.items.length; i++) {
      const it = this.items[i]!;
      const pos = at[i]! - this.origin;
      try {
        this.emitItem(it, at[i]!, out, pos, resolve);
      } catch (e) {
        if (e instanceof EncodeError) throw new EncodeError(`at ${hex(at[i]!)}: ${e.message}`, e.shadowedBy);
        throw e;
      }
    }
    const labels = new Map<string, number>();
    for (const [l, a] of addr) {
      l.address = a;
      if (l.name !== undefined) labels.set(l.name, a);
    }
    return { bytes: out, labels };
  }

  private layout(addr: Map<Label, number>, at: number[]): number {
    let pos = this.origin;
    for (let i = 0; i < this.items.length; i++) {
      const it = this.items[i]!;
      at[i] = pos;
      switch (it.t) {
        case 'label': addr.set(it.label, pos); break;
        case 'fixed': pos += it.length; break;
        case 'deferred': pos += it.cands[it.choice]!.length; break;
        case 'data': pos += it.width * it.values.length; break;
        case 'bytes': pos += it.data.length; break;
        case 'align': pos += (it.boundary - (pos % it.boundary)) % it.boundary; break;
        case 'fill': pos += it.count; break;
      }
    }
    return pos;
  }

  private emitItem(it: Item, address: number, out: Uint8Array, pos: number, resolve: LabelResolver): void {
    switch (it.t) {
      case 'label': return;
      case 'fixed': {
        it.ins.ip = address;
        encodeInto(it.ins, this.bits, out, pos);
        return;
      }
      case 'deferred': {
        const c = it.cands[it.choice]!;
        const ins = buildInstruction(c.form, c.operands, this.bits, resolve);
        ins.ip = address;
        const n = encodeInto(ins, this.bits, out, pos);
        if (n !== c.length) throw new EncodeError(`${it.what}: encoded ${n} bytes where ${c.length} were laid out`);
        return;
      }
      case 'data': {
        const max = it.width === 1 ? 0xff : it.width === 2 ? 0xffff : 0xffffffff;
        const min = it.width === 1 ? -0x80 : it.width === 2 ? -0x8000 : -0x80000000;
        let p = pos;
        for (const raw of it.values) {
          const v = raw instanceof Label ? resolve(raw) : raw;
          if (!Number.isInteger(v) || v < min || v > max) throw new EncodeError(`data value ${String(raw)} = ${v} does not fit ${it.width * 8} bits`);
          for (let q = 0; q < it.width; q++) out[p++] = (v >>> (8 * q)) & 0xff;
        }
        return;
      }
      case 'bytes': out.set(it.data, pos); return;
      case 'align': {
        const n = (it.boundary - (address % it.boundary)) % it.boundary;
        out.fill(it.fill, pos, pos + n);
        return;
      }
      case 'fill': out.fill(it.value, pos, pos + it.count); return;
    }
  }

  private own(l: Label): void {
    if (l.owner !== this) throw new EncodeError(`label "${l.toString()}" belongs to another assembler`);
  }

  private track(ops: readonly Operand[]): void {
    for (const l of labelsIn(ops)) {
      this.own(l);
      this.used.add(l);
    }
  }

  /** Stand-in label value while sizes are chosen: as wide as the mode (try 0), or 32 bits (try 1). */
  private placeholder(attempt: 0 | 1): LabelResolver {
    const wide = this.bits === 32 || attempt === 1;
    return () => (wide ? 0x40000000 : 0x4000);
  }
}

const scratchOut = new Uint8Array(16);

function checkByte(v: number, what: string): void {
  if (!Number.isInteger(v) || v < -0x80 || v > 0xff) throw new EncodeError(`${what} ${v} does not fit a byte`);
}
