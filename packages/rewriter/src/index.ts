// Public API of @ringshift/rewriter: named re-exports only.
export {};
