/**
 * One full training step (forward, backward, Adam update) of an 8-layer Llama-style model,
 * hidden 256, intermediate 688, 4 heads, vocab 259, batch 4 x seq 64, float32 (6.46M parameters),
 * on blockgrad's cpu backend, its wasm backend on 1 and 2 threads, TensorFlow.js's wasm backend
 * (bench/tfjs-llama.ts), and PyTorch on 1 and 2 threads when a Python with torch is present
 * (bench/torch_step.py). Random token ids, the same for every library; labels = ids.
 *
 *   node scripts/run-ts.mjs bench/train-step.bench.ts [--quick] [--no-torch]   (about a minute and a half; --quick: one round)
 *
 * blockgrad's step is what the README tells users to write: inside tidy(), forward with labels,
 * zeroGrad, backward, Adam step, loss read back. Timing: rounds; in each, every contender runs in
 * turn (the first one rotates) for at least ROUND_SECONDS and MIN_STEPS timed steps, each step
 * timed alone; the table shows the median step over all rounds. blockgrad's models are rebuilt
 * each round (the wasm backends on 1 and 2 threads cannot be active at once; setBackend with
 * another thread count replaces the instance), followed by one untimed warm-up step; tfjs's model
 * and PyTorch's processes are built and warmed up once and stay up between their rounds.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Adam, LlamaForCausalLM, backendInfo, memory, reshape, setBackend, tensor, tidy, type BackendInfo, type LlamaConfig, type Tensor } from '../src';
import { isEntry } from './backward.bench';
import { fullBackwardFlops, llamaFlopDims, llamaForwardFlops } from './flops';
import { randomFloat32 } from './matmul.bench';
import { registerTfGradients, startTfBackend } from './peers.bench';
import { load1, median, yieldToLoop } from './rounds';
import { tfjsLlamaStep, type TfLlamaStep } from './tfjs-llama';
import { TorchStepper, findTorchPython, type TorchInfo } from './torch-step';

export const STEP_MODEL: LlamaConfig = {
  vocabSize: 259,
  hiddenSize: 256,
  intermediateSize: 688,
  numHiddenLayers: 8,
  numAttentionHeads: 4,
  seed: 1,
};
export const STEP_INPUT = { batch: 4, seqLen: 64 };
const LR = 1e-3;

export const STEP_CONTENDERS = ['cpu', 'wasm 1t', 'wasm 2t', 'tfjs-wasm', 'torch 1t', 'torch 2t'] as const;
export type StepContender = (typeof STEP_CONTENDERS)[number];

export interface StepTiming {
  medianSeconds: number;
  minSeconds: number;
  maxSeconds: number;
  /** Every timed step, in the order run. */
  steps: number[];
  /**
   * Loss of the first step of a fresh model (blockgrad's backends build the same weights, so theirs
   * agree; tfjs and PyTorch initialise their own, near ln(vocab)), and of the last step run.
   */
  firstLoss: number;
  loss: number;
  parameters: number;
}

export interface TrainStepResult {
  model: LlamaConfig;
  input: { batch: number; seqLen: number };
  /** Matmul FLOPs of one step's forward and backward (bench/flops.ts; Adam and elementwise work not counted). */
  matmulFlops: number;
  rounds: number;
  roundSeconds: number;
  timings: Partial<Record<StepContender, StepTiming>>;
  /** backendInfo() of the wasm backends after their last round (threads, simd, memory). */
  wasmInfo: Partial<Record<'wasm 1t' | 'wasm 2t', BackendInfo>>;
  torch: { skipped: string } | { info: Partial<Record<'torch 1t' | 'torch 2t', TorchInfo>> };
  unavailable: { contender: string; reason: string }[];
  /** Each contender's median / PyTorch 1 thread's (absent without torch). */
  vsTorch1: Partial<Record<StepContender, number>>;
  /** The cpu backend's median / each contender's: the speed-up over the reference backend. */
  speedupVsCpu: Partial<Record<StepContender, number>>;
  /** Load average (1 min) before and after. */
  load: [number, number];
}

/** The shared token ids: deterministic, uniform over the vocabulary. */
function tokenIds(): Int32Array {
  const u = randomFloat32(STEP_INPUT.batch * STEP_INPUT.seqLen, 7);
  return Int32Array.from(u, (x) => Math.min(STEP_MODEL.vocabSize - 1, Math.floor(((x + 1) / 2) * STEP_MODEL.vocabSize)));
}

interface Running {
  /** One timed step (seconds) and its loss. */
  step: () => number;
  parameters: number;
  dispose: () => void;
}

