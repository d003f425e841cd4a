/* paging (examples/paging) ported to Xen's 32-bit PAE PV ABI. A PV kernel never writes a page
 * table or CR3 itself: its tables are read-only to it and every change goes through Xen, which
 * validates it (xen.h: mmu_update, update_va_mapping, mmuext_op):
 *   building tables, then CR3   -> fill them while still ordinary pages, make every table page
 *                                  read-only (update_va_mapping), MMUEXT_PIN_L3_TABLE (Xen
 *                                  validates the whole tree), MMUEXT_NEW_BASEPTR
 *   PTE store + INVLPG          -> update_va_mapping(va, pte, UVMF_INVLPG)
 *   PDE store                   -> mmu_update (MMU_NORMAL_PT_UPDATE on the entry's machine address)
 *   CR2                         -> vcpu_info.arch.cr2, written by Xen when it bounces the #PF
 *   physical frame addresses    -> pseudo-physical ones; a PTE holds the MFN (P2M list)
 * What has no PV form: 32-bit (non-PAE) tables (the port uses PAE, 4 KiB pages), 4 MiB pages
 * (Xen maps no superpages for PV guests: the port uses 4 KiB pages where native used PSE),
 * CR0.WP = 0 (Xen always runs guests with WP set) and turning paging off. The lines about those
 * differ and test/e2e/pv-examples.test.ts lists them; the rest print what the native version
 * prints, frames by their pseudo-physical address. A PV-only section [10] shows updates Xen
 * refuses (a page table mapped writable, a frame the guest does not own) and that a refused
 * update changes nothing.
 * Exit code: 0 = every check passed (pv-common/README.md). */
#include "check.h"
#include "pv.h"

/* The frames the tests use: pseudo-physical 8 MiB and up, mapped at the same virtual address
 * (the "identity window", native's identity 4 MiB page). */
#define FRAME_BASE 0x00800000u
#define FRAME(n) (FRAME_BASE + (u32)(n) * PAGE_SIZE)
#define FRAMES 32
#define VA_ALIAS 0x40000000u
#define VA_DEMAND 0x80000000u
#define VA_RO_PDE 0x80400000u
#define VA_LARGE 0xC0000000u
#define VA_CODE 0x80010000u
/* The low mappings the new tables keep from Xen's bootstrap tables: the image and start_info,
 * the P2M list, the console page (all below here with VIRT_BASE 0); page 0-1 MiB left unmapped. */
#define LOW_START 0x00100000u
#define LOW_END 0x00400000u

enum {
    L3_A, L3_B, L2_0, L2_1, L2_2, L2_3, L2_2B, L2_3B,
    PT_LOW0, PT_LOW1, PT_FRAMES, PT_ALIAS, PT_HI, PT_HI_B, PT_RO, PT_LARGE, N_TABLES
};
static u64 tables[N_TABLES][512] __attribute__((aligned(4096)));

static u32 faults;
static u32 next_frame = 16;

static inline u32 peek(u32 va) { return *(volatile u32 *)va; }
static inline void poke(u32 va, u32 v) { *(volatile u32 *)va = v; }
static inline u32 l2_index(u32 va) { return (va >> 21) & 511; }
static inline u32 l1_index(u32 va) { return (va >> 12) & 511; }
static u64 table_entry(int t, u32 flags) { return mfn_pte(virt_to_mfn(tables[t]), flags); }
static u64 frame_pte(u32 frame, u32 flags) { return mfn_pte(pfn_to_mfn(frame >> 12), flags); }

/* The L2 entry for va in the current tables. */
static u64 *pde_for(u32 va) {
    u64 l3e = pv_l3[va >> 30];
    return &((u64 *)(mfn_to_pfn((u32)((l3e & PTE_ADDR_MASK) >> 12)) << 12))[l2_index(va)];
}
static u32 pte_flags(u32 va) { u64 *p = pv_pte_ptr(va); return p ? (u32)*p & 0x67 : 0xFFFFFFFFu; }

