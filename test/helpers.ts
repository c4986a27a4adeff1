/** Small assertions shared by the test suites. */
import { BlockgradError, Generator, tensor, type Tensor } from '../src';

type ErrorClass = new (...args: never[]) => Error;

/**
 * Runs fn and expects an error of class cls (a BlockgradError) raised by `op`: its message starts
 * with `op: ` and contains every part (a string) or matches it (a RegExp). Returns the error.
 */
export function expectError(fn: () => unknown, cls: ErrorClass, op: string, ...parts: (string | RegExp)[]): Error {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(cls);
  expect(caught).toBeInstanceOf(BlockgradError);
  const err = caught as BlockgradError;
  expect(err.op).toBe(op);
  expect(err.message.startsWith(`${op}: `)).toBe(true);
  expect(err.name).toBe(cls.name);
  for (const p of parts) {
    if (typeof p === 'string') expect(err.message).toContain(p);
    else expect(err.message).toMatch(p);
  }
  return err;
}

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

/** A tiny Llama for checkpoint tests: hidden 16, 4 heads of 4 over 2 key/value heads, 2 layers, vocab 40. */
export const TINY_LLAMA = {
  vocabSize: 40,
  hiddenSize: 16,
  intermediateSize: 32,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 32,
};
