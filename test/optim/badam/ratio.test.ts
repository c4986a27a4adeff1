/**
 * BlockOptimizerRatio (BAdam's ratio variant): mask sizes and positions ('adjacent' with its
 * wrap-around worked by hand, 'scatter' seeded, sorted, without duplicates, covering every
 * entry), dense small parameters, optimizer memory of exactly 2·4·k bytes per float32
 * parameter, unselected entries unchanged bit for bit, selected entries equal to a plain-JS
 * float64 Adam on the k-vector, the moment reset at a switch, resume from a state dict bit for
 * bit, events, and the construction errors.
 */
import {
  tidy,
  BlockOptimizerRatio,
  Generator,
  Tensor,
  ValueError,
  memory,
  mseLoss,
  nn,
  randn,
  ratioMaskIndices,
  selectedCount,
  stateFromJSON,
  stateToJSON,
  tensor,
  type BlockOptimizerRatioOptions,
  type DType,
  type RatioMaskEvent,
} from '../../../src';
import { flat } from '../../helpers';
import { roundToFloat16 } from '../../../src/tensor/float16';
import { adamRef, expectRel } from '../reference';

const quiet = { verbose: 0 } as const;

/** One named parameter of `n` entries (float64 by default) with a deterministic gradient setter. */
function single(n: number, dtype: DType = 'float64', seed = 7) {
  const w = randn([n], { dtype, generator: new Generator(seed), requiresGrad: true });
  const setGrad = (t: number) => {
    w.grad = randn([n], { dtype, generator: new Generator(500 + t) });
  };
  return { w, pairs: [['w', w]] as [string, Tensor][], setGrad };
}

/** 0.weight [16,12] (192), 0.bias [16], 2.weight [4,16] (64), 2.bias [4]. */
function mlp(dtype: DType = 'float64', seed = 3): nn.Sequential {
  const gen = new Generator(seed);
  return new nn.Sequential(new nn.Linear(12, 16, { dtype, generator: gen }), new nn.SiLU(), new nn.Linear(16, 4, { dtype, generator: gen }));
}

function lossOf(m: nn.Sequential, t: number, dtype: DType = 'float64'): Tensor {
  const gen = new Generator(900 + t);
  const x = randn([5, 12], { dtype, generator: gen });
  const y = randn([5, 4], { dtype, generator: gen });
  return mseLoss(m.forward(x), y);
}

const bitsOf = (t: Tensor) => Array.from(new Uint32Array(Float64Array.from(flat(t)).buffer));

