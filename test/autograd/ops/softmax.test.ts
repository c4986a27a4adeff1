import {
  DimError,
  cat,
  Tensor,
  exp,
  grad,
  gradcheck,
  logSoftmax,
  logsumexp,
  manualSeed,
  max,
  mul,
  narrow,
  randn,
  softmax,
  sub,
  sum,
  div,
  tensor,
  transpose,
} from '../../../src';
import { expectClose, flat } from '../../helpers';


/** Reference softmax along `dim` of a row-major array of shape `shape`, by plain loops. */
function refSoftmax(values: ArrayLike<number>, shape: number[], dim: number, log: boolean): number[] {
  const d = dim < 0 ? dim + shape.length : dim;
  const size = shape[d];
  const innerStride = shape.slice(d + 1).reduce((a, b) => a * b, 1);
  const outerCount = shape.slice(0, d).reduce((a, b) => a * b, 1);
  const out = new Array<number>(values.length);
  for (let o = 0; o < outerCount; o++) {
    for (let i = 0; i < innerStride; i++) {
      const at = (j: number) => o * size * innerStride + j * innerStride + i;
      let m = -Infinity;
      for (let j = 0; j < size; j++) m = Math.max(m, values[at(j)]);
      let s = 0;
      for (let j = 0; j < size; j++) s += Math.exp(values[at(j)] - m);
      for (let j = 0; j < size; j++) {
        out[at(j)] = log ? values[at(j)] - m - Math.log(s) : Math.exp(values[at(j)] - m) / s;
      }
    }
  }
  return out;
}

/** Softmax and logSoftmax composed from primitives (their gradients come from exp, sum, div, sub). */
const compositeSoftmax = (x: Tensor, dim: number) => {
  const shifted = sub(x, max(x, dim, true).values.detach());
  const e = exp(shifted);
  return div(e, sum(e, { dim, keepDim: true }));
};
const compositeLogSoftmax = (x: Tensor, dim: number) => sub(x, logsumexp(x, { dim, keepDim: true }));

describe('softmax / logSoftmax forward', () => {
  test('softmax([1, 2, 3]) by hand', () => {
    const s = Math.exp(1) + Math.exp(2) + Math.exp(3);
    const y = softmax(tensor([1, 2, 3], { dtype: 'float64' }));
    expectClose(flat(y), [Math.exp(1) / s, Math.exp(2) / s, Math.exp(3) / s]);
    expect(y.shape).toEqual([3]);
  });

  test('logSoftmax([1, 2, 3]) by hand', () => {
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    expectClose(flat(logSoftmax(tensor([1, 2, 3], { dtype: 'float64' }))), [1 - lse, 2 - lse, 3 - lse]);
  });

  test.each([
    [[2, 3, 4], 0],
    [[2, 3, 4], 1],
    [[2, 3, 4], 2],
    [[2, 3, 4], -2],
    [[3, 1, 2], 1],
    [[4, 5], 0],
  ])('along dims other than the last: shape %j dim %d matches a plain loop', (shape, dim) => {
    manualSeed(11);
    const x = randn(shape, { dtype: 'float64' });
    const v = flat(x);
    const y = softmax(x, dim);
    expect(y.shape).toEqual(shape);
    expectClose(flat(y), refSoftmax(v, shape, dim, false));
    expectClose(flat(logSoftmax(x, dim)), refSoftmax(v, shape, dim, true));
    expectClose(flat(x.softmax(dim)), refSoftmax(v, shape, dim, false));
    expectClose(flat(x.logSoftmax(dim)), refSoftmax(v, shape, dim, true));
  });

  test('rows of a non-contiguous or offset view', () => {
    manualSeed(3);
    const x = randn([4, 5], { dtype: 'float64' });
    const v = flat(x);
    const xt = transpose(x, 0, 1); // [5, 4], strided
    const vt = Array.from({ length: 20 }, (_, i) => v[(i % 4) * 5 + Math.floor(i / 4)]);
    expectClose(flat(softmax(xt, -1)), refSoftmax(vt, [5, 4], -1, false));
    const tail = narrow(x, 0, 2, 2); // contiguous but starting at offset 10
    expectClose(flat(softmax(tail, 1)), refSoftmax(v.slice(10), [2, 5], 1, false));
    expectClose(flat(logSoftmax(tail, 0)), refSoftmax(v.slice(10), [2, 5], 0, true));
  });

  test('is stable: softmax of [1000, 1001] and logSoftmax of large negatives are finite and right', () => {
    const y = flat(softmax(tensor([1000, 1001], { dtype: 'float64' })));
    expectClose(y, [1 / (1 + Math.E), Math.E / (1 + Math.E)]);
    const y32 = Array.from(softmax(tensor([1000, 1001])).toTypedArray());
    expectClose(y32, [1 / (1 + Math.E), Math.E / (1 + Math.E)], 1e-6);
    const lse = -1000 + Math.log(1 + Math.exp(-1) + Math.exp(-9000));
    const ls = flat(logSoftmax(tensor([-1000, -1001, -10000], { dtype: 'float64' })));
    ls.forEach((v) => expect(Number.isFinite(v)).toBe(true));
    expectClose(ls, [-1000 - lse, -1001 - lse, -10000 - lse]);
    expectClose(flat(softmax(tensor([-1000, -1001], { dtype: 'float64' }))), [Math.E / (1 + Math.E), 1 / (1 + Math.E)]);
  });

  test('integer input gives float32; a 0-d input gives 1 (log: 0)', () => {
    const y = softmax(tensor([0, 0], { dtype: 'int32' }));
    expect(y.dtype).toBe('float32');
    expectClose(Array.from(y.toTypedArray()), [0.5, 0.5]);
    const s = softmax(tensor(3.5, { dtype: 'float64' }));
    expect(s.shape).toEqual([]);
    expect(s.item()).toBe(1);
    expect(logSoftmax(tensor(3.5, { dtype: 'float64' })).item()).toBe(0);
  });

  test('dim out of range is a DimError', () => {
    expect(() => softmax(tensor([[1, 2]]), 2)).toThrow(DimError);
    expect(() => logSoftmax(tensor([1, 2]), -2)).toThrow(DimError);
  });

  test('records nothing when the input does not require grad', () => {
    expect(softmax(randn([2, 3])).gradFn).toBeNull();
    const y = softmax(randn([2, 3], { requiresGrad: true }), 0);
    expect(y.gradFn?.op).toBe('softmax');
  });
});

