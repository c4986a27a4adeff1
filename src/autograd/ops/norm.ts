/**
 * Layer norm and RMS norm. The normalisation x -> x̂ is one fused node: kernels().normalizeLast
 * computes x̂ and 1/σ per row in one pass, and kernels().normalizeBackwardLast the closed-form
 * backward written below in another, instead of a tape of mean/sub/rsqrt nodes. The affine part
 * (· weight + bias) is ordinary mul/add, so the weight and bias gradients come from those
 * primitives (and are pruned by them when frozen).
 * test/autograd/ops/norm.test.ts proves the fused op agrees with the composite.
 */
import { kernels } from '../../kernels/registry';
import { AutogradError, ShapeError, ValueError, fmtShape } from '../../errors';
import { numel, sameShape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { isGradEnabled } from '../grad-mode';
import { record } from '../node';
import { add, mul, requireFloating } from './elementwise';
import { withPacked } from './shape';

/**
 * torch.nn.functional.layer_norm: normalises over the trailing `normalizedShape` dims with the
 * biased variance, (x − μ)/√(σ² + eps), then multiplies by `weight` and adds `bias` (each of
 * shape `normalizedShape`) when given.
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  const ns = checkNormArgs('layerNorm', x, normalizedShape, eps, { weight, bias });
  const xhat = normalize('layerNorm', 'layer', x, ns, eps);
  const scaled = weight ? mul(xhat, weight) : xhat;
  return bias ? add(scaled, bias) : scaled;
}

/**
 * RMS norm as in Llama: x / √(mean(x²) + eps) · weight, the mean taken over the trailing
 * `normalizedShape` dims (no centring, no bias).
 */
export function rmsNorm(x: Tensor, normalizedShape: number | readonly number[], weight?: Tensor | null, eps = 1e-6): Tensor {
  const ns = checkNormArgs('rmsNorm', x, normalizedShape, eps, { weight });
  const xhat = normalize('rmsNorm', 'rms', x, ns, eps);
  return weight ? mul(xhat, weight) : xhat;
}

/** Validates everything before any kernel runs; returns normalizedShape as an array. */
function checkNormArgs(
  op: string,
  x: Tensor,
  normalizedShape: number | readonly number[],
  eps: number,
  params: Record<string, Tensor | null | undefined>,
): number[] {
  if (!(x instanceof Tensor)) throw new ValueError(op, `expected a Tensor input, got ${x === null ? 'null' : typeof x}`);
  requireFloating(op, x);
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : Array.isArray(normalizedShape) ? [...normalizedShape] : null;
  if (ns === null || ns.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new ShapeError(op, `normalizedShape must be a size or a list of sizes, got ${String(normalizedShape)}`);
  }
  if (ns.length === 0) {
    throw new ShapeError(op, 'normalizedShape must have at least one dim, got []');
  }
  const trailing = x.shape.slice(x.ndim - ns.length);
  if (x.ndim < ns.length || !sameShape(trailing, ns)) {
    throw new ShapeError(
      op,
      `normalizedShape ${fmtShape(ns)} does not match the trailing dims of the input of shape ${fmtShape(x.shape)}; ` +
        `expected an input of shape [*, ${ns.join(', ')}]`,
    );
  }
  if (typeof eps !== 'number' || !(eps >= 0) || !Number.isFinite(eps)) {
    throw new ValueError(op, `eps must be a finite non-negative number, got ${eps}`);
  }
  for (const [name, p] of Object.entries(params)) {
    if (p === null || p === undefined) continue;
    if (!(p instanceof Tensor)) throw new ValueError(op, `${name} must be a Tensor, null or undefined, got ${typeof p}`);
    requireFloating(op, p, name);
    if (!sameShape(p.shape, ns)) {
      throw new ShapeError(op, `${name} has shape ${fmtShape(p.shape)} but normalizedShape is ${fmtShape(ns)}; they must be equal`);
    }
    if (p.backend !== x.backend) {
      throw new ValueError(op, `${name} lives on backend ${p.backend} but the input on ${x.backend}; move one of them first`);
    }
  }
  return ns;
}


/** x̂ over the trailing dims of shape `ns`, as one fused node. */
function normalize(op: string, kind: 'layer' | 'rms', x: Tensor, ns: number[], eps: number): Tensor {
  const inner = numel(ns);
  const lead = x.shape.slice(0, x.ndim - ns.length);
  const outer = numel(lead);
  const { normalized, rstd } = withPacked(x, (rows) => kernels().normalizeLast(kind, rows.buffer, outer, inner, eps));
  const xhat = new Tensor(normalized, x.shape);
  // one 1/σ per row, shaped to broadcast against x: [*lead, 1, ..., 1]
  const rstdT = new Tensor(rstd, [...lead, ...ns.map(() => 1)]);
  return record(op, [x], xhat, [xhat, rstdT], (g, [xhat, rstd]) => {
    if (isGradEnabled()) {
      // rstd was saved as a plain number per row, so a graph of this backward would miss its
      // dependence on x and give wrong second derivatives: refuse rather than be silently wrong
      throw new AutogradError(
        `${op} (backward)`,
        'higher-order gradients (createGraph) through the fused normalisation are not supported; ' +
          'compose it from primitives (mean, sub, mul, rsqrt) where you need them',
      );
    }
    // layer: dx = rstd·(g − mean(g) − x̂·mean(g⊙x̂));  rms: dx = rstd·(g − x̂·mean(g⊙x̂)), one row kernel
    const dx = withPacked(g, (rows) => kernels().normalizeBackwardLast(kind, rows.buffer, xhat.buffer, rstd.buffer, outer, inner));
    return [new Tensor(dx, g.shape)];
  });
}
