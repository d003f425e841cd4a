// The committed instruction table must be exactly what the generator produces from the pinned
// iced-x86 facts: regenerate with `pnpm --filter @ringshift/decoder gen` when this fails.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generate } from '../scripts/gen-forms';
import { FORMS } from '../src/index';

describe('forms.generated.ts', () => {
  it('is up to date with its generator', () => {
    const committed = readFileSync(new URL('../src/table/forms.generated.ts', import.meta.url), 'utf8');
    expect(generate() === committed, 'forms.generated.ts differs from the generator output').toBe(true);
  });
  it('has unique ids and names, and only modes 16/32/64', () => {
    expect(new Set(FORMS.map((f) => f.id)).size).toBe(FORMS.length);
    expect(new Set(FORMS.map((f) => f.name)).size).toBe(FORMS.length);
    for (const f of FORMS) for (const m of f.modes ?? []) expect([16, 32, 64]).toContain(m);
  });
});
