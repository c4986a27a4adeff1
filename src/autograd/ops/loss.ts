/**
 * Losses. crossEntropy is fused: one row kernel computes each row's loss from the logits
 * (log-sum-exp, the target logit and, with label smoothing, the row sum) and one row kernel its
 * gradient softmax(x) − q, so no [N, C] log-probabilities are kept for backward.
 * test/autograd/ops/loss.test.ts proves it agrees with -gather(logSoftmax(x), t) composed from
 * primitives. mseLoss is composed from primitives.
 */
import type { CrossEntropyArgs } from '../../kernels/backend';
import { kernels } from '../../kernels/registry';
import { DTypeError, ShapeError, ValueError, fmtShape } from '../../errors';
import { broadcastShapes, sameShape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { arange } from '../../tensor/creation';
import { isGradEnabled, noGrad } from '../grad-mode';
import { record } from '../node';
import { add, cast, div, eq, mul, ne, requireFloating, sub, where } from './elementwise';
import { mean, sum } from './reduce';
import { expand, permute, reshape, unsqueeze, withPacked } from './shape';
import { softmax } from './softmax';

export type Reduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions {
  /** Target value whose entries contribute 0 and are left out of the mean (default -100). */
  ignoreIndex?: number;
  reduction?: Reduction;
  /** ε in [0, 1]: the target becomes (1 − ε)·onehot + ε/C. */
  labelSmoothing?: number;
}

function checkReduction(op: string, reduction: unknown): Reduction {
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new ValueError(op, `reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
  }
  return reduction;
}


/**
 * torch.nn.functional.cross_entropy with class-index targets: logits [N, C] with target [N],
 * logits [N, C, d1, ...] with target [N, d1, ...] (classes on dim 1), or logits [C] with a 0-d
 * target. Targets are int32. Per element: −Σ_c q_c·log softmax(x)_c with
 * q = (1 − ε)·onehot(t) + ε/C. 'mean' divides by the number of entries not equal to
 * ignoreIndex (NaN when all are ignored, as PyTorch).
 */
export function crossEntropy(logits: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  if (!(logits instanceof Tensor)) throw new ValueError(op, `logits must be a Tensor, got ${logits === null ? 'null' : typeof logits}`);
  if (!(target instanceof Tensor)) throw new ValueError(op, `target must be a Tensor, got ${target === null ? 'null' : typeof target}`);
  const ignoreIndex = options.ignoreIndex ?? -100;
  const reduction = checkReduction(op, options.reduction ?? 'mean');
  const eps = options.labelSmoothing ?? 0;
  if (!Number.isInteger(ignoreIndex)) throw new ValueError(op, `ignoreIndex must be an integer, got ${ignoreIndex}`);
  if (typeof eps !== 'number' || !(eps >= 0 && eps <= 1)) {
    throw new ValueError(op, `labelSmoothing must be in [0, 1], got ${eps}`);
  }
  requireFloating(op, logits, 'logits');
  if (target.dtype !== 'int32') {
    throw new DTypeError(
      op,
      `target must hold int32 class indices, got ${target.dtype} of shape ${fmtShape(target.shape)}; ` +
        "cast it with .to('int32') (class probabilities as targets are not supported)",
    );
  }
  if (logits.backend !== target.backend) {
    throw new ValueError(op, `logits live on backend ${logits.backend} but target on ${target.backend}; move one of them first`);
  }
  if (logits.ndim === 0) {
    throw new ShapeError(op, 'logits must have a class dim: [C], [N, C] or [N, C, d1, ...], got a 0-d tensor');
  }
  const classDim = logits.ndim === 1 ? 0 : 1;
  const classes = logits.shape[classDim];
  const expected = logits.shape.filter((_, i) => i !== classDim);
  if (!sameShape(target.shape, expected)) {
    throw new ShapeError(
      op,
      `target of shape ${fmtShape(target.shape)} does not fit logits of shape ${fmtShape(logits.shape)}: ` +
        `expected target shape ${fmtShape(expected)} (logits with the class dim ${classDim} removed)`,
    );
  }
  // targets are read on the host: an out-of-range class would otherwise read past the row
  const targets = target.toTypedArray() as Int32Array;
  let count = 0;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    if (t === ignoreIndex) continue;
    if (t < 0 || t >= classes) {
      throw new ValueError(
        op,
        `target value ${t} (at flat index ${i}) is out of range for ${classes} classes; ` +
          `expected a value in [0, ${classes}) or ignoreIndex (${ignoreIndex})`,
      );
    }
    count++;
  }

  // rows: the class dim moved last, [N, d1, ..., C] flattened to [outer, C]
  const outer = targets.length;
  const perm = classDim === logits.ndim - 1 ? null : [...expected.map((_, i) => (i === 0 ? 0 : i + 1)), 1];
  const inverse = perm ? perm.map((_, i) => perm.indexOf(i)) : null;
  const movedShape = [...expected, classes];
  /** Runs fn on the packed [outer, C] rows of x and the packed targets. */
  const withRows = <T>(x: Tensor, t: Tensor, fn: (rows: Tensor, targets: Tensor) => T): T =>
    withPacked(perm ? noGrad(() => permute(x, perm)) : x, (rows) => withPacked(t, (packedT) => fn(rows, packedT)));

  const args: CrossEntropyArgs = { outer, classes, ignoreIndex, labelSmoothing: eps };
  const lossRows = withRows(logits, target, (rows, t) => new Tensor(kernels().crossEntropyLast(rows.buffer, t.buffer, args), target.shape));
  let out = lossRows;
  if (reduction !== 'none') {
    out = noGrad(() => (reduction === 'sum' ? sum(lossRows) : div(sum(lossRows), count)));
    lossRows.dispose();
  }
  const dtype = logits.dtype;

  // d loss / d x_c = gᵣ·(softmax(x)_c − q_c) per row, with gᵣ the row's share of the output gradient
  return record(op, [logits, null], out, [logits, target], (g, [logits, target]) => {
    const gRow =
      reduction === 'none' ? reshape(g, [outer]) : expand(reshape(reduction === 'sum' ? g : div(g, count), [1]), [outer]);
    if (isGradEnabled()) {
      // createGraph: the same formula from differentiable ops, so higher-order gradients are right
      const x = reshape(perm ? permute(logits, perm) : logits, [outer, classes]);
      const t = reshape(target, [outer, 1]);
      const q = add(mul(cast(eq(t, arange(classes)), dtype), 1 - eps), eps / classes);
      const rowScale = where(ne(reshape(target, [outer]), ignoreIndex), gRow, 0);
      const d = reshape(mul(unsqueeze(rowScale, 1), sub(softmax(x, -1), q)), movedShape);
      return [inverse ? permute(d, inverse) : d, null];
    }
    const d = withRows(logits, target, (rows, t) =>
      withPacked(gRow, (gr) => new Tensor(kernels().crossEntropyBackwardLast(rows.buffer, t.buffer, gr.buffer, args), movedShape)),
    );
    return [inverse ? permute(d, inverse) : d, null];
  });
}

/**
 * torch.nn.functional.mse_loss: (input − target)², averaged ('mean', default), summed ('sum')
 * or kept elementwise ('none'). The shapes must broadcast; the gradient comes from sub/mul/mean.
 */
export function mseLoss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  const op = 'mseLoss';
  if (!(input instanceof Tensor)) throw new ValueError(op, `input must be a Tensor, got ${input === null ? 'null' : typeof input}`);
  if (!(target instanceof Tensor)) throw new ValueError(op, `target must be a Tensor, got ${target === null ? 'null' : typeof target}`);
  const reduction = checkReduction(op, options.reduction ?? 'mean');
  requireFloating(op, input);
  broadcastShapes(op, input.shape, target.shape); // a ShapeError naming both shapes, before any kernel
  const diff = sub(input, target);
  const sq = mul(diff, diff);
  return reduction === 'none' ? sq : reduction === 'sum' ? sum(sq) : mean(sq);
}
