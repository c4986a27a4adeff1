/**
 * The wasm worker pool, on a small AssemblyScript test module compiled here (with the kernel
 * module's flags: stub runtime, imported shared memory, threads and SIMD), so these tests do not
 * depend on the real kernels.
 *
 * `fill(desc, task, scratch)` records, per task, how many times it ran and which thread ran it
 * (each thread's scratch area holds its index), so the tests can see that every task ran exactly
 * once and who did the work. Its descriptor can make it trap on one thread, make the calling
 * thread wait until a worker has taken a task (so a test can be sure a worker takes part), or
 * busy-loop per task.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createContext, runInContext } from 'node:vm';
import { buildSync } from 'esbuild';
import { BackendError, ValueError } from '../../../src/errors';
import { CONTROL_BYTES, createPool, poolThreads, type WasmPool } from '../../../src/kernels/wasm/pool';
import { CTL, MESSAGE_OFFSET, MESSAGE_UNITS, WORKER_SOURCE } from '../../../src/kernels/wasm/worker-source';

const KERNELS = `
// desc, int32 fields: 0 output address (16 bytes per task: runs, thread, work result),
// 1 the thread that traps (-1: none), 2 busy-loop length per task, 3 gate: 1 = the calling
// thread waits until a worker has started a task, 2 = workers wait until the calling thread has
// (a thread holds one task at a time, so with 2 tasks or more the other one always gets one),
// 4 tasks started by workers, 5 the task checked() rejects, 6 tasks started by the calling thread
export function fill(desc: usize, task: i32, scratch: usize): void {
  const thread = load<i32>(scratch);
  atomic.add<i32>(thread == 0 ? desc + 24 : desc + 16, 1);
  const gate = load<i32>(desc, 12);
  const waitFor = thread == 0 ? (gate == 1 ? desc + 16 : 0) : (gate == 2 ? desc + 24 : 0);
  for (let i = 0; waitFor != 0 && i < 1 << 30 && atomic.load<i32>(waitFor) == 0; i++) {}
  if (thread == load<i32>(desc, 4)) unreachable();
  let x = task;
  for (let i = 0, n = load<i32>(desc, 8); i < n; i++) x = x * 1664525 + 1013904223;
  const slot = (load<u32>(desc) as usize) + ((<usize>task) << 4);
  atomic.add<i32>(slot, 1);
  store<i32>(slot, thread, 4);
  store<i32>(slot, x, 8);
}
export function checked(desc: usize, task: i32, scratch: usize): void {
  assert(task != load<i32>(desc, 20), 'task is forbidden');
}
export function noop(desc: usize, task: i32, scratch: usize): void {}
`;

const root = resolve(__dirname, '../../..');
let dir = '';
let kernels: WebAssembly.Module;
let wasmFile = '';

/** Compiles KERNELS with the asc CLI (asc's API is ESM only, and jest runs tests as CommonJS). */
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'blockgrad-pool-'));
  writeFileSync(join(dir, 'kernels.ts'), KERNELS);
  wasmFile = join(dir, 'kernels.wasm');
  const asc = join(dirname(require.resolve('assemblyscript/package.json')), 'bin', 'asc.js');
  const flags = ['--runtime', 'stub', '--importMemory', '--sharedMemory', '--maximumMemory', '65536', '--enable', 'threads,simd', '-O3'];
  const out = spawnSync(process.execPath, [asc, join(dir, 'kernels.ts'), '-o', wasmFile, ...flags], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`asc failed: ${out.stderr}`);
  kernels = new WebAssembly.Module(readFileSync(wasmFile));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Memory layout (the module's static data sits in [1024, 2048)).
const CONTROL = 4096;
const DESC = 8192;
const SCRATCH = 12288; // 64 bytes per thread
const OUT = 65536; // 16 bytes per task
const MAX_TASKS = 4096;

const memory = new WebAssembly.Memory({ initial: 4, maximum: 65536, shared: true });
const i32 = new Int32Array(memory.buffer);
const scratchPtrs = [SCRATCH, SCRATCH + 64];
scratchPtrs.forEach((ptr, thread) => (i32[ptr / 4] = thread));

const pools: WasmPool[] = [];
function pool(threads: number): WasmPool {
  const p = createPool({ module: kernels, memory, threads, scratchPtrs, controlPtr: CONTROL, descPtr: DESC });
  pools.push(p);
  return p;
}
afterEach(() => {
  for (const p of pools.splice(0)) p.dispose();
});

/** Writes fill's descriptor and clears the outputs of `tasks` tasks (and one past them). */
function fillDesc(tasks: number, opts: { trapThread?: number; work?: number; gate?: 'caller waits' | 'workers wait'; rejectTask?: number } = {}): number {
  const d = DESC / 4;
  i32[d] = OUT;
  i32[d + 1] = opts.trapThread ?? -1;
  i32[d + 2] = opts.work ?? 0;
  i32[d + 3] = opts.gate === 'caller waits' ? 1 : opts.gate === 'workers wait' ? 2 : 0;
  i32[d + 4] = 0;
  i32[d + 5] = opts.rejectTask ?? -1;
  i32[d + 6] = 0;
  i32.fill(0, OUT / 4, OUT / 4 + 4 * (tasks + 1));
  return DESC;
}

/** Per task, [times it ran, thread that ran it]. */
function outcome(tasks: number): { runs: number[]; threads: number[] } {
  const runs: number[] = [];
  const threads: number[] = [];
  for (let t = 0; t <= tasks; t++) {
    runs.push(i32[OUT / 4 + 4 * t]);
    threads.push(i32[OUT / 4 + 4 * t + 1]);
  }
  return { runs, threads };
}

async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

/** A job that ran every task once: runs is [1 x tasks, 0]. */
const once = (tasks: number): number[] => [...Array(tasks).fill(1), 0];

test('poolThreads: workers only with shared memory, and in browsers only when cross-origin isolated', () => {
  const ok = { workers: 'node', isNode: true, crossOriginIsolated: false, sharedMemory: true } as const;
  expect(poolThreads(2, ok)).toEqual({ threads: 2, reason: '' });
  expect(poolThreads(1, ok)).toEqual({ threads: 1, reason: '' });
  expect(poolThreads(2, { ...ok, workers: 'web', isNode: false, crossOriginIsolated: true })).toEqual({ threads: 2, reason: '' });
  const notIsolated = poolThreads(4, { ...ok, workers: 'web', isNode: false });
  expect(notIsolated.threads).toBe(1);
  expect(notIsolated.reason).toMatch(/cross-origin isolated.*Cross-Origin-Opener-Policy: same-origin/);
  expect(poolThreads(2, { ...ok, workers: 'none', isNode: false })).toEqual({ threads: 1, reason: expect.stringMatching(/neither worker_threads nor Web Workers/) });
  expect(poolThreads(2, { ...ok, workers: 'none' })).toEqual({ threads: 1, reason: expect.stringMatching(/Node >= 20.16/) });
  expect(poolThreads(2, { ...ok, sharedMemory: false })).toEqual({ threads: 1, reason: expect.stringMatching(/not shared/) });
});

test('the control block: 256 bytes, the int32 fields before the error message', () => {
  expect(CONTROL_BYTES).toBe(256);
  expect(4 * (Math.max(...Object.values(CTL)) + 1)).toBeLessThanOrEqual(MESSAGE_OFFSET);
  expect(MESSAGE_OFFSET + 2 * MESSAGE_UNITS).toBe(CONTROL_BYTES);
});

test('one thread: no workers, every task once on the calling thread', async () => {
  const p = pool(1);
  expect(p.threads).toBe(1);
  expect(p.reason).toBe('');
  for (const tasks of [1, 2, 7, 1000]) {
    p.run('fill', fillDesc(tasks), tasks);
    expect(outcome(tasks)).toEqual({ runs: once(tasks), threads: Array(tasks + 1).fill(0) });
  }
  await expect(p.exited).resolves.toBeUndefined();
  expect(p.readyWorkers).toBe(0);
});

test('two threads: a job right after creation runs (on the caller alone until the worker is up)', () => {
  const p = pool(2);
  expect(p.threads).toBe(2);
  p.run('fill', fillDesc(100, { work: 100 }), 100);
  expect(outcome(100).runs).toEqual(once(100));
});

test('two threads: every task runs exactly once, for job sizes 1..1000 in a row', async () => {
  const p = pool(2);
  expect(await until(() => p.readyWorkers === 1)).toBe(true);
  let onWorker = 0;
  const wrong: string[] = [];
  for (let tasks = 1; tasks <= 1000; tasks++) {
    p.run('fill', fillDesc(tasks), tasks);
    const { runs, threads } = outcome(tasks);
    if (runs.some((r, t) => r !== (t < tasks ? 1 : 0))) wrong.push(`${tasks} tasks: runs ${runs.join(',')}`);
    onWorker += threads.filter((th) => th === 1).length;
  }
  expect(wrong).toEqual([]);
  // not asserted (it depends on scheduling), but worth seeing when the test is run by hand
  if (process.env.POOL_VERBOSE) console.log(`tasks run by the worker in 500,500: ${onWorker}`);
});

test('two threads: both threads take tasks of a large job', async () => {
  const p = pool(2);
  expect(await until(() => p.readyWorkers === 1)).toBe(true);
  const tasks = MAX_TASKS;
  p.run('fill', fillDesc(tasks, { gate: 'caller waits', work: 2000 }), tasks);
  const { runs, threads } = outcome(tasks);
  expect(runs).toEqual(once(tasks));
  const byThread = [0, 1].map((th) => threads.slice(0, tasks).filter((x) => x === th).length);
  expect(byThread[0]).toBeGreaterThan(0);
  expect(byThread[1]).toBeGreaterThan(0);
  expect(byThread[0] + byThread[1]).toBe(tasks);
});

test('a trap on the worker throws a BackendError naming the kernel; the pool keeps working', async () => {
  const p = pool(2);
  expect(await until(() => p.readyWorkers === 1)).toBe(true);
  const tasks = 50;
  let caught: unknown;
  try {
    p.run('fill', fillDesc(tasks, { trapThread: 1, gate: 'caller waits' }), tasks);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(BackendError);
  expect((caught as Error).message).toMatch(/^wasm fill: the kernel threw on worker thread 1 at task \d+ of 50: RuntimeError: unreachable/);
  // the worker still serves jobs (the gate makes the caller wait until it has taken a task)
  p.run('fill', fillDesc(tasks, { gate: 'caller waits' }), tasks);
  const { runs, threads } = outcome(tasks);
  expect(runs).toEqual(once(tasks));
  expect(threads).toContain(1);
});

test('a trap on the calling thread, with workers or without, throws a BackendError', async () => {
  const p2 = pool(2);
  expect(await until(() => p2.readyWorkers === 1)).toBe(true);
  expect(() => p2.run('fill', fillDesc(20, { trapThread: 0, gate: 'workers wait' }), 20)).toThrow(
    /^wasm fill: the kernel threw on the calling thread at task \d+ of 20: RuntimeError: unreachable/,
  );
  p2.run('fill', fillDesc(20), 20);
  expect(outcome(20).runs).toEqual(once(20));
  p2.dispose();

  const p1 = pool(1);
  expect(() => p1.run('fill', fillDesc(5, { trapThread: 0 }), 5)).toThrow(BackendError);
  p1.run('fill', fillDesc(5), 5);
  expect(outcome(5).runs).toEqual(once(5));
});

test('an AssemblyScript abort (a failed assert) carries its message', async () => {
  const p = pool(2);
  expect(await until(() => p.readyWorkers === 1)).toBe(true);
  fillDesc(0, { rejectTask: 333 });
  expect(() => p.run('checked', DESC, 1000)).toThrow(/^wasm checked: .* at task 333 of 1000: Error: abort: task is forbidden at \S*kernels\.ts:\d+:\d+/);
  expect(() => p.run('checked', DESC, 333)).not.toThrow(); // tasks 0..332 pass
  expect(() => p.run('checked', DESC, 334)).toThrow(/at task 333 of 334: Error: abort: task is forbidden/);
});

test('arguments: an unknown kernel, a bad task count, and 0 tasks', () => {
  const p = pool(2);
  expect(() => p.run('nope', DESC, 1)).toThrow(new BackendError('wasm nope', "the module exports no kernel 'nope' (it has fill, checked, noop)"));
  expect(() => p.run('fill', DESC, -1)).toThrow(ValueError);
  expect(() => p.run('fill', DESC, 1.5)).toThrow(ValueError);
  fillDesc(3);
  p.run('fill', DESC, 0);
  expect(outcome(3).runs).toEqual([0, 0, 0, 0]);
  expect(() => createPool({ module: kernels, memory, threads: 2, scratchPtrs: [SCRATCH], controlPtr: CONTROL, descPtr: DESC })).toThrow(
    /2 threads need 2 scratch areas, got 1/,
  );
  expect(() => createPool({ module: kernels, memory, threads: 0, scratchPtrs, controlPtr: CONTROL, descPtr: DESC })).toThrow(ValueError);
  expect(() => createPool({ module: kernels, memory, threads: 1, scratchPtrs, controlPtr: CONTROL + 2, descPtr: DESC })).toThrow(/4-byte aligned/);
});

test('dispose ends the workers, and a later run throws a BackendError', async () => {
  const p = pool(2);
  expect(await until(() => p.readyWorkers === 1)).toBe(true);
  p.run('noop', DESC, 10);
  p.dispose();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ended = await Promise.race([p.exited.then(() => true), new Promise((r) => (timer = setTimeout(() => r(false), 5000)))]);
  clearTimeout(timer);
  expect(ended).toBe(true);
  expect(() => p.run('fill', DESC, 1)).toThrow(new BackendError('wasm fill', 'the worker pool was disposed; create a new one to run kernels'));
  p.dispose(); // twice is harmless
});

/** (module (import "env" "f" (func))): an import the pool does not provide. */
const foreignImport = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 2, 9, 1, 3, 101, 110, 118, 1, 102, 0, 0]);

