/**
 * Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_: the gradients are
 * changed in place (under noGrad); parameters without a gradient are ignored.
 */
import { ValueError } from '../errors';
import { Tensor } from '../tensor/tensor';
import { noGrad } from '../autograd/grad-mode';
import { abs, cast, clamp, mul, pow } from '../autograd/ops/elementwise';
import { max, sum } from '../autograd/ops/reduce';
import { copy_ } from '../autograd/ops/inplace';
import { Temporaries } from './temporaries';
import { isHalf } from '../tensor/dtype';

export interface ClipGradNormOptions {
  /** Throw when the total norm is NaN or infinite instead of scaling by it (PyTorch's error_if_nonfinite). */
  errorIfNonfinite?: boolean;
}

/** The distinct gradients of `params` (a tied parameter listed twice is clipped once). */
function gradsOf(op: string, params: Tensor | Iterable<Tensor>): Tensor[] {
  const list = params instanceof Tensor ? [params] : params !== null && typeof params === 'object' && Symbol.iterator in params ? Array.from(params) : null;
  if (list === null) throw new ValueError(op, 'params must be a Tensor or an iterable of Tensors');
  const grads = new Set<Tensor>();
  for (const p of list) {
    if (!(p instanceof Tensor)) throw new ValueError(op, `every parameter must be a Tensor, got ${p === null ? 'null' : typeof p}`);
    if (p.grad !== null) grads.add(p.grad);
  }
  return [...grads];
}

/** Computes in float32 at least: float16 gradients are widened first. */
const wide = (g: Tensor) => (isHalf(g.dtype) ? cast(g, 'float32') : g);

/**
 * Scales the gradients so that their joint `normType`-norm (the norm of all gradients
 * concatenated) is at most `maxNorm`, and returns that norm as it was before clipping. As in
 * PyTorch, each gradient is multiplied by maxNorm / (total + 1e-6) when that factor is below 1.
 * `normType` is a positive number or Infinity (the largest absolute value). Returns 0 when no
 * parameter has a gradient.
 */
export function clipGradNorm(params: Tensor | Iterable<Tensor>, maxNorm: number, normType = 2, options: ClipGradNormOptions = {}): number {
  const op = 'clipGradNorm';
  if (typeof maxNorm !== 'number' || !(maxNorm >= 0)) throw new ValueError(op, `maxNorm must be a number >= 0, got ${maxNorm}`);
  if (typeof normType !== 'number' || !(normType > 0)) throw new ValueError(op, `normType must be a positive number or Infinity, got ${normType}`);
  const grads = gradsOf(op, params);
  if (grads.length === 0) return 0;
  // every intermediate (widened copies, powers, sums) is disposed as soon as it is read
  const reduceEach = (f: (w: Tensor, t: Temporaries) => Tensor): number[] =>
    grads.map((g) => {
      const t = new Temporaries([g]);
      try {
        return t.own(f(t.own(wide(g)), t)).item();
      } finally {
        t.freeAll();
      }
    });
  const total = noGrad(() => {
    if (normType === Infinity) {
      const maxima = reduceEach((w, t) => (w.numel === 0 ? t.scalar(0, w.dtype) : max(t.own(abs(w)))));
      return maxima.reduce((a, b) => Math.max(a, b), -Infinity); // a NaN wins, as in Math.max
    }
    // each gradient's norm, then the norm of the norms (PyTorch's two-level reduction)
    const sums = reduceEach((w, t) => sum(t.own(normType === 2 ? mul(w, w) : pow(t.own(abs(w)), normType))));
    const norms = sums.map((s) => s ** (1 / normType));
    return norms.reduce((acc, n) => acc + n ** normType, 0) ** (1 / normType);
  });
  if (options.errorIfNonfinite && !Number.isFinite(total)) {
    throw new ValueError(
      op,
      `the total norm of order ${normType} of the gradients is ${total}, so they cannot be clipped; fix the loss, or pass errorIfNonfinite: false to scale by it anyway`,
    );
  }
  const coef = maxNorm / (total + 1e-6);
  // !(coef >= 1) also scales when coef is NaN (a NaN norm), as PyTorch's clamp(max=1) does
  if (!(coef >= 1)) noGrad(() => grads.forEach((g) => replaceInPlace(g, mul(g, coef))));
  return total;
}

/** Clamps every gradient element into [-clipValue, clipValue] in place. */
export function clipGradValue(params: Tensor | Iterable<Tensor>, clipValue: number): void {
  const op = 'clipGradValue';
  if (typeof clipValue !== 'number' || !(clipValue >= 0)) throw new ValueError(op, `clipValue must be a number >= 0, got ${clipValue}`);
  const grads = gradsOf(op, params);
  noGrad(() => grads.forEach((g) => replaceInPlace(g, clamp(g, -clipValue, clipValue))));
}

/** Writes `value` into `g` and disposes it. */
function replaceInPlace(g: Tensor, value: Tensor): void {
  copy_(g, value);
  value.dispose();
}
