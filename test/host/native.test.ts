// The host-CPU runner on hand-written programs whose results are known from the SDM.
// Nothing here is skipped: a host that cannot run 32-bit x86 code fails with the reason.
import { spawnSync } from 'node:child_process';
import { Assembler, Prefix, asm1, imm, mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import {
  CODE_BASE, DEFAULT_ESP, EFLAGS_COMPARED, NativeRunnerError, SCRATCH_BASE, SCRATCH_SIZE, nativeRunnerPath, runNative,
  runNativeBatch,
} from './native';
import type { NativeProgram } from './native';

const CF = 0x1;
const PF = 0x4;
const AF = 0x10;
const ZF = 0x40;
const SF = 0x80;
const DF = 0x400;
const OF = 0x800;

const ZERO = { eax: 0, ecx: 0, edx: 0, ebx: 0, ebp: 0, esi: 0, edi: 0, eflags: 0 };

function program(build: (a: Assembler) => void, initial: Partial<NativeProgram['initial']> = {}, scratch = new Uint8Array(0)): NativeProgram {
  const a = new Assembler(32, CODE_BASE);
  build(a);
  return { code: a.assemble().bytes, initial: { ...ZERO, ...initial }, scratch };
}

/** Address of the instruction the builder emits after `before` has run. */
function offsetAfter(before: (a: Assembler) => void): number {
  const a = new Assembler(32, CODE_BASE);
  before(a);
  return CODE_BASE + a.assemble().bytes.length;
}

describe('runNative on the host CPU', () => {
  it('runs 32-bit code on this host (else: why not)', () => {
    let error: unknown;
    try {
      const r = runNative(program((a) => a.asm('mov', reg('eax'), imm(0x12345678))));
      expect(r.regs.eax).toBe(0x12345678);
    } catch (e) {
      error = e;
    }
    expect(error, `this host cannot run the native runner: ${String(error)}`).toBeUndefined();
  });

  it('the runner is an ELF file readelf reads without a warning', () => {
    const r = spawnSync('readelf', ['-a', '-W', nativeRunnerPath()], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/LOAD\s+0x[0-9a-f]+ 0x10000000 0x10000000 0x00000 0x10000 RWE 0x1000/);
    expect(r.stdout).toMatch(/LOAD\s+0x[0-9a-f]+ 0x20000000 0x20000000 0x00000 0x01000 RW  0x1000/);
  });

  it('ADD sets OF SF AF PF and clears CF ZF (0x7fffffff + 1)', () => {
    const r = runNative(program((a) => a.asm('add', reg('eax'), imm(1)), { eax: 0x7fffffff, eflags: CF | ZF }));
    expect(r.fault).toBeUndefined();
    expect(r.regs.eax).toBe(0x80000000);
    expect(r.eflags & EFLAGS_COMPARED).toBe(OF | SF | AF | PF);
  });

  it('ADC adds the carry in and carries out (0xffffffff + 0 + CF)', () => {
    const r = runNative(program((a) => a.asm('adc', reg('eax'), reg('ebx')), { eax: 0xffffffff, eflags: CF }));
    expect(r.regs.eax).toBe(0);
    expect(r.eflags & EFLAGS_COMPARED).toBe(CF | ZF | AF | PF);
  });

  it('loads and returns every register, and pushes onto the default stack at the top of the scratch area', () => {
    const regs = { eax: 0x11111111, ecx: 0x22222222, edx: 0x33333333, ebx: 0x44444444, ebp: 0x55555555, esi: 0x66666666, edi: 0x77777777 };
    const r = runNative(program((a) => a.asm('push', reg('ebp')), { ...regs, eflags: 0 }));
    expect(r.regs).toEqual({ ...regs, esp: DEFAULT_ESP - 4 });
    expect(r.scratch.length).toBe(SCRATCH_SIZE);
    expect(Buffer.from(r.scratch.subarray(SCRATCH_SIZE - 4)).readUInt32LE(0)).toBe(0x55555555);
    // The status flags go in and out unchanged by the runner.
    for (const flags of [0, CF | PF | AF | ZF | SF | OF, DF, 0xcd5]) {
      expect(runNative(program((a) => a.asm('nop'), { eflags: flags })).eflags & EFLAGS_COMPARED).toBe(flags);
    }
  });

  it('DIV by zero raises SIGFPE at the DIV, with the registers as they were', () => {
    const before = (a: Assembler): void => void a.asm('mov', reg('eax'), imm(10));
    const r = runNative(program((a) => {
      before(a);
      a.asm('div', reg('ecx'));
    }, { ecx: 0, edx: 0 }));
    expect(r.fault).toEqual({ signal: 'SIGFPE', eip: offsetAfter(before), trapno: 0, error: 0, code: 1 /* FPE_INTDIV */ });
    expect(r.regs.eax).toBe(10);
  });

  it('an access outside the scratch area raises SIGSEGV with the address', () => {
    const r = runNative(program((a) => a.asm('mov', reg('eax'), mem({ disp: SCRATCH_BASE + SCRATCH_SIZE }))));
    expect(r.fault).toMatchObject({ signal: 'SIGSEGV', eip: CODE_BASE, trapno: 14, address: SCRATCH_BASE + SCRATCH_SIZE, code: 1 /* SEGV_MAPERR */ });
    expect(r.fault!.error & 2).toBe(0); // #PF error code: a read
    const w = runNative(program((a) => a.asm('mov', mem({ disp: SCRATCH_BASE - 4, size: 4 }), imm(1))));
    expect(w.fault).toMatchObject({ signal: 'SIGSEGV', address: SCRATCH_BASE - 4 });
    expect(w.fault!.error & 2).toBe(2); // a write
    // Inside the area, both ends are fine.
    const ok = runNative(program((a) => {
      a.asm('mov', reg('eax'), mem({ disp: SCRATCH_BASE }));
      a.asm('mov', reg('ebx'), mem({ disp: SCRATCH_BASE + SCRATCH_SIZE - 4 }));
    }, {}, Uint8Array.from({ length: SCRATCH_SIZE }, (_, i) => i & 0xff)));
    expect(ok.fault).toBeUndefined();
    expect([ok.regs.eax, ok.regs.ebx]).toEqual([0x03020100, 0xfffefdfc]);
  });

  it('REP MOVSD with DF=1 copies downwards and leaves DF set', () => {
    const scratch = new Uint8Array(SCRATCH_SIZE);
    const dv = new DataView(scratch.buffer);
    for (let i = 0; i < 8; i++) dv.setUint32(4 * i, 0xa0 + i, true);
    const rep = runNative(program((a) => {
      const movsd = asm1('movsd');
      movsd.prefixes |= Prefix.Rep;
      a.emit(movsd);
    }, { esi: SCRATCH_BASE + 16, edi: SCRATCH_BASE + 0x100, ecx: 4, eflags: DF }, scratch));
    expect(rep.fault).toBeUndefined();
    expect(rep.regs).toMatchObject({ ecx: 0, esi: SCRATCH_BASE, edi: SCRATCH_BASE + 0xf0 });
    expect(rep.eflags & DF).toBe(DF);
    const out = new DataView(rep.scratch.buffer, rep.scratch.byteOffset);
    expect([0xf4, 0xf8, 0xfc, 0x100].map((o) => out.getUint32(o, true))).toEqual([0xa1, 0xa2, 0xa3, 0xa4]);
    expect(out.getUint32(0xf0, true)).toBe(0);
  });

  it('reports INT3 as SIGTRAP after it, UD2 as SIGILL, HLT as SIGSEGV (#GP), and #AC as SIGBUS', () => {
    const [int3, ud2, hlt, ac] = runNativeBatch([
      program((a) => a.asm('int3')),
      program((a) => a.asm('ud2')),
      program((a) => a.asm('hlt')),
      program((a) => {
        a.asm('pushfd');
        a.asm('or', mem({ base: 'esp', size: 4 }), imm(0x40000)); // EFLAGS.AC: CR0.AM is set by Linux
        a.asm('popfd');
        a.asm('mov', reg('eax'), mem({ disp: SCRATCH_BASE + 1 }));
      }),
    ]);
    expect(int3!.fault).toMatchObject({ signal: 'SIGTRAP', eip: CODE_BASE + 1, trapno: 3 });
    expect(ud2!.fault).toMatchObject({ signal: 'SIGILL', eip: CODE_BASE, trapno: 6 });
    expect(hlt!.fault).toMatchObject({ signal: 'SIGSEGV', eip: CODE_BASE, trapno: 13, address: 0 });
    expect(ac!.fault).toMatchObject({ signal: 'SIGBUS', trapno: 17 });
  });

  it('survives a program that wrecks ESP and DS, and resets state between programs', () => {
    const results = runNativeBatch([
      program((a) => {
        a.asm('mov', reg('esp'), imm(0)); // the signal frame goes to the alternate stack
        a.asm('push', reg('eax'));
      }),
      program((a) => {
        a.asm('xor', reg('eax'), reg('eax'));
        a.asm('mov', reg('ds'), reg('ax')); // the epilogue must not need DS
        a.asm('mov', reg('es'), reg('ax'));
        a.asm('mov', reg('fs'), reg('ax'));
        a.asm('mov', reg('esp'), imm(0x1234));
        a.asm('ldmxcsr', mem({ disp: SCRATCH_BASE, size: 4, seg: 'ss' }));
        a.asm('fld1');
      }, {}, Uint8Array.from([0x00, 0x60, 0, 0])),
      program((a) => {
        a.asm('mov', reg('eax'), mem({ disp: SCRATCH_BASE })); // DS is usable again
        a.asm('stmxcsr', mem({ disp: SCRATCH_BASE + 4, size: 4 }));
        a.asm('fnstsw', reg('ax'));
        a.asm('pushfd');
        a.asm('pop', reg('ebx'));
      }, {}, Uint8Array.from([9, 0, 0, 0])),
    ]);
    expect(results[0]!.fault).toMatchObject({ signal: 'SIGSEGV', address: 0xfffffffc });
    expect(results[0]!.regs.esp).toBe(0);
    expect(results[1]!.fault).toBeUndefined();
    expect(results[1]!.regs.esp).toBe(0x1234);
    const third = results[2]!;
    expect(third.fault).toBeUndefined();
    expect(new DataView(third.scratch.buffer, third.scratch.byteOffset).getUint32(4, true)).toBe(0x1f80); // MXCSR reset
    expect(third.regs.eax & 0x3800).toBe(0); // x87 TOP back to 0 (FNINIT)
    expect(third.regs.ebx & (DF | 0x100 /* TF */ | 0x40000 /* AC */)).toBe(0);
  });

  it('stops a program that never ends with SIGALRM, and goes on with the next', () => {
    const start = Date.now();
    const [loop, next] = runNativeBatch(
      [program((a) => a.jmp(a.here())), program((a) => a.asm('mov', reg('eax'), imm(7)))],
      { timeoutMs: 20 },
    );
    expect(loop!.fault).toMatchObject({ signal: 'SIGALRM', eip: CODE_BASE });
    expect(next!.regs.eax).toBe(7);
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it('refuses flags a user program cannot set, and names a program that made a system call', () => {
    expect(() => runNative(program((a) => a.asm('nop'), { eflags: 0x100 /* TF */ }))).toThrow(/eflags 0x100 sets bits other than/);
    expect(() => runNativeBatch([
      program((a) => a.asm('nop')),
      program((a) => {
        a.asm('mov', reg('eax'), imm(1));
        a.asm('int', imm(0x80));
      }, { ebx: 3 }),
    ])).toThrow(NativeRunnerError);
    expect(() => runNativeBatch([program((a) => a.asm('nop')), program((a) => {
      a.asm('mov', reg('eax'), imm(1));
      a.asm('int', imm(0x80));
    }, { ebx: 3 })])).toThrow(/exited with status 3 at program 1 of 2: it probably made a system call/);
  });

  it('runs a 1000-program batch in well under a second', () => {
    const programs = Array.from({ length: 1000 }, (_, i) => program((a) => {
      a.asm('add', reg('eax'), reg('ebx'));
      a.asm('mov', mem({ disp: SCRATCH_BASE + 4 * (i % 64), size: 4 }), reg('eax'));
      if (i % 10 === 0) a.asm('div', reg('ecx')); // every tenth faults (ECX = 0)
    }, { eax: i, ebx: 0xfffffff0 }));
    const t0 = performance.now();
    const results = runNativeBatch(programs);
    const ms = performance.now() - t0;
    console.log(`native batch: 1000 programs in ${ms.toFixed(1)} ms (${Math.round(1000 / (ms / 1000))} programs/s)`);
    expect(ms).toBeLessThan(500);
    results.forEach((r, i) => {
      const sum = (i + 0xfffffff0) >>> 0;
      expect(r.regs.eax).toBe(sum);
      expect(r.eflags & CF).toBe(i >= 16 ? CF : 0);
      expect(new DataView(r.scratch.buffer, r.scratch.byteOffset).getUint32(4 * (i % 64), true)).toBe(sum);
      expect(r.fault?.signal).toBe(i % 10 === 0 ? 'SIGFPE' : undefined);
    });
  });
});
