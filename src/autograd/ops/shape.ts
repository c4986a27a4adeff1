/**
 * Shape ops. Most are views: they share the input's buffer and only change shape, strides and
 * offset (reshape of contiguous data, transpose, permute, expand, narrow, squeeze, unsqueeze).
 * Their backward undoes the view on the gradient.
 */
import { kernels } from '../../kernels/registry';
import { DimError, ShapeError, ValueError, fmtShape } from '../../errors';
import { promoteTypes } from '../../tensor/dtype';
import { contiguousStrides, normalizeDim, numel, sameShape, type Shape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { zeros } from '../../tensor/creation';
import { record } from '../node';
import { sumTo } from './reduce';

function view(t: Tensor, shape: Shape, strides: readonly number[], offset: number): Tensor {
  return new Tensor(t.buffer, shape, strides, offset);
}

/**
 * A contiguous copy when the tensor is not contiguous (or `force`), else the tensor itself.
 * Its gradient is the incoming gradient unchanged.
 */
export function contiguous(a: Tensor, force = false): Tensor {
  if (!force && a.isContiguous()) return a;
  const out = new Tensor(kernels().copy(a, a.dtype), a.shape);
  return record('contiguous', [a], out, [], (g) => [g]);
}

/**
 * Runs fn on a tensor whose buffer holds exactly its elements in row-major order from element 0,
 * which is what kernels that take a bare buffer (no strides, no offset) read. That is `t` itself
 * when it is already laid out so, else a temporary copy released right after fn returns.
 */
export function withPacked<T>(t: Tensor, fn: (packed: Tensor) => T): T {
  if (t.isContiguous() && t.offset === 0 && t.buffer.length === t.numel) return fn(t);
  const packed = new Tensor(kernels().copy(t, t.dtype), t.shape);
  try {
    return fn(packed);
  } finally {
    packed.dispose();
  }
}

/** Resolves one -1 entry and checks that the sizes multiply to numel. */
function inferShape(op: string, t: Tensor, shape: readonly number[]): number[] {
  const out = [...shape];
  const unknown = out.indexOf(-1);
  if (out.filter((d) => d === -1).length > 1) throw new ShapeError(op, `only one dim can be -1, got ${fmtShape(shape)}`);
  for (const d of out) {
    if (!Number.isInteger(d) || d < -1) throw new ShapeError(op, `invalid size ${d} in ${fmtShape(shape)}`);
  }
  if (unknown >= 0) {
    const known = numel(out.filter((_, i) => i !== unknown));
    if (known === 0 || t.numel % known !== 0) {
      throw new ShapeError(op, `cannot reshape a tensor of shape ${fmtShape(t.shape)} (${t.numel} elements) into ${fmtShape(shape)}`);
    }
    out[unknown] = t.numel / known;
  }
  if (numel(out) !== t.numel) {
    throw new ShapeError(op, `cannot reshape a tensor of shape ${fmtShape(t.shape)} (${t.numel} elements) into ${fmtShape(shape)} (${numel(out)} elements)`);
  }
  return out;
}

/** A view with a new shape; needs contiguous data (use reshape otherwise). */
export function view_(a: Tensor, shape: readonly number[]): Tensor {
  const s = inferShape('view', a, shape);
  if (!a.isContiguous()) {
    throw new ShapeError('view', `a tensor of shape ${fmtShape(a.shape)} with strides ${fmtShape(a.strides)} is not contiguous; use reshape() (which copies) or contiguous() first`);
  }
  const inShape = a.shape;
  const out = view(a, s, contiguousStrides(s), a.offset);
  return record('view', [a], out, [], (g) => [reshape(g, inShape)]);
}

/** A tensor with a new shape: a view when the data is contiguous, a copy otherwise (PyTorch's reshape). */
export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  const s = inferShape('reshape', a, shape);
  if (sameShape(s, a.shape)) return a;
  return view_(contiguous(a), s);
}

export function flatten(a: Tensor, startDim = 0, endDim = -1): Tensor {
  if (a.ndim === 0) return reshape(a, [1]);
  const s = normalizeDim('flatten', startDim, a.ndim);
  const e = normalizeDim('flatten', endDim, a.ndim);
  if (s > e) throw new DimError('flatten', `startDim ${startDim} comes after endDim ${endDim}`);
  return reshape(a, [...a.shape.slice(0, s), numel(a.shape.slice(s, e + 1)), ...a.shape.slice(e + 1)]);
}

