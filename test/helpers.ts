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
