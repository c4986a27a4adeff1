import { f16round } from '@petamoriken/float16';
import {
  AutogradError,
  DTypeError,
  ShapeError,
  Tensor,
  grad,
  linear,
  manualSeed,
  memory,
  mseLoss,
  noGrad,
  enableGrad,
  isGradEnabled,
  profile,
  randn,
  relu,
  tensor,
  zeros,
  full,
} from '../../src';

const LAYERS = 6;
const WIDTH = 8;

/** A 6-layer MLP whose parameters carry Hugging Face-style names, so profiles can point at layers. */
function makeMlp(trainable: (layer: number) => boolean) {
  manualSeed(7);
  return Array.from({ length: LAYERS }, (_, l) => {
    const weight = randn([WIDTH, WIDTH], { dtype: 'float64' }).mul(0.3).detach();
    const bias = randn([WIDTH], { dtype: 'float64' }).mul(0.1).detach();
    weight.name = `layers.${l}.weight`;
    bias.name = `layers.${l}.bias`;
    weight.requiresGrad_(trainable(l));
    bias.requiresGrad_(trainable(l));
    return { weight, bias };
  });
}

function forward(layers: ReturnType<typeof makeMlp>, x: Tensor): Tensor {
  let h = x;
  for (const { weight, bias } of layers) h = relu(linear(h, weight, bias));
  return mseLoss(h, zeros(h.shape, { dtype: 'float64' }));
}

function layerOf(names: (string | undefined)[]): number | null {
  for (const n of names) {
    const m = n?.match(/^layers\.(\d+)\./);
    if (m) return Number(m[1]);
  }
  return null;
}

describe('pruning: only layer 2 of a 6-layer MLP is trainable', () => {
  const layers = makeMlp((l) => l === 2);
  const x = randn([4, WIDTH], { dtype: 'float64' });
  const { result: loss, report: fwd } = profile(() => forward(layers, x));

  test('layers 0-1 record no nodes and save no tensors (mechanism 1)', () => {
    // the first two linear+relu pairs ran without recording
    expect(fwd.notRecorded.linear).toBe(2);
    expect(fwd.notRecorded.relu).toBe(2);
    const recordedLayers = fwd.recorded.map((e) => layerOf(e.inputNames)).filter((l) => l !== null);
    expect(recordedLayers).toEqual([2, 3, 4, 5]);
    // the first recorded node is layer 2's linear, and it needs grads for W and b only
    expect(fwd.recorded[0].op).toBe('linear');
    expect(fwd.recorded[0].needsInputGrad).toEqual([false, true, true]);
    // saved bytes come only from recorded nodes; none of them belongs to layers 0-1
    expect(fwd.savedBytes).toBeGreaterThan(0);
    expect(memory.stats().savedForBackwardBytes).toBeGreaterThan(0);
  });

  test('backward: layers 3-5 run no weight-gradient matmul, layer 2 runs no input-gradient matmul (mechanism 2)', () => {
    const { report } = profile(() => loss.backward());
    const linears = report.backwardNodes.filter((e) => e.op === 'linear');
    const byLayer = new Map(linears.map((e) => [layerOf(e.inputNames) ?? -1, e.computed]));
    // layers 3-5: weights frozen, so the nodes computed dX only (their weight names are not
    // recorded as inputs that need grad; the node of layer L is the one fed by layer L-1)
    expect(linears).toHaveLength(4);
    expect(byLayer.get(2)).toEqual([false, true, true]);
    const upper = linears.filter((e) => layerOf(e.inputNames) !== 2);
    for (const e of upper) expect(e.computed).toEqual([true, false, false]);
    // one dW matmul for layer 2 and one dX matmul for each of layers 3, 4, 5
    expect(report.kernels.matmul).toBe(4);
    expect(report.gradsSkippedByMask).toBeGreaterThanOrEqual(2 + 3 * 2);
    expect(layers[2].weight.grad).not.toBeNull();
    expect(layers[2].bias.grad).not.toBeNull();
    for (const l of [0, 1, 3, 4, 5]) expect(layers[l].weight.grad).toBeNull();
    // saved tensors were released after use
    expect(memory.stats().savedForBackwardBytes).toBe(0);
  });

  test('the pruned gradient equals the full backward gradient for that layer', () => {
    const all = makeMlp(() => true);
    forward(all, x).backward();
    expect(all[2].weight.grad!.toArray()).toEqual(layers[2].weight.grad!.toArray());
    expect(all[2].bias.grad!.toArray()).toEqual(layers[2].bias.grad!.toArray());
  });
});

