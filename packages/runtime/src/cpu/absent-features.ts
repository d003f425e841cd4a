// Features this CPU does not implement, as data: one row per feature (or family of features
// gated by one CPUID bit), with the instruction forms it covers (patterns over the decoder's form
// names, which are iced-x86's Code names) and the SDM's rule for executing them on a processor
// that does not report the feature. CPUID (ops/system.ts cpuidLeaf) reports none of the bits
// named here; test/absent-features.test.ts checks that, and that every form that decodes in 16-
// or 32-bit mode either has a handler or is covered by exactly one row — so no instruction of the
// base architecture can be silently missing.
//
// Rules:
//   ud    #UD: the opcode is undefined on a processor that does not report the feature (each
//         instruction page's "#UD If CPUID.xx.yy = 0"; for SSE-family forms also SDM vol. 3A
//         §13.1 and the exception classes of vol. 2 §2.5; the MMX/SSE #UD comes before any #NM).
//   x87   the escape opcodes D8-DF with no FPU (CPUID.1:EDX.FPU = 0), SDM vol. 3A §2.5 table 2-2
//         and §9.2.1: CR0.EM = 1 or CR0.TS = 1 -> #NM (so that an emulator can take over, or the
//         OS can switch FPU state); with EM = 0 and TS = 0 no FPU answers, and the instruction
//         has no effect at all — no register, flag or memory write and no memory access. That is
//         what the classic presence probe relies on (FNINIT; FNSTSW [w] with w preset to 5A5Ah:
//         w unchanged means no FPU; SDM vol. 3A §9.2 and Intel's processor-identification note
//         AP-485). The FWAIT-prefixed forms (FINIT = 9B DB E3) take the same rule: WAIT's #NM
//         condition (TS and MP) implies TS.
//   wait  WAIT/FWAIT: #NM only when CR0.MP = 1 and CR0.TS = 1 (table 2-2); otherwise nothing to
//         wait for.
import { Fault, Vector } from './fault';

export type AbsentRule = 'ud' | 'x87' | 'wait';

/** A CPUID output bit (SDM vol. 2 CPUID, tables 3-8 to 3-10 and the AMD leaves). */
export interface CpuidBit {
  readonly leaf: number;
  readonly subleaf?: number;
  readonly reg: 'eax' | 'ebx' | 'ecx' | 'edx';
  readonly bit: number;
}

export interface AbsentFeature {
  readonly feature: string;
  /** iced-x86 CpuidFeature names of the forms covered (the test checks each form against them). */
  readonly iced: readonly string[];
  /** For rows covering a whole encoding space: its Form.enc. */
  readonly encoding?: 'vex' | 'evex' | 'xop';
  /** Where CPUID would report the feature (this CPU reports 0 there); empty for leaves it does not implement at all. */
  readonly cpuid: readonly CpuidBit[];
  readonly rule: AbsentRule;
  readonly sdm: string;
  /** Form-name patterns. */
  readonly forms: readonly RegExp[];
}

/** Forms named by these mnemonic-level prefixes: 'Movd_mm' matches Movd_mm_rm32 and Movd_mm, not Movd_mmx. */
function forms(...prefixes: string[]): RegExp {
  return new RegExp(`^(${prefixes.join('|')})(_|$)`);
}

