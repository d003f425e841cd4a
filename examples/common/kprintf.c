#include "kprintf.h"
#include "serial.h"

static void put_number(u32 value, u32 base, int width, char pad, int negative) {
    static const char digits[] = "0123456789abcdef";
    char buf[12];
    int n = 0;
    do {
        buf[n++] = digits[value % base];
        value /= base;
    } while (value != 0);
    if (negative) buf[n++] = '-';
    for (; width > n; width--) serial_putc(pad);
    while (n > 0) serial_putc(buf[--n]);
}

void kprintf(const char *fmt, ...) {
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    for (; *fmt != '\0'; fmt++) {
        if (*fmt != '%') {
            if (*fmt == '\n') serial_putc('\r');
            serial_putc(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0;
        if (*fmt == '0') { pad = '0'; fmt++; }
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        switch (*fmt) {
        case 's': serial_puts(__builtin_va_arg(ap, const char *)); break;
        case 'c': serial_putc((char)__builtin_va_arg(ap, int)); break;
        case 'u': put_number(__builtin_va_arg(ap, u32), 10, width, pad, 0); break;
        case 'x': put_number(__builtin_va_arg(ap, u32), 16, width, pad, 0); break;
        case 'd': {
            int v = __builtin_va_arg(ap, int);
            put_number(v < 0 ? (u32)-v : (u32)v, 10, width, pad, v < 0);
            break;
        }
        case '%': serial_putc('%'); break;
        case '\0': fmt--; break;
        default: serial_putc('%'); serial_putc(*fmt); break;
        }
    }
    __builtin_va_end(ap);
}
