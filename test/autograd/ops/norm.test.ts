import {
  AutogradError,
  DTypeError,
  ShapeError,
  Tensor,
  add,
  cat,
  grad,
  gradcheck,
  layerNorm,
  manualSeed,
  mean,
  mul,
  randn,
  rmsNorm,
  rsqrt,
  sub,
  sum,
  tensor,
  transpose,
} from '../../../src';
import { expectClose, flat } from '../../helpers';


/** Plain-loop reference: rows of length `inner`, then weight/bias repeating every `inner`. */
function refNorm(kind: 'layer' | 'rms', v: number[], inner: number, eps: number, w?: number[], b?: number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < v.length / inner; r++) {
    const row = v.slice(r * inner, (r + 1) * inner);
    const mu = kind === 'layer' ? row.reduce((s, x) => s + x, 0) / inner : 0;
    const ms = row.reduce((s, x) => s + (x - mu) * (x - mu), 0) / inner;
    row.forEach((x, i) => out.push(((x - mu) / Math.sqrt(ms + eps)) * (w ? w[i] : 1) + (b ? b[i] : 0)));
  }
  return out;
}

/** The same ops composed from primitives: mean, sub, mul, rsqrt, add. */
function compositeLayerNorm(x: Tensor, ndims: number, w: Tensor | null, b: Tensor | null, eps = 1e-5): Tensor {
  const dims = Array.from({ length: ndims }, (_, i) => x.ndim - ndims + i);
  const centred = sub(x, mean(x, { dim: dims, keepDim: true }));
  const variance = mean(mul(centred, centred), { dim: dims, keepDim: true });
  let y = mul(centred, rsqrt(add(variance, eps)));
  if (w) y = mul(y, w);
  if (b) y = add(y, b);
  return y;
}

function compositeRmsNorm(x: Tensor, ndims: number, w: Tensor | null, eps = 1e-6): Tensor {
  const dims = Array.from({ length: ndims }, (_, i) => x.ndim - ndims + i);
  const y = mul(x, rsqrt(add(mean(mul(x, x), { dim: dims, keepDim: true }), eps)));
  return w ? mul(y, w) : y;
}

describe('layerNorm / rmsNorm forward', () => {
  test('layerNorm of one row by hand', () => {
    // x = [1, 2, 3, 6]: μ = 3, σ² = (4 + 1 + 0 + 9)/4 = 3.5
    const y = flat(layerNorm(tensor([1, 2, 3, 6], { dtype: 'float64' }), 4, null, null, 0));
    const s = Math.sqrt(3.5);
    expectClose(y, [-2 / s, -1 / s, 0, 3 / s]);
  });

  test('rmsNorm of one row by hand', () => {
    // x = [1, 2, 2]: mean(x²) = 3
    const y = flat(rmsNorm(tensor([1, 2, 2], { dtype: 'float64' }), [3], tensor([1, 2, 3], { dtype: 'float64' }), 0));
    const r = Math.sqrt(3);
    expectClose(y, [1 / r, 4 / r, 6 / r]);
  });

  test.each([
    [[2, 3, 4], [4]],
    [[2, 3, 4], [3, 4]],
    [[5, 2], 2],
  ] as [number[], number | number[]][])('match plain loops, shape %j normalizedShape %j', (shape, ns) => {
    manualSeed(21);
    const nsArr = typeof ns === 'number' ? [ns] : ns;
    const inner = nsArr.reduce((a, b) => a * b, 1);
    const x = randn(shape, { dtype: 'float64' });
    const w = randn(nsArr, { dtype: 'float64' });
    const b = randn(nsArr, { dtype: 'float64' });
    const [xv, wv, bv] = [flat(x), flat(w), flat(b)];
    expectClose(flat(layerNorm(x, ns)), refNorm('layer', xv, inner, 1e-5));
    expectClose(flat(layerNorm(x, ns, w, b)), refNorm('layer', xv, inner, 1e-5, wv, bv));
    expectClose(flat(layerNorm(x, ns, w, null, 1e-3)), refNorm('layer', xv, inner, 1e-3, wv));
    expectClose(flat(rmsNorm(x, ns)), refNorm('rms', xv, inner, 1e-6));
    expectClose(flat(rmsNorm(x, ns, w)), refNorm('rms', xv, inner, 1e-6, wv));
  });

  test('normalises a strided (transposed) input correctly', () => {
    manualSeed(22);
    const x = randn([4, 3], { dtype: 'float64' });
    const xv = flat(x);
    const xt = transpose(x, 0, 1); // [3, 4]
    const tv = Array.from({ length: 12 }, (_, i) => xv[(i % 4) * 3 + Math.floor(i / 4)]);
    expectClose(flat(layerNorm(xt, 4)), refNorm('layer', tv, 4, 1e-5));
    expectClose(flat(rmsNorm(xt, [4])), refNorm('rms', tv, 4, 1e-6));
  });

  test('the normalisation is one fused node; the affine part is ordinary mul/add', () => {
    const x = randn([2, 4], { requiresGrad: true });
    const w = randn([4], { requiresGrad: true });
    const b = randn([4], { requiresGrad: true });
    const y = layerNorm(x, 4, w, b);
    expect(y.gradFn?.op).toBe('add');
    const mulNode = y.gradFn?.next[0] as unknown as { op: string; next: { op: string }[] };
    expect(mulNode.op).toBe('mul');
    expect(mulNode.next[0].op).toBe('layerNorm');
    expect(rmsNorm(x, 4).gradFn?.op).toBe('rmsNorm');
    // a frozen input records no normalisation node (only the weight's mul)
    const frozen = layerNorm(randn([2, 4]), 4, w);
    expect(frozen.gradFn?.op).toBe('mul');
    expect(frozen.gradFn?.next[0]).toBeNull();
  });
});

