// Lookups over the instruction table, built once at load.
import type { Form } from './form';
import { FORMS, MEMORY_SIZES } from './forms.generated';

const byId: Form[] = [];
for (const f of FORMS) {
  if (byId[f.id]) throw new Error(`duplicate form id ${f.id}`);
  byId[f.id] = f;
}

/** Form for an id, or undefined for 0 (invalid) and ids not in the table. */
export function formById(id: number): Form | undefined {
  return byId[id];
}

export function formName(id: number): string {
  return byId[id]?.name ?? 'INVALID';
}

export function mnemonicOf(id: number): string {
  return byId[id]?.mnemonic ?? '(bad)';
}

export type MemorySizeName = keyof typeof MEMORY_SIZES;

export function memorySizeBytes(name: string): number {
  return (MEMORY_SIZES as Record<string, { size: number }>)[name]?.size ?? 0;
}

export { FORMS, MEMORY_SIZES };
