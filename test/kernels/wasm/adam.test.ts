/**
 * The wasm Adam kernel (wasm/assembly/adam.ts) against the cpu backend's adamUpdate.
 *
 * The cpu computes each step in doubles and stores float32; the kernel computes in float32. Each
 * stored value goes through at most six float32 operations (plus the rounding of the constants
 * it uses and the cpu's own final rounding), each off by at most u = 2^-24 relative to the
 * magnitudes it combines, so one step from the same state agrees within 8u of a scale per
 * quantity (g' = |g| + wd·|p| when the decay goes into the gradient, else |g|):
 *   m: |m| + g'      v: β2·v + (1-β2)·g'²      p: |p| + stepSize·(|m| + g') / (√v̂/√(1-β2^t) + eps)
 * A scale, not the result itself: m + w·(g - m) and p - step may cancel to near zero, where a
 * relative error means nothing. Measured over the 32 option combinations, 4099 elements and 4
 * steps: m 2.0u, v 5.1u, p 2.9u. Run apart for 20 steps, p drifts by at most 22u·(|p| + 20·lr).
 */
import { BackendError } from '../../../src/errors';
import type { AdamHyper, BackendBuffer, View } from '../../../src/kernels/backend';
import { CpuBackend } from '../../../src/kernels/cpu/backend';
import { ADAM_CHUNK, adamInto } from '../../../src/kernels/wasm/adam';
import type { WasmKernelRunner } from '../../../src/kernels/wasm/runner';
import { mulberry32 } from '../../helpers';
import { createWasmEnv, reversedRunner, type WasmTestEnv } from './helpers';

const env: WasmTestEnv = createWasmEnv();
afterEach(() => env.reset());

const U = 2 ** -24;
const cpu = new CpuBackend();

/** Every combination of the options that change the arithmetic. */
function hypers(): AdamHyper[] {
  const out: AdamHyper[] = [];
  for (const beta1 of [0.9, 0.3]) // 1-β1 below 0.5 and not: the two forms of lerp
    for (const weightDecay of [0, 0.05])
      for (const decoupled of [false, true])
        for (const maximize of [false, true])
          for (const amsgrad of [false, true]) out.push({ lr: 1e-3, beta1, beta2: 0.999, eps: 1e-8, weightDecay, decoupled, step: 1, maximize, amsgrad });
  return out;
}
const label = (h: AdamHyper) => `β1 ${h.beta1} wd ${h.weightDecay} decoupled ${h.decoupled} maximize ${h.maximize} amsgrad ${h.amsgrad} step ${h.step}`;

interface State { p: Float32Array; m: Float32Array; v: Float32Array; vmax: Float32Array }

function randomState(n: number, rand: () => number): State {
  const f = (g: () => number) => Float32Array.from({ length: n }, g);
  const v = f(() => rand() * 1e-2);
  return { p: f(() => rand() * 2 - 1), m: f(() => (rand() - 0.5) * 0.1), v, vmax: v.map((x) => x * (0.5 + rand())) };
}

/** Gradients of mixed scale: mostly small, a tenth large (the second moment then jumps). */
function randomGrad(n: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => (rand() - 0.5) * (rand() < 0.1 ? 10 : 0.1));
}

/** The cpu backend's step on a copy of `s`; returns the new state. */
function cpuStep(s: State, g: Float32Array, h: AdamHyper): State {
  const n = g.length;
  const view = (b: BackendBuffer): View => ({ buffer: b, shape: [n], strides: [1], offset: 0 });
  const [p, m, v, vmax] = [s.p, s.m, s.v, s.vmax].map((a) => cpu.upload('float32', a));
  cpu.adamUpdate(view(p), view(cpu.upload('float32', g)), m, v, h.amsgrad ? vmax : null, h);
  const get = (b: BackendBuffer) => cpu.download(b) as Float32Array;
  return { p: get(p), m: get(m), v: get(v), vmax: get(vmax) };
}

