// Xen's public x86_32 PV ABI: the numbers and structure layouts the pv backend implements, each
// with the public header it comes from (xen/include/public/ in xen-project/xen; measured offsets
// and sources in shared/reference/xen-x86_32-pv.md). Only values live here; behaviour is in the
// files that use them.

/** xen.h: __HYPERVISOR_* hypercall numbers (EAX of `int 0x82`). */
export const HYPERVISOR = {
  set_trap_table: 0,
  mmu_update: 1,
  set_gdt: 2,
  stack_switch: 3,
  set_callbacks: 4,
  fpu_taskswitch: 5,
  update_descriptor: 10,
  memory_op: 12,
  multicall: 13,
  update_va_mapping: 14,
  set_timer_op: 15,
  xen_version: 17,
  console_io: 18,
  grant_table_op: 20,
  vm_assist: 21,
  iret: 23,
  vcpu_op: 24,
  mmuext_op: 26,
  sched_op: 29,
  callback_op: 30,
  event_channel_op: 32,
  physdev_op: 33,
} as const;

/** Xen's errno values (public errno.h); hypercalls return them negated in EAX. */
export const XEN_ERRNO = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EFAULT: 14, EBUSY: 16, EEXIST: 17, EINVAL: 22, ENOSPC: 28, ERANGE: 34, ENOSYS: 38,
} as const;
export const EPERM = -XEN_ERRNO.EPERM;
export const ENOENT = -XEN_ERRNO.ENOENT;
export const ESRCH = -XEN_ERRNO.ESRCH;
export const EFAULT = -XEN_ERRNO.EFAULT;
export const EBUSY = -XEN_ERRNO.EBUSY;
export const EEXIST = -XEN_ERRNO.EEXIST;
export const EINVAL = -XEN_ERRNO.EINVAL;
export const ENOSPC = -XEN_ERRNO.ENOSPC;
export const ERANGE = -XEN_ERRNO.ERANGE;
export const ENOSYS = -XEN_ERRNO.ENOSYS;

/** irq-vectors.h (Xen): the hypercall trap vector; its IDT gate has DPL 1 (ring 1 only). */
export const HYPERCALL_VECTOR = 0x82;

/** arch-x86/xen-x86_32.h: Xen's flat segments (reserved GDT entries 7171-7174). */
export const FLAT_RING1_CS = 0xe019;
export const FLAT_RING1_DS = 0xe021;
export const FLAT_RING1_SS = 0xe021;
export const FLAT_RING3_CS = 0xe02b;
export const FLAT_RING3_DS = 0xe033;
export const FLAT_RING3_SS = 0xe033;
/** arch-x86/xen.h: the guest owns GDT entries below FIRST_RESERVED_GDT_ENTRY (14 pages of 512). */
export const FIRST_RESERVED_GDT_PAGE = 14;
export const FIRST_RESERVED_GDT_ENTRY = FIRST_RESERVED_GDT_PAGE * 512;
/** arch-x86/xen-x86_32.h: start of the hypervisor hole of a PAE guest; the M2P table begins there. */
export const HYPERVISOR_VIRT_START_PAE = 0xf5800000;
export const MACH2PHYS_VIRT_START_PAE = 0xf5800000;
export const MACH2PHYS_VIRT_END_PAE = 0xf6800000;
/** xen.h: the M2P entry of a frame that no guest page backs (INVALID_M2P_ENTRY, ~0). */
export const INVALID_M2P_ENTRY = 0xffffffff;

/** xen.h start_info_t, x86_32 (1112 bytes). */
export const START_INFO = {
  magic: 0x00, nr_pages: 0x20, shared_info: 0x24, flags: 0x28, store_mfn: 0x2c, store_evtchn: 0x30,
  console_mfn: 0x34, console_evtchn: 0x38, pt_base: 0x3c, nr_pt_frames: 0x40, mfn_list: 0x44,
  mod_start: 0x48, mod_len: 0x4c, cmd_line: 0x50, first_p2m_pfn: 0x450, nr_p2m_frames: 0x454, size: 0x458,
} as const;
/** xen.h MAX_GUEST_CMDLINE. */
export const MAX_GUEST_CMDLINE = 1024;
/** xen.h: start_info.flags. */
export const SIF_PRIVILEGED = 1 << 0;
export const SIF_INITDOMAIN = 1 << 1;
/** xc_dom_x86.c / pv/dom0_build.c: the magic of a 32-bit PAE guest. */
export const START_INFO_MAGIC_X86_32P = 'xen-3.0-x86_32p';

