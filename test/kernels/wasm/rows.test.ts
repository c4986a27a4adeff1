/**
 * The wasm row kernels (wasm/assembly/rows.ts, reduce.ts) against the cpu backend's TypeScript
 * kernels (src/kernels/cpu/rows.ts), at the training shapes, at awkward sizes and on special
 * values.
 *
 * Tolerances, with u = 2^-24 (a float32 rounding), from how each result is formed:
 *  - e^d (d = x - max, rounded to float32 first: relative error |d|·u) is math.ts's float32
 *    vector exp, within 1 ulp (2u); Σ e^d is summed in doubles, so its relative error is at most
 *    (W + 2)·u with W = Σ p·|d| over the row (p = softmax). A softmax probability, divided in
 *    float32 after Σ is rounded, then compared with the cpu's rounded value: within
 *    (|d| + W + 6)·u of it, relative (measured: (|d| + 2.5)·u).
 *  - log-softmax and cross-entropy subtract log Σ (a double): Σ's relative error becomes an
 *    absolute one: within (|value| + W + 4)·u (measured: (|value| + 1)·u).
 *  - layer / RMS norm compute in doubles like the cpu, only the sums' order differs: 2u relative
 *    (measured: 1u, one rounding boundary).
 *  - the CE gradient g·(p - q) adds the roundings of q, of p - q and of the product: within
 *    |g|·u·((|d| + W + 6)·p + 3q + |p - q|).
 *  - row sums differ only by the order of a double sum: 2u relative, plus n·2^-52 of Σ|x|.
 *  - max / min and reduceMiddle are exact: compared bit for bit (NaN for NaN, the sign of zeros).
 */
import { BackendError } from '../../../src/errors';
import * as cpu from '../../../src/kernels/cpu/rows';
import {
  crossEntropyBackwardRowsInto,
  crossEntropyRowsInto,
  normalizeRowsInto,
  reduceMiddleInto,
  reduceMiddleTasks,
  reduceRowsInto,
  softmaxRowsInto,
} from '../../../src/kernels/wasm/rows';
import { mulberry32 } from '../../helpers';
import { createWasmEnv, expectGuards, guarded, reversedRunner, type WasmTestEnv } from './helpers';

const env: WasmTestEnv = createWasmEnv();
afterEach(() => env.reset());

const U = 2 ** -24;
const TINY = 2 ** -148; // two subnormal steps: results that underflow
const INNERS = [1, 3, 5, 17, 259];
const OUTERS = [1, 7, 256];

/** Random rows: logits of training scale (|x| < 8), with a few far-off values. */
function randomRows(outer: number, inner: number, seed: number, scale = 8): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: outer * inner }, () => (rand() < 0.02 ? 40 : scale) * (rand() * 2 - 1));
}

/** Rows with special values, padded or cut to `inner` (each row also makes sense at inner 1). */
function specialRows(inner: number): Float32Array {
  const I = Infinity;
  const rows = [
    [-I, 0, 1], [-I, -I, -I], [NaN, 1, 2], [1, I, 2], [I, I, 0], [-I, NaN, -I], [0, -0, 0],
    [1e30, -1e30, 3], [-100, -200, 0], [5, 5, 5], [-0, 0, -1], [3e-39, -3e-39, 0], [I, -I, 1],
  ];
  return Float32Array.from(rows.flatMap((r) => Array.from({ length: inner }, (_, i) => (i < r.length ? r[i] : r[i % r.length] - (i % 7)))));
}


function putInt32(values: ArrayLike<number>): number {
  const ptr = env.alloc(values.length * 4);
  new Int32Array(env.memory.buffer, ptr, values.length).set(Array.from(values));
  return ptr;
}

