/* Sensitive: runs each privileged and each sensitive-but-unprivileged instruction (the
 * decoder's classes; shared/reference/sensitive-instructions.md) and prints what it observed:
 * first in ring 0, as the kernel it is, then again from ring 3 (IOPL 0) to show what each one
 * does to a deprivileged caller. A monitor that runs this kernel deprivileged without
 * rewriting it prints different values in the ring-0 part (PUSH CS, the IF that POPF left,
 * LAR on its own descriptors, faults on CLI/HLT/MOV CR...), which is the point.
 * Values that legitimately differ between machines (CPUID identity, TSC, undefined LAR bits,
 * the upper half of a pushed selector) are masked or reduced to a comparison.
 * Exit status: 0 when every check passed, 1 otherwise. */
#include "idt.h"
#include "io.h"
#include "kprintf.h"
#include "pic.h"
#include "serial.h"

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_CS 0x1B
#define USER_DS 0x23
#define TSS_SEL 0x28
#define LDT_SEL 0x30
#define CONFORMING_CS 0x38
#define SMALL_RO_DS 0x40
#define CALL_GATE_SEL 0x48
#define ABSENT_DS 0x50

#define EFLAGS_IF 0x00000200u
#define EFLAGS_IOPL 0x00003000u
#define NO_FAULT 0xFFFFFFFFu

struct __attribute__((packed)) tss {
    u32 link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
    u32 eax, ecx, edx, ebx, esp, ebp, esi, edi;
    u32 es, cs, ss, ds, fs, gs, ldt;
    u16 trap, iomap_base;
};

static u32 gdt[11][2] __attribute__((aligned(8)));
static u32 ldt[2][2] __attribute__((aligned(8)));
static struct tss tss __attribute__((aligned(16)));
const struct descriptor_table gdtr;
const struct descriptor_table gdtr = { sizeof gdt - 1, (u32)gdt };

static u8 interrupt_stack[4096] __attribute__((aligned(16)));
static u8 user_stack[4096] __attribute__((aligned(16)));

void enter_user(void (*fn)(void), u32 stack_top);
void ring0_resume(void);
void far_target(void);

static int failures;

static void check(int ok, const char *what) {
    if (ok) return;
    failures++;
    kprintf("  FAIL: %s\n", what);
}

static void set_descriptor(u32 (*d)[2], u32 base, u32 limit, u8 access, u8 flags) {
    (*d)[0] = (limit & 0xFFFF) | (base << 16);
    (*d)[1] = ((base >> 16) & 0xFF) | ((u32)access << 8) | (limit & 0xF0000) | ((u32)(flags & 0xF) << 20) |
              (base & 0xFF000000);
}

/* ---- Fault catching: TRY(asm) runs asm; a fault resumes after it and records what it was. ---- */
static volatile u32 resume_eip;
static volatile u32 fault_vector;
static volatile u32 fault_error;

#define TRY(insn)                                                                       \
    do {                                                                                \
        fault_vector = NO_FAULT;                                                        \
        __asm__ volatile("movl $1f, %[resume]\n\t" insn "\n1:"                          \
                         : [resume] "=m"(resume_eip) : : "eax", "ecx", "edx", "memory", "cc"); \
        resume_eip = 0;                                                                 \
    } while (0)

static void fault_handler(struct interrupt_frame *frame) {
    if (resume_eip == 0) {
        kprintf("unexpected fault: vector %u error %x at %x:%x\n", frame->vector, frame->error, frame->cs, frame->eip);
        qemu_exit(IDT_UNEXPECTED_EXIT);
    }
    fault_vector = frame->vector;
    fault_error = frame->error;
    frame->eip = resume_eip;
    resume_eip = 0;
}

/* Describes the outcome of the last TRY: "no fault" or "#GP(err)" and so on. */
static const char *const names[] = { "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
                                     "#DF", "?", "#TS", "#NP", "#SS", "#GP", "#PF" };
static void print_fault(void) {
    if (fault_vector == NO_FAULT) kprintf("no fault");
    else if (fault_vector < 15) kprintf("%s(%x)", names[fault_vector], fault_error);
    else kprintf("vector %u (%x)", fault_vector, fault_error);
}

/* ---- Observations, used in both rings ---- */
static u32 read_eflags(void) {
    u32 f;
    __asm__ volatile("pushfl; popl %0" : "=r"(f));
    return f;
}

static void show_flags(const char *what, u32 f) {
    kprintf("  %s: IF %u IOPL %u\n", what, (f & EFLAGS_IF) ? 1 : 0, (f & EFLAGS_IOPL) >> 12);
}

