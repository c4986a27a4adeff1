/**
 * GradScaler, dynamic loss scaling for float16 models. The loss below is float32 (as a Llama's
 * cross-entropy is) over float16 parameters, with a coefficient so small (1e-9) that the float16
 * gradients underflow to zero: without scaling nothing trains, with it every optimizer trains
 * (BAdam's BlockOptimizer, MixedPrecisionOptimizer over Adam, LOMO). Steps whose scaled gradients
 * overflow are skipped exactly (weights, BAdam's schedule and Adam's step count untouched), the
 * scale halves at each and doubles after growthInterval clean steps, as torch.amp.GradScaler.
 */
import { Adam, BlockOptimizer, BlockOptimizerRatio, GradScaler, LOMO, MixedPrecisionOptimizer, ValueError, cast, tensor, tidy, type Tensor } from '../../src';

const TINY = 1e-9;

function params(): [string, Tensor][] {
  return [0, 1].map((l): [string, Tensor] => [`layers.${l}.weight`, tensor([0.5, -0.25, 0.125, 1], { dtype: 'float16', requiresGrad: true })]);
}

/** A float32 loss whose gradient with respect to each float16 weight is `factor`·1e-9·(i + 1). */
function loss(named: [string, Tensor][], factor = 1): Tensor {
  const c = tensor([1, 2, 3, 4].map((k) => k * TINY * factor), { dtype: 'float32' });
  return named.map(([, p]) => cast(p, 'float32').mul(c).sum()).reduce((a, b) => a.add(b));
}

const values = (named: [string, Tensor][]) => named.map(([, p]) => Array.from(p.toTypedArray() as ArrayLike<number>));

describe('gradients that underflow in float16', () => {
  test('without a scaler they are zero and nothing trains; with one they arrive, unscaled in float32', () => {
    const plain = params();
    const before = values(plain);
    const opt = new BlockOptimizer(plain, new Adam(plain.map(([, p]) => p), { lr: 1e-2 }), { switchEvery: 2, switchMode: 'ascending', verbose: 0 });
    tidy(() => loss(plain).backward());
    expect(Array.from(plain[0][1].grad?.toTypedArray() as ArrayLike<number>)).toEqual([0, 0, 0, 0]); // underflowed
    opt.step();
    expect(values(plain)).toEqual(before);

    const scaled = params();
    const scaler = new GradScaler();
    const opt2 = new BlockOptimizer(scaled, new Adam(scaled.map(([, p]) => p), { lr: 1e-2 }), { switchEvery: 2, switchMode: 'ascending', verbose: 0 });
    tidy(() => scaler.scale(loss(scaled)).backward());
    scaler.unscale_(opt2);
    const g = scaled[0][1].grad as Tensor;
    expect(g.dtype).toBe('float32');
    Array.from(g.toTypedArray() as Float32Array).forEach((x, i) => expect(Math.abs(x / ((i + 1) * TINY) - 1)).toBeLessThan(1e-3)); // float16's precision of the scaled value
    expect(scaler.step(opt2)).toBe(true);
    scaler.update();
    expect(values(scaled)[0]).not.toEqual(before[0]); // block 0 trained
    expect(values(scaled)[1]).toEqual(before[1]); // block 1 was not active
  });

  test('MixedPrecisionOptimizer over Adam trains with the scaler, and not without', () => {
    for (const useScaler of [false, true]) {
      const named = params();
      const before = values(named);
      const opt = new MixedPrecisionOptimizer(new Adam(named.map(([, p]) => p), { lr: 1e-2 }));
      const scaler = new GradScaler({ enabled: useScaler });
      for (let s = 0; s < 3; s++) {
        opt.zeroGrad();
        tidy(() => scaler.scale(loss(named)).backward());
        scaler.step(opt);
        scaler.update();
      }
      if (useScaler) expect(values(named)).not.toEqual(before);
      else expect(values(named)).toEqual(before);
    }
  });

  test('LOMO: lossScaler lets the fused update see the gradients', () => {
    for (const useScaler of [false, true]) {
      const named = params();
      const before = values(named);
      const scaler = new GradScaler();
      const lomo = new LOMO(named, { lr: 1e6, ...(useScaler ? { lossScaler: scaler } : {}) });
      tidy(() => lomo.fusedBackward(loss(named)));
      scaler.update();
      if (useScaler) expect(values(named)).not.toEqual(before);
      else expect(values(named)).toEqual(before);
      expect(lomo.skipped).toBe(false);
    }
  });
});

