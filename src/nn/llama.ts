/**
 * Llama as Hugging Face's `LlamaForCausalLM`: the same module tree, so the same dotted parameter
 * names (`model.layers.3.self_attn.q_proj.weight`), which is what BAdam partitions a model by and
 * what a safetensors checkpoint is keyed by.
 *
 *   LlamaForCausalLM
 *     model: LlamaModel
 *       embed_tokens: Embedding [vocab, hidden]
 *       layers: ModuleList of LlamaDecoderLayer
 *         self_attn: LlamaAttention { q_proj, k_proj, v_proj, o_proj }   (no biases)
 *         mlp: LlamaMLP { gate_proj, up_proj, down_proj }                  (no biases)
 *         input_layernorm, post_attention_layernorm: RMSNorm
 *       norm: RMSNorm
 *     lm_head: Linear [vocab, hidden], no bias (with tieWordEmbeddings: the embedding matrix itself)
 *
 * Everything is composed from the differentiable ops (linear, matmul, softmax, rmsNorm, ...), so
 * the backward pass and its pruning come from them: with only one decoder layer trainable, the
 * layers below it record nothing.
 *
 * Where blockgrad differs from Hugging Face:
 * - the rotary tables are computed in float64 on the host and then cast to the model's dtype
 *   (HF computes them in float32), so float32 models agree with HF to float32 rounding;
 * - attention runs in the eager layout (no SDPA/flash); masked scores are filled with the
 *   dtype's lowest finite value, as HF's eager path does, so a fully masked row gives a uniform
 *   softmax instead of NaN; float16 scores are soft-maxed in float32 and cast back, as HF does;
 * - without `positionIds` positions are past..past+T-1 whatever the attention mask says (as HF's
 *   forward). `generate` with a left-padded `attentionMask` derives positions from the mask's
 *   cumulative sum, as HF's generate does.
 */
import { DTypeError, ShapeError, ValueError, fmtShape } from '../errors';
import { isDType, isFloating, type DType } from '../tensor/dtype';
import { Tensor } from '../tensor/tensor';
import { tensor } from '../tensor/creation';
import { Generator, defaultGenerator } from '../tensor/random';
import { noGrad } from '../autograd/grad-mode';
import { add, cast, mul, neg, silu } from '../autograd/ops/elementwise';
import { linear, matmul } from '../autograd/ops/matmul';
import { maskedFill } from '../autograd/ops/indexing';
import { softmax } from '../autograd/ops/softmax';
import { crossEntropy } from '../autograd/ops/loss';
import { cat, expand, reshape, slice, transpose, unsqueeze } from '../autograd/ops/shape';
import { Module } from './module';
import { Embedding, Linear, ModuleList, RMSNorm } from './layers';
import * as init from './init';

// ------------------------------------------------------------------ config

/** Hugging Face's LlamaConfig in camelCase; the five sizes are required, the rest have HF's defaults. */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** Key/value heads for grouped-query attention (default numAttentionHeads: plain multi-head). */
  numKeyValueHeads?: number;
  /** Per-head size (default hiddenSize / numAttentionHeads). */
  headDim?: number;
  rmsNormEps?: number;
  ropeTheta?: number;
  maxPositionEmbeddings?: number;
  /** lm_head uses the embedding matrix (one tensor, two names). */
  tieWordEmbeddings?: boolean;
  /** Standard deviation of the N(0, σ) initialisation of Linear and Embedding weights. */
  initializerRange?: number;
  /** Parameter dtype at construction (default float32); `model.to(dtype)` converts later. */
  dtype?: DType;
  /** Seed of the Generator that initialises the weights (default 0). */
  seed?: number;
}

/** A LlamaConfig with every default filled in. */
export type ResolvedLlamaConfig = Required<LlamaConfig>;

const positiveInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;

