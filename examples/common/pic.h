/* The 8259A pair and the 8254 PIT channel 0, as a PC kernel sets them up. */
#ifndef RINGSHIFT_PIC_H
#define RINGSHIFT_PIC_H

#include "io.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1
#define PIC_EOI 0x20
#define PIC_VECTOR_BASE 0x20 /* IRQ 0-7 -> 0x20-0x27, IRQ 8-15 -> 0x28-0x2F */

#define PIT_HZ 1193182u

/* ICW1-ICW4: master at vector base, slave at base + 8, cascade on IRQ 2, 8086 mode;
 * then every IRQ is masked. */
void pic_remap(u8 base);
void pic_set_mask(u16 mask);     /* bit n masks IRQ n */
u16 pic_get_mask(void);
void pic_eoi(u8 irq);
u16 pic_read_irr(void);          /* OCW3: pending requests of both chips */
u16 pic_read_isr(void);          /* OCW3: in-service levels of both chips */

/* Channel 0, mode 2 (rate generator), binary, lobyte/hibyte: IRQ 0 every divisor ticks. */
void pit_init(u16 divisor);

#endif
