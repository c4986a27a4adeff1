/**
 * The gpu backend's fused Adam step against the cpu backend, in every gpu.js mode this process
 * offers (headlessgl only under `xvfb-run -a`): five steps with fresh random gradients, then the
 * whole parameter buffer (elements outside the parameter's view must not move) and the moments are
 * compared. The gpu computes in float32 where the cpu computes in doubles: float32 results agree to
 * 1e-5 relative (per step the rounding is ~1e-7); float16 parameters to 1.5e-3 (about one float16
 * ulp, as the two round once from slightly different values).
 */
import type { AdamHyper, Backend, BackendBuffer, View } from '../../../src/kernels/backend';
import { CpuBackend } from '../../../src/kernels/cpu/backend';
import { GpuBackend } from '../../../src/kernels/gpu/backend';
import { availableGpuModes } from '../../../src';
import { memoryTracker } from '../../../src/kernels/memory';
import type { DType } from '../../../src/tensor/dtype';
import { decodeFloat16, encodeFloat16 } from '../../../src/tensor/float16';
import { numel } from '../../../src/tensor/shape';
import { expectClose, mulberry32 } from '../../helpers';

const MODES = availableGpuModes();
const STEPS = 5;

/** Where a tensor sits: a buffer of `length` elements and a view on it. */
interface Layout {
  length: number;
  shape: number[];
  strides: number[];
  offset: number;
}

const contiguous = (shape: number[]): Layout => ({
  length: numel(shape),
  shape,
  strides: shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1)),
  offset: 0,
});

interface Case {
  name: string;
  hyper: Partial<AdamHyper>;
  param: Layout;
  grad?: Layout;
  paramDtype?: DType;
  tol?: number;
}

const BASE: Omit<AdamHyper, 'step'> = {
  lr: 0.05,
  beta1: 0.8,
  beta2: 0.95,
  eps: 1e-3,
  weightDecay: 0,
  decoupled: false,
  maximize: false,
  amsgrad: false,
};

const CASES: Case[] = [
  { name: 'plain', hyper: {}, param: contiguous([6, 7]) },
  { name: 'beta1 0.3 (the other side of the lerp)', hyper: { beta1: 0.3 }, param: contiguous([5, 3]) },
  { name: 'L2 weight decay (Adam)', hyper: { weightDecay: 0.2 }, param: contiguous([6, 7]) },
  { name: 'decoupled weight decay (AdamW)', hyper: { weightDecay: 0.2, decoupled: true }, param: contiguous([6, 7]) },
  { name: 'amsgrad', hyper: { amsgrad: true, weightDecay: 0.1 }, param: contiguous([6, 7]) },
  { name: 'maximize', hyper: { maximize: true }, param: contiguous([4, 9]) },
  { name: 'float16 param', hyper: { weightDecay: 0.1 }, param: contiguous([6, 7]), paramDtype: 'float16', tol: 1.5e-3 },
  {
    name: 'strided offset param view with a transposed offset gradient',
    hyper: { weightDecay: 0.1, decoupled: true, amsgrad: true },
    param: { length: 60, shape: [3, 4], strides: [10, 2], offset: 5 },
    grad: { length: 20, shape: [3, 4], strides: [1, 3], offset: 2 },
  },
  { name: 'contiguous slice with an offset', hyper: { weightDecay: 0.1 }, param: { length: 20, shape: [3, 4], strides: [4, 1], offset: 5 } },
  { name: 'transposed whole buffer', hyper: {}, param: { length: 12, shape: [3, 4], strides: [1, 3], offset: 0 } },
  {
    name: 'strided float16 param',
    hyper: { maximize: true, weightDecay: 0.05 },
    param: { length: 40, shape: [4, 3], strides: [8, 3], offset: 1 },
    paramDtype: 'float16',
    tol: 1.5e-3,
  },
];

interface Result {
  /** the whole parameter buffer */
  param: number[];
  m: number[];
  v: number[];
  vmax: number[] | null;
}

const whole = (buf: BackendBuffer): View => ({ buffer: buf, shape: [buf.length], strides: [1], offset: 0 });
const view = (buf: BackendBuffer, l: Layout): View => ({ buffer: buf, shape: l.shape, strides: l.strides, offset: l.offset });

