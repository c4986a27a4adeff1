/**
 * Reductions: values against plain JS loops over every dim form (number, array, negative,
 * undefined; keepDim true/false), float64 gradchecks, max/min gradient routing (ties split for the
 * whole-tensor form, the selected index for the dim form), and reductions of views.
 */
import {
  Tensor,
  ValueError,
  argmax,
  argmin,
  arange,
  cat,
  full,
  gradcheck,
  logsumexp,
  max,
  mean,
  min,
  mul,
  sum,
  tensor,
  variance,
  type ReduceOptions,
} from '../../../src';
import { flat, uniformLeaf } from '../../helpers';

type Shape = number[];
type Dim = number | number[] | undefined;

const numelOf = (s: Shape) => s.reduce((a, b) => a * b, 1);


function normDims(dim: Dim, ndim: number): number[] {
  if (dim === undefined) return Array.from({ length: ndim }, (_, i) => i);
  return (typeof dim === 'number' ? [dim] : dim).map((d) => (d < 0 ? d + ndim : d));
}

/** Reduces `data` (row-major, `shape`) over `dims` with f applied to each group, in a plain loop. */
function refReduce(shape: Shape, data: number[], dim: Dim, keepDim: boolean, f: (v: number[]) => number) {
  const dims = normDims(dim, shape.length);
  const outShape = keepDim ? shape.map((s, i) => (dims.includes(i) ? 1 : s)) : shape.filter((_, i) => !dims.includes(i));
  const groups: number[][] = Array.from({ length: numelOf(outShape) }, () => []);
  for (let i = 0; i < data.length; i++) {
    let r = i;
    const idx: number[] = [];
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r = Math.floor(r / shape[d]);
    }
    let pos = 0;
    for (let d = 0; d < shape.length; d++) if (!dims.includes(d)) pos = pos * shape[d] + idx[d];
    groups[pos].push(data[i]);
  }
  return { shape: outShape, values: groups.map(f) };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!Number.isFinite(e)) {
      expect(a).toBe(e);
      continue;
    }
    if (Math.abs(a - e) > tol * Math.max(1, Math.abs(e))) throw new Error(`element ${i}: got ${a}, expected ${e}`);
  }
}

const check = (fn: (...x: Tensor[]) => Tensor, inputs: Tensor[]) => expect(gradcheck(fn, inputs).ok).toBe(true);

const jsSum = (v: number[]) => v.reduce((a, b) => a + b, 0);
const jsMean = (v: number[]) => jsSum(v) / v.length;
const jsVar = (correction: number) => (v: number[]) => {
  const m = jsMean(v);
  return jsSum(v.map((x) => (x - m) ** 2)) / Math.max(v.length - correction, 0);
};
const jsLse = (v: number[]) => {
  const m = Math.max(...v);
  if (!Number.isFinite(m)) return Math.log(jsSum(v.map(Math.exp)));
  return m + Math.log(jsSum(v.map((x) => Math.exp(x - m))));
};

/** Dim forms exercised on a [2,3,4] input. */
const DIMS: Dim[] = [undefined, 0, 1, 2, -1, -3, [0, 2], [2, 0], [-1, 1], [0, 1, 2], [1]];
const CASES: [Dim, boolean][] = DIMS.flatMap((d) => [
  [d, false],
  [d, true],
] as [Dim, boolean][]);

const SHAPE: Shape = [2, 3, 4];

// ------------------------------------------------------------------ sum / mean / var