describe('mask sizes and positions', () => {
  test('k = ceil(ratio·n), with integer products kept', () => {
    expect(selectedCount(0.3, 10)).toBe(3);
    expect(selectedCount(0.25, 10)).toBe(3); // ceil(2.5)
    expect(selectedCount(0.7, 10)).toBe(7); // 0.7·10 = 7.000000000000001 in floating point
    expect(selectedCount(0.001, 10)).toBe(1);
    expect(selectedCount(1, 10)).toBe(10);
  });

  test("'adjacent': n = 10, ratio 0.3 (k = 3): starts 0, 3, 6, 9 (wrapping to {9, 0, 1}), 2", () => {
    const { pairs, setGrad } = single(10);
    const opt = new BlockOptimizerRatio(pairs, { ...quiet, updateRatio: 0.3, switchEvery: 1, preserveThreshold: 0, lr: 0.1 });
    const seen: number[][] = [];
    const offsets: number[] = [];
    for (let t = 0; t < 5; t++) {
      seen.push(opt.maskIndices('w'));
      offsets.push(opt.masks()[0].offset);
      setGrad(t);
      opt.step();
    }
    expect(offsets).toEqual([0, 3, 6, 9, 2]);
    expect(seen).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
      [0, 1, 9],
      [2, 3, 4],
    ]);
    expect(opt.switchCount).toBe(5);
  });

  test("'scatter': seeded, reproducible, sorted, no duplicates; a window of the parameter's permutation", () => {
    const n = 40;
    const k = 10;
    const masksOf = (seed: number) => {
      const { pairs, setGrad } = single(n);
      const opt = new BlockOptimizerRatio(pairs, { ...quiet, maskMode: 'scatter', updateRatio: 0.25, switchEvery: 1, preserveThreshold: 0, seed });
      const out: number[][] = [];
      for (let t = 0; t < 5; t++) {
        out.push(opt.maskIndices('w'));
        setGrad(t);
        opt.step();
      }
      return out;
    };
    const a = masksOf(11);
    expect(masksOf(11)).toEqual(a);
    expect(masksOf(12)).not.toEqual(a);
    // the per-parameter permutation seed is the first draw of Generator(seed)
    const perm = new Generator(new Generator(11).nextUint32()).permutation(n);
    a.forEach((mask, s) => {
      expect(mask).toHaveLength(k);
      expect(new Set(mask).size).toBe(k);
      expect(mask).toEqual([...mask].sort((x, y) => x - y));
      expect(mask.every((i) => Number.isInteger(i) && i >= 0 && i < n)).toBe(true);
      const expected = Array.from({ length: k }, (_, j) => perm[(s * k + j) % n]).sort((x, y) => x - y);
      expect(mask).toEqual(expected);
    });
    // four switches cover every entry exactly once, the fifth starts over
    expect(a.slice(0, 4).flat().sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(a[4]).toEqual(a[0]);
    // a mask that wraps around the permutation has no duplicates either
    const wrapped = Array.from(ratioMaskIndices('scatter', 10, 4, 8, 5));
    expect(new Set(wrapped).size).toBe(4);
  });

  test('parameters below preserveThreshold (and ratio 1) are dense; paramRatios override by prefix, the longest wins', () => {
    const m = mlp();
    const opt = new BlockOptimizerRatio(m, { ...quiet, updateRatio: 0.1, paramRatios: { '2.': 0.5, '2.weight': 0.25 } });
    const masks = Object.fromEntries(opt.masks().map((x) => [x.name, x]));
    expect(masks['0.weight']).toMatchObject({ numel: 192, k: 20, dense: false });
    expect(masks['0.bias']).toMatchObject({ numel: 16, k: 16, dense: true });
    expect(masks['2.weight']).toMatchObject({ numel: 64, k: 64, dense: true }); // 64 < 100
    expect(opt.maskIndices('0.bias')).toEqual(Array.from({ length: 16 }, (_, i) => i));
    const low = new BlockOptimizerRatio(mlp(), { ...quiet, preserveThreshold: 3, paramRatios: { '2.': 0.5, '2.weight': 0.25, '0.weight': 1 } });
    const m2 = Object.fromEntries(low.masks().map((x) => [x.name, x]));
    expect(m2['2.weight']).toMatchObject({ k: 16, dense: false }); // the longer key '2.weight' wins
    expect(m2['2.bias']).toMatchObject({ k: 2, dense: false }); // '2.' applies: ceil(0.5·4)
    expect(m2['0.bias']).toMatchObject({ k: 2, dense: false }); // the default 0.1: ceil(1.6)
    expect(m2['0.weight']).toMatchObject({ k: 192, dense: true }); // ratio 1
  });

  test('a dense parameter gets the full Adam update on every entry', () => {
    const { w, pairs, setGrad } = single(20);
    const x = flat(w);
    const ref = adamRef({ lr: 0.1, decoupled: true });
    const opt = new BlockOptimizerRatio(pairs, { ...quiet, lr: 0.1 });
    for (let t = 0; t < 3; t++) {
      setGrad(t);
      ref(x, flat(w.grad as Tensor));
      opt.step();
    }
    expectRel(flat(w), x, 1e-12);
  });
});

