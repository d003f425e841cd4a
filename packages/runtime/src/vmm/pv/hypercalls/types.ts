// What a hypercall handler is: the domain and the five argument registers (EBX, ECX, EDX, ESI,
// EDI, unsigned) in, EAX out (0 or more on success, a negative Xen errno on failure), or null
// when the hypercall transferred control itself (iret, block, shutdown) and EAX/EIP stay as set.
import type { PvDomain } from '../domain';

export type HypercallArgs = readonly number[];
export type HypercallHandler = (d: PvDomain, a: HypercallArgs) => number | null;

/** Most entries one batched hypercall may carry here (Xen preempts and continues instead). */
export const MAX_BATCH = 1024;
