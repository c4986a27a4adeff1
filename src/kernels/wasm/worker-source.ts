/**
 * The control block the wasm worker pool coordinates through, and the source of its workers.
 *
 * The workers' code is a string (run with `new Worker(code, { eval: true })` in Node and from a
 * Blob URL in browsers), so nothing but the bundle has to ship. It is plain JavaScript written
 * out here rather than a function's `toString()`, because bundlers and coverage tools rewrite
 * function bodies (helpers, counters) that would not exist inside the worker.
 *
 * ## The control block: CONTROL_BYTES at `controlPtr` in the shared memory (4-byte aligned)
 *
 * | int32 | name | written by | meaning |
 * | --- | --- | --- | --- |
 * | 0 | GEN | caller | job generation: bumped (then notified) to wake workers for a new job |
 * | 1 | OPEN | caller | the generation of the job workers may join, 0 while none is open |
 * | 2 | FN | caller | the kernel's index in the pool's list of exported function names |
 * | 3 | DESC | caller | the descriptor's byte address (unsigned) |
 * | 4 | TASKS | caller | the job's task count (< ABORTED) |
 * | 5 | NEXT | all | the next unclaimed task (`Atomics.add`); ABORTED after a trap |
 * | 6 | ACTIVE | workers | workers inside the current job; the caller waits for it to drop to 0 |
 * | 7 | READY | workers | workers that instantiated the module and serve jobs |
 * | 8 | STOP | caller | 1 after dispose(): workers leave their loop |
 * | 9 | ERR_THREAD | any thread | 0, or 1 + the index of the first thread whose kernel threw (0: caller) |
 * | 10 | ERR_TASK | any thread | that kernel's task |
 * | 11 | ERR_LEN | any thread | length of its message (UTF-16 units at byte MESSAGE_OFFSET) |
 * | 12 | START_FAILED | workers | workers whose instantiation failed (each posts the pool its reason) |
 *
 * ## The protocol (every access to the int32 fields is an Atomics operation, so they are
 * sequentially consistent, and a thread's plain stores (its kernel's outputs, an error message)
 * before its `Atomics.sub(ACTIVE)` are visible to the caller once it reads ACTIVE as 0)
 *
 * The caller writes FN, DESC, TASKS, NEXT = 0, then OPEN = GEN = g (a fresh generation) and
 * notifies GEN. It claims tasks itself, then closes the job (OPEN = 0) and waits for ACTIVE = 0.
 * A worker registers first (ACTIVE += 1) and only then checks OPEN == the generation it woke
 * for; if it does not match, it leaves without touching anything. Because registering comes
 * before the check and closing comes before the caller's wait, either the caller sees the
 * worker in ACTIVE (and waits for it) or the worker sees the job closed: a late worker can never
 * read half-written parameters of the next job or claim a task of the wrong one.
 */

/** Int32 indices into the control block. */
export const CTL = {
  GEN: 0,
  OPEN: 1,
  FN: 2,
  DESC: 3,
  TASKS: 4,
  NEXT: 5,
  ACTIVE: 6,
  READY: 7,
  STOP: 8,
  ERR_THREAD: 9,
  ERR_TASK: 10,
  ERR_LEN: 11,
  START_FAILED: 12,
} as const;

/** Byte offset of the error message (UTF-16 code units) inside the block. */
export const MESSAGE_OFFSET = 64;
/** Longest error message kept, in UTF-16 units (longer ones are cut). */
export const MESSAGE_UNITS = 96;
/** Bytes the caller reserves for the control block at `controlPtr` (4-byte aligned). */
export const CONTROL_BYTES = MESSAGE_OFFSET + 2 * MESSAGE_UNITS;
/** NEXT after a trap: above any task count, so every later claim finds no work. */
export const ABORTED = 0x40000000;
/**
 * Atomics.load rounds a worker spins on GEN after a job before it sleeps (about 12 µs):
 * kernels often come in bursts (a layer's matmuls), and a spinning worker joins the next job
 * without the cost of a wake-up. Idle workers sleep; they never spin longer than this.
 */
export const WORKER_SPINS = 2000;

/**
 * The wasm imports an AssemblyScript kernel module may ask for: `env.memory` (the shared
 * memory) and `env.abort` (a failed assert or bounds check). Anything else is refused by name.
 * Kept in step with `imports` in WORKER_SOURCE below, which does the same inside a worker.
 */
export function kernelImports(module: WebAssembly.Module, memory: WebAssembly.Memory): WebAssembly.Imports {
  const env: Record<string, WebAssembly.ImportValue> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module === 'env' && imp.name === 'memory' && imp.kind === 'memory') env.memory = memory;
    else if (imp.module === 'env' && imp.name === 'abort' && imp.kind === 'function') {
      env.abort = (msg: number, file: number, line: number, col: number) => {
        throw new Error(`abort: ${asString(memory, msg)} at ${asString(memory, file)}:${line}:${col}`);
      };
    } else throw new Error(`unsupported import ${imp.module}.${imp.name} (${imp.kind}); kernels may import only env.memory and env.abort`);
  }
  return { env };
}

