/**
 * LlamaForCausalLM, Llama with its language-model head: the logits (optionally for the last few
 * positions only), HF's shifted causal-LM loss, the tied head (TiedLinear) and the entry point
 * of generation (whose loop is in generate.ts).
 */
import { DTypeError, ShapeError, ValueError, fmtShape } from '../../errors';
import { Tensor } from '../../tensor/tensor';
import { Generator } from '../../tensor/random';
import { cast } from '../../autograd/ops/elementwise';
import { linear } from '../../autograd/ops/matmul';
import { crossEntropy } from '../../autograd/ops/loss';
import { reshape, slice } from '../../autograd/ops/shape';
import { Module } from '../module';
import { Embedding, Linear } from '../layers';
import * as init from '../init';
import { resolveLlamaConfig, type LlamaConfig, type ResolvedLlamaConfig } from './config';
import type { KVCache } from './kv-cache';
import type { LayerOptions } from './layers';
import { LlamaModel, type LlamaModelOptions } from './model';
import { generateTokens, type GenerateOptions } from './generate';
import { loadPretrainedInto, savePretrainedModel, type WritePretrainedOptions } from '../../io/pretrained';
import { generationConfigToHF, llamaConfigToHF, readGenerationConfig, readLlamaConfig, type GenerationConfig } from './pretrained';
import { isHalf, type DType } from '../../tensor/dtype';

/**
 * lm_head when tieWordEmbeddings is set: a bias-free linear layer whose weight IS the embedding
 * matrix (one tensor registered under two names, as PyTorch's `lm_head.weight = embed.weight`).
 * It is not a `Linear` because Linear always allocates and registers its own weight, and Module
 * has no way to replace a registered parameter.
 */
export class TiedLinear extends Module {
  readonly bias = null;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(readonly weight: Tensor) {
    super();
    this.registerParameter('weight', weight);
    [this.outFeatures, this.inFeatures] = weight.shape;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight);
  }
}

export interface LlamaForwardOptions extends LlamaModelOptions {
  /** int32 [B, T] targets; the loss compares logits[:, t] with labels[:, t + 1], ignoring −100. */
  labels?: Tensor;
  /** Compute logits for the last n positions only (0, the default: all), as HF's logits_to_keep. */
  logitsToKeep?: number;
}

export interface CausalLMOutput {
  /** [B, T, vocab] (or [B, logitsToKeep, vocab]) in the model's dtype. */
  logits: Tensor;
  /** Mean cross-entropy over the non-ignored shifted labels (0-d, float32 for float16 models). */
  loss?: Tensor;
  pastKeyValues?: KVCache;
}

/** Llama with the language-model head: ids [B, T] -> logits [B, T, vocab], loss, generation. */
export class LlamaForCausalLM extends Module {
  readonly config: ResolvedLlamaConfig;
  readonly model: LlamaModel;
  readonly lmHead: Linear | TiedLinear;
  /**
   * The token ids generate() uses when its options give none (eosTokenId, padTokenId):
   * generation_config.json's for a model from fromPretrained, written back by savePretrained;
   * empty for a model built from a config (generation then runs to maxNewTokens).
   */
  generationConfig: GenerationConfig = {};

  constructor(config: LlamaConfig) {
    super();
    this.config = resolveLlamaConfig(config);
    const cfg = this.config;
    // the layers' own default initialisations draw from a scratch generator (leaving the global
    // one untouched) and are then overwritten by HF's: N(0, initializerRange), norms 1
    const options: LayerOptions = { dtype: cfg.dtype, generator: new Generator(0) };
    this.model = this.registerModule('model', new LlamaModel(cfg, options));
    this.lmHead = this.registerModule(
      'lm_head',
      cfg.tieWordEmbeddings
        ? new TiedLinear(this.model.embedTokens.weight)
        : new Linear(cfg.hiddenSize, cfg.vocabSize, { bias: false, ...options }),
    );
    const generator = new Generator(cfg.seed);
    for (const [, m] of this.namedModules()) {
      if (m instanceof Linear || m instanceof Embedding) init.normal_(m.weight, 0, cfg.initializerRange, generator);
    }
    this.nameParameters();
  }

  /**
   * A Llama from a Hugging Face model directory: config.json (see llamaConfigFromHF for the
   * fields; the dtype is torch_dtype's unless `overrides` sets one) and the weights, one
   * model.safetensors or the shards its index lists. Loads strictly (every parameter, nothing
   * else; a tied model's checkpoint may omit lm_head.weight), converting each tensor to the
   * model's dtype. Synchronous, Node.js only.
   */
  static fromPretrained(dir: string, overrides: Partial<LlamaConfig> = {}): LlamaForCausalLM {
    const op = 'LlamaForCausalLM.fromPretrained';
    const model = loadPretrainedInto(op, dir, () => new LlamaForCausalLM(readLlamaConfig(op, dir, overrides)));
    try {
      model.generationConfig = readGenerationConfig(op, dir, model.config.vocabSize);
    } catch (err) {
      for (const p of model.parameters()) p.dispose();
      for (const [, b] of model.namedBuffers()) b.dispose();
      throw err;
    }
    return model;
  }

