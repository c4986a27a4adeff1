/**
 * Row kernels: each of `outer` rows of length `inner` is processed on its own. Reductions,
 * softmax, layer/RMS normalisation and cross-entropy all have this shape once the op layer
 * has moved the reduced axis last.
 */
import type { CrossEntropyArgs, ReduceOp } from '../backend';

type Arr = { [i: number]: number; readonly length: number };

export function reduceRows(op: ReduceOp, x: Arr, outer: number, inner: number, out: Arr): void {
  for (let r = 0; r < outer; r++) {
    const base = r * inner;
    if (op === 'sum') {
      let s = 0;
      for (let i = 0; i < inner; i++) s += x[base + i];
      out[r] = s;
    } else {
      // max/min propagate NaN, as PyTorch's do
      let best = op === 'max' ? -Infinity : Infinity;
      for (let i = 0; i < inner; i++) {
        const v = x[base + i];
        if (v !== v) {
          best = NaN;
          break;
        }
        if (op === 'max' ? v > best : v < best) best = v;
      }
      out[r] = best;
    }
  }
}

/**
 * Reduces the middle axis of a contiguous [outer, mid, inner] array: out[o, i] = op over m of
 * x[o, m, i]. Rows x[o, m, :] are accumulated into a row of doubles in order m = 0, 1, ..., so
 * each result is exactly what reduceRows gives on the transposed data, without the transpose.
 */
export function reduceMiddle(op: ReduceOp, x: Arr, outer: number, mid: number, inner: number, out: Arr): void {
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = o * mid * inner;
    if (op === 'sum') {
      acc.fill(0);
      for (let m = 0; m < mid; m++) {
        const row = base + m * inner;
        for (let i = 0; i < inner; i++) acc[i] += x[row + i];
      }
    } else {
      // max/min propagate NaN: a NaN is taken, and nothing compares greater (less) than it after
      acc.fill(op === 'max' ? -Infinity : Infinity);
      for (let m = 0; m < mid; m++) {
        const row = base + m * inner;
        if (op === 'max') {
          for (let i = 0; i < inner; i++) {
            const v = x[row + i];
            if (v > acc[i] || v !== v) acc[i] = v;
          }
        } else {
          for (let i = 0; i < inner; i++) {
            const v = x[row + i];
            if (v < acc[i] || v !== v) acc[i] = v;
          }
        }
      }
    }
    const ob = o * inner;
    for (let i = 0; i < inner; i++) out[ob + i] = acc[i];
  }
}

/** First index of the max (min) in each row; a NaN counts as the extreme, as in PyTorch. */
export function argReduceRows(op: 'max' | 'min', x: Arr, outer: number, inner: number, out: Arr): void {
  for (let r = 0; r < outer; r++) {
    const base = r * inner;
    let best = x[base];
    let at = 0;
    for (let i = 1; i < inner && best === best; i++) {
      const v = x[base + i];
      if (v !== v || (op === 'max' ? v > best : v < best)) {
        best = v;
        at = i;
      }
    }
    out[r] = at;
  }
}

/**
 * softmax(x)_i = e^{x_i - m} / Σ_j e^{x_j - m} with m the row max (so exp never overflows).
 * Each e^{x_i - m} is computed once, kept (in doubles) for the division, not recomputed.
 */
export function softmaxRows(x: Arr, outer: number, inner: number, log: boolean, out: Arr): void {
  const e = log ? null : new Float64Array(inner);
  for (let r = 0; r < outer; r++) {
    const base = r * inner;
    let m = -Infinity;
    for (let i = 0; i < inner; i++) if (x[base + i] > m) m = x[base + i];
    if (m === -Infinity) m = 0; // a row of all -inf: keep NaN-free arithmetic below
    let s = 0;
    if (e === null) {
      for (let i = 0; i < inner; i++) s += Math.exp(x[base + i] - m);
      const logS = Math.log(s) + m;
      for (let i = 0; i < inner; i++) out[base + i] = x[base + i] - logS;
    } else {
      for (let i = 0; i < inner; i++) {
        const v = Math.exp(x[base + i] - m);
        e[i] = v;
        s += v;
      }
      for (let i = 0; i < inner; i++) out[base + i] = e[i] / s;
    }
  }
}

/**
 * The backward of softmaxRows, from its output y and the gradient g of y, row by row:
 *   softmax:     dx = y ⊙ (g − Σ g⊙y)
 *   log-softmax: dx = g − e^y · Σ g        (e^y is the softmax)
 * One fused pass over the row instead of four kernels (mul, sum, sub, mul; or exp, sum, mul,
 * sub). It rounds exactly where that composite did, with `round` (the output dtype's rounding:
 * Math.fround for float32, a 16-bit float's rounding, or the identity for float64): every product
 * and difference is rounded, and the sum is taken in doubles over the rounded terms and then
 * rounded, so on this backend the result is the composite's bit for bit.
 */
export function softmaxBackwardRows(y: Arr, g: Arr, outer: number, inner: number, log: boolean, round: (v: number) => number, out: Arr): void {
  const e = log ? new Float64Array(inner) : null;
  for (let r = 0; r < outer; r++) {
    const base = r * inner;
    let s = 0;
    if (e === null) {
      for (let i = 0; i < inner; i++) s += round(g[base + i] * y[base + i]);
      const sr = round(s);
      for (let i = 0; i < inner; i++) out[base + i] = round(y[base + i] * round(g[base + i] - sr));
    } else {
      for (let i = 0; i < inner; i++) {
        s += g[base + i];
        e[i] = round(Math.exp(y[base + i]));
      }
      const sr = round(s);
      for (let i = 0; i < inner; i++) out[base + i] = round(g[base + i] - round(e[i] * sr));
    }
  }
}

