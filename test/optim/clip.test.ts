/** clipGradNorm (2-, p- and inf-norms, scaling, non-finite norms) and clipGradValue. */
import { Tensor, ValueError, clipGradNorm, clipGradValue, memory, tensor } from '../../src';
import { flat } from '../helpers';
import { expectRel } from './reference';

/** Two parameters with gradients [3, 4] and [[12]] (2-norm 13, 1-norm 19, inf-norm 12), and one without. */
function params(dtype: 'float64' | 'float32' | 'float16' = 'float64'): Tensor[] {
  const a = tensor([0, 0], { dtype, requiresGrad: true });
  const b = tensor([[0]], { dtype, requiresGrad: true });
  const c = tensor([0], { dtype, requiresGrad: true });
  a.grad = tensor([3, 4], { dtype });
  b.grad = tensor([[12]], { dtype });
  return [a, b, c];
}

describe('clipGradNorm', () => {
  test('2-norm: returns 13 and scales by maxNorm / (13 + 1e-6)', () => {
    const ps = params();
    expect(clipGradNorm(ps, 6.5)).toBe(13);
    const coef = 6.5 / (13 + 1e-6);
    expectRel(flat(ps[0].grad as Tensor), [3 * coef, 4 * coef], 1e-15);
    expectRel(flat(ps[1].grad as Tensor), [12 * coef], 1e-15);
    expect(ps[2].grad).toBeNull();
    // the clipped gradients have norm just under 6.5
    const g = [...flat(ps[0].grad as Tensor), ...flat(ps[1].grad as Tensor)];
    expect(Math.hypot(...g)).toBeLessThan(6.5);
    expect(Math.hypot(...g)).toBeCloseTo(6.5, 6);
  });

  test('inf-norm is the largest absolute value; 1-norm the sum of them; p = 3', () => {
    let ps = params();
    (ps[0].grad as Tensor).setData_(tensor([3, -4], { dtype: 'float64' }));
    expect(clipGradNorm(ps, 6, Infinity)).toBe(12);
    expectRel(flat(ps[1].grad as Tensor), [12 * (6 / (12 + 1e-6))], 1e-15);
    ps = params();
    expect(clipGradNorm(ps, 100, 1)).toBe(19);
    ps = params();
    expect(clipGradNorm(ps, 100, 3)).toBeCloseTo((27 + 64 + 1728) ** (1 / 3), 12);
  });

  test('no scaling when the norm is below maxNorm: gradients unchanged, bit for bit', () => {
    const ps = params('float32');
    const g = ps[0].grad;
    expect(clipGradNorm(ps, 20)).toBe(13);
    expect(ps[0].grad).toBe(g);
    expect(flat(ps[0].grad as Tensor)).toEqual([3, 4]);
  });

  test('the gradient tensors are scaled in place (same objects), float16 included', () => {
    const ps = params('float16');
    const g = ps[1].grad;
    expect(clipGradNorm(ps, 1)).toBe(13);
    expect(ps[1].grad).toBe(g);
    expect(flat(g as Tensor)).toEqual(flat(tensor([12 * (1 / (13 + 1e-6))], { dtype: 'float16' })));
  });

  test('a non-finite norm: an error with errorIfNonfinite (nothing scaled), else scaled as PyTorch', () => {
    let ps = params();
    (ps[1].grad as Tensor).setData_(tensor([[Infinity]], { dtype: 'float64' }));
    expect(() => clipGradNorm(ps, 1, 2, { errorIfNonfinite: true })).toThrow(/total norm of order 2 of the gradients is Infinity/);
    expect(flat(ps[0].grad as Tensor)).toEqual([3, 4]);
    expect(clipGradNorm(ps, 1)).toBe(Infinity);
    expect(flat(ps[0].grad as Tensor)).toEqual([0, 0]); // scaled by 1/inf = 0, as torch does
    ps = params();
    (ps[0].grad as Tensor).setData_(tensor([NaN, 4], { dtype: 'float64' }));
    expect(clipGradNorm(ps, 1)).toBeNaN();
    expect(flat(ps[1].grad as Tensor)).toEqual([NaN]);
  });

  test('no gradients: returns 0; a tied parameter listed twice is clipped once', () => {
    expect(clipGradNorm([tensor([1], { requiresGrad: true })], 1)).toBe(0);
    const ps = params();
    expect(clipGradNorm([ps[0], ps[0], ps[1]], 6.5)).toBe(13);
    expectRel(flat(ps[0].grad as Tensor), [3 * (6.5 / (13 + 1e-6)), 4 * (6.5 / (13 + 1e-6))], 1e-15);
  });

  test('bad arguments', () => {
    expect(() => clipGradNorm(params(), -1)).toThrow(ValueError);
    expect(() => clipGradNorm(params(), 1, 0)).toThrow(/normType must be a positive number or Infinity/);
    expect(() => clipGradNorm([1] as never, 1)).toThrow(/every parameter must be a Tensor/);
  });
});

describe('clipGradValue', () => {
  test('clamps each element into [-v, v] in place', () => {
    const ps = params();
    (ps[0].grad as Tensor).setData_(tensor([3, -4], { dtype: 'float64' }));
    clipGradValue(ps, 3.5);
    expect(flat(ps[0].grad as Tensor)).toEqual([3, -3.5]);
    expect(flat(ps[1].grad as Tensor)).toEqual([3.5]);
    expect(() => clipGradValue(ps, -1)).toThrow(/clipValue must be a number >= 0/);
  });
});

describe('clipping frees its temporaries', () => {
  // no finalizer runs inside a synchronous test: op outputs left alive would stay counted. (Only
  // clipGradValue is measured exactly: the norms' sum() and max() keep an internal view of their
  // input until the GC runs, which is reduce.ts's to fix.)
  test.each(['float16', 'float32'] as const)('%s: clipGradValue leaves no op output alive', (dtype) => {
    const ps = [tensor([[3, -4], [1, 2]], { dtype, requiresGrad: true }), tensor([12], { dtype, requiresGrad: true })];
    ps[0].grad = tensor([[3, -4], [1, 2]], { dtype });
    ps[1].grad = tensor([12], { dtype });
    const before = memory.stats().byCategory.other;
    clipGradValue(ps, 5);
    expect(memory.stats().byCategory.other).toBe(before);
    expect(flat(ps[0].grad as Tensor)).toEqual([3, -4, 1, 2]);
    expect(flat(ps[1].grad as Tensor)).toEqual([5]);
  });
});