describe('pruning: backward({ inputs }) runs only nodes between the loss and w (mechanism 3)', () => {
  test('every layer trainable, inputs: [w3]', () => {
    const layers = makeMlp(() => true);
    const x = randn([4, WIDTH], { dtype: 'float64' });
    const loss = forward(layers, x);
    const w3 = layers[3].weight;
    const { report } = profile(() => loss.backward(undefined, { inputs: [w3] }));
    const ranLayers = report.backwardNodes.map((e) => layerOf(e.inputNames)).filter((l) => l !== null);
    expect(new Set(ranLayers)).toEqual(new Set([3, 4, 5]));
    // linear+relu of layers 0..2 are pruned
    expect(report.nodesPrunedByReachability).toBe(6);
    // layer 3's linear computed dW only: no dX (nothing requested below) and no db
    const l3 = report.backwardNodes.find((e) => e.op === 'linear' && layerOf(e.inputNames) === 3);
    expect(l3?.computed).toEqual([false, true, false]);
    expect(report.gradsSkippedByReachability).toBeGreaterThan(0);
    // matmuls: dX for layers 5 and 4, dW for layer 3
    expect(report.kernels.matmul).toBe(3);
    expect(w3.grad).not.toBeNull();
    for (const l of [0, 1, 2, 4, 5]) expect(layers[l].weight.grad).toBeNull();
    expect(layers[3].bias.grad).toBeNull();

    // the value is the same as from a full backward
    const full = makeMlp(() => true);
    forward(full, x).backward();
    expect(w3.grad!.toArray()).toEqual(full[3].weight.grad!.toArray());
  });
});

