/**
 * Compiling the wasm backend's kernel module, and what this engine supports. Node compiles the
 * module synchronously on first use; browsers refuse to compile a module of this size
 * synchronously on the main thread, so a page awaits `prepareWasm()` before `setBackend('wasm')`.
 *
 * This file's public functions have no WebAssembly types in their signatures, so the package's
 * type declarations do not need the DOM library (which declares WebAssembly) to be loaded.
 */
import { BackendError } from '../../errors';
import { wasmKernelBytes, wasmKernelBytesUnshared } from './binary';

/** The module for a shared memory (threads) and the one for an unshared memory (one thread), compiled on demand. */
const compiled: { shared: WebAssembly.Module | null; unshared: WebAssembly.Module | null } = { shared: null, unshared: null };
const compiling: { shared: Promise<WebAssembly.Module> | null; unshared: Promise<WebAssembly.Module> | null } = { shared: null, unshared: null };
const variant = (shared: boolean) => (shared ? 'shared' : 'unshared');
const bytesFor = (shared: boolean) => (shared ? wasmKernelBytes() : wasmKernelBytesUnshared());

/** Whether this engine runs WebAssembly with 128-bit SIMD (checked by validating a tiny SIMD module). */
export function simdSupported(): boolean {
  if (typeof WebAssembly !== 'object') return false;
  // (module (func (result v128) v128.const i32x4 0 0 0 0))
  const bytes = new Uint8Array([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 11,
  ]);
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

let canShare: boolean | undefined;

/** Whether a shared WebAssembly memory can be made here (Node; cross-origin-isolated pages). Probed once: a page cannot change it. */
export function sharedMemorySupported(): boolean {
  if (canShare === undefined) {
    try {
      canShare = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
    } catch {
      canShare = false;
    }
  }
  return canShare;
}

/**
 * Compiles the kernel module asynchronously (what a browser page must do before
 * setBackend('wasm'); harmless in Node). Resolves once the module is ready: the one for a shared
 * memory where this page can make one (cross-origin isolated), else the one-thread module for an
 * ordinary memory.
 */
export async function prepareWasm(): Promise<void> {
  const v = variant(sharedMemorySupported());
  if (compiled[v]) return;
  compiling[v] ??= WebAssembly.compile(bytesFor(v === 'shared'));
  compiled[v] = await compiling[v];
}

/** Whether the module this environment uses is compiled, or can be compiled synchronously here. */
export function wasmReady(): boolean {
  return compiled[variant(sharedMemorySupported())] !== null || !isBrowserMainThread();
}

function isBrowserMainThread(): boolean {
  const g = globalThis as { window?: unknown; document?: unknown };
  return typeof g.window === 'object' && typeof g.document === 'object';
}

/**
 * @internal The compiled kernel module for a shared memory (default) or for an unshared one
 * (compiled now, synchronously, where that is allowed).
 */
export function kernelModule(shared = true): WebAssembly.Module {
  const v = variant(shared);
  const ready = compiled[v];
  if (ready) return ready;
  if (isBrowserMainThread()) {
    throw new BackendError(
      'setBackend',
      "the wasm kernels are not compiled yet: a browser compiles them only asynchronously; run `await prepareWasm()` before setBackend('wasm')",
    );
  }
  const module = new WebAssembly.Module(bytesFor(shared));
  compiled[v] = module;
  return module;
}

