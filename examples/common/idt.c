#include "idt.h"
#include "kprintf.h"

#define KERNEL_CS 0x08
#define STUB_COUNT 49

struct __attribute__((packed)) gate {
    u16 offset_low;
    u16 selector;
    u8 zero;
    u8 type;
    u16 offset_high;
};

extern const u32 isr_stubs[STUB_COUNT];

static struct gate idt[256] __attribute__((aligned(8)));
static interrupt_handler handlers[256];

const struct descriptor_table idt_descriptor = { sizeof idt - 1, (u32)idt };

static u32 stub_of(u8 vector) {
    if (vector < 48) return isr_stubs[vector];
    if (vector == 0x80) return isr_stubs[48];
    return 0;
}

void idt_set_gate_type(u8 vector, u8 type) {
    u32 stub = stub_of(vector);
    idt[vector].offset_low = (u16)stub;
    idt[vector].offset_high = (u16)(stub >> 16);
    idt[vector].selector = KERNEL_CS;
    idt[vector].zero = 0;
    idt[vector].type = type;
}

void idt_init(void) {
    for (int v = 0; v < 256; v++) {
        if (stub_of((u8)v) != 0) idt_set_gate_type((u8)v, GATE_INTERRUPT);
    }
    __asm__ volatile("lidt %0" : : "m"(idt_descriptor) : "memory");
}

void idt_set_handler(u8 vector, interrupt_handler handler) { handlers[vector] = handler; }

void isr_dispatch(struct interrupt_frame *frame);
void isr_dispatch(struct interrupt_frame *frame) {
    interrupt_handler h = handlers[frame->vector & 0xFF];
    if (h != 0) {
        h(frame);
        return;
    }
    kprintf("unexpected interrupt: vector %u error %x at %x:%x\n", frame->vector, frame->error, frame->cs, frame->eip);
    qemu_exit(IDT_UNEXPECTED_EXIT);
}
