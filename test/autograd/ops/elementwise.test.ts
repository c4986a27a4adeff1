/**
 * Elementwise ops: forward values against numbers computed here with Math.*, float64 gradchecks
 * over plain, broadcast, 0-d and scalar operands, dtype promotion, and the gradient conventions
 * PyTorch uses at the awkward points (pow at x = 0, ties in maximum/minimum, clamp bounds).
 */
import {
  Generator,
  Tensor,
  abs,
  add,
  cast,
  clamp,
  cos,
  div,
  eq,
  exp,
  ge,
  gelu,
  gradcheck,
  gt,
  le,
  log,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  pow,
  relu,
  rsqrt,
  sigmoid,
  silu,
  sin,
  sqrt,
  sub,
  sum,
  tanh,
  tensor,
  where,
  type DType,
  type TensorLike,
} from '../../../src';
import { flat, uniformLeaf } from '../../helpers';

// ------------------------------------------------------------------ helpers

type Shape = number[];

const numelOf = (s: Shape) => s.reduce((a, b) => a * b, 1);


/** A float64 leaf requiring grad with values in ±[0.5, 1.5) (safe denominators). */
function awayFromZero(shape: Shape, seed: number): Tensor {
  const g = new Generator(seed);
  const values = Array.from({ length: numelOf(shape) }, () => (g.random() < 0.5 ? -1 : 1) * (0.5 + g.random()));
  return fromValues(values, shape);
}

function fromValues(values: number[], shape: Shape, requiresGrad = true): Tensor {
  const t = tensor(Float64Array.from(values), { dtype: 'float64' }).reshape(shape);
  return t.detach().requiresGrad_(requiresGrad);
}

/** Broadcast shape computed independently of the library. */
function refBroadcastShape(shapes: Shape[]): Shape {
  const n = Math.max(...shapes.map((s) => s.length));
  const out: Shape = [];
  for (let i = 0; i < n; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[i - (n - s.length)] ?? 1;
      if (v !== 1) {
        if (d !== 1 && d !== v) throw new Error('not broadcastable');
        d = v;
      }
    }
    out.push(d);
  }
  return out;
}

/** out[i] = f(inputs at the broadcast position of i), written as a plain loop over indices. */
function refBroadcast(shapes: Shape[], data: number[][], f: (...v: number[]) => number): { shape: Shape; values: number[] } {
  const shape = refBroadcastShape(shapes);
  const n = numelOf(shape);
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    // multi-index of i in `shape`
    const idx: number[] = [];
    let r = i;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r = Math.floor(r / shape[d]);
    }
    const args = shapes.map((s, k) => {
      let pos = 0;
      for (let d = 0; d < s.length; d++) {
        const j = idx[d + shape.length - s.length];
        pos = pos * s[d] + (s[d] === 1 ? 0 : j);
      }
      return data[k][pos];
    });
    values.push(f(...args));
  }
  return { shape, values };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e)) {
      expect(a).toBeNaN();
      continue;
    }
    if (!Number.isFinite(e)) {
      expect(a).toBe(e);
      continue;
    }
    if (Math.abs(a - e) > tol * Math.max(1, Math.abs(e))) {
      throw new Error(`element ${i}: got ${a}, expected ${e} (tol ${tol})`);
    }
  }
}

function check(fn: (...x: Tensor[]) => Tensor, inputs: Tensor[]): void {
  expect(gradcheck(fn, inputs).ok).toBe(true);
}

// ------------------------------------------------------------------ binary arithmetic

type BinOp = (a: TensorLike, b: TensorLike) => Tensor;
interface BinCase {
  name: string;
  op: BinOp;
  ref: (x: number, y: number) => number;
  /** input makers for the left and right operand */
  left: (s: Shape, seed: number) => Tensor;
  right: (s: Shape, seed: number) => Tensor;
}

const any = (s: Shape, seed: number) => uniformLeaf(s, seed);
const positive = (s: Shape, seed: number) => uniformLeaf(s, seed, 0.5, 2);

