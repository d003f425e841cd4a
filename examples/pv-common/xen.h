/* The parts of Xen's public x86_32 PV ABI the PV examples use: numbers and structure layouts,
 * each with the public header it comes from (xen/include/public/ in xen-project/xen; facts and
 * measured offsets in shared/reference/xen-x86_32-pv.md). Only the values are Xen's; the
 * declarations are ours. Usable from C and from assembly (the structures are C-only). */
#ifndef RINGSHIFT_XEN_H
#define RINGSHIFT_XEN_H

/* xen.h: hypercall numbers (__HYPERVISOR_*). */
#define __HYPERVISOR_set_trap_table 0
#define __HYPERVISOR_mmu_update 1
#define __HYPERVISOR_set_gdt 2
#define __HYPERVISOR_stack_switch 3
#define __HYPERVISOR_set_callbacks 4
#define __HYPERVISOR_fpu_taskswitch 5
#define __HYPERVISOR_update_va_mapping 14
#define __HYPERVISOR_set_timer_op 15
#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_console_io 18
#define __HYPERVISOR_iret 23
#define __HYPERVISOR_vcpu_op 24
#define __HYPERVISOR_mmuext_op 26
#define __HYPERVISOR_sched_op 29
#define __HYPERVISOR_callback_op 30
#define __HYPERVISOR_event_channel_op 32
#define __HYPERVISOR_physdev_op 33

/* arch-x86/xen-x86_32.h: one 32-byte slot per hypercall in the hypercall page. */
#define HYPERCALL_SLOT_SIZE 32

/* arch-x86/xen-x86_32.h: the flat segments Xen provides (ring 1 kernel, ring 3 user). */
#define FLAT_RING1_CS 0xE019
#define FLAT_RING1_DS 0xE021
#define FLAT_RING1_SS 0xE021
#define FLAT_RING3_CS 0xE02B
#define FLAT_RING3_DS 0xE033
#define FLAT_RING3_SS 0xE033
#define FLAT_KERNEL_CS FLAT_RING1_CS
#define FLAT_KERNEL_DS FLAT_RING1_DS
#define FLAT_KERNEL_SS FLAT_RING1_SS
#define FLAT_USER_CS FLAT_RING3_CS
#define FLAT_USER_DS FLAT_RING3_DS
#define FLAT_USER_SS FLAT_RING3_SS

/* arch-x86/xen-x86_32.h: start of the hypervisor hole of a PAE guest; the read-only M2P table
 * (machine frame -> pseudo-physical frame) is its first part (asm/config.h: RO_MPT). */
#define HYPERVISOR_VIRT_START_PAE 0xF5800000u
#define MACH2PHYS_VIRT_START_PAE 0xF5800000u

/* elfnote.h: XEN_ELFNOTE_* types (note name "Xen"). */
#define XEN_ELFNOTE_ENTRY 1
#define XEN_ELFNOTE_HYPERCALL_PAGE 2
#define XEN_ELFNOTE_VIRT_BASE 3
#define XEN_ELFNOTE_PADDR_OFFSET 4
#define XEN_ELFNOTE_XEN_VERSION 5
#define XEN_ELFNOTE_GUEST_OS 6
#define XEN_ELFNOTE_GUEST_VERSION 7
#define XEN_ELFNOTE_LOADER 8
#define XEN_ELFNOTE_PAE_MODE 9
#define XEN_ELFNOTE_FEATURES 10

/* xen.h: start_info.flags. */
#define SIF_INITDOMAIN (1u << 1)

/* xen.h: console_io commands. */
#define CONSOLEIO_write 0

/* sched.h (all the shutdown reasons: pv-common/README.md maps each to an exit status) */
#define SCHEDOP_yield 0
#define SCHEDOP_block 1
#define SCHEDOP_shutdown 2
#define SHUTDOWN_poweroff 0
#define SHUTDOWN_reboot 1
#define SHUTDOWN_suspend 2
#define SHUTDOWN_crash 3
#define SHUTDOWN_watchdog 4

/* event_channel.h */
#define EVTCHNOP_bind_virq 1
#define EVTCHNOP_send 4
#define EVTCHNOP_unmask 9

/* xen.h: virtual interrupts. */
#define VIRQ_TIMER 0

/* callback.h */
#define CALLBACKTYPE_event 0
#define CALLBACKOP_register 0

/* xen.h: mmu_update command (low 2 bits of ptr), mmuext_op commands, update_va_mapping flag. */
#define MMU_NORMAL_PT_UPDATE 0
#define MMUEXT_PIN_L3_TABLE 2
#define MMUEXT_NEW_BASEPTR 5
#define MMUEXT_INVLPG_LOCAL 7
#define UVMF_INVLPG 2
#define DOMID_SELF 0x7FF0

