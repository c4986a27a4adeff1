/**
 * Elementwise ops: unary functions, binary arithmetic with broadcasting, comparisons, where,
 * clamp, casts. Each op's backward sits right under its forward. Backward closures capture
 * shapes and dtypes only; tensors they need come through `saved`, so the engine can free them.
 */
import type { BinaryOp, UnaryOp } from '../../kernels/backend';
import { kernels } from '../../kernels/registry';
import { AutogradError, DTypeError, ValueError, fmtShape } from '../../errors';
import { floatingOf, isFloating, promoteTypes, promoteWithScalar, type DType, isHalf } from '../../tensor/dtype';
import { broadcastShapes, broadcastStrides, type Shape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { scalarTensor, zeros } from '../../tensor/creation';
import { checkCastToInt32 } from '../../tensor/int32';
import { notSaved, record } from '../node';
import { isGradEnabled } from '../grad-mode';
import { sumTo } from './reduce';

export type TensorLike = Tensor | number;

/** A tensor read as if expanded to `shape` (stride 0 on broadcast dims; no copy). */
export function broadcastView(t: Tensor, shape: Shape) {
  return { buffer: t.buffer, shape, strides: broadcastStrides(t.shape, t.strides, shape), offset: t.offset };
}

function checkTensorArg(op: string, x: unknown, which: string): void {
  if (!(x instanceof Tensor) && typeof x !== 'number') {
    throw new ValueError(op, `${which} must be a Tensor or a number, got ${x === null ? 'null' : typeof x}`);
  }
}

/** Turns (tensor | number) operands into tensors, applying PyTorch's promotion; returns the result dtype. */
export function operands(op: string, a: TensorLike, b: TensorLike): [Tensor, Tensor, DType] {
  checkTensorArg(op, a, 'the first operand');
  checkTensorArg(op, b, 'the second operand');
  if (a instanceof Tensor && b instanceof Tensor) {
    if (a.backend !== b.backend) {
      throw new ValueError(op, `operands live on different backends (${a.backend} and ${b.backend}); move one of them first`);
    }
    return [a, b, promoteTypes(a.dtype, b.dtype)];
  }
  // The number keeps at least float32 precision (as PyTorch's wrapped numbers do): as a float16
  // tensor, x_f16 / 1e5 would divide by infinity. The result still has the tensor's dtype.
  const scalar = (v: number, dtype: DType) => scalarTensor(v, isHalf(dtype) ? 'float32' : dtype, op);
  if (a instanceof Tensor) {
    const dtype = promoteWithScalar(a.dtype, b as number);
    return [a, scalar(b as number, dtype), dtype];
  }
  if (b instanceof Tensor) {
    const dtype = promoteWithScalar(b.dtype, a);
    return [scalar(a, dtype), b, dtype];
  }
  return [scalarTensor(a, 'float32', op), scalarTensor(b, 'float32', op), 'float32'];
}

function binaryKernel(op: BinaryOp, name: string, a: Tensor, b: Tensor, outDtype: DType): Tensor {
  const shape = broadcastShapes(name, a.shape, b.shape);
  return new Tensor(kernels().binary(op, broadcastView(a, shape), broadcastView(b, shape), outDtype), shape);
}

function unaryKernel(op: UnaryOp, x: Tensor, outDtype: DType, params?: number[]): Tensor {
  return new Tensor(kernels().unary(op, x, outDtype, params), x.shape);
}

// ------------------------------------------------------------------ arithmetic

export function add(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, dtype] = operands('add', a, b);
  const xs = x.shape;
  const ys = y.shape;
  const out = binaryKernel('add', 'add', x, y, dtype);
  // d(x+y)/dx = 1, d(x+y)/dy = 1; broadcast dims are summed back
  return record('add', [x, y], out, [], (g, _, needs) => [needs[0] ? sumTo(g, xs) : null, needs[1] ? sumTo(g, ys) : null]);
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, dtype] = operands('sub', a, b);
  const xs = x.shape;
  const ys = y.shape;
  const out = binaryKernel('sub', 'sub', x, y, dtype);
  return record('sub', [x, y], out, [], (g, _, needs) => [needs[0] ? sumTo(g, xs) : null, needs[1] ? sumTo(neg(g), ys) : null]);
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, dtype] = operands('mul', a, b);
  const xs = x.shape;
  const ys = y.shape;
  const out = binaryKernel('mul', 'mul', x, y, dtype);
  // d(xy)/dx = y, d(xy)/dy = x: keep an operand only if the other one's gradient will read it
  // (x·0.125 with a constant keeps nothing big; an activation times a frozen weight keeps the weight)
  return record('mul', [x, y], out, [y.requiresGrad ? x : notSaved(), x.requiresGrad ? y : notSaved()], (g, [x, y], needs) => [
    needs[0] ? sumTo(mul(g, y), xs) : null,
    needs[1] ? sumTo(mul(g, x), ys) : null,
  ]);
}

