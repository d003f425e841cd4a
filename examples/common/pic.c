#include "pic.h"

void pic_remap(u8 base) {
    outb(PIC1_CMD, 0x11); /* ICW1: edge, cascade, ICW4 needed */
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, base);
    outb(PIC2_DATA, (u8)(base + 8));
    outb(PIC1_DATA, 0x04); /* ICW3: slave on IRQ 2 */
    outb(PIC2_DATA, 0x02); /* ICW3: slave identity 2 */
    outb(PIC1_DATA, 0x01); /* ICW4: 8086 mode, normal EOI */
    outb(PIC2_DATA, 0x01);
    pic_set_mask(0xFFFF);
}

void pic_set_mask(u16 mask) {
    outb(PIC1_DATA, (u8)mask);
    outb(PIC2_DATA, (u8)(mask >> 8));
}

u16 pic_get_mask(void) { return (u16)(inb(PIC1_DATA) | (inb(PIC2_DATA) << 8)); }

void pic_eoi(u8 irq) {
    if (irq >= 8) outb(PIC2_CMD, PIC_EOI);
    outb(PIC1_CMD, PIC_EOI);
}

static u16 read_ocw3(u8 ocw3) {
    outb(PIC1_CMD, ocw3);
    outb(PIC2_CMD, ocw3);
    return (u16)(inb(PIC1_CMD) | (inb(PIC2_CMD) << 8));
}

u16 pic_read_irr(void) { return read_ocw3(0x0A); }
u16 pic_read_isr(void) { return read_ocw3(0x0B); }

void pit_init(u16 divisor) {
    outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2, binary */
    outb(0x40, (u8)divisor);
    outb(0x40, (u8)(divisor >> 8));
}
