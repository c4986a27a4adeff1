/**
 * Matmul GFLOP/s of the wasm backend against its peers, in one process and one run: blockgrad's
 * cpu backend (blocked TypeScript), the wasm backend on 1 and on 2 threads, TensorFlow.js's wasm
 * backend (XNNPACK, SIMD, one thread in Node) and its cpu backend; float32 for all, float64 for
 * blockgrad's backends (tfjs has none). Shapes: square 128..1024 and the products of one training
 * step of the 8-layer Llama of the step suite (256 tokens = batch 4 x seq 64, hidden 256,
 * intermediate 688): the forward X·Wᵀ of the up and down projections and their backward dX = dY·W
 * and dW = dYᵀ·X (the layouts the linear op runs).
 *
 *   node scripts/run-ts.mjs bench/wasm-matmul.bench.ts [--quick] [--no-tfjs]    (about a minute; --quick ~20 s)
 *
 * (npm run build, or node scripts/build-wasm.mjs, first if the kernels in wasm/assembly changed.)
 *
 * Timing: per shape, every kernel runs once per round, in turn (the first kernel of a round
 * rotates), each for at least ROUND_SECONDS; the table shows the median round (rounds.ts).
 * blockgrad's kernels are called through the Backend interface (`backend.matmul`, output
 * allocation and release included, no autograd op around it): two wasm backends with different
 * thread counts cannot both be the active backend, so each is its own instance here. tfjs runs
 * `tf.matMul` (its engine's bookkeeping included, a few µs) without reading the result back: both
 * tfjs backends compute eagerly and synchronously. tfjs-wasm runs a product with a transposed
 * operand on a much slower path (measured here: ~1.5-2.5 GFLOP/s against ~30 for the plain
 * layout), so on the transposed layouts it is also timed with the operands transposed beforehand
 * ('plain'), and the ratios compare against the better of the two. Before timing, every kernel's result is
 * checked against the cpu backend's, so a fast wrong kernel cannot post a number.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { Backend, BackendBuffer, MatmulShape } from '../src/kernels/backend';
import { CpuBackend } from '../src/kernels/cpu/backend';
import { WasmBackend } from '../src/kernels/wasm/backend';
import { matmulTasks } from '../src/kernels/wasm/matmul';
import { isEntry } from './backward.bench';
import { randomFloat32 } from './matmul.bench';
import { startTfBackend } from './peers.bench';
import { load1, sampled, timeRound, yieldToLoop, type Sampled } from './rounds';

export interface MatmulCase {
  name: string;
  m: number;
  k: number;
  n: number;
  transA: boolean;
  transB: boolean;
}

/** Rows of the step suite's activations (batch 4 x seq 64), hidden and intermediate sizes. */
const TOKENS = 256;
const HIDDEN = 256;
const INTER = 688;
const square = (s: number): MatmulCase => ({ name: `${s}²`, m: s, k: s, n: s, transA: false, transB: false });
export const WASM_MATMUL_CASES: MatmulCase[] = [
  square(128),
  square(256),
  square(512),
  square(1024),
  // forward of a linear: X [T, in] · Wᵀ, W stored [out, in]
  { name: 'up X·Wᵀ', m: TOKENS, k: HIDDEN, n: INTER, transA: false, transB: true },
  { name: 'down X·Wᵀ', m: TOKENS, k: INTER, n: HIDDEN, transA: false, transB: true },
  // backward: dX = dY [T, out] · W [out, in]
  { name: 'up dX = dY·W', m: TOKENS, k: INTER, n: HIDDEN, transA: false, transB: false },
  { name: 'down dX = dY·W', m: TOKENS, k: HIDDEN, n: INTER, transA: false, transB: false },
  // backward: dW = dYᵀ [out, T] · X [T, in], dY stored [T, out]
  { name: 'up dW = dYᵀ·X', m: INTER, k: TOKENS, n: HIDDEN, transA: true, transB: false },
  { name: 'down dW = dYᵀ·X', m: HIDDEN, k: TOKENS, n: INTER, transA: true, transB: false },
];