/* LAR/LSL/VERR/VERW on one selector. LAR bits 19:16 are undefined (SDM: "00FxFF00H"). */
static void probe_selector(u16 sel) {
    u32 rights = 0, limit = 0;
    u8 lar_ok, lsl_ok, r_ok, w_ok;
    __asm__ volatile("larl %2, %0; setz %1" : "+r"(rights), "=q"(lar_ok) : "r"((u32)sel) : "cc");
    __asm__ volatile("lsll %2, %0; setz %1" : "+r"(limit), "=q"(lsl_ok) : "r"((u32)sel) : "cc");
    __asm__ volatile("verr %1; setz %0" : "=q"(r_ok) : "r"(sel) : "cc");
    __asm__ volatile("verw %1; setz %0" : "=q"(w_ok) : "r"(sel) : "cc");
    kprintf("  %04x: lar ", sel);
    if (lar_ok) kprintf("%08x", rights & 0x00F0FF00);
    else kprintf("--------");
    kprintf(" lsl ");
    if (lsl_ok) kprintf("%08x", limit);
    else kprintf("--------");
    kprintf(" verr %u verw %u\n", r_ok, w_ok);
}

static const u16 probed[] = { 0x0000, KERNEL_CS, KERNEL_DS, USER_CS, USER_DS, TSS_SEL, LDT_SEL, CONFORMING_CS,
                              SMALL_RO_DS, CALL_GATE_SEL, ABSENT_DS, 0x0004 | 3, 0x000C, 0x0098, 0xFFF8 };

/* ---- Ring 3 ---- */
struct user_results {
    u32 cs, ss, ds, pushed_cs, pushed_ss;
    u32 flags_before, flags_after_popf;
    u32 sgdt_base, sidt_base;
    u16 sgdt_limit, sidt_limit;
    u32 smsw, str, sldt;
    u32 fault_v[13], fault_e[13];
    u32 far_cs_seen, far_cs_pushed;
    u32 probes_done;
};
static struct user_results user;
static const char *const user_tries[13] = { "cli", "sti", "hlt", "in al, 0x80", "out 0x80, al", "mov eax, cr0",
                                           "lgdt", "ltr", "int 0x21 (DPL 0 gate)", "jmp far 0x08:x",
                                           "mov ds, 0x10", "wrmsr", "mov eax, dr7" };

static void record(int i) {
    user.fault_v[i] = fault_vector;
    user.fault_e[i] = fault_error;
}

static void user_main(void) {
    struct descriptor_table t;
    __asm__ volatile("movl %%cs, %0" : "=r"(user.cs));
    __asm__ volatile("movl %%ss, %0" : "=r"(user.ss));
    __asm__ volatile("movl %%ds, %0" : "=r"(user.ds));
    __asm__ volatile("pushl %%cs; popl %0" : "=r"(user.pushed_cs));
    __asm__ volatile("pushl %%ss; popl %0" : "=r"(user.pushed_ss));
    user.flags_before = read_eflags();
    /* POPF asking for IF = 1 and IOPL = 3: silently ignored at CPL 3 with IOPL 0. */
    __asm__ volatile("pushl %1; popfl; pushfl; popl %0" : "=r"(user.flags_after_popf) : "r"(user.flags_before | EFLAGS_IF | EFLAGS_IOPL) : "cc");
    __asm__ volatile("sgdt %0" : "=m"(t));
    user.sgdt_base = t.base;
    user.sgdt_limit = t.limit;
    __asm__ volatile("sidt %0" : "=m"(t));
    user.sidt_base = t.base;
    user.sidt_limit = t.limit;
    __asm__ volatile("smsw %0" : "=r"(user.smsw));
    __asm__ volatile("str %0" : "=r"(user.str));
    __asm__ volatile("sldt %0" : "=r"(user.sldt));
    TRY("cli"); record(0);
    TRY("sti"); record(1);
    TRY("hlt"); record(2);
    TRY("inb $0x80, %%al"); record(3);
    TRY("outb %%al, $0x80"); record(4);
    TRY("movl %%cr0, %%eax"); record(5);
    TRY("lgdt gdtr"); record(6);
    TRY("movw $0x28, %%ax; ltr %%ax"); record(7);
    TRY("int $0x21"); record(8);
    TRY("ljmp $0x08, $2f\n2:"); record(9);
    TRY("movw $0x10, %%ax; movw %%ax, %%ds"); record(10);
    TRY("movl $0x174, %%ecx; xorl %%edx, %%edx; xorl %%eax, %%eax; wrmsr"); record(11);
    TRY("movl %%dr7, %%eax"); record(12);
    /* A far call to a conforming DPL-0 segment: allowed, but CPL stays 3. */
    u32 seen, pushed;
    __asm__ volatile("pushl $0; lcall $0x38, $far_target" : "=a"(seen), "=d"(pushed) : : "memory");
    user.far_cs_seen = seen;
    user.far_cs_pushed = pushed;
    __asm__ volatile("int $0x80");
    for (;;) {
    }
}