/** Every got[i] is ref[i] (exactly for non-finite refs) or, for finite ones, within tol(i). */
function expectWithin(got: ArrayLike<number>, ref: ArrayLike<number>, tol: (i: number) => number, what: string): void {
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const g = got[i];
    const r = Math.fround(ref[i]); // what the cpu backend stores
    const ok = Number.isFinite(r) ? Math.abs(g - ref[i]) <= tol(i) + TINY : Object.is(g, r) || (Number.isNaN(g) && Number.isNaN(r));
    if (!ok) throw new Error(`${what}: element ${i} is ${g}, expected ${ref[i]} (tolerance ${tol(i)})`);
  }
}

/** Bit-for-bit equality (NaN for NaN, -0 for -0). */
function expectSame(got: ArrayLike<number>, ref: ArrayLike<number>, what: string): void {
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const r = Math.fround(ref[i]);
    if (!(Object.is(got[i], r) || (Number.isNaN(got[i]) && Number.isNaN(r)))) throw new Error(`${what}: element ${i} is ${got[i]}, expected ${r}`);
  }
}

/**
 * What the tolerances need of each element: d = x - max of its row (the exponent softmax uses),
 * p = the cpu's softmax, and per row W = Σ p·|d| (terms with p = 0 left out: d may be -inf).
 */
function softmaxTerms(x: Float32Array, outer: number, inner: number): { d: Float64Array; p: Float64Array; w: Float64Array } {
  const d = new Float64Array(x.length);
  const p = new Float64Array(x.length);
  const w = new Float64Array(outer);
  cpu.softmaxRows(x, outer, inner, false, p);
  for (let r = 0; r < outer; r++) {
    let m = -Infinity;
    for (let i = 0; i < inner; i++) if (x[r * inner + i] > m) m = x[r * inner + i];
    for (let i = r * inner; i < (r + 1) * inner; i++) {
      d[i] = x[i] - (m === -Infinity ? 0 : m);
      if (p[i] > 0) w[r] += p[i] * Math.abs(d[i]);
    }
  }
  return { d, p, w };
}

/** The softmax tolerance over u: (|d| + W + 6)·p, 0 where p is 0. */
const probErr = (d: number, w: number, p: number): number => (p === 0 ? 0 : (Math.abs(d) + w + 6) * p);


// ---------------------------------------------------------------------------------------------

function runSoftmax(x: Float32Array, outer: number, inner: number, log: boolean, rt = env.runner): Float32Array {
  const xp = env.put(x);
  const op = guarded(env, outer * inner);
  expect(softmaxRowsInto(rt, xp, op, outer, inner, log)).toBe(true);
  expectGuards(env, op, outer * inner);
  return env.getF32(op, outer * inner);
}

function checkSoftmax(x: Float32Array, outer: number, inner: number, log: boolean, what: string): void {
  const ref = new Float64Array(outer * inner);
  cpu.softmaxRows(x, outer, inner, log, ref);
  const { d, w } = softmaxTerms(x, outer, inner);
  const wOf = (i: number) => w[Math.floor(i / inner)];
  const tol = log ? (i: number) => (Math.abs(ref[i]) + wOf(i) + 4) * U : (i: number) => U * probErr(d[i], wOf(i), ref[i]);
  expectWithin(runSoftmax(x, outer, inner, log), ref, tol, what);
  env.reset();
}

