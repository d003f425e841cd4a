/* The smallest useful guest: says hello on COM1 and exits through QEMU's isa-debug-exit.
 * It also runs each kind of sensitive instruction once on a harmless path, so a listing
 * (`ringshift disasm`) and a scan show every class marker, and a monitor that loses one of
 * them makes the output or the exit code differ from a native run. */
#include "io.h"
#include "multiboot.h"
#include "check.h"
#include "serial.h"

extern const struct descriptor_table gdt_descriptor;

#define PIC1_DATA 0x21
#define PIC2_DATA 0xA1
#define CR0_PE 0x00000001u
#define EFLAGS_IF 0x00000200u



void kmain(u32 magic, u32 info) {
    (void)info;
    /* No IDT yet: every external interrupt would triple-fault, so mask both PICs first. */
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);

    serial_init();
    serial_puts("hello from ringshift\n");
    check(magic == MULTIBOOT_BOOTLOADER_MAGIC, "multiboot magic");

    /* A deprivileged guest reads the monitor's GDTR here unless SGDT is emulated. */
    struct descriptor_table current;
    sgdt(&current);
    check(current.base == gdt_descriptor.base && current.limit == gdt_descriptor.limit, "sgdt");
    lgdt(&current);

    u32 cr0 = read_cr0();
    check((cr0 & CR0_PE) != 0, "cr0.pe");
    write_cr0(cr0);

    /* With the PICs masked, IF=1 is harmless; POPF must restore it, and PUSHF must see it. */
    sti();
    u32 flags = irq_save();
    check((flags & EFLAGS_IF) != 0, "pushf sees IF after sti");
    irq_restore(flags);
    flags = irq_save();
    check((flags & EFLAGS_IF) != 0, "popf restored IF");
    cli();

    if (check_failures != 0) {
        serial_puts("failures: ");
        serial_puthex((u32)check_failures);
        serial_puts("\n");
        qemu_exit(1);
    }
    qemu_exit(0);
}
