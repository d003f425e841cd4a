/* 32-bit paging (no PAE) bits: page-directory and page-table entries, CR0/CR4 bits, #PF error codes. */
#ifndef RINGSHIFT_PAGING_H
#define RINGSHIFT_PAGING_H

#include "io.h"

#define PTE_P 0x001u   /* present */
#define PTE_W 0x002u   /* writable */
#define PTE_U 0x004u   /* user */
#define PTE_A 0x020u   /* accessed */
#define PTE_D 0x040u   /* dirty */
#define PDE_PS 0x080u  /* 4 MiB page (CR4.PSE) */
#define PTE_FLAGS 0xFFFu

#define CR0_WP 0x00010000u
#define CR0_PG 0x80000000u
#define CR4_PSE 0x00000010u

#define PF_P 0x1u /* protection violation (else not present) */
#define PF_W 0x2u /* write */
#define PF_U 0x4u /* CPL 3 */

#define PAGE_SIZE 0x1000u
#define LARGE_PAGE_SIZE 0x400000u
#define PDE_INDEX(va) ((u32)(va) >> 22)
#define PTE_INDEX(va) (((u32)(va) >> 12) & 0x3FF)

#endif
