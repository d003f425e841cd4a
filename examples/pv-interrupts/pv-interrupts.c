/* interrupts (examples/interrupts) ported to Xen's 32-bit PAE PV ABI. The native version's
 * machinery and its PV replacement:
 *   IDT (lidt, gates)           -> set_trap_table; trap_info.flags bit 2 (mask events) makes
 *                                  the PV "interrupt gate", its absence the "trap gate"
 *   8254 PIT, IRQ 0             -> VIRQ_TIMER bound to an event channel, re-armed one-shot with
 *                                  set_timer_op (Xen's 10 ms periodic timer stopped, so every
 *                                  tick is one we asked for)
 *   8259A mask / IRR / EOI      -> the port's evtchn_mask bit / evtchn_pending bit / clearing it
 *   CLI, STI, PUSHF/POPF (IF)   -> vcpu_info.evtchn_upcall_mask; an unmask that finds an event
 *                                  pending forces the callback with a hypercall (Linux's
 *                                  xen_irq_enable), since a store cannot trap
 *   STI; HLT                    -> SCHEDOP_block (unmasks and blocks atomically)
 *   IRET                        -> the iret hypercall (restores the mask from EFLAGS.IF)
 * The printed lines are the native ones wherever the behaviour carries over; the few that name
 * hardware the PV guest does not have (IDT limit, PIC masks, the STI shadow, the 8259A in-service
 * register) are replaced, and test/e2e/pv-examples.test.ts lists them. Exit status: 0 when every
 * check passed (pv-common/README.md). */
#include "kprintf.h"
#include "pv.h"

#define EFLAGS_IF 0x00000200u
#define TICKS_TO_COUNT 10
#define TICK_NS 1000000u /* ~1 kHz, as the native PIT divisor */
#define SYSCALL_VECTOR 0x80

static volatile u32 ticks;
static volatile u32 timer_port;
static volatile u32 mask_seen_in_handler = 0xFF, pending_seen_in_handler = 0xFF;
static volatile int sample_in_handler;
static int failures;