test('a module with an import the pool cannot provide is refused with a BackendError', () => {
  const mod = new WebAssembly.Module(foreignImport);
  expect(() => createPool({ module: mod, memory, threads: 2, scratchPtrs, controlPtr: CONTROL, descPtr: DESC })).toThrow(
    new BackendError('wasm pool', 'cannot instantiate the kernel module: unsupported import env.f (function); kernels may import only env.memory and env.abort'),
  );
});

test('the worker source, run as a Web Worker runs it, starts, reports a failed start, and stops on STOP', () => {
  // A browser worker's globals: no require, self.onmessage, postMessage, close. The happy path is
  // run with STOP already set, so serve() returns instead of sleeping in Atomics.wait.
  const control = CONTROL + 1024;
  const ctl = new Int32Array(memory.buffer, control, CONTROL_BYTES / 4);
  const start = (module: WebAssembly.Module) => {
    ctl.fill(0);
    ctl[CTL.STOP] = 1;
    const posted: unknown[] = [];
    const worker = { self: {} as { onmessage?: (e: { data: unknown }) => void }, closed: false, posted };
    const context = createContext({ self: worker.self, postMessage: (m: unknown) => posted.push(m), close: () => (worker.closed = true) });
    runInContext(WORKER_SOURCE, context);
    worker.self.onmessage!({ data: { module, memory, controlPtr: control, scratchPtr: scratchPtrs[1], names: ['fill'], index: 1 } });
    return worker;
  };
  const ok = start(kernels);
  expect({ closed: ok.closed, posted: ok.posted, ready: ctl[CTL.READY], failed: ctl[CTL.START_FAILED] }).toEqual({ closed: true, posted: [], ready: 0, failed: 0 });
  const bad = start(new WebAssembly.Module(foreignImport));
  expect({ closed: bad.closed, posted: bad.posted, failed: ctl[CTL.START_FAILED] }).toEqual({
    closed: false,
    posted: ['Error: unsupported import env.f (function)'],
    failed: 1,
  });
});

