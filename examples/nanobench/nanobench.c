/* Nanobenchmarks after Adams & Agesen, "A Comparison of Software and Hardware Techniques for x86
 * Virtualization" (ASPLOS 2006; shared/reference/adams-agesen-2006.md), adapted to IA-32: each
 * runs one operation ITERATIONS times between two RDTSCs and prints
 *     <name> iterations=<N> cycles=<RDTSC delta> per-op=<delta / N>
 *
 *   in, out     IN / OUT on port 0x2F0, which nothing on the PC decodes (0x80, the paper's
 *               choice, is the POST port)
 *   cli/sti     CLI followed by STI (the PIC is masked: nothing is pending)
 *   pushf/popf  PUSHF followed by POPF
 *   cr3wr       MOV to CR3 of its own value (the CR-write case; IA-32 has no CR8)
 *   call/ret    a call of an empty function
 *   pgfault     a load from a not-present page: the #PF handler maps it, the loop unmaps it
 *               again (PTE cleared, INVLPG)
 *   divzero     DIV by zero: the #DE handler skips the instruction
 *   ptemod      a PTE store followed by INVLPG
 *   syscall     INT 0x80 from ring 3 through a DPL 3 trap gate and IRET back (run last: the
 *               ring-3 task ends the run through its exit system call)
 *
 * The cycle counts are times, so they differ between machines and runs: the QEMU comparison in
 * test/e2e/qemu.test.ts masks the numbers after cycles= and per-op= for this guest; the rest of
 * every line (names, iteration counts, order) must still match. Exit status: 0 when every
 * benchmark ran as intended (fault and call counts checked), 1 otherwise, 0x7F on an unexpected
 * exception (x86desc.c). */
#include "io.h"
#include "kprintf.h"
#include "paging.h"
#include "serial.h"
#include "x86.h"

#define PIC1_DATA 0x21
#define PIC2_DATA 0xA1
#define ITERATIONS 1000u
#define UNUSED_PORT 0x2F0
#define VEC_DE 0
#define SYSCALL_VECTOR 0x80
/* The page the pgfault and ptemod benchmarks map and unmap: 8 MiB, in its own page table. */
#define VA_TEST 0x00800000u
#define FRAME_TEST 0x00400000u

enum { SYS_NOP = 0, SYS_DONE = 1 };

static u32 page_dir[1024] __attribute__((aligned(4096)));
static u32 pt_low[1024] __attribute__((aligned(4096)));  /* 0-4 MiB, identity, user */
static u32 pt_test[1024] __attribute__((aligned(4096))); /* 8-12 MiB: only VA_TEST, on demand */
static u8 user_stack[8192] __attribute__((aligned(16)));

static int failures;
static volatile u32 pf_count, de_count, sys_count, calls;

static inline u32 rdtsc_lo(void) {
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    (void)hi;
    return lo;
}

static void report(const char *name, u32 cycles) {
    kprintf("%s iterations=%u cycles=%u per-op=%u\n", name, ITERATIONS, cycles, cycles / ITERATIONS);
}

static void check(int ok, const char *what) {
    if (ok) return;
    failures++;
    kprintf("FAIL: %s\n", what);
}

static void page_fault(struct trap_frame *f) {
    u32 cr2 = read_cr2();
    if (cr2 != VA_TEST || (f->error & PF_P)) {
        kprintf("unexpected #PF cr2=%08x error=%x eip=%08x\n", cr2, f->error, f->eip);
        qemu_exit(0x7F);
    }
    pf_count++;
    pt_test[PTE_INDEX(VA_TEST)] = FRAME_TEST | PTE_P | PTE_W;
    invlpg((void *)cr2);
}

/* Every DIV in this file is `divl %ecx` (F7 F1): two bytes to skip. */
static void divide_error(struct trap_frame *f) {
    de_count++;
    f->eip += 2;
}

static __attribute__((noinline)) void empty_function(void) { __asm__ volatile("" ::: "memory"); }