describe.each([
  ['sum', sum, jsSum],
  ['mean', mean, jsMean],
] as [string, (a: Tensor, o?: ReduceOptions) => Tensor, (v: number[]) => number][])('%s', (_, op, ref) => {
  test.each(CASES)('dim %j keepDim %p: values and gradcheck', (dim, keepDim) => {
    const a = uniformLeaf(SHAPE, 1);
    const out = op(a, { dim, keepDim });
    const expected = refReduce(SHAPE, flat(a), dim, keepDim, ref);
    expect(out.shape).toEqual(expected.shape);
    expect(out.dtype).toBe('float64');
    expectClose(flat(out), expected.values);
    check((x) => op(x, { dim, keepDim }), [a]);
  });

  test('default options reduce everything to a 0-d tensor', () => {
    const a = uniformLeaf([3, 2], 2);
    const out = op(a);
    expect(out.shape).toEqual([]);
    expect(out.item()).toBeCloseTo(ref(flat(a)), 12);
  });

  test('of a 0-d tensor, with and without dim 0', () => {
    const a = uniformLeaf([], 3);
    expect(op(a).item()).toBe(a.item());
    expect(op(a, { dim: 0 }).shape).toEqual([]);
    expect(op(a, { dim: 0 }).item()).toBe(a.item());
    expect(op(a, { dim: -1, keepDim: true }).shape).toEqual([]);
    check((x) => op(x, { dim: 0 }), [a]);
  });

  test('of views: transposed, sliced with an offset, and 0-d selected', () => {
    const a = uniformLeaf([4, 3], 4);
    const v = flat(a);
    const t = a.transpose(0, 1); // [3,4]
    expectClose(flat(op(t, { dim: 1 })), [0, 1, 2].map((j) => ref([0, 1, 2, 3].map((i) => v[i * 3 + j]))));
    const row = a.select(0, 2); // contiguous, offset 6
    expect(op(row).item()).toBeCloseTo(ref(v.slice(6, 9)), 12);
    const rows = a.narrow(0, 1, 2); // [2,3], offset 3
    expectClose(flat(op(rows, { dim: 1 })), [ref(v.slice(3, 6)), ref(v.slice(6, 9))]);
    const one = a.select(0, 3).select(0, 1); // 0-d, offset 10
    expect(op(one).item()).toBe(v[10]);
    check((x) => op(x.narrow(0, 1, 2), { dim: 1 }), [a]);
    check((x) => op(x.select(0, 3).select(0, 1)), [a]);
  });

  test('method form', () => {
    const a = tensor([[1, 2], [3, 4]], { dtype: 'float64' });
    expect(a[_ as 'sum']({ dim: 0 }).toArray()).toEqual(_ === 'sum' ? [4, 6] : [2, 3]);
  });
});

test('sum: hand-computed values, int32 stays int32, float16 accumulates', () => {
  const a = arange(6).reshape([2, 3]);
  expect(a.dtype).toBe('int32');
  const s = sum(a, { dim: 1 });
  expect(s.dtype).toBe('int32');
  expect(s.toArray()).toEqual([3, 12]);
  expect(sum(a).item()).toBe(15);
  expect(sum(a, { dim: 0, keepDim: true }).toArray()).toEqual([[3, 5, 7]]);
  // float16 sums accumulate in float32: 4096 ones in float16 arithmetic would stall at 2048
  const h = full([4096], 1, { dtype: 'float16' });
  expect(sum(h).dtype).toBe('float16');
  expect(sum(h).item()).toBe(4096);
});

test('sum of an empty tensor is 0; mean is NaN', () => {
  const e = tensor([], { dtype: 'float64' });
  expect(sum(e).item()).toBe(0);
  expect(mean(e).item()).toBeNaN();
});

test('mean of int32 gives float32', () => {
  const a = tensor([1, 2, 4], { dtype: 'int32' });
  const m = mean(a);
  expect(m.dtype).toBe('float32');
  expect(m.item()).toBeCloseTo(7 / 3, 6);
});

test('sum gradient broadcasts the incoming gradient back', () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float64', requiresGrad: true });
  sum(mul(sum(a, { dim: 1 }), tensor([10, 100], { dtype: 'float64' }))).backward();
  expect(a.grad?.toArray()).toEqual([[10, 10, 10], [100, 100, 100]]);
  const b = tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float64', requiresGrad: true });
  mean(b).backward();
  expect(b.grad?.toArray()).toEqual([[1, 1, 1], [1, 1, 1]].map((r) => r.map(() => 1 / 6)));
});

describe('variance', () => {
  test.each([0, 1])('correction %p: all dim forms, values and gradcheck', (correction) => {
    for (const [dim, keepDim] of CASES) {
      const a = uniformLeaf(SHAPE, 5);
      const out = variance(a, { dim, keepDim, correction });
      const expected = refReduce(SHAPE, flat(a), dim, keepDim, jsVar(correction));
      expect(out.shape).toEqual(expected.shape);
      expectClose(flat(out), expected.values, 1e-11);
    }
    const a = uniformLeaf([3, 4], 6);
    check((x) => variance(x, { dim: 1, correction }), [a]);
    check((x) => variance(x, { dim: [0, 1], correction, keepDim: true }), [a]);
    check((x) => variance(x, { correction }), [a]);
  });

  test('default correction is 1 (Bessel), as torch.var', () => {
    const a = tensor([1, 2, 3, 4], { dtype: 'float64' });
    expect(variance(a).item()).toBeCloseTo(5 / 3, 14);
    expect(variance(a, { correction: 0 }).item()).toBeCloseTo(1.25, 14);
    expect(a.var().item()).toBeCloseTo(5 / 3, 14);
  });

  test('a single element with correction 1 gives NaN or Infinity, not a number', () => {
    const v = variance(tensor([3], { dtype: 'float64' })).item();
    expect(Number.isFinite(v)).toBe(false);
  });
});

