/**
 * The gpu backend's row kernels against the cpu backend's, in every gpu.js mode that works in this
 * process (cpu and webasm anywhere; headlessgl under `xvfb-run -a`). Inputs are float32; the gpu
 * sums in float32 where the cpu sums in doubles, so values agree to a tolerance of 1e-5 relative
 * (absolute below 1), stated per test where it differs. Hand-computed cases pin the formulas too.
 */
import { availableGpuModes } from '../../../src';
import type { Backend, BackendBuffer, ReduceOp } from '../../../src/kernels/backend';
import { CpuBackend } from '../../../src/kernels/cpu/backend';
import { GpuBackend } from '../../../src/kernels/gpu/backend';
import type { DType } from '../../../src/tensor/dtype';
import { decodeFloat16, encodeFloat16 } from '../../../src/tensor/float16';
import { expectClose, mulberry32, uniformValues } from '../../helpers';

const TOL = 1e-5;
const SIZES: [number, number][] = [[1, 1], [1, 7], [7, 33], [33, 1], [3, 33]];

const cpu = new CpuBackend();
const modes = availableGpuModes();
const gpus = new Map(modes.map((mode) => [mode, new GpuBackend({ mode })]));
afterAll(() => gpus.forEach((g) => g.dispose()));

/** A buffer's values as numbers (float16 decoded, not re-encoded). */
const values = (be: Backend, buf: BackendBuffer): number[] => Array.from(be.read({ buffer: buf, shape: [buf.length], strides: [1], offset: 0 }));


/** Runs `f` on both backends from the same inputs; checks the gpu result's dtype and values against the cpu's. */
function compare(gpu: GpuBackend, inputs: [DType, number[]][], f: (be: Backend, bufs: BackendBuffer[]) => BackendBuffer, tol = TOL): number[] {
  const run = (be: Backend) => f(be, inputs.map(([dtype, v]) => be.upload(dtype, v)));
  const c = run(cpu);
  const g = run(gpu);
  expect(g.dtype).toBe(c.dtype);
  expect(g.length).toBe(c.length);
  const got = values(gpu, g);
  const want = values(cpu, c);
  // NaN where the cpu has NaN, close elsewhere
  expect(got.map(Number.isNaN)).toEqual(want.map(Number.isNaN));
  expectClose(got.map((v) => (Number.isNaN(v) ? 0 : v)), want.map((v) => (Number.isNaN(v) ? 0 : v)), tol);
  return got;
}

