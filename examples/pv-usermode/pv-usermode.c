/* usermode (examples/usermode) ported to Xen's 32-bit PAE PV ABI: a user task in ring 3 under a
 * ring-1 kernel. Native -> PV:
 *   IRET to ring 3                -> the iret hypercall with FLAT_USER_CS/SS (0xe02b/0xe033)
 *   TSS.ESP0 (the stack for traps) -> stack_switch(FLAT_KERNEL_SS, esp)
 *   INT 0x80 trap gate, DPL 3      -> set_trap_table entry 0x80 with DPL 3 (0x81: DPL 0)
 *   #GP/#PF/#UD gates              -> set_trap_table; CR2 from vcpu_info.arch.cr2
 *   user pages (PTE.U)             -> update_va_mapping with _PAGE_USER on the image's pages
 *   IOPL raised by a system call   -> PHYSDEVOP_set_iopl (Xen keeps the IOPL virtual)
 * What has no PV form: the user printing directly on COM1 (ring 3 cannot make hypercalls; it
 * prints through int 0x80), the TSS and its I/O bitmap (every port access from ring 3 faults),
 * SYSENTER/SYSEXIT (not ported) and a real IOPL 3 in ring 3. The selectors differ by value
 * (Xen's flat segments instead of our GDT's); test/e2e/pv-examples.test.ts maps them and lists
 * the other lines that differ. Exit code: 0 = every check passed (pv-common/README.md). */
#include "check.h"
#include "pv.h"

#define EFLAGS_IF_BIT 0x00000200u
#define EFLAGS_IOPL_MASK 0x00003000u

enum { SYS_PUTS = 1, SYS_EXIT = 2, SYS_INFO = 3, SYS_IOPL = 4, SYS_HEX = 7 };

static volatile u32 secret_page[1024] __attribute__((aligned(4096))) = {0x5EC2E7};
static volatile u32 readonly_page[1024] __attribute__((aligned(4096))) = {0x2EAD0000};
static u8 kernel_stack[8192] __attribute__((aligned(16)));
static u8 user_stack[8192] __attribute__((aligned(16)));
#define KERNEL_STACK_TOP ((u32)(kernel_stack + sizeof(kernel_stack)))

extern char _end[];
static u32 traps;
volatile u32 fault_resume;

/* ---- kernel side ---- */

static void user_fault(struct pv_frame *f) {
    traps++;
    serial_puts(f->vector == TRAP_page_fault ? "  #PF" : f->vector == TRAP_gp_fault ? "  #GP" : "  #UD");
    serial_puts(" error=");
    serial_puthex(f->error);
    if (f->vector == TRAP_page_fault) {
        serial_puts(" cr2=");
        serial_puthex(pv_vcpu->cr2);
    }
    serial_puts(" cs=");
    serial_puthex(f->cs & 0xFFFF); /* bits 23:16 hold the saved upcall mask */
    if ((f->cs & 3) == 3) {
        serial_puts(" ss=");
        serial_puthex(f->user_ss);
        /* Xen switched to the stack_switch stack and bounced SS, ESP, EFLAGS, CS, EIP, error. */
        serial_puts(" frame=esp0-");
        serial_puthex(KERNEL_STACK_TOP - (u32)f);
    }
    serial_puts("\n");
    if ((f->cs & 3) != 3 || fault_resume == 0) {
        serial_puts("unexpected fault\n");
        pv_exit(0x7F);
    }
    f->eip = fault_resume;
    fault_resume = 0;
}

static void syscall_int80(struct pv_frame *f) {
    switch (f->eax) {
    case SYS_PUTS:
        serial_puts((const char *)f->ebx);
        f->eax = 0;
        break;
    case SYS_HEX:
        print_hex((const char *)f->ebx, f->ecx);
        f->eax = 0;
        break;
    case SYS_INFO:
        f->eax = (f->cs & 3) | (f->user_ss << 16);
        break;
    case SYS_IOPL: {
        struct physdev_set_iopl op = {f->ebx & 3};
        f->eax = (u32)HYPERVISOR_physdev_op(PHYSDEVOP_set_iopl, &op);
        break;
    }
    case SYS_EXIT:
        serial_puts("exit(");
        serial_puthex(f->ebx);
        serial_puts(") from ring ");
        serial_putdec(f->cs & 3);
        serial_puts(", traps=");
        serial_putdec(traps);
        serial_puts("\n");
        if (check_failures != 0 || f->ebx != 0) pv_exit(1);
        serial_puts("usermode: ok\n");
        pv_exit(0);
    default:
        f->eax = (u32)-1;
    }
}

/* ---- user side (ring 3): no hypercalls from here, every output is a system call ---- */

static inline u32 int80(u32 nr, u32 arg) {
    u32 r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(arg) : "memory");
    return r;
}

static void user_puts(const char *s) { int80(SYS_PUTS, (u32)s); }

static void user_hex(const char *name, u32 value) {
    u32 r = SYS_HEX; /* the kernel returns in EAX */
    __asm__ volatile("int $0x80" : "+a"(r) : "b"(name), "c"(value) : "memory");
}

#define PROBE(insn, ...) \
    __asm__ volatile("movl $2f, fault_resume\n\t" insn "\n2:" __VA_ARGS__)

static u32 user_eflags(void) {
    u32 f;
    __asm__ volatile("pushfl; popl %0" : "=r"(f));
    return f;
}

