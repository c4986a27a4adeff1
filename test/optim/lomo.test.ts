/**
 * LOMO: fused SGD in backward. Its updates equal plain SGD (and SGD after clipGradNorm /
 * clipGradValue) on the same model and batch, bit for bit in float64 and float32; at most one
 * parameter's gradient is alive during its backward (measured with memory.stats); dispose()
 * removes the hooks; bad options are errors.
 */
import { Generator, LOMO, SGD, Tensor, ValueError, AutogradError, clipGradNorm, clipGradValue, memory, mseLoss, mul, nn, randn, type DType } from '../../src';
import { flat } from '../helpers';

/** A small MLP: 0.weight [7,5], 0.bias [7], 2.weight [3,7], 2.bias [3]; the same seed gives the same weights. */
function mlp(dtype: DType = 'float64', seed = 3): nn.Sequential {
  const gen = new Generator(seed);
  return new nn.Sequential(new nn.Linear(5, 7, { dtype, generator: gen }), new nn.SiLU(), new nn.Linear(7, 3, { dtype, generator: gen }));
}

function batch(t: number, dtype: DType = 'float64'): [Tensor, Tensor] {
  const gen = new Generator(1000 + t);
  return [randn([6, 5], { dtype, generator: gen }), randn([6, 3], { dtype, generator: gen })];
}

const lossOf = (m: nn.Sequential, t: number, dtype: DType = 'float64') => {
  const [x, y] = batch(t, dtype);
  return mseLoss(m.forward(x), y);
};

const weights = (m: nn.Module) => m.parameters().map(flat);

/** The same steps with SGD: backward, optional clipping, step. */
function sgdRun(steps: number, options: { lr: number; weightDecay?: number; clipNorm?: number; clipValue?: number }, dtype: DType = 'float64') {
  const m = mlp(dtype);
  const opt = new SGD(m.parameters(), { lr: options.lr, weightDecay: options.weightDecay ?? 0 });
  const norms: number[] = [];
  for (let t = 0; t < steps; t++) {
    opt.zeroGrad();
    lossOf(m, t, dtype).backward();
    if (options.clipValue !== undefined) clipGradValue(m.parameters(), options.clipValue);
    if (options.clipNorm !== undefined) norms.push(clipGradNorm(m.parameters(), options.clipNorm));
    opt.step();
  }
  return { weights: weights(m), norms };
}

function lomoRun(steps: number, options: ConstructorParameters<typeof LOMO>[1], dtype: DType = 'float64') {
  const m = mlp(dtype);
  const lomo = new LOMO(m, options);
  const norms: (number | null)[] = [];
  for (let t = 0; t < steps; t++) {
    lomo.fusedBackward(lossOf(m, t, dtype));
    norms.push(lomo.gradNorm);
    expect(m.parameters().every((p) => p.grad === null)).toBe(true);
  }
  lomo.dispose();
  return { weights: weights(m), norms, lomo };
}

