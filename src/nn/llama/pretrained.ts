/**
 * A Llama's Hugging Face model directory (see io/pretrained.ts for the files): its config.json
 * written from a ResolvedLlamaConfig and read back into one, with the dtype the weights are in
 * (`torch_dtype`). LlamaForCausalLM.fromPretrained and savePretrained (causal-lm.ts) use these.
 */
import { ValueError } from '../../errors';
import { CONFIG_FILE, GENERATION_CONFIG_FILE, dtypeFromTorch } from '../../io/pretrained';
import { hasFile, readJsonFile } from '../../io/directory';
import { HF_KEYS, llamaConfigFromHF, ropeScalingToHF, type LlamaConfig, type ResolvedLlamaConfig } from './config';

/**
 * config.json for this config, with Hugging Face's field names: what transformers' LlamaConfig
 * reads (model_type llama, architectures, torch_dtype from the model's dtype, rope_scaling), no
 * biases, silu.
 */
export function llamaConfigToHF(config: ResolvedLlamaConfig): Record<string, unknown> {
  const json: Record<string, unknown> = { architectures: ['LlamaForCausalLM'], model_type: 'llama' };
  const fields = config as unknown as Record<string, unknown>;
  for (const [key, field] of HF_KEYS) json[key] = fields[field];
  Object.assign(json, {
    hidden_act: 'silu',
    rope_scaling: ropeScalingToHF(config.ropeScaling),
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: config.dtype, // blockgrad's dtype names are torch's
  });
  return json;
}

/**
 * The config of the Llama in `dir` (its config.json), with the dtype its torch_dtype names
 * unless `overrides` sets one. A model_type other than llama, or a torch_dtype blockgrad does not know, is a
 * ValueError naming the field.
 */
export function readLlamaConfig(op: string, dir: string, overrides: Partial<LlamaConfig>): ResolvedLlamaConfig {
  const json = readJsonFile(op, dir, CONFIG_FILE);
  if (json.model_type !== undefined && json.model_type !== 'llama') {
    throw new ValueError(op, `${dir}/${CONFIG_FILE}: model_type ${JSON.stringify(json.model_type)} is not a Llama; LlamaForCausalLM loads model_type "llama"`);
  }
  const dtype = dtypeFromTorch(op, dir, json);
  return llamaConfigFromHF(json, { ...(dtype ? { dtype } : {}), ...overrides });
}

/** The token ids generation uses by default (Hugging Face's GenerationConfig, the part blockgrad reads). */
export interface GenerationConfig {
  bosTokenId?: number;
  /** generate() stops a sequence at this token, or at any of these (Llama 3 lists several). */
  eosTokenId?: number | number[];
  padTokenId?: number;
}

const GENERATION_KEYS = [
  ['bos_token_id', 'bosTokenId'],
  ['eos_token_id', 'eosTokenId'],
  ['pad_token_id', 'padTokenId'],
] as const;

/**
 * The directory's generation defaults: generation_config.json's token ids, or, where there is no
 * such file, config.json's (as transformers derives one from the model config). An id that is not
 * an integer in [0, vocabSize), or a list of them for eos_token_id, is a ValueError naming the field.
 */
export function readGenerationConfig(op: string, dir: string, vocabSize: number): GenerationConfig {
  const file = hasFile(op, dir, GENERATION_CONFIG_FILE) ? GENERATION_CONFIG_FILE : CONFIG_FILE;
  const json = readJsonFile(op, dir, file);
  const out: Record<string, number | number[]> = {};
  const isId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < vocabSize;
  for (const [key, field] of GENERATION_KEYS) {
    const v = json[key];
    if (v === undefined || v === null) continue;
    const ok = isId(v) || (key === 'eos_token_id' && Array.isArray(v) && v.length > 0 && v.every(isId));
    if (!ok) throw new ValueError(op, `${dir}/${file}: ${key} must be a token id in [0, ${vocabSize})${key === 'eos_token_id' ? ' or a list of them' : ''}, got ${JSON.stringify(v)}`);
    out[field] = Array.isArray(v) ? [...(v as number[])] : v;
  }
  return out as GenerationConfig;
}

/** generation_config.json for these defaults, in transformers' field names. */
export function generationConfigToHF(config: GenerationConfig): Record<string, unknown> {
  const json: Record<string, unknown> = { _from_model_config: true };
  for (const [key, field] of GENERATION_KEYS) if (config[field] !== undefined) json[key] = config[field];
  return json;
}
