/**
 * The cpu backend: buffers are typed arrays, kernels are plain loops. float16 and bfloat16
 * buffers hold raw bits; kernels widen them to float32 on the way in and round back on the way out, in bulk
 * (a view decodes only the span of the buffer it covers).
 *
 * `new CpuBackend({ reference: true })` runs the layout and elementwise kernels on the plain
 * reference path (a list of positions per strided operand, one table call per element, whole
 * 16-bit float buffers decoded, reductions over a middle axis through a transposed copy); the tests
 * check that the default fast paths give the same results.
 */
import type { AdamHyper, Backend, BackendBuffer, BackendInfo, BufferLedger, BinaryOp, CrossEntropyArgs, MatmulShape, ReduceOp, UnaryOp, View } from '../backend';
import { memoryTracker } from '../memory';
import { LedgerBuffer, releaseLedger } from '../ledger-buffer';
import { computeArrayFor, isHalf, itemSize, type ComputeArray, type DType, type HalfDType, type StorageArray } from '../../tensor/dtype';
import { halfCodec } from '../../tensor/half';
import { isContiguous, numel } from '../../tensor/shape';
import { checkSiluMul, checkSoftmaxBackward } from '../composite';
import { siluMulBackward, siluMulForward } from './silu-mul';
import {
  binaryReference,
  binaryViews,
  gatherView,
  gatherViewReference,
  scatterView,
  scatterViewReference,
  span,
  unaryReference,
  unaryView,
  whereViews,
  type Layout,
} from './strided';
import { matmul as matmulKernel } from './matmul';
import * as rows from './rows';
import * as indexing from './indexing';
import { rotaryRows } from './rotary';
import { adamStep } from './adam';

/** A typed array plus its ledger. */
class CpuBuffer extends LedgerBuffer {
  constructor(
    ledger: BufferLedger,
    dtype: DType,
    readonly data: StorageArray,
  ) {
    super(ledger, dtype);
  }
  get length() {
    return this.data.length;
  }
}

let nextId = 1;

/**
 * Where a kernel writes its results before they are stored. float16 and bfloat16 results are
 * computed into float64 and rounded once on the way to storage (through float32 they would be
 * rounded twice).
 */
function resultArray(dtype: DType, length: number): ComputeArray {
  return isHalf(dtype) ? new Float64Array(length) : computeArrayFor(dtype, length);
}

function storageFor(dtype: DType, length: number): StorageArray {
  switch (dtype) {
    case 'float64':
      return new Float64Array(length);
    case 'float32':
      return new Float32Array(length);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(length);
    case 'int32':
      return new Int32Array(length);
  }
}

export interface CpuBackendOptions {
  /** Run every kernel on the plain reference path (for tests); default false. */
  reference?: boolean;
}

export class CpuBackend implements Backend {
  readonly name: string = 'cpu';
  protected readonly reference: boolean;

  constructor(options: CpuBackendOptions = {}) {
    this.reference = options.reference ?? false;
  }

  info(): BackendInfo {
    return { backend: 'cpu', mode: 'cpu', precision: 'double', maxTextureSize: null, maxElements: null, kernelsCompiled: 0 };
  }

  // ---------------------------------------------------------------- storage

  /**
   * Wraps a storage array as a counted buffer (takes ownership of `data`). Every buffer the
   * kernels make goes through here, so a backend that keeps storage elsewhere (wasm) overrides it.
   */
  protected wrap(dtype: DType, data: StorageArray): BackendBuffer {
    const ledger: BufferLedger = {
      id: nextId++,
      backend: this.name,
      bytes: data.length * itemSize(dtype),
      category: 'other',
      refs: 0,
      released: false,
      version: 0,
    };
    memoryTracker.onAlloc(ledger);
    return new CpuBuffer(ledger, dtype, data);
  }

