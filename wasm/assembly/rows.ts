// Row kernels for blockgrad's wasm backend, float32: softmax / log-softmax, layer / RMS
// normalisation and cross-entropy (forward and backward), each of `outer` rows of length `inner`
// on its own. The sums over reductions and reduce-middle are in ./reduce.ts.
//
// Every kernel is `fn(desc, task, scratch)` (the ABI of matmul.ts): task t does rows
// [t*rowsPer, min(outer, (t+1)*rowsPer)) and writes only those rows' outputs. Results follow the
// cpu backend's TypeScript kernels (src/kernels/cpu/rows.ts), which compute in doubles: here e^x
// is a float32 vector (math.ts's expV, ~1 ulp), but every sum is accumulated in double lanes and the
// per-row scalars (mean, 1/σ, log Σ) are doubles, so outputs differ from the cpu's by a few
// float32 ulp at most (the tests state the bounds).
//
// Descriptor (little-endian, byte offsets; mirrored in src/kernels/wasm/rows.ts):
//
//    0 x        u32  byte address of the input rows, outer x inner float32
//    4 out      u32  byte address of the output: rows like x (softmax, normalize, CE backward)
//                    or one float32 per row (CE forward)
//    8 aux      u32  normalize: rstd, one float32 per row; normalize backward: x̂ (x holds the
//                    gradient of x̂); softmax backward: g, the gradient of y (x holds y);
//                    cross-entropy: target, one int32 per row
//   12 aux2     u32  CE backward: gradRow, one float32 per row; normalize backward: rstd
//   16 outer    i32  rows
//   20 inner    i32  row length (classes for cross-entropy)
//   24 rowsPer  i32  rows per task
//   28 flags    i32  softmax (and its backward): 1 = log-softmax; normalize: 1 = layer norm (0 = RMS norm)
//   32 ignore   i32  cross-entropy: the ignored target value
//   40 eps      f64  normalize: ε added to the variance; cross-entropy: label smoothing ε

export * from './reduce';

import { expV } from './math';
import { demote4, hmax, hsum2, loadPartial, logd, maxSkipNaN, promoteHigh, storePartial, sumRow } from './rowmath';

const D_X: usize = 0;
const D_OUT: usize = 4;
const D_AUX: usize = 8;
const D_AUX2: usize = 12;
const D_OUTER: usize = 16;
const D_INNER: usize = 20;
const D_ROWS_PER: usize = 24;
const D_FLAGS: usize = 28;
const D_IGNORE: usize = 32;
const D_EPS: usize = 40;

/** The largest value of the row, NaNs skipped (-inf when there is none), as the cpu's `if (x > m) m = x`. */
function rowMax(x: usize, n: i32): f32 {
  const n4 = n & ~3;
  let acc = f32x4.splat(-Infinity);
  for (let i = 0; i < n4; i += 4) acc = maxSkipNaN(acc, v128.load(x + (<usize>i << 2)));
  acc = maxSkipNaN(acc, loadPartial(x + (<usize>n4 << 2), n & 3, -Infinity));
  return hmax(acc);
}

/**
 * Σ e^(x - m) over the row, in double lanes; also stores each e^(x - m) (float32) at `e` unless
 * e is 0. Entries of -inf contribute 0; a NaN (or x = m = inf) makes the sum NaN.
 */
function rowExpSum(x: usize, n: i32, m: f32, e: usize): f64 {
  const n4 = n & ~3;
  const mv = f32x4.splat(m);
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const v = expV(f32x4.sub(v128.load(x + (<usize>i << 2)), mv));
    if (e) v128.store(e + (<usize>i << 2), v);
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(v));
    s1 = f64x2.add(s1, promoteHigh(v));
  }
  // the tail's missing lanes are -inf: e^(-inf - m) = 0 adds nothing
  const v = expV(f32x4.sub(loadPartial(x + (<usize>n4 << 2), n & 3, -Infinity), mv));
  if (e) storePartial(e + (<usize>n4 << 2), v, n & 3);
  s0 = f64x2.add(s0, f64x2.promote_low_f32x4(v));
  s1 = f64x2.add(s1, promoteHigh(v));
  return hsum2(f64x2.add(s0, s1));
}

