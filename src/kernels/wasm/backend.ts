/**
 * The wasm backend: storage in one WebAssembly memory, hot kernels in WebAssembly SIMD
 * (wasm/assembly/*.ts, compiled by AssemblyScript at build time) on a pool of threads.
 *
 * It is the cpu backend with its storage moved: a WasmBuffer's `data` is a typed-array view on
 * the wasm memory, so every kernel of the cpu backend runs unchanged on it (reading the view in
 * place, no copy), and the kernels that dominate training time are replaced, one by one, by wasm
 * SIMD kernels that read and write the same memory (matmul first: about 88% of a backward). A
 * kernel still written in TypeScript computes into a JavaScript array, which `wrap` then copies
 * into the wasm memory: one copy of its output, small next to the kernel itself.
 *
 * Storage is released deterministically (tensor dispose, tidy scopes: see tensor/scope.ts); the
 * allocator takes blocks back onto free lists by size, so a steady training loop reuses the same
 * blocks step after step. The memory ledger counts every block, as on the other backends.
 */
import type { AdamHyper, BackendBuffer, BackendInfo, BinaryOp, BufferLedger, CrossEntropyArgs, MatmulShape, ReduceOp, UnaryOp, View } from '../backend';
import { CpuBackend } from '../cpu/backend';
import { LedgerBuffer, releaseLedger } from '../ledger-buffer';
import { memoryTracker } from '../memory';
import { isHalf, itemSize, type DType, type StorageArray } from '../../tensor/dtype';
import { halfCodec } from '../../tensor/half';
import { BackendError, ValueError } from '../../errors';
import { createRuntime, defaultThreads, type WasmRuntime } from './runtime';
import type { WasmBackendOptions } from './options';
import type { WasmAllocator } from './allocator';
import { matmulInto } from './matmul';
import { binaryInto, binaryOutDtype, copyInto, overlapsNot, unaryInto, whereInto, type WasmOperand } from './elementwise';
import { adamInto } from './adam';
import { rotaryInto } from './rotary';
import {
  crossEntropyBackwardRowsInto,
  crossEntropyRowsInto,
  normalizeBackwardRowsInto,
  normalizeRowsInto,
  reduceMiddleInto,
  reduceRowsInto,
  softmaxBackwardRowsInto,
  softmaxRowsInto,
} from './rows';
import { checkSiluMul, checkSoftmaxBackward } from '../composite';
import { siluMulBackwardInto, siluMulInto } from './silu-mul';
import { isContiguous, numel } from '../../tensor/shape';

/**
 * A ledger that remembers its block and the allocator it came from, so that a finalizer holding
 * only the ledger can free it, and a buffer made by an earlier instance of the backend (another
 * thread count: another memory) goes back to its own allocator.
 */
interface WasmLedger extends BufferLedger {
  readonly address: number;
  readonly allocator: WasmAllocator;
}

type ArrayCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => StorageArray;

function arrayCtor(dtype: DType): ArrayCtor {
  switch (dtype) {
    case 'float64':
      return Float64Array;
    case 'float32':
      return Float32Array;
    case 'float16':
    case 'bfloat16':
      return Uint16Array;
    case 'int32':
      return Int32Array;
  }
}

/** A block of wasm memory; `data` is a typed-array view on it (renewed if a non-shared memory grew). */
class WasmBuffer extends LedgerBuffer {
  private view: StorageArray;
  private viewGeneration: number;

  constructor(
    ledger: WasmLedger,
    dtype: DType,
    readonly length: number,
    readonly rt: WasmRuntime,
  ) {
    super(ledger, dtype);
    this.view = this.makeView();
    this.viewGeneration = rt.generation();
  }

  /** Byte address of element 0. */
  get address(): number {
    return (this.ledger as WasmLedger).address;
  }

  get data(): StorageArray {
    if (this.viewGeneration !== this.rt.generation() && !this.rt.shared) {
      this.view = this.makeView();
      this.viewGeneration = this.rt.generation();
    }
    return this.view;
  }

  private makeView(): StorageArray {
    return new (arrayCtor(this.dtype))(this.rt.memory.buffer, this.address, this.length);
  }
}

