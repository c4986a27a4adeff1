/**
 * Adam and AdamW: hand-derived first steps, 20-step trajectories against a plain-JS float64 loop
 * for every flag, the fused kernel against a readable reference composed from tensor ops,
 * strided and float16 parameters, state names and memory accounting.
 */
import {
  Adam,
  AdamW,
  Tensor,
  ValueError,
  add,
  div,
  manualSeed,
  maximum,
  memory,
  mul,
  neg,
  randn,
  sqrt,
  sub,
  tensor,
  noGrad,
  copy_,
  type AdamOptions,
} from '../../src';
import { kernelCounters } from '../../src/kernels/registry';
import { flat } from '../helpers';
import { B0, W0, adamRef, expectRel, followReference, regressionGrad, type AdamRefOptions } from './reference';

/** Runs `grads.length` steps on a one-element float64 parameter starting at x0 with the given gradients (a function of x). */
function scalarSteps(make: (p: Tensor[]) => Adam, grads: ((x: number) => number)[], x0 = 1): number[] {
  const x = tensor([x0], { dtype: 'float64', requiresGrad: true });
  const opt = make([x]);
  return grads.map((g) => {
    x.grad = tensor([g(x.item())], { dtype: 'float64' });
    opt.step();
    return x.item();
  });
}

const quad = (x: number) => 2 * (x - 3); // d/dx (x - 3)²

