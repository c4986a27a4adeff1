/**
 * Matrix products: matmul (torch.matmul semantics, batched with broadcasting) and linear
 * (x @ Wᵀ + b as one graph node).
 *
 * How the operands' strides become one kernel launch (transposed views and broadcast matrices
 * without a copy) is in kernels/matmul-launch.ts; this file is the ops and their derivatives.
 */
import type { View } from '../../kernels/backend';
import { kernels } from '../../kernels/registry';
import { launchMatmul } from '../../kernels/matmul-launch';
import { ShapeError, ValueError, fmtShape } from '../../errors';
import { promoteTypes } from '../../tensor/dtype';
import { checkNumel, type Shape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { notSaved, record } from '../node';
import { castTo } from './elementwise';
import { sum, sumTo } from './reduce';
import { reshape, slice, transpose, unsqueeze } from './shape';
import { rowGradientSink, sinkTakesGradient } from '../row-gradients';

function checkSameBackend(op: string, tensors: readonly Tensor[]): void {
  const first = tensors[0];
  for (const t of tensors) {
    if (t.backend !== first.backend) {
      throw new ValueError(op, `operands live on different backends (${first.backend} and ${t.backend}); move one of them first`);
    }
  }
}

/** A strided view of a 1-D vector as a [1, k] row or a [k, 1] column (no copy). */
function vectorAsMatrix(t: Tensor, asRow: boolean): View {
  const len = t.shape[0];
  const s = t.strides[0];
  return asRow
    ? { buffer: t.buffer, shape: [1, len], strides: [len * s, s], offset: t.offset }
    : { buffer: t.buffer, shape: [len, 1], strides: [s, 1], offset: t.offset };
}


// ------------------------------------------------------------------ matmul

/**
 * Matrix product with torch.matmul semantics: 1-D · 1-D is a dot product (0-d result); a 1-D
 * first operand is a row (its dim is removed afterwards), a 1-D second operand a column; N-D
 * operands are batches of matrices whose batch dims broadcast.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (!(a instanceof Tensor) || !(b instanceof Tensor)) throw new ValueError('matmul', 'both operands must be Tensors');
  checkSameBackend('matmul', [a, b]);
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError(
      'matmul',
      `both operands need at least 1 dim, got shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}; use mul() to scale by a 0-d tensor`,
    );
  }
  const aVec = a.ndim === 1;
  const bVec = b.ndim === 1;
  const av: View = aVec ? vectorAsMatrix(a, true) : a;
  const bv: View = bVec ? vectorAsMatrix(b, false) : b;
  const m = av.shape[av.shape.length - 2];
  const k = av.shape[av.shape.length - 1];
  const kb = bv.shape[bv.shape.length - 2];
  const n = bv.shape[bv.shape.length - 1];
  if (k !== kb) {
    throw new ShapeError(
      'matmul',
      `inner dimensions differ, ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} (${k} vs ${kb}): ` +
        'the last dim of the first operand must equal the ' + (bVec ? 'size of the 1-D second operand' : 'second-to-last dim of the second'),
    );
  }
  const batchA = av.shape.slice(0, -2);
  const batchB = bv.shape.slice(0, -2);
  const batch = broadcastBatch(a.shape, b.shape, batchA, batchB);
  const dtype = promoteTypes(a.dtype, b.dtype);
  const outShape = [...batch, ...(aVec ? [] : [m]), ...(bVec ? [] : [n])];
  checkNumel('matmul', outShape); // [1e5, 1] @ [1, 1e5] would allocate 1e10 elements
  const out = new Tensor(launchMatmul(av, bv, batch, m, k, n, dtype), outShape);

  const aShape = a.shape;
  const bShape = b.shape;
  const aDtype = a.dtype;
  const bDtype = b.dtype;
  // dA = g @ Bᵀ needs B; dB = Aᵀ @ g needs A: keep only what a needed gradient reads (slot 0 is
  // A, slot 1 is B, an empty placeholder where not kept; needs[0] implies B was kept, and needs[1] A)
  const save = [b.requiresGrad ? a : notSaved(), a.requiresGrad ? b : notSaved()];
  return record('matmul', [a, b], out, save, (g, [sa, sb], needs) => {
    // g back to the full [...batch, m, n] (the dims removed for 1-D operands, as size-1 views)
    let g2 = g;
    if (aVec) g2 = unsqueeze(g2, g2.ndim - (bVec ? 0 : 1));
    if (bVec) g2 = unsqueeze(g2, g2.ndim);
    let dA: Tensor | null = null;
    let dB: Tensor | null = null;
    if (needs[0]) {
      const b2 = bVec ? unsqueeze(sb, 1) : sb;
      // dA = g @ Bᵀ, summed over the batch dims A was broadcast along
      const a2Shape = aVec ? [1, k] : aShape;
      dA = castTo(reshape(sumTo(matmul(g2, transpose(b2)), a2Shape), aShape), aDtype);
    }
    if (needs[1]) {
      const a2 = aVec ? unsqueeze(sa, 0) : sa;
      const b2Shape = bVec ? [k, 1] : bShape;
      let d: Tensor;
      if (b2Shape.length === 2 && a2.ndim > 2 && a2.isContiguous()) {
        // B is one matrix shared by the batch: dB = Σ_b A_bᵀ g_b = A_flatᵀ @ g_flat, one product
        d = matmul(transpose(reshape(a2, [-1, k])), reshape(g2, [-1, n]));
      } else {
        // dB = Aᵀ @ g, summed over the batch dims B was broadcast along
        d = sumTo(matmul(transpose(a2), g2), b2Shape);
      }
      dB = castTo(reshape(d, bShape), bDtype);
    }
    return [dA, dB];
  });
}

/** The broadcast batch shape, with an error naming both full operand shapes. */
function broadcastBatch(aShape: Shape, bShape: Shape, batchA: Shape, batchB: Shape): number[] {
  const nb = Math.max(batchA.length, batchB.length);
  const out: number[] = [];
  for (let i = 0; i < nb; i++) {
    const da = batchA[batchA.length - nb + i] ?? 1;
    const db = batchB[batchB.length - nb + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        'matmul',
        `batch dimensions ${fmtShape(batchA)} and ${fmtShape(batchB)} of ${fmtShape(aShape)} @ ${fmtShape(bShape)} cannot be broadcast ` +
          `(${da} vs ${db}); batch sizes must match or one of them be 1`,
      );
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

// ------------------------------------------------------------------ linear

/**
 * y = x @ weightᵀ + bias for x of shape [..., in], weight [out, in] and bias [out]: one graph
 * node ('linear'), one matmul kernel forward (weight read transposed in place), and in
 * backward one matmul for dx and one for dW, each only when needed.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (!(x instanceof Tensor) || !(weight instanceof Tensor)) throw new ValueError('linear', 'input and weight must be Tensors');
  const b = bias ?? null;
  if (b !== null && !(b instanceof Tensor)) throw new ValueError('linear', 'bias must be a Tensor, null or undefined');
  checkSameBackend('linear', b ? [x, weight, b] : [x, weight]);
  if (weight.ndim !== 2) {
    throw new ShapeError('linear', `weight must be 2-D [out, in], got shape ${fmtShape(weight.shape)}`);
  }
  if (x.ndim === 0) throw new ShapeError('linear', `input must have at least 1 dim [..., in], got shape ${fmtShape(x.shape)}`);
  const [outF, inF] = weight.shape;
  const xIn = x.shape[x.ndim - 1];
  if (xIn !== inF) {
    throw new ShapeError(
      'linear',
      `input of shape ${fmtShape(x.shape)} has ${xIn} in-features but weight of shape ${fmtShape(weight.shape)} expects ${inF} ` +
        '(weight is [out, in]; the input\'s last dim must equal in)',
    );
  }
  if (b !== null && (b.ndim !== 1 || b.shape[0] !== outF)) {
    throw new ShapeError(
      'linear',
      `bias has shape ${fmtShape(b.shape)} but weight of shape ${fmtShape(weight.shape)} has ${outF} out-features; bias must be [${outF}]`,
    );
  }
  const mmDtype = promoteTypes(x.dtype, weight.dtype);
  const dtype = b ? promoteTypes(mmDtype, b.dtype) : mmDtype;
  const xVec = x.ndim === 1;
  const xv: View = xVec ? vectorAsMatrix(x, true) : x;
  const batch = xv.shape.slice(0, -2);
  const m = xv.shape[xv.shape.length - 2];
  // Wᵀ as a [in, out] view: a contiguous weight is read with transB, no copy
  const wt: View = { buffer: weight.buffer, shape: [inF, outF], strides: [weight.strides[1], weight.strides[0]], offset: weight.offset };
  const outShape = [...x.shape.slice(0, -1), outF];
  checkNumel('linear', outShape);
  const k = kernels();
  let out = new Tensor(launchMatmul(xv, wt, batch, m, inF, outF, mmDtype), outShape);
  if (b) {
    const product = out;
    out = new Tensor(
      k.binary(
        'add',
        product,
        { buffer: b.buffer, shape: outShape, strides: outShape.map((_, i) => (i === outShape.length - 1 ? b.strides[0] : 0)), offset: b.offset },
        dtype,
      ),
      outShape,
    );
    product.dispose();
  }

  const xDtype = x.dtype;
  const wDtype = weight.dtype;
  const bDtype = b?.dtype ?? dtype;
  // dx = g @ W needs W; dW = gᵀ @ x needs x; db needs neither (slot 0 is x, slot 1 is W, an
  // empty placeholder where not kept; needs[0] implies W was kept, and needs[1] x)
  const save = [weight.requiresGrad ? x : notSaved(), x.requiresGrad ? weight : notSaved()];
  // an optimizer that trains only some rows of the weight receives their gradient (row-gradients.ts)
  const sink = weight.requiresGrad ? rowGradientSink(weight) : null;
  const hooks = sink ? { hooks: weight.hooks } : null; // the hook list (not the tensor): read when the backward runs
  return record('linear', [x, weight, b], out, save, (g, [sx, sw], needs) => {
    // dx = g @ W: [..., out] @ [out, in] -> [..., in] (the batch folds into one product)
    const dx = needs[0] ? castTo(matmul(g, sw), xDtype) : null;
    // dW = gᵀ @ x over all rows: [out, N] @ [N, in]; with a sink, over the rows it wants only
    let dW: Tensor | null = null;
    if (needs[1] && sink && hooks && sinkTakesGradient(sink, hooks)) {
      const rows = reshape(g, [-1, outF]);
      const inputs = reshape(sx, [-1, inF]);
      for (const [start, end] of sink.rows()) sink.accept(start, castTo(matmul(transpose(slice(rows, 1, start, end)), inputs), wDtype));
    } else if (needs[1]) {
      dW = castTo(matmul(transpose(reshape(g, [-1, outF])), reshape(sx, [-1, inF])), wDtype);
    }
    // db = g summed over every dim but the last
    const db = needs[2] ? castTo(g.ndim === 1 ? g : sum(g, { dim: g.shape.slice(0, -1).map((_, i) => i) }), bDtype) : null;
    return [dx, dW, db];
  });
}