static void syscall_handler(struct trap_frame *f) {
    sys_count++;
    if (f->eax == SYS_NOP) {
        f->eax = 0;
        return;
    }
    if (f->eax != SYS_DONE) {
        f->eax = (u32)-1;
        return;
    }
    /* SYS_DONE: EBX = the RDTSC delta measured in ring 3, ECX = the CPL the user ran at. */
    report("syscall", f->ebx);
    check((f->cs & 3) == 3 && f->ecx == 3, "syscall ran in ring 3");
    check(sys_count == ITERATIONS + 1, "syscall count");
    if (failures != 0) {
        kprintf("nanobench: %d failures\n", failures);
        qemu_exit(1);
    }
    kprintf("nanobench: 9 benchmarks, ok\n");
    qemu_exit(0);
}

static __attribute__((noreturn, used)) void user_main(void) {
    u32 t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) {
        u32 r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(SYS_NOP) : "memory");
    }
    u32 t1 = rdtsc_lo();
    u16 cs;
    __asm__ volatile("movw %%cs, %0" : "=r"(cs));
    __asm__ volatile("int $0x80" : : "a"(SYS_DONE), "b"(t1 - t0), "c"((u32)(cs & 3)) : "memory");
    for (;;) {
    }
}

void kmain(u32 magic, u32 info) {
    (void)magic;
    (void)info;
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
    serial_init();
    kprintf("nanobench: Adams & Agesen (ASPLOS 2006) nanobenchmarks, IA-32\n");

    x86_init();
    x86_set_handler(VEC_PF, page_fault);
    x86_set_handler(VEC_DE, divide_error);
    x86_set_gate(SYSCALL_VECTOR, 3, 1, syscall_handler);
    for (u16 port = 0x3F8; port <= 0x3FF; port++) x86_io_allow(port, 1);

    /* The first 4 MiB identity-mapped (user accessible, for the ring-3 syscall loop); VA_TEST
     * through its own page table, not present until the pgfault benchmark maps it. */
    for (u32 i = 1; i < 1024; i++) pt_low[i] = (i * PAGE_SIZE) | PTE_P | PTE_W | PTE_U;
    page_dir[0] = (u32)pt_low | PTE_P | PTE_W | PTE_U;
    page_dir[PDE_INDEX(VA_TEST)] = (u32)pt_test | PTE_P | PTE_W;
    write_cr3((u32)page_dir);
    write_cr0(read_cr0() | CR0_PG);

    u32 t0, t1;
    volatile u32 *test = (volatile u32 *)VA_TEST;
    u32 *test_pte = &pt_test[PTE_INDEX(VA_TEST)];

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) (void)inb(UNUSED_PORT);
    t1 = rdtsc_lo();
    report("in", t1 - t0);

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) outb(UNUSED_PORT, (u8)i);
    t1 = rdtsc_lo();
    report("out", t1 - t0);

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) __asm__ volatile("cli; sti" ::: "memory");
    t1 = rdtsc_lo();
    cli();
    report("cli/sti", t1 - t0);

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) __asm__ volatile("pushfl; popfl" ::: "memory", "cc");
    t1 = rdtsc_lo();
    report("pushf/popf", t1 - t0);

    u32 cr3 = read_cr3();
    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) write_cr3(cr3);
    t1 = rdtsc_lo();
    report("cr3wr", t1 - t0);

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) {
        empty_function();
        calls++;
    }
    t1 = rdtsc_lo();
    report("call/ret", t1 - t0);
    check(calls == ITERATIONS, "call count");

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) {
        (void)*test;    /* not present: #PF maps it */
        *test_pte = 0;  /* unmapped again */
        invlpg(test);
    }
    t1 = rdtsc_lo();
    report("pgfault", t1 - t0);
    check(pf_count == ITERATIONS, "page fault count");

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) {
        u32 a = 1, d = 0;
        __asm__ volatile("divl %%ecx" : "+a"(a), "+d"(d) : "c"(0) : "cc");
    }
    t1 = rdtsc_lo();
    report("divzero", t1 - t0);
    check(de_count == ITERATIONS, "divide error count");

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) {
        *(volatile u32 *)test_pte = (i & 1) ? (FRAME_TEST | PTE_P | PTE_W) : 0;
        invlpg(test);
    }
    t1 = rdtsc_lo();
    report("ptemod", t1 - t0);
    check(pf_count == ITERATIONS, "no page fault during ptemod");

    /* syscall: the ring-3 task measures its own INT 0x80 loop and ends the run (SYS_DONE). */
    x86_enter_user((u32)user_main, (u32)(user_stack + sizeof(user_stack)), 0x002);
}
