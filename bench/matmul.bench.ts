/**
 * CPU matmul benchmark: the reference triple loop against the blocked kernel on float32 square
 * matrices, timed with benchmark.js in one process so the speed-up ratio compares like with like.
 *
 *   node scripts/run-ts.mjs bench/matmul.bench.ts
 *
 * Takes well under a minute: per size, benchmark.js samples each kernel for at most `maxTime`
 * seconds (at least `minSamples` samples; one sample of the reference at 512 is ~0.3 s).
 */
import Benchmark from 'benchmark';
import { matmulBlocked, matmulReference, type MatmulShape } from '../src/kernels/cpu/matmul';
import { isEntry } from './backward.bench';

export interface MatmulBenchResult {
  /** Matrices are size x size, float32. */
  size: number;
  /** Floating-point operations per product: 2 * size^3. */
  flops: number;
  /** Mean seconds per product, and GFLOP/s = flops / mean / 1e9. */
  referenceMeanSeconds: number;
  referenceGflops: number;
  /** benchmark.js relative margin of error of the mean, in percent. */
  referenceRme: number;
  blockedMeanSeconds: number;
  blockedGflops: number;
  blockedRme: number;
  /** blockedGflops / referenceGflops, measured in the same run. */
  speedup: number;
}

const SIZES = [128, 256, 512];
/** Seconds benchmark.js may spend sampling one kernel at one size (plus one last sample). */
const MAX_TIME: Record<number, number> = { 128: 2, 256: 3, 512: 4 };

/** Deterministic float32 data in [-1, 1) (mulberry32), so runs are comparable. */
export function randomFloat32(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let t = seed >>> 0;
  for (let i = 0; i < length; i++) {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    out[i] = (((r ^ (r >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

function runSuite(suite: Benchmark.Suite): Promise<Benchmark[]> {
  return new Promise((resolve, reject) => {
    suite
      .on('error', (event: Benchmark.Event) => reject((event.target as { error?: unknown }).error))
      .on('complete', function (this: Benchmark.Suite) {
        resolve(this.map((b: Benchmark) => b) as Benchmark[]);
      })
      .run({ async: true });
  });
}

function benchSize(size: number): Promise<MatmulBenchResult> {
  const a = randomFloat32(size * size, 1);
  const b = randomFloat32(size * size, 2);
  const out = new Float32Array(size * size);
  const shape: MatmulShape = {
    batch: 1,
    m: size,
    k: size,
    n: size,
    transA: false,
    transB: false,
    aBatchStride: 0,
    bBatchStride: 0,
  };
  const options: Benchmark.Options = { minSamples: 5, maxTime: MAX_TIME[size] ?? 3, initCount: 1 };
  const suite = new Benchmark.Suite(`matmul ${size}`)
    .add('reference', () => matmulReference(a, b, out, shape), options)
    .add('blocked', () => matmulBlocked(a, b, out, shape), options);

  return runSuite(suite).then(([ref, blk]) => {
    if (ref.stats.sample.length === 0 || blk.stats.sample.length === 0) {
      throw new Error(`matmul bench ${size}: no samples (was the benchmark aborted?)`);
    }
    const flops = 2 * size ** 3;
    const referenceGflops = flops / ref.stats.mean / 1e9;
    const blockedGflops = flops / blk.stats.mean / 1e9;
    return {
      size,
      flops,
      referenceMeanSeconds: ref.stats.mean,
      referenceGflops,
      referenceRme: ref.stats.rme,
      blockedMeanSeconds: blk.stats.mean,
      blockedGflops,
      blockedRme: blk.stats.rme,
      speedup: blockedGflops / referenceGflops,
    };
  });
}

function formatRow(r: MatmulBenchResult): string {
  const cell = (gflops: number, rme: number) => `${gflops.toFixed(2).padStart(6)} GFLOP/s ±${rme.toFixed(1).padStart(4)}%`;
  return (
    `${String(r.size).padStart(4)}  ` +
    `${cell(r.referenceGflops, r.referenceRme)}   ` +
    `${cell(r.blockedGflops, r.blockedRme)}   ` +
    `${r.speedup.toFixed(2)}x`
  );
}

/** Times both kernels at each size, prints one line per size as it finishes, returns the rows. */
export async function runMatmulBench(): Promise<MatmulBenchResult[]> {
  console.log('float32 square matmul, single thread (mean over benchmark.js samples, ± relative margin of error)');
  console.log(`size  ${'reference'.padEnd(26)}   ${'blocked'.padEnd(26)}   speed-up`);
  const rows: MatmulBenchResult[] = [];
  for (const size of SIZES) {
    const row = await benchSize(size);
    rows.push(row);
    console.log(formatRow(row));
  }
  return rows;
}

if (isEntry('matmul.bench')) {
  runMatmulBench().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
