// Vector (f32x4) exp, log, tanh, the sigmoid family and gelu for the elementwise kernels.
//
// Every function takes and returns four float32 lanes. Accuracy: a few ulp against the exact
// result (test/kernels/wasm/elementwise.test.ts measures it), with IEEE special values handled as
// JavaScript's Math functions handle them (the cpu backend computes with those and rounds once).
// Wasm SIMD keeps subnormals (no flush to zero), so results that underflow into the subnormal
// range are computed, not flushed.
//
// The common tool is exponential range reduction: e^x = 2^n · e^r with n = round(x / ln 2) and
// |r| <= ln 2 / 2 ≈ 0.347. Then e^r - 1 is a short polynomial, and the power of two is applied
// by building its exponent bits. The polynomial is the Taylor series of e^r - 1 up to r^7
// (coefficients 1/k!, which anyone can check): at |r| <= 0.347 the first term left out,
// r^8/8!, is below 6e-9, a twentieth of a float32 ulp of e^r.

// ln 2 split in two: n·LN2_HI is exact for |n| < 2^15 (LN2_HI has 9 significant bits), so
// x - n·LN2_HI loses nothing and LN2_LO only corrects a tiny remainder (Cody and Waite).
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const LOG2E: f32 = 1.44269504;
const SIGN: i32 = <i32>0x80000000;

@inline function splat(x: f32): v128 {
  return f32x4.splat(x);
}

// Clamps use pmin / pmax with the value first: pmax(x, c) is x < c ? c : x, so a NaN x passes
// through (the comparison is false), and each is one instruction where min / max, which must
// order ±0 and pick NaN from either side, take several.

/** n = round(x / ln 2), as floats holding integers. */
@inline export function expN(x: v128): v128 {
  return f32x4.nearest(f32x4.mul(x, splat(LOG2E)));
}

/** r = x - n ln 2, with |r| <= ~0.347 when n = expN(x). */
@inline export function expR(x: v128, n: v128): v128 {
  return f32x4.sub(f32x4.sub(x, f32x4.mul(n, splat(LN2_HI))), f32x4.mul(n, splat(LN2_LO)));
}

/** e^r - 1 for |r| <= 0.35: Taylor series to r^7, Horner form. */
@inline export function expm1Small(r: v128): v128 {
  let p = f32x4.add(splat(<f32>(1.0 / 720.0)), f32x4.mul(r, splat(<f32>(1.0 / 5040.0))));
  p = f32x4.add(splat(<f32>(1.0 / 120.0)), f32x4.mul(r, p));
  p = f32x4.add(splat(<f32>(1.0 / 24.0)), f32x4.mul(r, p));
  p = f32x4.add(splat(<f32>(1.0 / 6.0)), f32x4.mul(r, p));
  p = f32x4.add(splat(0.5), f32x4.mul(r, p));
  return f32x4.add(r, f32x4.mul(f32x4.mul(r, r), p));
}

/** 2^k as float bits, for integer lanes k in [-126, 127]. */
@inline function pow2i(k: v128): v128 {
  return i32x4.shl(i32x4.add(k, i32x4.splat(127)), 23);
}

/**
 * Integer-valued float lanes (|n| < 2^22) as int32 lanes: n + 1.5·2^23 puts n in the low mantissa
 * bits, exactly; cheaper than trunc_sat, which must saturate and map NaN to 0.
 */
@inline function toInt(n: v128): v128 {
  return i32x4.sub(f32x4.add(n, splat(12582912.0)), i32x4.splat(0x4b400000));
}

/**
 * v · 2^n for integer-valued float lanes n in [-252, 254], in two steps of at most 2^±127 so that
 * each factor is a normal float; v·2^n1 is exact when v is normal, and the second product rounds
 * once, into the subnormal range if it must.
 */
@inline export function scale2(v: v128, n: v128): v128 {
  const k = toInt(n);
  const k1 = i32x4.shr_s(k, 1);
  return f32x4.mul(f32x4.mul(v, pow2i(k1)), pow2i(i32x4.sub(k, k1)));
}

/** e^x. Inputs are clamped to [-110, 89] (the results there are already 0 and Infinity). */
@inline export function expV(x: v128): v128 {
  const xc = f32x4.pmin(f32x4.pmax(x, splat(-110.0)), splat(89.0)); // NaN stays NaN
  const n = expN(xc);
  return scale2(f32x4.add(splat(1.0), expm1Small(expR(xc, n))), n);
}

