#include "x86.h"
#include "serial.h"

struct tss32 kernel_tss __attribute__((aligned(16)));

static u8 kernel_trap_stack[8192] __attribute__((aligned(16)));

/* Writable: LTR marks the TSS descriptor busy. */
static u32 gdt_entries[6 * 2] __attribute__((aligned(8)));
static u32 idt_entries[256 * 2] __attribute__((aligned(8)));
static trap_handler handlers[256];

static void set_descriptor(int index, u32 base, u32 limit, u8 access, u8 flags) {
    gdt_entries[index * 2] = (limit & 0xFFFF) | (base << 16);
    gdt_entries[index * 2 + 1] = ((base >> 16) & 0xFF) | ((u32)access << 8) | (limit & 0xF0000) |
                                 ((u32)(flags & 0xF) << 20) | (base & 0xFF000000);
}

void x86_set_handler(u8 vector, trap_handler handler) { handlers[vector] = handler; }

void x86_set_gate(u8 vector, int dpl, int trap, trap_handler handler) {
    u32 offset = x86_trap_stubs[vector];
    idt_entries[vector * 2] = (offset & 0xFFFF) | ((u32)SEL_KCODE << 16);
    idt_entries[vector * 2 + 1] = (offset & 0xFFFF0000) | 0x8000 | ((u32)(dpl & 3) << 13) | (trap ? 0x0F00 : 0x0E00);
    handlers[vector] = handler;
}

void x86_io_allow(u16 port, int allowed) {
    if (allowed) kernel_tss.iomap[port >> 3] &= (u8)~(1u << (port & 7));
    else kernel_tss.iomap[port >> 3] |= (u8)(1u << (port & 7));
}

void x86_init(void) {
    set_descriptor(0, 0, 0, 0, 0);
    set_descriptor(1, 0, 0xFFFFF, 0x9A, 0xC); /* kernel code */
    set_descriptor(2, 0, 0xFFFFF, 0x92, 0xC); /* kernel data */
    set_descriptor(3, 0, 0xFFFFF, 0xFA, 0xC); /* user code, DPL 3 */
    set_descriptor(4, 0, 0xFFFFF, 0xF2, 0xC); /* user data, DPL 3 */
    /* 32-bit available TSS; the limit covers the bitmap and its terminating byte. */
    set_descriptor(5, (u32)&kernel_tss, sizeof(kernel_tss) - 1, 0x89, 0x0);

    kernel_tss.ss0 = SEL_KDATA;
    kernel_tss.esp0 = (u32)(kernel_trap_stack + sizeof(kernel_trap_stack));
    kernel_tss.iomap_base = (u16)((u32)&kernel_tss.iomap - (u32)&kernel_tss);
    for (u32 i = 0; i < sizeof(kernel_tss.iomap); i++) kernel_tss.iomap[i] = 0xFF;
    kernel_tss.iomap_end = 0xFF;

    struct descriptor_table gdtr = {sizeof(gdt_entries) - 1, (u32)gdt_entries};
    lgdt(&gdtr);
    __asm__ volatile(
        "ljmp %0, $1f\n"
        "1: movw %w1, %%ax\n"
        "movw %%ax, %%ds\n movw %%ax, %%es\n movw %%ax, %%fs\n movw %%ax, %%gs\n movw %%ax, %%ss\n"
        : : "i"(SEL_KCODE), "r"(SEL_KDATA) : "eax", "memory");

    for (int v = 0; v < 32; v++) x86_set_gate((u8)v, 0, 0, 0);
    struct descriptor_table idtr = {sizeof(idt_entries) - 1, (u32)idt_entries};
    __asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
    __asm__ volatile("ltr %w0" : : "r"(SEL_TSS) : "memory");
}

void x86_set_tss_limit(u32 limit) {
    set_descriptor(5, (u32)&kernel_tss, limit, 0x89, 0x0); /* available again: LTR needs it */
    __asm__ volatile("ltr %w0" : : "r"(SEL_TSS) : "memory");
}

void serial_putdec(u32 value) {
    char buf[11];
    int n = 0;
    do {
        buf[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0) serial_putc(buf[--n]);
}

void print_hex(const char *name, u32 value) {
    serial_puts(name);
    serial_puts("=");
    serial_puthex(value);
    serial_puts("\n");
}

/* Called by every stub in x86trap.S. An exception nobody expected ends the run with code 0x7F
 * after printing what is needed to find it (deterministic: no addresses that vary by build
 * are compared, but the vector, error code and CR2 are what matter). */
void x86_trap_dispatch(struct trap_frame *frame) {
    trap_handler h = handlers[frame->vector & 0xFF];
    if (h) {
        h(frame);
        return;
    }
    serial_puts("unexpected trap: vector=");
    serial_puthex(frame->vector);
    serial_puts(" error=");
    serial_puthex(frame->error);
    serial_puts(" eip=");
    serial_puthex(frame->eip);
    serial_puts(" cr2=");
    serial_puthex(read_cr2());
    serial_puts("\n");
    qemu_exit(0x7F);
}