/** Fills in HF's defaults and validates; every error names the field. */
export function resolveLlamaConfig(config: LlamaConfig): ResolvedLlamaConfig {
  const op = 'LlamaConfig';
  if (typeof config !== 'object' || config === null) throw new ValueError(op, `expected a config object, got ${config === null ? 'null' : typeof config}`);
  for (const field of ['vocabSize', 'hiddenSize', 'intermediateSize', 'numHiddenLayers', 'numAttentionHeads'] as const) {
    if (!positiveInt(config[field])) throw new ValueError(op, `${field} must be a positive integer, got ${String(config[field])}`);
  }
  const heads = config.numAttentionHeads;
  const kvHeads = config.numKeyValueHeads ?? heads;
  if (!positiveInt(kvHeads)) throw new ValueError(op, `numKeyValueHeads must be a positive integer, got ${String(kvHeads)}`);
  if (heads % kvHeads !== 0) {
    throw new ValueError(op, `numAttentionHeads (${heads}) must be divisible by numKeyValueHeads (${kvHeads}): each key/value head serves a whole group of query heads`);
  }
  if (config.headDim === undefined && config.hiddenSize % heads !== 0) {
    throw new ValueError(op, `hiddenSize (${config.hiddenSize}) must be divisible by numAttentionHeads (${heads}), or headDim must be given`);
  }
  const headDim = config.headDim ?? config.hiddenSize / heads;
  if (!positiveInt(headDim) || headDim % 2 !== 0) {
    throw new ValueError(op, `headDim must be a positive even integer (rotary embeddings rotate pairs of halves), got ${String(headDim)}`);
  }
  const out: ResolvedLlamaConfig = {
    vocabSize: config.vocabSize,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    numHiddenLayers: config.numHiddenLayers,
    numAttentionHeads: heads,
    numKeyValueHeads: kvHeads,
    headDim,
    rmsNormEps: config.rmsNormEps ?? 1e-6,
    ropeTheta: config.ropeTheta ?? 10000,
    maxPositionEmbeddings: config.maxPositionEmbeddings ?? 2048,
    tieWordEmbeddings: config.tieWordEmbeddings ?? false,
    initializerRange: config.initializerRange ?? 0.02,
    dtype: config.dtype ?? 'float32',
    seed: config.seed ?? 0,
  };
  if (!positiveInt(out.maxPositionEmbeddings)) {
    throw new ValueError(op, `maxPositionEmbeddings must be a positive integer, got ${String(out.maxPositionEmbeddings)}`);
  }
  if (typeof out.rmsNormEps !== 'number' || !(out.rmsNormEps >= 0) || !Number.isFinite(out.rmsNormEps)) {
    throw new ValueError(op, `rmsNormEps must be a finite non-negative number, got ${String(out.rmsNormEps)}`);
  }
  if (typeof out.ropeTheta !== 'number' || !(out.ropeTheta > 0) || !Number.isFinite(out.ropeTheta)) {
    throw new ValueError(op, `ropeTheta must be a finite positive number, got ${String(out.ropeTheta)}`);
  }
  if (typeof out.initializerRange !== 'number' || !(out.initializerRange >= 0) || !Number.isFinite(out.initializerRange)) {
    throw new ValueError(op, `initializerRange must be a finite non-negative number, got ${String(out.initializerRange)}`);
  }
  if (typeof out.tieWordEmbeddings !== 'boolean') {
    throw new ValueError(op, `tieWordEmbeddings must be a boolean, got ${String(out.tieWordEmbeddings)}`);
  }
  if (!isDType(out.dtype) || !isFloating(out.dtype)) {
    throw new ValueError(op, `dtype must be float64, float32 or float16, got ${String(out.dtype)}`);
  }
  if (typeof out.seed !== 'number' || !Number.isFinite(out.seed)) throw new ValueError(op, `seed must be a finite number, got ${String(out.seed)}`);
  return out;
}

/** HF config.json keys and the LlamaConfig fields they map to. */
const HF_KEYS: [string, keyof LlamaConfig, 'number' | 'boolean'][] = [
  ['vocab_size', 'vocabSize', 'number'],
  ['hidden_size', 'hiddenSize', 'number'],
  ['intermediate_size', 'intermediateSize', 'number'],
  ['num_hidden_layers', 'numHiddenLayers', 'number'],
  ['num_attention_heads', 'numAttentionHeads', 'number'],
  ['num_key_value_heads', 'numKeyValueHeads', 'number'],
  ['head_dim', 'headDim', 'number'],
  ['rms_norm_eps', 'rmsNormEps', 'number'],
  ['rope_theta', 'ropeTheta', 'number'],
  ['max_position_embeddings', 'maxPositionEmbeddings', 'number'],
  ['tie_word_embeddings', 'tieWordEmbeddings', 'boolean'],
  ['initializer_range', 'initializerRange', 'number'],
];

