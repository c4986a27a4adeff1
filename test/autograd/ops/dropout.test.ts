import {
  DTypeError,
  Generator,
  Tensor,
  ValueError,
  dropout,
  grad,
  gradcheck,
  manualSeed,
  mul,
  ones,
  randn,
  sum,
  tensor,
  transpose,
} from '../../../src';

const flat = (t: Tensor) => Array.from(t.toTypedArray() as Float64Array);

describe('dropout', () => {
  test('the same seed gives the same mask; another seed a different one', () => {
    const x = ones([64], { dtype: 'float64' });
    const a = flat(dropout(x, 0.5, { generator: new Generator(7) }));
    const b = flat(dropout(x, 0.5, { generator: new Generator(7) }));
    const c = flat(dropout(x, 0.5, { generator: new Generator(8) }));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    // the default generator, reseeded
    manualSeed(3);
    const d = flat(dropout(x, 0.3));
    manualSeed(3);
    expect(flat(dropout(x, 0.3))).toEqual(d);
  });

  test('the mask is the generator stream: element i is kept when the i-th uniform is >= p', () => {
    const g = new Generator(99);
    const expected = Array.from({ length: 10 }, () => (g.random() >= 0.4 ? 1 / 0.6 : 0));
    expect(flat(dropout(ones([2, 5], { dtype: 'float64' }), 0.4, { generator: new Generator(99) }))).toEqual(expected);
  });

  test.each([0.1, 0.5, 0.8])('keeps about 1 − p of a large tensor (p = %d) and scales kept values by 1/(1 − p)', (p) => {
    const n = 40000;
    const x = ones([200, 200], { dtype: 'float64' });
    const y = flat(dropout(x, p, { generator: new Generator(1) }));
    const kept = y.filter((v) => v !== 0);
    // binomial standard deviation √(n p (1 − p)) <= 100: allow 5 of them
    expect(Math.abs(kept.length - n * (1 - p))).toBeLessThan(500);
    const worst = kept.reduce((m, v) => Math.max(m, Math.abs(v - 1 / (1 - p))), 0);
    expect(worst).toBeLessThan(1e-12);
  });

  test('kept entries carry the input value times 1/(1 − p)', () => {
    manualSeed(5);
    const x = randn([3, 4], { dtype: 'float64' });
    const y = flat(dropout(x, 0.25, { generator: new Generator(2) }));
    flat(x).forEach((v, i) => expect(y[i] === 0 || Math.abs(y[i] - v / 0.75) < 1e-12).toBe(true));
  });

  test('the gradient equals mask/(1 − p), the same mask as the forward', () => {
    const x = randn([5, 6], { dtype: 'float64', requiresGrad: true });
    const y = dropout(x, 0.4, { generator: new Generator(11) });
    const [g] = grad(sum(y), x);
    const mask = flat(dropout(ones([5, 6], { dtype: 'float64' }), 0.4, { generator: new Generator(11) }));
    expect(flat(g as Tensor)).toEqual(mask);
    expect(mask.some((v) => v === 0) && mask.some((v) => v !== 0)).toBe(true);
    mask.forEach((v) => expect(v === 0 || Math.abs(v - 1 / 0.6) < 1e-15).toBe(true));
    // gradcheck with a fixed mask (a fresh generator per call keeps the function deterministic)
    expect(gradcheck((a) => dropout(a, 0.4, { generator: new Generator(11) }), [x]).ok).toBe(true);
    // and with a weighted upstream gradient through a strided input
    const w = randn([6, 5], { dtype: 'float64' });
    const [g2] = grad(sum(mul(dropout(transpose(x, 0, 1), 0.4, { generator: new Generator(12) }), w)), x);
    const m2 = flat(dropout(ones([6, 5], { dtype: 'float64' }), 0.4, { generator: new Generator(12) }));
    const wv = flat(w);
    const expected = Array.from({ length: 30 }, (_, i) => {
      const [r, c] = [Math.floor(i / 6), i % 6]; // x[r][c] is xt[c][r]
      return m2[c * 5 + r] * wv[c * 5 + r];
    });
    flat(g2 as Tensor).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
  });

  test('p = 0 or training: false return the input unchanged; p = 1 gives zeros', () => {
    const x = randn([3, 3], { requiresGrad: true });
    expect(dropout(x, 0)).toBe(x);
    expect(dropout(x, 0.5, { training: false })).toBe(x);
    const z = dropout(x, 1);
    // x·0 (as PyTorch): negative entries give −0, which equals 0
    expect(Array.from(z.toTypedArray()).every((v) => v === 0)).toBe(true);
    const [g] = grad(sum(z), x);
    expect(Array.from((g as Tensor).toTypedArray()).every((v) => v === 0)).toBe(true);
  });

  test('does not advance the generator when it returns the input', () => {
    const g = new Generator(4);
    dropout(ones([10]), 0, { generator: g });
    dropout(ones([10]), 0.5, { generator: g, training: false });
    expect(g.getState()).toEqual(new Generator(4).getState());
  });

  test('p outside [0, 1] is a ValueError; integer input a DTypeError', () => {
    const x = ones([2]);
    expect(() => dropout(x, -0.1)).toThrow(ValueError);
    expect(() => dropout(x, 1.5)).toThrow(/\[0, 1\]/);
    expect(() => dropout(x, NaN)).toThrow(ValueError);
    expect(() => dropout(tensor([1, 2], { dtype: 'int32' }), 0.5)).toThrow(DTypeError);
  });

  test('float32 input keeps its dtype', () => {
    const y = dropout(ones([8]), 0.5, { generator: new Generator(1) });
    expect(y.dtype).toBe('float32');
    Array.from(y.toTypedArray()).forEach((v) => expect(v === 0 || v === 2).toBe(true));
  });
});
