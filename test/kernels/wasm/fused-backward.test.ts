/**
 * The wasm kernels of the fused backward passes against their cpu references, at training shapes
 * and awkward sizes (not multiples of 4, one element), with tasks run in reverse order:
 *  - softmax_backward_rows_f32 (wasm/assembly/rows.ts) against softmaxBackwardRows
 *    (src/kernels/cpu/rows.ts). softmax: bit for bit: both round each product and difference to
 *    float32 and sum the rounded products in doubles (for rows like these the double sum is exact
 *    in any order). log-softmax: e^y is the wasm exp kernel's (within 1 ulp of the cpu's rounded
 *    Math.exp), so within 4u·|e^y·S| + 2u·|dx| (u = 2^-24), and bit for bit against the wasm
 *    composite (exp, sum, mul, sub kernels).
 *  - silu_mul_f32 / silu_mul_backward_f32 (wasm/assembly/silu-mul.ts) against
 *    src/kernels/cpu/silu-mul.ts: the forward bit for bit against the wasm composite (silu then
 *    mul kernels) and σ against the wasm sigmoid kernel; the backward from the same σ within a few
 *    float32 roundings of the cpu's once-rounded double product.
 * The backends' methods (threads 1 and 2, float32 on the kernels, float64 and float16 on the cpu
 * kernels they fall back to) are checked in test/kernels/fused-backends.test.ts.
 */
import { BackendError } from '../../../src/errors';
import * as cpuRows from '../../../src/kernels/cpu/rows';
import { siluMulBackward, siluMulForward } from '../../../src/kernels/cpu/silu-mul';
import { binaryInto, unaryInto, type WasmOperand } from '../../../src/kernels/wasm/elementwise';
import { reduceRowsInto, softmaxBackwardRowsInto } from '../../../src/kernels/wasm/rows';
import { siluMulBackwardInto, siluMulInto } from '../../../src/kernels/wasm/silu-mul';
import { mulberry32 } from '../../helpers';
import { createWasmEnv, expectGuards, guarded, reversedRunner } from './helpers';

const env = createWasmEnv();
afterEach(() => env.reset());

const U = 2 ** -24;
const TINY = 2 ** -148;
const INNERS = [1, 3, 5, 17, 64, 259];
const OUTERS = [1, 7, 256];

function random(n: number, seed: number, scale = 4): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n }, () => scale * (rand() * 2 - 1));
}

/** Softmax (or log-softmax) rows of random logits, as the forward stored them. */
function softmaxOutputs(outer: number, inner: number, log: boolean, seed: number): Float32Array {
  const y = new Float32Array(outer * inner);
  cpuRows.softmaxRows(random(outer * inner, seed, 6), outer, inner, log, y);
  return y;
}


const whole = (address: number, n: number): WasmOperand => ({ address, shape: [n], strides: [1], offset: 0 });

/** Bit-for-bit equality (NaN for NaN). */
function expectSame(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const w = Math.fround(want[i]);
    if (!(Object.is(got[i], w) || (Number.isNaN(got[i]) && Number.isNaN(w)))) throw new Error(`${what}: element ${i} is ${got[i]}, expected ${w}`);
  }
}

function expectWithin(got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const ok = Number.isFinite(want[i]) ? Math.abs(got[i] - want[i]) <= tol(i) + TINY : Object.is(got[i], Math.fround(want[i])) || (Number.isNaN(got[i]) && Number.isNaN(want[i]));
    if (!ok) throw new Error(`${what}: element ${i} is ${got[i]}, expected ${want[i]} (tolerance ${tol(i)})`);
  }
}