/**
 * A LlamaConfig from a Hugging Face config.json object (snake_case). Unknown keys are ignored;
 * null values mean "default" (as HF's num_key_value_heads: null). Keys that would change the
 * computation in a way this model does not implement are refused rather than silently ignored:
 * rope_scaling (Llama 3.1's scaled RoPE), attention_bias / mlp_bias true, a hidden_act other
 * than silu. `overrides` sets blockgrad-only fields (dtype, seed) or replaces any field.
 */
export function llamaConfigFromHF(json: Record<string, unknown>, overrides: Partial<LlamaConfig> = {}): ResolvedLlamaConfig {
  const op = 'llamaConfigFromHF';
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ValueError(op, `expected a parsed config.json object, got ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`);
  }
  const config: Record<string, unknown> = {};
  for (const [key, field, type] of HF_KEYS) {
    const value = json[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== type) throw new ValueError(op, `${key} must be a ${type}, got ${JSON.stringify(value)}`);
    config[field] = value;
  }
  if (json.rope_scaling !== undefined && json.rope_scaling !== null) {
    throw new ValueError(op, `rope_scaling ${JSON.stringify(json.rope_scaling)} is not supported: only plain RoPE (rope_scaling null) is implemented`);
  }
  for (const key of ['attention_bias', 'mlp_bias']) {
    if (json[key] === true) throw new ValueError(op, `${key}: true is not supported: this Llama has no biases`);
  }
  if (json.hidden_act !== undefined && json.hidden_act !== 'silu') {
    throw new ValueError(op, `hidden_act ${JSON.stringify(json.hidden_act)} is not supported: the MLP uses silu`);
  }
  return resolveLlamaConfig({ ...(config as unknown as LlamaConfig), ...overrides });
}

// ------------------------------------------------------------------ rotary embeddings and attention helpers

/** cos and sin tables for rotary embeddings. */
export interface RotaryTables {
  /** [T, D] shared by the batch, or [B, 1, T, D] per sequence; broadcasts against [B, H, T, D]. */
  cos: Tensor;
  sin: Tensor;
}

/**
 * cos(p·invFreq) and sin(p·invFreq) for each position p, in HF's rotate_half layout:
 * invFreq[j] = θ^(−2j/D) for j < D/2, and the D/2 angles are repeated (cat(freqs, freqs)), so
 * column j and column j + D/2 rotate together. `shape` is the tables' shape without the trailing
 * D ([T] or [B, 1, T]). Computed in float64, returned in `dtype`.
 */
export function rotaryTables(positions: ArrayLike<number>, headDim: number, theta: number, dtype: DType, shape: readonly number[] = [positions.length]): RotaryTables {
  const half = headDim / 2;
  const invFreq = Array.from({ length: half }, (_, j) => 1 / Math.pow(theta, (2 * j) / headDim));
  const cos = new Float64Array(positions.length * headDim);
  const sin = new Float64Array(positions.length * headDim);
  for (let p = 0; p < positions.length; p++) {
    for (let j = 0; j < half; j++) {
      const angle = positions[p] * invFreq[j];
      cos[p * headDim + j] = cos[p * headDim + j + half] = Math.cos(angle);
      sin[p * headDim + j] = sin[p * headDim + j + half] = Math.sin(angle);
    }
  }
  const table = (v: Float64Array) => reshape(tensor(v, { dtype }), [...shape, headDim]);
  return { cos: table(cos), sin: table(sin) };
}

/** HF's rotate_half: cat(−x[..., D/2:], x[..., :D/2]) along the last dim. */
export function rotateHalf(x: Tensor): Tensor {
  const half = x.shape[x.ndim - 1] / 2;
  return cat([neg(slice(x, -1, half)), slice(x, -1, 0, half)], -1);
}

/** x·cos + rotate_half(x)·sin: rotates each pair (x_j, x_{j+D/2}) by its position's angle. */
export function applyRotary(x: Tensor, rope: RotaryTables): Tensor {
  return add(mul(x, rope.cos), mul(rotateHalf(x), rope.sin));
}

/**
 * HF's repeat_kv: [B, Hkv, S, D] -> [B, Hkv·groups, S, D], each key/value head repeated
 * `groups` times in place, so query head h reads key/value head ⌊h / groups⌋.
 */
export function repeatKv(x: Tensor, groups: number): Tensor {
  if (groups === 1) return x;
  const [b, hkv, s, d] = x.shape;
  return reshape(expand(unsqueeze(x, 2), [b, hkv, groups, s, d]), [b, hkv * groups, s, d]);
}

