/**
 * Gradients as the optimizers see them: the check that a gradient fits its parameter (made for
 * every parameter before any is written) and zeroGrad's clearing.
 */
import { fmtShape } from '../errors';
import { Tensor } from '../tensor/tensor';
import { isFloating } from '../tensor/dtype';
import { sameShape } from '../tensor/shape';
import { noGrad } from '../autograd/grad-mode';
import { copy_ } from '../autograd/ops/inplace';
import { describe } from '../util/describe';

/**
 * Why `g` cannot be the gradient of `p` (a problem naming the parameter), or null: it must be a
 * live floating Tensor shaped like `p`, on `p`'s backend, and `p` must be a live floating tensor.
 */
export function gradProblem(p: Tensor, g: unknown, label = p.name ? `'${p.name}'` : `of shape ${fmtShape(p.shape)}`): string | null {
  if (!(g instanceof Tensor)) return `the gradient of parameter ${label} is ${describe(g)}, not a Tensor`;
  if (p.isDisposed || p.buffer.released) return `parameter ${label} was disposed`;
  if (g.isDisposed || g.buffer.released) return `the gradient of parameter ${label} was disposed`;
  if (!isFloating(p.dtype) || !isFloating(g.dtype)) return `parameter ${label} (${p.dtype}) and its gradient (${g.dtype}) must be floating`;
  if (!sameShape(p.shape, g.shape)) return `the gradient of parameter ${label} has shape ${fmtShape(g.shape)}, expected ${fmtShape(p.shape)}`;
  if (p.backend !== g.backend) return `parameter ${label} is on ${p.backend} but its gradient is on ${g.backend}`;
  return null;
}

/**
 * Clears the gradients of `params` (the zeroGrad of every optimizer): with `setToNone`, `.grad`
 * becomes null and the gradient tensor is disposed (each tensor once, even if shared); otherwise
 * the gradient is zeroed in place (a gradient built with createGraph is first cut from its graph).
 */
export function clearGrads(params: Iterable<Tensor>, setToNone: boolean): void {
  for (const p of params) {
    const g = p.grad;
    if (g === null) continue;
    if (setToNone) {
      p.grad = null;
      g.dispose();
    } else {
      if (!g.isLeaf) p.grad = g.detach();
      const z = p.grad as Tensor;
      noGrad(() => copy_(z, 0));
    }
  }
}
