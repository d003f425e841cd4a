// The page-walk hook of the interception seam (src/cpu/intercept.ts, Interceptor.pageWalk; called
// by tlb.ts on a TLB miss): a monitor sees each walk — the entries read (SDM vol. 3A §4.3 PDE/PTE),
// the combined rights (§4.6), the outcome — before it takes effect (TLB fill, or CR2 and #PF,
// §4.7), and may let it stand, replace it (shadow paging), or exit.
import { mem, reg } from '@ringshift/decoder';
import { describe, expect, it } from 'vitest';
import { CONTINUE, HANDLED, PASS_THROUGH, Vector, exit, type Cpu, type Interceptor, type PageWalk } from '../src/index';
import { catchExceptions, runOn, systemCpu } from './support/descriptors';

const PD = 0x400000;
const PT = 0x410000;
const PAGE = 0x40000000; // -> 0080_0000h, present, writable
const ABSENT = 0x40001000; // not present
const RO = 0x40002000; // -> 0080_2000h, read-only
const SHADOW = 0x900000;

/** 32-bit paging at CPL 0: 4 MiB identity pages below 16 MiB (CR4.PSE) and one page table at 4000_0000h. */
function pagedCpu(): Cpu {
  const cpu = systemCpu();
  catchExceptions(cpu);
  for (let i = 0; i < 4; i++) cpu.mem.write32(PD + i * 4, (i << 22) | 0x83);
  cpu.mem.write32(PD + (PAGE >>> 22) * 4, PT | 0x3);
  cpu.mem.write32(PT, 0x800000 | 0x3);
  cpu.mem.write32(PT + 8, 0x802000 | 0x1);
  cpu.mem.write32(0x800000, 0x11111111);
  cpu.mem.write32(SHADOW, 0x22222222);
  cpu.cr3 = PD;
  cpu.cr4 = 0x10; // PSE
  cpu.cr0 = (cpu.cr0 | 0x80010000) | 0; // PG, WP
  return cpu;
}

/** Records the walks above 4000_0000h and answers with `answer`. */
function monitor(answer: (w: PageWalk) => ReturnType<Interceptor['pageWalk']>): { m: Interceptor; walks: PageWalk[] } {
  const walks: PageWalk[] = [];
  const m: Interceptor = {
    ...PASS_THROUGH,
    pageWalk: (_cpu, w) => {
      if (w.linear >>> 0 < PAGE) return CONTINUE;
      walks.push({ ...w, entries: [...w.entries], entryAddresses: [...w.entryAddresses] });
      return answer(w);
    },
  };
  return { m, walks };
}