describe('softmaxRowsInto', () => {
  it.each([false, true])('log %s: random rows at every size, and the training shape [1024 x 259]', (log) => {
    let seed = 1;
    for (const outer of OUTERS) for (const inner of INNERS) checkSoftmax(randomRows(outer, inner, seed++), outer, inner, log, `${outer}x${inner}`);
    checkSoftmax(randomRows(1024, 259, 99), 1024, 259, log, 'training shape');
  });

  it.each([false, true])('log %s: -inf, all -inf (NaN), NaN, +inf, huge and tiny values as the cpu', (log) => {
    for (const inner of INNERS) checkSoftmax(specialRows(inner), 13, inner, log, `special rows, inner ${inner}`);
    // spelled out: a row of all -inf is NaN, -inf entries are 0 (log: -inf)
    expect(runSoftmax(new Float32Array(0), 4, 0, log)).toHaveLength(0);
    const got = runSoftmax(Float32Array.from([-Infinity, -Infinity, -Infinity, 0, -Infinity, Math.log(3)]), 2, 3, log);
    expect(Array.from(got.subarray(0, 3)).every(Number.isNaN)).toBe(true);
    expect(got[4]).toBe(log ? -Infinity : 0);
    expect(got[5]).toBeCloseTo(log ? Math.log(0.75) : 0.75, 6);
  });

  it('tasks in any order give the bits of one row at a time', () => {
    const x = randomRows(300, 259, 5);
    const all = runSoftmax(x, 300, 259, false, reversedRunner(env));
    for (const r of [0, 126, 127, 299]) {
      expect(Array.from(runSoftmax(x.subarray(r * 259, (r + 1) * 259), 1, 259, false))).toEqual(Array.from(all.subarray(r * 259, (r + 1) * 259)));
    }
  });
});

// ---------------------------------------------------------------------------------------------

function checkNormalize(kind: 'layer' | 'rms', x: Float32Array, outer: number, inner: number, eps: number, what: string, rt = env.runner): Float32Array {
  const ref = new Float64Array(outer * inner);
  const refRstd = new Float64Array(outer);
  cpu.normalizeRows(kind, x, outer, inner, eps, ref, refRstd);
  const xp = env.put(x);
  const np = guarded(env, outer * inner);
  const rp = guarded(env, outer);
  expect(normalizeRowsInto(rt, kind, xp, np, rp, outer, inner, eps)).toBe(true);
  expectGuards(env, np, outer * inner);
  expectGuards(env, rp, outer);
  const got = env.getF32(np, outer * inner);
  expectWithin(got, ref, (i) => 2 * U * Math.abs(ref[i]), `${what} normalized`);
  expectWithin(env.getF32(rp, outer), refRstd, (r) => 2 * U * refRstd[r], `${what} rstd`);
  env.reset();
  return got;
}

describe('normalizeRowsInto', () => {
  it.each(['layer', 'rms'] as const)('%s: random rows at every size, and [256 x 256]', (kind) => {
    let seed = 11;
    for (const outer of OUTERS) for (const inner of INNERS) checkNormalize(kind, randomRows(outer, inner, seed++, 3), outer, inner, 1e-5, `${outer}x${inner}`);
    checkNormalize(kind, randomRows(256, 256, 98, 1), 256, 256, 1e-6, 'training shape');
  });

  it.each(['layer', 'rms'] as const)('%s: special values, constant rows, eps 0, an offset mean', (kind) => {
    for (const inner of INNERS) checkNormalize(kind, specialRows(inner), 13, inner, 1e-5, `special rows, inner ${inner}`);
    checkNormalize(kind, new Float32Array(12).fill(0), 3, 4, 0, 'zeros, eps 0 (NaN as 0·inf)');
    checkNormalize(kind, randomRows(7, 259, 3, 1).map((v) => v + 1000), 7, 259, 1e-5, 'mean 1000');
    checkNormalize(kind, new Float32Array(0), 3, 0, 1e-5, 'empty rows (rstd NaN: 0/0)');
  });

  it('tasks in any order give the bits of one row at a time', () => {
    const x = randomRows(600, 256, 6, 2);
    const all = checkNormalize('rms', x, 600, 256, 1e-6, 'split', reversedRunner(env));
    for (const r of [0, 255, 256, 599]) {
      const one = checkNormalize('rms', x.subarray(r * 256, (r + 1) * 256), 1, 256, 1e-6, 'row');
      expect(Array.from(one)).toEqual(Array.from(all.subarray(r * 256, (r + 1) * 256)));
    }
  });
});

// ---------------------------------------------------------------------------------------------

interface CeCase { x: Float32Array; target: Int32Array; grad: Float32Array; outer: number; classes: number; ignore: number; eps: number }

