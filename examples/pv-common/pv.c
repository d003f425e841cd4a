#include "pv.h"

struct start_info *xen_start_info;
struct shared_info *HYPERVISOR_shared_info;
u64 *pv_l3;

/* A page of our own address space onto which the shared_info frame is mapped (start_info gives
 * its machine address; Linux uses a fixmap slot for the same). */
static u8 shared_info_window[4096] __attribute__((aligned(4096)));

void pv_start(struct start_info *si);
void pv_start(struct start_info *si) {
    xen_start_info = si;
    pv_l3 = (u64 *)si->pt_base;
    HYPERVISOR_update_va_mapping((u32)shared_info_window,
                                 (u64)si->shared_info | _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY,
                                 UVMF_INVLPG);
    HYPERVISOR_shared_info = (struct shared_info *)shared_info_window;
    console_init();
    /* Events stay masked until the example unmasks them (the native kernels start with IF = 0). */
    pv_cli();
    HYPERVISOR_set_callbacks(FLAT_KERNEL_CS, (u32)hypervisor_callback, FLAT_KERNEL_CS, (u32)failsafe_callback);
    kmain(si);
    pv_exit(0x7F);
}

void pv_exit(u32 code) {
    console_flush();
    struct sched_shutdown s = {code == 0 ? SHUTDOWN_poweroff : SHUTDOWN_crash};
    for (;;) HYPERVISOR_sched_op(SCHEDOP_shutdown, &s);
}

/* ---- traps ---- */

static pv_handler handlers[256];
static u8 trap_flags[256];
/* Every vector with a handler, then the terminating entry (address 0). */
static struct trap_info trap_table[257];

void pv_set_trap(u8 vector, int dpl, int mask_events, pv_handler handler) {
    handlers[vector] = handler;
    trap_flags[vector] = (u8)(TI_DPL(dpl) | (mask_events ? TI_MASK_EVENTS : 0));
    u32 n = 0;
    for (u32 v = 0; v < 256; v++) {
        if (handlers[v] == 0) continue;
        trap_table[n].vector = (u8)v;
        trap_table[n].flags = trap_flags[v];
        trap_table[n].cs = FLAT_KERNEL_CS;
        trap_table[n].address = pv_trap_stubs[v];
        n++;
    }
    trap_table[n].address = 0;
    long rc = HYPERVISOR_set_trap_table(trap_table);
    if (rc != 0) {
        print_hex("set_trap_table failed", (u32)rc);
        pv_exit(0x7F);
    }
}

static evtchn_handler port_handlers[1024];

/* The event callback (xen.h: the 2-level event channel ABI): clear upcall_pending, take the
 * selector word, and for each pending and unmasked port clear its pending bit (the guest's
 * "EOI") and run its handler. Xen entered with events masked; the iret hypercall restores
 * the mask from the saved EFLAGS.IF and delivers anything that arrived meanwhile. */
static void event_dispatch(void) {
    struct vcpu_info *v = pv_vcpu;
    struct shared_info *s = HYPERVISOR_shared_info;
    v->evtchn_upcall_pending = 0;
    u32 sel = __atomic_exchange_n(&v->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel != 0) {
        u32 word = (u32)__builtin_ctz(sel);
        sel &= sel - 1;
        u32 pending;
        while ((pending = ((volatile u32 *)s->evtchn_pending)[word] & ~((volatile u32 *)s->evtchn_mask)[word]) != 0) {
            u32 bit = (u32)__builtin_ctz(pending);
            u32 port = word * 32 + bit;
            __atomic_fetch_and(&s->evtchn_pending[word], ~(1u << bit), __ATOMIC_SEQ_CST);
            if (port_handlers[port]) port_handlers[port](port);
        }
    }
}

void pv_trap_dispatch(struct pv_frame *f) {
    if (f->vector == PV_EVENT_VECTOR) {
        event_dispatch();
        return;
    }
    pv_handler h = handlers[f->vector & 0xFF];
    if (h) {
        h(f);
        return;
    }
    serial_puts("unexpected trap: vector=");
    serial_puthex(f->vector);
    serial_puts(" error=");
    serial_puthex(f->error);
    serial_puts(" eip=");
    serial_puthex(f->eip);
    serial_puts(" cr2=");
    serial_puthex(pv_vcpu->cr2);
    serial_puts("\n");
    pv_exit(0x7F);
}

/* The failsafe callback: Xen could not load a segment register on the way back to us. */
void pv_failsafe(void);
void pv_failsafe(void) {
    serial_puts("failsafe callback\n");
    pv_exit(0x7F);
}

/* ---- event channels ---- */

u32 pv_bind_virq(u32 virq, evtchn_handler handler) {
    struct evtchn_bind_virq op = {virq, 0, 0};
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, &op);
    if (rc != 0) {
        print_hex("bind_virq failed", (u32)rc);
        pv_exit(0x7F);
    }
    port_handlers[op.port & 1023] = handler;
    return op.port;
}

void pv_unmask_port(u32 port) {
    struct evtchn_unmask op = {port};
    HYPERVISOR_event_channel_op(EVTCHNOP_unmask, &op);
}

u64 pv_time_ns(void) {
    volatile struct vcpu_time_info *t = &pv_vcpu->time;
    u32 version, mul;
    u64 tsc_ts, sys;
    signed char shift;
    do {
        version = t->version;
        barrier();
        tsc_ts = t->tsc_timestamp;
        sys = t->system_time;
        mul = t->tsc_to_system_mul;
        shift = t->tsc_shift;
        barrier();
    } while ((version & 1) != 0 || version != t->version);
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    u64 delta = (((u64)hi << 32) | lo) - tsc_ts;
    if (shift < 0) delta >>= -shift;
    else delta <<= shift;
    /* (delta * mul) >> 32 with 32x32 products only (no libgcc). */
    u64 scaled = (((u64)(u32)delta * mul) >> 32) + (u64)(u32)(delta >> 32) * mul;
    return sys + scaled;
}

/* ---- memory ---- */

static u64 *table_va(u64 entry) {
    u32 mfn = (u32)((entry & PTE_ADDR_MASK) >> 12);
    return (u64 *)(mfn_to_pfn(mfn) << 12);
}

u64 *pv_pte_ptr(u32 va) {
    u64 l3e = pv_l3[va >> 30];
    if (!(l3e & _PAGE_PRESENT)) return 0;
    u64 l2e = table_va(l3e)[(va >> 21) & 511];
    if (!(l2e & _PAGE_PRESENT)) return 0;
    return &table_va(l2e)[(va >> 12) & 511];
}

long pv_set_entry(volatile u64 *entry, u64 val) {
    struct mmu_update req = {pv_entry_maddr(entry) | MMU_NORMAL_PT_UPDATE, val};
    u32 done = 0;
    return HYPERVISOR_mmu_update(&req, 1, &done, DOMID_SELF);
}

long pv_mmuext(u32 cmd, u32 arg1) {
    struct mmuext_op op = {cmd, arg1, 0};
    u32 done = 0;
    return HYPERVISOR_mmuext_op(&op, 1, &done, DOMID_SELF);
}
