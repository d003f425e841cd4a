// Public API of @ringshift/rewriter: named re-exports only.
export { ElfError, readElf } from './elf/read';
export type { ElfImage, ElfSection, ElfSegment, ElfSymbol } from './elf/read';
export { PF_R, PF_W, PF_X, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE } from './elf/constants';
export type { ElfMachine, ElfType } from './elf/constants';
export { ElfWriteError, writeElf32 } from './elf/write';
export type { ElfWriteFlags, ElfWriteImage, ElfWriteProgramHeader, ElfWriteSection, ElfWriteSegment, ElfWriteSymbol } from './elf/write';
export {
  PATCHMAP_HEADER_SIZE, PATCHMAP_MAGIC, PATCHMAP_RANGE_SIZE, PATCHMAP_SITE_ASSUMES_NO_INNER_TARGETS, PATCHMAP_SITE_FIXED_SIZE, PATCHMAP_VERSION,
  PatchMapError, SITE_REASON_CODES, STUB_KIND_CODES, TACTIC_CODES, decodePatchMap, encodePatchMap,
} from './patchmap';
export { sha256, sha256Hex } from './sha256';
export { PATCHMAP_SECTION_NAME, verifyImage } from './verify';
export type { VerifyCounts, VerifyOptions, VerifyResult, Violation, ViolationKind } from './verify';
export { RewriteInputError } from './errors';
export { checkRewritable, codeRegions, discover } from './discover';
export type { CodeRegion } from './discover';
export { findSites, selectionForms, siteReason } from './sites';
export { Evidence } from './model';
export type { ByteKind, ByteRange, CodeInstruction, Discovery, EvidenceBit, Site, SiteReason } from './model';
export { PATCHMAP_FLAG_INLINE_FLAT_DS, PATCHMAP_FLAG_KERNEL, PATCHMAP_FLAG_LOADER, STUB_RANGE_LOAD, STUB_RANGE_LOADER } from './model';
export type { Miss, PatchMap, PatchedSite, StubKind, StubRange, Tactic } from './model';
export { STUBS_SECTION, rewriteImage } from './rewrite';
export type { RewriteOptions, RewriteReport, RewriteResult } from './rewrite';
export { TACTIC_ORDER } from './plan';
export { HOLE_END, HOLE_START, HOLE_STUB_END, findMultibootHeader, planLayout } from './layout';
export type { MultibootHeader, StubLayout } from './layout';
export { ESCAPE_BYTES, ESCAPE_VECTOR } from './stubs/escape';
export { LOADER_CODE_SIZE, loaderImage } from './stubs/loader';
export type { LoaderMapping } from './stubs/loader';
export { SHARED, SHARED_PAGE_VERSION } from './stubs/shared';
