/**
 * BAdam training: parameters outside the active block never change (bit for bit), the Adam state
 * is reset at a switch (a block's first step equals a fresh Adam's), weight decay spares biases
 * and norms, schedulers reach the inner lr, float16 models train through float32 masters of the
 * active block only, and resuming from a state dict continues the exact trajectory.
 */
import {
  Adam,
  AdamW,
  BlockOptimizer,
  LambdaLR,
  MixedPrecisionOptimizer,
  SGD,
  Tensor,
  ValueError,
  noGrad,
  stateFromJSON,
  stateToJSON,
  tensor,
  zerosLike,
  type BlockOptimizerOptions,
  type Optimizer,
} from '../../../src';
import { roundToFloat16 } from '../../../src/tensor/float16';
import { TinyNet, sameBits, snapshot } from './helpers';

function trainStep(net: TinyNet, opt: BlockOptimizer, step: number): void {
  opt.zeroGrad();
  net.lossAt(step).backward();
  opt.step();
}

describe('only the active block moves', () => {
  test('parameters outside the active block never change, bit for bit, over three block-epochs', () => {
    const net = new TinyNet({ depth: 4 });
    const opt = new BlockOptimizer(net, new Adam(net.parameters(), { lr: 0.05 }), { verbose: 0, switchEvery: 2, switchMode: 'random', seed: 1 });
    const start = snapshot(net);
    const frozen = opt.frozenNames();
    expect(frozen).toEqual(['model.embed_proj.weight', 'model.embed_proj.bias', 'model.norm.weight', 'model.norm.bias', 'lm_head.weight', 'lm_head.bias']);
    const moved = new Set<string>();
    for (let s = 0; s < 3 * 4 * 2; s++) {
      const block = new Set(opt.blocks()[opt.currentBlock].names);
      const before = snapshot(net);
      trainStep(net, opt, s);
      const after = snapshot(net);
      for (const [n, v] of after) {
        if (!block.has(n)) expect([n, sameBits(v, before.get(n) as number[])]).toEqual([n, true]);
        else if (!sameBits(v, before.get(n) as number[])) moved.add(n);
      }
    }
    for (const n of frozen) expect(sameBits(snapshot(net).get(n) as number[], start.get(n) as number[])).toBe(true);
    // and every block parameter did move at some point
    expect(moved.size).toBe(16);
  });

  test('the old block\'s gradients are freed at a switch', () => {
    const net = new TinyNet({ depth: 3 });
    const opt = new BlockOptimizer(net, new Adam(net.parameters()), { verbose: 0, switchEvery: 1, switchMode: 'ascending' });
    net.lossAt(0).backward();
    const w = net.model.layers.at(0).mlp.weight;
    const g = w.grad as Tensor;
    expect(g).not.toBeNull();
    opt.step(); // block 0's only step: the switch to block 1 frees its gradient
    expect(w.grad).toBeNull();
    expect(g.isDisposed).toBe(true);
  });

  test('zeroGrad disposes the gradients it clears', () => {
    const net = new TinyNet({ depth: 3 });
    const opt = new BlockOptimizer(net, new Adam(net.parameters()), { verbose: 0, switchEvery: 5 });
    net.lossAt(0).backward();
    opt.step(); // a float64 model: the step leaves the gradients in place, as Optimizer.step does
    const grads = opt.trainableParameters().map(([, p]) => p.grad as Tensor);
    expect(grads.every((g) => g !== null && !g.isDisposed)).toBe(true);
    opt.zeroGrad();
    expect(opt.trainableParameters().every(([, p]) => p.grad === null)).toBe(true);
    expect(grads.every((g) => g.isDisposed)).toBe(true);
  });
});

