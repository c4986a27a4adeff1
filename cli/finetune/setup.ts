/**
 * What a fine-tuning run trains and how: the model and its tokenizer (a model directory, or a
 * fresh preset model with the byte tokenizer), and the method (BAdam in block or ratio mode,
 * Adam/AdamW, LoRA, LOMO) with its learning-rate schedule, behind one small interface that the
 * training loop drives and that saves and restores its whole state.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  Adam,
  AdamW,
  BlockOptimizer,
  BlockOptimizerRatio,
  ByteTokenizer,
  GradScaler,
  LOMO,
  LambdaLR,
  LlamaForCausalLM,
  MixedPrecisionOptimizer,
  Tokenizer,
  applyLora,
  clipGradNorm,
  isHalf,
  linearWarmupCosineDecay,
  linearWarmupLinearDecay,
  zeros,
  type BlockSwitchEvent,
  type LRScheduler,
  type LlamaConfig,
  type LoraHandle,
  type Tensor,
} from '../../src';
import { UsageError, type FinetuneConfig, type PresetName } from './options';

/** The fresh models of `--preset` (the vocabulary is the byte tokenizer's). */
export const PRESETS: Record<PresetName, Omit<LlamaConfig, 'vocabSize'>> = {
  tiny: { hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 256 },
  small: { hiddenSize: 256, intermediateSize: 688, numHiddenLayers: 8, numAttentionHeads: 4, maxPositionEmbeddings: 512 },
};

export interface LoadedModel {
  model: LlamaForCausalLM;
  tokenizer: Tokenizer;
  /** 'byte' for the byte tokenizer, or the directory whose tokenizer files a checkpoint copies. */
  tokenizerSource: 'byte' | string;
}

/** The tokenizer of a model directory: its tokenizer.json, or the byte tokenizer when it has none. */
function tokenizerOf(dir: string): { tokenizer: Tokenizer; source: 'byte' | string } {
  if (!existsSync(join(dir, 'tokenizer.json'))) return { tokenizer: new ByteTokenizer(), source: 'byte' };
  return { tokenizer: Tokenizer.fromFile(dir), source: dir };
}

/** Loads `dir` (a model directory) or builds the preset, converted to `dtype` when given. */
export function loadModel(flag: string, dir: string | null, config: FinetuneConfig): LoadedModel {
  let loaded: LoadedModel;
  if (dir === null) {
    const tokenizer = new ByteTokenizer();
    const model = new LlamaForCausalLM({ ...PRESETS[config.preset], vocabSize: tokenizer.vocabSize, seed: config.seed });
    model.generationConfig = { ...model.generationConfig, bosTokenId: tokenizer.bosId, eosTokenId: tokenizer.eosId, padTokenId: tokenizer.padId };
    loaded = { model, tokenizer, tokenizerSource: 'byte' };
  } else {
    if (!existsSync(dir)) throw new UsageError(`${flag}: no such directory '${dir}'`);
    if (!statSync(dir).isDirectory()) throw new UsageError(`${flag}: '${dir}' is not a directory`);
    const { tokenizer, source } = tokenizerOf(dir);
    const model = LlamaForCausalLM.fromPretrained(dir);
    loaded = { model, tokenizer, tokenizerSource: source };
  }
  const vocab = loaded.model.config.vocabSize;
  if (loaded.tokenizer.vocabSize > vocab) {
    throw new UsageError(`${flag}: the tokenizer has ${loaded.tokenizer.vocabSize} tokens but the model's vocabulary is ${vocab}; they must belong together`);
  }
  if (config.dtype !== null && loaded.model.config.dtype !== config.dtype) loaded.model.to(config.dtype);
  if (config.gradientCheckpointing) loaded.model.gradientCheckpointingEnable();
  loaded.model.train();
  return loaded;
}