static void map(u32 va, u64 pte) {
    long rc = HYPERVISOR_update_va_mapping(va, pte, UVMF_INVLPG);
    if (rc != 0) {
        print_hex("update_va_mapping refused", (u32)rc);
        print_hex("  va", va);
        pv_exit(1);
    }
}

enum pf_action { PF_MAP_NEW, PF_MAKE_WRITABLE, PF_MAP_LARGE, PF_MAP_CODE, PF_MAP_TAIL };
static enum pf_action pf_action;
static u32 pf_last_cr2, pf_last_error, pf_last_eip;
static u32 pf_probe_addr;

static void page_fault(struct pv_frame *f) {
    u32 cr2 = pv_vcpu->cr2;
    u32 page = cr2 & ~0xFFFu;
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
    switch (pf_action) {
    case PF_MAP_NEW: {
        u32 frame = FRAME(next_frame++);
        map(page, frame_pte(frame, _PAGE_PRESENT | _PAGE_RW));
        serial_puts("  mapped to frame ");
        serial_puthex(frame);
        serial_puts("\n");
        break;
    }
    case PF_MAKE_WRITABLE: {
        u64 *pde = pde_for(cr2);
        if (!(*pde & _PAGE_RW) && pv_set_entry(pde, *pde | _PAGE_RW) != 0) pv_exit(1);
        u64 *pte = pv_pte_ptr(cr2);
        map(page, *pte | _PAGE_RW);
        serial_puts("  made writable\n");
        break;
    }
    case PF_MAP_LARGE:
        /* Native maps a 4 MiB page onto FRAME_BASE; the port, the one 4 KiB page of it. */
        map(page, frame_pte(FRAME_BASE + (cr2 & 0x3FF000u), _PAGE_PRESENT));
        serial_puts("  mapped a 4 KiB read-only page (no superpages under PV)\n");
        break;
    case PF_MAP_CODE: {
        static const u8 code[] = {0xB8, 0x0D, 0x60, 0x00, 0x00, 0xC3};
        u32 frame = FRAME(next_frame++);
        for (u32 i = 0; i < sizeof(code); i++) ((volatile u8 *)frame)[(cr2 & 0xFFF) + i] = code[i];
        map(page, frame_pte(frame, _PAGE_PRESENT));
        serial_puts("  mapped code\n");
        break;
    }
    case PF_MAP_TAIL: {
        static const u8 tail[] = {0x56, 0x34, 0x12, 0xC3};
        u32 frame = FRAME(next_frame++);
        for (u32 i = 0; i < sizeof(tail); i++) ((volatile u8 *)frame)[i] = tail[i];
        map(page, frame_pte(frame, _PAGE_PRESENT));
        serial_puts("  mapped the tail\n");
        break;
    }
    }
}

static int is_table_page(u32 va) {
    return va >= (u32)tables && va < (u32)tables + sizeof(tables);
}

/* Builds address spaces A and B (PAE: one L3 each, four L2s each, shared where native shares a
 * page table), makes every table page read-only, pins both and switches to A. */
