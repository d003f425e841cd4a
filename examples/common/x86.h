/* Protected-mode system structures and instructions shared by the paging and usermode
 * examples: a GDT with ring-3 segments and a TSS (with an I/O permission bitmap), an IDT whose
 * exception stubs (x86trap.S) call C handlers with a trap frame, control registers, MSRs. */
#ifndef RINGSHIFT_X86_H
#define RINGSHIFT_X86_H

#include "io.h"

/* GDT layout (x86desc.c). SYSENTER/SYSEXIT need KERNEL_CS, +8 kernel SS, +16 user CS, +24 user SS. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1B /* 0x18 | RPL 3 */
#define SEL_UDATA 0x23 /* 0x20 | RPL 3 */
#define SEL_TSS 0x28

#define EFLAGS_IF_BIT 0x00000200u
#define EFLAGS_IOPL_MASK 0x00003000u

/* Exception vectors the examples name. */
#define VEC_UD 6
#define VEC_GP 13
#define VEC_PF 14

/* What the stubs in x86trap.S push, lowest address first: the segment registers and PUSHA
 * block they save, the vector and error code (0 when the CPU pushes none), then the CPU's
 * frame; user_esp and user_ss exist only when the trap came from an outer ring. */
struct trap_frame {
    u32 gs, fs, es, ds;
    u32 edi, esi, ebp, esp_pusha, ebx, edx, ecx, eax;
    u32 vector, error;
    u32 eip, cs, eflags;
    u32 user_esp, user_ss;
};

typedef void (*trap_handler)(struct trap_frame *frame);

/* The 104-byte 32-bit TSS, followed by an I/O permission bitmap covering every port and the
 * all-ones byte the SDM requires after it (§20.5.2). */
struct __attribute__((packed)) tss32 {
    u32 link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
    u32 eax, ecx, edx, ebx, esp, ebp, esi, edi;
    u32 es, cs, ss, ds, fs, gs, ldt;
    u16 trap, iomap_base;
    u8 iomap[8192];
    u8 iomap_end;
};

extern struct tss32 kernel_tss;

/* Loads the new GDT (kernel and user flat segments, the TSS), reloads every segment register,
 * fills the IDT with the 32 exception stubs (interrupt gates, DPL 0), loads IDTR and TR.
 * The I/O bitmap starts with every port denied. */
void x86_init(void);
/* Installs a C handler for a vector; x86_set_gate also makes an IDT gate from ring `dpl`
 * (trap gate when `trap`, else interrupt gate) that reaches the handler. */
void x86_set_handler(u8 vector, trap_handler handler);
void x86_set_gate(u8 vector, int dpl, int trap, trap_handler handler);
/* Allows (or denies) ring 3 (CPL > IOPL) to use the I/O port through the TSS bitmap. */
void x86_io_allow(u16 port, int allowed);
/* Rewrites the TSS descriptor with another limit (byte granular) and reloads TR: a limit that
 * ends inside the I/O bitmap denies every port whose bitmap bytes lie beyond it. */
void x86_set_tss_limit(u32 limit);
/* Prints "name=0x........" and a newline. */
void print_hex(const char *name, u32 value);
/* Decimal, with 32-bit division only. */
void serial_putdec(u32 value);

/* x86trap.S: the address of each stub, and the initial entry to ring 3 (never returns):
 * IRET to SEL_UCODE:eip with SEL_UDATA:esp and the given EFLAGS, DS = SEL_UDATA. */
extern const u32 x86_trap_stubs[256];
void __attribute__((noreturn)) x86_enter_user(u32 eip, u32 esp, u32 eflags);

static inline u32 read_cr2(void) { u32 v; __asm__ volatile("movl %%cr2, %0" : "=r"(v)); return v; }
static inline u32 read_cr3(void) { u32 v; __asm__ volatile("movl %%cr3, %0" : "=r"(v)); return v; }
static inline void write_cr3(u32 v) { __asm__ volatile("movl %0, %%cr3" : : "r"(v) : "memory"); }
static inline u32 read_cr4(void) { u32 v; __asm__ volatile("movl %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr4(u32 v) { __asm__ volatile("movl %0, %%cr4" : : "r"(v) : "memory"); }
static inline void invlpg(const volatile void *p) { __asm__ volatile("invlpg (%0)" : : "r"(p) : "memory"); }

static inline void wrmsr(u32 msr, u32 lo, u32 hi) {
    __asm__ volatile("wrmsr" : : "c"(msr), "a"(lo), "d"(hi) : "memory");
}
static inline u32 rdmsr_lo(u32 msr) {
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    (void)hi;
    return lo;
}

static inline u32 read_eflags(void) {
    u32 f;
    __asm__ volatile("pushfl; popl %0" : "=r"(f));
    return f;
}

#endif