export class WasmBackend extends CpuBackend {
  override readonly name = 'wasm';
  private readonly rt: WasmRuntime;
  private readonly requestedThreads: number;
  private readonly requestedSharedMemory: boolean | undefined;
  private nextId = 1;

  constructor(options: WasmBackendOptions = {}) {
    super();
    const threads = options.threads ?? defaultThreads();
    if (!Number.isInteger(threads) || threads < 1) {
      throw new ValueError('setBackend', `wasm: threads must be a positive integer, got ${String(threads)}`);
    }
    if (options.sharedMemory !== undefined && typeof options.sharedMemory !== 'boolean') {
      throw new ValueError('setBackend', `wasm: sharedMemory must be true, false or left out, got ${String(options.sharedMemory)}`);
    }
    this.requestedThreads = threads;
    this.requestedSharedMemory = options.sharedMemory;
    this.rt = createRuntime(threads, options.sharedMemory);
  }

  override info(): BackendInfo {
    const a = this.rt.allocator.stats();
    return {
      backend: 'wasm',
      mode: 'simd',
      precision: 'double',
      maxTextureSize: null,
      maxElements: null,
      kernelsCompiled: 0,
      simd: true,
      threads: this.rt.pool.threads,
      threadsRequested: this.requestedThreads,
      threadsReason: this.rt.pool.reason,
      sharedMemory: this.rt.shared,
      memoryBytes: a.memoryBytes,
      memoryInUseBytes: a.usedBytes,
    };
  }

  accepts(options: Readonly<Record<string, unknown>>): boolean {
    return (options.threads ?? defaultThreads()) === this.requestedThreads && options.sharedMemory === this.requestedSharedMemory;
  }

  dispose(): void {
    this.rt.dispose();
  }

  // ---------------------------------------------------------------- storage

  /** A new uninitialised block for `length` elements of `dtype`, counted by the ledger. */
  private allocate(dtype: DType, length: number): WasmBuffer {
    const bytes = length * itemSize(dtype);
    const address = this.rt.allocator.alloc(bytes);
    const ledger: WasmLedger = {
      id: this.nextId++,
      backend: this.name,
      bytes,
      category: 'other',
      refs: 0,
      released: false,
      version: 0,
      address,
      allocator: this.rt.allocator,
    };
    memoryTracker.onAlloc(ledger);
    return new WasmBuffer(ledger, dtype, length, this.rt);
  }

  /** The cpu kernels' results (JavaScript arrays) are copied into wasm memory here. */
  protected override wrap(dtype: DType, data: StorageArray): BackendBuffer {
    const buf = this.allocate(dtype, data.length);
    buf.data.set(data);
    return buf;
  }

  override zeros(dtype: DType, length: number): BackendBuffer {
    const buf = this.allocate(dtype, length);
    buf.data.fill(0); // a reused block holds its last owner's values
    return buf;
  }

  override release(buf: BackendBuffer | BufferLedger): void {
    const ledger = releaseLedger(buf) as WasmLedger | null;
    if (ledger) ledger.allocator.release(ledger.address);
  }

  // ---------------------------------------------------------------- which buffers the wasm kernels take

  /** `buf` as a block of this instance's memory holding `dtype`, else null (the TypeScript kernel runs instead). */
  private local(buf: BackendBuffer, dtype: DType = 'float32'): WasmBuffer | null {
    return buf instanceof WasmBuffer && buf.rt === this.rt && buf.dtype === dtype ? buf : null;
  }

  /** A float32 (or `dtype`) view of this instance's memory as a wasm kernel operand, else null. */
  private operand(view: View, dtype: DType = 'float32'): WasmOperand | null {
    const buf = this.local(view.buffer, dtype);
    return buf ? { address: buf.address, shape: view.shape, strides: view.strides, offset: view.offset } : null;
  }

  /** The byte address of a contiguous float32 view's first element, else null. */
  private contiguousAddress(view: View): number | null {
    const buf = this.local(view.buffer);
    return buf && isContiguous(view.shape, view.strides) ? buf.address + view.offset * 4 : null;
  }

