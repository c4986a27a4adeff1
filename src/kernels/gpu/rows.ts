/**
 * Row kernels (reductions, softmax, norms, cross-entropy) for the gpu backend; the semantics are
 * those of ../cpu/rows.ts. A row is `inner` contiguous values; the loops over a row are per thread,
 * with the row length written into the source. Where every element of a row needs a row
 * statistic, a small kernel computes the statistics once per row and an elementwise kernel reads
 * them, instead of each thread recomputing its row.
 *
 * Results are float32 sums in row order (the cpu accumulates in doubles), so they agree with the
 * cpu backend to float32 rounding, not bit for bit.
 */
import type { BackendBuffer, CrossEntropyArgs, ReduceOp } from '../backend';
import type { DType } from '../../tensor/dtype';
import type { GpuBackend } from './backend';
import type { DeviceData } from './runtime';
import { divmod, isNaNExpr, num, store } from './codegen';

const NEG_INF = num(-Infinity);

/** Source folding `v` into `acc` for a reduction; max/min take a NaN and keep it (as on cpu). */
function foldSource(op: ReduceOp): { init: string; step: string } {
  if (op === 'sum') return { init: '0', step: 'acc += v;' };
  const better = op === 'max' ? 'v > acc' : 'v < acc';
  return { init: num(op === 'max' ? -Infinity : Infinity), step: `if (${better} || ${isNaNExpr('v')}) { acc = v; }` };
}

export function reduceLast(gpu: GpuBackend, op: ReduceOp, x: BackendBuffer, outer: number, inner: number): BackendBuffer {
  const { init, step } = foldSource(op);
  const data = gpu.launch(
    `reduce ${op}`,
    outer,
    `reduceLast:${op}:${x.dtype}:${x.length}:${inner}`,
    () => `function(x) {
      const base = this.thread.x * ${inner};
      let acc = ${init};
      for (let i = 0; i < ${inner}; i++) {
        const v = x[base + i];
        ${step}
      }
      return ${store(x.dtype, 'acc')};
    }`,
    [gpu.input(`reduce ${op}`, x)],
  );
  return gpu.wrap(x.dtype, outer, data);
}

/** [outer, mid, inner] -> [outer, inner]: out[o, i] folds x[o, m, i] over m = 0, 1, ... */
export function reduceMiddle(gpu: GpuBackend, op: ReduceOp, x: BackendBuffer, outer: number, mid: number, inner: number): BackendBuffer {
  const { init, step } = foldSource(op);
  const data = gpu.launch(
    `reduce ${op}`,
    outer * inner,
    `reduceMiddle:${op}:${x.dtype}:${x.length}:${mid}:${inner}`,
    () => `function(x) {
      ${divmod('o', 'i', 'this.thread.x', inner)}
      const base = o * ${mid * inner} + i;
      let acc = ${init};
      for (let m = 0; m < ${mid}; m++) {
        const v = x[base + m * ${inner}];
        ${step}
      }
      return ${store(x.dtype, 'acc')};
    }`,
    [gpu.input(`reduce ${op}`, x)],
  );
  return gpu.wrap(x.dtype, outer * inner, data);
}

/** First index of the row's max (min); the first NaN wins, as on cpu. */
export function argReduceLast(gpu: GpuBackend, op: 'max' | 'min', x: BackendBuffer, outer: number, inner: number): BackendBuffer {
  const opName = op === 'max' ? 'argmax' : 'argmin';
  if (inner === 0) return gpu.zeros('int32', outer); // the cpu answers 0 for an empty row
  const better = op === 'max' ? 'v > best' : 'v < best';
  const data = gpu.launch(
    opName,
    outer,
    `argReduceLast:${op}:${x.length}:${inner}`,
    () => `function(x) {
      const base = this.thread.x * ${inner};
      let best = x[base];
      let at = 0;
      if (${isNaNExpr('best')}) { return 0; }
      for (let i = 1; i < ${inner}; i++) {
        const v = x[base + i];
        if (${isNaNExpr('v')}) { return i; }
        if (${better}) { best = v; at = i; }
      }
      return at;
    }`,
    [gpu.input(opName, x)],
  );
  return gpu.wrap('int32', outer, data);
}

