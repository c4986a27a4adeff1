/**
 * The standard layers: parameter names, shapes and PyTorch's default initialisations, forward
 * values checked against plain loops or the functional ops, modes, and the containers.
 */
import {
  Dropout,
  Embedding,
  GELU,
  Generator,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  RMSNorm,
  Sequential,
  SiLU,
  Tensor,
  ValueError,
  backward,
  gelu,
  layerNorm,
  manualSeed,
  mul,
  randn,
  rmsNorm,
  silu,
  sum,
  tensor,
} from '../../src';
import { expectClose, flat } from '../helpers';

function stats(values: number[]): { mean: number; std: number; min: number; max: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance), min: values.reduce((a, b) => Math.min(a, b), Infinity), max: values.reduce((a, b) => Math.max(a, b), -Infinity) };
}

/** y[..., o] = Σ_i x[..., i]·W[o, i] + b[o], a plain loop over flat arrays. */
function linearLoop(x: number[], rows: number, w: number[], b: number[] | null, inF: number, outF: number): number[] {
  const y: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let acc = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) acc += x[r * inF + i] * w[o * inF + i];
      y.push(acc);
    }
  }
  return y;
}

// ------------------------------------------------------------------ Linear

describe('Linear', () => {
  test('parameters weight [out, in] and bias [out], float32 by default', () => {
    const lin = new Linear(3, 4);
    expect(lin.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([
      ['weight', [4, 3]],
      ['bias', [4]],
    ]);
    expect(lin.weight.dtype).toBe('float32');
    expect(lin.weight.requiresGrad).toBe(true);
    expect(lin.inFeatures).toBe(3);
    expect(lin.outFeatures).toBe(4);
    expect(new Linear(3, 4, { dtype: 'float64' }).bias?.dtype).toBe('float64');
  });

  test('forward equals x·Wᵀ + b computed in a loop (float64, batched leading dims)', () => {
    const lin = new Linear(5, 3, { dtype: 'float64', generator: new Generator(2) });
    const x = randn([2, 4, 5], { dtype: 'float64', generator: new Generator(3) });
    const y = lin.forward(x);
    expect(y.shape).toEqual([2, 4, 3]);
    expectClose(flat(y), linearLoop(flat(x), 8, flat(lin.weight), flat(lin.bias as Tensor), 5, 3), 1e-12);
  });

  test('forward in float32 matches the loop to float32 precision', () => {
    const lin = new Linear(7, 2, { generator: new Generator(4) });
    const x = randn([3, 7], { generator: new Generator(5) });
    expectClose(flat(lin.forward(x)), linearLoop(flat(x), 3, flat(lin.weight), flat(lin.bias as Tensor), 7, 2), 1e-5);
  });

  test('bias: false registers no bias and computes x·Wᵀ', () => {
    const lin = new Linear(4, 3, { bias: false, dtype: 'float64', generator: new Generator(6) });
    expect(lin.bias).toBeNull();
    expect(lin.namedParameters().map(([n]) => n)).toEqual(['weight']);
    expect(Object.keys(lin.stateDict())).toEqual(['weight']);
    expect(lin.numParameters()).toBe(12);
    const x = randn([2, 4], { dtype: 'float64', generator: new Generator(7) });
    expectClose(flat(lin.forward(x)), linearLoop(flat(x), 2, flat(lin.weight), null, 4, 3), 1e-12);
  });

  test('default init: weight and bias within U(-1/√in, 1/√in)', () => {
    const lin = new Linear(100, 30, { generator: new Generator(8) });
    const bound = 1 / Math.sqrt(100);
    for (const p of [lin.weight, lin.bias as Tensor]) {
      const v = flat(p);
      expect(v.every((x) => Math.abs(x) <= bound)).toBe(true);
      expect(new Set(v).size).toBe(v.length); // actually random, not a constant
    }
    // the bias bound is 1/√in too, not 1/√out: a bias this size reaches close to it
    const big = new Linear(16, 4000, { generator: new Generator(9) });
    const b = stats(flat(big.bias as Tensor));
    expect(b.max).toBeLessThanOrEqual(0.25);
    expect(b.max).toBeGreaterThan(0.24);
    expect(b.min).toBeLessThan(-0.24);
  });

  test('default init on a big layer: std ≈ bound/√3, mean ≈ 0, extremes near ±bound', () => {
    const lin = new Linear(256, 512, { generator: new Generator(10) });
    const bound = 1 / 16;
    const w = stats(flat(lin.weight));
    expect(w.max).toBeLessThanOrEqual(bound);
    expect(w.min).toBeGreaterThanOrEqual(-bound);
    expect(w.max).toBeGreaterThan(0.999 * bound);
    expect(w.min).toBeLessThan(-0.999 * bound);
    expect(Math.abs(w.std / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.01);
    expect(Math.abs(w.mean)).toBeLessThan(0.01 * bound); // the mean's own std is ≈ 0.0016·bound
  });

  test('gradients flow to weight and bias: dW = gᵀx, db = Σg', () => {
    const lin = new Linear(3, 2, { dtype: 'float64', generator: new Generator(11) });
    const x = tensor(
      [
        [1, 2, 3],
        [-1, 0.5, 2],
      ],
      { dtype: 'float64' },
    );
    backward(sum(lin.forward(x)));
    expectClose(flat(lin.weight.grad as Tensor), [0, 2.5, 5, 0, 2.5, 5]);
    expectClose(flat(lin.bias?.grad as Tensor), [2, 2]);
  });
});

// ------------------------------------------------------------------ Embedding

describe('Embedding', () => {
  test('weight [num, dim] drawn N(0, 1)', () => {
    const emb = new Embedding(1000, 64, { generator: new Generator(12) });
    expect(emb.weight.shape).toEqual([1000, 64]);
    expect(emb.namedParameters().map(([n]) => n)).toEqual(['weight']);
    const s = stats(flat(emb.weight));
    expect(Math.abs(s.mean)).toBeLessThan(0.02);
    expect(Math.abs(s.std - 1)).toBeLessThan(0.02);
    expect(s.max).toBeGreaterThan(3.5);
    expect(emb.paddingIdx).toBeUndefined();
  });

  test('forward picks rows', () => {
    const emb = new Embedding(5, 3, { dtype: 'float64', generator: new Generator(13) });
    const w = flat(emb.weight);
    const ids = tensor([[4, 0], [2, 2]], { dtype: 'int32' });
    const y = emb.forward(ids);
    expect(y.shape).toEqual([2, 2, 3]);
    expect(flat(y)).toEqual([4, 0, 2, 2].flatMap((i) => w.slice(i * 3, i * 3 + 3)));
  });

  test('paddingIdx: its row starts at zero and gets no gradient', () => {
    const emb = new Embedding(6, 4, { dtype: 'float64', paddingIdx: 2, generator: new Generator(14) });
    expect(emb.paddingIdx).toBe(2);
    const w = flat(emb.weight);
    expect(w.slice(8, 12)).toEqual([0, 0, 0, 0]);
    expect(w.slice(0, 8).every((v) => v !== 0)).toBe(true);
    expect(emb.weight.requiresGrad).toBe(true);
    const ids = tensor([2, 0, 2, 5], { dtype: 'int32' });
    const y = emb.forward(ids);
    expect(flat(y).slice(0, 4)).toEqual([0, 0, 0, 0]);
    backward(sum(mul(y, randn([4, 4], { dtype: 'float64', generator: new Generator(15) }))));
    const g = flat(emb.weight.grad as Tensor);
    expect(g.slice(8, 12)).toEqual([0, 0, 0, 0]);
    expect(g.slice(0, 4).every((v) => v !== 0)).toBe(true);
    expect(g.slice(20, 24).every((v) => v !== 0)).toBe(true);
    expect(g.slice(4, 8)).toEqual([0, 0, 0, 0]); // row 1 was not looked up
  });

  test('negative paddingIdx counts from the end; out-of-range or fractional ones are refused', () => {
    const emb = new Embedding(6, 2, { paddingIdx: -1, generator: new Generator(16) });
    expect(emb.paddingIdx).toBe(5);
    expect(flat(emb.weight).slice(10)).toEqual([0, 0]);
    expect(() => new Embedding(6, 2, { paddingIdx: 6 })).toThrow(ValueError);
    expect(() => new Embedding(6, 2, { paddingIdx: -7 })).toThrow(ValueError);
    expect(() => new Embedding(6, 2, { paddingIdx: 1.5 })).toThrow(ValueError);
    expect(() => new Embedding(6, 2, { paddingIdx: NaN })).toThrow(ValueError);
  });
});

// ------------------------------------------------------------------ norms

describe('LayerNorm and RMSNorm', () => {
  test('LayerNorm defaults: weight ones, bias zeros, eps 1e-5', () => {
    const ln = new LayerNorm(4);
    expect(ln.normalizedShape).toEqual([4]);
    expect(ln.eps).toBe(1e-5);
    expect(ln.namedParameters().map(([n]) => n)).toEqual(['weight', 'bias']);
    expect(flat(ln.weight as Tensor)).toEqual([1, 1, 1, 1]);
    expect(flat(ln.bias as Tensor)).toEqual([0, 0, 0, 0]);
    expect(new LayerNorm([2, 3]).weight?.shape).toEqual([2, 3]);
    const noAffine = new LayerNorm(4, 1e-5, { elementwiseAffine: false });
    expect(noAffine.weight).toBeNull();
    expect(noAffine.bias).toBeNull();
    expect(noAffine.numParameters()).toBe(0);
    const noBias = new LayerNorm(4, 1e-5, { bias: false });
    expect(noBias.bias).toBeNull();
    expect(noBias.namedParameters().map(([n]) => n)).toEqual(['weight']);
  });

  test('LayerNorm forward equals the functional op and a hand computation', () => {
    const ln = new LayerNorm(3, 1e-5, { dtype: 'float64' });
    ln.loadStateDict({ weight: tensor([1, 2, -1], { dtype: 'float64' }), bias: tensor([0.5, 0, 1], { dtype: 'float64' }) });
    const x = tensor(
      [
        [1, 2, 4],
        [-3, 0, 3],
      ],
      { dtype: 'float64' },
    );
    const y = ln.forward(x);
    expect(flat(y)).toEqual(flat(layerNorm(x, [3], ln.weight, ln.bias, 1e-5)));
    const expected: number[] = [];
    for (const row of [
      [1, 2, 4],
      [-3, 0, 3],
    ]) {
      const mu = (row[0] + row[1] + row[2]) / 3;
      const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / 3;
      row.forEach((xi, j) => expected.push(((xi - mu) / Math.sqrt(v + 1e-5)) * [1, 2, -1][j] + [0.5, 0, 1][j]));
    }
    expectClose(flat(y), expected, 1e-12);
  });

  test('RMSNorm defaults (weight ones, eps 1e-6) and forward vs functional op and hand computation', () => {
    const rn = new RMSNorm(4, undefined, { dtype: 'float64' });
    expect(rn.eps).toBe(1e-6);
    expect(rn.hiddenSize).toBe(4);
    expect(rn.namedParameters().map(([n]) => n)).toEqual(['weight']);
    expect(flat(rn.weight)).toEqual([1, 1, 1, 1]);
    rn.loadStateDict({ weight: tensor([1, 0.5, 2, -1], { dtype: 'float64' }) });
    const x = tensor([[1, -2, 3, 0.5]], { dtype: 'float64' });
    const y = rn.forward(x);
    expect(flat(y)).toEqual(flat(rmsNorm(x, [4], rn.weight, 1e-6)));
    const ms = (1 + 4 + 9 + 0.25) / 4;
    expectClose(
      flat(y),
      [1, -2, 3, 0.5].map((v, j) => (v / Math.sqrt(ms + 1e-6)) * [1, 0.5, 2, -1][j]),
      1e-12,
    );
    expect(new RMSNorm(4, 1e-5).eps).toBe(1e-5);
  });
});

// ------------------------------------------------------------------ Dropout and activations

describe('Dropout', () => {
  test('p outside [0, 1] is refused', () => {
    for (const p of [-0.1, 1.5, NaN]) expect(() => new Dropout(p)).toThrow(ValueError);
    expect(new Dropout(0).p).toBe(0);
    expect(new Dropout(1).p).toBe(1);
    expect(new Dropout().p).toBe(0.5);
  });

  test('eval mode is the identity; training drops about p and scales by 1/(1-p), reproducibly per seed', () => {
    const x = randn([1000], { generator: new Generator(17) });
    const d = new Dropout(0.3, new Generator(18));
    d.eval();
    expect(d.forward(x)).toBe(x);
    d.train();
    const y = flat(d.forward(x));
    const xs = flat(x);
    const dropped = y.filter((v) => v === 0).length;
    expect(dropped).toBeGreaterThan(240);
    expect(dropped).toBeLessThan(360);
    y.forEach((v, i) => {
      if (v !== 0) expect(v).toBeCloseTo(xs[i] / 0.7, 5);
    });
    expect(flat(new Dropout(0.3, new Generator(18)).forward(x))).toEqual(y);
    expect(flat(new Dropout(1).forward(x)).every((v) => v === 0)).toBe(true);
    expect(flat(new Dropout(0).forward(x))).toEqual(xs);
  });
});

describe('SiLU and GELU', () => {
  const xs = [-3, -1, -0.5, 0, 0.5, 1, 2];
  test('SiLU is x·σ(x), same as the functional op', () => {
    const x = tensor(xs, { dtype: 'float64' });
    const y = new SiLU().forward(x);
    expectClose(flat(y), xs.map((v) => v / (1 + Math.exp(-v))), 1e-12);
    expect(flat(y)).toEqual(flat(silu(x)));
  });

  test('GELU exact (erf) and tanh approximation', () => {
    const x = tensor([-1, 0, 1, 2], { dtype: 'float64' });
    const exact = new GELU();
    expect(exact.approximate).toBe('none');
    expectClose(flat(exact.forward(x)), [-0.15865525393145707, 0, 0.8413447460685429, 1.9544997361036416], 1e-9);
    expect(flat(exact.forward(x))).toEqual(flat(gelu(x)));
    const approx = new GELU('tanh');
    const c = Math.sqrt(2 / Math.PI);
    expectClose(
      flat(approx.forward(x)),
      [-1, 0, 1, 2].map((v) => 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v ** 3)))),
      1e-12,
    );
  });
});

