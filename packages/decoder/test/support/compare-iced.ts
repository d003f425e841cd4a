// Compares one of our decoded instructions with iced-x86's decoding of the same bytes and
// returns a description of the first difference (empty string when they agree).
import { Instruction, OpKind, formName, registerName } from '../../src/index';
import { iced, icedCodeName } from './iced';

const icedRegName = (r: number): string => {
  const n = (iced.Register[r] as string | undefined)?.toLowerCase() ?? `?${r}`;
  // iced spells the low bytes of r8-r15 "r8l"; the SDM and our table say "r8b".
  return /^r\d+l$/.test(n) ? n.slice(0, -1) + 'b' : n === 'none' ? 'none' : n;
};
const ourReg = (r: number): string => (r === 0 ? 'none' : registerName(r));

const MEM_SIZE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(iced.MemorySize as Record<string, number>).filter(([k]) => Number.isNaN(Number(k))).map(([k, v]) => [v, k]),
);

const u64 = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);

/** How validity is compared: iced's "NoMoreBytes" and "invalid" are both invalid for us. */
export function compareWithIced(ours: Instruction, ic: any): string {
  const iv = ic.code !== 0;
  if (iv !== ours.valid) return iv ? `we say invalid (${ours.invalid}), iced says ${icedCodeName(ic.code)}` : `iced says invalid, we say ${formName(ours.form)}`;
  if (!iv) return '';
  if (ic.length !== ours.length) return `length: iced ${ic.length}, ours ${ours.length}`;
  if (ic.code !== ours.form) return `form: iced ${icedCodeName(ic.code)}, ours ${formName(ours.form)}`;
  if (ic.opCount !== ours.opCount) return `operand count: iced ${ic.opCount}, ours ${ours.opCount}`;
  for (let i = 0; i < ours.opCount; i++) {
    const k = ic.opKind(i);
    if (k !== ours.opKinds[i]) return `op${i} kind: iced ${iced.OpKind[k]}, ours ${iced.OpKind[ours.opKinds[i]!]}`;
    switch (k) {
      case OpKind.Register: {
        const a = icedRegName(ic.opRegister(i)), b = ourReg(ours.opRegs[i]!);
        if (a !== b) return `op${i} register: iced ${a}, ours ${b}`;
        break;
      }
      case OpKind.Memory: {
        const checks: [string, string, string][] = [
          ['base', icedRegName(ic.memoryBase), ourReg(ours.memBase)],
          ['index', icedRegName(ic.memoryIndex), ourReg(ours.memIndex)],
          ['scale', String(ic.memoryIndexScale), String(ours.memScale)],
          ['displacement', String(BigInt.asUintN(64, BigInt(ic.memoryDisplacement))), String(u64(ours.memDisp, ours.memDispHi))],
          ['segment', icedRegName(ic.memorySegment), ourReg(ours.memSegment)],
          ['size', MEM_SIZE_NAMES[ic.memorySize] ?? '', ours.memSizeName || 'Unknown'],
          ['broadcast', String(ic.isBroadcast), String(ours.broadcast)],
        ];
        for (const [what, a, b] of checks) if (a !== b) return `op${i} memory ${what}: iced ${a}, ours ${b}`;
        break;
      }
      case OpKind.NearBranch16: case OpKind.NearBranch32: case OpKind.NearBranch64: {
        const a = BigInt.asUintN(64, BigInt(ic.nearBranchTarget)), b = u64(ours.target, ours.targetHi);
        if (a !== b) return `op${i} target: iced ${a.toString(16)}, ours ${b.toString(16)}`;
        break;
      }
      case OpKind.FarBranch16: case OpKind.FarBranch32: {
        const off = k === OpKind.FarBranch16 ? ic.farBranch16 : ic.farBranch32;
        if (off !== ours.target || ic.farBranchSelector !== ours.farSelector) return `op${i} far: iced ${ic.farBranchSelector}:${off}, ours ${ours.farSelector}:${ours.target}`;
        break;
      }
      case OpKind.Immediate8_2nd:
        if (ic.immediate8_2nd !== ours.imm2) return `op${i} imm8_2nd: iced ${ic.immediate8_2nd}, ours ${ours.imm2}`;
        break;
      case OpKind.Immediate8: case OpKind.Immediate16: case OpKind.Immediate32: case OpKind.Immediate64:
      case OpKind.Immediate8to16: case OpKind.Immediate8to32: case OpKind.Immediate8to64: case OpKind.Immediate32to64: {
        // We keep a sign-extended immediate at its operand width (iced widens every one to 64 bits).
        const width = k === OpKind.Immediate8to16 ? 16 : k === OpKind.Immediate8to32 ? 32 : 64;
        const a = BigInt.asUintN(width, BigInt(ic.immediate(i))), b = u64(ours.imm, ours.immHi);
        if (a !== b) return `op${i} immediate: iced ${a.toString(16)}, ours ${b.toString(16)}`;
        break;
      }
      default: {
        // string operands: the overridable segment
        if (k >= OpKind.MemorySegSI && k <= OpKind.MemorySegRDI) {
          const a = icedRegName(ic.memorySegment), b = ourReg(ours.memSegment);
          if (a !== b) return `op${i} string segment: iced ${a}, ours ${b}`;
        }
      }
    }
  }
  const mask = icedRegName(ic.opMask), ourMask = ourReg(ours.opmask);
  if (mask !== ourMask) return `opmask: iced ${mask}, ours ${ourMask}`;
  if (ic.zeroingMasking !== ours.zeroing) return `zeroing: iced ${ic.zeroingMasking}, ours ${ours.zeroing}`;
  if (ic.roundingControl !== ours.rounding) return `rounding: iced ${ic.roundingControl}, ours ${ours.rounding}`;
  if (ic.suppressAllExceptions !== ours.suppressAllExceptions) return `sae: iced ${ic.suppressAllExceptions}, ours ${ours.suppressAllExceptions}`;
  if (icedRegName(ic.segmentPrefix) !== ourReg(ours.segmentPrefix)) return `segment prefix: iced ${icedRegName(ic.segmentPrefix)}, ours ${ourReg(ours.segmentPrefix)}`;
  return '';
}
