/**
 * Backward cost of a Llama-style model: the full backward (every parameter trainable), the BAdam
 * backward with each decoder block active in turn, a LoRA backward, and the forward alone, all
 * measured in one run: time (benchmark.js), matmul FLOPs counted by the kernels, nodes run and
 * skipped by each pruning mechanism, bytes saved for backward. The mean over blocks is compared
 * with the full backward and with the analytic prediction of bench/flops.ts.
 *
 *   node scripts/run-ts.mjs bench/backward.bench.ts        (about a minute on 2 cores)
 *
 * How the backward alone is timed. benchmark.js's `setup` runs once per cycle, not once per
 * call, so it cannot build a fresh graph before each timed call; timing forward+backward and
 * subtracting the forward measured separately works but subtracts two noisy means (and a BAdam
 * forward is itself cheaper than the full one). So the forward is built once, outside the timed
 * function, and the timed function runs `loss.backward(null, { retainGraph: true })` on it and
 * then frees the gradients it produced (so every call assigns fresh .grad tensors instead of
 * accumulating into old ones). retainGraph only keeps the saved tensors alive between calls;
 * the nodes run and kernels launched are those of a normal backward. As a check, the full case
 * is also timed as forward+backward (a fresh graph every call, no retainGraph) and the
 * difference with the forward alone is reported beside the direct measurement.
 */
import Benchmark from 'benchmark';
import {
  Adam,
  BlockOptimizer,
  LlamaForCausalLM,
  applyLora,
  profile,
  reshape,
  tensor,
  type LlamaConfig,
  type ProfileReport,
  type Tensor,
} from '../src';
import {
  blockBackwardFlops,
  designRatio,
  fullBackwardFlops,
  llamaFlopDims,
  llamaForwardFlops,
  loraBackwardFlops,
  meanBlockBackwardFlops,
  type LoraFlopOptions,
} from './flops';

// ------------------------------------------------------------------ timing helper (shared by the suites)

export interface Timing {
  /** benchmark.js mean seconds per call. */
  meanSeconds: number;
  /** benchmark.js relative margin of error of the mean, in percent. */
  rme: number;
  samples: number;
}

export interface MeasureOptions {
  /** Seconds benchmark.js may spend sampling (it always takes at least minSamples samples). */
  maxTime?: number;
  minSamples?: number;
}

/** Times fn with benchmark.js (async, so garbage-collection finalizers run between cycles). */
export function measure(name: string, fn: () => void, options: MeasureOptions = {}): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const bench = new Benchmark(name, fn, {
      maxTime: options.maxTime ?? 2,
      minSamples: options.minSamples ?? 5,
      initCount: 1,
      async: true,
      onError: (event: Benchmark.Event) => reject((event.target as { error?: unknown }).error),
      onComplete: () => {
        if (bench.error) return reject(bench.error);
        if (bench.stats.sample.length === 0) return reject(new Error(`${name}: benchmark.js took no samples`));
        resolve({ meanSeconds: bench.stats.mean, rme: bench.stats.rme, samples: bench.stats.sample.length });
      },
    });
    bench.run();
  });
}

/** True when this file is the program being run (`node scripts/run-ts.mjs bench/<name>.ts`), not bundled into index. */
export function isEntry(name: string): boolean {
  // the whole file name, not a suffix: wasm-matmul.bench.cjs must not count as matmul.bench
  const file = (process.argv[1] ?? '').split(/[\\/]/).pop() ?? '';
  return [`${name}.cjs`, `${name}.ts`, `${name}.js`].includes(file);
}

// ------------------------------------------------------------------ the model

/**
 * 8 layers, hidden 256, seq 64: the seven linears are ~96% of a layer's forward FLOPs, lm_head
 * ~1% of the whole forward (vocab 259: bytes plus specials), and the whole suite fits in about
 * a minute on the 2-core machine.
 */
export const BACKWARD_MODEL: LlamaConfig = {
  vocabSize: 259,
  hiddenSize: 256,
  intermediateSize: 688,
  numHiddenLayers: 8,
  numAttentionHeads: 4,
  seed: 1,
};
export const BACKWARD_INPUT = { batch: 1, seqLen: 64 };
export const LORA: LoraFlopOptions = { r: 8, targets: ['q_proj', 'v_proj'] };