/** True division: integer inputs give float32, as in PyTorch. */
export function div(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, dtype] = operands('div', a, b);
  const xs = x.shape;
  const ys = y.shape;
  const out = binaryKernel('div', 'div', x, y, floatingOf(dtype));
  // d(x/y)/dx = 1/y, d(x/y)/dy = -x/y²: x is read only for y's gradient
  return record('div', [x, y], out, [y.requiresGrad ? x : notSaved(), y], (g, [x, y], needs) => [
    needs[0] ? sumTo(div(g, y), xs) : null,
    needs[1] ? sumTo(neg(div(mul(g, x), mul(y, y))), ys) : null,
  ]);
}

export function neg(a: Tensor): Tensor {
  const out = unaryKernel('neg', a, a.dtype);
  return record('neg', [a], out, [], (g) => [neg(g)]);
}

/** x ** p for a number p, or elementwise x ** y for a tensor exponent (broadcasting). */
export function pow(a: TensorLike, p: TensorLike): Tensor {
  if (a instanceof Tensor && typeof p === 'number') {
    if (a.dtype === 'int32' && Number.isInteger(p) && p < 0) {
      // 2 ** -1 is 0.5, which int32 would store as 0: PyTorch refuses, and so do we
      throw new ValueError(
        'pow',
        `Integers to negative integer powers are not allowed: an int32 tensor of shape ${fmtShape(a.shape)} to the power ${p}; ` +
          `cast it to a floating dtype first (.to('float32')), or use a non-integer exponent`,
      );
    }
    const out = unaryKernel('powScalar', a, promoteWithScalar(a.dtype, p), [p]);
    // d(xᵖ)/dx = p·xᵖ⁻¹; for p = 0 the gradient is 0 (as PyTorch), not 0·x⁻¹ = NaN at x = 0
    return record('pow', [a], out, [a], (g, [x]) => [p === 0 ? zeros(g.shape, { dtype: g.dtype }) : mul(g, mul(pow(x, p - 1), p))]);
  }
  const [x, y, dtype] = operands('pow', a, p);
  const xs = x.shape;
  const ys = y.shape;
  const out = binaryKernel('pow', 'pow', x, y, dtype);
  // d(xʸ)/dx = y·xʸ⁻¹, defined as 0 where y = 0 (as PyTorch; else 0·0⁻¹ = NaN at x = 0);
  // d(xʸ)/dy = xʸ·ln x, defined as 0 where x = 0 and y >= 0 (as PyTorch)
  return record('pow', [x, y], out, [x, y, out], (g, [x, y, out], needs) => [
    needs[0] ? sumTo(mul(g, where(eq(y, 0), 0, mul(y, pow(x, sub(y, 1))))), xs) : null,
    needs[1] ? sumTo(mul(g, where(logicalAnd(eq(x, 0), ge(y, 0)), 0, mul(out, log(x)))), ys) : null,
  ]);
}

// ------------------------------------------------------------------ unary math

function floatUnary(op: UnaryOp, a: Tensor): Tensor {
  return unaryKernel(op, a, floatingOf(a.dtype));
}

export function exp(a: Tensor): Tensor {
  const out = floatUnary('exp', a);
  return record('exp', [a], out, [out], (g, [y]) => [mul(g, y)]); // (eˣ)' = eˣ
}

export function log(a: Tensor): Tensor {
  const out = floatUnary('log', a);
  return record('log', [a], out, [a], (g, [x]) => [div(g, x)]); // (ln x)' = 1/x
}

export function sqrt(a: Tensor): Tensor {
  const out = floatUnary('sqrt', a);
  return record('sqrt', [a], out, [out], (g, [y]) => [div(g, mul(y, 2))]); // (√x)' = 1/(2√x)
}

