/**
 * Indexing ops: indexSelect, gather, embedding (with their scatter-add adjoints), maskedFill,
 * tril and triu. Index tensors are int32, checked on the host (dtype and range) before any
 * kernel runs; they are inputs without gradient (`null` in the recorded inputs).
 *
 * The select/add and gather/scatter-add pairs are each other's adjoints, and both directions
 * are recorded ops, so gradients of gradients work (createGraph).
 */
import { kernels } from '../../kernels/registry';
import { DTypeError, ShapeError, ValueError, fmtShape } from '../../errors';
import { broadcastShapes, normalizeDim, numel, sameShape, type Shape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { scalarTensor } from '../../tensor/creation';
import { record } from '../node';
import { ne, where } from './elementwise';
import { reshape, unsqueeze, withPacked } from './shape';

// ------------------------------------------------------------------ helpers

function checkTensor(op: string, x: unknown, what: string): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new ValueError(op, `${what} must be a Tensor, got ${x === null ? 'null' : typeof x}`);
}

function checkIndexDType(op: string, index: Tensor, what = 'index'): void {
  if (index.dtype !== 'int32') {
    throw new DTypeError(
      op,
      `${what} must be an int32 tensor, got ${index.dtype} of shape ${fmtShape(index.shape)}; cast it with .to('int32')`,
    );
  }
}

function checkSameBackend(op: string, a: Tensor, b: Tensor): void {
  if (a.backend !== b.backend) {
    throw new ValueError(op, `operands live on different backends (${a.backend} and ${b.backend}); move one of them first`);
  }
}

/**
 * Reads the index values on the host, checks each is in [0, size), and returns the index as a
 * contiguous int32 tensor whose buffer holds exactly its elements (what the kernels expect).
 */
function checkedIndex(op: string, index: Tensor, size: number, target: string): Tensor {
  const values = index.toTypedArray() as Int32Array;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < 0 || v >= size) {
      const range = size === 0 ? 'it has no valid indices' : `valid indices are 0..${size - 1}`;
      throw new ValueError(op, `index ${v} is out of range for ${target}: ${range}`);
    }
  }
  return exact(index, values);
}

/** The index tensor itself when its buffer is exactly its elements in order, else a fresh one. */
function exact(index: Tensor, values?: Int32Array): Tensor {
  if (index.isContiguous() && index.offset === 0 && index.numel === index.buffer.length) return index;
  return new Tensor(kernels().upload('int32', values ?? (index.toTypedArray() as Int32Array)), index.shape);
}


/** [outer, size, inner] around dim d. */
function split(shape: Shape, d: number): [number, number, number] {
  return [numel(shape.slice(0, d)), shape.length === 0 ? 1 : shape[d], numel(shape.slice(d + 1))];
}

// ------------------------------------------------------------------ indexSelect / indexAdd

/** indexSelect without validation (idx already checked and exact). */
function indexSelectRaw(a: Tensor, d: number, idx: Tensor): Tensor {
  const [outer, size, inner] = split(a.shape, d);
  const shape = a.ndim === 0 ? [...idx.shape] : a.shape.map((s, i) => (i === d ? idx.numel : s));
  const out = new Tensor(
    withPacked(a, (p) => kernels().indexSelect(p.buffer, idx.buffer, outer, size, inner)),
    shape,
  );
  const inShape = a.shape;
  // the adjoint of selecting rows is adding the gradient rows back into place (duplicates accumulate)
  return record('indexSelect', [a, null], out, [idx], (g, [idx]) => [indexAddRaw(g, d, idx, inShape), null]);
}

/** zeros(outShape) with src's slices along d added at rows idx (recorded: its gradient is indexSelect). */
function indexAddRaw(src: Tensor, d: number, idx: Tensor, outShape: Shape): Tensor {
  const [outer, size, inner] = split(outShape, d);
  const out = new Tensor(
    withPacked(src, (p) => kernels().indexAdd(p.buffer, idx.buffer, outer, size, inner)),
    outShape,
  );
  return record('indexAdd', [src, null], out, [idx], (g, [idx]) => [indexSelectRaw(g, d, idx), null]);
}