const BINARY_CASES: BinCase[] = [
  { name: 'add', op: add, ref: (x, y) => x + y, left: any, right: any },
  { name: 'sub', op: sub, ref: (x, y) => x - y, left: any, right: any },
  { name: 'mul', op: mul, ref: (x, y) => x * y, left: any, right: any },
  { name: 'div', op: div, ref: (x, y) => x / y, left: any, right: awayFromZero },
  { name: 'pow', op: pow, ref: (x, y) => Math.pow(x, y), left: positive, right: any },
  { name: 'maximum', op: maximum, ref: (x, y) => Math.max(x, y), left: any, right: any },
  { name: 'minimum', op: minimum, ref: (x, y) => Math.min(x, y), left: any, right: any },
];

const SHAPE_PAIRS: [Shape, Shape][] = [
  [[2, 3], [2, 3]],
  [[3, 1], [1, 4]],
  [[2, 3, 4], [4]],
  [[4], [2, 3, 4]],
  [[2, 1, 3], [4, 1]],
  [[2, 3], []],
  [[], [2, 3]],
  [[], []],
];

describe.each(BINARY_CASES)('$name', ({ name, op, ref, left, right }) => {
  test.each(SHAPE_PAIRS)('forward and gradcheck for %j with %j', (sa, sb) => {
    const a = left(sa, 11);
    const b = right(sb, 12);
    const out = op(a, b);
    const expected = refBroadcast([sa, sb], [flat(a), flat(b)], ref);
    expect(out.shape).toEqual(expected.shape);
    expect(out.dtype).toBe('float64');
    expectClose(flat(out), expected.values);
    check(op, [a, b]);
  });

  test('a JS number on either side', () => {
    const a = left([2, 3], 21);
    const b = right([2, 3], 22);
    const sA = name === 'pow' ? 1.5 : -0.75;
    const sB = name === 'div' ? 1.25 : -0.75;
    const right1 = op(a, sB);
    expectClose(flat(right1), flat(a).map((x) => ref(x, sB)));
    expect(right1.dtype).toBe('float64');
    const left1 = op(sA, b);
    expectClose(flat(left1), flat(b).map((y) => ref(sA, y)));
    expect(left1.dtype).toBe('float64');
    check((x) => op(x, sB), [a]);
    check((y) => op(sA, y), [b]);
  });

  test('only the input that requires grad gets a gradient', () => {
    const a = left([3, 1], 31);
    const b = right([1, 4], 32).detach();
    sum(op(a, b)).backward();
    expect(a.grad?.shape).toEqual([3, 1]);
    expect(b.grad).toBeNull();
  });

  test('inputs read through a transposed (non-contiguous) view', () => {
    const a = left([3, 2], 41);
    const b = right([2, 3], 42);
    const at = a.transpose(0, 1);
    expect(at.isContiguous()).toBe(false);
    const out = op(at, b);
    const atValues = [0, 1].flatMap((i) => [0, 1, 2].map((j) => flat(a)[j * 2 + i]));
    expectClose(flat(out), refBroadcast([[2, 3], [2, 3]], [atValues, flat(b)], ref).values);
    check((x, y) => op(x.transpose(0, 1), y), [a, b]);
  });
});

test('methods call the same ops', () => {
  const a = tensor([1, 2, 3], { dtype: 'float64' });
  const b = tensor([4, 5, 6], { dtype: 'float64' });
  expect(a.add(b).toArray()).toEqual([5, 7, 9]);
  expect(a.sub(b).toArray()).toEqual([-3, -3, -3]);
  expect(a.mul(b).toArray()).toEqual([4, 10, 18]);
  expect(b.div(a).toArray()).toEqual([4, 2.5, 2]);
  expect(a.pow(2).toArray()).toEqual([1, 4, 9]);
  expect(a.pow(b).toArray()).toEqual([1, 32, 729]);
  expect(a.neg().toArray()).toEqual([-1, -2, -3]);
  expect(a.maximum(2).toArray()).toEqual([2, 2, 3]);
  expect(a.minimum(2).toArray()).toEqual([1, 2, 2]);
});

