/**
 * Walking strided views on typed arrays.
 *
 * The reference path lists each element's position once (`positions`, an Int32Array of offsets)
 * so every loop is a plain `for`; the `*Reference` kernels below use it and nothing else, and the
 * tests compare every fast path against them.
 *
 * The fast paths allocate no offsets. `coalesce` merges the dims that the views (one or several
 * over the same shape) walk as one, so a plain broadcast `[512, 1024] + [1024]` becomes 512 rows of
 * 1024 with strides (1024, 1) and (0, 1). `RowWalk` then steps an odometer over the rows and the
 * caller runs the last dim as an inner loop with its own stride per view: stride 1 for a
 * contiguous or row-repeated operand, stride 0 for a column-repeated one or a scalar. Contiguous
 * views need no walk at all.
 */
import type { BinaryOp, UnaryOp, View } from '../backend';
import { isContiguous, numel } from '../../tensor/shape';
import { BINARY, UNARY, binaryRun, binaryRunScalarA, binaryRunScalarB, binaryRunStrided, unaryRun, unaryRunStrided } from './math';

/** What the loops here read of a view: its layout (the buffer is passed as a compute array). */
export type Layout = Pick<View, 'shape' | 'strides' | 'offset'>;

/** Any typed (or plain) array the loops index. */
type Arr = { [i: number]: number; readonly length: number };
type Typed = Float64Array | Float32Array | Int32Array;

// ------------------------------------------------------------------ reference path

