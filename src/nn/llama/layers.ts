/**
 * The blocks of one Llama decoder layer: grouped-query self-attention with rotary embeddings
 * (LlamaAttention), the gated MLP (LlamaMLP), and the pre-norm residual layer that joins them.
 * All are composed from differentiable ops, so their backward comes from those ops.
 */
import type { DType } from '../../tensor/dtype';
import type { Tensor } from '../../tensor/tensor';
import type { Generator } from '../../tensor/random';
import { add } from '../../autograd/ops/elementwise';
import { siluMul } from '../../autograd/ops/swiglu';
import { cat, expand, reshape, transpose, unsqueeze } from '../../autograd/ops/shape';
import { Module } from '../module';
import { Linear, RMSNorm } from '../layers';
import { scaledDotProductAttention } from '../attention';
import type { ResolvedLlamaConfig } from './config';
import { applyRotary, type RotaryTables } from './rotary';
import type { LayerKV } from './kv-cache';

/** What every layer of a model is built with: the parameter dtype and the initialising generator. */
export interface LayerOptions {
  dtype: DType;
  generator: Generator;
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
    // softmax(q·kᵀ / √D, masked)·v with scores [B, H, T, S], each key/value head serving `groups`
    // query heads; float16 scores are soft-maxed in float32 and cast back (HF: softmax(...,
    // dtype=float32).to(q.dtype))
    const attended = scaledDotProductAttention(q, repeatKv(key, groups), repeatKv(value, groups), mask, { float16SoftmaxInFloat32: true });
    // [B, H, T, D] -> [B, T, H, D] -> [B, T, H·D]
    const context = reshape(transpose(attended, 1, 2), [b, t, h * d]);
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
    // silu(gate)·up as one fused op (its backward computes no exponential)
    return this.downProj.forward(siluMul(this.gateProj.forward(x), this.upProj.forward(x)));
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
