/* Paging: 32-bit page tables with 4 KiB and 4 MiB (CR4.PSE) pages, accessed/dirty bits, demand
 * paging from the #PF handler (CR2 and error codes printed), unmapping and remapping with
 * INVLPG, code fetched from a page mapped on demand, two address spaces switched through CR3,
 * and supervisor writes to read-only pages with CR0.WP clear and set.
 *
 * Only architecturally defined results are printed: after every change to an entry that may be
 * cached the TLB entry is flushed (INVLPG or a CR3 write), so nothing depends on what a TLB
 * happens to keep. Exit code: 0 = every check passed, 1 = a check failed, 0x7F = an unexpected
 * exception (x86desc.c). */
#include "io.h"
#include "multiboot.h"
#include "paging.h"
#include "check.h"
#include "serial.h"
#include "x86.h"

#define PIC1_DATA 0x21
#define PIC2_DATA 0xA1

/* Physical frames for the test pages: 8 MiB and up, identity-mapped by a 4 MiB page. */
#define FRAME_BASE 0x00800000u
#define FRAME(n) (FRAME_BASE + (u32)(n) * PAGE_SIZE)
/* Virtual windows. */
#define VA_ALIAS 0x40000000u   /* 4 MiB page onto FRAME_BASE */
#define VA_DEMAND 0x80000000u  /* 4 KiB pages through pt_hi: start not present */
#define VA_RO_PDE 0x80400000u  /* PDE without R/W over a PTE with R/W */
#define VA_LARGE 0xC0000000u   /* 4 MiB page mapped on demand */
#define VA_CODE 0x80010000u    /* code mapped on demand */

static u32 pd_a[1024] __attribute__((aligned(4096)));
static u32 pd_b[1024] __attribute__((aligned(4096)));
static u32 pt_low[1024] __attribute__((aligned(4096)));
static u32 pt_hi[1024] __attribute__((aligned(4096)));
static u32 pt_hi_b[1024] __attribute__((aligned(4096)));
static u32 pt_ro[1024] __attribute__((aligned(4096)));

static u32 faults;
static u32 next_frame = 16; /* frames handed out by demand paging */


static inline u32 peek(u32 va) { return *(volatile u32 *)va; }
static inline void poke(u32 va, u32 v) { *(volatile u32 *)va = v; }

/* What the #PF handler does about a fault. */
enum pf_action { PF_MAP_NEW, PF_MAKE_WRITABLE, PF_MAP_LARGE, PF_MAP_CODE, PF_MAP_TAIL };
static enum pf_action pf_action;
static u32 pf_last_cr2, pf_last_error, pf_last_eip;
/* When set, the handler prints the word there (to show what a faulting store left). */
static u32 pf_probe_addr;

static u32 *pte_for(u32 va) {
    u32 *pd = (u32 *)(read_cr3() & ~PTE_FLAGS);
    u32 *pt = (u32 *)(pd[PDE_INDEX(va)] & ~PTE_FLAGS);
    return &pt[PTE_INDEX(va)];
}