test('hand-computed gradients of div', () => {
  const a = tensor([[1], [2]], { dtype: 'float64', requiresGrad: true }); // [2,1]
  const b = tensor([2, 4], { dtype: 'float64', requiresGrad: true }); // [2]
  sum(div(a, b)).backward();
  // d/da_i = Σ_j 1/b_j = 0.5 + 0.25
  expect(a.grad?.toArray()).toEqual([[0.75], [0.75]]);
  // d/db_j = -Σ_i a_i / b_j² = -(1 + 2)/b_j²
  expect(b.grad?.toArray()).toEqual([-3 / 4, -3 / 16]);
});

// ------------------------------------------------------------------ neg and pow

describe('neg', () => {
  test.each([[[]], [[5]], [[2, 3]]] as [Shape][])('shape %j', (s) => {
    const a = uniformLeaf(s, 3);
    expectClose(flat(neg(a)), flat(a).map((x) => -x));
    check(neg, [a]);
  });
});

describe('pow with a scalar exponent', () => {
  test.each([2, 3, 1, -1, 0.5, -1.5, 2.5])('x ** %p: values and gradcheck', (p) => {
    const a = Number.isInteger(p) && p > 0 ? awayFromZero([2, 3], 5) : uniformLeaf([2, 3], 5, 0.5, 2);
    const out = pow(a, p);
    expectClose(flat(out), flat(a).map((x) => Math.pow(x, p)));
    check((x) => pow(x, p), [a]);
  });

  test('0-d base', () => {
    const a = fromValues([1.7], []);
    expect(pow(a, 3).item()).toBeCloseTo(1.7 ** 3, 12);
    check((x) => pow(x, 3), [a]);
  });

  test('negative base with an integer exponent', () => {
    const a = tensor([-2], { dtype: 'float64', requiresGrad: true });
    const y = pow(a, 3);
    expect(y.toArray()).toEqual([-8]);
    sum(y).backward();
    expect(a.grad?.toArray()).toEqual([12]);
  });

  test('at x = 0: the gradient is p·0^(p-1), and 0 for p = 0 (as PyTorch)', () => {
    const grads = [0, 1, 2, 3].map((p) => {
      const x = tensor([0, 1.5], { dtype: 'float64', requiresGrad: true });
      sum(pow(x, p)).backward();
      return x.grad?.toArray();
    });
    expect(grads[0]).toEqual([0, 0]);
    expect(grads[1]).toEqual([1, 1]);
    expect(grads[2]).toEqual([0, 3]);
    expect(grads[3]).toEqual([0, 3 * 1.5 * 1.5]);
    expect(pow(tensor([0], { dtype: 'float64' }), 0).toArray()).toEqual([1]);
  });
});

describe('pow with a tensor exponent', () => {
  test('at x = 0 (PyTorch: d/dx is 0 where y = 0; d/dy is 0 where x = 0 and y >= 0)', () => {
    const x = tensor([0, 0, 0, 2, 0], { dtype: 'float64', requiresGrad: true });
    const y = tensor([2, 1, 0, 0, 0.5], { dtype: 'float64', requiresGrad: true });
    const out = pow(x, y);
    expect(out.toArray()).toEqual([0, 0, 1, 1, 0]);
    sum(out).backward();
    expect(x.grad?.toArray()).toEqual([0, 1, 0, 0, Infinity]);
    const gy = flat(y.grad as Tensor);
    expect(gy.slice(0, 3)).toEqual([0, 0, 0]);
    expect(gy[3]).toBeCloseTo(Math.log(2), 14);
    expect(gy[4]).toBe(0);
  });

  test('a number base and a tensor exponent', () => {
    const y = uniformLeaf([2, 2], 8);
    expectClose(flat(pow(2, y)), flat(y).map((v) => 2 ** v));
    check((t) => pow(2, t), [y]);
  });
});

// ------------------------------------------------------------------ unary math

interface UnaryCase {
  name: string;
  op: (x: Tensor) => Tensor;
  ref: (x: number) => number;
  make: (s: Shape, seed: number) => Tensor;
}

