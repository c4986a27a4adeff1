/**
 * Fused kernels written once in terms of the other Backend methods, for a backend that has no
 * kernel of its own for them (the gpu backend). Each performs the same roundings as the fused
 * kernel's reference (src/kernels/cpu/), so the results agree with it as the primitives do.
 */
import type { Backend, BackendBuffer, View } from './backend';
import type { DType } from '../tensor/dtype';
import { contiguousStrides, numel } from '../tensor/shape';
import { BackendError } from '../errors';

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
 * What a row composite over [outer, inner] needs: the shape, a per-row buffer ([outer]) viewed
 * across each row, and a list of temporaries (`temp` adds one) to release at the end.
 */
function rowScratch(outer: number, inner: number) {
  const rows = [outer, inner];
  const perRow = (b: BackendBuffer): View => ({ buffer: b, shape: rows, strides: [1, 0], offset: 0 });
  const temps: BackendBuffer[] = [];
  const temp = (b: BackendBuffer) => {
    temps.push(b);
    return b;
  };
  return { rows, perRow, temps, temp };
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
  const { rows, perRow, temps, temp } = rowScratch(outer, inner);
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

/**
 * Backend.softmaxBackwardLast from mul, sub, exp and a row sum, the ops the autograd composite
 * used (see softmaxBackwardRows in cpu/rows.ts):
 *   softmax:     dx = y ⊙ (g − Σ g⊙y)
 *   log-softmax: dx = g − e^y · Σ g
 */
export function softmaxBackwardComposite(k: Backend, y: BackendBuffer, grad: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer {
  const dtype = y.dtype;
  const { rows, perRow, temps, temp } = rowScratch(outer, inner);
  let out: BackendBuffer;
  if (!log) {
    const gy = temp(k.binary('mul', whole(grad, rows), whole(y, rows), dtype));
    const s = temp(k.reduceLast('sum', gy, outer, inner));
    const centred = temp(k.binary('sub', whole(grad, rows), perRow(s), dtype));
    out = k.binary('mul', whole(y, rows), whole(centred, rows), dtype);
  } else {
    const e = temp(k.unary('exp', whole(y, rows), dtype));
    const s = temp(k.reduceLast('sum', grad, outer, inner));
    const es = temp(k.binary('mul', whole(e, rows), perRow(s), dtype));
    out = k.binary('sub', whole(grad, rows), whole(es, rows), dtype);
  }
  for (const t of temps) k.release(t);
  return out;
}

/** Refuses what softmaxBackwardLast cannot take: operands of other sizes or dtypes, or integers. */
export function checkSoftmaxBackward(y: BackendBuffer, grad: BackendBuffer, outer: number, inner: number, log: boolean): void {
  const op = log ? 'logSoftmax (backward)' : 'softmax (backward)';
  const n = outer * inner;
  if (!(Number.isInteger(outer) && outer >= 0 && Number.isInteger(inner) && inner >= 0)) {
    throw new BackendError(op, `outer and inner must be non-negative integers, got ${outer} and ${inner}`);
  }
  if (y.length !== n || grad.length !== n) {
    throw new BackendError(op, `the output (${y.length} elements) and its gradient (${grad.length}) must both hold outer·inner = ${n} elements`);
  }
  if (y.dtype !== grad.dtype || y.dtype === 'int32') {
    throw new BackendError(op, `the output and its gradient must share one floating dtype, got ${y.dtype} and ${grad.dtype}; cast the gradient first`);
  }
}

/** Refuses what siluMul / siluMulBackward cannot take: buffers of other lengths or dtypes, or integers. */
export function checkSiluMul(op: string, named: Record<string, BackendBuffer>): void {
  const [first, ...rest] = Object.entries(named);
  const [name0, b0] = first;
  for (const [name, b] of rest) {
    if (b.length !== b0.length || b.dtype !== b0.dtype) {
      throw new BackendError(op, `${name} (${b.length} elements, ${b.dtype}) must match ${name0} (${b0.length} elements, ${b0.dtype}); pass contiguous buffers of one shape and dtype`);
    }
  }
  if (b0.dtype === 'int32') throw new BackendError(op, `needs floating buffers, got int32; cast first`);
}

/** Backend.siluMul from the silu, mul and sigmoid kernels (the composite it replaces, bit for bit). */
export function siluMulComposite(k: Backend, a: BackendBuffer, b: BackendBuffer, withSigmoid: boolean): { out: BackendBuffer; sigmoid: BackendBuffer | null } {
  checkSiluMul('siluMul', { a, b });
  const shape = [a.length];
  const s = k.unary('silu', whole(a, shape), a.dtype);
  const out = k.binary('mul', whole(s, shape), whole(b, shape), a.dtype);
  k.release(s);
  return { out, sigmoid: withSigmoid ? k.unary('sigmoid', whole(a, shape), a.dtype) : null };
}

/**
 * Backend.siluMulBackward from mul, sub and add (see cpu/silu-mul.ts):
 *   da = ((g·b)·σ)·(1 + a·(1 − σ)),  db = g·(a·σ)
 */
export function siluMulBackwardComposite(
  k: Backend,
  grad: BackendBuffer,
  a: BackendBuffer,
  b: BackendBuffer,
  sigmoid: BackendBuffer,
  needA: boolean,
  needB: boolean,
): { gradA: BackendBuffer | null; gradB: BackendBuffer | null } {
  checkSiluMul('siluMul (backward)', { grad, a, b, sigmoid });
  const dtype = a.dtype;
  const shape = [a.length];
  const temps: BackendBuffer[] = [];
  const op = (name: 'mul' | 'sub' | 'add', x: BackendBuffer, y: BackendBuffer, keep = false) => {
    const r = k.binary(name, whole(x, shape), whole(y, shape), dtype);
    if (!keep) temps.push(r);
    return r;
  };
  let gradA: BackendBuffer | null = null;
  if (needA) {
    const one = k.full(dtype, a.length, 1);
    temps.push(one);
    gradA = op('mul', op('mul', op('mul', grad, b), sigmoid), op('add', one, op('mul', a, op('sub', one, sigmoid))), true);
  }
  const gradB = needB ? op('mul', grad, op('mul', a, sigmoid), true) : null;
  for (const t of temps) k.release(t);
  return { gradA, gradB };
}
