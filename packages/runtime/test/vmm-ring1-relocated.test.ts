// Faults in instructions relocated into a trampoline (docs/rewrite-backend.md, "Faults in
// relocated instructions"): the guest sees the same exception frame as natively, with EIP the
// original instruction's address. The same bytes run natively at X and, under the monitor, as a
// patched run: X holds `jmp` into a stub that holds the relocated form, described by a hand-made
// RewrittenImage.relocated (what checkRewrittenImage derives from a real patch map).
import { describe, expect, it } from 'vitest';
import { ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S, Machine, Ring1Monitor, ring1MemoryBytes } from '../src/index';
import type { PatchMap, RewrittenImage } from '../src/index';
import type { PatchMapSite } from '../src/vmm/rewrite/patchmap';
import type { RelocatedPart } from '../src/vmm/rewrite/image';
import { flatCode, flatData, gate } from './support/descriptors';

const GUEST_RAM = 16 << 20;
const GDT = 0x1000, IDT = 0x2000, PSEUDO = 0x3000, CODE = 0x100000, HANDLERS = 0x110000, DATA = 0x120000, X = 0x130000;
const STUB = 0xffc01000;

const le32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const jmpRel32 = (from: number, to: number): number[] => [0xe9, ...le32((to - (from + 5)) | 0)];

/**
 * Boots flat at CPL 0 (paging off): GDT 0x08 code, 0x10 data; every vector's handler stores the
 * three dwords at ESP and ESP itself at DATA..DATA+12 and exits with status (v << 1) | 1. The
 * prologue zeroes ECX and ES (a null selector), sets EAX = 1, EDX = 0, and jumps to X.
 */
function run(code: number[], rewrite: RewrittenImage | null, deHandler?: number[]): { status: number | undefined; frame: number[] } {
  const machine = new Machine({ memoryBytes: rewrite === null ? GUEST_RAM : ring1MemoryBytes(GUEST_RAM, rewrite) });
  const m = machine.mem;
  [[0, 0], flatCode(0), flatData(0)].forEach(([lo, hi], i) => { m.write32(GDT + i * 8, lo!); m.write32(GDT + i * 8 + 4, hi!); });
  for (let v = 0; v < 32; v++) {
    const [lo, hi] = gate(0x08, HANDLERS + v * 64, 0xe, 0);
    m.write32(IDT + v * 8, lo); m.write32(IDT + v * 8 + 4, hi);
    m.load(HANDLERS + v * 64, Uint8Array.from([
      0x8b, 0x04, 0x24, 0xa3, ...le32(DATA), // mov eax, [esp]; mov [DATA], eax
      0x8b, 0x44, 0x24, 0x04, 0xa3, ...le32(DATA + 4),
      0x8b, 0x44, 0x24, 0x08, 0xa3, ...le32(DATA + 8),
      0x89, 0x25, ...le32(DATA + 12), // mov [DATA+12], esp
      0xb0, v, 0xe6, 0xf4, 0xf4, // mov al, v; out 0xf4, al; hlt
    ]));
  }
  if (deHandler !== undefined) m.load(HANDLERS, Uint8Array.from(deHandler));
  m.write16(PSEUDO, 3 * 8 - 1); m.write32(PSEUDO + 2, GDT);
  m.write16(PSEUDO + 8, 32 * 8 - 1); m.write32(PSEUDO + 10, IDT);
  const prologue = [
    0x0f, 0x01, 0x15, ...le32(PSEUDO), // lgdt [PSEUDO]
    0x0f, 0x01, 0x1d, ...le32(PSEUDO + 8), // lidt [PSEUDO+8]
    0xbc, ...le32(0x90000), // mov esp, 0x90000
    0x31, 0xc9, 0x31, 0xd2, 0xb8, ...le32(1), // xor ecx, ecx; xor edx, edx; mov eax, 1
    0x8e, 0xc1, // mov es, cx
  ];
  m.load(CODE, Uint8Array.from([...prologue, ...jmpRel32(CODE + prologue.length, X)]));
  m.load(X, Uint8Array.from(code));
  const cpu = machine.cpu;
  for (let s = 0; s < 6; s++) {
    cpu.sel[s] = s === 1 ? 0x08 : 0x10;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = -1;
    cpu.segAttr[s] = ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x3 | (s === 1 ? ATTR_CODE | 0x8 : 0);
  }
  cpu.cpl = 0; cpu.cr0 = 0x11; cpu.eflags = 2; cpu.eip = CODE;
  if (rewrite !== null) new Ring1Monitor(machine, { guestRamBytes: GUEST_RAM, rewrite }).start();
  const report = machine.run({ maxInstructions: 10_000 });
  return { status: report.exitStatus, frame: [0, 4, 8, 12].map((o) => m.read32(DATA + o) >>> 0) };
}