static void check(int ok, const char *what) {
    kprintf("  %s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok) failures++;
}

static void arm_timer(void) { HYPERVISOR_set_timer_op(pv_time_ns() + TICK_NS); }

static void timer_handler(u32 port) {
    if (sample_in_handler) {
        mask_seen_in_handler = pv_vcpu->evtchn_upcall_mask;
        pending_seen_in_handler = (u32)pv_port_pending(port);
        sample_in_handler = 0;
    }
    ticks = ticks + 1;
    arm_timer();
}

/* Spins with events masked (or the port masked) until the timer event is pending. */
static u32 wait_timer_pending(void) {
    u32 polls = 0;
    while (!pv_port_pending(timer_port)) polls++;
    return polls;
}

/* Blocks until the tick count reaches target, leaving events masked (native: sti; hlt; cli). */
static void wait_ticks(u32 target) {
    while (ticks < target) {
        HYPERVISOR_sched_op(SCHEDOP_block, 0);
        pv_cli();
    }
}

static volatile u32 syscall_if;
static volatile u32 syscall_saved_if;

static void syscall_handler(struct pv_frame *frame) {
    syscall_if = pv_if_bit();
    syscall_saved_if = (frame->eflags & EFLAGS_IF) ? 1 : 0;
    frame->eax = frame->eax * 3 + 1;
}

static volatile u32 last_vector;
static volatile u32 last_error;

static void fault_handler(struct pv_frame *frame) {
    last_vector = frame->vector;
    last_error = frame->error;
    if (frame->vector != TRAP_int3) frame->eip += 2; /* #BP is a trap: EIP is already past INT3 */
}

/* The native version switches the IDT gate type; here the trap_info flags. */
static u32 do_syscall(int mask_events, u32 arg) {
    pv_set_trap(SYSCALL_VECTOR, 1, mask_events, syscall_handler);
    u32 result = arg;
    __asm__ volatile("int $0x80" : "+a"(result) : : "memory");
    return result;
}

void kmain(struct start_info *si) {
    (void)si;
    kprintf("interrupts: trap table, event channels, VIRQ_TIMER, upcall mask\n");

    pv_set_trap(TRAP_divide_error, 0, 0, fault_handler);
    pv_set_trap(TRAP_int3, 1, 0, fault_handler);
    pv_set_trap(TRAP_invalid_op, 0, 0, fault_handler);
    pv_set_trap(TRAP_gp_fault, 0, 0, fault_handler);
    /* vcpu.h: PV vCPUs start with a 10 ms periodic VIRQ_TIMER; ticks here come only from
     * set_timer_op. */
    check(HYPERVISOR_vcpu_op(VCPUOP_stop_periodic_timer, 0, 0) == 0, "periodic timer stopped");
    /* pv_start registered the event callback with set_callbacks; callback_op is the newer
     * interface for the same (callback.h). Xen masks events on entry to the event callback
     * whatever the flags say, so none are given. */
    struct callback_register event_cb = {CALLBACKTYPE_event, 0, FLAT_KERNEL_CS, (u32)hypervisor_callback};
    check(HYPERVISOR_callback_op(CALLBACKOP_register, &event_cb) == 0, "event callback registered again by callback_op");
    timer_port = pv_bind_virq(VIRQ_TIMER, timer_handler);
    /* The port number is Xen's choice (the first free one), so it is not printed. */
    check(!pv_port_pending(timer_port), "timer port bound, nothing pending");
    arm_timer();

    /* 1. Count timer ticks, blocking between them. */
    kprintf("[1] sti; hlt until %u ticks\n", TICKS_TO_COUNT);
    check(pv_if_bit() == 0, "IF = 0 before sti");
    pv_sti();
    check(pv_if_bit() == 1, "IF = 1 after sti");
    wait_ticks(TICKS_TO_COUNT);
    kprintf("  ticks %u\n", ticks);
    check(ticks == TICKS_TO_COUNT, "counted exactly");
    pv_sti();

    /* 2. A critical section: the event stays pending until the restore unmasks it, and is
     *    delivered right then (the forced callback). */
    kprintf("[2] irq_save / irq_restore\n");
    u32 flags = pv_irq_save();
    check((flags & EFLAGS_IF) != 0, "saved flags have IF");
    check(pv_if_bit() == 0, "IF = 0 inside");
    u32 t0 = ticks;
    wait_timer_pending();
    check(ticks == t0, "no tick delivered while IF = 0");
    pv_irq_restore(flags);
    u32 t1 = ticks;
    check(t1 == t0 + 1, "the pending tick arrives right after popf");
    check(pv_if_bit() == 1, "IF = 1 after popf");

    /* 3. No STI shadow here: unmasking is a store, and the pending event is delivered inside
     *    pv_sti by the hypercall it makes, before the next instruction of the caller. */
    kprintf("[3] sti shadow\n");
    pv_cli();
    t0 = ticks;
    wait_timer_pending();
    pv_sti();
    u32 after = ticks;
    kprintf("  ticks +%u once unmasked: no shadow under PV\n", after - t0);
    check(after == t0 + 1, "delivered by the unmask itself");

    /* 4. Nested saves: the inner restore must leave events masked. */
    kprintf("[4] nested irq_save\n");
    u32 outer = pv_irq_save();
    u32 inner = pv_irq_save();
    kprintf("  outer IF %u, inner IF %u\n", (outer & EFLAGS_IF) ? 1 : 0, (inner & EFLAGS_IF) ? 1 : 0);
    t0 = ticks;
    wait_timer_pending();
    pv_irq_restore(inner);
    check(pv_if_bit() == 0 && ticks == t0, "inner restore keeps IF = 0");
    pv_irq_restore(outer);
    check(pv_if_bit() == 1 && ticks == t0 + 1, "outer restore sets IF and takes the tick");

    /* 5. Masking the port with events enabled: the event waits in evtchn_pending until
     *    EVTCHNOP_unmask, which delivers it (as the PIC's IRR and mask). */
    kprintf("[5] evtchn mask with IF = 1\n");
    pv_mask_port(timer_port);
    t0 = ticks;
    wait_timer_pending();
    check(ticks == t0 && pv_if_bit() == 1, "masked timer port not delivered");
    pv_unmask_port(timer_port);
    __asm__ volatile("nop" ::: "memory");
    check(ticks == t0 + 1, "delivered once unmasked");

    /* 6. Inside the callback: events masked by Xen, the port's pending bit already cleared by
     *    the dispatcher (the PV "EOI"). */
    kprintf("[6] upcall mask inside the handler\n");
    sample_in_handler = 1;
    while (sample_in_handler) {
        HYPERVISOR_sched_op(SCHEDOP_block, 0);
    }
    kprintf("  upcall mask %u, port pending %u\n", mask_seen_in_handler, pending_seen_in_handler);
    check(mask_seen_in_handler == 1 && pending_seen_in_handler == 0, "events masked in the callback");
    check(pv_if_bit() == 1, "unmasked again by the iret hypercall");

    /* 7. Software interrupts: with TI_MASK_EVENTS the handler runs masked, without it not. */
    kprintf("[7] int $0x80\n");
    u32 r = do_syscall(1, 5);
    kprintf("  interrupt gate: IF inside %u, saved IF %u, result %u\n", syscall_if, syscall_saved_if, r);
    check(syscall_if == 0 && syscall_saved_if == 1 && r == 16, "interrupt gate");
    r = do_syscall(0, 7);
    kprintf("  trap gate: IF inside %u, saved IF %u, result %u\n", syscall_if, syscall_saved_if, r);
    check(syscall_if == 1 && syscall_saved_if == 1 && r == 22, "trap gate");
    check(pv_if_bit() == 1, "IRET restored IF");

    /* 8. Exceptions through the trap table, resumed after the faulting instruction. */
    kprintf("[8] exceptions\n");
    pv_cli();
    u32 zero = 0, quotient = 100;
    __asm__ volatile("xorl %%edx, %%edx; divl %1" : "+a"(quotient) : "c"(zero) : "edx", "memory");
    kprintf("  divide by zero: vector %u error %x\n", last_vector, last_error);
    check(last_vector == 0 && pv_if_bit() == 0, "#DE");
    __asm__ volatile("ud2" ::: "memory");
    kprintf("  ud2: vector %u error %x\n", last_vector, last_error);
    check(last_vector == 6, "#UD");
    __asm__ volatile("int3" ::: "memory");
    kprintf("  int3: vector %u error %x\n", last_vector, last_error);
    check(last_vector == 3, "#BP");
    __asm__ volatile("movw $0x1234, %%ax; movw %%ax, %%fs; movw %%ds, %%ax; movw %%ax, %%fs" ::: "eax", "memory");
    kprintf("  mov fs, 0x1234: vector %u error %x\n", last_vector, last_error);
    check(last_vector == 13 && last_error == 0x1234, "#GP(selector): TI kept, RPL bits cleared");
    pv_sti();

    /* 9. Keep counting to a fixed total, then stop the timer. */
    kprintf("[9] count to %u\n", 5 * TICKS_TO_COUNT);
    wait_ticks(5 * TICKS_TO_COUNT);
    HYPERVISOR_set_timer_op(0);
    pv_mask_port(timer_port);
    kprintf("  ticks %u\n", ticks);

    if (failures != 0) {
        kprintf("interrupts: %d failures\n", failures);
        pv_exit(1);
    }
    kprintf("interrupts: all checks passed\n");
    pv_exit(0);
}