static __attribute__((noreturn, used)) void user_main(void) {
    int80(SYS_PUTS, (u32)"[u1] hello from ring 3 through int 0x80\n");
    user_puts("[u2] no port access from ring 3 under PV: output through int 0x80\n");

    u16 cs, ss, ds, es, fs, gs;
    __asm__ volatile("movw %%cs, %0; movw %%ss, %1; movw %%ds, %2; movw %%es, %3; movw %%fs, %4; movw %%gs, %5"
                     : "=r"(cs), "=r"(ss), "=r"(ds), "=r"(es), "=r"(fs), "=r"(gs));
    user_hex("cs", cs);
    user_hex("ss", ss);
    user_hex("ds", ds);
    user_hex("es (kernel selector, nulled by IRET)", es);
    user_hex("fs (kernel selector, nulled by IRET)", fs);
    user_hex("gs", gs);
    u32 flags = user_eflags();
    user_hex("eflags & (IF|IOPL)", flags & (EFLAGS_IF_BIT | EFLAGS_IOPL_MASK));
    u32 info = int80(SYS_INFO, 0);
    user_hex("int 0x80 sees cpl", info & 0xFFFF);
    user_hex("int 0x80 sees ss", info >> 16);

    user_puts("[u3] POPF cannot clear IF with IOPL 0\n");
    __asm__ volatile("pushl %0; popfl" : : "r"(flags & ~EFLAGS_IF_BIT) : "memory", "cc");
    user_hex("eflags & IF", user_eflags() & EFLAGS_IF_BIT);

    user_puts("[u4] privileged instructions\n");
    PROBE("cli", : : : "memory");
    PROBE("hlt", : : : "memory");
    PROBE("movl %%cr0, %%eax", : : : "eax");
    PROBE("lgdt (%%eax)", : : "a"(0));
    PROBE("sysexit", : : : "memory");
    PROBE("wrmsr", : : : "eax", "ecx", "edx");

    user_puts("[u5] gates and selectors\n");
    PROBE("int $0x81", : : : "memory");
    /* The hypercall gate has DPL 1: ring 3 gets #GP((0x82 << 3) | 2) (native: INT 3, DPL 0). */
    PROBE("int $0x82", : : : "memory");
    PROBE("movw %w0, %%ds", : : "r"(FLAT_KERNEL_DS));
    PROBE("movw %w0, %%ss", : : "r"(FLAT_USER_CS));
    user_hex("ds still", ({ u16 d; __asm__ volatile("movw %%ds, %0" : "=r"(d)); d; }));

    user_puts("[u6] ports: no I/O bitmap under PV, every access faults\n");
    PROBE("inb $0x60, %%al", : : : "eax");
    PROBE("outb %%al, $0xf4", : : "a"(0x55));
    PROBE("inw %%dx, %%ax", : : "d"(0x3FF) : "eax");
    PROBE("inb %%dx, %%al", : : "d"(0x3FD) : "eax");

    user_puts("[u7] pages\n");
    u32 v = 0;
    PROBE("movl (%1), %0", : "+r"(v) : "r"(&secret_page[0]));
    user_hex("read of a supervisor page left", v);
    user_hex("read-only page", readonly_page[0]);
    PROBE("movl %0, (%1)", : : "r"(0x11111111), "r"(&readonly_page[1]) : "memory");
    user_hex("read-only page after the write", readonly_page[1]);
    PROBE("movl %0, (%1)", : : "r"(0x11111111), "r"(0x8)  : "memory");
    PROBE("movl %0, (%1)", : : "r"(0x22222222), "r"(0x00400000 + 0x10) : "memory");

    user_puts("[u9] IOPL 3\n");
    user_hex("PHYSDEVOP_set_iopl(3)", int80(SYS_IOPL, 3));
    user_hex("PHYSDEVOP_set_iopl(0)", int80(SYS_IOPL, 0));

    int80(SYS_EXIT, 0);
    for (;;) {
    }
}

/* The image's pages become user pages (native: PTE.U on the first 4 MiB), except a supervisor
 * page and a read-only one; page 0 and 4 MiB stay unmapped so that user stores there fault. */
static void map_user_pages(void) {
    for (u32 va = 0x00100000u; va < (u32)_end; va += PAGE_SIZE) {
        u64 *pte = pv_pte_ptr(va);
        if (pte == 0 || !(*pte & _PAGE_PRESENT)) continue;
        u64 val = *pte | _PAGE_USER;
        if (va == (u32)secret_page) val &= ~(u64)_PAGE_USER;
        if (va == (u32)readonly_page) val &= ~(u64)_PAGE_RW;
        check(HYPERVISOR_update_va_mapping(va, val, UVMF_INVLPG) == 0, "user mapping");
    }
    u32 unmapped[2] = {0, 0x00400000u};
    for (int i = 0; i < 2; i++) {
        u64 *pte = pv_pte_ptr(unmapped[i]);
        if (pte != 0 && (*pte & _PAGE_PRESENT)) check(HYPERVISOR_update_va_mapping(unmapped[i], 0, UVMF_INVLPG) == 0, "unmap");
    }
}

void kmain(struct start_info *si) {
    (void)si;
    serial_puts("usermode example\n");

    pv_set_trap(TRAP_gp_fault, 0, 0, user_fault);
    pv_set_trap(TRAP_page_fault, 0, 0, user_fault);
    pv_set_trap(TRAP_invalid_op, 0, 0, user_fault);
    pv_set_trap(0x80, 3, 0, syscall_int80);
    pv_set_trap(0x81, 0, 0, syscall_int80);
    map_user_pages();
    print_hex("stack_switch", (u32)HYPERVISOR_stack_switch(FLAT_KERNEL_SS, KERNEL_STACK_TOP));

    serial_puts("entering ring 3\n");
    console_flush();
    pv_enter_user((u32)user_main, (u32)(user_stack + sizeof(user_stack)), 0x202);
}