describe('the update on the selected entries', () => {
  test.each(['adjacent', 'scatter'] as const)('%s: unselected entries never change (bit for bit); selected ones follow a float64 JS Adam on the k-vector', (maskMode) => {
    const n = 50;
    const { w, pairs, setGrad } = single(n);
    const h = { lr: 0.05, betas: [0.8, 0.99] as [number, number], eps: 1e-6, weightDecay: 0.1 };
    // decayAllParameters: 'w' is 1-D, which would get no weight decay by default
    const opt = new BlockOptimizerRatio(pairs, { ...quiet, ...h, maskMode, updateRatio: 0.3, switchEvery: 4, preserveThreshold: 0, seed: 2, decayAllParameters: true });
    // k = 15: periods start at 0, 15, 30 and 45, the last wrapping around ({45..49} and {0..9})
    for (let period = 0; period < 4; period++) {
      const idx = opt.maskIndices('w');
      expect(idx).toHaveLength(15);
      const ref = adamRef({ ...h, decoupled: true });
      const k = idx.map((i) => flat(w)[i]);
      for (let t = 0; t < 4; t++) {
        const before = bitsOf(w);
        setGrad(period * 4 + t);
        const g = flat(w.grad as Tensor);
        ref(k, idx.map((i) => g[i]));
        opt.step();
        const after = bitsOf(w);
        const selected = new Set(idx);
        for (let i = 0; i < n; i++) {
          if (selected.has(i)) continue;
          // both 32-bit halves of the float64 are unchanged
          expect([after[2 * i], after[2 * i + 1]]).toEqual([before[2 * i], before[2 * i + 1]]);
        }
        expectRel(idx.map((i) => flat(w)[i]), k, 1e-12, `period ${period} step ${t}`);
      }
    }
    expect(opt.switchCount).toBe(4);
  });

  test("'adjacent' wrap-around period: the two ranges are updated, the middle is not", () => {
    const { w, pairs, setGrad } = single(10);
    const opt = new BlockOptimizerRatio(pairs, { ...quiet, updateRatio: 0.4, switchEvery: 1, preserveThreshold: 0, lr: 0.1 });
    for (let t = 0; t < 2; t++) {
      setGrad(t);
      opt.step();
    }
    expect(opt.maskIndices('w')).toEqual([0, 1, 8, 9]); // start 8, k 4
    const before = flat(w);
    setGrad(2);
    opt.step();
    const after = flat(w);
    const changed = after.map((v, i) => v !== before[i]);
    expect(changed).toEqual([true, true, false, false, false, false, false, false, true, true]);
  });

  test('float16 parameters: moments in float32, unselected bits unchanged', () => {
    const { w, pairs, setGrad } = single(200, 'float16');
    const opt = new BlockOptimizerRatio(pairs, { ...quiet, lr: 0.01, updateRatio: 0.1 });
    const before = Array.from(w.toTypedArray() as ArrayLike<number>);
    setGrad(0);
    opt.step();
    const after = Array.from(w.toTypedArray() as ArrayLike<number>);
    const idx = new Set(opt.maskIndices('w'));
    after.forEach((v, i) => {
      if (!idx.has(i)) expect(Object.is(v, before[i])).toBe(true);
    });
    expect(after.filter((v, i) => idx.has(i) && v !== before[i]).length).toBeGreaterThan(0);
    expect(opt.paramState('w').dtype).toBe('float32');
  });
});

