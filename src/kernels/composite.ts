/**
 * Fused kernels written once in terms of the other Backend methods, for a backend that has no
 * kernel of its own for them (the gpu backend). Each performs the same roundings as the fused
 * kernel's reference (src/kernels/cpu/), so the results agree with it as the primitives do.
 */
import type { Backend, BackendBuffer, View } from './backend';
import type { DType } from '../tensor/dtype';
import { contiguousStrides, numel } from '../tensor/shape';

/** One half of a view's last dim: elements [0, h) (part 0) or [h, 2h) (part 1) of each row. */
function halfOf(v: View, part: 0 | 1): View {
  const nd = v.shape.length;
  const h = v.shape[nd - 1] / 2;
  return { buffer: v.buffer, shape: [...v.shape.slice(0, -1), h], strides: v.strides, offset: v.offset + part * h * v.strides[nd - 1] };
}

/** A contiguous buffer of `shape` as a view. */
function whole(buffer: BackendBuffer, shape: readonly number[]): View {
  return { buffer, shape, strides: contiguousStrides(shape), offset: 0 };
}

/**
 * Backend.rotary from mul, sub / add and two assigns (see cpu/rotary.ts for the formula):
 *   forward:   y₁ = x₁·c₁ − x₂·s₁,  y₂ = x₂·c₂ + x₁·s₂
 *   transpose: y₁ = x₁·c₁ + x₂·s₂,  y₂ = x₂·c₂ − x₁·s₁
 * where ₁ and ₂ are the two halves of the last dim.
 */
export function rotaryComposite(k: Backend, x: View, cos: View, sin: View, outDtype: DType, transpose: boolean): BackendBuffer {
  const [x1, x2, c1, c2, s1, s2] = [x, x, cos, cos, sin, sin].map((v, i) => halfOf(v, (i % 2) as 0 | 1));
  const halfShape = x1.shape;
  const temps: BackendBuffer[] = [];
  /** a op b over two half-views, as a contiguous half-sized temporary */
  const halfOp = (op: 'mul' | 'add' | 'sub', a: View, b: View) => {
    const r = k.binary(op, a, b, outDtype);
    temps.push(r);
    return whole(r, halfShape);
  };
  const y1 = transpose ? halfOp('add', halfOp('mul', x1, c1), halfOp('mul', x2, s2)) : halfOp('sub', halfOp('mul', x1, c1), halfOp('mul', x2, s1));
  const y2 = transpose ? halfOp('sub', halfOp('mul', x2, c2), halfOp('mul', x1, s1)) : halfOp('add', halfOp('mul', x2, c2), halfOp('mul', x1, s2));
  const out = k.zeros(outDtype, numel(x.shape));
  const outView = whole(out, x.shape);
  k.assign(halfOf(outView, 0), y1);
  k.assign(halfOf(outView, 1), y2);
  for (const t of temps) k.release(t);
  return out;
}

/**
 * Backend.normalizeBackwardLast from mul, sub and a row sum (see normalizeBackwardRows in
 * cpu/rows.ts): dx = rstd·(g − mean(g) − x̂·mean(g⊙x̂)), without the mean(g) term for RMS norm.
 */
export function normalizeBackwardComposite(
  k: Backend,
  kind: 'layer' | 'rms',
  grad: BackendBuffer,
  normalized: BackendBuffer,
  rstd: BackendBuffer,
  outer: number,
  inner: number,
): BackendBuffer {
  const dtype = normalized.dtype;
  const rows = [outer, inner];
  /** A per-row buffer ([outer]) read across each row. */
  const perRow = (b: BackendBuffer): View => ({ buffer: b, shape: rows, strides: [1, 0], offset: 0 });
  const temps: BackendBuffer[] = [];
  const temp = (b: BackendBuffer) => {
    temps.push(b);
    return b;
  };
  const invN = temp(k.full(dtype, outer, 1 / inner));
  const rowMean = (b: BackendBuffer) => temp(k.binary('mul', whole(temp(k.reduceLast('sum', b, outer, inner)), [outer]), whole(invN, [outer]), dtype));
  const meanGX = rowMean(temp(k.binary('mul', whole(grad, rows), whole(normalized, rows), dtype)));
  const centred = kind === 'layer' ? temp(k.binary('sub', whole(grad, rows), perRow(rowMean(grad)), dtype)) : grad;
  const xhatMeanGX = temp(k.binary('mul', whole(normalized, rows), perRow(meanGX), dtype));
  const bracket = temp(k.binary('sub', whole(centred, rows), whole(xhatMeanGX, rows), dtype));
  const out = k.binary('mul', perRow(rstd), whole(bracket, rows), dtype);
  for (const t of temps) k.release(t);
  return out;
}