describe.each(modes)('gpu row kernels, mode %s', (mode) => {
  const gpu = gpus.get(mode)!;
  // GLSL ES 1.0 has no isnan and a driver may fold `v != v` away; the kernels test NaN as
  // `!(v < 0 || v >= 0)`, which headless-gl's software renderer honours, so the NaN cases run in
  // every mode here. (On a GPU driver that flushes NaN comparisons they would fail: that is a
  // finding about that driver, not a reason to skip.)

  test.each(['sum', 'max', 'min'] as ReduceOp[])('reduceLast %s matches cpu at odd sizes', (op) => {
    for (const [outer, inner] of SIZES) {
      compare(gpu, [['float32', uniformValues(outer * inner, outer * 100 + inner, -3, 3)]], (be, [x]) => be.reduceLast(op, x, outer, inner));
    }
  });

  test('reduceLast by hand, and dtypes: float16 in -> float16 out (rounded), int32 sum -> int32', () => {
    const x = gpu.upload('float32', [1, 2, 3, -4, 5, 0.5]);
    expect(values(gpu, gpu.reduceLast('sum', x, 2, 3))).toEqual([6, 1.5]);
    expect(values(gpu, gpu.reduceLast('max', x, 2, 3))).toEqual([3, 5]);
    expect(values(gpu, gpu.reduceLast('min', x, 3, 2))).toEqual([1, -4, 0.5]);
    const v = uniformValues(3 * 33, 7, -3, 3);
    const got = compare(gpu, [['float16', v]], (be, [b]) => be.reduceLast('sum', b, 3, 33), 2e-3);
    // every stored value is a float16 value: the kernel rounded it
    expect(Array.from(decodeFloat16(encodeFloat16(got)))).toEqual(got);
    const ints = compare(gpu, [['int32', [3, -7, 9, 1, 2, 2]]], (be, [b]) => be.reduceLast('sum', b, 2, 3));
    expect(ints).toEqual([5, 5]);
  });

  test.each(['sum', 'max', 'min'] as ReduceOp[])('reduceMiddle %s matches cpu, mid = 1 included', (op) => {
    for (const [outer, mid, inner] of [[1, 1, 1], [2, 1, 7], [3, 7, 5], [1, 33, 2], [5, 3, 1], [2, 33, 7]]) {
      compare(gpu, [['float32', uniformValues(outer * mid * inner, outer * 1000 + mid * 10 + inner, -3, 3)]], (be, [x]) => be.reduceMiddle(op, x, outer, mid, inner));
    }
    // mid = 1 is a copy
    const v = uniformValues(14, 3, -3, 3);
    expect(values(gpu, gpu.reduceMiddle(op, gpu.upload('float32', v), 2, 1, 7))).toEqual(Array.from(Float32Array.from(v)));
  });

  test('reduceMiddle by hand: [2, 3, 2] over the middle axis', () => {
    const x = gpu.upload('float32', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -12]);
    expect(values(gpu, gpu.reduceMiddle('sum', x, 2, 3, 2))).toEqual([9, 12, 27, 6]);
    expect(values(gpu, gpu.reduceMiddle('max', x, 2, 3, 2))).toEqual([5, 6, 11, 10]);
    expect(values(gpu, gpu.reduceMiddle('min', x, 2, 3, 2))).toEqual([1, 2, 7, -12]);
  });

  test('max/min propagate NaN in reduceLast and reduceMiddle; argmax/argmin point at the first NaN', () => {
    const v = [1, NaN, 3, 4, 5, 6, -1, 2, NaN];
    for (const op of ['max', 'min'] as const) {
      expect(compare(gpu, [['float32', v]], (be, [x]) => be.reduceLast(op, x, 3, 3)).map(Number.isNaN)).toEqual([true, false, true]);
      // columns of [1, 3, 3]: column 0 = 1, 4, -1; column 1 = NaN, 5, 2; column 2 = 3, 6, NaN
      expect(compare(gpu, [['float32', v]], (be, [x]) => be.reduceMiddle(op, x, 1, 3, 3)).map(Number.isNaN)).toEqual([false, true, true]);
      const arg = op === 'max' ? 'max' : 'min';
      expect(compare(gpu, [['float32', [NaN, 9, 1, 2, NaN, NaN, 5, 5, 5]]], (be, [x]) => be.argReduceLast(arg, x, 3, 3))).toEqual([0, 1, 0]);
    }
  });

  test('argReduceLast matches cpu, returns int32, ties go to the first index', () => {
    for (const [outer, inner] of SIZES) {
      for (const op of ['max', 'min'] as const) {
        compare(gpu, [['float32', uniformValues(outer * inner, outer * 7 + inner, -3, 3)]], (be, [x]) => be.argReduceLast(op, x, outer, inner), 0);
      }
    }
    const x = gpu.upload('float32', [2, 7, 7, 1, 1, 0, 3, 3, 3]);
    const am = gpu.argReduceLast('max', x, 3, 3);
    expect(am.dtype).toBe('int32');
    expect(Array.from(gpu.download(am))).toEqual([1, 0, 0]);
    expect(Array.from(gpu.download(gpu.argReduceLast('min', x, 3, 3)))).toEqual([0, 2, 0]);
  });

  test.each([false, true])('softmaxLast (log = %s) matches cpu at odd sizes', (log) => {
    for (const [outer, inner] of SIZES) {
      compare(gpu, [['float32', uniformValues(outer * inner, outer * 31 + inner, -10, 10)]], (be, [x]) => be.softmaxLast(x, outer, inner, log));
    }
  });

  test('softmaxLast does not overflow on large logits (80, -80: e^80 overflows float32)', () => {
    const v = [80, -80, 0, 79, 80, 80, -80, -80, -79];
    const soft = compare(gpu, [['float32', v]], (be, [x]) => be.softmaxLast(x, 3, 3, false));
    const logSoft = compare(gpu, [['float32', v]], (be, [x]) => be.softmaxLast(x, 3, 3, true));
    // rows [80, -80, 0], [79, 80, 80], [-80, -80, -79]
    const e1 = Math.exp(-1);
    const [s1, s2] = [2 + e1, 1 + 2 * e1];
    expectClose(soft, [1, 0, 0, e1 / s1, 1 / s1, 1 / s1, e1 / s2, e1 / s2, 1 / s2], TOL);
    expect(soft[2]).toBeGreaterThan(0); // e^-80 ≈ 1.8e-35, a normal float32: computed, not lost
    expectClose(logSoft, [0, -160, -80, -1 - Math.log(s1), -Math.log(s1), -Math.log(s1), -1 - Math.log(s2), -1 - Math.log(s2), -Math.log(s2)], TOL);
  });

  test.each(['layer', 'rms'] as const)('normalizeLast %s matches cpu; rstd has one x-dtype value per row', (kind) => {
    for (const [outer, inner] of SIZES) {
      for (const eps of [1e-5, 0.5]) {
        const v = uniformValues(outer * inner, outer * 13 + inner, -2, 4); // a nonzero mean, so 'layer' and 'rms' differ
        compare(gpu, [['float32', v]], (be, [x]) => be.normalizeLast(kind, x, outer, inner, eps).normalized, 1e-4);
        compare(gpu, [['float32', v]], (be, [x]) => be.normalizeLast(kind, x, outer, inner, eps).rstd);
      }
    }
    // by hand: row [1, 3]: layer -> mean 2, var 1; rms -> mean square 5
    const { normalized, rstd } = gpu.normalizeLast(kind, gpu.upload('float32', [1, 3]), 1, 2, 0);
    expect(rstd.length).toBe(1);
    expectClose(values(gpu, normalized), kind === 'layer' ? [-1, 1] : [1 / Math.sqrt(5), 3 / Math.sqrt(5)], TOL);
    expectClose(values(gpu, rstd), [kind === 'layer' ? 1 : 1 / Math.sqrt(5)], TOL);
    // float16 in: both outputs float16 and rounded
    for (const part of ['normalized', 'rstd'] as const) {
      const got = compare(gpu, [['float16', uniformValues(14, 5, -3, 3)]], (be, [x]) => be.normalizeLast(kind, x, 2, 7, 1e-5)[part], 2e-3);
      expect(Array.from(decodeFloat16(encodeFloat16(got)))).toEqual(got);
    }
  });

  /** Targets in [0, classes) with every third row ignored (ignoreIndex -100). */
  const targets = (outer: number, classes: number, seed: number): number[] => {
    const rand = mulberry32(seed);
    return Array.from({ length: outer }, (_, r) => (r % 3 === 1 ? -100 : Math.floor(rand() * classes)));
  };

  test.each([0, 0.1])('crossEntropyLast matches cpu (label smoothing %s, ignored rows give 0)', (eps) => {
    for (const [outer, classes] of [[1, 1], [1, 7], [7, 33], [33, 2], [4, 5]]) {
      const t = targets(outer, classes, outer + classes);
      const got = compare(gpu, [['float32', uniformValues(outer * classes, outer * 17 + classes, -5, 5)], ['int32', t]], (be, [x, tg]) =>
        be.crossEntropyLast(x, tg, { outer, classes, ignoreIndex: -100, labelSmoothing: eps }),
      );
      t.forEach((ti, r) => ti === -100 && expect(got[r]).toBe(0));
    }
    // by hand: logits [0, ln 3], target 1, C = 2: lse = ln 4; loss = ln 4 - (1-ε) ln 3 - (ε/2) ln 3
    const got = values(gpu, gpu.crossEntropyLast(gpu.upload('float32', [0, Math.log(3)]), gpu.upload('int32', [1]), { outer: 1, classes: 2, ignoreIndex: -100, labelSmoothing: eps }));
    expectClose(got, [Math.log(4) - (1 - eps / 2) * Math.log(3)], TOL);
  });

  test('crossEntropyLast: large logits do not overflow; ignoreIndex may be a class id', () => {
    const v = [80, -80, 0, -80, 80, 79];
    const got = compare(gpu, [['float32', v], ['int32', [1, 2]]], (be, [x, tg]) => be.crossEntropyLast(x, tg, { outer: 2, classes: 3, ignoreIndex: -100, labelSmoothing: 0.2 }));
    expect(got.every(Number.isFinite)).toBe(true);
    const ign = compare(gpu, [['float32', v], ['int32', [1, 2]]], (be, [x, tg]) => be.crossEntropyLast(x, tg, { outer: 2, classes: 3, ignoreIndex: 2, labelSmoothing: 0 }));
    expect(ign[1]).toBe(0);
    expectClose([ign[0]], [160 + Math.log1p(Math.exp(-80) + Math.exp(-160))], TOL);
  });

  test.each([0, 0.1])('crossEntropyBackwardLast matches cpu (label smoothing %s, ignored rows zero)', (eps) => {
    for (const [outer, classes] of [[1, 1], [1, 7], [7, 33], [33, 2], [4, 5]]) {
      const t = targets(outer, classes, outer * 3 + classes);
      const got = compare(
        gpu,
        [['float32', uniformValues(outer * classes, outer * 19 + classes, -5, 5)], ['int32', t], ['float32', uniformValues(outer, outer + 1, 0.5, 2)]],
        (be, [x, tg, g]) => be.crossEntropyBackwardLast(x, tg, g, { outer, classes, ignoreIndex: -100, labelSmoothing: eps }),
      );
      t.forEach((ti, r) => ti === -100 && expect(got.slice(r * classes, (r + 1) * classes).every((v) => v === 0)).toBe(true));
    }
    // by hand: logits [0, ln 3], target 1, g = 2: p = [1/4, 3/4], q = [ε/2, 1 - ε/2]
    const got = values(gpu, gpu.crossEntropyBackwardLast(gpu.upload('float32', [0, Math.log(3)]), gpu.upload('int32', [1]), gpu.upload('float32', [2]), { outer: 1, classes: 2, ignoreIndex: -100, labelSmoothing: eps }));
    expectClose(got, [2 * (0.25 - eps / 2), 2 * (0.75 - 1 + eps / 2)], TOL);
  });

  test('crossEntropyBackwardLast with large logits stays finite and float16 logits give float16 grads', () => {
    const v = [80, -80, 0, -80, 80, 79];
    const got = compare(gpu, [['float32', v], ['int32', [0, 2]], ['float32', [1, 1]]], (be, [x, tg, g]) => be.crossEntropyBackwardLast(x, tg, g, { outer: 2, classes: 3, ignoreIndex: -100, labelSmoothing: 0 }));
    expect(got.every(Number.isFinite)).toBe(true);
    const half = compare(gpu, [['float16', uniformValues(10, 9, -3, 3)], ['int32', [1, 3]], ['float16', [1, 0.5]]], (be, [x, tg, gr]) =>
      be.crossEntropyBackwardLast(x, tg, gr, { outer: 2, classes: 5, ignoreIndex: -100, labelSmoothing: 0.1 }), 2e-3);
    expect(half.every((v) => v !== 0)).toBe(true);
    expect(Array.from(decodeFloat16(encodeFloat16(half)))).toEqual(half);
  });
});