describe('softmax_backward_rows_f32', () => {
  const runWasm = (y: Float32Array, g: Float32Array, outer: number, inner: number, log: boolean): Float32Array => {
    const [yp, gp] = [env.put(y), env.put(g)];
    const out = guarded(env, outer * inner);
    expect(softmaxBackwardRowsInto(reversedRunner(env), yp, gp, out, outer, inner, log)).toBe(true);
    expectGuards(env, out, outer * inner);
    return env.getF32(out, outer * inner);
  };

  test.each(OUTERS)('softmax, outer %d: the cpu reference bit for bit at every row length', (outer) => {
    for (const inner of INNERS) {
      const y = softmaxOutputs(outer, inner, false, outer * 1000 + inner);
      const g = random(outer * inner, inner * 7 + outer, 0.01);
      const want = new Float32Array(outer * inner);
      cpuRows.softmaxBackwardRows(y, g, outer, inner, false, Math.fround, want);
      expectSame(runWasm(y, g, outer, inner, false), want, `outer ${outer} inner ${inner}`);
      env.reset();
    }
  });

  test.each(OUTERS)('log-softmax, outer %d: the cpu reference within the exp kernel\'s ulp', (outer) => {
    for (const inner of INNERS) {
      const y = softmaxOutputs(outer, inner, true, outer * 1000 + inner + 1);
      const g = random(outer * inner, inner * 13 + outer);
      const want = new Float64Array(outer * inner);
      cpuRows.softmaxBackwardRows(y, g, outer, inner, true, Math.fround, want);
      const sums = Array.from({ length: outer }, (_, r) => Math.fround(g.slice(r * inner, (r + 1) * inner).reduce((a, b) => a + b, 0)));
      const tol = (i: number) => 4 * U * Math.abs(Math.exp(y[i]) * sums[Math.floor(i / inner)]) + 2 * U * Math.abs(want[i]);
      expectWithin(runWasm(y, g, outer, inner, true), want, tol, `outer ${outer} inner ${inner}`);
      env.reset();
    }
  });

  test('log-softmax: the wasm composite (exp, row sum, mul, sub kernels) bit for bit', () => {
    const [outer, inner] = [7, 259];
    const n = outer * inner;
    const y = softmaxOutputs(outer, inner, true, 5);
    const g = random(n, 6);
    const [yp, gp] = [env.put(y), env.put(g)];
    const [e, s, es, dx] = [env.alloc(4 * n), env.alloc(4 * outer), env.alloc(4 * n), env.alloc(4 * n)];
    expect(unaryInto(env.runner, 'exp', whole(yp, n), e, [])).toBe(true);
    expect(reduceRowsInto(env.runner, 'sum', gp, s, outer, inner)).toBe(true);
    const perRow: WasmOperand = { address: s, shape: [outer, inner], strides: [1, 0], offset: 0 };
    const rows = (address: number): WasmOperand => ({ address, shape: [outer, inner], strides: [inner, 1], offset: 0 });
    expect(binaryInto(env.runner, 'mul', rows(e), perRow, es)).toBe(true);
    expect(binaryInto(env.runner, 'sub', rows(gp), rows(es), dx)).toBe(true);
    expectSame(runWasm(y, g, outer, inner, true), env.getF32(dx, n), 'composite');
  });

  test('special values: NaN, infinities and zeros as the cpu reference', () => {
    const I = Infinity;
    const y = Float32Array.from([0.5, 0.5, 0, 1, 0, 0, NaN, 0.25, 0.75, 1, 0, 0]);
    const g = Float32Array.from([1, -1, 3, I, 0, 2, 1, 1, 1, -0, 0, 0]);
    for (const log of [false, true]) {
      const want = new Float32Array(12);
      cpuRows.softmaxBackwardRows(y, g, 4, 3, log, Math.fround, want);
      expectWithin(runWasm(y, g, 4, 3, log), want, (i) => 4 * U * Math.abs(want[i]) + 4 * U, `log ${log}`);
      env.reset();
    }
  });

  test('empty input writes nothing; bad counts and operands are BackendErrors', () => {
    const a = env.alloc(64);
    expect(softmaxBackwardRowsInto(env.runner, a, a, a, 0, 5, false)).toBe(true);
    expect(() => softmaxBackwardRowsInto(env.runner, a, a, a, 1.5, 4, false)).toThrow(BackendError);
    expect(() => softmaxBackwardRowsInto(env.runner, 0, a, a, 2, 2, false)).toThrow(/softmax \(backward\).*y must be a nonzero byte address/);
    expect(() => softmaxBackwardRowsInto(env.runner, a, a, env.memory.buffer.byteLength - 8, 2, 4, true)).toThrow(/logSoftmax \(backward\).*out.*runs past the end/);
  });
});

