// The per-vCPU shared page between inline stubs and the monitor (docs/patch-abi.md §Shared page).

/** Offsets in the shared page. */
export const SHARED = {
  /** u8: the guest's virtual EFLAGS.IF, 0 or 1. Written by inline CLI/STI/POPF stubs and by the monitor. */
  vif: 0,
  /** u8: nonzero while the monitor holds a virtual interrupt that waits for vif = 1. Written by the monitor only. */
  pending: 1,
  /** u8: the guest's virtual EFLAGS.IOPL, 0..3. Written by inline POPF stubs and the monitor. */
  viopl: 2,
  /** u32 at offset 4: the ABI version of this page. */
  version: 4,
} as const;

/** docs/patch-abi.md version the stubs follow; the file bytes of the shared page carry it. */
export const SHARED_PAGE_VERSION = 1;
export const PAGE_SIZE = 0x1000;

/** The shared page's initial file contents: the version word (the rest of the page is zero-filled memory). */
export function sharedPageImage(): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(SHARED.version, SHARED_PAGE_VERSION, true);
  return b;
}
