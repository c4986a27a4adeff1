/**
 * The optimizer base: building groups (tensors, named parameters, group objects, defaults),
 * the errors, zeroGrad, skipping parameters without gradients, step's all-or-nothing checks,
 * hyperparameters read at every step, stateDict / loadStateDict (JSON round trip that continues
 * bit for bit; every bad state dict rejected with nothing changed), resetState.
 */
import {
  Adam,
  AdamW,
  DTypeError,
  Linear,
  Optimizer,
  SGD,
  Tensor,
  ValueError,
  manualSeed,
  memory,
  mul,
  optim,
  randn,
  stateFromJSON,
  stateToJSON,
  sum,
  tensor,
  type OptimizerStateDict,
} from '../../src';
import { flat } from '../helpers';

const f64 = (v: number[]) => tensor(v, { dtype: 'float64', requiresGrad: true });

describe('building parameter groups', () => {
  test('a list of tensors gives one group with the defaults filled in', () => {
    const a = f64([1]);
    const b = f64([2, 3]);
    const opt = new Adam([a, b], { lr: 0.01 });
    expect(opt.paramGroups).toHaveLength(1);
    expect(opt.paramGroups[0].params).toEqual([a, b]);
    expect(opt.paramGroups[0]).toMatchObject({ lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false });
    expect(opt.paramGroups[0].paramNames).toBeUndefined();
    expect(opt.parameters()).toEqual([a, b]);
    expect(opt.state.size).toBe(0); // nothing allocated before the first step
  });

  test('namedParameters() pairs record the names; group objects take overrides', () => {
    manualSeed(0);
    const layer = new Linear(3, 2, { dtype: 'float64' });
    const named = new Adam(layer.namedParameters());
    expect(named.paramGroups[0].paramNames).toEqual(['weight', 'bias']);
    expect(named.paramGroups[0].params).toEqual([layer.weight, layer.bias]);

    const groups = new AdamW(
      [
        { params: [layer.weight], name: 'decay' },
        { params: [layer.bias as Tensor], weightDecay: 0, lr: 0.1 },
      ],
      { lr: 0.01 },
    );
    expect(groups.paramGroups.map((g) => [g.lr, g.weightDecay, g.name])).toEqual([
      [0.01, 0.01, 'decay'],
      [0.1, 0, undefined],
    ]);
    // groups never share a tuple: changing one group's betas leaves the other's alone
    groups.paramGroups[0].betas[0] = 0.5;
    expect(groups.paramGroups[1].betas[0]).toBe(0.9);
    expect(groups.defaults.betas[0]).toBe(0.9);
  });

  test('the namespace export works too (optim.SGD)', () => {
    expect(new optim.SGD([f64([1])], { lr: 0.5 })).toBeInstanceOf(Optimizer);
  });

  test('bad parameters and groups are clear errors', () => {
    const a = f64([1]);
    const b = f64([2]);
    expect(() => new SGD([a, b, a])).toThrow(/appears twice/);
    expect(() => new SGD([{ params: [a] }, { params: [b, a] }])).toThrow(/already in another parameter group/);
    expect(() => new SGD([tensor([1, 2], { dtype: 'int32' })])).toThrow(DTypeError);
    const nonLeaf = a.mul(2);
    expect(() => new SGD([nonLeaf])).toThrow(/is not a leaf \(it was computed by mul\)/);
    expect(() => new SGD([])).toThrow(/empty parameter list/);
    expect(() => new SGD(a as unknown as Tensor[])).toThrow(/got a single Tensor/);
    expect(() => new Adam([a], { weight_decay: 0.1 } as never)).toThrow(/unknown option 'weight_decay'; known: lr, betas, eps, weightDecay, amsgrad, maximize/);
    expect(() => new Adam([{ params: [a], weight_decay: 0.1 } as never])).toThrow(/unknown hyperparameter 'weight_decay'/);
    expect(() => new Adam([{ params: [a], lr: '0.1' } as never])).toThrow(/lr must be a number, got '0.1'/);
    expect(() => new Adam([{ params: [a] }, b] as never)).toThrow(/mixes groups/);
    expect(() => new Adam([{ params: [a] }, { params: [['b', b]] }] as never)).toThrow(/all parameter groups must be named/);
    expect(() => new Adam(new Linear(2, 2) as never)).toThrow(/iterable|Module/);
  });

  test('addParamGroup adds a group with defaults; duplicates are refused', () => {
    const a = f64([1]);
    const b = f64([2]);
    const opt = new SGD([a], { lr: 0.1, momentum: 0.9 });
    opt.addParamGroup({ params: [b], lr: 0.5 });
    expect(opt.paramGroups[1]).toMatchObject({ lr: 0.5, momentum: 0.9 });
    expect(() => opt.addParamGroup({ params: [a] })).toThrow(/already in another parameter group/);
    expect(opt.paramGroups).toHaveLength(2);
  });
});

