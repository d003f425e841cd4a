// Public API of @ringshift/runtime: named re-exports only.
export {};
