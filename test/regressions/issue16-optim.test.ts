/**
 * Issue 16, the silent wrong answers around optimizers and checkpoints (causes G, H and J, the
 * second optimizer on one model, the stale temporary file of a killed save), one describe per
 * cause. Each test failed before its fix.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Adam,
  BlockOptimizer,
  BlockOptimizerRatio,
  LOMO,
  SGD,
  ValueError,
  loadSafetensors,
  mul,
  saveSafetensorsFile,
  stateFromJSON,
  stateToJSON,
  tensor,
  type OptimizerStateDict,
  type Tensor,
} from '../../src';
import { expectError, flat } from '../helpers';
import { TinyNet, snapshot } from '../optim/badam/helpers';


const leaf = (values: number[]) => tensor(values, { dtype: 'float64', requiresGrad: true });

/** An Adam that took one step on p (so its state has step, exp_avg and exp_avg_sq). */
function adamAfterOneStep(p: Tensor, options: { amsgrad?: boolean } = {}): Adam {
  const opt = new Adam([p], { lr: 0.1, ...options });
  p.grad = tensor([0.5, -0.25], { dtype: 'float64' });
  opt.step();
  return opt;
}

/** A JSON round trip of a state dict: a fresh copy to edit. */
const copyOf = <T>(sd: T): T => stateFromJSON<T>(JSON.parse(JSON.stringify(stateToJSON(sd))));

describe("G: names from Object.prototype are not options, hyperparameters or state keys", () => {
  test('toString, constructor, valueOf and hasOwnProperty are unknown everywhere', () => {
    const p = leaf([1, 2]);
    expectError(() => new Adam([p], { toString: 0.1 } as never), ValueError, 'Adam', "unknown option 'toString'; known: lr, betas");
    expectError(() => new SGD([p], { valueOf: 1 } as never), ValueError, 'SGD', "unknown option 'valueOf'");
    const opt = adamAfterOneStep(p);
    expectError(() => opt.addParamGroup({ params: [leaf([3])], constructor: 1 } as never), ValueError, 'Adam.addParamGroup', "unknown hyperparameter 'constructor'");

    const withGroupKey = copyOf(opt.stateDict());
    Object.assign(withGroupKey.paramGroups[0], { hasOwnProperty: 1 });
    expectError(() => opt.loadStateDict(withGroupKey), ValueError, 'Adam.loadStateDict', "unknown hyperparameter 'hasOwnProperty'", 'Nothing was loaded');
    const withStateKey = copyOf(opt.stateDict());
    Object.assign(withStateKey.state[0], { constructor: tensor([9, 9], { dtype: 'float64' }) });
    expectError(() => opt.loadStateDict(withStateKey), ValueError, 'Adam.loadStateDict', "unknown key 'constructor'");
    expect(opt.state.get(p)?.constructor).toBe(Object); // nothing loaded

    const net = new TinyNet({ depth: 2 });
    // the reference-name hint must not come from Object.prototype either
    expectError(() => new BlockOptimizer(net, new Adam(net.parameters()), { toString: 1 } as never), ValueError, 'BlockOptimizer', "unknown option 'toString'; known: switchEvery");
  });
});

describe('H: the state JSON reader keeps "__proto__" as a plain key', () => {
  test('a "__proto__" key neither replaces the prototype nor leaks into other keys, and round-trips', () => {
    const parsed = JSON.parse('{ "__proto__": { "polluted": 1, "lr": 5 }, "a": { "__proto__": [1] } }');
    const state = stateFromJSON<Record<string, unknown>>(parsed);
    expect(Object.getPrototypeOf(state)).toBe(Object.prototype);
    expect((state as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.keys(state)).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(state, '__proto__')?.value).toEqual({ polluted: 1, lr: 5 });
    expect(Object.getPrototypeOf(state.a)).toBe(Object.prototype);
    expect(JSON.stringify(stateToJSON(state))).toBe('{"__proto__":{"polluted":1,"lr":5},"a":{"__proto__":[1]}}');
  });

  test('an optimizer state dict with a "__proto__" group key is refused by name, not read as the lr', () => {
    const opt = adamAfterOneStep(leaf([1, 2]));
    const text = JSON.stringify(stateToJSON(opt.stateDict())).replace('"paramGroups":[{', '"paramGroups":[{"__proto__":{"lr":5},');
    expectError(() => opt.loadStateDict(stateFromJSON<OptimizerStateDict>(JSON.parse(text))), ValueError, 'Adam.loadStateDict', "unknown hyperparameter '__proto__'");
    expect(opt.paramGroups[0].lr).toBe(0.1);
  });
});

