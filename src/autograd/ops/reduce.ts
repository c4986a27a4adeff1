/**
 * Reductions over one or more dims (PyTorch's dim/keepDim). The op layer moves the reduced
 * dims last and makes the data contiguous, so the kernel only ever reduces rows; except that
 * dims forming one adjacent block (the dim-0 sum behind every bias gradient) are reduced in
 * place by kernels().reduceMiddle, without the transposed copy.
 */
import { kernels } from '../../kernels/registry';
import type { BackendBuffer } from '../../kernels/backend';
import { ValueError, fmtShape } from '../../errors';
import type { DType } from '../../tensor/dtype';
import { isHalf } from '../../tensor/dtype';
import { isContiguous, normalizeDim, normalizeDims, numel, sameShape, type Shape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';

import { noGrad } from '../grad-mode';
import { record } from '../node';
import { add, cast, div, eq, exp, log, mul, ne, sub, where } from './elementwise';
import { expand, permute, reshape, squeeze, unsqueeze, withPacked } from './shape';
import { scatterAddRaw } from './indexing';

export interface ReduceOptions {
  dim?: number | readonly number[];
  keepDim?: boolean;
}

/** Shape after reducing `dims`, with or without the reduced dims kept as 1. */
function reducedShape(shape: Shape, dims: number[], keepDim: boolean): number[] {
  return keepDim ? shape.map((s, i) => (dims.includes(i) ? 1 : s)) : shape.filter((_, i) => !dims.includes(i));
}

/** Permutes `dims` last and runs fn on a packed [outer, inner] buffer of the data. */
function onRows<T>(a: Tensor, dims: number[], fn: (rows: BackendBuffer, outer: number, inner: number) => T): T {
  const kept = a.shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const moved = dims.length === 0 ? a : noGrad(() => permute(a, [...kept, ...dims]));
  const outer = numel(kept.map((d) => a.shape[d]));
  const inner = numel(dims.map((d) => a.shape[d]));
  return withPacked(moved, (rows) => fn(rows.buffer, outer, inner));
}

/** normalizeDims, except that a 0-d tensor (which accepts dim 0 or -1, as in PyTorch) has no dim to reduce. */
function reduceDims(op: string, dim: number | readonly number[] | undefined, ndim: number): number[] {
  const dims = normalizeDims(op, dim, ndim);
  return ndim === 0 ? [] : dims;
}

/** True when the tensor, its dims taken in `order`, is its buffer: element i at position i (no copy to pack). */
function isPackedIn(t: Tensor, order: readonly number[]): boolean {
  const shape = order.map((d) => t.shape[d]);
  const strides = order.map((d) => t.strides[d]);
  return isContiguous(shape, strides) && t.offset === 0 && t.buffer.length === t.numel;
}

/**
 * Reduces `dims` (sorted) to a buffer in the kept dims' row-major order. Dims that are one
 * adjacent block [lo, hi] not reaching the last dim view the data as [outer, mid, inner] and
 * reduce the middle axis, unless moving them last is itself free (a transposed view).
 */
function reduceBuffer(op: 'sum' | 'max' | 'min', a: Tensor, dims: number[]): BackendBuffer {
  const lo = dims[0];
  const hi = dims[dims.length - 1];
  const block = dims.length > 0 && hi - lo === dims.length - 1 && hi < a.ndim - 1;
  if (block) {
    const order = a.shape.map((_, i) => i);
    const kept = order.filter((i) => !dims.includes(i));
    const movedFree = !isPackedIn(a, order) && isPackedIn(a, [...kept, ...dims]);
    if (!movedFree) {
      const outer = numel(a.shape.slice(0, lo));
      const mid = numel(a.shape.slice(lo, hi + 1));
      const inner = numel(a.shape.slice(hi + 1));
      return withPacked(a, (packed) => kernels().reduceMiddle(op, packed.buffer, outer, mid, inner));
    }
  }
  return onRows(a, dims, (rows, outer, inner) => kernels().reduceLast(op, rows, outer, inner));
}

function reduceKernel(op: 'sum' | 'max' | 'min', a: Tensor, dims: number[], keepDim: boolean, dtype: DType = a.dtype): Tensor {
  const src = dtype === a.dtype ? a : noGrad(() => cast(a, dtype));
  const out = reduceBuffer(op, src, dims);
  return new Tensor(out, reducedShape(a.shape, dims, keepDim));
}

/** Sum over `dim` (all dims by default). int32 sums stay int32. */
export function sum(a: Tensor, options: ReduceOptions = {}): Tensor {
  const dims = reduceDims('sum', options.dim, a.ndim);
  const keepDim = options.keepDim ?? false;
  const inShape = a.shape;
  const keptShape = reducedShape(inShape, dims, true);
  const out = reduceKernel('sum', a, dims, keepDim);
  // every input element contributes once: the gradient is the output gradient broadcast back
  return record('sum', [a], out, [], (g) => [expand(reshape(g, keptShape), inShape)]);
}

/** Mean over `dim` (all dims by default); integer input gives float32. */
export function mean(a: Tensor, options: ReduceOptions = {}): Tensor {
  const dims = reduceDims('mean', options.dim, a.ndim);
  const count = numel(dims.map((d) => a.shape[d]));
  // int32 averages to float32; the 16-bit floats sum in float32 (a float16 sum overflows past
  // 65504, a bfloat16 one loses everything past 8 bits)
  const src = isHalf(a.dtype) || a.dtype === 'int32' ? cast(a, 'float32') : a;
  const m = div(sum(src, options), count);
  return isHalf(a.dtype) ? cast(m, a.dtype) : m;
}

/**
 * Variance with Bessel's correction by default (`correction: 1`, as torch.var); composed from
 * mean, sub, mul and sum, so its gradient comes from theirs.
 */
export function variance(a: Tensor, options: ReduceOptions & { correction?: number } = {}): Tensor {
  const dims = reduceDims('var', options.dim, a.ndim);
  const correction = options.correction ?? 1;
  const count = numel(dims.map((d) => a.shape[d]));
  if (isHalf(a.dtype)) return cast(variance(cast(a, 'float32'), options), a.dtype); // squares overflow float16
  const centred = sub(a, mean(a, { dim: dims, keepDim: true }));
  return div(sum(mul(centred, centred), { dim: dims, keepDim: options.keepDim }), Math.max(count - correction, 0));
}

export interface MaxMinResult {
  values: Tensor;
  indices: Tensor;
}

/** Max over all elements (a 0-d tensor), or over `dim` with values and int32 indices. */
export function max(a: Tensor): Tensor;
export function max(a: Tensor, dim: number, keepDim?: boolean): MaxMinResult;
export function max(a: Tensor, dim?: number, keepDim = false): Tensor | MaxMinResult {
  return dim === undefined ? extremeAll('max', a) : extremeAlong('max', a, dim, keepDim);
}

export function min(a: Tensor): Tensor;
export function min(a: Tensor, dim: number, keepDim?: boolean): MaxMinResult;
export function min(a: Tensor, dim?: number, keepDim = false): Tensor | MaxMinResult {
  return dim === undefined ? extremeAll('min', a) : extremeAlong('min', a, dim, keepDim);
}

function checkNonEmpty(op: string, a: Tensor, dims: number[]): void {
  if (dims.some((d) => a.shape[d] === 0) || (dims.length === 0 && a.numel === 0)) {
    throw new ValueError(op, `cannot reduce an empty dimension (shape ${fmtShape(a.shape)}): max/min have no identity`);
  }
}

/**
 * Whole-tensor max/min: the gradient is shared evenly among tied extremes (as torch.max()). A NaN
 * is the extreme, and NaN == NaN is false: the NaNs are the hits then (PyTorch's rule), else the
 * share would be 0/0 everywhere.
 */
function extremeAll(op: 'max' | 'min', a: Tensor): Tensor {
  const dims = a.shape.map((_, i) => i);
  checkNonEmpty(op, a, dims);
  const out = reduceKernel(op, a, dims, false);
  return record(op, [a], out, [a, out], (g, [x, y]) => {
    const hits = add(eq(x, y), mul(ne(x, x), ne(y, y))); // exclusive: with y NaN, eq is 0 everywhere
    return [div(mul(g, hits), sum(hits))];
  });
}

/** Max/min along one dim: the gradient goes to the selected index only. */
function extremeAlong(op: 'max' | 'min', a: Tensor, dim: number, keepDim: boolean, name: string = op): MaxMinResult {
  const d = normalizeDim(name, dim, a.ndim);
  // a 0-d tensor is its own max along dim 0 (index 0), as in PyTorch; keepDim leaves it 0-d
  if (a.ndim === 0) return extremeAlong(op, reshape(a, [1]), 0, false, name);
  checkNonEmpty(name, a, [d]);
  const shape = reducedShape(a.shape, [d], keepDim);
  const [indexBuf, valueBuf] = onRows(a, [d], (rows, outer, inner) => [
    kernels().argReduceLast(op, rows, outer, inner),
    kernels().reduceLast(op, rows, outer, inner),
  ]);
  const indices = new Tensor(indexBuf, shape);
  const values = new Tensor(valueBuf, shape);
  const inShape = a.shape;
  const idxKept = keepDim ? indices : unsqueeze(indices, d);
  // the gradient flows back to the selected position only: a scatter-add of g along dim
  record(op, [a], values, [idxKept], (g, [idx]) => [scatterAddRaw(keepDim ? g : unsqueeze(g, d), d, idx, inShape)]);
  return { values, indices };
}

/** Indices of the max along `dim` (int32); over the flattened tensor when dim is omitted. */
export function argmax(a: Tensor, dim?: number, keepDim = false): Tensor {
  return argExtreme('max', 'argmax', a, dim, keepDim);
}

export function argmin(a: Tensor, dim?: number, keepDim = false): Tensor {
  return argExtreme('min', 'argmin', a, dim, keepDim);
}

function argExtreme(op: 'max' | 'min', name: string, a: Tensor, dim: number | undefined, keepDim: boolean): Tensor {
  if (dim !== undefined) normalizeDim(name, dim, a.ndim); // validate before making any tensor
  const x = a.detach();
  return dim === undefined ? extremeAlong(op, reshape(x, [-1]), 0, false, name).indices : extremeAlong(op, x, dim, keepDim, name).indices;
}

/**
 * log Σ exp(x) over `dim`, computed stably as m + log Σ exp(x - m) with m the (detached) max;
 * composed from primitives, so the gradient is softmax(x) · g without a hand-written backward.
 */
export function logsumexp(a: Tensor, options: ReduceOptions = {}): Tensor {
  const dims = reduceDims('logsumexp', options.dim, a.ndim);
  const keepDim = options.keepDim ?? false;
  const m = noGrad(() => {
    const raw = reduceKernel('max', a, dims, true);
    // rows that are all -inf (or inf) would give NaN from x - m: shift by 0 there instead
    return where(eq(eq(raw, Infinity), eq(raw, -Infinity)), raw, 0);
  });
  const out = add(log(sum(exp(sub(a, m)), { dim: dims, keepDim: true })), m);
  return keepDim ? out : dims.length === 0 ? out : squeeze(out, dims);
}

/**
 * Sums a (broadcast) gradient back down to `shape`: the adjoint of broadcasting. Leading dims
 * that broadcasting added are summed away, and dims that were 1 are summed with keepDim.
 */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  }
  const summed = dims.length > 0 ? sum(g, { dim: dims, keepDim: true }) : g;
  return reshape(summed, shape);
}