describe('Adam: the first two steps by hand on f(x) = (x-3)², x0 = 1, lr 0.1', () => {
  test('plain: step 1 moves by lr·|g|/(|g|+eps); step 2 with bias corrections 0.19 and 0.001999', () => {
    const [x1, x2] = scalarSteps((p) => new Adam(p, { lr: 0.1 }), [quad, quad]);
    // step 1: g = -4, m = -0.4, v = 0.016, m̂ = -4, sqrt(v̂) = 4: x1 = 1 + 0.1·4/(4 + 1e-8)
    expectRel([x1], [1 + 0.4 / (4 + 1e-8)], 1e-15);
    // step 2: g = 2(x1 - 3) ≈ -3.8; m = 0.9·(-0.4) + 0.1·g; v = 0.999·0.016 + 0.001·g²
    const g = 2 * (x1 - 3);
    const m = 0.9 * -0.4 + 0.1 * g;
    const v = 0.999 * 0.016 + 0.001 * g * g;
    const expected = x1 - (0.1 / 0.19) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** 2) + 1e-8));
    expectRel([x2], [expected], 1e-14);
    expect(x2).toBeCloseTo(1.19983, 5); // m̂ ≈ -3.8947, sqrt(v̂) ≈ 3.9012
  });

  test('eps sits outside the square root: a tiny gradient moves by lr·|g|/(|g|+eps)', () => {
    const [x1] = scalarSteps((p) => new Adam(p, { lr: 1, eps: 1e-3 }), [() => 1e-3]);
    // sqrt(v̂) = 1e-3 exactly; inside the root it would be sqrt(1e-6 + 1e-3)
    expectRel([x1], [1 - 1e-3 / (1e-3 + 1e-3)], 1e-12);
  });

  test('L2 weight decay 0.1 joins the gradient: g1 = -4 + 0.1·1 = -3.9', () => {
    const [x1] = scalarSteps((p) => new Adam(p, { lr: 0.1, weightDecay: 0.1 }), [quad]);
    expectRel([x1], [1 + (0.1 * 3.9) / (3.9 + 1e-8)], 1e-15);
  });

  test('AdamW decays the weight first: x1 = 1·(1 - 0.1·0.1) + 0.1·4/(4 + 1e-8)', () => {
    const [x1, x2] = scalarSteps((p) => new AdamW(p, { lr: 0.1, weightDecay: 0.1 }), [quad, quad]);
    expectRel([x1], [0.99 + 0.4 / (4 + 1e-8)], 1e-15);
    const g = 2 * (x1 - 3);
    const m = 0.9 * -0.4 + 0.1 * g;
    const v = 0.999 * 0.016 + 0.001 * g * g;
    expectRel([x2], [x1 * 0.99 - (0.1 / 0.19) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** 2) + 1e-8))], 1e-14);
  });

  test('AdamW defaults to weightDecay 0.01, Adam to 0', () => {
    const x = tensor([1], { requiresGrad: true });
    expect(new AdamW([x]).paramGroups[0].weightDecay).toBe(0.01);
    expect(new Adam([x]).paramGroups[0]).toMatchObject({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false });
  });

  test('amsgrad keeps the larger second moment when v shrinks (g = -4 then 0.01)', () => {
    const grads = [() => -4, () => 0.01];
    const [x1, x2] = scalarSteps((p) => new Adam(p, { lr: 0.1, amsgrad: true }), grads);
    const [, y2] = scalarSteps((p) => new Adam(p, { lr: 0.1 }), grads);
    const m = 0.9 * -0.4 + 0.1 * 0.01; // -0.359
    const vmax = 0.016; // v2 = 0.999·0.016 + 0.001·1e-4 = 0.0159841 < 0.016
    expectRel([x2], [x1 - (0.1 / 0.19) * (m / (Math.sqrt(vmax) / Math.sqrt(1 - 0.999 ** 2) + 1e-8))], 1e-14);
    const v2 = 0.999 * 0.016 + 0.001 * 1e-4;
    expectRel([y2], [x1 - (0.1 / 0.19) * (m / (Math.sqrt(v2) / Math.sqrt(1 - 0.999 ** 2) + 1e-8))], 1e-14);
  });

  test('maximize on -(x-3)² takes the steps of minimizing (x-3)²', () => {
    const max = scalarSteps((p) => new Adam(p, { lr: 0.1, maximize: true }), [(x) => -quad(x), (x) => -quad(x)]);
    const min = scalarSteps((p) => new Adam(p, { lr: 0.1 }), [quad, quad]);
    expect(max).toEqual(min);
  });

  test('state uses PyTorch names: step (a number), exp_avg, exp_avg_sq, max_exp_avg_sq', () => {
    const x = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const opt = new Adam([x], { lr: 0.1, amsgrad: true });
    x.grad = tensor([-4, 2], { dtype: 'float64' });
    opt.step();
    opt.step();
    const s = opt.state.get(x) as Record<string, unknown>;
    expect(Object.keys(s).sort()).toEqual(['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step']);
    expect(s.step).toBe(2);
    // m = 0.9·0.1·g + 0.1·g = 0.19·g; v = 0.001·g²·(0.999 + 1)
    expectRel(flat(s.exp_avg as Tensor), [-4 * 0.19, 2 * 0.19], 1e-14);
    expectRel(flat(s.exp_avg_sq as Tensor), [16 * 0.001 * 1.999, 4 * 0.001 * 1.999], 1e-14);
  });

  test('bad hyperparameters are clear errors', () => {
    const x = tensor([1], { requiresGrad: true });
    expect(() => new Adam([x], { betas: [1, 0.999] })).toThrow(/invalid beta1 1/);
    expect(() => new Adam([x], { betas: [0.9, -0.1] })).toThrow(/invalid beta2/);
    expect(() => new Adam([x], { eps: -1 })).toThrow(/invalid eps/);
    expect(() => new Adam([x], { weightDecay: -1 })).toThrow(ValueError);
    expect(() => new Adam([x], { betas: [0.9] as unknown as [number, number] })).toThrow(/betas must be an array of 2 numbers/);
    expect(() => new AdamW([x], { lr: NaN })).toThrow(/lr must be a number/);
  });
});