const sigmoidRef = (x: number) => 1 / (1 + Math.exp(-x));
const geluTanhRef = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

const UNARY_CASES: UnaryCase[] = [
  { name: 'exp', op: exp, ref: Math.exp, make: any },
  { name: 'log', op: log, ref: Math.log, make: positive },
  { name: 'sqrt', op: sqrt, ref: Math.sqrt, make: positive },
  { name: 'rsqrt', op: rsqrt, ref: (x) => 1 / Math.sqrt(x), make: positive },
  { name: 'abs', op: abs, ref: Math.abs, make: awayFromZero },
  { name: 'sin', op: sin, ref: Math.sin, make: any },
  { name: 'cos', op: cos, ref: Math.cos, make: any },
  { name: 'tanh', op: tanh, ref: Math.tanh, make: any },
  { name: 'sigmoid', op: sigmoid, ref: sigmoidRef, make: any },
  { name: 'relu', op: relu, ref: (x) => Math.max(x, 0), make: awayFromZero },
  { name: 'gelu (tanh)', op: (x) => gelu(x, { approximate: 'tanh' }), ref: geluTanhRef, make: any },
  { name: 'silu', op: silu, ref: (x) => x * sigmoidRef(x), make: any },
];

describe.each(UNARY_CASES)('$name', ({ op, ref, make }) => {
  test.each([[[]], [[7]], [[2, 3]], [[2, 1, 3]]] as [Shape][])('values and gradcheck, shape %j', (s) => {
    const a = make(s, 101);
    const out = op(a);
    expect(out.shape).toEqual(s);
    expect(out.dtype).toBe('float64');
    expectClose(flat(out), flat(a).map(ref));
    check(op, [a]);
  });

  test('through a non-contiguous view', () => {
    const a = make([3, 4], 102);
    const v = a.transpose(0, 1).slice(0, 1, 4, 2); // rows 1 and 3 of the transpose: [2,3]
    const vValues = [1, 3].flatMap((i) => [0, 1, 2].map((j) => flat(a)[j * 4 + i]));
    expectClose(flat(op(v)), vValues.map(ref));
    check((x) => op(x.transpose(0, 1).slice(0, 1, 4, 2)), [a]);
  });

  test('float32 input gives float32 output', () => {
    const a = tensor([0.5, 1.5], { dtype: 'float32' });
    const out = op(a);
    expect(out.dtype).toBe('float32');
    expectClose(flat(out), [0.5, 1.5].map((x) => Math.fround(ref(x))), 1e-6);
  });
});

test('relu at 0 has gradient 0; abs at 0 has gradient 0', () => {
  const x = tensor([-1, 0, 2], { dtype: 'float64', requiresGrad: true });
  sum(relu(x)).backward();
  expect(x.grad?.toArray()).toEqual([0, 0, 1]);
  const y = tensor([-1, 0, 2], { dtype: 'float64', requiresGrad: true });
  sum(abs(y)).backward();
  expect(y.grad?.toArray()).toEqual([-1, 0, 1]);
});

test('sigmoid and silu do not overflow at large |x|', () => {
  const x = tensor([-800, -40, 40, 800], { dtype: 'float64' });
  expectClose(flat(sigmoid(x)), [0, sigmoidRef(-40), 1, 1]);
  expectClose(flat(silu(x)), [-0, -40 * sigmoidRef(-40), 40, 800]);
  expect(flat(sigmoid(x)).every(Number.isFinite)).toBe(true);
});

test('log, sqrt, rsqrt at the edges of their domains', () => {
  const x = tensor([0, -1, 4], { dtype: 'float64' });
  const l = flat(log(x));
  expect(l[0]).toBe(-Infinity);
  expect(l[1]).toBeNaN();
  expect(l[2]).toBeCloseTo(Math.log(4), 14);
  expect(flat(sqrt(x)).slice(0, 1)).toEqual([0]);
  expect(flat(rsqrt(x))[0]).toBe(Infinity);
  expect(flat(rsqrt(x))[2]).toBe(0.5);
});

