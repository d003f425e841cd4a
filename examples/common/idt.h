/* A 256-entry IDT whose vectors 0-47 and 0x80 go through common stubs (isr.S) to one C
 * dispatcher that calls the handler registered for the vector. A handler gets the saved
 * state and may change it (EIP to skip a faulting instruction, EFLAGS, CS...). Vectors with
 * no handler print what happened and exit through port 0xF4 with status IDT_UNEXPECTED_EXIT. */
#ifndef RINGSHIFT_IDT_H
#define RINGSHIFT_IDT_H

#include "io.h"

#define IDT_UNEXPECTED_EXIT 0x7F

#define GATE_INTERRUPT 0x8E /* present, DPL 0, 32-bit interrupt gate (clears IF) */
#define GATE_TRAP 0x8F      /* present, DPL 0, 32-bit trap gate (keeps IF) */
#define GATE_DPL3 0x60      /* or this in: callable by INT n from ring 3 */

struct interrupt_frame {
    u32 gs, fs, es, ds;
    u32 edi, esi, ebp, esp_unused, ebx, edx, ecx, eax;
    u32 vector, error;
    u32 eip, cs, eflags;
    u32 user_esp, user_ss; /* only when the interrupt came from an outer ring */
};

typedef void (*interrupt_handler)(struct interrupt_frame *frame);

/* Fills the IDT (every stubbed vector: interrupt gate, DPL 0) and loads IDTR. */
void idt_init(void);
void idt_set_handler(u8 vector, interrupt_handler handler);
/* type: GATE_INTERRUPT or GATE_TRAP, optionally | GATE_DPL3. */
void idt_set_gate_type(u8 vector, u8 type);

extern const struct descriptor_table idt_descriptor;

#endif
