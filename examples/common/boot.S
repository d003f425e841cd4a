/* Entry from a multiboot (v1) loader: 32-bit protected mode, paging off, EAX = 0x2BADB002,
 * EBX = physical address of the multiboot information, and - per the specification §3.2 -
 * an undefined GDTR, so the first job is to load our own GDT before touching a segment. */
#include "multiboot.h"

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10

    .section .multiboot, "a"
    .p2align 2
multiboot_header:
    .long MULTIBOOT_HEADER_MAGIC
    .long MULTIBOOT_HEADER_FLAGS
    .long -(MULTIBOOT_HEADER_MAGIC + MULTIBOOT_HEADER_FLAGS)

    .section .text.boot, "ax"
    .globl _start
    .type _start, @function
_start:
    cli
    movl $stack_top, %esp
    /* EAX and EBX must survive until kmain receives them. */
    movl %eax, %esi
    movl %ebx, %edi

    lgdt gdt_descriptor
    ljmp $KERNEL_CS, $reload_segments
reload_segments:
    movw $KERNEL_DS, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss

    pushl %edi
    pushl %esi
    call kmain
    /* kmain does not return; if it does, stop with interrupts off. */
halt:
    cli
    hlt
    jmp halt
    .size _start, . - _start

    .section .rodata
    .p2align 3
    .globl gdt
gdt:
    .quad 0x0000000000000000 /* null */
    .quad 0x00CF9A000000FFFF /* 0x08: code, base 0, limit 4 GiB, DPL 0, 32-bit */
    .quad 0x00CF92000000FFFF /* 0x10: data, base 0, limit 4 GiB, DPL 0 */
gdt_end:

    .p2align 2
    .globl gdt_descriptor
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

    .section .bss
    .p2align 4
stack_bottom:
    .skip 16384
stack_top:

    .section .note.GNU-stack, "", @progbits
