/**
 * Initialisers (torch.nn.init): distributions by sample statistics, the fan and gain rules
 * behind the Kaiming and Xavier bounds, in-place semantics, and copy_, the write they all use.
 */
import {
  AutogradError,
  Generator,
  ShapeError,
  ValueError,
  copy_,
  init,
  mul,
  noGrad,
  tensor,
  transpose,
  zeros,
} from '../../src';
import { flat } from '../helpers';

const N = 20000;

function stats(values: number[]): { mean: number; std: number; min: number; max: number } {
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / values.length;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return { mean, std: Math.sqrt(sq / values.length), min, max };
}

// ------------------------------------------------------------------ basic distributions

describe('uniform_ and normal_', () => {
  test('uniform_(a, b): within [a, b), mean (a+b)/2, std (b-a)/√12', () => {
    const t = zeros([N], { dtype: 'float64' });
    expect(init.uniform_(t, -2, 3, new Generator(1))).toBe(t);
    const s = stats(flat(t));
    expect(s.min).toBeGreaterThanOrEqual(-2);
    expect(s.max).toBeLessThan(3);
    expect(s.min).toBeLessThan(-1.99);
    expect(s.max).toBeGreaterThan(2.99);
    expect(Math.abs(s.mean - 0.5)).toBeLessThan(0.05);
    expect(Math.abs(s.std - 5 / Math.sqrt(12)) / (5 / Math.sqrt(12))).toBeLessThan(0.02);
  });

  test('uniform_ defaults to [0, 1)', () => {
    const s = stats(flat(init.uniform_(zeros([N]), undefined, undefined, new Generator(2))));
    expect(s.min).toBeGreaterThanOrEqual(0);
    expect(s.max).toBeLessThan(1);
    expect(Math.abs(s.mean - 0.5)).toBeLessThan(0.01);
  });

  test('normal_(mean, std) sample statistics; default N(0, 1)', () => {
    const t = zeros([N], { dtype: 'float64' });
    init.normal_(t, 1.5, 2, new Generator(3));
    const s = stats(flat(t));
    expect(Math.abs(s.mean - 1.5)).toBeLessThan(0.05);
    expect(Math.abs(s.std - 2)).toBeLessThan(0.05);
    const d = stats(flat(init.normal_(zeros([N]), undefined, undefined, new Generator(4))));
    expect(Math.abs(d.mean)).toBeLessThan(0.03);
    expect(Math.abs(d.std - 1)).toBeLessThan(0.03);
    expect(d.max).toBeGreaterThan(3);
    expect(d.min).toBeLessThan(-3);
  });

  test('invalid ranges are refused before anything is written', () => {
    const t = zeros([4]);
    expect(() => init.uniform_(t, 1, 0)).toThrow(ValueError);
    expect(() => init.uniform_(t, NaN, 1)).toThrow(ValueError);
    expect(() => init.normal_(t, 0, -1)).toThrow(ValueError);
    expect(flat(t)).toEqual([0, 0, 0, 0]);
    // a degenerate interval and std 0 are allowed, as in PyTorch
    expect(flat(init.uniform_(zeros([2]), 3, 3))).toEqual([3, 3]);
    expect(flat(init.normal_(zeros([2]), 5, 0))).toEqual([5, 5]);
  });

  test('the same generator seed gives the same values; the stream advances', () => {
    const a = init.normal_(zeros([6]), 0, 1, new Generator(5));
    const b = init.normal_(zeros([6]), 0, 1, new Generator(5));
    expect(flat(a)).toEqual(flat(b));
    const g = new Generator(5);
    const first = flat(init.uniform_(zeros([6]), 0, 1, g));
    const second = flat(init.uniform_(zeros([6]), 0, 1, g));
    expect(first).not.toEqual(second);
  });

  test('fills multi-dimensional and non-contiguous tensors in place', () => {
    const base = zeros([3, 4], { dtype: 'float64' });
    const view = noGrad(() => transpose(base, 0, 1));
    init.constant_(view, 2);
    expect(flat(base).every((v) => v === 2)).toBe(true);
    const m = zeros([2, 3, 4], { dtype: 'float64' });
    init.uniform_(m, 5, 6, new Generator(6));
    expect(flat(m).every((v) => v >= 5 && v < 6)).toBe(true);
  });
});