function ceCase(x: Float32Array, outer: number, classes: number, seed: number, eps: number, ignore = -100): CeCase {
  const rand = mulberry32(seed);
  const target = Int32Array.from({ length: outer }, (_, r) => (r % 5 === 3 ? ignore : r % 5 === 1 ? classes - 1 : r % 5 === 2 ? 0 : Math.floor(rand() * classes)));
  const grad = Float32Array.from({ length: outer }, () => (rand() * 2 - 1) / outer);
  return { x, target, grad, outer, classes, ignore, eps };
}

function checkCrossEntropy(c: CeCase, what: string, rt = env.runner): { loss: Float32Array; dx: Float32Array } {
  const { x, target, grad, outer, classes, ignore, eps } = c;
  const n = outer * classes;
  const refLoss = new Float64Array(outer);
  const refDx = new Float64Array(n);
  cpu.crossEntropyRows(x, target, { outer, classes, ignoreIndex: ignore, labelSmoothing: eps }, refLoss);
  cpu.crossEntropyBackwardRows(x, target, grad, { outer, classes, ignoreIndex: ignore, labelSmoothing: eps }, refDx);
  const xp = env.put(x);
  const tp = putInt32(target);
  const gp = env.put(grad);
  const lp = guarded(env, outer);
  const dp = guarded(env, n);
  expect(crossEntropyRowsInto(rt, xp, tp, lp, { outer, classes, ignoreIndex: ignore, labelSmoothing: eps })).toBe(true);
  expect(crossEntropyBackwardRowsInto(rt, xp, tp, gp, dp, { outer, classes, ignoreIndex: ignore, labelSmoothing: eps })).toBe(true);
  expectGuards(env, lp, outer);
  expectGuards(env, dp, n);
  const loss = env.getF32(lp, outer);
  const dx = env.getF32(dp, n);
  const { d, p, w } = softmaxTerms(x, outer, classes);
  expectWithin(loss, refLoss, (r) => (Math.abs(refLoss[r]) + w[r] + 4) * U, `${what} loss`);
  expectWithin(dx, refDx, (i) => {
    const r = Math.floor(i / classes);
    if (target[r] === ignore) return 0; // exactly 0, checked below
    const q = (i % classes === target[r] ? 1 - eps : 0) + eps / classes;
    return Math.abs(grad[r]) * U * (probErr(d[i], w[r], p[i]) + 3 * q + Math.abs(p[i] - q));
  }, `${what} gradient`);
  for (let r = 0; r < outer; r++) {
    if (target[r] !== ignore) continue;
    expect(loss[r]).toBe(0);
    expect(Array.from(dx.subarray(r * classes, (r + 1) * classes)).every((v) => v === 0)).toBe(true);
  }
  env.reset();
  return { loss, dx };
}

describe('crossEntropyRowsInto and crossEntropyBackwardRowsInto', () => {
  it.each([0, 0.1])('label smoothing %s: random rows at every size (targets first, last, ignored), and [1024 x 259]', (eps) => {
    let seed = 21;
    for (const outer of OUTERS) for (const inner of INNERS) checkCrossEntropy(ceCase(randomRows(outer, inner, seed++), outer, inner, seed, eps), `${outer}x${inner}`);
    checkCrossEntropy(ceCase(randomRows(1024, 259, 97), 1024, 259, 3, eps), 'training shape');
  });

  it.each([0, 0.1])('label smoothing %s: special rows (-inf target, all -inf, NaN, inf) as the cpu', (eps) => {
    for (const inner of INNERS) {
      checkCrossEntropy(ceCase(specialRows(inner), 13, inner, 7, eps), `special rows, inner ${inner}`);
      checkCrossEntropy(ceCase(specialRows(inner), 13, inner, 7, eps, 2), `special rows, ignoreIndex 2, inner ${inner}`);
    }
    checkCrossEntropy(ceCase(new Float32Array(0), 5, 0, 7, eps), 'no classes (NaN loss, as the cpu reads no logit)');
  });

  it('tasks in any order give the bits of one row at a time', () => {
    const c = ceCase(randomRows(300, 259, 8), 300, 259, 9, 0.1);
    const all = checkCrossEntropy(c, 'split', reversedRunner(env));
    for (const r of [0, 126, 127, 299]) {
      const row = { ...c, x: c.x.subarray(r * 259, (r + 1) * 259), target: c.target.subarray(r, r + 1), grad: c.grad.subarray(r, r + 1), outer: 1 };
      const one = checkCrossEntropy(row, 'row');
      expect(one.loss[0]).toBe(all.loss[r]);
      expect(Array.from(one.dx)).toEqual(Array.from(all.dx.subarray(r * 259, (r + 1) * 259)));
    }
  });
});

