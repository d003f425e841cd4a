#include "serial.h"

#define COM1 0x3F8
/* 16550 registers, as offsets from the base port. */
#define UART_DATA 0 /* with DLAB=1: divisor latch low */
#define UART_IER 1  /* with DLAB=1: divisor latch high */
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THRE 0x20 /* transmit holding register empty */
#define LCR_DLAB 0x80

void serial_init(void) {
    outb(COM1 + UART_IER, 0x00);  /* polled: no UART interrupts */
    outb(COM1 + UART_LCR, LCR_DLAB);
    outb(COM1 + UART_DATA, 0x01); /* divisor 1: 115200 baud */
    outb(COM1 + UART_IER, 0x00);
    outb(COM1 + UART_LCR, 0x03);  /* 8 data bits, no parity, 1 stop bit */
    outb(COM1 + UART_FCR, 0xC7);  /* enable and clear the FIFOs */
    outb(COM1 + UART_MCR, 0x03);  /* DTR + RTS */
}

void serial_putc(char c) {
    while ((inb(COM1 + UART_LSR) & LSR_THRE) == 0) {
    }
    outb(COM1 + UART_DATA, (u8)c);
}

void serial_puts(const char *s) {
    for (; *s != '\0'; s++) {
        if (*s == '\n') serial_putc('\r');
        serial_putc(*s);
    }
}

/* Shifts only: a freestanding 32-bit kernel has no libgcc for division. */
void serial_puthex(u32 value) {
    static const char digits[] = "0123456789abcdef";
    serial_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4) serial_putc(digits[(value >> shift) & 0xF]);
}

int check_failures;

void check(int ok, const char *what) {
    if (ok) return;
    check_failures++;
    serial_puts("FAIL: ");
    serial_puts(what);
    serial_puts("\n");
}