describe('silu_mul_f32 and silu_mul_backward_f32', () => {
  const SIZES = [1, 3, 5, 17, 688, 44032, 70001];

  test.each(SIZES)('n %d: forward = the wasm silu and mul kernels, σ = the sigmoid kernel, bit for bit', (n) => {
    const a = random(n, n, 8);
    const b = random(n, n + 1);
    const [ap, bp] = [env.put(a), env.put(b)];
    const [out, sig] = [guarded(env, n), guarded(env, n)];
    expect(siluMulInto(reversedRunner(env), ap, bp, out, sig, n)).toBe(true);
    expectGuards(env, out, n);
    expectGuards(env, sig, n);
    const [s, prod, sg] = [env.alloc(4 * n), env.alloc(4 * n), env.alloc(4 * n)];
    unaryInto(env.runner, 'silu', whole(ap, n), s, []);
    binaryInto(env.runner, 'mul', whole(s, n), whole(bp, n), prod);
    unaryInto(env.runner, 'sigmoid', whole(ap, n), sg, []);
    expectSame(env.getF32(out, n), env.getF32(prod, n), 'out');
    expectSame(env.getF32(sig, n), env.getF32(sg, n), 'sigmoid');
    // and without σ: the same product, nothing else written
    const out2 = guarded(env, n);
    expect(siluMulInto(env.runner, ap, bp, out2, 0, n)).toBe(true);
    expectSame(env.getF32(out2, n), env.getF32(prod, n), 'out without sigmoid');
    expectGuards(env, out2, n);
    // the cpu reference (Math.exp in doubles) within the exp's few ulp
    const want = new Float64Array(n);
    const wantSig = new Float64Array(n);
    siluMulForward(a, b, n, Math.fround, want, wantSig);
    expectWithin(env.getF32(out, n), want, (i) => 8 * U * Math.abs(want[i]), 'out vs cpu');
    expectWithin(env.getF32(sig, n), wantSig, (i) => 4 * U * Math.abs(wantSig[i]), 'sigmoid vs cpu');
  });

  test.each(SIZES)('n %d: backward = the cpu reference from the same σ, within a few roundings', (n) => {
    const a = random(n, 3 * n, 8);
    const b = random(n, 3 * n + 1);
    const g = random(n, 3 * n + 2, 0.1);
    const sig = new Float32Array(n);
    siluMulForward(a, b, n, Math.fround, new Float32Array(n), sig);
    const [ap, bp, gp, sp] = [env.put(a), env.put(b), env.put(g), env.put(sig)];
    const wantA = new Float64Array(n);
    const wantB = new Float64Array(n);
    siluMulBackward(g, a, b, sig, n, Math.fround, wantA, wantB);
    // da: (((g·b)·σ)·(1 + a·(1 − σ))) rounds 5 times, 1 − σ and a·(1 − σ) against the bracket's size
    const tolA = (i: number) => 6 * U * Math.abs(g[i] * b[i] * sig[i]) * (1 + Math.abs(a[i] * (1 - sig[i])));
    const tolB = (i: number) => 3 * U * Math.abs(wantB[i]);
    for (const [needA, needB] of [[true, true], [true, false], [false, true]]) {
      const [da, db] = [guarded(env, n), guarded(env, n)];
      expect(siluMulBackwardInto(reversedRunner(env), gp, ap, bp, sp, needA ? da : 0, needB ? db : 0, n)).toBe(true);
      expectGuards(env, da, needA ? n : 0);
      expectGuards(env, db, needB ? n : 0);
      if (needA) expectWithin(env.getF32(da, n), wantA, tolA, 'da');
      if (needB) expectWithin(env.getF32(db, n), wantB, tolB, 'db');
      if (!needA) expect(new Uint8Array(env.memory.buffer, da, 4 * n).every((v) => v === 0xff)).toBe(true);
      if (!needB) expect(new Uint8Array(env.memory.buffer, db, 4 * n).every((v) => v === 0xff)).toBe(true);
    }
  });

  test('special values: ±Infinity and NaN give NaN where the cpu reference does; -0 and huge |a| as it', () => {
    const a = Float32Array.from([Infinity, -Infinity, NaN, 0, -0, 100, -100, -200, 1e-40, 3]);
    const n = a.length;
    const b = Float32Array.from({ length: n }, (_, i) => (i % 2 ? -1.5 : 2));
    const g = Float32Array.from({ length: n }, () => 0.5);
    const [ap, bp, gp] = [env.put(a), env.put(b), env.put(g)];
    const [out, sig] = [env.alloc(4 * n), env.alloc(4 * n)];
    siluMulInto(env.runner, ap, bp, out, sig, n);
    const want = new Float64Array(n);
    const wantSig = new Float64Array(n);
    siluMulForward(a, b, n, Math.fround, want, wantSig);
    expectWithin(env.getF32(out, n), want, (i) => 8 * U * Math.abs(want[i]), 'out');
    expectWithin(env.getF32(sig, n), wantSig, (i) => 4 * U * Math.abs(wantSig[i]), 'sigmoid');
    const s = env.getF32(sig, n);
    const [da, db] = [env.alloc(4 * n), env.alloc(4 * n)];
    siluMulBackwardInto(env.runner, gp, ap, bp, env.put(s), da, db, n);
    const wantA = new Float64Array(n);
    const wantB = new Float64Array(n);
    siluMulBackward(g, a, b, s, n, Math.fround, wantA, wantB);
    expectWithin(env.getF32(da, n), wantA, (i) => 8 * U * Math.abs(wantA[i]), 'da');
    expectWithin(env.getF32(db, n), wantB, (i) => 4 * U * Math.abs(wantB[i]), 'db');
  });

  test('bad counts and operands are BackendErrors; n 0 and no gradient asked for write nothing', () => {
    const p = env.alloc(64);
    expect(siluMulInto(env.runner, p, p, p, 0, 0)).toBe(true);
    expect(siluMulBackwardInto(env.runner, p, p, p, p, 0, 0, 4)).toBe(true);
    expect(() => siluMulInto(env.runner, p, p, p, 0, -1)).toThrow(/siluMul.*n must be an integer/);
    expect(() => siluMulInto(env.runner, p + 2, p, p, 0, 4)).toThrow(/siluMul.*a must be a nonzero byte address aligned to 4/);
    expect(() => siluMulBackwardInto(env.runner, p, p, p, env.memory.buffer.byteLength - 4, p, 0, 4)).toThrow(/siluMul \(backward\).*sigmoid.*runs past the end/);
  });
});