export const ABSENT_FEATURES: readonly AbsentFeature[] = [
  {
    feature: 'x87 FPU (ESC opcodes D8-DF)',
    iced: ['FPU', 'FPU287', 'FPU387'],
    cpuid: [{ leaf: 1, reg: 'edx', bit: 0 }],
    rule: 'x87',
    sdm: 'SDM vol. 3A §2.5 table 2-2 (EM/MP/TS), §9.2.1; no FPU: CPUID.1:EDX.FPU = 0',
    forms: [/^F(?!xsave|xrstor|emms)/],
  },
  {
    feature: 'x87 FPU: WAIT/FWAIT',
    iced: ['INTEL8086'],
    cpuid: [{ leaf: 1, reg: 'edx', bit: 0 }],
    rule: 'wait',
    sdm: 'SDM vol. 3A §2.5 table 2-2: #NM only when MP = 1 and TS = 1',
    forms: [forms('Wait')],
  },
  {
    feature: 'MMX',
    iced: ['MMX'],
    cpuid: [{ leaf: 1, reg: 'edx', bit: 23 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature (MMX: CPUID.1:EDX.MMX)',
    forms: [
      forms(
        'Punpcklbw_mm', 'Punpcklwd_mm', 'Punpckldq_mm', 'Packsswb_mm', 'Pcmpgtb_mm', 'Pcmpgtw_mm',
        'Pcmpgtd_mm', 'Packuswb_mm', 'Punpckhbw_mm', 'Punpckhwd_mm', 'Punpckhdq_mm', 'Packssdw_mm',
        'Movd_mm', 'Movq_mm', 'Psrlw_mm', 'Psraw_mm', 'Psllw_mm', 'Psrld_mm', 'Psrad_mm',
        'Pslld_mm', 'Psrlq_mm', 'Psllq_mm', 'Pcmpeqb_mm', 'Pcmpeqw_mm', 'Pcmpeqd_mm', 'Emms',
        'Movd_rm32_mm', 'Movq_mmm64', 'Paddq_mm', 'Pmullw_mm', 'Psubusb_mm', 'Psubusw_mm',
        'Pand_mm', 'Paddusb_mm', 'Paddusw_mm', 'Pandn_mm', 'Pmulhw_mm', 'Psubsb_mm', 'Psubsw_mm',
        'Por_mm', 'Paddsb_mm', 'Paddsw_mm', 'Pxor_mm', 'Pmaddwd_mm', 'Psubb_mm', 'Psubw_mm',
        'Psubd_mm', 'Paddb_mm', 'Paddw_mm', 'Paddd_mm',
      ),
    ],
  },
  {
    feature: 'SSE',
    iced: ['SSE'],
    cpuid: [{ leaf: 1, reg: 'edx', bit: 25 }],
    rule: 'ud',
    sdm: 'SDM vol. 3A §13.1, vol. 2 §2.5 exception class: #UD if CPUID.1:EDX.SSE = 0',
    forms: [
      forms(
        'Movups', 'Movss', 'Movhlps', 'Movlps', 'Unpcklps', 'Unpckhps', 'Movlhps', 'Movhps',
        'Movaps', 'Cvtpi2ps', 'Cvtsi2ss', 'Movntps', 'Cvttps2pi', 'Cvttss2si', 'Cvtps2pi',
        'Cvtss2si', 'Ucomiss', 'Comiss', 'Movmskps', 'Sqrtps', 'Sqrtss', 'Rsqrtps', 'Rsqrtss',
        'Rcpps', 'Rcpss', 'Andps', 'Andnps', 'Orps', 'Xorps', 'Addps', 'Addss', 'Mulps', 'Mulss',
        'Subps', 'Subss', 'Minps', 'Minss', 'Divps', 'Divss', 'Maxps', 'Maxss', 'Pshufw', 'Ldmxcsr',
        'Stmxcsr', 'Sfence', 'Cmpps', 'Cmpss', 'Pinsrw_mm', 'Pextrw_r32_mm', 'Shufps',
        'Pmovmskb_r32_mm', 'Pminub_mm', 'Pmaxub_mm', 'Pavgb_mm', 'Pavgw_mm', 'Pmulhuw_mm', 'Movntq',
        'Pminsw_mm', 'Pmaxsw_mm', 'Psadbw_mm', 'Maskmovq',
      ),
    ],
  },
  {
    feature: 'SSE2 (incl. LFENCE, MFENCE, MOVNTI)',
    iced: ['SSE2'],
    cpuid: [{ leaf: 1, reg: 'edx', bit: 26 }],
    rule: 'ud',
    sdm: 'SDM vol. 3A §13.1: #UD if CPUID.1:EDX.SSE2 = 0',
    forms: [
      forms(
        'Movupd', 'Movsd_xmm', 'Movsd_xmmm64', 'Movlpd', 'Unpcklpd', 'Unpckhpd', 'Movhpd', 'Movapd',
        'Cvtpi2pd', 'Cvtsi2sd', 'Movntpd', 'Cvttpd2pi', 'Cvttsd2si', 'Cvtpd2pi', 'Cvtsd2si',
        'Ucomisd', 'Comisd', 'Movmskpd', 'Sqrtpd', 'Sqrtsd', 'Andpd', 'Andnpd', 'Orpd', 'Xorpd',
        'Addpd', 'Addsd', 'Mulpd', 'Mulsd', 'Cvtps2pd', 'Cvtpd2ps', 'Cvtss2sd', 'Cvtsd2ss',
        'Cvtdq2ps', 'Cvtps2dq', 'Cvttps2dq', 'Subpd', 'Subsd', 'Minpd', 'Minsd', 'Divpd', 'Divsd',
        'Maxpd', 'Maxsd', 'Punpcklbw_xmm', 'Punpcklwd_xmm', 'Punpckldq_xmm', 'Packsswb_xmm',
        'Pcmpgtb_xmm', 'Pcmpgtw_xmm', 'Pcmpgtd_xmm', 'Packuswb_xmm', 'Punpckhbw_xmm',
        'Punpckhwd_xmm', 'Punpckhdq_xmm', 'Packssdw_xmm', 'Punpcklqdq', 'Punpckhqdq', 'Movd_xmm',
        'Movdqa', 'Movdqu', 'Pshufd', 'Pshufhw', 'Pshuflw', 'Psrlw_xmm', 'Psraw_xmm', 'Psllw_xmm',
        'Psrld_xmm', 'Psrad_xmm', 'Pslld_xmm', 'Psrlq_xmm', 'Psrldq', 'Psllq_xmm', 'Pslldq',
        'Pcmpeqb_xmm', 'Pcmpeqw_xmm', 'Pcmpeqd_xmm', 'Movd_rm32_xmm', 'Movq_xmm', 'Lfence',
        'Mfence', 'Cmppd', 'Cmpsd_xmm', 'Movnti', 'Pinsrw_xmm', 'Pextrw_r32_xmm', 'Shufpd',
        'Paddq_xmm', 'Pmullw_xmm', 'Movq_xmmm64', 'Movq2dq', 'Movdq2q', 'Pmovmskb_r32_xmm',
        'Psubusb_xmm', 'Psubusw_xmm', 'Pminub_xmm', 'Pand_xmm', 'Paddusb_xmm', 'Paddusw_xmm',
        'Pmaxub_xmm', 'Pandn_xmm', 'Pavgb_xmm', 'Pavgw_xmm', 'Pmulhuw_xmm', 'Pmulhw_xmm',
        'Cvttpd2dq', 'Cvtdq2pd', 'Cvtpd2dq', 'Movntdq', 'Psubsb_xmm', 'Psubsw_xmm', 'Pminsw_xmm',
        'Por_xmm', 'Paddsb_xmm', 'Paddsw_xmm', 'Pmaxsw_xmm', 'Pxor_xmm', 'Pmuludq', 'Pmaddwd_xmm',
        'Psadbw_xmm', 'Maskmovdqu', 'Psubb_xmm', 'Psubw_xmm', 'Psubd_xmm', 'Psubq', 'Paddb_xmm',
        'Paddw_xmm', 'Paddd_xmm',
      ),
    ],
  },
  {
    feature: 'SSE3',
    iced: ['SSE3'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 0 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [
      forms(
        'Movsldup', 'Movddup', 'Movshdup', 'Haddpd', 'Haddps', 'Hsubpd', 'Hsubps', 'Addsubpd',
        'Addsubps', 'Lddqu',
      ),
    ],
  },
  {
    feature: 'SSSE3',
    iced: ['SSSE3'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 9 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [
      forms(
        'Pshufb', 'Phaddw', 'Phaddd', 'Phaddsw', 'Pmaddubsw', 'Phsubw', 'Phsubd', 'Phsubsw',
        'Psignb', 'Psignw', 'Psignd', 'Pmulhrsw', 'Pabsb', 'Pabsw', 'Pabsd', 'Palignr',
      ),
    ],
  },
  {
    feature: 'SSE4.1',
    iced: ['SSE4_1'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 19 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [
      forms(
        'Pblendvb', 'Blendvps', 'Blendvpd', 'Ptest', 'Pmovsxbw', 'Pmovsxbd', 'Pmovsxbq', 'Pmovsxwd',
        'Pmovsxwq', 'Pmovsxdq', 'Pmuldq', 'Pcmpeqq', 'Movntdqa', 'Packusdw', 'Pmovzxbw', 'Pmovzxbd',
        'Pmovzxbq', 'Pmovzxwd', 'Pmovzxwq', 'Pmovzxdq', 'Pminsb', 'Pminsd', 'Pminuw', 'Pminud',
        'Pmaxsb', 'Pmaxsd', 'Pmaxuw', 'Pmaxud', 'Pmulld', 'Phminposuw', 'Roundps', 'Roundpd',
        'Roundss', 'Roundsd', 'Blendps', 'Blendpd', 'Pblendw', 'Pextrb', 'Pextrw_r32m16', 'Pextrd',
        'Extractps', 'Pinsrb', 'Insertps', 'Pinsrd', 'Dpps', 'Dppd', 'Mpsadbw',
      ),
    ],
  },
  {
    feature: 'SSE4.2 (incl. CRC32)',
    iced: ['SSE4_2'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 20 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Pcmpgtq', 'Crc32', 'Pcmpestrm', 'Pcmpestri', 'Pcmpistrm', 'Pcmpistri')],
  },
  {
    feature: 'SSE4A (AMD)',
    iced: ['SSE4A'],
    cpuid: [{ leaf: 0x80000001, reg: 'ecx', bit: 6 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Movntss', 'Movntsd', 'Extrq', 'Insertq')],
  },
  {
    feature: 'FXSAVE/FXRSTOR',
    iced: ['FXSR'],
    cpuid: [{ leaf: 1, reg: 'edx', bit: 24 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Fxsave', 'Fxrstor')],
  },
  {
    feature: 'XSAVE, XGETBV/XSETBV',
    iced: ['XSAVE'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 26 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Xgetbv', 'Xsetbv', 'Xsave', 'Xrstor')],
  },
  {
    feature: 'XSAVEOPT',
    iced: ['XSAVEOPT'],
    cpuid: [],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature (CPUID.(0Dh,1):EAX[0]; leaf 0Dh is not reported)',
    forms: [forms('Xsaveopt')],
  },
  {
    feature: 'XSAVEC',
    iced: ['XSAVEC'],
    cpuid: [],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature (CPUID.(0Dh,1):EAX[1])',
    forms: [forms('Xsavec')],
  },
  {
    feature: 'XSAVES/XRSTORS',
    iced: ['XSAVES'],
    cpuid: [],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature (CPUID.(0Dh,1):EAX[3])',
    forms: [forms('Xrstors', 'Xsaves')],
  },
  {
    feature: 'CLFLUSH',
    iced: ['CLFSH'],
    cpuid: [{ leaf: 1, reg: 'edx', bit: 19 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Clflush')],
  },
  {
    feature: 'CLFLUSHOPT',
    iced: ['CLFLUSHOPT'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ebx', bit: 23 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Clflushopt')],
  },
  {
    feature: 'CLWB',
    iced: ['CLWB'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ebx', bit: 24 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Clwb')],
  },
  {
    feature: 'PCLMULQDQ',
    iced: ['PCLMULQDQ'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 1 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Pclmulqdq')],
  },
  {
    feature: 'AES-NI',
    iced: ['AES'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 25 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Aesimc', 'Aesenc', 'Aesenclast', 'Aesdec', 'Aesdeclast', 'Aeskeygenassist')],
  },
  {
    feature: 'SHA',
    iced: ['SHA'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ebx', bit: 29 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [
      forms(
        'Sha1nexte', 'Sha1msg1', 'Sha1msg2', 'Sha256rnds2', 'Sha256msg1', 'Sha256msg2', 'Sha1rnds4',
      ),
    ],
  },
  {
    feature: 'GFNI',
    iced: ['GFNI'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ecx', bit: 8 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Gf2p8mulb', 'Gf2p8affineqb', 'Gf2p8affineinvqb')],
  },
  {
    feature: 'Key Locker',
    iced: ['KL', 'AESKLE', 'WIDE_KL'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ecx', bit: 23 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [
      forms(
        'Aesencwide128kl', 'Aesdecwide128kl', 'Aesencwide256kl', 'Aesdecwide256kl', 'Loadiwkey',
        'Aesenc128kl', 'Aesdec128kl', 'Aesenc256kl', 'Aesdec256kl', 'Encodekey128', 'Encodekey256',
      ),
    ],
  },
  {
    feature: 'RDRAND',
    iced: ['RDRAND'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 30 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Rdrand')],
  },
  {
    feature: 'RDSEED',
    iced: ['RDSEED'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ebx', bit: 18 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Rdseed')],
  },
  {
    feature: 'RDPID',
    iced: ['RDPID'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ecx', bit: 22 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Rdpid')],
  },
  {
    feature: 'RDTSCP',
    iced: ['RDTSCP'],
    cpuid: [{ leaf: 0x80000001, reg: 'edx', bit: 27 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Rdtscp')],
  },
  {
    feature: 'MONITOR/MWAIT',
    iced: ['MONITOR'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 3 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Monitorw', 'Monitord', 'Mwait')],
  },
  {
    feature: 'MONITORX/MWAITX (AMD)',
    iced: ['MONITORX'],
    cpuid: [{ leaf: 0x80000001, reg: 'ecx', bit: 29 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Monitorxw', 'Monitorxd', 'Mwaitx')],
  },
  {
    feature: 'TPAUSE/UMONITOR/UMWAIT',
    iced: ['WAITPKG'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ecx', bit: 5 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Tpause', 'Umonitor', 'Umwait')],
  },
  {
    feature: 'VMX',
    iced: ['VMX', 'INVEPT', 'INVVPID'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 5 }],
    rule: 'ud',
    sdm: 'SDM vol. 3C §24.x / each VMX instruction page: #UD outside VMX operation (CR4.VMXE cannot be set here)',
    forms: [
      forms(
        'Vmcall', 'Vmlaunch', 'Vmresume', 'Vmxoff', 'Vmfunc', 'Vmread', 'Vmwrite', 'Vmptrld',
        'Vmclear', 'Vmxon', 'Vmptrst', 'Invept', 'Invvpid',
      ),
    ],
  },
  {
    feature: 'SMX (GETSEC)',
    iced: ['SMX'],
    cpuid: [{ leaf: 1, reg: 'ecx', bit: 6 }],
    rule: 'ud',
    sdm: 'SDM vol. 2 GETSEC: #UD if CR4.SMXE = 0 (not settable here)',
    forms: [forms('Getsecd')],
  },
  {
    feature: 'SVM (AMD)',
    iced: ['SVM', 'SKINIT_or_SVM'],
    cpuid: [{ leaf: 0x80000001, reg: 'ecx', bit: 2 }],
    rule: 'ud',
    sdm: 'AMD APM vol. 3: #UD if EFER.SVME = 0',
    forms: [
      forms(
        'Vmrunw', 'Vmrund', 'Vmmcall', 'Vmloadw', 'Vmloadd', 'Vmsavew', 'Vmsaved', 'Stgi', 'Clgi',
        'Skinit', 'Invlpgaw', 'Invlpgad',
      ),
    ],
  },
  {
    feature: 'SGX',
    iced: ['SGX1', 'OSS'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ebx', bit: 2 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Enclv', 'Encls', 'Enclu')],
  },
  {
    feature: 'TSX (RTM, XTEST)',
    iced: ['RTM', 'HLE_or_RTM'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ebx', bit: 11 }, { leaf: 7, subleaf: 0, reg: 'ebx', bit: 4 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Xabort', 'Xbegin', 'Xend', 'Xtest')],
  },
  {
    feature: 'TSXLDTRK',
    iced: ['TSXLDTRK'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'edx', bit: 16 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Xsusldtrk', 'Xresldtrk')],
  },
  {
    feature: 'CET shadow stacks',
    iced: ['CET_SS'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ecx', bit: 7 }],
    rule: 'ud',
    sdm: 'SDM vol. 2 INCSSP/RSTORSSP/SETSSBSY/...: #UD if CR4.CET = 0 (not settable here); RDSSP is a hint NOP (ops/hint-nops.ts)',
    forms: [forms('Rstorssp', 'Setssbsy', 'Saveprevssp', 'Incsspd', 'Clrssbsy', 'Wrussd', 'Wrssd')],
  },
  {
    feature: 'SMAP (CLAC/STAC)',
    iced: ['SMAP'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ebx', bit: 20 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Clac', 'Stac')],
  },
  {
    feature: 'protection keys (RDPKRU/WRPKRU)',
    iced: ['PKU'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ecx', bit: 3 }],
    rule: 'ud',
    sdm: 'SDM vol. 2 RDPKRU: #UD if CR4.PKE = 0',
    forms: [forms('Rdpkru', 'Wrpkru')],
  },
  {
    feature: 'INVPCID',
    iced: ['INVPCID'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ebx', bit: 10 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Invpcid')],
  },
  {
    feature: 'PCONFIG',
    iced: ['PCONFIG'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'edx', bit: 18 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Pconfig')],
  },
  {
    feature: 'PTWRITE',
    iced: ['PTWRITE'],
    cpuid: [],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature (CPUID.(14h,0):EBX[4])',
    forms: [forms('Ptwrite')],
  },
  {
    feature: 'MOVDIRI',
    iced: ['MOVDIRI'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ecx', bit: 27 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Movdiri')],
  },
  {
    feature: 'MOVDIR64B',
    iced: ['MOVDIR64B'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ecx', bit: 28 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Movdir64b')],
  },
  {
    feature: 'ENQCMD/ENQCMDS',
    iced: ['ENQCMD'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ecx', bit: 29 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Enqcmds', 'Enqcmd')],
  },
  {
    feature: 'SERIALIZE',
    iced: ['SERIALIZE'],
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'edx', bit: 14 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Serialize')],
  },
  {
    feature: 'HRESET',
    iced: ['HRESET'],
    cpuid: [{ leaf: 7, subleaf: 1, reg: 'eax', bit: 22 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Hreset')],
  },
  {
    feature: 'WRMSRNS',
    iced: ['WRMSRNS'],
    cpuid: [{ leaf: 7, subleaf: 1, reg: 'eax', bit: 19 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Wrmsrns')],
  },
  {
    feature: 'RAO-INT (AADD/AAND/AOR/AXOR)',
    iced: ['RAO_INT'],
    cpuid: [{ leaf: 7, subleaf: 1, reg: 'eax', bit: 3 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Aadd', 'Aand', 'Axor', 'Aor')],
  },
  {
    feature: 'SYSCALL/SYSRET',
    iced: ['SYSCALL'],
    cpuid: [{ leaf: 0x80000001, reg: 'edx', bit: 11 }],
    rule: 'ud',
    sdm: 'SDM vol. 2 SYSCALL: #UD if IA32_EFER.SCE = 0 (and outside 64-bit mode on Intel)',
    forms: [forms('Syscall', 'Sysretd')],
  },
  {
    feature: 'MCOMMIT (AMD)',
    iced: ['MCOMMIT'],
    cpuid: [{ leaf: 0x80000008, reg: 'ebx', bit: 8 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Mcommit')],
  },
  {
    feature: 'CLZERO (AMD)',
    iced: ['CLZERO'],
    cpuid: [{ leaf: 0x80000008, reg: 'ebx', bit: 0 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Clzerow', 'Clzerod')],
  },
  {
    feature: 'RDPRU (AMD)',
    iced: ['RDPRU'],
    cpuid: [{ leaf: 0x80000008, reg: 'ebx', bit: 4 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Rdpru')],
  },
  {
    feature: 'INVLPGB/TLBSYNC (AMD)',
    iced: ['INVLPGB'],
    cpuid: [{ leaf: 0x80000008, reg: 'ebx', bit: 3 }],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature',
    forms: [forms('Invlpgbw', 'Invlpgbd', 'Tlbsync')],
  },
  {
    feature: 'SEV-ES VMGEXIT (AMD)',
    iced: ['SEV_ES'],
    cpuid: [],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature (CPUID 8000_001Fh)',
    forms: [forms('Vmgexit')],
  },
  {
    feature: 'SEV-SNP PVALIDATE (AMD)',
    iced: ['SEV_SNP'],
    cpuid: [],
    rule: 'ud',
    sdm: 'SDM vol. 2, its instruction page, Exceptions: #UD if CPUID does not report the feature (CPUID 8000_001Fh)',
    forms: [forms('Pvalidatew', 'Pvalidated')],
  },
  {
    feature: 'TDX TDCALL',
    iced: ['TDX'],
    cpuid: [],
    rule: 'ud',
    sdm: 'Intel TDX: #UD outside a trust domain',
    forms: [forms('Tdcall')],
  },
  {
    feature: 'VIA PadLock / Zhaoxin GMI',
    iced: ['PADLOCK_ACE', 'PADLOCK_PHE', 'PADLOCK_PMM', 'PADLOCK_RNG', 'PADLOCK_GMI', 'PADLOCK_UNDOC'],
    cpuid: [],
    rule: 'ud',
    sdm: 'VIA PadLock programming guide: features in CPUID C000_0001h, a leaf not reported; #UD',
    forms: [
      forms(
        'Montmul', 'Xsha1', 'Xsha256', 'Xstore', 'Xcryptecb', 'Xcryptcbc', 'Xcryptctr', 'Xcryptcfb',
        'Xcryptofb', 'Ccs', 'Via', 'Xsha512',
      ),
    ],
  },
  {
    feature: '3DNow! (incl. FEMMS)',
    iced: ['D3NOW', 'D3NOWEXT'],
    cpuid: [{ leaf: 0x80000001, reg: 'edx', bit: 31 }, { leaf: 0x80000001, reg: 'edx', bit: 30 }],
    rule: 'ud',
    sdm: 'AMD APM vol. 5: #UD if CPUID 8000_0001h:EDX[31] = 0',
    forms: [/^(Femms$|D3NOW_)/],
  },
  {
    feature: 'VEX-encoded (AVX, AVX2, FMA, F16C, BMI1, BMI2, AMX, AVX-VNNI, ...)',
    iced: [],
    encoding: 'vex',
    // AVX, FMA, F16C; AVX2, BMI1, BMI2; AMX-TILE.
    cpuid: [
      { leaf: 1, reg: 'ecx', bit: 28 }, { leaf: 1, reg: 'ecx', bit: 12 }, { leaf: 1, reg: 'ecx', bit: 29 },
      { leaf: 7, subleaf: 0, reg: 'ebx', bit: 5 }, { leaf: 7, subleaf: 0, reg: 'ebx', bit: 3 }, { leaf: 7, subleaf: 0, reg: 'ebx', bit: 8 },
      { leaf: 7, subleaf: 0, reg: 'edx', bit: 24 },
    ],
    rule: 'ud',
    sdm: 'SDM vol. 2 §2.3.2: VEX in 16/32-bit mode is C4/C5 with ModRM.mod = 11; #UD when AVX/the feature is not reported',
    forms: [/^VEX_/],
  },
  {
    feature: 'EVEX-encoded (AVX-512, AVX10)',
    iced: [],
    encoding: 'evex',
    cpuid: [{ leaf: 7, subleaf: 0, reg: 'ebx', bit: 16 }],
    rule: 'ud',
    sdm: 'SDM vol. 2 §2.7: #UD when AVX-512 is not reported',
    forms: [/^EVEX_/],
  },
  {
    feature: 'XOP-encoded (AMD)',
    iced: [],
    encoding: 'xop',
    cpuid: [{ leaf: 0x80000001, reg: 'ecx', bit: 11 }],
    rule: 'ud',
    sdm: 'AMD APM vol. 4: #UD if CPUID 8000_0001h:ECX.XOP = 0',
    forms: [/^XOP_/],
  },
];

const CR0_MP = 1 << 1;
const CR0_EM = 1 << 2;
const CR0_TS = 1 << 3;

/** What each rule does when such a form executes (no operand is read or written). */
export const ABSENT_RULE_HANDLERS: Readonly<Record<AbsentRule, (cpu: { cr0: number }) => void>> = {
  ud: () => {
    throw new Fault(Vector.UD);
  },
  x87: (cpu) => {
    if (cpu.cr0 & (CR0_EM | CR0_TS)) throw new Fault(Vector.NM);
  },
  wait: (cpu) => {
    if ((cpu.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) throw new Fault(Vector.NM);
  },
};

/** The row covering a form name, or undefined. */
export function absentFeatureOf(name: string): AbsentFeature | undefined {
  for (const row of ABSENT_FEATURES) if (row.forms.some((p) => p.test(name))) return row;
  return undefined;
}
