// Random guest programs for the rewrite-correctness property (test/check/): the generators live
// with the CLI, which runs them as `ringshift check --random` (packages/cli/src/check/); this
// file re-exports them for the tests.
export { ENDINGS, ITEM_KINDS, guestProgramArb, itemArb, buildGuest, checkProgram, runCampaign } from '@ringshift/cli/check';
export type { GuestProgram, GuestImage, Item, ItemKind } from '@ringshift/cli/check';