// ------------------------------------------------------------------ results

export interface BackwardCase {
  /** 'full', 'block 0'..'block D-1', 'lora'. */
  name: string;
  /** Elements of the parameters that require grad. */
  trainableParams: number;
  time: Timing;
  /** time / the full backward's time. */
  timeRatio: number;
  /** Matmul FLOPs of one backward, counted by the kernels. */
  flops: number;
  /** From bench/flops.ts. */
  predictedFlops: number;
  /** flops / the full backward's flops. */
  flopRatio: number;
  /** Backward nodes whose backward function ran. */
  nodesRun: number;
  /** Mechanism 1: ops of the forward that recorded no node (no input required grad). */
  forwardNotRecorded: number;
  /** Nodes the forward recorded. */
  forwardRecorded: number;
  /** Mechanism 2: input gradients not computed because the input needs none. */
  gradsSkippedByMask: number;
  /** Mechanism 3: nodes pruned by reachability (0 here: backward() targets every trainable leaf). */
  nodesPruned: number;
  kernelLaunches: number;
  /** Bytes the forward saved for this backward (activations; weights not counted). */
  savedBytes: number;
  /** Share of backward node time spent in matmul and linear nodes (from the profile). */
  matmulTimeShare: number;
}

export interface BackwardBenchResult {
  model: LlamaConfig;
  input: { batch: number; seqLen: number };
  loraConfig: LoraFlopOptions;
  forwardFlops: { measured: number; predicted: ReturnType<typeof llamaForwardFlops> };
  /** Share of the forward FLOPs in the seven linears, attention products and lm_head. */
  flopShares: { linears: number; attention: number; head: number };
  forward: { time: Timing; savedBytes: number; nodesRecorded: number };
  /** Full case timed as forward+backward on a fresh graph each call, and that minus the forward. */
  fullForwardBackward: { time: Timing; backwardByDifferenceSeconds: number };
  full: BackwardCase;
  blocks: BackwardCase[];
  lora: BackwardCase;
  summary: {
    meanBlockFlops: number;
    predictedMeanBlockFlops: number;
    /** (measured − predicted) / predicted, for the mean over blocks. */
    meanFlopError: number;
    /** The 5% criterion of issue 5. */
    withinFivePercent: boolean;
    meanBlockFlopRatio: number;
    predictedFlopRatio: number;
    /** The coarse (D+1)/(4D) of docs/design.md. */
    designRatio: number;
    meanBlockSeconds: number;
    meanBlockTimeRatio: number;
  };
}

// ------------------------------------------------------------------ measurement

export function tokenIds(batch: number, seqLen: number, vocab: number): Tensor {
  // a fixed pseudo-random sequence (the cost does not depend on the values)
  const ids = Int32Array.from({ length: batch * seqLen }, (_, i) => (i * 7919 + 13) % vocab);
  return reshape(tensor(ids, { dtype: 'int32' }), [batch, seqLen]);
}

/** Frees every parameter's gradient (so the next backward assigns fresh ones, as a training step would). */
export function clearGrads(model: LlamaForCausalLM): void {
  for (const p of model.parameters()) {
    const g = p.grad;
    if (g !== null) {
      p.grad = null;
      g.dispose();
    }
  }
}

function matmulShare(report: ProfileReport): number {
  const total = Object.values(report.backwardMsByOp).reduce((s, ms) => s + ms, 0);
  const mm = (report.backwardMsByOp.linear ?? 0) + (report.backwardMsByOp.matmul ?? 0);
  return total > 0 ? mm / total : 0;
}

interface CaseOptions {
  name: string;
  model: LlamaForCausalLM;
  ids: Tensor;
  predictedFlops: number;
  maxTime: number;
}

