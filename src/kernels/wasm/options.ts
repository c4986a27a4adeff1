/** The options of `setBackend('wasm', options)` (a file of its own: the public types need no WebAssembly declarations). */
export interface WasmBackendOptions {
  /** Threads, the calling one included (default: all cores). Small ops always run on the calling thread. */
  threads?: number;
  /**
   * Whether the memory is a shared one, which threads need (default: wherever one can be made:
   * Node, and browser pages that are cross-origin isolated). `false` runs one thread on an
   * ordinary memory, as a page without isolation must; `true` where no shared memory can be made
   * is a BackendError naming the headers a page needs.
   */
  sharedMemory?: boolean;
}