describe('the Adam state is reset at a switch', () => {
  /** One fresh Adam step on copies of `params` with the given gradients. */
  function freshAdamStep(params: [string, Tensor][], grads: Map<string, Tensor>, make: (p: [string, Tensor][]) => Optimizer): Map<string, number[]> {
    const copies = params.map(([n, p]) => [n, noGrad(() => p.mul(1)).detach().requiresGrad_()] as [string, Tensor]);
    for (const [n, c] of copies) c.grad = grads.get(n) as Tensor;
    make(copies).step();
    return new Map(copies.map(([n, c]) => [n, Array.from(c.toTypedArray() as Float64Array)]));
  }

  test.each([
    ['an instance, reused', (net: TinyNet) => new Adam(net.parameters(), { lr: 0.02, betas: [0.8, 0.9] })],
    ['a factory', () => (params: Tensor[]) => new Adam(params, { lr: 0.02, betas: [0.8, 0.9] })],
  ])('the first step of every block equals a fresh Adam\'s first step (%s)', (_, base) => {
    const net = new TinyNet({ depth: 3 });
    const opt = new BlockOptimizer(net, base(net) as Adam, { verbose: 0, switchEvery: 3, switchMode: 'descending' });
    let checked = 0;
    for (let s = 0; s < 12; s++) {
      opt.zeroGrad();
      net.lossAt(s).backward();
      const params = opt.trainableParameters();
      const grads = new Map(params.map(([n, p]) => [n, noGrad(() => (p.grad as Tensor).mul(1))]));
      const expected = freshAdamStep(params, grads, (c) => new Adam(c, { lr: 0.02, betas: [0.8, 0.9] }));
      const first = opt.stepInBlock === 0;
      opt.step();
      const same = params.every(([n, p]) => sameBits(p.toTypedArray() as Float64Array, expected.get(n) as number[]));
      // a fresh Adam matches the first step of a block only: later steps have moments and step > 1
      expect([s, same]).toEqual([s, first]);
      if (first) checked++;
    }
    expect(checked).toBe(4);
  });

  test('the inner state holds the active block only, step counted from 1', () => {
    const net = new TinyNet({ depth: 3 });
    const adam = new Adam(net.parameters());
    const opt = new BlockOptimizer(net, adam, { verbose: 0, switchEvery: 2, switchMode: 'ascending' });
    trainStep(net, opt, 0);
    expect([...adam.state.values()].map((s) => s.step)).toEqual([1, 1, 1, 1]);
    trainStep(net, opt, 1); // switch after this step: state dropped
    expect(adam.state.size).toBe(0);
    trainStep(net, opt, 2);
    const active = new Set(opt.trainableParameters().map(([, p]) => p));
    expect([...adam.state.keys()].every((p) => active.has(p))).toBe(true);
    expect([...adam.state.values()].map((s) => s.step)).toEqual([1, 1, 1, 1]);
  });
});

