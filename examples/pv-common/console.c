/* The console of a PV kernel. An initial domain (SIF_INITDOMAIN) writes with
 * console_io(CONSOLEIO_write); any other domain owns one page of PV console ring
 * (io/console.h: start_info.console.domU.mfn) and kicks the backend through its event channel
 * (start_info.console.domU.evtchn). Bytes are gathered into lines so that one hypercall carries
 * a line, as Linux's printk does, rather than one per byte; the bytes themselves are exactly
 * what the native examples write to COM1 ('\n' sent as "\r\n"). */
#include "check.h"
#include "pv.h"

static char line[256];
static u32 line_len;
static volatile struct xencons_interface *ring;
static u32 ring_port;

void console_init(void) {
    if (xen_start_info->flags & SIF_INITDOMAIN) return;
    /* The ring page lies in the bootstrap area, mapped at VA = its pseudo-physical address. */
    ring = (volatile struct xencons_interface *)(mfn_to_pfn(xen_start_info->console.domU.mfn) << 12);
    ring_port = xen_start_info->console.domU.evtchn;
}

static void ring_notify(void) {
    struct evtchn_send op = {ring_port};
    HYPERVISOR_event_channel_op(EVTCHNOP_send, &op);
}

static void ring_write(const char *s, u32 n) {
    while (n > 0) {
        u32 cons = ring->out_cons, prod = ring->out_prod;
        __asm__ volatile("" ::: "memory"); /* read the indexes before the data (x86: ordered) */
        if (prod - cons >= sizeof(ring->out)) {
            /* Full: let the backend run, then look again. */
            ring_notify();
            HYPERVISOR_sched_op(SCHEDOP_yield, 0);
            continue;
        }
        while (n > 0 && prod - cons < sizeof(ring->out)) {
            ring->out[prod & (sizeof(ring->out) - 1)] = *s++;
            prod++;
            n--;
        }
        __asm__ volatile("" ::: "memory"); /* the data before the index */
        ring->out_prod = prod;
        ring_notify();
    }
}

void console_flush(void) {
    if (line_len == 0) return;
    if (ring) ring_write(line, line_len);
    else HYPERVISOR_console_io(CONSOLEIO_write, line_len, line);
    line_len = 0;
}

void serial_putc(char c) {
    line[line_len++] = c;
    if (c == '\n' || line_len == sizeof(line)) console_flush();
}

void serial_puts(const char *s) {
    for (; *s != '\0'; s++) {
        if (*s == '\n') serial_putc('\r');
        serial_putc(*s);
    }
}

void serial_puthex(u32 value) {
    static const char digits[] = "0123456789abcdef";
    serial_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4) serial_putc(digits[(value >> shift) & 0xF]);
}

void serial_putdec(u32 value) {
    char buf[11];
    int n = 0;
    do {
        buf[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0) serial_putc(buf[--n]);
}

void print_hex(const char *name, u32 value) {
    serial_puts(name);
    serial_puts("=");
    serial_puthex(value);
    serial_puts("\n");
}

int check_failures;

void check(int ok, const char *what) {
    if (ok) return;
    check_failures++;
    serial_puts("FAIL: ");
    serial_puts(what);
    serial_puts("\n");
}
