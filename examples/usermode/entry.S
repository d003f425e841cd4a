/* The SYSENTER entry point: CS = IA32_SYSENTER_CS (0x08), SS = 0x10, ESP = IA32_SYSENTER_ESP,
 * EIP = here, interrupts off; the user passes the system call number in EAX, its argument in
 * EBX, its return address in EDX and its stack pointer in ECX (what SYSEXIT needs back). */
    .section .text
    .globl sysenter_entry
    .type sysenter_entry, @function
sysenter_entry:
    pushl %ecx
    pushl %edx
    pushl %ebx
    pushl %eax
    movl $0x10, %ecx
    movw %cx, %ds
    movw %cx, %es
    call sysenter_dispatch /* (nr, arg) -> EAX */
    addl $8, %esp
    popl %edx
    popl %ecx
    movl $0x23, %ebx
    movw %bx, %ds
    movw %bx, %es
    sti /* SYSENTER cleared IF; the STI shadow covers SYSEXIT, as in Linux */
    sysexit
    .size sysenter_entry, . - sysenter_entry

    .section .note.GNU-stack, "", @progbits
