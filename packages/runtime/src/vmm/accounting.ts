// Exit accounting, one mechanism for every backend: each transfer from the guest to the monitor
// is an `Exit` (cpu/intercept.ts: Intel basic exit reason where one applies, else -1 with a
// detail) plus how it reached the monitor and, for rewrite sites, the site's address.
import { VMX_EXIT_REASON, vmxExitReasonName } from '@ringshift/decoder';
import { exit, type Exit } from '../cpu/intercept';

/**
 * How an exit reached the monitor:
 *  - escape:     `int 0x81` from a stub (docs/patch-abi.md), a planned exit;
 *  - trap:       a #GP (privileged or IOPL-sensitive instruction at CPL 1) or, in the rewrite
 *                backend, the #BP of an INT3-replaced trap site: a miss of the rewriter;
 *  - event:      an external interrupt or a guest exception reflected through the virtual IDT;
 *  - page-walk:  a miss of the virtual TLB (the monitor walked the guest's tables).
 */
export type ExitVia = 'escape' | 'trap' | 'event' | 'page-walk';

export interface SiteCount {
  /** Linear address of the site (or of the trapping instruction). */
  address: number;
  /** The instruction, formatted (Intel syntax). */
  text: string;
  via: ExitVia;
  count: number;
}

export interface ExitStats {
  total: number;
  /** By exit reason name (VMX basic exit reason name, or the detail for reason -1). */
  byReason: Record<string, number>;
  byVia: Record<ExitVia, number>;
  /** Escapes and traps per site, most frequent first. */
  bySite: SiteCount[];
  /** Traps in the rewrite backend: sites the rewriter did not patch (or patched with `trap`). */
  misses: number;
}

/** The basic exit reason VT-x would report for an instruction, by mnemonic, else -1. */
export function exitReasonOfMnemonic(m: string): number {
  switch (m) {
    case 'hlt': return VMX_EXIT_REASON.HLT;
    case 'in': case 'out': case 'insb': case 'insw': case 'insd': case 'outsb': case 'outsw': case 'outsd': return VMX_EXIT_REASON.IO_INSTRUCTION;
    case 'lgdt': case 'lidt': case 'sgdt': case 'sidt': return VMX_EXIT_REASON.GDTR_IDTR_ACCESS;
    case 'lldt': case 'ltr': case 'sldt': case 'str': return VMX_EXIT_REASON.LDTR_TR_ACCESS;
    case 'mov_cr': case 'lmsw': case 'clts': return VMX_EXIT_REASON.CONTROL_REGISTER_ACCESS;
    case 'mov_dr': return VMX_EXIT_REASON.MOV_DR;
    case 'rdmsr': return VMX_EXIT_REASON.RDMSR;
    case 'wrmsr': return VMX_EXIT_REASON.WRMSR;
    case 'invlpg': return VMX_EXIT_REASON.INVLPG;
    case 'invd': return VMX_EXIT_REASON.INVD;
    case 'wbinvd': return VMX_EXIT_REASON.WBINVD;
    case 'rdtsc': return VMX_EXIT_REASON.RDTSC;
    case 'rdpmc': return VMX_EXIT_REASON.RDPMC;
    case 'cpuid': return VMX_EXIT_REASON.CPUID;
    case 'iret': case 'iretd': case 'iretw': return -1;
    default: return -1;
  }
}

export function reasonName(e: Exit): string {
  if (e.reason < 0) return e.detail ?? 'unnamed';
  return vmxExitReasonName(e.reason) ?? `reason ${e.reason}`;
}

const VIA_INDEX: Record<ExitVia, number> = { escape: 0, trap: 1, event: 2, 'page-walk': 3 };

export class ExitAccounting {
  total = 0;
  misses = 0;
  private readonly reasons = new Map<string, number>();
  private readonly via: Record<ExitVia, number> = { escape: 0, trap: 0, event: 0, 'page-walk': 0 };
  private readonly sites = new Map<number, { address: number; text: () => string; via: ExitVia; count: number }>();
  /** The last exit recorded (for tracing). */
  last: Exit | null = null;

  /** Records an exit; `text` formats the site's instruction (called once per site, for stats()). */
  record(e: Exit, via: ExitVia, address?: number, text?: () => string): void {
    this.total++;
    this.last = e;
    this.via[via]++;
    const name = reasonName(e);
    this.reasons.set(name, (this.reasons.get(name) ?? 0) + 1);
    if (address !== undefined) {
      const key = (address >>> 0) * 4 + VIA_INDEX[via];
      const s = this.sites.get(key);
      if (s) s.count++;
      else this.sites.set(key, { address: address >>> 0, text: text ?? (() => ''), via, count: 1 });
    }
  }

  /** Counts without a site and without building an Exit (hot paths: virtual TLB misses). */
  count(name: string, via: ExitVia): void {
    this.total++;
    this.via[via]++;
    this.reasons.set(name, (this.reasons.get(name) ?? 0) + 1);
  }

  stats(): ExitStats {
    return {
      total: this.total,
      byReason: Object.fromEntries([...this.reasons.entries()].sort((a, b) => b[1] - a[1])),
      byVia: { ...this.via },
      bySite: [...this.sites.values()].map((s) => ({ address: s.address, text: s.text(), via: s.via, count: s.count })).sort((a, b) => b.count - a.count || a.address - b.address),
      misses: this.misses,
    };
  }
}

export { exit };
