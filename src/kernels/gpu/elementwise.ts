/**
 * Elementwise formulas as kernel source: each unary op is an expression in `v` (the input value)
 * and `p0`, `p1` (its parameters), each binary op an expression in `a` and `b`. They follow the
 * cpu backend's math.ts; where GLSL differs from JavaScript (pow of a negative base, tanh
 * overflow, no erf) a helper from runtime.ts restores JavaScript's answer.
 */
import type { BinaryOp, UnaryOp } from '../backend';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_TANH_C = 0.044715;

export const UNARY_SOURCE: Record<UnaryOp, string> = {
  neg: '-v',
  exp: 'Math.exp(v)',
  log: 'Math.log(v)',
  sqrt: 'Math.sqrt(v)',
  rsqrt: '1 / Math.sqrt(v)',
  abs: 'Math.abs(v)',
  sign: '(v > 0 ? 1 : (v < 0 ? -1 : v))',
  sin: 'Math.sin(v)',
  cos: 'Math.cos(v)',
  tanh: 'tanhSafe(v)',
  sigmoid: 'sigmoidSafe(v)',
  relu: '(v > 0 ? v : 0)',
  // x·Φ(x) with Φ(x) = (1 + erf(x/√2)) / 2
  gelu: `0.5 * v * (1 + erfApprox(v * ${INV_SQRT_2}))`,
  // Φ(x) + x·φ(x)
  geluGrad: `0.5 * (1 + erfApprox(v * ${INV_SQRT_2})) + v * ${INV_SQRT_2PI} * Math.exp(-0.5 * v * v)`,
  geluTanh: `0.5 * v * (1 + tanhSafe(${SQRT_2_OVER_PI} * (v + ${GELU_TANH_C} * v * v * v)))`,
  geluTanhGrad:
    `0.5 * (1 + tanhSafe(${SQRT_2_OVER_PI} * (v + ${GELU_TANH_C} * v * v * v))) + ` +
    `0.5 * v * (1 - tanhSafe(${SQRT_2_OVER_PI} * (v + ${GELU_TANH_C} * v * v * v)) * tanhSafe(${SQRT_2_OVER_PI} * (v + ${GELU_TANH_C} * v * v * v))) * ` +
    `${SQRT_2_OVER_PI} * (1 + ${3 * GELU_TANH_C} * v * v)`,
  silu: 'v * sigmoidSafe(v)',
  siluGrad: 'sigmoidSafe(v) * (1 + v * (1 - sigmoidSafe(v)))',
  powScalar: 'powJs(v, p0)',
  clamp: 'Math.min(Math.max(v, p0), p1)',
  inRange: '(v >= p0 && v <= p1 ? 1 : 0)',
};

export const BINARY_SOURCE: Record<BinaryOp, string> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  pow: 'powJs(a, b)',
  maximum: 'Math.max(a, b)',
  minimum: 'Math.min(a, b)',
  eq: '(a == b ? 1 : 0)',
  ne: '(a != b ? 1 : 0)',
  lt: '(a < b ? 1 : 0)',
  le: '(a <= b ? 1 : 0)',
  gt: '(a > b ? 1 : 0)',
  ge: '(a >= b ? 1 : 0)',
};
