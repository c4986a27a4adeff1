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

let unshared: Uint8Array<ArrayBuffer> | undefined;

/**
 * The same kernels importing an ordinary (unshared) memory: for pages that are not cross-origin
 * isolated, where no SharedArrayBuffer (so no shared WebAssembly memory) can be made. The module
 * is compiled with an imported shared memory, and a module whose import says "shared" refuses
 * any other memory; the only difference is one flag bit in that import's limits, so the bytes
 * are the compiled ones with that bit cleared (the kernels use no instruction that needs a
 * shared memory). Decoded once; callers must not modify the array.
 */
export function wasmKernelBytesUnshared(): Uint8Array<ArrayBuffer> {
  unshared ??= withUnsharedMemoryImport(wasmKernelBytes());
  return unshared;
}

/**
 * A copy of a WebAssembly binary whose imported memory is unshared: walks the import section
 * (binary format, spec section 5.5.5) to the memory import and clears bit 1 (shared) of its
 * limits flags (0x03 = max and shared -> 0x01 = max). Throws if the module imports no memory.
 */
export function withUnsharedMemoryImport(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const out = bytes.slice();
  let pos = 8; // past the magic number and the version
  /** An unsigned LEB128 number at pos (moves pos past it). */
  const uleb = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = out[pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  const skipName = (): void => {
    const length = uleb(); // read first: \`pos += uleb()\` would add to pos as it was before the read
    pos += length;
  };
  const skipLimits = (): void => {
    const flags = out[pos++];
    uleb();
    if (flags & 1) uleb();
  };
  while (pos < out.length) {
    const id = out[pos++];
    const size = uleb();
    const end = pos + size;
    if (id === 2) {
      // the import section: a vector of (module name, field name, kind, description)
      for (let n = uleb(); n > 0; n--) {
        skipName();
        skipName();
        const kind = out[pos++];
        if (kind === 0) uleb(); // a function: its type index
        else if (kind === 1) {
          pos++; // a table: element type, then limits
          skipLimits();
        } else if (kind === 2) {
          out[pos] &= ~0x02; // a memory: its limits flags
          return out;
        } else pos += 2; // a global: value type and mutability
      }
    }
    pos = end;
  }
  throw new Error('wasm kernels: the module imports no memory, so there is no shared flag to clear');
}
