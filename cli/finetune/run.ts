/**
 * The fine-tuning run: resolve the configuration (or take it from the checkpoint being resumed),
 * load the model and data, then step: micro-batches forward and backward, one optimizer step,
 * a metrics line, an evaluation and a checkpoint when due. Ctrl-C (the abort signal) stops after
 * the current step and saves a checkpoint to resume from.
 *
 * Why a resume is bit-exact: everything a step depends on is either in the checkpoint (weights,
 * the optimizer's moments and masters, BAdam's schedule, the lr schedule's counter, the RNG) or a
 * pure function of the configuration and the step number (the data order is a seeded shuffle per
 * epoch, so micro-batch m is found again without replaying the ones before it).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import {
  Batcher,
  collate,
  defaultGenerator,
  getBackendName,
  memory,
  setBackend,
  tidy,
  type BlockSwitchEvent,
  type EncodedExample,
  type Tensor,
} from '../../src';
import { ProgressBar, fmtInt, type ConsoleIO } from '../progress';
import { findCheckpoint, loadAdapters, readCheckpointMetrics, readMethodState, readTrainerState, saveCheckpoint, type TrainerState } from './checkpoint';
import { prepareData } from './data';
import { evaluate } from './evaluate';
import { MetricsLog, memoryFields, metricsChart, type StepMetrics } from './metrics';
import { UsageError, flagOf, type FinetuneConfig, type ParsedArgs, type RunSettings } from './options';
import { createMethod, loadModel, type LoadedModel, type MethodState, type TrainingMethod } from './setup';

export interface FinetuneResult {
  /** 0: finished; 130: interrupted (a checkpoint was saved). */
  exitCode: 0 | 130;
  /** Optimizer steps done. */
  step: number;
  /** The last checkpoint written. */
  checkpoint: string;
  out: string;
}

export interface FinetuneControl {
  /** Aborting stops the run after the current step, with a checkpoint (the CLI aborts on Ctrl-C). */
  signal?: AbortSignal;
  /** Called after each step (tests use it to interrupt at a given step). */
  afterStep?: (step: number) => void;
  /** Called once everything is loaded and checked, before the first step. */
  onTrainingStart?: () => void;
}

const PATH_KEYS = new Set<keyof FinetuneConfig>(['model', 'data', 'evalData']);

/** Paths made absolute, so that a checkpoint resumes from any working directory. */
function absolutePaths(config: FinetuneConfig): FinetuneConfig {
  return { ...config, model: config.model === null ? null : resolve(config.model), data: config.data.map((f) => resolve(f)), evalData: config.evalData.map((f) => resolve(f)) };
}

/** The configuration of a resumed run: the checkpoint's, with every flag given again checked against it. */
function resumedConfig(args: ParsedArgs, saved: TrainerState, from: string): FinetuneConfig {
  const given = absolutePaths(args.config);
  for (const key of args.given) {
    const mine = JSON.stringify(given[key]);
    const theirs = JSON.stringify(saved.config[key]);
    if (mine !== theirs) {
      const show = (v: string) => (PATH_KEYS.has(key) ? v : v.replace(/^\[|\]$/g, ''));
      throw new UsageError(
        `${flagOf(key)} ${show(mine)} differs from ${show(theirs)} in ${from}: a resumed run keeps the configuration it started with (start a new run to change it)`,
      );
    }
  }
  return saved.config;
}

/** The run's configuration and settings: from the flags, or a resumed run's from its checkpoint with the flags checked against it. */
export function resolveRun(args: ParsedArgs): { config: FinetuneConfig; settings: RunSettings; saved: TrainerState | null; from: string | null } {
  if (args.settings.resume === null) return { config: absolutePaths(args.config), settings: args.settings, saved: null, from: null };
  const from = findCheckpoint(args.settings.resume);
  const saved = readTrainerState(from);
  const config = resumedConfig(args, saved, from);
  const settings: RunSettings = { ...saved.settings, out: dirname(from), resume: from, printLlamaFactory: args.settings.printLlamaFactory };
  for (const key of args.givenSettings) Object.assign(settings, { [key]: args.settings[key] });
  return { config, settings, saved, from };
}

