/* Entry of a PV example (XenoLinux-style head): the Xen ELF notes that make the image loadable
 * by Xen's domain builder (libelf-dominfo.c: XEN_VERSION "xen-3.0*", LOADER "generic*"), the
 * hypercall page the builder fills, and the entry point. Xen starts the kernel in ring 1 with
 * CS/DS/ES/FS/GS/SS = FLAT_KERNEL_*, ESI = the virtual address of start_info and ESP = the top
 * of its bootstrap stack (tools/libs/guest/xg_dom_x86.c); no event channel is bound yet, so no
 * event can arrive before pv_start registers the callback. */
#define __ASSEMBLER__ 1
#include "xen.h"

/* One ELF note (elfnote.h: name "Xen", the type, then the value, each padded to 4 bytes). */
.macro XEN_NOTE_HEAD type
    .p2align 2
    .long 2f - 1f       /* namesz */
    .long 4f - 3f       /* descsz */
    .long \type
1:  .asciz "Xen"
2:  .p2align 2
3:
.endm
.macro XEN_NOTE_STR type, value
    XEN_NOTE_HEAD \type
    .asciz "\value"
4:  .p2align 2
.endm
.macro XEN_NOTE_LONG type, value
    XEN_NOTE_HEAD \type
    .long \value
4:  .p2align 2
.endm

    .section .note.Xen, "a", @note
    XEN_NOTE_STR XEN_ELFNOTE_GUEST_OS, "ringshift-pv"
    XEN_NOTE_STR XEN_ELFNOTE_GUEST_VERSION, "1"
    XEN_NOTE_STR XEN_ELFNOTE_XEN_VERSION, "xen-3.0"
    /* Not a Linux image, so libelf needs the generic loader. */
    XEN_NOTE_STR XEN_ELFNOTE_LOADER, "generic"
    /* VIRT_BASE 0 and PADDR_OFFSET 0: virtual address = pseudo-physical address for the image
     * and the whole bootstrap area (start_info, P2M list, page tables), as the README says. */
    XEN_NOTE_LONG XEN_ELFNOTE_VIRT_BASE, 0
    XEN_NOTE_LONG XEN_ELFNOTE_PADDR_OFFSET, 0
    XEN_NOTE_LONG XEN_ELFNOTE_ENTRY, _start
    XEN_NOTE_LONG XEN_ELFNOTE_HYPERCALL_PAGE, hypercall_page
    /* "yes" = PAE with extended CR3 (libelf: XEN_PAE_EXTCR3), hence guest type xen-3.0-x86_32p. */
    XEN_NOTE_STR XEN_ELFNOTE_PAE_MODE, "yes"
    /* Supported, not required (no '!'): our L3 may sit above 4 GiB, we only name it by MFN. */
    XEN_NOTE_STR XEN_ELFNOTE_FEATURES, "pae_pgdir_above_4gb"

    .section .text.boot, "ax"
    .globl _start
    .type _start, @function
_start:
    cld
    movl $pv_stack_top, %esp
    pushl %esi                  /* start_info */
    call pv_start               /* pv.c: maps shared_info, sets up the console, calls kmain */
1:  jmp 1b
    .size _start, . - _start

    /* Filled by the domain builder (or the monitor) with 128 slots of 32 bytes. */
    .section .hypercall_page, "ax"
    .p2align 12
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0xCC
    .size hypercall_page, 4096

    .section .bss
    .p2align 4
pv_stack_bottom:
    .skip 16384
    .globl pv_stack_top
pv_stack_top:

    .section .note.GNU-stack, "", @progbits
