/**
 * gpu.js, loaded the first time the gpu backend needs it. It is an optional peer dependency: an
 * install of blockgrad does not pull it (nor its native `gl` module, which builds from source),
 * and importing blockgrad does not load it, so only users of the gpu backend pay for it.
 *
 * It is loaded with `require`: CommonJS has one; the ES module build defines one with
 * `createRequire(import.meta.url)` (scripts/build.mjs), so that gpu.js resolves from blockgrad's
 * own place in node_modules; the browser build bundles gpu.js's browser file in its place.
 */
import type * as GpuJsModule from 'gpu.js';
import { BackendError } from '../../errors';

export type GpuJs = typeof GpuJsModule;

let loaded: GpuJs | null = null;
let failure: string | null = null;

/** The install command that the errors give. */
export const GPU_JS_INSTALL = 'npm install gpu.js';

/** gpu.js, or null when it cannot be loaded here (see `gpuJsMissing`). */
export function tryGpuJs(): GpuJs | null {
  if (loaded || failure) return loaded;
  try {
    loaded = require('gpu.js') as GpuJs;
  } catch (err) {
    const code = (err as { code?: string }).code;
    failure =
      code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND'
        ? `the gpu backend needs gpu.js, an optional peer dependency that is not installed: run \`${GPU_JS_INSTALL}\``
        : `gpu.js could not be loaded (${(err as Error).message}); the gpu backend needs it: \`${GPU_JS_INSTALL}\``;
  }
  return loaded;
}

/** Why gpu.js is not available, or null when it is. */
export function gpuJsMissing(): string | null {
  return tryGpuJs() ? null : failure;
}

/** gpu.js; a BackendError naming the package to install when it is not there. */
export function gpuJs(op: string): GpuJs {
  const gpu = tryGpuJs();
  if (!gpu) throw new BackendError(op, failure as string);
  return gpu;
}