/**
 * The slices of `a` at positions `index` along `dim` (torch.index_select); index is a 1-D int32
 * tensor (a 0-d index selects one slice, keeping the dim). Repeated indices select repeatedly,
 * and their gradients accumulate.
 */
export function indexSelect(a: Tensor, dim: number, index: Tensor): Tensor {
  checkTensor('indexSelect', a, 'input');
  checkTensor('indexSelect', index, 'index');
  checkIndexDType('indexSelect', index);
  checkSameBackend('indexSelect', a, index);
  if (index.ndim > 1) {
    throw new ShapeError('indexSelect', `index must be 1-D (or 0-d), got shape ${fmtShape(index.shape)}`);
  }
  const d = normalizeDim('indexSelect', dim, a.ndim);
  const size = a.ndim === 0 ? 1 : a.shape[d];
  const idx = checkedIndex('indexSelect', index, size, `dim ${dim} of size ${size} (input shape ${fmtShape(a.shape)})`);
  return indexSelectRaw(a, d, idx.ndim === 0 ? reshapeIndex(idx, [1]) : idx);
}

/** An int32 index with another shape over the same (exact) buffer. */
function reshapeIndex(idx: Tensor, shape: Shape): Tensor {
  return new Tensor(idx.buffer, shape);
}

// ------------------------------------------------------------------ gather / scatterAdd

function gatherRaw(a: Tensor, d: number, idx: Tensor): Tensor {
  const out = new Tensor(
    withPacked(a, (p) => kernels().gather(p.buffer, p.shape, idx.buffer, idx.shape, d)),
    idx.shape,
  );
  const inShape = a.shape;
  // out[p] = a[p with dim d := index[p]]: the adjoint scatters each gradient entry back (adding)
  return record('gather', [a, null], out, [idx], (g, [idx]) => [scatterAddRaw(g, d, idx, inShape), null]);
}

export function scatterAddRaw(src: Tensor, d: number, idx: Tensor, outShape: Shape): Tensor {
  const out = new Tensor(
    withPacked(src, (p) => kernels().scatterAdd(p.buffer, idx.buffer, idx.shape, d, outShape)),
    outShape,
  );
  return record('scatterAdd', [src, null], out, [idx], (g, [idx]) => [gatherRaw(g, d, idx), null]);
}

/**
 * torch.gather: out[i][j][k] = a[index[i][j][k]][j][k] for dim 0 (and so on). index is int32
 * with as many dims as `a`, and index.size(d) <= a.size(d) for every d other than dim; the
 * output has index's shape.
 */
export function gather(a: Tensor, dim: number, index: Tensor): Tensor {
  checkTensor('gather', a, 'input');
  checkTensor('gather', index, 'index');
  checkIndexDType('gather', index);
  checkSameBackend('gather', a, index);
  const d = normalizeDim('gather', dim, a.ndim);
  if (index.ndim !== a.ndim) {
    throw new ShapeError(
      'gather',
      `index must have as many dims as the input: index has shape ${fmtShape(index.shape)}, input ${fmtShape(a.shape)}`,
    );
  }
  for (let i = 0; i < a.ndim; i++) {
    if (i !== d && index.shape[i] > a.shape[i]) {
      throw new ShapeError(
        'gather',
        `index of shape ${fmtShape(index.shape)} is larger than the input of shape ${fmtShape(a.shape)} in dim ${i} ` +
          `(${index.shape[i]} > ${a.shape[i]}); index.size(d) <= input.size(d) is required for every d != dim (${dim})`,
      );
    }
  }
  const size = a.ndim === 0 ? 1 : a.shape[d];
  const idx = checkedIndex('gather', index, size, `dim ${dim} of size ${size} (input shape ${fmtShape(a.shape)})`);
  return gatherRaw(a, d, idx);
}

// ------------------------------------------------------------------ masks

/**
 * `value` where mask is nonzero, `a` elsewhere (torch.masked_fill); mask broadcasts to a's
 * shape. The gradient is zero where filled. The result keeps a's dtype.
 */