  /**
   * Runs a wasm kernel into a new float32 (or int32) block; when the kernel declines (an op,
   * dtype or layout it does not handle) the block is freed and `fallback`, the TypeScript kernel, runs.
   */
  private tryKernel(dtype: DType, length: number, kernel: (out: number) => boolean, fallback: () => BackendBuffer): BackendBuffer {
    const out = this.allocate(dtype, length);
    let done = false;
    try {
      done = kernel(out.address);
    } finally {
      if (!done) this.release(out);
    }
    return done ? out : fallback();
  }

  // ---------------------------------------------------------------- layout

  override copy(x: View, dtype: DType): BackendBuffer {
    const xv = this.operand(x);
    if (!xv || dtype !== 'float32') return super.copy(x, dtype);
    return this.tryKernel('float32', numel(x.shape), (out) => copyInto(this.rt.pool, xv, out), () => super.copy(x, dtype));
  }

  /** In place; a contiguous float32 destination is a copy of the (broadcast) source into it. */
  override assign(dst: View, src: View): void {
    const target = this.contiguousAddress(dst);
    const sv = this.operand(src);
    if (target !== null && sv && overlapsNot(dst, src) && copyInto(this.rt.pool, sv, target)) return;
    super.assign(dst, src);
  }

  // ---------------------------------------------------------------- elementwise

  override unary(op: UnaryOp, x: View, outDtype: DType, params: readonly number[] = []): BackendBuffer {
    const xv = this.operand(x);
    if (!xv || outDtype !== 'float32') return super.unary(op, x, outDtype, params);
    return this.tryKernel('float32', numel(x.shape), (out) => unaryInto(this.rt.pool, op, xv, out, params), () => super.unary(op, x, outDtype, params));
  }

  override binary(op: BinaryOp, a: View, b: View, outDtype: DType): BackendBuffer {
    const av = this.operand(a);
    const bv = this.operand(b);
    // the kernels write int32 for comparisons and float32 otherwise
    if (!av || !bv || outDtype !== binaryOutDtype(op)) return super.binary(op, a, b, outDtype);
    return this.tryKernel(outDtype, numel(a.shape), (out) => binaryInto(this.rt.pool, op, av, bv, out), () => super.binary(op, a, b, outDtype));
  }

  override where(cond: View, a: View, b: View, outDtype: DType): BackendBuffer {
    const condDtype = cond.buffer.dtype;
    const cv = condDtype === 'int32' || condDtype === 'float32' ? this.operand(cond, condDtype) : null;
    const av = this.operand(a);
    const bv = this.operand(b);
    const fallback = () => super.where(cond, a, b, outDtype);
    if (!cv || !av || !bv || outDtype !== 'float32') return fallback();
    return this.tryKernel('float32', numel(cond.shape), (out) => whereInto(this.rt.pool, cv, condDtype as 'int32' | 'float32', av, bv, out), fallback);
  }

  override rotary(x: View, cos: View, sin: View, outDtype: DType, transpose: boolean): BackendBuffer {
    const xv = this.operand(x);
    const cv = this.operand(cos);
    const sv = this.operand(sin);
    const fallback = () => super.rotary(x, cos, sin, outDtype, transpose);
    if (!xv || !cv || !sv || outDtype !== 'float32') return fallback();
    return this.tryKernel('float32', numel(x.shape), (out) => rotaryInto(this.rt.pool, xv, cv, sv, out, transpose), fallback);
  }

  override siluMul(a: BackendBuffer, b: BackendBuffer, withSigmoid: boolean) {
    checkSiluMul('siluMul', { a, b });
    const [ab, bb] = [this.local(a), this.local(b)];
    if (!ab || !bb) return super.siluMul(a, b, withSigmoid);
    const [out, sigmoid] = [this.allocate('float32', a.length), withSigmoid ? this.allocate('float32', a.length) : null];
    this.guard([out, sigmoid], () => siluMulInto(this.rt.pool, ab.address, bb.address, out.address, sigmoid?.address ?? 0, a.length));
    return { out, sigmoid };
  }