/** Runs the case's five steps on `backend` from the same seeded data; `onStep` wraps each step. */
function run(backend: Backend, c: Case, initial: number[], onStep?: (step: () => void) => void): Result {
  const rand = mulberry32(1234);
  const n = numel(c.param.shape);
  const gradLayout = c.grad ?? contiguous(c.param.shape);
  const p = backend.upload(c.paramDtype ?? 'float32', initial);
  const m = backend.zeros('float32', n);
  const v = backend.zeros('float32', n);
  const vmax = c.hyper.amsgrad ? backend.zeros('float32', n) : null;
  for (let step = 1; step <= STEPS; step++) {
    // gradients in [-3, 3), shrinking at step 4 so that v falls and amsgrad's max matters
    const scale = step >= 4 ? 0.1 : 1;
    const g = backend.upload('float32', Array.from({ length: gradLayout.length }, () => (rand() * 6 - 3) * scale));
    const go = () => backend.adamUpdate(view(p, c.param), view(g, gradLayout), m, v, vmax, { ...BASE, ...c.hyper, step });
    if (onStep) onStep(go);
    else go();
    backend.release(g);
  }
  const out: Result = {
    param: Array.from(backend.read(whole(p))),
    m: Array.from(backend.read(whole(m))),
    v: Array.from(backend.read(whole(v))),
    vmax: vmax ? Array.from(backend.read(whole(vmax))) : null,
  };
  for (const b of [p, m, v, vmax]) if (b) backend.release(b);
  return out;
}

/** Buffer positions inside a layout's view. */
function inside(l: Layout): Set<number> {
  const out = new Set<number>();
  const [r, c] = l.shape;
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out.add(l.offset + i * l.strides[0] + j * l.strides[1]);
  return out;
}

test('at least the cpu and webasm gpu.js modes run here', () => {
  expect(MODES).toEqual(expect.arrayContaining(['cpu', 'webasm']));
});

describe.each(MODES)('gpu adamUpdate, gpu.js mode %s', (mode) => {
  const cpu = new CpuBackend();
  let gpu: GpuBackend;
  beforeAll(() => {
    gpu = new GpuBackend({ mode });
  });
  afterAll(() => gpu.dispose());

  it.each(CASES.map((c) => [c.name, c] as const))('%s: 5 steps match cpu', (_, c) => {
    const rand = mulberry32(99);
    const dtype = c.paramDtype ?? 'float32';
    const raw = Array.from({ length: c.param.length }, () => rand() * 6 - 3);
    // start from values the parameter's dtype holds exactly, so both backends start equal
    const initial = dtype === 'float16' ? Array.from(decodeFloat16(encodeFloat16(raw))) : Array.from(Float32Array.from(raw));
    const want = run(cpu, c, initial);

    const toHost = jest.spyOn(gpu.runtime, 'toHost');
    let stepNo = 0;
    const got = run(gpu, c, initial, (step) => {
      const before = memoryTracker.stats();
      const compiled = gpu.info().kernelsCompiled;
      toHost.mockClear();
      step();
      // the step count (and any hyperparameter) changes per call without a recompile
      if (++stepNo > 1) expect(gpu.info().kernelsCompiled).toBe(compiled);
      // nothing read back, no buffer left behind (the temporary of a view update is released)
      expect(toHost).not.toHaveBeenCalled();
      const after = memoryTracker.stats();
      expect(after.liveBuffers).toBe(before.liveBuffers);
      expect(after.liveBytes).toBe(before.liveBytes);
    });
    toHost.mockRestore();

    const tol = c.tol ?? 1e-5;
    expectClose(got.param, want.param, tol);
    expectClose(got.m, want.m, 1e-5);
    expectClose(got.v, want.v, 1e-5);
    if (c.hyper.amsgrad) {
      expectClose(got.vmax!, want.vmax!, 1e-5);
      // the running max matters here: it differs from v somewhere (v fell after step 3)
      expect(want.vmax!.some((x, i) => x > want.v[i] * 1.05)).toBe(true);
    } else {
      expect(got.vmax).toBeNull();
    }

    // inside the view every element moved; outside nothing did, exactly
    const ins = inside(c.param);
    for (let i = 0; i < c.param.length; i++) {
      if (ins.has(i)) expect(got.param[i]).not.toBe(initial[i]);
      else expect(got.param[i]).toBe(initial[i]);
    }
    // float16 parameters hold float16 values
    if (dtype === 'float16') expect(got.param).toEqual(Array.from(decodeFloat16(encodeFloat16(got.param))));
  });

  it('moves against the gradient, or along it with maximize', () => {
    const one = (maximize: boolean): number => {
      const p = gpu.upload('float32', [1]);
      const g = gpu.upload('float32', [2]);
      const m = gpu.zeros('float32', 1);
      const v = gpu.zeros('float32', 1);
      gpu.adamUpdate(whole(p), whole(g), m, v, null, { ...BASE, eps: 0, maximize, step: 1 });
      return gpu.read(whole(p))[0];
    };
    // first step: m̂ = g, v̂ = g², so p moves by exactly lr·sign(g)
    expect(one(false)).toBeCloseTo(1 - BASE.lr, 6);
    expect(one(true)).toBeCloseTo(1 + BASE.lr, 6);
  });
});