describe('Adam / AdamW: 20 steps of linear regression against a float64 reference loop', () => {
  const configs: [string, AdamRefOptions][] = [
    ['Adam', { lr: 0.05 }],
    ['Adam amsgrad', { lr: 0.05, amsgrad: true }],
    ['Adam L2 weight decay', { lr: 0.05, weightDecay: 0.1 }],
    ['Adam maximize', { lr: 0.05, maximize: true }],
    ['Adam betas and eps', { lr: 0.05, betas: [0.8, 0.99], eps: 1e-3 }],
    ['Adam beta1 = 0.3 (the other lerp branch)', { lr: 0.05, betas: [0.3, 0.9] }],
    ['Adam everything', { lr: 0.05, amsgrad: true, weightDecay: 0.05, maximize: true, betas: [0.85, 0.95] }],
    ['AdamW', { lr: 0.05, weightDecay: 0.1, decoupled: true }],
    ['AdamW amsgrad maximize', { lr: 0.05, weightDecay: 0.2, decoupled: true, amsgrad: true, maximize: true }],
  ];
  test.each(configs)('%s', (_, h) => {
    const sign = h.maximize ? -1 : 1;
    const w = tensor(W0, { dtype: 'float64', requiresGrad: true });
    const b = tensor(B0, { dtype: 'float64', requiresGrad: true });
    const { decoupled, ...options } = h;
    const opt = decoupled ? new AdamW([w, b], options) : new Adam([w, b], options);
    followReference(opt, w, b, () => adamRef(h), { rel: 1e-10, sign });
    expect(opt.state.get(w)?.step).toBe(20);
  });

  test('amsgrad changes this trajectory (the flag is not a no-op here)', () => {
    const run = (amsgrad: boolean) => {
      const w = [...W0];
      const b = [...B0];
      const [rw, rb] = [adamRef({ lr: 0.05, amsgrad }), adamRef({ lr: 0.05, amsgrad })];
      for (let i = 0; i < 20; i++) {
        const { gw, gb } = regressionGrad(w, b);
        rw(w, gw);
        rb(b, gb);
      }
      return w;
    };
    expect(run(true)).not.toEqual(run(false));
  });

  test('float32 parameters follow the float64 reference to 1e-5', () => {
    const w = tensor(W0, { requiresGrad: true });
    const b = tensor(B0, { requiresGrad: true });
    const opt = new AdamW([w, b], { lr: 0.05, weightDecay: 0.1, amsgrad: true });
    followReference(opt, w, b, () => adamRef({ lr: 0.05, weightDecay: 0.1, decoupled: true, amsgrad: true }), { rel: 1e-5, everyStep: false });
    expect((opt.state.get(w)?.exp_avg as Tensor).dtype).toBe('float32');
  });
});

// ------------------------------------------------------------------ a readable reference from tensor ops

interface OpsState {
  step: number;
  m: Tensor;
  v: Tensor;
  vmax: Tensor;
}

/** One Adam/AdamW step written with blockgrad's tensor ops, line by line from PyTorch's algorithm. */
function adamStepOps(p: Tensor, grad: Tensor, s: OpsState, h: AdamOptions & { decoupled: boolean }): Tensor {
  const [b1, b2] = h.betas;
  s.step += 1;
  let g = h.maximize ? neg(grad) : grad;
  let x = p;
  if (h.weightDecay !== 0) {
    if (h.decoupled) x = mul(x, 1 - h.lr * h.weightDecay);
    else g = add(g, mul(x, h.weightDecay));
  }
  s.m = add(mul(s.m, b1), mul(g, 1 - b1));
  s.v = add(mul(s.v, b2), mul(mul(g, g), 1 - b2));
  s.vmax = maximum(s.vmax, s.v);
  const biasCorrection1 = 1 - b1 ** s.step;
  const biasCorrection2 = 1 - b2 ** s.step;
  const denom = add(div(sqrt(h.amsgrad ? s.vmax : s.v), Math.sqrt(biasCorrection2)), h.eps);
  return sub(x, mul(div(s.m, denom), h.lr / biasCorrection1));
}