export function maskedFill(a: Tensor, mask: Tensor, value: number): Tensor {
  checkTensor('maskedFill', a, 'input');
  checkTensor('maskedFill', mask, 'mask');
  if (typeof value !== 'number') throw new ValueError('maskedFill', `value must be a number, got ${typeof value}`);
  checkSameBackend('maskedFill', a, mask);
  let ok = mask.ndim <= a.ndim;
  if (ok) {
    try {
      ok = sameShape(broadcastShapes('maskedFill', mask.shape, a.shape), a.shape);
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    throw new ShapeError(
      'maskedFill',
      `mask of shape ${fmtShape(mask.shape)} cannot be broadcast to the input's shape ${fmtShape(a.shape)}`,
    );
  }
  // where(mask, value, a): d/da = 1 where the mask is 0, else 0
  return where(mask, scalarTensor(value, a.dtype, 'maskedFill'), a);
}

function triangle(op: 'tril' | 'triu', a: Tensor, diagonal: number): Tensor {
  checkTensor(op, a, 'input');
  if (a.ndim < 2) {
    throw new ShapeError(op, `expected a tensor with at least 2 dims (a matrix or a batch of them), got shape ${fmtShape(a.shape)}`);
  }
  if (!Number.isInteger(diagonal)) throw new ValueError(op, `diagonal must be an integer, got ${diagonal}`);
  const rows = a.shape[a.ndim - 2];
  const cols = a.shape[a.ndim - 1];
  const mask = new Tensor(kernels().triangleMask(rows, cols, diagonal, op === 'tril'), [rows, cols]);
  // a where the mask is 1, else 0; the gradient passes through the kept triangle only
  return where(mask, a, scalarTensor(0, a.dtype));
}

/** Lower triangle of the last two dims: elements with col - row <= diagonal; the rest are 0. */
export function tril(a: Tensor, diagonal = 0): Tensor {
  return triangle('tril', a, diagonal);
}

/** Upper triangle of the last two dims: elements with col - row >= diagonal; the rest are 0. */
export function triu(a: Tensor, diagonal = 0): Tensor {
  return triangle('triu', a, diagonal);
}

// ------------------------------------------------------------------ embedding

export interface EmbeddingOptions {
  /** Rows at this index get no gradient (negative counts from the end), as in PyTorch. */
  paddingIdx?: number;
}

/**
 * Looks up rows of `weight` ([num, dim]) for int32 indices of any shape: the result has shape
 * [...input.shape, dim]. The weight's gradient adds each output gradient row into the row it
 * came from; rows at paddingIdx get zero gradient.
 */
export function embedding(input: Tensor, weight: Tensor, options: EmbeddingOptions = {}): Tensor {
  checkTensor('embedding', input, 'input');
  checkTensor('embedding', weight, 'weight');
  checkIndexDType('embedding', input, 'input (the indices)');
  checkSameBackend('embedding', input, weight);
  if (weight.ndim !== 2) {
    throw new ShapeError('embedding', `weight must be 2-D [numEmbeddings, embeddingDim], got shape ${fmtShape(weight.shape)}`);
  }
  const [num, dim] = weight.shape;
  let pad: number | null = null;
  if (options.paddingIdx !== undefined && options.paddingIdx !== null) {
    const p = options.paddingIdx;
    if (!Number.isInteger(p) || p < -num || p >= num) {
      throw new ValueError('embedding', `paddingIdx ${p} must be an integer in [${-num}, ${num - 1}] for a weight with ${num} rows`);
    }
    pad = p < 0 ? p + num : p;
  }
  const checked = checkedIndex('embedding', input, num, `a weight with ${num} rows (shape ${fmtShape(weight.shape)})`);
  const idx = reshapeIndex(checked, [checked.numel]);
  const n = idx.numel;
  const out = new Tensor(
    withPacked(weight, (p) => kernels().indexSelect(p.buffer, idx.buffer, 1, num, dim)),
    [...input.shape, dim],
  );
  return record('embedding', [null, weight], out, [idx], (g, [idx]) => {
    let rows = reshape(g, [n, dim]);
    // padding rows receive nothing: zero the gradient rows that point at them
    if (pad !== null) rows = where(unsqueeze(ne(idx, pad), 1), rows, 0);
    return [null, indexAddRaw(rows, 0, idx, [num, dim])];
  });
}