/** out[i] = out[i] / s for the row at `out`, in float32. */
function divideRow(out: usize, n: i32, s: f32): void {
  const n4 = n & ~3;
  const sv = f32x4.splat(s);
  for (let i = 0; i < n4; i += 4) {
    const p = out + (<usize>i << 2);
    v128.store(p, f32x4.div(v128.load(p), sv));
  }
  for (let i = n4; i < n; i++) {
    const p = out + (<usize>i << 2);
    store<f32>(p, load<f32>(p) / s);
  }
}

/** out[i] = (x[i] - shift) · scale, in doubles, rounded once to float32 (as the cpu computes it). */
function shiftScaleRow(x: usize, out: usize, n: i32, shift: f64, scale: f64): void {
  const n4 = n & ~3;
  const sh = f64x2.splat(shift);
  const sc = f64x2.splat(scale);
  for (let i = 0; i < n4; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const lo = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v), sh), sc);
    const hi = f64x2.mul(f64x2.sub(promoteHigh(v), sh), sc);
    v128.store(out + (<usize>i << 2), demote4(lo, hi));
  }
  for (let i = n4; i < n; i++) {
    store<f32>(out + (<usize>i << 2), <f32>((<f64>load<f32>(x + (<usize>i << 2)) - shift) * scale));
  }
}

// ---------------------------------------------------------------------------------------------
// softmax / log-softmax
// ---------------------------------------------------------------------------------------------

/**
 * softmax: e^(x - m) / Σ e^(x - m), m the row max (0 for a row of all -inf, which then gives NaN:
 * 0/0, as the cpu does); log-softmax: x - (log Σ e^(x - m) + m), in doubles.
 */
function softmaxRow(x: usize, out: usize, n: i32, log: bool): void {
  let m = rowMax(x, n);
  if (m == -Infinity) m = 0;
  if (!log) {
    divideRow(out, n, <f32>rowExpSum(x, n, m, out));
    return;
  }
  const logS = logd(rowExpSum(x, n, m, 0)) + <f64>m;
  shiftScaleRow(x, out, n, logS, 1);
}

/** Softmax (flags bit 0 clear) or log-softmax (set) of each row of the task. */
export function softmax_rows_f32(desc: usize, task: i32, scratch: usize): void {
  const x = <usize>load<u32>(desc, D_X);
  const out = <usize>load<u32>(desc, D_OUT);
  const inner = load<i32>(desc, D_INNER);
  const log = (load<i32>(desc, D_FLAGS) & 1) != 0;
  const rowBytes = <usize>inner << 2;
  const r0 = task * load<i32>(desc, D_ROWS_PER);
  const r1 = min(load<i32>(desc, D_OUTER), r0 + load<i32>(desc, D_ROWS_PER));
  for (let r = r0; r < r1; r++) softmaxRow(x + <usize>r * rowBytes, out + <usize>r * rowBytes, inner, log);
}

/**
 * The backward of softmaxRow from its output y and the gradient g of y (the cpu's
 * softmaxBackwardRows), rounding where the composite it replaces rounded: softmax,
 * dx = fl(y·fl(g − S)) with S = fl(Σ fl(g·y)); log-softmax, dx = fl(g − fl(e^y·S)) with S = fl(Σ g).
 * The sums are accumulated in double lanes (the cpu sums in doubles, in order: for float32 terms
 * of a training row's range the double sum is exact either way, so S is the same float32). e^y is
 * expV, as the exp kernel the composite ran (~1 ulp from the cpu's rounded Math.exp).
 */
function softmaxBackwardRow(y: usize, g: usize, out: usize, n: i32, log: bool): void {
  const n4 = n & ~3;
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const gv = v128.load(g + (<usize>i << 2));
    const t = log ? gv : f32x4.mul(gv, v128.load(y + (<usize>i << 2)));
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(t));
    s1 = f64x2.add(s1, promoteHigh(t));
  }
  let s = hsum2(f64x2.add(s0, s1));
  for (let i = n4; i < n; i++) {
    const gi = load<f32>(g + (<usize>i << 2));
    s += <f64>(log ? gi : gi * load<f32>(y + (<usize>i << 2)));
  }
  const sv = f32x4.splat(<f32>s);
  for (let i = 0; i < n4; i += 4) {
    const at = <usize>i << 2;
    const gv = v128.load(g + at);
    const yv = v128.load(y + at);
    v128.store(out + at, log ? f32x4.sub(gv, f32x4.mul(expV(yv), sv)) : f32x4.mul(yv, f32x4.sub(gv, sv)));
  }
  // the tail through the same vector ops, on partial vectors
  const rest = n & 3;
  if (rest) {
    const at = <usize>n4 << 2;
    const gv = loadPartial(g + at, rest, 0);
    const yv = loadPartial(y + at, rest, 0);
    storePartial(out + at, log ? f32x4.sub(gv, f32x4.mul(expV(yv), sv)) : f32x4.mul(yv, f32x4.sub(gv, sv)), rest);
  }
}