describe('page-walk interception', () => {
  it('a miss shows the entries read, the rights and the physical address before the TLB fill; a hit is not shown', () => {
    const cpu = pagedCpu();
    const { m, walks } = monitor(() => CONTINUE);
    cpu.interceptor = m;
    runOn(cpu, (a) => {
      a.asm('mov', reg('eax'), mem({ disp: PAGE + 4, size: 4 }));
      a.asm('mov', reg('ebx'), mem({ disp: PAGE, size: 4 }));
    });
    expect(cpu.regs[7]).toBe(-1);
    expect(walks).toHaveLength(1);
    const w = walks[0]!;
    expect([w.linear >>> 0, w.write, w.user, w.fetch]).toEqual([PAGE + 4, false, false, false]);
    expect(w.entries.map((e) => e >>> 0)).toEqual([PT | 0x3, 0x800000 | 0x3]); // as read, before A is set
    expect(w.entryAddresses).toEqual([PD + (PAGE >>> 22) * 4, PT]);
    expect([w.physical, w.errorCode, w.writable, w.userAccessible, w.pageSize]).toEqual([0x800004, -1, true, false, 4096]);
    expect(cpu.regs[3]! >>> 0).toBe(0x11111111);
  });

  it('a fault is shown with its error code before CR2 is written; CONTINUE then delivers it', () => {
    const cpu = pagedCpu();
    const { m, walks } = monitor(() => {
      expect(cpu.cr2, 'CR2 not yet written').toBe(0);
      return CONTINUE;
    });
    cpu.interceptor = m;
    runOn(cpu, (a) => a.asm('mov', mem({ disp: RO, size: 4 }), reg('eax')));
    expect(walks.map((w) => [w.physical, w.errorCode])).toEqual([[-1, 0x3]]); // P | W: CR0.WP forbids the write
    expect([cpu.regs[7], cpu.regs[6], cpu.cr2 >>> 0]).toEqual([Vector.PF, 0x3, RO]);
  });

  it('HANDLED with another physical address: the access uses it and the TLB caches it (shadow paging)', () => {
    const cpu = pagedCpu();
    const { m, walks } = monitor((w) => {
      w.physical = SHADOW | (w.linear & 0xfff);
      w.errorCode = -1;
      return HANDLED;
    });
    cpu.interceptor = m;
    runOn(cpu, (a) => {
      a.asm('mov', reg('eax'), mem({ disp: PAGE, size: 4 }));
      a.asm('mov', reg('ebx'), mem({ disp: ABSENT, size: 4 })); // not present for the guest: the monitor maps it
      a.asm('mov', reg('ecx'), mem({ disp: PAGE, size: 4 }));
    });
    expect(cpu.regs[7]).toBe(-1);
    expect([cpu.regs[0]! >>> 0, cpu.regs[3]! >>> 0, cpu.regs[1]! >>> 0]).toEqual([0x22222222, 0x22222222, 0x22222222]);
    expect(walks).toHaveLength(2); // the third access hit the TLB entry the monitor's answer filled
    expect(walks[1]!.errorCode, 'the guest walk faulted').toBe(0);
  });

  it('HANDLED with an error code: a successful walk becomes #PF (write tracking of guest page tables)', () => {
    const cpu = pagedCpu();
    const { m } = monitor((w) => {
      if (!w.write) return CONTINUE;
      w.physical = -1;
      w.errorCode = 0x3;
      return HANDLED;
    });
    cpu.interceptor = m;
    runOn(cpu, (a) => {
      a.asm('mov', reg('eax'), mem({ disp: PAGE, size: 4 }));
      a.asm('mov', mem({ disp: PAGE, size: 4 }), reg('eax'));
    });
    expect([cpu.regs[7], cpu.regs[6], cpu.cr2 >>> 0]).toEqual([Vector.PF, 0x3, PAGE]);
    expect(cpu.regs[0]! >>> 0, 'the read went through').toBe(0x11111111);
    expect(cpu.mem.read32(0x800000)).toBe(0x11111111);
  });

  it('HANDLED with no outcome: the monitor fixed the tables, the walk runs again', () => {
    const cpu = pagedCpu();
    const { m, walks } = monitor((w) => {
      if (w.errorCode < 0) return CONTINUE;
      cpu.mem.write32(PT + 4, 0x802000 | 0x3); // map ABSENT
      w.errorCode = -1;
      return HANDLED;
    });
    cpu.mem.write32(0x802000, 0x33333333);
    cpu.interceptor = m;
    runOn(cpu, (a) => a.asm('mov', reg('eax'), mem({ disp: ABSENT, size: 4 })));
    expect(cpu.regs[7]).toBe(-1);
    expect(cpu.regs[0]! >>> 0).toBe(0x33333333);
    expect(walks).toHaveLength(1);
  });

  it('an Exit stops run() at the instruction: no CR2, no #PF, no TLB entry', () => {
    const cpu = pagedCpu();
    const { m } = monitor((w) => exit(-1, { linear: w.linear, errorCode: w.errorCode, detail: 'page walk' }));
    cpu.interceptor = m;
    const start = 0x100000;
    expect(runOn(cpu, (a) => a.asm('mov', reg('eax'), mem({ disp: ABSENT, size: 4 })))).toBe('exit');
    expect(cpu.lastExit).toMatchObject({ linear: ABSENT, errorCode: 0, detail: 'page walk' });
    expect(cpu.eip).toBe(start);
    expect(cpu.cr2).toBe(0);
    expect(cpu.regs[7]).toBe(-1);
    // Resumed without the monitor, the same instruction now takes its #PF natively.
    cpu.interceptor = null;
    cpu.run(100);
    expect([cpu.regs[7], cpu.cr2 >>> 0]).toEqual([Vector.PF, ABSENT]);
  });
});
