/**
 * Schedulers: lr sequences against hand values (LambdaLR, StepLR, HF's linear and cosine
 * warmup schedules), state dicts, errors, and composition with Adam (the trajectory equals a
 * reference loop fed the same lr sequence).
 */
import {
  Adam,
  LambdaLR,
  LRScheduler,
  SGD,
  StepLR,
  Tensor,
  ValueError,
  linearWarmupCosineDecay,
  linearWarmupLinearDecay,
  stateFromJSON,
  stateToJSON,
  tensor,
} from '../../src';
import { flat } from '../helpers';
import { B0, W0, adamRef, expectRel, regressionGrad, regressionLoss } from './reference';

const param = () => tensor([1], { dtype: 'float64', requiresGrad: true });

/** The lr of group 0 right after construction and after each of `n` steps. */
function lrs(s: LRScheduler, n: number, group = 0): number[] {
  const out = [s.getLastLr()[group]];
  for (let i = 0; i < n; i++) {
    s.step();
    out.push(s.getLastLr()[group]);
  }
  return out;
}

describe('LambdaLR and StepLR', () => {
  test('LambdaLR: lr = base · lambda(step), step 0 applied at construction', () => {
    const opt = new SGD([param()], { lr: 0.1 });
    const s = new LambdaLR(opt, (e) => 0.5 ** e);
    expect(opt.paramGroups[0].lr).toBe(0.1);
    expectRel(lrs(s, 4), [0.1, 0.05, 0.025, 0.0125, 0.00625], 1e-15);
    expect(opt.paramGroups[0].lr).toBeCloseTo(0.00625, 15);
    expect(s.lastEpoch).toBe(4);
    expect(s.baseLrs).toEqual([0.1]);
  });

  test('LambdaLR with one lambda per group', () => {
    const opt = new SGD([{ params: [param()] }, { params: [param()], lr: 1 }], { lr: 0.1 });
    const s = new LambdaLR(opt, [(e) => e + 1, (e) => 1 / (e + 1)]);
    s.step();
    s.step();
    expectRel(s.getLastLr(), [0.3, 1 / 3], 1e-15);
    expect(opt.paramGroups.map((g) => g.lr)).toEqual(s.getLastLr());
    expect(() => new LambdaLR(opt, [(e) => e])).toThrow(/expected 2 lr lambdas/);
  });

  test('StepLR(3, 0.5): 0.1 x3, 0.05 x3, 0.025 x3, ...', () => {
    const opt = new SGD([param()], { lr: 0.1 });
    const s = new StepLR(opt, 3, 0.5);
    expectRel(lrs(s, 9), [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125], 1e-15);
    expect(() => new StepLR(opt, 0)).toThrow(/stepSize must be an integer >= 1/);
  });

  test('a lambda that returns NaN is an error and leaves the lr alone', () => {
    const opt = new SGD([param()], { lr: 0.1 });
    const s = new LambdaLR(opt, (e) => (e === 2 ? NaN : 1));
    s.step();
    expect(() => s.step()).toThrow(/gave lr NaN for group 0 at step 2/);
    expect(opt.paramGroups[0].lr).toBe(0.1);
    expect(s.lastEpoch).toBe(1);
  });

  test('a group added after the scheduler was built is a clear error', () => {
    const opt = new SGD([param()], { lr: 0.1 });
    const s = new StepLR(opt, 2);
    opt.addParamGroup({ params: [param()] });
    expect(() => s.step()).toThrow(ValueError);
  });

  test('works with any object with paramGroups (a wrapper\'s groups)', () => {
    const wrapper = { paramGroups: [{ lr: 2 }, { lr: 4 }] };
    const s = linearWarmupLinearDecay(wrapper, 2, 4);
    s.step();
    expect(wrapper.paramGroups.map((g) => g.lr)).toEqual([1, 2]);
  });
});

