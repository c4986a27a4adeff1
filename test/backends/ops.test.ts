/**
 * One suite, run unchanged on every backend (as TensorFlow.js runs its op tests per environment):
 * cpu, gpu.js's cpu and webasm modes, and headlessgl where there is a display (jest under
 * `xvfb-run -a`), and the wasm backend on one and two threads. Each case runs forward and
 * backward in float32 on the backend under test; the expected values are the same computation in
 * float64 on the cpu backend. On the backends that compute in float64 (cpu, wasm) every
 * differentiable case also passes a float64 gradcheck; the gpu backend computes in float32 only. Beside
 * the table: Adam/AdamW steps (the adamUpdate kernel), dropout's mask rate and scale, and on gpu
 * the refusal of float64.
 *
 * Adding an op is one line in CASES: its inputs and a function of them.
 */
import {
  BackendError,
  Generator,
  abs,
  add,
  Adam,
  AdamW,
  argmax,
  argmin,
  backendInfo,
  cast,
  cat,
  clamp,
  contiguous,
  copy_,
  cos,
  crossEntropy,
  div,
  dropout,
  embedding,
  eq,
  exp,
  expand,
  flatten,
  gather,
  ge,
  gelu,
  getBackendName,
  grad,
  gradcheck,
  gt,
  indexSelect,
  layerNorm,
  le,
  linear,
  log,
  logSoftmax,
  logsumexp,
  lt,
  maskedFill,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mseLoss,
  mul,
  narrow,
  ne,
  neg,
  ones,
  permute,
  pow,
  relu,
  reshape,
  rmsNorm,
  rotaryEmbedding,
  rsqrt,
  scatterAddRaw,
  select,
  setBackend,
  sigmoid,
  sign,
  silu,
  sin,
  slice,
  softmax,
  sqrt,
  squeeze,
  stack,
  sub,
  sum,
  tanh,
  tensor,
  transpose,
  tril,
  triu,
  unsqueeze,
  variance,
  where,
  zeros,
  type DType,
  type Optimizer,
  type Tensor,
} from '../../src';
import {
  backendsUnderTest,
  intTensor,
  mismatch,
  numelOf,
  onCpu,
  requireHeadlessGlInCI,
  seedOf,
  uniform,
  valuesOf,
  type Tolerance,
} from './helpers';

// ------------------------------------------------------------------ tolerances

/**
 * float32 against the float64 reference: |got − expected| <= 1e-4 + 1e-4·|expected|. A float32
 * result carries ~6e-8 relative rounding per operation; the cases chain at most a few dozen
 * operations on O(1) values (rows of <= 16 elements, inner dimensions <= 6), so a correct kernel
 * stays 2-3 orders of magnitude inside this, while a wrong index or a wrong formula does not.
 */
const F32: Tolerance = { atol: 1e-4, rtol: 1e-4 };
/** float16 outputs: one float16 ulp is <= 2^-10 ≈ 9.8e-4 relative, and rounding a float32 and a float64 result may land one ulp apart. */
const F16: Tolerance = { atol: 1e-3, rtol: 1e-3 };
/** bfloat16 outputs: one bfloat16 ulp is <= 2^-7 ≈ 7.8e-3 relative (8 significant bits), with the same one-ulp allowance. */
const BF16: Tolerance = { atol: 8e-3, rtol: 8e-3 };

// ------------------------------------------------------------------ inputs

/** How a case's input is made: float ones require grad unless `grad: false`; int ones never do. */
interface Input {
  shape: number[];
  kind: 'float' | 'int';
  /** Fixed values; otherwise uniform in [lo, hi) seeded by the case name and input position. */
  values?: readonly number[];
  lo?: number;
  hi?: number;
  grad?: boolean;
}

/** Float input, uniform in [-2, 2). */
const f = (...shape: number[]): Input => ({ shape, kind: 'float' });
/** Float input, uniform in [0.5, 2.5): for log, sqrt, division, fractional powers. */
const pos = (...shape: number[]): Input => ({ shape, kind: 'float', lo: 0.5, hi: 2.5 });
/** Float input without gradient (a destination, a source that is only read). */
const fixed = (...shape: number[]): Input => ({ shape, kind: 'float', grad: false });
/** Float input with many ties: values from {-1, -0.5, 0, 0.5, 1} (ties resolve to the first index; shared gradients). */
const ties = (shape: number[], values: number[]): Input => ({ shape, kind: 'float', values });
/** Float input with NaNs among fixed values: NaN must propagate as in PyTorch (without gradients unless `grad`). */
const nans = (shape: number[], values: number[], grad = false): Input => ({ shape, kind: 'float', values, grad });
/** int32 input with the given values (indices, targets, masks). */
const ints = (shape: number[], values: number[]): Input => ({ shape, kind: 'int', values });

type Out = Tensor | Tensor[];

