/**
 * The kernel interface. Autograd ops call these methods on the active backend and never touch
 * storage themselves, so a second backend (gpu.js) can run every op with nothing above this
 * file changing. Kernels know nothing of autograd: they take buffers or strided views and
 * return new contiguous buffers (except `assign` and `adamUpdate`, which write in place).
 */
import type { ComputeArray, DType, HalfDType, StorageArray } from '../tensor/dtype';
import type { MemoryCategory } from './memory';

/**
 * What accounting needs to know about a buffer, kept apart from its data: garbage-collection
 * finalizers hold the ledger, never the buffer, because a finalizer's held value stays alive
 * until its callback runs, and callbacks do not run during a long synchronous training loop.
 */
export interface BufferLedger {
  readonly id: number;
  readonly backend: string;
  readonly bytes: number;
  category: MemoryCategory;
  /** Number of tensor objects that hold the buffer; it is released when this drops to 0. */
  refs: number;
  released: boolean;
  /**
   * Bumped before every in-place write into it (Note [Version counter] in src/autograd/version.ts),
   * so autograd can detect stale saved tensors.
   */
  version: number;
}

/** A block of storage owned by one backend. Tensors (and views) share buffers. */
export interface BackendBuffer {
  readonly ledger: BufferLedger;
  readonly id: number;
  readonly backend: string;
  readonly dtype: DType;
  readonly length: number;
  readonly bytes: number;
  category: MemoryCategory;
  refs: number;
  readonly released: boolean;
}

/** A strided window on a buffer: element (i0, i1, ...) is at offset + sum(ik * strides[k]). */
export interface View {
  readonly buffer: BackendBuffer;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'abs' | 'sign' | 'sin' | 'cos' | 'tanh'
  | 'sigmoid' | 'relu' | 'gelu' | 'geluTanh' | 'silu'
  // derivatives that are not cheaper to compose from the ops above
  | 'geluGrad' | 'geluTanhGrad' | 'siluGrad'
  // parameterised: params[0] (and params[1])
  | 'powScalar' // x ** p
  | 'clamp' // min(max(x, lo), hi)
  | 'inRange'; // lo <= x <= hi ? 1 : 0 (clamp's gradient mask)

export type BinaryOp =
  | 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum'
  | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';

export type ReduceOp = 'sum' | 'max' | 'min';

export interface MatmulShape {
  batch: number;
  m: number;
  k: number;
  n: number;
  /** A[b] is stored as k x m (its transpose is used). */
  transA: boolean;
  /** B[b] is stored as n x k. */
  transB: boolean;
  /** Elements between consecutive A[b]; 0 broadcasts one A over the batch. */
  aBatchStride: number;
  bBatchStride: number;
  aOffset?: number;
  bOffset?: number;
}

/**
 * The rows and the target distribution of the fused cross-entropy kernels (Backend.crossEntropyLast
 * and crossEntropyBackwardLast): `logits` is a contiguous [outer, classes] buffer, `target` holds
 * one int32 class per row, and `gradRow` (backward) one upstream gradient per row. Read only:
 * crossEntropy passes the same object to the forward kernel and, later, the backward one.
 */
export interface CrossEntropyArgs {
  /** The number of rows. */
  readonly outer: number;
  /** The row length: the number of classes. */
  readonly classes: number;
  /** A target equal to this gives its row loss 0 and a zero gradient (it may be a class id). */
  readonly ignoreIndex: number;
  /** ε: the target distribution is q = (1-ε)·onehot(t) + ε/classes. */
  readonly labelSmoothing: number;
}

/** The methods that compute (counted as kernel launches by the registry); the rest move data. */
export const KERNEL_NAMES = [
  'zeros', 'full', 'copy', 'assign', 'unary', 'binary', 'where', 'rotary', 'siluMul', 'siluMulBackward', 'reduceLast', 'reduceMiddle',
  'argReduceLast', 'matmul', 'softmaxLast', 'softmaxBackwardLast', 'normalizeLast', 'normalizeBackwardLast', 'crossEntropyLast',
  'crossEntropyBackwardLast', 'indexSelect', 'indexAdd', 'gather', 'scatterAdd', 'triangleMask', 'adamUpdate',
] as const satisfies readonly (keyof Backend)[];

/** What `backendInfo()` reports: the backend, the mode it really runs and its limits. */
export interface BackendInfo {
  backend: string;
  /** cpu: 'cpu'; gpu: the gpu.js mode in use ('headlessgl', 'webgl2', 'webgl', 'webasm' or 'cpu'). */
  mode: string;
  /** 'double' where float64 tensors compute in float64; 'single' where everything is float32. */
  precision: 'double' | 'single';
  /** The largest texture side (GL modes only), else null. */
  maxTextureSize: number | null;
  /** The largest buffer in elements, or null for no limit beyond memory. */
  maxElements: number | null;
  /** Compiled kernels cached (gpu), else 0. */
  kernelsCompiled: number;
  /** wasm: whether the kernels use 128-bit SIMD. */
  simd?: boolean;
  /** wasm: threads the kernels run on (the calling one included), those asked for, and why fewer. */
  threads?: number;
  threadsRequested?: number;
  threadsReason?: string;
  /** wasm: whether the memory is shared with worker threads. */
  sharedMemory?: boolean;
  /** wasm: the memory's size, and the bytes of it in live blocks. */
  memoryBytes?: number;
  memoryInUseBytes?: number;
}

export interface Backend {
  readonly name: string;

