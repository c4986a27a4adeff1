/**
 * BAdam's schedule: the block order of every mode over two block-epochs (with and without
 * startBlock), exactly K steps per block including the first, requiresGrad following the active
 * block, the switch events and verbosity, and option validation at construction.
 */
import { Adam, BlockOptimizer, Generator, SGD, ValueError, type BlockSwitchEvent, type BlockOptimizerOptions, type SwitchMode } from '../../../src';
import { TinyNet } from './helpers';

/** The active block before each of `steps` steps (no gradients: the schedule alone). */
function blockSequence(options: BlockOptimizerOptions, steps: number, depth = 4): { seq: number[]; events: BlockSwitchEvent[]; opt: BlockOptimizer } {
  const net = new TinyNet({ depth });
  const events: BlockSwitchEvent[] = [];
  const opt = new BlockOptimizer(net, new Adam(net.parameters()), { verbose: 0, log: (e) => events.push(e), ...options });
  const seq: number[] = [];
  for (let s = 0; s < steps; s++) {
    seq.push(opt.currentBlock);
    opt.step();
  }
  return { seq, events, opt };
}

/** Each block of `order` repeated k times. */
const expand = (order: number[], k: number) => order.flatMap((b) => Array<number>(k).fill(b));

describe('block order over two block-epochs', () => {
  const K = 2;
  const cases: [SwitchMode, number | undefined, number[]][] = [
    ['ascending', undefined, [0, 1, 2, 3, 0, 1, 2, 3]],
    ['ascending', 2, [2, 3, 0, 1, 2, 3, 0, 1]],
    ['descending', undefined, [3, 2, 1, 0, 3, 2, 1, 0]],
    ['descending', 1, [1, 0, 3, 2, 1, 0, 3, 2]],
    ['fixed', undefined, [0, 0, 0, 0, 0, 0, 0, 0]],
    ['fixed', 2, [2, 2, 2, 2, 2, 2, 2, 2]],
  ];
  test.each(cases)('%s with startBlock %s', (switchMode, startBlock, order) => {
    const { seq } = blockSequence({ switchMode, startBlock, switchEvery: K }, 8 * K);
    expect(seq).toEqual(expand(order, K));
  });

  test('the default mode is descending, as the reference', () => {
    expect(blockSequence({ switchEvery: 1 }, 4).seq).toEqual([3, 2, 1, 0]);
  });

  test('random: a fresh seeded permutation each block-epoch, reproducible, every block once per epoch', () => {
    const D = 6;
    const { seq, opt } = blockSequence({ switchMode: 'random', switchEvery: K, seed: 7 }, 2 * D * K, D);
    // computed independently: the Generator seeded the same way, one permutation per epoch
    const g = new Generator(7);
    const e0 = g.permutation(D);
    const e1 = g.permutation(D);
    expect(seq).toEqual(expand([...e0, ...e1], K));
    expect([...e0].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...e1].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(e1).not.toEqual(e0);
    expect(opt.blockEpoch).toBe(2);
    // the same seed gives the same run; another seed another one
    expect(blockSequence({ switchMode: 'random', switchEvery: K, seed: 7 }, 2 * D * K, D).seq).toEqual(seq);
    expect(blockSequence({ switchMode: 'random', switchEvery: K, seed: 8 }, 2 * D * K, D).seq).not.toEqual(seq);
  });

  test('random with startBlock: the first epoch starts there, the rest in a seeded permutation', () => {
    const D = 5;
    const { seq } = blockSequence({ switchMode: 'random', switchEvery: 1, seed: 3, startBlock: 2 }, 2 * D, D);
    const g = new Generator(3);
    const rest = [0, 1, 3, 4];
    const e0 = [2, ...g.permutation(4).map((i) => rest[i])];
    const e1 = g.permutation(D);
    expect(seq).toEqual([...e0, ...e1]);
    expect([...seq.slice(0, D)].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...seq.slice(D)].sort()).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('exactly K steps per block', () => {
  test.each([1, 3, 5])('K = %i: the first block too (the reference gives it K-1)', (K) => {
    const { seq, events, opt } = blockSequence({ switchMode: 'ascending', switchEvery: K }, 3 * 4 * K);
    const runs: number[] = [];
    for (let i = 0; i < seq.length; i++) {
      if (i === 0 || seq[i] !== seq[i - 1]) runs.push(1);
      else runs[runs.length - 1]++;
    }
    expect(runs).toEqual(Array<number>(12).fill(K));
    // a switch event at the start and after every K-th step
    expect(events.map((e) => e.step)).toEqual(Array.from({ length: 13 }, (_, i) => i * K));
    expect(events.map((e) => e.block)).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0]);
    expect(events.map((e) => e.epoch)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3]);
    expect(opt.globalStep).toBe(12 * K);
    expect(opt.stepInBlock).toBe(0);
  });

  test('stepInBlock counts within the block; the switch happens at the end of the K-th step', () => {
    const net = new TinyNet({ depth: 3 });
    const opt = new BlockOptimizer(net, new Adam(net.parameters()), { verbose: 0, switchMode: 'ascending', switchEvery: 3 });
    const layer = (i: number) => net.model.layers.at(i).mlp.weight;
    expect([opt.currentBlock, opt.stepInBlock]).toEqual([0, 0]);
    opt.step();
    opt.step();
    expect([opt.currentBlock, opt.stepInBlock]).toEqual([0, 2]);
    expect(layer(0).requiresGrad).toBe(true);
    opt.step(); // the third step: switches as it ends, so the next forward records only block 1
    expect([opt.currentBlock, opt.stepInBlock, opt.globalStep]).toEqual([1, 0, 3]);
    expect([layer(0).requiresGrad, layer(1).requiresGrad, layer(2).requiresGrad]).toEqual([false, true, false]);
  });
});

