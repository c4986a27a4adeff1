/**
 * The one loadStateDict contract (src/optim/load-contract.ts), for every optimizer and scheduler:
 * everything is checked first, every problem is listed in one ValueError naming
 * `<Class>.loadStateDict` and ending in 'Nothing was loaded', and a refused load changes nothing.
 * Each case corrupts a state dict in two unrelated places and expects both to be named.
 */
import {
  Adam,
  AdamW,
  BlockOptimizer,
  BlockOptimizerRatio,
  LOMO,
  MixedPrecisionOptimizer,
  StepLR,
  Tensor,
  ValueError,
  nn,
  stateFromJSON,
  stateToJSON,
  tensor,
} from '../../src';
import { flat } from '../helpers';
import { TinyNet, snapshot } from './badam/helpers';

const copyOf = <T>(sd: T): T => stateFromJSON<T>(JSON.parse(JSON.stringify(stateToJSON(sd))));

/** The error `load` throws, checked against the contract: its class, op, problems and ending. */
function refusal(load: () => void, op: string, ...problems: (string | RegExp)[]): void {
  let error: unknown;
  try {
    load();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ValueError);
  const message = (error as Error).message;
  expect(message.startsWith(`${op}: `)).toBe(true);
  for (const p of problems) expect(message).toMatch(p);
  expect(message).toMatch(/\. Nothing was loaded$/);
}

function train(net: TinyNet, opt: { zeroGrad(): void; step(): unknown }, from: number, to: number): void {
  for (let s = from; s < to; s++) {
    opt.zeroGrad();
    net.lossAt(s).backward();
    opt.step();
  }
}

