/* Interrupt entry stubs: vectors 0-47 and 0x80. Each pushes a dummy error code when the CPU
 * does not push one, then the vector number, and joins isr_common, which saves the general and
 * data segment registers, calls isr_dispatch(frame) and returns with IRET. */
#define KERNEL_DS 0x10

    .text
.macro STUB vector, has_error
    .p2align 2
isr_\vector:
    .if \has_error == 0
    pushl $0
    .endif
    pushl $\vector
    jmp isr_common
.endm

.irp v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    STUB \v, 0
.endr
.irp v, 8,10,11,12,13,14,17
    STUB \v, 1
.endr
.irp v, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,128
    STUB \v, 0
.endr

isr_common:
    pushal
    pushl %ds
    pushl %es
    pushl %fs
    pushl %gs
    movw $KERNEL_DS, %ax
    movw %ax, %ds
    movw %ax, %es
    pushl %esp
    call isr_dispatch
    addl $4, %esp
    popl %gs
    popl %fs
    popl %es
    popl %ds
    popal
    addl $8, %esp
    iretl

    .section .rodata
    .p2align 2
    .globl isr_stubs
/* isr_stubs[0..47]: vectors 0-47; isr_stubs[48]: vector 0x80. */
isr_stubs:
.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,128
    .long isr_\v
.endr

    .section .note.GNU-stack, "", @progbits
