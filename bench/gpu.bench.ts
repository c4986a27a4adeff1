/**
 * The gpu backend in every gpu.js mode this machine has, beside the cpu backend measured in the
 * same run: matmul GFLOP/s by size (with a readback after every product, and chained: eight
 * products, one readback) and the backward cost of a small Llama (full vs BAdam, block by block).
 *
 *   node scripts/run-ts.mjs bench/gpu.bench.ts          (run under `xvfb-run -a` for headlessgl)
 *
 * On this 2-core machine there is no GPU: headlessgl renders through Mesa's software rasteriser,
 * webasm is WebAssembly SIMD on one thread, and gpu.js's cpu mode is transpiled JavaScript. The
 * table is here so that a user with a real GPU (or a browser with WebGL2) sees what the gpu
 * backend gives them against the cpu backend on their machine.
 */
import {
  Adam,
  BlockOptimizer,
  LlamaForCausalLM,
  availableGpuModes,
  backendInfo,
  matmul,
  noGrad,
  profile,
  reshape,
  setBackend,
  tensor,
  type LlamaConfig,
  type Tensor,
} from '../src';
import { clearGrads, isEntry, measure, type Timing } from './backward.bench';
import { randomFloat32 } from './matmul.bench';

/** A backend to measure: the cpu backend, or the gpu backend in one mode. */
export interface Target {
  label: string;
  backend: 'cpu' | 'gpu';
  mode?: string;
}

export interface GpuMatmulRow {
  target: string;
  size: number;
  /** Product followed by a readback of the result (what `toArray()` after each op costs). */
  withReadback: Timing;
  withReadbackGflops: number;
  /** Eight products back to back, one readback of the last; per product. */
  chained: Timing;
  chainedGflops: number;
  /** chainedGflops / the cpu backend's chainedGflops at the same size, in this run. */
  vsCpu: number;
}

export interface GpuBackwardRow {
  target: string;
  full: Timing;
  /** Mean over blocks of the BAdam backward with that block active. */
  meanBlockSeconds: number;
  /** meanBlockSeconds / full, on the same backend. */
  blockRatio: number;
  /** Backward matmul FLOPs, full and mean over blocks (the same on every backend). */
  fullFlops: number;
  meanBlockFlops: number;
  /** full backward seconds / the cpu backend's, in this run. */
  vsCpu: number;
}

export interface GpuBenchResult {
  targets: Target[];
  /** Modes gpu.js lacks here, with the reason (headlessgl without a display, webgl2 outside a browser). */
  missing: string[];
  matmul: GpuMatmulRow[];
  backward: GpuBackwardRow[];
}

const SIZES = [64, 128, 256];
const CHAIN = 8;

/** Small enough that gpu.js's cpu mode finishes in seconds; big enough that matmuls dominate. */
export const GPU_BENCH_MODEL: LlamaConfig = {
  vocabSize: 64,
  hiddenSize: 64,
  intermediateSize: 128,
  numHiddenLayers: 4,
  numAttentionHeads: 4,
  seed: 1,
};
const INPUT = { batch: 1, seqLen: 32 };

export function gpuTargets(): { targets: Target[]; missing: string[] } {
  const modes = availableGpuModes();
  const targets: Target[] = [{ label: 'cpu backend', backend: 'cpu' }];
  for (const mode of modes) targets.push({ label: `gpu ${mode}`, backend: 'gpu', mode });
  const missing = ['headlessgl', 'webgl2'].filter((m) => !modes.includes(m as never)).map((m) =>
    m === 'headlessgl' ? 'headlessgl (needs the gl module and an X display: run under xvfb-run -a)' : 'webgl2 (browser only)',
  );
  return { targets, missing };
}

function select(t: Target): void {
  if (t.backend === 'cpu') setBackend('cpu');
  else setBackend('gpu', { mode: t.mode });
}

async function matmulRows(t: Target): Promise<Omit<GpuMatmulRow, 'vsCpu'>[]> {
  select(t);
  const rows: Omit<GpuMatmulRow, 'vsCpu'>[] = [];
  for (const size of SIZES) {
    const a = reshape(tensor(randomFloat32(size * size, 1)), [size, size]);
    const b = reshape(tensor(randomFloat32(size * size, 2)), [size, size]);
    const maxTime = t.mode === 'cpu' ? 1 : 1.5;
    const withReadback = await measure(`${t.label} ${size} readback`, () => {
      noGrad(() => {
        const c = matmul(a, b);
        c.toTypedArray();
        c.dispose();
      });
    }, { maxTime, minSamples: 3 });
    const chainedTotal = await measure(`${t.label} ${size} chained`, () => {
      noGrad(() => {
        let last: Tensor | null = null;
        for (let i = 0; i < CHAIN; i++) {
          last?.dispose();
          last = matmul(a, b);
        }
        last?.toTypedArray();
        last?.dispose();
      });
    }, { maxTime, minSamples: 3 });
    const chained: Timing = { ...chainedTotal, meanSeconds: chainedTotal.meanSeconds / CHAIN };
    const flops = 2 * size ** 3;
    rows.push({
      target: t.label,
      size,
      withReadback,
      withReadbackGflops: flops / withReadback.meanSeconds / 1e9,
      chained,
      chainedGflops: flops / chained.meanSeconds / 1e9,
    });
    a.dispose();
    b.dispose();
  }
  return rows;
}