/** An AssemblyScript string (UTF-16, byte length stored just before it) read from memory. */
function asString(memory: WebAssembly.Memory, ptr: number): string {
  if (!ptr) return '?';
  const bytes = new Uint32Array(memory.buffer, ptr - 4, 1)[0];
  const units = new Uint16Array(memory.buffer, ptr, Math.min(bytes >>> 1, 200));
  return String.fromCharCode(...units);
}

/** The worker's code. It gets { module, memory, controlPtr, scratchPtr, names, index }. */
export const WORKER_SOURCE = `'use strict';
const C = ${JSON.stringify(CTL)};
const MESSAGE_OFFSET = ${MESSAGE_OFFSET}, MESSAGE_UNITS = ${MESSAGE_UNITS}, ABORTED = ${ABORTED};
const SPINS = ${WORKER_SPINS};

function asString(memory, ptr) {
  if (!ptr) return '?';
  const bytes = new Uint32Array(memory.buffer, ptr - 4, 1)[0];
  return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, Math.min(bytes >>> 1, 200)));
}

function imports(module, memory) {
  const env = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module === 'env' && imp.name === 'memory' && imp.kind === 'memory') env.memory = memory;
    else if (imp.module === 'env' && imp.name === 'abort' && imp.kind === 'function') {
      env.abort = (msg, file, line, col) => {
        throw new Error('abort: ' + asString(memory, msg) + ' at ' + asString(memory, file) + ':' + line + ':' + col);
      };
    } else throw new Error('unsupported import ' + imp.module + '.' + imp.name + ' (' + imp.kind + ')');
  }
  return { env };
}

// First failure wins; the caller turns it into a BackendError once the job is over.
function record(ctl, memory, controlPtr, thread, task, err) {
  if (Atomics.compareExchange(ctl, C.ERR_THREAD, 0, thread + 1) !== 0) return;
  const text = (err instanceof Error ? err.name + ': ' + err.message : String(err)).slice(0, MESSAGE_UNITS);
  const out = new Uint16Array(memory.buffer, controlPtr + MESSAGE_OFFSET, MESSAGE_UNITS);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  Atomics.store(ctl, C.ERR_TASK, task);
  Atomics.store(ctl, C.ERR_LEN, text.length);
}

function serve(d) {
  const ctl = new Int32Array(d.memory.buffer, d.controlPtr, C.START_FAILED + 1);
  let fns;
  try {
    const exports = new WebAssembly.Instance(d.module, imports(d.module, d.memory)).exports;
    fns = d.names.map((n) => exports[n]);
  } catch (err) {
    // not an error of any job: the pool learns why from the message and runs without this worker
    Atomics.add(ctl, C.START_FAILED, 1);
    const text = err instanceof Error ? err.name + ': ' + err.message : String(err);
    if (typeof require === 'function') require('node:worker_threads').parentPort.postMessage(text);
    else postMessage(text);
    return;
  }
  Atomics.add(ctl, C.READY, 1);
  for (;;) {
    const gen = Atomics.load(ctl, C.GEN);
    if (Atomics.load(ctl, C.STOP)) break;
    Atomics.add(ctl, C.ACTIVE, 1); // register before looking: see the protocol in worker-source.ts
    const open = Atomics.load(ctl, C.OPEN);
    if (open !== 0 && open === gen) {
      const fn = fns[Atomics.load(ctl, C.FN)];
      const desc = Atomics.load(ctl, C.DESC) >>> 0;
      const tasks = Atomics.load(ctl, C.TASKS);
      for (let t = Atomics.add(ctl, C.NEXT, 1); t < tasks; t = Atomics.add(ctl, C.NEXT, 1)) {
        try {
          fn(desc, t, d.scratchPtr);
        } catch (err) {
          record(ctl, d.memory, d.controlPtr, d.index, t, err);
          Atomics.store(ctl, C.NEXT, ABORTED);
          break;
        }
      }
    }
    if (Atomics.sub(ctl, C.ACTIVE, 1) === 1) Atomics.notify(ctl, C.ACTIVE);
    for (let i = 0; i < SPINS && Atomics.load(ctl, C.GEN) === gen; i++);
    Atomics.wait(ctl, C.GEN, gen);
  }
  Atomics.sub(ctl, C.READY, 1);
  if (typeof close === 'function') close(); // a Web Worker ends itself; a Node worker just returns
}

if (typeof require === 'function') serve(require('node:worker_threads').workerData);
else self.onmessage = (e) => serve(e.data);
`;