/** The wasm step on a copy of `s` in wasm memory; returns the new state. */
function wasmStep(s: State, g: Float32Array, h: AdamHyper, rt: WasmKernelRunner = env.runner): State {
  const n = g.length;
  const [p, m, v, vmax, gp] = [s.p, s.m, s.v, s.vmax, g].map((a) => env.put(a));
  expect(adamInto(rt, p, gp, m, v, h.amsgrad ? vmax : null, n, h)).toBe(true);
  const out = { p: env.getF32(p, n), m: env.getF32(m, n), v: env.getF32(v, n), vmax: env.getF32(vmax, n) };
  expect(Array.from(env.getF32(gp, n))).toEqual(Array.from(g)); // the gradient is only read
  return out;
}

/** got within 8u·scale of ref where ref is finite; the same NaN / ±inf where it is not. */
function expectNear(got: Float32Array, ref: Float32Array, scale: (i: number) => number, what: string): void {
  for (let i = 0; i < ref.length; i++) {
    const ok = Number.isFinite(ref[i])
      ? Math.abs(got[i] - ref[i]) <= 8 * U * scale(i) + 2 ** -149
      : Object.is(got[i], ref[i]) || (Number.isNaN(got[i]) && Number.isNaN(ref[i]));
    if (!ok) throw new Error(`${what}: element ${i} is ${got[i]}, expected ${ref[i]} (scale ${scale(i)})`);
  }
}

/** One step of both from the same state, compared with the bounds of the header. */
function checkStep(s: State, g: Float32Array, h: AdamHyper): State {
  const ref = cpuStep(s, g, h);
  const got = wasmStep(s, g, h);
  const wd = h.weightDecay !== 0 && !h.decoupled ? h.weightDecay : 0;
  const gAbs = (i: number) => Math.abs(g[i]) + (wd === 0 ? 0 : wd * Math.abs(s.p[i]));
  const stepSize = h.lr / (1 - h.beta1 ** h.step);
  const bc2 = Math.sqrt(1 - h.beta2 ** h.step);
  const what = label(h);
  expectNear(got.m, ref.m, (i) => Math.abs(s.m[i]) + gAbs(i), `${what}: m`);
  expectNear(got.v, ref.v, (i) => h.beta2 * s.v[i] + (1 - h.beta2) * gAbs(i) ** 2, `${what}: v`);
  if (h.amsgrad) expectNear(got.vmax, ref.vmax, (i) => ref.vmax[i], `${what}: vmax`);
  expectNear(got.p, ref.p, (i) => {
    const den = Math.sqrt(h.amsgrad ? ref.vmax[i] : ref.v[i]) / bc2 + h.eps;
    return Math.abs(s.p[i]) + (stepSize * (Math.abs(s.m[i]) + gAbs(i))) / den;
  }, `${what}: p`);
  env.reset();
  return ref;
}

