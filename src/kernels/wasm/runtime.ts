/**
 * The wasm backend's runtime: one WebAssembly memory, the kernel module instantiated over it, the
 * thread pool that runs the kernels' tasks, and the allocator that hands out the rest of the
 * memory to tensors.
 *
 * Memory layout (byte addresses):
 *
 *     0 .. 64                 unused (address 0 stays an obviously wrong pointer)
 *     64 .. +CONTROL_BYTES    the pool's control block (Atomics between threads)
 *     .. +DESC_BYTES          the descriptor a kernel call writes before running its tasks
 *     .. +threads x SCRATCH   one scratch area per thread (packed matmul panels)
 *     heap                    tensors' storage, managed by WasmAllocator
 *
 * The kernel module has no data segments and no stack in memory, so everything above is ours.
 * The memory is shared (a SharedArrayBuffer) wherever threads can be used; a shared memory never
 * moves when it grows, so typed-array views on it stay valid.
 *
 * Compiling the module is prepare.ts's part (synchronously in Node; a browser page awaits
 * `prepareWasm()` first).
 */
import { BackendError } from '../../errors';
import { WasmAllocator } from './allocator';
import { CONTROL_BYTES, createPool, type WasmPool } from './pool';
import { DESC_BYTES, SCRATCH_BYTES } from './runner';
import { kernelModule, sharedMemorySupported, simdSupported } from './prepare';

export interface WasmRuntime {
  readonly memory: WebAssembly.Memory;
  readonly pool: WasmPool;
  readonly allocator: WasmAllocator;
  /** Whether the memory is shared with worker threads. */
  readonly shared: boolean;
  /** Bumped whenever the memory grows (views on a non-shared memory must then be renewed). */
  readonly generation: () => number;
  dispose(): void;
}

const PAGE = 65536;
const align = (n: number, to: number) => Math.ceil(n / to) * to;

/** Makes the memory, the pool of `threads` threads (fewer where workers cannot share memory) and the allocator. */
export function createRuntime(threads: number): WasmRuntime {
  if (!simdSupported()) {
    throw new BackendError('setBackend', 'this JavaScript engine has no WebAssembly SIMD; use the cpu backend');
  }
  const module = kernelModule();
  const shared = sharedMemorySupported();
  const controlPtr = 64;
  const descPtr = align(controlPtr + CONTROL_BYTES, 64);
  const scratchStart = align(descPtr + DESC_BYTES, 64);
  const scratchPtrs = Array.from({ length: threads }, (_, i) => scratchStart + i * SCRATCH_BYTES);
  const heapStart = scratchStart + threads * SCRATCH_BYTES;
  const initial = Math.ceil((heapStart + (16 << 20)) / PAGE);
  // The module imports a shared memory; without shared memory it cannot be instantiated.
  if (!shared) {
    throw new BackendError(
      'setBackend',
      'the wasm backend needs a shared WebAssembly memory, which this page cannot make: serve it cross-origin isolated ' +
        '(headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp) or use the cpu backend',
    );
  }
  const memory = new WebAssembly.Memory({ initial, maximum: 65536, shared: true });
  let generation = 0;
  const pool = createPool({ module, memory, threads, scratchPtrs, controlPtr, descPtr });
  const allocator = new WasmAllocator(memory, heapStart, () => generation++);
  return {
    memory,
    pool,
    allocator,
    shared,
    generation: () => generation,
    dispose: () => pool.dispose(),
  };
}

/** Threads the machine offers: all cores (Node's availableParallelism, a browser's hardwareConcurrency). */
export function defaultThreads(): number {
  const proc = typeof process !== 'undefined' ? (process as { getBuiltinModule?: (id: string) => unknown }) : undefined;
  const os = proc?.getBuiltinModule?.('node:os') as { availableParallelism?: () => number; cpus?: () => unknown[] } | undefined;
  const fromOs = os?.availableParallelism?.() ?? os?.cpus?.().length;
  const fromNavigator = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  const n = fromOs ?? fromNavigator ?? 1;
  return Math.max(1, Math.min(n, 16));
}
