/**
 * A wasm kernel module on a shared memory for the kernel tests: a bump allocator over the memory,
 * copy-in / copy-out of typed arrays and a single-threaded runner.
 *
 * Memory layout: [0, 1024) unused (so that address 0 is never an operand), the descriptor at
 * 1024, the runner's scratch at 4096 (SCRATCH_BYTES), the bump heap after it.
 */
import { wasmKernelBytes } from '../../../src/kernels/wasm/binary';
import {
  DESC_BYTES,
  SCRATCH_BYTES,
  singleThreadRunner,
  type WasmKernelRunner,
} from '../../../src/kernels/wasm/runner';

const PAGE = 65536;
const DESC_PTR = 1024;
const SCRATCH_PTR = 4096;
const HEAP_START = SCRATCH_PTR + SCRATCH_BYTES;

export interface WasmTestEnv {
  readonly memory: WebAssembly.Memory;
  readonly instance: WebAssembly.Instance;
  readonly runner: WasmKernelRunner;
  /** Byte address of `bytes` fresh bytes aligned to `align`, growing the memory when needed. */
  alloc(bytes: number, align?: number): number;
  /** Forgets every allocation (the heap starts over). */
  reset(): void;
  /** Allocates room for `values` and copies them in; returns the byte address. */
  put(values: Float32Array | Float64Array): number;
  /** A copy of `length` elements at byte address `ptr`. */
  getF32(ptr: number, length: number): Float32Array;
  getF64(ptr: number, length: number): Float64Array;
  /** Sets `bytes` bytes at `ptr` to the byte `value` (to tell written memory from untouched). */
  fill(ptr: number, bytes: number, value: number): void;
}

let compiled: WebAssembly.Module | undefined;

/** The compiled kernel module (compiled once per test file). */
export function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(wasmKernelBytes());
  return compiled;
}

/** A fresh shared memory (initialPages, max 4 GiB) with one kernel instance on it. */
export function createWasmEnv(initialPages = 64): WasmTestEnv {
  if (DESC_PTR + DESC_BYTES > SCRATCH_PTR) throw new Error('test layout: the descriptor overlaps the scratch area');
  const memory = new WebAssembly.Memory({ initial: Math.max(initialPages, Math.ceil(HEAP_START / PAGE)), maximum: 65536, shared: true });
  const instance = new WebAssembly.Instance(kernelModule(), { env: { memory } });
  // plans work as for two threads, so that the kernels' task splits are exercised (the tasks
  // still run one after another, on this thread)
  const runner: WasmKernelRunner = { ...singleThreadRunner(instance, memory, DESC_PTR, SCRATCH_PTR), threads: 2 };
  let top = HEAP_START;
  const alloc = (bytes: number, align = 16): number => {
    const ptr = Math.ceil(top / align) * align;
    top = ptr + bytes;
    if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / PAGE));
    return ptr;
  };
  return {
    memory,
    instance,
    runner,
    alloc,
    reset: () => {
      top = HEAP_START;
    },
    put: (values) => {
      const ptr = alloc(values.byteLength);
      if (values instanceof Float32Array) new Float32Array(memory.buffer, ptr, values.length).set(values);
      else new Float64Array(memory.buffer, ptr, values.length).set(values);
      return ptr;
    },
    getF32: (ptr, length) => new Float32Array(memory.buffer, ptr, length).slice(),
    getF64: (ptr, length) => new Float64Array(memory.buffer, ptr, length).slice(),
    fill: (ptr, bytes, value) => {
      new Uint8Array(memory.buffer, ptr, bytes).fill(value);
    },
  };
}

/**
 * A runner over env's instance that runs a kernel's tasks in the order `order(tasks)` gives, or
 * only the tasks it lists. Tasks are independent, so any order must give the same bits.
 */
export function orderedRunner(env: WasmTestEnv, order: (tasks: number) => number[]): WasmKernelRunner {
  const base = env.runner;
  return {
    exports: base.exports,
    memory: base.memory,
    descPtr: base.descPtr,
    threads: base.threads,
    run(fn, desc, tasks) {
      const kernel = base.exports[fn] as (d: number, t: number, s: number) => void;
      for (const t of order(tasks)) kernel(desc, t, SCRATCH_PTR);
    },
  };
}

/** A runner over env's instance that runs the tasks last to first. */
export function reversedRunner(env: WasmTestEnv): WasmKernelRunner {
  return orderedRunner(env, (tasks) => Array.from({ length: tasks }, (_, i) => tasks - 1 - i));
}

/** Byte address of `n` 4-byte elements with 64 guard bytes of 0xff on each side (a kernel that writes past its output shows in them). */
export function guarded(env: WasmTestEnv, n: number): number {
  const ptr = env.alloc(n * 4 + 128) + 64;
  env.fill(ptr - 64, n * 4 + 128, 0xff);
  return ptr;
}

/** Expects the guard bytes around `guarded(env, n)`'s block untouched. */
export function expectGuards(env: WasmTestEnv, ptr: number, n: number): void {
  const bytes = [...new Uint8Array(env.memory.buffer, ptr - 64, 64), ...new Uint8Array(env.memory.buffer, ptr + n * 4, 64)];
  expect(bytes.every((b) => b === 0xff)).toBe(true);
}