  /** Stores compute values (the 16-bit floats: rounded to bits) as a new buffer. */
  protected fromCompute(dtype: DType, values: ComputeArray): BackendBuffer {
    if (isHalf(dtype)) return this.wrap(dtype, halfCodec(dtype).encode(values));
    if (values instanceof storageCtor(dtype)) return this.wrap(dtype, values as StorageArray);
    const data = storageFor(dtype, values.length);
    data.set(values);
    return this.wrap(dtype, data);
  }

  /** The buffer's values as numbers to compute on (the 16-bit floats decoded; others shared, not copied). */
  protected compute(buf: BackendBuffer): ComputeArray {
    const data = (buf as CpuBuffer).data;
    if (buf.released) throw new Error(`cpu: buffer ${buf.id} was used after release`);
    return isHalf(buf.dtype) ? halfCodec(buf.dtype).decode(data as Uint16Array) : (data as ComputeArray);
  }

  /**
   * A view's values to compute on, with the layout to read them by. A 16-bit float decodes only the
   * span [lo, hi] of positions the view touches (a row of a big buffer decodes that row), and the
   * layout's offset moves by -lo to match; other dtypes share the storage.
   */
  private computeView(view: View): { src: ComputeArray; layout: Layout } {
    return this.computeViews([view])[0];
  }

  /** computeView for views of the same shape; views of one 16-bit float buffer share one decoded span. */
  private computeViews(views: readonly View[]): { src: ComputeArray; layout: Layout }[] {
    const buf = views[0].buffer;
    const sameBuffer = views.every((v) => v.buffer === buf);
    if (!sameBuffer) return views.map((v) => this.computeView(v));
    const dtype = buf.dtype;
    if (!isHalf(dtype) || this.reference || numel(views[0].shape) === 0) {
      const src = this.compute(buf);
      return views.map((layout) => ({ src, layout }));
    }
    if (buf.released) throw new Error(`cpu: buffer ${buf.id} was used after release`);
    const data = (buf as CpuBuffer).data as Uint16Array;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of views) {
      const s = span(v);
      lo = Math.min(lo, s.lo);
      hi = Math.max(hi, s.hi);
    }
    const { decode } = halfCodec(dtype);
    const src = lo === 0 && hi === data.length - 1 ? decode(data) : decode(data.subarray(lo, hi + 1));
    return views.map((v) => ({ src, layout: { shape: v.shape, strides: v.strides, offset: v.offset - lo } }));
  }

  /** Reads a view (row-major) into `out`. */
  private gatherInto(x: View, out: ComputeArray): void {
    const { src, layout } = this.computeView(x);
    if (this.reference) gatherViewReference(src, layout, out);
    else gatherView(src, layout, out);
  }

  zeros(dtype: DType, length: number): BackendBuffer {
    return this.wrap(dtype, storageFor(dtype, length));
  }

  full(dtype: DType, length: number, value: number): BackendBuffer {
    const values = resultArray(dtype, length);
    values.fill(value);
    return this.fromCompute(dtype, values);
  }

  upload(dtype: DType, values: ArrayLike<number>): BackendBuffer {
    if (isHalf(dtype)) return this.wrap(dtype, halfCodec(dtype).encode(values));
    const data = storageFor(dtype, values.length);
    data.set(values);
    return this.wrap(dtype, data);
  }

  uploadHalfBits(dtype: HalfDType, bits: Uint16Array): BackendBuffer {
    return this.wrap(dtype, Uint16Array.from(bits));
  }

  download(buf: BackendBuffer): StorageArray {
    return (buf as CpuBuffer).data.slice();
  }

  read(view: View): ComputeArray {
    const out = computeArrayFor(view.buffer.dtype, numel(view.shape));
    this.gatherInto(view, out);
    return out;
  }

  release(buf: BackendBuffer | BufferLedger): void {
    releaseLedger(buf); // the data goes with the last JavaScript reference
  }

  // ---------------------------------------------------------------- layout

  copy(x: View, dtype: DType): BackendBuffer {
    const out = resultArray(dtype, numel(x.shape));
    this.gatherInto(x, out);
    return this.fromCompute(dtype, out);
  }

  assign(dst: View, src: View): void {
    const n = numel(dst.shape);
    const values = resultArray(dst.buffer.dtype, n);
    this.gatherInto(src, values);
    const target = (dst.buffer as CpuBuffer).data;
    const stored = isHalf(dst.buffer.dtype) ? halfCodec(dst.buffer.dtype).encode(values) : values;
    if (this.reference) scatterViewReference(stored, dst, target);
    else if (isContiguous(dst.shape, dst.strides)) target.set(stored, dst.offset);
    else scatterView(stored, dst, target);
  }

  // ---------------------------------------------------------------- elementwise

  unary(op: UnaryOp, x: View, outDtype: DType, params: readonly number[] = []): BackendBuffer {
    const out = resultArray(outDtype, numel(x.shape));
    const { src, layout } = this.computeView(x);
    const p0 = params[0] ?? 0;
    const p1 = params[1] ?? 0;
    if (this.reference) unaryReference(op, src, layout, out, p0, p1);
    else unaryView(op, src, layout, out, p0, p1);
    return this.fromCompute(outDtype, out);
  }

  binary(op: BinaryOp, a: View, b: View, outDtype: DType): BackendBuffer {
    const out = resultArray(outDtype, numel(a.shape));
    // operands on one 16-bit float buffer (x * x) decode it once
    const [va, vb] = this.computeViews([a, b]);
    if (this.reference) binaryReference(op, va.src, va.layout, vb.src, vb.layout, out);
    else binaryViews(op, va.src, va.layout, vb.src, vb.layout, out);
    return this.fromCompute(outDtype, out);
  }

  where(cond: View, a: View, b: View, outDtype: DType): BackendBuffer {
    const n = numel(cond.shape);
    const out = resultArray(outDtype, n);
    if (this.reference) {
      const c = this.read(cond);
      const va = this.read(a);
      const vb = this.read(b);
      for (let i = 0; i < n; i++) out[i] = c[i] !== 0 ? va[i] : vb[i];
    } else {
      const [vc, va, vb] = [cond, a, b].map((v) => this.computeView(v));
      whereViews(vc.src, vc.layout, va.src, va.layout, vb.src, vb.layout, out);
    }
    return this.fromCompute(outDtype, out);
  }

  rotary(x: View, cos: View, sin: View, outDtype: DType, transpose: boolean): BackendBuffer {
    const n = numel(x.shape);
    const d = x.shape[x.shape.length - 1];
    const out = resultArray(outDtype, n);
    rotaryRows(this.read(x), this.read(cos), this.read(sin), n === 0 ? 0 : n / d, d / 2, transpose, roundTo(outDtype), out);
    return this.fromCompute(outDtype, out);
  }

  siluMul(a: BackendBuffer, b: BackendBuffer, withSigmoid: boolean) {
    checkSiluMul('siluMul', { a, b });
    const out = resultArray(a.dtype, a.length);
    const sigmoid = withSigmoid ? resultArray(a.dtype, a.length) : null;
    siluMulForward(this.compute(a), this.compute(b), a.length, roundTo(a.dtype), out, sigmoid);
    return { out: this.fromCompute(a.dtype, out), sigmoid: sigmoid && this.fromCompute(a.dtype, sigmoid) };
  }

  siluMulBackward(grad: BackendBuffer, a: BackendBuffer, b: BackendBuffer, sigmoid: BackendBuffer, needA: boolean, needB: boolean) {
    checkSiluMul('siluMul (backward)', { grad, a, b, sigmoid });
    const [gradA, gradB] = [needA, needB].map((need) => (need ? resultArray(a.dtype, a.length) : null));
    siluMulBackward(this.compute(grad), this.compute(a), this.compute(b), this.compute(sigmoid), a.length, roundTo(a.dtype), gradA, gradB);
    return { gradA: gradA && this.fromCompute(a.dtype, gradA), gradB: gradB && this.fromCompute(a.dtype, gradB) };
  }

  // ---------------------------------------------------------------- reductions

  reduceLast(op: ReduceOp, x: BackendBuffer, outer: number, inner: number): BackendBuffer {
    const out = resultArray(x.dtype, outer);
    rows.reduceRows(op, this.compute(x), outer, inner, out);
    return this.fromCompute(x.dtype, out);
  }

  reduceMiddle(op: ReduceOp, x: BackendBuffer, outer: number, mid: number, inner: number): BackendBuffer {
    const out = resultArray(x.dtype, outer * inner);
    const src = this.compute(x);
    if (this.reference) {
      // the plain path: transpose to [outer, inner, mid], then reduce rows
      const moved = resultArray(x.dtype, outer * mid * inner);
      gatherViewReference(src, { shape: [outer, inner, mid], strides: [mid * inner, 1, inner], offset: 0 }, moved);
      rows.reduceRows(op, moved, outer * inner, mid, out);
    } else {
      rows.reduceMiddle(op, src, outer, mid, inner, out);
    }
    return this.fromCompute(x.dtype, out);
  }

  argReduceLast(op: 'max' | 'min', x: BackendBuffer, outer: number, inner: number): BackendBuffer {
    const out = new Int32Array(outer);
    rows.argReduceRows(op, this.compute(x), outer, inner, out);
    return this.wrap('int32', out);
  }

  // ---------------------------------------------------------------- matmul

  matmul(a: BackendBuffer, b: BackendBuffer, shape: MatmulShape, outDtype: DType): BackendBuffer {
    const out = resultArray(outDtype, shape.batch * shape.m * shape.n);
    matmulKernel(this.compute(a), this.compute(b), out, shape);
    return this.fromCompute(outDtype, out);
  }

  // ---------------------------------------------------------------- fused rows

  softmaxLast(x: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer {
    const out = resultArray(x.dtype, outer * inner);
    rows.softmaxRows(this.compute(x), outer, inner, log, out);
    return this.fromCompute(x.dtype, out);
  }

  softmaxBackwardLast(y: BackendBuffer, grad: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer {
    checkSoftmaxBackward(y, grad, outer, inner, log);
    const dtype = y.dtype;
    const out = resultArray(dtype, outer * inner);
    rows.softmaxBackwardRows(this.compute(y), this.compute(grad), outer, inner, log, roundTo(dtype), out);
    return this.fromCompute(dtype, out);
  }

  normalizeLast(kind: 'layer' | 'rms', x: BackendBuffer, outer: number, inner: number, eps: number) {
    const normalized = resultArray(x.dtype, outer * inner);
    const rstd = resultArray(x.dtype, outer);
    rows.normalizeRows(kind, this.compute(x), outer, inner, eps, normalized, rstd);
    return { normalized: this.fromCompute(x.dtype, normalized), rstd: this.fromCompute(x.dtype, rstd) };
  }

  normalizeBackwardLast(kind: 'layer' | 'rms', grad: BackendBuffer, normalized: BackendBuffer, rstd: BackendBuffer, outer: number, inner: number): BackendBuffer {
    const dtype = normalized.dtype;
    const out = resultArray(dtype, outer * inner);
    rows.normalizeBackwardRows(kind, this.compute(grad), this.compute(normalized), this.compute(rstd), outer, inner, out);
    return this.fromCompute(dtype, out);
  }

  crossEntropyLast(logits: BackendBuffer, target: BackendBuffer, args: CrossEntropyArgs): BackendBuffer {
    const out = resultArray(logits.dtype, args.outer);
    rows.crossEntropyRows(this.compute(logits), this.compute(target), args, out);
    return this.fromCompute(logits.dtype, out);
  }

  crossEntropyBackwardLast(logits: BackendBuffer, target: BackendBuffer, gradRow: BackendBuffer, args: CrossEntropyArgs): BackendBuffer {
    const out = resultArray(logits.dtype, args.outer * args.classes);
    rows.crossEntropyBackwardRows(this.compute(logits), this.compute(target), this.compute(gradRow), args, out);
    return this.fromCompute(logits.dtype, out);
  }

  // ---------------------------------------------------------------- indexing

  indexSelect(x: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer {
    const idx = this.compute(index);
    const out = resultArray(x.dtype, outer * idx.length * inner);
    indexing.indexSelect(this.compute(x), idx, outer, dimSize, inner, out);
    return this.fromCompute(x.dtype, out);
  }

  indexAdd(src: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer {
    const out = resultArray(src.dtype, outer * dimSize * inner);
    indexing.indexAdd(this.compute(src), this.compute(index), outer, dimSize, inner, out);
    return this.fromCompute(src.dtype, out);
  }

  gather(x: BackendBuffer, xShape: readonly number[], index: BackendBuffer, indexShape: readonly number[], dim: number) {
    const out = resultArray(x.dtype, numel(indexShape));
    indexing.gather(this.compute(x), xShape, this.compute(index), indexShape, dim, out);
    return this.fromCompute(x.dtype, out);
  }

  scatterAdd(src: BackendBuffer, index: BackendBuffer, indexShape: readonly number[], dim: number, outShape: readonly number[]) {
    const out = resultArray(src.dtype, numel(outShape));
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

  // ---------------------------------------------------------------- optimizer

  adamUpdate(param: View, grad: View, expAvg: BackendBuffer, expAvgSq: BackendBuffer, maxExpAvgSq: BackendBuffer | null, h: AdamHyper): void {
    const n = numel(param.shape);
    const bufs = [param.buffer, grad.buffer, expAvg, expAvgSq, ...(maxExpAvgSq ? [maxExpAvgSq] : [])];
    if (bufs.some((b) => b.dtype === 'int32')) throw new Error('cpu: adamUpdate needs floating buffers');
    if (numel(grad.shape) !== n || [expAvg, expAvgSq, maxExpAvgSq].some((b) => b !== null && b.length !== n)) {
      throw new Error(`cpu: adamUpdate got ${n} parameter elements but buffers of other lengths`);
    }
    const g = this.read(grad);
    // 16-bit float parameters are computed in doubles and rounded once (no float32 detour)
    const p = isHalf(param.buffer.dtype) ? Float64Array.from(this.read(param)) : this.read(param);
    const m = floatsInPlace(expAvg);
    const v = floatsInPlace(expAvgSq);
    const vmax = maxExpAvgSq ? floatsInPlace(maxExpAvgSq) : null;
    adamStep(p, g, m.values, v.values, vmax ? vmax.values : null, n, h);
    m.commit();
    v.commit();
    vmax?.commit();
    const target = (param.buffer as CpuBuffer).data;
    const stored = isHalf(param.buffer.dtype) ? halfCodec(param.buffer.dtype).encode(p) : p;
    if (this.reference) scatterViewReference(stored, param, target);
    else if (isContiguous(param.shape, param.strides)) target.set(stored, param.offset);
    else scatterView(stored, param, target);
  }
}

/** A float buffer's values to update in place: its storage, or for a 16-bit float a decoded copy that commit() rounds back. */
function floatsInPlace(buf: BackendBuffer): { values: Float32Array | Float64Array; commit(): void } {
  const data = (buf as CpuBuffer).data;
  if (buf.released) throw new Error(`cpu: buffer ${buf.id} was used after release`);
  const dtype = buf.dtype;
  if (!isHalf(dtype)) return { values: data as Float32Array | Float64Array, commit() {} };
  const codec = halfCodec(dtype);
  const values = Float64Array.from(codec.decode(data as Uint16Array));
  return { values, commit: () => void codec.encode(values, data as Uint16Array) };
}

function storageCtor(dtype: DType): Function {
  return dtype === 'float64' ? Float64Array : dtype === 'int32' ? Int32Array : Float32Array;
}

/** The rounding of a value to `dtype`'s storage, for kernels that round each step as a composite would. */
function roundTo(dtype: DType): (v: number) => number {
  return dtype === 'float32' ? Math.fround : isHalf(dtype) ? halfCodec(dtype).round : (v: number) => v;
}

