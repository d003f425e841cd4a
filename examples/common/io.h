/* The x86 instructions a guest kernel needs that C cannot express. Each one is sensitive when
 * the kernel runs deprivileged, which is the point of these examples: the rewriter must find
 * every one of them, wherever the compiler inlines it. */
#ifndef RINGSHIFT_IO_H
#define RINGSHIFT_IO_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

static inline void outb(u16 port, u8 value) {
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline u8 inb(u16 port) {
    u8 value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }

/* Saves EFLAGS and disables interrupts; irq_restore puts IF back as it was (Linux's
 * local_irq_save): the PUSHF/POPF pair that silently misbehaves in ring 1. */
static inline u32 irq_save(void) {
    u32 flags;
    __asm__ volatile("pushfl; popl %0; cli" : "=r"(flags) : : "memory");
    return flags;
}

static inline void irq_restore(u32 flags) {
    __asm__ volatile("pushl %0; popfl" : : "r"(flags) : "memory", "cc");
}

static inline u32 read_cr0(void) {
    u32 value;
    __asm__ volatile("movl %%cr0, %0" : "=r"(value));
    return value;
}

static inline void write_cr0(u32 value) {
    __asm__ volatile("movl %0, %%cr0" : : "r"(value) : "memory");
}

struct __attribute__((packed)) descriptor_table {
    u16 limit;
    u32 base;
};

static inline void sgdt(struct descriptor_table *dt) {
    __asm__ volatile("sgdt %0" : "=m"(*dt));
}

static inline void lgdt(const struct descriptor_table *dt) {
    __asm__ volatile("lgdt %0" : : "m"(*dt) : "memory");
}

/* QEMU's isa-debug-exit device (-device isa-debug-exit,iobase=0xf4,iosize=0x04): writing v
 * makes QEMU exit with status (v << 1) | 1, so a guest can report success or failure. */
#define DEBUG_EXIT_PORT 0xF4

static inline __attribute__((noreturn)) void qemu_exit(u8 code) {
    outb(DEBUG_EXIT_PORT, code);
    /* Without the device (real hardware, or a monitor that does not model it), stop here. */
    for (;;) {
        cli();
        hlt();
    }
}

#endif