export const CONTENDERS = [
  'cpu f32', 'wasm-1t f32', 'wasm-2t f32', 'tfjs-wasm f32', 'tfjs-wasm plain f32', 'tfjs-cpu f32', 'cpu f64', 'wasm-1t f64', 'wasm-2t f64',
] as const;
export type Contender = (typeof CONTENDERS)[number];

export interface WasmMatmulRow extends MatmulCase {
  flops: number;
  /** Tasks the wasm kernel cuts the float32 product into on two threads (one thread runs it as one). */
  tasks: number;
  /** Median GFLOP/s of each kernel that ran (absent: that peer could not start). */
  gflops: Partial<Record<Contender, number>>;
  times: Partial<Record<Contender, Sampled>>;
  /** Largest |result − cpu's| / max |cpu's|, per kernel (float32 kernels against cpu f32, float64 against cpu f64). */
  relError: Partial<Record<Contender, number>>;
  /**
   * tfjs-wasm's better GFLOP/s of the two layouts: this shape's (transposed operands as stored) and
   * the plain one (operands stored pre-transposed), which is its XNNPACK fast path. The ratios
   * compare against it.
   */
  tfjsWasmBest: number;
  ratios: { wasm1VsTfjsWasm: number; wasm2VsTfjsWasm: number; wasm1F64VsCpuF64: number; wasm2F64VsCpuF64: number };
  /** 1-minute load average when the shape finished. */
  load: number;
}

export interface WasmMatmulResult {
  rounds: number;
  roundSeconds: number;
  tfjsVersion: string;
  unavailable: { contender: string; reason: string }[];
  rows: WasmMatmulRow[];
}

/** One kernel on one shape: `run` computes the product once; `result` reads one back for the check. */
interface Prepared {
  run: () => void;
  result: () => ArrayLike<number>;
  dispose: () => void;
  /** Makes this kernel's library current before its turn (tfjs: its backend). */
  select?: () => Promise<void>;
}

function shapeOf(c: MatmulCase): MatmulShape {
  return { batch: 1, m: c.m, k: c.k, n: c.n, transA: c.transA, transB: c.transB, aBatchStride: 0, bBatchStride: 0 };
}

function prepareBlockgrad(backend: Backend, dtype: 'float32' | 'float64', c: MatmulCase, a: Float32Array, b: Float32Array): Prepared {
  const shape = shapeOf(c);
  const ab = backend.upload(dtype, a);
  const bb = backend.upload(dtype, b);
  const product = (): BackendBuffer => backend.matmul(ab, bb, shape, dtype);
  return {
    run: () => backend.release(product()),
    result: () => {
      const out = product();
      const values = backend.read({ buffer: out, shape: [out.length], strides: [1], offset: 0 });
      backend.release(out);
      return values;
    },
    dispose: () => {
      backend.release(ab);
      backend.release(bb);
    },
  };
}

/** A rows x cols row-major matrix transposed (cols x rows). */
function transposed(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j];
  return out;
}

/**
 * tf.matMul on this shape; with `plain`, the operands are transposed on the host first and the
 * product runs untransposed (the same m, k, n and the same result).
 */
async function prepareTfjs(backend: 'wasm' | 'cpu', c: MatmulCase, a: Float32Array, b: Float32Array, plain = false): Promise<Prepared> {
  const select = () => startTfBackend(backend);
  await select();
  const transA = c.transA && !plain;
  const transB = c.transB && !plain;
  const ta = tf.tensor2d(c.transA && plain ? transposed(a, c.k, c.m) : a, transA ? [c.k, c.m] : [c.m, c.k]);
  const tb = tf.tensor2d(c.transB && plain ? transposed(b, c.n, c.k) : b, transB ? [c.n, c.k] : [c.k, c.n]);
  return {
    select,
    run: () => tf.matMul(ta, tb, transA, transB).dispose(),
    result: () => {
      const out = tf.matMul(ta, tb, transA, transB);
      const values = out.dataSync();
      out.dispose();
      return values;
    },
    dispose: () => {
      ta.dispose();
      tb.dispose();
    },
  };
}

