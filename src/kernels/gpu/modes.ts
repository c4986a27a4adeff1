/**
 * The gpu.js modes and which of them work in this process. Kept apart from runtime.ts so that the
 * public declarations (GpuMode, availableGpuModes) never mention gpu.js's own types, which need
 * the DOM's type library: a consumer's strict type check must not depend on it.
 */
import { gpuJsMissing, tryGpuJs } from './gpujs';

/** The gpu.js modes a user may ask for. */
export type GpuMode = 'headlessgl' | 'webgl2' | 'webgl' | 'webasm' | 'cpu';
export const GPU_MODES: readonly GpuMode[] = ['headlessgl', 'webgl2', 'webgl', 'webasm', 'cpu'];

/** Options of the gpu backend: `setBackend('gpu', { mode })`. */
export interface GpuBackendOptions {
  /** The gpu.js mode; undefined lets it choose (headlessgl or WebGL2 where there is GL, else webasm, else cpu). */
  mode?: GpuMode;
}

/** Why a mode is not available here, or null if it is. */
export function missingFor(mode: GpuMode): string | null {
  const gpuJs = tryGpuJs();
  if (!gpuJs) return gpuJsMissing();
  const { GPU } = gpuJs;
  switch (mode) {
    case 'cpu':
      return null;
    case 'webasm':
      return GPU.isWebAssemblySupported ? null : 'this JavaScript engine has no WebAssembly SIMD support';
    case 'webgl2':
      return GPU.isWebGL2Supported ? null : 'WebGL2 needs a browser (or a canvas with a WebGL2 context); in Node use headlessgl';
    case 'webgl':
      return GPU.isWebGLSupported ? null : 'WebGL needs a browser; in Node use headlessgl';
    case 'headlessgl':
      return GPU.isHeadlessGLSupported ? null : headlessGlMissing();
  }
}

/** Names what headlessgl lacks: the native `gl` module, or an X display for it. */
function headlessGlMissing(): string {
  const env = typeof process === 'undefined' ? undefined : process.env;
  if (!env) return 'headlessgl runs only in Node';
  let haveGl = false;
  try {
    // `require` exists in CommonJS; from an ES module, make one (resolving from the working directory)
    const resolve =
      typeof require === 'function'
        ? require.resolve
        : (process as { getBuiltinModule?: (id: string) => typeof import('node:module') | undefined })
            .getBuiltinModule?.('node:module')
            ?.createRequire(`${process.cwd()}/`).resolve;
    haveGl = resolve !== undefined && typeof resolve('gl') === 'string';
  } catch {
    haveGl = false;
  }
  if (!haveGl) {
    return (
      "the native 'gl' module is not installed (an optional dependency of gpu.js that builds from " +
      'source: install python3, make, g++, pkg-config, libxi-dev, libxext-dev and libx11-dev, then `npm rebuild gl`)'
    );
  }
  if (!env.DISPLAY) return "no X display for the 'gl' module (DISPLAY is unset): run under `xvfb-run -a`";
  return `the 'gl' module could not create a WebGL context on DISPLAY=${env.DISPLAY}`;
}

/** The modes that work in this process, best first. */
export function availableGpuModes(): GpuMode[] {
  return GPU_MODES.filter((m) => missingFor(m) === null);
}

/** The mode gpu.js picks by itself, in its own order. */
export function autoMode(): GpuMode {
  for (const mode of ['headlessgl', 'webgl2', 'webgl', 'webasm'] as const) if (missingFor(mode) === null) return mode;
  return 'cpu';
}
