/**
 * RoBERTa's configuration: Hugging Face's RobertaConfig in camelCase, its defaults and checks
 * (`resolveRobertaConfig`), and the reader of a Hugging Face config.json (`robertaConfigFromHF`).
 */
import { ValueError } from '../../errors';
import { isDType, isFloating, type DType } from '../../tensor/dtype';

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
    throw new ValueError(op, `dtype must be float64, float32, float16 or bfloat16, got ${String(c.dtype)}`);
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