describe('optimizer state: k floats per moment, reset at every switch', () => {
  test.each(['adjacent', 'scatter'] as const)('%s: optimizer bytes = Σ 2·4·k over float32 parameters', (maskMode) => {
    const m = mlp('float32');
    const opt = new BlockOptimizerRatio(m, { ...quiet, maskMode, updateRatio: 0.1, preserveThreshold: 20, switchEvery: 2 });
    const ks = opt.masks().map((x) => x.k);
    expect(ks).toEqual([20, 16, 7, 4]); // 192·0.1 -> 20; 16 < 20 dense; ceil(6.4) = 7; 4 dense
    const base = memory.stats().byCategory.optimizer;
    lossOf(m, 0, 'float32').backward();
    opt.step();
    expect(memory.stats().byCategory.optimizer - base).toBe(ks.reduce((s, k) => s + 2 * 4 * k, 0));
    for (const x of opt.masks()) {
      const st = opt.paramState(x.name);
      expect([st.step, st.dtype, st.exp_avg?.length, st.exp_avg_sq?.length]).toEqual([1, 'float32', x.k, x.k]);
    }
    opt.zeroGrad();
    lossOf(m, 1, 'float32').backward();
    opt.step(); // the second step switches: the moments are released
    expect(memory.stats().byCategory.optimizer).toBe(base);
    opt.zeroGrad();
  });

  test('the first step after a switch equals a fresh Adam first step on the new k-vector', () => {
    const { w, pairs, setGrad } = single(30);
    const opt = new BlockOptimizerRatio(pairs, { ...quiet, lr: 0.1, updateRatio: 0.5, switchEvery: 2, preserveThreshold: 0 });
    for (let t = 0; t < 2; t++) {
      setGrad(t);
      opt.step();
    }
    expect(opt.paramState('w')).toEqual({ step: 0, dtype: null, exp_avg: null, exp_avg_sq: null, master: null });
    const idx = opt.maskIndices('w');
    expect(idx).toEqual(Array.from({ length: 15 }, (_, i) => 15 + i));
    const k = idx.map((i) => flat(w)[i]);
    const before = [...k];
    setGrad(2);
    const g = idx.map((i) => flat(w.grad as Tensor)[i]);
    adamRef({ lr: 0.1, decoupled: true })(k, g);
    opt.step();
    expectRel(idx.map((i) => flat(w)[i]), k, 1e-12);
    // a fresh first Adam step (m̂ = g, v̂ = g²) moves every selected entry by lr·sign(g), up to eps:
    // moments carried over from the first period would not
    idx.forEach((i, j) => expect(Math.abs(flat(w)[i] - (before[j] - 0.1 * Math.sign(g[j])))).toBeLessThan(1e-6));
    expect(opt.paramState('w').step).toBe(1);
  });
});

describe('resume from a state dict', () => {
  function run(maskMode: 'adjacent' | 'scatter', steps: number, from?: { model: nn.Sequential; state: unknown; start: number }) {
    const m = mlp();
    if (from) m.loadStateDict(from.model.stateDict());
    const options: BlockOptimizerRatioOptions = { ...quiet, maskMode, lr: 0.02, updateRatio: 0.2, preserveThreshold: 10, switchEvery: 3, seed: 9, weightDecay: 0.01 };
    const opt = new BlockOptimizerRatio(m, options);
    if (from) opt.loadStateDict(stateFromJSON(JSON.parse(JSON.stringify(from.state))));
    const start = from?.start ?? 0;
    for (let t = start; t < start + steps; t++) {
      opt.zeroGrad();
      lossOf(m, t).backward();
      opt.step();
      opt.paramGroups[0].lr *= 0.9; // a schedule: the lr travels in the state dict
    }
    return { m, opt };
  }

  test.each(['adjacent', 'scatter'] as const)('%s: 7 steps, save (mid-period, through JSON), 6 more = 13 uninterrupted, bit for bit', (maskMode) => {
    const whole = run(maskMode, 13);
    const first = run(maskMode, 7);
    const state = stateToJSON(first.opt.stateDict());
    const second = run(maskMode, 6, { model: first.m, state, start: 7 });
    expect(second.opt.stepCount).toBe(13);
    expect(second.opt.switchCount).toBe(4);
    expect(second.m.parameters().map(bitsOf)).toEqual(whole.m.parameters().map(bitsOf));
    expect(second.opt.masks()).toEqual(whole.opt.masks());
    expect(second.opt.paramGroups[0].lr).toBe(whole.opt.paramGroups[0].lr);
  });

  test('a state dict from other options is refused and nothing changes', () => {
    const a = run('adjacent', 4);
    const b = new BlockOptimizerRatio(mlp(), { ...quiet, maskMode: 'scatter', updateRatio: 0.2, preserveThreshold: 10, switchEvery: 3, seed: 9 });
    const before = b.masks();
    expect(() => b.loadStateDict(a.opt.stateDict())).toThrow(/maskMode.*Nothing was loaded/);
    const c = new BlockOptimizerRatio(mlp(), { ...quiet, updateRatio: 0.3, preserveThreshold: 10, switchEvery: 3 });
    expect(() => c.loadStateDict(a.opt.stateDict())).toThrow(/k is 39.*selects 58/);
    expect(b.masks()).toEqual(before);
    expect(b.stepCount).toBe(0);
  });
});

