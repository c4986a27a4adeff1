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
 *
 * The files, one concern each:
 *   config.ts     LlamaConfig, its defaults and checks, and the reader of HF's config.json
 *   rotary.ts     the rotary embedding tables and their application to queries and keys
 *   kv-cache.ts   the key/value cache of incremental decoding
 *   layers.ts     attention (grouped-query, via the shared ../attention.ts), MLP, decoder layer
 *   model.ts      LlamaModel: the decoder stack, its causal/padding mask and input checks
 *   causal-lm.ts  LlamaForCausalLM: the language-model head, the loss, the tied head,
 *                 fromPretrained / savePretrained (Hugging Face model directories)
 *   pretrained.ts config.json written from a config and read back, with torch_dtype
 *   generate.ts   the generation loop and token sampling
 */
export { llamaConfigFromHF, resolveLlamaConfig, type LlamaConfig, type ResolvedLlamaConfig, type RopeScaling } from './config';
export { applyRotary, ropeInverseFrequencies, rotaryTables, rotateHalf, type RotaryTables } from './rotary';
export { KVCache, type LayerKV } from './kv-cache';
export { LlamaAttention, LlamaDecoderLayer, LlamaMLP, repeatKv } from './layers';
export { LlamaModel, type LlamaModelOptions } from './model';
export { LlamaForCausalLM, TiedLinear, type CausalLMOutput, type LlamaForwardOptions } from './causal-lm';
export type { GenerateOptions } from './generate';
export { llamaConfigToHF, type GenerationConfig } from './pretrained';