/** Profiles one forward and one backward of the model as its flags stand, then times the backward. */
async function measureCase(o: CaseOptions): Promise<Omit<BackwardCase, 'timeRatio' | 'flopRatio'>> {
  const { model, ids } = o;
  const { result: out, report: fwd } = profile(() => model.forward(ids, { labels: ids }));
  const loss = out.loss as Tensor;
  const { report: bwd } = profile(() => loss.backward(null, { retainGraph: true }));
  clearGrads(model);
  const time = await measure(o.name, () => {
    loss.backward(null, { retainGraph: true });
    clearGrads(model);
  }, { maxTime: o.maxTime });
  return {
    name: o.name,
    trainableParams: model.numParameters({ trainableOnly: true }),
    time,
    flops: bwd.matmulFlops,
    predictedFlops: o.predictedFlops,
    nodesRun: bwd.nodesRun,
    forwardNotRecorded: fwd.notRecordedTotal,
    forwardRecorded: fwd.nodesRecorded,
    gradsSkippedByMask: bwd.gradsSkippedByMask,
    nodesPruned: bwd.nodesPrunedByReachability,
    kernelLaunches: bwd.kernelLaunches,
    savedBytes: fwd.savedBytes,
    matmulTimeShare: matmulShare(bwd),
  };
}

const fmtMs = (t: Timing) => `${(t.meanSeconds * 1e3).toFixed(1)} ms ±${t.rme.toFixed(1)}%`;
const fmtM = (flops: number) => `${(flops / 1e6).toFixed(1)}M`;

function logCase(c: BackwardCase): void {
  console.log(
    `${c.name.padEnd(9)} ${fmtMs(c.time).padStart(18)}  x${c.timeRatio.toFixed(3)}  ` +
      `FLOPs ${fmtM(c.flops).padStart(8)} (pred ${fmtM(c.predictedFlops)}) x${c.flopRatio.toFixed(3)}  ` +
      `nodes ${c.nodesRun}  maskSkips ${c.gradsSkippedByMask}  notRecorded ${c.forwardNotRecorded}  ` +
      `saved ${(c.savedBytes / 2 ** 20).toFixed(1)} MiB  matmul ${(100 * c.matmulTimeShare).toFixed(0)}%`,
  );
}

export interface BackwardBenchOptions {
  config?: LlamaConfig;
  input?: { batch: number; seqLen: number };
  /** benchmark.js maxTime per case, seconds. */
  maxTime?: number;
}

