/* Trap and event entry for the PV examples. Xen bounces an exception to the address in the
 * trap table with [error code], EIP, CS (saved upcall mask in bits 23:16), EFLAGS, and ESP, SS
 * when it came from ring 3, on the ring-1 stack (stack_switch's when coming from ring 3); the
 * event callback gets the same frame without an error code (xen-x86_32-pv.md §1, from
 * xen/arch/x86/x86_64/compat/entry.S). Each stub completes a struct pv_frame (pv.h) and joins
 * pv_trap_common, which calls pv_trap_dispatch and returns through the iret hypercall: a plain
 * IRET in ring 1 could not restore the virtual IF (evtchn_upcall_mask), the hypercall does. */
#define __ASSEMBLER__ 1
#include "xen.h"

#define IRET_SLOT (hypercall_page + __HYPERVISOR_iret * HYPERCALL_SLOT_SIZE)

    .section .text
    .p2align 4
pv_trap_common:
    pushal
    pushl %ds
    pushl %es
    pushl %fs
    pushl %gs
    movl $FLAT_KERNEL_DS, %eax
    movw %ax, %ds
    movw %ax, %es
    pushl %esp
    call pv_trap_dispatch
    addl $4, %esp
    popl %gs
    popl %fs
    popl %es
    popl %ds
    popal
    addl $8, %esp
    /* The frame is now EIP, CS, EFLAGS[, ESP, SS]: the slot pushes EAX and enters Xen. */
    jmp IRET_SLOT

    .globl hypervisor_callback
    .type hypervisor_callback, @function
hypervisor_callback:
    pushl $0
    pushl $0xFFFFFFFF           /* PV_EVENT_VECTOR */
    jmp pv_trap_common
    .size hypervisor_callback, . - hypervisor_callback

    /* Frame: DS, ES, FS, GS, EIP, CS, EFLAGS[, ESP, SS]. */
    .globl failsafe_callback
    .type failsafe_callback, @function
failsafe_callback:
    movl $FLAT_KERNEL_DS, %eax
    movw %ax, %ds
    movw %ax, %es
    call pv_failsafe
1:  jmp 1b
    .size failsafe_callback, . - failsafe_callback

    .pushsection .rodata
    .p2align 2
    .globl pv_trap_stubs
pv_trap_stubs:
    .popsection
    .set vector, 0
    .rept 256
    .p2align 3
1:
    /* The vectors for which the CPU (and so Xen's bounce) pushes an error code. */
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21)
    .else
    pushl $0
    .endif
    pushl $vector
    jmp pv_trap_common
    .pushsection .rodata
    .long 1b
    .popsection
    .set vector, vector + 1
    .endr

    /* pv_enter_user(eip, esp, eflags): the iret hypercall to ring 3 (FLAT_USER_CS/SS, DS and GS
     * FLAT_USER_DS). */
    .globl pv_enter_user
    .type pv_enter_user, @function
pv_enter_user:
    movl 4(%esp), %eax
    movl 8(%esp), %ecx
    movl 12(%esp), %edx
    pushl $FLAT_USER_SS
    pushl %ecx
    pushl %edx
    pushl $FLAT_USER_CS
    pushl %eax
    movl $FLAT_USER_DS, %eax
    movw %ax, %ds
    movw %ax, %gs
    /* ES and FS keep FLAT_KERNEL_DS (DPL 1): the return to ring 3 must null them, as the
     * native x86_enter_user shows. */
    jmp IRET_SLOT
    .size pv_enter_user, . - pv_enter_user

    .section .note.GNU-stack, "", @progbits
