/**
 * SwiGLU's product silu(a)·b as one op: Llama's MLP is down_proj(silu(gate_proj(x))·up_proj(x)).
 *
 * Composed, it is two nodes (silu, mul) whose backward runs four kernels (mul, mul, siluGrad, mul),
 * and siluGrad recomputes σ(a), an exponential per element: the costliest elementwise kernel of a
 * Llama backward. Fused, the forward is one kernel that also keeps σ(a), and the backward one
 * kernel of products:
 *
 *   y = silu(a)·b = a·σ(a)·b,   dy/da = b·σ(a)·(1 + a·(1 − σ(a))),   dy/db = a·σ(a)
 *
 * The forward equals the composite bit for bit; the backward agrees with it to a few roundings
 * (kernels/cpu/silu-mul.ts says where they differ). Under createGraph the backward is composed
 * from recorded ops (σ(a) recomputed by sigmoid), so higher-order gradients are right.
 * test/autograd/ops/fused-backward.test.ts proves both agree with mul(silu(a), b).
 */
import { kernels } from '../../kernels/registry';
import { ValueError } from '../../errors';
import { sameShape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { isGradEnabled } from '../grad-mode';
import { notSaved, record } from '../node';
import { add, mul, operands, sigmoid, silu, sub } from './elementwise';
import { withPacked } from './shape';

/**
 * silu(a)·b, elementwise with broadcasting, as mul(silu(a), b) computes it: SwiGLU's gated product.
 * Operands of one shape and one dtype (float32 or float64) run the fused kernels; the others (a
 * broadcast, mixed or 16-bit dtypes, integers) the composite itself.
 */
export function siluMul(a: Tensor, b: Tensor): Tensor {
  if (!(a instanceof Tensor) || !(b instanceof Tensor)) {
    throw new ValueError('siluMul', `expected two Tensors, got ${[a, b].map((t) => (t instanceof Tensor ? 'Tensor' : t === null ? 'null' : typeof t)).join(' and ')}`);
  }
  operands('siluMul', a, b); // the same checks as mul: one backend
  const fused = sameShape(a.shape, b.shape) && a.dtype === b.dtype && (a.dtype === 'float32' || a.dtype === 'float64');
  if (!fused) return mul(silu(a), b);
  const keep = isGradEnabled() && (a.requiresGrad || b.requiresGrad);
  const { out, sigmoid: sig } = withPacked(a, (ap) => withPacked(b, (bp) => kernels().siluMul(ap.buffer, bp.buffer, keep)));
  const y = new Tensor(out, a.shape);
  if (sig === null) return y;
  const s = new Tensor(sig, a.shape);
  // da reads b, σ and a; db reads a and σ
  return record('siluMul', [a, b], y, [a, a.requiresGrad ? b : notSaved(), s], (g, [a, b, s], needs) => {
    if (!isGradEnabled() && g.dtype === a.dtype) {
      // b is read for da only (when a needs no gradient it was not kept: a stands in, unread)
      const run = (gp: Tensor, ap: Tensor, bp: Tensor) => kernels().siluMulBackward(gp.buffer, ap.buffer, bp.buffer, s.buffer, needs[0], needs[1]);
      const { gradA, gradB } = withPacked(g, (gp) => withPacked(a, (ap) => (needs[0] ? withPacked(b, (bp) => run(gp, ap, bp)) : run(gp, ap, ap))));
      return [gradA && new Tensor(gradA, a.shape), gradB && new Tensor(gradB, a.shape)];
    }
    // createGraph: the same formulas from recorded ops, σ recomputed so that it depends on a
    const sa = sigmoid(a);
    return [needs[0] ? mul(mul(g, b), mul(sa, add(1, mul(a, sub(1, sa))))) : null, needs[1] ? mul(g, mul(a, sa)) : null];
  });
}