describe('gelu (exact)', () => {
  test('reference values', () => {
    // x·Φ(x) with Φ from tables: Φ(1) = 0.8413447460685429, Φ(2) = 0.9772498680518208,
    // Φ(-1) = 0.15865525393145707, Φ(0.5) = 0.6914624612740131, Φ(3) = 0.9986501019683699
    const x = tensor([1, -0.5, 0, 2, -1, 0.5, 3, 10, -10], { dtype: 'float64' });
    expectClose(flat(gelu(x)), [
      0.8413447460685429,
      -0.15426876936299347,
      0,
      1.9544997361036416,
      -0.15865525393145707,
      0.34573123063700656,
      2.9959503059051097,
      10,
      0,
    ]);
    expect(gelu(x, { approximate: 'none' }).toArray()).toEqual(gelu(x).toArray());
  });

  test('tanh approximation reference value', () => {
    expect(gelu(tensor(1, { dtype: 'float64' }), { approximate: 'tanh' }).item()).toBeCloseTo(0.8411919906082768, 14);
  });

  test.each([[[]], [[7]], [[2, 3]]] as [Shape][])('gradcheck, shape %j', (s) => {
    const a = uniformLeaf(s, 77, -4, 4);
    check((x) => gelu(x), [a]);
    check((x) => gelu(x, { approximate: 'tanh' }), [a]);
  });

  test('hand-computed gradient: gelu\'(x) = Φ(x) + x·φ(x)', () => {
    const x = tensor([1], { dtype: 'float64', requiresGrad: true });
    sum(gelu(x)).backward();
    expect(x.grad?.item()).toBeCloseTo(0.8413447460685429 + Math.exp(-0.5) / Math.sqrt(2 * Math.PI), 12);
  });

  test('rejects an unknown approximation', () => {
    expect(() => gelu(tensor([1]), { approximate: 'erf' as 'tanh' })).toThrow(/gelu/);
  });
});

// ------------------------------------------------------------------ clamp

describe('clamp', () => {
  const cases: [string, number | null | undefined, number | null | undefined][] = [
    ['min only', -0.5, undefined],
    ['max only', null, 0.5],
    ['both', -0.5, 0.5],
  ];
  test.each(cases)('%s: values and gradcheck', (_, lo, hi) => {
    for (const s of [[], [9], [3, 4]] as Shape[]) {
      const a = uniformLeaf(s, 55);
      const out = clamp(a, lo, hi);
      expectClose(
        flat(out),
        flat(a).map((x) => Math.min(Math.max(x, lo ?? -Infinity), hi ?? Infinity)),
      );
      check((x) => clamp(x, lo, hi), [a]);
    }
  });

  test('gradient passes inside and at the bounds, is 0 outside', () => {
    const x = tensor([-2, -1, 0, 1, 2], { dtype: 'float64', requiresGrad: true });
    sum(clamp(x, -1, 1)).backward();
    expect(x.grad?.toArray()).toEqual([0, 1, 1, 1, 0]);
  });

  test('min greater than max gives max everywhere (as PyTorch)', () => {
    const x = tensor([-2, 0, 2], { dtype: 'float64' });
    expect(clamp(x, 1, 0).toArray()).toEqual([0, 0, 0]);
  });

  test('dtypes: int32 with integer bounds stays int32, with a fractional bound becomes float32', () => {
    const x = tensor([-3, 0, 3], { dtype: 'int32' });
    const a = clamp(x, -1, 1);
    expect(a.dtype).toBe('int32');
    expect(a.toArray()).toEqual([-1, 0, 1]);
    const b = clamp(x, -0.5);
    expect(b.dtype).toBe('float32');
    expect(b.toArray()).toEqual([-0.5, 0, 3]);
  });

  test('needs a bound', () => {
    expect(() => clamp(tensor([1]))).toThrow(/clamp/);
  });
});

// ------------------------------------------------------------------ maximum / minimum ties

