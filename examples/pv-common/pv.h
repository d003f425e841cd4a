/* The small PV kernel library every PV example links (pv.c, console.c, entry.S): what a
 * XenoLinux port keeps of the native common/ code, with each privileged operation replaced by
 * its hypercall. Native -> PV:
 *   serial (COM1 ports)         -> console_io (initial domain) or the PV console ring + evtchn
 *   lidt / IDT gates            -> set_trap_table (pv_set_trap)
 *   cli / sti / pushf+popf IF   -> vcpu_info.evtchn_upcall_mask (pv_cli, pv_sti, pv_irq_save)
 *   sti; hlt                    -> SCHEDOP_block
 *   PIC + PIT                   -> event channels: VIRQ_TIMER + set_timer_op
 *   page-table stores, CR3, INVLPG -> mmu_update, update_va_mapping, mmuext_op
 *   TSS.ESP0                    -> stack_switch
 *   iret                        -> the iret hypercall (slot 23 of the hypercall page)
 *   port 0xF4 (isa-debug-exit)  -> SCHEDOP_shutdown (README.md: how the status maps) */
#ifndef RINGSHIFT_PV_H
#define RINGSHIFT_PV_H

#include "hypercall.h"

extern struct start_info *xen_start_info;
extern struct shared_info *HYPERVISOR_shared_info;
#define pv_vcpu (&HYPERVISOR_shared_info->vcpu_info[0])

/* The example's main, called by pv_start once the console works. */
void kmain(struct start_info *si);

/* ---- console (console.c): the native serial API, same bytes ---- */
void serial_putc(char c);
void serial_puts(const char *s);     /* '\n' becomes "\r\n", as on the native COM1 */
void serial_puthex(u32 value);
void serial_putdec(u32 value);
void print_hex(const char *name, u32 value);
void console_flush(void);
void console_init(void);
/* check() and check_failures (common/check.h) are defined in console.c too. */

/* Ends the run: code 0 -> SHUTDOWN_poweroff (status 1, as native), anything else ->
 * SHUTDOWN_crash (status 7); README.md. */
void __attribute__((noreturn)) pv_exit(u32 code);

/* ---- the virtual IF: evtchn_upcall_mask (xen.h: vcpu_info) ---- */
#define barrier() __asm__ volatile("" ::: "memory")
static inline void pv_cli(void) {
    pv_vcpu->evtchn_upcall_mask = 1;
    barrier();
}
/* Unmasking is a plain store, so an event that became pending while masked is not delivered
 * by it: like Linux's xen_irq_enable, force a callback with a harmless hypercall; Xen delivers
 * pending events on every return to the guest. */
static inline void pv_force_callback(void) { (void)HYPERVISOR_xen_version(XENVER_version, 0); }
static inline void pv_sti(void) {
    barrier();
    pv_vcpu->evtchn_upcall_mask = 0;
    barrier();
    if (pv_vcpu->evtchn_upcall_pending) pv_force_callback();
}
/* EFLAGS-style: returns EFLAGS_IF set when events were enabled, as the native irq_save. */
#define PV_EFLAGS_IF 0x200u
static inline u32 pv_irq_save(void) {
    u32 flags = pv_vcpu->evtchn_upcall_mask ? 0 : PV_EFLAGS_IF;
    pv_cli();
    return flags;
}
static inline void pv_irq_restore(u32 flags) {
    if (flags & PV_EFLAGS_IF) pv_sti();
    else pv_cli();
}
static inline u32 pv_if_bit(void) { return pv_vcpu->evtchn_upcall_mask ? 0 : 1; }

/* ---- traps (pv.c, entry.S) ---- */
/* What entry.S pushes, lowest address first, over Xen's bounce frame ([error], EIP, CS with the
 * saved upcall mask in bits 23:16, EFLAGS, and ESP, SS from ring 3): the same layout as the
 * native struct trap_frame (common/x86.h). vector is PV_EVENT_VECTOR for the event callback. */