describe('engine basics', () => {
  test('gradients accumulate over a diamond and over repeated backward calls', () => {
    const a = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const b = a.mul(a); // used twice below
    const y = b.add(b.mul(3)).sum(); // y = 4a², dy/da = 8a
    y.backward();
    expect(a.grad!.toArray()).toEqual([8, 16, 24]);
    a.mul(2).sum().backward();
    expect(a.grad!.toArray()).toEqual([10, 18, 26]);
  });

  test('backward twice without retainGraph is a clear AutogradError; with it, grads double', () => {
    const a = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const y = a.mul(a).sum();
    y.backward(undefined, { retainGraph: true });
    y.backward();
    expect(a.grad!.toArray()).toEqual([4, 8]);
    expect(() => y.backward()).toThrow(AutogradError);
    expect(() => y.backward()).toThrow(/second time.*retainGraph/);
  });

  test('non-scalar backward needs a gradient of the same shape', () => {
    const a = tensor([1, 2, 3], { requiresGrad: true });
    const y = a.mul(2);
    expect(() => y.backward()).toThrow(AutogradError);
    expect(() => y.backward()).toThrow(/scalar outputs.*\[3\]/);
    expect(() => y.backward(tensor([1, 1]))).toThrow(ShapeError);
    y.backward(tensor([1, 10, 100]));
    expect(a.grad!.toArray()).toEqual([2, 20, 200]);
  });

  test('backward on a tensor that does not require grad fails', () => {
    expect(() => tensor([1]).sum().backward()).toThrow(AutogradError);
  });

  test('an int32 tensor cannot require grad', () => {
    expect(() => tensor([1, 2], { dtype: 'int32' }).requiresGrad_()).toThrow(DTypeError);
    expect(() => tensor([1, 2], { dtype: 'int32', requiresGrad: true })).toThrow(/int32.*floating/);
  });

  test('noGrad records nothing; enableGrad re-enables inside it', () => {
    const a = tensor([1, 2], { requiresGrad: true });
    const y = noGrad(() => a.mul(2));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    const z = noGrad(() => {
      expect(isGradEnabled()).toBe(false);
      return enableGrad(() => a.mul(2));
    });
    expect(z.requiresGrad).toBe(true);
    expect(isGradEnabled()).toBe(true);
  });

  test('detach cuts the graph', () => {
    const a = tensor([3], { dtype: 'float64', requiresGrad: true });
    const y = a.mul(a.detach()).sum(); // d/da = a.detach() = 3
    y.backward();
    expect(a.grad!.toArray()).toEqual([3]);
  });

  test('grad() returns gradients without touching .grad, including for non-leaf inputs', () => {
    const x = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const h = x.mul(3);
    const y = h.mul(h).sum(); // y = 9x², dy/dh = 2h, dy/dx = 18x
    const [gh, gx] = grad(y, [h, x], { retainGraph: true });
    expect(gh!.toArray()).toEqual([6, 12]);
    expect(gx!.toArray()).toEqual([18, 36]);
    expect(x.grad).toBeNull();
    const unused = tensor([1], { requiresGrad: true });
    expect(() => grad(y, [unused], { retainGraph: true })).toThrow(/not used/);
    expect(grad(y, [unused], { allowUnused: true })).toEqual([null]);
  });

  test('grad() with gradOutputs and several outputs', () => {
    const x = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const y1 = x.mul(2);
    const y2 = x.mul(x);
    const [g] = grad([y1, y2], [x], { gradOutputs: [tensor([1, 1], { dtype: 'float64' }), tensor([10, 100], { dtype: 'float64' })] });
    expect(g!.toArray()).toEqual([2 + 10 * 2, 2 + 100 * 4]);
  });

  test('createGraph gives higher-order gradients', () => {
    const x = tensor([2], { dtype: 'float64', requiresGrad: true });
    const y = x.pow(3).sum();
    const [dy] = grad(y, [x], { createGraph: true }); // 3x² = 12
    expect(dy!.toArray()).toEqual([12]);
    const [d2y] = grad(dy!.sum(), [x]); // 6x = 12
    expect(d2y!.toArray()).toEqual([12]);
  });

  test('backward({ inputs }) accumulates into a non-leaf input too', () => {
    const x = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const h = x.mul(2);
    h.mul(h).sum().backward(undefined, { inputs: [h] });
    expect(h.grad!.toArray()).toEqual([4, 8]);
    expect(x.grad).toBeNull();
  });
});

describe('hooks', () => {
  test('registerHook can replace a gradient, on leaves and non-leaves', () => {
    const x = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const h = x.mul(3);
    const seen: number[][] = [];
    h.registerHook((g) => {
      seen.push(g.toArray() as number[]);
      return g.mul(10);
    });
    x.registerHook((g) => g.add(1));
    h.sum().backward();
    expect(seen).toEqual([[1, 1]]);
    expect(x.grad!.toArray()).toEqual([31, 31]);
  });

  test('a removed hook no longer runs', () => {
    const x = tensor([1], { requiresGrad: true });
    const remove = x.registerHook((g) => g.mul(100));
    remove();
    x.mul(2).sum().backward();
    expect(x.grad!.toArray()).toEqual([2]);
  });

  test('post-accumulate-grad hooks run after .grad is set, once per backward, with the total', () => {
    const w = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const calls: number[][] = [];
    w.registerPostAccumulateGradHook((p) => {
      calls.push(p.grad!.toArray() as number[]);
      p.grad = null; // LOMO frees each gradient right after using it
    });
    w.mul(2).add(w.mul(w)).sum().backward(); // d/dw = 2 + 2w
    expect(calls).toEqual([[4, 6]]);
    expect(w.grad).toBeNull();
    expect(() => w.mul(2).registerPostAccumulateGradHook(() => undefined)).toThrow(AutogradError);
  });

  test('retainGrad keeps a non-leaf gradient', () => {
    const x = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const h = x.mul(2).retainGrad();
    h.mul(h).sum().backward();
    expect(h.grad!.toArray()).toEqual([4, 8]);
  });
});