describe('LOMO equals SGD on the same model and batches', () => {
  test('no clipping, float64: bit for bit over 4 steps', () => {
    const a = lomoRun(4, { lr: 0.05 });
    const b = sgdRun(4, { lr: 0.05 });
    expect(a.weights).toEqual(b.weights);
    // and the weights did move
    expect(a.weights).not.toEqual(weights(mlp()));
  });

  test('weight decay 0.1, float64 and float32: bit for bit', () => {
    expect(lomoRun(3, { lr: 0.05, weightDecay: 0.1 }).weights).toEqual(sgdRun(3, { lr: 0.05, weightDecay: 0.1 }).weights);
    expect(lomoRun(3, { lr: 0.05, weightDecay: 0.1 }, 'float32').weights).toEqual(sgdRun(3, { lr: 0.05, weightDecay: 0.1 }, 'float32').weights);
  });

  test('clipGradNorm (active): equals clipGradNorm then SGD, with the same norm, bit for bit', () => {
    const a = lomoRun(3, { lr: 0.05, clipGradNorm: 0.1 });
    const b = sgdRun(3, { lr: 0.05, clipNorm: 0.1 });
    expect(a.norms).toEqual(b.norms);
    expect(b.norms.every((n) => n > 0.1)).toBe(true); // the clip really scaled the gradients
    expect(a.weights).toEqual(b.weights);
    expect(a.lomo.clipCoef).toBeLessThan(1);
  });

  test('clipGradNorm above the norm changes nothing: equals plain SGD', () => {
    const a = lomoRun(2, { lr: 0.05, clipGradNorm: 1e6 });
    expect(a.lomo.clipCoef).toBe(1);
    expect(a.weights).toEqual(sgdRun(2, { lr: 0.05 }).weights);
  });

  test('clipGradValue: equals clipGradValue then SGD', () => {
    expect(lomoRun(3, { lr: 0.05, clipGradValue: 0.05 }).weights).toEqual(sgdRun(3, { lr: 0.05, clipValue: 0.05 }).weights);
  });

  test('the learning rate is read from paramGroups[0].lr at each step (schedulers work)', () => {
    const m = mlp();
    const lomo = new LOMO(m, { lr: 0.05 });
    lomo.fusedBackward(lossOf(m, 0));
    lomo.paramGroups[0].lr = 0.01;
    lomo.fusedBackward(lossOf(m, 1));
    const ref = mlp();
    const opt = new SGD(ref.parameters(), { lr: 0.05 });
    lossOf(ref, 0).backward();
    opt.step();
    opt.zeroGrad();
    opt.paramGroups[0].lr = 0.01;
    lossOf(ref, 1).backward();
    opt.step();
    expect(weights(m)).toEqual(weights(ref));
  });
});

describe('LOMO keeps at most one parameter gradient alive', () => {
  const bytesOf = (p: Tensor) => p.numel * (p.dtype === 'float64' ? 8 : p.dtype === 'float32' ? 4 : 2);

  test.each([
    ['without clipping', {}],
    ['with clipGradNorm (two passes)', { clipGradNorm: 0.1 }],
  ])('%s: peak live gradient bytes = the largest parameter, not the sum', (_, extra) => {
    const m = mlp('float32');
    const sizes = m.parameters().map(bytesOf);
    const lomo = new LOMO(m, { lr: 0.01, ...extra });
    const before = memory.stats().byCategory.grads;
    lomo.fusedBackward(lossOf(m, 0, 'float32'));
    expect(lomo.updatedCount).toBe(4);
    expect(lomo.peakLiveGradBytes).toBeLessThanOrEqual(Math.max(...sizes));
    expect(lomo.peakLiveGradBytes).toBe(Math.max(...sizes)); // the largest one was measured alive in its hook
    expect(memory.stats().byCategory.grads).toBe(before); // none left behind
    lomo.dispose();

    // against a plain backward, where every gradient is alive at the end
    const plain = mlp('float32');
    lossOf(plain, 0, 'float32').backward();
    expect(memory.stats().byCategory.grads - before).toBe(sizes.reduce((s, x) => s + x, 0));
    plain.zeroGrad();
  });
});

describe('LOMO frees its temporaries', () => {
  /** Bytes of 'other' storage (op outputs) still live after the backward, above a baseline taken just before it. */
  function otherLeftBy(dtype: DType, run: (m: nn.Sequential, loss: Tensor) => void): number {
    const m = mlp(dtype);
    const loss = lossOf(m, 0, dtype);
    const before = memory.stats().byCategory.other;
    run(m, loss);
    return memory.stats().byCategory.other - before;
  }

  // Tests are synchronous, so no finalizer runs: bytes left in 'other' were not disposed. A plain
  // backward leaves the engine's own intermediates; the fused updates must add nothing to them.
  // (clipGradNorm is left out: its norm pass is a second backward, and sum()'s internal row view
  // keeps each squared gradient's storage until the garbage collector runs.)
  test.each(['float16', 'bfloat16', 'float32', 'float64'] as DType[])('%s: a fused backward leaves exactly what a plain backward leaves', (dtype) => {
    const plain = otherLeftBy(dtype, (_, loss) => loss.backward());
    for (const options of [{ lr: 0.05 }, { lr: 0.05, weightDecay: 0.1, clipGradValue: 0.5 }]) {
      let lomo: LOMO | null = null;
      const fused = otherLeftBy(dtype, (m, loss) => {
        lomo = new LOMO(m, options);
        lomo.fusedBackward(loss);
      });
      (lomo as LOMO | null)?.dispose();
      expect(fused).toBe(plain);
    }
  });
});

