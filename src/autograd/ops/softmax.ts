/**
 * Fused softmax and log-softmax. The forward moves `dim` last and runs one row kernel
 * (kernels().softmaxLast, max-shifted so exp never overflows). The backward is one row kernel
 * too (kernels().softmaxBackwardLast) when it is not being recorded; under createGraph it is
 * written with the public ops, so it is itself differentiable (higher-order gradients are
 * correct). Both round alike (see Backend.softmaxBackwardLast).
 * test/autograd/ops/softmax.test.ts proves them equal, and equal to the composite exp(x)/Σexp(x).
 */
import { kernels } from '../../kernels/registry';
import { ValueError } from '../../errors';
import { floatingOf, isFloating } from '../../tensor/dtype';
import { normalizeDim } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { isGradEnabled, noGrad } from '../grad-mode';
import { record } from '../node';
import { cast, exp, mul, sub } from './elementwise';
import { sum } from './reduce';
import { permute, reshape, withPacked } from './shape';

/** Softmax along `dim`: e^{x_i} / Σ_j e^{x_j}. Integer input gives float32. */
export function softmax(a: Tensor, dim = -1): Tensor {
  return softmaxAlong('softmax', a, dim, false);
}

/** log(softmax(x)) along `dim`, computed as x - logΣexp(x) (stable for large |x|). */
export function logSoftmax(a: Tensor, dim = -1): Tensor {
  return softmaxAlong('logSoftmax', a, dim, true);
}


function softmaxAlong(op: 'softmax' | 'logSoftmax', a: Tensor, dim: number, log: boolean): Tensor {
  if (!(a instanceof Tensor)) throw new ValueError(op, `expected a Tensor, got ${a === null ? 'null' : typeof a}`);
  const d = normalizeDim(op, dim, a.ndim);
  // a 0-d tensor is a single row of one element (softmax 1, logSoftmax 0), as in PyTorch
  if (a.ndim === 0) return reshape(softmaxAlong(op, reshape(a, [1]), 0, log), []);

  const x = isFloating(a.dtype) ? a : noGrad(() => cast(a, floatingOf(a.dtype)));
  const last = d === x.ndim - 1;
  const perm = last ? null : [...x.shape.map((_, i) => i).filter((i) => i !== d), d];
  const inverse = perm ? perm.map((_, i) => perm.indexOf(i)) : null;
  const inner = x.shape[d];
  const outer = inner === 0 ? 0 : x.numel / inner;

  const moved = perm ? noGrad(() => permute(x, perm)) : x;
  const yRows = withPacked(moved, (rows) => new Tensor(kernels().softmaxLast(rows.buffer, outer, inner, log), moved.shape));
  const out = inverse ? noGrad(() => permute(yRows, inverse)) : yRows;

  /** The backward as one row kernel: g and y moved (dim last) and packed into rows, dx moved back. */
  const fused = (g: Tensor, y: Tensor): Tensor => {
    const [gm, ym] = perm ? noGrad(() => [permute(g, perm), permute(y, perm)]) : [g, y];
    const dx = withPacked(gm, (gr) => withPacked(ym, (yr) => new Tensor(kernels().softmaxBackwardLast(yr.buffer, gr.buffer, outer, inner, log), ym.shape)));
    return inverse ? noGrad(() => permute(dx, inverse)) : dx;
  };
  if (!log) {
    // y = softmax(x):  dx = y ⊙ (g − Σ_d g⊙y)
    return record(op, [x], out, [out], (g, [y]) => [
      !isGradEnabled() && g.dtype === y.dtype ? fused(g, y) : mul(y, sub(g, sum(mul(g, y), { dim: d, keepDim: true }))),
    ]);
  }
  // y = logSoftmax(x), e^y = softmax(x):  dx = g − e^y · Σ_d g
  return record(op, [x], out, [out], (g, [y]) => [
    !isGradEnabled() && g.dtype === y.dtype ? fused(g, y) : sub(g, mul(exp(y), sum(g, { dim: d, keepDim: true }))),
  ]);
}