static void build_tables(void) {
    const u32 table_flags = _PAGE_PRESENT | _PAGE_RW;
    /* Low 4 MiB: copies of the bootstrap mappings (writable ones stay writable, except our own
     * table pages, which no writable mapping may reach). */
    for (u32 va = LOW_START; va < LOW_END; va += PAGE_SIZE) {
        u64 *src = pv_pte_ptr(va);
        u64 pte = src ? *src : 0;
        if (is_table_page(va)) pte &= ~(u64)_PAGE_RW;
        tables[va < 0x200000u ? PT_LOW0 : PT_LOW1][l1_index(va)] = pte;
    }
    for (u32 n = 0; n < FRAMES; n++) tables[PT_FRAMES][l1_index(FRAME(n))] = frame_pte(FRAME(n), _PAGE_PRESENT | _PAGE_RW);
    for (u32 n = 0; n < FRAMES; n++) tables[PT_ALIAS][n] = frame_pte(FRAME(n), _PAGE_PRESENT | _PAGE_RW);
    tables[PT_RO][0] = frame_pte(FRAME(2), _PAGE_PRESENT | _PAGE_RW);
    tables[PT_HI_B][0] = frame_pte(FRAME(3), _PAGE_PRESENT | _PAGE_RW);

    tables[L2_0][0] = table_entry(PT_LOW0, table_flags);
    tables[L2_0][1] = table_entry(PT_LOW1, table_flags);
    tables[L2_0][l2_index(FRAME_BASE)] = table_entry(PT_FRAMES, table_flags);
    tables[L2_1][l2_index(VA_ALIAS)] = table_entry(PT_ALIAS, table_flags);
    tables[L2_2][l2_index(VA_DEMAND)] = table_entry(PT_HI, table_flags);
    tables[L2_2][l2_index(VA_RO_PDE)] = table_entry(PT_RO, _PAGE_PRESENT); /* read-only PDE */
    tables[L2_3][l2_index(VA_LARGE)] = table_entry(PT_LARGE, table_flags);
    for (u32 i = 0; i < 512; i++) {
        tables[L2_2B][i] = tables[L2_2][i];
        tables[L2_3B][i] = tables[L2_3][i];
    }
    tables[L2_2B][l2_index(VA_DEMAND)] = table_entry(PT_HI_B, table_flags);
    /* PAE PDPTEs carry only P (the other low bits are reserved); B gets its own L2 for slot 3,
     * which Xen completes with its hypervisor mappings. */
    for (int s = 0; s < 4; s++) {
        static const int a[4] = {L2_0, L2_1, L2_2, L2_3}, b[4] = {L2_0, L2_1, L2_2B, L2_3B};
        tables[L3_A][s] = table_entry(a[s], _PAGE_PRESENT);
        tables[L3_B][s] = table_entry(b[s], _PAGE_PRESENT);
    }
    for (int t = 0; t < N_TABLES; t++) map((u32)tables[t], table_entry(t, _PAGE_PRESENT | _PAGE_ACCESSED));
    check(pv_mmuext(MMUEXT_PIN_L3_TABLE, virt_to_mfn(tables[L3_A])) == 0, "pin L3 A");
    check(pv_mmuext(MMUEXT_PIN_L3_TABLE, virt_to_mfn(tables[L3_B])) == 0, "pin L3 B");
}

static void switch_to(int l3) {
    check(pv_mmuext(MMUEXT_NEW_BASEPTR, virt_to_mfn(tables[l3])) == 0, "new baseptr");
    pv_l3 = tables[l3];
}

