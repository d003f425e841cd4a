/* nanobench (examples/nanobench) ported to Xen's 32-bit PAE PV ABI: the same operations, timed
 * the same way and printed in the same lines, in the form a PV kernel uses for each (Adams &
 * Agesen, ASPLOS 2006; shared/reference/adams-agesen-2006.md):
 *   in          NOT a port read: a null hypercall, xen_version(XENVER_version), which reads a
 *               constant from the monitor. A PV guest has no port to read (its devices are
 *               split drivers on shared rings), so this times the cost of entering and leaving
 *               the monitor, the part of a trapped IN that any PV device access also pays. The
 *               line keeps the native name "in" so that the outputs compare line by line.
 *   out         console_io(CONSOLEIO_write) of zero bytes: a hypercall that would write to a
 *               device (a domU gets -EPERM, so it is a null hypercall there too)
 *   cli/sti     evtchn_upcall_mask = 1, then = 0 (plain stores: nothing is pending)
 *   pushf/popf  the mask read and written back (pv_irq_save / pv_irq_restore)
 *   cr3wr       MMUEXT_NEW_BASEPTR with the current L3 (the CR-write case)
 *   call/ret    a call of an empty function (no monitor involved, as native)
 *   pgfault     a load from a not-present page: Xen bounces the #PF, the handler maps the page
 *               with update_va_mapping, the loop unmaps it again the same way
 *   divzero     DIV by zero: Xen bounces the #DE through the trap table, the handler skips it
 *   ptemod      update_va_mapping(va, pte, UVMF_INVLPG): the PTE store and INVLPG in one call
 *   syscall     INT 0x80 from ring 3 through a DPL 3 trap-table entry, back by the iret
 *               hypercall (run last; the ring-3 task ends the run)
 * Only the header line differs from the native output (test/e2e/pv-examples.test.ts); cycle
 * counts are times and are masked there. docs/pv-abi.md ("Measured") says what "in" and "out" are. Exit status as native (pv-common/README.md). */
#include "kprintf.h"
#include "pv.h"

#define ITERATIONS 1000u
#define SYSCALL_VECTOR 0x80

enum { SYS_NOP = 0, SYS_DONE = 1 };

/* The page pgfault and ptemod map and unmap: a page of our own image, so that Xen's bootstrap
 * tables already hold the L1 entry; mapped, it points at its own frame. */
static volatile u32 test_page[1024] __attribute__((aligned(4096)));
static u8 kernel_stack[8192] __attribute__((aligned(16)));
static u8 user_stack[8192] __attribute__((aligned(16)));
extern char _end[];

static int failures;
static volatile u32 pf_count, de_count, sys_count, calls;
static u64 test_pte;

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

static void page_fault(struct pv_frame *f) {
    u32 cr2 = pv_vcpu->cr2;
    if (cr2 != (u32)test_page || (f->error & 1)) {
        kprintf("unexpected #PF cr2=%08x error=%x eip=%08x\n", cr2, f->error, f->eip);
        pv_exit(0x7F);
    }
    pf_count++;
    HYPERVISOR_update_va_mapping(cr2, test_pte, UVMF_INVLPG);
}

static void divide_error(struct pv_frame *f) {
    de_count++;
    f->eip += 2;
}

static __attribute__((noinline)) void empty_function(void) { __asm__ volatile("" ::: "memory"); }

static void syscall_handler(struct pv_frame *f) {
    sys_count++;
    if (f->eax == SYS_NOP) {
        f->eax = 0;
        return;
    }
    if (f->eax != SYS_DONE) {
        f->eax = (u32)-1;
        return;
    }
    report("syscall", f->ebx);
    check((f->cs & 3) == 3 && f->ecx == 3, "syscall ran in ring 3");
    check(sys_count == ITERATIONS + 1, "syscall count");
    if (failures != 0) {
        kprintf("nanobench: %d failures\n", failures);
        pv_exit(1);
    }
    kprintf("nanobench: 9 benchmarks, ok\n");
    pv_exit(0);
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

void kmain(struct start_info *si) {
    kprintf("nanobench: Adams & Agesen (ASPLOS 2006) nanobenchmarks, IA-32 PAE PV\n");

    pv_set_trap(TRAP_page_fault, 0, 0, page_fault);
    pv_set_trap(TRAP_divide_error, 0, 0, divide_error);
    pv_set_trap(SYSCALL_VECTOR, 3, 0, syscall_handler);
    check(HYPERVISOR_stack_switch(FLAT_KERNEL_SS, (u32)(kernel_stack + sizeof(kernel_stack))) == 0, "stack_switch");
    /* The ring-3 loop runs in the image: its pages become user pages (native: PTE.U on 4 MiB). */
    for (u32 va = 0x00100000u; va < (u32)_end; va += PAGE_SIZE) {
        u64 *pte = pv_pte_ptr(va);
        if (pte != 0 && (*pte & _PAGE_PRESENT)) HYPERVISOR_update_va_mapping(va, *pte | _PAGE_USER, UVMF_INVLPG);
    }
    test_pte = mfn_pte(virt_to_mfn(test_page), _PAGE_PRESENT | _PAGE_RW);
    check(HYPERVISOR_update_va_mapping((u32)test_page, 0, UVMF_INVLPG) == 0, "test page unmapped");
    u32 l3_mfn = virt_to_mfn((void *)si->pt_base);

    u32 t0, t1;
    static char nothing[1];

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) (void)HYPERVISOR_xen_version(XENVER_version, 0);
    t1 = rdtsc_lo();
    report("in", t1 - t0); /* a null hypercall, not a port read: see the header */

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) (void)HYPERVISOR_console_io(CONSOLEIO_write, 0, nothing);
    t1 = rdtsc_lo();
    report("out", t1 - t0);

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) {
        pv_cli();
        pv_sti();
    }
    t1 = rdtsc_lo();
    pv_cli();
    report("cli/sti", t1 - t0);

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) pv_irq_restore(pv_irq_save());
    t1 = rdtsc_lo();
    report("pushf/popf", t1 - t0);

    t0 = rdtsc_lo();
    for (u32 i = 0; i < ITERATIONS; i++) (void)pv_mmuext(MMUEXT_NEW_BASEPTR, l3_mfn);
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
        (void)test_page[0];
        HYPERVISOR_update_va_mapping((u32)test_page, 0, UVMF_INVLPG);
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
    for (u32 i = 0; i < ITERATIONS; i++) HYPERVISOR_update_va_mapping((u32)test_page, (i & 1) ? test_pte : 0, UVMF_INVLPG);
    t1 = rdtsc_lo();
    report("ptemod", t1 - t0);
    check(pf_count == ITERATIONS, "no page fault during ptemod");

    console_flush();
    pv_enter_user((u32)user_main, (u32)(user_stack + sizeof(user_stack)), 0x202);
}