/* vcpu.h */
#define VCPUOP_stop_periodic_timer 7

/* physdev.h */
#define PHYSDEVOP_set_iopl 6

/* version.h */
#define XENVER_version 0

/* arch-x86/xen.h: trap_info.flags: bits 1:0 = the DPL for INT n; bit 2 = mask events on entry
 * (the PV interrupt gate). */
#define TI_DPL(n) ((n) & 3)
#define TI_MASK_EVENTS 4

/* Trap vectors the examples name (Intel SDM Vol. 3 §6.3.1). */
#define TRAP_divide_error 0
#define TRAP_int3 3
#define TRAP_invalid_op 6
#define TRAP_gp_fault 13
#define TRAP_page_fault 14

#ifndef __ASSEMBLER__

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

/* xen.h: start_info_t for x86_32 (1112 bytes). */
struct start_info {
    char magic[32];          /* "xen-3.0-x86_32p" */
    u32 nr_pages;
    u32 shared_info;         /* machine address */
    u32 flags;               /* SIF_* */
    u32 store_mfn;
    u32 store_evtchn;
    union {
        struct { u32 mfn, evtchn; } domU;
        struct { u32 info_off, info_size; } dom0;
    } console;
    u32 pt_base;             /* virtual address of the bootstrap L3 */
    u32 nr_pt_frames;
    u32 mfn_list;            /* virtual address of the P2M array */
    u32 mod_start, mod_len;
    char cmd_line[1024];
    u32 first_p2m_pfn, nr_p2m_frames;
};

/* xen.h, arch-x86/xen.h, arch-x86/xen-x86_32.h: vcpu_info (64 bytes) and shared_info. */
struct vcpu_time_info {
    u32 version, pad0;
    u64 tsc_timestamp;
    u64 system_time;
    u32 tsc_to_system_mul;
    signed char tsc_shift;
    u8 flags;
    u8 pad1[2];
} __attribute__((packed));

struct vcpu_info {
    u8 evtchn_upcall_pending;
    u8 evtchn_upcall_mask;   /* the virtual EFLAGS.IF, inverted */
    u16 pad;
    u32 evtchn_pending_sel;
    u32 cr2;                 /* arch.cr2: the faulting address of a bounced #PF */
    u32 arch_pad[5];
    struct vcpu_time_info time;
} __attribute__((packed));

struct shared_info {
    struct vcpu_info vcpu_info[32];
    u32 evtchn_pending[32];
    u32 evtchn_mask[32];
    u32 wc_version, wc_sec, wc_nsec;
    u32 max_pfn, pfn_to_mfn_frame_list_list, nmi_reason, p2m_cr3, p2m_vaddr, p2m_generation;
    u32 wc_sec_hi;
} __attribute__((packed));

/* arch-x86/xen.h: set_trap_table entry; the list ends with address 0. */
struct trap_info {
    u8 vector;
    u8 flags;
    u16 cs;
    u32 address;
};

/* callback.h with arch-x86/xen-x86_32.h's xen_callback_t {cs, eip}. */
struct callback_register {
    u16 type;
    u16 flags;
    u32 cs, eip;
};

/* xen.h */
struct mmu_update { u64 ptr, val; };
struct mmuext_op { u32 cmd; u32 arg1; u32 arg2; };
struct sched_shutdown { u32 reason; };

/* event_channel.h */
struct evtchn_bind_virq { u32 virq, vcpu, port; };
struct evtchn_send { u32 port; };
struct evtchn_unmask { u32 port; };

/* vcpu.h */
#define VCPUOP_stop_periodic_timer 7

/* physdev.h */
struct physdev_set_iopl { u32 iopl; };

/* io/console.h: the PV console ring page of a domU. */
struct xencons_interface {
    char in[1024];
    char out[2048];
    u32 in_cons, in_prod;
    u32 out_cons, out_prod;
};

_Static_assert(sizeof(struct start_info) == 1112, "start_info_t is 1112 bytes (xen.h, x86_32)");
_Static_assert(sizeof(struct vcpu_info) == 64, "vcpu_info is 64 bytes");
_Static_assert(sizeof(struct shared_info) == 2344, "shared_info is 2344 bytes (x86_32)");
_Static_assert(__builtin_offsetof(struct shared_info, evtchn_pending) == 0x800, "evtchn_pending at 0x800");
_Static_assert(sizeof(struct trap_info) == 8, "trap_info is 8 bytes");
_Static_assert(sizeof(struct callback_register) == 12, "callback_register is 12 bytes");
_Static_assert(__builtin_offsetof(struct xencons_interface, out_prod) == 3084, "xencons out_prod");

#endif
#endif