describe('the fused kernel against the tensor-op reference', () => {
  const flags: [string, Partial<AdamOptions> & { decoupled?: boolean }][] = [
    ['defaults', {}],
    ['amsgrad + L2', { amsgrad: true, weightDecay: 0.3 }],
    ['AdamW + maximize', { decoupled: true, weightDecay: 0.3, maximize: true }],
    ['betas 0.2/0.5, eps 0.1', { betas: [0.2, 0.5], eps: 0.1 }],
  ];
  test.each(flags)('%s: 10 steps on a [4,5] float64 parameter agree to 1e-12', (_, f) => {
    manualSeed(7);
    const { decoupled = false, ...options } = f;
    const h = { lr: 0.01, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, ...options, decoupled };
    const p = randn([4, 5], { dtype: 'float64', requiresGrad: true });
    let q = tensor(p); // a copy: p is updated in place
    const zeros = () => mul(p.detach(), 0);
    const s: OpsState = { step: 0, m: zeros(), v: zeros(), vmax: zeros() };
    const opt = decoupled ? new AdamW([p], options) : new Adam([p], options);
    opt.paramGroups[0].lr = 0.01;
    for (let i = 0; i < 10; i++) {
      const g = randn([4, 5], { dtype: 'float64' });
      p.grad = g;
      opt.step();
      q = noGrad(() => adamStepOps(q, g, s, h));
      expectRel(flat(p), flat(q), 1e-12, `step ${i + 1}`);
    }
    expectRel(flat(opt.state.get(p)?.exp_avg as Tensor), flat(s.m), 1e-12);
    expectRel(flat(opt.state.get(p)?.exp_avg_sq as Tensor), flat(s.v), 1e-12);
  });

  test('a non-contiguous (transposed) parameter is updated through its strides', () => {
    manualSeed(3);
    const base = randn([3, 4], { dtype: 'float64' });
    const p = base.transpose(0, 1).requiresGrad_(); // a leaf view with strides [1, 4]
    expect(p.isContiguous()).toBe(false);
    const q = tensor(p.toArray(), { dtype: 'float64', requiresGrad: true }); // same values, contiguous
    const [o1, o2] = [new Adam([p], { lr: 0.1 }), new Adam([q], { lr: 0.1 })];
    for (let i = 0; i < 3; i++) {
      const g = randn([4, 3], { dtype: 'float64' });
      p.grad = g;
      q.grad = g;
      o1.step();
      o2.step();
    }
    expect(flat(p)).toEqual(flat(q));
    expect(flat(base)).toEqual(flat(q.transpose(0, 1))); // the write went through the view into base
  });
});

describe('float16 parameters through the fused kernel', () => {
  test('values are computed from the decoded float16 and rounded to float16; moments are float32', () => {
    const init = [1, -0.5, 0.1, 2, 1e-3];
    const gs = [
      [0.5, -0.25, 0.01, 3, -1e-4],
      [0.4, 0.3, -0.02, 2.5, 1e-4],
    ];
    const p = tensor(init, { dtype: 'float16', requiresGrad: true });
    const opt = new Adam([p], { lr: 0.01 });
    // the reference: the kernel's arithmetic in doubles, moments rounded to float32, p to float16
    let x = flat(p);
    const m = [0, 0, 0, 0, 0];
    const v = [0, 0, 0, 0, 0];
    gs.forEach((gv, t) => {
      p.grad = tensor(gv, { dtype: 'float16' });
      opt.step();
      const g = flat(p.grad);
      const stepSize = 0.01 / (1 - 0.9 ** (t + 1));
      const bc2 = Math.sqrt(1 - 0.999 ** (t + 1));
      const next = x.map((xi, i) => {
        m[i] = Math.fround(m[i] + (1 - 0.9) * (g[i] - m[i]));
        v[i] = Math.fround(0.999 * v[i] + (1 - 0.999) * g[i] * g[i]);
        return xi - stepSize * (m[i] / (Math.sqrt(v[i]) / bc2 + 1e-8));
      });
      x = flat(tensor(next, { dtype: 'float16' })); // round each value to float16 once
      expect(flat(p)).toEqual(x);
    });
    expect(p.dtype).toBe('float16');
    const s = opt.state.get(p) as Record<string, Tensor>;
    expect(s.exp_avg.dtype).toBe('float32');
    expect(flat(s.exp_avg)).toEqual(m);
    expect(flat(s.exp_avg_sq)).toEqual(v);
    // the update really moved the weights, by about lr each (Adam's first steps are ~lr)
    expect(Math.abs(flat(p)[3] - 2)).toBeGreaterThan(0.015);
  });

  test('the kernel is one launch per parameter', () => {
    const p = tensor([1, 2, 3], { dtype: 'float16', requiresGrad: true });
    const opt = new Adam([p]);
    p.grad = tensor([1, 1, 1], { dtype: 'float16' });
    opt.step(); // allocates the state
    const before = kernelCounters.launches.adamUpdate ?? 0;
    opt.step();
    expect((kernelCounters.launches.adamUpdate ?? 0) - before).toBe(1);
  });
});