/** The most negative finite value of a floating dtype (torch.finfo(dtype).min). */
function lowest(dtype: DType): number {
  return dtype === 'float16' ? -65504 : dtype === 'float32' ? -3.4028234663852886e38 : -Number.MAX_VALUE;
}

// ------------------------------------------------------------------ key/value cache

/** One layer's cached keys and values, [B, numKeyValueHeads, S, headDim], after RoPE, detached. */
export interface LayerKV {
  key: Tensor;
  value: Tensor;
}

/**
 * The keys and values of every decoder layer for the S positions seen so far. Forward never
 * modifies a cache it is given: it returns a new one holding S + T positions, so a prefix cache
 * can be reused for several continuations.
 */
export class KVCache {
  constructor(readonly layers: readonly LayerKV[]) {}

  /** Number of cached positions S (0 for an empty cache). */
  get length(): number {
    return this.layers.length === 0 ? 0 : this.layers[0].key.shape[2];
  }

  /** Releases the cached tensors' storage now instead of at garbage collection. */
  dispose(): void {
    for (const { key, value } of this.layers) {
      key.dispose();
      value.dispose();
    }
  }
}

// ------------------------------------------------------------------ modules

interface LayerOptions {
  dtype: DType;
  generator: Generator;
}

export class LlamaAttention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly oProj: Linear;
  readonly numHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;

  constructor(config: ResolvedLlamaConfig, options: LayerOptions) {
    super();
    const { hiddenSize, numAttentionHeads, numKeyValueHeads, headDim } = config;
    this.numHeads = numAttentionHeads;
    this.numKeyValueHeads = numKeyValueHeads;
    this.headDim = headDim;
    const lin = (i: number, o: number) => new Linear(i, o, { bias: false, ...options });
    this.qProj = this.registerModule('q_proj', lin(hiddenSize, numAttentionHeads * headDim));
    this.kProj = this.registerModule('k_proj', lin(hiddenSize, numKeyValueHeads * headDim));
    this.vProj = this.registerModule('v_proj', lin(hiddenSize, numKeyValueHeads * headDim));
    this.oProj = this.registerModule('o_proj', lin(numAttentionHeads * headDim, hiddenSize));
  }

  /**
   * x [B, T, hidden] -> [B, T, hidden]. `mask` (int32, nonzero = hidden) broadcasts against the
   * scores [B, H, T, S] with S = past + T. Returns the full keys and values (past included).
   */
  forward(x: Tensor, rope: RotaryTables, mask: Tensor | null, past: LayerKV | null): { output: Tensor; key: Tensor; value: Tensor } {
    const [b, t] = x.shape;
    const { numHeads: h, numKeyValueHeads: hkv, headDim: d } = this;
    // [B, T, H·D] -> [B, T, H, D] -> [B, H, T, D]
    const heads = (y: Tensor, n: number) => transpose(reshape(y, [b, t, n, d]), 1, 2);
    const q = applyRotary(heads(this.qProj.forward(x), h), rope);
    let key = applyRotary(heads(this.kProj.forward(x), hkv), rope);
    let value = heads(this.vProj.forward(x), hkv);
    if (past) {
      key = cat([past.key, key], 2);
      value = cat([past.value, value], 2);
    }
    const groups = h / hkv;
    // scores = q kᵀ / √D: [B, H, T, S]
    let scores = mul(matmul(q, transpose(repeatKv(key, groups), -2, -1)), 1 / Math.sqrt(d));
    if (mask) scores = maskedFill(scores, mask, lowest(scores.dtype));
    // float16 scores are soft-maxed in float32 and cast back (HF: softmax(..., dtype=float32).to(q.dtype))
    const probs = scores.dtype === 'float16' ? cast(softmax(cast(scores, 'float32'), -1), 'float16') : softmax(scores, -1);
    // [B, H, T, D] -> [B, T, H, D] -> [B, T, H·D]
    const context = reshape(transpose(matmul(probs, repeatKv(value, groups)), 1, 2), [b, t, h * d]);
    return { output: this.oProj.forward(context), key, value };
  }
}

/** down_proj(silu(gate_proj(x)) · up_proj(x)). */
export class LlamaMLP extends Module {
  readonly gateProj: Linear;
  readonly upProj: Linear;
  readonly downProj: Linear;