static void page_fault(struct trap_frame *f) {
    u32 cr2 = read_cr2();
    faults++;
    pf_last_cr2 = cr2;
    pf_last_error = f->error;
    pf_last_eip = f->eip;
    serial_puts("  #PF cr2=");
    serial_puthex(cr2);
    serial_puts(" error=");
    serial_puthex(f->error);
    serial_puts("\n");
    if (pf_probe_addr != 0) {
        serial_puts("  at the fault: ");
        serial_puthex(peek(pf_probe_addr));
        serial_puts("\n");
        pf_probe_addr = 0;
    }
    u32 *pd = (u32 *)(read_cr3() & ~PTE_FLAGS);
    switch (pf_action) {
    case PF_MAP_NEW: {
        u32 frame = FRAME(next_frame++);
        *pte_for(cr2) = frame | PTE_P | PTE_W;
        serial_puts("  mapped to frame ");
        serial_puthex(frame);
        serial_puts("\n");
        break;
    }
    case PF_MAKE_WRITABLE:
        pd[PDE_INDEX(cr2)] |= PTE_W;
        if (!(pd[PDE_INDEX(cr2)] & PDE_PS)) *pte_for(cr2) |= PTE_W;
        serial_puts("  made writable\n");
        break;
    case PF_MAP_LARGE:
        pd[PDE_INDEX(cr2)] = FRAME_BASE | PDE_PS | PTE_P;
        serial_puts("  mapped a 4 MiB read-only page\n");
        break;
    case PF_MAP_CODE: {
        /* mov $0x600d, %eax; ret */
        static const u8 code[] = {0xB8, 0x0D, 0x60, 0x00, 0x00, 0xC3};
        u32 frame = FRAME(next_frame++);
        for (u32 i = 0; i < sizeof(code); i++) ((volatile u8 *)frame)[(cr2 & 0xFFF) + i] = code[i];
        *pte_for(cr2) = frame | PTE_P;
        serial_puts("  mapped code\n");
        break;
    }
    case PF_MAP_TAIL: {
        /* The rest of an instruction that starts on the previous page: imm32 high bytes, ret. */
        static const u8 tail[] = {0x56, 0x34, 0x12, 0xC3};
        u32 frame = FRAME(next_frame++);
        for (u32 i = 0; i < sizeof(tail); i++) ((volatile u8 *)frame)[i] = tail[i];
        *pte_for(cr2) = frame | PTE_P;
        serial_puts("  mapped the tail\n");
        break;
    }
    }
    invlpg((void *)cr2);
}

static void build_tables(void) {
    /* 0-4 MiB: the kernel, with 4 KiB pages; page 0 stays unmapped (null pointers fault). */
    for (u32 i = 1; i < 1024; i++) pt_low[i] = (i * PAGE_SIZE) | PTE_P | PTE_W;
    pd_a[0] = (u32)pt_low | PTE_P | PTE_W;
    /* 8-12 MiB: the frames, identity-mapped with one 4 MiB page. */
    pd_a[PDE_INDEX(FRAME_BASE)] = FRAME_BASE | PDE_PS | PTE_P | PTE_W;
    /* The alias: another 4 MiB page onto the same frames, accessed and dirty bits clear. */
    pd_a[PDE_INDEX(VA_ALIAS)] = FRAME_BASE | PDE_PS | PTE_P | PTE_W;
    pd_a[PDE_INDEX(VA_DEMAND)] = (u32)pt_hi | PTE_P | PTE_W;
    pd_a[PDE_INDEX(VA_RO_PDE)] = (u32)pt_ro | PTE_P;
    pt_ro[0] = FRAME(2) | PTE_P | PTE_W;
    /* Address space B: the same, except that VA_DEMAND maps frame 3. */
    for (u32 i = 0; i < 1024; i++) pd_b[i] = pd_a[i];
    pd_b[PDE_INDEX(VA_DEMAND)] = (u32)pt_hi_b | PTE_P | PTE_W;
    pt_hi_b[0] = FRAME(3) | PTE_P | PTE_W;
    /* Frame contents, written before paging (identity) so each is recognisable. */
    for (u32 n = 0; n < 32; n++) poke(FRAME(n), 0xF0000000u | n);
}