describe('float16 parameters train through float32 masters of the selected entries', () => {
  /** A float16 [n] parameter near 1 (ulp 2^-10 ≈ 9.8e-4) with gradients of a fixed sign per entry. */
  function nearOne(n: number) {
    const values = Array.from({ length: n }, (_, i) => 1 + (i % 8) / 1024);
    const w = tensor(values, { dtype: 'float16', requiresGrad: true });
    const setGrad = (t: number) => {
      w.grad = tensor(values.map((_, i) => (i % 2 ? 1 : -1) * (0.5 + ((i * 7 + t) % 5) / 10)), { dtype: 'float16' });
    };
    return { w, pairs: [['w', w]] as [string, Tensor][], setGrad };
  }

  test.each(['adjacent', 'scatter'] as const)('%s, lr 1e-5: the masters follow a float64 JS Adam, and the weights move once the steps add up', (maskMode) => {
    const n = 200;
    const { w, pairs, setGrad } = nearOne(n);
    const w0 = flat(w);
    const opt = new BlockOptimizerRatio(pairs, { ...quiet, maskMode, lr: 1e-5, updateRatio: 0.1, switchEvery: 1000 });
    const idx = opt.maskIndices('w');
    expect(idx).toHaveLength(20);
    const ref = adamRef({ lr: 1e-5, decoupled: true });
    const k = idx.map((i) => w0[i]);
    for (let t = 0; t < 80; t++) {
      setGrad(t);
      ref(k, idx.map((i) => flat(w.grad as Tensor)[i]));
      opt.step();
      const st = opt.paramState('w');
      // float32 masters: the float64 reference up to one float32 rounding (half an ulp, 2^-24 near
      // 1) per step, and the weights are the masters rounded
      (st.master as number[]).forEach((m, j) => expect(Math.abs(m - k[j])).toBeLessThanOrEqual((t + 1) * 2 ** -24));
      const wNow = flat(w);
      idx.forEach((i, j) => expect(wNow[i]).toBe(roundToFloat16((st.master as number[])[j])));
      if (t === 0) {
        // one step of ~1e-5 is far below half an ulp: the weights cannot show it yet, the masters do
        expect(idx.every((i) => wNow[i] === w0[i])).toBe(true);
        expect((st.master as number[]).every((m, j) => m !== w0[idx[j]])).toBe(true);
      }
    }
    // 80 steps of ~1e-5 each: every selected entry moved by one float16 ulp or more; the others never
    const after = flat(w);
    const selected = new Set(idx);
    for (let i = 0; i < n; i++) expect([i, after[i] !== w0[i]]).toEqual([i, selected.has(i)]);
  });

  test('dense float16 parameters (below preserveThreshold) have a master of all their entries', () => {
    const { w, pairs, setGrad } = nearOne(50);
    const w0 = flat(w);
    const opt = new BlockOptimizerRatio(pairs, { ...quiet, lr: 1e-5, switchEvery: 1000 });
    expect(opt.masks()[0]).toMatchObject({ dense: true, k: 50 });
    for (let t = 0; t < 80; t++) {
      setGrad(t);
      opt.step();
    }
    expect(opt.paramState('w').master).toHaveLength(50);
    expect(flat(w).every((v, i) => v !== w0[i])).toBe(true);
  });

  test("memory: 'master' holds 4·k bytes per float16 parameter from a period's first step to its switch; release() frees everything", () => {
    const m = mlp('float16');
    const base = memory.stats().byCategory;
    const opt = new BlockOptimizerRatio(m, { ...quiet, maskMode: 'scatter', updateRatio: 0.1, preserveThreshold: 20, switchEvery: 3 });
    const ks = opt.masks().map((x) => x.k);
    expect(ks).toEqual([20, 16, 7, 4]);
    const K = ks.reduce((a, b) => a + b, 0);
    const delta = () => {
      const c = memory.stats().byCategory;
      return { master: c.master - base.master, optimizer: c.optimizer - base.optimizer };
    };
    expect(delta().master).toBe(0); // nothing before the first step
    const indexBytes = 4 * (20 + 7); // the scatter masks' int32 indices (dense parameters need none)
    for (let t = 0; t < 4; t++) {
      opt.zeroGrad();
      lossOf(m, t, 'float16').backward();
      const other = memory.stats().byCategory.other;
      opt.step();
      // the step leaves no temporaries (the forward and backward leave theirs to the GC)
      expect(memory.stats().byCategory.other).toBe(other);
      // the third step switches, which frees the masters and moments; the fourth makes new ones
      const d = delta();
      expect(d.master).toBe(t === 2 ? 0 : 4 * K);
      expect(d.optimizer).toBe(t === 2 ? 0 : 8 * K);
      for (const x of opt.masks()) expect(opt.paramState(x.name).master?.length ?? 0).toBe(t === 2 ? 0 : x.k);
    }
    opt.zeroGrad();
    const indexOther = () => memory.stats().byCategory.other;
    const withIndices = indexOther();
    const masks = opt.masks().map((x) => opt.maskIndices(x.name));
    opt.release();
    expect(opt.masks().map((x) => opt.maskIndices(x.name))).toEqual(masks);
    expect(withIndices - indexOther()).toBe(indexBytes); // the scatter indices are freed too
    expect([delta().master, delta().optimizer]).toEqual([0, 0]);
    // the schedule is kept and training can go on (fresh Adam, fresh masters, rebuilt indices)
    const before = opt.maskIndices('0.weight');
    const other = indexOther();
    tidy(() => lossOf(m, 3, 'float16').backward()); // the gradient hook packs with the rebuilt indices, which outlive the scope
    opt.step();
    expect(indexOther() - other).toBe(indexBytes);
    expect(opt.maskIndices('0.weight')).toEqual(before);
    expect([delta().master, delta().optimizer]).toEqual([4 * K, 8 * K]);
    opt.zeroGrad();
    opt.release();
  });

  test('the masters travel in the state dict: a resumed float16 run equals the uninterrupted one bit for bit', () => {
    const options: BlockOptimizerRatioOptions = { ...quiet, maskMode: 'adjacent', lr: 1e-3, updateRatio: 0.2, preserveThreshold: 10, switchEvery: 4 };
    const run = (steps: number, from?: { model: nn.Sequential; state: unknown; start: number }) => {
      const m = mlp('float16');
      if (from) m.loadStateDict(from.model.stateDict());
      const opt = new BlockOptimizerRatio(m, options);
      if (from) opt.loadStateDict(stateFromJSON(JSON.parse(JSON.stringify(from.state))));
      for (let t = from?.start ?? 0; t < (from?.start ?? 0) + steps; t++) {
        opt.zeroGrad();
        lossOf(m, t, 'float16').backward();
        opt.step();
      }
      return { m, opt };
    };
    const whole = run(7);
    const first = run(5);
    const state = stateToJSON(first.opt.stateDict());
    expect(Object.values((state as { state: Record<string, { master?: unknown }> }).state).every((s) => s.master !== undefined)).toBe(true);
    const second = run(2, { model: first.m, state, start: 5 });
    expect(second.m.parameters().map(flat)).toEqual(whole.m.parameters().map(flat));
    // a master for a float32 parameter, or of the wrong size, is refused
    const sd = first.opt.stateDict();
    sd.state['0.weight'].master = tensor([1, 2, 3]);
    expect(() => second.opt.loadStateDict(sd)).toThrow(/master has 3 entries, expected k = 39.*Nothing was loaded/);
  });
});