/**
 * ln x. x = 2^e · m with m in [√½, √2), then ln m = 2 atanh(s) with s = (m-1)/(m+1), |s| <= 0.172:
 * 2s + 2s³/3 + 2s⁵/5 + 2s⁷/7 + 2s⁹/9 (the next term is 2e-9 of the sum). Special values as
 * Math.log: ln(±0) = -Infinity, ln(x < 0) = NaN, ln(Infinity) = Infinity, ln(NaN) = NaN.
 */
@inline export function logV(x: v128): v128 {
  // a subnormal x has too few mantissa bits in its exponent field: scale it by 2^23 first
  const sub = f32x4.lt(x, splat(1.17549435e-38));
  const xs = v128.bitselect(f32x4.mul(x, splat(8388608.0)), x, sub);
  let e = i32x4.sub(i32x4.shr_u(xs, 23), i32x4.splat(127));
  e = i32x4.sub(e, v128.and(sub, i32x4.splat(23)));
  const mant = v128.and(xs, i32x4.splat(0x7fffff));
  // mantissa above √2 (1.41421354 = 0x3fb504f3): take m/2 and one more power of two
  const big = i32x4.gt_s(mant, i32x4.splat(0x3504f3));
  const m = v128.or(mant, v128.bitselect(i32x4.splat(0x3f000000), i32x4.splat(0x3f800000), big));
  e = i32x4.sub(e, big); // big lanes are -1
  const f = f32x4.sub(m, splat(1.0)); // exact: m is within a factor 2 of 1
  const s = f32x4.div(f, f32x4.add(f, splat(2.0)));
  const z = f32x4.mul(s, s);
  let p = f32x4.add(splat(<f32>(2.0 / 7.0)), f32x4.mul(z, splat(<f32>(2.0 / 9.0))));
  p = f32x4.add(splat(<f32>(2.0 / 5.0)), f32x4.mul(z, p));
  p = f32x4.add(splat(<f32>(2.0 / 3.0)), f32x4.mul(z, p));
  const lnm = f32x4.add(f32x4.add(s, s), f32x4.mul(f32x4.mul(s, z), p));
  const ef = f32x4.convert_i32x4_s(e);
  let r = f32x4.add(f32x4.mul(ef, splat(LN2_HI)), f32x4.add(lnm, f32x4.mul(ef, splat(LN2_LO))));
  r = v128.bitselect(splat(-Infinity), r, f32x4.eq(x, splat(0.0)));
  r = v128.bitselect(splat(NaN), r, f32x4.lt(x, splat(0.0)));
  return v128.bitselect(x, r, v128.or(f32x4.ne(x, x), f32x4.eq(x, splat(Infinity))));
}

/**
 * tanh x = u / (u + 2) with u = e^{2|x|} - 1, sign copied from x. u is computed as
 * 2^n·(e^r - 1) + (2^n - 1), which keeps its relative accuracy for small |x| (n = 0: u is the
 * polynomial itself). |x| is clamped to 10, where tanh is 1 in float32; tanh(±0) = ±0.
 */
@inline export function tanhV(x: v128): v128 {
  const a = f32x4.pmin(f32x4.abs(x), splat(10.0));
  const y = f32x4.add(a, a);
  const n = expN(y);
  const q = expm1Small(expR(y, n));
  const p2 = pow2i(toInt(n)); // n in [0, 29]
  const u = f32x4.add(f32x4.mul(q, p2), f32x4.sub(p2, splat(1.0)));
  const t = f32x4.div(u, f32x4.add(u, splat(2.0)));
  return v128.or(t, v128.and(x, i32x4.splat(SIGN)));
}

// ---------------------------------------------------------------------------------------------
// The sigmoid family
// ---------------------------------------------------------------------------------------------
//
// σ(z) = 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) for z < 0: with t = -|z|, e^t <= 1 never
// overflows, and d = 1 + e^t is in [1, 2]. For z < 0, σ(z) is tiny and may be subnormal; a
// subnormal has few significant bits, so x·σ(z) (silu) would lose them. Instead the power of two
// of e^t = 2^n·p is applied last: x·σ(z) = (x·p / d)·2^n, rounded once. t is clamped to -150,
// far enough that every result that should round to zero still does (e^-150 < 2^-216).

/** t = max(-|z|, -150): e^t <= 1 never overflows, and is 0 in float32 where it must be. */
@inline export function reduceNegAbs(z: v128): v128 {
  return f32x4.pmax(f32x4.neg(f32x4.abs(z)), splat(-150.0));
}