void kmain(u32 magic, u32 info) {
    (void)info;
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
    serial_init();
    serial_puts("paging example\n");
    check(magic == MULTIBOOT_BOOTLOADER_MAGIC, "multiboot magic");
    x86_init();
    x86_set_handler(VEC_PF, page_fault);

    build_tables();
    write_cr4(read_cr4() | CR4_PSE);
    write_cr3((u32)pd_a);
    write_cr0(read_cr0() | CR0_PG);
    u32 cr0 = read_cr0();
    print_hex("cr0 & (PG|WP|PE)", cr0 & (CR0_PG | CR0_WP | 1));
    print_hex("cr4 & PSE", read_cr4() & CR4_PSE);
    check(read_cr3() == (u32)pd_a, "cr3 reads back");

    serial_puts("[1] 4 MiB pages\n");
    print_hex("alias read", peek(VA_ALIAS + 5 * PAGE_SIZE));
    print_hex("alias pde A/D after read", pd_a[PDE_INDEX(VA_ALIAS)] & (PTE_A | PTE_D));
    poke(VA_ALIAS + 5 * PAGE_SIZE + 4, 0x12345678);
    print_hex("alias pde A/D after write", pd_a[PDE_INDEX(VA_ALIAS)] & (PTE_A | PTE_D));
    print_hex("identity read of the alias write", peek(FRAME(5) + 4));
    check(peek(FRAME(5) + 4) == 0x12345678, "alias write visible through identity");

    serial_puts("[2] demand paging (4 KiB)\n");
    pf_action = PF_MAP_NEW;
    print_hex("read", peek(VA_DEMAND + 0x10));
    poke(VA_DEMAND + 0x1234, 0xCAFE0001);
    print_hex("read back", peek(VA_DEMAND + 0x1234));
    print_hex("pte(VA_DEMAND) flags", *pte_for(VA_DEMAND) & 0x67);
    print_hex("pte(VA_DEMAND+0x1000) flags", *pte_for(VA_DEMAND + 0x1000) & 0x67);
    print_hex("pde(VA_DEMAND) A", pd_a[PDE_INDEX(VA_DEMAND)] & PTE_A);
    print_hex("faults", faults);
    check(faults == 2, "two demand faults");

    serial_puts("[3] unmap, then remap\n");
    *pte_for(VA_DEMAND) = 0;
    invlpg((void *)VA_DEMAND);
    print_hex("read after unmap", peek(VA_DEMAND));
    *pte_for(VA_DEMAND + 0x1000) = FRAME(7) | PTE_P | PTE_W;
    invlpg((void *)(VA_DEMAND + 0x1000));
    print_hex("read after remap to frame 7", peek(VA_DEMAND + 0x1000));
    print_hex("faults", faults);
    check(faults == 3, "one fault for the unmapped page");

    serial_puts("[4] write protection (CR0.WP)\n");
    *pte_for(VA_DEMAND + 0x2000) = FRAME(8) | PTE_P; /* read-only */
    invlpg((void *)(VA_DEMAND + 0x2000));
    u32 before = faults;
    poke(VA_DEMAND + 0x2000, 0xAAAA0000);
    print_hex("WP=0 supervisor write to a read-only page, faults", faults - before);
    print_hex("read", peek(VA_DEMAND + 0x2000));
    write_cr0(read_cr0() | CR0_WP);
    print_hex("cr0.WP", (read_cr0() & CR0_WP) >> 16);
    pf_action = PF_MAKE_WRITABLE;
    poke(VA_DEMAND + 0x2000, 0xBBBB0000);
    print_hex("WP=1 read", peek(VA_DEMAND + 0x2000));
    print_hex("pte flags", *pte_for(VA_DEMAND + 0x2000) & 0x67);
    /* A read-only PDE over a writable PTE: the combined rights are read-only. */
    poke(VA_RO_PDE + 8, 0xCCCC0000);
    print_hex("read", peek(VA_RO_PDE + 8));
    print_hex("faults", faults);
    check(faults == 5, "two write-protection faults");

    serial_puts("[5] CR3 switch\n");
    print_hex("A: VA_DEMAND", peek(VA_DEMAND));
    write_cr3((u32)pd_b);
    print_hex("B: VA_DEMAND", peek(VA_DEMAND));
    print_hex("B: alias", peek(VA_ALIAS + 5 * PAGE_SIZE + 4));
    write_cr3((u32)pd_a);
    print_hex("A again: VA_DEMAND", peek(VA_DEMAND));

    serial_puts("[6] 4 MiB page on demand\n");
    pf_action = PF_MAP_LARGE;
    print_hex("read", peek(VA_LARGE + 9 * PAGE_SIZE));
    pf_action = PF_MAKE_WRITABLE;
    poke(VA_LARGE + 9 * PAGE_SIZE, 0xDDDD0009);
    print_hex("identity read", peek(FRAME(9)));
    print_hex("pde flags", pd_a[PDE_INDEX(VA_LARGE)] & 0xE7);
    print_hex("faults", faults);
    check(faults == 7, "two faults on the 4 MiB page");

    serial_puts("[7] code on demand\n");
    pf_action = PF_MAP_CODE;
    u32 (*fn)(void) = (u32(*)(void))(VA_CODE + 0x40);
    print_hex("call", fn());
    check(pf_last_eip == VA_CODE + 0x40 && pf_last_cr2 == VA_CODE + 0x40, "fetch fault: eip = cr2");
    print_hex("fetch fault error", pf_last_error);
    /* Patch the code through the frame's identity mapping, then remap the page elsewhere. */
    u32 code_frame = *pte_for(VA_CODE) & ~PTE_FLAGS;
    ((volatile u8 *)code_frame)[0x41] = 0xEF;
    ((volatile u8 *)code_frame)[0x42] = 0xBE;
    print_hex("call after patching through another mapping", fn());
    u32 other = FRAME(next_frame++);
    for (u32 i = 0; i < 0x100; i++) ((volatile u8 *)other)[i] = ((volatile u8 *)code_frame)[i];
    ((volatile u8 *)other)[0x42] = 0x5E;
    *pte_for(VA_CODE) = other | PTE_P;
    invlpg((void *)VA_CODE);
    print_hex("call after remap", fn());
    print_hex("faults", faults);
    check(faults == 8, "one code fault");

    serial_puts("[8] accesses that cross a page\n");
    /* mov $0x12345678, %eax starting 2 bytes before an unmapped page: CR2 = the second page,
     * EIP = the instruction. */
    u32 head = FRAME(next_frame++);
    ((volatile u8 *)head)[0xFFE] = 0xB8;
    ((volatile u8 *)head)[0xFFF] = 0x78;
    *pte_for(VA_CODE + 0x10000) = head | PTE_P;
    invlpg((void *)(VA_CODE + 0x10000));
    pf_action = PF_MAP_TAIL;
    fn = (u32(*)(void))(VA_CODE + 0x10FFE);
    print_hex("call across pages", fn());
    print_hex("fault eip", pf_last_eip);
    /* A 4-byte store whose second half lands on a read-only page (CR0.WP = 1): nothing is
     * written before the fault, then the retry writes all four bytes. */
    *pte_for(VA_DEMAND + 0x3000) = FRAME(10) | PTE_P | PTE_W;
    *pte_for(VA_DEMAND + 0x4000) = FRAME(11) | PTE_P;
    invlpg((void *)(VA_DEMAND + 0x3000));
    invlpg((void *)(VA_DEMAND + 0x4000));
    poke(FRAME(10) + 0xFFC, 0x11111111);
    poke(FRAME(11), 0x22222222);
    pf_action = PF_MAKE_WRITABLE;
    u32 seen_low;
    pf_probe_addr = FRAME(10) + 0xFFC;
    __asm__ volatile("movl %1, (%2)" : "=m"(*(volatile u32 *)(VA_DEMAND + 0x3FFE)) : "r"(0xAABBCCDD), "r"(VA_DEMAND + 0x3FFE) : "memory");
    seen_low = peek(FRAME(10) + 0xFFC);
    print_hex("low page after the retried store", seen_low);
    print_hex("high page after the retried store", peek(FRAME(11)));
    /* A 4-byte load across into a not-present page. */
    *pte_for(VA_DEMAND + 0x5000) = FRAME(12) | PTE_P;
    *pte_for(VA_DEMAND + 0x6000) = 0;
    invlpg((void *)(VA_DEMAND + 0x5000));
    invlpg((void *)(VA_DEMAND + 0x6000));
    pf_action = PF_MAP_NEW;
    print_hex("load across pages", peek(VA_DEMAND + 0x5FFD));
    print_hex("faults", faults);

    serial_puts("[9] null page\n");
    pf_action = PF_MAP_NEW;
    u32 null = 0;
    __asm__("" : "+r"(null)); /* a null pointer the compiler cannot see (it would emit UD2) */
    print_hex("read", peek(null));
    print_hex("faults", faults);

    write_cr0(read_cr0() & ~CR0_PG);
    print_hex("paging off, frame 0 read", peek(FRAME(0)));

    if (check_failures != 0) {
        print_hex("failures", (u32)check_failures);
        qemu_exit(1);
    }
    serial_puts("paging: ok\n");
    qemu_exit(0);
}