describe('J: loaded optimizer state must be what a run can have, or nothing changes', () => {
  test("Adam: a negative or NaN exp_avg_sq, a NaN exp_avg, a negative amsgrad max are refused, and the next step stays finite", () => {
    const p = leaf([1, 2]);
    const opt = adamAfterOneStep(p, { amsgrad: true });
    const before = JSON.stringify(stateToJSON(opt.stateDict()));
    const edits: [(sd: OptimizerStateDict) => void, string][] = [
      [(sd) => (sd.state[0].exp_avg_sq = tensor([0.1, -1], { dtype: 'float64' })), 'state[0].exp_avg_sq holds -1 at flat index 1'],
      [(sd) => (sd.state[0].exp_avg_sq = tensor([NaN, 0], { dtype: 'float64' })), 'exp_avg_sq holds NaN at flat index 0'],
      [(sd) => (sd.state[0].exp_avg = tensor([0, Infinity], { dtype: 'float64' })), 'state[0].exp_avg holds Infinity'],
      [(sd) => (sd.state[0].max_exp_avg_sq = tensor([-2, 0], { dtype: 'float64' })), 'max_exp_avg_sq holds -2'],
    ];
    for (const [edit, message] of edits) {
      const sd = copyOf(opt.stateDict());
      edit(sd);
      expectError(() => opt.loadStateDict(sd), ValueError, 'Adam.loadStateDict', message, 'Nothing was loaded');
    }
    expect(JSON.stringify(stateToJSON(opt.stateDict()))).toBe(before);
    p.grad = tensor([0.1, 0.1], { dtype: 'float64' });
    opt.step();
    expect(flat(p).every(Number.isFinite)).toBe(true);
  });

  test('SGD: a non-finite momentum buffer is refused', () => {
    const p = leaf([1, 2]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
    p.grad = tensor([1, 1], { dtype: 'float64' });
    opt.step();
    const sd = copyOf(opt.stateDict());
    sd.state[0].momentum_buffer = tensor([NaN, 1], { dtype: 'float64' });
    expectError(() => opt.loadStateDict(sd), ValueError, 'SGD.loadStateDict', 'momentum_buffer holds NaN');
  });

  test("BAdam: the inner Adam's second moment and a float16 model's masters are checked; nothing changes", () => {
    const net = new TinyNet({ depth: 2, dtype: 'float16' });
    const opt = new BlockOptimizer(net, new Adam(net.parameters(), { lr: 0.01 }), { verbose: 0, switchEvery: 3, switchMode: 'ascending' });
    net.lossAt(0).backward();
    opt.step();
    const good = copyOf(opt.stateDict());
    const negative = copyOf(good);
    negative.state[0].exp_avg_sq = mul(negative.state[0].exp_avg_sq as Tensor, -1);
    expectError(() => opt.loadStateDict(negative), ValueError, 'BlockOptimizer.loadStateDict', /exp_avg_sq holds -\d/, 'Nothing was loaded');
    const nanMaster = copyOf(good);
    const [name] = Object.keys(nanMaster.badam.masters);
    nanMaster.badam.masters[name] = mul(nanMaster.badam.masters[name], NaN);
    expectError(() => opt.loadStateDict(nanMaster), ValueError, 'BlockOptimizer.loadStateDict', `masters['${name}'] holds NaN`);
    expect(JSON.stringify(stateToJSON(opt.stateDict()))).toBe(JSON.stringify(stateToJSON(good)));
  });

  test('BlockOptimizerRatio: a negative second moment is refused', () => {
    const net = new TinyNet({ depth: 2 });
    const opt = new BlockOptimizerRatio(net, { verbose: 0, preserveThreshold: 0, updateRatio: 0.5 });
    net.lossAt(0).backward();
    opt.step();
    const sd = copyOf(opt.stateDict());
    const [name] = Object.keys(sd.state).filter((n) => sd.state[n].exp_avg_sq !== undefined);
    sd.state[name].exp_avg_sq = mul(sd.state[name].exp_avg_sq as Tensor, -1);
    expectError(() => opt.loadStateDict(sd), ValueError, 'BlockOptimizerRatio.loadStateDict', `state['${name}'].exp_avg_sq holds -`);
  });
});

describe('a second optimizer on the parameters of a BlockOptimizer', () => {
  const fixed = { verbose: 0, switchMode: 'fixed' } as const;

  test("the first one's next step is an error naming the parameter, not a step that updates nothing", () => {
    const net = new TinyNet({ depth: 3 });
    const first = new BlockOptimizer(net, new Adam(net.parameters(), { lr: 0.1 }), { ...fixed, startBlock: 0 });
    const second = new BlockOptimizer(net, new Adam(net.parameters(), { lr: 0.1 }), { ...fixed, startBlock: 2 });
    // the second made block 2 trainable and froze block 0: the first one's block gets no gradient
    net.lossAt(0).backward();
    expect(first.trainableParameters().every(([, p]) => p.grad === null)).toBe(true);
    expectError(() => first.step(), ValueError, 'BlockOptimizer.step', "parameter 'model.embed_proj.weight' is now trained by a BlockOptimizer built later", 'sets their requiresGrad', 'would silently update nothing', 'loadStateDict');
    expectError(() => first.loadStateDict(first.stateDict()), ValueError, 'BlockOptimizer.loadStateDict', 'built later');
    const before = snapshot(net);
    second.step();
    expect(snapshot(net).get('model.layers.2.mlp.weight')).not.toEqual(before.get('model.layers.2.mlp.weight'));
    first.release(); // still frees its memory
  });

  test('resuming on the same model (the documented pattern) works: the newer one takes the run over', () => {
    const net = new TinyNet({ depth: 3 });
    const opts = { verbose: 0, switchMode: 'ascending', switchEvery: 2 } as const;
    const first = new BlockOptimizer(net, new Adam(net.parameters(), { lr: 0.1 }), opts);
    net.lossAt(0).backward();
    first.step();
    const resumed = new BlockOptimizer(net, new Adam(net.parameters(), { lr: 0.1 }), opts);
    resumed.loadStateDict(copyOf(first.stateDict()));
    net.zeroGrad();
    net.lossAt(1).backward();
    resumed.step();
    expect(resumed.globalStep).toBe(2);
  });

  test('a LOMO built on them supersedes the BlockOptimizer too (its hooks free the gradients)', () => {
    const net = new TinyNet({ depth: 2 });
    const badam = new BlockOptimizer(net, new Adam(net.parameters()), { ...fixed, startBlock: 0 });
    const lomo = new LOMO(net, { lr: 0.01 });
    lomo.fusedBackward(net.lossAt(0));
    expectError(() => badam.step(), ValueError, 'BlockOptimizer.step', 'now trained by a LOMO built later', 'frees their gradients');
    const again = new BlockOptimizer(net, new Adam(net.parameters()), { ...fixed, startBlock: 0 });
    expectError(() => lomo.fusedBackward(net.lossAt(1)), ValueError, 'LOMO.fusedBackward', 'now trained by a BlockOptimizer built later');
    again.release();
  });
});

describe('a save killed midway leaves a temporary file: the next save replaces it', () => {
  test('stale temporary files of dead processes are removed; live ones and other files are kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blockgrad-tmp-'));
    try {
      const path = join(dir, 'w.safetensors');
      // what a killed save leaves: <path>.<pid>.<tag>.tmp, half written (pid 2^30: no such process)
      const stale = 'w.safetensors.1073741824.l0ab12cd.tmp';
      writeFileSync(join(dir, stale), Buffer.from([1, 2, 3]));
      const ours = `w.safetensors.${process.pid}.zz9.tmp`; // this process, but no save of ours is writing it
      writeFileSync(join(dir, ours), Buffer.from([4]));
      const live = `w.safetensors.${process.ppid}.k7.tmp`; // a save that may still be running elsewhere
      writeFileSync(join(dir, live), Buffer.from([5]));
      writeFileSync(join(dir, 'w.safetensors.backup.tmp'), 'not ours');
      writeFileSync(join(dir, 'other.safetensors.1073741824.x.tmp'), 'another target');

      await saveSafetensorsFile(path, { w: tensor([1.5, -2]) });
      expect(readdirSync(dir).sort()).toEqual(['other.safetensors.1073741824.x.tmp', 'w.safetensors', live, 'w.safetensors.backup.tmp'].sort());
      expect(flat(loadSafetensors(path).w)).toEqual([1.5, -2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
