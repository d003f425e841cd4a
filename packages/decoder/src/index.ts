// Public API of @ringshift/decoder: named re-exports only.
export {};
