/**
 * `npm run demo`: BAdam against mixed-precision Adam (and LoRA, LOMO on request) fine-tuning a
 * small Llama-style model on instruction data, end to end:
 *
 *   1. data: the generated instruction set (or an Alpaca file), three examples held out;
 *   2. a pretrained checkpoint in <out>/pretrained.safetensors, made by a brief plain-Adam
 *      pretraining when absent (or made for another setup), reused otherwise;
 *   3. the memory table and its bars: one measured training step per optimizer on the same batch;
 *   4. fine-tuning, each optimizer from the same float16 weights over the same batches, with a
 *      progress bar (loss, tokens/s) and BAdam's block switches;
 *   5. backward time per step, BAdam against Adam; greedy answers before and after;
 *   6. <out>/loss.svg (loss against steps), loss-time.svg (against seconds), memory.svg (the
 *      memory table as bars) and summary.json.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  Batcher,
  ByteTokenizer,
  type Tokenizer,
  backendInfo,
  ValueError,
  encodeDataset,
  encodeExample,
  formatPrompt,
  generateInstructionDataset,
  loadAlpacaFile,
  measureTrainingMemory,
  memoryReport,
  parseSafetensors,
  saveSafetensorsFile,
  tidy,
  type AlpacaExample,
  type BlockSwitchEvent,
  type CollatedBatch,
  type EncodedExample,
  type LlamaConfig,
  type Tensor,
  type TrainingMemory,
} from '../src';
import { ProgressBar, fmtInt, fmtSeconds, type ConsoleIO } from '../cli/progress';
import { lossFigures, memoryBarsText, memoryFigure } from './figures';
import {
  OPTIMIZER_DESCRIPTIONS,
  OPTIMIZER_LABELS,
  answers,
  buildModel,
  createTrainer,
  disposeModel,
  pretrain,
  type OptimizerName,
  type Trainer,
  type TrainerContext,
} from './train';

export { OPTIMIZERS, type OptimizerName } from './train';

export interface DemoOptions {
  /** Fine-tuning steps per optimizer. */
  steps: number;
  /** Decoder layers (BAdam's blocks). */
  layers: number;
  /** Optimizers to run, in order (adam is the baseline). */
  optimizers: OptimizerName[];
  /** An Alpaca-format JSON file; undefined: the generated instruction set. */
  data?: string;
  /** Output folder. */
  out: string;
  seed: number;
  /** Plain-Adam steps of the pretraining, when there is no usable checkpoint. */
  pretrainSteps: number;
  /** BAdam's steps per block (default: steps / (2 · layers), at least 1: two block-epochs). */
  switchEvery?: number;
}

/**
 * Flag defaults, sized so that the whole demo runs in about half a minute on 2 cores: 80 steps on 4
 * layers are two whole block-epochs of BAdam (10 steps per block), so that every block trains
 * as often as every other.
 */
export const DEFAULTS = {
  steps: 80,
  layers: 4,
  out: 'demo-output',
  seed: 0,
  pretrainSteps: 40,
} as const;

/** Fixed sizes and hyperparameters (not flags). */
export const SETTINGS = {
  hiddenSize: 64,
  intermediateSize: 128,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 128,
  batchSize: 8,
  /** Tokens per example: the end of the prompt (the Alpaca preamble is cut first) and the answer. */
  maxLength: 48,
  /** Adam's learning rate for pretraining, BAdam, Adam and LoRA. */
  lr: 3e-3,
  lomoLr: 5e-2,
  /** Size of the generated instruction set. */
  generatedCount: 512,
  heldOut: 3,
  maxNewTokens: 20,
  /** The final loss is the mean of this many last steps. */
  finalWindow: 10,
} as const;

const CHECKPOINT = 'pretrained.safetensors';
const META_KEY = 'blockgrad.demo';

// ------------------------------------------------------------------ summary.json

export interface HeldOutAnswer {
  instruction: string;
  input?: string;
  expected: string;
  /** The pretrained model's answer (the same starting point for every optimizer). */
  before: string;
  after: string;
}