  constructor(config: ResolvedLlamaConfig, options: LayerOptions) {
    super();
    const { hiddenSize, intermediateSize } = config;
    this.gateProj = this.registerModule('gate_proj', new Linear(hiddenSize, intermediateSize, { bias: false, ...options }));
    this.upProj = this.registerModule('up_proj', new Linear(hiddenSize, intermediateSize, { bias: false, ...options }));
    this.downProj = this.registerModule('down_proj', new Linear(intermediateSize, hiddenSize, { bias: false, ...options }));
  }

  forward(x: Tensor): Tensor {
    return this.downProj.forward(mul(silu(this.gateProj.forward(x)), this.upProj.forward(x)));
  }
}

/** Pre-norm residual block: h = x + attn(norm(x)); out = h + mlp(norm(h)). */
export class LlamaDecoderLayer extends Module {
  readonly selfAttn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly inputLayernorm: RMSNorm;
  readonly postAttentionLayernorm: RMSNorm;

  constructor(config: ResolvedLlamaConfig, options: LayerOptions) {
    super();
    this.selfAttn = this.registerModule('self_attn', new LlamaAttention(config, options));
    this.mlp = this.registerModule('mlp', new LlamaMLP(config, options));
    this.inputLayernorm = this.registerModule('input_layernorm', new RMSNorm(config.hiddenSize, config.rmsNormEps, options));
    this.postAttentionLayernorm = this.registerModule('post_attention_layernorm', new RMSNorm(config.hiddenSize, config.rmsNormEps, options));
  }

  forward(x: Tensor, rope: RotaryTables, mask: Tensor | null, past: LayerKV | null): { output: Tensor; key: Tensor; value: Tensor } {
    const attn = this.selfAttn.forward(this.inputLayernorm.forward(x), rope, mask, past);
    const h = add(x, attn.output);
    const output = add(h, this.mlp.forward(this.postAttentionLayernorm.forward(h)));
    return { output, key: attn.key, value: attn.value };
  }
}

export interface LlamaModelOptions {
  /** [B, S] with S = cache length + T: 1 for real tokens, 0 for padding (masked as keys). */
  attentionMask?: Tensor;
  /** int32 [B, T] rotary positions; default cache length .. cache length + T − 1 for every row. */
  positionIds?: Tensor;
  /** Keys and values of earlier positions (from a previous forward with useCache). */
  pastKeyValues?: KVCache;
  /** Return the keys and values of all S + T positions (default: true when pastKeyValues is given). */
  useCache?: boolean;
}

/** The decoder stack without the language-model head: ids [B, T] -> hidden states [B, T, hidden]. */
export class LlamaModel extends Module {
  readonly embedTokens: Embedding;
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;

  constructor(
    readonly config: ResolvedLlamaConfig,
    options: LayerOptions,
  ) {
    super();
    this.embedTokens = this.registerModule('embed_tokens', new Embedding(config.vocabSize, config.hiddenSize, options));
    this.layers = this.registerModule(
      'layers',
      new ModuleList(Array.from({ length: config.numHiddenLayers }, () => new LlamaDecoderLayer(config, options))),
    );
    this.norm = this.registerModule('norm', new RMSNorm(config.hiddenSize, config.rmsNormEps, options));
  }

  forward(inputIds: Tensor, options: LlamaModelOptions = {}): { lastHiddenState: Tensor; pastKeyValues?: KVCache } {
    const op = 'LlamaModel.forward';
    const cfg = this.config;
    checkInputIds(op, inputIds, cfg.vocabSize);
    const [b, t] = inputIds.shape;
    const past = options.pastKeyValues ?? null;
    const pastLen = past ? checkCache(op, past, cfg, b) : 0;
    const total = pastLen + t;
    if (total > cfg.maxPositionEmbeddings) {
      throw new ValueError(
        op,
        `${t} tokens after ${pastLen} cached positions make ${total} positions, more than maxPositionEmbeddings (${cfg.maxPositionEmbeddings}); shorten the input`,
      );
    }
    const dtype = this.embedTokens.weight.dtype;
    if (past && past.layers.length > 0 && past.layers[0].key.dtype !== dtype) {
      throw new DTypeError(op, `pastKeyValues are ${past.layers[0].key.dtype} but the model computes in ${dtype}; rebuild the cache after model.to()`);
    }
    const rope = this.rotary(op, options.positionIds, b, t, pastLen, dtype);
    const mask = causalMask(op, options.attentionMask, b, t, pastLen);
    const useCache = options.useCache ?? past !== null;

    let h = this.embedTokens.forward(inputIds);
    const cached: LayerKV[] = [];
    let i = 0;
    for (const layer of this.layers) {
      const out = layer.forward(h, rope, mask, past ? past.layers[i] : null);
      if (useCache) cached.push({ key: out.key.detach(), value: out.value.detach() });
      h = out.output;
      i++;
    }
    const lastHiddenState = this.norm.forward(h);
    return useCache ? { lastHiddenState, pastKeyValues: new KVCache(cached) } : { lastHiddenState };
  }

