/**
 * Rotary position embeddings (RoPE) in Hugging Face's rotate_half layout: the cos/sin tables,
 * computed in float64 on the host and cast to the model's dtype, and their application to the
 * query and key heads.
 */
import type { DType } from '../../tensor/dtype';
import type { RopeScaling } from './config';
import type { Tensor } from '../../tensor/tensor';
import { tensor } from '../../tensor/creation';
import { reshape } from '../../autograd/ops/shape';
import { rotaryEmbedding } from '../../autograd/ops/rotary';

export { rotateHalf } from '../../autograd/ops/rotary';

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
 * D ([T] or [B, 1, T]). `scaling` changes invFreq (ropeInverseFrequencies). Computed in float64,
 * returned in `dtype`.
 */
export function rotaryTables(
  positions: ArrayLike<number>,
  headDim: number,
  theta: number,
  dtype: DType,
  shape: readonly number[] = [positions.length],
  scaling: RopeScaling | null = null,
): RotaryTables {
  const half = headDim / 2;
  const invFreq = ropeInverseFrequencies(headDim, theta, scaling);
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

/**
 * The D/2 rotation frequencies: θ^(−2j/D), then scaled as `scaling` says (see RopeScaling), as
 * transformers' ROPE_INIT_FUNCTIONS compute them ("default", "linear", "llama3").
 */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: RopeScaling | null = null): number[] {
  const plain = Array.from({ length: headDim / 2 }, (_, j) => 1 / Math.pow(theta, (2 * j) / headDim));
  if (scaling === null) return plain;
  const { factor } = scaling;
  if (scaling.ropeType === 'linear') return plain.map((f) => f / factor);
  const { lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: context } = scaling;
  return plain.map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < context / high) return f; // high frequencies: kept
    if (wavelength > context / low) return f / factor; // low frequencies: stretched by factor
    const s = (context / wavelength - low) / (high - low); // the band between: blended
    return ((1 - s) * f) / factor + s * f;
  });
}

/**
 * x·cos + rotate_half(x)·sin: rotates each pair (x_j, x_{j+D/2}) by its position's angle. One
 * fused op (rotaryEmbedding), equal bit for bit to the composite with rotateHalf.
 */
export function applyRotary(x: Tensor, rope: RotaryTables): Tensor {
  return rotaryEmbedding(x, rope.cos, rope.sin);
}