/** The gradient of x for each row of the task: x holds y, aux g; flags bit 0: log-softmax. */
export function softmax_backward_rows_f32(desc: usize, task: i32, scratch: usize): void {
  const y = <usize>load<u32>(desc, D_X);
  const out = <usize>load<u32>(desc, D_OUT);
  const g = <usize>load<u32>(desc, D_AUX);
  const inner = load<i32>(desc, D_INNER);
  const log = (load<i32>(desc, D_FLAGS) & 1) != 0;
  const rowBytes = <usize>inner << 2;
  const r0 = task * load<i32>(desc, D_ROWS_PER);
  const r1 = min(load<i32>(desc, D_OUTER), r0 + load<i32>(desc, D_ROWS_PER));
  for (let r = r0; r < r1; r++) {
    const at = <usize>r * rowBytes;
    softmaxBackwardRow(y + at, g + at, out + at, inner, log);
  }
}

// ---------------------------------------------------------------------------------------------
// layer / RMS normalisation
// ---------------------------------------------------------------------------------------------

/**
 * Layer norm: x̂ = (x - μ)·rstd, rstd = 1/√(σ² + ε) (biased variance, two passes as the cpu);
 * RMS norm: x̂ = x·rstd, rstd = 1/√(mean(x²) + ε). Returns rstd. All in doubles.
 */
function normalizeRow(x: usize, out: usize, n: i32, layer: bool, eps: f64): f64 {
  const mean = layer ? sumRow(x, n) / <f64>n : 0.0;
  const n4 = n & ~3;
  const mv = f64x2.splat(mean);
  let q0 = f64x2.splat(0);
  let q1 = f64x2.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const d0 = f64x2.sub(f64x2.promote_low_f32x4(v), mv);
    const d1 = f64x2.sub(promoteHigh(v), mv);
    q0 = f64x2.add(q0, f64x2.mul(d0, d0));
    q1 = f64x2.add(q1, f64x2.mul(d1, d1));
  }
  let sq = hsum2(f64x2.add(q0, q1));
  for (let i = n4; i < n; i++) {
    const d = <f64>load<f32>(x + (<usize>i << 2)) - mean;
    sq += d * d;
  }
  const rs = 1 / Math.sqrt(sq / <f64>n + eps);
  shiftScaleRow(x, out, n, mean, rs); // x - 0 is x exactly: the same code serves RMS norm
  return rs;
}

/** Layer norm (flags bit 0 set) or RMS norm (clear) of each row of the task; 1/σ per row into aux. */
export function normalize_rows_f32(desc: usize, task: i32, scratch: usize): void {
  const x = <usize>load<u32>(desc, D_X);
  const out = <usize>load<u32>(desc, D_OUT);
  const rstd = <usize>load<u32>(desc, D_AUX);
  const inner = load<i32>(desc, D_INNER);
  const layer = (load<i32>(desc, D_FLAGS) & 1) != 0;
  const eps = load<f64>(desc, D_EPS);
  const rowBytes = <usize>inner << 2;
  const r0 = task * load<i32>(desc, D_ROWS_PER);
  const r1 = min(load<i32>(desc, D_OUTER), r0 + load<i32>(desc, D_ROWS_PER));
  for (let r = r0; r < r1; r++) {
    const rs = normalizeRow(x + <usize>r * rowBytes, out + <usize>r * rowBytes, inner, layer, eps);
    store<f32>(rstd + (<usize>r << 2), <f32>rs);
  }
}

/**
 * The backward of normalizeRow (the cpu's normalizeBackwardRows): with g the gradient of x̂,
 * dx = rstd·(g − mean(g) − x̂·mean(g⊙x̂)) for layer norm and rstd·(g − x̂·mean(g⊙x̂)) for RMS norm.
 * The two sums in double lanes, each output in double and rounded once to float32.
 */
