/**
 * A persistent pool of threads that run the wasm kernels' tasks over one shared memory.
 *
 * Every parallel kernel is `fn(desc, task, scratch)`: `desc` points at its descriptor, `task` is
 * one unit of work, `scratch` is the running thread's own scratch area. Tasks write disjoint
 * outputs, so any thread may run any task in any order. `run(fn, desc, tasks)` hands out tasks
 * dynamically (whoever is free claims the next one with `Atomics.add`), so a thread slowed down
 * by another process simply takes fewer, and returns once every task is done.
 *
 * The calling thread is thread 0 and always works; `threads - 1` workers (Node `worker_threads`,
 * or Web Workers where the page is cross-origin isolated) each instantiate the same module over
 * the same memory. Workers start asynchronously, but the pool works from the first call: until a
 * worker reports ready, the caller runs every task itself. Coordination goes through a control
 * block in the shared memory (layout and protocol: worker-source.ts). Idle workers sleep in
 * `Atomics.wait`; the caller, once out of tasks, spins briefly and then sleeps until the last
 * worker leaves (on a browser's main thread, where it may not block, it only spins).
 *
 * Node workers are `unref()`ed, so an idle pool never keeps a process alive; `dispose()` ends
 * them. A kernel that throws (a trap, a failed assert) on any thread makes `run` throw a
 * BackendError naming the kernel, the thread and the task; the pool stays usable.
 *
 * What the module and its caller must respect, since every thread has its own instance of it:
 * kernels keep no state in wasm globals and never allocate (the stub runtime's bump pointer is
 * per instance, so two threads would hand out the same bytes); each instantiation rewrites the
 * module's active data segments, so they must stay constant; the control block, descriptor and
 * scratch areas must lie outside the module's static data ([1024, __heap_base) for asc's
 * defaults). One pool per control block.
 */
import type * as NodeWorkerThreads from 'node:worker_threads';
import { BackendError, ValueError } from '../../errors';
import type { WasmKernelRunner } from './runner';
import { ABORTED, CONTROL_BYTES, CTL, MESSAGE_OFFSET, MESSAGE_UNITS, WORKER_SOURCE, kernelImports } from './worker-source';

export { CONTROL_BYTES } from './worker-source';

export interface PoolOptions {
  /** The kernel module; its memory import is `env.memory`. */
  module: WebAssembly.Module;
  /** The memory every thread works on: shared for more than one thread. */
  memory: WebAssembly.Memory;
  /** Threads wanted, the calling thread included (1: no workers). */
  threads: number;
  /** One scratch area per thread (byte addresses); scratchPtrs[0] is the calling thread's. */
  scratchPtrs: readonly number[];
  /** CONTROL_BYTES reserved for the pool, 4-byte aligned. */
  controlPtr: number;
  /** A descriptor area (at least 256 bytes) callers fill before each run; the pool only shows it. */
  descPtr: number;
}

/** The pool: a WasmKernelRunner (exports are the calling thread's instance's), plus its life cycle. */
export interface WasmPool extends WasmKernelRunner {
  /** Threads the pool runs on, the caller included: less than asked when workers are unavailable. */
  readonly threads: number;
  /** Why `threads` is less than asked ('' when it is not). */
  readonly reason: string;
  /** Workers that have started and take tasks (0 right after creation, then threads - 1). */
  readonly readyWorkers: number;
  /** Settles once every worker thread has ended (in browsers at once: Web Workers give no signal). */
  readonly exited: Promise<void>;
  /** Ends the workers; a later run throws. */
  dispose(): void;
}

/** Where threads come from here. */
export interface ThreadEnv {
  workers: 'node' | 'web' | 'none';
  /** Whether this is Node.js (where 'none' means worker_threads could not be reached synchronously). */
  isNode: boolean;
  /** globalThis.crossOriginIsolated (browsers share memory with workers only when it is true). */
  crossOriginIsolated: boolean;
  /** Whether the memory is a shared one (its buffer a SharedArrayBuffer). */
  sharedMemory: boolean;
}