/** Positions of a view's elements in row-major order, or null when position = offset + i. */
export function positions(view: Layout): Int32Array | null {
  const { shape, strides, offset } = view;
  if (isContiguous(shape, strides)) return null;
  const n = numel(shape);
  const out = new Int32Array(n);
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  let pos = offset;
  for (let i = 0; i < n; i++) {
    out[i] = pos;
    // odometer increment: bump the last dim, carry into earlier ones
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      pos += strides[d];
      if (idx[d] < shape[d]) break;
      pos -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Reads a view into `out` (row-major), from a compute array `src`. */
export function gatherViewReference(src: Arr, view: Layout, out: Arr): void {
  const pos = positions(view);
  const n = out.length;
  if (pos === null) {
    const o = view.offset;
    for (let i = 0; i < n; i++) out[i] = src[o + i];
  } else {
    for (let i = 0; i < n; i++) out[i] = src[pos[i]];
  }
}

/** Writes `values` (row-major) into the view's elements of `target`. */
export function scatterViewReference(values: Arr, view: Layout, target: Arr): void {
  const n = numel(view.shape);
  const pos = positions(view);
  if (pos === null) for (let i = 0; i < n; i++) target[view.offset + i] = values[i];
  else for (let i = 0; i < n; i++) target[pos[i]] = values[i];
}

/** out[i] = op(x[i]) over a view, through the table of scalar functions. */
export function unaryReference(op: UnaryOp, src: Arr, x: Layout, out: Arr, p0: number, p1: number): void {
  const f = UNARY[op];
  const n = out.length;
  const pos = positions(x);
  for (let i = 0; i < n; i++) out[i] = f(src[pos === null ? x.offset + i : pos[i]], p0, p1);
}

/** out[i] = op(a[i], b[i]) over two views of the output's shape, through the table. */
export function binaryReference(op: BinaryOp, sa: Arr, a: Layout, sb: Arr, b: Layout, out: Arr): void {
  const f = BINARY[op];
  const n = out.length;
  const pa = positions(a);
  const pb = positions(b);
  for (let i = 0; i < n; i++) {
    out[i] = f(sa[pa === null ? a.offset + i : pa[i]], sb[pb === null ? b.offset + i : pb[i]]);
  }
}

// ------------------------------------------------------------------ walking without offsets

/**
 * The dims of views over one shape, merged where every view allows it: dims of size 1 are
 * dropped, and dim d folds into d+1 when each view has stride[d] = stride[d+1]·shape[d+1] (true of
 * contiguous runs and of runs of stride 0 alike). A single element comes back as shape [1].
 */
export function coalesce(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const k = strides.length;
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    const size = shape[d];
    if (size === 1) continue;
    const last = outShape.length - 1;
    let merge = last >= 0;
    for (let v = 0; v < k && merge; v++) merge = outStrides[v][last] === strides[v][d] * size;
    if (merge) {
      outShape[last] *= size;
      for (let v = 0; v < k; v++) outStrides[v][last] = strides[v][d];
    } else {
      outShape.push(size);
      for (let v = 0; v < k; v++) outStrides[v].push(strides[v][d]);
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    for (let v = 0; v < k; v++) outStrides[v].push(0);
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * Rows of one or more views over a common (non-empty) shape: after coalescing, the last dim is
 * the row (`inner` elements, `innerStride[v]` apart in view v) and an odometer over the other
 * dims gives each row's first position, `base[v]`. Usage:
 *
 *     const w = new RowWalk(shape, [a, b]);
 *     for (let r = 0; r < w.rows; r++, w.next()) { ...w.base[0], w.innerStride[0]... }
 */
export class RowWalk {
  readonly rows: number;
  readonly inner: number;
  readonly innerStride: number[];
  readonly base: number[];
  private readonly outerShape: number[];
  private readonly outerStrides: number[][];
  private readonly idx: number[];

  constructor(shape: readonly number[], views: readonly Layout[]) {
    const c = coalesce(shape, views.map((v) => v.strides));
    const nd = c.shape.length;
    this.inner = c.shape[nd - 1];
    this.innerStride = c.strides.map((s) => s[nd - 1]);
    this.outerShape = c.shape.slice(0, nd - 1);
    this.outerStrides = c.strides.map((s) => s.slice(0, nd - 1));
    this.rows = numel(this.outerShape);
    this.base = views.map((v) => v.offset);
    this.idx = this.outerShape.map(() => 0);
  }

  /** Moves `base` to the next row (odometer: bump the last outer dim, carry into earlier ones). */
  next(): void {
    const { outerShape, outerStrides, idx, base } = this;
    const k = base.length;
    for (let d = outerShape.length - 1; d >= 0; d--) {
      idx[d]++;
      for (let v = 0; v < k; v++) base[v] += outerStrides[v][d];
      if (idx[d] < outerShape[d]) return;
      for (let v = 0; v < k; v++) base[v] -= outerStrides[v][d] * outerShape[d];
      idx[d] = 0;
    }
  }
}

/** Reads a view into `out` (row-major), from a compute array `src`. */
export function gatherView(src: Arr, view: Layout, out: Arr): void {
  const n = out.length;
  if (n === 0) return;
  if (isContiguous(view.shape, view.strides)) {
    const o = view.offset;
    // typed arrays: a native copy (converting as element assignment does)
    if (ArrayBuffer.isView(src) && ArrayBuffer.isView(out)) (out as Typed).set((src as Typed).subarray(o, o + n));
    else for (let i = 0; i < n; i++) out[i] = src[o + i];
    return;
  }
  const w = new RowWalk(view.shape, [view]);
  const inner = w.inner;
  const s = w.innerStride[0];
  for (let r = 0, o = 0; r < w.rows; r++, o += inner, w.next()) {
    const b = w.base[0];
    if (s === 0) {
      const v = src[b];
      for (let i = 0; i < inner; i++) out[o + i] = v;
    } else if (s === 1) {
      for (let i = 0; i < inner; i++) out[o + i] = src[b + i];
    } else {
      for (let i = 0, p = b; i < inner; i++, p += s) out[o + i] = src[p];
    }
  }
}

/** Writes `values` (row-major) into the view's elements of `target`. */
export function scatterView(values: Arr, view: Layout, target: Arr): void {
  const n = values.length;
  if (n === 0) return;
  const w = new RowWalk(view.shape, [view]);
  const inner = w.inner;
  const s = w.innerStride[0];
  for (let r = 0, o = 0; r < w.rows; r++, o += inner, w.next()) {
    const b = w.base[0];
    if (s === 1) for (let i = 0; i < inner; i++) target[b + i] = values[o + i];
    else for (let i = 0, p = b; i < inner; i++, p += s) target[p] = values[o + i];
  }
}

/** out[i] = op(x[i]) over a view; hot ops run direct loops (see math.ts), the rest the table. */
export function unaryView(op: UnaryOp, src: Arr, x: Layout, out: Arr, p0: number, p1: number): void {
  const n = out.length;
  if (n === 0) return;
  if (isContiguous(x.shape, x.strides)) {
    unaryRun(op, src, x.offset, out, 0, n, p0, p1);
    return;
  }
  const w = new RowWalk(x.shape, [x]);
  const inner = w.inner;
  const s = w.innerStride[0];
  for (let r = 0, o = 0; r < w.rows; r++, o += inner, w.next()) {
    if (s === 1) unaryRun(op, src, w.base[0], out, o, inner, p0, p1);
    else unaryRunStrided(op, src, w.base[0], s, out, o, inner, p0, p1);
  }
}

/**
 * out[i] = op(a[i], b[i]) over two views of the output's shape (broadcast dims have stride 0).
 * Each row runs one of four loops by the operands' inner strides: both 1 (same-shape or
 * row-repeated), one of them 0 (a scalar, or a column-repeated operand), or any strides.
 */
export function binaryViews(op: BinaryOp, sa: Arr, a: Layout, sb: Arr, b: Layout, out: Arr): void {
  const n = out.length;
  if (n === 0) return;
  if (isContiguous(a.shape, a.strides) && isContiguous(b.shape, b.strides)) {
    binaryRun(op, sa, a.offset, sb, b.offset, out, 0, n);
    return;
  }
  const w = new RowWalk(a.shape, [a, b]);
  const inner = w.inner;
  const ta = w.innerStride[0];
  const tb = w.innerStride[1];
  for (let r = 0, o = 0; r < w.rows; r++, o += inner, w.next()) {
    const ia = w.base[0];
    const ib = w.base[1];
    if (ta === 1 && tb === 1) binaryRun(op, sa, ia, sb, ib, out, o, inner);
    else if (ta === 1 && tb === 0) binaryRunScalarB(op, sa, ia, sb[ib], out, o, inner);
    else if (ta === 0 && tb === 1) binaryRunScalarA(op, sa[ia], sb, ib, out, o, inner);
    else binaryRunStrided(op, sa, ia, ta, sb, ib, tb, out, o, inner);
  }
}

/** out[i] = c[i] !== 0 ? a[i] : b[i] over three views of the output's shape, any strides. */
export function whereViews(sc: Arr, c: Layout, sa: Arr, a: Layout, sb: Arr, b: Layout, out: Arr): void {
  const n = out.length;
  if (n === 0) return;
  const w = new RowWalk(c.shape, [c, a, b]);
  const inner = w.inner;
  const [tc, ta, tb] = w.innerStride;
  for (let r = 0, o = 0; r < w.rows; r++, o += inner, w.next()) {
    for (let i = 0, p = w.base[0], q = w.base[1], u = w.base[2]; i < inner; i++, p += tc, q += ta, u += tb) {
      out[o + i] = sc[p] !== 0 ? sa[q] : sb[u];
    }
  }
}

/** The smallest and largest buffer positions a view touches (a non-empty view). */
export function span(view: Layout): { lo: number; hi: number } {
  let lo = view.offset;
  let hi = view.offset;
  for (let d = 0; d < view.shape.length; d++) {
    const reach = view.strides[d] * (view.shape[d] - 1);
    if (reach < 0) lo += reach;
    else hi += reach;
  }
  return { lo, hi };
}
