// The hypercall page as Xen fills it (xen/arch/x86/pv/hypercall.c pv_ring1_init_hypercall_page,
// after xen/arch/x86/domain.c fills the page with 0xCC): 128 slots of 32 bytes, each
// `mov eax, nr; int 0x82; ret`, except slot 23 (iret), which the guest jumps to:
// `push eax; mov eax, 23; int 0x82`.
import { HYPERCALL_SLOTS, HYPERCALL_SLOT_SIZE, HYPERCALL_VECTOR, HYPERVISOR } from './abi';

export function hypercallPage(): Uint8Array {
  const page = new Uint8Array(4096).fill(0xcc);
  for (let nr = 0; nr < HYPERCALL_SLOTS; nr++) {
    const at = nr * HYPERCALL_SLOT_SIZE;
    const movEax = [0xb8, nr & 0xff, 0, 0, 0];
    const bytes = nr === HYPERVISOR.iret ? [0x50, ...movEax, 0xcd, HYPERCALL_VECTOR] : [...movEax, 0xcd, HYPERCALL_VECTOR, 0xc3];
    page.set(bytes, at);
  }
  return page;
}
