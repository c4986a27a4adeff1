/**
 * The eager attention block that LlamaAttention and RobertaSelfAttention share: scores, mask,
 * softmax, weighted sum of the values. It is composed from differentiable ops (matmul, mul,
 * maskedFill, softmax, cast), so it has no derivative of its own: its backward is theirs.
 * Internal: not exported from the package.
 */
import { finfoMin, isHalf } from '../tensor/dtype';
import type { Tensor } from '../tensor/tensor';
import { cast, mul } from '../autograd/ops/elementwise';
import { matmul } from '../autograd/ops/matmul';
import { maskedFill } from '../autograd/ops/indexing';
import { softmax } from '../autograd/ops/softmax';
import { transpose } from '../autograd/ops/shape';

export interface AttentionOptions {
  /**
   * float16 scores are soft-maxed in float32 and the weights cast back to float16, as HF Llama's
   * `softmax(scores, dtype=float32).to(q.dtype)` (default false: softmax in the scores' dtype).
   */
  float16SoftmaxInFloat32?: boolean;
  /** Applied to the attention weights before they weight the values (RoBERTa's attention dropout). */
  dropout?: (probs: Tensor) => Tensor;
}

/**
 * softmax(q·kᵀ / √D, masked) · v, per batch and head:
 *   q [B, H, T, D], k and v [B, H, S, D] (one key/value head per query head) -> [B, H, T, D].
 * `mask` is int32, nonzero where a query must not see a key, and broadcasts against the scores
 * [B, H, T, S]. Masked scores are set to the dtype's most negative finite value (finfoMin), as
 * HF's eager path does: their weight underflows to 0, and a row whose keys are all masked gets
 * uniform weights instead of the NaN that −∞ would give.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, options: AttentionOptions = {}): Tensor {
  const d = q.shape[q.ndim - 1];
  // scores = q·kᵀ / √D: [B, H, T, S]
  let scores = mul(matmul(q, transpose(k, -2, -1)), 1 / Math.sqrt(d));
  if (mask) scores = maskedFill(scores, mask, finfoMin(scores.dtype));
  let probs = options.float16SoftmaxInFloat32 && isHalf(scores.dtype) ? cast(softmax(cast(scores, 'float32'), -1), scores.dtype) : softmax(scores, -1);
  if (options.dropout) probs = options.dropout(probs);
  return matmul(probs, v);
}