describe('constant_, zeros_, ones_', () => {
  test('fill with a value and return the same tensor', () => {
    const t = zeros([2, 3]);
    expect(init.constant_(t, 0.25)).toBe(t);
    expect(flat(t)).toEqual([0.25, 0.25, 0.25, 0.25, 0.25, 0.25]);
    expect(init.ones_(t)).toBe(t);
    expect(flat(t)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(init.zeros_(t)).toBe(t);
    expect(flat(t)).toEqual([0, 0, 0, 0, 0, 0]);
    const h = init.constant_(zeros([2], { dtype: 'float16' }), 0.1);
    expect(h.dtype).toBe('float16');
    expect(flat(h)).toEqual([0.0999755859375, 0.0999755859375]);
  });
});

// ------------------------------------------------------------------ fans and gains

describe('calculateFans and calculateGain', () => {
  test('2-D: fanIn = size(1), fanOut = size(0)', () => {
    expect(init.calculateFans(zeros([5, 3]))).toEqual({ fanIn: 3, fanOut: 5 });
  });

  test('4-D (conv): the receptive field multiplies both', () => {
    expect(init.calculateFans(zeros([8, 4, 3, 2]))).toEqual({ fanIn: 24, fanOut: 48 });
    expect(init.calculateFans(zeros([2, 6, 5]))).toEqual({ fanIn: 30, fanOut: 10 });
  });

  test('fewer than 2 dims is an error', () => {
    expect(() => init.calculateFans(zeros([4]))).toThrow(ValueError);
    expect(() => init.calculateFans(zeros([]))).toThrow(/at least 2 dims/);
  });

  test('calculateGain matches torch.nn.init.calculate_gain', () => {
    expect(init.calculateGain('linear')).toBe(1);
    expect(init.calculateGain('sigmoid')).toBe(1);
    expect(init.calculateGain('tanh')).toBeCloseTo(5 / 3, 15);
    expect(init.calculateGain('relu')).toBeCloseTo(Math.sqrt(2), 15);
    expect(init.calculateGain('leaky_relu')).toBeCloseTo(Math.sqrt(2 / (1 + 0.01 ** 2)), 15);
    expect(init.calculateGain('leaky_relu', 0.2)).toBeCloseTo(Math.sqrt(2 / 1.04), 15);
    expect(init.calculateGain('leaky_relu', 0)).toBeCloseTo(Math.sqrt(2), 15);
    expect(init.calculateGain('leaky_relu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 15);
    expect(() => init.calculateGain('selu' as 'relu')).toThrow(ValueError);
  });
});

// ------------------------------------------------------------------ Kaiming and Xavier

/** Values within ±bound, reaching close to it, with the std of U(-bound, bound). */
function expectUniformBound(values: number[], bound: number): void {
  const s = stats(values);
  expect(s.max).toBeLessThanOrEqual(bound);
  expect(s.min).toBeGreaterThanOrEqual(-bound);
  expect(s.max).toBeGreaterThan(0.99 * bound);
  expect(s.min).toBeLessThan(-0.99 * bound);
  expect(Math.abs(s.std / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.03);
}

describe('kaiming and xavier', () => {
  // fanIn = 200, fanOut = 64
  const shape = [64, 200];

  test('kaimingUniform_ default (a = 0, leaky_relu, fanIn): bound √2·√(3/fanIn)', () => {
    const t = zeros(shape, { dtype: 'float64' });
    init.kaimingUniform_(t, { generator: new Generator(7) });
    expectUniformBound(flat(t), Math.sqrt(2) * Math.sqrt(3 / 200));
  });

  test('kaimingUniform_ mode fanOut uses size(0)', () => {
    const t = zeros(shape, { dtype: 'float64' });
    init.kaimingUniform_(t, { mode: 'fanOut', generator: new Generator(8) });
    expectUniformBound(flat(t), Math.sqrt(2) * Math.sqrt(3 / 64));
  });

  test('kaimingUniform_ nonlinearity relu: gain √2; a = √5 gives 1/√fanIn (PyTorch Linear)', () => {
    const r = zeros(shape, { dtype: 'float64' });
    init.kaimingUniform_(r, { nonlinearity: 'relu', generator: new Generator(9) });
    expectUniformBound(flat(r), Math.sqrt(6 / 200));
    const l = zeros(shape, { dtype: 'float64' });
    init.kaimingUniform_(l, { a: Math.sqrt(5), generator: new Generator(10) });
    expectUniformBound(flat(l), 1 / Math.sqrt(200));
    const lin = zeros(shape, { dtype: 'float64' });
    init.kaimingUniform_(lin, { nonlinearity: 'linear', mode: 'fanOut', generator: new Generator(11) });
    expectUniformBound(flat(lin), Math.sqrt(3 / 64));
  });

  test('kaimingNormal_: std gain/√fan', () => {
    const t = zeros([100, 200], { dtype: 'float64' });
    init.kaimingNormal_(t, { nonlinearity: 'relu', generator: new Generator(12) });
    const s = stats(flat(t));
    expect(Math.abs(s.std / Math.sqrt(2 / 200) - 1)).toBeLessThan(0.02);
    expect(Math.abs(s.mean)).toBeLessThan(0.01 * Math.sqrt(2 / 200) * 3);
    init.kaimingNormal_(t, { nonlinearity: 'relu', mode: 'fanOut', generator: new Generator(13) });
    expect(Math.abs(stats(flat(t)).std / Math.sqrt(2 / 100) - 1)).toBeLessThan(0.02);
  });

  test('xavierUniform_: bound gain·√(6/(fanIn+fanOut)); xavierNormal_: std gain·√(2/(fanIn+fanOut))', () => {
    const t = zeros(shape, { dtype: 'float64' });
    init.xavierUniform_(t, 1, new Generator(14));
    expectUniformBound(flat(t), Math.sqrt(6 / 264));
    init.xavierUniform_(t, 2, new Generator(15));
    expectUniformBound(flat(t), 2 * Math.sqrt(6 / 264));
    const c = zeros([16, 8, 3, 3], { dtype: 'float64' }); // fanIn 72, fanOut 144
    init.xavierUniform_(c, 1, new Generator(16));
    expectUniformBound(flat(c), Math.sqrt(6 / 216));
    const n = zeros([100, 200], { dtype: 'float64' });
    init.xavierNormal_(n, 1.5, new Generator(17));
    expect(Math.abs(stats(flat(n)).std / (1.5 * Math.sqrt(2 / 300)) - 1)).toBeLessThan(0.02);
  });

  test('kaiming and xavier need at least 2 dims', () => {
    expect(() => init.kaimingUniform_(zeros([5]))).toThrow(ValueError);
    expect(() => init.xavierNormal_(zeros([5]))).toThrow(ValueError);
  });
});

// ------------------------------------------------------------------ in-place semantics

describe('in place', () => {
  test('every initialiser keeps the tensor object, its dtype, leaf status and requiresGrad', () => {
    const fns: ((t: ReturnType<typeof zeros>) => unknown)[] = [
      (t) => init.uniform_(t),
      (t) => init.normal_(t),
      (t) => init.constant_(t, 3),
      (t) => init.zeros_(t),
      (t) => init.ones_(t),
      (t) => init.kaimingUniform_(t),
      (t) => init.kaimingNormal_(t),
      (t) => init.xavierUniform_(t),
      (t) => init.xavierNormal_(t),
    ];
    for (const fn of fns) {
      const p = zeros([3, 4], { requiresGrad: true });
      const buffer = p.buffer;
      expect(fn(p)).toBe(p);
      expect(p.requiresGrad).toBe(true);
      expect(p.isLeaf).toBe(true);
      expect(p.gradFn).toBeNull();
      expect(p.dtype).toBe('float32');
      expect(p.buffer).toBe(buffer);
      const frozen = zeros([3, 4]);
      fn(frozen);
      expect(frozen.requiresGrad).toBe(false);
    }
  });
});

describe('copy_', () => {
  test('refuses a destination that requires grad while grad mode is on, accepts it inside noGrad', () => {
    const p = zeros([3], { requiresGrad: true });
    expect(() => copy_(p, tensor([1, 2, 3]))).toThrow(AutogradError);
    expect(() => copy_(p, 5)).toThrow(/noGrad/);
    expect(flat(p)).toEqual([0, 0, 0]);
    expect(noGrad(() => copy_(p, tensor([1, 2, 3])))).toBe(p);
    expect(flat(p)).toEqual([1, 2, 3]);
    expect(p.requiresGrad).toBe(true);
    expect(p.isLeaf).toBe(true);
    // a computed (non-leaf) tensor requires grad too
    const q = mul(p, 2);
    expect(() => copy_(q, 0)).toThrow(AutogradError);
    // a plain tensor is fine with grad mode on
    const plain = zeros([2]);
    copy_(plain, tensor([4, 5]));
    expect(flat(plain)).toEqual([4, 5]);
  });

  test('broadcasts the source to the destination shape', () => {
    const t = zeros([2, 3]);
    copy_(t, tensor([1, 2, 3]));
    expect(flat(t)).toEqual([1, 2, 3, 1, 2, 3]);
    copy_(t, tensor([[7], [8]]));
    expect(flat(t)).toEqual([7, 7, 7, 8, 8, 8]);
    copy_(t, tensor(9));
    expect(flat(t)).toEqual([9, 9, 9, 9, 9, 9]);
    copy_(t, -1);
    expect(flat(t)).toEqual([-1, -1, -1, -1, -1, -1]);
    copy_(t, tensor([[[1, 2, 3]]]).reshape([1, 3])); // leading 1s
    expect(flat(t)).toEqual([1, 2, 3, 1, 2, 3]);
  });

  test('a source that does not broadcast to the destination shape is a ShapeError, and nothing is written', () => {
    const t = zeros([2, 3]);
    expect(() => copy_(t, tensor([1, 2]))).toThrow(ShapeError);
    expect(() => copy_(t, zeros([3, 3]))).toThrow(ShapeError);
    // broadcastable together, but to a bigger shape than the destination
    expect(() => copy_(t, zeros([4, 2, 3]))).toThrow(ShapeError);
    expect(() => copy_(zeros([3]), zeros([2, 3]))).toThrow(/does not broadcast/);
    expect(flat(t)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test('casts to the destination dtype (float64 -> float32 rounds, float -> int32 truncates)', () => {
    const f = zeros([2]);
    copy_(f, tensor([0.1, 1 / 3], { dtype: 'float64' }));
    expect(f.dtype).toBe('float32');
    expect(flat(f)).toEqual([Math.fround(0.1), Math.fround(1 / 3)]);
    const i = zeros([3], { dtype: 'int32' });
    copy_(i, tensor([2.7, -2.7, 5]));
    expect(flat(i)).toEqual([2, -2, 5]);
  });

  test('writes through views and handles a source that overlaps the destination', () => {
    const base = zeros([2, 2], { dtype: 'float64' });
    copy_(transpose(base, 0, 1), tensor([[1, 2], [3, 4]], { dtype: 'float64' }));
    expect(flat(base)).toEqual([1, 3, 2, 4]);
    copy_(base, transpose(base, 0, 1));
    expect(flat(base)).toEqual([1, 2, 3, 4]);
  });

  test('refuses non-tensors and disposed tensors', () => {
    const t = zeros([2]);
    expect(() => copy_(t, [1, 2] as unknown as number)).toThrow(ValueError);
    expect(() => copy_(null as unknown as typeof t, 1)).toThrow(ValueError);
    const gone = zeros([2]);
    gone.dispose();
    expect(() => copy_(t, gone)).toThrow(ValueError);
    expect(() => copy_(gone, t)).toThrow(ValueError);
    expect(flat(t)).toEqual([0, 0]);
  });
});
