/**
 * Layout kernels of the gpu backend: `copy` gathers a strided view into a new contiguous buffer,
 * `assign` writes a source into a strided view of an existing buffer, in place.
 */
import type { BackendBuffer, View } from '../backend';
import type { DType } from '../../tensor/dtype';
import { numel } from '../../tensor/shape';
import { gatherView, scatterView } from '../cpu/strided';
import type { GpuBackend } from './backend';
import { float64Error, hostStore, type GpuBuffer } from './buffer';
import { collapse, divmod, layoutKey, store, viewOffset } from './codegen';

/** A view's elements, in row-major order, as a new contiguous buffer of `dtype`. */
export function copy(gpu: GpuBackend, x: View, dtype: DType): BackendBuffer {
  if (dtype === 'float64') throw float64Error();
  const n = numel(x.shape);
  const data = gpu.launch(
    'copy',
    n,
    `copy:${dtype}:${layoutKey(x)}`,
    () => `function(x, h) {
      ${viewOffset('o', 'this.thread.x', x, 'h[0]')}
      return ${store(dtype, 'x[o]')};
    }`,
    [gpu.input('copy', x.buffer), gpu.params([x.offset])],
  );
  const out = gpu.wrap(dtype, n, data);
  // an index tensor rearranged (a slice made contiguous, labels shifted) keeps a host copy too
  const host = (x.buffer as GpuBuffer).slot.host;
  if (host && dtype === 'int32' && x.buffer.dtype === 'int32') {
    const values = new Float32Array(n);
    gatherView(host, x, values);
    out.slot.host = values;
  }
  return out;
}

/**
 * In place: the destination buffer is rewritten whole, each position taking the source element
 * that the view puts there or keeping its old value. Finding "the element the view puts there"
 * inverts the view's index map, which is a greedy division by strides when the view does not
 * overlap itself (every view made by slicing, transposing or narrowing does). Any other view
 * (an expanded one, say) is assigned on the host, in the cpu backend's order.
 */
export function assign(gpu: GpuBackend, dst: View, src: View): void {
  const target = dst.buffer as GpuBuffer;
  const old = gpu.input('assign', target);
  const srcData = gpu.input('assign', src.buffer);
  const n = numel(dst.shape);
  if (n === 0) return;
  const dims = invertible(dst.shape, dst.strides);
  if (!dims) {
    assignOnHost(gpu, dst, src);
    return;
  }
  const dtype = target.dtype;
  const data = gpu.launch(
    'assign',
    target.length,
    `assign:${dtype}:${dims.map((d) => `${d.size}/${d.stride}/${d.rowStride}`).join(',')}:${layoutKey(src)}`,
    () => {
      const lines = ['let j = 0;', 'let inside = 1;', 'let rem = this.thread.x - h[0];', 'if (rem < 0) { inside = 0; rem = 0; }'];
      dims.forEach((d, k) => {
        lines.push(divmod(`c${k}`, `r${k}`, 'rem', d.stride));
        lines.push(`if (c${k} >= ${d.size}) { inside = 0; }`);
        lines.push(`j = j + c${k} * ${d.rowStride};`, `rem = r${k};`);
      });
      lines.push('if (rem != 0) { inside = 0; }');
      return `function(old, src, h) {
        ${lines.join('\n          ')}
        if (inside == 0) { return old[this.thread.x]; }
        ${viewOffset('o', 'j', src, 'h[1]')}
        return ${store(dtype, 'src[o]')};
      }`;
    },
    [old, srcData, gpu.params([dst.offset, src.offset])],
  );
  gpu.replace(target, data);
}

/** assign for a view that overlaps itself: on the host, in the cpu backend's order. */
function assignOnHost(gpu: GpuBackend, dst: View, src: View): void {
  const target = dst.buffer as GpuBuffer;
  const all = Float32Array.from(gpu.hostValues('assign', target));
  scatterView(hostStore(target.dtype, gpu.read(src)), dst, all);
  gpu.replace(target, gpu.runtime.toDevice(all));
}

/** One dimension of a view in the order the inverse index map divides by: largest stride first. */
interface InverseDim {
  size: number;
  stride: number;
  /** The dimension's stride in the row-major order of the view's elements. */
  rowStride: number;
}

/**
 * The view's dimensions sorted for inverting its index map, or null when the map is not
 * invertible by greedy division (each stride must exceed the span of all smaller ones).
 */
function invertible(shape: readonly number[], strides: readonly number[]): InverseDim[] | null {
  const { shape: s, strides: st } = collapse(shape, strides);
  const rowStrides: number[] = new Array<number>(s.length);
  let acc = 1;
  for (let d = s.length - 1; d >= 0; d--) {
    rowStrides[d] = acc;
    acc *= s[d];
  }
  const dims = s.map((size, d) => ({ size, stride: st[d], rowStride: rowStrides[d] }));
  if (dims.some((d) => d.stride <= 0)) return null;
  dims.sort((p, q) => q.stride - p.stride);
  let span = 0;
  for (let d = dims.length - 1; d >= 0; d--) {
    if (dims[d].stride <= span) return null;
    span += (dims[d].size - 1) * dims[d].stride;
  }
  return dims;
}
