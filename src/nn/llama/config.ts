/**
 * Llama's configuration: Hugging Face's LlamaConfig in camelCase, its defaults and checks
 * (`resolveLlamaConfig`), and the reader of a Hugging Face config.json (`llamaConfigFromHF`).
 */
import { ValueError } from '../../errors';
import { isDType, isFloating, type DType } from '../../tensor/dtype';

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
  /** RoPE frequency scaling for contexts longer than pretraining (default null: plain RoPE). */
  ropeScaling?: RopeScaling | null;
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

/**
 * Hugging Face's rope_scaling in camelCase. `linear` divides every frequency by `factor`
 * (positions read as p / factor). `llama3` (Llama 3.1 and later) keeps the high frequencies,
 * divides the low ones by `factor`, and blends the band between: wavelengths below
 * originalMaxPositionEmbeddings / highFreqFactor are kept, those above
 * originalMaxPositionEmbeddings / lowFreqFactor are divided, and in between the frequency is
 * (1 − s)·f / factor + s·f with s = (originalMaxPositionEmbeddings / wavelength − lowFreqFactor) /
 * (highFreqFactor − lowFreqFactor).
 */
export type RopeScaling =
  | { ropeType: 'linear'; factor: number }
  | { ropeType: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

/** A LlamaConfig with every default filled in. */
export type ResolvedLlamaConfig = Required<LlamaConfig>;

/** A positive integer: the check every size and count gets (also generate's topK). */
export const positiveInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;

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
    ropeScaling: config.ropeScaling === undefined ? null : checkRopeScaling(op, 'ropeScaling', config.ropeScaling),
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
    throw new ValueError(op, `dtype must be float64, float32, float16 or bfloat16, got ${String(out.dtype)}`);
  }
  if (typeof out.seed !== 'number' || !Number.isFinite(out.seed)) throw new ValueError(op, `seed must be a finite number, got ${String(out.seed)}`);
  return out;
}

/** HF config.json keys and the LlamaConfig fields they map to. */
export const HF_KEYS: [string, keyof LlamaConfig, 'number' | 'boolean'][] = [
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
 * a rope_scaling type other than linear and llama3 (yarn, dynamic, longrope), attention_bias /
 * mlp_bias true, a hidden_act other than silu. `overrides` sets blockgrad-only fields (dtype, seed) or replaces any field.
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
  const ropeScaling = ropeScalingFromHF(op, json.rope_scaling);
  if (ropeScaling) config.ropeScaling = ropeScaling;
  for (const key of ['attention_bias', 'mlp_bias']) {
    if (json[key] === true) throw new ValueError(op, `${key}: true is not supported: this Llama has no biases`);
  }
  if (json.hidden_act !== undefined && json.hidden_act !== 'silu') {
    throw new ValueError(op, `hidden_act ${JSON.stringify(json.hidden_act)} is not supported: the MLP uses silu`);
  }
  return resolveLlamaConfig({ ...(config as unknown as LlamaConfig), ...overrides });
}

/** The fields of each rope scaling type, in HF's names and blockgrad's. */
const ROPE_FIELDS = {
  linear: [['factor', 'factor']],
  llama3: [
    ['factor', 'factor'],
    ['low_freq_factor', 'lowFreqFactor'],
    ['high_freq_factor', 'highFreqFactor'],
    ['original_max_position_embeddings', 'originalMaxPositionEmbeddings'],
  ],
} as const;

/** config.json's rope_scaling as a RopeScaling (null for none or "default"); any other type is a ValueError naming it. */
function ropeScalingFromHF(op: string, value: unknown): RopeScaling | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new ValueError(op, `rope_scaling must be an object or null, got ${JSON.stringify(value)}`);
  const hf = value as Record<string, unknown>;
  const type = hf.rope_type ?? hf.type; // transformers wrote "type" before 4.45
  if (type === 'default') return null;
  if (type !== 'linear' && type !== 'llama3') {
    throw new ValueError(op, `rope_scaling type ${JSON.stringify(type)} is not supported: blockgrad implements "linear" and "llama3" (and plain RoPE, rope_scaling null)`);
  }
  const scaling: Record<string, unknown> = { ropeType: type };
  for (const [key, field] of ROPE_FIELDS[type]) scaling[field] = hf[key];
  return checkRopeScaling(op, 'rope_scaling', scaling as RopeScaling, (field) => ROPE_FIELDS[type].find(([, f]) => f === field)?.[0] ?? field);
}

/** Validates a RopeScaling; `name` gives the field's name as the caller wrote it (HF's snake_case from config.json). */
function checkRopeScaling(op: string, where: string, s: RopeScaling | null, name = (field: string) => field): RopeScaling | null {
  if (s === null) return null;
  if (typeof s !== 'object' || (s.ropeType !== 'linear' && s.ropeType !== 'llama3')) {
    throw new ValueError(op, `${where} must be null, { ropeType: 'linear', factor } or { ropeType: 'llama3', factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings }, got ${JSON.stringify(s)}`);
  }
  const numbers = s as unknown as Record<string, unknown>;
  for (const [, field] of ROPE_FIELDS[s.ropeType]) {
    const v = numbers[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0)) throw new ValueError(op, `${where}.${name(field)} must be a finite positive number, got ${JSON.stringify(v)}`);
  }
  if (s.ropeType === 'linear') return { ropeType: 'linear', factor: s.factor };
  if (!(s.highFreqFactor > s.lowFreqFactor)) {
    throw new ValueError(op, `${where}: ${name('highFreqFactor')} (${s.highFreqFactor}) must be above ${name('lowFreqFactor')} (${s.lowFreqFactor}): the blended band lies between them`);
  }
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings } = s;
  return { ropeType: 'llama3', factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings };
}

/** RopeScaling in config.json's form (snake_case, rope_type), or null. */
export function ropeScalingToHF(s: RopeScaling | null): Record<string, unknown> | null {
  if (s === null) return null;
  const fields = s as unknown as Record<string, unknown>;
  return Object.fromEntries([['rope_type', s.ropeType], ...ROPE_FIELDS[s.ropeType].map(([key, field]) => [key, fields[field]])]);
}
