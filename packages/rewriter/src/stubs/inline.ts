// Inline stubs: CLI, STI, PUSHFD and POPFD emulated against the shared page without leaving the
// guest (docs/patch-abi.md §Inline stubs has the listings and the reasoning). Each one leaves
// every register and EFLAGS exactly as the original instruction would at CPL 0 with the virtual
// IF/IOPL, using the stack below ESP as scratch (i386 has no red zone to respect; anything
// below ESP may be clobbered by an interrupt at any time anyway). The shared page is addressed
// as ds:[disp32], which assumes a flat DS (PATCHMAP_FLAG_INLINE_FLAT_DS).
//
// Why PUSHFD/POPFD save and restore the flags around their arithmetic: AND/OR/SHR/TEST/CMP
// write the status flags, and the original instruction writes none (PUSHFD) or exactly the
// popped ones (POPFD). A real PUSHFD/POPFD pair at ring 1 restores the status flags and leaves
// IF/IOPL alone (at CPL > 0 POPFD silently keeps IOPL, and IF when CPL > IOPL), which is what we
// want: the real IF/IOPL belong to the monitor.
import { Assembler, formName, imm, mem, reg } from '@ringshift/decoder';
import { SHARED } from './shared';

/** Inline stub forms: decoder form names (the 16-bit PUSHF/POPF forms escape instead). */
export const INLINE_FORMS = ['Cli', 'Sti', 'Pushfd', 'Popfd'] as const;
export type InlineForm = (typeof INLINE_FORMS)[number];

export function inlineFormOf(formId: number): InlineForm | undefined {
  const n = formName(formId);
  return (INLINE_FORMS as readonly string[]).includes(n) ? (n as InlineForm) : undefined;
}

export interface InlineStub {
  bytes: Uint8Array;
  /** Offset of the `int 0x81` that asks the monitor to deliver a pending interrupt; undefined if none. */
  escapeOffset: number | undefined;
}

const EFLAGS_IF = 1 << 9;
const EFLAGS_IOPL_SHIFT = 12;

/** Assembles the inline stub for `form` at `origin`, with the shared page at `shared`. */
export function inlineStub(form: InlineForm, origin: number, shared: number): InlineStub {
  const a = new Assembler(32, origin);
  const b8 = (off: number) => mem({ disp: (shared + off) >>> 0, size: 1 });
  const stack = (disp: number) => mem({ base: 'esp', disp, size: 4 });
  switch (form) {
    case 'Cli':
      a.asm('mov', b8(SHARED.vif), imm(0));
      break;
    case 'Sti': {
      const noPending = a.label();
      const done = a.label();
      a.asm('mov', b8(SHARED.vif), imm(1));
      a.asm('pushfd');
      a.asm('cmp', b8(SHARED.pending), imm(0));
      a.jcc('e', noPending);
      a.asm('popfd');
      a.here('escape');
      a.asm('int', imm(0x81));
      a.jmp(done);
      a.bind(noPending);
      a.asm('popfd');
      a.bind(done);
      break;
    }
    case 'Pushfd':
      a.asm('pushfd'); // the result slot: the real flags, IF/IOPL fixed below
      a.asm('pushfd'); // the real flags again, to restore the status flags at the end
      a.asm('push', reg('eax'));
      a.asm('and', stack(8), imm(~(EFLAGS_IF | (3 << EFLAGS_IOPL_SHIFT)) >>> 0));
      a.asm('movzx', reg('eax'), b8(SHARED.viopl));
      a.asm('shl', reg('eax'), imm(EFLAGS_IOPL_SHIFT));
      a.asm('or', stack(8), reg('eax'));
      a.asm('movzx', reg('eax'), b8(SHARED.vif));
      a.asm('shl', reg('eax'), imm(9));
      a.asm('or', stack(8), reg('eax'));
      a.asm('pop', reg('eax'));
      a.asm('popfd');
      break;
    case 'Popfd': {
      const noEscape = a.label();
      const done = a.label();
      a.asm('push', reg('eax')); // [esp+4] is the value to pop
      a.asm('mov', reg('eax'), stack(4));
      a.asm('shr', reg('eax'), imm(EFLAGS_IOPL_SHIFT));
      a.asm('and', reg('al'), imm(3));
      a.asm('mov', b8(SHARED.viopl), reg('al'));
      a.asm('mov', reg('eax'), stack(4));
      a.asm('shr', reg('eax'), imm(9));
      a.asm('and', reg('al'), imm(1));
      a.asm('xchg', b8(SHARED.vif), reg('al')); // al = the old vif
      a.asm('test', reg('al'), reg('al'));
      a.jcc('ne', noEscape); // vif was already 1: nothing can have become deliverable
      a.asm('test', b8(SHARED.vif), imm(1));
      a.jcc('e', noEscape); // still 0
      a.asm('cmp', b8(SHARED.pending), imm(0));
      a.jcc('e', noEscape);
      a.asm('pop', reg('eax'));
      a.asm('popfd'); // the rest of the flags; ESP += 4
      a.here('escape');
      a.asm('int', imm(0x81)); // vif went 0 -> 1 with an interrupt pending: deliver it now
      a.jmp(done);
      a.bind(noEscape);
      a.asm('pop', reg('eax'));
      a.asm('popfd');
      a.bind(done);
      break;
    }
  }
  const r = a.assemble();
  const e = r.labels.get('escape');
  return { bytes: r.bytes, escapeOffset: e === undefined ? undefined : (e - origin) >>> 0 };
}