function normalizeBackwardRow(g: usize, xh: usize, out: usize, n: i32, layer: bool, rs: f64): void {
  const n4 = n & ~3;
  let sg0 = f64x2.splat(0), sg1 = f64x2.splat(0);
  let sx0 = f64x2.splat(0), sx1 = f64x2.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const gv = v128.load(g + (<usize>i << 2));
    const xv = v128.load(xh + (<usize>i << 2));
    const g0 = f64x2.promote_low_f32x4(gv), g1 = promoteHigh(gv);
    sg0 = f64x2.add(sg0, g0);
    sg1 = f64x2.add(sg1, g1);
    sx0 = f64x2.add(sx0, f64x2.mul(g0, f64x2.promote_low_f32x4(xv)));
    sx1 = f64x2.add(sx1, f64x2.mul(g1, promoteHigh(xv)));
  }
  let sumG = hsum2(f64x2.add(sg0, sg1));
  let sumGX = hsum2(f64x2.add(sx0, sx1));
  for (let i = n4; i < n; i++) {
    const gi = <f64>load<f32>(g + (<usize>i << 2));
    sumG += gi;
    sumGX += gi * <f64>load<f32>(xh + (<usize>i << 2));
  }
  const meanG = layer ? sumG / <f64>n : 0.0;
  const meanGX = sumGX / <f64>n;
  const mg = f64x2.splat(meanG), mgx = f64x2.splat(meanGX), r = f64x2.splat(rs);
  for (let i = 0; i < n4; i += 4) {
    const gv = v128.load(g + (<usize>i << 2));
    const xv = v128.load(xh + (<usize>i << 2));
    const d0 = f64x2.mul(r, f64x2.sub(f64x2.sub(f64x2.promote_low_f32x4(gv), mg), f64x2.mul(f64x2.promote_low_f32x4(xv), mgx)));
    const d1 = f64x2.mul(r, f64x2.sub(f64x2.sub(promoteHigh(gv), mg), f64x2.mul(promoteHigh(xv), mgx)));
    v128.store(out + (<usize>i << 2), demote4(d0, d1));
  }
  for (let i = n4; i < n; i++) {
    const gi = <f64>load<f32>(g + (<usize>i << 2));
    const xi = <f64>load<f32>(xh + (<usize>i << 2));
    store<f32>(out + (<usize>i << 2), <f32>(rs * (gi - meanG - xi * meanGX)));
  }
}

/** The gradient of x for each row of the task: x holds g, aux x̂, aux2 rstd (one float32 per row); flags bit 0: layer norm. */
export function normalize_backward_rows_f32(desc: usize, task: i32, scratch: usize): void {
  const g = <usize>load<u32>(desc, D_X);
  const out = <usize>load<u32>(desc, D_OUT);
  const xh = <usize>load<u32>(desc, D_AUX);
  const rstd = <usize>load<u32>(desc, D_AUX2);
  const inner = load<i32>(desc, D_INNER);
  const layer = (load<i32>(desc, D_FLAGS) & 1) != 0;
  const rowBytes = <usize>inner << 2;
  const r0 = task * load<i32>(desc, D_ROWS_PER);
  const r1 = min(load<i32>(desc, D_OUTER), r0 + load<i32>(desc, D_ROWS_PER));
  for (let r = r0; r < r1; r++) {
    const at = <usize>r * rowBytes;
    normalizeBackwardRow(g + at, xh + at, out + at, inner, layer, <f64>load<f32>(rstd + (<usize>r << 2)));
  }
}

// ---------------------------------------------------------------------------------------------
// cross-entropy
// ---------------------------------------------------------------------------------------------

/**
 * loss = lse - (1-ε)·x_t - (ε/C)·Σ x with lse = log Σ e^x (-inf for a row without a value above
 * -inf, as the cpu). A target outside [0, C) that is not ignored gives NaN (the op layer rejects
 * those before any kernel runs; this only keeps the read inside the row).
 */