/**
 * x·σ(z) for every lane, given neg = (z < 0) and e^-|z| = 2^n·e^r (see reduceNegAbs);
 * `xNeg` is x clamped to >= -150, used where z < 0 (see siluV).
 */
@inline export function mulSigmoidNR(x: v128, xNeg: v128, neg: v128, n: v128, r: v128): v128 {
  const p = f32x4.add(splat(1.0), expm1Small(r));
  const d = f32x4.add(splat(1.0), scale2(p, n));
  // z >= 0: x / d;   z < 0: (xNeg·p / d)·2^n   (scaling by 2^0 leaves the z >= 0 lanes exact)
  const num = v128.bitselect(f32x4.mul(xNeg, p), x, neg);
  return scale2(f32x4.div(num, d), v128.and(n, neg));
}

/** x·σ(z); see mulSigmoidNR. */
@inline function mulSigmoid(x: v128, xNeg: v128, z: v128): v128 {
  const t = reduceNegAbs(z);
  const n = expN(t);
  return mulSigmoidNR(x, xNeg, f32x4.lt(z, splat(0.0)), n, expR(t, n));
}

/**
 * σ(z)·(1 + w·(1 - σ(z))): the derivative of x·σ(x) (w = x) and of the tanh gelu (see
 * geluTanhGradV), given neg, n and r as mulSigmoidNR. With A = 1/d: z >= 0 has σ = A and
 * 1 - σ = e^t·A; z < 0 has σ = p·A·2^n and 1 - σ = A, so the power of two again comes last.
 * `w` must be >= -150 where z < 0.
 */
@inline function sigmoidGradNR(neg: v128, n: v128, r: v128, w: v128): v128 {
  const p = f32x4.add(splat(1.0), expm1Small(r));
  const e = scale2(p, n);
  const a = f32x4.div(splat(1.0), f32x4.add(splat(1.0), e));
  const sig = v128.bitselect(f32x4.mul(p, a), a, neg); // σ, before the 2^n of z < 0
  const rest = v128.bitselect(a, f32x4.mul(e, a), neg); // 1 - σ
  const g = f32x4.mul(sig, f32x4.add(splat(1.0), f32x4.mul(w, rest)));
  return scale2(g, v128.and(n, neg));
}

/** Lanes where x is +Infinity become `pos`, those where it is -Infinity `neg`. */
@inline export function fixInf(r: v128, x: v128, pos: f32, neg: f32): v128 {
  r = v128.bitselect(splat(pos), r, f32x4.eq(x, splat(Infinity)));
  return v128.bitselect(splat(neg), r, f32x4.eq(x, splat(-Infinity)));
}

/** σ(x); σ(+Infinity) = 1, σ(-Infinity) = 0 come out of the formula. */
@inline export function sigmoidV(x: v128): v128 {
  return mulSigmoid(splat(1.0), splat(1.0), x);
}

/** x·σ(x). silu(-Infinity) is NaN, as -Infinity·0 in the cpu backend. */
@inline export function siluV(x: v128): v128 {
  const r = mulSigmoid(x, f32x4.pmax(x, splat(-150.0)), x);
  return fixInf(r, x, Infinity, NaN);
}

/** σ(x)·(1 + x·(1 - σ(x))); NaN at ±Infinity (∞·0 in the cpu backend's formula). */
@inline export function siluGradV(x: v128): v128 {
  const t = reduceNegAbs(x);
  const n = expN(t);
  const r = sigmoidGradNR(f32x4.lt(x, splat(0.0)), n, expR(t, n), f32x4.pmax(x, splat(-150.0)));
  return fixInf(r, x, NaN, NaN);
}

// The tanh form of gelu: 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³). Since
// 1 + tanh(u) = 2σ(2u), it is x·σ(2u): no cancellation for negative x. But σ(2u) = e^{2u}/(...)
// multiplies any relative error of u by |2u| (17 at x = -5), and u has three float32 roundings:
// so u, and e^-|2u| = 2^n·e^r's n and r, are computed in float64 (two lanes at a time), where
// they are exact for our purposes, then narrowed. x is clamped to ±20 inside u (beyond it σ(2u)
// is 0 or 1 in float32).
const SQRT_2_OVER_PI: f64 = 0.7978845608028654;
const GELU_C: f64 = 0.044715;
const LN2: f64 = 0.6931471805599453;
const LOG2E_64: f64 = 1.4426950408889634;

