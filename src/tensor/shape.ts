/** Shape arithmetic: sizes, row-major strides, dims and NumPy/PyTorch broadcasting. */
import { DimError, ShapeError, ValueError, fmtShape } from '../errors';

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C order) strides: the last dim moves fastest. */
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/** True when a (shape, strides) pair walks memory in row-major order with no gaps. */
export function isContiguous(shape: Shape, strides: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * The most elements one tensor may hold: 2^32, the longest typed array V8 (Node.js, Chrome)
 * allows. Past it, allocating throws a bare RangeError that names neither the op nor the shape;
 * `checkNumel` refuses first. (A backend may allow less: backendInfo().maxElements.)
 */
export const MAX_NUMEL = 2 ** 32;

/** Throws a ValueError naming the op, the shape and its element count when it exceeds MAX_NUMEL. */
export function checkNumel(op: string, shape: Shape): void {
  const n = numel(shape);
  if (n > MAX_NUMEL) {
    throw new ValueError(
      op,
      `shape ${fmtShape(shape)} has ${n} elements, over the limit of ${MAX_NUMEL} (2^32, the longest typed array this JavaScript engine allows); use a smaller shape or split the tensor`,
    );
  }
}

/** Checks that every entry is a non-negative integer and the size fits MAX_NUMEL; returns a mutable copy. */
export function checkShape(op: string, shape: Shape): number[] {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ValueError(op, `invalid shape ${fmtShape(shape)}: sizes must be non-negative integers`);
    }
  }
  checkNumel(op, shape);
  return [...shape];
}

/** Maps a possibly negative dim into [0, ndim), or throws naming the op and the valid range. */
export function normalizeDim(op: string, dim: number, ndim: number): number {
  const lo = -Math.max(ndim, 1);
  const hi = Math.max(ndim, 1) - 1;
  if (!Number.isInteger(dim) || dim < lo || dim > hi) {
    throw new DimError(op, `dim ${dim} is out of range for a tensor with ${ndim} dims (expected a dim in [${lo}, ${hi}])`);
  }
  return dim < 0 ? dim + Math.max(ndim, 1) : dim;
}

/** Normalises a list of dims, rejecting repeats; undefined means every dim. */
export function normalizeDims(op: string, dims: number | readonly number[] | undefined, ndim: number): number[] {
  if (dims === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof dims === 'number' ? [dims] : [...dims];
  const out = list.map((d) => normalizeDim(op, d, ndim));
  if (new Set(out).size !== out.length) throw new DimError(op, `dim ${JSON.stringify(list)} repeats a dim`);
  return out.sort((x, y) => x - y);
}

/**
 * The shape two operands broadcast to: align trailing dims; each pair must be equal or one of
 * them 1. Throws a ShapeError naming both shapes otherwise.
 */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        op,
        `shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast (dim ${i - n}: ${da} vs ${db}); ` +
          'sizes must match or one of them be 1',
      );
    }
    out[i] = da === 1 ? db : da;
  }
  checkNumel(op, out); // [1e5, 1] + [1, 1e5] would allocate 1e10 elements
  return out;
}

/**
 * Strides that read a (shape, strides) tensor as if it had been expanded to `target`:
 * broadcast dims get stride 0, so no data is copied.
 */
export function broadcastStrides(shape: Shape, strides: readonly number[], target: Shape): number[] {
  const out = new Array<number>(target.length).fill(0);
  const offset = target.length - shape.length;
  for (let i = 0; i < shape.length; i++) {
    out[i + offset] = shape[i] === 1 && target[i + offset] !== 1 ? 0 : strides[i];
  }
  return out;
}