describe('overflow', () => {
  /** Steps whose loss is multiplied by 1e30, so that the scaled float16 gradients are inf. */
  const OVERFLOW = new Set([2, 5]);

  test('BlockOptimizer: exactly the overflowed steps are skipped; the scale backs off and grows', () => {
    const named = params();
    const scaler = new GradScaler({ growthInterval: 2 });
    const opt = new BlockOptimizer(named, new Adam(named.map(([, p]) => p), { lr: 1e-2 }), { switchEvery: 100, verbose: 0 });
    const scales: number[] = [];
    const stepped: boolean[] = [];
    let previous = values(named);
    for (let s = 0; s < 8; s++) {
      opt.zeroGrad();
      tidy(() => scaler.scale(loss(named, OVERFLOW.has(s) ? 1e30 : 1)).backward());
      stepped.push(scaler.step(opt));
      scaler.update();
      scales.push(scaler.getScale());
      const now = values(named);
      if (OVERFLOW.has(s)) expect(now).toEqual(previous); // nothing moved
      else expect(now).not.toEqual(previous);
      previous = now;
    }
    expect(stepped).toEqual([true, true, false, true, true, false, true, true]);
    expect(scaler.skippedSteps).toBe(2);
    expect(opt.globalStep).toBe(6);
    // 2^16; two clean steps: x2; overflow: /2; two clean: x2; overflow: /2; two clean: x2
    expect(scales).toEqual([2 ** 16, 2 ** 17, 2 ** 16, 2 ** 16, 2 ** 17, 2 ** 16, 2 ** 16, 2 ** 17]);
  });

  test('LOMO: an overflowed fused backward updates nothing and is counted', () => {
    const named = params();
    const scaler = new GradScaler();
    const lomo = new LOMO(named, { lr: 1e6, lossScaler: scaler });
    const before = values(named);
    tidy(() => lomo.fusedBackward(loss(named, 1e30)));
    expect(lomo.skipped).toBe(true);
    expect(lomo.updatedCount).toBe(0);
    expect(values(named)).toEqual(before);
    expect(named.every(([, p]) => p.grad === null)).toBe(true);
    scaler.update();
    expect(scaler.getScale()).toBe(2 ** 15);
    expect(scaler.skippedSteps).toBe(1);
  });
});

describe('state and errors', () => {
  test('the state dict carries the scale and the growth counter', () => {
    const a = new GradScaler({ growthInterval: 3 });
    const named = params();
    const opt = new MixedPrecisionOptimizer(new Adam(named.map(([, p]) => p)));
    for (let s = 0; s < 2; s++) {
      opt.zeroGrad();
      tidy(() => a.scale(loss(named)).backward());
      a.step(opt);
      a.update();
    }
    const b = new GradScaler({ growthInterval: 3 });
    b.loadStateDict(a.stateDict());
    expect(b.stateDict()).toEqual({ scale: 2 ** 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3, growthTracker: 2, skippedSteps: 0 });
    expect(() => new GradScaler({ growthInterval: 5 }).loadStateDict(a.stateDict())).toThrow(/GradScaler.loadStateDict: growthInterval is 3 in the state dict but 5 here/);
  });

  test('a second step before update() is an error (its gradients would be used still scaled); a ratio-mode optimizer is refused', () => {
    const named = params();
    const opt = new MixedPrecisionOptimizer(new Adam(named.map(([, p]) => p)));
    const scaler = new GradScaler();
    tidy(() => scaler.scale(loss(named)).backward());
    scaler.step(opt);
    tidy(() => scaler.scale(loss(named)).backward());
    expect(() => scaler.step(opt)).toThrow(/GradScaler.step: step\(\) was already called for this optimizer since the last update\(\)/);
    const ratio = new BlockOptimizerRatio(params(), { verbose: 0 });
    expect(() => new GradScaler().unscale_(ratio)).toThrow(/BlockOptimizerRatio keeps packed gradients/);
    expect(() => new GradScaler().loadStateDict({ ...scaler.stateDict(), skippedSteps: -3 })).toThrow(/skippedSteps must be an integer >= 0/);
  });

  test('bad options and a second unscale_ are errors', () => {
    expect(() => new GradScaler({ initScale: 0 })).toThrow(ValueError);
    expect(() => new GradScaler({ backoffFactor: 1 })).toThrow(/backoffFactor must be in \(0, 1\)/);
    const named = params();
    const opt = new MixedPrecisionOptimizer(new Adam(named.map(([, p]) => p)));
    const scaler = new GradScaler();
    tidy(() => scaler.scale(loss(named)).backward());
    scaler.unscale_(opt);
    expect(() => scaler.unscale_(opt)).toThrow(/unscale_ was already called for this optimizer since the last update\(\)/);
  });
});
