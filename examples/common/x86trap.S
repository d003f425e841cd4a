/* Interrupt and exception entry stubs for all 256 vectors: each pushes a dummy error code when
 * the CPU pushes none (all but 8, 10-14, 17, 21), then its vector, and joins trap_common,
 * which saves the registers, loads the kernel data segments and calls x86_trap_dispatch with
 * a struct trap_frame (x86.h). The handler may change the frame; IRET resumes from it. */
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1B
#define SEL_UDATA 0x23

    .section .text
    .p2align 4
trap_common:
    pushal
    pushl %ds
    pushl %es
    pushl %fs
    pushl %gs
    movl $SEL_KDATA, %eax
    movw %ax, %ds
    movw %ax, %es
    pushl %esp
    call x86_trap_dispatch
    addl $4, %esp
    popl %gs
    popl %fs
    popl %es
    popl %ds
    popal
    addl $8, %esp
    iret

    .pushsection .rodata
    .p2align 2
    .globl x86_trap_stubs
x86_trap_stubs:
    .popsection
    .set vector, 0
    .rept 256
    .p2align 3
1:
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21)
    .else
    pushl $0
    .endif
    pushl $vector
    jmp trap_common
    .pushsection .rodata
    .long 1b
    .popsection
    .set vector, vector + 1
    .endr

    .globl x86_enter_user
    .type x86_enter_user, @function
x86_enter_user:
    movl 4(%esp), %eax  /* eip */
    movl 8(%esp), %ecx  /* esp */
    movl 12(%esp), %edx /* eflags */
    pushl $SEL_UDATA
    pushl %ecx
    pushl %edx
    pushl $SEL_UCODE
    pushl %eax
    movl $SEL_UDATA, %eax
    movw %ax, %ds
    movw %ax, %gs
    /* ES and FS keep the kernel data selector: IRET to ring 3 must load them with null
     * (SDM IRET: a data segment whose DPL < CPL is invalidated). */
    iret
    .size x86_enter_user, . - x86_enter_user

    .section .note.GNU-stack, "", @progbits
