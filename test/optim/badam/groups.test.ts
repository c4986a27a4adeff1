/**
 * BlockOptimizer with a grouped base optimizer (as LLaMA-Factory builds AdamW: weight decay on the
 * weights, none on biases and norms, here with their own lr and betas too) and with per-block
 * overrides (blockHyperparams), each checked in float64 against a trajectory computed by hand:
 * PyTorch's AdamW written out in plain numbers, with BAdam's schedule (K steps per block, the
 * moments starting afresh at each switch). The loss is a fixed quadratic, so its gradient is
 * known in closed form on both sides.
 */
import { AdamW, BlockOptimizer, LambdaLR, ValueError, noGrad, tensor, type Tensor } from '../../../src';

/** Parameter names, shapes and the loss's coefficients: L = Σ sum(a·p²/2 + b·p). */
const SPEC: [string, number[]][] = [
  ['layers.0.weight', [2, 3]],
  ['layers.0.bias', [2]],
  ['layers.0.norm.weight', [3]],
  ['layers.1.weight', [3, 2]],
  ['layers.1.bias', [3]],
];
const PARTITION = [['layers.0.'], ['layers.1.']];
const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const init = (k: number, i: number) => Math.sin(1.3 * k + 0.7 * i) * 0.8;
const coefA = (k: number, i: number) => 0.5 + ((3 * k + i) % 5) * 0.3;
const coefB = (k: number, i: number) => Math.cos(0.9 * k - 0.4 * i);

interface Hyper {
  lr: number;
  weightDecay: number;
  betas: [number, number];
  eps: number;
}

function makeParams(): [string, Tensor][] {
  return SPEC.map(([name, shape], k) => [name, tensor(Array.from({ length: numel(shape) }, (_, i) => init(k, i)), { dtype: 'float64', requiresGrad: true }).reshape(shape).detach().requiresGrad_()]);
}

/** One backward of the quadratic loss over every parameter that requires grad. */
function backward(params: [string, Tensor][]): void {
  const terms = params.map(([, p], k) => {
    const n = p.numel;
    const a = tensor(Array.from({ length: n }, (_, i) => coefA(k, i)), { dtype: 'float64' }).reshape(p.shape);
    const b = tensor(Array.from({ length: n }, (_, i) => coefB(k, i)), { dtype: 'float64' }).reshape(p.shape);
    return p.mul(p).mul(a).mul(0.5).add(p.mul(b)).sum();
  });
  terms.reduce((x, y) => x.add(y)).backward();
}

/**
 * The hand-written trajectory: `steps` steps, block (step div K) mod 2 active, fresh moments at
 * every switch, each parameter with `hyperOf(name, block)` (lr already scaled) at step s.
 */
function reference(steps: number, K: number, hyperOf: (name: string, block: number, step: number) => Hyper): number[][] {
  const values = SPEC.map(([, shape], k) => Array.from({ length: numel(shape) }, (_, i) => init(k, i)));
  let m: number[][] = [];
  let v: number[][] = [];
  let t = 0;
  for (let s = 0; s < steps; s++) {
    const block = Math.floor(s / K) % 2;
    if (s % K === 0) {
      m = values.map((x) => x.map(() => 0));
      v = values.map((x) => x.map(() => 0));
      t = 0;
    }
    t++;
    SPEC.forEach(([name], k) => {
      if (!name.startsWith(PARTITION[block][0])) return;
      const h = hyperOf(name, block, s);
      const [b1, b2] = h.betas;
      values[k] = values[k].map((p, i) => {
        const g = coefA(k, i) * p + coefB(k, i);
        p *= 1 - h.lr * h.weightDecay; // decoupled decay first, as torch.optim.AdamW
        m[k][i] = b1 * m[k][i] + (1 - b1) * g;
        v[k][i] = b2 * v[k][i] + (1 - b2) * g * g;
        const stepSize = h.lr / (1 - b1 ** t);
        const denom = Math.sqrt(v[k][i]) / Math.sqrt(1 - b2 ** t) + h.eps;
        return p - stepSize * (m[k][i] / denom);
      });
    });
  }
  return values;
}

function train(opt: BlockOptimizer, params: [string, Tensor][], steps: number, between?: (step: number) => void): void {
  for (let s = 0; s < steps; s++) {
    between?.(s);
    opt.zeroGrad();
    backward(params);
    opt.step();
  }
}