/** Statements setting `m`, the max of the row of `x` at `base` (NaN ignored, as on cpu). */
const rowMax = (base: string, inner: number): string =>
  `let m = ${NEG_INF};
      for (let i0 = 0; i0 < ${inner}; i0++) { const v0 = x[${base} + i0]; if (v0 > m) { m = v0; } }`;

/**
 * After rowMax: statements setting `ls` = log Σ_i e^{x_i - m}, so that log Σ_i e^{x_i} = m + ls
 * without overflow. A row of all -inf (or with +inf) gives NaN, as the cpu's formulas do.
 */
const logSumAfterMax = (base: string, inner: number): string =>
  `let s = 0;
      for (let i1 = 0; i1 < ${inner}; i1++) { s += Math.exp(x[${base} + i1] - m); }
      const ls = Math.log(s);`;

/** Per row [m, ls] (see rowMax, logSumAfterMax), 2·outer values: thread 2r computes m, thread 2r+1 ls. */
function rowStats(gpu: GpuBackend, op: string, x: BackendBuffer, outer: number, inner: number): DeviceData {
  return gpu.launch(
    op,
    2 * outer,
    `rowStats:${x.length}:${inner}`,
    () => `function(x) {
      ${divmod('r', 'w', 'this.thread.x', 2)}
      const base = r * ${inner};
      ${rowMax('base', inner)}
      if (w == 0) { return m; }
      ${logSumAfterMax('base', inner)}
      return ls;
    }`,
    [gpu.input(op, x)],
  );
}

export function softmaxLast(gpu: GpuBackend, x: BackendBuffer, outer: number, inner: number, log: boolean): BackendBuffer {
  const op = log ? 'logSoftmax' : 'softmax';
  const input = gpu.input(op, x);
  const stats = rowStats(gpu, op, x, outer, inner);
  // log p = (x - m) - ls: x - m is exact near the max, and ls is small, so large logits keep
  // their precision (subtracting a rounded m + ls would lose ulp(m) to rounding)
  const value = log ? '(x[this.thread.x] - st[2 * r]) - st[2 * r + 1]' : 'Math.exp((x[this.thread.x] - st[2 * r]) - st[2 * r + 1])';
  try {
    const data = gpu.launch(
      op,
      outer * inner,
      `softmaxLast:${log}:${x.dtype}:${x.length}:${inner}`,
      () => `function(x, st) {
        ${divmod('r', 'c', 'this.thread.x', inner)}
        return ${store(x.dtype, value)};
      }`,
      [input, stats],
    );
    return gpu.wrap(x.dtype, outer * inner, data);
  } finally {
    gpu.runtime.free(stats); // the row statistics are a temporary, freed even if the launch throws
  }
}

/**
 * x̂ = (x - μ)·rstd, rstd = 1/√(mean((x - μ)²) + ε), μ = 0 for 'rms'. The statistics kernel keeps
 * rstd unrounded for x̂; the rstd buffer is then stored in x's dtype (rounded for float16), as on cpu.
 */
export function normalizeLast(
  gpu: GpuBackend,
  kind: 'layer' | 'rms',
  x: BackendBuffer,
  outer: number,
  inner: number,
  eps: number,
): { normalized: BackendBuffer; rstd: BackendBuffer } {
  const op = kind === 'layer' ? 'layerNorm' : 'rmsNorm';
  const dtype: DType = x.dtype;
  const meanSource =
    kind === 'layer' ? `for (let i0 = 0; i0 < ${inner}; i0++) { mean += x[base + i0]; } mean = mean / ${num(inner)};` : '';
  // per row [mean, rstd]: thread 2r computes the mean, thread 2r+1 both
  const stats = gpu.launch(
    op,
    2 * outer,
    `normStats:${kind}:${x.length}:${inner}`,
    () => `function(x, h) {
      ${divmod('r', 'w', 'this.thread.x', 2)}
      const base = r * ${inner};
      let mean = 0;
      ${meanSource}
      if (w == 0) { return mean; }
      let sq = 0;
      for (let i1 = 0; i1 < ${inner}; i1++) { const d = x[base + i1] - mean; sq += d * d; }
      return 1 / Math.sqrt(sq / ${num(inner)} + h[0]);
    }`,
    [gpu.input(op, x), gpu.params([eps])],
  );
  try {
    const normalized = gpu.launch(
      op,
      outer * inner,
      `normalize:${dtype}:${x.length}:${inner}`,
      () => `function(x, st) {
        ${divmod('r', 'c', 'this.thread.x', inner)}
        return ${store(dtype, '(x[this.thread.x] - st[2 * r]) * st[2 * r + 1]')};
      }`,
      [gpu.input(op, x), stats],
    );
    const rstd = gpu.launch(op, outer, `normRstd:${dtype}:${outer}`, () => `function(st) { return ${store(dtype, 'st[2 * this.thread.x + 1]')}; }`, [stats]);
    return { normalized: gpu.wrap(dtype, outer * inner, normalized), rstd: gpu.wrap(dtype, outer, rstd) };
  } finally {
    gpu.runtime.free(stats);
  }
}