// ------------------------------------------------------------------ max / min

describe('max and min over everything', () => {
  test('value and gradient split evenly over ties', () => {
    const a = tensor([1, 3, 3, 2], { dtype: 'float64', requiresGrad: true });
    const m = max(a);
    expect(m.shape).toEqual([]);
    expect(m.item()).toBe(3);
    m.backward();
    expect(a.grad?.toArray()).toEqual([0, 0.5, 0.5, 0]);

    const b = tensor([[2, 1], [1, 5]], { dtype: 'float64', requiresGrad: true });
    const n = min(b);
    expect(n.item()).toBe(1);
    mul(n, 4).backward();
    expect(b.grad?.toArray()).toEqual([[0, 2], [2, 0]]);

    const c = tensor([[2, 2], [2, 2]], { dtype: 'float64', requiresGrad: true });
    max(c).backward();
    expect(c.grad?.toArray()).toEqual([[0.25, 0.25], [0.25, 0.25]]);
  });

  test('values and gradcheck over shapes and views', () => {
    for (const s of [[], [5], [2, 3], [2, 3, 4]] as Shape[]) {
      const a = uniformLeaf(s, 7);
      expect(max(a).item()).toBe(Math.max(...flat(a)));
      expect(min(a).item()).toBe(Math.min(...flat(a)));
      check((x) => max(x), [a]);
      check((x) => min(x), [a]);
    }
    const a = uniformLeaf([3, 4], 8);
    const v = flat(a);
    expect(max(a.narrow(0, 1, 2)).item()).toBe(Math.max(...v.slice(4, 12)));
    expect(min(a.select(1, 2)).item()).toBe(Math.min(v[2], v[6], v[10]));
    expect(max(a.select(0, 2).select(0, 3)).item()).toBe(v[11]);
    check((x) => max(x.select(1, 2)), [a]);
  });

  test('NaN propagates; an empty tensor is an error', () => {
    expect(max(tensor([1, NaN, 3])).item()).toBeNaN();
    expect(min(tensor([NaN, 1])).item()).toBeNaN();
    expect(() => max(tensor([]))).toThrow(ValueError);
    expect(() => min(tensor([]))).toThrow(/min/);
  });

  test('method forms', () => {
    const a = tensor([4, -1, 7]);
    expect(a.max().item()).toBe(7);
    expect(a.min().item()).toBe(-1);
  });
});

