/**
 * Note [Version counter] (src/autograd/version.ts): every path that writes into a parameter's
 * existing storage moves its version, so that a graph recorded before the write refuses its
 * backward instead of returning a gradient computed from the new values. Each optimizer's update
 * is checked on its own: they reach the storage by different routes (copy_, the fused
 * adamUpdate kernel, BAdam's masked update, LOMO inside the backward).
 */
import {
  Adam,
  AdamW,
  BlockOptimizer,
  BlockOptimizerRatio,
  Generator,
  LOMO,
  SGD,
  Tensor,
  cat,
  copy_,
  mseLoss,
  nn,
  noGrad,
  randn,
  tensor,
  type DType,
  type Optimizer,
} from '../../src';
import { TinyNet } from '../optim/badam/helpers';

const STALE = /modified in place after the forward/;

/** A parameter with a gradient, and a graph that saved it (w·w saves w for both operands). */
function savedParameter(n: number, dtype: DType) {
  const w = randn([n], { dtype, generator: new Generator(5), requiresGrad: true });
  w.grad = randn([n], { dtype, generator: new Generator(6) });
  const pending = w.mul(w).sum();
  return { w, pending };
}

/** Runs `update` between the forward and the backward of a graph that saved `w`: the backward must refuse. */
function expectRefusedAfter(n: number, dtype: DType, update: (w: Tensor) => void) {
  const { w, pending } = savedParameter(n, dtype);
  pending.backward(undefined, { retainGraph: true }); // before the update the same backward runs
  const before = w.buffer.ledger.version;
  const values = w.toArray();
  update(w);
  expect(w.toArray()).not.toEqual(values); // the update did write
  expect(w.buffer.ledger.version).toBeGreaterThan(before);
  expect(() => pending.backward()).toThrow(STALE);
}

describe('in-place writes move the version of the storage they write', () => {
  test('copy_ moves it for every view of the buffer, before the backward reads it', () => {
    const w = tensor([1, 2, 3, 4], { dtype: 'float64', requiresGrad: true });
    const view = w.detach().reshape([2, 2]);
    const y = w.mul(w).sum();
    const v0 = w.buffer.ledger.version;
    noGrad(() => copy_(view, 7));
    expect(w.buffer.ledger.version).toBeGreaterThan(v0);
    expect(() => y.backward()).toThrow(STALE);
    expect(w.grad).toBeNull();
  });

  test('ops that fill a buffer they just made (cat) leave the graphs that use their inputs valid', () => {
    const a = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const b = tensor([3], { dtype: 'float64', requiresGrad: true });
    const y = cat([a.mul(a), b.mul(b)]).sum();
    y.backward();
    expect(a.grad!.toArray()).toEqual([2, 4]);
    expect(b.grad!.toArray()).toEqual([6]);
  });
});

describe('an optimizer step after the forward is detected', () => {
  const plain: [string, DType, (w: Tensor) => Optimizer][] = [
    ['SGD', 'float64', (w) => new SGD([w], { lr: 0.1 })],
    ['SGD with momentum', 'float64', (w) => new SGD([w], { lr: 0.1, momentum: 0.9 })],
    ['Adam (the fused adamUpdate kernel)', 'float64', (w) => new Adam([w], { lr: 0.1 })],
    ['AdamW', 'float32', (w) => new AdamW([w], { lr: 0.1, weightDecay: 0.1 })],
    ['Adam on a float16 parameter', 'float16', (w) => new Adam([w], { lr: 0.1 })],
  ];
  test.each(plain)('%s', (_, dtype, make) => {
    expectRefusedAfter(8, dtype, (w) => make(w).step());
  });

  const ratio: [string, DType, Record<string, unknown>][] = [
    ['dense', 'float64', {}],
    ['dense, float16 (master)', 'float16', {}],
    ["masked 'adjacent' (wrapping)", 'float64', { updateRatio: 0.3, preserveThreshold: 0 }],
    ["masked 'adjacent', float16 (master)", 'float16', { updateRatio: 0.3, preserveThreshold: 0 }],
    ["masked 'scatter'", 'float64', { updateRatio: 0.3, preserveThreshold: 0, maskMode: 'scatter' }],
  ];
  test.each(ratio)('BlockOptimizerRatio, %s', (_, dtype, options) => {
    expectRefusedAfter(10, dtype, (w) => new BlockOptimizerRatio([['w', w]], { verbose: 0, lr: 0.1, ...options }).step());
  });

  test.each(['float64', 'float16'] as DType[])('BlockOptimizer (BAdam) on the active block, %s', (dtype) => {
    const net = new TinyNet({ depth: 3, dtype });
    const opt = new BlockOptimizer(net, new Adam(net.parameters(), { lr: 0.05 }), { verbose: 0, switchMode: 'fixed', startBlock: 1 });
    const loss = net.lossAt(0);
    const pending = net.lossAt(1); // saves layer 1's weights (its input needs a gradient)
    loss.backward();
    opt.step();
    expect(() => pending.backward()).toThrow(STALE);
  });

  test('LOMO updates inside one backward; a graph recorded before it refuses its own backward', () => {
    const gen = new Generator(3);
    const m = new nn.Sequential(new nn.Linear(5, 7, { dtype: 'float64', generator: gen }), new nn.SiLU(), new nn.Linear(7, 3, { dtype: 'float64', generator: gen }));
    const lossOf = (seed: number) => {
      const g = new Generator(seed);
      return mseLoss(m.forward(randn([6, 5], { dtype: 'float64', generator: g })), randn([6, 3], { dtype: 'float64', generator: g }));
    };
    const lomo = new LOMO(m, { lr: 0.05 });
    const first = lossOf(1);
    const pending = lossOf(2); // saves 2.weight for the gradient of its input
    lomo.fusedBackward(first);
    expect(lomo.updatedCount).toBeGreaterThan(0);
    expect(() => pending.backward()).toThrow(STALE);
    lomo.dispose();
  });
});
