// Helpers of the row kernels (rows.ts, reduce.ts, adam.ts): a scalar double log, lane
// reductions, double <-> float32 lane conversions and partial-vector loads / stores for row
// tails. (The vector e^x is math.ts's expV.) Everything is computed inline from constants: no
// tables, since the module must have no data segments; that is also why AssemblyScript's
// Math.log (table-driven at this shrink level) is not used.

/**
 * ln x in double precision (a few ulp of a double), for one value per row (log Σ e^...).
 * ln 0 = -inf, ln inf = inf, NaN and x < 0 give NaN.
 *
 * x = 2^k · m with m in [√½, √2); ln m = 2·atanh(s) with s = (m-1)/(m+1), |s| <= 0.1716, by the
 * series 2(s + s³/3 + ... + s^23/23) (the next term is below 1e-18 relative).
 */
export function logd(x: f64): f64 {
  if (!(x > 0)) return x == 0 ? -Infinity : NaN;
  if (x == Infinity) return x;
  let k: i64 = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984.0; // 2^54: a subnormal becomes normal
    k = -54;
  }
  const bits = reinterpret<u64>(x);
  k += <i64>((bits >> 52) & 0x7ff) - 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000); // [1, 2)
  if (m > 1.4142135623730951) {
    m *= 0.5;
    k++;
  }
  const s = (m - 1) / (m + 1);
  const s2 = s * s;
  // 1 + s²/3 + s⁴/5 + ... + s^22/23, by Horner (constant divisions fold at compile time)
  let q: f64 = 1.0 / 23;
  q = q * s2 + 1.0 / 21;
  q = q * s2 + 1.0 / 19;
  q = q * s2 + 1.0 / 17;
  q = q * s2 + 1.0 / 15;
  q = q * s2 + 1.0 / 13;
  q = q * s2 + 1.0 / 11;
  q = q * s2 + 1.0 / 9;
  q = q * s2 + 1.0 / 7;
  q = q * s2 + 1.0 / 5;
  q = q * s2 + 1.0 / 3;
  q = q * s2 + 1.0;
  const kf = <f64>k;
  // ln 2 = 0.693147180369123816490 (33 bits, so kf·hi is exact) + 1.90821492927058770002e-10
  return kf * 0.693147180369123816490 + (2 * s * q + kf * 1.90821492927058770002e-10);
}

/** `count` (0..3) float32 values from ptr in the low lanes, `fill` in the others. */
// @ts-ignore: decorator
@inline export function loadPartial(ptr: usize, count: i32, fill: f32): v128 {
  let v = f32x4.splat(fill);
  if (count > 0) v = f32x4.replace_lane(v, 0, load<f32>(ptr));
  if (count > 1) v = f32x4.replace_lane(v, 1, load<f32>(ptr, 4));
  if (count > 2) v = f32x4.replace_lane(v, 2, load<f32>(ptr, 8));
  return v;
}

/** Stores the low `count` (0..3) lanes of v at ptr. */
// @ts-ignore: decorator
@inline export function storePartial(ptr: usize, v: v128, count: i32): void {
  if (count > 0) store<f32>(ptr, f32x4.extract_lane(v, 0));
  if (count > 1) store<f32>(ptr, f32x4.extract_lane(v, 1), 4);
  if (count > 2) store<f32>(ptr, f32x4.extract_lane(v, 2), 8);
}

/** Lanes 2 and 3 of a float32 vector as doubles (f64x2.promote_low_f32x4 gives lanes 0 and 1). */
// @ts-ignore: decorator
@inline export function promoteHigh(v: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 2, 3));
}

/** Four doubles (lo: lanes 0, 1; hi: lanes 2, 3) rounded to one float32 vector. */
// @ts-ignore: decorator
@inline export function demote4(lo: v128, hi: v128): v128 {
  return i64x2.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 2);
}

/** Lane-wise max that never takes a NaN (a NaN lane of v leaves best unchanged), as `if (v > best) best = v`. */
// @ts-ignore: decorator
@inline export function maxSkipNaN(best: v128, v: v128): v128 {
  return v128.bitselect(v, best, f32x4.gt(v, best));
}

/** The largest lane of an accumulator of maxSkipNaN (which never holds a NaN). */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  v = maxSkipNaN(v, i64x2.shuffle(v, v, 1, 0));
  v = maxSkipNaN(v, i32x4.shuffle(v, v, 1, 0, 3, 2));
  return f32x4.extract_lane(v, 0);
}

/** Sum of the two lanes of a double vector. */
// @ts-ignore: decorator
@inline export function hsum2(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/** Σ x over a float32 row, in double lanes (two vectors, then the lanes, then the tail). */
export function sumRow(x: usize, n: i32): f64 {
  const n4 = n & ~3;
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(v));
    s1 = f64x2.add(s1, promoteHigh(v));
  }
  let s = hsum2(f64x2.add(s0, s1));
  for (let i = n4; i < n; i++) s += <f64>load<f32>(x + (<usize>i << 2));
  return s;
}
