/**
 * From strided views to one matmul kernel launch. The kernel (Backend.matmul) takes each operand
 * as a buffer, an offset, a transpose flag and one batch stride (0 broadcasts one matrix over the
 * batch); `launchMatmul` reads those off the operands' strides, so transposed views
 * (`w.transpose()`) and broadcast matrices cost no copy. A contiguous copy is made only for
 * layouts the kernel cannot express (a column slice, or a batch broadcast on some dims but not
 * others). A batch of matrices times one shared matrix is folded into a single product
 * ([B·m, k] @ [k, n]). The ops and their derivatives are in autograd/ops/matmul.ts.
 */
import type { BackendBuffer, View } from './backend';
import { kernels } from './registry';
import type { DType } from '../tensor/dtype';
import { contiguousStrides, numel, type Shape } from '../tensor/shape';

/** How a [rows, cols] matrix with these strides is stored: row-major ('n'), column-major ('t'), or neither. */
function matrixLayout(rows: number, cols: number, rowStride: number, colStride: number): 'n' | 't' | null {
  if ((cols === 1 || colStride === 1) && (rows === 1 || rowStride === cols)) return 'n';
  if ((rows === 1 || rowStride === 1) && (cols === 1 || colStride === rows)) return 't';
  return null;
}

/**
 * The one stride s with which batch entry i (row-major over `batch`) sits at i·s, given the
 * per-dim strides (already broadcast: 0 on broadcast dims), or null if there is none.
 */
function flatBatchStride(batch: Shape, strides: readonly number[]): number | null {
  const cs = contiguousStrides(batch);
  let s: number | null = null;
  for (let d = 0; d < batch.length; d++) {
    if (batch[d] === 1) continue;
    const candidate = strides[d] / cs[d];
    if (s === null) {
      if (!Number.isInteger(candidate) || candidate < 0) return null;
      s = candidate;
    } else if (strides[d] !== cs[d] * s) {
      return null;
    }
  }
  return s ?? 0;
}

interface Operand {
  buffer: BackendBuffer;
  offset: number;
  trans: boolean;
  batchStride: number;
  /** A temporary contiguous copy to release after the launch. */
  temp: BackendBuffer | null;
}

/**
 * Describes a strided view of shape [...ownBatch, rows, cols] (ownBatch broadcastable to
 * `batch`) to the kernel, copying it into a contiguous buffer only when the kernel cannot read
 * it in place.
 */
function operand(v: View, batch: Shape): Operand {
  const nd = v.shape.length;
  const rows = v.shape[nd - 2];
  const cols = v.shape[nd - 1];
  const operandOf = (view: View, temp: BackendBuffer | null): Operand | null => {
    const vd = view.shape.length;
    const layout = matrixLayout(rows, cols, view.strides[vd - 2], view.strides[vd - 1]);
    const bs = flatBatchStride(batch, batchStrides(view, batch));
    if (layout === null || bs === null) return null;
    return { buffer: view.buffer, offset: view.offset, trans: layout === 't', batchStride: bs, temp };
  };
  const direct = operandOf(v, null);
  if (direct) return direct;
  const k = kernels();
  // a contiguous copy of the operand alone, when that suffices (keeps a broadcast matrix broadcast)
  const packedStrides = contiguousStrides(v.shape);
  if (flatBatchStride(batch, batchStrides({ ...v, strides: packedStrides }, batch)) !== null) {
    const own = k.copy(v, v.buffer.dtype);
    return operandOf({ buffer: own, shape: v.shape, strides: packedStrides, offset: 0 }, own) as Operand;
  }
  // broadcast along some batch dims but not others: materialise the operand over the whole batch
  const fullShape = [...batch, rows, cols];
  const expanded: View = { buffer: v.buffer, shape: fullShape, strides: [...batchStrides(v, batch), v.strides[nd - 2], v.strides[nd - 1]], offset: v.offset };
  const full = k.copy(expanded, v.buffer.dtype);
  return operandOf({ buffer: full, shape: fullShape, strides: contiguousStrides(fullShape), offset: 0 }, full) as Operand;
}

/** The strides of a view's leading (batch) dims read as broadcast to `batch` (0 on broadcast dims). */
function batchStrides(view: View, batch: Shape): number[] {
  const own = view.shape.slice(0, view.shape.length - 2);
  const lead = batch.length - own.length;
  return batch.map((size, i) => (i < lead || (own[i - lead] === 1 && size !== 1) ? 0 : view.strides[i - lead]));
}

/**
 * One kernel launch: out[...batch] (m x n) = A[...batch] (m x k) @ B[...batch] (k x n), where
 * the views' leading dims broadcast to `batch`. Returns a contiguous [...batch, m, n] buffer.
 */
export function launchMatmul(a: View, b: View, batch: Shape, m: number, k: number, n: number, outDtype: DType): BackendBuffer {
  const B = numel(batch);
  const kern = kernels();
  if (B * m * n === 0 || k === 0) return kern.zeros(outDtype, B * m * n); // empty product: zeros, nothing to launch
  const oa = operand(a, batch);
  const ob = operand(b, batch);
  try {
    // a batch of row-major A blocks stored back to back, times one shared B: one [B·m, k] @ [k, n] product
    const fold = B > 1 && ob.batchStride === 0 && !oa.trans && oa.batchStride === m * k;
    return kern.matmul(
      oa.buffer,
      ob.buffer,
      {
        batch: fold ? 1 : B,
        m: fold ? B * m : m,
        k,
        n,
        transA: oa.trans,
        transB: ob.trans,
        aBatchStride: fold ? 0 : oa.batchStride,
        bBatchStride: ob.batchStride,
        aOffset: oa.offset,
        bOffset: ob.offset,
      },
      outDtype,
    );
  } finally {
    if (oa.temp) kern.release(oa.temp);
    if (ob.temp) kern.release(ob.temp);
  }
}
