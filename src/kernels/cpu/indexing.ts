/** Index kernels on contiguous row-major arrays: select/add along one dim, gather/scatter-add. */
import { contiguousStrides, numel } from '../../tensor/shape';

type Arr = { [i: number]: number; readonly length: number };

/** out[o, j, i] = x[o, index[j], i] where x is [outer, dimSize, inner]. */
export function indexSelect(x: Arr, index: Arr, outer: number, dimSize: number, inner: number, out: Arr): void {
  const n = index.length;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < n; j++) {
      const src = (o * dimSize + index[j]) * inner;
      const dst = (o * n + j) * inner;
      for (let i = 0; i < inner; i++) out[dst + i] = x[src + i];
    }
  }
}

/** The adjoint of indexSelect: out (zeros, [outer, dimSize, inner]) [o, index[j], i] += src[o, j, i]. */
export function indexAdd(src: Arr, index: Arr, outer: number, dimSize: number, inner: number, out: Arr): void {
  const n = index.length;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < n; j++) {
      const dst = (o * dimSize + index[j]) * inner;
      const from = (o * n + j) * inner;
      for (let i = 0; i < inner; i++) out[dst + i] += src[from + i];
    }
  }
}

/** For each position p of `index`, the flat position in an array of `shape` with coord `dim` := index[p]. */
function targets(index: Arr, indexShape: readonly number[], dim: number, shape: readonly number[]): Int32Array {
  const n = numel(indexShape);
  const strides = contiguousStrides(shape);
  const out = new Int32Array(n);
  const coord = new Array<number>(indexShape.length).fill(0);
  for (let p = 0; p < n; p++) {
    let pos = 0;
    for (let d = 0; d < indexShape.length; d++) pos += (d === dim ? index[p] : coord[d]) * strides[d];
    out[p] = pos;
    for (let d = indexShape.length - 1; d >= 0; d--) {
      if (++coord[d] < indexShape[d]) break;
      coord[d] = 0;
    }
  }
  return out;
}

export function gather(x: Arr, xShape: readonly number[], index: Arr, indexShape: readonly number[], dim: number, out: Arr): void {
  const pos = targets(index, indexShape, dim, xShape);
  for (let p = 0; p < pos.length; p++) out[p] = x[pos[p]];
}

export function scatterAdd(
  src: Arr,
  index: Arr,
  indexShape: readonly number[],
  dim: number,
  outShape: readonly number[],
  out: Arr,
): void {
  const pos = targets(index, indexShape, dim, outShape);
  for (let p = 0; p < pos.length; p++) out[pos[p]] += src[p];
}