describe('weight decay and learning rate', () => {
  test('biases and norm weights get weight decay 0 unless decayAllParameters', () => {
    const net = new TinyNet({ depth: 2 });
    const adamw = new AdamW(net.parameters(), { lr: 0.1, weightDecay: 0.5 });
    const opt = new BlockOptimizer(net, adamw, { verbose: 0, switchEvery: 1, switchMode: 'ascending', activeModules: ['lm_head.'] });
    expect(adamw.paramGroups.map((g) => [g.name, g.weightDecay, g.paramNames])).toEqual([
      ['decay', 0.5, ['model.layers.0.mlp.weight', 'lm_head.weight']],
      ['no_decay', 0, ['model.layers.0.mlp.bias', 'model.layers.0.norm.weight', 'model.layers.0.norm.bias', 'lm_head.bias']],
    ]);
    // zero gradients: Adam's step is 0, so only decoupled decay moves a parameter
    const before = snapshot(net);
    for (const [, p] of opt.trainableParameters()) p.grad = zerosLike(p);
    opt.step();
    const after = snapshot(net);
    for (const [n] of opt.blocks()[0].names.map((x) => [x])) {
      const b = before.get(n) as number[];
      const a = after.get(n) as number[];
      if (n.endsWith('mlp.weight')) expect(a).toEqual(b.map((x) => x * (1 - 0.1 * 0.5)));
      else expect(sameBits(a, b)).toBe(true);
    }
    const all = new AdamW(net.parameters(), { weightDecay: 0.5 });
    new BlockOptimizer(net, all, { verbose: 0, decayAllParameters: true });
    expect(all.paramGroups.map((g) => [g.name, g.weightDecay, g.params.length])).toEqual([['decay', 0.5, 4]]);
    // SGD's weightDecay too
    const sgd = new SGD(net.parameters(), { lr: 0.1, weightDecay: 0.01 });
    new BlockOptimizer(net, sgd, { verbose: 0 });
    expect(sgd.paramGroups.map((g) => [g.name, g.weightDecay, g.params.length])).toEqual([['decay', 0.01, 1], ['no_decay', 0, 3]]);
  });

  test('a LambdaLR on the BlockOptimizer sets the inner lr: the size of each first step follows it', () => {
    const net = new TinyNet({ depth: 4 });
    const adam = new Adam(net.parameters(), { lr: 0.1 });
    const opt = new BlockOptimizer(net, adam, { verbose: 0, switchEvery: 1, switchMode: 'ascending' });
    expect(opt.paramGroups[0].lr).toBe(0.1);
    const sched = new LambdaLR(opt, (s) => 0.5 ** s);
    for (let s = 0; s < 4; s++) {
      const lr = 0.1 * 0.5 ** s;
      expect(opt.paramGroups[0].lr).toBeCloseTo(lr, 15);
      const before = snapshot(net);
      const block = opt.blocks()[opt.currentBlock].names;
      trainStep(net, opt, s);
      for (const g of adam.paramGroups) expect(g.lr).toBe(opt.paramGroups[0].lr);
      // a fresh Adam's first step moves every element by lr·|g|/(|g| + eps) ≈ lr
      const after = snapshot(net);
      let largest = 0;
      for (const n of block) {
        const b = before.get(n) as number[];
        (after.get(n) as number[]).forEach((x, i) => (largest = Math.max(largest, Math.abs(x - b[i]))));
      }
      expect(largest / lr).toBeCloseTo(1, 6);
      sched.step();
    }
  });

  test('step rejects a bad lr before changing anything', () => {
    const net = new TinyNet({ depth: 2 });
    const opt = new BlockOptimizer(net, new Adam(net.parameters()), { verbose: 0 });
    net.lossAt(0).backward();
    const before = snapshot(net);
    opt.paramGroups[0].lr = NaN;
    expect(() => opt.step()).toThrow(/paramGroups\[0\]\.lr is NaN/);
    expect([...snapshot(net)].every(([n, v]) => sameBits(v, before.get(n) as number[]))).toBe(true);
    expect(opt.globalStep).toBe(0);
  });
});

describe('float16 models: float32 masters for the active block only', () => {
  test('weights equal their master rounded to float16 after every step; masters released at a switch', () => {
    const net = new TinyNet({ depth: 3, dtype: 'float16' });
    const opt = new BlockOptimizer(net, new Adam(net.parameters(), { lr: 1e-3 }), { verbose: 0, switchEvery: 2, switchMode: 'ascending' });
    const hasMaster = () => net.namedParameters().filter(([, p]) => opt.masterOf(p) !== undefined).map(([n]) => n);
    let precise = 0;
    let checks = 0;
    for (let s = 0; s < 8; s++) {
      const active = opt.trainableParameters();
      // masters exist for the active block only, made from its float16 weights
      expect(hasMaster()).toEqual(active.map(([n]) => n));
      opt.zeroGrad();
      net.lossAt(s).backward();
      opt.step({
        // after the update, before anything is freed (and before a switch)
        onBeforeFree: () => {
          for (const [, p] of active) {
            const master = opt.masterOf(p) as Tensor;
            expect(master.dtype).toBe('float32');
            const m = master.toTypedArray() as Float32Array;
            const w = p.toTypedArray();
            for (let i = 0; i < m.length; i++) {
              if (w[i] !== roundToFloat16(m[i])) throw new Error(`${p.name}[${i}]: weight ${w[i]} is not its master ${m[i]} rounded`);
              if (w[i] !== m[i]) precise++;
            }
            checks++;
          }
        },
      });
      // the float16 gradients were consumed by the step
      for (const [, p] of active) expect(p.grad).toBeNull();
      if (opt.stepInBlock === 0) {
        // switched: the old block's masters are released, the new block's are its weights exactly
        for (const [, p] of active) expect(opt.masterOf(p)).toBeUndefined();
        for (const [, p] of opt.trainableParameters()) {
          expect(sameBits((opt.masterOf(p) as Tensor).toTypedArray() as Float32Array, p.toTypedArray() as unknown as ArrayLike<number>)).toBe(true);
        }
      }
    }
    expect(checks).toBe(8 * 4);
    // the masters carry precision the float16 weights do not have
    expect(precise).toBeGreaterThan(0);
  });
});

