/* Ring 3: a user task entered by IRET with a TSS for the way back, system calls through an
 * INT 0x80 trap gate (DPL 3) and through SYSENTER/SYSEXIT, the TSS I/O permission bitmap (COM1
 * is open to the user, who prints directly; other ports fault), IOPL raised by a system call,
 * and the protection checks a user meets: privileged instructions, a DPL 0 gate, a kernel
 * data selector, supervisor and read-only pages (error codes and CR2 printed).
 *
 * Exit code: 0 = every check passed, 1 = a check failed, 0x7F = an unexpected exception. */
#include "io.h"
#include "multiboot.h"
#include "paging.h"
#include "check.h"
#include "serial.h"
#include "x86.h"

#define PIC1_DATA 0x21
#define PIC2_DATA 0xA1
#define MSR_SYSENTER_CS 0x174
#define MSR_SYSENTER_ESP 0x175
#define MSR_SYSENTER_EIP 0x176

enum { SYS_PUTS = 1, SYS_EXIT = 2, SYS_INFO = 3, SYS_IOPL = 4, SYS_TSS_LIMIT = 5, SYS_SYSENTER_CS = 6 };

static u32 page_dir[1024] __attribute__((aligned(4096)));
static u32 page_table[1024] __attribute__((aligned(4096)));
static volatile u32 secret_page[1024] __attribute__((aligned(4096))) = {0x5EC2E7};
static volatile u32 readonly_page[1024] __attribute__((aligned(4096))) = {0x2EAD0000};
static u8 sysenter_stack[4096] __attribute__((aligned(16)));
static u8 user_stack[8192] __attribute__((aligned(16)));

static u32 traps;
/* Where a probe resumes after its instruction faults in ring 3 (set by PROBE). */
volatile u32 fault_resume;

extern void sysenter_entry(void);


/* ---- kernel side ---- */

static void user_fault(struct trap_frame *f) {
    traps++;
    serial_puts(f->vector == VEC_PF ? "  #PF" : f->vector == VEC_GP ? "  #GP" : "  #UD");
    serial_puts(" error=");
    serial_puthex(f->error);
    if (f->vector == VEC_PF) {
        serial_puts(" cr2=");
        serial_puthex(read_cr2());
    }
    serial_puts(" cs=");
    serial_puthex(f->cs);
    if ((f->cs & 3) == 3) {
        serial_puts(" ss=");
        serial_puthex(f->user_ss);
        /* The CPU switched to TSS.ESP0 and pushed SS, ESP, EFLAGS, CS, EIP, error code. */
        serial_puts(" frame=esp0-");
        serial_puthex(kernel_tss.esp0 - (u32)f);
    }
    serial_puts("\n");
    if ((f->cs & 3) != 3 || fault_resume == 0) {
        serial_puts("unexpected fault\n");
        qemu_exit(0x7F);
    }
    f->eip = fault_resume;
    fault_resume = 0;
}

static void syscall_int80(struct trap_frame *f) {
    switch (f->eax) {
    case SYS_PUTS:
        serial_puts((const char *)f->ebx);
        f->eax = 0;
        break;
    case SYS_INFO:
        /* The caller's privilege level and stack, as the gate saw them. */
        f->eax = (f->cs & 3) | (f->user_ss << 16);
        break;
    case SYS_IOPL:
        f->eflags = (f->eflags & ~EFLAGS_IOPL_MASK) | ((f->ebx & 3) << 12);
        f->eax = 0;
        break;
    case SYS_TSS_LIMIT:
        x86_set_tss_limit(f->ebx ? f->ebx : sizeof(kernel_tss) - 1);
        f->eax = 0;
        break;
    case SYS_SYSENTER_CS:
        wrmsr(MSR_SYSENTER_CS, f->ebx, 0);
        f->eax = 0;
        break;
    case SYS_EXIT:
        serial_puts("exit(");
        serial_puthex(f->ebx);
        serial_puts(") from ring ");
        serial_putdec(f->cs & 3);
        serial_puts(", traps=");
        serial_putdec(traps);
        serial_puts("\n");
        if (check_failures != 0 || f->ebx != 0) qemu_exit(1);
        serial_puts("usermode: ok\n");
        qemu_exit(0);
    default:
        f->eax = (u32)-1;
    }
}

u32 sysenter_dispatch(u32 nr, u32 arg) {
    u16 cs, ss;
    __asm__ volatile("movw %%cs, %0; movw %%ss, %1" : "=r"(cs), "=r"(ss));
    switch (nr) {
    case SYS_PUTS:
        serial_puts((const char *)arg);
        return 0;
    case SYS_INFO:
        /* Where SYSENTER put us: CS and SS from IA32_SYSENTER_CS, IF cleared. */
        return cs | ((u32)ss << 16) | ((read_eflags() & EFLAGS_IF_BIT) ? 0x8000 : 0);
    default:
        return (u32)-1;
    }
}