  private rotary(op: string, positionIds: Tensor | undefined, b: number, t: number, pastLen: number, dtype: DType): RotaryTables {
    const { headDim, ropeTheta } = this.config;
    if (positionIds === undefined) {
      return rotaryTables(Array.from({ length: t }, (_, i) => pastLen + i), headDim, ropeTheta, dtype);
    }
    if (!(positionIds instanceof Tensor) || positionIds.dtype !== 'int32' || positionIds.ndim !== 2 || positionIds.shape[0] !== b || positionIds.shape[1] !== t) {
      const got = positionIds instanceof Tensor ? `${positionIds.dtype} of shape ${fmtShape(positionIds.shape)}` : typeof positionIds;
      throw new ValueError(op, `positionIds must be an int32 tensor of shape [${b},${t}] (the input ids' shape), got ${got}`);
    }
    const positions = positionIds.toTypedArray() as Int32Array;
    const bad = positions.findIndex((p) => p < 0);
    if (bad >= 0) throw new ValueError(op, `positionIds must be non-negative, got ${positions[bad]} at flat index ${bad}`);
    return rotaryTables(positions, headDim, ropeTheta, dtype, [b, 1, t]);
  }
}

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

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 picks the most likely token (greedy); otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Sample among the k most likely tokens only (ties at the k-th value are kept, as HF). */
  topK?: number;
  /** Seed of a fresh Generator for sampling; without it (and without `generator`) the default generator is used. */
  seed?: number;
  generator?: Generator;
  /** Stop a sequence once it produces this token (or any of these); generation ends when all have. */
  eosTokenId?: number | readonly number[];
  /** Fills finished sequences of a batch (default: the first eosTokenId). */
  padTokenId?: number;
  /** [B, T] for a left-padded batch of prompts: 1 real, 0 padding. */
  attentionMask?: Tensor;
}

/** Llama with the language-model head: ids [B, T] -> logits [B, T, vocab], loss, generation. */
export class LlamaForCausalLM extends Module {
  readonly config: ResolvedLlamaConfig;
  readonly model: LlamaModel;
  readonly lmHead: Linear | TiedLinear;

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
   * maxNewTokens (fewer when every sequence has produced eosTokenId). Train/eval mode is left as
   * it is: call model.eval() first if that matters.
   */
  generate(inputIds: Tensor, options: GenerateOptions): Tensor {
    const op = 'LlamaForCausalLM.generate';
    const cfg = this.config;
    const maxNew = options?.maxNewTokens;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw new ValueError(op, `maxNewTokens must be a non-negative integer, got ${String(maxNew)}`);
    const temperature = options.temperature ?? 1;
    if (typeof temperature !== 'number' || !(temperature >= 0) || !Number.isFinite(temperature)) {
      throw new ValueError(op, `temperature must be a finite number >= 0 (0 is greedy), got ${String(temperature)}`);
    }
    const topK = options.topK;
    if (topK !== undefined && !positiveInt(topK)) throw new ValueError(op, `topK must be a positive integer, got ${String(topK)}`);
    const eos = options.eosTokenId === undefined ? [] : typeof options.eosTokenId === 'number' ? [options.eosTokenId] : [...options.eosTokenId];
    for (const id of eos) {
      if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize) throw new ValueError(op, `eosTokenId ${id} is not a token id in [0, ${cfg.vocabSize})`);
    }
    const pad = options.padTokenId ?? eos[0] ?? 0;
    if (!Number.isInteger(pad) || pad < 0 || pad >= cfg.vocabSize) throw new ValueError(op, `padTokenId ${pad} is not a token id in [0, ${cfg.vocabSize})`);
    checkInputIds(op, inputIds, cfg.vocabSize);
    const [b, t] = inputIds.shape;
    if (t + maxNew > cfg.maxPositionEmbeddings) {
      throw new ValueError(op, `a prompt of ${t} tokens plus maxNewTokens ${maxNew} exceeds maxPositionEmbeddings (${cfg.maxPositionEmbeddings})`);
    }
    let mask: number[][] | null = null;
    if (options.attentionMask !== undefined) {
      const m = options.attentionMask;
      if (!(m instanceof Tensor) || m.ndim !== 2 || m.shape[0] !== b || m.shape[1] !== t) {
        throw new ShapeError(op, `attentionMask must have the prompt's shape [${b},${t}], got ${m instanceof Tensor ? fmtShape(m.shape) : typeof m}`);
      }
      const v = m.toTypedArray();
      mask = Array.from({ length: b }, (_, r) => Array.from({ length: t }, (_, c) => (v[r * t + c] !== 0 ? 1 : 0)));
    }
    const generator = options.generator ?? (options.seed !== undefined ? new Generator(options.seed) : defaultGenerator);