describe('switch events, verbosity and requiresGrad', () => {
  test('the event names the block, its prefixes, the trainable names and their count', () => {
    const { events } = blockSequence({ switchMode: 'ascending', switchEvery: 1, activeModules: ['lm_head.'] }, 1, 3);
    expect(events).toHaveLength(2);
    expect(events[1]).toEqual({
      type: 'switch',
      block: 1,
      prefixes: ['model.layers.1.'],
      names: ['model.layers.1.mlp.weight', 'model.layers.1.mlp.bias', 'model.layers.1.norm.weight', 'model.layers.1.norm.bias', 'lm_head.weight', 'lm_head.bias'],
      numParams: 36 + 6 + 6 + 6 + 12 + 2,
      step: 1,
      epoch: 0,
      stepInBlock: 0,
    });
  });

  test('only the active block and activeModules require grad; everything else is frozen', () => {
    const net = new TinyNet({ depth: 3 });
    const opt = new BlockOptimizer(net, new Adam(net.parameters()), { verbose: 0, switchMode: 'ascending', switchEvery: 1, activeModules: ['lm_head.'] });
    for (let s = 0; s < 4; s++) {
      const b = opt.currentBlock;
      for (const [n, p] of net.namedParameters()) {
        expect([n, p.requiresGrad]).toEqual([n, n.startsWith(`model.layers.${b}.`) || n.startsWith('lm_head.')]);
      }
      expect(opt.trainableParameters().map(([n]) => n)).toEqual(opt.blocks()[b].names.concat(['lm_head.weight', 'lm_head.bias']));
      opt.step();
    }
  });

  test('verbose 1 prints one line per switch, 2 also the names, 0 nothing', () => {
    const log = jest.spyOn(console, 'log').mockImplementation(() => {});
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      for (const verbose of [0, 1, 2] as const) {
        log.mockClear();
        warn.mockClear();
        blockSequence({ switchMode: 'ascending', switchEvery: 1, verbose }, 1, 3);
        const lines = log.mock.calls.map((c) => String(c[0]));
        if (verbose === 0) expect(lines).toEqual([]);
        if (verbose === 1) {
          expect(lines).toEqual([
            'BlockOptimizer: step 0: block 0 of 3 [model.layers.0.] is trainable, 54 parameters',
            'BlockOptimizer: step 1: block 1 of 3 [model.layers.1.] is trainable, 54 parameters',
          ]);
        }
        if (verbose === 2) {
          expect(lines).toHaveLength(2 * 5);
          expect(lines[1]).toBe('  model.layers.0.mlp.weight');
        }
        // the float64 model: one warning per optimizer that memory is not saved, none when silent
        expect(warn).toHaveBeenCalledTimes(verbose === 0 ? 0 : 1);
        if (verbose > 0) expect(String(warn.mock.calls[0][0])).toMatch(/not float16.*saves no memory/);
      }
    } finally {
      log.mockRestore();
      warn.mockRestore();
    }
  });
});