  override siluMulBackward(grad: BackendBuffer, a: BackendBuffer, b: BackendBuffer, sigmoid: BackendBuffer, needA: boolean, needB: boolean) {
    checkSiluMul('siluMul (backward)', { grad, a, b, sigmoid });
    const [gb, ab, bb, sb] = [grad, a, b, sigmoid].map((x) => this.local(x));
    if (!gb || !ab || !bb || !sb) return super.siluMulBackward(grad, a, b, sigmoid, needA, needB);
    const [gradA, gradB] = [needA, needB].map((need) => (need ? this.allocate('float32', a.length) : null));
    const kernel = () => siluMulBackwardInto(this.rt.pool, gb.address, ab.address, bb.address, sb.address, gradA?.address ?? 0, gradB?.address ?? 0, a.length);
    this.guard([gradA, gradB], kernel);
    return { gradA, gradB };
  }

  /** Runs a kernel that writes into new blocks, releasing them if it throws. */
  private guard(blocks: (WasmBuffer | null)[], kernel: () => void): void {
    try {
      kernel();
    } catch (e) {
      for (const b of blocks) if (b) this.release(b);
      throw e;
    }
  }

  // ---------------------------------------------------------------- reductions and rows

  override reduceLast(op: ReduceOp, x: BackendBuffer, outer: number, inner: number): BackendBuffer {
    const xb = this.local(x);
    if (!xb) return super.reduceLast(op, x, outer, inner);
    return this.tryKernel('float32', outer, (out) => reduceRowsInto(this.rt.pool, op, xb.address, out, outer, inner), () => super.reduceLast(op, x, outer, inner));
  }

  override reduceMiddle(op: ReduceOp, x: BackendBuffer, outer: number, mid: number, inner: number): BackendBuffer {
    const xb = this.local(x);
    if (!xb) return super.reduceMiddle(op, x, outer, mid, inner);
    return this.tryKernel(
      'float32',
      outer * inner,
      (out) => reduceMiddleInto(this.rt.pool, op, xb.address, out, outer, mid, inner),
      () => super.reduceMiddle(op, x, outer, mid, inner),
    );
  }

