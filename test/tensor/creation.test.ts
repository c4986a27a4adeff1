/**
 * Creation functions: filled tensors, ranges, identity, *Like, and seeded randomness (manualSeed,
 * Generator objects, saving and restoring a generator's state).
 */
import {
  Generator,
  Tensor,
  ValueError,
  arange,
  defaultGenerator,
  eye,
  full,
  fullLike,
  linspace,
  manualSeed,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  zeros,
  zerosLike,
  type DType,
} from '../../src';

const flat = (t: Tensor): number[] => Array.from(t.toTypedArray() as ArrayLike<number>);

// ------------------------------------------------------------------ filled

describe('zeros, ones, full', () => {
  test('shape, default float32, values', () => {
    const z = zeros([2, 3]);
    expect(z.shape).toEqual([2, 3]);
    expect(z.dtype).toBe('float32');
    expect(flat(z)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(flat(ones([4]))).toEqual([1, 1, 1, 1]);
    const f = full([2, 2], 2.5, { dtype: 'float64' });
    expect(f.dtype).toBe('float64');
    expect(f.toArray()).toEqual([
      [2.5, 2.5],
      [2.5, 2.5],
    ]);
    expect(full([3], -7, { dtype: 'int32' }).toArray()).toEqual([-7, -7, -7]);
    expect(full([2], 0.1, { dtype: 'float16' }).toArray()).toEqual([0.0999755859375, 0.0999755859375]);
  });

  test('0-d and empty shapes', () => {
    expect(zeros([]).shape).toEqual([]);
    expect(ones([]).item()).toBe(1);
    expect(zeros([0, 3]).numel).toBe(0);
    expect(full([], 4).item()).toBe(4);
  });

  test('every dtype', () => {
    for (const dtype of ['float64', 'float32', 'float16', 'int32'] as DType[]) {
      expect(ones([2], { dtype }).dtype).toBe(dtype);
      expect(flat(ones([2], { dtype }))).toEqual([1, 1]);
      expect(flat(zeros([2], { dtype }))).toEqual([0, 0]);
    }
  });

  test('requiresGrad option', () => {
    expect(zeros([2], { requiresGrad: true }).requiresGrad).toBe(true);
    expect(ones([2], { dtype: 'float64', requiresGrad: true }).isLeaf).toBe(true);
  });

  test('invalid shapes are a ValueError naming the op', () => {
    expect(() => zeros([-1])).toThrow(ValueError);
    expect(() => ones([2, 1.5])).toThrow(/full|ones/);
    expect(() => full([NaN], 1)).toThrow(ValueError);
    expect(() => zeros([2], { dtype: 'bool' as DType })).toThrow(/zeros.*dtype/);
  });
});

describe('zerosLike, onesLike, fullLike', () => {
  test('keep shape and dtype unless overridden', () => {
    const t = full([2, 3], 9, { dtype: 'float64' }).transpose(0, 1);
    const z = zerosLike(t);
    expect(z.shape).toEqual([3, 2]);
    expect(z.dtype).toBe('float64');
    expect(flat(z)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(z.isContiguous()).toBe(true);
    const o = onesLike(t, { dtype: 'int32' });
    expect(o.dtype).toBe('int32');
    expect(flat(o)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(flat(fullLike(t, 3))).toEqual([3, 3, 3, 3, 3, 3]);
    expect(onesLike(t, { requiresGrad: true }).requiresGrad).toBe(true);
    expect(zerosLike(t).buffer).not.toBe(t.buffer);
  });
});

// ------------------------------------------------------------------ ranges

describe('arange', () => {
  test('all-integer arguments give int32', () => {
    const a = arange(5);
    expect(a.dtype).toBe('int32');
    expect(a.toArray()).toEqual([0, 1, 2, 3, 4]);
    expect(arange(2, 8, 2).toArray()).toEqual([2, 4, 6]);
    expect(arange(2, 9, 2).toArray()).toEqual([2, 4, 6, 8]);
    expect(arange(-3, 0).toArray()).toEqual([-3, -2, -1]);
    expect(arange(2, 8, 2).dtype).toBe('int32');
  });

  test('any fractional argument gives float32', () => {
    const a = arange(0, 1, 0.25);
    expect(a.dtype).toBe('float32');
    expect(a.toArray()).toEqual([0, 0.25, 0.5, 0.75]);
    expect(arange(0.5, 3).toArray()).toEqual([0.5, 1.5, 2.5]);
    expect(arange(0, 1, 0.1).shape).toEqual([10]);
    expect(arange(2.5).toArray()).toEqual([0, 1, 2]);
    expect(arange(2.5).dtype).toBe('float32');
  });

  test('negative steps', () => {
    expect(arange(5, 0, -1).toArray()).toEqual([5, 4, 3, 2, 1]);
    expect(arange(5, 0, -2).toArray()).toEqual([5, 3, 1]);
    expect(arange(5, 0, -1).dtype).toBe('int32');
    const f = arange(1, 0, -0.25);
    expect(f.dtype).toBe('float32');
    expect(f.toArray()).toEqual([1, 0.75, 0.5, 0.25]);
  });

  test('empty ranges, explicit dtype, errors', () => {
    expect(arange(0).shape).toEqual([0]);
    expect(arange(5, 0).shape).toEqual([0]);
    expect(arange(0, 5, -1).shape).toEqual([0]);
    expect(arange(3, { dtype: 'float64' }).dtype).toBe('float64');
    expect(arange(0, 3, 1, { dtype: 'float64' }).toArray()).toEqual([0, 1, 2]);
    expect(arange(1, 3, { dtype: 'float16' } as never).dtype).toBe('float16');
    expect(arange(0, 3, 1, { requiresGrad: true, dtype: 'float32' }).requiresGrad).toBe(true);
    expect(() => arange(0, 5, 0)).toThrow(ValueError);
    expect(() => arange(0, Infinity)).toThrow(ValueError);
    expect(() => arange(0, 5, NaN)).toThrow(/arange/);
  });
});

describe('linspace', () => {
  test('evenly spaced, endpoints exact', () => {
    expect(linspace(0, 1, 5).toArray()).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(linspace(0, 1, 5).dtype).toBe('float32');
    const l = linspace(-1.3, 2.7, 7, { dtype: 'float64' });
    const v = flat(l);
    expect(v[0]).toBe(-1.3);
    expect(v[6]).toBe(2.7);
    for (let i = 0; i < 7; i++) expect(v[i]).toBeCloseTo(-1.3 + (4 * i) / 6, 14);
    const m = flat(linspace(0.1, 0.7, 4, { dtype: 'float64' }));
    expect(m[0]).toBe(0.1);
    expect(m[3]).toBe(0.7);
    expect(flat(linspace(10, -10, 5, { dtype: 'float64' }))).toEqual([10, 5, 0, -5, -10]);
  });

  test('steps 0, 1 and 2 (steps = 1 gives start, as PyTorch)', () => {
    expect(linspace(0, 1, 0).shape).toEqual([0]);
    expect(linspace(3, 10, 1).toArray()).toEqual([3]);
    expect(linspace(-10, 10, 1).toArray()).toEqual([-10]);
    expect(linspace(3, 10, 2).toArray()).toEqual([3, 10]);
  });

  test('invalid steps', () => {
    expect(() => linspace(0, 1, -1)).toThrow(ValueError);
    expect(() => linspace(0, 1, 2.5)).toThrow(/linspace/);
  });
});

describe('eye', () => {
  test('square, rectangular, dtype', () => {
    expect(eye(3).toArray()).toEqual([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    expect(eye(3).dtype).toBe('float32');
    expect(eye(2, 3).toArray()).toEqual([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    expect(eye(3, 2, { dtype: 'int32' }).toArray()).toEqual([
      [1, 0],
      [0, 1],
      [0, 0],
    ]);
    expect(eye(0).shape).toEqual([0, 0]);
    expect(() => eye(-1)).toThrow(ValueError);
  });
});

// ------------------------------------------------------------------ random

describe('random creation', () => {
  test('rand is in [0, 1), randn and rand default to float32', () => {
    manualSeed(1);
    const r = rand([1000]);
    expect(r.dtype).toBe('float32');
    const v = flat(r);
    expect(v.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(v).size).toBeGreaterThan(990);
    expect(randn([3]).dtype).toBe('float32');
    expect(rand([2, 3], { dtype: 'float64' }).shape).toEqual([2, 3]);
  });

  test('manualSeed makes the default stream repeat', () => {
    manualSeed(42);
    const a = flat(randn([5], { dtype: 'float64' }));
    const b = flat(rand([3], { dtype: 'float64' }));
    manualSeed(42);
    expect(flat(randn([5], { dtype: 'float64' }))).toEqual(a);
    expect(flat(rand([3], { dtype: 'float64' }))).toEqual(b);
    manualSeed(43);
    expect(flat(randn([5], { dtype: 'float64' }))).not.toEqual(a);
    expect(manualSeed(7)).toBe(defaultGenerator);
  });

  test('a Generator object: same seed same stream, and the default stream is untouched', () => {
    const g1 = new Generator(123);
    const g2 = new Generator(123);
    const a = flat(randn([6], { dtype: 'float64', generator: g1 }));
    const b = flat(randn([6], { dtype: 'float64', generator: g2 }));
    expect(a).toEqual(b);
    expect(flat(rand([4], { generator: g1 }))).toEqual(flat(rand([4], { generator: g2 })));
    expect(flat(randn([6], { dtype: 'float64', generator: new Generator(124) }))).not.toEqual(a);

    manualSeed(5);
    const x1 = flat(rand([3], { dtype: 'float64' }));
    manualSeed(5);
    rand([10], { generator: new Generator(9) });
    expect(flat(rand([3], { dtype: 'float64' }))).toEqual(x1);
  });

  test('two generators with the same seed give the same raw stream; reseeding restarts it', () => {
    const g1 = new Generator(2024);
    const g2 = new Generator(2024);
    const s1 = Array.from({ length: 50 }, () => g1.nextUint32());
    const s2 = Array.from({ length: 50 }, () => g2.nextUint32());
    expect(s1).toEqual(s2);
    expect(s1.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)).toBe(true);
    g1.manualSeed(2024);
    expect(Array.from({ length: 50 }, () => g1.nextUint32())).toEqual(s1);
    expect(new Generator(0).nextUint32()).not.toBe(new Generator(1).nextUint32());
    expect(new Generator(2 ** 40).nextUint32()).not.toBe(new Generator(0).nextUint32());
  });

  test('getState/setState resumes exactly, also in another generator', () => {
    const g = new Generator(77);
    randn([13], { generator: g });
    const state = g.getState();
    const next = flat(randn([20], { dtype: 'float64', generator: g }));
    const after = flat(rand([5], { dtype: 'float64', generator: g }));
    // the state is a snapshot, not a live view
    expect(g.getState()).not.toEqual(state);
    g.setState(state);
    expect(flat(randn([20], { dtype: 'float64', generator: g }))).toEqual(next);
    expect(flat(rand([5], { dtype: 'float64', generator: g }))).toEqual(after);
    const other = new Generator(1).setState(JSON.parse(JSON.stringify(state)));
    expect(flat(randn([20], { dtype: 'float64', generator: other }))).toEqual(next);
  });

  test('setState rejects malformed states', () => {
    const g = new Generator(1);
    expect(() => g.setState({ algorithm: 'mt19937', s: [1, 2, 3, 4] } as never)).toThrow(ValueError);
    expect(() => g.setState({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0] })).toThrow(ValueError);
    expect(() => g.setState({ algorithm: 'xoshiro128**', s: [1, 2, 3] } as never)).toThrow(ValueError);
    expect(() => g.setState({ algorithm: 'xoshiro128**', s: [1, 2, 3, -4] })).toThrow(ValueError);
    expect(() => new Generator(NaN)).toThrow(ValueError);
  });

  test('randn sample mean and variance on 10k samples', () => {
    const v = flat(randn([10000], { dtype: 'float64', generator: new Generator(31) }));
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1);
    expect(Math.abs(mean)).toBeLessThan(0.04); // standard error 0.01
    expect(Math.abs(variance - 1)).toBeLessThan(0.06); // standard error ~0.014
    const within1 = v.filter((x) => Math.abs(x) < 1).length / v.length;
    expect(within1).toBeGreaterThan(0.66); // 0.6827
    expect(within1).toBeLessThan(0.705);
    const u = flat(rand([10000], { dtype: 'float64', generator: new Generator(32) }));
    expect(Math.abs(u.reduce((a, b) => a + b, 0) / u.length - 0.5)).toBeLessThan(0.015);
  });

  test('randint: int32 in [low, high), every value reached, deterministic', () => {
    const g = new Generator(8);
    const r = randint(-2, 3, [2000], { generator: g });
    expect(r.dtype).toBe('int32');
    const v = flat(r);
    expect(v.every((x) => Number.isInteger(x) && x >= -2 && x < 3)).toBe(true);
    expect(new Set(v)).toEqual(new Set([-2, -1, 0, 1, 2]));
    for (const k of [-2, -1, 0, 1, 2]) {
      const share = v.filter((x) => x === k).length / v.length;
      expect(Math.abs(share - 0.2)).toBeLessThan(0.04);
    }
    expect(flat(randint(-2, 3, [2000], { generator: new Generator(8) }))).toEqual(v);
    manualSeed(3);
    const d1 = flat(randint(0, 100, [10]));
    manualSeed(3);
    expect(flat(randint(0, 100, [10]))).toEqual(d1);
    expect(randint(0, 10, [3], { dtype: 'float64' }).dtype).toBe('float64');
    expect(flat(randint(4, 5, [3]))).toEqual([4, 4, 4]);
  });

  test('randint errors', () => {
    expect(() => randint(5, 5, [2])).toThrow(ValueError);
    expect(() => randint(0, 2.5, [2])).toThrow(/randint/);
    expect(() => randint(0, 2, [-1])).toThrow(ValueError);
  });

  test('random tensors can require grad', () => {
    const w = randn([2, 2], { dtype: 'float64', requiresGrad: true });
    expect(w.requiresGrad).toBe(true);
    expect(() => randint(0, 2, [2], { requiresGrad: true })).toThrow(/requiresGrad_/);
  });
});