    return noGrad(() => {
      const ids = inputIds.toTypedArray() as Int32Array;
      const rows = Array.from({ length: b }, (_, r) => Array.from(ids.subarray(r * t, (r + 1) * t)));
      // with a padding mask, positions count real tokens only (HF: cumsum(mask) − 1, pads at 1)
      const realCount = mask ? mask.map((r) => r.reduce((s, x) => s + x, 0)) : null;
      const positionsOf = (m: number[][]) => {
        const p = m.map((r) => {
          let c = 0;
          return r.map((x) => (x ? c++ : 1));
        });
        return tensor(Int32Array.from(p.flat()), { dtype: 'int32' });
      };
      const maskTensor = (m: number[][], cols: number) => reshape(tensor(Int32Array.from(m.flat()), { dtype: 'int32' }), [b, cols]);
      const finished = new Array<boolean>(b).fill(false);

      let step = inputIds;
      let cache: KVCache | undefined;
      let fed = 0;
      for (let n = 0; n < maxNew; n++) {
        const stepLen = step.shape[1];
        const out = this.forward(step, {
          pastKeyValues: cache,
          useCache: true,
          logitsToKeep: 1,
          attentionMask: mask ? maskTensor(mask, fed + stepLen) : undefined,
          positionIds: mask
            ? n === 0
              ? reshape(positionsOf(mask), [b, t])
              : reshape(tensor(Int32Array.from((realCount as number[]).map((c) => c - 1)), { dtype: 'int32' }), [b, 1])
            : undefined,
        });
        cache?.dispose();
        cache = out.pastKeyValues;
        fed += stepLen;
        // float16 logits are read through a float32 copy (reading a Float16Array element by element is slow)
        const last = out.logits.dtype === 'float16' ? cast(out.logits, 'float32') : out.logits;
        const logits = last.toTypedArray();
        last.dispose();
        out.logits.dispose();
        const next = rows.map((row, r) => {
          const token = finished[r] ? pad : sampleToken(op, logits.subarray(r * cfg.vocabSize, (r + 1) * cfg.vocabSize), temperature, topK, generator);
          row.push(token);
          if (eos.includes(token)) finished[r] = true;
          return token;
        });
        if (finished.every((f) => f) || n === maxNew - 1) break;
        if (mask) {
          mask.forEach((m) => m.push(1));
          (realCount as number[]).forEach((_, r, a) => a[r]++);
        }
        step = reshape(tensor(Int32Array.from(next), { dtype: 'int32' }), [b, 1]);
      }
      cache?.dispose();
      const len = rows[0].length;
      return reshape(tensor(Int32Array.from(rows.flat()), { dtype: 'int32' }), [b, len]);
    });
  }
}

// ------------------------------------------------------------------ helpers

function checkInputIds(op: string, ids: Tensor, vocabSize: number): void {
  if (!(ids instanceof Tensor)) throw new ValueError(op, `inputIds must be a Tensor, got ${ids === null ? 'null' : typeof ids}`);
  if (ids.dtype !== 'int32') {
    throw new DTypeError(op, `inputIds must be int32 token ids, got ${ids.dtype} of shape ${fmtShape(ids.shape)}; cast with .to('int32')`);
  }
  if (ids.ndim !== 2 || ids.shape[0] === 0 || ids.shape[1] === 0) {
    throw new ShapeError(op, `inputIds must be a non-empty [batch, seq] tensor, got shape ${fmtShape(ids.shape)}${ids.ndim === 1 ? '; add a batch dim with unsqueeze(0)' : ''}`);
  }
  const values = ids.toTypedArray() as Int32Array;
  const t = ids.shape[1];
  for (let i = 0; i < values.length; i++) {
    if (values[i] < 0 || values[i] >= vocabSize) {
      throw new ValueError(op, `token id ${values[i]} at [${Math.floor(i / t)},${i % t}] is out of range for vocabSize ${vocabSize}; ids must be in [0, ${vocabSize})`);
    }
  }
}

