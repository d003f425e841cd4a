// Public API of @ringshift/runtime: named re-exports only.
export { Cpu, ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S } from './cpu/cpu';
export type { Handler, PortBus, StopReason } from './cpu/cpu';
export { buildHandlers, FAMILIES, OPSIZE } from './cpu/handlers';
export type { Family } from './cpu/handlers';
export { Fault, Vector } from './cpu/fault';
export { UnsupportedFeature } from './cpu/interrupts';
export { GprIndex, SegReg } from './cpu/registers';
export { PfError } from './cpu/paging';
export { PhysicalMemory } from './machine/memory';
export type { MmioDevice } from './machine/memory';
export { Eflags } from './cpu/eflags';
export { CONTINUE, EventKind, HANDLED, MonitorExit, PASS_THROUGH, attachInterceptor, exit, exitFor, interceptorOf, proceed } from './cpu/intercept';
export type { CrAccess, ExceptionEvent, Exit, Interceptor, IoAccess, MsrAccess, PageWalk, Verdict } from './cpu/intercept';
export { Tlb } from './cpu/tlb';
