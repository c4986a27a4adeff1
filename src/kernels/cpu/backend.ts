/**
 * The cpu backend: buffers are typed arrays, kernels are plain loops. float16 buffers hold raw
 * bits; kernels widen them to float32 on the way in and round back on the way out, in bulk.
 */
import type { Backend, BackendBuffer, BinaryOp, MatmulShape, ReduceOp, UnaryOp, View } from '../backend';
import { memoryTracker } from '../memory';
import { computeArrayFor, itemSize, type ComputeArray, type DType, type StorageArray } from '../../tensor/dtype';
import { decodeFloat16, encodeFloat16 } from '../../tensor/float16';
import { numel } from '../../tensor/shape';
import { BINARY, UNARY } from './math';
import { gatherView, positions } from './strided';
import { matmul as matmulKernel } from './matmul';
import * as rows from './rows';
import * as indexing from './indexing';

export interface CpuBuffer extends BackendBuffer {
  readonly data: StorageArray;
}

let nextId = 1;

function storageFor(dtype: DType, length: number): StorageArray {
  switch (dtype) {
    case 'float64':
      return new Float64Array(length);
    case 'float32':
      return new Float32Array(length);
    case 'float16':
      return new Uint16Array(length);
    case 'int32':
      return new Int32Array(length);
  }
}

export class CpuBackend implements Backend {
  readonly name = 'cpu';

  // ---------------------------------------------------------------- storage

  /** Wraps a storage array as a counted buffer (takes ownership of `data`). */
  private wrap(dtype: DType, data: StorageArray): CpuBuffer {
    const buf: CpuBuffer = {
      id: nextId++,
      backend: this.name,
      dtype,
      length: data.length,
      bytes: data.length * itemSize(dtype),
      category: 'other',
      refs: 0,
      released: false,
      data,
    };
    memoryTracker.onAlloc(buf);
    return buf;
  }

  /** Stores compute values (float16: round to bits) as a new buffer. */
  private fromCompute(dtype: DType, values: ComputeArray): CpuBuffer {
    if (dtype === 'float16') return this.wrap(dtype, encodeFloat16(values));
    if (values instanceof storageCtor(dtype)) return this.wrap(dtype, values as StorageArray);
    const data = storageFor(dtype, values.length);
    data.set(values);
    return this.wrap(dtype, data);
  }

  /** The buffer's values as numbers to compute on (float16 decoded; others shared, not copied). */
  private compute(buf: BackendBuffer): ComputeArray {
    const data = (buf as CpuBuffer).data;
    if (buf.released) throw new Error(`cpu: buffer ${buf.id} was used after release`);
    return buf.dtype === 'float16' ? decodeFloat16(data as Uint16Array) : (data as ComputeArray);
  }

  zeros(dtype: DType, length: number): BackendBuffer {
    return this.wrap(dtype, storageFor(dtype, length));
  }

  full(dtype: DType, length: number, value: number): BackendBuffer {
    const values = computeArrayFor(dtype, length);
    values.fill(value);
    return this.fromCompute(dtype, values);
  }

  upload(dtype: DType, values: ArrayLike<number>): BackendBuffer {
    if (dtype === 'float16') return this.wrap(dtype, encodeFloat16(values));
    const data = storageFor(dtype, values.length);
    data.set(values);
    return this.wrap(dtype, data);
  }

  uploadFloat16Bits(bits: Uint16Array): BackendBuffer {
    return this.wrap('float16', Uint16Array.from(bits));
  }

  download(buf: BackendBuffer): StorageArray {
    return (buf as CpuBuffer).data.slice();
  }

  read(view: View): ComputeArray {
    const out = computeArrayFor(view.buffer.dtype, numel(view.shape));
    gatherView(this.compute(view.buffer), view, out);
    return out;
  }

  release(buf: BackendBuffer): void {
    if (buf.released) return;
    buf.released = true;
    memoryTracker.onRelease(buf);
  }

  // ---------------------------------------------------------------- layout

  copy(x: View, dtype: DType): BackendBuffer {
    const out = computeArrayFor(dtype, numel(x.shape));
    gatherView(this.compute(x.buffer), x, out);
    return this.fromCompute(dtype, out);
  }

  assign(dst: View, src: View): void {
    const n = numel(dst.shape);
    const values = computeArrayFor(dst.buffer.dtype, n);
    gatherView(this.compute(src.buffer), src, values);
    const target = (dst.buffer as CpuBuffer).data;
    const stored = dst.buffer.dtype === 'float16' ? encodeFloat16(values) : values;
    const pos = positions(dst);
    if (pos === null) target.set(stored, dst.offset);
    else for (let i = 0; i < n; i++) target[pos[i]] = stored[i];
  }

  // ---------------------------------------------------------------- elementwise

  unary(op: UnaryOp, x: View, outDtype: DType, params: readonly number[] = []): BackendBuffer {
    const n = numel(x.shape);
    const src = this.compute(x.buffer);
    const out = computeArrayFor(outDtype, n);
    const f = UNARY[op];
    const p0 = params[0] ?? 0;
    const p1 = params[1] ?? 0;
    const pos = positions(x);
    if (pos === null) {
      const o = x.offset;
      for (let i = 0; i < n; i++) out[i] = f(src[o + i], p0, p1);
    } else {
      for (let i = 0; i < n; i++) out[i] = f(src[pos[i]], p0, p1);
    }
    return this.fromCompute(outDtype, out);
  }

