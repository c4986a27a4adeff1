/** The options of `setBackend('wasm', options)` (a file of its own: the public types need no WebAssembly declarations). */
export interface WasmBackendOptions {
  /** Threads, the calling one included (default: all cores). Small ops always run on the calling thread. */
  threads?: number;
}