/** The method the loop drives: zeroGrad, backward of each micro-batch, step. */
export interface TrainingMethod {
  /** zeroGrad, and float32 zero gradients on what is trained when micro-batches sum in float32. */
  zeroGrad(): void;
  backward(loss: Tensor): void;
  /**
   * Unscales and clips (when asked), steps the optimizer (unless the loss scaler found an
   * overflow) and the schedule; returns the lr the step used, and whether it was skipped.
   */
  step(): { lr: number; skipped: boolean };
  /** The loss scaler's scale (float16 models), else null. */
  lossScale(): number | null;
  /** BAdam's active block (block mode), else null. */
  activeBlock(): number | null;
  /** The adapters (LoRA only): a checkpoint saves them apart from the base weights. */
  lora: LoraHandle | null;
  /** The optimizer's, the schedule's and the loss scaler's state. */
  stateDict(): MethodState;
  loadStateDict(sd: MethodState): void;
  release(): void;
}

export interface MethodState {
  optimizer: unknown;
  scheduler: unknown;
  scaler?: unknown;
}

/** What every optimizer here has in common, as the loop uses it. */
interface Stepper {
  paramGroups: { lr: number; params: Tensor[] }[];
  zeroGrad(): void;
  step(): unknown;
  stateDict(): unknown;
  loadStateDict(sd: never): void;
  /** Frees the optimizer's state now (BlockOptimizer, MixedPrecisionOptimizer, ratio, LOMO) ... */
  release?(): void;
  /** ... or resetState (Adam). */
  resetState?(): void;
}

function scheduleFor(config: FinetuneConfig, opt: { paramGroups: { lr: number }[] }, totalSteps: number): LRScheduler {
  const warmup = Math.min(config.warmupSteps, totalSteps);
  if (config.lrScheduler === 'linear') return linearWarmupLinearDecay(opt, warmup, totalSteps);
  if (config.lrScheduler === 'cosine') return linearWarmupCosineDecay(opt, warmup, totalSteps);
  return new LambdaLR(opt, (step) => (step < warmup ? step / warmup : 1));
}

/**
 * Builds the method for `model`. `onSwitch` receives BAdam's block switches (block mode).
 * Float32 accumulation: with more than one micro-batch per step on a float16/bfloat16 model, the
 * trained parameters get float32 zero gradients before the first micro-batch, so their sum is
 * kept in float32 (the engine adds into a gradient in that gradient's dtype); LOMO updates inside
 * backward and takes no micro-batches, and LoRA's adapters are float32 already.
 *
 * Loss scaling: a float16 model (not bfloat16, whose range is float32's) scales its loss with a
 * GradScaler unless --loss-scaling off; LOMO takes it as its lossScaler. Ratio mode keeps its own
 * masked gradients and runs without one.
 */