  binary(op: BinaryOp, a: View, b: View, outDtype: DType): BackendBuffer {
    const n = numel(a.shape);
    const sa = this.compute(a.buffer);
    const sb = this.compute(b.buffer);
    const out = computeArrayFor(outDtype, n);
    const f = BINARY[op];
    const pa = positions(a);
    const pb = positions(b);
    if (pa === null && pb === null) {
      const oa = a.offset;
      const ob = b.offset;
      for (let i = 0; i < n; i++) out[i] = f(sa[oa + i], sb[ob + i]);
    } else {
      for (let i = 0; i < n; i++) {
        out[i] = f(sa[pa === null ? a.offset + i : pa[i]], sb[pb === null ? b.offset + i : pb[i]]);
      }
    }
    return this.fromCompute(outDtype, out);
  }

  where(cond: View, a: View, b: View, outDtype: DType): BackendBuffer {
    const n = numel(cond.shape);
    const c = this.read(cond);
    const va = this.read(a);
    const vb = this.read(b);
    const out = computeArrayFor(outDtype, n);
    for (let i = 0; i < n; i++) out[i] = c[i] !== 0 ? va[i] : vb[i];
    return this.fromCompute(outDtype, out);
  }

  // ---------------------------------------------------------------- reductions

  reduceLast(op: ReduceOp, x: BackendBuffer, outer: number, inner: number): BackendBuffer {
    const out = computeArrayFor(x.dtype, outer);
    rows.reduceRows(op, this.compute(x), outer, inner, out);
    return this.fromCompute(x.dtype, out);
  }

  argReduceLast(op: 'max' | 'min', x: BackendBuffer, outer: number, inner: number): BackendBuffer {
    const out = new Int32Array(outer);
    rows.argReduceRows(op, this.compute(x), outer, inner, out);
    return this.wrap('int32', out);
  }

  // ---------------------------------------------------------------- matmul

  matmul(a: BackendBuffer, b: BackendBuffer, shape: MatmulShape, outDtype: DType): BackendBuffer {
    const out = computeArrayFor(outDtype, shape.batch * shape.m * shape.n);
    matmulKernel(this.compute(a), this.compute(b), out, shape);
    return this.fromCompute(outDtype, out);
  }

  // ---------------------------------------------------------------- fused rows

  softmaxLast(x: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer {
    const out = computeArrayFor(x.dtype, outer * inner);
    rows.softmaxRows(this.compute(x), outer, inner, log, out);
    return this.fromCompute(x.dtype, out);
  }

  normalizeLast(kind: 'layer' | 'rms', x: BackendBuffer, outer: number, inner: number, eps: number) {
    const normalized = computeArrayFor(x.dtype, outer * inner);
    const rstd = computeArrayFor(x.dtype, outer);
    rows.normalizeRows(kind, this.compute(x), outer, inner, eps, normalized, rstd);
    return { normalized: this.fromCompute(x.dtype, normalized), rstd: this.fromCompute(x.dtype, rstd) };
  }

  crossEntropyLast(
    logits: BackendBuffer,
    target: BackendBuffer,
    outer: number,
    classes: number,
    ignoreIndex: number,
    labelSmoothing: number,
  ): BackendBuffer {
    const out = computeArrayFor(logits.dtype, outer);
    rows.crossEntropyRows(this.compute(logits), this.compute(target), outer, classes, ignoreIndex, labelSmoothing, out);
    return this.fromCompute(logits.dtype, out);
  }

  crossEntropyBackwardLast(
    logits: BackendBuffer,
    target: BackendBuffer,
    gradRow: BackendBuffer,
    outer: number,
    classes: number,
    ignoreIndex: number,
    labelSmoothing: number,
  ): BackendBuffer {
    const out = computeArrayFor(logits.dtype, outer * classes);
    rows.crossEntropyBackwardRows(
      this.compute(logits),
      this.compute(target),
      this.compute(gradRow),
      outer,
      classes,
      ignoreIndex,
      labelSmoothing,
      out,
    );
    return this.fromCompute(logits.dtype, out);
  }

  // ---------------------------------------------------------------- indexing

  indexSelect(x: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer {
    const idx = this.compute(index);
    const out = computeArrayFor(x.dtype, outer * idx.length * inner);
    indexing.indexSelect(this.compute(x), idx, outer, dimSize, inner, out);
    return this.fromCompute(x.dtype, out);
  }

  indexAdd(src: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer {
    const out = computeArrayFor(src.dtype, outer * dimSize * inner);
    indexing.indexAdd(this.compute(src), this.compute(index), outer, dimSize, inner, out);
    return this.fromCompute(src.dtype, out);
  }

  gather(x: BackendBuffer, xShape: readonly number[], index: BackendBuffer, indexShape: readonly number[], dim: number) {
    const out = computeArrayFor(x.dtype, numel(indexShape));
    indexing.gather(this.compute(x), xShape, this.compute(index), indexShape, dim, out);
    return this.fromCompute(x.dtype, out);
  }

  scatterAdd(src: BackendBuffer, index: BackendBuffer, indexShape: readonly number[], dim: number, outShape: readonly number[]) {
    const out = computeArrayFor(src.dtype, numel(outShape));
    indexing.scatterAdd(this.compute(src), this.compute(index), indexShape, dim, outShape, out);
    return this.fromCompute(src.dtype, out);
  }

  triangleMask(rowsN: number, cols: number, k: number, lower: boolean): BackendBuffer {
    const out = new Int32Array(rowsN * cols);
    for (let r = 0; r < rowsN; r++) {
      for (let c = 0; c < cols; c++) out[r * cols + c] = (lower ? c - r <= k : c - r >= k) ? 1 : 0;
    }
    return this.wrap('int32', out);
  }
}

function storageCtor(dtype: DType): Function {
  return dtype === 'float64' ? Float64Array : dtype === 'int32' ? Int32Array : Float32Array;
}
