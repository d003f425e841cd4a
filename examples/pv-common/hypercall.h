/* Hypercalls through the hypercall page (arch-x86/xen-x86_32.h): `call hypercall_page + nr*32`,
 * arguments in EBX, ECX, EDX, ESI, EDI, result in EAX (0 or a negative errno). Xen may clobber
 * every argument register (debug builds write 0xDEADF00D into them), so each is an output too. */
#ifndef RINGSHIFT_HYPERCALL_H
#define RINGSHIFT_HYPERCALL_H

#include "xen.h"

extern char hypercall_page[4096];

#define HYPERCALL_STR(nr) "call hypercall_page + (" #nr " * 32)"

#define _hypercall1(nr, a1) ({ \
    long __res, __b; \
    __asm__ volatile(HYPERCALL_STR(nr) : "=a"(__res), "=b"(__b) : "1"(a1) : "memory"); \
    __res; })
#define _hypercall2(nr, a1, a2) ({ \
    long __res, __b, __c; \
    __asm__ volatile(HYPERCALL_STR(nr) : "=a"(__res), "=b"(__b), "=c"(__c) : "1"(a1), "2"(a2) : "memory"); \
    __res; })
#define _hypercall3(nr, a1, a2, a3) ({ \
    long __res, __b, __c, __d; \
    __asm__ volatile(HYPERCALL_STR(nr) : "=a"(__res), "=b"(__b), "=c"(__c), "=d"(__d) \
                     : "1"(a1), "2"(a2), "3"(a3) : "memory"); \
    __res; })
#define _hypercall4(nr, a1, a2, a3, a4) ({ \
    long __res, __b, __c, __d, __s; \
    __asm__ volatile(HYPERCALL_STR(nr) : "=a"(__res), "=b"(__b), "=c"(__c), "=d"(__d), "=S"(__s) \
                     : "1"(a1), "2"(a2), "3"(a3), "4"(a4) : "memory"); \
    __res; })

/* The numbers are spelled out (the assembler multiplies them); each matches xen.h's
 * __HYPERVISOR_* value, which HYPERCALL_CHECK asserts at compile time. */
#define HYPERCALL_CHECK(name, nr) _Static_assert(__HYPERVISOR_##name == nr, #name)
HYPERCALL_CHECK(set_trap_table, 0);
HYPERCALL_CHECK(mmu_update, 1);
HYPERCALL_CHECK(set_gdt, 2);
HYPERCALL_CHECK(stack_switch, 3);
HYPERCALL_CHECK(set_callbacks, 4);
HYPERCALL_CHECK(fpu_taskswitch, 5);
HYPERCALL_CHECK(update_va_mapping, 14);
HYPERCALL_CHECK(set_timer_op, 15);
HYPERCALL_CHECK(xen_version, 17);
HYPERCALL_CHECK(console_io, 18);
HYPERCALL_CHECK(vcpu_op, 24);
HYPERCALL_CHECK(mmuext_op, 26);
HYPERCALL_CHECK(sched_op, 29);
HYPERCALL_CHECK(callback_op, 30);
HYPERCALL_CHECK(event_channel_op, 32);
HYPERCALL_CHECK(physdev_op, 33);

static inline long HYPERVISOR_set_trap_table(const struct trap_info *table) {
    return _hypercall1(0, table);
}
static inline long HYPERVISOR_mmu_update(const struct mmu_update *req, u32 count, u32 *done, u32 dom) {
    return _hypercall4(1, req, count, done, dom);
}
static inline long HYPERVISOR_set_gdt(const u32 *frames, u32 entries) {
    return _hypercall2(2, frames, entries);
}
static inline long HYPERVISOR_stack_switch(u32 ss, u32 esp) {
    return _hypercall2(3, ss, esp);
}
static inline long HYPERVISOR_set_callbacks(u32 event_cs, u32 event_eip, u32 failsafe_cs, u32 failsafe_eip) {
    return _hypercall4(4, event_cs, event_eip, failsafe_cs, failsafe_eip);
}
static inline long HYPERVISOR_fpu_taskswitch(u32 set) {
    return _hypercall1(5, set);
}
/* The PTE value is 64 bits (PAE), passed low word first. */
static inline long HYPERVISOR_update_va_mapping(u32 va, u64 pte, u32 flags) {
    return _hypercall4(14, va, (u32)pte, (u32)(pte >> 32), flags);
}
/* Absolute system time in ns (the vcpu_time_info clock), low word first; 0 stops the timer. */
static inline long HYPERVISOR_set_timer_op(u64 deadline) {
    return _hypercall2(15, (u32)deadline, (u32)(deadline >> 32));
}
static inline long HYPERVISOR_xen_version(u32 cmd, void *arg) {
    return _hypercall2(17, cmd, arg);
}
static inline long HYPERVISOR_console_io(u32 cmd, u32 count, const char *buf) {
    return _hypercall3(18, cmd, count, buf);
}
static inline long HYPERVISOR_vcpu_op(u32 cmd, u32 vcpu, void *arg) {
    return _hypercall3(24, cmd, vcpu, arg);
}
static inline long HYPERVISOR_mmuext_op(const struct mmuext_op *op, u32 count, u32 *done, u32 dom) {
    return _hypercall4(26, op, count, done, dom);
}
static inline long HYPERVISOR_sched_op(u32 cmd, void *arg) {
    return _hypercall2(29, cmd, arg);
}
static inline long HYPERVISOR_callback_op(u32 cmd, const void *arg) {
    return _hypercall2(30, cmd, arg);
}
static inline long HYPERVISOR_event_channel_op(u32 cmd, void *arg) {
    return _hypercall2(32, cmd, arg);
}
static inline long HYPERVISOR_physdev_op(u32 cmd, void *arg) {
    return _hypercall2(33, cmd, arg);
}

#endif
