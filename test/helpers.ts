/** Small assertions shared by the test suites. */
import type { Tensor } from '../src';

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
