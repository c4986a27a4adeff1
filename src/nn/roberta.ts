/**
 * RoBERTa for sequence classification, with Hugging Face's module tree and parameter names
 * (`roberta.encoder.layer.3.attention.self.query.weight`), so a checkpoint's state dict loads
 * unchanged and BAdam can partition the model by `roberta.encoder.layer.{i}.`.
 *
 * Semantics follow transformers' RobertaForSequenceClassification (eager attention):
 *  - embeddings: word + absolute position + token type, then LayerNorm and dropout. Position ids
 *    are `cumsum(input != pad) * (input != pad) + pad`: real tokens count from pad + 1, padding
 *    tokens get position `pad`, whose embedding row (like the word embedding's pad row) is a
 *    padding_idx row: zero at init and never updated.
 *  - encoder layers are post-LN: h = LN(x + dropout(dense(attn(x)))), out = LN(h + dropout(dense(act(dense(h))))).
 *  - the attention mask [B, S] (1 real, 0 padding) masks padded *keys*: their scores are set to
 *    the dtype's most negative finite value before the softmax (HF adds that value; the result
 *    is the same, and a row whose keys are all masked gets HF's uniform weights, not NaN).
 *    With no mask every token is attended to, as in HF (the mask is not inferred from padTokenId).
 *  - the head reads the first token (<s>): dropout -> dense -> tanh -> dropout -> out_proj.
 *    There is no pooler, as in HF's RobertaForSequenceClassification.
 *  - the loss follows HF's problem_type: numLabels 1 -> MSE regression; int32 labels ->
 *    cross-entropy; floating labels with numLabels > 1 -> multi-label BCE-with-logits.
 *
 * Initialisation is HF's `_init_weights`: Linear and Embedding weights N(0, initializerRange),
 * padding rows zero, biases 0, LayerNorm weight 1 and bias 0. It draws from a Generator seeded
 * by `config.seed` (the default generator when no seed is given); the same Generator then feeds
 * the dropout masks, so a seeded model trains reproducibly.
 */
import { DTypeError, ShapeError, ValueError, fmtShape } from '../errors';
import { isDType, isFloating, type DType } from '../tensor/dtype';
import { defaultGenerator, Generator } from '../tensor/random';
import { tensor, zeros } from '../tensor/creation';
import type { Tensor } from '../tensor/tensor';
import { noGrad } from '../autograd/grad-mode';
import { abs, add, cast, eq, exp, gelu, log, mul, neg, relu, silu, sub, tanh } from '../autograd/ops/elementwise';
import { matmul } from '../autograd/ops/matmul';
import { maskedFill } from '../autograd/ops/indexing';
import { softmax } from '../autograd/ops/softmax';
import { crossEntropy, mseLoss } from '../autograd/ops/loss';
import { mean } from '../autograd/ops/reduce';
import { copy_ } from '../autograd/ops/inplace';
import { permute, reshape, select, transpose } from '../autograd/ops/shape';
import * as init from './init';
import { Dropout, Embedding, LayerNorm, Linear, ModuleList } from './layers';
import { Module } from './module';

// ------------------------------------------------------------------ config

/** Activations of HF's ACT2FN that RoBERTa checkpoints use ('gelu' is the exact erf form). */
export type RobertaActivation = 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'relu' | 'silu' | 'swish';
export type RobertaProblemType = 'regression' | 'single_label_classification' | 'multi_label_classification';

const ACTIVATIONS: readonly RobertaActivation[] = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'relu', 'silu', 'swish'];
const PROBLEM_TYPES: readonly RobertaProblemType[] = ['regression', 'single_label_classification', 'multi_label_classification'];

/**
 * HF's RobertaConfig in camelCase. The sizes are required; the rest default to roberta-base's
 * values (typeVocabSize 1 and layerNormEps 1e-5, as in its config.json).
 */