export function rsqrt(a: Tensor): Tensor {
  const out = floatUnary('rsqrt', a);
  // (x^-½)' = -½·x^-3/2 = -½·y³
  return record('rsqrt', [a], out, [out], (g, [y]) => [mul(g, mul(pow(y, 3), -0.5))]);
}

export function abs(a: Tensor): Tensor {
  const out = unaryKernel('abs', a, a.dtype);
  return record('abs', [a], out, [a], (g, [x]) => [mul(g, sign(x))]); // |x|' = sign(x), 0 at 0
}

/** -1, 0 or 1 (not differentiable: its gradient is zero almost everywhere). */
export function sign(a: Tensor): Tensor {
  return unaryKernel('sign', a, a.dtype);
}

export function sin(a: Tensor): Tensor {
  const out = floatUnary('sin', a);
  return record('sin', [a], out, [a], (g, [x]) => [mul(g, cos(x))]);
}

export function cos(a: Tensor): Tensor {
  const out = floatUnary('cos', a);
  return record('cos', [a], out, [a], (g, [x]) => [neg(mul(g, sin(x)))]);
}

export function tanh(a: Tensor): Tensor {
  const out = floatUnary('tanh', a);
  return record('tanh', [a], out, [out], (g, [y]) => [mul(g, sub(1, mul(y, y)))]); // 1 - tanh²
}

export function sigmoid(a: Tensor): Tensor {
  const out = floatUnary('sigmoid', a);
  return record('sigmoid', [a], out, [out], (g, [y]) => [mul(g, mul(y, sub(1, y)))]); // σ(1-σ)
}

export function relu(a: Tensor): Tensor {
  const out = unaryKernel('relu', a, a.dtype);
  // the gradient passes where x > 0 and where x is NaN (relu keeps NaN, as PyTorch's threshold
  // backward: it zeroes where x <= 0 only)
  return record('relu', [a], out, [out], (g, [y]) => [where(le(y, 0), 0, g)]);
}

/** GELU, exact (x·Φ(x)) or with PyTorch's tanh approximation (`approximate: 'tanh'`). */
export function gelu(a: Tensor, options: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  const approximate = options.approximate ?? 'none';
  if (approximate !== 'none' && approximate !== 'tanh') {
    throw new ValueError('gelu', `approximate must be 'none' or 'tanh', got '${String(approximate)}'`);
  }
  const tanhForm = approximate === 'tanh';
  const out = floatUnary(tanhForm ? 'geluTanh' : 'gelu', a);
  // the derivative kernels sit beside the forward formulas in kernels/cpu/math.ts
  return record('gelu', [a], out, [a], (g, [x]) => {
    if (!isGradEnabled()) return [mul(g, floatUnary(tanhForm ? 'geluTanhGrad' : 'geluGrad', x))];
    // createGraph: the derivative must itself be differentiable
    if (tanhForm) throw new AutogradError('gelu', "second derivatives of gelu with approximate: 'tanh' are not supported; use the exact form");
    return [mul(g, geluDerivative(x))];
  });
}

/** gelu'(x) = Φ(x) + x·φ(x) as a recorded op; its own derivative is φ(x)·(2 - x²). */
function geluDerivative(x: Tensor): Tensor {
  const out = floatUnary('geluGrad', x);
  return record('geluGrad', [x], out, [x], (g, [x]) => {
    const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return [mul(g, mul(pdf, sub(2, mul(x, x))))];
  });
}

/** SiLU (swish): x·σ(x). */
export function silu(a: Tensor): Tensor {
  const out = floatUnary('silu', a);
  // silu'(x) = σ(x)·(1 + x·(1 - σ(x))); composed from recorded ops when the backward is recorded
  return record('silu', [a], out, [a], (g, [x]) => {
    if (!isGradEnabled()) return [mul(g, floatUnary('siluGrad', x))];
    const s = sigmoid(x);
    return [mul(g, mul(s, add(1, mul(x, sub(1, s)))))];
  });
}

/** Clamps into [min, max] (either bound may be omitted); the gradient passes where min <= x <= max. */
export function clamp(a: Tensor, min?: number | null, max?: number | null): Tensor {
  const lo = min ?? -Infinity;
  const hi = max ?? Infinity;
  if (min == null && max == null) throw new ValueError('clamp', 'at least one of min and max must be given');
  if (Number.isNaN(lo) || Number.isNaN(hi)) throw new ValueError('clamp', 'min and max must not be NaN');
  const out = unaryKernel('clamp', a, promoteWithScalar(promoteWithScalar(a.dtype, lo === -Infinity ? 0 : lo), hi === Infinity ? 0 : hi), [lo, hi]);
  return record('clamp', [a], out, [a], (g, [x]) => [mul(g, unaryKernel('inRange', x, g.dtype, [lo, hi]))]);
}