  /** The mode in use, precision and limits. */
  info(): BackendInfo;
  /** Frees what the backend holds outside buffers (compiled kernels, a GL context), if anything. */
  dispose?(): void;
  /**
   * Whether this instance already is what `options` ask for (the gpu backend: the same mode once
   * resolved, so `setBackend('gpu')` after `setBackend('gpu', { mode: 'webasm' })` keeps the instance
   * when gpu.js would choose webasm anyway). Without it, options equal as JSON are the same.
   */
  accepts?(options: Readonly<Record<string, unknown>>): boolean;

  // ---- storage ----
  /** A zero-filled buffer. */
  zeros(dtype: DType, length: number): BackendBuffer;
  full(dtype: DType, length: number, value: number): BackendBuffer;
  /** Copies host values in (float16 and bfloat16 values are rounded to nearest even). */
  upload(dtype: DType, values: ArrayLike<number>): BackendBuffer;
  /** Copies raw float16 or bfloat16 bits in. */
  uploadHalfBits(dtype: HalfDType, bits: Uint16Array): BackendBuffer;
  /** The raw storage contents (the 16-bit floats as bits), as a fresh host array. */
  download(buf: BackendBuffer): StorageArray;
  /** A view's elements in row-major order as numbers (the 16-bit floats decoded), fresh host array. */
  read(view: View): ComputeArray;
  /** Marks the buffer released and stops counting it (data goes with the last reference). */
  release(buf: BackendBuffer | BufferLedger): void;

  // ---- layout ----
  /** Gathers a view into a new contiguous buffer, casting to `dtype`. */
  copy(x: View, dtype: DType): BackendBuffer;
  /** In place: dst[...] = src broadcast to dst's shape, cast to dst's dtype. */
  assign(dst: View, src: View): void;

  // ---- elementwise (inputs are views already broadcast to outShape via stride 0) ----
  unary(op: UnaryOp, x: View, outDtype: DType, params?: readonly number[]): BackendBuffer;
  binary(op: BinaryOp, a: View, b: View, outDtype: DType): BackendBuffer;
  where(cond: View, a: View, b: View, outDtype: DType): BackendBuffer;
  /**
   * Rotary position embedding over the last dim (even, D = 2h), Hugging Face's rotate_half layout:
   * y[j] = x[j]·cos[j] − x[j+h]·sin[j], y[j+h] = x[j+h]·cos[j+h] + x[j]·sin[j+h]; with `transpose`
   * its adjoint in x (the backward). cos and sin are broadcast to x's shape; each product is rounded
   * to outDtype, then the sum (so it equals the composite mul, mul, add). See cpu/rotary.ts.
   */
  rotary(x: View, cos: View, sin: View, outDtype: DType, transpose: boolean): BackendBuffer;

  /**
   * SwiGLU's silu(a)·b over contiguous a and b of one length and floating dtype, rounded as the
   * composite silu then mul: out = fl(fl(silu(a))·b). With `withSigmoid`, also σ(a) (rounded to
   * the dtype), which siluMulBackward takes so that it computes no exponential. See cpu/silu-mul.ts.
   */
  siluMul(a: BackendBuffer, b: BackendBuffer, withSigmoid: boolean): { out: BackendBuffer; sigmoid: BackendBuffer | null };
  /**
   * The backward of siluMul from the gradient g of its output, a, b and σ = σ(a) (all contiguous,
   * one length and dtype): da = g·b·σ·(1 + a·(1 − σ)), db = g·a·σ; each null unless asked for
   * (needA, needB). Within a few roundings of the composite (see cpu/silu-mul.ts).
   */
  siluMulBackward(
    grad: BackendBuffer,
    a: BackendBuffer,
    b: BackendBuffer,
    sigmoid: BackendBuffer,
    needA: boolean,
    needB: boolean,
  ): { gradA: BackendBuffer | null; gradB: BackendBuffer | null };

  // ---- reductions over the last axis of a contiguous [outer, inner] buffer ----
  reduceLast(op: ReduceOp, x: BackendBuffer, outer: number, inner: number): BackendBuffer;
  /** Reduces the middle axis of a contiguous [outer, mid, inner] buffer to [outer, inner] (no transpose copy). */
  reduceMiddle(op: ReduceOp, x: BackendBuffer, outer: number, mid: number, inner: number): BackendBuffer;
  /** Index (int32) of the max/min along the last axis; ties resolve to the first. */
  argReduceLast(op: 'max' | 'min', x: BackendBuffer, outer: number, inner: number): BackendBuffer;