// ------------------------------------------------------------------ containers

describe('Sequential', () => {
  test('children named 0, 1, ... and forward chains them in order', () => {
    const g = new Generator(19);
    const seq = new Sequential(new Linear(4, 6, { dtype: 'float64', generator: g }), new SiLU(), new Linear(6, 2, { dtype: 'float64', generator: g }));
    expect(seq.namedChildren().map(([n]) => n)).toEqual(['0', '1', '2']);
    expect(seq.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(seq.length).toBe(3);
    const first = seq.at(0) as Linear;
    const last = seq.at(2) as Linear;
    expect(seq.at(-1)).toBe(last);
    expect(seq.at(-3)).toBe(first);
    expect(seq.getSubmodule('1')).toBeInstanceOf(SiLU);
    expect(() => seq.at(3)).toThrow(ValueError);
    expect(() => seq.at(-4)).toThrow(ValueError);
    expect([...seq]).toEqual([first, seq.at(1), last]);
    const x = randn([3, 4], { dtype: 'float64', generator: new Generator(20) });
    const expected = last.forward(silu(first.forward(x)));
    expect(flat(seq.forward(x))).toEqual(flat(expected));
    const h = linearLoop(flat(x), 3, flat(first.weight), flat(first.bias as Tensor), 4, 6).map((v) => v / (1 + Math.exp(-v)));
    expectClose(flat(seq.forward(x)), linearLoop(h, 3, flat(last.weight), flat(last.bias as Tensor), 6, 2), 1e-12);
  });

  test('an empty Sequential is the identity', () => {
    const x = tensor([1, 2]);
    expect(new Sequential().forward(x)).toBe(x);
  });
});

describe('ModuleList', () => {
  test('push, at (negative too), iteration, length and names', () => {
    const list = new ModuleList<Linear>([new Linear(2, 2), new Linear(2, 3)]);
    const third = new Linear(3, 1);
    expect(list.push(third)).toBe(list);
    expect(list.length).toBe(3);
    expect(list.at(2)).toBe(third);
    expect(list.at(-1)).toBe(third);
    expect(list.at(-3).outFeatures).toBe(2);
    expect(() => list.at(3)).toThrow(ValueError);
    expect(() => list.at(-4)).toThrow(ValueError);
    expect(() => list.at(0.5)).toThrow(ValueError);
    expect([...list].map((m) => m.outFeatures)).toEqual([2, 3, 1]);
    expect(list.namedChildren().map(([n]) => n)).toEqual(['0', '1', '2']);
    const model = new Module();
    model.registerModule('layers', list);
    expect(model.namedParameters().map(([n]) => n)).toEqual([
      'layers.0.weight',
      'layers.0.bias',
      'layers.1.weight',
      'layers.1.bias',
      'layers.2.weight',
      'layers.2.bias',
    ]);
    expect(model.getParameter('layers.2.weight')).toBe(third.weight);
    expect(new ModuleList().length).toBe(0);
  });
});

// ------------------------------------------------------------------ seeded init

describe('seeded initialisation', () => {
  test('the same Generator seed gives the same layers, another seed different ones', () => {
    const make = (seed: number) => {
      const g = new Generator(seed);
      return [new Linear(8, 5, { generator: g }), new Embedding(7, 3, { generator: g })] as const;
    };
    const [la, ea] = make(42);
    const [lb, eb] = make(42);
    const [lc, ec] = make(43);
    expect(flat(la.weight)).toEqual(flat(lb.weight));
    expect(flat(la.bias as Tensor)).toEqual(flat(lb.bias as Tensor));
    expect(flat(ea.weight)).toEqual(flat(eb.weight));
    expect(flat(la.weight)).not.toEqual(flat(lc.weight));
    expect(flat(ea.weight)).not.toEqual(flat(ec.weight));
    // weight and bias draw different numbers from one stream
    expect(flat(la.bias as Tensor)).not.toEqual(flat(la.weight).slice(0, 5));
  });

  test('without a generator the default one is used, so manualSeed makes it reproducible', () => {
    manualSeed(123);
    const a = new Linear(4, 4);
    manualSeed(123);
    const b = new Linear(4, 4);
    const c = new Linear(4, 4);
    expect(flat(a.weight)).toEqual(flat(b.weight));
    expect(flat(c.weight)).not.toEqual(flat(b.weight));
  });
});
