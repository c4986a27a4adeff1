/**
 * BlockOptimizerRatio with parameter groups (options.groups), as LLaMA-Factory builds them: each
 * group's lr, betas, eps and weight decay apply to the selected entries of its parameters, checked
 * in float64 against a JS Adam on each k-vector; schedulers see one paramGroups entry per group;
 * the state dict round-trips the groups; a parameter in no group, or in two, is an error.
 */
import { BlockOptimizerRatio, Generator, LambdaLR, ValueError, randn, type Tensor } from '../../../src';
import { adamRef, expectRel } from '../reference';

const flatOf = (t: Tensor) => Array.from(t.toTypedArray() as Float64Array);

/** Two 1-D "weights" of 40 entries and a 40-entry "bias", with fresh seeded gradients at each step. */
function params() {
  const named: [string, Tensor][] = ['a.weight', 'b.weight', 'a.bias'].map((n, i) => [n, randn([40], { dtype: 'float64', generator: new Generator(10 + i), requiresGrad: true })]);
  const setGrads = (t: number) => named.forEach(([, p], i) => (p.grad = randn([40], { dtype: 'float64', generator: new Generator(100 * t + i) })));
  return { named, setGrads };
}

const DECAY = { lr: 0.05, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0.1 };
const NO_DECAY = { lr: 0.02, betas: [0.8, 0.99] as [number, number], eps: 1e-6, weightDecay: 0 };

function grouped(named: [string, Tensor][]) {
  return new BlockOptimizerRatio(named, {
    updateRatio: 0.25,
    switchEvery: 3,
    preserveThreshold: 0,
    verbose: 0,
    groups: [
      { params: named.filter(([n]) => n.endsWith('weight')), name: 'decay', ...DECAY },
      { params: named.filter(([n]) => n.endsWith('bias')), name: 'no_decay', ...NO_DECAY },
    ],
  });
}

test("each group's hyperparameters apply to its parameters' selected entries (float64, to 1e-12)", () => {
  const { named, setGrads } = params();
  const opt = grouped(named);
  expect(opt.paramGroups.map((g) => [g.name, g.paramNames])).toEqual([
    ['decay', ['a.weight', 'b.weight']],
    ['no_decay', ['a.bias']],
  ]);
  const x = named.map(([, p]) => flatOf(p));
  for (let period = 0; period < 2; period++) {
    const refs = named.map(([n]) => adamRef({ ...(n.endsWith('bias') ? NO_DECAY : DECAY), decoupled: true }));
    const idx = named.map(([n]) => opt.maskIndices(n));
    const k = x.map((v, j) => idx[j].map((i) => v[i]));
    for (let t = 0; t < 3; t++) {
      setGrads(period * 3 + t);
      named.forEach(([, p], j) => {
        const g = flatOf(p.grad as Tensor);
        refs[j](k[j], idx[j].map((i) => g[i]));
      });
      opt.step();
      named.forEach(([, p], j) => expectRel(idx[j].map((i) => flatOf(p)[i]), k[j], 1e-12, `${named[j][0]} period ${period} step ${t}`));
    }
    named.forEach(([, p], j) => (x[j] = flatOf(p)));
  }
});

test('a scheduler drives every group; the state dict carries the groups and checks them on load', () => {
  const { named, setGrads } = params();
  const opt = grouped(named);
  const sched = new LambdaLR(opt, (s) => 1 / (s + 1));
  setGrads(0);
  opt.step();
  sched.step();
  expect(opt.paramGroups.map((g) => g.lr)).toEqual([0.025, 0.01]);
  const sd = opt.stateDict();
  expect(sd.paramGroups.map((g) => [g.lr, g.weightDecay, g.paramNames])).toEqual([
    [0.025, 0.1, ['a.weight', 'b.weight']],
    [0.01, 0, ['a.bias']],
  ]);
  const again = grouped(params().named);
  again.loadStateDict(sd);
  expect(again.paramGroups.map((g) => g.lr)).toEqual([0.025, 0.01]);
  const ungrouped = new BlockOptimizerRatio(params().named, { updateRatio: 0.25, switchEvery: 3, preserveThreshold: 0, verbose: 0 });
  expect(() => ungrouped.loadStateDict(sd)).toThrow(/expected 1 parameter group\(s\)/);
});

test('a trainable parameter in no group, or in two, is an error that names it', () => {
  const { named } = params();
  expect(() => new BlockOptimizerRatio(named, { verbose: 0, groups: [{ params: named.slice(0, 2) }] })).toThrow(/the trainable parameter 'a.bias' is in none of the groups/);
  expect(() => new BlockOptimizerRatio(named, { verbose: 0, groups: [{ params: named }, { params: named.slice(2) }] })).toThrow(ValueError);
  expect(() => new BlockOptimizerRatio(named, { verbose: 0, groups: [{ params: named }, { params: named.slice(2) }] })).toThrow(/'a.bias' is in groups\[0\] and groups\[1\]/);
  expect(() => new BlockOptimizerRatio(named, { verbose: 0, groups: [{ params: named, weight_decay: 0.1 } as never] })).toThrow(/groups\[0\] has an unknown key 'weight_decay'/);
});