describe('leaf gradients do not alias', () => {
  test('two leaves that receive the same upstream gradient get separate storage', () => {
    const a = tensor([1, 2], { requiresGrad: true });
    const b = tensor([3, 4], { requiresGrad: true });
    a.add(b).sum().backward();
    expect(a.grad!.buffer).not.toBe(b.grad!.buffer);
    expect(a.grad!.toArray()).toEqual([1, 1]);
    expect(b.grad!.toArray()).toEqual([1, 1]);
  });
});

describe('review regressions', () => {
  test('a retained gradient and a leaf gradient are never the same object', () => {
    const a = tensor([1, 2, 3], { requiresGrad: true });
    const y = a.mul(1).retainGrad();
    y.sum().backward();
    expect(a.grad).not.toBe(y.grad);
    a.grad!.dispose();
    expect(y.grad!.toArray()).toEqual([1, 1, 1]);
  });

  test('a gradient a hook has seen is not handed to a leaf', () => {
    const x = tensor([1, 2], { requiresGrad: true });
    const seen: Tensor[] = [];
    x.registerHook((g) => void seen.push(g));
    x.mul(3).sum().backward();
    expect(x.grad).not.toBe(seen[0]);
    x.grad!.dispose();
    expect(seen[0].toArray()).toEqual([3, 3]);
  });

  test('a tensor saved for backward and modified in place since is refused, changing nothing', () => {
    const w = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const x = tensor([1, 1, 1], { dtype: 'float64', requiresGrad: true });
    const y = w.mul(x).sum(); // saves x for w's gradient and w for x's
    noGrad(() => x.copy_(tensor([5, 5, 5], { dtype: 'float64' })));
    expect(() => y.backward()).toThrow(/modified in place/);
    expect(w.grad).toBeNull();
    expect(x.grad).toBeNull();
  });

  test('a backward through a freed graph throws before accumulating anything', () => {
    const w = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const h = w.mul(w);
    const y = h.sum().add(w.sum());
    h.sum().backward(); // frees h's node
    w.grad = null;
    expect(() => y.backward()).toThrow(/second time/);
    expect(w.grad).toBeNull();
  });

  test('mul keeps only the operand a needed gradient reads', () => {
    const x = randn([64, 64], { requiresGrad: true });
    const { report } = profile(() => x.mul(0.125)); // scaling by a constant: x itself is not needed
    expect(report.savedBytes).toBeLessThan(64);
  });

  test('second derivatives of gelu and silu', () => {
    for (const f of [(t: Tensor) => t.gelu(), (t: Tensor) => t.silu()]) {
      const x = tensor([0.3, -1.2, 2], { dtype: 'float64', requiresGrad: true });
      const [d] = grad(f(x).mul(x).sum(), [x], { createGraph: true });
      const [d2] = grad(d!.sum(), [x]);
      const firstAt = (v: number) => {
        const t = tensor([v], { dtype: 'float64', requiresGrad: true });
        return grad(f(t).mul(t).sum(), [t])[0]!.item();
      };
      const numeric = [0.3, -1.2, 2].map((v) => (firstAt(v + 1e-5) - firstAt(v - 1e-5)) / 2e-5);
      (d2!.toArray() as number[]).forEach((v, i) => expect(v).toBeCloseTo(numeric[i], 6));
    }
  });

  test('float16: a number operand keeps its precision and means do not overflow', () => {
    const x = tensor([1000, 30000], { dtype: 'float16' });
    expect(x.div(1e5).toArray()).toEqual([f16round(0.01), f16round(0.3)]);
    const tens = full([10000], 10, { dtype: 'float16' });
    expect(tens.mean().item()).toBe(10);
    expect(tens.var().item()).toBe(0);
  });

  test('a float16 non-leaf used in a float32 op gets a float16 gradient', () => {
    const w = tensor([1, 2], { dtype: 'float16', requiresGrad: true });
    const h = w.mul(2);
    h.retainGrad();
    h.mul(tensor([1, 1])).sum().backward();
    expect(h.grad!.dtype).toBe('float16');
    expect(w.grad!.dtype).toBe('float16');
  });
});