  /** Module.to, and the config's dtype with it: savePretrained writes it as torch_dtype, the dtype fromPretrained loads the weights in. */
  override to(dtype: DType): this {
    super.to(dtype);
    Object.assign(this.config, { dtype });
    return this;
  }

  /** Turns gradient checkpointing of the decoder layers on or off (LlamaModel.gradientCheckpointing); returns the model. */
  gradientCheckpointingEnable(on = true): this {
    this.model.gradientCheckpointing = on;
    return this;
  }

  /**
   * Writes this model as a Hugging Face model directory that transformers and fromPretrained
   * read: config.json (torch_dtype is the model's dtype), generation_config.json (the
   * generationConfig token ids), and the
   * weights in the model's dtype as model.safetensors, or as shards of at most
   * `maxShardBytes` (default 5 GB) with model.safetensors.index.json. A tied model omits
   * lm_head.weight, as transformers does. Every file is written atomically.
   */
  savePretrained(dir: string, options: WritePretrainedOptions = {}): Promise<void> {
    const omit = this.config.tieWordEmbeddings ? ['lm_head.weight'] : [];
    return savePretrainedModel('LlamaForCausalLM.savePretrained', dir, this, llamaConfigToHF(this.config), options, omit, generationConfigToHF(this.generationConfig));
  }

  forward(inputIds: Tensor, options: LlamaForwardOptions = {}): CausalLMOutput {
    const op = 'LlamaForCausalLM.forward';
    const keep = options.logitsToKeep ?? 0;
    if (!Number.isInteger(keep) || keep < 0) throw new ValueError(op, `logitsToKeep must be a non-negative integer, got ${keep}`);
    if (options.labels !== undefined) {
      checkLabels(op, options.labels, inputIds);
      if (keep !== 0) throw new ValueError(op, 'labels need the logits of every position; leave logitsToKeep at 0 when computing the loss');
      if (options.labels.shape[1] < 2) {
        throw new ValueError(op, `the causal-LM loss needs at least 2 positions (position t predicts token t + 1), got labels of shape ${fmtShape(options.labels.shape)}`);
      }
    }
    const { lastHiddenState, pastKeyValues } = this.model.forward(inputIds, options);
    const t = lastHiddenState.shape[1];
    const hidden = keep > 0 && keep < t ? slice(lastHiddenState, 1, t - keep) : lastHiddenState;
    const logits = this.lmHead.forward(hidden);
    const out: CausalLMOutput = { logits };
    if (pastKeyValues) out.pastKeyValues = pastKeyValues;
    if (options.labels !== undefined) out.loss = causalLMLoss(logits, options.labels);
    return out;
  }

  /**
   * Autoregressive generation under noGrad: the prompt runs once, then each step feeds only the
   * new token with the key/value cache. Returns int32 [B, T + n] (prompt included), n <=
   * maxNewTokens (fewer when every sequence has produced eosTokenId). eosTokenId and padTokenId
   * default to generationConfig's. Train/eval mode is left as it is: call model.eval() first if
   * that matters.
   */
  generate(inputIds: Tensor, options: GenerateOptions): Tensor {
    const { eosTokenId, padTokenId } = this.generationConfig;
    return generateTokens(this, inputIds, { eosTokenId, padTokenId, ...options });
  }
}

/** Checks that labels are int32 token ids with the input ids' shape. */
function checkLabels(op: string, labels: Tensor, inputIds: Tensor): void {
  if (!(labels instanceof Tensor) || labels.dtype !== 'int32') {
    throw new DTypeError(op, `labels must be an int32 tensor, got ${labels instanceof Tensor ? labels.dtype : typeof labels}`);
  }
  if (inputIds instanceof Tensor && (labels.ndim !== inputIds.ndim || labels.shape.some((d, i) => d !== inputIds.shape[i]))) {
    throw new ShapeError(op, `labels of shape ${fmtShape(labels.shape)} must have the input ids' shape ${fmtShape(inputIds.shape)}`);
  }
}

/**
 * HF's causal-LM loss: position t predicts token t + 1, so logits[:, :-1] are scored against
 * labels[:, 1:] with cross-entropy, ignoring −100, averaged over the tokens not ignored.
 * float16 logits are upcast to float32 first.
 */
function causalLMLoss(logits: Tensor, labels: Tensor): Tensor {
  const [b, t, v] = logits.shape;
  const shifted = reshape(slice(logits, 1, 0, t - 1), [b * (t - 1), v]);
  const targets = reshape(slice(labels, 1, 1), [b * (t - 1)]);
  return crossEntropy(isHalf(shifted.dtype) ? cast(shifted, 'float32') : shifted, targets, { ignoreIndex: -100 });
}
