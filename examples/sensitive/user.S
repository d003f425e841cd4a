/* Ring switches for sensitive.c: enter_user(fn, stack_top) IRETs to fn in ring 3 (CS 0x1B,
 * SS/DS/ES/FS/GS 0x23, EFLAGS with IF = 0 and IOPL = 0); the INT 0x80 handler comes back by
 * making its IRET land on ring0_resume with CS 0x08, which restores the kernel stack and returns
 * from enter_user. */
#define KERNEL_DS 0x10
#define USER_CS 0x1B
#define USER_DS 0x23

    .text
    .globl enter_user
    .type enter_user, @function
enter_user:
    pushl %ebp
    pushl %ebx
    pushl %esi
    pushl %edi
    movl %esp, saved_kernel_esp
    movl 20(%esp), %eax
    movl 24(%esp), %ecx
    movw $USER_DS, %dx
    movw %dx, %ds
    movw %dx, %es
    movw %dx, %fs
    movw %dx, %gs
    pushl $USER_DS
    pushl %ecx
    pushl $0x00000002
    pushl $USER_CS
    pushl %eax
    iretl

    .globl ring0_resume
ring0_resume:
    movw $KERNEL_DS, %dx
    movw %dx, %ds
    movw %dx, %es
    movw %dx, %fs
    movw %dx, %gs
    movl saved_kernel_esp, %esp
    popl %edi
    popl %esi
    popl %ebx
    popl %ebp
    ret
    .size enter_user, . - enter_user

/* far_target: reached by a far CALL; returns CS as the callee sees it in EAX, and the CS the
 * caller pushed in EDX; RETF $4 also drops the one argument the caller pushed. */
    .globl far_target
far_target:
    movl %cs, %eax
    movl 4(%esp), %edx
    lret $4

    .section .bss
    .p2align 2
saved_kernel_esp:
    .long 0

    .section .note.GNU-stack, "", @progbits
