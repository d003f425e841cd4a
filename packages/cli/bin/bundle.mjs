// Whether the ahead-of-time bundle of the CLI (packages/cli/dist/ringshift.mjs, built by
// scripts/build-cli.mjs) may run: only while no file it was built from has changed or gone since
// its build started. dist/inputs.json lists those files (esbuild's inputs, the workspace
// package.json and tsconfig files, this directory and the build script) with the build's start
// time; the check is one stat per file, a few ms. Shared by the bin shim and the build script.
import { readFileSync, statSync } from 'node:fs';

const ROOT = new URL('../../../', import.meta.url);
export const BUNDLE = new URL('packages/cli/dist/ringshift.mjs', ROOT);
export const MANIFEST = new URL('packages/cli/dist/inputs.json', ROOT);

/** The bundle's file URL when it is up to date, else null (no bundle, or a source is newer). */
export function freshBundle() {
  try {
    const { builtAt, inputs } = JSON.parse(readFileSync(MANIFEST, 'utf8'));
    if (typeof builtAt !== 'number' || !Array.isArray(inputs) || inputs.length === 0) return null;
    if (!(statSync(BUNDLE).mtimeMs >= builtAt)) return null;
    for (const f of inputs) if (!(statSync(new URL(f, ROOT)).mtimeMs < builtAt)) return null;
    return BUNDLE.href;
  } catch {
    return null; // no bundle or manifest, or an input has gone: the sources are the truth
  }
}
