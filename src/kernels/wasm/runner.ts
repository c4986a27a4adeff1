/**
 * How the wasm kernels are run. Every parallel kernel exported by the wasm module has the
 * signature `fn(desc, task, scratch)` (see wasm/assembly/matmul.ts): `desc` is the byte address
 * of a descriptor the caller wrote, `task` one unit of work, `scratch` SCRATCH_BYTES bytes that
 * belong to the calling thread alone. A runner calls `fn` once for every task, on one thread or
 * several; tasks write disjoint parts of their output, so any order and any split is correct.
 */
import { BackendError } from '../../errors';

/** What a kernel wrapper (like matmulInto) needs from the runtime. */
export interface WasmKernelRunner {
  /** The wasm instance's exports (of the calling thread's instance). */
  readonly exports: Record<string, unknown>;
  /** The memory every instance shares. */
  readonly memory: WebAssembly.Memory;
  /** Runs exports[fn](desc, task, scratch) for task = 0..tasks-1, on one or more threads; returns when all are done. */
  run(fn: string, desc: number, tasks: number): void;
  /** A byte address of a small descriptor area (at least 256 bytes) the caller may overwrite before each run. */
  readonly descPtr: number;
  /** Threads that take tasks, the caller included (1 when absent): kernels cut work finer only for more. */
  readonly threads?: number;
}

/** Bytes of per-thread scratch every parallel kernel may use (the wasm module exports the same value). */
export const SCRATCH_BYTES = 1 << 20;

/** Bytes of the descriptor area a runner must provide at descPtr. */
export const DESC_BYTES = 256;

type TaskKernel = (desc: number, task: number, scratch: number) => void;

/**
 * A runner that runs every task on the calling thread, in order. `descPtr` (DESC_BYTES bytes) and
 * `scratchPtr` (SCRATCH_BYTES bytes) must be areas of `memory` that nothing else uses.
 */
export function singleThreadRunner(
  instance: WebAssembly.Instance,
  memory: WebAssembly.Memory,
  descPtr: number,
  scratchPtr: number,
): WasmKernelRunner {
  const exports = instance.exports as Record<string, unknown>;
  return {
    exports,
    memory,
    descPtr,
    run(fn: string, desc: number, tasks: number): void {
      const kernel = exports[fn] as TaskKernel | undefined;
      if (typeof kernel !== 'function') {
        throw new BackendError('wasm runner', `the kernel module exports no function '${fn}': rebuild it (npm run build) or fix the name`);
      }
      for (let t = 0; t < tasks; t++) kernel(desc, t, scratchPtr);
    },
  };
}