/* ---- user side (ring 3) ---- */

static inline u32 int80(u32 nr, u32 arg) {
    u32 r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(arg) : "memory");
    return r;
}

static inline u32 sysenter_call(u32 nr, u32 arg) {
    u32 r;
    __asm__ volatile("movl %%esp, %%ecx\n\tmovl $1f, %%edx\n\tsysenter\n1:"
                     : "=a"(r), "+b"(arg) : "a"(nr) : "ecx", "edx", "memory");
    return r;
}

/* Runs one instruction that must fault in ring 3; the kernel resumes after it. */
#define PROBE(insn, ...) \
    __asm__ volatile("movl $2f, fault_resume\n\t" insn "\n2:" __VA_ARGS__)

static void user_check(int ok, const char *what) {
    if (ok) return;
    check_failures++; /* only the kernel reads it, after the user is done */
    serial_puts("FAIL (user): ");
    serial_puts(what);
    serial_puts("\n");
}

static void user_hex(const char *name, u32 value) {
    /* serial_puts runs in ring 3 here: COM1 is open in the I/O bitmap. */
    serial_puts(name);
    serial_puts("=");
    serial_puthex(value);
    serial_puts("\n");
}

static __attribute__((noreturn, used)) void user_main(void) {
    int80(SYS_PUTS, (u32)"[u1] hello from ring 3 through int 0x80\n");
    serial_puts("[u2] and directly on COM1 through the I/O bitmap\n");

    u16 cs, ss, ds, es, fs, gs;
    __asm__ volatile("movw %%cs, %0; movw %%ss, %1; movw %%ds, %2; movw %%es, %3; movw %%fs, %4; movw %%gs, %5"
                     : "=r"(cs), "=r"(ss), "=r"(ds), "=r"(es), "=r"(fs), "=r"(gs));
    user_hex("cs", cs);
    user_hex("ss", ss);
    user_hex("ds", ds);
    user_hex("es (kernel selector, nulled by IRET)", es);
    user_hex("fs (kernel selector, nulled by IRET)", fs);
    user_hex("gs", gs);
    u32 flags = read_eflags();
    user_hex("eflags & (IF|IOPL)", flags & (EFLAGS_IF_BIT | EFLAGS_IOPL_MASK));
    u32 info = int80(SYS_INFO, 0);
    user_hex("int 0x80 sees cpl", info & 0xFFFF);
    user_hex("int 0x80 sees ss", info >> 16);

    serial_puts("[u3] POPF cannot clear IF with IOPL 0\n");
    __asm__ volatile("pushl %0; popfl" : : "r"(flags & ~EFLAGS_IF_BIT) : "memory", "cc");
    user_hex("eflags & IF", read_eflags() & EFLAGS_IF_BIT);

    serial_puts("[u4] privileged instructions\n");
    PROBE("cli", : : : "memory");
    PROBE("hlt", : : : "memory");
    PROBE("movl %%cr0, %%eax", : : : "eax");
    PROBE("lgdt (%%eax)", : : "a"(0));
    PROBE("sysexit", : : : "memory");
    PROBE("wrmsr", : : : "eax", "ecx", "edx");

    serial_puts("[u5] gates and selectors\n");
    PROBE("int $0x81", : : : "memory");
    PROBE("int $3", : : : "memory");
    PROBE("movw %w0, %%ds", : : "r"(SEL_KDATA));
    PROBE("movw %w0, %%ss", : : "r"(SEL_UCODE));
    user_hex("ds still", ({ u16 d; __asm__ volatile("movw %%ds, %0" : "=r"(d)); d; }));

    serial_puts("[u6] the I/O bitmap\n");
    PROBE("inb $0x60, %%al", : : : "eax");
    PROBE("outb %%al, $0xf4", : : "a"(0x55));
    PROBE("inw %%dx, %%ax", : : "d"(0x3FF) : "eax"); /* port 0x3FF open, 0x400 not */
    /* The CPU reads two bitmap bytes for every access (SDM §20.5.2): with the TSS limit on the
     * byte of ports 0x3F8-0x3FF, the next byte is beyond it and even port 0x3F8 faults. */
    u32 iomap = kernel_tss.iomap_base;
    int80(SYS_TSS_LIMIT, iomap + (0x3F8 >> 3));
    PROBE("inb %%dx, %%al", : : "d"(0x3FD) : "eax");
    int80(SYS_TSS_LIMIT, iomap + (0x3F8 >> 3) + 1);
    u8 lsr = inb(0x3FD);
    int80(SYS_TSS_LIMIT, 0);
    user_hex("LSR with the limit one byte further", lsr);
    u8 scratch;
    outb(0x3FF, 0xA5);
    scratch = inb(0x3FF);
    user_hex("COM1 scratch register", scratch);

    serial_puts("[u7] pages\n");
    u32 v = 0;
    PROBE("movl (%1), %0", : "+r"(v) : "r"(&secret_page[0]));
    user_hex("read of a supervisor page left", v);
    user_hex("read-only page", readonly_page[0]);
    PROBE("movl %0, (%1)", : : "r"(0x11111111), "r"(&readonly_page[1]) : "memory");
    user_hex("read-only page after the write", readonly_page[1]);
    PROBE("movl %0, (%1)", : : "r"(0x11111111), "r"(0x8)  : "memory");
    PROBE("movl %0, (%1)", : : "r"(0x22222222), "r"(0x00400000 + 0x10) : "memory");

    serial_puts("[u8] SYSENTER\n");
    user_check(sysenter_call(SYS_PUTS, (u32)"hello through sysenter\n") == 0, "sysenter puts");
    info = sysenter_call(SYS_INFO, 0);
    user_hex("kernel cs", info & 0x7FFF);
    user_hex("kernel ss", info >> 16);
    user_hex("kernel IF", (info >> 15) & 1);
    __asm__ volatile("movw %%cs, %0; movw %%ss, %1" : "=r"(cs), "=r"(ss));
    user_hex("after SYSEXIT cs", cs);
    user_hex("after SYSEXIT ss", ss);
    user_hex("after SYSEXIT IF", (read_eflags() & EFLAGS_IF_BIT) >> 9);

    int80(SYS_SYSENTER_CS, 0);
    PROBE("movl %%esp, %%ecx; movl $2f, %%edx; sysenter", : : : "ecx", "edx", "memory");
    int80(SYS_SYSENTER_CS, SEL_KCODE);

    serial_puts("[u9] IOPL 3\n");
    int80(SYS_IOPL, 3);
    user_hex("eflags & IOPL", read_eflags() & EFLAGS_IOPL_MASK);
    cli();
    user_hex("IF after cli", (read_eflags() & EFLAGS_IF_BIT) >> 9);
    sti();
    outb(0x80, 0x42); /* closed in the bitmap, allowed by IOPL */
    int80(SYS_IOPL, 0);
    PROBE("outb %%al, $0x80", : : "a"(0x43));
    user_hex("eflags & IOPL", read_eflags() & EFLAGS_IOPL_MASK);

    int80(SYS_EXIT, 0);
    for (;;) {
    }
}