describe('max and min along a dim', () => {
  const data = [
    [1, 5, 2],
    [7, 0, 7],
  ];

  test('values, int32 indices (first of ties), keepDim shapes', () => {
    const a = tensor(data, { dtype: 'float64' });
    const r = max(a, 1);
    expect(r.values.toArray()).toEqual([5, 7]);
    expect(r.indices.toArray()).toEqual([1, 0]);
    expect(r.indices.dtype).toBe('int32');
    expect(r.values.dtype).toBe('float64');
    const k = max(a, -1, true);
    expect(k.values.shape).toEqual([2, 1]);
    expect(k.indices.shape).toEqual([2, 1]);
    expect(k.indices.toArray()).toEqual([[1], [0]]);
    const m = min(a, 0);
    expect(m.values.toArray()).toEqual([1, 0, 2]);
    expect(m.indices.toArray()).toEqual([0, 1, 0]);
    const mk = a.min(0, true);
    expect(mk.values.shape).toEqual([1, 3]);
    expect(mk.indices.toArray()).toEqual([[0, 1, 0]]);
  });

  test('the gradient goes to the selected index only', () => {
    const a = tensor(data, { dtype: 'float64', requiresGrad: true });
    sum(mul(max(a, 1).values, tensor([1, 2], { dtype: 'float64' }))).backward();
    expect(a.grad?.toArray()).toEqual([
      [0, 1, 0],
      [2, 0, 0],
    ]);
    const b = tensor(data, { dtype: 'float64', requiresGrad: true });
    sum(mul(min(b, 0, true).values, tensor([[1, 2, 3]], { dtype: 'float64' }))).backward();
    expect(b.grad?.toArray()).toEqual([
      [1, 0, 3],
      [0, 2, 0],
    ]);
  });

  test.each([0, 1, 2, -1, -2])('dim %p on [2,3,4]: values and indices against a loop; gradcheck', (dim) => {
    const a = uniformLeaf(SHAPE, 9);
    for (const keepDim of [false, true]) {
      for (const [op, pick] of [
        [max, (v: number[]) => v.indexOf(Math.max(...v))],
        [min, (v: number[]) => v.indexOf(Math.min(...v))],
      ] as const) {
        const r = op(a, dim, keepDim);
        const idx = refReduce(SHAPE, flat(a), dim, keepDim, pick);
        const vals = refReduce(SHAPE, flat(a), dim, keepDim, (v) => v[pick(v)]);
        expect(r.values.shape).toEqual(vals.shape);
        expect(r.indices.shape).toEqual(idx.shape);
        expect(flat(r.values)).toEqual(vals.values);
        expect(flat(r.indices)).toEqual(idx.values);
        check((x) => op(x, dim, keepDim).values, [a]);
      }
    }
  });

  test('of views with an offset, and the gradient of a view', () => {
    const a = uniformLeaf([4, 3], 10);
    const v = flat(a);
    const r = max(a.narrow(0, 2, 2), 1); // rows 2 and 3
    expect(flat(r.values)).toEqual([Math.max(...v.slice(6, 9)), Math.max(...v.slice(9, 12))]);
    check((x) => max(x.narrow(0, 2, 2), 1).values, [a]);
    check((x) => min(x.transpose(0, 1), 1, true).values, [a]);
  });

  test('a gradient that arrives as an offset view is routed correctly', () => {
    // cat's backward hands each piece a narrow (offset) view of the incoming gradient
    const a = tensor(data, { dtype: 'float64', requiresGrad: true });
    const b = tensor([10, 20], { dtype: 'float64', requiresGrad: true });
    const joined = cat([b, max(a, 1).values]); // [b0, b1, 5, 7]
    expect(joined.toArray()).toEqual([10, 20, 5, 7]);
    sum(mul(joined, tensor([1, 2, 3, 4], { dtype: 'float64' }))).backward();
    expect(b.grad?.toArray()).toEqual([1, 2]);
    expect(a.grad?.toArray()).toEqual([
      [0, 3, 0],
      [4, 0, 0],
    ]);
    // the same for sum: its gradient is the offset piece broadcast back
    const c = tensor(data, { dtype: 'float64', requiresGrad: true });
    sum(mul(cat([b.detach(), sum(c, { dim: 1 })]), tensor([1, 2, 3, 4], { dtype: 'float64' }))).backward();
    expect(c.grad?.toArray()).toEqual([
      [3, 3, 3],
      [4, 4, 4],
    ]);
  });

  test('on a 0-d tensor (dim 0 or -1)', () => {
    const a = tensor(2.5, { dtype: 'float64', requiresGrad: true });
    const r = max(a, 0);
    expect(r.values.shape).toEqual([]);
    expect(r.values.item()).toBe(2.5);
    expect(r.indices.item()).toBe(0);
    expect(min(a, -1, true).values.item()).toBe(2.5);
    r.values.backward();
    expect(a.grad?.item()).toBe(1);
  });

  test('NaN is the extreme (as PyTorch); an empty dim is an error', () => {
    const r = max(tensor([[1, NaN, 3]]), 1);
    expect(r.values.item()).toBeNaN();
    expect(r.indices.item()).toBe(1);
    expect(() => max(tensor([[], []]), 1)).toThrow(ValueError);
    expect(max(tensor([[], []]), 0).values.shape).toEqual([0]);
  });
});

// ------------------------------------------------------------------ argmax / argmin

