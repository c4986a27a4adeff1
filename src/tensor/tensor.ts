/**
 * Tensor: a strided view (shape, strides, offset) on a backend buffer, plus the autograd
 * fields (requiresGrad, grad, gradFn, hooks). Views share their base's buffer; the buffer is
 * released when the last tensor holding it is disposed: by dispose(), by the end of the tidy
 * scope it was created in (tensor/scope.ts), or, for a tensor created outside any scope and
 * never disposed, by the garbage collector's finalizer.
 *
 * The math methods (add, matmul, sum, ...) are installed on the prototype by
 * src/autograd/methods.ts, so that this file does not depend on the ops above it.
 */
import type { BackendBuffer, BufferLedger, View } from '../kernels/backend';
import { backendByName } from '../kernels/registry';
import { memoryTracker, type MemoryCategory } from '../kernels/memory';
import { AutogradError, DTypeError, DimError, ValueError, fmtShape } from '../errors';
import { Float16Array } from '@petamoriken/float16';
import { isFloating, type DType } from './dtype';
import { bitsToFloat16Array } from './float16';
import { contiguousStrides, isContiguous, normalizeDim, numel, type Shape } from './shape';
import type { Node } from '../autograd/node';
import { keep, trackTensor } from './scope';

/** A gradient hook: may return a replacement gradient. */
export type GradHook = (grad: Tensor) => Tensor | void;
/** Runs after a leaf's .grad has been updated (LOMO updates the parameter here). */
export type PostAccumulateGradHook = (param: Tensor) => void;

export type NestedArray = number | NestedArray[];

/** Releases a buffer when its last holder is garbage collected without dispose(). */
const finalizer = new FinalizationRegistry<BufferLedger>((ledger) => dropRef(ledger));

function dropRef(ledger: BufferLedger): void {
  ledger.refs--;
  if (ledger.refs <= 0 && !ledger.released) backendByName(ledger.backend).release(ledger);
}

let nextTensorId = 1;

export class Tensor implements View {
  readonly id = nextTensorId++;
  readonly buffer: BackendBuffer;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;

  private gradient: Tensor | null = null;
  /** @internal Set by keep(): no tidy scope disposes this tensor. */
  kept = false;
  /** The graph node that produced this tensor; null for leaves. */
  gradFn: Node | null = null;
  /** Optional name (nn sets the dotted parameter name); shown in profiles and errors. */
  name?: string;

  private leafRequiresGrad = false;
  private disposed = false;
  /** @internal */ hooks: GradHook[] = [];
  /** @internal */ postAccumulateHooks: PostAccumulateGradHook[] = [];

  constructor(buffer: BackendBuffer, shape: Shape, strides?: readonly number[], offset = 0) {
    this.buffer = buffer;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    buffer.refs++;
    finalizer.register(this, buffer.ledger, this);
    trackTensor(this);
  }

  /**
   * Accumulated gradient (leaves, and non-leaves that called retainGrad()). A gradient belongs
   * to its tensor, so assigning one keeps it out of every tidy scope (see keep()).
   */
  get grad(): Tensor | null {
    return this.gradient;
  }
  set grad(g: Tensor | null) {
    if (g !== null) keep(g);
    this.gradient = g;
  }

  get dtype(): DType {
    return this.buffer.dtype;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return numel(this.shape);
  }
  get isLeaf(): boolean {
    return this.gradFn === null;
  }
  get backend(): string {
    return this.buffer.backend;
  }

  /** Size of one dim (negative dims count from the end), or the whole shape. */
  size(): number[];
  size(dim: number): number;
  size(dim?: number): number | number[] {
    if (dim === undefined) return [...this.shape];
    if (this.ndim === 0) throw new DimError('size', `dim ${dim} is out of range: a 0-d tensor has no dims (use size() or item())`);
    return this.shape[normalizeDim('size', dim, this.ndim)];
  }

  isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }

  // ------------------------------------------------------------------ autograd fields

  /** True for leaves marked trainable and for every tensor computed from one while recording. */
  get requiresGrad(): boolean {
    return this.leafRequiresGrad || this.gradFn !== null;
  }
  set requiresGrad(flag: boolean) {
    this.requiresGrad_(flag);
  }

  /** Marks a leaf as trainable (or frozen). Only floating tensors can require grad. */
  requiresGrad_(flag = true): this {
    if (!this.isLeaf) {
      throw new AutogradError(
        'requiresGrad_',
        'only leaf tensors can change requiresGrad; use detach() to get a leaf from a computed tensor',
      );
    }
    if (flag && !isFloating(this.dtype)) {
      throw new DTypeError(
        'requiresGrad_',
        `a ${this.dtype} tensor of shape ${fmtShape(this.shape)} cannot require grad: only floating dtypes have gradients; cast it first (.to('float32'))`,
      );
    }
    this.leafRequiresGrad = flag;
    return this;
  }

  /** A leaf sharing this tensor's storage, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.buffer, this.shape, this.strides, this.offset);
  }

  /** Registers fn(grad) to run when this tensor's gradient is computed; it may return a replacement. */
  registerHook(fn: GradHook): () => void {
    if (!this.requiresGrad) {
      throw new AutogradError('registerHook', "cannot register a hook on a tensor that doesn't require grad");
    }
    this.hooks.push(fn);
    if (this.gradFn) this.gradFn.tensorHooks = this.hooks;
    return () => {
      const i = this.hooks.indexOf(fn);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** On a leaf: fn(tensor) runs after the gradient has been accumulated into tensor.grad. */
  registerPostAccumulateGradHook(fn: PostAccumulateGradHook): () => void {
    if (!this.isLeaf || !this.requiresGrad) {
      throw new AutogradError(
        'registerPostAccumulateGradHook',
        'post-accumulate-grad hooks can only be registered on leaf tensors that require grad',
      );
    }
    this.postAccumulateHooks.push(fn);
    return () => {
      const i = this.postAccumulateHooks.indexOf(fn);
      if (i >= 0) this.postAccumulateHooks.splice(i, 1);
    };
  }

  /** Keep .grad on this non-leaf after backward (leaves always keep theirs). */
  retainGrad(): this {
    if (!this.requiresGrad) throw new AutogradError('retainGrad', "cannot retain grad of a tensor that doesn't require grad");
    if (!this.isLeaf && this.gradFn) {
      this.gradFn.retainGradOf = this;
    }
    return this;
  }

  // ------------------------------------------------------------------ reading

  private checkAlive(op: string): void {
    if (this.disposed || this.buffer.released) {
      throw new ValueError(op, `tensor of shape ${fmtShape(this.shape)} was disposed`);
    }
  }

  /** Values as nested arrays (a number for a 0-d tensor). */
  toArray(): NestedArray {
    this.checkAlive('toArray');
    const flat = backendByName(this.backend).read(this);
    const build = (dim: number, start: number): NestedArray => {
      if (dim === this.ndim) return flat[start];
      const step = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, start + i * step));
    };
    return build(0, 0);
  }

  /** The value of a one-element tensor. */
  item(): number {
    this.checkAlive('item');
    if (this.numel !== 1) {
      throw new ValueError('item', `only one-element tensors can be converted to a number, got shape ${fmtShape(this.shape)}`);
    }
    return backendByName(this.backend).read(this)[0];
  }

  /**
   * A fresh flat typed array of the values in row-major order: Float64Array, Float32Array,
   * Int32Array, or for float16 the @petamoriken/float16 Float16Array.
   */
  toTypedArray(): Float64Array | Float32Array | Int32Array | Float16Array {
    this.checkAlive('toTypedArray');
    const backend = backendByName(this.backend);
    if (this.dtype !== 'float16') return backend.read(this) as Float64Array | Float32Array | Int32Array;
    const contiguous = this.isContiguous() && this.offset === 0 && this.numel === this.buffer.length;
    if (contiguous) return bitsToFloat16Array(backend.download(this.buffer) as Uint16Array);
    const copy = backend.copy(this, 'float16');
    try {
      return bitsToFloat16Array(backend.download(copy) as Uint16Array);
    } finally {
      backend.release(copy);
    }
  }

  /**
   * Points this leaf at `source`'s storage (shared, not copied), keeping its identity, name,
   * requiresGrad and hooks: PyTorch's `param.data = ...`. Modules use it to change a parameter's
   * dtype without invalidating references that layers and optimizers hold.
   */
  setData_(source: Tensor): this {
    if (!this.isLeaf) throw new AutogradError('setData_', 'only leaf tensors can have their storage replaced');
    if (this.disposed) throw new ValueError('setData_', `${this} was disposed`);
    if (this.leafRequiresGrad && !isFloating(source.dtype)) {
      throw new DTypeError('setData_', `cannot give a tensor that requires grad ${source.dtype} storage`);
    }
    const old = this.buffer;
    const mutable = this as unknown as { buffer: BackendBuffer; shape: readonly number[]; strides: readonly number[]; offset: number };
    mutable.buffer = source.buffer;
    mutable.shape = source.shape;
    mutable.strides = source.strides;
    mutable.offset = source.offset;
    source.buffer.refs++;
    finalizer.unregister(this);
    finalizer.register(this, source.buffer.ledger, this);
    dropRef(old.ledger);
    return this;
  }

  /**
   * Releases this tensor's hold on its storage now instead of at garbage collection, and its
   * gradient with it (a gradient belongs to its tensor: see the grad setter).
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    finalizer.unregister(this);
    dropRef(this.buffer.ledger);
    const g = this.gradient;
    this.gradient = null;
    g?.dispose();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Moves this tensor's storage to a memory category (weights, grads, optimizer, ...). The
   * categories of owned state (weights, grads, optimizer, master) also keep() the tensor: what is
   * tagged as a model's or an optimizer's state outlives the tidy scope it was created in, and its
   * owner disposes it.
   */
  tagMemory(category: MemoryCategory): this {
    if (category !== 'other' && category !== 'activations') keep(this);
    const from = this.buffer.category;
    if (from !== category && !this.buffer.released) {
      this.buffer.category = category;
      memoryTracker.onRetag(this.buffer, from);
    }
    return this;
  }

  toString(): string {
    const name = this.name ? ` name=${this.name}` : '';
    return `Tensor(shape=${fmtShape(this.shape)}, dtype=${this.dtype}${name}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