/**
 * Per-row loss lse - (1-ε)·x_t - (ε/C)·Σ_c x_c (the cross-entropy against the smoothed target),
 * 0 where t == ignoreIndex. h = [ignoreIndex, ε].
 */
export function crossEntropyLast(gpu: GpuBackend, logits: BackendBuffer, target: BackendBuffer, args: CrossEntropyArgs): BackendBuffer {
  const { outer, classes, ignoreIndex, labelSmoothing } = args;
  const op = 'crossEntropy';
  const data = gpu.launch(
    op,
    outer,
    `crossEntropyLast:${logits.dtype}:${logits.length}:${target.length}:${classes}`,
    () => `function(x, tg, h) {
      const t = tg[this.thread.x];
      if (t == h[0]) { return 0; }
      const base = this.thread.x * ${classes};
      ${rowMax('base', classes)}
      ${logSumAfterMax('base', classes)}
      // x_t found by comparing indices rather than read at a data-dependent address
      let xt = 0;
      let sum = 0;
      for (let c = 0; c < ${classes}; c++) {
        const v = x[base + c];
        if (c == t) { xt = v; }
        sum += v;
      }
      let smooth = 0;
      if (h[1] != 0) { smooth = (h[1] / ${num(classes)}) * sum; }
      return ${store(logits.dtype, '(m + ls) - (1 - h[1]) * xt - smooth')};
    }`,
    [gpu.input(op, logits), gpu.input(op, target), gpu.params([ignoreIndex, labelSmoothing])],
  );
  return gpu.wrap(logits.dtype, outer, data);
}

/** g_r·(p_c - q_c) with p = softmax(row), q = (1-ε)·onehot(t) + ε/C; zero rows where ignored. */
export function crossEntropyBackwardLast(
  gpu: GpuBackend,
  logits: BackendBuffer,
  target: BackendBuffer,
  gradRow: BackendBuffer,
  args: CrossEntropyArgs,
): BackendBuffer {
  const { outer, classes, ignoreIndex, labelSmoothing } = args;
  const op = 'crossEntropyBackward';
  // every input is checked before the first kernel, so a bad one leaves no temporary behind
  const inputs = [gpu.input(op, logits), gpu.input(op, target), gpu.input(op, gradRow)];
  const stats = rowStats(gpu, op, logits, outer, classes);
  try {
    const data = gpu.launch(
      op,
      outer * classes,
      `crossEntropyBackwardLast:${logits.dtype}:${logits.length}:${target.length}:${gradRow.length}:${classes}`,
      () => `function(x, tg, g, st, h) {
        ${divmod('r', 'c', 'this.thread.x', classes)}
        const t = tg[r];
        if (t == h[0]) { return 0; }
        const p = Math.exp((x[this.thread.x] - st[2 * r]) - st[2 * r + 1]);
        let q = h[1] / ${num(classes)};
        if (c == t) { q = q + 1 - h[1]; }
        return ${store(logits.dtype, 'g[r] * (p - q)')};
      }`,
      [...inputs, stats, gpu.params([ignoreIndex, labelSmoothing])],
    );
    return gpu.wrap(logits.dtype, outer * classes, data);
  } finally {
    gpu.runtime.free(stats);
  }
}