describe('maximum and minimum', () => {
  test('ties split the gradient in half between the operands', () => {
    const a = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const b = tensor([1, 5, 0], { dtype: 'float64', requiresGrad: true });
    sum(maximum(a, b)).backward();
    expect(a.grad?.toArray()).toEqual([0.5, 0, 1]);
    expect(b.grad?.toArray()).toEqual([0.5, 1, 0]);

    const c = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const d = tensor([1, 5, 0], { dtype: 'float64', requiresGrad: true });
    sum(minimum(c, d)).backward();
    expect(c.grad?.toArray()).toEqual([0.5, 1, 0]);
    expect(d.grad?.toArray()).toEqual([0.5, 0, 1]);
  });

  test('ties against a broadcast scalar accumulate the halves', () => {
    const a = tensor([2, 2, 3], { dtype: 'float64', requiresGrad: true });
    const b = tensor(2, { dtype: 'float64', requiresGrad: true });
    sum(maximum(a, b)).backward();
    expect(a.grad?.toArray()).toEqual([0.5, 0.5, 1]);
    expect(b.grad?.item()).toBe(1); // 0.5 + 0.5 + 0
  });

  test('NaN propagates', () => {
    const out = maximum(tensor([NaN, 1], { dtype: 'float64' }), tensor([0, NaN], { dtype: 'float64' }));
    expect(flat(out).every(Number.isNaN)).toBe(true);
  });
});

// ------------------------------------------------------------------ where

describe('where', () => {
  const cond = tensor([[1], [0], [3]], { dtype: 'int32' }); // [3,1], nonzero = true

  test('values with cond [3,1], a [1,4], b 0-d', () => {
    const a = uniformLeaf([1, 4], 61);
    const b = uniformLeaf([], 62);
    const out = where(cond, a, b);
    expect(out.shape).toEqual([3, 4]);
    const expected = refBroadcast([[3, 1], [1, 4], []], [flat(cond), flat(a), flat(b)], (c, x, y) => (c !== 0 ? x : y));
    expectClose(flat(out), expected.values);
    check((x, y) => where(cond, x, y), [a, b]);
  });

  test('gradcheck over several broadcast shapes and a scalar operand', () => {
    const c1 = gt(uniformLeaf([2, 3, 4], 63), 0);
    check((x, y) => where(c1, x, y), [uniformLeaf([3, 4], 64), uniformLeaf([2, 1, 4], 65)]);
    check((x) => where(c1, x, 0.5), [uniformLeaf([4], 66)]);
    check((y) => where(c1, -1, y), [uniformLeaf([2, 3, 1], 67)]);
    const c0 = tensor(1, { dtype: 'int32' });
    check((x, y) => where(c0, x, y), [uniformLeaf([2, 2], 68), uniformLeaf([2, 2], 69)]);
  });

  test('hand-computed gradient', () => {
    const a = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const b = tensor([10, 20, 30], { dtype: 'float64', requiresGrad: true });
    const c = tensor([1, 0, 1], { dtype: 'int32' });
    const out = where(c, a, b);
    expect(out.toArray()).toEqual([1, 20, 3]);
    sum(mul(out, tensor([1, 2, 3], { dtype: 'float64' }))).backward();
    expect(a.grad?.toArray()).toEqual([1, 0, 3]);
    expect(b.grad?.toArray()).toEqual([0, 2, 0]);
  });

  test('a float cond counts nonzero as true; the method form is x.where(cond, other)', () => {
    const c = tensor([0.5, 0, -1]);
    const a = tensor([1, 2, 3]);
    expect(where(c, a, 0).toArray()).toEqual([1, 0, 3]);
    expect(a.where(c, -1).toArray()).toEqual([1, -1, 3]);
  });

  test('promotes a and b', () => {
    const c = tensor([1, 0], { dtype: 'int32' });
    const out = where(c, tensor([1, 2], { dtype: 'int32' }), tensor([0.5, 0.5], { dtype: 'float64' }));
    expect(out.dtype).toBe('float64');
    expect(out.toArray()).toEqual([1, 0.5]);
  });
});

// ------------------------------------------------------------------ cast

