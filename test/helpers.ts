/** Small assertions shared by the test suites. */
import { Generator, tensor, type Tensor } from '../src';

/** Element-wise |actual - expected| <= tol·max(1, |expected|), naming the first element that is off. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)))) {
      throw new Error(`element ${i}: got ${a}, expected ${e} (tol ${tol})`);
    }
  }
}

/** A tensor's values as a flat number array, row-major. */
export const flat = (t: Tensor): number[] => Array.from(t.toTypedArray() as ArrayLike<number>);

/** A small deterministic PRNG (mulberry32), uniform in [0, 1): independent of blockgrad's own Generator. */
export function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A float64 leaf of `shape` requiring grad, with values uniform in [lo, hi) drawn from blockgrad's
 * seeded Generator: the input of the gradchecks (`.detach()` it for one that needs no grad).
 */
export function uniformLeaf(shape: readonly number[], seed: number, lo = -2, hi = 2): Tensor {
  const g = new Generator(seed);
  const values = Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * g.random());
  return tensor(values, { dtype: 'float64' }).reshape(shape).detach().requiresGrad_();
}

/** `n` numbers uniform in [lo, hi) from mulberry32(seed). */
export function uniformValues(n: number, seed: number, lo = -1, hi = 1): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * rand());
}