@inline function clamp20(x: v128): v128 {
  return f32x4.pmin(f32x4.pmax(x, splat(-20.0)), splat(20.0));
}

/** For two float64 lanes x: t = -|2u(x)|, clamped to -150. */
@inline function geluT64(x: v128): v128 {
  const x2 = f64x2.mul(x, x);
  const inner = f64x2.mul(x, f64x2.add(f64x2.splat(1.0), f64x2.mul(f64x2.splat(GELU_C), x2)));
  const z = f64x2.mul(f64x2.splat(2.0 * SQRT_2_OVER_PI), inner);
  return f64x2.pmax(f64x2.neg(f64x2.abs(z)), f64x2.splat(-150.0));
}

@inline function nearest64(t: v128): v128 {
  return f64x2.nearest(f64x2.mul(t, f64x2.splat(LOG2E_64)));
}

/** Four float32 lanes from the low halves of two float64 pairs (lo: lanes 0, 1; hi: lanes 2, 3). */
@inline function demote4(lo: v128, hi: v128): v128 {
  return i64x2.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 2);
}

/** x·σ(2u) for |x| <= 20 (as xc) and any x: the n and r of e^-|2u| in float64. */
@inline function geluTanhCore(x: v128, xc: v128, grad: bool): v128 {
  const lo = f64x2.promote_low_f32x4(xc);
  const hi = f64x2.promote_low_f32x4(i64x2.shuffle(xc, xc, 1, 1));
  const tLo = geluT64(lo), tHi = geluT64(hi);
  const nLo = nearest64(tLo), nHi = nearest64(tHi);
  const n = demote4(nLo, nHi);
  const r = demote4(f64x2.sub(tLo, f64x2.mul(nLo, f64x2.splat(LN2))), f64x2.sub(tHi, f64x2.mul(nHi, f64x2.splat(LN2))));
  const neg = f32x4.lt(xc, splat(0.0)); // 2u has the sign of x
  if (!grad) return mulSigmoidNR(x, xc, neg, n, r);
  // w = 2x·u', u' = √(2/π)(1 + 3·0.044715·x²): its float32 error only scales the second term
  const du = f32x4.mul(splat(<f32>SQRT_2_OVER_PI), f32x4.add(splat(1.0), f32x4.mul(splat(<f32>(3.0 * GELU_C)), f32x4.mul(xc, xc))));
  return sigmoidGradNR(neg, n, r, f32x4.mul(f32x4.add(xc, xc), du));
}

/** 0.5·x·(1 + tanh(u)) = x·σ(2u). geluTanh(-Infinity) = NaN (-∞·0 in the cpu backend). */
@inline export function geluTanhV(x: v128): v128 {
  return fixInf(geluTanhCore(x, clamp20(x), false), x, Infinity, NaN);
}

/**
 * d/dx of the tanh gelu: 0.5(1 + t) + 0.5·x·(1 - t²)·u' = σ(2u)·(1 + 2x·u'·(1 - σ(2u))), with
 * t = tanh u. NaN at ±Infinity, as the cpu backend's formula.
 */
@inline export function geluTanhGradV(x: v128): v128 {
  const r = geluTanhCore(x, clamp20(x), true);
  // + 0: where the result underflows to -0, the cpu backend's sum of two terms gives +0
  return fixInf(f32x4.add(r, splat(0.0)), x, NaN, NaN);
}

// gelu with the normal cdf: x·Φ(x), and its derivative Φ(x) + x·φ(x), φ(x) = e^{-x²/2}/√(2π).
// Φ goes through the Mills ratio R(a) = Φ(-a)/φ(a), which is smooth and positive on a >= 0
// (R(0) = √(π/2), R(a) ≈ 1/a for large a): Φ(x) = φ(x)·R(-x) for x < 0, 1 - φ(x)·R(x) for x >= 0.
// For x < 0 the tiny factor e^{-x²/2} = 2^n·e^r keeps its power of two to the end, as in the
// sigmoid family. R is a polynomial in s = 1/(1 + a/4), fitted (weighted least squares against
// a 40-digit erfc, degree 11) to a relative error below 1e-9 on [0, 15]; it and e^{-x²/2}'s n, r
// are computed in float64, two lanes at a time (x² is exact there). |x| is clamped to 15, past
// which Φ is 0 or 1 in float32 and the results are 0, x (gelu) or 0, 1 (its derivative).
const INV_SQRT_2PI: f32 = 0.3989422804014327;