  // ---- linear algebra ----
  matmul(a: BackendBuffer, b: BackendBuffer, shape: MatmulShape, outDtype: DType): BackendBuffer;

  // ---- fused rows: each of `outer` rows of length `inner` is independent ----
  softmaxLast(x: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer;
  /**
   * The backward of softmaxLast from its output y and the gradient g of y (both contiguous
   * [outer, inner], one dtype): dx = y⊙(g − Σ g⊙y) per row for softmax, g − e^y·Σ g for log-softmax
   * (`log`), in y's dtype. It rounds where the composite it replaces did (mul, sum, sub, mul; or exp,
   * sum, mul, sub): every product, exponential and difference is rounded to the dtype, and the row
   * sum is taken over the rounded terms, then rounded. See softmaxBackwardRows in cpu/rows.ts.
   */
  softmaxBackwardLast(y: BackendBuffer, grad: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer;
  /** Normalised rows x̂ and 1/σ per row. kind 'layer' subtracts the mean, 'rms' does not. */
  normalizeLast(
    kind: 'layer' | 'rms',
    x: BackendBuffer,
    outer: number,
    inner: number,
    eps: number,
  ): { normalized: BackendBuffer; rstd: BackendBuffer };
  /**
   * The backward of normalizeLast from its outputs: the gradient of x given `grad`, the gradient of
   * x̂ (all three [outer, inner] or [outer], contiguous): rstd·(g − mean(g) − x̂·mean(g⊙x̂)) per row
   * for layer norm, rstd·(g − x̂·mean(g⊙x̂)) for RMS norm. In `normalized`'s dtype.
   */
  normalizeBackwardLast(kind: 'layer' | 'rms', grad: BackendBuffer, normalized: BackendBuffer, rstd: BackendBuffer, outer: number, inner: number): BackendBuffer;
  /** Per-row loss -Σ q_c log p_c with q = (1-ε)·onehot(t) + ε/C; 0 where t == ignoreIndex. */
  crossEntropyLast(logits: BackendBuffer, target: BackendBuffer, args: CrossEntropyArgs): BackendBuffer;
  /** d loss_r / d logits = gradRow[r] · (softmax(logits_r) - q_r), zero rows where ignored. */
  crossEntropyBackwardLast(logits: BackendBuffer, target: BackendBuffer, gradRow: BackendBuffer, args: CrossEntropyArgs): BackendBuffer;

  // ---- indexing: contiguous inputs; an index buffer holds exactly the index values, from element 0 ----
  /** out[o, j, i] = x[o, index[j], i] for x of shape [outer, dimSize, inner]. */
  indexSelect(x: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer;
  /** out = zeros([outer, dimSize, inner]); out[o, index[j], i] += src[o, j, i]. */
  indexAdd(src: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer;
  /** out[p] = x[p with coordinate `dim` replaced by index[p]]; out has index's shape. */
  gather(x: BackendBuffer, xShape: readonly number[], index: BackendBuffer, indexShape: readonly number[], dim: number): BackendBuffer;
  /** out = zeros(outShape); out[p with dim replaced by index[p]] += src[p]. */
  scatterAdd(src: BackendBuffer, index: BackendBuffer, indexShape: readonly number[], dim: number, outShape: readonly number[]): BackendBuffer;
  /** int32 mask of a rows x cols matrix: 1 where col - row <= k (lower) or >= k (upper). */
  triangleMask(rows: number, cols: number, k: number, lower: boolean): BackendBuffer;

  // ---- optimizer ----
  /**
   * One fused Adam/AdamW step, in place on `param`'s view and on the moment buffers (contiguous,
   * one element per element of param, in param's row-major order). PyTorch's update:
   * g = maximize ? -grad : grad; AdamW: p *= 1 - lr·wd, Adam: g += wd·p;
   * m = lerp(m, g, 1-β1); v = β2·v + (1-β2)·g²; amsgrad: vmax = max(vmax, v), v̂ = vmax;
   * p -= lr/(1-β1^step) · m / (sqrt(v̂)/sqrt(1-β2^step) + eps). `step` is the new step count (1 on
   * the first update). Any floating dtypes; float16 values are decoded and rounded back.
   */
  adamUpdate(param: View, grad: View, expAvg: BackendBuffer, expAvgSq: BackendBuffer, maxExpAvgSq: BackendBuffer | null, h: AdamHyper): void;
}

/** The hyperparameters of one fused Adam step (see Backend.adamUpdate). */
export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** AdamW: decay the weights (p *= 1 - lr·wd) instead of adding wd·p to the gradient. */
  decoupled: boolean;
  /** The step number after this update (1-based). */
  step: number;
  maximize: boolean;
  amsgrad: boolean;
}