describe('one contract for every loadStateDict: all problems in one ValueError, nothing changed', () => {
  test('Optimizer (AdamW): a bad hyperparameter and a bad state tensor together', () => {
    const net = new TinyNet({ depth: 2 });
    const opt = new AdamW(net.parameters(), { lr: 0.01 });
    train(net, opt, 0, 2);
    const sd = copyOf(opt.stateDict());
    sd.paramGroups[0].eps = -1;
    sd.state[0].exp_avg = tensor([1, 2]);
    const before = flat(opt.state.get(net.parameters()[0])?.exp_avg as Tensor);
    refusal(() => opt.loadStateDict(sd), 'AdamW.loadStateDict', /invalid eps -1/, /state\[0\]\.exp_avg has shape \[2\]/);
    expect(opt.paramGroups[0].eps).toBe(1e-8);
    expect(flat(opt.state.get(net.parameters()[0])?.exp_avg as Tensor)).toEqual(before);
  });

  test('MixedPrecisionOptimizer: a bad master and a bad base state are reported together', () => {
    const net = new TinyNet({ depth: 2, dtype: 'float16' });
    const opt = new MixedPrecisionOptimizer(new Adam(net.parameters(), { lr: 0.01 }));
    train(net, opt, 0, 2);
    const sd = copyOf(opt.stateDict());
    sd.masters[0] = tensor([NaN, 1]);
    sd.paramGroups[0].lr = 'fast' as unknown as number;
    const master = opt.masters.masterOf(net.parameters()[0]);
    const masterValues = flat(master as Tensor);
    refusal(() => opt.loadStateDict(sd), 'MixedPrecisionOptimizer.loadStateDict', /masters\[0\] has shape \[2\]/, /lr must be a number, got 'fast'/);
    expect(opt.masters.masterOf(net.parameters()[0])).toBe(master);
    expect(flat(master as Tensor)).toEqual(masterValues);
    expect(opt.paramGroups[0].lr).toBe(0.01);
  });

  test('BlockOptimizer: schedule, masters and base state problems in one error; the run goes on untouched', () => {
    const net = new TinyNet({ depth: 3, dtype: 'float16' });
    const opt = new BlockOptimizer(net, new Adam(net.parameters(), { lr: 0.01 }), { verbose: 0, switchEvery: 2, switchMode: 'ascending' });
    train(net, opt, 0, 3);
    const sd = copyOf(opt.stateDict());
    const block = opt.currentBlock;
    const bias = `model.layers.${block}.mlp.bias`;
    sd.badam.epoch = -1;
    delete sd.badam.masters[bias];
    sd.state[0].exp_avg = tensor([1, 2]);
    const other = new BlockOptimizer(net, new Adam(net.parameters(), { lr: 0.01 }), { verbose: 0, switchEvery: 2, switchMode: 'ascending', startBlock: 2 });
    const weights = snapshot(net);
    const base = other.baseOptimizer;
    const groups = base.paramGroups;
    refusal(
      () => other.loadStateDict(sd),
      'BlockOptimizer.loadStateDict',
      /epoch -1 must be an integer >= 0/,
      new RegExp(`masters lacks '${bias.replace(/\./g, '\\.')}'`),
      /the base optimizer's state does not fit block 1: state\[0\]\.exp_avg has shape \[2\]/,
    );
    expect([other.currentBlock, other.globalStep, other.stepInBlock]).toEqual([2, 0, 0]);
    expect(other.baseOptimizer).toBe(base);
    expect(base.paramGroups).toBe(groups);
    expect(other.trainableParameters().map(([n]) => n)).toEqual(other.blocks()[2].names);
    expect(snapshot(net)).toEqual(weights);
  });

  test('BlockOptimizer: a position in another schedule is refused without checking the rest', () => {
    const net = new TinyNet({ depth: 3 });
    const opt = new BlockOptimizer(net, new Adam(net.parameters()), { verbose: 0, switchEvery: 2, switchMode: 'ascending' });
    const sd = copyOf(opt.stateDict());
    sd.badam.switchMode = 'descending';
    sd.badam.order = [2, 1, 0];
    let message = '';
    try {
      opt.loadStateDict(sd);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/saved with switchMode 'descending'/);
    expect(message).not.toMatch(/order/); // valid for 'descending', and not checked against 'ascending'
  });

  test('BlockOptimizerRatio: several parameters and the schedule in one error', () => {
    const gen = () => new nn.Sequential(new nn.Linear(10, 20), new nn.Linear(20, 5));
    const model = gen();
    const opt = new BlockOptimizerRatio(model, { verbose: 0, updateRatio: 0.2, preserveThreshold: 10, switchEvery: 3 });
    const sd = copyOf(opt.stateDict());
    sd.step = 1.5;
    sd.state['0.weight'].k = 3;
    sd.state['1.weight'].seed = 'x' as unknown as number; // 'adjacent': the seed is not checked
    sd.state['1.bias'].step = 9;
    const masks = opt.masks();
    refusal(
      () => opt.loadStateDict(sd),
      'BlockOptimizerRatio.loadStateDict',
      /step must be an integer >= 0, got 1\.5/,
      /state\['0\.weight'\]\.k is 3/,
      /state\['1\.bias'\]\.step must be an integer in \[0, 3\], got 9/,
    );
    expect(opt.masks()).toEqual(masks);
    expect(opt.stepCount).toBe(0);
  });

  test('LOMO: a bad lr and a bad weightDecay together', () => {
    const model = new nn.Sequential(new nn.Linear(3, 2));
    const lomo = new LOMO(model, { lr: 0.1 });
    try {
      refusal(
        () => lomo.loadStateDict({ paramGroups: [{ lr: -1, weightDecay: NaN }] }),
        'LOMO.loadStateDict',
        /invalid learning rate -1/,
        /invalid weightDecay NaN/,
      );
      refusal(() => lomo.loadStateDict({ paramGroups: [] }), 'LOMO.loadStateDict', /expected \{ paramGroups: \[\{ lr, weightDecay \}\] \}/);
      expect(lomo.paramGroups[0]).toMatchObject({ lr: 0.1, weightDecay: 0 });
    } finally {
      lomo.dispose();
    }
  });

  test('LRScheduler (StepLR): the counters and its own settings together', () => {
    const model = new nn.Sequential(new nn.Linear(3, 2));
    const opt = new Adam(model.parameters(), { lr: 0.1 });
    const sched = new StepLR(opt, 5, 0.5);
    refusal(
      () => sched.loadStateDict({ lastEpoch: 2.5, baseLrs: [0.1], lastLr: [0.1, 0.2], gamma: 0.9 }),
      'StepLR.loadStateDict',
      /lastEpoch must be an integer >= -1, got 2\.5/,
      /lastLr must be 1 finite numbers/,
      /gamma is 0\.9 in the state dict but 0\.5 here/,
    );
    expect([sched.lastEpoch, sched.getLastLr()]).toEqual([0, [0.1]]);
  });
});

describe('the parameters an optimizer is built over are checked alike', () => {
  test('BlockOptimizer, BlockOptimizerRatio and LOMO refuse a disposed parameter by name', () => {
    const make = () => {
      const m = new nn.Sequential(new nn.Linear(3, 4), new nn.Linear(4, 2));
      m.namedParameters()[1][1].dispose();
      return m;
    };
    const message = /parameter '0\.bias' was disposed/;
    expect(() => new BlockOptimizer(make(), (params) => new Adam(params), { verbose: 0, blockPrefixList: [['0.'], ['1.']] })).toThrow(message);
    expect(() => new BlockOptimizerRatio(make(), { verbose: 0 })).toThrow(message);
    expect(() => new LOMO(make(), { lr: 0.1 })).toThrow(message);
  });
});
