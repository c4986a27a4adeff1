/**
 * A Llama's Hugging Face model directory (see io/pretrained.ts for the files): its config.json
 * written from a ResolvedLlamaConfig and read back into one, with the dtype the weights are in
 * (`torch_dtype`). LlamaForCausalLM.fromPretrained and savePretrained (causal-lm.ts) use these.
 */
import { ValueError } from '../../errors';
import { CONFIG_FILE, dtypeFromTorch } from '../../io/pretrained';
import { readJsonFile } from '../../io/directory';
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
 * unless `overrides` sets one. bfloat16 checkpoints load as float32 (blockgrad has no bfloat16
 * dtype yet). A model_type other than llama, or a torch_dtype blockgrad does not know, is a
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