describe('resume from a state dict', () => {
  const N = 20;
  /** Runs steps [from, to) and returns the parameters. */
  function run(net: TinyNet, opt: BlockOptimizer, from: number, to: number): Map<string, number[]> {
    for (let s = from; s < to; s++) trainStep(net, opt, s);
    return snapshot(net);
  }
  /** JSON round trip of any state dict. */
  const roundTrip = <T>(sd: T): T => stateFromJSON(JSON.parse(JSON.stringify(stateToJSON(sd))));

  test.each([
    ['float16, descending, mid-block', 'float16', { switchMode: 'descending', switchEvery: 3 }, 7],
    ['float16, descending, at a switch', 'float16', { switchMode: 'descending', switchEvery: 3 }, 6],
    ['float64, random, before a block-epoch boundary', 'float64', { switchMode: 'random', switchEvery: 2, seed: 5 }, 7],
    ['float16, random with startBlock, factory', 'float16', { switchMode: 'random', switchEvery: 2, seed: 5, startBlock: 2, factory: true }, 5],
  ] as const)('%s: continues the uninterrupted trajectory bit for bit', (_, dtype, options, cut) => {
    const { factory, ...rest } = { factory: false, ...options } as BlockOptimizerOptions & { factory: boolean };
    const make = (net: TinyNet) =>
      new BlockOptimizer(net, factory ? (p) => new AdamW(p, { lr: 0.01, weightDecay: 0.1 }) : new AdamW(net.parameters(), { lr: 0.01, weightDecay: 0.1 }), {
        verbose: 0,
        ...rest,
      });
    const schedule = (opt: BlockOptimizer) => new LambdaLR(opt, (s) => 1 / (1 + s));

    const a = new TinyNet({ depth: 4, dtype });
    const optA = make(a);
    const schedA = schedule(optA);
    for (let s = 0; s < N; s++) {
      trainStep(a, optA, s);
      schedA.step();
    }
    const expected = snapshot(a);

    const b = new TinyNet({ depth: 4, dtype });
    const optB = make(b);
    const schedB = schedule(optB);
    for (let s = 0; s < cut; s++) {
      trainStep(b, optB, s);
      schedB.step();
    }
    const modelState = roundTrip(b.stateDict());
    const optState = roundTrip(optB.stateDict());
    const schedState = roundTrip(schedB.stateDict());

    // a different model and fresh optimizer: everything comes from the state dicts
    const c = new TinyNet({ depth: 4, dtype, seed: 99 });
    const optC = make(c);
    const schedC = schedule(optC);
    c.loadStateDict(modelState);
    optC.loadStateDict(optState);
    schedC.loadStateDict(schedState);
    expect([optC.currentBlock, optC.stepInBlock, optC.globalStep, optC.blockOrder]).toEqual([optB.currentBlock, optB.stepInBlock, optB.globalStep, optB.blockOrder]);
    for (let s = cut; s < N; s++) {
      trainStep(c, optC, s);
      schedC.step();
    }
    const resumed = snapshot(c);
    for (const [n, v] of expected) expect([n, sameBits(resumed.get(n) as number[], v)]).toEqual([n, true]);

    // the check can fail: the model weights alone (masters and moments rebuilt) give another run
    const d = new TinyNet({ depth: 4, dtype });
    const optD = make(d);
    d.loadStateDict(modelState);
    for (let s = cut; s < N; s++) trainStep(d, optD, s);
    expect([...snapshot(d)].every(([n, v]) => sameBits(v, expected.get(n) as number[]))).toBe(false);
  });

  test('the state dict holds the schedule, the generator and the masters', () => {
    const net = new TinyNet({ depth: 3, dtype: 'float16' });
    const opt = new BlockOptimizer(net, new Adam(net.parameters()), { verbose: 0, switchEvery: 2, switchMode: 'random', seed: 4 });
    run(net, opt, 0, 3);
    const sd = opt.stateDict();
    expect(sd.badam).toMatchObject({
      format: 'blockgrad.badam.v1',
      blocks: [['model.layers.0.'], ['model.layers.1.'], ['model.layers.2.']],
      switchMode: 'random',
      switchEvery: 2,
      block: opt.currentBlock,
      order: opt.blockOrder,
      position: 1,
      stepInBlock: 1,
      globalStep: 3,
      epoch: 0,
      lr: 1e-3,
    });
    expect(Object.keys(sd.badam.masters)).toEqual(opt.blocks()[opt.currentBlock].names);
    expect(sd.paramGroups.map((g) => g.paramNames)).toEqual([
      [`model.layers.${opt.currentBlock}.mlp.weight`],
      [`model.layers.${opt.currentBlock}.mlp.bias`, `model.layers.${opt.currentBlock}.norm.weight`, `model.layers.${opt.currentBlock}.norm.bias`],
    ]);
    expect(Object.keys(sd.state)).toEqual(['0', '1', '2', '3']);
  });

  test('a bad state dict is a clear error and changes nothing', () => {
    const net = new TinyNet({ depth: 3, dtype: 'float16' });
    const opt = new BlockOptimizer(net, new Adam(net.parameters()), { verbose: 0, switchEvery: 2, switchMode: 'ascending' });
    run(net, opt, 0, 3); // block 1, one step in
    const good = stateFromJSON(JSON.parse(JSON.stringify(stateToJSON(opt.stateDict()))));
    const other = new BlockOptimizer(net, new Adam(net.parameters()), { verbose: 0, switchEvery: 2, switchMode: 'ascending', startBlock: 2 });
    const bad = (edit: (sd: ReturnType<typeof opt.stateDict>) => void) => {
      const sd = stateFromJSON<ReturnType<typeof opt.stateDict>>(stateToJSON(good));
      edit(sd);
      return sd;
    };
    const master = other.masterOf(net.model.layers.at(2).mlp.weight);
    const cases: [ReturnType<typeof opt.stateDict>, RegExp][] = [
      [bad((sd) => (sd.badam.switchMode = 'descending')), /saved with switchMode 'descending'/],
      [bad((sd) => (sd.badam.switchEvery = 3)), /saved with switchEvery 3/],
      [bad((sd) => (sd.badam.blocks = [['model.layers.0.']])), /different partition/],
      [bad((sd) => (sd.badam.block = 0)), /block 0 is not the block at position 1/],
      [bad((sd) => (sd.badam.stepInBlock = 2)), /stepInBlock 2 must be an integer in \[0, 2\)/],
      [bad((sd) => (sd.badam.order = [0, 1, 1])), /not a valid block order/],
      [bad((sd) => (sd.badam.generator = { algorithm: 'xoshiro128**', s: [0, 0, 0, 0] })), /generator/],
      [bad((sd) => delete sd.badam.masters['model.layers.1.mlp.bias']), /masters lacks 'model.layers.1.mlp.bias'/],
      [bad((sd) => (sd.badam.masters['model.layers.1.mlp.bias'] = tensor([1, 2]))), /has shape \[2\] but the parameter \[6\]/],
      [bad((sd) => (sd.state[0].exp_avg = tensor([1, 2]))), /base optimizer's state does not fit block 1: .*exp_avg has shape \[2\]/],
      [bad((sd) => sd.paramGroups.pop()), /base optimizer's state does not fit block 1/],
    ];
    for (const [sd, message] of cases) {
      expect(() => other.loadStateDict(sd)).toThrow(ValueError);
      expect(() => other.loadStateDict(sd)).toThrow(message);
      expect(() => other.loadStateDict(sd)).toThrow(/Nothing was loaded/);
      expect([other.currentBlock, other.globalStep]).toEqual([2, 0]);
      expect(other.masterOf(net.model.layers.at(2).mlp.weight)).toBe(master);
      expect(other.baseOptimizer.parameters()).toEqual(other.trainableParameters().map(([, p]) => p));
      expect(net.model.layers.at(2).mlp.weight.requiresGrad).toBe(true);
      expect(net.model.layers.at(1).mlp.weight.requiresGrad).toBe(false);
    }
    other.loadStateDict(good);
    expect([other.currentBlock, other.stepInBlock, other.globalStep]).toEqual([1, 1, 3]);
    expect(other.masterOf(net.model.layers.at(2).mlp.weight)).toBeUndefined();
    expect(net.model.layers.at(1).mlp.weight.requiresGrad).toBe(true);
  });
});

describe('MixedPrecisionOptimizer (the full-model baseline)', () => {
  test('every float16 parameter trains through its master; the state dict resumes bit for bit', () => {
    const make = (net: TinyNet) => new MixedPrecisionOptimizer(new AdamW(net.parameters(), { lr: 0.01 }));
    const steps = (net: TinyNet, opt: MixedPrecisionOptimizer, from: number, to: number) => {
      for (let s = from; s < to; s++) {
        opt.zeroGrad();
        net.lossAt(s).backward();
        opt.step();
      }
    };
    const a = new TinyNet({ depth: 2, dtype: 'float16' });
    const optA = make(a);
    steps(a, optA, 0, 6);
    for (const [, p] of a.namedParameters()) {
      const m = optA.masters.masterOf(p)?.toTypedArray() as Float32Array;
      const w = p.toTypedArray();
      for (let i = 0; i < m.length; i++) expect(w[i]).toBe(roundToFloat16(m[i]));
      expect(p.grad).toBeNull();
    }
    const b = new TinyNet({ depth: 2, dtype: 'float16' });
    const optB = make(b);
    steps(b, optB, 0, 3);
    const modelState = stateFromJSON(JSON.parse(JSON.stringify(stateToJSON(b.stateDict()))));
    const optState = stateFromJSON(JSON.parse(JSON.stringify(stateToJSON(optB.stateDict()))));
    const c = new TinyNet({ depth: 2, dtype: 'float16', seed: 5 });
    const optC = make(c);
    c.loadStateDict(modelState);
    optC.loadStateDict(optState);
    steps(c, optC, 3, 6);
    const expected = snapshot(a);
    for (const [n, v] of snapshot(c)) expect([n, sameBits(v, expected.get(n) as number[])]).toEqual([n, true]);
    expect(() => optC.loadStateDict({ ...optState, masters: {} })).toThrow(/masters\[0\] is missing.*Nothing was loaded/);
  });

  test('a bad group (a negative lr in the second) throws before any gradient is consumed or weight written', () => {
    const a = tensor([1, 2, 3], { dtype: 'float16', requiresGrad: true });
    const b = tensor([4, 5, 6], { dtype: 'float16', requiresGrad: true });
    const opt = new MixedPrecisionOptimizer(new Adam([{ params: [a] }, { params: [b] }], { lr: 0.1 }));
    a.mul(b).sum().backward();
    const [ga, gb] = [a.grad as Tensor, b.grad as Tensor];
    opt.paramGroups[1].lr = -0.1; // what a per-group LambdaLR writes when its factor goes negative
    expect(() => opt.step()).toThrow(/MasterWeights.step: parameter group 1: invalid learning rate -0.1/);
    expect(Array.from(a.toTypedArray())).toEqual([1, 2, 3]);
    expect(Array.from(b.toTypedArray())).toEqual([4, 5, 6]);
    expect([a.grad, b.grad]).toEqual([ga, gb]); // the gradients are still there, alive
    expect(ga.isDisposed || gb.isDisposed).toBe(false);
    expect(opt.base.state.size).toBe(0);
    // fixed, the same step goes through
    opt.paramGroups[1].lr = 0.1;
    opt.step();
    expect(Array.from(a.toTypedArray())).toEqual([0.89990234375, 1.900390625, 2.900390625]);
    expect([a.grad, b.grad]).toEqual([null, null]);
  });

  test('a bad state record is refused before anything changes', () => {
    const a = tensor([1, 2], { dtype: 'float16', requiresGrad: true });
    const b = tensor([3, 4], { dtype: 'float16', requiresGrad: true });
    const base = new Adam([a, b], { lr: 0.1 });
    const opt = new MixedPrecisionOptimizer(base);
    a.mul(b).sum().backward();
    base.state.set(b, { step: 1, exp_avg: zerosLike(a).reshape([1, 2]) }); // wrong shape, no exp_avg_sq
    expect(() => opt.step()).toThrow(/MasterWeights.step: .*exp_avg has shape \[1,2\]/);
    expect(Array.from(a.toTypedArray())).toEqual([1, 2]);
    expect(a.grad).not.toBeNull();
    expect(base.state.has(a)).toBe(false);
  });
});