export interface OptimizerSummary {
  label: string;
  description: string;
  steps: number;
  /** Loss of every step, in order. */
  losses: number[];
  /** Seconds since this optimizer's fine-tuning started, after each step. */
  elapsed: number[];
  /** Mean of the last `finalWindow` losses. */
  finalLoss: number;
  meanBackwardMs: number;
  /** Matmul FLOPs of one backward, averaged over the steps (profile()). */
  meanBackwardFlops: number;
  meanBackwardNodes: number;
  /** Non-pad tokens per second over the whole run (forward, backward and update). */
  tokensPerSecond: number;
  seconds: number;
  /** One measured step on the memory batch: the printed table's row. */
  memory: TrainingMemory;
  /** BAdam only: every block activation (step 0 is the first block; a switch right after the last step is listed too). */
  blockSwitches?: { step: number; block: number; prefixes: string[]; numParams: number; epoch: number }[];
  answers: HeldOutAnswer[];
}

export interface DemoSummary {
  version: 1;
  createdAt: string;
  config: {
    model: LlamaConfig & { parameters: number };
    steps: number;
    layers: number;
    optimizers: OptimizerName[];
    batchSize: number;
    maxLength: number;
    lr: number;
    lomoLr: number;
    seed: number;
    pretrainSteps: number;
    switchEvery: number;
    switchMode: 'ascending';
    data: string;
    trainExamples: number;
    heldOutExamples: number;
  };
  pretraining: { checkpoint: string; reused: boolean; steps: number; losses: number[]; seconds: number };
  /** The memory table exactly as printed (markdown). */
  memoryTable: string;
  optimizers: Partial<Record<OptimizerName, OptimizerSummary>>;
  /** Each optimizer's mean backward time and FLOPs over Adam's. */
  backwardRatioToAdam: Partial<Record<OptimizerName, { time: number; flops: number }>>;
  outputs: { folder: string; chart: string; timeChart: string; memoryChart: string; summary: string; checkpoint: string };
  seconds: number;
}

// ------------------------------------------------------------------ data

/** A problem the user can fix (flags, data file, output folder): the CLI prints it and exits with code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

interface PreparedData {
  source: string;
  train: AlpacaExample[];
  heldOut: AlpacaExample[];
  /** Fine-tuning: the prompt masked (-100), the response trained. */
  encoded: EncodedExample[];
  /** Pretraining: every token trained. */
  fullText: EncodedExample[];
  /** The held-out prompts as the model sees them in training (same truncation). */
  prompts: number[][];
  hash: string;
}

/** FNV-1a of a string, as 8 hex digits: identifies the training data in the checkpoint. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

const keyOf = (e: AlpacaExample) => `${e.instruction}\u0000${e.input ?? ''}`;

function prepareData(options: DemoOptions, tokenizer: Tokenizer): PreparedData {
  let train: AlpacaExample[];
  let heldOut: AlpacaExample[];
  let source: string;
  if (options.data === undefined) {
    source = `generated instruction set (${SETTINGS.generatedCount} examples, seed ${options.seed})`;
    train = generateInstructionDataset({ count: SETTINGS.generatedCount, seed: options.seed }).map(({ task: _task, ...ex }) => ex);
    // three unseen questions of three kinds, each short enough to be seen whole in maxLength
    const seen = new Set(train.map(keyOf));
    const candidates = generateInstructionDataset({ count: 200, seed: options.seed + 7919, tasks: ['add', 'opposite', 'uppercase'] });
    heldOut = [];
    for (const task of ['add', 'opposite', 'uppercase'] as const) {
      // the question form where there is one ("What is 3 plus 4?"), so the window holds all of it
      const fits = (c: (typeof candidates)[number]) => c.task === task && !seen.has(keyOf(c));
      const pick = candidates.find((c) => fits(c) && c.input === undefined) ?? candidates.find(fits);
      if (pick) {
        const { task: _task, ...ex } = pick;
        heldOut.push(ex);
      }
    }
  } else {
    let records: AlpacaExample[];
    try {
      records = loadAlpacaFile(options.data);
    } catch (err) {
      const message = err instanceof ValueError ? err.message.replace(/^loadAlpacaFile: /, '') : `cannot read '${options.data}': ${(err as Error).message}`;
      throw new UsageError(`--data: ${message}`);
    }
    if (records.length < SETTINGS.heldOut + 1) {
      throw new UsageError(`--data '${options.data}' has ${records.length} record(s); the demo needs at least ${SETTINGS.heldOut + 1} (${SETTINGS.heldOut} are held out)`);
    }
    source = `${options.data} (${records.length} examples)`;
    // a seeded shuffle, then the first three are held out
    const order = new Batcher(records.map(() => ({ inputIds: [], labels: [] })), { batchSize: 1, shuffle: true, seed: options.seed, padId: 0 }).order(0);
    heldOut = order.slice(0, SETTINGS.heldOut).map((i) => records[i]);
    train = order.slice(SETTINGS.heldOut).map((i) => records[i]);
  }
  const { examples: encoded } = encodeDataset(train, tokenizer, { maxLength: SETTINGS.maxLength });
  if (encoded.length === 0) throw new UsageError(`--data '${options.data}': no example has a response to train on`);
  const fullText = encoded.map((e) => ({ ...e, labels: [...e.inputIds], responseStart: 0 }));
  const prompts = heldOut.map((ex) => {
    const enc = encodeExample(ex, tokenizer, { maxLength: SETTINGS.maxLength });
    if (enc) return enc.inputIds.slice(0, enc.responseStart);
    // a prompt too long to keep whole: its end (and the bos token, where there is one)
    const bos = tokenizer.bosId !== null;
    const all = tokenizer.encode(formatPrompt(ex), { addBos: bos });
    const keep = SETTINGS.maxLength - 8;
    return bos ? [all[0], ...all.slice(Math.max(1, all.length - keep))] : all.slice(Math.max(0, all.length - keep));
  });
  return { source, train, heldOut, encoded, fullText, prompts, hash: fnv1a(JSON.stringify(train)) };
}

/** Batches of `examples` in a seeded order, epoch after epoch, with their token counts. */
function* endless(examples: readonly EncodedExample[], seed: number, padId: number): Generator<CollatedBatch & { tokens: number }> {
  const batcher = new Batcher(examples, { batchSize: SETTINGS.batchSize, shuffle: true, seed, padId });
  for (;;) {
    for (const batch of batcher) {
      const tokens = batch.indices.reduce((n, i) => n + examples[i].inputIds.length, 0);
      yield { ...batch, tokens };
    }
  }
}

