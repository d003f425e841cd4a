/* COM1 (16550 UART at 0x3F8), polled: the examples' only output device. */
#ifndef RINGSHIFT_SERIAL_H
#define RINGSHIFT_SERIAL_H

#include "io.h"

void serial_init(void);
void serial_putc(char c);
void serial_puts(const char *s);
void serial_puthex(u32 value);

#endif