/** Reorders dims (a view); the gradient is permuted back by the inverse permutation. */
export function permute(a: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== a.ndim) {
    throw new DimError('permute', `expected ${a.ndim} dims for a tensor of shape ${fmtShape(a.shape)}, got ${fmtShape(dims)}`);
  }
  const p = dims.map((d) => normalizeDim('permute', d, a.ndim));
  if (new Set(p).size !== p.length) throw new DimError('permute', `dims ${fmtShape(dims)} repeat a dim`);
  const inverse = new Array<number>(p.length);
  p.forEach((d, i) => (inverse[d] = i));
  const out = view(a, p.map((d) => a.shape[d]), p.map((d) => a.strides[d]), a.offset);
  return record('permute', [a], out, [], (g) => [permute(g, inverse)]);
}

/** Swaps two dims (a view). */
export function transpose(a: Tensor, dim0 = -2, dim1 = -1): Tensor {
  if (a.ndim < 2 && dim0 === -2 && dim1 === -1) return a;
  const d0 = normalizeDim('transpose', dim0, a.ndim);
  const d1 = normalizeDim('transpose', dim1, a.ndim);
  const p = Array.from({ length: a.ndim }, (_, i) => (i === d0 ? d1 : i === d1 ? d0 : i));
  return permute(a, p);
}

/** Broadcasts size-1 dims (and new leading dims) to `shape` without copying; -1 keeps a size. */
export function expand(a: Tensor, shape: readonly number[]): Tensor {
  if (shape.length < a.ndim) {
    throw new ShapeError('expand', `cannot expand shape ${fmtShape(a.shape)} to fewer dims ${fmtShape(shape)}`);
  }
  const lead = shape.length - a.ndim;
  const target = shape.map((d, i) => (d === -1 && i >= lead ? a.shape[i - lead] : d));
  const strides = target.map((d, i) => {
    if (i < lead) {
      if (!Number.isInteger(d) || d < 0) {
        throw new ShapeError('expand', `cannot expand shape ${fmtShape(a.shape)} to ${fmtShape(shape)}: new leading dim ${i} needs a size >= 0, got ${d} (-1 only keeps the size of an existing dim)`);
      }
      return 0;
    }
    const src = a.shape[i - lead];
    if (src === d) return a.strides[i - lead];
    if (src === 1 && Number.isInteger(d) && d >= 0) return 0;
    throw new ShapeError('expand', `cannot expand shape ${fmtShape(a.shape)} to ${fmtShape(shape)}: dim ${i} has size ${src}, which is not 1`);
  });
  const inShape = a.shape;
  const out = view(a, target, strides, a.offset);
  return record('expand', [a], out, [], (g) => [sumTo(g, inShape)]);
}

/** Elements start..start+length-1 along `dim` (a view). */
export function narrow(a: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normalizeDim('narrow', dim, a.ndim);
  const size = a.shape[d];
  const s = start < 0 ? start + size : start;
  if (!Number.isInteger(s) || !Number.isInteger(length) || s < 0 || length < 0 || s + length > size) {
    throw new ShapeError('narrow', `start ${start} and length ${length} do not fit in dim ${dim} of size ${size} (shape ${fmtShape(a.shape)})`);
  }
  return slice(a, d, s, s + length);
}

/** Python-style a[..., start:end:step, ...] along `dim` (a view); negative start/end count from the end. */
export function slice(a: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  const d = normalizeDim('slice', dim, a.ndim);
  if (!Number.isInteger(step) || step <= 0) throw new ValueError('slice', `step must be a positive integer, got ${step}`);
  const size = a.shape[d];
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  const s = clampIdx(start);
  const e = clampIdx(end ?? size);
  const len = Math.max(0, Math.ceil((e - s) / step));
  const shape = [...a.shape];
  shape[d] = len;
  const strides = [...a.strides];
  strides[d] = a.strides[d] * step;
  const inShape = a.shape;
  const out = view(a, shape, strides, a.offset + s * a.strides[d]);
  return record('slice', [a], out, [], (g) => [unslice(g, inShape, d, s, e, step)]);
}

/**
 * The adjoint of slice: zeros of the input's shape with g written into the sliced region.
 * Recorded itself (its adjoint is slice again), so gradients of gradients flow through it.
 */
