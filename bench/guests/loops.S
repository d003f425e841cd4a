/* The execution benchmark's guest: one multiboot (v1) ELF32 image that runs one loop and ends
 * the run through isa-debug-exit (port 0xF4), so that ringshift, v86 and QEMU run the same bytes.
 * The loop and its iteration count live in `bench_params`, which the bench patches in the image
 * it hands to each emulator (bench/guests/params.ts), so one build serves quick and full runs.
 *
 *   mode 0, compute: ALU, memory and a branch per iteration (bench/cpu.ts's compute loop)
 *   mode 1, paging:  32-bit paging, a sweep over 1024 4-KiB pages with INVLPG after every touch
 *                    and a CR3 reload per sweep, so most accesses walk the tables
 *
 * Multiboot §3.2 leaves GDTR undefined at entry: the guest loads its own GDT first. */

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define PAGES_LINEAR 0x40000000
#define PD 0x300000
#define PT 0x301000
#define FRAMES 0x400000

    .section .multiboot, "a"
    .p2align 2
    .long 0x1BADB002
    .long 0
    .long -0x1BADB002

    .section .data
    .p2align 2
    .globl bench_params
bench_params:
    .ascii "RSBENCH1"     /* magic the host looks for */
mode:
    .long 0
iterations:
    .long 1000000

    .section .text
    .globl _start
_start:
    cli
    lgdt gdt_descriptor
    ljmp $KERNEL_CS, $1f
1:  movw $KERNEL_DS, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $0x200000, %esp
    cmpl $1, mode
    je paging

compute:
    movl iterations, %ecx
    movl $0x200000, %esi
    xorl %eax, %eax
2:  addl (%esi), %eax
    movl %eax, %edx
    xorl %ecx, %edx
    movl %edx, 4(%esi)
    incl %esi
    andl $0x2003ff, %esi
    decl %ecx
    jne 2b
    jmp done

paging:
    /* PD: four 4-MiB identity pages (PS) below 16 MiB, and one page table for PAGES_LINEAR. */
    xorl %ebx, %ebx
3:  movl %ebx, %eax
    shll $22, %eax
    orl $0x83, %eax
    movl %eax, PD(,%ebx,4)
    incl %ebx
    cmpl $4, %ebx
    jne 3b
    movl $(PT | 3), PD + (PAGES_LINEAR >> 22) * 4
    xorl %ebx, %ebx
4:  movl %ebx, %eax
    shll $12, %eax
    addl $(FRAMES | 3), %eax
    movl %eax, PT(,%ebx,4)
    incl %ebx
    cmpl $1024, %ebx
    jne 4b
    movl $PD, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x10, %eax          /* CR4.PSE */
    movl %eax, %cr4
    movl %cr0, %eax
    orl $0x80000000, %eax    /* CR0.PG */
    movl %eax, %cr0

    movl iterations, %ecx
    movl $PAGES_LINEAR, %esi
5:  movl (%esi), %eax
    addl %ecx, %eax
    movl %eax, 4(%esi)
    invlpg (%esi)
    addl $0x1000, %esi
    andl $(PAGES_LINEAR | 0x3ff000), %esi
    cmpl $PAGES_LINEAR, %esi
    jne 6f
    movl %cr3, %eax
    movl %eax, %cr3
6:  decl %ecx
    jne 5b

done:
    movb $0, %al
    outb %al, $0xf4
7:  cli
    hlt
    jmp 7b

    .section .rodata
    .p2align 3
gdt:
    .quad 0x0000000000000000
    .quad 0x00CF9A000000FFFF /* 0x08: code, flat, DPL 0, 32-bit */
    .quad 0x00CF92000000FFFF /* 0x10: data, flat, DPL 0 */
gdt_end:
    .p2align 2
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt
