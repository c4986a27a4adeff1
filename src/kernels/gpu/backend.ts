/**
 * The gpu backend: the same `Backend` interface as cpu, with every kernel a gpu.js kernel. Data
 * stays on the device between kernels (textures on the GL modes) and is read back only by
 * `download`/`read`, that is when the user asks for values. This file holds storage and the
 * plumbing every kernel file uses (input checks, launching, wrapping results as buffers); the
 * kernels are in layout.ts, elementwise.ts, rows.ts, matmul.ts, indexing.ts and adam.ts.
 */
import type { AdamHyper, Backend, BackendBuffer, BackendInfo, BufferLedger, BinaryOp, CrossEntropyArgs, MatmulShape, ReduceOp, UnaryOp, View } from '../backend';
import { memoryTracker } from '../memory';
import { releaseLedger } from '../ledger-buffer';
import { computeArrayFor, itemSize, type ComputeArray, type DType, type HalfDType, type StorageArray } from '../../tensor/dtype';
import { halfCodec } from '../../tensor/half';
import { numel } from '../../tensor/shape';
import { gatherView } from '../cpu/strided';
import { BackendError } from '../../errors';
import { GpuRuntime, MAX_ELEMENTS, type DeviceData, type KernelSpec } from './runtime';
import { autoMode, type GpuBackendOptions } from './modes';
import { GpuBuffer, float64Error, hostStore, type Slot } from './buffer';
import * as layout from './layout';
import * as elementwise from './elementwise';
import * as rows from './rows';
import { matmul as matmulKernel } from './matmul';
import * as indexing from './indexing';
import { adamUpdate as adamKernel } from './adam';
import {
  checkSoftmaxBackward,
  normalizeBackwardComposite,
  rotaryComposite,
  siluMulBackwardComposite,
  siluMulComposite,
  softmaxBackwardComposite,
} from '../composite';

let nextId = 1;

/** Stands in for an empty input that a kernel never reads (see launch). */
const UNREAD = new Float32Array(1);

export class GpuBackend implements Backend {
  readonly name = 'gpu';
  readonly runtime: GpuRuntime;
  /** Device data by ledger id, so that release(ledger) can free a texture without the buffer. */
  private readonly slots = new Map<number, Slot>();

  constructor(options: GpuBackendOptions = {}) {
    this.runtime = new GpuRuntime(options.mode);
  }

  info(): BackendInfo {
    return this.runtime.info();
  }

  accepts(options: Readonly<Record<string, unknown>>): boolean {
    const mode = (options as GpuBackendOptions).mode;
    return (mode ?? autoMode()) === this.runtime.mode;
  }

  dispose(): void {
    this.slots.clear();
    this.runtime.destroy();
  }

  // ---------------------------------------------------------------- plumbing for the kernel files

  /** A buffer's device data, after checking that this backend owns it and it is alive. */
  input(op: string, buf: BackendBuffer): DeviceData {
    if (!(buf instanceof GpuBuffer)) {
      throw new BackendError(
        op,
        `a tensor on the '${buf.backend}' backend was given to the gpu backend; create tensors after setBackend('gpu') ` +
          `or run the op with setBackend('${buf.backend}')`,
      );
    }
    if (buf.slot.runtime !== this.runtime) {
      throw new BackendError(
        op,
        `buffer ${buf.id} belongs to an earlier gpu backend instance, replaced when setBackend('gpu', ...) asked for another mode; ` +
          'its data went with it: recreate the tensor',
      );
    }
    if (buf.released) throw new BackendError(op, `buffer ${buf.id} was used after release`);
    return buf.slot.data;
  }

  /**
   * Runs a kernel with `n` outputs; n = 0 runs nothing. gpu.js cannot take an empty array as an
   * argument, so an empty input (a matmul with k = 0, a sum over an empty axis) is passed as one
   * unused element: the kernel's loops, written from the same shapes, never read it.
   */
  launch(op: string, n: number, key: string, spec: () => string, args: readonly unknown[]): DeviceData {
    this.checkSize(op, n);
    if (n === 0) return new Float32Array(0);
    const nonEmpty = args.map((a) => (a instanceof Float32Array && a.length === 0 ? UNREAD : a));
    return this.runtime.run(`${key}#${n}`, (): KernelSpec => ({ source: spec(), output: n }), nonEmpty);
  }

  /** Refuses a buffer the device cannot address exactly (see GpuRuntime.maxElements), before allocating it. */
  private checkSize(op: string, n: number): void {
    const limit = this.runtime.maxElements;
    if (n > limit) {
      const why =
        limit === MAX_ELEMENTS
          ? '2^24, the largest flat index float32 shader arithmetic addresses exactly'
          : `a square texture of this device's largest side, ${this.runtime.maxTextureSize}`;
      throw new BackendError(op, `a buffer of ${n} elements exceeds the gpu backend's limit of ${limit} (${why}); split the tensor or use the cpu backend`);
    }
  }

  /** Wraps device data as a new counted buffer. */
  wrap(dtype: DType, length: number, data: DeviceData): GpuBuffer {
    if (dtype === 'float64') {
      this.runtime.free(data);
      throw float64Error();
    }
    const ledger: BufferLedger = {
      id: nextId++,
      backend: this.name,
      bytes: length * itemSize(dtype),
      category: 'other',
      refs: 0,
      released: false,
      version: 0,
    };
    memoryTracker.onAlloc(ledger);
    const slot: Slot = { data, runtime: this.runtime };
    this.slots.set(ledger.id, slot);
    return new GpuBuffer(ledger, dtype, length, slot);
  }

  /** In place: the buffer now holds `data`; the old texture is freed. */
  replace(buf: GpuBuffer, data: DeviceData): void {
    const old = buf.slot.data;
    buf.slot.data = data;
    buf.slot.host = undefined;
    if (old !== data) this.runtime.free(old);
  }

  /** Small per-call values (offsets, hyperparameters) as a kernel argument; never part of a cache key. */
  params(values: readonly number[]): Float32Array {
    return Float32Array.from(values.length === 0 ? [0] : values);
  }

  // ---------------------------------------------------------------- storage

  zeros(dtype: DType, length: number): BackendBuffer {
    return this.full(dtype, length, 0);
  }

  full(dtype: DType, length: number, value: number): BackendBuffer {
    if (dtype === 'float64') throw float64Error();
    const stored = hostStore(dtype, [value])[0];
    const data = this.launch('full', length, 'full', () => 'function(h) { return h[0]; }', [this.params([stored])]);
    return this.wrap(dtype, length, data);
  }

  upload(dtype: DType, values: ArrayLike<number>): BackendBuffer {
    if (dtype === 'float64') throw float64Error();
    this.checkSize('upload', values.length);
    const stored = hostStore(dtype, values);
    const buf = this.wrap(dtype, values.length, this.runtime.toDevice(stored));
    if (dtype === 'int32') buf.slot.host = stored;
    return buf;
  }

  /** A buffer's values on the host: its kept host copy (see Slot.host), else a readback. */
  hostValues(op: string, buf: BackendBuffer): Float32Array {
    const data = this.input(op, buf);
    return (buf as GpuBuffer).slot.host ?? this.runtime.toHost(data);
  }

  uploadHalfBits(dtype: HalfDType, bits: Uint16Array): BackendBuffer {
    return this.upload(dtype, halfCodec(dtype).decode(bits));
  }

  download(buf: BackendBuffer): StorageArray {
    const values = this.hostValues('download', buf);
    switch (buf.dtype) {
      case 'float16':
      case 'bfloat16':
        return halfCodec(buf.dtype).encode(values);
      case 'int32':
        return Int32Array.from(values);
      default:
        return values === (buf as GpuBuffer).slot.data ? values.slice() : values;
    }
  }

  read(view: View): ComputeArray {
    // the whole buffer comes back (one readback), then the view is walked on the host
    const all = this.hostValues('read', view.buffer);
    const out = computeArrayFor(view.buffer.dtype, numel(view.shape));
    gatherView(all, view, out);
    return out;
  }

  release(buf: BackendBuffer | BufferLedger): void {
    const ledger = releaseLedger(buf);
    if (!ledger) return;
    // a buffer of an earlier, replaced gpu instance is not in this table: its data went with it
    const slot = this.slots.get(ledger.id);
    if (slot) {
      this.slots.delete(ledger.id);
      this.runtime.free(slot.data);
    }
  }

  // ---------------------------------------------------------------- kernels, in their own files

  copy(x: View, dtype: DType): BackendBuffer {
    return layout.copy(this, x, dtype);
  }

  assign(dst: View, src: View): void {
    layout.assign(this, dst, src);
  }

  unary(op: UnaryOp, x: View, outDtype: DType, params: readonly number[] = []): BackendBuffer {
    return elementwise.unary(this, op, x, outDtype, params);
  }

  binary(op: BinaryOp, a: View, b: View, outDtype: DType): BackendBuffer {
    return elementwise.binary(this, op, a, b, outDtype);
  }

  where(cond: View, a: View, b: View, outDtype: DType): BackendBuffer {
    return elementwise.where(this, cond, a, b, outDtype);
  }

  /** Composed from this backend's mul, add / sub and assign kernels (no fused kernel on the GPU yet). */
  rotary(x: View, cos: View, sin: View, outDtype: DType, transpose: boolean): BackendBuffer {
    return rotaryComposite(this, x, cos, sin, outDtype, transpose);
  }


  /** Composed from this backend's silu, mul and sigmoid kernels. */
  siluMul(a: BackendBuffer, b: BackendBuffer, withSigmoid: boolean) {
    return siluMulComposite(this, a, b, withSigmoid);
  }

  /** Composed from this backend's mul, sub and add kernels. */
  siluMulBackward(grad: BackendBuffer, a: BackendBuffer, b: BackendBuffer, sigmoid: BackendBuffer, needA: boolean, needB: boolean) {
    return siluMulBackwardComposite(this, grad, a, b, sigmoid, needA, needB);
  }

  reduceLast(op: ReduceOp, x: BackendBuffer, outer: number, inner: number): BackendBuffer {
    return rows.reduceLast(this, op, x, outer, inner);
  }

  reduceMiddle(op: ReduceOp, x: BackendBuffer, outer: number, mid: number, inner: number): BackendBuffer {
    return rows.reduceMiddle(this, op, x, outer, mid, inner);
  }

  argReduceLast(op: 'max' | 'min', x: BackendBuffer, outer: number, inner: number): BackendBuffer {
    return rows.argReduceLast(this, op, x, outer, inner);
  }

  matmul(a: BackendBuffer, b: BackendBuffer, shape: MatmulShape, outDtype: DType): BackendBuffer {
    if (outDtype === 'float64') throw float64Error();
    return matmulKernel(this, a, b, shape, outDtype);
  }

  softmaxLast(x: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer {
    return rows.softmaxLast(this, x, outer, inner, log);
  }

  /** Composed from this backend's mul, sub, exp and row-sum kernels. */
  softmaxBackwardLast(y: BackendBuffer, grad: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer {
    checkSoftmaxBackward(y, grad, outer, inner, log);
    return softmaxBackwardComposite(this, y, grad, outer, inner, log);
  }

  normalizeLast(kind: 'layer' | 'rms', x: BackendBuffer, outer: number, inner: number, eps: number) {
    return rows.normalizeLast(this, kind, x, outer, inner, eps);
  }

  /** Composed from this backend's mul, sub and row-sum kernels. */
  normalizeBackwardLast(kind: 'layer' | 'rms', grad: BackendBuffer, normalized: BackendBuffer, rstd: BackendBuffer, outer: number, inner: number): BackendBuffer {
    return normalizeBackwardComposite(this, kind, grad, normalized, rstd, outer, inner);
  }

  crossEntropyLast(logits: BackendBuffer, target: BackendBuffer, args: CrossEntropyArgs): BackendBuffer {
    return rows.crossEntropyLast(this, logits, target, args);
  }

  crossEntropyBackwardLast(logits: BackendBuffer, target: BackendBuffer, gradRow: BackendBuffer, args: CrossEntropyArgs): BackendBuffer {
    return rows.crossEntropyBackwardLast(this, logits, target, gradRow, args);
  }

  indexSelect(x: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer {
    return indexing.indexSelect(this, x, index, outer, dimSize, inner);
  }

  indexAdd(src: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer {
    return indexing.indexAdd(this, src, index, outer, dimSize, inner);
  }

  gather(x: BackendBuffer, xShape: readonly number[], index: BackendBuffer, indexShape: readonly number[], dim: number): BackendBuffer {
    return indexing.gather(this, x, xShape, index, indexShape, dim);
  }

  scatterAdd(src: BackendBuffer, index: BackendBuffer, indexShape: readonly number[], dim: number, outShape: readonly number[]): BackendBuffer {
    return indexing.scatterAdd(this, src, index, indexShape, dim, outShape);
  }

  triangleMask(rowsN: number, cols: number, k: number, lower: boolean): BackendBuffer {
    return indexing.triangleMask(this, rowsN, cols, k, lower);
  }

  adamUpdate(param: View, grad: View, expAvg: BackendBuffer, expAvgSq: BackendBuffer, maxExpAvgSq: BackendBuffer | null, h: AdamHyper): void {
    adamKernel(this, param, grad, expAvg, expAvgSq, maxExpAvgSq, h);
  }
}