describe('layerNorm / rmsNorm gradients', () => {
  const cases: [number[], number[]][] = [
    [[3, 4], [4]],
    [[2, 3, 4], [4]],
    [[2, 3, 4], [3, 4]],
    [[5], [5]],
  ];

  test.each(cases)('float64 gradcheck, shape %j normalizedShape %j, with and without weight/bias', (shape, ns) => {
    manualSeed(31);
    const x = randn(shape, { dtype: 'float64', requiresGrad: true });
    const w = randn(ns, { dtype: 'float64', requiresGrad: true });
    const b = randn(ns, { dtype: 'float64', requiresGrad: true });
    expect(gradcheck((a) => layerNorm(a, ns), [x]).ok).toBe(true);
    expect(gradcheck((a, c) => layerNorm(a, ns, c), [x, w]).ok).toBe(true);
    expect(gradcheck((a, c, d) => layerNorm(a, ns, c, d), [x, w, b]).ok).toBe(true);
    expect(gradcheck((a, d) => layerNorm(a, ns, null, d, 1e-3), [x, b]).ok).toBe(true);
    expect(gradcheck((a) => rmsNorm(a, ns), [x]).ok).toBe(true);
    expect(gradcheck((a, c) => rmsNorm(a, ns, c), [x, w]).ok).toBe(true);
  });

  test.each(cases)('fused agrees with the composite (values and gradients), shape %j normalizedShape %j', (shape, ns) => {
    manualSeed(32);
    const x = randn(shape, { dtype: 'float64', requiresGrad: true });
    const w = randn(ns, { dtype: 'float64', requiresGrad: true });
    const b = randn(ns, { dtype: 'float64', requiresGrad: true });
    const up = randn(shape, { dtype: 'float64' });
    const pairs: [Tensor, Tensor, Tensor[]][] = [
      [layerNorm(x, ns), compositeLayerNorm(x, ns.length, null, null), [x]],
      [layerNorm(x, ns, w, b), compositeLayerNorm(x, ns.length, w, b), [x, w, b]],
      [rmsNorm(x, ns), compositeRmsNorm(x, ns.length, null), [x]],
      [rmsNorm(x, ns, w), compositeRmsNorm(x, ns.length, w), [x, w]],
    ];
    for (const [fused, composite, inputs] of pairs) {
      expectClose(flat(fused), flat(composite), 1e-12);
      const gf = grad(sum(mul(fused, up)), inputs);
      const gc = grad(sum(mul(composite, up)), inputs);
      gf.forEach((g, i) => expectClose(flat(g as Tensor), flat(gc[i] as Tensor), 1e-10));
    }
  });

  test('gradient with respect to a strided input', () => {
    manualSeed(33);
    const x = randn([4, 3], { dtype: 'float64', requiresGrad: true });
    expect(gradcheck((a) => layerNorm(transpose(a, 0, 1), 4), [x]).ok).toBe(true);
  });

  test('gradients that arrive as offset views (cat backward narrows them) are read correctly', () => {
    manualSeed(34);
    const x = randn([2, 3], { dtype: 'float64', requiresGrad: true });
    const w = randn([3], { dtype: 'float64', requiresGrad: true });
    expect(gradcheck((a, c) => cat([a, layerNorm(a, 3, c, c), rmsNorm(a, [3], c)], 0), [x, w]).ok).toBe(true);
  });

  test('higher-order gradients through the fused node are refused, not silently wrong', () => {
    const x = randn([2, 3], { dtype: 'float64', requiresGrad: true });
    expect(() => grad(sum(mul(layerNorm(x, 3), randn([2, 3], { dtype: 'float64' }))), x, { createGraph: true })).toThrow(AutogradError);
  });
});

describe('layerNorm / rmsNorm errors', () => {
  const x = randn([2, 3, 4]);

  test('normalizedShape must match the trailing dims', () => {
    expect(() => layerNorm(x, 3)).toThrow(ShapeError);
    expect(() => layerNorm(x, [2, 4])).toThrow(/\[2,4\].*\[2,3,4\]/);
    expect(() => rmsNorm(x, [1, 2, 3, 4])).toThrow(ShapeError);
    expect(() => layerNorm(x, [])).toThrow(ShapeError);
    expect(() => layerNorm(x, [4.5])).toThrow(ShapeError);
  });

  test('weight and bias must have normalizedShape', () => {
    expect(() => layerNorm(x, 4, randn([3]))).toThrow(ShapeError);
    expect(() => layerNorm(x, [3, 4], randn([4]))).toThrow(/weight has shape \[4\]/);
    expect(() => layerNorm(x, 4, randn([4]), randn([1, 4]))).toThrow(/bias has shape \[1,4\]/);
    expect(() => rmsNorm(x, 4, randn([4, 1]))).toThrow(ShapeError);
  });

  test('integer input is a DTypeError', () => {
    expect(() => layerNorm(tensor([[1, 2]], { dtype: 'int32' }), 2)).toThrow(DTypeError);
    expect(() => rmsNorm(tensor([[1, 2]], { dtype: 'int32' }), 2)).toThrow(DTypeError);
  });
});
