// Loads uWebSockets.js and says which implementation runs. The npm package
// @trufflesuite/uws-js-unofficial silently falls back to a slow JavaScript
// implementation when its native binary does not load; we load the binary ourselves
// so the fallback is visible (logged at start-up) rather than silent.
import { createRequire } from 'node:module';
import path from 'node:path';

export type Uws = typeof import('@trufflesuite/uws-js-unofficial');

export interface LoadedUws {
  uws: Uws;
  native: boolean;
  /** The binary (or fallback) that was loaded and, if it fell back, why. */
  detail: string;
}

let cached: LoadedUws | null = null;

export function loadUws(): LoadedUws {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const pkgDir = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
  const binary = path.join(pkgDir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  try {
    cached = { uws: require(binary) as Uws, native: true, detail: binary };
  } catch (err) {
    const fallback = require(path.join(pkgDir, 'dist', 'index.js')) as Uws;
    cached = { uws: fallback, native: false, detail: `native binary ${binary} failed to load (${(err as Error).message}); using the JavaScript fallback` };
  }
  return cached;
}
