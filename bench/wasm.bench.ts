/**
 * The wasm backend against its peers (`npm run bench -- --only wasm`, a few minutes on 2 cores):
 *   1. matmul GFLOP/s: cpu, wasm 1 and 2 threads, tfjs-wasm, tfjs-cpu (bench/wasm-matmul.bench.ts);
 *   2. one training step of the 8-layer Llama: cpu, wasm 1 and 2 threads, tfjs-wasm, PyTorch 1 and
 *      2 threads when present (bench/train-step.bench.ts);
 *   3. the BAdam per-block backward table on wasm, 2 threads (bench/badam-ratio.bench.ts: the
 *      backward suite's model and cases, timed in interleaved rounds): the mean block's backward
 *      time over the full backward's, next to the same ratio of matmul FLOPs.
 *
 *   node scripts/run-ts.mjs bench/wasm.bench.ts
 *
 * Each part measures its contenders side by side in interleaved rounds and reports medians;
 * the 1-minute load average is recorded before each part, since another process on the machine
 * slows whichever contender runs beside it (two-thread runs most of all).
 */
import { setBackend } from '../src';
import { badamRatioMarkdown, runBadamRatioBench, type BadamRatioResult } from './badam-ratio.bench';
import { isEntry } from './backward.bench';
import { load1, otherCpuMeter } from './rounds';
import { runTrainStepBench, trainStepMarkdown, type TrainStepResult } from './train-step.bench';
import { runWasmMatmulBench, wasmMatmulMarkdown, type WasmMatmulResult } from './wasm-matmul.bench';

export interface WasmBenchResult {
  matmul: WasmMatmulResult;
  trainStep: TrainStepResult;
  /** BAdam's per-block backward on wasm with 2 threads, and with 1. */
  backward: BadamRatioResult;
  backwardOneThread: BadamRatioResult;
  /** 1-minute load average before each part (it counts this benchmark's own threads too). */
  load: { matmul: number; trainStep: number; backward: number; end: number };
  /** Cores that other processes used, on average, during each part (null where /proc is missing). */
  otherCores: { matmul: number | null; trainStep: number | null; backward: number | null };
  seconds: { matmul: number; trainStep: number; backward: number };
}

export async function runWasmBench(): Promise<WasmBenchResult> {
  const load = { matmul: load1(), trainStep: 0, backward: 0, end: 0 };
  const otherCores: WasmBenchResult['otherCores'] = { matmul: null, trainStep: null, backward: null };
  let t0 = performance.now();
  let others = otherCpuMeter();
  console.log('-- matmul --');
  const matmul = await runWasmMatmulBench();
  const seconds = { matmul: (performance.now() - t0) / 1e3, trainStep: 0, backward: 0 };
  otherCores.matmul = others();

  console.log('\n-- training step --');
  load.trainStep = load1();
  t0 = performance.now();
  others = otherCpuMeter();
  const trainStep = await runTrainStepBench();
  seconds.trainStep = (performance.now() - t0) / 1e3;
  otherCores.trainStep = others();

  console.log('\n-- BAdam backward on wasm, 2 threads and 1 --');
  load.backward = load1();
  t0 = performance.now();
  others = otherCpuMeter();
  const ratioOn = async (threads: number): Promise<BadamRatioResult> => {
    setBackend('wasm', { threads });
    try {
      return await runBadamRatioBench();
    } finally {
      setBackend('cpu');
    }
  };
  const backward = await ratioOn(2);
  const backwardOneThread = await ratioOn(1);
  seconds.backward = (performance.now() - t0) / 1e3;
  otherCores.backward = others();
  load.end = load1();
  const fmt = (x: number | null) => (x === null ? '?' : x.toFixed(2));
  console.log(`other processes used ${fmt(otherCores.matmul)}, ${fmt(otherCores.trainStep)} and ${fmt(otherCores.backward)} cores during the three parts`);
  return { matmul, trainStep, backward, backwardOneThread, load, otherCores, seconds };
}

export function wasmMarkdown(r: WasmBenchResult): string {
  const cores = (x: number | null) => (x === null ? 'an unknown number of' : x.toFixed(2));
  return [
    `Other processes on the machine used ${cores(r.otherCores.matmul)}, ${cores(r.otherCores.trainStep)} and ${cores(r.otherCores.backward)} cores ` +
      `on average during the matmul, training-step and backward parts (/proc/stat less this process and its children; ` +
      `the load average, which counts this benchmark's threads too, was ${r.load.matmul}, ${r.load.trainStep} and ${r.load.backward} at their starts). ` +
      `Parts took ${r.seconds.matmul.toFixed(0)} s, ${r.seconds.trainStep.toFixed(0)} s and ${r.seconds.backward.toFixed(0)} s.`,
    '',
    '### Matmul',
    '',
    wasmMatmulMarkdown(r.matmul),
    '',
    '### Training step',
    '',
    trainStepMarkdown(r.trainStep),
    '',
    '### BAdam per-block backward on wasm (2 threads)',
    '',
    badamRatioMarkdown(r.backward),
    '',
    '### BAdam per-block backward on wasm (1 thread)',
    '',
    badamRatioMarkdown(r.backwardOneThread),
  ].join('\n');
}

if (isEntry('wasm.bench')) {
  runWasmBench()
    .then((r) => console.log('\n' + wasmMarkdown(r)))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