export interface RobertaConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  /** Rows of the position table; RoBERTa needs sequence length + padTokenId + 1 of them (514 for 512 tokens). */
  maxPositionEmbeddings: number;
  /** Default 'gelu' (exact). */
  hiddenAct?: RobertaActivation;
  /** Default 0.1. */
  hiddenDropoutProb?: number;
  /** Default 0.1. */
  attentionProbsDropoutProb?: number;
  /** Default 1. */
  typeVocabSize?: number;
  /** Default 0.02. */
  initializerRange?: number;
  /** Default 1e-5. */
  layerNormEps?: number;
  /** Default 1. */
  padTokenId?: number;
  /** Default 2. */
  numLabels?: number;
  /** Dropout of the classification head; null (default) uses hiddenDropoutProb. */
  classifierDropout?: number | null;
  /** Fixes the loss; inferred from numLabels and the labels' dtype when absent (as HF). */
  problemType?: RobertaProblemType;
  /** Seeds initialisation and dropout; absent: the default generator. */
  seed?: number;
  /** Parameter dtype, default float32. */
  dtype?: DType;
}

/** A RobertaConfig with every default filled in and every value checked. */
export interface ResolvedRobertaConfig extends Required<Omit<RobertaConfig, 'problemType' | 'seed' | 'classifierDropout'>> {
  classifierDropout: number | null;
  problemType?: RobertaProblemType;
  seed?: number;
}

/** Fills in defaults and validates; throws a ValueError naming the field and the remedy. */
export function resolveRobertaConfig(config: RobertaConfig): ResolvedRobertaConfig {
  const op = 'RobertaConfig';
  if (config === null || typeof config !== 'object') throw new ValueError(op, 'expected a config object');
  const c: ResolvedRobertaConfig = {
    vocabSize: config.vocabSize,
    hiddenSize: config.hiddenSize,
    numHiddenLayers: config.numHiddenLayers,
    numAttentionHeads: config.numAttentionHeads,
    intermediateSize: config.intermediateSize,
    maxPositionEmbeddings: config.maxPositionEmbeddings,
    hiddenAct: config.hiddenAct ?? 'gelu',
    hiddenDropoutProb: config.hiddenDropoutProb ?? 0.1,
    attentionProbsDropoutProb: config.attentionProbsDropoutProb ?? 0.1,
    typeVocabSize: config.typeVocabSize ?? 1,
    initializerRange: config.initializerRange ?? 0.02,
    layerNormEps: config.layerNormEps ?? 1e-5,
    padTokenId: config.padTokenId ?? 1,
    numLabels: config.numLabels ?? 2,
    classifierDropout: config.classifierDropout ?? null,
    problemType: config.problemType,
    seed: config.seed,
    dtype: config.dtype ?? 'float32',
  };
  const positive = ['vocabSize', 'hiddenSize', 'numHiddenLayers', 'numAttentionHeads', 'intermediateSize', 'maxPositionEmbeddings', 'typeVocabSize', 'numLabels'] as const;
  for (const k of positive) {
    const v = c[k];
    if (!Number.isInteger(v) || v < 1) throw new ValueError(op, `${k} must be a positive integer, got ${String(v)}`);
  }
  if (c.hiddenSize % c.numAttentionHeads !== 0) {
    throw new ValueError(
      op,
      `hiddenSize ${c.hiddenSize} is not a multiple of numAttentionHeads ${c.numAttentionHeads}; each head gets hiddenSize / numAttentionHeads features`,
    );
  }
  const probs = ['hiddenDropoutProb', 'attentionProbsDropoutProb', 'classifierDropout'] as const;
  for (const k of probs) {
    const v = c[k];
    if (v === null) continue;
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new ValueError(op, `${k} must be a probability in [0, 1], got ${String(v)}`);
  }
  if (!ACTIVATIONS.includes(c.hiddenAct)) {
    throw new ValueError(op, `hiddenAct '${String(c.hiddenAct)}' is not supported; use one of ${ACTIVATIONS.join(', ')}`);
  }
  if (typeof c.initializerRange !== 'number' || !(c.initializerRange >= 0) || !Number.isFinite(c.initializerRange)) {
    throw new ValueError(op, `initializerRange must be a finite non-negative number, got ${String(c.initializerRange)}`);
  }
  if (typeof c.layerNormEps !== 'number' || !(c.layerNormEps >= 0) || !Number.isFinite(c.layerNormEps)) {
    throw new ValueError(op, `layerNormEps must be a finite non-negative number, got ${String(c.layerNormEps)}`);
  }
  if (!Number.isInteger(c.padTokenId) || c.padTokenId < 0 || c.padTokenId >= c.vocabSize) {
    throw new ValueError(op, `padTokenId ${String(c.padTokenId)} must be a token id in [0, vocabSize = ${c.vocabSize})`);
  }
  if (c.padTokenId >= c.maxPositionEmbeddings - 1) {
    throw new ValueError(
      op,
      `maxPositionEmbeddings ${c.maxPositionEmbeddings} leaves no position for a token: RoBERTa numbers tokens from ` +
        `padTokenId + 1 = ${c.padTokenId + 1}, so it needs at least padTokenId + 2 = ${c.padTokenId + 2}`,
    );
  }
  if (c.problemType !== undefined && !PROBLEM_TYPES.includes(c.problemType)) {
    throw new ValueError(op, `problemType '${String(c.problemType)}' is not one of ${PROBLEM_TYPES.join(', ')}`);
  }
  if (c.seed !== undefined && !Number.isFinite(c.seed)) throw new ValueError(op, `seed must be a finite number, got ${String(c.seed)}`);
  if (!isDType(c.dtype) || !isFloating(c.dtype)) {
    throw new ValueError(op, `dtype must be float64, float32 or float16, got ${String(c.dtype)}`);
  }
  return c;
}