export function createMethod(config: FinetuneConfig, model: LlamaForCausalLM, totalSteps: number, onSwitch: (e: BlockSwitchEvent) => void): TrainingMethod {
  const half = isHalf(model.config.dtype);
  const scaled = model.config.dtype === 'float16' && config.lossScaling === 'dynamic' && !(config.optimizer === 'badam' && config.badamMode === 'ratio');
  const scaler = scaled ? new GradScaler() : null;
  const adam = (params: Tensor[]) =>
    config.optimizer === 'adamw' || config.optimizer === 'badam'
      ? new AdamW(params, { lr: config.lr, weightDecay: config.weightDecay })
      : new Adam(params, { lr: config.lr, weightDecay: config.weightDecay });
  let opt: Stepper;
  let trained: () => Tensor[];
  let lora: LoraHandle | null = null;
  let activeBlock: () => number | null = () => null;
  let backward = (loss: Tensor) => loss.backward();
  let sumInFloat32 = half && config.gradAccum > 1;

  if (config.optimizer === 'badam' && config.badamMode === 'block') {
    const block = new BlockOptimizer(model, adam(model.parameters()), {
      switchEvery: config.switchEvery,
      switchMode: config.switchMode,
      ...(config.startBlock !== null ? { startBlock: config.startBlock } : {}),
      includeEmbedding: config.includeEmbedding,
      includeLmHead: config.includeLmHead,
      seed: config.seed,
      verbose: 0,
      log: onSwitch,
    });
    opt = block as unknown as Stepper;
    trained = () => block.trainableParameters().map(([, p]) => p);
    activeBlock = () => block.currentBlock;
  } else if (config.optimizer === 'badam') {
    if (config.maxGradNorm !== null) throw new UsageError('--max-grad-norm is not supported with --badam-mode ratio yet: ratio mode keeps only the selected entries of each gradient');
    const ratio = new BlockOptimizerRatio(model, {
      lr: config.lr,
      weightDecay: config.weightDecay,
      updateRatio: config.updateRatio,
      maskMode: config.maskMode,
      switchEvery: config.switchEvery,
      includeEmbedding: config.includeEmbedding,
      includeLmHead: config.includeLmHead,
      seed: config.seed,
      verbose: 0,
    });
    opt = ratio as unknown as Stepper;
    trained = () => model.parameters().filter((p) => p.requiresGrad);
    sumInFloat32 = false; // ratio mode keeps only the masked part of each gradient (its hooks), in the model's dtype
  } else if (config.optimizer === 'adam' || config.optimizer === 'adamw') {
    const base = adam(model.parameters());
    opt = (half ? new MixedPrecisionOptimizer(base) : base) as unknown as Stepper;
    trained = () => model.parameters();
  } else if (config.optimizer === 'lora') {
    lora = applyLora(model, { targetModules: config.loraTargets, r: config.loraR, alpha: config.loraAlpha, seed: config.seed });
    const adapters = lora.namedParameters().map(([, p]) => p);
    opt = adam(adapters) as unknown as Stepper;
    trained = () => adapters;
    sumInFloat32 = false;
  } else {
    if (config.gradAccum > 1) throw new UsageError('--optimizer lomo updates the weights inside backward, so it cannot accumulate micro-batches: use --grad-accum 1');
    const lomo = new LOMO(model, {
      lr: config.lr,
      weightDecay: config.weightDecay,
      ...(config.maxGradNorm !== null ? { clipGradNorm: config.maxGradNorm } : {}),
      ...(scaler ? { lossScaler: scaler } : {}),
    });
    opt = {
      paramGroups: lomo.paramGroups,
      zeroGrad: () => lomo.zeroGrad(),
      step: () => undefined, // the update happened in fusedBackward
      stateDict: () => lomo.stateDict(),
      loadStateDict: (sd: never) => lomo.loadStateDict(sd),
      release: () => lomo.dispose(),
    };
    backward = (loss) => lomo.fusedBackward(loss); // scales with its lossScaler itself
    trained = () => [];
    sumInFloat32 = false;
  }

  const scheduler = scheduleFor(config, opt, totalSteps);
  const clip = config.maxGradNorm !== null && config.optimizer !== 'lomo' ? config.maxGradNorm : null;
  return {
    zeroGrad() {
      opt.zeroGrad();
      if (sumInFloat32) for (const p of trained()) p.grad = zeros(p.shape, { dtype: 'float32' });
    },
    backward: scaler && config.optimizer !== 'lomo' ? (loss) => scaler.scale(loss).backward() : backward,
    step() {
      const lr = opt.paramGroups[0].lr;
      let skipped = false;
      if (scaler && config.optimizer === 'lomo') {
        skipped = scaler.foundInf() === true; // fusedBackward already updated, or skipped
        scaler.update();
      } else if (scaler) {
        scaler.unscale_(opt);
        if (clip !== null) clipGradNorm(trained(), clip);
        skipped = !scaler.step(opt);
        scaler.update();
      } else {
        if (clip !== null) clipGradNorm(trained(), clip);
        opt.step();
      }
      scheduler.step(); // every step, skipped or not, as PyTorch's schedulers count them
      return { lr, skipped };
    },
    lossScale: () => (scaler ? scaler.getScale() : null),
    activeBlock,
    lora,
    stateDict: () => ({ optimizer: opt.stateDict(), scheduler: scheduler.stateDict(), ...(scaler ? { scaler: scaler.stateDict() } : {}) }),
    loadStateDict(sd) {
      opt.loadStateDict(sd.optimizer as never);
      scheduler.loadStateDict(sd.scheduler as never);
      if (scaler) scaler.loadStateDict(sd.scaler as never);
      // the lr the next step uses is the schedule's: write it, whatever the optimizer's state dict held
      scheduler.getLastLr().forEach((lr, i) => (opt.paramGroups[i].lr = lr));
    },
    release() {
      if (opt.release) opt.release();
      else opt.resetState?.();
      model.zeroGrad();
    },
  };
}
