/* hello (examples/hello) ported to Xen's 32-bit PAE PV ABI: the same line on the console and
 * the same exit status, with each privileged operation of the native version replaced by its
 * hypercall, as a XenoLinux port does:
 *   multiboot magic in EAX   -> start_info.magic "xen-3.0-x86_32p" (ESI on entry)
 *   COM1                     -> console_io / the PV console ring (pv-common/console.c)
 *   LGDT (and SGDT)          -> set_gdt with the frame of a GDT page mapped read-only; Xen has
 *                               no "get", so the kernel remembers what it loaded (Linux too)
 *   MOV to CR0 (TS)          -> fpu_taskswitch
 *   STI / PUSHF / POPF       -> evtchn_upcall_mask in vcpu_info (the virtual IF)
 *   port 0xF4                -> SCHEDOP_shutdown (pv-common/README.md) */
#include "check.h"
#include "pv.h"

/* A GDT page of our own: null, and a flat code and data segment with DPL 1 (Xen refuses DPL 0
 * descriptors for a ring-1 kernel). Xen requires every page of a GDT to be read-only to us. */
static u32 gdt_page[1024] __attribute__((aligned(4096))) = {
    0, 0,
    0x0000FFFF, 0x00CFBA00, /* code, base 0, limit 4 GiB, DPL 1 */
    0x0000FFFF, 0x00CFB200, /* data, base 0, limit 4 GiB, DPL 1 */
};
#define GDT_ENTRIES 3

static int str_starts(const char *s, const char *prefix) {
    for (; *prefix != '\0'; s++, prefix++) if (*s != *prefix) return 0;
    return 1;
}

void kmain(struct start_info *si) {
    serial_puts("hello from ringshift\n");
    check(str_starts(si->magic, "xen-3.0-x86_32p"), "start_info magic");

    long rc = HYPERVISOR_update_va_mapping((u32)gdt_page, mfn_pte(virt_to_mfn(gdt_page), _PAGE_PRESENT | _PAGE_ACCESSED),
                                           UVMF_INVLPG);
    check(rc == 0, "gdt page read-only");
    u32 frames[1] = {virt_to_mfn(gdt_page)};
    check(HYPERVISOR_set_gdt(frames, GDT_ENTRIES) == 0, "set_gdt");

    check(HYPERVISOR_fpu_taskswitch(0) == 0, "fpu_taskswitch");

    pv_sti();
    u32 flags = pv_irq_save();
    check((flags & PV_EFLAGS_IF) != 0, "irq_save sees events enabled");
    pv_irq_restore(flags);
    flags = pv_irq_save();
    check((flags & PV_EFLAGS_IF) != 0, "irq_restore re-enabled events");
    pv_cli();

    if (check_failures != 0) {
        serial_puts("failures: ");
        serial_puthex((u32)check_failures);
        serial_puts("\n");
        pv_exit(1);
    }
    pv_exit(0);
}
