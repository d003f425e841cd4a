// Public API of @ringshift/runtime: named re-exports only.
export { Cpu, ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_S, CODE_PLUMBING, CODE_WATCHED } from './cpu/cpu';
export type { Handler, PortBus, StopReason } from './cpu/cpu';
export { buildHandlers, FAMILIES, OPSIZE } from './cpu/handlers';
export type { Family } from './cpu/handlers';
export { Fault, Vector } from './cpu/fault';
export { UnsupportedFeature } from './cpu/interrupts';
export { GprIndex, SegReg } from './cpu/registers';
export { PfError, loadPdptes } from './cpu/paging';
export type { WalkRecord } from './cpu/paging';
export { ABSENT_FEATURES, absentFeatureOf } from './cpu/absent-features';
export type { AbsentFeature, AbsentRule, CpuidBit } from './cpu/absent-features';
export { PhysicalMemory } from './machine/memory';
export type { MmioDevice } from './machine/memory';
export { Eflags } from './cpu/eflags';
export { CONTINUE, EventKind, GpaAccess, HANDLED, MonitorExit, PASS_THROUGH, attachInterceptor, exit, exitFor, interceptorOf, proceed } from './cpu/intercept';
export type { CrAccess, ExceptionEvent, Exit, GuestPhysicalMap, Interceptor, IoAccess, MsrAccess, PageWalk, Verdict } from './cpu/intercept';
export { Tlb } from './cpu/tlb';
export { MULTIBOOT_BOOTLOADER_MAGIC, MULTIBOOT_HEADER_MAGIC, MULTIBOOT_INFO_ADDRESS, MultibootError, loadMultiboot } from './machine/multiboot';
export type { MultibootLoad, MultibootOptions } from './machine/multiboot';
export { IoBus, openBus } from './machine/io-bus';
export type { PortDevice } from './machine/io-bus';
export { Clock, NS_PER_INSTRUCTION, TSC_HZ } from './machine/clock';
export type { ClockOptions } from './machine/clock';
export { COM1_BASE, COM1_IRQ, Uart16550 } from './machine/devices/uart16550';
export { Pic8259 } from './machine/devices/pic8259';
export { PIT_HZ, Pit8254, nsAtPitTicks, pitTicksAt } from './machine/devices/pit8254';
export { Cmos, DEFAULT_RTC_EPOCH_MS } from './machine/devices/cmos';
export type { CmosOptions } from './machine/devices/cmos';
export { DebugConsole, DebugExit, PostCode, SystemControlA } from './machine/devices/misc';
export { DEFAULT_MEMORY_BYTES, Machine, SLICE_INSTRUCTIONS } from './machine/machine';
export type { MachineOptions, RunLimits, RunReason, RunRegisters, RunReport } from './machine/machine';
// vmm/: monitors (issue 7: the ring-1 rewrite and deprivileged backends).
export { PATCHMAP_FLAG_INLINE_FLAT_DS, PATCHMAP_FLAG_KERNEL, PATCHMAP_FLAG_LOADER, PATCHMAP_SECTION, PATCHMAP_VERSION, PatchMapError, STUB_RANGE_LOAD, STUB_RANGE_LOADER, decodePatchMap } from './vmm/rewrite/patchmap';
export type { PatchMap, PatchMapSite, SiteReason, SiteTactic, StubKind, StubRange } from './vmm/rewrite/patchmap';
export { checkRewrittenImage, hasPatchMap } from './vmm/rewrite/image';
export type { CheckOptions, RewrittenImage } from './vmm/rewrite/image';
export { sha256Hex } from './vmm/sha256';
export { BACKENDS, loadGuest, runGuest } from './vmm/backends';
export type { BackendName, Guest, GuestOptions, GuestReport } from './vmm/backends';
export { ExitAccounting, exitReasonOfMnemonic } from './vmm/accounting';
export { COST_PARAMETERS, CostModelError, DEFAULT_COST_MODEL, costModel, modelCycles, parseCostOverrides } from './vmm/cost-model';
export type { CostEntry, CostModel, CostParameter, CycleBreakdown, OperationCounts, TransferKind } from './vmm/cost-model';
export type { ExitStats, ExitVia, SiteCount } from './vmm/accounting';
export { MONITOR_LINEAR, Ring1Monitor, SEGMENT_CLIP, SHADOW_LDT_BYTES, VirtualCpu, expandDownLimit, ring1MemoryBytes, shadowDescriptor } from './vmm/ring1/monitor';
export type { Ring1Options } from './vmm/ring1/monitor';
export { HYPERCALL, HYPERCALL_VERSION, HvmMonitor, KVM_ENOSYS, KVM_EPERM, hvmMemoryBytes } from './vmm/hvm/monitor';
export type { HvmOptions } from './vmm/hvm/monitor';
export { CONTROLS, ControlsError, controlNames, controlsOn, defaultControls, isOn as controlIsOn, parseControls } from './vmm/hvm/controls';
export type { ControlName, ControlRow, ControlWords } from './vmm/hvm/controls';
export { VMCS, VMCS_FIELDS, VmcsType, VmcsWidth, decodeEncoding } from './vmm/hvm/vmcs-fields';
export type { VmcsFieldRow } from './vmm/hvm/vmcs-fields';
export { Vmcs, VmcsError } from './vmm/hvm/vmcs';
export { EPT_EXECUTE, EPT_MEMTYPE_WB, EPT_READ, EPT_RWX, EPT_WRITE, EptError, EptTables, EptTranslator, misconfigured as eptMisconfigured } from './vmm/hvm/ept';
export type { HvmExit } from './vmm/hvm/exits';
// vmm/pv: the paravirtual backend (issue 8: Xen's 32-bit PAE PV ABI).
export { DEFAULT_PV_MEMORY_BYTES, loadPv } from './vmm/pv/loader';
export type { PvBootstrap, PvGuest, PvLoadOptions } from './vmm/pv/loader';
export { DEFAULT_PERIODIC_NS, PvDomain, UPCALL_VECTOR, XEN_CPUID_PREFIX, xenCpuidLeaf } from './vmm/pv/domain';
export type { PvDomainOptions, PvReport } from './vmm/pv/domain';
export { PvImageError } from './vmm/pv/elf';
export { SUPPORTED_XENFEATS, XENFEAT_NAMES, isPvImage, xenGuestParams } from './vmm/pv/elfnotes';
export type { PaeMode, XenGuestParams } from './vmm/pv/elfnotes';
export { hypercallPage } from './vmm/pv/hypercall-page';
export { HYPERCALLS } from './vmm/pv/hypercalls/table';
export type { HypercallEntry } from './vmm/pv/hypercalls/table';
export { PT_L1, PT_L2, PT_L3, PT_NONE, PT_SEGDESC, PT_WRITABLE } from './vmm/pv/mm';
export { PV_GDT_LINEAR, pvLayout } from './vmm/pv/layout';
export type { PvLayout } from './vmm/pv/layout';
export {
  EVTCHNOP, FLAT_RING1_CS, FLAT_RING1_DS, FLAT_RING3_CS, FLAT_RING3_DS, HYPERCALL_VECTOR, HYPERVISOR, HYPERVISOR_VIRT_START_PAE,
  MACH2PHYS_VIRT_START_PAE, MMUEXT, SCHEDOP, SHARED_INFO, SHUTDOWN, SIF_INITDOMAIN, SIF_PRIVILEGED, START_INFO,
  START_INFO_MAGIC_X86_32P, VCPU_INFO, VIRQ_TIMER, XENCONS, XEN_ELFNOTE, XEN_ERRNO,
} from './vmm/pv/abi';
