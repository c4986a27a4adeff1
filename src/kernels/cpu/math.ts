/**
 * Scalar math for the cpu kernels: the elementwise functions by name, and erf (JavaScript has
 * no Math.erf). Every formula here is the textbook one; derivatives live beside their forward.
 */
import type { BinaryOp, UnaryOp } from '../backend';

// shared with the gpu backend's kernel sources (gpu/elementwise.ts), so both use the same constants
export const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
export const INV_SQRT_2 = Math.SQRT1_2;
export const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
export const GELU_TANH_C = 0.044715;

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

// silu(x) = x·σ(x);  d/dx = σ(x)·(1 + x·(1 - σ(x)))
function silu(x: number): number {
  return x * sigmoid(x);
}

function siluGrad(x: number): number {
  const s = sigmoid(x);
  return s * (1 + x * (1 - s));
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
  // x <= 0 ? 0 : x, not x > 0 ? x : 0: NaN passes through (PyTorch keeps it, so a diverged model shows)
  relu: (x) => (x <= 0 ? 0 : x),
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
  silu,
  siluGrad,
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

// ------------------------------------------------------------------ loops over runs of elements
//
// A call through UNARY[op] / BINARY[op] for every element is a megamorphic call site (one site,
// many closures) that V8 cannot inline: it costs several times the arithmetic. The loops below
// run the hottest ops (add, sub, mul, div; neg, exp and a few more) as direct loops, one loop per
// op, and fall back to the table for the rest. A "run" is `n` elements: out[o + i] for i < n.

/** Any typed (or plain) array the loops index. */
type Arr = { [i: number]: number; readonly length: number };

/** out[o + i] = op(x[ix + i]): a unit-stride run. */
export function unaryRun(op: UnaryOp, x: Arr, ix: number, out: Arr, o: number, n: number, p0: number, p1: number): void {
  switch (op) {
    case 'neg':
      for (let i = 0; i < n; i++) out[o + i] = -x[ix + i];
      return;
    case 'exp':
      for (let i = 0; i < n; i++) out[o + i] = Math.exp(x[ix + i]);
      return;
    case 'log':
      for (let i = 0; i < n; i++) out[o + i] = Math.log(x[ix + i]);
      return;
    case 'sqrt':
      for (let i = 0; i < n; i++) out[o + i] = Math.sqrt(x[ix + i]);
      return;
    case 'rsqrt':
      for (let i = 0; i < n; i++) out[o + i] = 1 / Math.sqrt(x[ix + i]);
      return;
    case 'relu':
      for (let i = 0; i < n; i++) {
        const v = x[ix + i];
        out[o + i] = v <= 0 ? 0 : v; // NaN passes through
      }
      return;
    // the activations: a direct call of one known function, which V8 inlines
    case 'sigmoid':
      for (let i = 0; i < n; i++) out[o + i] = sigmoid(x[ix + i]);
      return;
    case 'tanh':
      for (let i = 0; i < n; i++) out[o + i] = Math.tanh(x[ix + i]);
      return;
    case 'silu':
      for (let i = 0; i < n; i++) out[o + i] = silu(x[ix + i]);
      return;
    case 'siluGrad':
      for (let i = 0; i < n; i++) out[o + i] = siluGrad(x[ix + i]);
      return;
    default: {
      const f = UNARY[op];
      for (let i = 0; i < n; i++) out[o + i] = f(x[ix + i], p0, p1);
    }
  }
}

/** out[o + i] = op(x[ix + i·sx]): a run with any stride. */
export function unaryRunStrided(op: UnaryOp, x: Arr, ix: number, sx: number, out: Arr, o: number, n: number, p0: number, p1: number): void {
  if (sx === 0) {
    // one value repeated: compute it once
    const v = UNARY[op](x[ix], p0, p1);
    for (let i = 0; i < n; i++) out[o + i] = v;
    return;
  }
  switch (op) {
    case 'neg':
      for (let i = 0, p = ix; i < n; i++, p += sx) out[o + i] = -x[p];
      return;
    case 'exp':
      for (let i = 0, p = ix; i < n; i++, p += sx) out[o + i] = Math.exp(x[p]);
      return;
    default: {
      const f = UNARY[op];
      for (let i = 0, p = ix; i < n; i++, p += sx) out[o + i] = f(x[p], p0, p1);
    }
  }
}

/** out[o + i] = op(a[ia + i], b[ib + i]): both operands unit-stride. */
export function binaryRun(op: BinaryOp, a: Arr, ia: number, b: Arr, ib: number, out: Arr, o: number, n: number): void {
  switch (op) {
    case 'add':
      for (let i = 0; i < n; i++) out[o + i] = a[ia + i] + b[ib + i];
      return;
    case 'sub':
      for (let i = 0; i < n; i++) out[o + i] = a[ia + i] - b[ib + i];
      return;
    case 'mul':
      for (let i = 0; i < n; i++) out[o + i] = a[ia + i] * b[ib + i];
      return;
    case 'div':
      for (let i = 0; i < n; i++) out[o + i] = a[ia + i] / b[ib + i];
      return;
    default: {
      const f = BINARY[op];
      for (let i = 0; i < n; i++) out[o + i] = f(a[ia + i], b[ib + i]);
    }
  }
}

/** out[o + i] = op(a[ia + i], bv): the second operand is one value (a scalar, or a column-repeated row). */
export function binaryRunScalarB(op: BinaryOp, a: Arr, ia: number, bv: number, out: Arr, o: number, n: number): void {
  switch (op) {
    case 'add':
      for (let i = 0; i < n; i++) out[o + i] = a[ia + i] + bv;
      return;
    case 'sub':
      for (let i = 0; i < n; i++) out[o + i] = a[ia + i] - bv;
      return;
    case 'mul':
      for (let i = 0; i < n; i++) out[o + i] = a[ia + i] * bv;
      return;
    case 'div':
      // not a[i] * (1 / bv): that rounds twice
      for (let i = 0; i < n; i++) out[o + i] = a[ia + i] / bv;
      return;
    default: {
      const f = BINARY[op];
      for (let i = 0; i < n; i++) out[o + i] = f(a[ia + i], bv);
    }
  }
}

/** out[o + i] = op(av, b[ib + i]): the first operand is one value. */
export function binaryRunScalarA(op: BinaryOp, av: number, b: Arr, ib: number, out: Arr, o: number, n: number): void {
  switch (op) {
    case 'add':
      for (let i = 0; i < n; i++) out[o + i] = av + b[ib + i];
      return;
    case 'sub':
      for (let i = 0; i < n; i++) out[o + i] = av - b[ib + i];
      return;
    case 'mul':
      for (let i = 0; i < n; i++) out[o + i] = av * b[ib + i];
      return;
    case 'div':
      for (let i = 0; i < n; i++) out[o + i] = av / b[ib + i];
      return;
    default: {
      const f = BINARY[op];
      for (let i = 0; i < n; i++) out[o + i] = f(av, b[ib + i]);
    }
  }
}

/** out[o + i] = op(a[ia + i·sa], b[ib + i·sb]): any strides (a transposed operand, say). */
export function binaryRunStrided(op: BinaryOp, a: Arr, ia: number, sa: number, b: Arr, ib: number, sb: number, out: Arr, o: number, n: number): void {
  switch (op) {
    case 'add':
      for (let i = 0, p = ia, q = ib; i < n; i++, p += sa, q += sb) out[o + i] = a[p] + b[q];
      return;
    case 'sub':
      for (let i = 0, p = ia, q = ib; i < n; i++, p += sa, q += sb) out[o + i] = a[p] - b[q];
      return;
    case 'mul':
      for (let i = 0, p = ia, q = ib; i < n; i++, p += sa, q += sb) out[o + i] = a[p] * b[q];
      return;
    case 'div':
      for (let i = 0, p = ia, q = ib; i < n; i++, p += sa, q += sb) out[o + i] = a[p] / b[q];
      return;
    default: {
      const f = BINARY[op];
      for (let i = 0, p = ia, q = ib; i < n; i++, p += sa, q += sb) out[o + i] = f(a[p], b[q]);
    }
  }
}