/** R(|x|) for two float64 lanes, |x| <= 15. */
@inline function millsRatio64(x: v128): v128 {
  const s = f64x2.div(f64x2.splat(1.0), f64x2.add(f64x2.splat(1.0), f64x2.mul(f64x2.abs(x), f64x2.splat(0.25))));
  let p = f64x2.splat(-0.03903505995451183);
  p = f64x2.add(f64x2.splat(0.2800899574343208), f64x2.mul(p, s));
  p = f64x2.add(f64x2.splat(-0.8006805251800628), f64x2.mul(p, s));
  p = f64x2.add(f64x2.splat(1.1375473262685414), f64x2.mul(p, s));
  p = f64x2.add(f64x2.splat(-0.9457462734684108), f64x2.mul(p, s));
  p = f64x2.add(f64x2.splat(0.723227481440022), f64x2.mul(p, s));
  p = f64x2.add(f64x2.splat(-0.10472038091944923), f64x2.mul(p, s));
  p = f64x2.add(f64x2.splat(0.28270554801716685), f64x2.mul(p, s));
  p = f64x2.add(f64x2.splat(0.21785157527420054), f64x2.mul(p, s));
  p = f64x2.add(f64x2.splat(0.25224834742931657), f64x2.mul(p, s));
  p = f64x2.add(f64x2.splat(0.2498196897007795), f64x2.mul(p, s));
  return f64x2.add(f64x2.splat(6.452482907422702e-06), f64x2.mul(p, s));
}

/** -x²/2 for two float64 lanes: exact for float32 x. */
@inline function halfSquare64(x: v128): v128 {
  return f64x2.mul(f64x2.splat(-0.5), f64x2.mul(x, x));
}

/**
 * For x < 0, R(-x) + x; for x >= 0, x - R(x): the derivative is φ·(that) below 0 and 1 + φ·(that)
 * above; computed in float64 because it cancels near x = -0.75.
 */
@inline function geluGradTerm64(x: v128, r: v128): v128 {
  return f64x2.add(x, v128.bitselect(r, f64x2.neg(r), f64x2.lt(x, f64x2.splat(0.0))));
}

@inline function geluErfCore(x: v128, grad: bool): v128 {
  const xc = f32x4.pmin(f32x4.pmax(x, splat(-15.0)), splat(15.0));
  const lo = f64x2.promote_low_f32x4(xc);
  const hi = f64x2.promote_low_f32x4(i64x2.shuffle(xc, xc, 1, 1));
  const tLo = halfSquare64(lo), tHi = halfSquare64(hi);
  const nLo = nearest64(tLo), nHi = nearest64(tHi);
  const n = demote4(nLo, nHi);
  const r = demote4(f64x2.sub(tLo, f64x2.mul(nLo, f64x2.splat(LN2))), f64x2.sub(tHi, f64x2.mul(nHi, f64x2.splat(LN2))));
  const cp = f32x4.mul(splat(INV_SQRT_2PI), f32x4.add(splat(1.0), expm1Small(r))); // φ(x) = cp·2^n
  const neg = f32x4.lt(xc, splat(0.0));
  const rLo = millsRatio64(lo), rHi = millsRatio64(hi);
  if (grad) {
    const g = scale2(f32x4.mul(cp, demote4(geluGradTerm64(lo, rLo), geluGradTerm64(hi, rHi))), n);
    return v128.bitselect(g, f32x4.add(splat(1.0), g), neg);
  }
  const cpR = f32x4.mul(cp, demote4(rLo, rHi));
  // x < 0: (x·cp·R)·2^n;   x >= 0: x·(1 - φR)
  const below = scale2(f32x4.mul(xc, cpR), n);
  const above = f32x4.mul(x, f32x4.sub(splat(1.0), scale2(cpR, n)));
  return v128.bitselect(below, above, neg);
}

/** x·Φ(x). gelu(-Infinity) = NaN (-∞·0 in the cpu backend). */
@inline export function geluV(x: v128): v128 {
  return fixInf(geluErfCore(x, false), x, Infinity, NaN);
}

/** Φ(x) + x·φ(x); NaN at ±Infinity (∞·0 in the cpu backend's formula). */
@inline export function geluGradV(x: v128): v128 {
  return fixInf(geluErfCore(x, true), x, NaN, NaN);
}
