/**
 * Scalar math for the cpu kernels: the elementwise functions by name, and erf (JavaScript has
 * no Math.erf). Every formula here is the textbook one; derivatives live beside their forward.
 */
import type { BinaryOp, UnaryOp } from '../backend';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_TANH_C = 0.044715;

/**
 * erf to about 1e-15. For |x| < 3 the series erf(x) = 2/√π · e^{-x²} · Σ 2ⁿ x^{2n+1} / (1·3···(2n+1))
 * has only positive terms (no cancellation); beyond, erfc's continued fraction converges fast.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200 && term > sum * 1e-17; n++) {
      term *= (2 * ax * ax) / (2 * n + 1);
      sum += term;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
  }
  // erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))) evaluated bottom-up.
  let f = ax;
  for (let n = 60; n >= 1; n--) f = ax + n / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** Standard normal cdf Φ(x), through erf. */
function normalCdf(x: number): number {
  return 0.5 * (1 + erf(x * INV_SQRT_2));
}

function sigmoid(x: number): number {
  // Split by sign so exp never overflows.
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export type UnaryFn = (x: number, p0: number, p1: number) => number;

export const UNARY: Record<UnaryOp, UnaryFn> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x), // sign(±0) = ±0, sign(NaN) = NaN, as in PyTorch
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  sigmoid,
  relu: (x) => (x > 0 ? x : 0),
  // gelu(x) = x·Φ(x);  d/dx = Φ(x) + x·φ(x)
  gelu: (x) => x * normalCdf(x),
  geluGrad: (x) => normalCdf(x) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x),
  // tanh approximation: 0.5·x·(1 + tanh(u)), u = √(2/π)(x + 0.044715x³)
  geluTanh: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x))),
  geluTanhGrad: (x) => {
    const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x));
    const du = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_C * x * x);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du;
  },
  // silu(x) = x·σ(x);  d/dx = σ(x)·(1 + x·(1 - σ(x)))
  silu: (x) => x * sigmoid(x),
  siluGrad: (x) => {
    const s = sigmoid(x);
    return s * (1 + x * (1 - s));
  },
  powScalar: (x, p) => x ** p,
  // min(max(x, lo), hi): when lo > hi every value becomes hi, as in PyTorch; NaN passes through
  clamp: (x, lo, hi) => {
    const y = x < lo ? lo : x;
    return y > hi ? hi : y;
  },
  inRange: (x, lo, hi) => (x >= lo && x <= hi ? 1 : 0),
};

export type BinaryFn = (a: number, b: number) => number;

export const BINARY: Record<BinaryOp, BinaryFn> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => a ** b,
  // maximum/minimum propagate NaN, as torch.maximum does
  maximum: (a, b) => (a !== a || b !== b ? NaN : a > b ? a : b),
  minimum: (a, b) => (a !== a || b !== b ? NaN : a < b ? a : b),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
};