function disposeBatch(b: CollatedBatch): void {
  b.inputIds.dispose();
  b.labels.dispose();
  b.attentionMask.dispose();
}

// ------------------------------------------------------------------ the run

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
/** A string as a JSON literal (newlines visible), cut to `max` characters for the console. */
const quote = (s: string, max = 80) => JSON.stringify(s.length > max ? `${s.slice(0, max)}...` : s);

export async function runDemo(options: DemoOptions, io: ConsoleIO): Promise<DemoSummary> {
  const started = performance.now();
  const say = (line = '') => io.out.write(`${line}\n`);
  const tokenizer = new ByteTokenizer();
  const data = prepareData(options, tokenizer);
  const optimizers = options.optimizers;
  const layers = options.layers;
  const switchEvery = options.switchEvery ?? Math.max(1, Math.round(options.steps / (2 * layers)));
  const config: LlamaConfig = {
    vocabSize: tokenizer.vocabSize,
    hiddenSize: SETTINGS.hiddenSize,
    intermediateSize: SETTINGS.intermediateSize,
    numHiddenLayers: layers,
    numAttentionHeads: SETTINGS.numAttentionHeads,
    numKeyValueHeads: SETTINGS.numKeyValueHeads,
    maxPositionEmbeddings: SETTINGS.maxPositionEmbeddings,
    seed: options.seed,
  };
  const outDir = resolve(options.out);
  try {
    mkdirSync(outDir, { recursive: true });
  } catch (err) {
    throw new UsageError(`cannot create the output folder '${options.out}': ${(err as Error).message}`);
  }
  const checkpointPath = join(outDir, CHECKPOINT);

  const names = optimizers.map((o) => OPTIMIZER_LABELS[o]);
  say(`blockgrad demo: ${names.join(' vs ')} fine-tuning a ${layers}-layer Llama-style model`);
  say(
    `  model: byte tokenizer (vocab ${config.vocabSize}), hidden ${config.hiddenSize}, ${config.numAttentionHeads} heads / ` +
      `${config.numKeyValueHeads} kv heads, MLP ${config.intermediateSize}; weights in float16 while fine-tuning`,
  );
  say(`  data:  ${data.source}: ${data.encoded.length} for training, ${data.heldOut.length} held out`);
  say(
    `  run:   ${options.steps} steps per optimizer, batch ${SETTINGS.batchSize}, up to ${SETTINGS.maxLength} tokens per example, ` +
      `lr ${SETTINGS.lr}, seed ${options.seed}` +
      (optimizers.includes('badam') ? `; BAdam switches block every ${switchEvery} step${switchEvery === 1 ? '' : 's'} (ascending)` : ''),
  );
  const info = backendInfo();
  say(`  backend: ${info.backend}${info.backend === 'wasm' ? ` (WebAssembly SIMD, ${info.threads} thread${info.threads === 1 ? '' : 's'})` : ''}`);
  say();

  // ---------------------------------------------------------------- the pretrained checkpoint
  const meta = JSON.stringify({ version: 1, config, pretrainSteps: options.pretrainSteps, seed: options.seed, data: data.hash, maxLength: SETTINGS.maxLength });
  let weights: Record<string, Tensor> | null = null;
  let reused = false;
  const pretrainLosses: number[] = [];
  const pretrainStart = performance.now();
  if (existsSync(checkpointPath)) {
    try {
      const file = parseSafetensors(readFileSync(checkpointPath));
      if (file.metadata[META_KEY] === meta) {
        weights = file.tensors;
        reused = true;
        say(`Pretrained checkpoint: ${checkpointPath} (reused; delete it to pretrain again)`);
      } else {
        say(`Pretrained checkpoint: ${checkpointPath} was made for another setup (layers, seed, data or pretrain steps); pretraining again`);
      }
    } catch (err) {
      say(`Pretrained checkpoint: cannot read ${checkpointPath} (${(err as Error).message.split('\n')[0]}); pretraining again`);
    }
  }
  if (weights === null) {
    say(
      options.pretrainSteps > 0
        ? `Pretraining: plain Adam (float32) on all parameters, ${options.pretrainSteps} steps of language modelling on the whole text of the training examples`
        : 'No pretraining (--pretrain-steps 0): the checkpoint holds the seeded random initialisation',
    );
    const bar = new ProgressBar(io.out, 'pretrain', Math.max(1, options.pretrainSteps));
    let tokens = 0;
    const model = pretrain(config, () => endless(data.fullText, options.seed + 1, tokenizer.padId), {
      steps: options.pretrainSteps,
      lr: SETTINGS.lr,
      onStep: (step, loss, n) => {
        pretrainLosses.push(loss);
        tokens += n;
        bar.update(step, { loss, tokensPerSecond: tokens / ((performance.now() - pretrainStart) / 1000) });
      },
    });
    bar.close();
    weights = model.stateDict();
    await saveSafetensorsFile(checkpointPath, weights, { [META_KEY]: meta, format: 'pt' });
    say(`Saved ${checkpointPath}`);
  }
  const pretrainSeconds = (performance.now() - pretrainStart) / 1000;
  const pretrained = weights;

  const ctxBase: Omit<TrainerContext, 'onSwitch'> = { config, lr: SETTINGS.lr, lomoLr: SETTINGS.lomoLr, switchEvery, seed: options.seed };

  // ---------------------------------------------------------------- answers before fine-tuning
  const before = (() => {
    const model = buildModel(config, pretrained).to('float16'); // what every optimizer starts from
    try {
      return answers(model, tokenizer, data.prompts, SETTINGS.maxNewTokens);
    } finally {
      disposeModel(model);
    }
  })();
  say();
  say(`Held-out instructions and the pretrained model's greedy answers (before fine-tuning):`);
  data.heldOut.forEach((ex, i) => {
    say(`  ${i + 1}. ${quote(ex.instruction)}${ex.input ? `  input ${quote(ex.input, 40)}` : ''}`);
    say(`     ${'expected:'.padEnd(11)} ${quote(ex.output)}`);
    say(`     ${'pretrained:'.padEnd(11)} ${quote(before[i])}`);
  });

  // ---------------------------------------------------------------- the memory table
  const memBatch = endless(data.encoded, options.seed, tokenizer.padId).next().value as CollatedBatch;
  const memory: Partial<Record<OptimizerName, TrainingMemory>> = {};
  for (const name of optimizers) {
    let trainer: Trainer | null = null;
    memory[name] = measureTrainingMemory(OPTIMIZER_DESCRIPTIONS[name], () => {
      const t = createTrainer(name, pretrained, ctxBase);
      trainer = t;
      return { model: t.model, trainable: t.trainable(), step: () => void t.step(memBatch) };
    });
    (trainer as Trainer | null)?.release();
  }
  disposeBatch(memBatch);
  const rows = optimizers.map((o) => memory[o] as TrainingMemory);
  const table = memoryReport(rows);
  say();
  say(`Memory of one training step on the same batch (measured by the memory tracker; peaks per category):`);
  say(table);
  say();
  say('The same, as bytes per parameter of model state:');
  for (const line of memoryBarsText(rows, optimizers)) say(line);
  const M = rows[0].parameters;
  if (optimizers.includes('badam')) {
    const b = memory.badam as TrainingMemory;
    say(
      `  BAdam keeps float32 masters, gradients and Adam moments for the active block only (${fmtInt(b.trainable)} of ${fmtInt(M)} parameters): ` +
        `about 2 + 16 x ${(b.trainable / M).toFixed(2)} = ${(2 + (16 * b.trainable) / M).toFixed(1)} bytes per parameter` +
        (optimizers.includes('adam') ? `, against 2 + 4 + 4 + 8 = 18 for mixed-precision Adam.` : '.'),
    );
  }

  // ---------------------------------------------------------------- fine-tuning
  const results: Partial<Record<OptimizerName, OptimizerSummary>> = {};
  for (const name of optimizers) {
    const label = OPTIMIZER_LABELS[name];
    say();
    say(`Fine-tuning with ${OPTIMIZER_DESCRIPTIONS[name]}:`);
    const switches: NonNullable<OptimizerSummary['blockSwitches']> = [];
    let bar: ProgressBar | null = null;
    const onSwitch = (e: BlockSwitchEvent) => {
      switches.push({ step: e.step, block: e.block, prefixes: e.prefixes, numParams: e.numParams, epoch: e.epoch });
      const text =
        e.step === 0
          ? `  BAdam starts with block ${e.block} of ${layers} (${e.prefixes.join(', ')}): ${fmtInt(e.numParams)} trainable parameters`
          : `  BAdam: after step ${e.step}, block ${e.block} of ${layers} (${e.prefixes.join(', ')}) is now trainable (block-epoch ${e.epoch})`;
      if (e.step >= options.steps) return; // the switch after the last step: nothing trains after it
      if (bar) bar.log(text);
      else say(text);
    };
    const trainer = createTrainer(name, pretrained, { ...ctxBase, onSwitch });
    bar = new ProgressBar(io.out, label, options.steps);
    const batches = endless(data.encoded, options.seed, tokenizer.padId);
    const losses: number[] = [];
    const elapsed: number[] = [];
    const backwardMs: number[] = [];
    const flops: number[] = [];
    const nodes: number[] = [];
    let tokens = 0;
    const t0 = performance.now();
    for (let step = 1; step <= options.steps; step++) {
      const batch = batches.next().value as CollatedBatch & { tokens: number };
      const active = trainer.activeBlock(); // the block this step trains (a switch may follow it)
      // tidy: everything the step makes is released when it returns (numbers only come out)
      const out = tidy(() => trainer.step(batch));
      disposeBatch(batch);
      if (!Number.isFinite(out.loss)) {
        bar.close();
        throw new Error(`${label}: the loss is ${out.loss} at step ${step}; training diverged`);
      }
      losses.push(out.loss);
      elapsed.push((performance.now() - t0) / 1000);
      backwardMs.push(out.backwardMs);
      flops.push(out.backwardFlops);
      nodes.push(out.backwardNodes);
      tokens += batch.tokens;
      bar.update(step, {
        loss: out.loss,
        tokensPerSecond: tokens / ((performance.now() - t0) / 1000),
        note: active === undefined ? undefined : `block ${active}`,
      });
    }
    bar.close();
    const seconds = (performance.now() - t0) / 1000;
    const after = answers(trainer.model, tokenizer, data.prompts, SETTINGS.maxNewTokens);
    trainer.release();
    const finalLoss = mean(losses.slice(-SETTINGS.finalWindow));
    results[name] = {
      label,
      description: OPTIMIZER_DESCRIPTIONS[name],
      steps: options.steps,
      losses,
      elapsed,
      finalLoss,
      meanBackwardMs: mean(backwardMs),
      meanBackwardFlops: mean(flops),
      meanBackwardNodes: mean(nodes),
      tokensPerSecond: tokens / seconds,
      seconds,
      memory: memory[name] as TrainingMemory,
      ...(name === 'badam' ? { blockSwitches: switches } : {}),
      answers: data.heldOut.map((ex, i) => ({
        instruction: ex.instruction,
        ...(ex.input ? { input: ex.input } : {}),
        expected: ex.output,
        before: before[i],
        after: after[i],
      })),
    };
    const r = results[name] as OptimizerSummary;
    say(
      `  ${label}: loss ${losses[0].toFixed(3)} -> ${finalLoss.toFixed(3)} (mean of the last ${Math.min(SETTINGS.finalWindow, losses.length)}), ` +
        `backward ${r.meanBackwardMs.toFixed(1)} ms/step, ${fmtInt(r.tokensPerSecond)} tok/s, ${fmtSeconds(seconds)}`,
    );
  }

  // ---------------------------------------------------------------- comparisons
  const ratios: DemoSummary['backwardRatioToAdam'] = {};
  say();
  say(`Backward pass per step (mean over ${options.steps} steps; matmul FLOPs counted by profile()):`);
  const adam = results.adam;
  for (const name of optimizers) {
    const r = results[name] as OptimizerSummary;
    let ratio = '';
    if (adam && name !== 'adam') {
      ratios[name] = { time: r.meanBackwardMs / adam.meanBackwardMs, flops: r.meanBackwardFlops / adam.meanBackwardFlops };
      ratio = `  ${r.label}/Adam: time ${ratios[name]!.time.toFixed(2)}, FLOPs ${ratios[name]!.flops.toFixed(2)}`;
    }
    say(
      `  ${r.label.padEnd(6)} ${r.meanBackwardMs.toFixed(1).padStart(8)} ms  ${(r.meanBackwardFlops / 1e6).toFixed(1).padStart(7)} MFLOP  ` +
        `${Math.round(r.meanBackwardNodes).toString().padStart(4)} nodes run${ratio}`,
    );
  }
  if (optimizers.includes('lomo')) say('  (LOMO\'s backward includes its fused SGD updates.)');

  say();
  say(`Greedy answers to the held-out instructions, before and after fine-tuning:`);
  data.heldOut.forEach((ex, i) => {
    say(`  ${i + 1}. ${quote(ex.instruction)}${ex.input ? `  input ${quote(ex.input, 40)}` : ''}`);
    say(`     ${'expected:'.padEnd(11)} ${quote(ex.output)}`);
    say(`     ${'pretrained:'.padEnd(11)} ${quote(before[i])}`);
    for (const name of optimizers) say(`     ${(OPTIMIZER_LABELS[name] + ':').padEnd(11)} ${quote((results[name] as OptimizerSummary).answers[i].after)}`);
  });

  // ---------------------------------------------------------------- outputs
  const params = rows[0].parameters;
  const subtitle =
    `${layers}-layer Llama (hidden ${config.hiddenSize}, ${fmtInt(params)} parameters, float16 weights), same pretrained start and batches, ` +
    `batch ${SETTINGS.batchSize}, lr ${SETTINGS.lr}`;
  const lossRuns = optimizers.map((name) => ({ name, ...(results[name] as OptimizerSummary) }));
  const figures = lossFigures(lossRuns, subtitle, results.badam?.blockSwitches ?? []);
  const chartPath = join(outDir, 'loss.svg');
  const timeChartPath = join(outDir, 'loss-time.svg');
  const memoryChartPath = join(outDir, 'memory.svg');
  const summaryPath = join(outDir, 'summary.json');
  writeFileSync(chartPath, figures.steps);
  writeFileSync(timeChartPath, figures.time);
  writeFileSync(memoryChartPath, memoryFigure(rows, optimizers, `${layers}-layer Llama, ${fmtInt(params)} parameters, float16 weights; measured over one step`));
  const summary: DemoSummary = {
    version: 1,
    createdAt: new Date().toISOString(),
    config: {
      model: { ...config, parameters: params },
      steps: options.steps,
      layers,
      optimizers: [...optimizers],
      batchSize: SETTINGS.batchSize,
      maxLength: SETTINGS.maxLength,
      lr: SETTINGS.lr,
      lomoLr: SETTINGS.lomoLr,
      seed: options.seed,
      pretrainSteps: options.pretrainSteps,
      switchEvery,
      switchMode: 'ascending',
      data: options.data ?? 'generated',
      trainExamples: data.encoded.length,
      heldOutExamples: data.heldOut.length,
    },
    pretraining: { checkpoint: checkpointPath, reused, steps: options.pretrainSteps, losses: pretrainLosses, seconds: pretrainSeconds },
    memoryTable: table,
    optimizers: results,
    backwardRatioToAdam: ratios,
    outputs: { folder: outDir, chart: chartPath, timeChart: timeChartPath, memoryChart: memoryChartPath, summary: summaryPath, checkpoint: checkpointPath },
    seconds: (performance.now() - started) / 1000,
  };
  writeFileSync(summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
  say();
  say(`Done in ${fmtSeconds(summary.seconds)}. Wrote loss.svg and loss-time.svg (loss against steps and seconds), memory.svg and summary.json to ${outDir}`);
  return summary;
}
