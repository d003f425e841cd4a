/* Interrupts: an IDT, the 8259A pair remapped to vectors 0x20-0x2F, the 8254 PIT ticking IRQ 0,
 * and the instructions a kernel brackets its critical sections with: CLI/STI (and the STI
 * shadow), PUSHF/POPF (irq_save/irq_restore, nested), the PIC mask, software INT n through
 * interrupt and trap gates, and a few exceptions whose handlers resume after the faulting
 * instruction. Everything printed is a count or a bit the program controls, never a time, so
 * QEMU and `ringshift run` print the same bytes. Exit status: 0 when every check passed. */
#include "idt.h"
#include "io.h"
#include "kprintf.h"
#include "pic.h"
#include "serial.h"

#define EFLAGS_IF 0x00000200u
#define TICKS_TO_COUNT 10
#define PIT_DIVISOR 1193 /* ~1 kHz */
#define SYSCALL_VECTOR 0x80

static volatile u32 ticks;
static volatile u32 isr_seen_in_handler = 0xFFFF;
static volatile int sample_isr;
static int failures;

static void check(int ok, const char *what) {
    kprintf("  %s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok) failures++;
}

static u32 read_eflags(void) {
    u32 f;
    __asm__ volatile("pushfl; popl %0" : "=r"(f));
    return f;
}

static u32 if_bit(void) { return (read_eflags() & EFLAGS_IF) ? 1 : 0; }

static void timer_handler(struct interrupt_frame *frame) {
    (void)frame;
    if (sample_isr) {
        isr_seen_in_handler = pic_read_isr();
        sample_isr = 0;
    }
    ticks = ticks + 1;
    pic_eoi(0);
}

/* Spins with interrupts off (or IRQ 0 masked) until the PIT has raised IRQ 0 at the PIC. */
static u32 wait_irq0_pending(void) {
    u32 polls = 0;
    while ((pic_read_irr() & 1) == 0) polls++;
    return polls;
}

static volatile u32 syscall_if;
static volatile u32 syscall_saved_if;

/* Sleeps until the tick count reaches target, leaving IF = 0, so that what follows (printing
 * included) sees a count that no longer moves: QEMU's PIT follows the host's clock, ours the
 * instruction count. STI's shadow covers HLT, so no wake-up is lost between the two. */
static void wait_ticks(u32 target) {
    while (ticks < target) __asm__ volatile("sti; hlt; cli" ::: "memory");
}

static void syscall_handler(struct interrupt_frame *frame) {
    syscall_if = if_bit();
    syscall_saved_if = (frame->eflags & EFLAGS_IF) ? 1 : 0;
    frame->eax = frame->eax * 3 + 1; /* the "return value" */
}

static volatile u32 last_vector;
static volatile u32 last_error;

/* Exceptions the program provokes: record them and resume after the instruction (2 bytes). */
static void fault_handler(struct interrupt_frame *frame) {
    last_vector = frame->vector;
    last_error = frame->error;
    if (frame->vector != 3) frame->eip += 2; /* #BP is a trap: EIP is already past INT3 */
}

static u32 do_syscall(u8 gate_type, u32 arg) {
    idt_set_gate_type(SYSCALL_VECTOR, gate_type);
    u32 result = arg;
    __asm__ volatile("int $0x80" : "+a"(result) : : "memory");
    return result;
}

void kmain(u32 magic, u32 info) {
    (void)magic;
    (void)info;
    /* No IDT yet: mask both PICs before anything can interrupt. */
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
    serial_init();
    kprintf("interrupts: IDT, 8259A, 8254, CLI/STI/PUSHF/POPF\n");

    idt_init();
    struct descriptor_table idtr;
    __asm__ volatile("sidt %0" : "=m"(idtr));
    check(idtr.base == idt_descriptor.base && idtr.limit == 0x7FF, "sidt returns the loaded IDT");
    kprintf("  idt limit %x\n", idtr.limit);

    pic_remap(PIC_VECTOR_BASE);
    kprintf("  pic mask after remap %04x\n", pic_get_mask());
    idt_set_handler(PIC_VECTOR_BASE + 0, timer_handler);
    idt_set_handler(SYSCALL_VECTOR, syscall_handler);
    idt_set_handler(0, fault_handler);
    idt_set_handler(3, fault_handler);
    idt_set_handler(6, fault_handler);
    idt_set_handler(13, fault_handler);
    pit_init(PIT_DIVISOR);
    pic_set_mask(0xFFFE); /* IRQ 0 only */
    kprintf("  pic mask %04x\n", pic_get_mask());

    /* 1. Count timer ticks, sleeping in HLT between them. */
    kprintf("[1] sti; hlt until %u ticks\n", TICKS_TO_COUNT);
    check(if_bit() == 0, "IF = 0 before sti");
    sti();
    check(if_bit() == 1, "IF = 1 after sti");
    wait_ticks(TICKS_TO_COUNT);
    kprintf("  ticks %u\n", ticks);
    check(ticks == TICKS_TO_COUNT, "counted exactly");
    sti();

    /* 2. A critical section: the interrupt stays pending at the PIC until POPF restores IF,
     *    and is taken right after it (POPF has no interrupt shadow). */
    kprintf("[2] irq_save / irq_restore\n");
    u32 flags = irq_save();
    check((flags & EFLAGS_IF) != 0, "saved flags have IF");
    check(if_bit() == 0, "IF = 0 inside");
    u32 t0 = ticks;
    wait_irq0_pending();
    check(ticks == t0, "no tick delivered while IF = 0");
    irq_restore(flags);
    u32 t1 = ticks;
    check(t1 == t0 + 1, "the pending tick arrives right after popf");
    check(if_bit() == 1, "IF = 1 after popf");

    /* 3. The STI shadow: the instruction after STI runs before the pending interrupt. */
    kprintf("[3] sti shadow\n");
    cli();
    t0 = ticks;
    wait_irq0_pending();
    u32 in_shadow, after;
    __asm__ volatile("sti; movl %2, %0; movl %2, %1" : "=&r"(in_shadow), "=&r"(after) : "m"(ticks) : "memory");
    kprintf("  ticks +%u in the shadow, +%u after it\n", in_shadow - t0, after - t0);
    check(in_shadow == t0 && after == t0 + 1, "one instruction runs in the shadow");

    /* 4. Nested saves: the inner restore must leave interrupts off. */
    kprintf("[4] nested irq_save\n");
    u32 outer = irq_save();
    u32 inner = irq_save();
    kprintf("  outer IF %u, inner IF %u\n", (outer & EFLAGS_IF) ? 1 : 0, (inner & EFLAGS_IF) ? 1 : 0);
    t0 = ticks;
    wait_irq0_pending();
    irq_restore(inner);
    check(if_bit() == 0 && ticks == t0, "inner restore keeps IF = 0");
    irq_restore(outer);
    check(if_bit() == 1 && ticks == t0 + 1, "outer restore sets IF and takes the tick");

    /* 5. Masking at the PIC with IF = 1: the request waits in IRR until unmasked. */
    kprintf("[5] pic mask with IF = 1\n");
    pic_set_mask(0xFFFF);
    t0 = ticks;
    wait_irq0_pending();
    check(ticks == t0 && if_bit() == 1, "masked IRQ 0 not delivered");
    pic_set_mask(0xFFFE);
    __asm__ volatile("nop" ::: "memory");
    check(ticks == t0 + 1, "delivered once unmasked");

    /* 6. The in-service register inside the handler, before its EOI. */
    kprintf("[6] ISR inside the handler\n");
    sample_isr = 1;
    while (sample_isr) hlt();
    kprintf("  isr %04x\n", isr_seen_in_handler);
    check(isr_seen_in_handler == 0x0001, "IRQ 0 in service until EOI");
    check((pic_read_isr() & 1) == 0, "no level in service after EOI");

    /* 7. Software interrupts: an interrupt gate clears IF, a trap gate keeps it. */
    kprintf("[7] int $0x80\n");
    u32 r = do_syscall(GATE_INTERRUPT, 5);
    kprintf("  interrupt gate: IF inside %u, saved IF %u, result %u\n", syscall_if, syscall_saved_if, r);
    check(syscall_if == 0 && syscall_saved_if == 1 && r == 16, "interrupt gate");
    r = do_syscall(GATE_TRAP, 7);
    kprintf("  trap gate: IF inside %u, saved IF %u, result %u\n", syscall_if, syscall_saved_if, r);
    check(syscall_if == 1 && syscall_saved_if == 1 && r == 22, "trap gate");
    check(if_bit() == 1, "IRET restored IF");

    /* 8. Exceptions, resumed after the faulting instruction. */
    kprintf("[8] exceptions\n");
    cli();
    u32 zero = 0, quotient = 100;
    __asm__ volatile("xorl %%edx, %%edx; divl %1" : "+a"(quotient) : "c"(zero) : "edx", "memory");
    kprintf("  divide by zero: vector %u error %x\n", last_vector, last_error);
    check(last_vector == 0 && if_bit() == 0, "#DE");
    __asm__ volatile("ud2" ::: "memory");
    kprintf("  ud2: vector %u error %x\n", last_vector, last_error);
    check(last_vector == 6, "#UD");
    __asm__ volatile("int3" ::: "memory");
    kprintf("  int3: vector %u error %x\n", last_vector, last_error);
    check(last_vector == 3, "#BP");
    __asm__ volatile("movw $0x1234, %%ax; movw %%ax, %%fs; movw %%ds, %%ax; movw %%ax, %%fs" ::: "eax", "memory");
    kprintf("  mov fs, 0x1234: vector %u error %x\n", last_vector, last_error);
    check(last_vector == 13 && last_error == 0x1234, "#GP(selector): TI kept, RPL bits cleared");
    sti();

    /* 9. Keep counting to a fixed total, then stop the timer. */
    kprintf("[9] count to %u\n", 5 * TICKS_TO_COUNT);
    wait_ticks(5 * TICKS_TO_COUNT);
    pic_set_mask(0xFFFF);
    kprintf("  ticks %u\n", ticks);

    if (failures != 0) {
        kprintf("interrupts: %d failures\n", failures);
        qemu_exit(1);
    }
    kprintf("interrupts: all checks passed\n");
    qemu_exit(0);
}