/** xen.h shared_info / vcpu_info (x86_32: shared_info is 2344 bytes). */
export const SHARED_INFO = {
  vcpu_info: 0x000, evtchn_pending: 0x800, evtchn_mask: 0x880, wc_version: 0x900, wc_sec: 0x904, wc_nsec: 0x908,
  max_pfn: 0x90c, pfn_to_mfn_frame_list_list: 0x910, nmi_reason: 0x914, wc_sec_hi: 0x924, size: 0x928,
} as const;
export const VCPU_INFO = {
  evtchn_upcall_pending: 0x00, evtchn_upcall_mask: 0x01, evtchn_pending_sel: 0x04, cr2: 0x08,
  time_version: 0x20, tsc_timestamp: 0x28, system_time: 0x30, tsc_to_system_mul: 0x38, tsc_shift: 0x3c, time_flags: 0x3d,
  size: 0x40,
} as const;
/** event_channel.h: the 2-level ABI on a 32-bit guest: 32 words of 32 bits. */
export const NR_EVENT_CHANNELS = 1024;

/** arch-x86/xen.h trap_info (8 bytes): vector u8, flags u8 (DPL in 1:0, bit 2 masks events), cs u16, address u32. */
export const TRAP_INFO_SIZE = 8;
export const TI_DPL_MASK = 3;
export const TI_MASK_EVENTS = 4;

/** xen.h mmu_update_t {u64 ptr, u64 val}; the low 2 bits of ptr are the command. */
export const MMU_UPDATE_SIZE = 16;
export const MMU_NORMAL_PT_UPDATE = 0;
export const MMU_MACHPHYS_UPDATE = 1;
export const MMU_PT_UPDATE_PRESERVE_AD = 2;
export const MMU_PT_UPDATE_NO_TRANSLATE = 3;
/** xen.h mmuext_op (32-bit: cmd, arg1, arg2; 12 bytes). */
export const MMUEXT_OP_SIZE = 12;
export const MMUEXT = {
  PIN_L1_TABLE: 0, PIN_L2_TABLE: 1, PIN_L3_TABLE: 2, PIN_L4_TABLE: 3, UNPIN_TABLE: 4, NEW_BASEPTR: 5,
  TLB_FLUSH_LOCAL: 6, INVLPG_LOCAL: 7, TLB_FLUSH_MULTI: 8, INVLPG_MULTI: 9, TLB_FLUSH_ALL: 10, INVLPG_ALL: 11,
  FLUSH_CACHE: 12, SET_LDT: 13, NEW_USER_BASEPTR: 15, CLEAR_PAGE: 16, COPY_PAGE: 17, FLUSH_CACHE_GLOBAL: 18,
} as const;
/** xen.h update_va_mapping flags: bits 1:0 flush type, bit 2 all vCPUs. */
export const UVMF_NONE = 0;
export const UVMF_TLB_FLUSH = 1;
export const UVMF_INVLPG = 2;
export const UVMF_FLUSHTYPE_MASK = 3;
export const UVMF_ALL = 4;
/** xen.h DOMID_SELF. */
export const DOMID_SELF = 0x7ff0;

/** xen.h multicall_entry (32-bit): op, result, args[6]. */
export const MULTICALL_ENTRY_SIZE = 32;

/** sched.h */
export const SCHEDOP = { yield: 0, block: 1, shutdown: 2, poll: 3, remote_shutdown: 4, shutdown_code: 5, watchdog: 6 } as const;
export const SHUTDOWN = { poweroff: 0, reboot: 1, suspend: 2, crash: 3, watchdog: 4, soft_reset: 5 } as const;
export const SHUTDOWN_NAMES = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'] as const;

/** event_channel.h */
export const EVTCHNOP = {
  bind_interdomain: 0, bind_virq: 1, bind_pirq: 2, close: 3, send: 4, status: 5, alloc_unbound: 6,
  bind_ipi: 7, bind_vcpu: 8, unmask: 9,
} as const;
export const EVTCHNSTAT = { closed: 0, unbound: 1, interdomain: 2, pirq: 3, virq: 4, ipi: 5 } as const;
/** xen.h VIRQ_*: 0 TIMER (per vCPU), 1 DEBUG (per vCPU), 2 CONSOLE (global); NR_VIRQS 24. */
export const VIRQ_TIMER = 0;
export const VIRQ_DEBUG = 1;
export const VIRQ_CONSOLE = 2;
export const NR_VIRQS = 24;

