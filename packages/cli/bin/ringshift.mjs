#!/usr/bin/env node
// Runs the CLI from its ahead-of-time bundle when that is up to date (bundle.mjs says when), and
// otherwise from the TypeScript sources through tsx's loader, so that an edited source always
// runs as written. RINGSHIFT_NO_BUNDLE=1 always takes the tsx path.
import { freshBundle } from './bundle.mjs';

const bundle = process.env.RINGSHIFT_NO_BUNDLE ? null : freshBundle();
let main;
if (bundle) {
  ({ main } = await import(bundle));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