export async function runFinetune(args: ParsedArgs, io: ConsoleIO, control: FinetuneControl = {}): Promise<FinetuneResult> {
  const say = (line: string) => io.out.write(`${line}\n`);

  // ---- configuration and settings (a resumed run's from its checkpoint), model, data
  const { config, settings, saved, from } = resolveRun(args);
  const out = resolve(settings.out ?? 'finetune-output');
  if (settings.backend !== null) setBackend(settings.backend, settings.backend === 'wasm' && settings.threads !== null ? { threads: settings.threads } : undefined);

  const loaded: LoadedModel = from ? loadModel('--resume', from, config) : loadModel('--model', config.model, config);
  const { model, tokenizer } = loaded;
  const context = model.config.maxPositionEmbeddings;
  const maxLength = config.maxLength ?? Math.min(512, context);
  if (maxLength > context) throw new UsageError(`--max-length ${maxLength} is longer than the model's context (max_position_embeddings ${context})`);
  const data = prepareData(config, tokenizer, maxLength);
  for (const line of data.notes) say(line);
  for (const line of data.warnings) io.err.write(`warning: ${line}\n`);
  if (saved && saved.dataFingerprint !== data.fingerprint) {
    throw new UsageError(`--resume: the data files differ from those ${from} was trained on (their sha256 changed); resume with the same files, or start a new run`);
  }

  const batchesPerEpoch = Math.ceil(data.train.length / config.batchSize);
  const totalSteps = config.steps ?? Math.max(1, Math.floor((config.epochs * batchesPerEpoch) / config.gradAccum));
  const evalEvery = settings.evalEvery ?? Math.max(1, Math.round(totalSteps / 10)); // 0: at the end only

  // ---- the method, and the state of a resumed run
  let bar: ProgressBar | null = null;
  const log = (line: string) => (bar ? bar.log(line) : say(line));
  const onSwitch = (e: BlockSwitchEvent) => {
    if (settings.badamVerbose > 0 && e.type === 'switch') log(`BAdam: step ${e.step}: block ${e.block} (${e.prefixes.join(', ')}) trains now, ${fmtInt(e.numParams)} parameters`);
  };
  const method: TrainingMethod = createMethod(config, model, totalSteps, onSwitch);
  let step = 0;
  if (saved && from) {
    if (method.lora) await loadAdapters(from, method.lora);
    const state = await readMethodState(from, saved);
    try {
      method.loadStateDict(state.value as MethodState);
    } finally {
      state.dispose();
    }
    defaultGenerator.setState(saved.generator);
    step = saved.step;
    say(`resuming ${from} at step ${step} of ${totalSteps}`);
  }

  mkdirSync(out, { recursive: true });
  const metrics = new MetricsLog(out, from ? readCheckpointMetrics(from) : '');
  // the order of an epoch is the Batcher's seeded shuffle (Batcher.order), so that micro-batch m is found again from m alone
  const batcher = new Batcher(data.train, { batchSize: config.batchSize, shuffle: true, seed: config.seed, padId: tokenizer.padId });
  let orderCache: { epoch: number; order: number[] } | null = null;
  /** Micro-batch m of the endless, epoch-by-epoch shuffled stream. */
  const microBatch = (m: number): EncodedExample[] => {
    const epoch = Math.floor(m / batchesPerEpoch);
    if (orderCache?.epoch !== epoch) orderCache = { epoch, order: batcher.order(epoch) };
    const i = m % batchesPerEpoch;
    return orderCache.order.slice(i * config.batchSize, (i + 1) * config.batchSize).map((j) => data.train[j]);
  };

  const title = `blockgrad finetune: ${config.optimizer === 'badam' ? `BAdam (${config.badamMode})` : config.optimizer}`;
  const subtitle = `${config.model !== null ? relative(process.cwd(), config.model) || '.' : `fresh ${config.preset} model`}, ${data.train.length} training examples, lr ${config.lr}, batch ${config.batchSize} x ${config.gradAccum}`;
  let lastSaved = { step: -1, path: '' };
  const save = async (): Promise<string> => {
    if (lastSaved.step === step) return lastSaved.path;
    const nextMicroBatch = step * config.gradAccum;
    const path = await saveCheckpoint(out, {
      state: {
        step,
        totalSteps,
        config,
        settings: { out, evalEvery: settings.evalEvery, saveEvery: settings.saveEvery, badamVerbose: settings.badamVerbose, backend: settings.backend, threads: settings.threads },
        maxLength,
        dataFingerprint: data.fingerprint,
        dataOrder: { seed: config.seed, microBatch: nextMicroBatch, epoch: Math.floor(nextMicroBatch / batchesPerEpoch), batchInEpoch: nextMicroBatch % batchesPerEpoch },
        generator: defaultGenerator.getState(),
      },
      model,
      lora: method.lora,
      methodState: method.stateDict(),
      tokenizerSource: loaded.tokenizerSource,
      metrics: metrics.text(),
    });
    writeFileSync(join(out, 'loss.svg'), metricsChart(metrics.entries(), title, subtitle));
    lastSaved = { step, path };
    return path;
  };

  // ---- the loop
  say(`training ${totalSteps} steps on the ${getBackendName()} backend, output in ${out}`);
  bar = new ProgressBar(io.out, config.optimizer, totalSteps, step);
  control.onTrainingStart?.();
  const padId = tokenizer.padId;
  let interrupted = false;
  while (step < totalSteps) {
    const t0 = performance.now();
    memory.resetPeak();
    method.zeroGrad();
    let lossSum = 0;
    let tokens = 0;
    for (let a = 0; a < config.gradAccum; a++) {
      const rows = microBatch(step * config.gradAccum + a);
      tokens += rows.reduce((n, r) => n + r.inputIds.length, 0);
      lossSum += tidy(() => {
        const b = collate(rows, { padId });
        const { loss } = model.forward(b.inputIds, { labels: b.labels, attentionMask: b.attentionMask });
        const value = (loss as Tensor).item();
        method.backward(config.gradAccum > 1 ? (loss as Tensor).div(config.gradAccum) : (loss as Tensor));
        return value;
      });
    }
    const block = method.activeBlock();
    const scale = method.lossScale();
    const { lr, skipped } = tidy(() => method.step());
    step++;
    const m: StepMetrics = { step, loss: lossSum / config.gradAccum, lr, activeBlock: block, tokensPerSecond: tokens / ((performance.now() - t0) / 1000), memory: memoryFields() };
    if (scale !== null) Object.assign(m, { lossScale: scale, skipped });
    if (skipped) log(`step ${step}: a gradient overflowed at loss scale ${scale}: step skipped, scale halved`);
    if (data.eval.length > 0 && ((evalEvery > 0 && step % evalEvery === 0) || step === totalSteps)) {
      m.evalLoss = evaluate(model, data.eval, config.batchSize, padId);
      m.perplexity = Math.exp(m.evalLoss);
      log(`step ${step}: eval loss ${m.evalLoss.toFixed(4)}, perplexity ${m.perplexity.toFixed(2)}`);
    }
    metrics.add(m);
    bar.update(step, { loss: m.loss, tokensPerSecond: m.tokensPerSecond, note: block !== null ? `block ${block}` : undefined });
    control.afterStep?.(step);
    // the loop is synchronous: let pending events (Ctrl-C's handler) run between steps
    await new Promise((done) => setImmediate(done));
    if (settings.saveEvery > 0 && step % settings.saveEvery === 0 && step < totalSteps) log(`step ${step}: saved ${await save()}`);
    if (control.signal?.aborted && step < totalSteps) {
      interrupted = true;
      break;
    }
  }
  bar.close();
  const checkpoint = await save();
  method.release();
  if (interrupted) {
    say(`interrupted at step ${step} of ${totalSteps}: saved ${checkpoint}`);
    say(`resume with: blockgrad finetune --resume ${checkpoint}`);
    return { exitCode: 130, step, checkpoint, out };
  }
  const last = metrics.entries().at(-1);
  const evalText = last?.evalLoss !== undefined ? `, eval loss ${last.evalLoss.toFixed(4)} (perplexity ${last.perplexity?.toFixed(2)})` : '';
  say(`done: ${step} steps, last loss ${last?.loss.toFixed(4)}${evalText}`);
  say(`fine-tuned model: ${checkpoint}  (metrics.jsonl and loss.svg in ${out})`);
  return { exitCode: 0, step, checkpoint, out };
}