/** HF RobertaConfig's class defaults, for keys a config.json leaves out. */
const HF_DEFAULTS = {
  vocab_size: 50265,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  hidden_act: 'gelu',
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  initializer_range: 0.02,
  layer_norm_eps: 1e-12,
  pad_token_id: 1,
} as const;

/**
 * A RobertaConfig from a Hugging Face config.json (the parsed object or its text). Keys the
 * JSON leaves out take HF RobertaConfig's class defaults, as transformers would read the same
 * file (note that those differ from this interface's defaults: type_vocab_size 2, layer_norm_eps
 * 1e-12). numLabels comes from num_labels, else from id2label, else 2. torch_dtype is ignored
 * (like from_pretrained without torch_dtype, the model is built in `overrides.dtype`, default
 * float32). `overrides` (seed, dtype, numLabels, ...) win over the file.
 */
export function robertaConfigFromHF(json: string | Record<string, unknown>, overrides: Partial<RobertaConfig> = {}): ResolvedRobertaConfig {
  const op = 'robertaConfigFromHF';
  let obj: Record<string, unknown>;
  if (typeof json === 'string') {
    try {
      obj = JSON.parse(json) as Record<string, unknown>;
    } catch (e) {
      throw new ValueError(op, `the text is not valid JSON (${(e as Error).message})`);
    }
  } else {
    obj = json;
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new ValueError(op, 'expected a JSON object (the contents of config.json)');
  const modelType = obj.model_type;
  if (modelType !== undefined && modelType !== 'roberta' && modelType !== 'xlm-roberta') {
    throw new ValueError(op, `model_type is '${String(modelType)}', not 'roberta'; this builder reads RoBERTa configs only`);
  }
  const pet = obj.position_embedding_type;
  if (pet !== undefined && pet !== null && pet !== 'absolute') {
    throw new ValueError(op, `position_embedding_type '${String(pet)}' is not supported; only 'absolute' is implemented`);
  }
  const num = (key: keyof typeof HF_DEFAULTS): number => {
    const v = obj[key] ?? HF_DEFAULTS[key];
    if (typeof v !== 'number') throw new ValueError(op, `${key} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const act = obj.hidden_act ?? HF_DEFAULTS.hidden_act;
  if (typeof act !== 'string') throw new ValueError(op, `hidden_act must be a string, got ${JSON.stringify(act)}`);
  let numLabels = 2;
  if (obj.num_labels !== undefined) {
    if (typeof obj.num_labels !== 'number') throw new ValueError(op, `num_labels must be a number, got ${JSON.stringify(obj.num_labels)}`);
    numLabels = obj.num_labels;
  } else if (obj.id2label !== undefined && obj.id2label !== null && typeof obj.id2label === 'object') {
    numLabels = Object.keys(obj.id2label).length;
  }
  const cd = obj.classifier_dropout;
  if (cd !== undefined && cd !== null && typeof cd !== 'number') {
    throw new ValueError(op, `classifier_dropout must be a number or null, got ${JSON.stringify(cd)}`);
  }
  const pt = obj.problem_type;
  if (pt !== undefined && pt !== null && typeof pt !== 'string') throw new ValueError(op, `problem_type must be a string, got ${JSON.stringify(pt)}`);
  return resolveRobertaConfig({
    vocabSize: num('vocab_size'),
    hiddenSize: num('hidden_size'),
    numHiddenLayers: num('num_hidden_layers'),
    numAttentionHeads: num('num_attention_heads'),
    intermediateSize: num('intermediate_size'),
    maxPositionEmbeddings: num('max_position_embeddings'),
    hiddenAct: act as RobertaActivation,
    hiddenDropoutProb: num('hidden_dropout_prob'),
    attentionProbsDropoutProb: num('attention_probs_dropout_prob'),
    typeVocabSize: num('type_vocab_size'),
    initializerRange: num('initializer_range'),
    layerNormEps: num('layer_norm_eps'),
    padTokenId: num('pad_token_id'),
    numLabels,
    classifierDropout: (cd as number | null | undefined) ?? null,
    problemType: (pt ?? undefined) as RobertaProblemType | undefined,
    ...overrides,
  });
}

// ------------------------------------------------------------------ helpers

/** The most negative finite value of a floating dtype (torch.finfo(dtype).min). */
function finfoMin(dtype: DType): number {
  return dtype === 'float64' ? -Number.MAX_VALUE : dtype === 'float16' ? -65504 : -3.4028234663852886e38;
}

function activation(name: RobertaActivation): (x: Tensor) => Tensor {
  switch (name) {
    case 'gelu':
      return (x) => gelu(x);
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return (x) => gelu(x, { approximate: 'tanh' });
    case 'relu':
      return relu;
    case 'silu':
    case 'swish':
      return silu;
  }
}

function checkIds(op: string, t: unknown, what: string): asserts t is Tensor {
  if (t === null || typeof t !== 'object' || !('dtype' in t)) throw new ValueError(op, `${what} must be a Tensor`);
  const x = t as Tensor;
  if (x.dtype !== 'int32') {
    throw new DTypeError(op, `${what} must be an int32 tensor of shape [batch, seq], got ${x.dtype} of shape ${fmtShape(x.shape)}; cast it with .to('int32')`);
  }
}

/**
 * RoBERTa's position ids for int32 ids [B, S] (HF's create_position_ids_from_input_ids):
 * cumsum(ids != pad, dim 1) * (ids != pad) + pad. Real tokens are numbered pad + 1, pad + 2, ...
 * in order (padding in between is skipped); padding tokens get `pad`. Computed on the host,
 * since the ids are already there and nothing here is differentiable.
 */
export function robertaPositionIds(inputIds: Tensor, padTokenId: number): Tensor {
  const op = 'robertaPositionIds';
  checkIds(op, inputIds, 'inputIds');
  if (inputIds.ndim !== 2) throw new ShapeError(op, `inputIds must be [batch, seq], got shape ${fmtShape(inputIds.shape)}`);
  const [b, s] = inputIds.shape;
  const ids = inputIds.toTypedArray() as Int32Array;
  const out = new Int32Array(b * s);
  for (let i = 0; i < b; i++) {
    let count = 0;
    for (let j = 0; j < s; j++) {
      const real = ids[i * s + j] !== padTokenId;
      if (real) count++;
      out[i * s + j] = real ? count + padTokenId : padTokenId;
    }
  }
  return reshape(tensor(out), [b, s]);
}

// ------------------------------------------------------------------ modules

export class RobertaEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly token_type_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(
    readonly config: ResolvedRobertaConfig,
    generator: Generator,
  ) {
    super();
    const { hiddenSize: h, dtype, padTokenId: pad } = config;
    this.word_embeddings = this.registerModule('word_embeddings', new Embedding(config.vocabSize, h, { dtype, generator, paddingIdx: pad }));
    this.position_embeddings = this.registerModule(
      'position_embeddings',
      new Embedding(config.maxPositionEmbeddings, h, { dtype, generator, paddingIdx: pad }),
    );
    this.token_type_embeddings = this.registerModule('token_type_embeddings', new Embedding(config.typeVocabSize, h, { dtype, generator }));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(h, config.layerNormEps, { dtype }));
    this.dropout = this.registerModule('dropout', new Dropout(config.hiddenDropoutProb, generator));
  }

  /** ids, token types and position ids are int32 [B, S], already checked; returns [B, S, hidden]. */
  forward(inputIds: Tensor, tokenTypeIds: Tensor, positionIds: Tensor): Tensor {
    const e = add(add(this.word_embeddings.forward(inputIds), this.token_type_embeddings.forward(tokenTypeIds)), this.position_embeddings.forward(positionIds));
    return this.dropout.forward(this.LayerNorm.forward(e));
  }
}

export class RobertaSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly dropout: Dropout;
  readonly numHeads: number;
  readonly headDim: number;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    const { hiddenSize: h, dtype } = config;
    this.numHeads = config.numAttentionHeads;
    this.headDim = h / this.numHeads;
    this.query = this.registerModule('query', new Linear(h, h, { dtype, generator }));
    this.key = this.registerModule('key', new Linear(h, h, { dtype, generator }));
    this.value = this.registerModule('value', new Linear(h, h, { dtype, generator }));
    this.dropout = this.registerModule('dropout', new Dropout(config.attentionProbsDropoutProb, generator));
  }

  /** x [B, S, hidden]; keyPad [B, 1, 1, S] int32, nonzero at padded keys (or null). */
  forward(x: Tensor, keyPad: Tensor | null): Tensor {
    const [b, s] = x.shape;
    const heads = (t: Tensor) => permute(reshape(t, [b, s, this.numHeads, this.headDim]), [0, 2, 1, 3]); // [B, H, S, D]
    const q = heads(this.query.forward(x));
    const k = heads(this.key.forward(x));
    const v = heads(this.value.forward(x));
    // scores = q·kᵀ / √D, padded keys set to finfo.min so that softmax gives them weight 0
    let scores = mul(matmul(q, transpose(k, -2, -1)), 1 / Math.sqrt(this.headDim));
    if (keyPad) scores = maskedFill(scores, keyPad, finfoMin(scores.dtype));
    const probs = this.dropout.forward(softmax(scores, -1));
    const context = matmul(probs, v); // [B, H, S, D]
    return reshape(permute(context, [0, 2, 1, 3]), [b, s, this.numHeads * this.headDim]);
  }
}

/** dense -> dropout -> LayerNorm(h + residual): HF's RobertaSelfOutput and RobertaOutput. */
class DenseResidualNorm extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(inFeatures: number, config: ResolvedRobertaConfig, generator: Generator) {
    super();
    const { hiddenSize: h, dtype } = config;
    this.dense = this.registerModule('dense', new Linear(inFeatures, h, { dtype, generator }));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(h, config.layerNormEps, { dtype }));
    this.dropout = this.registerModule('dropout', new Dropout(config.hiddenDropoutProb, generator));
  }

  forward(hidden: Tensor, residual: Tensor): Tensor {
    return this.LayerNorm.forward(add(this.dropout.forward(this.dense.forward(hidden)), residual));
  }
}

export class RobertaSelfOutput extends DenseResidualNorm {
  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super(config.hiddenSize, config, generator);
  }
}

export class RobertaOutput extends DenseResidualNorm {
  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super(config.intermediateSize, config, generator);
  }
}

export class RobertaAttention extends Module {
  readonly self: RobertaSelfAttention;
  readonly output: RobertaSelfOutput;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    this.self = this.registerModule('self', new RobertaSelfAttention(config, generator));
    this.output = this.registerModule('output', new RobertaSelfOutput(config, generator));
  }

  forward(x: Tensor, keyPad: Tensor | null): Tensor {
    return this.output.forward(this.self.forward(x, keyPad), x);
  }
}

export class RobertaIntermediate extends Module {
  readonly dense: Linear;
  private readonly act: (x: Tensor) => Tensor;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    this.dense = this.registerModule('dense', new Linear(config.hiddenSize, config.intermediateSize, { dtype: config.dtype, generator }));
    this.act = activation(config.hiddenAct);
  }

  forward(x: Tensor): Tensor {
    return this.act(this.dense.forward(x));
  }
}

export class RobertaLayer extends Module {
  readonly attention: RobertaAttention;
  readonly intermediate: RobertaIntermediate;
  readonly output: RobertaOutput;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    this.attention = this.registerModule('attention', new RobertaAttention(config, generator));
    this.intermediate = this.registerModule('intermediate', new RobertaIntermediate(config, generator));
    this.output = this.registerModule('output', new RobertaOutput(config, generator));
  }

  forward(x: Tensor, keyPad: Tensor | null): Tensor {
    const h = this.attention.forward(x, keyPad);
    return this.output.forward(this.intermediate.forward(h), h);
  }
}

export class RobertaEncoder extends Module {
  readonly layer: ModuleList<RobertaLayer>;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    this.layer = this.registerModule('layer', new ModuleList(Array.from({ length: config.numHiddenLayers }, () => new RobertaLayer(config, generator))));
  }

  forward(x: Tensor, keyPad: Tensor | null): Tensor {
    let h = x;
    for (const l of this.layer) h = l.forward(h, keyPad);
    return h;
  }
}

export interface RobertaInputs {
  /** [B, S], 1 (or any nonzero) for real tokens, 0 for padding; default: attend to every token. */
  attentionMask?: Tensor;
  /** int32 [B, S] in [0, typeVocabSize); default zeros. */
  tokenTypeIds?: Tensor;
}

/** Applies HF's _init_weights to every Linear, Embedding and LayerNorm below `root`. */
function initRobertaWeights(root: Module, std: number, generator: Generator): void {
  noGrad(() => {
    for (const m of root.modules()) {
      if (m instanceof Linear) {
        init.normal_(m.weight, 0, std, generator);
        if (m.bias) init.zeros_(m.bias);
      } else if (m instanceof Embedding) {
        init.normal_(m.weight, 0, std, generator);
        if (m.paddingIdx !== undefined) {
          const row = select(m.weight, 0, m.paddingIdx);
          copy_(row, 0);
          row.dispose(); // release the view's hold on the weight storage now
        }
      } else if (m instanceof LayerNorm) {
        if (m.weight) init.ones_(m.weight);
        if (m.bias) init.zeros_(m.bias);
      }
    }
  });
}

/** The generator a model draws from: seeded by config.seed, else the default one. */
function modelGenerator(config: ResolvedRobertaConfig): Generator {
  return config.seed === undefined ? defaultGenerator : new Generator(config.seed);
}

/** HF's RobertaModel without the pooler: embeddings and encoder, returning the last hidden state. */
export class RobertaModel extends Module {
  readonly config: ResolvedRobertaConfig;
  readonly embeddings: RobertaEmbeddings;
  readonly encoder: RobertaEncoder;

  /** `generator` is for a parent model that shares its own; standalone, config.seed decides. */
  constructor(config: RobertaConfig, generator?: Generator) {
    super();
    this.config = resolveRobertaConfig(config);
    const owned = generator === undefined;
    const gen = generator ?? modelGenerator(this.config);
    this.embeddings = this.registerModule('embeddings', new RobertaEmbeddings(this.config, gen));
    this.encoder = this.registerModule('encoder', new RobertaEncoder(this.config, gen));
    if (owned) {
      initRobertaWeights(this, this.config.initializerRange, gen);
      this.nameParameters();
    }
  }

  /** int32 ids [B, S] -> hidden states [B, S, hidden]. Every input is checked before any kernel runs. */
  forward(inputIds: Tensor, inputs: RobertaInputs = {}): Tensor {
    const op = 'RobertaModel.forward';
    const c = this.config;
    checkIds(op, inputIds, 'inputIds');
    if (inputIds.ndim !== 2) {
      throw new ShapeError(op, `inputIds must be [batch, seq], got shape ${fmtShape(inputIds.shape)}; add a batch dim with unsqueeze(ids, 0)`);
    }
    const [b, s] = inputIds.shape;
    const ids = inputIds.toTypedArray() as Int32Array;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= c.vocabSize) {
        throw new ValueError(op, `token id ${ids[i]} at [${Math.floor(i / s)}, ${i % s}] is out of range for vocabSize ${c.vocabSize}; ids must be in [0, ${c.vocabSize})`);
      }
    }
    const positionIds = robertaPositionIds(inputIds, c.padTokenId);
    const positions = positionIds.toTypedArray() as Int32Array;
    let maxPos = 0;
    for (let i = 0; i < positions.length; i++) maxPos = Math.max(maxPos, positions[i]);
    if (maxPos >= c.maxPositionEmbeddings) {
      throw new ValueError(
        op,
        `a row has ${maxPos - c.padTokenId} non-padding tokens, so its last position id is padTokenId + ${maxPos - c.padTokenId} = ${maxPos}, ` +
          `but maxPositionEmbeddings is ${c.maxPositionEmbeddings}: at most ${c.maxPositionEmbeddings - c.padTokenId - 1} tokens fit; truncate the input`,
      );
    }
    let tokenTypeIds = inputs.tokenTypeIds;
    if (tokenTypeIds === undefined) {
      tokenTypeIds = zeros([b, s], { dtype: 'int32' });
    } else {
      checkIds(op, tokenTypeIds, 'tokenTypeIds');
      if (tokenTypeIds.ndim !== 2 || tokenTypeIds.shape[0] !== b || tokenTypeIds.shape[1] !== s) {
        throw new ShapeError(op, `tokenTypeIds has shape ${fmtShape(tokenTypeIds.shape)} but inputIds ${fmtShape(inputIds.shape)}; they must be equal`);
      }
      const tt = tokenTypeIds.toTypedArray() as Int32Array;
      for (let i = 0; i < tt.length; i++) {
        if (tt[i] < 0 || tt[i] >= c.typeVocabSize) {
          throw new ValueError(op, `token type id ${tt[i]} is out of range for typeVocabSize ${c.typeVocabSize}; ids must be in [0, ${c.typeVocabSize})`);
        }
      }
    }
    let keyPad: Tensor | null = null;
    const mask = inputs.attentionMask;
    if (mask !== undefined) {
      if (mask === null || typeof mask !== 'object' || !('shape' in mask)) throw new ValueError(op, 'attentionMask must be a Tensor');
      if (mask.ndim !== 2 || mask.shape[0] !== b || mask.shape[1] !== s) {
        throw new ShapeError(op, `attentionMask has shape ${fmtShape(mask.shape)} but inputIds ${fmtShape(inputIds.shape)}; it must be [batch, seq] (1 real, 0 padding)`);
      }
      keyPad = reshape(eq(mask, 0), [b, 1, 1, s]);
    }
    const h = this.embeddings.forward(inputIds, tokenTypeIds, positionIds);
    return this.encoder.forward(h, keyPad);
  }
}

/** HF's RobertaClassificationHead: first token -> dropout -> dense -> tanh -> dropout -> out_proj. */
export class RobertaClassificationHead extends Module {
  readonly dense: Linear;
  readonly dropout: Dropout;
  readonly out_proj: Linear;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    const { hiddenSize: h, dtype } = config;
    this.dense = this.registerModule('dense', new Linear(h, h, { dtype, generator }));
    this.dropout = this.registerModule('dropout', new Dropout(config.classifierDropout ?? config.hiddenDropoutProb, generator));
    this.out_proj = this.registerModule('out_proj', new Linear(h, config.numLabels, { dtype, generator }));
  }

  /** hidden [B, S, hidden] -> logits [B, numLabels]. */
  forward(hidden: Tensor): Tensor {
    const x = this.dropout.forward(select(hidden, 1, 0));
    return this.out_proj.forward(this.dropout.forward(tanh(this.dense.forward(x))));
  }
}

export interface SequenceClassifierOutput {
  /** [B, numLabels] */
  logits: Tensor;
  /** A 0-d loss, when labels were given. */
  loss?: Tensor;
}

/** Numerically stable mean BCE-with-logits: max(x, 0) − x·y + log(1 + e^(−|x|)). */
function bceWithLogits(x: Tensor, y: Tensor): Tensor {
  return mean(add(sub(relu(x), mul(x, y)), log(add(exp(neg(abs(x))), 1))));
}

/** HF's RobertaForSequenceClassification: `roberta` (no pooler) and `classifier`. */
export class RobertaForSequenceClassification extends Module {
  readonly config: ResolvedRobertaConfig;
  readonly roberta: RobertaModel;
  readonly classifier: RobertaClassificationHead;
  /** Initialisation and dropout masks draw from this (seeded by config.seed). */
  readonly generator: Generator;

  constructor(config: RobertaConfig) {
    super();
    this.config = resolveRobertaConfig(config);
    this.generator = modelGenerator(this.config);
    this.roberta = this.registerModule('roberta', new RobertaModel(this.config, this.generator));
    this.classifier = this.registerModule('classifier', new RobertaClassificationHead(this.config, this.generator));
    initRobertaWeights(this, this.config.initializerRange, this.generator);
    this.nameParameters();
  }

  /**
   * int32 ids [B, S] -> logits [B, numLabels], and the loss when `labels` are given:
   *  - regression (numLabels 1, or problemType): MSE between logits and labels ([B] or [B, 1], cast to the logits' dtype);
   *  - single-label (int32 labels): cross-entropy with int32 class ids [B] (-100 ignored);
   *  - multi-label (floating labels, numLabels > 1): BCE-with-logits against [B, numLabels] targets.
   */
  forward(inputIds: Tensor, inputs: RobertaInputs & { labels?: Tensor } = {}): SequenceClassifierOutput {
    checkIds('RobertaForSequenceClassification.forward', inputIds, 'inputIds');
    const labels = inputs.labels;
    const problem = labels === undefined ? undefined : this.problemType(labels);
    if (labels !== undefined) this.checkLabels(problem as RobertaProblemType, labels, inputIds);
    const logits = this.classifier.forward(this.roberta.forward(inputIds, inputs));
    if (labels === undefined) return { logits };
    const b = logits.shape[0];
    let loss: Tensor;
    if (problem === 'regression') {
      const target = labels.dtype === logits.dtype ? labels : cast(labels, logits.dtype);
      loss = this.config.numLabels === 1 ? mseLoss(reshape(logits, [b]), reshape(target, [b])) : mseLoss(logits, target);
    } else if (problem === 'single_label_classification') {
      loss = crossEntropy(logits, reshape(labels, [b]));
    } else {
      loss = bceWithLogits(logits, labels.dtype === logits.dtype ? labels : cast(labels, logits.dtype));
    }
    return { logits, loss };
  }

  /** HF's inference: numLabels 1 -> regression; integer labels -> single-label; else multi-label. */
  private problemType(labels: Tensor): RobertaProblemType {
    if (this.config.problemType) return this.config.problemType;
    if (this.config.numLabels === 1) return 'regression';
    return labels.dtype === 'int32' ? 'single_label_classification' : 'multi_label_classification';
  }

  private checkLabels(problem: RobertaProblemType, labels: Tensor, inputIds: Tensor): void {
    const op = 'RobertaForSequenceClassification.forward';
    if (labels === null || typeof labels !== 'object' || !('shape' in labels)) throw new ValueError(op, 'labels must be a Tensor');
    const b = inputIds.ndim >= 1 ? inputIds.shape[0] : 0;
    const n = this.config.numLabels;
    if (problem === 'single_label_classification') {
      if (labels.dtype !== 'int32') {
        throw new DTypeError(op, `single-label classification needs int32 class ids, got ${labels.dtype} labels of shape ${fmtShape(labels.shape)}`);
      }
      if (labels.numel !== b || labels.ndim > 2) {
        throw new ShapeError(op, `labels of shape ${fmtShape(labels.shape)} do not fit a batch of ${b}: expected one class id per sequence, shape [${b}]`);
      }
    } else if (problem === 'regression') {
      const ok = n === 1 ? labels.numel === b && labels.ndim <= 2 : labels.ndim === 2 && labels.shape[0] === b && labels.shape[1] === n;
      if (!ok) {
        throw new ShapeError(op, `regression labels of shape ${fmtShape(labels.shape)} do not fit a batch of ${b} with numLabels ${n}: expected ${n === 1 ? `[${b}] or [${b}, 1]` : `[${b}, ${n}]`}`);
      }
    } else {
      if (!isFloating(labels.dtype)) throw new DTypeError(op, `multi-label classification needs floating 0/1 targets, got ${labels.dtype}`);
      if (labels.ndim !== 2 || labels.shape[0] !== b || labels.shape[1] !== n) {
        throw new ShapeError(op, `multi-label targets of shape ${fmtShape(labels.shape)} do not fit logits [${b}, ${n}]; expected [${b}, ${n}]`);
      }
    }
  }
}