describe('memory: Adam state is tagged optimizer', () => {
  test('float32 params: 2 x 4 bytes x numel (3 x with amsgrad); resetState frees it', () => {
    const a = randn([10, 7], { requiresGrad: true });
    const b = randn([7], { requiresGrad: true });
    const numel = 77;
    const opt = new Adam([a, b]);
    const start = memory.stats().byCategory.optimizer;
    a.grad = randn([10, 7]);
    b.grad = randn([7]);
    opt.step();
    expect(memory.stats().byCategory.optimizer - start).toBe(2 * 4 * numel);
    opt.step(); // no new state
    expect(memory.stats().byCategory.optimizer - start).toBe(2 * 4 * numel);
    opt.resetState();
    expect(memory.stats().byCategory.optimizer - start).toBe(0);
    expect(opt.state.size).toBe(0);

    const ams = new Adam([a, b], { amsgrad: true });
    ams.step();
    expect(memory.stats().byCategory.optimizer - start).toBe(3 * 4 * numel);
    ams.resetState();
  });

  test('float16 params keep float32 moments: still 2 x 4 bytes x numel', () => {
    const p = randn([6, 5], { dtype: 'float16', requiresGrad: true });
    const opt = new Adam([p]);
    const start = memory.stats().byCategory.optimizer;
    p.grad = randn([6, 5], { dtype: 'float16' });
    opt.step();
    expect(memory.stats().byCategory.optimizer - start).toBe(2 * 4 * 30);
    opt.resetState();
  });
});

describe('Adam: the wrapper hook (updateParameter on a float32 master copy)', () => {
  test('a float16 weight trained through a float32 master equals Adam on float32 weights, rounded', () => {
    manualSeed(11);
    const values = randn([8], { dtype: 'float32' });
    const w16 = tensor(values, { dtype: 'float16', requiresGrad: true }); // the float16 model weight
    const master = tensor(w16, { dtype: 'float32' }); // float32 master of the float16 weight
    const baseline = new Adam([tensor(w16, { dtype: 'float32', requiresGrad: true })], { lr: 0.05 });
    const ref = baseline.paramGroups[0].params[0];
    const opt = new Adam([w16], { lr: 0.05 });
    const group = opt.paramGroups[0];
    const st = opt.initState(master, group);
    opt.state.set(w16, st); // keyed by the model's weight, so stateDict sees it
    for (let i = 0; i < 5; i++) {
      const g = randn([8], { dtype: 'float32' });
      ref.grad = g;
      baseline.step();
      opt.updateParameter(master, g, st, group);
      noGrad(() => copy_(w16, master));
    }
    expect(flat(master)).toEqual(flat(ref));
    expect(flat(w16)).toEqual(flat(tensor(ref, { dtype: 'float16' })));
    expect(opt.stateDict().state[0].step).toBe(5);
    expect(() => opt.updateParameter(master, randn([3]), st, group)).toThrow(/has shape \[3\], expected \[8\]/);
  });
});