/** How many threads a pool gets, and why it gets fewer than asked. */
export function poolThreads(requested: number, env: ThreadEnv): { threads: number; reason: string } {
  if (requested <= 1) return { threads: 1, reason: '' };
  const isolate =
    'the page is not cross-origin isolated, so it cannot share memory with Web Workers; serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp';
  if (!env.sharedMemory) {
    return { threads: 1, reason: env.workers === 'web' && !env.crossOriginIsolated ? isolate : 'the wasm memory is not shared (sharedMemory: false), so no other thread can see it' };
  }
  if (env.workers === 'none') {
    const reason = env.isNode
      ? 'this Node.js cannot load worker_threads synchronously from an ES module (process.getBuiltinModule needs Node >= 20.16)'
      : 'this platform has neither worker_threads nor Web Workers';
    return { threads: 1, reason };
  }
  if (env.workers === 'web' && !env.crossOriginIsolated) return { threads: 1, reason: isolate };
  return { threads: requested, reason: '' };
}

/** Node's worker_threads, found at run time (as safetensors finds fs) so browser bundles never import it. */
function nodeWorkerThreads(): typeof NodeWorkerThreads | undefined {
  const proc = typeof process !== 'undefined' ? (process as { getBuiltinModule?: (id: string) => unknown }) : undefined;
  const viaBuiltin = proc?.getBuiltinModule?.('node:worker_threads') as typeof NodeWorkerThreads | undefined;
  if (viaBuiltin) return viaBuiltin;
  // Node before 20.16 has no getBuiltinModule; CommonJS still has require.
  const req = typeof require === 'function' ? require : undefined;
  try {
    return req?.('node:worker_threads') as typeof NodeWorkerThreads | undefined;
  } catch {
    return undefined;
  }
}

/** The browser's Worker, typed here so the project needs no DOM types. */
interface WebWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: { message: string }) => void) | null;
}
function webWorker(): (new (url: string) => WebWorker) | undefined {
  return (globalThis as { Worker?: new (url: string) => WebWorker }).Worker;
}

/** One started worker: how to end it, and a promise that settles when it has ended. */
interface WorkerHandle {
  end(): void;
  exited: Promise<void>;
}

type WorkerData = { module: WebAssembly.Module; memory: WebAssembly.Memory; controlPtr: number; scratchPtr: number; names: string[]; index: number };

/**
 * Starts `count` workers (indices 1..count); `onProblem` hears a worker that failed to start.
 * `release` frees what the workers shared (the browser's Blob URL) once they are ended.
 */