describe('weight decay spares biases, norm weights and 1-D parameters', () => {
  test('with weightDecay, a zero gradient moves only the decayed (2-D, non-norm) parameters; decayAllParameters decays all', () => {
    const named = (): [string, Tensor][] => [
      ['layer.weight', tensor([[1, 2], [3, 4]], { dtype: 'float64', requiresGrad: true })],
      ['layer.bias', tensor([1, 2], { dtype: 'float64', requiresGrad: true })],
      ['input_layernorm.weight', tensor([[1, 1]], { dtype: 'float64', requiresGrad: true })],
      ['scale', tensor([5], { dtype: 'float64', requiresGrad: true })],
    ];
    for (const decayAllParameters of [false, true]) {
      const params = named();
      const opt = new BlockOptimizerRatio(params, { ...quiet, lr: 0.1, weightDecay: 0.5, decayAllParameters });
      expect(opt.decayAllParameters).toBe(decayAllParameters);
      for (const [, p] of params) p.grad = tensor(new Array(p.numel).fill(0), { dtype: 'float64' }).reshape(p.shape);
      const before = params.map(([, p]) => flat(p));
      opt.step();
      // decoupled decay alone: p·(1 - lr·wd) = p·0.95 (Adam's step is 0 for a zero gradient)
      const moved = params.map(([n, p], i) => [n, flat(p).every((v, j) => v === before[i][j] * 0.95)]);
      expect(moved).toEqual([
        ['layer.weight', true],
        ['layer.bias', decayAllParameters],
        ['input_layernorm.weight', decayAllParameters],
        ['scale', decayAllParameters],
      ]);
    }
  });
});