// ---------------------------------------------------------------------------------------------

const REDUCE_OPS = ['sum', 'max', 'min'] as const;

function checkReduceRows(op: (typeof REDUCE_OPS)[number], x: Float32Array, outer: number, inner: number, what: string, rt = env.runner): Float32Array {
  const ref = new Float64Array(outer);
  cpu.reduceRows(op, x, outer, inner, ref);
  const xp = env.put(x);
  const op_ = guarded(env, outer);
  expect(reduceRowsInto(rt, op, xp, op_, outer, inner)).toBe(true);
  expectGuards(env, op_, outer);
  const got = env.getF32(op_, outer);
  if (op === 'sum') {
    expectWithin(got, ref, (r) => {
      let abs = 0;
      for (let i = 0; i < inner; i++) abs += Math.abs(x[r * inner + i]);
      return 2 * U * Math.abs(ref[r]) + inner * 2 ** -52 * abs;
    }, `${what} sum`);
  } else {
    expectSame(got, ref, `${what} ${op}`);
  }
  env.reset();
  return got;
}

function checkReduceMiddle(op: (typeof REDUCE_OPS)[number], x: Float32Array, outer: number, mid: number, inner: number, what: string, rt = env.runner): void {
  const ref = new Float64Array(outer * inner);
  cpu.reduceMiddle(op, x, outer, mid, inner, ref);
  const xp = env.put(x);
  const op_ = guarded(env, outer * inner);
  expect(reduceMiddleInto(rt, op, xp, op_, outer, mid, inner)).toBe(true);
  expectGuards(env, op_, outer * inner);
  expectSame(env.getF32(op_, outer * inner), ref, `${what} ${op}`);
  env.reset();
}