/** callback.h */
export const CALLBACKTYPE = { event: 0, failsafe: 1, syscall: 2, sysenter_deprecated: 3, nmi: 4, sysenter: 5, syscall32: 7 } as const;
export const CALLBACKF_mask_events = 1;
export const CALLBACKOP_register = 0;
export const CALLBACKOP_unregister = 1;

/** xen.h vm_assist */
export const VMASST_CMD_enable = 0;
export const VMASST_CMD_disable = 1;
export const VMASST_TYPE = {
  '4gb_segments': 0, '4gb_segments_notify': 1, writable_pagetables: 2, pae_extended_cr3: 3,
  architectural_iopl: 4, runstate_update_flag: 5, m2p_strict: 32,
} as const;

/** xen.h console_io */
export const CONSOLEIO_write = 0;
export const CONSOLEIO_read = 1;

/** vcpu.h */
export const VCPUOP = {
  initialise: 0, up: 1, down: 2, is_up: 3, get_runstate_info: 4, register_runstate_memory_area: 5,
  set_periodic_timer: 6, stop_periodic_timer: 7, set_singleshot_timer: 8, stop_singleshot_timer: 9,
  register_vcpu_info: 10, send_nmi: 11, get_physid: 12,
} as const;

/** memory.h (XENMEM_*) */
export const XENMEM = {
  increase_reservation: 0, decrease_reservation: 1, maximum_ram_page: 2, current_reservation: 3,
  maximum_reservation: 4, machphys_mfn_list: 5, populate_physmap: 6, memory_map: 9, machine_memory_map: 10,
  machphys_mapping: 12, maximum_gpfn: 14,
} as const;
/** memory.h xen_memory_reservation (32-bit): extent_start handle, nr_extents, extent_order, mem_flags, domid. */
export const XEN_MEMORY_RESERVATION = { extent_start: 0, nr_extents: 4, extent_order: 8, mem_flags: 12, domid: 16 } as const;

/** physdev.h */
export const PHYSDEVOP_set_iopl = 6;

/** version.h */
export const XENVER = {
  version: 0, extraversion: 1, compile_info: 2, capabilities: 3, changeset: 4, platform_parameters: 5,
  get_features: 6, pagesize: 7, guest_handle: 8, commandline: 9,
} as const;
/** version.h: XEN_EXTRAVERSION_LEN, XEN_CAPABILITIES_INFO_LEN, XEN_CHANGESET_INFO_LEN, XEN_COMMANDLINE_LEN. */
export const XEN_EXTRAVERSION_LEN = 16;
export const XEN_CAPABILITIES_INFO_LEN = 1024;
export const XEN_CHANGESET_INFO_LEN = 64;
export const XEN_COMMANDLINE_LEN = 1024;
/** version.h xen_compile_info: compiler[64], compile_by[16], compile_domain[32], compile_date[32]. */
export const XEN_COMPILE_INFO_FIELDS = [64, 16, 32, 32] as const;
/** The Xen version this monitor reports (xen_version: major << 16 | minor): the ABI it follows. */
export const XEN_MAJOR = 4;
export const XEN_MINOR = 19;

/** grant_table.h */
export const GNTTABOP = { map_grant_ref: 0, unmap_grant_ref: 1, setup_table: 2, dump_table: 3, transfer: 4, copy: 5, query_size: 6, unmap_and_replace: 7, set_version: 8 } as const;
export const GNTST_okay = 0;
export const GNTST_bad_domain = -2;

/** elfnote.h XEN_ELFNOTE_* (note name "Xen"). */
export const XEN_ELFNOTE = {
  INFO: 0, ENTRY: 1, HYPERCALL_PAGE: 2, VIRT_BASE: 3, PADDR_OFFSET: 4, XEN_VERSION: 5, GUEST_OS: 6,
  GUEST_VERSION: 7, LOADER: 8, PAE_MODE: 9, FEATURES: 10, BSD_SYMTAB: 11, HV_START_LOW: 12, L1_MFN_VALID: 13,
  SUSPEND_CANCEL: 14, INIT_P2M: 15, MOD_START_PFN: 16, SUPPORTED_FEATURES: 17, PHYS32_ENTRY: 18,
} as const;

/** io/console.h xencons_interface: in[1024], out[2048], in_cons, in_prod, out_cons, out_prod. */
export const XENCONS = { in: 0, in_size: 1024, out: 1024, out_size: 2048, in_cons: 3072, in_prod: 3076, out_cons: 3080, out_prod: 3084 } as const;

/** Hypercall page (arch-x86/xen-x86_32.h, pv/hypercall.c): 128 slots of 32 bytes. */
export const HYPERCALL_SLOT_SIZE = 32;
export const HYPERCALL_SLOTS = 128;