describe('LOMO hooks', () => {
  test('act only inside fusedBackward; dispose() removes them', () => {
    const m = mlp();
    const w0 = weights(m);
    const lomo = new LOMO(m, { lr: 0.1 });
    for (const p of m.parameters()) expect((p as unknown as { postAccumulateHooks: unknown[] }).postAccumulateHooks).toHaveLength(1);
    // a plain backward accumulates gradients and leaves the weights alone
    lossOf(m, 0).backward();
    expect(weights(m)).toEqual(w0);
    expect(m.parameters().every((p) => p.grad !== null)).toBe(true);
    // stale gradients are refused by fusedBackward
    expect(() => lomo.fusedBackward(lossOf(m, 0))).toThrow(/already has a gradient/);
    expect(weights(m)).toEqual(w0);
    lomo.zeroGrad();
    lomo.dispose();
    for (const p of m.parameters()) expect((p as unknown as { postAccumulateHooks: unknown[] }).postAccumulateHooks).toHaveLength(0);
    expect(lomo.isDisposed).toBe(true);
    expect(() => lomo.fusedBackward(lossOf(m, 0))).toThrow(/disposed/);
    // after dispose a backward is an ordinary one
    lossOf(m, 0).backward();
    expect(weights(m)).toEqual(w0);
    expect(m.parameters().every((p) => p.grad !== null)).toBe(true);
  });

  test('frozen parameters are left alone', () => {
    const m = mlp();
    const [w, b] = m.parameters();
    w.requiresGrad_(false);
    const w0 = flat(w);
    const b0 = flat(b);
    const lomo = new LOMO(m, { lr: 0.1 });
    expect(lomo.parameters()).toHaveLength(3);
    lomo.fusedBackward(lossOf(m, 0));
    expect(flat(w)).toEqual(w0);
    expect(flat(b)).not.toEqual(b0);
    lomo.dispose();
  });

  test('a non-finite gradient norm is an error before any parameter changes', () => {
    const m = mlp();
    const w0 = weights(m);
    const lomo = new LOMO(m, { lr: 0.1, clipGradNorm: 1 });
    expect(() => lomo.fusedBackward(mul(lossOf(m, 0), NaN))).toThrow(ValueError);
    expect(weights(m)).toEqual(w0);
    expect(m.parameters().every((p) => p.grad === null)).toBe(true);
    lomo.dispose();
  });
});

describe('LOMO errors', () => {
  test('no trainable parameters, an empty list, a single tensor', () => {
    const m = mlp().requiresGrad_(false);
    expect(() => new LOMO(m, { lr: 0.1 })).toThrow(/none of the 4 parameters requires grad/);
    expect(() => new LOMO([], { lr: 0.1 })).toThrow(/empty/);
    expect(() => new LOMO(mlp().parameters()[0] as unknown as Tensor[], { lr: 0.1 })).toThrow(ValueError);
  });

  test.each([-1, NaN, Infinity, '0.1', undefined])('bad lr %p', (lr) => {
    expect(() => new LOMO(mlp(), { lr } as unknown as { lr: number })).toThrow(/invalid learning rate/);
  });

  test('bad clipping, weight decay, unknown options; setting a bad lr', () => {
    expect(() => new LOMO(mlp(), { lr: 0.1, clipGradNorm: 0 })).toThrow(/clipGradNorm/);
    expect(() => new LOMO(mlp(), { lr: 0.1, clipGradValue: -1 })).toThrow(/clipGradValue/);
    expect(() => new LOMO(mlp(), { lr: 0.1, weightDecay: -1 })).toThrow(/weightDecay/);
    expect(() => new LOMO(mlp(), { lr: 0.1, momentum: 0.9 } as unknown as { lr: number })).toThrow(/unknown option 'momentum'/);
    const lomo = new LOMO(mlp(), { lr: 0.1 });
    expect(() => {
      lomo.lr = -0.5;
    }).toThrow(/invalid learning rate/);
    expect(lomo.lr).toBe(0.1);
    lomo.dispose();
  });

  test('a loss that does not require grad', () => {
    const lomo = new LOMO(mlp(), { lr: 0.1 });
    expect(() => lomo.fusedBackward(randn([1]))).toThrow(AutogradError);
    lomo.dispose();
  });
});