describe('bad options are clear errors at construction', () => {
  const net = new TinyNet({ depth: 4 });
  const make = (options: object, base: unknown = new Adam(net.parameters())) => () =>
    new BlockOptimizer(net, base as Adam, { verbose: 0, ...(options as BlockOptimizerOptions) });

  test.each([
    [{ switchMode: 'shuffle' }, /unknown switchMode 'shuffle'; expected one of 'ascending', 'descending', 'random', 'fixed'/],
    [{ startBlock: 4 }, /startBlock must be an integer in \[0, 3\] \(the partition has 4 blocks\), got 4/],
    [{ startBlock: -1 }, /startBlock must be an integer in \[0, 3\]/],
    [{ startBlock: 1.5 }, /startBlock must be an integer/],
    [{ switchMode: 'fixed', startBlock: 9 }, /startBlock must be an integer in \[0, 3\]/],
    [{ switchMode: 'random', startBlock: 9 }, /startBlock must be an integer in \[0, 3\]/],
    [{ switchEvery: 0 }, /switchEvery must be an integer >= 1.*got 0/],
    [{ switchEvery: -1 }, /switchEvery must be an integer >= 1.*switchMode 'fixed'/],
    [{ switchEvery: 2.5 }, /switchEvery must be an integer >= 1.*got 2.5/],
    [{ switchEvery: NaN }, /switchEvery must be an integer >= 1/],
    [{ verbose: 3 }, /verbose must be 0, 1 or 2/],
    [{ seed: Infinity }, /seed must be a finite number/],
    [{ switch_block_every: 10 }, /unknown option 'switch_block_every': blockgrad calls it 'switchEvery'/],
    [{ lr: 1 }, /unknown option 'lr'; known: switchEvery/],
    [{ includeLmHead: 'yes' }, /includeLmHead must be a boolean/],
  ])('%j', (options, message) => {
    expect(make(options)).toThrow(ValueError);
    expect(make(options)).toThrow(message);
    for (const p of net.parameters()) expect(p.requiresGrad).toBe(true); // nothing changed
  });

  test('model and base', () => {
    expect(make({}, 'adam')).toThrow(/base must be an Optimizer or a function/);
    expect(() => new BlockOptimizer(net.parameters() as never, new Adam(net.parameters()))).toThrow(/not a \[name, Tensor\] pair/);
    expect(() => new BlockOptimizer([], new Adam(net.parameters()))).toThrow(/no parameters/);
    expect(() => new BlockOptimizer(net, () => 'not an optimizer' as never, { verbose: 0 })).toThrow(/factory returned 'not an optimizer', not an Optimizer/);
  });

  test('a factory builds a fresh optimizer per block; an instance is reused', () => {
    const built: SGD[] = [];
    const opt = new BlockOptimizer(net, (params) => {
      const o = new SGD(params, { lr: 0.1 });
      built.push(o);
      return o;
    }, { verbose: 0, switchEvery: 1, switchMode: 'ascending' });
    opt.step();
    opt.step();
    expect(built).toHaveLength(3);
    expect(opt.baseOptimizer).toBe(built[2]);
    expect(built[2].parameters()).toEqual(opt.trainableParameters().map(([, p]) => p));
    const adam = new Adam(net.parameters());
    const reused = new BlockOptimizer(net, adam, { verbose: 0, switchEvery: 1 });
    reused.step();
    expect(reused.baseOptimizer).toBe(adam);
    expect(adam.parameters()).toEqual(reused.trainableParameters().map(([, p]) => p));
  });
});

