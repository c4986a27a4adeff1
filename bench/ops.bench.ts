/**
 * Per-op kernels through the public ops (so each number includes the op's own overhead: shape
 * checks, output allocation), on the cpu backend and the gpu backend in every gpu.js mode that works
 * here (headlessgl only with a display: `npm run bench` provides one through xvfb-run): matmul GFLOP/s by size, softmax, layer
 * norm, and cross-entropy forward and forward+backward, each at two sizes.
 *
 *   node scripts/run-ts.mjs bench/ops.bench.ts        (about 25 s per backend)
 *
 * Throughput: matmul in GFLOP/s (2·n³ per product); the row-wise ops in effective GB/s, counting
 * only the bytes an op must read and write at least once (float32: softmax and layer norm read x
 * and write y; cross-entropy reads the logits and writes one loss per row; its backward also
 * writes the logits' gradient). An op that makes several passes moves more than that, so its
 * effective GB/s is a lower bound on the memory traffic, and comparable across backends.
 */
import {
  crossEntropy,
  getBackendName,
  layerNorm,
  matmul,
  noGrad,
  ones,
  randint,
  randn,
  setBackend,
  softmax,
  zeros,
  Generator,
  type Tensor,
} from '../src';
import { gpuTargets } from './gpu.bench';
import { isEntry, measure, type Timing } from './backward.bench';

export const OP_MATMUL_SIZES = [64, 128, 256, 512];

export interface OpBenchRow {
  backend: string;
  /** 'matmul', 'softmax', 'layerNorm', 'crossEntropy', 'crossEntropy fwd+bwd'. */
  op: string;
  /** Input shape(s), e.g. '256x256 @ 256x256' or '[512, 1024]'. */
  shape: string;
  time: Timing;
  opsPerSecond: number;
  /** matmul only. */
  gflops?: number;
  /** Row-wise ops: minimal bytes read + written per call / mean time. */
  gbPerSecond?: number;
}

export interface OpsBenchResult {
  /** Backends found in the registry and benchmarked. */
  backends: string[];
  /** Registered backends that failed to initialise, with the reason. */
  unavailable: { backend: string; reason: string }[];
  rows: OpBenchRow[];
}


const F32 = 4;

/** Disposes whatever an op returned (so the timed loop does not lean on the garbage collector). */
const drop = (t: Tensor) => t.dispose();

async function benchOps(backend: string, maxTime: number): Promise<OpBenchRow[]> {
  const rows: OpBenchRow[] = [];
  const gen = new Generator(7);
  const push = (row: Omit<OpBenchRow, 'backend' | 'opsPerSecond'>) => {
    const r: OpBenchRow = { backend, opsPerSecond: 1 / row.time.meanSeconds, ...row };
    rows.push(r);
    const rate = r.gflops !== undefined ? `${r.gflops.toFixed(2)} GFLOP/s` : `${(r.gbPerSecond ?? 0).toFixed(2)} GB/s`;
    console.log(`${backend.padEnd(5)} ${r.op.padEnd(20)} ${r.shape.padEnd(22)} ${(r.time.meanSeconds * 1e3).toFixed(3).padStart(9)} ms ±${r.time.rme.toFixed(1).padStart(4)}%  ${rate}`);
  };

  for (const n of OP_MATMUL_SIZES) {
    const a = randn([n, n], { generator: gen });
    const b = randn([n, n], { generator: gen });
    const time = await measure(`matmul ${n}`, () => drop(noGrad(() => matmul(a, b))), { maxTime });
    push({ op: 'matmul', shape: `${n}x${n} @ ${n}x${n}`, time, gflops: (2 * n ** 3) / time.meanSeconds / 1e9 });
    a.dispose();
    b.dispose();
  }

  // softmax over the last dim: attention-score rows and wider rows
  for (const [rowsN, cols] of [[512, 64], [256, 1024]]) {
    const x = randn([rowsN, cols], { generator: gen });
    const time = await measure(`softmax ${rowsN}x${cols}`, () => drop(noGrad(() => softmax(x, -1))), { maxTime });
    push({ op: 'softmax', shape: `[${rowsN}, ${cols}]`, time, gbPerSecond: (2 * rowsN * cols * F32) / time.meanSeconds / 1e9 });
    x.dispose();
  }

  // layer norm with weight and bias over the last dim
  for (const [rowsN, cols] of [[64, 256], [512, 1024]]) {
    const x = randn([rowsN, cols], { generator: gen });
    const w = ones([cols]);
    const bias = zeros([cols]);
    const time = await measure(`layerNorm ${rowsN}x${cols}`, () => drop(noGrad(() => layerNorm(x, [cols], w, bias))), { maxTime });
    push({ op: 'layerNorm', shape: `[${rowsN}, ${cols}]`, time, gbPerSecond: (2 * rowsN * cols * F32) / time.meanSeconds / 1e9 });
    x.dispose();
  }

  // cross-entropy (mean over rows), forward and forward+backward
  for (const [rowsN, classes] of [[64, 259], [512, 2048]]) {
    const target = randint(0, classes, [rowsN], { generator: gen });
    const x = randn([rowsN, classes], { generator: gen });
    const fwd = await measure(`crossEntropy ${rowsN}x${classes}`, () => drop(noGrad(() => crossEntropy(x, target))), { maxTime });
    push({ op: 'crossEntropy', shape: `[${rowsN}, ${classes}]`, time: fwd, gbPerSecond: (rowsN * classes * F32 + rowsN * F32) / fwd.meanSeconds / 1e9 });
    const xg = randn([rowsN, classes], { generator: gen, requiresGrad: true });
    const both = await measure(`crossEntropy fwd+bwd ${rowsN}x${classes}`, () => {
      const loss = crossEntropy(xg, target);
      loss.backward();
      drop(loss);
      const g = xg.grad as Tensor;
      xg.grad = null;
      drop(g);
    }, { maxTime });
    push({
      op: 'crossEntropy fwd+bwd',
      shape: `[${rowsN}, ${classes}]`,
      time: both,
      gbPerSecond: (2 * rowsN * classes * F32 + rowsN * F32) / both.meanSeconds / 1e9,
    });
    x.dispose();
    target.dispose();
  }
  return rows;
}