function unslice(g: Tensor, inShape: Shape, d: number, s: number, e: number, step: number): Tensor {
  const full = zeros(inShape, { dtype: g.dtype });
  const strides = [...full.strides];
  strides[d] *= step;
  const shape = [...inShape];
  shape[d] = g.shape[d];
  kernels().assign({ buffer: full.buffer, shape, strides, offset: s * full.strides[d] }, g);
  return record('unslice', [g], full, [], (gg) => [slice(gg, d, s, e, step)]);
}

/** One index along `dim`, removing that dim (a view). */
export function select(a: Tensor, dim: number, index: number): Tensor {
  const d = normalizeDim('select', dim, a.ndim);
  const size = a.shape[d];
  if (!Number.isInteger(index) || index < -size || index >= size) {
    throw new ShapeError('select', `index ${index} is out of range for dim ${dim} of size ${size}`);
  }
  const i = index < 0 ? index + size : index;
  return squeeze(narrow(a, d, i, 1), d);
}

/** Removes size-1 dims (all of them, or the ones listed). */
export function squeeze(a: Tensor, dim?: number | readonly number[]): Tensor {
  const dims = dim === undefined ? a.shape.map((_, i) => i) : (typeof dim === 'number' ? [dim] : [...dim]).map((d) => normalizeDim('squeeze', d, a.ndim));
  const keep = a.shape.map((s, i) => !(dims.includes(i) && s === 1));
  const inShape = a.shape;
  const out = view(a, a.shape.filter((_, i) => keep[i]), a.strides.filter((_, i) => keep[i]), a.offset);
  return record('squeeze', [a], out, [], (g) => [reshape(g, inShape)]);
}

/** Inserts a size-1 dim at `dim` (which may equal ndim). */
export function unsqueeze(a: Tensor, dim: number): Tensor {
  const d = normalizeDim('unsqueeze', dim, a.ndim + 1);
  const shape = [...a.shape];
  const strides = [...a.strides];
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < a.ndim ? a.strides[d] * a.shape[d] : 1);
  const inShape = a.shape;
  const out = view(a, shape, strides, a.offset);
  return record('unsqueeze', [a], out, [], (g) => [reshape(g, inShape)]);
}

/** Joins tensors along an existing dim; every other dim must match. */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new ValueError('cat', 'expected a non-empty list of tensors');
  const first = tensors[0];
  if (first.ndim === 0) throw new ShapeError('cat', 'zero-dimensional tensors cannot be concatenated; use stack(), or unsqueeze them first');
  const d = normalizeDim('cat', dim, first.ndim);
  tensors.forEach((t, i) => {
    if (t.ndim !== first.ndim || t.shape.some((s, j) => j !== d && s !== first.shape[j])) {
      throw new ShapeError('cat', `tensor ${i} has shape ${fmtShape(t.shape)} but tensor 0 has ${fmtShape(first.shape)}; all dims except dim ${dim} must match`);
    }
  });
  const dtype = tensors.map((t) => t.dtype).reduce(promoteTypes);
  const shape = [...first.shape];
  shape[d] = tensors.reduce((s, t) => s + t.shape[d], 0);
  const out = zeros(shape, { dtype });
  const sizes = tensors.map((t) => t.shape[d]);
  let at = 0;
  for (const t of tensors) {
    kernels().assign(narrowView(out, d, at, t.shape[d]), t);
    at += t.shape[d];
  }
  // the gradient of each piece is its slice of the incoming gradient
  return record('cat', tensors, out, [], (g, _, needs) => {
    let start = 0;
    return sizes.map((size, i) => {
      const piece = needs[i] ? narrow(g, d, start, size) : null;
      start += size;
      return piece;
    });
  });
}

/** A plain (unrecorded) narrow view, for writing into a freshly made output. */
function narrowView(t: Tensor, d: number, start: number, length: number) {
  const shape = [...t.shape];
  shape[d] = length;
  return { buffer: t.buffer, shape, strides: t.strides, offset: t.offset + start * t.strides[d] };
}

/** Joins same-shape tensors along a new dim. */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new ValueError('stack', 'expected a non-empty list of tensors');
  const first = tensors[0];
  tensors.forEach((t, i) => {
    if (!sameShape(t.shape, first.shape)) {
      throw new ShapeError('stack', `tensor ${i} has shape ${fmtShape(t.shape)} but tensor 0 has ${fmtShape(first.shape)}; stack needs equal shapes`);
    }
  });
  const d = normalizeDim('stack', dim, first.ndim + 1);
  return cat(tensors.map((t) => unsqueeze(t, d)), d);
}
