/**
 * Rotary position embedding (RoPE) as one op, in Hugging Face's rotate_half layout:
 *
 *   rotaryEmbedding(x, cos, sin) = x·cos + rotate_half(x)·sin,
 *   rotate_half(x) = cat(−x[..., D/2:], x[..., :D/2])
 *
 * so element j of each row of length D turns with element j + D/2. Composed from primitives this
 * is seven graph nodes (two slices, a neg, a cat, two muls, an add) and, in the backward, about
 * fifteen kernels; fused it is one node and one kernel each way, with the same float32 result
 * bit for bit (kernels/cpu/rotary.ts says why).
 *
 * The derivative in x is the transposed rotation, rotaryᵀ(g), which turns each pair back by the
 * same angle (for HF's tables, whose two halves hold equal angles, it is x·cos − rotate_half(x)·sin
 * with x = g). In cos and sin (rarely trained: they are usually fixed tables) it is the product
 * with what each multiplies, summed back to the table's shape.
 */
import { kernels } from '../../kernels/registry';
import { ShapeError, ValueError, fmtShape } from '../../errors';
import { promoteTypes, type DType } from '../../tensor/dtype';
import { broadcastShapes, sameShape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { notSaved, record } from '../node';
import { broadcastView, castTo, mul, neg, requireFloating } from './elementwise';
import { sumTo } from './reduce';
import { cat, slice } from './shape';

/**
 * x·cos + rotate_half(x)·sin over the last dim of x, whose size must be even. cos and sin
 * broadcast against x (for example [T, D] tables against [B, H, T, D] heads) and the result has
 * x's shape; its dtype is the promotion of the three.
 */
export function rotaryEmbedding(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  checkRotaryArgs(x, cos, sin);
  return rotate(x, cos, sin, false);
}

/** HF's rotate_half: cat(−x[..., D/2:], x[..., :D/2]) along the last dim (composed; see rotaryEmbedding for the fused op). */
export function rotateHalf(x: Tensor): Tensor {
  const half = x.shape[x.ndim - 1] / 2;
  return cat([neg(slice(x, -1, half)), slice(x, -1, 0, half)], -1);
}

function checkRotaryArgs(x: Tensor, cos: Tensor, sin: Tensor): void {
  const op = 'rotaryEmbedding';
  for (const [name, t] of [['x', x], ['cos', cos], ['sin', sin]] as const) {
    if (!(t instanceof Tensor)) throw new ValueError(op, `${name} must be a Tensor, got ${t === null ? 'null' : typeof t}`);
    requireFloating(op, t, name);
  }
  if (cos.backend !== x.backend || sin.backend !== x.backend) {
    throw new ValueError(op, `x, cos and sin live on backends ${x.backend}, ${cos.backend} and ${sin.backend}; move them to one backend first`);
  }
  const d = x.ndim === 0 ? 0 : x.shape[x.ndim - 1];
  if (x.ndim === 0 || d % 2 !== 0) {
    throw new ShapeError(op, `x of shape ${fmtShape(x.shape)} must have an even last dim (pairs j and j + D/2 rotate together)`);
  }
  for (const [name, t] of [['cos', cos], ['sin', sin]] as const) {
    const joint = broadcastShapes(op, x.shape, t.shape);
    if (!sameShape(joint, x.shape)) {
      throw new ShapeError(
        op,
        `${name} of shape ${fmtShape(t.shape)} broadcasts x of shape ${fmtShape(x.shape)} up to ${fmtShape(joint)}; ` +
          `the tables must broadcast to x's shape (for example [T, ${d}] or [B, 1, T, ${d}] against [B, H, T, ${d}])`,
      );
    }
  }
}

/**
 * rotary(x) (transpose false) or its adjoint rotaryᵀ(x) (true), recorded as one node. The backward
 * of each is the other, through this same function, so a createGraph backward is differentiable too.
 */
function rotate(x: Tensor, cos: Tensor, sin: Tensor, transpose: boolean): Tensor {
  const dtype: DType = promoteTypes(promoteTypes(x.dtype, cos.dtype), sin.dtype);
  const out = new Tensor(kernels().rotary(x, broadcastView(cos, x.shape), broadcastView(sin, x.shape), dtype, transpose), x.shape);
  const xDtype = x.dtype;
  // x is read only by the tables' gradients: an empty placeholder in its slot when they need none
  const save = [cos, sin, cos.requiresGrad || sin.requiresGrad ? x : notSaved()];
  return record(transpose ? 'rotaryEmbeddingBackward' : 'rotaryEmbedding', [x, cos, sin], out, save, (g, [c, s, xs], needs) => {
    const dx = needs[0] ? castTo(rotate(g, c, s, !transpose), xDtype) : null;
    // ∂y/∂cos = x both ways. ∂y/∂sin: the forward y = x·cos + rotate_half(x)·sin gives
    // g·rotate_half(x); the adjoint (y_j = x_j·cos_j + x_k·sin_k, y_k = x_k·cos_k − x_j·sin_j,
    // k = j + D/2) gives x·rotate_half(g)
    const dcos = needs[1] ? castTo(sumTo(mul(g, xs), c.shape), c.dtype) : null;
    const dsin = needs[2] ? castTo(sumTo(transpose ? mul(xs, rotateHalf(g)) : mul(g, rotateHalf(xs)), s.shape), s.dtype) : null;
    return [dx, dcos, dsin];
  });
}