export async function runOpsBench(options: { maxTime?: number } = {}): Promise<OpsBenchResult> {
  const maxTime = options.maxTime ?? 1.2;
  const active = getBackendName();
  const { targets, missing } = gpuTargets();
  // modes gpu.js lacks here are listed with the reason, so a table without them says why
  const result: OpsBenchResult = { backends: [], unavailable: missing.map((m) => ({ backend: `gpu ${m.split(' ')[0]}`, reason: m })), rows: [] };
  console.log('per-op kernels through the public ops (mean ± relative margin of error)');
  try {
    // the cpu backend, then the gpu backend in each gpu.js mode that works here
    for (const target of targets) {
      const backend = target.backend === 'cpu' ? 'cpu' : `gpu ${target.mode}`;
      try {
        if (target.backend === 'cpu') setBackend('cpu');
        else setBackend('gpu', { mode: target.mode });
      } catch (err) {
        result.unavailable.push({ backend, reason: err instanceof Error ? err.message : String(err) });
        console.log(`${backend}: unavailable (${result.unavailable[result.unavailable.length - 1].reason})`);
        continue;
      }
      result.backends.push(backend);
      result.rows.push(...(await benchOps(backend, maxTime)));
    }
  } finally {
    setBackend(active);
  }
  return result;
}

export function opsMarkdown(r: OpsBenchResult): string {
  const lines = [
    `Backends: ${r.backends.join(', ')}${r.unavailable.length ? `; unavailable: ${r.unavailable.map((u) => `${u.backend} (${u.reason})`).join('; ')}` : ''}. ` +
      'Matmul in GFLOP/s (2·n³ per product); row-wise ops in effective GB/s (float32 bytes that must be read and written once: ' +
      'softmax and layer norm read x and write y, cross-entropy reads the logits, its backward also writes their gradient).',
    '',
    '| backend | op | shape | ms (±%) | ops/s | GFLOP/s | GB/s |',
    '| :--- | :--- | :--- | ---: | ---: | ---: | ---: |',
    ...r.rows.map(
      (x) =>
        `| ${x.backend} | ${x.op} | ${x.shape} | ${(x.time.meanSeconds * 1e3).toFixed(3)} (±${x.time.rme.toFixed(1)}) | ` +
        `${x.opsPerSecond.toFixed(0)} | ${x.gflops !== undefined ? x.gflops.toFixed(2) : ''} | ${x.gbPerSecond !== undefined ? x.gbPerSecond.toFixed(2) : ''} |`,
    ),
  ];
  return lines.join('\n');
}

if (isEntry('ops.bench')) {
  runOpsBench()
    .then((r) => console.log('\n' + opsMarkdown(r)))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
