/**
 * Elementwise kernels of the gpu backend (unary, binary, where), one thread per output element,
 * each operand read through its strided (possibly broadcast, stride 0) view. The formulas are
 * kernel source: each unary op is an expression in `v` (the input value) and `p0`, `p1` (its
 * parameters), each binary op an expression in `a` and `b`. They follow the cpu backend's
 * math.ts; where GLSL differs from JavaScript (pow of a negative base, tanh overflow, no erf,
 * min/max dropping NaN) a helper from runtime.ts or a NaN test restores JavaScript's answer.
 */
import type { BackendBuffer, BinaryOp, UnaryOp, View } from '../backend';
import type { DType } from '../../tensor/dtype';
import { numel } from '../../tensor/shape';
import type { GpuBackend } from './backend';
import { float64Error } from './buffer';
import { isNaNExpr, layoutKey, store, viewOffset } from './codegen';
import { GELU_TANH_C, INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI } from '../cpu/math';


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
  // NaN passes through, as on cpu and in PyTorch (written as a NaN test: see clamp)
  relu: `(${isNaNExpr('v')} || v > 0 ? v : 0)`,
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
  // NaN passes through, as on cpu (a shader compiler may turn the ternaries into min/max, which drop it)
  clamp: `(${isNaNExpr('v')} ? v : ((v < p0 ? p0 : v) > p1 ? p1 : (v < p0 ? p0 : v)))`,
  inRange: '(v >= p0 && v <= p1 ? 1 : 0)',
};

export const BINARY_SOURCE: Record<BinaryOp, string> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  pow: 'powJs(a, b)',
  // NaN propagates, as torch.maximum's does (GLSL's max/min may return the other operand)
  maximum: `(${isNaNExpr('a')} || ${isNaNExpr('b')} ? a + b : (a > b ? a : b))`,
  minimum: `(${isNaNExpr('a')} || ${isNaNExpr('b')} ? a + b : (a < b ? a : b))`,
  eq: '(a == b ? 1 : 0)',
  ne: '(a != b ? 1 : 0)',
  lt: '(a < b ? 1 : 0)',
  le: '(a <= b ? 1 : 0)',
  gt: '(a > b ? 1 : 0)',
  ge: '(a >= b ? 1 : 0)',
};

export function unary(gpu: GpuBackend, op: UnaryOp, x: View, outDtype: DType, params: readonly number[] = []): BackendBuffer {
  if (outDtype === 'float64') throw float64Error();
  const n = numel(x.shape);
  const data = gpu.launch(
    `unary ${op}`,
    n,
    `unary:${op}:${outDtype}:${layoutKey(x)}`,
    () => `function(x, h) {
      ${viewOffset('o', 'this.thread.x', x, 'h[0]')}
      const v = x[o];
      const p0 = h[1];
      const p1 = h[2];
      return ${store(outDtype, UNARY_SOURCE[op])};
    }`,
    [gpu.input(op, x.buffer), gpu.params([x.offset, params[0] ?? 0, params[1] ?? 0])],
  );
  return gpu.wrap(outDtype, n, data);
}

export function binary(gpu: GpuBackend, op: BinaryOp, a: View, b: View, outDtype: DType): BackendBuffer {
  if (outDtype === 'float64') throw float64Error();
  const n = numel(a.shape);
  const data = gpu.launch(
    `binary ${op}`,
    n,
    `binary:${op}:${outDtype}:${layoutKey(a)}:${layoutKey(b)}`,
    () => `function(x, y, h) {
      ${viewOffset('oa', 'this.thread.x', a, 'h[0]')}
      ${viewOffset('ob', 'this.thread.x', b, 'h[1]')}
      const a = x[oa];
      const b = y[ob];
      return ${store(outDtype, BINARY_SOURCE[op])};
    }`,
    [gpu.input(op, a.buffer), gpu.input(op, b.buffer), gpu.params([a.offset, b.offset])],
  );
  return gpu.wrap(outDtype, n, data);
}

export function where(gpu: GpuBackend, cond: View, a: View, b: View, outDtype: DType): BackendBuffer {
  if (outDtype === 'float64') throw float64Error();
  const n = numel(cond.shape);
  const data = gpu.launch(
    'where',
    n,
    `where:${outDtype}:${layoutKey(cond)}:${layoutKey(a)}:${layoutKey(b)}`,
    () => `function(c, x, y, h) {
      ${viewOffset('oc', 'this.thread.x', cond, 'h[0]')}
      ${viewOffset('oa', 'this.thread.x', a, 'h[1]')}
      ${viewOffset('ob', 'this.thread.x', b, 'h[2]')}
      if (c[oc] != 0) { return ${store(outDtype, 'x[oa]')}; }
      return ${store(outDtype, 'y[ob]')};
    }`,
    [gpu.input('where', cond.buffer), gpu.input('where', a.buffer), gpu.input('where', b.buffer), gpu.params([cond.offset, a.offset, b.offset])],
  );
  return gpu.wrap(outDtype, n, data);
}