function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return got.length === want.length ? diff / (scale || 1) : Infinity;
}

/** Tolerated relative error: float32 results summed in another order differ by ~sqrt(k)·eps. */
const TOLERANCE = { float32: 1e-4, float64: 1e-12 };

export interface WasmMatmulOptions {
  /** Rounds per shape (default 5; 3 for products over 1 GFLOP, whose single calls are long). */
  rounds?: number;
  /** Seconds each kernel runs per round (default 0.05). */
  roundSeconds?: number;
  cases?: MatmulCase[];
  /** Leave TensorFlow.js out (default: included). */
  tfjs?: boolean;
}

export async function runWasmMatmulBench(options: WasmMatmulOptions = {}): Promise<WasmMatmulResult> {
  const roundSeconds = options.roundSeconds ?? 0.05;
  const baseRounds = options.rounds ?? 5;
  const cases = options.cases ?? WASM_MATMUL_CASES;
  const unavailable: WasmMatmulResult['unavailable'] = [];
  tf.enableProdMode();
  const tfOk: Record<'wasm' | 'cpu', boolean> = { wasm: false, cpu: false };
  for (const b of ['wasm', 'cpu'] as const) {
    if (options.tfjs === false) continue;
    try {
      await startTfBackend(b);
      tfOk[b] = true;
    } catch (err) {
      unavailable.push({ contender: `tfjs-${b} f32`, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  const cpu = new CpuBackend();
  const wasm1 = new WasmBackend({ threads: 1 });
  const wasm2 = new WasmBackend({ threads: 2 });
  const threads2 = wasm2.info().threads;
  console.log(
    `matmul GFLOP/s, median of ${baseRounds} interleaved rounds of >= ${roundSeconds * 1e3} ms per kernel; wasm-2t runs on ${threads2} thread(s); ` +
      `TensorFlow.js ${tf.version_core}; load average ${load1()}`,
  );
  console.log(`${'shape'.padEnd(16)} tasks ${CONTENDERS.map((c) => c.replace(' f32', '').replace(' f64', ' 64').padStart(11)).join(' ')}   1t/tfjs 2t/tfjs  f64 1t/cpu 2t/cpu`);
  const rows: WasmMatmulRow[] = [];
  try {
    for (const c of cases) {
      const flops = 2 * c.m * c.k * c.n;
      const rounds = options.rounds ?? (flops > 1e9 ? 3 : baseRounds);
      const a = randomFloat32(c.m * c.k, 1);
      const b = randomFloat32(c.k * c.n, 2);
      const kernels: Partial<Record<Contender, Prepared>> = {
        'cpu f32': prepareBlockgrad(cpu, 'float32', c, a, b),
        'wasm-1t f32': prepareBlockgrad(wasm1, 'float32', c, a, b),
        'wasm-2t f32': prepareBlockgrad(wasm2, 'float32', c, a, b),
        'cpu f64': prepareBlockgrad(cpu, 'float64', c, a, b),
        'wasm-1t f64': prepareBlockgrad(wasm1, 'float64', c, a, b),
        'wasm-2t f64': prepareBlockgrad(wasm2, 'float64', c, a, b),
      };
      if (tfOk.wasm) kernels['tfjs-wasm f32'] = await prepareTfjs('wasm', c, a, b);
      if (tfOk.wasm && (c.transA || c.transB)) kernels['tfjs-wasm plain f32'] = await prepareTfjs('wasm', c, a, b, true);
      if (tfOk.cpu) kernels['tfjs-cpu f32'] = await prepareTfjs('cpu', c, a, b);
      const names = CONTENDERS.filter((n) => kernels[n] !== undefined);
      const relErr: WasmMatmulRow['relError'] = {};
      try {
        // check, and warm up (V8 tiers wasm and hot JavaScript up over the first calls)
        const want32 = (kernels['cpu f32'] as Prepared).result();
        const want64 = (kernels['cpu f64'] as Prepared).result();
        for (const name of names) {
          const k = kernels[name] as Prepared;
          await k.select?.();
          const f64 = name.endsWith('f64');
          const err = relError(k.result(), f64 ? want64 : want32);
          relErr[name] = err;
          if (!(err <= (f64 ? TOLERANCE.float64 : TOLERANCE.float32))) {
            throw new Error(`wasm matmul bench: ${name} on ${c.name} (m ${c.m}, k ${c.k}, n ${c.n}) differs from the cpu backend by ${err.toExponential(2)} of its largest value`);
          }
          timeRound(k.run, Math.min(roundSeconds, 0.02));
        }
        const perRound: Partial<Record<Contender, number[]>> = {};
        for (let r = 0; r < rounds; r++) {
          for (let j = 0; j < names.length; j++) {
            const name = names[(r + j) % names.length];
            const k = kernels[name] as Prepared;
            await k.select?.();
            (perRound[name] ??= []).push(timeRound(k.run, roundSeconds));
          }
          await yieldToLoop();
        }
        const times: WasmMatmulRow['times'] = {};
        const gflops: WasmMatmulRow['gflops'] = {};
        for (const name of names) {
          times[name] = sampled(perRound[name] as number[]);
          gflops[name] = flops / (times[name] as Sampled).medianSeconds / 1e9;
        }
        const g = (name: Contender) => gflops[name] ?? NaN;
        const best = Math.max(g('tfjs-wasm f32'), gflops['tfjs-wasm plain f32'] ?? -Infinity);
        const row: WasmMatmulRow = {
          ...c,
          flops,
          tasks: matmulTasks(shapeOf(c), 'float32', 2).tasks,
          gflops,
          times,
          relError: relErr,
          tfjsWasmBest: best,
          ratios: {
            wasm1VsTfjsWasm: g('wasm-1t f32') / best,
            wasm2VsTfjsWasm: g('wasm-2t f32') / best,
            wasm1F64VsCpuF64: g('wasm-1t f64') / g('cpu f64'),
            wasm2F64VsCpuF64: g('wasm-2t f64') / g('cpu f64'),
          },
          load: load1(),
        };
        rows.push(row);
        const cell = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(1)).padStart(11);
        const ratio = (x: number, w: number) => (Number.isNaN(x) ? '-' : x.toFixed(2)).padStart(w);
        console.log(
          `${c.name.padEnd(16)} ${String(row.tasks).padStart(5)} ${CONTENDERS.map((n) => cell(g(n))).join(' ')}   ${ratio(row.ratios.wasm1VsTfjsWasm, 7)} ${ratio(row.ratios.wasm2VsTfjsWasm, 7)}  ` +
            `${ratio(row.ratios.wasm1F64VsCpuF64, 10)} ${ratio(row.ratios.wasm2F64VsCpuF64, 6)}   (load ${row.load})`,
        );
      } finally {
        for (const name of names) (kernels[name] as Prepared).dispose();
      }
    }
  } finally {
    wasm1.dispose();
    wasm2.dispose();
  }
  return { rounds: baseRounds, roundSeconds, tfjsVersion: tf.version_core, unavailable, rows };
}

// ------------------------------------------------------------------ markdown

const SQUARE_TARGET_MIN = 256; // the issue's float32 targets start at 256

/** The issue's float32 and float64 targets, as the shapes that meet or miss each. */
export function matmulTargets(rows: WasmMatmulRow[]): string[] {
  const f32Rows = rows.filter((r) => !(r.m === r.k && r.k === r.n && !r.transA && !r.transB && r.m < SQUARE_TARGET_MIN));
  const verdict = (label: string, subset: WasmMatmulRow[], value: (r: WasmMatmulRow) => number, target: number) => {
    const miss = subset.filter((r) => !(value(r) >= target));
    return `- ${label}: ${subset.length - miss.length} of ${subset.length} shapes` + (miss.length ? ` (misses: ${miss.map((r) => `${r.name} ${value(r).toFixed(3)}x`).join(', ')})` : '');
  };
  return [
    verdict('float32, 1 thread >= tfjs-wasm (256, 512, 1024 and the transformer shapes)', f32Rows, (r) => r.ratios.wasm1VsTfjsWasm, 1),
    verdict('float32, 2 threads >= 1.5x tfjs-wasm (same shapes)', f32Rows, (r) => r.ratios.wasm2VsTfjsWasm, 1.5),
    verdict('float64, 1 thread >= 3x the cpu backend\'s float64 (every shape)', rows, (r) => r.ratios.wasm1F64VsCpuF64, 3),
  ];
}

export function wasmMatmulMarkdown(r: WasmMatmulResult): string {
  const f = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(1));
  const x = (v: number) => (Number.isNaN(v) ? '–' : `${v.toFixed(2)}x`);
  const dims = (row: WasmMatmulRow) => `${row.m}×${row.k}×${row.n}${row.transA ? ' (Aᵀ)' : ''}${row.transB ? ' (Bᵀ)' : ''}`;
  return [
    `GFLOP/s, median of ${r.rounds} interleaved rounds (3 above 1 GFLOP per product) of >= ${r.roundSeconds * 1e3} ms per kernel; ` +
      `m×k×n, (Aᵀ)/(Bᵀ): that operand is stored transposed. Transformer shapes: 256 tokens, hidden 256, intermediate 688. ` +
      `tfjs: TensorFlow.js ${r.tfjsVersion}, one thread (tfjs-wasm has no threads in Node). tfjs-wasm runs a product with a ` +
      'transposed operand on a much slower path, so for those shapes it is also timed on the plain layout with the operands ' +
      'transposed beforehand; the ratios divide by the better of its two layouts.' +
      (r.unavailable.length ? ` Unavailable: ${r.unavailable.map((u) => `${u.contender} (${u.reason})`).join('; ')}.` : ''),
    '',
    '| float32 | m×k×n | cpu | wasm 1t | wasm 2t | tfjs-wasm | tfjs-wasm, plain layout | tfjs-cpu | 1t / tfjs-wasm | 2t / tfjs-wasm |',
    '| :--- | :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.rows.map(
      (row) =>
        `| ${row.name} | ${dims(row)} | ${f(row.gflops['cpu f32'])} | ${f(row.gflops['wasm-1t f32'])} | ${f(row.gflops['wasm-2t f32'])} | ` +
        `${f(row.gflops['tfjs-wasm f32'])} | ${f(row.gflops['tfjs-wasm plain f32'])} | ${f(row.gflops['tfjs-cpu f32'])} | ${x(row.ratios.wasm1VsTfjsWasm)} | ${x(row.ratios.wasm2VsTfjsWasm)} |`,
    ),
    '',
    '| float64 | m×k×n | cpu | wasm 1t | wasm 2t | 1t / cpu | 2t / cpu |',
    '| :--- | :--- | ---: | ---: | ---: | ---: | ---: |',
    ...r.rows.map(
      (row) =>
        `| ${row.name} | ${dims(row)} | ${f(row.gflops['cpu f64'])} | ${f(row.gflops['wasm-1t f64'])} | ${f(row.gflops['wasm-2t f64'])} | ` +
        `${x(row.ratios.wasm1F64VsCpuF64)} | ${x(row.ratios.wasm2F64VsCpuF64)} |`,
    ),
    '',
    "The issue's targets, shapes meeting each:",
    ...matmulTargets(r.rows),
  ].join('\n');
}

if (isEntry('wasm-matmul.bench')) {
  const quick = process.argv.includes('--quick');
  runWasmMatmulBench({ ...(quick ? { rounds: 3, roundSeconds: 0.02 } : {}), tfjs: !process.argv.includes('--no-tfjs') })
    .then((r) => console.log('\n' + wasmMatmulMarkdown(r)))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
