// iced-x86 Instruction -> our Instruction, for the encoder tests: the fields the encoder
// reads (form, operands, memory, immediates, targets, prefixes), taken from the oracle so
// that encoder bugs cannot hide behind decoder bugs.
import { Instruction, OpKind, Prefix } from '../../src/instruction';
import { registerByName, registerName } from '../../src/table/registers';
import { iced } from './iced';

const OUR_KIND_BY_NAME = OpKind as Record<string, number>;

/** iced OpKind value -> ours (same names). */
export function icedOpKindToOurs(k: number): number {
  const name = iced.OpKind[k] as string;
  const ours = OUR_KIND_BY_NAME[name];
  if (ours === undefined) throw new Error(`no OpKind ${name}`);
  return ours;
}

/** iced Register value -> our register id (by name); 0 for None. */
export function icedRegToOurs(r: number): number {
  if (r === 0) return 0;
  const name = (iced.Register[r] as string).toLowerCase();
  const ours = registerByName(name);
  if (ours === undefined) throw new Error(`no register ${name}`);
  return ours;
}

/** Our register id -> iced Register value. */
export function oursRegToIced(r: number): number {
  if (r === 0) return 0;
  const n = registerName(r).toUpperCase();
  const v = iced.Register[n];
  if (typeof v !== 'number') throw new Error(`iced has no register ${n}`);
  return v;
}

const low32 = (v: bigint): number => Number(BigInt.asUintN(32, v));

/** Converts a decoded iced instruction (decoded as `bits`-bit code) into ours. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function icedToOurs(ii: any, bits: 16 | 32): Instruction {
  const o = new Instruction();
  o.bits = bits;
  o.ip = Number(ii.ip as bigint);
  o.length = ii.length as number;
  o.form = ii.code as number;
  o.opCount = ii.opCount as number;
  let immCount = 0;
  let hasMem = false;
  for (let i = 0; i < o.opCount; i++) {
    const k = icedOpKindToOurs(ii.opKind(i) as number);
    o.opKinds[i] = k as OpKind;
    switch (k) {
      case OpKind.Register:
        o.opRegs[i] = icedRegToOurs(ii.opRegister(i) as number);
        break;
      case OpKind.NearBranch16: case OpKind.NearBranch32:
        o.target = low32(ii.nearBranchTarget as bigint);
        break;
      case OpKind.FarBranch16:
        o.target = ii.farBranch16 as number;
        o.farSelector = ii.farBranchSelector as number;
        break;
      case OpKind.FarBranch32:
        o.target = ii.farBranch32 as number;
        o.farSelector = ii.farBranchSelector as number;
        break;
      case OpKind.Immediate8: case OpKind.Immediate8_2nd: case OpKind.Immediate16: case OpKind.Immediate32:
      case OpKind.Immediate8to16: case OpKind.Immediate8to32: {
        const v = low32(ii.immediate(i) as bigint);
        if (immCount++ === 0) o.imm = v;
        else o.imm2 = v;
        break;
      }
      case OpKind.Memory:
      case OpKind.MemorySegSI: case OpKind.MemorySegESI: case OpKind.MemorySegDI: case OpKind.MemorySegEDI:
        hasMem = true;
        break;
      default:
        break;
    }
  }
  if (hasMem) {
    o.memBase = icedRegToOurs(ii.memoryBase as number);
    o.memIndex = icedRegToOurs(ii.memoryIndex as number);
    o.memScale = ii.memoryIndexScale as 1 | 2 | 4 | 8;
    o.memDisp = low32(ii.memoryDisplacementU64 as bigint);
    o.memDispSize = ii.memoryDisplSize as number;
    o.memSegment = icedRegToOurs(ii.memorySegment as number);
  }
  o.segmentPrefix = icedRegToOurs(ii.segmentPrefix as number);
  o.prefixes = (ii.hasLockPrefix ? Prefix.Lock : 0) | (ii.hasRepePrefix ? Prefix.Rep : 0) | (ii.hasRepnePrefix ? Prefix.Repne : 0);
  return o;
}
