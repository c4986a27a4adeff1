/**
 * Installs the ops as Tensor methods (`a.add(b)`, `x.matmul(w).relu().sum()`), so that
 * tensor.ts need not import the ops that are built on it. Each method is a one-line call of
 * the free function of the same name; the math lives in ops/.
 */
import { Tensor } from '../tensor/tensor';
import type { DType } from '../tensor/dtype';
import * as ew from './ops/elementwise';
import * as red from './ops/reduce';
import * as shp from './ops/shape';
import * as mm from './ops/matmul';
import * as idx from './ops/indexing';
import * as sm from './ops/softmax';
import { copy_ } from './ops/inplace';
import { backward, type BackwardOptions } from './engine';

type TL = ew.TensorLike;

declare module '../tensor/tensor' {
  interface Tensor {
    add(other: TL): Tensor;
    sub(other: TL): Tensor;
    mul(other: TL): Tensor;
    div(other: TL): Tensor;
    pow(exponent: TL): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    abs(): Tensor;
    sign(): Tensor;
    sin(): Tensor;
    cos(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    relu(): Tensor;
    gelu(options?: { approximate?: 'none' | 'tanh' }): Tensor;
    silu(): Tensor;
    clamp(min?: number | null, max?: number | null): Tensor;
    maximum(other: TL): Tensor;
    minimum(other: TL): Tensor;
    eq(other: TL): Tensor;
    ne(other: TL): Tensor;
    lt(other: TL): Tensor;
    le(other: TL): Tensor;
    gt(other: TL): Tensor;
    ge(other: TL): Tensor;
    /** PyTorch's x.where(cond, y): x where cond is nonzero, else y. */
    where(cond: Tensor, other: TL): Tensor;
    to(dtype: DType): Tensor;

    sum(options?: red.ReduceOptions): Tensor;
    mean(options?: red.ReduceOptions): Tensor;
    var(options?: red.ReduceOptions & { correction?: number }): Tensor;
    max(): Tensor;
    max(dim: number, keepDim?: boolean): red.MaxMinResult;
    min(): Tensor;
    min(dim: number, keepDim?: boolean): red.MaxMinResult;
    argmax(dim?: number, keepDim?: boolean): Tensor;
    argmin(dim?: number, keepDim?: boolean): Tensor;
    logsumexp(options?: red.ReduceOptions): Tensor;
    softmax(dim?: number): Tensor;
    logSoftmax(dim?: number): Tensor;

    matmul(other: Tensor): Tensor;

    reshape(shape: readonly number[]): Tensor;
    view(shape: readonly number[]): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    permute(dims: readonly number[]): Tensor;
    transpose(dim0?: number, dim1?: number): Tensor;
    expand(shape: readonly number[]): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    slice(dim: number, start?: number, end?: number, step?: number): Tensor;
    select(dim: number, index: number): Tensor;
    squeeze(dim?: number | readonly number[]): Tensor;
    unsqueeze(dim: number): Tensor;
    contiguous(): Tensor;

    indexSelect(dim: number, index: Tensor): Tensor;
    gather(dim: number, index: Tensor): Tensor;
    maskedFill(mask: Tensor, value: number): Tensor;
    tril(diagonal?: number): Tensor;
    triu(diagonal?: number): Tensor;

    /** Writes src into this tensor's storage (in place, not recorded); see ops/inplace.ts. */
    copy_(src: Tensor | number): Tensor;

    /** Runs backward from this tensor; see autograd/engine.ts. */
    backward(gradient?: Tensor | null, options?: BackwardOptions): void;
  }
}

const methods: Record<string, (this: Tensor, ...args: never[]) => unknown> = {
  add(this: Tensor, o: TL) { return ew.add(this, o); },
  sub(this: Tensor, o: TL) { return ew.sub(this, o); },
  mul(this: Tensor, o: TL) { return ew.mul(this, o); },
  div(this: Tensor, o: TL) { return ew.div(this, o); },
  pow(this: Tensor, p: TL) { return ew.pow(this, p); },
  neg(this: Tensor) { return ew.neg(this); },
  exp(this: Tensor) { return ew.exp(this); },
  log(this: Tensor) { return ew.log(this); },
  sqrt(this: Tensor) { return ew.sqrt(this); },
  rsqrt(this: Tensor) { return ew.rsqrt(this); },
  abs(this: Tensor) { return ew.abs(this); },
  sign(this: Tensor) { return ew.sign(this); },
  sin(this: Tensor) { return ew.sin(this); },
  cos(this: Tensor) { return ew.cos(this); },
  tanh(this: Tensor) { return ew.tanh(this); },
  sigmoid(this: Tensor) { return ew.sigmoid(this); },
  relu(this: Tensor) { return ew.relu(this); },
  gelu(this: Tensor, o?: { approximate?: 'none' | 'tanh' }) { return ew.gelu(this, o); },
  silu(this: Tensor) { return ew.silu(this); },
  clamp(this: Tensor, lo?: number | null, hi?: number | null) { return ew.clamp(this, lo, hi); },
  maximum(this: Tensor, o: TL) { return ew.maximum(this, o); },
  minimum(this: Tensor, o: TL) { return ew.minimum(this, o); },
  eq(this: Tensor, o: TL) { return ew.eq(this, o); },
  ne(this: Tensor, o: TL) { return ew.ne(this, o); },
  lt(this: Tensor, o: TL) { return ew.lt(this, o); },
  le(this: Tensor, o: TL) { return ew.le(this, o); },
  gt(this: Tensor, o: TL) { return ew.gt(this, o); },
  ge(this: Tensor, o: TL) { return ew.ge(this, o); },
  where(this: Tensor, cond: Tensor, other: TL) { return ew.where(cond, this, other); },
  to(this: Tensor, dtype: DType) { return ew.cast(this, dtype); },

  sum(this: Tensor, o?: red.ReduceOptions) { return red.sum(this, o); },
  mean(this: Tensor, o?: red.ReduceOptions) { return red.mean(this, o); },
  var(this: Tensor, o?: red.ReduceOptions & { correction?: number }) { return red.variance(this, o); },
  max(this: Tensor, dim?: number, keepDim?: boolean) { return dim === undefined ? red.max(this) : red.max(this, dim, keepDim); },
  min(this: Tensor, dim?: number, keepDim?: boolean) { return dim === undefined ? red.min(this) : red.min(this, dim, keepDim); },
  argmax(this: Tensor, dim?: number, keepDim?: boolean) { return red.argmax(this, dim, keepDim); },
  argmin(this: Tensor, dim?: number, keepDim?: boolean) { return red.argmin(this, dim, keepDim); },
  logsumexp(this: Tensor, o?: red.ReduceOptions) { return red.logsumexp(this, o); },
  softmax(this: Tensor, dim?: number) { return sm.softmax(this, dim); },
  logSoftmax(this: Tensor, dim?: number) { return sm.logSoftmax(this, dim); },

  matmul(this: Tensor, o: Tensor) { return mm.matmul(this, o); },

  reshape(this: Tensor, s: readonly number[]) { return shp.reshape(this, s); },
  view(this: Tensor, s: readonly number[]) { return shp.view_(this, s); },
  flatten(this: Tensor, a?: number, b?: number) { return shp.flatten(this, a, b); },
  permute(this: Tensor, d: readonly number[]) { return shp.permute(this, d); },
  transpose(this: Tensor, a?: number, b?: number) { return shp.transpose(this, a, b); },
  expand(this: Tensor, s: readonly number[]) { return shp.expand(this, s); },
  narrow(this: Tensor, d: number, s: number, l: number) { return shp.narrow(this, d, s, l); },
  slice(this: Tensor, d: number, s?: number, e?: number, st?: number) { return shp.slice(this, d, s, e, st); },
  select(this: Tensor, d: number, i: number) { return shp.select(this, d, i); },
  squeeze(this: Tensor, d?: number | readonly number[]) { return shp.squeeze(this, d); },
  unsqueeze(this: Tensor, d: number) { return shp.unsqueeze(this, d); },
  contiguous(this: Tensor) { return shp.contiguous(this); },

  indexSelect(this: Tensor, d: number, i: Tensor) { return idx.indexSelect(this, d, i); },
  gather(this: Tensor, d: number, i: Tensor) { return idx.gather(this, d, i); },
  maskedFill(this: Tensor, m: Tensor, v: number) { return idx.maskedFill(this, m, v); },
  tril(this: Tensor, k?: number) { return idx.tril(this, k); },
  triu(this: Tensor, k?: number) { return idx.triu(this, k); },

  copy_(this: Tensor, src: Tensor | number) { return copy_(this, src); },

  backward(this: Tensor, g?: Tensor | null, o?: BackwardOptions) { backward(this, g, o); },
};

for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(Tensor.prototype, name, { value: fn, writable: true, configurable: true, enumerable: false });
}