describe('cast and .to()', () => {
  test('values and dtype', () => {
    const x = tensor([1.5, -2.7, 3.25], { dtype: 'float64' });
    expect(x.to('float32').dtype).toBe('float32');
    expect(x.to('float32').toArray()).toEqual([1.5, Math.fround(-2.7), 3.25]);
    expect(x.to('int32').toArray()).toEqual([1, -2, 3]); // truncation toward zero
    expect(x.to('float16').toArray()).toEqual([1.5, -2.69921875, 3.25]);
    expect(cast(x, 'float64')).toBe(x);
  });

  test('the gradient is cast back to the input dtype', () => {
    const x = tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true });
    const y = x.to('float64');
    expect(y.requiresGrad).toBe(true);
    sum(mul(y, tensor([0.1, 0.2, 0.3], { dtype: 'float64' }))).backward();
    expect(x.grad?.dtype).toBe('float32');
    expect(x.grad?.toArray()).toEqual([0.1, 0.2, 0.3].map(Math.fround));
  });

  test('gradcheck through float32 and float16 round trips', () => {
    // Inputs are multiples of 1/8 and eps = 0.25, so x ± eps is exact even in float16 and the
    // differences are exact; the analytic gradient is rounded to float16 on its way back (rel 2^-11).
    for (const s of [[], [4], [2, 3]] as Shape[]) {
      const g = new Generator(71);
      const a = fromValues(Array.from({ length: numelOf(s) }, () => g.randint(-16, 17) / 8), s);
      const w = uniformLeaf(s, 72).detach();
      for (const via of ['float32', 'float16'] as DType[]) {
        const r = gradcheck((x) => mul(cast(cast(x, via), 'float64'), w), [a], { eps: 0.25, atol: 1e-9 });
        expect(r.ok).toBe(true);
      }
    }
  });

  test('casting to int32 is not differentiable', () => {
    const x = tensor([1.5], { dtype: 'float64', requiresGrad: true });
    const i = x.to('int32');
    expect(i.requiresGrad).toBe(false);
    expect(i.gradFn).toBeNull();
  });
});

// ------------------------------------------------------------------ dtype promotion

describe('dtype promotion', () => {
  const i32 = tensor([1, 3], { dtype: 'int32' });
  const f16 = tensor([0.5, 1.5], { dtype: 'float16' });
  const f32 = tensor([0.5, 1.5], { dtype: 'float32' });
  const f64 = tensor([0.5, 1.5], { dtype: 'float64' });

  test('int32 with a floating tensor gives the floating dtype', () => {
    const out = add(i32, f32);
    expect(out.dtype).toBe('float32');
    expect(out.toArray()).toEqual([1.5, 4.5]);
    expect(add(i32, f16).dtype).toBe('float16');
    expect(mul(f32, i32).dtype).toBe('float32');
  });

  test('float16 * float32 gives float32', () => {
    const out = mul(f16, f32);
    expect(out.dtype).toBe('float32');
    expect(out.toArray()).toEqual([0.25, 2.25]);
  });

  test('int32 / int32 gives float32 (true division)', () => {
    const out = div(i32, tensor([2, 2], { dtype: 'int32' }));
    expect(out.dtype).toBe('float32');
    expect(out.toArray()).toEqual([0.5, 1.5]);
  });

  test('int32 tensor and a JS number: integers keep int32, fractions give float32', () => {
    const a = add(i32, 2.5);
    expect(a.dtype).toBe('float32');
    expect(a.toArray()).toEqual([3.5, 5.5]);
    const b = add(i32, 2);
    expect(b.dtype).toBe('int32');
    expect(b.toArray()).toEqual([3, 5]);
    expect(mul(2.5, i32).dtype).toBe('float32');
    expect(sub(i32, 1).toArray()).toEqual([0, 2]);
  });

  test('a JS number does not widen a float tensor', () => {
    expect(add(f16, 2.5).dtype).toBe('float16');
    expect(add(f16, 2.5).toArray()).toEqual([3, 4]);
    expect(mul(f32, 1e-3).dtype).toBe('float32');
  });

  test('float64 wins', () => {
    expect(add(f64, f32).dtype).toBe('float64');
    expect(add(f16, f64).dtype).toBe('float64');
    expect(add(i32, f64).dtype).toBe('float64');
    expect(maximum(f32, f64).dtype).toBe('float64');
    expect(pow(f32, f64).dtype).toBe('float64');
  });

  test('unary float ops on int32 give float32', () => {
    expect(exp(i32).dtype).toBe('float32');
    expectClose(flat(exp(i32)), [Math.E, Math.exp(3)].map(Math.fround), 1e-7);
    expect(sqrt(i32).dtype).toBe('float32');
    expect(neg(i32).dtype).toBe('int32');
    expect(abs(neg(i32)).toArray()).toEqual([1, 3]);
  });

  test('int32 arithmetic stays exact', () => {
    const a = tensor([100000, -7], { dtype: 'int32' });
    expect(mul(a, 3).toArray()).toEqual([300000, -21]);
    expect(mul(a, 3).dtype).toBe('int32');
  });
});