/** Times one backward (graph kept, gradients freed after each call), as the backward suite does. */
async function timeBackward(model: LlamaForCausalLM, ids: Tensor, name: string): Promise<{ time: Timing; flops: number }> {
  const loss = model.forward(ids, { labels: ids }).loss as Tensor;
  const { report } = profile(() => loss.backward(null, { retainGraph: true }));
  clearGrads(model);
  const time = await measure(name, () => {
    loss.backward(null, { retainGraph: true });
    clearGrads(model);
  }, { maxTime: 1, minSamples: 3 });
  return { time, flops: report.matmulFlops };
}

async function backwardRow(t: Target): Promise<Omit<GpuBackwardRow, 'vsCpu'>> {
  select(t);
  const model = new LlamaForCausalLM(GPU_BENCH_MODEL);
  const ids = reshape(
    tensor(Int32Array.from({ length: INPUT.seqLen }, (_, i) => (i * 7919 + 13) % GPU_BENCH_MODEL.vocabSize), { dtype: 'int32' }),
    [INPUT.batch, INPUT.seqLen],
  );
  model.requiresGrad_(true);
  const full = await timeBackward(model, ids, `${t.label} full`);
  const D = GPU_BENCH_MODEL.numHiddenLayers;
  let seconds = 0;
  let flops = 0;
  for (let i = 0; i < D; i++) {
    new BlockOptimizer(model, new Adam(model.parameters()), { verbose: 0, switchMode: 'fixed', startBlock: i });
    const block = await timeBackward(model, ids, `${t.label} block ${i}`);
    seconds += block.time.meanSeconds;
    flops += block.flops;
  }
  return {
    target: t.label,
    full: full.time,
    meanBlockSeconds: seconds / D,
    blockRatio: seconds / D / full.time.meanSeconds,
    fullFlops: full.flops,
    meanBlockFlops: flops / D,
  };
}

export async function runGpuBench(): Promise<GpuBenchResult> {
  const { targets, missing } = gpuTargets();
  console.log(`targets: ${targets.map((t) => t.label).join(', ')}${missing.length ? `; not here: ${missing.join('; ')}` : ''}`);
  const matmulAll: Omit<GpuMatmulRow, 'vsCpu'>[] = [];
  const backwardAll: Omit<GpuBackwardRow, 'vsCpu'>[] = [];
  try {
    for (const t of targets) {
      const rows = await matmulRows(t);
      if (t.backend === 'gpu') console.log(`${t.label}: ${JSON.stringify(backendInfo())}`);
      for (const r of rows) {
        console.log(
          `${t.label.padEnd(16)} matmul ${String(r.size).padStart(4)}: readback ${r.withReadbackGflops.toFixed(3)} GFLOP/s, ` +
            `chained ${r.chainedGflops.toFixed(3)} GFLOP/s`,
        );
      }
      matmulAll.push(...rows);
      const b = await backwardRow(t);
      console.log(
        `${t.label.padEnd(16)} backward full ${(b.full.meanSeconds * 1e3).toFixed(1)} ms, BAdam mean block ` +
          `${(b.meanBlockSeconds * 1e3).toFixed(1)} ms (x${b.blockRatio.toFixed(3)}), FLOPs x${(b.meanBlockFlops / b.fullFlops).toFixed(3)}`,
      );
      backwardAll.push(b);
    }
  } finally {
    setBackend('cpu');
  }
  const cpuMatmul = (size: number) => matmulAll.find((r) => r.target === 'cpu backend' && r.size === size)?.chainedGflops ?? NaN;
  const cpuFull = backwardAll.find((r) => r.target === 'cpu backend')?.full.meanSeconds ?? NaN;
  return {
    targets,
    missing,
    matmul: matmulAll.map((r) => ({ ...r, vsCpu: r.chainedGflops / cpuMatmul(r.size) })),
    backward: backwardAll.map((r) => ({ ...r, vsCpu: r.full.meanSeconds / cpuFull })),
  };
}

export function gpuMarkdown(r: GpuBenchResult): string {
  const lines = [
    `Float32 square matmul through the public \`matmul\`, and the backward of a ${GPU_BENCH_MODEL.numHiddenLayers}-layer, ` +
      `hidden-${GPU_BENCH_MODEL.hiddenSize} Llama (batch ${INPUT.batch} x seq ${INPUT.seqLen}). "chained" runs ${CHAIN} products and reads ` +
      'the last one back (per product); "vs cpu" compares with the cpu backend in this run.' +
      (r.missing.length ? ` Not measured here: ${r.missing.join('; ')}.` : ''),
    '',
    '| backend | size | with readback GFLOP/s (±%) | chained GFLOP/s (±%) | chained vs cpu backend |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...r.matmul.map(
      (m) =>
        `| ${m.target} | ${m.size} | ${m.withReadbackGflops.toFixed(3)} (±${m.withReadback.rme.toFixed(1)}) | ` +
        `${m.chainedGflops.toFixed(3)} (±${m.chained.rme.toFixed(1)}) | ${m.vsCpu.toFixed(2)}x |`,
    ),
    '',
    '| backend | full backward ms (±%) | BAdam mean block ms | block / full time | block / full FLOPs | full time vs cpu backend |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...r.backward.map(
      (b) =>
        `| ${b.target} | ${(b.full.meanSeconds * 1e3).toFixed(1)} (±${b.full.rme.toFixed(1)}) | ${(b.meanBlockSeconds * 1e3).toFixed(1)} | ` +
        `${b.blockRatio.toFixed(3)} | ${(b.meanBlockFlops / b.fullFlops).toFixed(3)} | ${b.vsCpu.toFixed(2)}x |`,
    ),
  ];
  return lines.join('\n');
}

if (isEntry('gpu.bench')) {
  runGpuBench()
    .then((r) => console.log('\n' + gpuMarkdown(r)))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