static void return_to_kernel(struct interrupt_frame *frame) {
    if ((frame->cs & 3) != 3) {
        kprintf("  int 0x80 from ring 0: cs %x, eflags IF %u\n", frame->cs, (frame->eflags & EFLAGS_IF) ? 1 : 0);
        return;
    }
    frame->cs = KERNEL_CS;
    frame->eip = (u32)ring0_resume;
    frame->eflags &= ~EFLAGS_IF;
}

static volatile u32 ticks;
static void timer_handler(struct interrupt_frame *frame) {
    (void)frame;
    ticks = ticks + 1;
    pic_eoi(0);
}

/* Every code and data descriptor has its accessed bit set already: QEMU sets it only when
 * MOV/POP loads a data segment, not when a far JMP/CALL/IRET loads CS (the SDM says every
 * load sets it), so LAR would otherwise see different rights. */
static void build_tables(void) {
    set_descriptor(&gdt[1], 0, 0xFFFFF, 0x9B, 0xC);  /* 0x08 kernel code */
    set_descriptor(&gdt[2], 0, 0xFFFFF, 0x93, 0xC);  /* 0x10 kernel data */
    set_descriptor(&gdt[3], 0, 0xFFFFF, 0xFB, 0xC);  /* 0x18 user code, DPL 3 */
    set_descriptor(&gdt[4], 0, 0xFFFFF, 0xF3, 0xC);  /* 0x20 user data, DPL 3 */
    set_descriptor(&gdt[5], (u32)&tss, sizeof tss - 1, 0x89, 0x0); /* 0x28 32-bit TSS */
    set_descriptor(&gdt[6], (u32)ldt, sizeof ldt - 1, 0x82, 0x0);  /* 0x30 LDT */
    set_descriptor(&gdt[7], 0, 0xFFFFF, 0x9F, 0xC);  /* 0x38 conforming code, DPL 0 */
    set_descriptor(&gdt[8], 0, 0x00FFF, 0x91, 0x4);  /* 0x40 read-only data, 4 KiB, byte granular */
    /* 0x48: a 32-bit call gate, DPL 3, to 0x08:far_target (never called: LAR/LSL/VERR see it). */
    gdt[9][0] = ((u32)far_target & 0xFFFF) | (KERNEL_CS << 16);
    gdt[9][1] = ((u32)far_target & 0xFFFF0000) | 0xEC00 | 1;
    set_descriptor(&gdt[10], 0, 0xFFFFF, 0x13, 0xC); /* 0x50 data, not present */
    set_descriptor(&ldt[0], 0, 0xFFFFF, 0xF3, 0xC);  /* LDT 0x04: data, DPL 3 */
    set_descriptor(&ldt[1], 0, 0xFFFFF, 0x99, 0xC);  /* LDT 0x0C: execute-only code, DPL 0 */
    tss.ss0 = KERNEL_DS;
    tss.esp0 = (u32)(interrupt_stack + sizeof interrupt_stack);
    tss.iomap_base = sizeof tss; /* no I/O bitmap: every port is denied above IOPL */
}