// ------------------------------------------------------------------ comparisons

describe('comparisons', () => {
  const a = tensor([[1], [2], [3]], { dtype: 'float64' }); // [3,1]
  const b = tensor([1, 2, 3, 4], { dtype: 'float32' }); // [4]
  const cases: [string, (x: TensorLike, y: TensorLike) => Tensor, (x: number, y: number) => boolean][] = [
    ['eq', eq, (x, y) => x === y],
    ['ne', ne, (x, y) => x !== y],
    ['lt', lt, (x, y) => x < y],
    ['le', le, (x, y) => x <= y],
    ['gt', gt, (x, y) => x > y],
    ['ge', ge, (x, y) => x >= y],
  ];

  test.each(cases)('%s returns int32 0/1 with broadcasting', (_, op, ref) => {
    const out = op(a, b);
    expect(out.dtype).toBe('int32');
    expect(out.shape).toEqual([3, 4]);
    expect(flat(out)).toEqual(refBroadcast([[3, 1], [4]], [flat(a), flat(b)], (x, y) => (ref(x, y) ? 1 : 0)).values);
    const s = op(b, 2);
    expect(s.dtype).toBe('int32');
    expect(flat(s)).toEqual([1, 2, 3, 4].map((x) => (ref(x, 2) ? 1 : 0)));
  });

  test('comparisons of tensors that require grad do not require grad', () => {
    const x = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const m = gt(x, 1);
    expect(m.requiresGrad).toBe(false);
    expect(m.toArray()).toEqual([0, 1]);
  });

  test('method forms', () => {
    expect(b.gt(2).toArray()).toEqual([0, 0, 1, 1]);
    expect(b.le(2).toArray()).toEqual([1, 1, 0, 0]);
    expect(b.eq(tensor([1, 0, 3, 0])).toArray()).toEqual([1, 0, 1, 0]);
  });

  test('NaN compares unequal to everything', () => {
    const x = tensor([NaN], { dtype: 'float64' });
    expect(eq(x, x).toArray()).toEqual([0]);
    expect(ne(x, x).toArray()).toEqual([1]);
    expect(lt(x, 0).toArray()).toEqual([0]);
  });
});

// ------------------------------------------------------------------ composition

test('a composite expression with shared inputs and broadcasting', () => {
  const x = uniformLeaf([3, 1], 91);
  const w = uniformLeaf([1, 4], 92);
  const b = uniformLeaf([4], 93);
  const fn = (x: Tensor, w: Tensor, b: Tensor) => tanh(add(mul(x, w), b)).mul(sigmoid(x)).add(exp(mul(w, -0.5)));
  check(fn, [x, w, b]);
  const expected = refBroadcast([[3, 1], [1, 4], [4]], [flat(x), flat(w), flat(b)], (xv, wv, bv) =>
    Math.tanh(xv * wv + bv) * sigmoidRef(xv) + Math.exp(-0.5 * wv),
  );
  expectClose(flat(fn(x, w, b)), expected.values);
});
