// Loads iced-x86 (CommonJS + synchronously instantiated wasm) for the differential tests.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const iced: any = require('iced-x86');

/** iced's Code enum value -> name. */
export const icedCodeName = (code: number): string => iced.Code[code] ?? `code${code}`;
