// Errors the rewriter raises for input it cannot take (an image of the wrong kind, a selection
// word nobody knows). The CLI maps them to exit 2, like ElfError: the user can fix them.

/** The image or an option is not something the rewriter handles; the message says which and why. */
export class RewriteInputError extends Error {
  override name = 'RewriteInputError';
}