describe('zeroGrad and step', () => {
  test('zeroGrad sets grads to null by default, or zeroes them in place', () => {
    const a = f64([1, 2]);
    const opt = new SGD([a]);
    a.grad = tensor([3, 4], { dtype: 'float64' });
    const g = a.grad;
    opt.zeroGrad({ setToNone: false });
    expect(a.grad).toBe(g);
    expect(flat(g)).toEqual([0, 0]);
    expect(g.isDisposed).toBe(false);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
    expect(g.isDisposed).toBe(true); // its storage is freed now, not at garbage collection
  });

  test('zeroGrad frees the gradients: N steps of a synchronous loop hold one step of gradients', () => {
    // no finalizer runs inside a synchronous test, so undisposed gradients would pile up here
    const a = f64([1, 2, 3]);
    const b = f64([4, 5]);
    const opt = new Adam([{ params: [a] }, { params: [b] }], { lr: 0.1 });
    const base = memory.stats().byCategory.grads;
    memory.resetPeak();
    for (let i = 0; i < 4; i++) {
      opt.zeroGrad();
      sum(mul(a, a)).backward();
      sum(mul(b, b)).backward();
      opt.step();
    }
    expect(memory.stats().byCategory.grads - base).toBe(5 * 8);
    expect(memory.stats().peakByCategory.grads - base).toBe(5 * 8);
    opt.zeroGrad();
    expect(memory.stats().byCategory.grads).toBe(base);
  });

  test('a parameter whose grad is null is skipped (unchanged, no state)', () => {
    const a = f64([1, 2]);
    const b = f64([5]);
    const opt = new Adam([a, b], { lr: 0.1 });
    a.grad = tensor([1, 1], { dtype: 'float64' });
    opt.step();
    expect(flat(b)).toEqual([5]);
    expect(opt.state.has(b)).toBe(false);
    expect(opt.state.get(a)?.step).toBe(1);
    expect(Object.keys(opt.stateDict().state)).toEqual(['0']);
  });

  test('parameters are written in place: the Tensor objects keep their identity', () => {
    manualSeed(1);
    const layer = new Linear(2, 2, { dtype: 'float64' });
    const w = layer.weight;
    const opt = new SGD(layer.parameters(), { lr: 0.1 });
    layer.forward(randn([3, 2], { dtype: 'float64' })).sum().backward();
    const before = flat(w);
    opt.step();
    expect(layer.weight).toBe(w);
    expect(flat(w)).not.toEqual(before);
    expect(w.requiresGrad).toBe(true);
    expect(w.isLeaf).toBe(true);
  });

  test('hyperparameters are read from the groups at each step (lr changed between steps)', () => {
    const a = f64([1]);
    const opt = new SGD([a], { lr: 0.1 });
    a.grad = tensor([1], { dtype: 'float64' });
    opt.step(); // 0.9
    opt.paramGroups[0].lr = 0.5;
    opt.step(); // 0.4
    expect(a.item()).toBeCloseTo(0.4, 15);
  });

  test('step checks every group and gradient before writing anything', () => {
    const a = f64([1]);
    const b = f64([2, 3]);
    const opt = new SGD([{ params: [a] }, { params: [b] }], { lr: 0.1 });
    a.grad = tensor([1], { dtype: 'float64' });
    b.grad = tensor([1, 2, 3], { dtype: 'float64' });
    expect(() => opt.step()).toThrow(/has shape \[3\], expected \[2\]/);
    expect(flat(a)).toEqual([1]);
    b.grad = tensor([1, 1], { dtype: 'float64' });
    opt.paramGroups[1].lr = NaN;
    expect(() => opt.step()).toThrow(/parameter group 1: lr must be a number/);
    expect(flat(a)).toEqual([1]);
    opt.paramGroups[1].lr = 0.1;
    opt.paramGroups[0].momentum = -1;
    expect(() => opt.step()).toThrow(/invalid momentum -1/);
    expect(flat(a)).toEqual([1]);
  });

  test('step(closure) runs the closure with grad on and returns its loss', () => {
    const a = f64([2]);
    const opt = new SGD([a], { lr: 0.25 });
    const loss = opt.step(() => {
      opt.zeroGrad();
      const l = a.mul(a).sum();
      l.backward();
      return l;
    });
    expect((loss as Tensor).item()).toBe(4);
    expect(a.item()).toBe(1); // 2 - 0.25·4
  });
});