function crossEntropyRow(x: usize, n: i32, t: i32, eps: f64): f64 {
  if (t < 0 || t >= n) return NaN;
  const m = rowMax(x, n);
  const lse = m == -Infinity ? -Infinity : logd(rowExpSum(x, n, m, 0)) + <f64>m;
  const sum = eps != 0 ? sumRow(x, n) : 0.0;
  return lse - (1 - eps) * <f64>load<f32>(x + (<usize>t << 2)) - (eps / <f64>n) * sum;
}

/** Per-row loss into out (one float32 per row); rows whose target is `ignore` give 0. */
export function cross_entropy_rows_f32(desc: usize, task: i32, scratch: usize): void {
  const x = <usize>load<u32>(desc, D_X);
  const out = <usize>load<u32>(desc, D_OUT);
  const target = <usize>load<u32>(desc, D_AUX);
  const inner = load<i32>(desc, D_INNER);
  const ignore = load<i32>(desc, D_IGNORE);
  const eps = load<f64>(desc, D_EPS);
  const rowBytes = <usize>inner << 2;
  const r0 = task * load<i32>(desc, D_ROWS_PER);
  const r1 = min(load<i32>(desc, D_OUTER), r0 + load<i32>(desc, D_ROWS_PER));
  for (let r = r0; r < r1; r++) {
    const t = load<i32>(target + (<usize>r << 2));
    const loss = t == ignore ? 0.0 : crossEntropyRow(x + <usize>r * rowBytes, inner, t, eps);
    store<f32>(out + (<usize>r << 2), <f32>loss);
  }
}

/**
 * d loss / d x_c = g·(p_c - q_c), p = softmax(x), q_c = ε/C + (c == t ? 1-ε : 0). A row of all
 * -inf (or NaN) has no softmax: NaN everywhere, as the cpu. p is formed in `out` first.
 */
function crossEntropyBackwardRow(x: usize, out: usize, n: i32, t: i32, g: f32, eps: f64): void {
  const m = rowMax(x, n);
  if (m == -Infinity) {
    for (let i = 0; i < n; i++) store<f32>(out + (<usize>i << 2), NaN);
    return;
  }
  const s = rowExpSum(x, n, m, out);
  const hasTarget = t >= 0 && t < n; // the cpu puts 1-ε nowhere for a target out of range
  const et: f64 = hasTarget ? <f64>load<f32>(out + (<usize>t << 2)) : 0;
  const n4 = n & ~3;
  const sv = f32x4.splat(<f32>s);
  const qv = f32x4.splat(<f32>(eps / <f64>n));
  const gv = f32x4.splat(g);
  for (let i = 0; i < n4; i += 4) {
    const p = out + (<usize>i << 2);
    v128.store(p, f32x4.mul(f32x4.sub(f32x4.div(v128.load(p), sv), qv), gv));
  }
  const q = <f32>(eps / <f64>n);
  for (let i = n4; i < n; i++) {
    const p = out + (<usize>i << 2);
    store<f32>(p, (load<f32>(p) / <f32>s - q) * g);
  }
  if (hasTarget) store<f32>(out + (<usize>t << 2), <f32>(<f64>g * (et / s - (1 - eps + eps / <f64>n))));
}

/** Gradient rows into out (rows like the logits); rows whose target is `ignore` are zeros. */
export function cross_entropy_backward_rows_f32(desc: usize, task: i32, scratch: usize): void {
  const x = <usize>load<u32>(desc, D_X);
  const out = <usize>load<u32>(desc, D_OUT);
  const target = <usize>load<u32>(desc, D_AUX);
  const gradRow = <usize>load<u32>(desc, D_AUX2);
  const inner = load<i32>(desc, D_INNER);
  const ignore = load<i32>(desc, D_IGNORE);
  const eps = load<f64>(desc, D_EPS);
  const rowBytes = <usize>inner << 2;
  const r0 = task * load<i32>(desc, D_ROWS_PER);
  const r1 = min(load<i32>(desc, D_OUTER), r0 + load<i32>(desc, D_ROWS_PER));
  for (let r = r0; r < r1; r++) {
    const t = load<i32>(target + (<usize>r << 2));
    const o = out + <usize>r * rowBytes;
    if (t == ignore) memory.fill(o, 0, rowBytes);
    else crossEntropyBackwardRow(x + <usize>r * rowBytes, o, inner, t, load<f32>(gradRow + (<usize>r << 2)), eps);
  }
}