/**
 * blockgrad's model, optimizer and batch on the active backend. The model is built inside tidy(),
 * which releases its initialisation's temporaries now (parameters keep themselves) rather than at
 * garbage collection.
 */
function blockgradStep(ids: Int32Array): Running {
  const model = tidy(() => new LlamaForCausalLM(STEP_MODEL));
  const opt = new Adam(model.parameters(), { lr: LR });
  // in tidy: the flat tensor that the reshaped view shares storage with is released with the view
  const input = tidy(() => reshape(tensor(ids, { dtype: 'int32' }), [STEP_INPUT.batch, STEP_INPUT.seqLen]));
  return {
    step: () =>
      tidy(() => {
        const { loss } = model.forward(input, { labels: input });
        opt.zeroGrad();
        (loss as Tensor).backward();
        opt.step();
        return (loss as Tensor).item();
      }),
    parameters: model.numParameters(),
    dispose: () => {
      opt.resetState();
      model.zeroGrad();
      for (const p of model.parameters()) p.dispose();
      for (const [, b] of model.namedBuffers()) b.dispose();
      input.dispose();
    },
  };
}

/** Times steps until `seconds` have passed and at least `minSteps` ran. */
function timedSteps(step: () => number, seconds: number, minSteps: number): { times: number[]; loss: number } {
  const times: number[] = [];
  let loss = NaN;
  const start = performance.now();
  while (times.length < minSteps || performance.now() - start < seconds * 1e3) {
    const t0 = performance.now();
    loss = step();
    times.push((performance.now() - t0) / 1e3);
  }
  return { times, loss };
}

export interface TrainStepOptions {
  rounds?: number;
  /** Seconds each contender runs per round (at least minSteps steps). */
  roundSeconds?: number;
  minSteps?: number;
  /** Leave PyTorch out even when it is present. */
  noTorch?: boolean;
}