export async function runBackwardBench(options: BackwardBenchOptions = {}): Promise<BackwardBenchResult> {
  const config = options.config ?? BACKWARD_MODEL;
  const input = options.input ?? BACKWARD_INPUT;
  const maxTime = options.maxTime ?? 2.5;
  const dims = llamaFlopDims(config, input);
  const D = config.numHiddenLayers;
  const predicted = llamaForwardFlops(dims);
  const model = new LlamaForCausalLM(config);
  const ids = tokenIds(input.batch, input.seqLen, config.vocabSize);

  console.log(
    `Llama ${D} layers, hidden ${config.hiddenSize}, intermediate ${config.intermediateSize}, ${config.numAttentionHeads} heads, ` +
      `vocab ${config.vocabSize}; batch ${input.batch} x seq ${input.seqLen}; forward ${fmtM(predicted.total)} FLOPs ` +
      `(linears ${((100 * D * predicted.linears) / predicted.total).toFixed(1)}%, attention ${((100 * D * predicted.attention) / predicted.total).toFixed(1)}%, ` +
      `lm_head ${((100 * predicted.head) / predicted.total).toFixed(1)}%)`,
  );

  // forward alone, everything trainable (it records the full graph)
  model.requiresGrad_(true);
  const { report: fwdReport } = profile(() => model.forward(ids, { labels: ids }));
  const forwardTime = await measure('forward', () => {
    model.forward(ids, { labels: ids });
  }, { maxTime });
  console.log(`forward   ${fmtMs(forwardTime).padStart(18)}  FLOPs ${fmtM(fwdReport.matmulFlops)} (pred ${fmtM(predicted.total)})`);

  // full backward, timed directly and as forward+backward minus forward
  const fullRaw = await measureCase({ name: 'full', model, ids, predictedFlops: fullBackwardFlops(dims), maxTime });
  const full: BackwardCase = { ...fullRaw, timeRatio: 1, flopRatio: 1 };
  logCase(full);
  const fwdBwd = await measure('forward+backward', () => {
    const out = model.forward(ids, { labels: ids });
    (out.loss as Tensor).backward();
    clearGrads(model);
  }, { maxTime });
  const byDifference = fwdBwd.meanSeconds - forwardTime.meanSeconds;
  console.log(`fwd+bwd   ${fmtMs(fwdBwd).padStart(18)}  minus forward: ${(byDifference * 1e3).toFixed(1)} ms (direct: ${(full.time.meanSeconds * 1e3).toFixed(1)} ms)`);

  const ratios = (c: Omit<BackwardCase, 'timeRatio' | 'flopRatio'>): BackwardCase => ({
    ...c,
    timeRatio: c.time.meanSeconds / full.time.meanSeconds,
    flopRatio: c.flops / full.flops,
  });

  // BAdam: block i active, flags set by BlockOptimizer itself (only model.layers.{i}. trainable)
  const blocks: BackwardCase[] = [];
  for (let i = 0; i < D; i++) {
    const opt = new BlockOptimizer(model, new Adam(model.parameters()), { verbose: 0, switchMode: 'fixed', startBlock: i });
    const names = opt.trainableParameters().map(([n]) => n);
    if (names.length === 0 || !names.every((n) => n.startsWith(`model.layers.${i}.`))) {
      throw new Error(`backward bench: block ${i} activated ${names.join(', ')}; expected only model.layers.${i}.*`);
    }
    const c = ratios(await measureCase({ name: `block ${i}`, model, ids, predictedFlops: blockBackwardFlops(dims, i), maxTime }));
    blocks.push(c);
    logCase(c);
  }

  // LoRA on a separate copy of the model (applyLora freezes the base and adds adapters)
  const loraModel = new LlamaForCausalLM(config);
  applyLora(loraModel, { targetModules: [...LORA.targets], r: LORA.r, seed: 1 });
  const lora = ratios(await measureCase({ name: 'lora', model: loraModel, ids, predictedFlops: loraBackwardFlops(dims, LORA), maxTime }));
  logCase(lora);

  const meanBlockFlops = blocks.reduce((s, c) => s + c.flops, 0) / D;
  const predictedMean = meanBlockBackwardFlops(dims);
  const meanBlockSeconds = blocks.reduce((s, c) => s + c.time.meanSeconds, 0) / D;
  const meanFlopError = (meanBlockFlops - predictedMean) / predictedMean;
  const summary = {
    meanBlockFlops,
    predictedMeanBlockFlops: predictedMean,
    meanFlopError,
    withinFivePercent: Math.abs(meanFlopError) <= 0.05,
    meanBlockFlopRatio: meanBlockFlops / full.flops,
    predictedFlopRatio: predictedMean / fullBackwardFlops(dims),
    designRatio: designRatio(D),
    meanBlockSeconds,
    meanBlockTimeRatio: meanBlockSeconds / full.time.meanSeconds,
  };
  console.log(
    `mean over blocks: FLOPs x${summary.meanBlockFlopRatio.toFixed(3)} of full (predicted x${summary.predictedFlopRatio.toFixed(3)}, ` +
      `error ${(100 * meanFlopError).toFixed(2)}%, coarse (D+1)/4D x${summary.designRatio.toFixed(3)}); time x${summary.meanBlockTimeRatio.toFixed(3)}`,
  );
  if (!summary.withinFivePercent) console.error('backward bench: the mean BAdam backward FLOPs are NOT within 5% of the prediction');

  return {
    model: config,
    input,
    loraConfig: LORA,
    forwardFlops: { measured: fwdReport.matmulFlops, predicted },
    flopShares: {
      linears: (D * predicted.linears) / predicted.total,
      attention: (D * predicted.attention) / predicted.total,
      head: predicted.head / predicted.total,
    },
    forward: { time: forwardTime, savedBytes: fwdReport.savedBytes, nodesRecorded: fwdReport.nodesRecorded },
    fullForwardBackward: { time: fwdBwd, backwardByDifferenceSeconds: byDifference },
    full,
    blocks,
    lora,
    summary,
  };
}