void kmain(struct start_info *si) {
    serial_puts("paging example\n");
    check(si->pt_base < LOW_END && si->mfn_list < LOW_END && (u32)si < LOW_END, "bootstrap area below 4 MiB");
    pv_set_trap(TRAP_page_fault, 0, 0, page_fault);

    build_tables();
    switch_to(L3_A);
    for (u32 n = 0; n < FRAMES; n++) poke(FRAME(n), 0xF0000000u | n);
    serial_puts("pinned and loaded PAE tables\n");

    serial_puts("[1] an alias of the frames (4 KiB pages)\n");
    print_hex("alias read", peek(VA_ALIAS + 5 * PAGE_SIZE));
    print_hex("alias pte A/D after read", pte_flags(VA_ALIAS + 5 * PAGE_SIZE) & (_PAGE_ACCESSED | _PAGE_DIRTY));
    poke(VA_ALIAS + 5 * PAGE_SIZE + 4, 0x12345678);
    print_hex("alias pte A/D after write", pte_flags(VA_ALIAS + 5 * PAGE_SIZE) & (_PAGE_ACCESSED | _PAGE_DIRTY));
    print_hex("identity read of the alias write", peek(FRAME(5) + 4));
    check(peek(FRAME(5) + 4) == 0x12345678, "alias write visible through identity");

    serial_puts("[2] demand paging (4 KiB)\n");
    pf_action = PF_MAP_NEW;
    print_hex("read", peek(VA_DEMAND + 0x10));
    poke(VA_DEMAND + 0x1234, 0xCAFE0001);
    print_hex("read back", peek(VA_DEMAND + 0x1234));
    print_hex("pte(VA_DEMAND) flags", pte_flags(VA_DEMAND));
    print_hex("pte(VA_DEMAND+0x1000) flags", pte_flags(VA_DEMAND + 0x1000));
    print_hex("pde(VA_DEMAND) A", (u32)*pde_for(VA_DEMAND) & _PAGE_ACCESSED);
    print_hex("faults", faults);
    check(faults == 2, "two demand faults");

    serial_puts("[3] unmap, then remap\n");
    /* The two-step form of a PTE store + INVLPG: mmu_update on the entry, then
     * MMUEXT_INVLPG_LOCAL (update_va_mapping with UVMF_INVLPG does both in one call). */
    check(pv_set_entry(pv_pte_ptr(VA_DEMAND), 0) == 0, "mmu_update of an L1 entry");
    check(pv_mmuext(MMUEXT_INVLPG_LOCAL, VA_DEMAND) == 0, "MMUEXT_INVLPG_LOCAL");
    print_hex("read after unmap", peek(VA_DEMAND));
    map(VA_DEMAND + 0x1000, frame_pte(FRAME(7), _PAGE_PRESENT | _PAGE_RW));
    print_hex("read after remap to frame 7", peek(VA_DEMAND + 0x1000));
    print_hex("faults", faults);
    check(faults == 3, "one fault for the unmapped page");

    serial_puts("[4] write protection (CR0.WP)\n");
    map(VA_DEMAND + 0x2000, frame_pte(FRAME(8), _PAGE_PRESENT));
    pf_action = PF_MAKE_WRITABLE;
    poke(VA_DEMAND + 0x2000, 0xBBBB0000);
    print_hex("WP=1 read", peek(VA_DEMAND + 0x2000));
    print_hex("pte flags", pte_flags(VA_DEMAND + 0x2000));
    poke(VA_RO_PDE + 8, 0xCCCC0000);
    print_hex("read", peek(VA_RO_PDE + 8));
    print_hex("faults", faults);
    check(faults == 5, "two write-protection faults");

    serial_puts("[5] CR3 switch\n");
    print_hex("A: VA_DEMAND", peek(VA_DEMAND));
    switch_to(L3_B);
    print_hex("B: VA_DEMAND", peek(VA_DEMAND));
    print_hex("B: alias", peek(VA_ALIAS + 5 * PAGE_SIZE + 4));
    switch_to(L3_A);
    print_hex("A again: VA_DEMAND", peek(VA_DEMAND));

    serial_puts("[6] 4 MiB page on demand\n");
    pf_action = PF_MAP_LARGE;
    print_hex("read", peek(VA_LARGE + 9 * PAGE_SIZE));
    pf_action = PF_MAKE_WRITABLE;
    poke(VA_LARGE + 9 * PAGE_SIZE, 0xDDDD0009);
    print_hex("identity read", peek(FRAME(9)));
    print_hex("pte flags (4 KiB page)", pte_flags(VA_LARGE + 9 * PAGE_SIZE));
    print_hex("faults", faults);
    check(faults == 7, "two faults on the 4 MiB page");

    serial_puts("[7] code on demand\n");
    pf_action = PF_MAP_CODE;
    u32 (*fn)(void) = (u32(*)(void))(VA_CODE + 0x40);
    print_hex("call", fn());
    check(pf_last_eip == VA_CODE + 0x40 && pf_last_cr2 == VA_CODE + 0x40, "fetch fault: eip = cr2");
    print_hex("fetch fault error", pf_last_error);
    u32 code_frame = FRAME(next_frame - 1);
    ((volatile u8 *)code_frame)[0x41] = 0xEF;
    ((volatile u8 *)code_frame)[0x42] = 0xBE;
    print_hex("call after patching through another mapping", fn());
    u32 other = FRAME(next_frame++);
    for (u32 i = 0; i < 0x100; i++) ((volatile u8 *)other)[i] = ((volatile u8 *)code_frame)[i];
    ((volatile u8 *)other)[0x42] = 0x5E;
    map(VA_CODE, frame_pte(other, _PAGE_PRESENT));
    print_hex("call after remap", fn());
    print_hex("faults", faults);
    check(faults == 8, "one code fault");

    serial_puts("[8] accesses that cross a page\n");
    u32 head = FRAME(next_frame++);
    ((volatile u8 *)head)[0xFFE] = 0xB8;
    ((volatile u8 *)head)[0xFFF] = 0x78;
    map(VA_CODE + 0x10000, frame_pte(head, _PAGE_PRESENT));
    pf_action = PF_MAP_TAIL;
    fn = (u32(*)(void))(VA_CODE + 0x10FFE);
    print_hex("call across pages", fn());
    print_hex("fault eip", pf_last_eip);
    map(VA_DEMAND + 0x3000, frame_pte(FRAME(10), _PAGE_PRESENT | _PAGE_RW));
    map(VA_DEMAND + 0x4000, frame_pte(FRAME(11), _PAGE_PRESENT));
    poke(FRAME(10) + 0xFFC, 0x11111111);
    poke(FRAME(11), 0x22222222);
    pf_action = PF_MAKE_WRITABLE;
    pf_probe_addr = FRAME(10) + 0xFFC;
    __asm__ volatile("movl %1, (%2)" : "=m"(*(volatile u32 *)(VA_DEMAND + 0x3FFE)) : "r"(0xAABBCCDD), "r"(VA_DEMAND + 0x3FFE) : "memory");
    print_hex("low page after the retried store", peek(FRAME(10) + 0xFFC));
    print_hex("high page after the retried store", peek(FRAME(11)));
    map(VA_DEMAND + 0x5000, frame_pte(FRAME(12), _PAGE_PRESENT));
    map(VA_DEMAND + 0x6000, 0);
    pf_action = PF_MAP_NEW;
    print_hex("load across pages", peek(VA_DEMAND + 0x5FFD));
    print_hex("faults", faults);

    serial_puts("[9] null page\n");
    pf_action = PF_MAP_NEW;
    u32 null = 0;
    __asm__("" : "+r"(null));
    print_hex("read", peek(null));
    print_hex("faults", faults);

    /* PV only: what the validation refuses, and that a refusal changes nothing. */
    serial_puts("[10] updates Xen refuses\n");
    u64 *pt_hi_self = pv_pte_ptr((u32)tables[PT_HI]);
    u64 before = *pt_hi_self;
    long rc = HYPERVISOR_update_va_mapping((u32)tables[PT_HI], before | _PAGE_RW, UVMF_INVLPG);
    serial_puts(rc < 0 ? "  a page table mapped writable: refused\n" : "  a page table mapped writable: ACCEPTED\n");
    check(rc < 0 && *pt_hi_self == before, "page table still read-only");
    u64 *slot = &tables[PT_HI][l1_index(VA_DEMAND + 0x7000)];
    before = *slot;
    /* An MFN beyond every frame of the guest (start_info.nr_pages), owned by no one we know. */
    rc = pv_set_entry(slot, mfn_pte(0x000FFFFFu, _PAGE_PRESENT | _PAGE_RW));
    serial_puts(rc < 0 ? "  a frame we do not own: refused\n" : "  a frame we do not own: ACCEPTED\n");
    check(rc < 0 && *slot == before, "entry unchanged");

    if (check_failures != 0) {
        print_hex("failures", (u32)check_failures);
        pv_exit(1);
    }
    serial_puts("paging: ok\n");
    pv_exit(0);
}
