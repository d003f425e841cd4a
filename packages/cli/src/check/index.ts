// `@ringshift/cli/check`: the rewrite-correctness property and its guest-program generators, for
// the CLI's `check` command, the test suite (test/arbitraries/guest-programs.ts) and
// scripts/campaign-check.ts. Named re-exports only.
export { ENDINGS, EFLAGS_RANDOM, GP_FORMS, ITEM_KINDS, ITEM_WEIGHTS, MAX_ITEMS, RAW_WORDS, guestProgramArb, itemArb } from './program';
export type { Ending, GuestProgram, Item, ItemKind } from './program';
export { buildGuest } from './harness';
export type { GuestImage } from './harness';
export { firstDifference, rewriteForCheck, runBackend } from './runs';
export type { BackendRun, Difference, RunOptions } from './runs';
export {
  PROGRAM_BUDGET, PROGRAM_RAM, addCoverage, bodyListing, checkProgram, counterexampleReport, defaultRandomBackends, emptyCoverage,
  formatCoverage, runCampaign,
} from './property';
export type { CampaignFailure, CampaignOptions, CampaignResult, CheckOptions, Coverage, ProgramResult } from './property';