test('a process that uses a pool exits on its own (the workers are unref()ed)', () => {
  const entry = `
    import { readFileSync } from 'node:fs';
    import { createPool } from ${JSON.stringify(join(root, 'src/kernels/wasm/pool.ts'))};
    const module = new WebAssembly.Module(readFileSync(process.argv[2]));
    const memory = new WebAssembly.Memory({ initial: 4, maximum: 65536, shared: true });
    const pool = createPool({ module, memory, threads: 2, scratchPtrs: [${SCRATCH}, ${SCRATCH + 64}], controlPtr: ${CONTROL}, descPtr: ${DESC} });
    const job = () => { pool.run('noop', ${DESC}, 100); return pool.readyWorkers; };
    if (process.argv[3] === 'at-once') console.log('ran', job());
    else {
      const start = Date.now();
      const poll = () => (pool.readyWorkers === 1 || Date.now() - start > 5000 ? console.log('ran', job()) : setTimeout(poll, 5));
      poll();
    }
  `;
  const bundle = join(dir, 'child.cjs');
  buildSync({ stdin: { contents: entry, resolveDir: root, loader: 'ts' }, bundle: true, platform: 'node', format: 'cjs', outfile: bundle, logLevel: 'silent' });
  for (const [mode, ready] of [['at-once', /^ran [01]$/], ['after-ready', /^ran 1$/]] as const) {
    const t0 = Date.now();
    const child = spawnSync(process.execPath, [bundle, wasmFile, mode], { encoding: 'utf8', timeout: 20_000 });
    const seconds = (Date.now() - t0) / 1000;
    expect({ mode, status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({ mode, status: 0, signal: null, stderr: '' });
    expect(child.stdout.trim()).toMatch(ready);
    expect(seconds).toBeLessThan(10); // a hang would hit the 20 s timeout (signal SIGTERM)
  }
});
