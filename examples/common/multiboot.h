/* Multiboot (version 1) constants: Multiboot Specification 0.6.96, §3.1.1 and §3.2. */
#ifndef RINGSHIFT_MULTIBOOT_H
#define RINGSHIFT_MULTIBOOT_H

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002
/* The value a compliant loader leaves in EAX (§3.2). */
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002
/* bit 0: modules page-aligned; bit 1: pass the memory map. No a.out kludge (bit 16): we are ELF. */
#define MULTIBOOT_HEADER_FLAGS 0x00000003

#endif