describe("Hugging Face's warmup schedules", () => {
  test('linear warmup 2, total 6: 0, 0.5, 1, 0.75, 0.5, 0.25, 0, 0', () => {
    const opt = new SGD([param()], { lr: 1 });
    expectRel(lrs(linearWarmupLinearDecay(opt, 2, 6), 7), [0, 0.5, 1, 0.75, 0.5, 0.25, 0, 0], 1e-15);
  });

  test('cosine warmup 2, total 6: 0, 0.5, 1, (1+cos(π/4))/2, 0.5, (1-cos(π/4))/2, 0', () => {
    const opt = new SGD([param()], { lr: 1 });
    const c = Math.SQRT1_2;
    expectRel(lrs(linearWarmupCosineDecay(opt, 2, 6), 6), [0, 0.5, 1, (1 + c) / 2, 0.5, (1 - c) / 2, 0], 1e-14);
  });

  test('cosine with minLrRatio 0.1: decays to 0.1 of the base lr', () => {
    const opt = new SGD([param()], { lr: 2 });
    const seq = lrs(linearWarmupCosineDecay(opt, 0, 4, { minLrRatio: 0.1 }), 4);
    expectRel(seq, [2, 2 * (0.1 + 0.9 * (1 + Math.SQRT1_2) / 2), 2 * 0.55, 2 * (0.1 + 0.9 * (1 - Math.SQRT1_2) / 2), 0.2], 1e-14);
  });

  test('bad arguments', () => {
    const opt = new SGD([param()], { lr: 1 });
    expect(() => linearWarmupLinearDecay(opt, 5, 3)).toThrow(/totalSteps must be an integer >= warmupSteps \(5\), got 3/);
    expect(() => linearWarmupCosineDecay(opt, -1, 3)).toThrow(/warmupSteps must be an integer >= 0/);
    expect(() => linearWarmupCosineDecay(opt, 1, 3, { minLrRatio: 2 })).toThrow(/minLrRatio must be in \[0, 1\]/);
  });
});

describe('state dicts', () => {
  test('a scheduler restored from JSON continues the same lr sequence (with the optimizer restored too)', () => {
    const opt = new SGD([param()], { lr: 0.1 });
    const s = new StepLR(opt, 2, 0.5);
    for (let i = 0; i < 3; i++) s.step();
    const saved = JSON.parse(JSON.stringify({ opt: stateToJSON(opt.stateDict()), sched: stateToJSON(s.stateDict()) }));
    const opt2 = new SGD([param()], { lr: 0.1 });
    const s2 = new StepLR(opt2, 2, 0.5);
    opt2.loadStateDict(stateFromJSON(saved.opt));
    s2.loadStateDict(stateFromJSON(saved.sched));
    expect(s2.lastEpoch).toBe(3);
    expect(s2.getLastLr()).toEqual(s.getLastLr());
    expect(lrs(s2, 4)).toEqual(lrs(s, 4));
  });

  test('bad scheduler state dicts change nothing', () => {
    const opt = new SGD([param()], { lr: 0.1 });
    const s = new StepLR(opt, 2, 0.5);
    expect(() => s.loadStateDict({ lastEpoch: 1.5, baseLrs: [0.1], lastLr: [0.1] })).toThrow(/lastEpoch must be an integer/);
    expect(() => s.loadStateDict({ lastEpoch: 3, baseLrs: [0.1, 0.2], lastLr: [0.1] })).toThrow(/baseLrs must be 1 finite numbers/);
    expect(() => s.loadStateDict({ lastEpoch: 3, baseLrs: [0.1], lastLr: [0.1], stepSize: 5 })).toThrow(/stepSize is 5/);
    expect(s.lastEpoch).toBe(0);
  });
});

describe('composition with Adam', () => {
  test('Adam under linear warmup + decay equals the reference fed the same lrs', () => {
    const w = tensor(W0, { dtype: 'float64', requiresGrad: true });
    const b = tensor(B0, { dtype: 'float64', requiresGrad: true });
    const opt = new Adam([w, b], { lr: 0.1 });
    const sched = linearWarmupLinearDecay(opt, 3, 10);
    const rw = [...W0];
    const rb = [...B0];
    const [refW, refB] = [adamRef({ lr: 0.1 }), adamRef({ lr: 0.1 })];
    const expectedLrs = [0, 1 / 3, 2 / 3, 1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7, 0, 0].map((f) => 0.1 * f);
    for (let step = 0; step < 12; step++) {
      expectRel([opt.paramGroups[0].lr], [expectedLrs[step]], 1e-15, `lr at step ${step}`);
      opt.zeroGrad();
      regressionLoss(w, b).backward();
      opt.step();
      sched.step();
      const { gw, gb } = regressionGrad(rw, rb);
      refW(rw, gw, expectedLrs[step]);
      refB(rb, gb, expectedLrs[step]);
      expectRel(flat(w), rw, 1e-10, `w at step ${step + 1}`);
    }
    expectRel(flat(b), rb, 1e-10);
    // lr 0 on the first step left the weights alone but still counted the step
    expect(opt.state.get(w)?.step).toBe(12);
  });

  test('Adam groups with different lrs keep their ratio under a shared schedule', () => {
    const opt = new Adam([{ params: [param()] }, { params: [param()], lr: 0.01 }], { lr: 0.1 });
    const sched = linearWarmupCosineDecay(opt, 2, 8);
    for (let i = 0; i < 4; i++) sched.step();
    const [a, c] = opt.paramGroups.map((g) => g.lr);
    expect(a / c).toBeCloseTo(10, 12);
    expect((opt.paramGroups[0].params[0] as Tensor).dtype).toBe('float64');
  });
});