struct pv_frame {
    u32 gs, fs, es, ds;
    u32 edi, esi, ebp, esp_pusha, ebx, edx, ecx, eax;
    u32 vector, error;
    u32 eip, cs, eflags;
    u32 user_esp, user_ss;
};
#define PV_EVENT_VECTOR 0xFFFFFFFFu
typedef void (*pv_handler)(struct pv_frame *f);

/* Registers handler for vector and reloads the trap table: dpl = the lowest ring that may use
 * INT n for it; mask_events = TI_MASK_EVENTS behaviour (the PV interrupt gate). */
void pv_set_trap(u8 vector, int dpl, int mask_events, pv_handler handler);
/* An exception without a handler prints what happened and ends with status 0x7F. */
void pv_trap_dispatch(struct pv_frame *f);
extern const u32 pv_trap_stubs[256];
/* entry.S: the event callback and the failsafe callback pv_start registers (set_callbacks). */
void hypervisor_callback(void);
void failsafe_callback(void);
/* The initial return to ring 3 through the iret hypercall (never returns). */
void __attribute__((noreturn)) pv_enter_user(u32 eip, u32 esp, u32 eflags);

/* ---- event channels (pv.c) ---- */
typedef void (*evtchn_handler)(u32 port);
/* Binds a VIRQ of vCPU 0 to a new port with a handler; returns the port. */
u32 pv_bind_virq(u32 virq, evtchn_handler handler);
static inline void pv_mask_port(u32 port) {
    __asm__ volatile("lock btsl %1, %0" : "+m"(HYPERVISOR_shared_info->evtchn_mask[0]) : "r"(port) : "memory");
}
void pv_unmask_port(u32 port);
static inline int pv_port_pending(u32 port) {
    return (((volatile u32 *)HYPERVISOR_shared_info->evtchn_pending)[port >> 5] >> (port & 31)) & 1;
}
/* System time in ns from vcpu_time_info (xen.h: the version/TSC-scaling protocol). */
u64 pv_time_ns(void);

/* ---- memory (pv.c): VIRT_BASE 0, so VA = pseudo-physical address in the bootstrap area ---- */
#define PAGE_SIZE 0x1000u
#define _PAGE_PRESENT 0x001u
#define _PAGE_RW 0x002u
#define _PAGE_USER 0x004u
#define _PAGE_ACCESSED 0x020u
#define _PAGE_DIRTY 0x040u
#define PTE_FLAGS_MASK 0xFFFull
#define PTE_ADDR_MASK 0x000FFFFFFFFFF000ull

static inline u32 virt_to_pfn(const volatile void *va) { return (u32)va >> 12; }
static inline u32 pfn_to_mfn(u32 pfn) { return ((const u32 *)xen_start_info->mfn_list)[pfn]; }
/* The read-only M2P table Xen maps at the start of the hypervisor hole (32-bit entries). */
static inline u32 mfn_to_pfn(u32 mfn) { return ((const volatile u32 *)MACH2PHYS_VIRT_START_PAE)[mfn]; }
static inline u32 virt_to_mfn(const volatile void *va) { return pfn_to_mfn(virt_to_pfn(va)); }
static inline u64 mfn_pte(u32 mfn, u32 flags) { return ((u64)mfn << 12) | flags; }

/* The current top-level table (what CR3 points at) by its virtual address. */
extern u64 *pv_l3;
/* The L1 entry that maps va in the current tables (read-only to us), or 0 when an upper level
 * is not present. */
u64 *pv_pte_ptr(u32 va);
/* Machine address of a table entry given by its virtual address (for mmu_update's ptr). */
static inline u64 pv_entry_maddr(const volatile u64 *entry) {
    return ((u64)virt_to_mfn(entry) << 12) | ((u32)entry & 0xFFF);
}
/* One checked table-entry write (mmu_update, MMU_NORMAL_PT_UPDATE); returns Xen's result. */
long pv_set_entry(volatile u64 *entry, u64 val);
long pv_mmuext(u32 cmd, u32 arg1);

#endif