function expectClose(params: [string, Tensor][], expected: number[][]): void {
  params.forEach(([, p], k) => {
    const got = Array.from(p.toTypedArray() as Float64Array);
    got.forEach((x, i) => expect(Math.abs(x - expected[k][i])).toBeLessThan(1e-12));
  });
}

const isNoDecay = (name: string) => name.endsWith('bias') || name.includes('norm');
const DECAY: Hyper = { lr: 0.01, weightDecay: 0.1, betas: [0.9, 0.999], eps: 1e-8 };
const NO_DECAY: Hyper = { lr: 0.02, weightDecay: 0, betas: [0.8, 0.99], eps: 1e-6 };

/** AdamW in two groups, as LLaMA-Factory builds it (and with their own lr, betas and eps). */
function groupedAdamW(params: [string, Tensor][]): AdamW {
  return new AdamW(
    [
      { params: params.filter(([n]) => !isNoDecay(n)), ...DECAY, name: 'decay' },
      { params: params.filter(([n]) => isNoDecay(n)), ...NO_DECAY, name: 'no_decay' },
    ],
    { lr: 1, weightDecay: 0.01 }, // defaults that must not be used
  );
}

describe('a grouped base optimizer', () => {
  test('each parameter trains with its own group\'s lr, weight decay, betas and eps (float64, to 1e-12)', () => {
    const params = makeParams();
    const opt = new BlockOptimizer(params, groupedAdamW(params), { switchEvery: 3, switchMode: 'ascending', blockPrefixList: PARTITION, verbose: 0 });
    expect(opt.paramGroups.map((g) => [g.name, g.lr])).toEqual([
      ['decay', 0.01],
      ['no_decay', 0.02],
    ]);
    expect(opt.paramGroups.map((g) => g.params.length)).toEqual([1, 2]); // block 0: its weight; its bias and norm
    train(opt, params, 12);
    expectClose(params, reference(12, 3, (name) => (isNoDecay(name) ? NO_DECAY : DECAY)));
  });

  test('a scheduler drives every group\'s lr; a state dict taken mid-run resumes the same trajectory', () => {
    const schedule = (s: number) => 1 / (1 + 0.25 * s); // lambda of LambdaLR: lr at step s
    const hyperOf = (name: string, _b: number, s: number): Hyper => {
      const h = isNoDecay(name) ? NO_DECAY : DECAY;
      return { ...h, lr: h.lr * schedule(s) };
    };
    const expected = reference(10, 3, hyperOf);

    const params = makeParams();
    const opt = new BlockOptimizer(params, groupedAdamW(params), { switchEvery: 3, switchMode: 'ascending', blockPrefixList: PARTITION, verbose: 0 });
    const sched = new LambdaLR(opt, schedule);
    for (let s = 0; s < 4; s++) {
      opt.zeroGrad();
      backward(params);
      opt.step();
      sched.step();
    }
    const saved = { opt: opt.stateDict(), sched: sched.stateDict(), weights: params.map(([, p]) => Array.from(p.toTypedArray() as Float64Array)) };

    // a second run from the state dict: new parameters, optimizer and scheduler
    const params2 = makeParams();
    noGrad(() => params2.forEach(([, p], k) => p.copy_(tensor(saved.weights[k], { dtype: 'float64' }).reshape(p.shape))));
    const opt2 = new BlockOptimizer(params2, groupedAdamW(params2), { switchEvery: 3, switchMode: 'ascending', blockPrefixList: PARTITION, verbose: 0 });
    const sched2 = new LambdaLR(opt2, schedule);
    opt2.loadStateDict(saved.opt);
    sched2.loadStateDict(saved.sched);
    expect(opt2.paramGroups.map((g) => g.lr)).toEqual(opt.paramGroups.map((g) => g.lr));
    for (let s = 4; s < 10; s++) {
      opt2.zeroGrad();
      backward(params2);
      opt2.step();
      sched2.step();
    }
    expectClose(params2, expected);
  });

  test('a parameter in none of the groups is an error that names it', () => {
    const params = makeParams();
    const partial = new AdamW([{ params: [params[0]] }, { params: [params[1]] }]);
    expect(() => new BlockOptimizer(params, partial, { blockPrefixList: PARTITION, verbose: 0 })).toThrow(
      /BlockOptimizer: the base optimizer has parameter groups, but 'layers.0.norm.weight' is in none of them/,
    );
  });
});