void kmain(u32 magic, u32 info) {
    (void)magic;
    (void)info;
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
    serial_init();
    kprintf("sensitive: privileged and sensitive instructions, ring 0 then ring 3\n");

    build_tables();
    idt_init();
    for (int v = 0; v < 32; v++) idt_set_handler((u8)v, fault_handler);
    idt_set_handler(0x80, return_to_kernel);
    idt_set_gate_type(0x80, GATE_TRAP | GATE_DPL3);
    idt_set_handler(PIC_VECTOR_BASE, timer_handler);

    kprintf("[ring 0: descriptor tables]\n");
    __asm__ volatile("lgdt %0" : : "m"(gdtr) : "memory");
    __asm__ volatile("ljmp $0x08, $1f\n1:\n\t"
                     "movw $0x10, %%ax; movw %%ax, %%ds; movw %%ax, %%es; movw %%ax, %%ss; movw %%ax, %%fs; movw %%ax, %%gs"
                     ::: "eax", "memory");
    struct descriptor_table t;
    __asm__ volatile("sgdt %0" : "=m"(t));
    kprintf("  sgdt: base %s, limit %x\n", t.base == gdtr.base ? "= gdt" : "OTHER", t.limit);
    check(t.base == gdtr.base && t.limit == gdtr.limit, "sgdt");
    __asm__ volatile("sidt %0" : "=m"(t));
    kprintf("  sidt: base %s, limit %x\n", t.base == idt_descriptor.base ? "= idt" : "OTHER", t.limit);
    check(t.base == idt_descriptor.base, "sidt");
    __asm__ volatile("movw %0, %%ax; lldt %%ax" : : "i"(LDT_SEL) : "eax");
    __asm__ volatile("movw %0, %%ax; ltr %%ax" : : "i"(TSS_SEL) : "eax");
    u32 v32 = 0xFFFFFFFF;
    __asm__ volatile("str %0" : "+r"(v32));
    kprintf("  str (r32): %08x\n", v32);
    check(v32 == TSS_SEL, "str");
    u16 v16 = 0xFFFF;
    __asm__ volatile("sldt %0" : "=m"(v16));
    kprintf("  sldt (m16): %04x\n", v16);
    check(v16 == LDT_SEL, "sldt");
    u16 arpl_sel = KERNEL_DS;
    u8 zf;
    __asm__ volatile("arpl %2, %0; setz %1" : "+r"(arpl_sel), "=q"(zf) : "r"((u16)USER_DS) : "cc");
    kprintf("  arpl 0x10, 0x23: %04x zf %u\n", arpl_sel, zf);

    kprintf("[ring 0: control registers]\n");
    u32 cr0;
    __asm__ volatile("movl %%cr0, %0" : "=r"(cr0));
    /* QEMU's multiboot loader leaves CD and NW set; start from a known CR0. */
    cr0 &= ~0x60000000u;
    cr0 &= ~0x0000000Eu; /* MP, EM, TS */
    __asm__ volatile("movl %0, %%cr0" : : "r"(cr0));
    u32 smsw32 = 0;
    u16 smsw16 = 0;
    __asm__ volatile("smsw %0" : "=r"(smsw32));
    __asm__ volatile("smsw %0" : "=m"(smsw16));
    kprintf("  cr0 %08x, smsw r32 %08x, smsw m16 %04x\n", cr0, smsw32, smsw16);
    check(smsw32 == cr0 && smsw16 == (cr0 & 0xFFFF), "smsw");
    __asm__ volatile("movl %0, %%cr0" : : "r"(cr0 | 8));
    u32 before = 0, after = 0;
    __asm__ volatile("smsw %0; clts; smsw %1" : "=r"(before), "=r"(after));
    kprintf("  clts: ts %u -> %u\n", (before >> 3) & 1, (after >> 3) & 1);
    check((before & 8) && !(after & 8), "clts");
    __asm__ volatile("lmsw %1; smsw %0" : "=r"(after) : "r"((u16)(cr0 | 2)));
    kprintf("  lmsw mp: smsw %04x\n", after & 0xFFFF);
    check((after & 2) != 0, "lmsw");
    __asm__ volatile("lmsw %1; smsw %0" : "=r"(after) : "r"((u16)(cr0 & ~1u)));
    kprintf("  lmsw cannot clear pe: smsw %04x\n", after & 0xFFFF);
    check((after & 1) != 0, "lmsw keeps PE");
    __asm__ volatile("movl %0, %%cr0" : : "r"(cr0));
    u32 cr4;
    __asm__ volatile("movl %%cr4, %0" : "=r"(cr4));
    __asm__ volatile("movl %0, %%cr4" : : "r"(cr4 | 0x4)); /* TSD */
    __asm__ volatile("movl %%cr4, %0" : "=r"(v32));
    kprintf("  cr4.tsd set: %u\n", (v32 >> 2) & 1);
    __asm__ volatile("movl %0, %%cr4" : : "r"(cr4));
    __asm__ volatile("invlpg (%0); wbinvd; invd" : : "r"(0x100000) : "memory");
    kprintf("  invlpg, wbinvd, invd: done\n");
    u32 dr0, dr6, dr7;
    __asm__ volatile("movl %3, %%dr0; movl %%dr0, %0; movl %%dr6, %1; movl %%dr7, %2"
                     : "=&r"(dr0), "=&r"(dr6), "=&r"(dr7) : "r"(0x00123450));
    kprintf("  mov dr0/dr6/dr7: %08x %08x %08x\n", dr0, dr6, dr7);
    u32 lo = 0, hi = 0;
    __asm__ volatile("wrmsr" : : "c"(0x174), "a"(KERNEL_CS), "d"(0));
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0x174));
    kprintf("  wrmsr/rdmsr sysenter_cs: %x:%08x\n", hi, lo);
    check(lo == KERNEL_CS && hi == 0, "rdmsr");
    u32 t0lo, t0hi, t1lo, t1hi;
    __asm__ volatile("rdtsc" : "=a"(t0lo), "=d"(t0hi));
    __asm__ volatile("rdtsc" : "=a"(t1lo), "=d"(t1hi));
    int monotonic = t1hi > t0hi || (t1hi == t0hi && t1lo > t0lo);
    kprintf("  rdtsc: increases %u\n", monotonic);
    check(monotonic, "rdtsc");
    u32 a = 1, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    kprintf("  cpuid 1: edx.tsc %u edx.msr %u (the rest differs between machines)\n", (d >> 4) & 1, (d >> 5) & 1);

    kprintf("[ring 0: segment registers]\n");
    u32 cs, ss, ds, pcs = 0xAAAAAAAA, pss = 0xAAAAAAAA, pds = 0xAAAAAAAA;
    __asm__ volatile("movl %%cs, %0" : "=r"(cs));
    __asm__ volatile("movl %%ss, %0" : "=r"(ss));
    __asm__ volatile("movl %%ds, %0" : "=r"(ds));
    __asm__ volatile("pushl %%cs; popl %0" : "+r"(pcs));
    __asm__ volatile("pushl %%ss; popl %0" : "+r"(pss));
    __asm__ volatile("pushl %%ds; popl %0" : "+r"(pds));
    /* PUSH Sreg with a 32-bit operand: the upper half is zero on some processors and left
     * unchanged on others (SDM PUSH), so only the selector is printed. */
    kprintf("  mov r32, cs/ss/ds: %08x %08x %08x\n", cs, ss, ds);
    kprintf("  push cs/ss/ds (low 16 bits): %04x %04x %04x\n", pcs & 0xFFFF, pss & 0xFFFF, pds & 0xFFFF);
    check(cs == KERNEL_CS && ss == KERNEL_DS && (pcs & 0xFFFF) == KERNEL_CS, "cs/ss");
    __asm__ volatile("movw %1, %%ax; movw %%ax, %%es; movl %%es, %0; movw %%ss, %%ax; movw %%ax, %%es"
                     : "=r"(v32) : "i"(USER_DS) : "eax");
    kprintf("  mov es, 0x23 at cpl 0: es %04x\n", v32);
    __asm__ volatile("pushl %1; popl %%es; movl %%es, %0; pushl %%ss; popl %%es" : "=r"(v32) : "i"(0x04 | 3) : "memory");
    kprintf("  pop es, 0x07 (ldt): es %04x\n", v32);
    TRY("movw $0x0C, %%ax; movw %%ax, %%es");
    kprintf("  mov es, 0x0c (ldt code, not readable): "); print_fault(); kprintf("\n");
    TRY("movw $0x50, %%ax; movw %%ax, %%es");
    kprintf("  mov es, 0x50 (not present): "); print_fault(); kprintf("\n");
    TRY("movw $0x10, %%ax; movw %%ax, %%ss; movw $0x23, %%ax; movw %%ax, %%ss");
    kprintf("  mov ss, 0x23 at cpl 0: "); print_fault(); kprintf("\n");
    __asm__ volatile("movw $0x10, %%ax; movw %%ax, %%es" ::: "eax");

    kprintf("[ring 0: lar lsl verr verw]\n");
    for (unsigned i = 0; i < sizeof probed / sizeof probed[0]; i++) probe_selector(probed[i]);

    kprintf("[ring 0: flags]\n");
    cli();
    show_flags("after cli", read_eflags());
    sti();
    show_flags("after sti", read_eflags());
    u32 f = read_eflags();
    __asm__ volatile("pushl %0; popfl" : : "r"(f & ~EFLAGS_IF) : "cc");
    show_flags("after popf IF=0", read_eflags());
    __asm__ volatile("pushl %0; popfl" : : "r"(f | EFLAGS_IOPL) : "cc");
    show_flags("after popf IF=1 IOPL=3", read_eflags());
    __asm__ volatile("pushl %0; popfl" : : "r"(f & ~(EFLAGS_IF | EFLAGS_IOPL)) : "cc");
    show_flags("after popf IF=0 IOPL=0", read_eflags());

    kprintf("[ring 0: control transfers]\n");
    u32 seen, pushed;
    __asm__ volatile("pushl $0; lcall $0x08, $far_target" : "=a"(seen), "=d"(pushed) : : "memory");
    kprintf("  call far 0x08: callee cs %04x, pushed cs %04x\n", seen, pushed);
    __asm__ volatile("pushl $0; lcall $0x38, $far_target" : "=a"(seen), "=d"(pushed) : : "memory");
    kprintf("  call far 0x38 (conforming): callee cs %04x, pushed cs %04x\n", seen, pushed);
    struct __attribute__((packed)) { u32 off; u16 sel; } fp = { (u32)far_target, KERNEL_CS };
    __asm__ volatile("pushl $0; lcall *(%2)" : "=a"(seen), "=d"(pushed) : "r"(&fp) : "memory");
    kprintf("  call far [m16:32]: callee cs %04x, pushed cs %04x\n", seen, pushed);
    __asm__ volatile("ljmp $0x38, $1f\n1:\n\tmovl %%cs, %0\n\tljmp $0x08, $2f\n2:" : "=r"(v32));
    kprintf("  jmp far 0x38 then back: cs was %04x\n", v32);
    struct __attribute__((packed)) { u32 off; u16 sel; } jp = { 0, KERNEL_CS };
    jp.off = 0;
    __asm__ volatile("movl $1f, (%1)\n\tljmp *(%1)\n1:\n\tmovl %%cs, %0" : "=&r"(v32) : "r"(&jp) : "memory");
    kprintf("  jmp far [m16:32]: cs %04x\n", v32);
    TRY("ljmp $0x10, $2f\n2:");
    kprintf("  jmp far 0x10 (data): "); print_fault(); kprintf("\n");
    kprintf("  jmp/call far through the call gate 0x48: not run (ringshift does not model call gates yet)\n");
    sti();
    u32 r = 0;
    __asm__ volatile("int $0x80" : "+a"(r) : : "memory");
    pic_remap(PIC_VECTOR_BASE);
    pit_init(1193);
    pic_set_mask(0xFFFE);
    __asm__ volatile("sti; hlt; cli" ::: "memory");
    pic_set_mask(0xFFFF);
    kprintf("  hlt woke on irq 0: %u\n", ticks >= 1);
    check(ticks >= 1, "hlt");

    kprintf("[ring 3, IOPL 0]\n");
    enter_user(user_main, (u32)(user_stack + sizeof user_stack));
    kprintf("  back in ring 0\n");
    kprintf("  mov r32, cs/ss/ds: %08x %08x %08x\n", user.cs, user.ss, user.ds);
    kprintf("  push cs/ss (low 16 bits): %04x %04x\n", user.pushed_cs & 0xFFFF, user.pushed_ss & 0xFFFF);
    show_flags("pushf", user.flags_before);
    show_flags("after popf IF=1 IOPL=3", user.flags_after_popf);
    kprintf("  sgdt: base %s, limit %x\n", user.sgdt_base == gdtr.base ? "= gdt" : "OTHER", user.sgdt_limit);
    kprintf("  sidt: base %s, limit %x\n", user.sidt_base == idt_descriptor.base ? "= idt" : "OTHER", user.sidt_limit);
    kprintf("  smsw %08x str %08x sldt %08x\n", user.smsw, user.str, user.sldt);
    for (int i = 0; i < 13; i++) {
        fault_vector = user.fault_v[i];
        fault_error = user.fault_e[i];
        kprintf("  %s: ", user_tries[i]);
        print_fault();
        kprintf("\n");
    }
    kprintf("  call far 0x38 (conforming): callee cs %04x, pushed cs %04x\n", user.far_cs_seen, user.far_cs_pushed);
    check(user.cs == USER_CS && (user.flags_after_popf & (EFLAGS_IF | EFLAGS_IOPL)) == 0, "ring 3");
    check(user.fault_v[0] == 13 && user.fault_v[2] == 13 && user.fault_v[3] == 13, "ring 3 faults");

    if (failures != 0) {
        kprintf("sensitive: %d failures\n", failures);
        qemu_exit(1);
    }
    kprintf("sensitive: done\n");
    qemu_exit(0);
}