/** Validates a cache against the config and batch; returns its length. */
function checkCache(op: string, cache: KVCache, cfg: ResolvedLlamaConfig, batch: number): number {
  if (!(cache instanceof KVCache)) throw new ValueError(op, 'pastKeyValues must be a KVCache returned by an earlier forward with useCache');
  if (cache.layers.length === 0) return 0;
  if (cache.layers.length !== cfg.numHiddenLayers) {
    throw new ValueError(op, `pastKeyValues has ${cache.layers.length} layers but the model has ${cfg.numHiddenLayers}`);
  }
  const s = cache.length;
  const expected = [batch, cfg.numKeyValueHeads, s, cfg.headDim];
  cache.layers.forEach(({ key, value }, i) => {
    for (const [what, x] of [['key', key], ['value', value]] as const) {
      if (x.ndim !== 4 || x.shape.some((d, j) => d !== expected[j])) {
        throw new ShapeError(op, `pastKeyValues layer ${i} ${what} has shape ${fmtShape(x.shape)}, expected ${fmtShape(expected)} [batch, kvHeads, cached, headDim]`);
      }
    }
  });
  return s;
}

/**
 * The attention mask as int32 [B or 1, 1, T, S] (nonzero = hidden), or null when nothing is
 * hidden (one new token and no padding). Query i sits at position pastLen + i and may see keys
 * 0..pastLen + i; keys whose attentionMask entry is 0 are hidden from every query.
 */
function causalMask(op: string, attentionMask: Tensor | undefined, b: number, t: number, pastLen: number): Tensor | null {
  const s = pastLen + t;
  let pad: ArrayLike<number> | null = null;
  if (attentionMask !== undefined) {
    if (!(attentionMask instanceof Tensor) || attentionMask.ndim !== 2 || attentionMask.shape[0] !== b || attentionMask.shape[1] !== s) {
      const got = attentionMask instanceof Tensor ? fmtShape(attentionMask.shape) : typeof attentionMask;
      throw new ShapeError(op, `attentionMask must have shape [${b},${s}] ([batch, cached + new positions]), got ${got}`);
    }
    pad = attentionMask.toTypedArray();
    let any = false;
    for (let i = 0; i < pad.length && !any; i++) any = pad[i] === 0;
    if (!any) pad = null; // all real: the causal part alone
  }
  if (t === 1 && pad === null) return null;
  const rows = pad ? b : 1;
  const m = new Int32Array(rows * t * s);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < t; i++) {
      for (let j = 0; j < s; j++) {
        m[(r * t + i) * s + j] = j > pastLen + i || (pad !== null && pad[r * s + j] === 0) ? 1 : 0;
      }
    }
  }
  return reshape(tensor(m, { dtype: 'int32' }), [rows, 1, t, s]);
}

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
  return crossEntropy(shifted.dtype === 'float16' ? cast(shifted, 'float32') : shifted, targets, { ignoreIndex: -100 });
}

/** One token from a row of logits: argmax at temperature 0, else a draw from softmax(logits / T) over the top k. */
function sampleToken(op: string, logits: ArrayLike<number>, temperature: number, topK: number | undefined, generator: Generator): number {
  const n = logits.length;
  let best = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(logits[i])) throw new ValueError(op, `the logits contain NaN (token ${i}); the model's weights or inputs are not finite`);
    if (logits[i] > logits[best]) best = i;
  }
  if (temperature === 0) return best;
  const scaled = Array.from(logits, (x) => x / temperature);
  let threshold = -Infinity;
  if (topK !== undefined && topK < n) threshold = [...scaled].sort((x, y) => y - x)[topK - 1];
  const top = scaled[best];
  const weights = scaled.map((x) => (x >= threshold ? Math.exp(x - top) : 0));
  const total = weights.reduce((s, w) => s + w, 0);
  let r = generator.random() * total;
  for (let i = 0; i < n; i++) {
    r -= weights[i];
    if (r < 0 && weights[i] > 0) return i;
  }
  // rounding left r at (or just above) 0: the last token with any weight
  for (let i = n - 1; i >= 0; i--) if (weights[i] > 0) return i;
  return best;
}