describe('softmax / logSoftmax gradients', () => {
  const cases: [number[], number][] = [
    [[5], 0],
    [[3, 4], 1],
    [[3, 4], 0],
    [[2, 3, 4], 0],
    [[2, 3, 4], 1],
    [[2, 3, 4], -1],
    [[2, 1, 3], 1],
  ];

  test.each(cases)('float64 gradcheck, shape %j dim %d', (shape, dim) => {
    manualSeed(5);
    const x = randn(shape, { dtype: 'float64', requiresGrad: true });
    expect(gradcheck((a) => softmax(a, dim), [x]).ok).toBe(true);
    expect(gradcheck((a) => logSoftmax(a, dim), [x]).ok).toBe(true);
  });

  test('gradcheck through a transposed (strided) input', () => {
    manualSeed(6);
    const x = randn([3, 4], { dtype: 'float64', requiresGrad: true });
    expect(gradcheck((a) => softmax(transpose(a, 0, 1), 1), [x]).ok).toBe(true);
    expect(gradcheck((a) => logSoftmax(narrow(a, 0, 1, 2), 0), [x]).ok).toBe(true);
  });

  test.each(cases)('fused agrees with the composite (values and gradients), shape %j dim %d', (shape, dim) => {
    manualSeed(9);
    const x = randn(shape, { dtype: 'float64', requiresGrad: true });
    const w = randn(shape, { dtype: 'float64' });
    for (const [fused, composite] of [
      [softmax, compositeSoftmax],
      [logSoftmax, compositeLogSoftmax],
    ] as const) {
      const yf = fused(x, dim);
      const yc = composite(x, dim);
      expectClose(flat(yf), flat(yc), 1e-12);
      const [gf] = grad(sum(mul(yf, w)), x);
      const [gc] = grad(sum(mul(yc, w)), x);
      expectClose(flat(gf as Tensor), flat(gc as Tensor), 1e-12);
    }
  });

  test('the backward is differentiable: second derivatives match the composite', () => {
    manualSeed(13);
    const x = randn([3, 4], { dtype: 'float64', requiresGrad: true });
    const w = randn([3, 4], { dtype: 'float64' });
    for (const [fused, composite] of [
      [softmax, compositeSoftmax],
      [logSoftmax, compositeLogSoftmax],
    ] as const) {
      const second = (f: (a: Tensor, d: number) => Tensor) => {
        const [g] = grad(sum(mul(f(x, 0), w)), x, { createGraph: true });
        const [gg] = grad(sum(mul(g as Tensor, g as Tensor)), x);
        return flat(gg as Tensor);
      };
      expectClose(second(fused), second(composite), 1e-10);
    }
  });

  test('gradients that arrive as offset views (cat backward narrows them) are read correctly', () => {
    manualSeed(14);
    const x = randn([2, 3], { dtype: 'float64', requiresGrad: true });
    expect(gradcheck((a) => cat([a, logSoftmax(a, 1), softmax(a, 0)], 0), [x]).ok).toBe(true);
  });

  test('gradient of softmax([1000, 1001]) is finite (stable backward)', () => {
    const x = tensor([1000, 1001], { dtype: 'float64', requiresGrad: true });
    const [g] = grad(sum(mul(softmax(x), tensor([1, 0], { dtype: 'float64' }))), x);
    const p = 1 / (1 + Math.E);
    // d p0 / d x = p0·(e0 − p)
    expectClose(flat(g as Tensor), [p * (1 - p), -p * (1 - p)]);
  });
});