describe('zeroGrad', () => {
  test('disposes the gradients it clears (setToNone), or zeroes them in place', () => {
    const { w, pairs, setGrad } = single(200);
    const opt = new BlockOptimizerRatio(pairs, quiet);
    setGrad(0);
    const g = w.grad as Tensor;
    opt.zeroGrad({ setToNone: false });
    expect(w.grad).toBe(g);
    expect(flat(g).every((v) => v === 0)).toBe(true);
    opt.zeroGrad();
    expect(w.grad).toBeNull();
    expect(g.isDisposed).toBe(true);
  });
});

describe('frozen embeddings, events, errors', () => {
  class Tiny extends nn.Module {
    readonly embed: nn.Embedding;
    readonly proj: nn.Linear;
    constructor() {
      super();
      this.embed = this.registerModule('embed_tokens', new nn.Embedding(20, 8, { generator: new Generator(1) }));
      this.proj = this.registerModule('proj', new nn.Linear(8, 20, { generator: new Generator(2) }));
    }
  }

  test('embedding parameters are frozen by default (requiresGrad false), trained with includeEmbedding', () => {
    const m = new Tiny();
    const opt = new BlockOptimizerRatio(m, quiet);
    expect(m.embed.weight.requiresGrad).toBe(false);
    expect(opt.frozen).toEqual(['embed_tokens.weight']);
    expect(opt.masks().map((x) => x.name)).toEqual(['proj.weight', 'proj.bias']);
    const m2 = new Tiny();
    const opt2 = new BlockOptimizerRatio(m2, { ...quiet, includeEmbedding: true });
    expect(m2.embed.weight.requiresGrad).toBe(true);
    expect(opt2.masks().map((x) => x.name)).toEqual(['embed_tokens.weight', 'proj.weight', 'proj.bias']);
  });

  test('events: init and one per switch; verbose 0 prints nothing', () => {
    const events: RatioMaskEvent[] = [];
    const { pairs, setGrad } = single(200);
    const opt = new BlockOptimizerRatio(pairs, { log: (e) => events.push(e), verbose: 0, switchEvery: 2 });
    for (let t = 0; t < 4; t++) {
      setGrad(t);
      opt.step();
    }
    expect(events.map((e) => [e.type, e.step, e.switchCount, e.params[0].offset])).toEqual([
      ['init', 0, 0, 0],
      ['switch', 2, 1, 20],
      ['switch', 4, 2, 40],
    ]);
    expect(events[0]).toMatchObject({ maskMode: 'adjacent', selected: 20, total: 200, frozen: [] });
    const spy = jest.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const q = new BlockOptimizerRatio(single(200).pairs, { verbose: 0, switchEvery: 1 });
      q.parameters()[0].grad = tensor(new Array(200).fill(1), { dtype: 'float64' });
      q.step();
      expect(spy).not.toHaveBeenCalled();
      new BlockOptimizerRatio(single(200).pairs, { verbose: 2 });
      expect(spy.mock.calls.map((c) => String(c[0]))).toEqual([
        'BlockOptimizerRatio: first mask (adjacent): 20 of 200 entries (10.00%) in 1 parameters',
        '  w: 20 of 200 from 0',
      ]);
    } finally {
      spy.mockRestore();
    }
  });

  test.each([
    [{ updateRatio: 0 }, /updateRatio must be in \(0, 1\]/],
    [{ updateRatio: 1.5 }, /updateRatio must be in \(0, 1\]/],
    [{ updateRatio: -0.1 }, /updateRatio/],
    [{ updateRatio: NaN }, /updateRatio/],
    [{ maskMode: 'random' }, /unknown maskMode 'random'/],
    [{ switchEvery: 0 }, /switchEvery must be an integer >= 1/],
    [{ switchEvery: 2.5 }, /switchEvery/],
    [{ paramRatios: { w: 2 } }, /paramRatios\['w'\] must be in \(0, 1\]/],
    [{ paramRatios: { 'model.layers.': 0.5 } }, /matches no trainable parameter/],
    [{ lr: -1 }, /invalid learning rate/],
    [{ betas: [0.9, 1] }, /invalid betas/],
    [{ preserveThreshold: -1 }, /preserveThreshold/],
    [{ update_ratio: 0.1 }, /unknown option 'update_ratio' \(the reference's name; blockgrad calls it 'updateRatio'\)/],
  ])('construction error for %p', (options, message) => {
    const { w, pairs } = single(200);
    expect(() => new BlockOptimizerRatio(pairs, { ...quiet, ...(options as object) } as BlockOptimizerRatioOptions)).toThrow(message);
    expect(w.requiresGrad).toBe(true);
  });

  test('no trainable parameter; unnamed tensors', () => {
    const m = mlp().requiresGrad_(false);
    expect(() => new BlockOptimizerRatio(m, quiet)).toThrow(/no trainable parameter/);
    expect(() => new BlockOptimizerRatio(new Tiny().parameters() as unknown as [string, Tensor][], quiet)).toThrow(/\[name, Tensor\] pairs/);
    // only the embedding is trainable and it is excluded by default
    const t = new Tiny();
    t.proj.requiresGrad_(false);
    expect(() => new BlockOptimizerRatio(t, quiet)).toThrow(ValueError);
    expect(t.embed.weight.requiresGrad).toBe(true); // a failed construction changes nothing
  });
});