/**
 * x̂ = (x - μ)·rstd with rstd = 1/√(σ² + ε) (biased variance), for layer norm;
 * x̂ = x·rstd with rstd = 1/√(mean(x²) + ε), for RMS norm.
 */
export function normalizeRows(
  kind: 'layer' | 'rms',
  x: Arr,
  outer: number,
  inner: number,
  eps: number,
  normalized: Arr,
  rstd: Arr,
): void {
  for (let r = 0; r < outer; r++) {
    const base = r * inner;
    let mean = 0;
    if (kind === 'layer') {
      for (let i = 0; i < inner; i++) mean += x[base + i];
      mean /= inner;
    }
    let sq = 0;
    for (let i = 0; i < inner; i++) {
      const d = x[base + i] - mean;
      sq += d * d;
    }
    const rs = 1 / Math.sqrt(sq / inner + eps);
    rstd[r] = rs;
    for (let i = 0; i < inner; i++) normalized[base + i] = (x[base + i] - mean) * rs;
  }
}

/**
 * The backward of normalizeRows, from its outputs: with g the gradient of x̂ and n = inner,
 *   layer: dx = rstd·(g − mean(g) − x̂·mean(g⊙x̂))
 *   RMS:   dx = rstd·(g − x̂·mean(g⊙x̂))
 * (x̂ = (x − μ)·rstd: differentiating μ gives the mean(g) term, and rstd's dependence on x the
 * x̂·mean(g⊙x̂) term; RMS norm has no μ). The means are accumulated in doubles.
 */
export function normalizeBackwardRows(kind: 'layer' | 'rms', g: Arr, normalized: Arr, rstd: Arr, outer: number, inner: number, out: Arr): void {
  for (let r = 0; r < outer; r++) {
    const base = r * inner;
    let sumG = 0;
    let sumGX = 0;
    for (let i = 0; i < inner; i++) {
      sumG += g[base + i];
      sumGX += g[base + i] * normalized[base + i];
    }
    const meanG = kind === 'layer' ? sumG / inner : 0;
    const meanGX = sumGX / inner;
    for (let i = 0; i < inner; i++) out[base + i] = rstd[r] * (g[base + i] - meanG - normalized[base + i] * meanGX);
  }
}

/** log Σ_c e^{x_c}, stably. */
function logSumExpRow(x: Arr, base: number, classes: number): number {
  let m = -Infinity;
  for (let c = 0; c < classes; c++) if (x[base + c] > m) m = x[base + c];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let c = 0; c < classes; c++) s += Math.exp(x[base + c] - m);
  return Math.log(s) + m;
}

/**
 * Per-row cross-entropy against the smoothed target q = (1-ε)·onehot(t) + ε/C:
 * loss = -Σ_c q_c·log p_c = lse - (1-ε)·x_t - (ε/C)·Σ_c x_c.  Ignored rows give 0.
 */
export function crossEntropyRows(logits: Arr, target: Arr, args: CrossEntropyArgs, out: Arr): void {
  const { outer, classes, ignoreIndex, labelSmoothing: eps } = args;
  for (let r = 0; r < outer; r++) {
    const t = target[r];
    if (t === ignoreIndex) {
      out[r] = 0;
      continue;
    }
    const base = r * classes;
    const lse = logSumExpRow(logits, base, classes);
    let sum = 0;
    if (eps !== 0) for (let c = 0; c < classes; c++) sum += logits[base + c];
    out[r] = lse - (1 - eps) * logits[base + t] - (eps / classes) * sum;
  }
}

/** d loss_r / d x_c = g_r·(p_c - q_c), the classic softmax-minus-target, zero for ignored rows. */
export function crossEntropyBackwardRows(logits: Arr, target: Arr, gradRow: Arr, args: CrossEntropyArgs, out: Arr): void {
  const { outer, classes, ignoreIndex, labelSmoothing: eps } = args;
  const e = new Float64Array(classes);
  for (let r = 0; r < outer; r++) {
    const base = r * classes;
    const t = target[r];
    if (t === ignoreIndex) {
      for (let c = 0; c < classes; c++) out[base + c] = 0;
      continue;
    }
    const g = gradRow[r];
    // p_c = e^{x_c - m} / Σ e^{x_j - m}: one exp per class, kept for the second pass
    let m = -Infinity;
    for (let c = 0; c < classes; c++) if (logits[base + c] > m) m = logits[base + c];
    let s = 0;
    if (m === -Infinity) {
      s = NaN; // every logit -inf: p is undefined, as exp(x - lse) = exp(NaN) was
    } else {
      for (let c = 0; c < classes; c++) {
        const v = Math.exp(logits[base + c] - m);
        e[c] = v;
        s += v;
      }
    }
    for (let c = 0; c < classes; c++) {
      const p = e[c] / s;
      const q = (c === t ? 1 - eps : 0) + eps / classes;
      out[base + c] = g * (p - q);
    }
  }
}