function startWorkers(
  kind: 'node' | 'web',
  base: Omit<WorkerData, 'scratchPtr' | 'index'>,
  scratchPtrs: readonly number[],
  count: number,
  onProblem: (text: string) => void,
): { handles: WorkerHandle[]; release: () => void } {
  const handles: WorkerHandle[] = [];
  if (kind === 'node') {
    const { Worker } = nodeWorkerThreads()!;
    for (let index = 1; index <= count; index++) {
      const workerData: WorkerData = { ...base, scratchPtr: scratchPtrs[index], index };
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
      worker.on('message', (text) => onProblem(`worker ${index} did not start: ${String(text)}`));
      worker.on('error', (err) => onProblem(`worker ${index} failed: ${err.message}`));
      const exited = new Promise<void>((done) => worker.once('exit', () => done()));
      // An idle pool never keeps Node alive. Last: adding a 'message' listener refs the worker again.
      worker.unref();
      handles.push({ end: () => void worker.terminate(), exited });
    }
    return { handles, release: () => undefined };
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  for (let index = 1; index <= count; index++) {
    const worker = new (webWorker()!)(url);
    worker.onmessage = (e) => onProblem(`worker ${index} did not start: ${String(e.data)}`);
    worker.onerror = (e) => onProblem(`worker ${index} failed: ${e.message}`);
    worker.postMessage({ ...base, scratchPtr: scratchPtrs[index], index } satisfies WorkerData);
    handles.push({ end: () => worker.terminate(), exited: Promise.resolve() });
  }
  return { handles, release: () => URL.revokeObjectURL(url) };
}

const errorText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

/** Atomics.load rounds (about 6 ns each) the caller spins before it sleeps while stragglers finish their task. */
const CALLER_SPINS = 2000;

export function createPool(options: PoolOptions): WasmPool {
  const { module, memory, controlPtr, descPtr, scratchPtrs } = options;
  const op = 'wasm pool';
  if (!Number.isInteger(options.threads) || options.threads < 1) {
    throw new ValueError(op, `threads must be a positive integer, got ${options.threads}`);
  }
  if (scratchPtrs.length < options.threads) {
    throw new ValueError(op, `${options.threads} threads need ${options.threads} scratch areas, got ${scratchPtrs.length}`);
  }
  if (controlPtr % 4 !== 0 || controlPtr < 0 || controlPtr + CONTROL_BYTES > memory.buffer.byteLength) {
    throw new ValueError(op, `controlPtr ${controlPtr} must be 4-byte aligned with ${CONTROL_BYTES} bytes of memory after it`);
  }
  let exports: Record<string, unknown>;
  try {
    exports = new WebAssembly.Instance(module, kernelImports(module, memory)).exports;
  } catch (err) {
    throw new BackendError(op, `cannot instantiate the kernel module: ${(err as Error).message}`);
  }
  const names = WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name);
  const ids = new Map(names.map((name, id) => [name, id]));
  const fns = names.map((name) => exports[name] as (desc: number, task: number, scratch: number) => void);
  // Only a pool with workers (so a shared memory, which never moves) uses this view after the
  // start: growing an unshared memory detaches its buffer, and a one-thread pool never looks again.
  const ctl = new Int32Array(memory.buffer, controlPtr, CONTROL_BYTES / 4);
  ctl.fill(0);

  const node = nodeWorkerThreads();
  const env: ThreadEnv = {
    workers: node ? 'node' : webWorker() && typeof Blob === 'function' ? 'web' : 'none',
    isNode: typeof process !== 'undefined' && typeof process.versions?.node === 'string',
    crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
    sharedMemory: typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer,
  };
  const plan = poolThreads(options.threads, env);
  let reason = plan.reason;
  const { handles: workers, release } =
    plan.threads > 1
      ? startWorkers(env.workers as 'node' | 'web', { module, memory, controlPtr, names }, scratchPtrs, plan.threads - 1, (text) => {
          reason ||= text;
        })
      : { handles: [], release: () => undefined };
  // A browser's main thread may not block in Atomics.wait (it throws): probe once, with a value
  // that does not match, so where it may block the call returns at once.
  let canBlock = true;
  try {
    Atomics.wait(ctl, CTL.STOP, 1, 0);
  } catch {
    canBlock = false;
  }

  let gen = 0;
  let busy = false;
  let disposed = false;

  /** A BackendError for the failure recorded in the control block. */
  const failure = (fn: string, tasks: number): BackendError => {
    const thread = Atomics.load(ctl, CTL.ERR_THREAD) - 1;
    const task = Atomics.load(ctl, CTL.ERR_TASK);
    const units = new Uint16Array(memory.buffer, controlPtr + MESSAGE_OFFSET, Atomics.load(ctl, CTL.ERR_LEN));
    const where = thread === 0 ? 'the calling thread' : `worker thread ${thread}`;
    return new BackendError(
      `wasm ${fn}`,
      `the kernel threw on ${where} at task ${task} of ${tasks}: ${String.fromCharCode(...units)}; its outputs are incomplete (the pool still works)`,
    );
  };
  /** Records the calling thread's failure unless a worker's came first (as the workers do). */
  const recordOwn = (task: number, err: unknown): void => {
    if (Atomics.compareExchange(ctl, CTL.ERR_THREAD, 0, 1) !== 0) return;
    const text = errorText(err).slice(0, MESSAGE_UNITS);
    const out = new Uint16Array(memory.buffer, controlPtr + MESSAGE_OFFSET, text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    Atomics.store(ctl, CTL.ERR_TASK, task);
    Atomics.store(ctl, CTL.ERR_LEN, text.length);
  };

  const runParallel = (id: number, desc: number, tasks: number): boolean => {
    const kernel = fns[id];
    const scratch = scratchPtrs[0];
    Atomics.store(ctl, CTL.FN, id);
    Atomics.store(ctl, CTL.DESC, desc | 0);
    Atomics.store(ctl, CTL.TASKS, tasks);
    Atomics.store(ctl, CTL.NEXT, 0);
    Atomics.store(ctl, CTL.ERR_THREAD, 0);
    gen = (gen % 0x7ffffffe) + 1; // never 0, which OPEN uses for "no job"
    Atomics.store(ctl, CTL.OPEN, gen);
    Atomics.store(ctl, CTL.GEN, gen);
    Atomics.notify(ctl, CTL.GEN);
    for (let t = Atomics.add(ctl, CTL.NEXT, 1); t < tasks; t = Atomics.add(ctl, CTL.NEXT, 1)) {
      try {
        kernel(desc, t, scratch);
      } catch (err) {
        recordOwn(t, err);
        Atomics.store(ctl, CTL.NEXT, ABORTED);
        break;
      }
    }
    Atomics.store(ctl, CTL.OPEN, 0);
    // Wait for the workers still inside the job (each holds at most one task).
    for (let spins = 0; ; spins++) {
      const active = Atomics.load(ctl, CTL.ACTIVE);
      if (active === 0) break;
      if (canBlock && spins >= CALLER_SPINS) Atomics.wait(ctl, CTL.ACTIVE, active, 1);
    }
    return Atomics.load(ctl, CTL.ERR_THREAD) === 0;
  };

  const run = (fn: string, desc: number, tasks: number): void => {
    const id = ids.get(fn);
    if (disposed) throw new BackendError(`wasm ${fn}`, 'the worker pool was disposed; create a new one to run kernels');
    if (id === undefined) throw new BackendError(`wasm ${fn}`, `the module exports no kernel '${fn}' (it has ${names.join(', ')})`);
    if (!Number.isInteger(tasks) || tasks < 0 || tasks >= ABORTED) {
      throw new ValueError(`wasm ${fn}`, `tasks must be an integer in [0, ${ABORTED}), got ${tasks}`);
    }
    if (busy) throw new BackendError(`wasm ${fn}`, 'run was called while another run of this pool is in progress');
    busy = true;
    try {
      if (tasks > 1 && workers.length > 0 && Atomics.load(ctl, CTL.READY) > 0) {
        if (!runParallel(id, desc, tasks)) throw failure(fn, tasks);
        return;
      }
      // One thread: just a loop.
      const kernel = fns[id];
      const scratch = scratchPtrs[0];
      for (let t = 0; t < tasks; t++) {
        try {
          kernel(desc, t, scratch);
        } catch (err) {
          throw new BackendError(`wasm ${fn}`, `the kernel threw on the calling thread at task ${t} of ${tasks}: ${errorText(err)}; its outputs are incomplete`);
        }
      }
    } finally {
      busy = false;
    }
  };

  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    if (workers.length > 0) {
      // STOP first, then a new generation, so a worker spinning or about to wait sees the change.
      Atomics.store(ctl, CTL.STOP, 1);
      Atomics.add(ctl, CTL.GEN, 1);
      Atomics.notify(ctl, CTL.GEN);
    }
    for (const w of workers) w.end();
    release();
  };

  return {
    exports,
    memory,
    descPtr,
    threads: 1 + workers.length,
    get reason() {
      return reason;
    },
    get readyWorkers() {
      return disposed || workers.length === 0 ? 0 : Atomics.load(ctl, CTL.READY);
    },
    exited: Promise.all(workers.map((w) => w.exited)).then(() => undefined),
    run,
    dispose,
  };
}