describe('reduceRowsInto and reduceMiddleInto', () => {
  it.each(REDUCE_OPS)('%s over rows: random rows at every size, special values, empty rows', (op) => {
    let seed = 31;
    for (const outer of OUTERS) for (const inner of INNERS) checkReduceRows(op, randomRows(outer, inner, seed++), outer, inner, `${outer}x${inner}`);
    for (const inner of INNERS) checkReduceRows(op, specialRows(inner), 13, inner, `special rows, inner ${inner}`);
    // signed zeros: the first zero of the row, as the cpu keeps it (not the one the lanes' order would give)
    const z = checkReduceRows(op, Float32Array.from([-0, 0, -1, -2, 0, -1, 0, -0, -0, -3, -0, 0, 1, 2, 0, 1, 0, -0, -0, 3]), 4, 5, 'signed zeros');
    if (op === 'max') expect([Object.is(z[0], -0), Object.is(z[1], 0)]).toEqual([true, true]);
    if (op === 'min') expect([Object.is(z[2], -0), Object.is(z[3], 0)]).toEqual([true, true]);
    checkReduceRows(op, new Float32Array(0), 3, 0, 'empty rows');
  });

  it.each(REDUCE_OPS)('%s over the middle axis, bit-identical to the cpu: bias shapes, awkward sizes, special values', (op) => {
    let seed = 41;
    for (const [outer, mid, inner] of [[1, 1024, 256], [1, 256, 688], [3, 7, 259], [2, 5, 17], [4, 1, 3], [1, 3, 1], [5, 0, 4], [1, 300, 1000]]) {
      checkReduceMiddle(op, randomRows(outer * mid, inner, seed++), outer, mid, inner, `[${outer}, ${mid}, ${inner}]`);
    }
    for (const inner of [1, 3, 5, 17]) checkReduceMiddle(op, specialRows(inner), 1, 13, inner, `special rows, inner ${inner}`);
    checkReduceMiddle(op, specialRows(16), 1, 13, 16, 'special rows, inner 16');
    checkReduceMiddle(op, specialRows(37), 13, 1, 37, 'special rows, mid 1');
  });

  it('tasks in any order: reduce rows and middle are the same bits', () => {
    const x = randomRows(1024, 259, 51);
    const sums = checkReduceRows('sum', x, 1024, 259, 'split', reversedRunner(env));
    expect(sums[700]).toBe(checkReduceRows('sum', x.subarray(700 * 259, 701 * 259), 1, 259, 'row')[0]);
    expect(reduceMiddleTasks(1, 1024, 688).tasks).toBeGreaterThan(1);
    checkReduceMiddle('sum', randomRows(1024, 688, 52), 1, 1024, 688, 'split', reversedRunner(env));
  });

  it('reduceMiddleTasks: column tiles of whole cache lines that cover every column once; small slices share a task', () => {
    for (const [outer, mid, inner] of [[1, 1024, 256], [1, 1024, 688], [1, 4096, 1000], [64, 64, 64], [7, 3, 5], [2, 2000, 40]]) {
      const p = reduceMiddleTasks(outer, mid, inner);
      expect(p.tasks).toBe(Math.ceil(outer / p.outerPer) * p.tilesN);
      expect(p.colsPer * p.tilesN).toBeGreaterThanOrEqual(inner);
      expect(p.colsPer * (p.tilesN - 1)).toBeLessThan(inner);
      if (p.tilesN > 1) expect(p.colsPer % 16).toBe(0);
    }
    expect(reduceMiddleTasks(64, 64, 64).outerPer).toBe(8); // 8 slices of 64 x 64: the 32K elements a task covers at least
    expect(reduceMiddleTasks(0, 5, 5).tasks).toBe(0);
  });
});

describe('argument checks', () => {
  it('throws a BackendError naming the operand outside memory or the bad count; returns false for an ignoreIndex beyond int32', () => {
    const end = env.memory.buffer.byteLength;
    expect(() => softmaxRowsInto(env.runner, end - 16, 1 << 16, 2, 3, false)).toThrow(BackendError);
    expect(() => softmaxRowsInto(env.runner, end - 16, 1 << 16, 2, 3, false)).toThrow(/^softmax: wasm float32 kernel \(outer 2, inner 3\): x \(byte \d+, 6 elements\) runs past the end/);
    expect(() => normalizeRowsInto(env.runner, 'rms', 1 << 16, 1 << 17, 6, 2, 3, 1e-5)).toThrow(/rstd must be a nonzero byte address aligned to 4/);
    expect(() => reduceMiddleInto(env.runner, 'sum', 1 << 16, 1 << 17, 1, -2, 3)).toThrow(/mid must be an integer/);
    expect(crossEntropyRowsInto(env.runner, 1 << 16, 1 << 17, 1 << 18, { outer: 2, classes: 3, ignoreIndex: 2 ** 40, labelSmoothing: 0 })).toBe(false);
    expect(crossEntropyBackwardRowsInto(env.runner, 1 << 16, 1 << 17, 1 << 18, 1 << 19, { outer: 2, classes: 3, ignoreIndex: 0.5, labelSmoothing: 0 })).toBe(false);
    expect(reduceRowsInto(env.runner, 'prod' as 'sum', 1 << 16, 1 << 17, 2, 3)).toBe(false);
  });
});