interface OpCase {
  name: string;
  inputs: Input[];
  /** The computation; `dtype` is the floating dtype of this run (float32 under test, float64 reference). */
  fn: (x: Tensor[], dtype: DType) => Out;
  /** A looser tolerance, with the reason beside the case. */
  tol?: Tolerance;
  /** Why finite differences cannot check this case in float64 (the float32 comparison still runs). */
  noGradcheck?: string;
}

/** Marks a case that a float64 gradcheck cannot check, and why. */
const noGradcheck = (cs: OpCase, why: string): OpCase => ({ ...cs, noGradcheck: why });

const c = (name: string, inputs: Input[], fn: OpCase['fn'], tol?: Tolerance): OpCase => ({ name, inputs, fn, tol });

// ------------------------------------------------------------------ the cases

const CASES: OpCase[] = [
  // ---- elementwise unary
  c('neg', [f(3, 4)], ([a]) => neg(a)),
  c('exp', [f(3, 4)], ([a]) => exp(a)),
  c('log', [pos(3, 4)], ([a]) => log(a)),
  c('sqrt', [pos(3, 4)], ([a]) => sqrt(a)),
  c('rsqrt', [pos(3, 4)], ([a]) => rsqrt(a)),
  c('abs', [f(3, 4)], ([a]) => abs(a)),
  c('sign (zero gradient)', [ties([2, 5], [-1, 0, 0.5, -0.5, 1, 0, -1, 1, 0.5, 0])], ([a]) => sign(a)),
  c('sin', [f(3, 4)], ([a]) => sin(a)),
  c('cos', [f(3, 4)], ([a]) => cos(a)),
  c('tanh', [f(3, 4)], ([a]) => tanh(a)),
  c('tanh of large values (no overflow)', [f(2, 6)], ([a]) => tanh(mul(a, 50))),
  c('sigmoid', [f(3, 4)], ([a]) => sigmoid(a)),
  c('sigmoid of large values (no overflow)', [f(2, 6)], ([a]) => sigmoid(mul(a, 60))),
  c('relu', [f(3, 4)], ([a]) => relu(a)),
  c('gelu exact', [f(3, 4)], ([a]) => gelu(a)),
  c('gelu tanh', [f(3, 4)], ([a]) => gelu(a, { approximate: 'tanh' })),
  c('silu', [f(3, 4)], ([a]) => silu(a)),
  c('clamp(min, max)', [f(3, 4)], ([a]) => clamp(a, -0.5, 1)),
  c('clamp(min only)', [f(3, 4)], ([a]) => clamp(a, 0.25)),
  c('pow(x, 2)', [f(3, 4)], ([a]) => pow(a, 2)),
  c('pow(x, 3), negative bases', [f(3, 4)], ([a]) => pow(a, 3)),
  c('pow(x, 0.5)', [pos(3, 4)], ([a]) => pow(a, 0.5)),
  c('pow(x, -1.5)', [pos(3, 4)], ([a]) => pow(a, -1.5)),
  c('pow(x, tensor exponent)', [pos(3, 4), f(3, 4)], ([a, p]) => pow(a, p)),
  c('unary on a transposed view', [f(4, 3)], ([a]) => exp(transpose(a))),
  // ---- NaN propagates (PyTorch's rules), it is never turned into a number
  noGradcheck(
    c('relu keeps NaN; its gradient passes there', [nans([2, 3], [NaN, -1, 0, 0.5, -0.5, NaN], true)], ([a]) => relu(a)),
    'finite differences of NaN are NaN, and relu has a kink at the 0 input',
  ),
  c(
    'maximum, minimum and clamp propagate NaN',
    [nans([2, 3], [NaN, 1, -1, 0.5, NaN, 2]), nans([2, 3], [0, NaN, -2, 1, 3, NaN])],
    ([a, b]) => [maximum(a, b), minimum(a, b), clamp(a, -0.5, 0.75)],
  ),
  c('max and min over all elements with a NaN are NaN', [nans([2, 3], [1, NaN, 2, -1, 0, 0.5])], ([a]) => [max(a), min(a)]),
  c(
    'max and min along a dim with NaN: NaN at the NaN\'s index (last and middle axes)',
    [nans([3, 4], [1, NaN, 2, 3, -1, -2, -3, NaN, 0, 0.5, 1, -1])],
    ([a]) => {
      const [r, s, t] = [max(a, 1), min(a, 1), max(a, 0)];
      return [r.values, r.indices, s.values, s.indices, t.values, t.indices];
    },
  ),
  c('argmax and argmin return the first NaN\'s index', [nans([3, 4], [1, NaN, 2, NaN, -1, -2, -3, NaN, 0, 0.5, 1, -1])], ([a]) => [argmax(a, 1), argmin(a, 1), argmax(a)]),

  // ---- elementwise binary, broadcast shapes included
  c('add', [f(3, 4), f(3, 4)], ([a, b]) => add(a, b)),
  c('add [3,1]+[1,4]', [f(3, 1), f(1, 4)], ([a, b]) => add(a, b)),
  c('sub [2,3,4]-[4]', [f(2, 3, 4), f(4)], ([a, b]) => sub(a, b)),
  c('mul [3,1]*[1,4]', [f(3, 1), f(1, 4)], ([a, b]) => mul(a, b)),
  c('mul [2,3,4]*[4]', [f(2, 3, 4), f(4)], ([a, b]) => mul(a, b)),
  c('mul by a scalar', [f(3, 4)], ([a]) => mul(a, -2.5)),
  c('div [2,3,4]/[3,1]', [f(2, 3, 4), pos(3, 1)], ([a, b]) => div(a, b)),
  c('div scalar/tensor', [pos(3, 4)], ([a]) => div(3, a)),
  c('maximum [3,1],[1,4]', [f(3, 1), f(1, 4)], ([a, b]) => maximum(a, b)),
  c('minimum [2,3,4],[4]', [f(2, 3, 4), f(4)], ([a, b]) => minimum(a, b)),
  c(
    'maximum with ties (gradient shared half-half)',
    [ties([2, 3], [0, 1, -1, 0.5, 0.5, 0]), ties([2, 3], [0, -1, -1, 1, 0.5, 1])],
    ([a, b]) => maximum(a, b),
  ),
  c('binary on transposed and sliced views', [f(4, 3), f(3, 8)], ([a, b]) => mul(transpose(a), slice(b, 1, 0, 8, 2))),

  // ---- comparisons (int32 0/1, not differentiable) and where
  ...(['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const).map((op) =>
    c(
      `${op} [2,3] vs [3] with ties`,
      [ties([2, 3], [0, 1, -1, 0.5, -0.5, 0]), ties([3], [0, 0.5, -1])],
      ([a, b]) => ({ eq, ne, lt, le, gt, ge })[op](a, b),
    ),
  ),
  c('gt against a scalar', [f(3, 4)], ([a]) => gt(a, 0.25)),
  c('where(cond [3,1], a [1,4], b [3,4])', [ints([3, 1], [1, 0, 1]), f(1, 4), f(3, 4)], ([m, a, b]) => where(m, a, b)),
  c('where(a > 0, a, b·2)', [f(3, 4), f(3, 4)], ([a, b]) => where(gt(a, 0), a, mul(b, 2))),
  c('where with a scalar branch', [f(2, 5)], ([a]) => where(lt(a, 0), 0, a)),

  // ---- reductions
  c('sum all', [f(3, 4)], ([a]) => sum(a)),
  c('sum dim 0', [f(3, 4)], ([a]) => sum(a, { dim: 0 })),
  c('sum dim 1 of [2,3,4] (a middle axis)', [f(2, 3, 4)], ([a]) => sum(a, { dim: 1 })),
  c('sum dims [0,2] keepDim', [f(2, 3, 4)], ([a]) => sum(a, { dim: [0, 2], keepDim: true })),
  c('sum dim -1 of a transposed view', [f(4, 3)], ([a]) => sum(transpose(a), { dim: -1 })),
  c('mean all', [f(3, 4)], ([a]) => mean(a)),
  c('mean dim -1 keepDim', [f(2, 3, 4)], ([a]) => mean(a, { dim: -1, keepDim: true })),
  c('mean dims [0,1]', [f(2, 3, 4)], ([a]) => mean(a, { dim: [0, 1] })),
  c('max all', [f(3, 4)], ([a]) => max(a)),
  noGradcheck(
    c('max all with tied maxima (gradient shared)', [ties([2, 3], [1, 0.5, 1, -1, 1, 0])], ([a]) => max(a)),
    'max is not differentiable at a tie: a nudge of one tied entry moves the max one-sidedly',
  ),
  c('max dim 1 (values, indices)', [f(3, 5)], ([a]) => { const r = max(a, 1); return [r.values, r.indices]; }),
  c('max dim 0 keepDim', [f(4, 3)], ([a]) => { const r = max(a, 0, true); return [r.values, r.indices]; }),
  c('min dim -1 of [2,3,4]', [f(2, 3, 4)], ([a]) => { const r = min(a, -1); return [r.values, r.indices]; }),
  c('min dim 1 keepDim of [2,3,4] (a middle axis)', [f(2, 3, 4)], ([a]) => { const r = min(a, 1, true); return [r.values, r.indices]; }),
  noGradcheck(
    c(
      'max dim 1 with ties: the first index wins',
      [ties([3, 4], [0.5, 1, 1, 0, -1, -1, -1, -1, 0, 0.5, 0, 0.5])],
      ([a]) => { const r = max(a, 1); return [r.values, r.indices]; },
    ),
    'max is not differentiable at a tie',
  ),
  c('min all', [f(3, 4)], ([a]) => min(a)),
  c('argmax dim 0', [f(4, 3)], ([a]) => argmax(a, 0)),
  c('argmin dim 1 keepDim', [f(3, 4)], ([a]) => argmin(a, 1, true)),
  c('argmax flattened', [f(3, 4)], ([a]) => argmax(a)),
  c('var dim 1 (Bessel)', [f(3, 5)], ([a]) => variance(a, { dim: 1 })),
  c('var dims [0,2] keepDim, correction 0', [f(2, 3, 4)], ([a]) => variance(a, { dim: [0, 2], keepDim: true, correction: 0 })),
  c('var all', [f(4, 4)], ([a]) => variance(a)),
  c('logsumexp dim -1 of large values', [f(3, 6)], ([a]) => logsumexp(mul(a, 60), { dim: -1 })),

  // ---- softmax family
  c('softmax dim -1', [f(3, 5)], ([a]) => softmax(a, -1)),
  c('softmax dim 0 of [4,3,2]', [f(4, 3, 2)], ([a]) => softmax(a, 0)),
  c('softmax of large logits (needs the row max subtracted)', [f(3, 6)], ([a]) => softmax(mul(a, 60), -1)),
  c('logSoftmax dim -1', [f(3, 5)], ([a]) => logSoftmax(a, -1)),
  c('logSoftmax dim 1 of [2,4,3], large logits', [f(2, 4, 3)], ([a]) => logSoftmax(mul(a, 60), 1)),
  c('softmax of a masked row (-inf entries)', [f(2, 4)], ([a]) => softmax(maskedFill(a, intTensor([0, 1, 1, 0], [1, 4]), -Infinity), -1)),

  // ---- norms
  c('layerNorm with weight and bias', [f(3, 8), f(8), f(8)], ([x, w, b]) => layerNorm(x, 8, w, b)),
  c('layerNorm over 2 dims, no affine', [f(2, 3, 4)], ([x]) => layerNorm(x, [3, 4])),
  c('layerNorm of a transposed view', [f(3, 8), f(3), f(3)], ([x, w, b]) => layerNorm(transpose(x), 3, w, b, 1e-3)),
  c('rmsNorm with weight', [f(2, 3, 8), f(8)], ([x, w]) => rmsNorm(x, 8, w)),
  c('rmsNorm without weight, eps 1e-2', [f(4, 6)], ([x]) => rmsNorm(x, 6, null, 1e-2)),

  // ---- rotary embedding: the tables broadcast against x, and are differentiable here too
  c('rotaryEmbedding, [T,D] tables against [B,H,T,D]', [f(2, 3, 4, 8), f(4, 8), f(4, 8)], ([x, co, si]) => rotaryEmbedding(x, co, si)),
  c('rotaryEmbedding of a transposed view, [B,1,T,D] tables', [f(2, 4, 3, 6), f(2, 1, 4, 6), f(2, 1, 4, 6)], ([x, co, si]) =>
    rotaryEmbedding(transpose(x, 1, 2), co, si),
  ),
  c('rotaryEmbedding, half 5 (a partial vector) and a strided last dim', [f(3, 10, 2), f(10), f(3, 1, 10)], ([x, co, si]) =>
    rotaryEmbedding(transpose(x, 1, 2), co, si),
  ),
  c('rotaryEmbedding, D = 2, tables without gradient', [f(5, 2), fixed(5, 2), fixed(1, 2)], ([x, co, si]) => rotaryEmbedding(x, co, si)),

  // ---- losses
  c('crossEntropy mean, ignoreIndex -100', [f(4, 5), ints([4], [1, -100, 3, 0])], ([x, t]) => crossEntropy(x, t)),
  c('crossEntropy ignoreIndex 2, sum', [f(5, 4), ints([5], [2, 0, 3, 2, 1])], ([x, t]) => crossEntropy(x, t, { ignoreIndex: 2, reduction: 'sum' })),
  c('crossEntropy labelSmoothing 0.1', [f(4, 5), ints([4], [4, 0, 2, 1])], ([x, t]) => crossEntropy(x, t, { labelSmoothing: 0.1 })),
  c(
    'crossEntropy labelSmoothing 0.2 with ignored rows, none',
    [f(4, 6), ints([4], [5, -100, 0, 3])],
    ([x, t]) => crossEntropy(x, t, { labelSmoothing: 0.2, reduction: 'none' }),
  ),
  c('crossEntropy [N,C,d] classes on dim 1', [f(2, 5, 3), ints([2, 3], [0, 4, 1, 2, -100, 3])], ([x, t]) => crossEntropy(x, t)),
  c('crossEntropy of large logits', [f(3, 7), ints([3], [6, 0, 2])], ([x, t]) => crossEntropy(mul(x, 40), t)),
  c('mseLoss', [f(3, 4), fixed(3, 4)], ([x, y]) => mseLoss(x, y)),

  // ---- matmul
  c('matmul [3,4]@[4,5]', [f(3, 4), f(4, 5)], ([a, b]) => matmul(a, b)),
  c('matmul batched [2,3,4]@[2,4,5]', [f(2, 3, 4), f(2, 4, 5)], ([a, b]) => matmul(a, b)),
  c('matmul broadcast batch [2,1,3,4]@[3,4,2]', [f(2, 1, 3, 4), f(3, 4, 2)], ([a, b]) => matmul(a, b)),
  c('matmul shared right operand [2,3,4]@[4,5]', [f(2, 3, 4), f(4, 5)], ([a, b]) => matmul(a, b)),
  c('matmul transposed left Aᵀ@B', [f(4, 3), f(4, 5)], ([a, b]) => matmul(transpose(a), b)),
  c('matmul transposed right A@Bᵀ', [f(3, 4), f(5, 4)], ([a, b]) => matmul(a, transpose(b))),
  c('matmul batched, both transposed', [f(2, 4, 3), f(2, 5, 4)], ([a, b]) => matmul(transpose(a), transpose(b))),
  c('matmul of a sliced operand', [f(3, 8), f(4, 2)], ([a, b]) => matmul(slice(a, 1, 1, 8, 2), b)),
  c('matmul vector@matrix', [f(4), f(4, 5)], ([a, b]) => matmul(a, b)),
  c('matmul matrix@vector', [f(3, 4), f(4)], ([a, b]) => matmul(a, b)),
  c('matmul dot product', [f(6), f(6)], ([a, b]) => matmul(a, b)),
  c('linear [2,3,4] with bias', [f(2, 3, 4), f(5, 4), f(5)], ([x, w, b]) => linear(x, w, b)),
  c('linear without bias, frozen weight', [f(3, 4), fixed(2, 4)], ([x, w]) => linear(x, w)),

  // ---- shape ops
  c('transpose', [f(3, 4)], ([a]) => transpose(a)),
  c('permute [2,3,4] -> [2,0,1]', [f(2, 3, 4)], ([a]) => permute(a, [2, 0, 1])),
  c('slice with step', [f(6, 5)], ([a]) => slice(a, 0, 1, 6, 2)),
  c('slice with step on the last dim', [f(3, 7)], ([a]) => slice(a, 1, 1, 7, 3)),
  c('narrow and select', [f(4, 5)], ([a]) => select(narrow(a, 1, 1, 3), 0, 2)),
  c('cat dim 1 of a tensor and a transposed view', [f(2, 3), f(2, 2)], ([a, b]) => cat([a, transpose(b)], 1)),
  c('cat dim 0, three pieces', [f(1, 3), f(2, 3), f(3, 3)], ([a, b, d]) => cat([a, b, d], 0)),
  c('stack dim 1', [f(2, 3), f(2, 3), f(2, 3)], ([a, b, d]) => stack([a, b, d], 1)),
  c('expand [3,1] -> [2,3,4]', [f(3, 1)], ([a]) => expand(a, [2, 3, 4])),
  c('expand then multiply', [f(1, 4), f(3, 4)], ([a, b]) => mul(expand(a, [3, 4]), b)),
  c('reshape of a non-contiguous view', [f(3, 4)], ([a]) => reshape(transpose(a), [2, 6])),
  c('flatten of a permuted view', [f(2, 3, 2)], ([a]) => flatten(permute(a, [1, 0, 2]))),
  c('squeeze and unsqueeze', [f(3, 1, 4)], ([a]) => unsqueeze(squeeze(a, 1), 0)),
  c('contiguous of a transposed view', [f(3, 4)], ([a]) => contiguous(transpose(a))),

  // ---- indexing
  c('indexSelect dim 0 with repeats', [f(5, 3), ints([4], [4, 0, 4, 2])], ([x, i]) => indexSelect(x, 0, i)),
  c('indexSelect dim 1 of [3,5,2]', [f(3, 5, 2), ints([3], [1, 1, 3])], ([x, i]) => indexSelect(x, 1, i)),
  c('embedding [2,3] ids into [6,4]', [ints([2, 3], [5, 0, 2, 2, 5, 1]), f(6, 4)], ([i, w]) => embedding(i, w)),
  noGradcheck(
    c('embedding with paddingIdx 0', [ints([2, 3], [0, 3, 1, 0, 3, 2]), f(4, 3)], ([i, w]) => embedding(i, w, { paddingIdx: 0 })),
    "the padding row's gradient is zero by definition (PyTorch's paddingIdx), not the derivative",
  ),
  c('gather dim 1 (backward: scatterAdd)', [f(3, 4), ints([3, 2], [3, 0, 1, 1, 2, 3])], ([x, i]) => gather(x, 1, i)),
  c('gather dim 0 with repeats', [f(4, 3), ints([2, 3], [3, 0, 3, 3, 1, 0])], ([x, i]) => gather(x, 0, i)),
  c(
    'scatterAddRaw dim 1 with repeats (backward: gather)',
    [f(2, 3), ints([2, 3], [4, 0, 4, 1, 1, 1])],
    ([x, i]) => scatterAddRaw(x, 1, i, [2, 5]),
  ),
  c('maskedFill, broadcast mask', [f(3, 4), ints([1, 4], [1, 0, 0, 1])], ([x, m]) => maskedFill(x, m, -1.5)),
  c('tril', [f(4, 5)], ([x]) => tril(x)),
  c('triu diagonal 1, batched', [f(2, 3, 3)], ([x]) => triu(x, 1)),

  // ---- in-place copy_ (not recorded: forward values only)
  c('copy_ into a strided slice', [fixed(2, 3)], ([s], dt) => {
    const dst = zeros([4, 6], { dtype: dt });
    copy_(slice(slice(dst, 0, 0, 4, 2), 1, 1, 6, 2), s);
    return dst;
  }),
  c('copy_ into a transposed view, broadcast source', [fixed(1, 3)], ([s], dt) => {
    const dst = ones([3, 5], { dtype: dt });
    copy_(transpose(narrow(dst, 1, 1, 3)), transpose(expand(s, [3, 3])));
    return dst;
  }),
  c('copy_ of a scalar', [fixed(3, 4)], ([s]) => {
    const dst = mul(s, 1);
    copy_(select(dst, 1, 2), 7.25);
    return dst;
  }),
  c('copy_ float32 into float16 (rounds)', [fixed(2, 5)], ([s]) => {
    const dst = zeros([2, 5], { dtype: 'float16' });
    copy_(dst, s);
    return dst;
  }, F16),

  // ---- dtype casts
  noGradcheck(c('cast to float16', [f(3, 4)], ([a]) => cast(a, 'float16'), F16), 'float16 rounding is far coarser than a finite difference'),
  noGradcheck(
    c('float16 arithmetic, cast back', [f(3, 4), f(3, 4)], ([a, b]) => cast(mul(cast(a, 'float16'), cast(b, 'float16')), 'float32'), F16),
    'float16 rounding is far coarser than a finite difference',
  ),
  c('copy_ float32 into bfloat16 (rounds)', [fixed(2, 5)], ([s]) => {
    const dst = zeros([2, 5], { dtype: 'bfloat16' });
    copy_(dst, s);
    return dst;
  }, BF16),
  noGradcheck(c('cast to bfloat16', [f(3, 4)], ([a]) => cast(a, 'bfloat16'), BF16), 'bfloat16 rounding is far coarser than a finite difference'),
  noGradcheck(
    c('bfloat16 arithmetic, cast back', [f(3, 4), f(3, 4)], ([a, b]) => cast(mul(cast(a, 'bfloat16'), exp(cast(b, 'bfloat16'))), 'float32'), BF16),
    'bfloat16 rounding is far coarser than a finite difference',
  ),
  noGradcheck(
    c('bfloat16 matmul and softmax', [f(3, 4), f(4, 5)], ([a, b]) => softmax(matmul(cast(a, 'bfloat16'), cast(b, 'bfloat16')), -1), BF16),
    'bfloat16 rounding is far coarser than a finite difference',
  ),
  noGradcheck(
    c('float16 with bfloat16 promotes to float32', [f(3, 4), f(3, 4)], ([a, b]) => add(cast(a, 'float16'), cast(b, 'bfloat16')), F16),
    'the float16 and bfloat16 roundings are far coarser than a finite difference',
  ),
  c('cast to int32 truncates toward zero', [f(3, 4)], ([a]) => cast(mul(a, 3), 'int32')),
];

// ------------------------------------------------------------------ running a case

interface Values {
  dtype: DType;
  shape: number[];
  values: number[];
}

interface CaseResult {
  /** The backend each output lives on (a case must not fall back to another backend). */
  backends: string[];
  outputs: Values[];
  /** Gradient of Σ cotangent·output w.r.t. each input that requires grad (null: none flowed). */
  grads: (Values | null)[];
}

/** The host values of input k of a case: fixed, or seeded by the case name and k. */
function inputValues(cs: OpCase, k: number): number[] {
  const spec = cs.inputs[k];
  if (spec.values) {
    expect(spec.values.length).toBe(numelOf(spec.shape));
    return [...spec.values];
  }
  return uniform(numelOf(spec.shape), seedOf(`${cs.name}#${k}`), spec.lo ?? -2, spec.hi ?? 2);
}

const read = (t: Tensor): Values => ({ dtype: t.dtype, shape: [...t.shape], values: valuesOf(t) });

/** Runs a case on the active backend with floating inputs of `dtype`; backward with seeded cotangents. */
/** The case's inputs on the active backend, floating ones in `dtype`. */
function caseInputs(cs: OpCase, dtype: 'float32' | 'float64'): Tensor[] {
  return cs.inputs.map((spec, k) => {
    const values = inputValues(cs, k);
    if (spec.kind === 'int') return intTensor(values, spec.shape);
    const t = reshape(tensor(Float64Array.from(values), { dtype }), spec.shape).detach();
    return t.requiresGrad_(spec.grad ?? true);
  });
}

/**
 * A float64 gradcheck of the case on the active backend: the scalar Σ_k <cotangent_k, output_k>
 * over its differentiable outputs, so that every output's gradient is checked at once. Returns
 * false when no output is differentiable (comparisons, argmax: int32 outputs).
 */
function gradcheckCase(cs: OpCase): boolean {
  const inputs = caseInputs(cs, 'float64');
  const all = (x: Tensor[]) => {
    const r = cs.fn(x, 'float64');
    return Array.isArray(r) ? r : [r];
  };
  // which outputs carry a gradient is decided once, in grad mode (gradcheck's own evaluations run without it)
  const which = all(inputs).flatMap((o, k) => (o.requiresGrad ? [k] : []));
  const outs = (x: Tensor[]) => {
    const r = all(x);
    return which.map((k) => r[k]);
  };
  const cotangents = outs(inputs).map((o, k) =>
    reshape(tensor(Float64Array.from(uniform(o.numel, seedOf(`${cs.name}/cotangent${k}`), -1, 1)), { dtype: 'float64' }), o.shape),
  );
  if (cotangents.length === 0) return false;
  const result = gradcheck((...x) => outs(x).map((o, k) => sum(mul(o, cotangents[k]))).reduce((a, b) => add(a, b)), inputs);
  return result.ok;
}

function runCase(cs: OpCase, dtype: 'float32' | 'float64'): CaseResult {
  const inputs = caseInputs(cs, dtype);
  const result = cs.fn(inputs, dtype);
  const outputs = Array.isArray(result) ? result : [result];
  const wanted = inputs.filter((t) => t.requiresGrad);
  const differentiable = outputs.filter((o) => o.requiresGrad);
  let grads: (Values | null)[] = wanted.map(() => null);
  if (wanted.length > 0 && differentiable.length > 0) {
    // random cotangents, not ones: Σ softmax is constant, so ones would hide a wrong softmax gradient
    const gradOutputs = differentiable.map((o, k) =>
      reshape(tensor(Float64Array.from(uniform(o.numel, seedOf(`${cs.name}/cotangent${k}`), -1, 1)), { dtype: o.dtype }), o.shape),
    );
    grads = grad(differentiable, wanted, { gradOutputs, allowUnused: true }).map((g) => (g ? read(g) : null));
  }
  return { backends: outputs.map((o) => o.backend), outputs: outputs.map(read), grads };
}

/** The float64 reference of each case, computed once on the cpu backend. */
const references = new Map<string, CaseResult>();
function reference(cs: OpCase): CaseResult {
  let ref = references.get(cs.name);
  if (!ref) {
    ref = onCpu(() => runCase(cs, 'float64'));
    references.set(cs.name, ref);
  }
  return ref;
}

/** float64 results correspond to float32 ones; other dtypes (float16, int32) must be the same. */
const expectedDtype = (ref: DType): DType => (ref === 'float64' ? 'float32' : ref);

function compare(what: string, got: Values, want: Values, tol: Tolerance): void {
  expect([what, got.dtype, got.shape]).toEqual([what, expectedDtype(want.dtype), want.shape]);
  // int32 results (indices, comparison masks, truncation) must be exact
  const bad = mismatch(got.values, want.values, want.dtype === 'int32' ? { atol: 0, rtol: 0 } : tol);
  if (bad) throw new Error(`${what}: ${bad}`);
}

test('every case has a unique name (references are cached by name)', () => {
  expect(new Set(CASES.map((cs) => cs.name)).size).toBe(CASES.length);
});

// ------------------------------------------------------------------ optimizer steps (the adamUpdate kernel)

const ADAM_CASES: [string, (params: Tensor[]) => Optimizer][] = [
  ['Adam', (ps) => new Adam(ps, { lr: 0.1 })],
  ['Adam with weight decay, amsgrad', (ps) => new Adam(ps, { lr: 0.05, betas: [0.8, 0.95], weightDecay: 0.1, amsgrad: true })],
  ['AdamW, maximize', (ps) => new AdamW(ps, { lr: 0.05, weightDecay: 0.2, maximize: true })],
];

/** A [3,4] parameter after four steps with seeded gradients (amsgrad's max matters from step 2 on). */
function adamTrajectory(dtype: 'float32' | 'float64', make: (params: Tensor[]) => Optimizer): number[] {
  const p = reshape(tensor(Float64Array.from(uniform(12, 1)), { dtype }), [3, 4]).detach().requiresGrad_();
  const opt = make([p]);
  for (let step = 0; step < 4; step++) {
    p.grad = reshape(tensor(Float64Array.from(uniform(12, 100 + step, -1, 1)), { dtype }), [3, 4]);
    opt.step();
  }
  return valuesOf(p);
}

// ------------------------------------------------------------------ the suite, per backend

requireHeadlessGlInCI();

describe.each(backendsUnderTest())('$label', ({ name, options }) => {
  beforeAll(() => setBackend(name, options));
  afterAll(() => setBackend('cpu'));

  test('runs on the mode asked for (no silent fallback)', () => {
    if (name === 'wasm') expect(backendInfo()).toMatchObject({ backend: 'wasm', mode: 'simd', simd: true, threads: options?.threads });
    else expect(backendInfo()).toMatchObject({ backend: name, mode: options?.mode ?? 'cpu' });
  });

  // float64 computes in float64 on cpu and wasm (gpu refuses it, tested below)
  if (name !== 'gpu') {
    const differentiable = CASES.filter((cs) => !cs.noGradcheck && cs.inputs.some((spec) => spec.kind !== 'int' && (spec.grad ?? true)));
    test.each(differentiable)('$name: float64 gradcheck on this backend', (cs) => {
      expect(getBackendName()).toBe(name);
      const checked = gradcheckCase(cs);
      // a case whose outputs carry no gradient must say so: int32 outputs (comparisons,
      // arg-reductions) or a name that declares a zero gradient (sign)
      if (!checked && !/zero gradient/.test(cs.name)) {
        const r = cs.fn(caseInputs(cs, 'float64'), 'float64');
        const outs = Array.isArray(r) ? r : [r];
        expect(outs.map((o) => o.dtype)).toEqual(outs.map(() => 'int32'));
      }
    });
  }

  test.each(CASES)('$name', (cs) => {
    const want = reference(cs);
    expect(getBackendName()).toBe(name);
    const got = runCase(cs, 'float32');
    const tol = cs.tol ?? F32;
    expect(got.backends).toEqual(got.outputs.map(() => name));
    expect(got.outputs.length).toBe(want.outputs.length);
    got.outputs.forEach((o, k) => compare(`output ${k}`, o, want.outputs[k], tol));
    expect(got.grads.map((g) => g === null)).toEqual(want.grads.map((g) => g === null));
    got.grads.forEach((g, k) => {
      if (g) compare(`gradient of input ${k}`, g, want.grads[k] as Values, tol);
    });
  });

  test.each(ADAM_CASES)('%s: four steps match the float64 reference', (_, make) => {
    const want = onCpu(() => adamTrajectory('float64', make));
    const bad = mismatch(adamTrajectory('float32', make), want, F32);
    if (bad) throw new Error(bad);
  });

  test('dropout keeps about 1 − p, scales kept values by 1/(1 − p), and its gradient is that mask', () => {
    const p = 0.3;
    const n = 4000;
    const x = reshape(tensor(Float64Array.from(uniform(n, 11, 0.5, 2.5)), { dtype: 'float32' }), [40, 100]).detach().requiresGrad_();
    const y = dropout(x, p, { generator: new Generator(5) });
    const [gx] = grad(y, x, { gradOutputs: [ones([40, 100])] });
    const xs = valuesOf(x);
    const ys = valuesOf(y);
    const gs = valuesOf(gx as Tensor);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const keptHere = ys[i] !== 0;
      if (keptHere) kept++;
      // kept: x/(1 − p) (float32 arithmetic); dropped: exactly 0; the gradient is the same mask
      const want = keptHere ? xs[i] / (1 - p) : 0;
      if (Math.abs(ys[i] - want) > 1e-6 * Math.abs(want)) throw new Error(`element ${i}: ${ys[i]} vs ${want}`);
      if (Math.abs(gs[i] - (keptHere ? 1 / (1 - p) : 0)) > 1e-6) throw new Error(`gradient ${i}: ${gs[i]}`);
    }
    // binomial: sd √(n p (1 − p)) ≈ 29; allow 5 sd
    expect(Math.abs(kept - n * (1 - p))).toBeLessThan(145);
    // the mask is drawn on the host from the generator: the same seed gives the same mask on every backend
    const cpuKept = onCpu(() => valuesOf(dropout(ones([40, 100]), p, { generator: new Generator(5) })).map((v) => v !== 0));
    expect(ys.map((v) => v !== 0)).toEqual(cpuKept);
  });

  if (name === 'gpu') {
    test('float64 is refused with a BackendError that names float32 and the cpu backend', () => {
      const expectRefused = (fn: () => unknown) => {
        let error: unknown = null;
        try {
          fn();
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(BackendError);
        expect((error as Error).message).toMatch(/float64 tensors are not supported.*float32.*cpu backend for float64/s);
      };
      expectRefused(() => tensor([1, 2, 3], { dtype: 'float64' }));
      expectRefused(() => zeros([2, 2], { dtype: 'float64' }));
      expectRefused(() => cast(tensor([1, 2, 3], { dtype: 'float32' }), 'float64'));
    });
  }
});