describe('argmax and argmin', () => {
  const a = tensor(
    [
      [3, 9, 9],
      [8, -1, 2],
    ],
    { dtype: 'float32' },
  );

  test('dim undefined: index into the flattened tensor', () => {
    expect(argmax(a).shape).toEqual([]);
    expect(argmax(a).item()).toBe(1);
    expect(argmin(a).item()).toBe(4);
    expect(argmax(a).dtype).toBe('int32');
    expect(a.argmax().item()).toBe(1);
  });

  test('dim as a number, negative, with keepDim', () => {
    expect(argmax(a, 1).toArray()).toEqual([1, 0]);
    expect(argmax(a, -1).toArray()).toEqual([1, 0]);
    expect(argmin(a, 0).toArray()).toEqual([0, 1, 1]);
    expect(argmin(a, -2, true).toArray()).toEqual([[0, 1, 1]]);
    expect(argmax(a, 1, true).shape).toEqual([2, 1]);
    expect(a.argmin(1).toArray()).toEqual([0, 1]);
  });

  test('against a loop on random data', () => {
    const r = uniformLeaf(SHAPE, 12);
    for (const dim of [0, 1, 2, -1]) {
      const expected = refReduce(SHAPE, flat(r), dim, false, (v) => v.indexOf(Math.max(...v)));
      expect(flat(argmax(r, dim))).toEqual(expected.values);
      const expectedMin = refReduce(SHAPE, flat(r), dim, true, (v) => v.indexOf(Math.min(...v)));
      expect(flat(argmin(r, dim, true))).toEqual(expectedMin.values);
      expect(argmin(r, dim, true).shape).toEqual(expectedMin.shape);
    }
  });

  test('of a tensor that requires grad: no graph, int32 result; of a view with an offset', () => {
    const x = uniformLeaf([3, 4], 13);
    const i = argmax(x, 1);
    expect(i.requiresGrad).toBe(false);
    const v = flat(x);
    const row = v.slice(8, 12);
    expect(argmax(x.select(0, 2)).item()).toBe(row.indexOf(Math.max(...row)));
    expect(argmin(x.transpose(0, 1), 0).toArray()).toEqual([0, 1, 2].map((rr) => {
      const rw = v.slice(rr * 4, rr * 4 + 4);
      return rw.indexOf(Math.min(...rw));
    }));
  });
});

// ------------------------------------------------------------------ logsumexp

describe('logsumexp', () => {
  test.each(CASES)('dim %j keepDim %p: values and gradcheck', (dim, keepDim) => {
    const a = uniformLeaf(SHAPE, 14, -3, 3);
    const out = logsumexp(a, { dim, keepDim });
    const expected = refReduce(SHAPE, flat(a), dim, keepDim, jsLse);
    expect(out.shape).toEqual(expected.shape);
    expectClose(flat(out), expected.values);
    check((x) => logsumexp(x, { dim, keepDim }), [a]);
  });

  test('-inf rows, mixed rows, large values', () => {
    const x = tensor(
      [
        [-Infinity, -Infinity],
        [-Infinity, 0],
        [1000, 1000],
        [-1000, -1000],
        [1, 2],
      ],
      { dtype: 'float64', requiresGrad: true },
    );
    const out = logsumexp(x, { dim: 1 });
    const v = flat(out);
    expect(v[0]).toBe(-Infinity);
    expect(v[1]).toBe(0);
    expect(v[2]).toBeCloseTo(1000 + Math.LN2, 10);
    expect(v[3]).toBeCloseTo(-1000 + Math.LN2, 10);
    expect(v[4]).toBeCloseTo(2 + Math.log1p(Math.exp(-1)), 14);
    // the gradient is softmax along the row (rows 1-4: the -inf row is left out of the sum)
    sum(out.narrow(0, 1, 4)).backward();
    const g = x.grad?.toArray() as number[][];
    expect(g[1]).toEqual([0, 1]);
    expect(g[2]).toEqual([0.5, 0.5]);
    expect(g[3]).toEqual([0.5, 0.5]);
    expect(g[4][0]).toBeCloseTo(1 / (1 + Math.E), 14);
  });

  test('+inf gives +inf; float32 large values do not overflow', () => {
    expect(logsumexp(tensor([Infinity, 0])).item()).toBe(Infinity);
    const big = logsumexp(tensor([88, 89, 90], { dtype: 'float32' }));
    expect(big.dtype).toBe('float32');
    expect(big.item()).toBeCloseTo(90 + Math.log(1 + Math.exp(-1) + Math.exp(-2)), 4);
  });

  test('of a 0-d tensor and of views', () => {
    const a = uniformLeaf([], 15);
    expect(logsumexp(a).item()).toBeCloseTo(a.item(), 14);
    const b = uniformLeaf([4, 3], 16);
    const v = flat(b);
    expect(logsumexp(b.select(0, 1)).item()).toBeCloseTo(jsLse(v.slice(3, 6)), 12);
    check((x) => logsumexp(x.transpose(0, 1), { dim: 1 }), [b]);
  });

  test('method form', () => {
    const a = tensor([[0, 0], [1, 1]], { dtype: 'float64' });
    expectClose(flat(a.logsumexp({ dim: 1 })), [Math.LN2, 1 + Math.LN2]);
  });
});
