/**
 * Row kernels that were reworked for speed, against the plain formulas they replace:
 * softmaxRows keeps each e^{x - m} instead of computing it twice (bit-identical results);
 * crossEntropyBackwardRows computes p = e^{x - m} / Σ e^{x - m} with one exp per class instead
 * of exp(x - lse) (equal to rounding); reduceMiddle accumulates rows instead of transposing
 * (bit-identical to reduceRows on the transposed data).
 */
import { crossEntropyBackwardRows, reduceMiddle, reduceRows, softmaxRows } from '../../../src/kernels/cpu/rows';
import type { ReduceOp } from '../../../src/kernels/backend';
import { mulberry32 as rng } from '../../helpers';


/** The softmax rows as they were written before: exp computed in the sum and again per output. */
function softmaxTwoPass(x: ArrayLike<number>, outer: number, inner: number, out: { [i: number]: number }): void {
  for (let r = 0; r < outer; r++) {
    const base = r * inner;
    let m = -Infinity;
    for (let i = 0; i < inner; i++) if (x[base + i] > m) m = x[base + i];
    if (m === -Infinity) m = 0;
    let s = 0;
    for (let i = 0; i < inner; i++) s += Math.exp(x[base + i] - m);
    for (let i = 0; i < inner; i++) out[base + i] = Math.exp(x[base + i] - m) / s;
  }
}

describe('softmaxRows', () => {
  test('bit-identical to the two-exp formula, in float32, float64 and float16-style (float64) outputs', () => {
    const rand = rng(1);
    for (const [outer, inner] of [[1, 1], [3, 7], [8, 64], [2, 1000]]) {
      const x = Float32Array.from({ length: outer * inner }, () => rand() * 20 - 10);
      x[0] = -Infinity;
      if (inner > 2) x[inner + 1] = NaN;
      for (const Ctor of [Float32Array, Float64Array]) {
        const got = new Ctor(outer * inner);
        const want = new Ctor(outer * inner);
        softmaxRows(x, outer, inner, false, got);
        softmaxTwoPass(x, outer, inner, want);
        expect(Array.from(got)).toEqual(Array.from(want));
      }
    }
  });
  test('hand-computed: softmax([0, ln 3]) = [1/4, 3/4]; an all -inf row stays NaN-free up to 0/0', () => {
    const out = new Float64Array(2);
    softmaxRows([0, Math.log(3)], 1, 2, false, out);
    expect(out[0]).toBeCloseTo(0.25, 15);
    expect(out[1]).toBeCloseTo(0.75, 15);
    const allInf = new Float64Array(2);
    softmaxRows([-Infinity, -Infinity], 1, 2, false, allInf);
    expect(Array.from(allInf)).toEqual([NaN, NaN]); // 0 / 0, as before
  });
});

/** The backward as it was written before: p = exp(x - lse). */
function ceBackwardOld(logits: ArrayLike<number>, target: ArrayLike<number>, g: ArrayLike<number>, outer: number, classes: number, ignore: number, eps: number, out: number[]): void {
  for (let r = 0; r < outer; r++) {
    const base = r * classes;
    const t = target[r];
    if (t === ignore) {
      for (let c = 0; c < classes; c++) out[base + c] = 0;
      continue;
    }
    let m = -Infinity;
    for (let c = 0; c < classes; c++) if (logits[base + c] > m) m = logits[base + c];
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(logits[base + c] - m);
    const lse = m === -Infinity ? -Infinity : Math.log(s) + m;
    for (let c = 0; c < classes; c++) {
      const p = Math.exp(logits[base + c] - lse);
      out[base + c] = g[r] * (p - ((c === t ? 1 - eps : 0) + eps / classes));
    }
  }
}

describe('crossEntropyBackwardRows', () => {
  test('equals the exp(x - lse) formula to rounding; ignored rows are 0; non-finite rows stay NaN', () => {
    const rand = rng(2);
    const outer = 6;
    const classes = 37;
    const logits = Float64Array.from({ length: outer * classes }, () => rand() * 30 - 15);
    for (let c = 0; c < classes; c++) logits[4 * classes + c] = -Infinity; // row 4: all -inf
    logits[5 * classes + 3] = NaN; // row 5: a NaN
    const target = Int32Array.from([0, 5, -100, 36, 1, 2]);
    const g = Float64Array.from([1, 0.5, 2, -1, 1, 1]);
    for (const eps of [0, 0.1]) {
      const got = new Float64Array(outer * classes);
      const want: number[] = [];
      crossEntropyBackwardRows(logits, target, g, { outer, classes, ignoreIndex: -100, labelSmoothing: eps }, got);
      ceBackwardOld(logits, target, g, outer, classes, -100, eps, want);
      for (let i = 0; i < got.length; i++) {
        if (Number.isNaN(want[i])) expect(got[i]).toBeNaN();
        else expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-15 * Math.max(1, Math.abs(want[i])));
      }
      expect(Array.from(got.subarray(2 * classes, 3 * classes)).every((v) => v === 0)).toBe(true);
    }
  });
});

describe('reduceMiddle', () => {
  test('bit-identical to reduceRows on the transposed data, NaN and signed zeros included', () => {
    const rand = rng(3);
    for (const [outer, mid, inner] of [[1, 50, 33], [3, 4, 5], [2, 1, 3], [1, 3, 1], [4, 0, 2]]) {
      const x = Float32Array.from({ length: outer * mid * inner }, () => (rand() < 0.05 ? [NaN, -0, 0][Math.floor(rand() * 3)] : rand() * 2 - 1));
      // transposed [outer, inner, mid]
      const t = new Float32Array(x.length);
      for (let o = 0; o < outer; o++) for (let m = 0; m < mid; m++) for (let i = 0; i < inner; i++) t[(o * inner + i) * mid + m] = x[(o * mid + m) * inner + i];
      for (const op of ['sum', 'max', 'min'] as ReduceOp[]) {
        for (const Ctor of [Float32Array, Float64Array]) {
          const got = new Ctor(outer * inner);
          const want = new Ctor(outer * inner);
          reduceMiddle(op, x, outer, mid, inner, got);
          reduceRows(op, t, outer * inner, mid, want);
          expect([op, Array.from(got)]).toEqual([op, Array.from(want)]);
        }
      }
    }
  });
  test('sums in doubles, not in the output type (a float32 accumulator would lose the 1s)', () => {
    // 2^24 + 1 + 1 + ... : in float32 each +1 rounds away; in doubles they add up to 2^24 + 8
    const x = Float32Array.from([2 ** 24, 1, 1, 1, 1, 1, 1, 1, 1]);
    const out = new Float32Array(1);
    reduceMiddle('sum', x, 1, 9, 1, out);
    expect(out[0]).toBe(2 ** 24 + 8);
  });
});