export async function runTrainStepBench(options: TrainStepOptions = {}): Promise<TrainStepResult> {
  const rounds = options.rounds ?? 3;
  const roundSeconds = options.roundSeconds ?? 1.5;
  const minSteps = options.minSteps ?? 2;
  const loadBefore = load1();
  const ids = tokenIds();
  const dims = llamaFlopDims(STEP_MODEL, STEP_INPUT);
  const matmulFlops = llamaForwardFlops(dims).total + fullBackwardFlops(dims);
  const unavailable: TrainStepResult['unavailable'] = [];
  const wasmInfo: TrainStepResult['wasmInfo'] = {};
  const samples: Partial<Record<StepContender, { times: number[]; firstLoss: number; loss: number; parameters: number }>> = {};
  const firstLoss: Partial<Record<StepContender, number>> = {};
  const record = (name: StepContender, r: { times: number[]; loss: number }, parameters: number) => {
    const s = (samples[name] ??= { times: [], firstLoss: firstLoss[name] ?? NaN, loss: NaN, parameters });
    s.times.push(...r.times);
    s.loss = r.loss;
  };

  // the contenders that stay up: tfjs-wasm's model, PyTorch's processes
  let tfStep: TfLlamaStep | null = null;
  try {
    tf.enableProdMode();
    registerTfGradients();
    await startTfBackend('wasm');
    tfStep = tfjsLlamaStep(STEP_MODEL, STEP_INPUT.batch, STEP_INPUT.seqLen, ids, LR);
    firstLoss['tfjs-wasm'] = tfStep.step(); // warm-up
  } catch (err) {
    unavailable.push({ contender: 'tfjs-wasm', reason: err instanceof Error ? err.message : String(err) });
  }
  const torchFound = options.noTorch ? { skipped: 'left out (noTorch)' } : findTorchPython();
  const torchers: Partial<Record<'torch 1t' | 'torch 2t', TorchStepper>> = {};
  if ('python' in torchFound) {
    const config = {
      vocab: STEP_MODEL.vocabSize, hidden: STEP_MODEL.hiddenSize, intermediate: STEP_MODEL.intermediateSize,
      layers: STEP_MODEL.numHiddenLayers, heads: STEP_MODEL.numAttentionHeads, batch: STEP_INPUT.batch, seq: STEP_INPUT.seqLen, lr: LR, ids: [...ids],
    };
    for (const threads of [1, 2] as const) {
      const name = threads === 1 ? 'torch 1t' : 'torch 2t';
      try {
        const t = await TorchStepper.start(torchFound.python, threads, config);
        torchers[name] = t;
        firstLoss[name] = t.info.firstLoss;
      } catch (err) {
        unavailable.push({ contender: name, reason: err instanceof Error ? err.message : String(err) });
      }
    }
  } else {
    console.log(`PyTorch: skipped (${torchFound.skipped})`);
  }
  const torchInfo = Object.fromEntries(Object.entries(torchers).map(([k, t]) => [k, t.info]));
  for (const t of Object.values(torchers)) {
    if (!t.info.blas.startsWith('openblas')) console.log(`PyTorch ${t.info.threads}t uses ${t.info.blas}, not OpenBLAS: its times are not representative (Debian: apt-get install libopenblas0-pthread)`);
  }

  const runners: Partial<Record<StepContender, () => Promise<void>>> = {};
  const blockgradRound = (name: StepContender, select: () => void) => async () => {
    select();
    const liveBefore = memory.stats().liveBytes;
    const run = blockgradStep(ids);
    try {
      const first = run.step(); // warm-up: the first step of a fresh model allocates what later steps reuse
      firstLoss[name] ??= first;
      record(name, timedSteps(run.step, roundSeconds, minSteps), run.parameters);
      if (name === 'wasm 1t' || name === 'wasm 2t') wasmInfo[name] = backendInfo();
    } finally {
      run.dispose();
    }
    const left = memory.stats().liveBytes - liveBefore;
    if (left > 0) console.log(`${name}: ${left} bytes still live after the model, optimizer and batch were disposed`);
  };
  runners.cpu = blockgradRound('cpu', () => setBackend('cpu'));
  runners['wasm 1t'] = blockgradRound('wasm 1t', () => setBackend('wasm', { threads: 1 }));
  runners['wasm 2t'] = blockgradRound('wasm 2t', () => setBackend('wasm', { threads: 2 }));
  if (tfStep) {
    const s = tfStep;
    runners['tfjs-wasm'] = async () => {
      await startTfBackend('wasm');
      record('tfjs-wasm', timedSteps(s.step, roundSeconds, minSteps), s.parameters);
    };
  }
  for (const name of ['torch 1t', 'torch 2t'] as const) {
    const t = torchers[name];
    if (!t) continue;
    let perStep = Infinity; // unknown until its first round, which runs minSteps steps
    runners[name] = async () => {
      const r = await t.steps(Math.max(minSteps, Math.ceil(roundSeconds / perStep)));
      perStep = median(r.times);
      record(name, r, t.info.parameters);
    };
  }

  const names = STEP_CONTENDERS.filter((n) => runners[n] !== undefined);
  console.log(
    `Llama ${STEP_MODEL.numHiddenLayers} layers, hidden ${STEP_MODEL.hiddenSize}, intermediate ${STEP_MODEL.intermediateSize}, ` +
      `${STEP_MODEL.numAttentionHeads} heads, vocab ${STEP_MODEL.vocabSize}; batch ${STEP_INPUT.batch} x seq ${STEP_INPUT.seqLen}, float32; ` +
      `${(matmulFlops / 1e9).toFixed(2)} GFLOP of matmul per step; ${rounds} rounds of >= ${roundSeconds} s and ${minSteps} steps each; load average ${loadBefore}`,
  );
  try {
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(r + j) % names.length];
        await (runners[name] as () => Promise<void>)();
        await yieldToLoop();
      }
      console.log(`round ${r + 1}: ${names.map((n) => `${n} ${(median(samples[n]?.times ?? []) * 1e3).toFixed(0)} ms`).join(', ')} (load ${load1()})`);
    }
  } finally {
    setBackend('cpu');
    tfStep?.dispose();
    await Promise.all(Object.values(torchers).map((t) => t.close()));
  }

  const timings: TrainStepResult['timings'] = {};
  for (const n of names) {
    const s = samples[n];
    if (!s) continue;
    timings[n] = { medianSeconds: median(s.times), minSeconds: Math.min(...s.times), maxSeconds: Math.max(...s.times), steps: s.times, firstLoss: s.firstLoss, loss: s.loss, parameters: s.parameters };
  }
  const vsTorch1: TrainStepResult['vsTorch1'] = {};
  const speedupVsCpu: TrainStepResult['speedupVsCpu'] = {};
  for (const n of names) {
    const t = timings[n]?.medianSeconds ?? NaN;
    if (timings['torch 1t']) vsTorch1[n] = t / timings['torch 1t'].medianSeconds;
    if (timings.cpu) speedupVsCpu[n] = timings.cpu.medianSeconds / t;
  }
  return {
    model: STEP_MODEL,
    input: STEP_INPUT,
    matmulFlops,
    rounds,
    roundSeconds,
    timings,
    wasmInfo,
    torch: 'python' in torchFound ? { info: torchInfo } : torchFound,
    unavailable,
    vsTorch1,
    speedupVsCpu,
    load: [loadBefore, load1()],
  };
}