/** Elementwise max; where the operands tie, each gets half the gradient (as PyTorch). */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return minMax('maximum', a, b);
}

/** Elementwise min; ties split the gradient. */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return minMax('minimum', a, b);
}

function minMax(op: 'maximum' | 'minimum', a: TensorLike, b: TensorLike): Tensor {
  const [x, y, dtype] = operands(op, a, b);
  const xs = x.shape;
  const ys = y.shape;
  const out = binaryKernel(op, op, x, y, dtype);
  return record(op, [x, y], out, [x, y], (g, [x, y], needs) => {
    const xWins = op === 'maximum' ? gt(x, y) : lt(x, y);
    const share = add(xWins, mul(eq(x, y), 0.5)); // 1 where x wins, ½ on ties, 0 where y wins
    return [needs[0] ? sumTo(mul(g, share), xs) : null, needs[1] ? sumTo(mul(g, sub(1, share)), ys) : null];
  });
}

// ------------------------------------------------------------------ comparisons and selection

function compare(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(op, a, b);
  return binaryKernel(op, op, x, y, 'int32');
}

/** Comparisons return int32 0/1 masks (blockgrad has no bool dtype). They are not differentiable. */
export const eq = (a: TensorLike, b: TensorLike) => compare('eq', a, b);
export const ne = (a: TensorLike, b: TensorLike) => compare('ne', a, b);
export const lt = (a: TensorLike, b: TensorLike) => compare('lt', a, b);
export const le = (a: TensorLike, b: TensorLike) => compare('le', a, b);
export const gt = (a: TensorLike, b: TensorLike) => compare('gt', a, b);
export const ge = (a: TensorLike, b: TensorLike) => compare('ge', a, b);

function logicalAnd(a: Tensor, b: Tensor): Tensor {
  return mul(ne(a, 0), ne(b, 0));
}

/** cond ? a : b elementwise, broadcasting all three; cond is any tensor (nonzero = true). */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  if (!(cond instanceof Tensor)) throw new ValueError('where', 'cond must be a Tensor (nonzero means true)');
  const shapeOf = (v: TensorLike) => (v instanceof Tensor ? v.shape : []);
  // validate the shapes before operands() allocates 0-d tensors for number operands
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, shapeOf(a)), shapeOf(b));
  const [x, y, dtype] = operands('where', a, b);
  const xs = x.shape;
  const ys = y.shape;
  const out = new Tensor(
    kernels().where(broadcastView(cond, shape), broadcastView(x, shape), broadcastView(y, shape), dtype),
    shape,
  );
  return record('where', [null, x, y], out, [cond], (g, [c], needs) => [
    null,
    needs[1] ? sumTo(where(c, g, 0), xs) : null,
    needs[2] ? sumTo(where(c, 0, g), ys) : null,
  ]);
}

// ------------------------------------------------------------------ dtype

/**
 * Casts to another dtype; the gradient is cast back. Casting to int32 truncates toward zero and
 * is not differentiable; a value int32 cannot hold (NaN, ±Infinity, beyond ±2^31) is a
 * ValueError, where PyTorch's behaviour is undefined (see tensor/int32.ts).
 */
/** `t` itself when it already has `dtype`, else cast(t, dtype): a gradient brought back to its input's dtype. */
export function castTo(t: Tensor, dtype: DType): Tensor {
  return t.dtype === dtype ? t : cast(t, dtype);
}

export function cast(a: Tensor, dtype: DType): Tensor {
  if (a.dtype === dtype) return a;
  const from = a.dtype;
  if (dtype === 'int32') checkCastToInt32('to', a);
  const out = new Tensor(kernels().copy(a, dtype), a.shape);
  if (!isFloating(dtype)) return out;
  return record('cast', [a], out, [], (g) => [cast(g, from)]);
}

/** Fails with a DTypeError naming the op unless `t` is floating. */
export function requireFloating(op: string, t: Tensor, what = 'input'): void {
  if (!isFloating(t.dtype)) {
    throw new DTypeError(op, `${what} must be a floating tensor, got ${t.dtype} of shape ${fmtShape(t.shape)}`);
  }
}
