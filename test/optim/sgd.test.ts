/**
 * SGD: hand-derived first steps on a scalar problem for every flag, 20-step trajectories on a
 * linear regression against a plain-JS float64 loop, parameter groups, the Nesterov rule.
 */
import { SGD, Tensor, ValueError, memory, tensor } from '../../src';
import { flat } from '../helpers';
import { B0, W0, expectRel, followReference, regressionGrad, regressionLoss, sgdRef, type SgdRefOptions } from './reference';

/** f(x) = (x - 3)², x0 = 1; two steps with the gradient 2(x - 3) set by hand. */
function twoScalarSteps(options: ConstructorParameters<typeof SGD>[1], sign = 1): number[] {
  const x = tensor([1], { dtype: 'float64', requiresGrad: true });
  const opt = new SGD([x], options);
  const out: number[] = [];
  for (let i = 0; i < 2; i++) {
    x.grad = tensor([sign * 2 * (x.item() - 3)], { dtype: 'float64' });
    opt.step();
    out.push(x.item());
  }
  return out;
}

describe('SGD: the first two steps by hand on f(x) = (x-3)², x0 = 1', () => {
  test('plain: x1 = 1 - 0.1·(-4) = 1.4, x2 = 1.4 - 0.1·(-3.2) = 1.72', () => {
    expectRel(twoScalarSteps({ lr: 0.1 }), [1.4, 1.72], 1e-15);
  });

  test('momentum 0.9, dampening 0.5: buf1 = g1 = -4 (no dampening), buf2 = 0.9·(-4) + 0.5·(-3.2) = -5.2', () => {
    expectRel(twoScalarSteps({ lr: 0.1, momentum: 0.9, dampening: 0.5 }), [1.4, 1.4 + 0.52], 1e-15);
  });

  test('nesterov 0.9: x1 = 1 + 0.1·7.6 = 1.76; g2 = -2.48, buf2 = -6.08, step -7.952: x2 = 2.5552', () => {
    expectRel(twoScalarSteps({ lr: 0.1, momentum: 0.9, nesterov: true }), [1.76, 2.5552], 1e-14);
  });

  test('weight decay 0.1: g1 = -4 + 0.1 = -3.9, x1 = 1.39; g2 = -3.22 + 0.139 = -3.081, x2 = 1.6981', () => {
    expectRel(twoScalarSteps({ lr: 0.1, weightDecay: 0.1 }), [1.39, 1.6981], 1e-14);
  });

  test('maximize on -(x-3)² takes the same steps as minimizing (x-3)²', () => {
    expectRel(twoScalarSteps({ lr: 0.1, maximize: true }, -1), [1.4, 1.72], 1e-15);
  });

  test('the momentum buffer is stored as momentum_buffer; no state without momentum', () => {
    const x = tensor([1], { dtype: 'float64', requiresGrad: true });
    const opt = new SGD([x], { lr: 0.1, momentum: 0.9 });
    x.grad = tensor([-4], { dtype: 'float64' });
    opt.step();
    expect(flat(opt.state.get(x)?.momentum_buffer as Tensor)).toEqual([-4]);
    const y = tensor([1], { dtype: 'float64', requiresGrad: true });
    const plain = new SGD([y], { lr: 0.1 });
    y.grad = tensor([-4], { dtype: 'float64' });
    plain.step();
    expect(plain.state.get(y)).toEqual({});
    expect(plain.stateDict().state).toEqual({});
  });
});

describe('SGD: 20 steps of linear regression against a float64 reference loop', () => {
  const configs: [string, SgdRefOptions][] = [
    ['plain', { lr: 0.1 }],
    ['momentum', { lr: 0.05, momentum: 0.9 }],
    ['momentum + dampening', { lr: 0.05, momentum: 0.9, dampening: 0.3 }],
    ['nesterov', { lr: 0.05, momentum: 0.9, nesterov: true }],
    ['weight decay', { lr: 0.1, weightDecay: 0.05 }],
    ['maximize', { lr: 0.1, maximize: true }],
    ['everything', { lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.02, maximize: true }],
  ];
  test.each(configs)('%s', (_, h) => {
    const sign = h.maximize ? -1 : 1; // maximize the negated loss
    const w = tensor(W0, { dtype: 'float64', requiresGrad: true });
    const b = tensor(B0, { dtype: 'float64', requiresGrad: true });
    const opt = new SGD([w, b], h);
    followReference(opt, w, b, () => sgdRef(h), { rel: 1e-12, sign });
    // the problem is solved a good deal: the loss fell
    expect(regressionLoss(w, b).item()).toBeLessThan(regressionLoss(tensor(W0, { dtype: 'float64' }), tensor(B0, { dtype: 'float64' })).item());
  });

  test('float32 parameters follow the float64 reference to 1e-5', () => {
    const h = { lr: 0.05, momentum: 0.9, nesterov: true };
    const w = tensor(W0, { requiresGrad: true });
    const b = tensor(B0, { requiresGrad: true });
    const opt = new SGD([w, b], h);
    const rw = [...W0];
    const rb = [...B0];
    const [refW, refB] = [sgdRef(h), sgdRef(h)];
    for (let step = 0; step < 20; step++) {
      opt.zeroGrad();
      regressionLoss(w, b).backward();
      opt.step();
      const { gw, gb } = regressionGrad(rw, rb);
      refW(rw, gw);
      refB(rb, gb);
    }
    expect(w.dtype).toBe('float32');
    expectRel(flat(w), rw, 1e-5);
    expectRel(flat(b), rb, 1e-5);
  });
});

