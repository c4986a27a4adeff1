/**
 * Walking strided views on typed arrays. A view is contiguous when element i sits at
 * offset + i; otherwise we list each element's position once (an Int32Array of offsets),
 * which keeps every elementwise loop a plain `for`.
 */
import type { View } from '../backend';
import { isContiguous, numel } from '../../tensor/shape';

/** Positions of a view's elements in row-major order, or null when position = offset + i. */
export function positions(view: View): Int32Array | null {
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
export function gatherView(src: ArrayLike<number>, view: View, out: { [i: number]: number; length: number }): void {
  const pos = positions(view);
  const n = out.length;
  if (pos === null) {
    const o = view.offset;
    for (let i = 0; i < n; i++) out[i] = src[o + i];
  } else {
    for (let i = 0; i < n; i++) out[i] = src[pos[i]];
  }
}