  override softmaxLast(x: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer {
    const xb = this.local(x);
    if (!xb) return super.softmaxLast(x, outer, inner, log);
    return this.tryKernel(
      'float32',
      outer * inner,
      (out) => softmaxRowsInto(this.rt.pool, xb.address, out, outer, inner, log),
      () => super.softmaxLast(x, outer, inner, log),
    );
  }

  override softmaxBackwardLast(y: BackendBuffer, grad: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer {
    checkSoftmaxBackward(y, grad, outer, inner, log);
    const yb = this.local(y);
    const gb = this.local(grad);
    const fallback = () => super.softmaxBackwardLast(y, grad, outer, inner, log);
    if (!yb || !gb) return fallback();
    return this.tryKernel('float32', outer * inner, (out) => softmaxBackwardRowsInto(this.rt.pool, yb.address, gb.address, out, outer, inner, log), fallback);
  }

  override normalizeLast(kind: 'layer' | 'rms', x: BackendBuffer, outer: number, inner: number, eps: number) {
    const xb = this.local(x);
    if (!xb) return super.normalizeLast(kind, x, outer, inner, eps);
    const normalized = this.allocate('float32', outer * inner);
    const rstd = this.allocate('float32', outer);
    if (normalizeRowsInto(this.rt.pool, kind, xb.address, normalized.address, rstd.address, outer, inner, eps)) return { normalized, rstd };
    this.release(normalized);
    this.release(rstd);
    return super.normalizeLast(kind, x, outer, inner, eps);
  }

  override normalizeBackwardLast(kind: 'layer' | 'rms', grad: BackendBuffer, normalized: BackendBuffer, rstd: BackendBuffer, outer: number, inner: number): BackendBuffer {
    const gb = this.local(grad);
    const xb = this.local(normalized);
    const rb = this.local(rstd);
    const fallback = () => super.normalizeBackwardLast(kind, grad, normalized, rstd, outer, inner);
    if (!gb || !xb || !rb) return fallback();
    return this.tryKernel('float32', outer * inner, (out) => normalizeBackwardRowsInto(this.rt.pool, kind, gb.address, xb.address, rb.address, out, outer, inner), fallback);
  }

  override crossEntropyLast(logits: BackendBuffer, target: BackendBuffer, args: CrossEntropyArgs): BackendBuffer {
    const lb = this.local(logits);
    const tb = this.local(target, 'int32');
    const fallback = () => super.crossEntropyLast(logits, target, args);
    if (!lb || !tb) return fallback();
    return this.tryKernel('float32', args.outer, (out) => crossEntropyRowsInto(this.rt.pool, lb.address, tb.address, out, args), fallback);
  }

  override crossEntropyBackwardLast(logits: BackendBuffer, target: BackendBuffer, gradRow: BackendBuffer, args: CrossEntropyArgs): BackendBuffer {
    const lb = this.local(logits);
    const tb = this.local(target, 'int32');
    const gb = this.local(gradRow);
    const fallback = () => super.crossEntropyBackwardLast(logits, target, gradRow, args);
    if (!lb || !tb || !gb) return fallback();
    return this.tryKernel(
      'float32',
      args.outer * args.classes,
      (out) => crossEntropyBackwardRowsInto(this.rt.pool, lb.address, tb.address, gb.address, out, args),
      fallback,
    );
  }

  // ---------------------------------------------------------------- optimizer

  override adamUpdate(param: View, grad: View, expAvg: BackendBuffer, expAvgSq: BackendBuffer, maxExpAvgSq: BackendBuffer | null, h: AdamHyper): void {
    const p = this.contiguousAddress(param);
    const g = this.contiguousAddress(grad);
    const m = this.local(expAvg);
    const v = this.local(expAvgSq);
    const vmax = maxExpAvgSq ? this.local(maxExpAvgSq) : null;
    const n = numel(param.shape);
    const sizesMatch = numel(grad.shape) === n && expAvg.length === n && expAvgSq.length === n && (!maxExpAvgSq || maxExpAvgSq.length === n);
    if (p !== null && g !== null && m && v && (vmax || !maxExpAvgSq) && sizesMatch) {
      if (adamInto(this.rt.pool, p, g, m.address, v.address, vmax ? vmax.address : null, n, h)) return;
    }
    super.adamUpdate(param, grad, expAvg, expAvgSq, maxExpAvgSq, h);
  }

  // ---------------------------------------------------------------- matmul

  override matmul(a: BackendBuffer, b: BackendBuffer, shape: MatmulShape, outDtype: DType): BackendBuffer {
    const dtype = outDtype === 'float64' ? 'float64' : outDtype === 'int32' ? null : 'float32';
    if (dtype === null) return super.matmul(a, b, shape, outDtype);
    // operands in the kernel's dtype (16-bit float storage and mixed dtypes are converted first)
    const av = this.asDtype(a, dtype);
    const bv = this.asDtype(b, dtype);
    const size = itemSize(dtype);
    try {
      const out = this.allocate(dtype, shape.batch * shape.m * shape.n);
      matmulInto(
        this.rt.pool,
        dtype,
        (av as WasmBuffer).address + (shape.aOffset ?? 0) * size,
        (bv as WasmBuffer).address + (shape.bOffset ?? 0) * size,
        out.address,
        { ...shape, aOffset: 0, bOffset: 0 },
      );
      if (outDtype === dtype || !isHalf(outDtype)) return out;
      const rounded = this.wrap(outDtype, halfCodec(outDtype).encode(out.data as Float32Array));
      this.release(out);
      return rounded;
    } finally {
      if (av !== a) this.release(av);
      if (bv !== b) this.release(bv);
    }
  }

  /**
   * `buf` itself if it holds `dtype` in this instance's memory, else a converted copy that the
   * caller releases (16-bit float storage; another dtype; a buffer of an earlier instance, whose
   * memory the kernels of this one cannot address).
   */
  private asDtype(buf: BackendBuffer, dtype: 'float32' | 'float64'): BackendBuffer {
    if (!(buf instanceof WasmBuffer)) throw new BackendError('matmul', `an operand lives on backend '${buf.backend}', not wasm`);
    if (buf.dtype === dtype && buf.rt === this.rt) return buf;
    const out = this.allocate(dtype, buf.length);
    const src = (buf as WasmBuffer).data;
    if (isHalf(buf.dtype)) {
      const { decode } = halfCodec(buf.dtype);
      if (dtype === 'float32') decode(src as Uint16Array, out.data as Float32Array);
      else (out.data as Float64Array).set(decode(src as Uint16Array));
    } else (out.data as Float32Array | Float64Array).set(src);
    return out;
  }
}