void kmain(u32 magic, u32 info) {
    (void)info;
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
    serial_init();
    serial_puts("usermode example\n");
    check(magic == MULTIBOOT_BOOTLOADER_MAGIC, "multiboot magic");

    x86_init();
    x86_set_handler(VEC_GP, user_fault);
    x86_set_handler(VEC_PF, user_fault);
    x86_set_handler(VEC_UD, user_fault);
    x86_set_gate(0x80, 3, 1, syscall_int80);
    x86_set_gate(0x81, 0, 1, syscall_int80);
    for (u16 port = 0x3F8; port <= 0x3FF; port++) x86_io_allow(port, 1);

    /* Paging: the first 4 MiB identity-mapped for the user, except one supervisor page and
     * one read-only page; CR0.WP on, so the kernel cannot write that page either. */
    for (u32 i = 1; i < 1024; i++) page_table[i] = (i * PAGE_SIZE) | PTE_P | PTE_W | PTE_U;
    page_table[PTE_INDEX(secret_page)] &= ~PTE_U;
    page_table[PTE_INDEX(readonly_page)] &= ~PTE_W;
    page_dir[0] = (u32)page_table | PTE_P | PTE_W | PTE_U;
    write_cr3((u32)page_dir);
    write_cr0(read_cr0() | CR0_PG | CR0_WP);

    wrmsr(MSR_SYSENTER_CS, SEL_KCODE, 0);
    wrmsr(MSR_SYSENTER_ESP, (u32)(sysenter_stack + sizeof(sysenter_stack)), 0);
    wrmsr(MSR_SYSENTER_EIP, (u32)sysenter_entry, 0);
    print_hex("IA32_SYSENTER_CS", rdmsr_lo(MSR_SYSENTER_CS));
    print_hex("tss iomap_base", kernel_tss.iomap_base);
    u16 tr;
    __asm__ volatile("str %0" : "=r"(tr));
    print_hex("tr", tr);

    /* ES and FS hold the kernel data selector on the way out: IRET must null them. */
    __asm__ volatile("movw %w0, %%es; movw %w0, %%fs" : : "r"(SEL_KDATA));
    serial_puts("entering ring 3\n");
    x86_enter_user((u32)user_main, (u32)(user_stack + sizeof(user_stack)), 0x202);
}