/** A rewritten image whose one stub page (at STUB) holds `stub`, with `relocated` as given. */
function fakeRewrite(stub: number[], relocated: [number, RelocatedPart][], int3Sites: [number, number[]][] = []): RewrittenImage {
  const stubBytes = new Uint8Array(0x2000);
  stubBytes[4] = 1; // shared page version
  stubBytes.set(stub, STUB - 0xffc00000);
  const map: PatchMap = {
    version: 2, flags: 3, stubVaddr: 0xffc00000, stubPaddr: 0x200000, stubSize: 0x2000, sharedPage: 0xffc00000, select: 'sensitive',
    originalSha256: '', ranges: [{ vaddr: 0xffc00000, paddr: 0x200000, fileOffset: 0, size: 0x2000, flags: 1 }], originalEntry: 0, sites: [],
  };
  const seg = { index: 2, entryOffset: 0, type: 1, offset: 0, vaddr: 0xffc00000, paddr: 0x200000, filesz: 0x2000, memsz: 0x2000, flags: 7 };
  return { map, stubSegments: [seg], stubBytes, guestImage: new Uint8Array(0), byEscape: new Map(), byInt3: new Map(int3Sites.map(([addr, original]) => [addr, {
    addr, formId: 0, reason: 0, tactic: 'trap', stubKind: 'trap', flags: 0, stubAddr: 0, escapeAddr: 0, patchStart: addr, resume: addr + original.length,
    original: Uint8Array.from(original), displaced: new Uint8Array(0),
  } as unknown as PatchMapSite])), byAddr: new Map(), entries: new Map(), relocated: new Map(relocated) };
}

const part = (addr: number, length: number, undo: RelocatedPart['undo'] = 'none'): RelocatedPart => ({ addr, length, undo });
const status = (v: number): number => (v << 1) | 1;

describe('faults in relocated instructions are reported at the original address', () => {
  it('DIV by zero (a byte-for-byte copy): #DE with EIP = the original DIV', () => {
    // Natively: nop x3; div ecx at X+3. Patched: jmp STUB over X..X+4; the stub runs the nops and DIV.
    const native = run([0x90, 0x90, 0x90, 0xf7, 0xf1], null);
    const rewrite = run(jmpRel32(X, STUB), fakeRewrite([0x90, 0x90, 0x90, 0xf7, 0xf1, ...jmpRel32(STUB + 5, X + 5)], [[STUB + 3, part(X + 3, 2)]]));
    expect(native.status).toBe(status(0));
    expect(native.frame[0]).toBe(X + 3);
    expect(rewrite.status).toBe(native.status);
    expect(rewrite.frame).toEqual(native.frame);
  });

  it('a relocated CALL whose jmp operand faults: #GP with EIP = the CALL and ESP as before the push', () => {
    // call [es:ebx] with ES null: #GP(0) before anything is pushed. Relocated: push X+3; jmp [es:ebx].
    const native = run([0x26, 0xff, 0x13, 0x90, 0x90], null);
    const stub = [0x68, ...le32(X + 3), 0x26, 0xff, 0x23];
    const rewrite = run(jmpRel32(X, STUB), fakeRewrite(stub, [[STUB, part(X, 3)], [STUB + 5, part(X, 3, 'esp')]]));
    expect(native.status).toBe(status(13));
    expect(native.frame.slice(0, 2)).toEqual([0, X]); // error code, EIP
    expect(rewrite.status).toBe(native.status);
    expect(rewrite.frame).toEqual(native.frame);
  });

  it('a handler that restarts the faulting instruction (IRET to it) resumes it in the trampoline', () => {
    // #DE handler: ECX = 2, IRET back to the DIV, which then divides EAX = 1 by 2. After it, X+5
    // stores EAX and EDX and exits with status 0x21. Under the monitor the handler's IRET is a trap
    // site (INT3, as the rewriter leaves a site it cannot patch): its emulation lands on the DIV's
    // original address, inside the patch's jump, and must go on at the DIV's relocated copy.
    const tail = [0xa3, ...le32(DATA), 0x89, 0x15, ...le32(DATA + 4), 0xb0, 0x21, 0xe6, 0xf4, 0xf4];
    const handler = (iret: number): number[] => [0xb9, ...le32(2), iret]; // mov ecx, 2; iret
    const native = run([0x90, 0x90, 0x90, 0xf7, 0xf1, ...tail], null, handler(0xcf));
    const stub = [0x90, 0x90, 0x90, 0xf7, 0xf1, ...jmpRel32(STUB + 5, X + 5)];
    const rewrite = run([...jmpRel32(X, STUB), ...tail], fakeRewrite(stub, [[STUB + 3, part(X + 3, 2)]], [[HANDLERS + 5, [0xcf]]]), handler(0xcc));
    expect(native.status).toBe(status(0x21));
    expect(native.frame.slice(0, 2)).toEqual([0, 1]); // 1 / 2: quotient 0, remainder 1
    expect(rewrite.status).toBe(native.status);
    expect(rewrite.frame.slice(0, 2)).toEqual(native.frame.slice(0, 2));
  });
});