// ------------------------------------------------------------------ state dicts

/** A two-group problem: W [3,2] (lr 0.05) and b [2] (lr 0.01), float32, with a fixed gradient sequence. */
function setup(make: (params: { params: Tensor[]; lr?: number }[]) => Optimizer) {
  manualSeed(5);
  const W = randn([3, 2], { requiresGrad: true });
  const b = randn([2], { requiresGrad: true });
  const opt = make([{ params: [W] }, { params: [b], lr: 0.01 }]);
  return { W, b, opt };
}

function gradients(n: number, seed: number): [Tensor, Tensor][] {
  manualSeed(seed);
  return Array.from({ length: n }, () => [randn([3, 2]), randn([2])]);
}

function run(p: { W: Tensor; b: Tensor; opt: Optimizer }, grads: [Tensor, Tensor][]): void {
  for (const [gW, gb] of grads) {
    p.W.grad = gW;
    p.b.grad = gb;
    p.opt.step();
  }
}

const roundTrip = <T>(sd: T): T => stateFromJSON<T>(JSON.parse(JSON.stringify(stateToJSON(sd))));

describe('stateDict / loadStateDict', () => {
  const makers: [string, (g: { params: Tensor[]; lr?: number }[]) => Optimizer, (g: { params: Tensor[]; lr?: number }[]) => Optimizer][] = [
    ['AdamW amsgrad', (g) => new AdamW(g, { lr: 0.05, amsgrad: true, betas: [0.8, 0.95] }), (g) => new AdamW(g)],
    ['SGD nesterov', (g) => new SGD(g, { lr: 0.05, momentum: 0.9, nesterov: true }), (g) => new SGD(g)],
  ];
  test.each(makers)('%s restored from a JSON state dict continues bit for bit', (_, make, makeDefault) => {
    const original = setup(make);
    run(original, gradients(5, 100));
    const json = JSON.stringify(stateToJSON(original.opt.stateDict()));
    // a fresh model with the same weights and a fresh optimizer with other hyperparameters
    const copy = setup(makeDefault);
    for (const [dst, src] of [[copy.W, original.W], [copy.b, original.b]]) {
      dst.setData_(tensor(src));
    }
    copy.opt.loadStateDict(stateFromJSON(JSON.parse(json)));
    expect(copy.opt.paramGroups.map((g) => g.lr)).toEqual([0.05, 0.01]);
    expect(copy.opt.paramGroups[0]).toEqual({ ...original.opt.paramGroups[0], params: [copy.W] });
    const more = gradients(5, 200);
    run(original, more);
    run(copy, more);
    expect(flat(copy.W)).toEqual(flat(original.W));
    expect(flat(copy.b)).toEqual(flat(original.b));
  });

  test('the layout is PyTorch\'s: params numbered across groups, state keyed by that index', () => {
    const p = setup((g) => new Adam(g, { lr: 0.05 }));
    run(p, gradients(2, 1));
    const sd = p.opt.stateDict();
    expect(sd.paramGroups.map((g) => g.params)).toEqual([[0], [1]]);
    expect(sd.paramGroups[1]).toEqual({ lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, params: [1] });
    expect(Object.keys(sd.state)).toEqual(['0', '1']);
    expect(sd.state[1].step).toBe(2);
    expect((sd.state[0].exp_avg as Tensor).shape).toEqual([3, 2]);
    // plain JSON after stateToJSON: a tensor becomes { $tensor: { dtype, shape, data } }
    const json = stateToJSON(sd) as { state: Record<string, Record<string, unknown>> };
    expect(json.state['1'].exp_avg).toEqual({ $tensor: { dtype: 'float32', shape: [2], data: flat(sd.state[1].exp_avg as Tensor) } });
    // the state dict's tensors outlive resetState (they hold their own reference to the storage)
    p.opt.resetState();
    expect(flat(sd.state[0].exp_avg as Tensor)).toHaveLength(6);
  });

  test('named groups save paramNames, and loading checks them', () => {
    manualSeed(2);
    const a = new Linear(2, 2);
    const opt = new Adam(a.namedParameters());
    const sd = opt.stateDict();
    expect(sd.paramGroups[0].paramNames).toEqual(['weight', 'bias']);
    const bad = roundTrip(sd);
    bad.paramGroups[0].paramNames = ['bias', 'weight'];
    expect(() => opt.loadStateDict(bad)).toThrow(/parameter 0 is 'bias' in the state dict but 'weight' in the optimizer/);
  });

  /** Every entry: a corruption of a valid (JSON round-tripped) AdamW amsgrad state dict and the message it must give. */
  const corruptions: [string, (sd: OptimizerStateDict & Record<string, any>) => void, RegExp][] = [
    ['not a state dict', (sd) => delete (sd as any).paramGroups, /expected an object \{ state, paramGroups \}/],
    ['a missing group', (sd) => sd.paramGroups.pop(), /has 1 parameter groups but the optimizer has 2/],
    ['a group of the wrong size', (sd) => sd.paramGroups[1].params.push(7), /group 1 has 2 parameters in the state dict but 1/],
    ['a state tensor of the wrong shape', (sd) => (sd.state[0].exp_avg = randn([2, 3])), /state\[0\]\.exp_avg has shape \[2,3\] but its parameter has shape \[3,2\]/],
    ['an unknown state key', (sd) => (sd.state[1].momentum_buffer = randn([2])), /state\[1\] has unknown key 'momentum_buffer'/],
    ['a fractional step', (sd) => (sd.state[1].step = 1.5), /state\[1\]\.step must be an integer >= 0, got 1\.5/],
    ['a number for a tensor', (sd) => (sd.state[0].exp_avg_sq = 3), /state\[0\]\.exp_avg_sq must be a Tensor, got 3/],
    ['an int32 moment', (sd) => (sd.state[1].exp_avg = tensor([1, 2], { dtype: 'int32' })), /exp_avg is int32, expected a floating tensor/],
    ['amsgrad without max_exp_avg_sq', (sd) => delete sd.state[0].max_exp_avg_sq, /state\[0\] lacks 'max_exp_avg_sq'/],
    ['state for no parameter', (sd) => (sd.state[5] = { step: 1 }), /state 5 belongs to no parameter/],
    ['an unknown hyperparameter', (sd) => (sd.paramGroups[0].momentum = 0.9), /group 0 has unknown hyperparameter 'momentum'/],
    ['a hyperparameter of the wrong type', (sd) => (sd.paramGroups[0].betas = [0.9, 0.99, 0.9]), /betas must be an array of 2 numbers/],
    ['an invalid hyperparameter value', (sd) => (sd.paramGroups[1].eps = -1), /group 1: invalid eps -1/],
    ['a missing hyperparameter', (sd) => delete sd.paramGroups[0].amsgrad, /group 0 lacks hyperparameter 'amsgrad'/],
    ['a repeated index', (sd) => (sd.paramGroups[1].params = [0]), /parameter index 0 appears twice/],
  ];
  test.each(corruptions)('%s: a ValueError that names it, and nothing changes', (_, corrupt, message) => {
    const p = setup((g) => new AdamW(g, { lr: 0.05, amsgrad: true }));
    run(p, gradients(3, 9));
    const sd = roundTrip(p.opt.stateDict()) as OptimizerStateDict & Record<string, any>;
    corrupt(sd);
    const stateBefore = new Map([...p.opt.state].map(([k, s]) => [k, { ...s }]));
    const valuesBefore = [...p.opt.state.values()].map((s) => flat(s.exp_avg as Tensor));
    const groupsBefore = p.opt.paramGroups.map((g) => ({ ...g, betas: [...(g as unknown as { betas: number[] }).betas] }));
    p.opt.paramGroups[0].lr = 0.123; // a value the state dict would overwrite
    groupsBefore[0].lr = 0.123;
    let error: unknown;
    try {
      p.opt.loadStateDict(sd);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValueError);
    expect(String((error as Error).message)).toMatch(message);
    expect(String((error as Error).message)).toMatch(/Nothing was loaded/);
    expect(p.opt.paramGroups).toEqual(groupsBefore);
    expect(p.opt.state.size).toBe(stateBefore.size);
    for (const [k, s] of p.opt.state) {
      const old = stateBefore.get(k) as Record<string, unknown>;
      expect(Object.keys(s)).toEqual(Object.keys(old));
      for (const key of Object.keys(s)) expect(s[key]).toBe(old[key]); // the very same tensors and numbers
    }
    expect([...p.opt.state.values()].map((s) => flat(s.exp_avg as Tensor))).toEqual(valuesBefore);
    expect([...p.opt.state.values()].every((s) => !(s.exp_avg as Tensor).isDisposed)).toBe(true);
  });

  test('a state dict of another optimizer kind is refused (SGD into Adam)', () => {
    const sgd = setup((g) => new SGD(g, { lr: 0.1, momentum: 0.9 }));
    run(sgd, gradients(1, 3));
    const adam = setup((g) => new Adam(g));
    expect(() => adam.opt.loadStateDict(sgd.opt.stateDict())).toThrow(/unknown hyperparameter 'momentum'.*unknown key 'momentum_buffer'/);
  });

  test('loaded state is a copy, in the state dtype, tagged optimizer', () => {
    const src = setup((g) => new Adam(g));
    run(src, gradients(1, 4));
    const sd = src.opt.stateDict();
    const dst = setup((g) => new Adam(g));
    // float64 tensors in the state dict are cast to the parameters' float32
    const widened = {
      ...sd,
      state: Object.fromEntries(Object.entries(sd.state).map(([k, s]) => [k, { ...s, exp_avg: tensor(s.exp_avg as Tensor, { dtype: 'float64' }) }])),
    };
    dst.opt.loadStateDict(widened);
    const m = dst.opt.state.get(dst.W)?.exp_avg as Tensor;
    expect(m.dtype).toBe('float32');
    expect(m.buffer).not.toBe((sd.state[0].exp_avg as Tensor).buffer);
    expect(m.buffer.category).toBe('optimizer');
    expect(flat(m)).toEqual(flat(sd.state[0].exp_avg as Tensor));
  });

  test('resetState: the next step equals a fresh optimizer\'s first step', () => {
    const p = setup((g) => new Adam(g, { lr: 0.05 }));
    run(p, gradients(3, 6));
    p.opt.resetState();
    expect(p.opt.state.size).toBe(0);
    const fresh = setup((g) => new Adam(g, { lr: 0.05 }));
    fresh.W.setData_(tensor(p.W));
    fresh.b.setData_(tensor(p.b));
    const next = gradients(1, 7);
    run(p, next);
    run(fresh, next);
    expect(flat(p.W)).toEqual(flat(fresh.W));
    expect(p.opt.state.get(p.W)?.step).toBe(1);
  });

  test('loading its own state dict keeps the values; empty state entries start fresh', () => {
    const p = setup((g) => new Adam(g, { lr: 0.05 }));
    run(p, gradients(2, 8));
    const before = flat(p.opt.state.get(p.W)?.exp_avg as Tensor);
    p.opt.loadStateDict(p.opt.stateDict()); // the views share the storage being replaced
    expect(flat(p.opt.state.get(p.W)?.exp_avg as Tensor)).toEqual(before);
    const sd = p.opt.stateDict();
    sd.state[1] = {};
    p.opt.loadStateDict(sd);
    expect(p.opt.state.has(p.b)).toBe(false);
    run(p, gradients(1, 9));
    expect(p.opt.state.get(p.b)?.step).toBe(1);
    expect(p.opt.state.get(p.W)?.step).toBe(3);
  });

  test('updateParameter fills an empty state record in place', () => {
    const x = f64([1]);
    const opt = new Adam([x], { lr: 0.1 });
    const st = {};
    opt.updateParameter(x, tensor([-4], { dtype: 'float64' }), st, opt.paramGroups[0]);
    expect(Object.keys(st).sort()).toEqual(['exp_avg', 'exp_avg_sq', 'step']);
    expect(x.item()).toBeCloseTo(1 + 0.4 / (4 + 1e-8), 15);
    expect(() => opt.updateParameter(x, tensor([1], { dtype: 'float64' }), { step: 1 }, opt.paramGroups[0])).toThrow(/state lacks 'exp_avg'/);
  });

  test('updateParameter checks the group it is given; MasterWeights.step checks each group once per step', () => {
    const x = f64([1]);
    const opt = new Adam([x], { lr: 0.1 });
    const bad = { ...opt.paramGroups[0], lr: -1 };
    expect(() => opt.updateParameter(x, tensor([1], { dtype: 'float64' }), {}, bad)).toThrow(/Adam.updateParameter: invalid learning rate -1/);
    expect(x.item()).toBe(1);
    expect(() => opt.checkGroups('caller')).not.toThrow();
    opt.paramGroups[0].lr = NaN;
    expect(() => opt.checkGroups('caller')).toThrow(/caller: parameter group 0: lr must be a number, got NaN/);

    // a counting SGD: validateHyper runs once per group per step, not once per parameter
    let checks = 0;
    class CountingSGD extends SGD {
      protected override validateHyper(h: Parameters<SGD['validateHyper']>[0]): string | null {
        checks++;
        return super.validateHyper(h);
      }
    }
    const params = Array.from({ length: 6 }, (_, i) => tensor([i, i + 1], { dtype: i % 2 ? 'float16' : 'float32', requiresGrad: true }));
    const sgd = new CountingSGD([{ params: params.slice(0, 4) }, { params: params.slice(4) }], { lr: 0.5 });
    const mp = new optim.MixedPrecisionOptimizer(sgd);
    for (const p of params) p.grad = tensor([1, 1], { dtype: p.dtype });
    checks = 0;
    mp.step();
    expect(checks).toBe(2);
    expect(flat(params[0])).toEqual([-0.5, 0.5]);
    expect(flat(params[5])).toEqual([4.5, 5.5]);
  });

  test('-0 survives the JSON round trip, in tensors of every float dtype and as a plain number', () => {
    const bits = (t: Tensor) => Array.from(t.toTypedArray() as ArrayLike<number>).map((v) => (Object.is(v, -0) ? '-0' : String(v)));
    for (const dtype of ['float16', 'float32', 'float64'] as const) {
      const t = tensor([-0, 0, -1e-9, -1], { dtype }); // -1e-9 rounds to -0 in float16
      const back = roundTrip({ t }).t;
      expect([dtype, bits(back)]).toEqual([dtype, bits(t)]);
      expect(bits(back)[0]).toBe('-0');
    }
    const back = roundTrip({ x: -0, y: 0, z: [-0] });
    expect(Object.is(back.x, -0)).toBe(true);
    expect(Object.is(back.y, 0)).toBe(true);
    expect(Object.is(back.z[0], -0)).toBe(true);
    expect(stateToJSON(-0)).toEqual({ $number: '-0' });
  });

  test('stateFromJSON keeps non-finite numbers and rejects malformed tensors', () => {
    const t = tensor([NaN, Infinity, -Infinity, 1.5], { dtype: 'float64' });
    const back = roundTrip({ t, x: Infinity });
    expect(flat(back.t)).toEqual([NaN, Infinity, -Infinity, 1.5]);
    expect(back.x).toBe(Infinity);
    expect(() => stateFromJSON({ $tensor: { dtype: 'float32', shape: [3], data: [1, 2] } })).toThrow(/does not match 2 values/);
    expect(() => stateFromJSON({ $tensor: { dtype: 'float8', shape: [1], data: [1] } })).toThrow(/needs dtype, shape and data/);
  });
});
