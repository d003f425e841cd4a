/* A tiny printf on COM1: %s %c %d %u %x %08x (width and '0' padding for x/d/u), %%.
 * 32-bit arithmetic only: the freestanding kernels have no libgcc for 64-bit division. */
#ifndef RINGSHIFT_KPRINTF_H
#define RINGSHIFT_KPRINTF_H

#include "io.h"

void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