// ------------------------------------------------------------------ markdown

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)}`;

export function backwardMarkdown(r: BackwardBenchResult): string {
  const D = r.model.numHiddenLayers;
  const row = (c: BackwardCase) =>
    `| ${c.name} | ${(c.trainableParams / 1e6).toFixed(2)}M | ${(c.time.meanSeconds * 1e3).toFixed(1)} (±${c.time.rme.toFixed(1)}) | ${c.timeRatio.toFixed(3)} | ` +
    `${fmtM(c.flops)} | ${fmtM(c.predictedFlops)} | ${c.flopRatio.toFixed(3)} | ${c.nodesRun} | ${c.gradsSkippedByMask} | ` +
    `${c.forwardNotRecorded} | ${c.nodesPruned} | ${mib(c.savedBytes)} | ${pct(c.matmulTimeShare)} |`;
  const s = r.summary;
  return [
    `Llama-style model: ${D} layers, hidden ${r.model.hiddenSize}, intermediate ${r.model.intermediateSize}, ` +
      `${r.model.numAttentionHeads} heads, vocab ${r.model.vocabSize}; batch ${r.input.batch} × seq ${r.input.seqLen}, float32. ` +
      `Forward ${fmtM(r.forwardFlops.measured)} matmul FLOPs (predicted ${fmtM(r.forwardFlops.predicted.total)}): ` +
      `linears ${pct(r.flopShares.linears)}, attention products ${pct(r.flopShares.attention)}, lm_head ${pct(r.flopShares.head)}. ` +
      `LoRA: r = ${r.loraConfig.r} on ${r.loraConfig.targets.join(', ')}, base frozen.`,
    '',
    `Backward timed on a retained graph (the forward is built outside the timed function); ` +
      `forward alone: ${(r.forward.time.meanSeconds * 1e3).toFixed(1)} ms (±${r.forward.time.rme.toFixed(1)}%), ` +
      `${r.forward.nodesRecorded} nodes, ${mib(r.forward.savedBytes)} MiB saved. Check: forward+backward ` +
      `${(r.fullForwardBackward.time.meanSeconds * 1e3).toFixed(1)} ms (±${r.fullForwardBackward.time.rme.toFixed(1)}%) minus forward = ` +
      `${(r.fullForwardBackward.backwardByDifferenceSeconds * 1e3).toFixed(1)} ms, against ${(r.full.time.meanSeconds * 1e3).toFixed(1)} ms measured directly.`,
    '',
    '| backward | trainable | ms (±%) | time / full | matmul FLOPs | predicted | FLOPs / full | nodes run | grads skipped by mask | fwd ops not recorded | pruned by reachability | saved MiB | matmul share of time |',
    '| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    row(r.full),
    ...r.blocks.map(row),
    row(r.lora),
    '',
    '| mean over the D blocks | measured | predicted (bench/flops.ts) | coarse (D+1)/(4D) |',
    '| :--- | ---: | ---: | ---: |',
    `| matmul FLOPs / full backward | ${s.meanBlockFlopRatio.toFixed(3)} | ${s.predictedFlopRatio.toFixed(3)} (error ${(100 * s.meanFlopError).toFixed(2)}%, ${s.withinFivePercent ? 'within 5%' : '**NOT within 5%**'}) | ${s.designRatio.toFixed(3)} |`,
    `| time / full backward | ${s.meanBlockTimeRatio.toFixed(3)} | | |`,
    '',
    'Prediction, with F_layer = F_lin + F_attn the forward FLOPs of a layer (its seven linears and two attention products) ' +
      'and F_head those of lm_head: full = 2·(D·F_layer + F_head); block i = 2·F_layer + (D−1−i)·(F_lin + 2·F_attn) + F_head ' +
      '(block i computes dW and dX everywhere, since its input_layernorm weight makes the input of q/k/v require grad; ' +
      'the layers above compute dX of their linears and both operand gradients of the attention products; lm_head dX only). ' +
      'The coarse estimate (docs/design.md) counts block i as one forward instead of two and ignores the head, hence its lower ratio.',
  ].join('\n');
}

if (isEntry('backward.bench')) {
  runBackwardBench()
    .then((r) => console.log('\n' + backwardMarkdown(r)))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