describe('a switch is atomic', () => {
  /** A TinyNet in float16 whose factory throws on the given calls (the constructor's call is the first). */
  function failing(failOn: number[], options: BlockOptimizerOptions = {}) {
    const net = new TinyNet({ depth: 3, dtype: 'float16' });
    let calls = 0;
    const opt = new BlockOptimizer(
      net,
      (ps) => {
        calls++;
        if (failOn.includes(calls)) throw new Error(`factory failed (call ${calls})`);
        return new Adam(ps, { lr: 0.01 });
      },
      { verbose: 0, switchMode: 'ascending', switchEvery: 1, ...options },
    );
    const step = (s: number) => {
      opt.zeroGrad();
      net.lossAt(s).backward();
      opt.step();
    };
    return { net, opt, step };
  }
  const namesOf = (opt: BlockOptimizer) => opt.trainableParameters().map(([n]) => n);

  test('a factory that throws at a switch leaves the old block active, trained and consistent; the next step retries', () => {
    const { net, opt, step } = failing([2]);
    const block0 = namesOf(opt);
    const w0 = net.model.layers.at(0).mlp.weight;
    const w1 = net.model.layers.at(1).mlp.weight;
    expect(() => step(0)).toThrow(/factory failed \(call 2\)/);
    // the step itself happened; the switch did not, and nothing of it shows
    expect([opt.currentBlock, opt.globalStep, opt.blockEpoch]).toEqual([0, 1, 0]);
    expect(namesOf(opt)).toEqual(block0);
    expect(opt.baseOptimizer.paramGroups.flatMap((g) => g.paramNames ?? [])).toEqual(expect.arrayContaining(block0));
    expect(opt.baseOptimizer.parameters()).toHaveLength(block0.length);
    expect([w0.requiresGrad, w1.requiresGrad]).toEqual([true, false]);
    expect(opt.masterOf(w0)).toBeDefined();
    expect(opt.masterOf(w1)).toBeUndefined();
    // block 0 trains again, then the switch goes through
    const before = Array.from(w0.toTypedArray());
    step(1);
    expect(Array.from(w0.toTypedArray())).not.toEqual(before);
    expect([opt.currentBlock, opt.globalStep, opt.stepInBlock]).toEqual([1, 2, 0]);
    expect([w0.requiresGrad, w1.requiresGrad]).toEqual([false, true]);
    expect(opt.masterOf(w0)).toBeUndefined();
    expect(opt.baseOptimizer.parameters()).toContain(w1);
    const w1before = Array.from(w1.toTypedArray());
    step(2);
    expect(Array.from(w1.toTypedArray())).not.toEqual(w1before);
  });

  test('random mode: a failed switch at a block-epoch boundary draws no permutation (the generator is restored)', () => {
    const reference = failing([], { switchMode: 'random', seed: 3 });
    const { opt, step } = failing([4], { switchMode: 'random', seed: 3 }); // the 3rd switch ends block-epoch 0
    const seq: number[] = [];
    const ref: number[] = [];
    for (let s = 0; s < 9; s++) {
      ref.push(reference.opt.currentBlock);
      reference.step(s);
    }
    for (let s = 0; s < 10; s++) {
      seq.push(opt.currentBlock);
      if (s === 2) {
        const before = opt.stateDict().badam;
        expect(() => step(s)).toThrow(/factory failed/);
        const after = opt.stateDict().badam;
        expect([after.generator, after.order, after.position, after.epoch]).toEqual([before.generator, before.order, before.position, before.epoch]);
      } else step(s);
    }
    // the same blocks in the same order, with the last block of epoch 0 trained one step longer
    expect(seq).toEqual([...ref.slice(0, 3), ref[2], ...ref.slice(3)]);
  });

  test('the constructor changes nothing when the first block cannot be built', () => {
    const net = new TinyNet({ depth: 3 });
    const flags = net.parameters().map((p) => p.requiresGrad);
    expect(() => new BlockOptimizer(net, () => ({}) as unknown as Adam, { verbose: 0 })).toThrow(/not an Optimizer/);
    expect(net.parameters().map((p) => p.requiresGrad)).toEqual(flags);
  });
});

describe('resume events', () => {
  test("loadStateDict emits { type: 'resume' } for the saved block (and a line at verbose >= 1)", () => {
    const net = new TinyNet({ depth: 4 });
    const opts: BlockOptimizerOptions = { switchMode: 'ascending', switchEvery: 2, verbose: 0 };
    const opt = new BlockOptimizer(net, new Adam(net.parameters()), opts);
    for (let s = 0; s < 5; s++) opt.step();
    const sd = opt.stateDict();
    const events: BlockSwitchEvent[] = [];
    const spy = jest.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const resumed = new BlockOptimizer(net, new Adam(net.parameters()), { ...opts, verbose: 1, log: (e) => events.push(e) });
      resumed.loadStateDict(sd);
      expect(events.map((e) => [e.type, e.block, e.step, e.stepInBlock, e.epoch])).toEqual([
        ['switch', 0, 0, 0, 0], // the constructor's first block, which the resumed run never trains
        ['resume', 2, 5, 1, 0],
      ]);
      expect(events[1]).toMatchObject({ prefixes: ['model.layers.2.'], names: resumed.trainableParameters().map(([n]) => n) });
      expect(spy.mock.calls.map((c) => String(c[0]))).toEqual([
        'BlockOptimizer: step 0: block 0 of 4 [model.layers.0.] is trainable, 54 parameters',
        'BlockOptimizer: resumed at step 5: block 2 of 4 [model.layers.2.] is trainable, 54 parameters, 1 of its 2 steps taken (block-epoch 0)',
      ]);
      // a refused state dict emits nothing
      expect(() => resumed.loadStateDict({ ...sd, badam: { ...sd.badam, switchEvery: 3 } })).toThrow(ValueError);
      expect(events).toHaveLength(2);
    } finally {
      spy.mockRestore();
    }
  });
});
