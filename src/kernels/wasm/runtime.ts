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
 * The memory is shared (a SharedArrayBuffer) wherever one can be made; a shared memory never
 * moves when it grows, so typed-array views on it stay valid. Elsewhere (a page that is not
 * cross-origin isolated) it is an ordinary memory with one thread: growing it detaches its
 * ArrayBuffer, so every view on it is made anew after a growth (the kernels' wrappers make
 * theirs per call; a tensor's buffer renews its view when `generation` has moved).
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

/**
 * Makes the memory, the pool of `threads` threads (one on an unshared memory, fewer where workers
 * cannot start) and the allocator. `sharedMemory` undefined: shared wherever it can be.
 */
export function createRuntime(threads: number, sharedMemory?: boolean): WasmRuntime {
  if (!simdSupported()) {
    throw new BackendError('setBackend', 'this JavaScript engine has no WebAssembly SIMD; use the cpu backend');
  }
  const canShare = sharedMemorySupported();
  const shared = sharedMemory ?? canShare;
  if (shared && !canShare) {
    throw new BackendError(
      'setBackend',
      'wasm: sharedMemory: true, but this page cannot make a shared WebAssembly memory: serve it cross-origin isolated ' +
        '(headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), or leave ' +
        'sharedMemory unset to run one thread on an ordinary memory',
    );
  }
  const module = kernelModule(shared);
  const controlPtr = 64;
  const descPtr = align(controlPtr + CONTROL_BYTES, 64);
  const scratchStart = align(descPtr + DESC_BYTES, 64);
  const scratchPtrs = Array.from({ length: threads }, (_, i) => scratchStart + i * SCRATCH_BYTES);
  const heapStart = scratchStart + threads * SCRATCH_BYTES;
  const initial = Math.ceil((heapStart + (16 << 20)) / PAGE);
  const memory = new WebAssembly.Memory({ initial, maximum: 65536, shared });
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