describe('per-block hyperparameters (blockHyperparams)', () => {
  const overrides = (block: number) => (block === 1 ? { lrScale: 0.5, weightDecay: 0.3, betas: [0.85, 0.95] as [number, number] } : undefined);

  test('the active block trains with its overrides; biases and norms keep no weight decay (float64, to 1e-12)', () => {
    const params = makeParams();
    const seen: [number, string[]][] = [];
    const opt = new BlockOptimizer(params, new AdamW(params, { lr: 0.01, weightDecay: 0.05 }), {
      switchEvery: 2,
      switchMode: 'ascending',
      blockPrefixList: PARTITION,
      verbose: 0,
      blockHyperparams: (b, names) => {
        seen.push([b, [...names]]);
        return overrides(b);
      },
    });
    expect(seen).toEqual([
      [0, ['layers.0.weight', 'layers.0.bias', 'layers.0.norm.weight']],
      [1, ['layers.1.weight', 'layers.1.bias']],
    ]);
    train(opt, params, 8);
    expectClose(
      params,
      reference(8, 2, (name, block) => {
        const base: Hyper = { lr: 0.01, weightDecay: isNoDecay(name) ? 0 : 0.05, betas: [0.9, 0.999], eps: 1e-8 };
        if (block !== 1) return base;
        return { ...base, lr: 0.005, weightDecay: isNoDecay(name) ? 0 : 0.3, betas: [0.85, 0.95] };
      }),
    );
  });

  test('the overrides are in the state dict, and a load into an optimizer with other overrides is refused', () => {
    const params = makeParams();
    const opt = new BlockOptimizer(params, new AdamW(params, { lr: 0.01 }), { switchEvery: 2, switchMode: 'ascending', blockPrefixList: PARTITION, verbose: 0, blockHyperparams: overrides });
    train(opt, params, 3); // block 1 active
    const sd = opt.stateDict();
    expect(sd.badam.overrides).toEqual({ lrScale: 0.5, weightDecay: 0.3, betas: [0.85, 0.95] });
    const other = new BlockOptimizer(params, new AdamW(params, { lr: 0.01 }), { switchEvery: 2, switchMode: 'ascending', blockPrefixList: PARTITION, verbose: 0 });
    expect(() => other.loadStateDict(sd)).toThrow(/block 1 was trained with blockHyperparams \{"lrScale":0.5,"weightDecay":0.3,"betas":\[0.85,0.95\]\} but this optimizer gives it \{"lrScale":1\}/);
    expect(other.currentBlock).toBe(0); // nothing loaded
  });

  test("with a grouped base, a block's weightDecay override leaves the no-decay group at 0", () => {
    const params = makeParams();
    const opt = new BlockOptimizer(params, groupedAdamW(params), { blockPrefixList: PARTITION, switchMode: 'ascending', verbose: 0, blockHyperparams: () => ({ weightDecay: 0.2 }) });
    expect(opt.baseOptimizer.paramGroups.map((g) => [g.name, (g as unknown as { weightDecay: number }).weightDecay])).toEqual([
      ['decay', 0.2],
      ['no_decay', 0],
    ]);
  });

  test.each([
    [() => ({ lr: 0.1 }), /blockHyperparams\(0\) sets lr, which the schedule owns: return lrScale/],
    [() => ({ momentum: 0.9 }), /blockHyperparams\(0\) sets 'momentum', which the base optimizer does not have; its hyperparameters: lr, betas, eps, weightDecay/],
    [() => ({ lrScale: -1 }), /blockHyperparams\(0\).lrScale must be a finite number >= 0, got -1/],
    [() => ({ betas: [0.9] }), /blockHyperparams\(0\): betas must be an array of 2 numbers/],
    [() => 'fast', /blockHyperparams\(0\) must return an object of hyperparameters, got/],
  ])('bad overrides are refused when the optimizer is built: %#', (fn, message) => {
    const params = makeParams();
    expect(() => new BlockOptimizer(params, new AdamW(params), { blockPrefixList: PARTITION, verbose: 0, blockHyperparams: fn as never })).toThrow(ValueError);
    expect(() => new BlockOptimizer(params, new AdamW(params), { blockPrefixList: PARTITION, verbose: 0, blockHyperparams: fn as never })).toThrow(message);
  });
});