// ------------------------------------------------------------------ markdown

const LABEL: Record<StepContender, string> = {
  cpu: 'blockgrad cpu',
  'wasm 1t': 'blockgrad wasm, 1 thread',
  'wasm 2t': 'blockgrad wasm, 2 threads',
  'tfjs-wasm': 'TensorFlow.js wasm (1 thread)',
  'torch 1t': 'PyTorch, 1 thread',
  'torch 2t': 'PyTorch, 2 threads',
};

export function trainStepMarkdown(r: TrainStepResult): string {
  const torchNote =
    'skipped' in r.torch
      ? `PyTorch: skipped (${r.torch.skipped}).`
      : `PyTorch ${Object.values(r.torch.info)[0]?.torch ?? '?'} (${Object.values(r.torch.info)[0]?.blas ?? '?'}), ` +
        'OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS set to its thread count, OMP_WAIT_POLICY=PASSIVE (bench/torch_step.py says why).';
  const wasm = r.wasmInfo['wasm 2t'] ?? r.wasmInfo['wasm 1t'];
  const x = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : `${v.toFixed(2)}x`);
  return [
    `Llama-style model: ${r.model.numHiddenLayers} layers, hidden ${r.model.hiddenSize}, intermediate ${r.model.intermediateSize}, ` +
      `${r.model.numAttentionHeads} heads, vocab ${r.model.vocabSize}; batch ${r.input.batch} × seq ${r.input.seqLen}, float32; ` +
      `${(r.matmulFlops / 1e9).toFixed(2)} GFLOP of matmul per step (forward + backward). One step: forward, backward, Adam (lr ${LR}), ` +
      `blockgrad's inside tidy(). Median step over ${r.rounds} interleaved rounds of >= ${r.roundSeconds} s each; ` +
      `load average ${r.load[0]} before, ${r.load[1]} after. ${torchNote}` +
      (wasm ? ` backendInfo() of the wasm backend on ${wasm.threads} thread(s): SIMD ${wasm.simd}, ${((wasm.memoryBytes ?? 0) / 2 ** 20).toFixed(0)} MiB of wasm memory after the step.` : '') +
      (r.unavailable.length ? ` Unavailable: ${r.unavailable.map((u) => `${u.contender} (${u.reason})`).join('; ')}.` : ''),
    '',
    '| library | ms per step, median (min–max) | steps timed | matmul GFLOP/s | time / PyTorch 1 thread | speed-up over blockgrad cpu | loss, first step |',
    '| :--- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...STEP_CONTENDERS.filter((n) => r.timings[n]).map((n) => {
      const t = r.timings[n] as StepTiming;
      return (
        `| ${LABEL[n]} | ${(t.medianSeconds * 1e3).toFixed(0)} (${(t.minSeconds * 1e3).toFixed(0)}–${(t.maxSeconds * 1e3).toFixed(0)}) | ${t.steps.length} | ` +
        `${(r.matmulFlops / t.medianSeconds / 1e9).toFixed(1)} | ${x(r.vsTorch1[n])} | ${x(r.speedupVsCpu[n])} | ${t.firstLoss.toFixed(5)} |`
      );
    }),
    '',
    `Loss of a fresh model's first step: blockgrad's backends build the same weights, so theirs agree (to float32 rounding); ` +
      `tfjs and PyTorch initialise their own, near ln ${r.model.vocabSize} = ${Math.log(r.model.vocabSize).toFixed(2)}. ` +
      "Matmul GFLOP/s: the step's matmul FLOPs over its whole time.",
    '',
    "The issue's target: the wasm backend's step at most 2x PyTorch's one-thread step" +
      (r.vsTorch1['wasm 1t'] !== undefined
        ? ` — here ${x(r.vsTorch1['wasm 1t'])} on 1 thread, ${x(r.vsTorch1['wasm 2t'])} on 2.`
        : ' (PyTorch not measured in this run).'),
  ].join('\n');
}

if (isEntry('train-step.bench')) {
  const quick = process.argv.includes('--quick');
  runTrainStepBench({ noTorch: process.argv.includes('--no-torch'), ...(quick ? { rounds: 1, roundSeconds: 0 } : {}) })
    .then((r) => console.log('\n' + trainStepMarkdown(r)))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