describe('SGD: groups and options', () => {
  test('two groups with different lr and momentum', () => {
    const a = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const c = tensor([3], { dtype: 'float64', requiresGrad: true });
    const opt = new SGD([{ params: [a] }, { params: [c], lr: 0.01, momentum: 0.5 }], { lr: 0.1 });
    expect(opt.paramGroups[0]).toMatchObject({ lr: 0.1, momentum: 0 });
    expect(opt.paramGroups[1]).toMatchObject({ lr: 0.01, momentum: 0.5, dampening: 0, nesterov: false });
    for (let i = 0; i < 2; i++) {
      a.grad = tensor([1, -1], { dtype: 'float64' });
      c.grad = tensor([2], { dtype: 'float64' });
      opt.step();
    }
    expectRel(flat(a), [0.8, 2.2], 1e-15);
    // c: buf1 = 2 -> 3 - 0.02 = 2.98; buf2 = 0.5·2 + 2 = 3 -> 2.98 - 0.03 = 2.95
    expectRel(flat(c), [2.95], 1e-15);
  });

  test('nesterov without momentum, or with dampening, is an error (constructor and group)', () => {
    const x = tensor([1], { requiresGrad: true });
    expect(() => new SGD([x], { nesterov: true })).toThrow(/Nesterov momentum requires momentum > 0 and dampening 0/);
    expect(() => new SGD([x], { nesterov: true, momentum: 0.9, dampening: 0.1 })).toThrow(ValueError);
    expect(() => new SGD([{ params: [x], nesterov: true }], { momentum: 0 })).toThrow(/Nesterov/);
    expect(() => new SGD([x], { lr: -1 })).toThrow(/invalid learning rate -1/);
    expect(() => new SGD([x], { momentum: -0.5 })).toThrow(/invalid momentum/);
  });

  test('float16 parameters are computed in float32 and rounded once', () => {
    const x = tensor([1, 0.1, -2], { dtype: 'float16', requiresGrad: true });
    const before = flat(x);
    const opt = new SGD([x], { lr: 0.1, momentum: 0.9 });
    x.grad = tensor([0.5, 0.25, -1], { dtype: 'float16' });
    opt.step();
    expect(x.dtype).toBe('float16');
    expect((opt.state.get(x)?.momentum_buffer as Tensor).dtype).toBe('float32');
    const expected = before.map((v, i) => Math.fround(v - Math.fround(0.1) * [0.5, 0.25, -1][i]));
    expect(flat(x)).toEqual(flat(tensor(expected, { dtype: 'float16' })));
  });
});

describe('SGD frees its temporaries', () => {
  // Tests are synchronous, so no finalizer runs: a step that disposes its casts, products and
  // differences leaves the 'other' bytes (op outputs) where they were; only the momentum buffer
  // ('optimizer') is new.
  test.each([
    ['float16', {}],
    ['float32', { momentum: 0.9, weightDecay: 0.1 }],
    ['float16', { momentum: 0.9, nesterov: true, weightDecay: 0.1, maximize: true }],
    ['float64', { momentum: 0.9, dampening: 0.5 }],
  ] as const)('%s %j: three steps leave no op output alive', (dtype, options) => {
    const p = tensor([[1, -2, 3], [0.5, 0.25, -4]], { dtype, requiresGrad: true });
    const opt = new SGD([p], { lr: 0.1, ...options });
    const start = memory.stats().byCategory;
    for (let i = 0; i < 3; i++) {
      p.grad = tensor([[0.5, -1, 2], [1, 1, -3]], { dtype }).tagMemory('grads');
      const before = memory.stats().byCategory.other;
      opt.step();
      expect(memory.stats().byCategory.other).toBe(before);
      opt.zeroGrad();
    }
    const end = memory.stats().byCategory;
    expect(end.optimizer - start.optimizer).toBe('momentum' in options ? 6 * (dtype === 'float64' ? 8 : 4) : 0);
    expect(end.grads - start.grads).toBe(0);
  });
});