describe('adamInto', () => {
  it('every option combination, steps 1 to 4 from the cpu\'s state: m, v, vmax and p within 8u of their scales', () => {
    const n = 4099; // a chunk with a tail of 3
    for (const h0 of hypers()) {
      const rand = mulberry32(7);
      let s = randomState(n, rand);
      for (let step = 1; step <= 4; step++) s = checkStep(s, randomGrad(n, rand), { ...h0, step });
    }
  });

  it('run apart for 20 steps (AdamW, amsgrad), the parameters drift by less than 64u·(|p| + 20·lr)', () => {
    const n = 2000;
    const rand = mulberry32(3);
    let ref = randomState(n, rand);
    let got = ref;
    const h0: AdamHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupled: true, step: 1, maximize: false, amsgrad: true };
    for (let step = 1; step <= 20; step++) {
      const g = randomGrad(n, rand);
      ref = cpuStep(ref, g, { ...h0, step });
      got = wasmStep(got, g, { ...h0, step });
      env.reset();
    }
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got.p[i] - ref.p[i]) / (U * (Math.abs(ref.p[i]) + 20 * h0.lr)));
    expect(worst).toBeLessThan(64);
    expect(worst).toBeGreaterThan(0); // float32 arithmetic does differ from the cpu's doubles
  });

  it('NaN, ±inf, zero, tiny and huge values go where the cpu\'s do', () => {
    const gs = [NaN, Infinity, -Infinity, 0, 1e-30, 1e20, -3, 0.5];
    const ps = [0, 1, Infinity, NaN, -2];
    const n = gs.length * ps.length;
    const g = Float32Array.from({ length: n }, (_, i) => gs[i % gs.length]);
    const s: State = { p: Float32Array.from({ length: n }, (_, i) => ps[Math.floor(i / gs.length)]), m: new Float32Array(n).fill(0.1), v: new Float32Array(n), vmax: Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? NaN : 0.01)) };
    s.v[0] = Infinity;
    for (const h of hypers()) checkStep(s, g, { ...h, step: 3 });
    checkStep(s, g, { ...hypers()[0], eps: 0 }); // 0/0 where m, v and g are 0
  });

  it('tasks of ADAM_CHUNK elements: any order, or one chunk at a time, gives the same bits; tails of 1 to 7', () => {
    const n = 3 * ADAM_CHUNK + 5;
    const rand = mulberry32(11);
    const s = randomState(n, rand);
    const g = randomGrad(n, rand);
    const h: AdamHyper = { ...hypers()[31], step: 2 }; // amsgrad, maximize, AdamW, β1 0.3
    const inOrder = wasmStep(s, g, h);
    env.reset();
    const reversed = wasmStep(s, g, h, reversedRunner(env));
    env.reset();
    expectSameBits(reversed, inOrder);
    const slice = (st: State, a: number, b: number): State => ({ p: st.p.slice(a, b), m: st.m.slice(a, b), v: st.v.slice(a, b), vmax: st.vmax.slice(a, b) });
    for (const [a, b] of [[0, ADAM_CHUNK], [ADAM_CHUNK, 3 * ADAM_CHUNK], [3 * ADAM_CHUNK, n], [5, 6], [100, 102], [7, 10], [1, 8], [ADAM_CHUNK - 3, ADAM_CHUNK + 2]]) {
      expectSameBits(wasmStep(slice(s, a, b), g.slice(a, b), h), slice(inOrder, a, b));
      env.reset();
    }
  });

  it('n = 0 does nothing; bad operands throw a BackendError; maxExpAvgSq at address 0 is left to TypeScript', () => {
    const h = hypers()[0];
    expect(adamInto(env.runner, 0, 0, 0, 0, null, 0, h)).toBe(true);
    const end = env.memory.buffer.byteLength;
    expect(() => adamInto(env.runner, 1 << 16, 1 << 17, end - 8, 1 << 18, null, 4, h)).toThrow(BackendError);
    expect(() => adamInto(env.runner, 1 << 16, 1 << 17, end - 8, 1 << 18, null, 4, h)).toThrow(/^adamUpdate: wasm float32 kernel \(4 elements\): expAvg \(byte \d+, 4 elements\) runs past the end/);
    expect(() => adamInto(env.runner, 1 << 16, 2, 1 << 17, 1 << 18, null, 4, h)).toThrow(/grad must be a nonzero byte address aligned to 4/);
    expect(() => adamInto(env.runner, 1 << 16, 1 << 17, 1 << 18, 1 << 19, null, 1.5, h)).toThrow(/n must be an integer/);
    expect(adamInto(env.runner, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 0, 4, h)).toBe(false);
  });
});

function expectSameBits(a: State, b: State): void {
  for (const k of ['p', 'm', 'v', 'vmax'] as const) {
    expect(Buffer.from(a[k].buffer, a[k].byteOffset, a[k].byteLength).equals(Buffer.from(b[k].buffer, b[k].byteOffset, b[k].byteLength))).toBe(true);
  }
}

