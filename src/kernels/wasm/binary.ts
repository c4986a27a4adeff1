/**
 * The wasm backend's kernels as bytes. scripts/build-wasm.mjs compiles wasm/assembly/*.ts
 * (AssemblyScript) and writes them, base64, into ./binary.generated.ts; this decodes them.
 * It uses `atob` (Node >= 16 and every browser) rather than Node's Buffer, because the same code
 * runs in browsers.
 */
import { WASM_KERNELS_BASE64 } from './binary.generated';

let cached: Uint8Array<ArrayBuffer> | undefined;

/**
 * The kernels' WebAssembly bytes (decoded once; callers must not modify the array). Typed as
 * backed by a plain ArrayBuffer, which is what WebAssembly.Module accepts under the DOM's types.
 */
export function wasmKernelBytes(): Uint8Array<ArrayBuffer> {
  if (cached === undefined) {
    const text = atob(WASM_KERNELS_BASE64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    cached = bytes;
  }
  return cached;
}
