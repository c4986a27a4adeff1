import {
  DTypeError,
  Generator,
  ShapeError,
  Tensor,
  ValueError,
  add,
  gradcheck,
  mul,
  nn,
  noGrad,
  randn,
  tensor,
} from '../../src';
import { expectClose, flat } from '../helpers';

const { RobertaForSequenceClassification, RobertaModel, robertaConfigFromHF, robertaPositionIds, resolveRobertaConfig } = nn;
type RobertaConfig = nn.RobertaConfig;
type Model = InstanceType<typeof RobertaForSequenceClassification>;

/** A tiny RoBERTa: vocab 12 (pad 1), hidden 8 in 2 heads, 2 layers. */
const tiny = (over: Partial<RobertaConfig> = {}): RobertaConfig => ({
  vocabSize: 12,
  hiddenSize: 8,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  intermediateSize: 16,
  maxPositionEmbeddings: 10,
  seed: 1,
  ...over,
});

const ids = (rows: number[][]) => tensor(rows, { dtype: 'int32' });

/** Replaces every parameter with larger random values (LayerNorm weights around 1), so the nonlinearities matter. */
function randomize(model: Model, seed: number, std = 0.5): void {
  const g = new Generator(seed);
  noGrad(() => {
    for (const [name, p] of model.namedParameters()) {
      const r = mul(randn(p.shape, { dtype: 'float64', generator: g }), std);
      p.copy_(name.endsWith('LayerNorm.weight') ? add(r, 1) : r);
    }
  });
}

// ------------------------------------------------------------------ a plain-JS reference forward

/** erf to ~1e-16: the Maclaurin series below 2.5, erfc's continued fraction above. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = ax;
  for (let k = 80; k >= 1; k--) f = ax + k / 2 / f;
  return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f);
}

/**
 * HF RobertaForSequenceClassification's eval forward written out with loops over numbers:
 * position ids by counting, softmax over the unmasked keys only, post-LN layers, exact GELU,
 * head on token 0. Independent of every blockgrad op.
 */
function referenceLogits(model: Model, rows: number[][], mask: number[][], types: number[][]): number[][] {
  const c = model.config;
  const H = c.hiddenSize;
  const nh = c.numAttentionHeads;
  const D = H / nh;
  const P = (n: string) => flat(model.getParameter(n));
  const lin = (x: number[], prefix: string, outF: number) => {
    const W = P(`${prefix}.weight`);
    const b = P(`${prefix}.bias`);
    const inF = x.length;
    return Array.from({ length: outF }, (_, o) => x.reduce((s, xi, i) => s + W[o * inF + i] * xi, b[o]));
  };
  const ln = (x: number[], prefix: string) => {
    const w = P(`${prefix}.weight`);
    const b = P(`${prefix}.bias`);
    const mu = x.reduce((s, v) => s + v, 0) / x.length;
    const v = x.reduce((s, xi) => s + (xi - mu) ** 2, 0) / x.length;
    return x.map((xi, i) => ((xi - mu) / Math.sqrt(v + c.layerNormEps)) * w[i] + b[i]);
  };
  const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
  const word = P('roberta.embeddings.word_embeddings.weight');
  const pos = P('roberta.embeddings.position_embeddings.weight');
  const typ = P('roberta.embeddings.token_type_embeddings.weight');
  return rows.map((row, bi) => {
    let count = 0;
    const positions = row.map((id) => (id === c.padTokenId ? c.padTokenId : ++count + c.padTokenId));
    let h = row.map((id, t) =>
      ln(Array.from({ length: H }, (_, d) => word[id * H + d] + pos[positions[t] * H + d] + typ[types[bi][t] * H + d]), 'roberta.embeddings.LayerNorm'),
    );
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const pre = `roberta.encoder.layer.${l}`;
      const q = h.map((x) => lin(x, `${pre}.attention.self.query`, H));
      const k = h.map((x) => lin(x, `${pre}.attention.self.key`, H));
      const v = h.map((x) => lin(x, `${pre}.attention.self.value`, H));
      const ctx = h.map((_, i) => {
        const out = new Array<number>(H).fill(0);
        for (let hd = 0; hd < nh; hd++) {
          const keys = row.map((_, j) => j).filter((j) => mask[bi][j] !== 0);
          const s = keys.map((j) => {
            let dot = 0;
            for (let d = 0; d < D; d++) dot += q[i][hd * D + d] * k[j][hd * D + d];
            return dot / Math.sqrt(D);
          });
          const m = Math.max(...s);
          const e = s.map((x) => Math.exp(x - m));
          const z = e.reduce((a, b) => a + b, 0);
          keys.forEach((j, n) => {
            for (let d = 0; d < D; d++) out[hd * D + d] += (e[n] / z) * v[j][hd * D + d];
          });
        }
        return out;
      });
      const a = h.map((x, t) => ln(lin(ctx[t], `${pre}.attention.output.dense`, H).map((y, d) => y + x[d]), `${pre}.attention.output.LayerNorm`));
      h = a.map((x) => {
        const inter = lin(x, `${pre}.intermediate.dense`, c.intermediateSize).map(gelu);
        return ln(lin(inter, `${pre}.output.dense`, H).map((y, d) => y + x[d]), `${pre}.output.LayerNorm`);
      });
    }
    const t = lin(h[0], 'classifier.dense', H).map(Math.tanh);
    return lin(t, 'classifier.out_proj', c.numLabels);
  });
}

// ------------------------------------------------------------------ tests

describe('RobertaForSequenceClassification: structure and init', () => {
  test('parameter names and shapes are exactly HF RobertaForSequenceClassification.named_parameters(), in order', () => {
    const model = new RobertaForSequenceClassification(tiny({ numLabels: 3 }));
    // HF's per-layer order (RobertaLayer: attention.self, attention.output, intermediate, output)
    const layer = (i: number) =>
      [
        'attention.self.query.weight',
        'attention.self.query.bias',
        'attention.self.key.weight',
        'attention.self.key.bias',
        'attention.self.value.weight',
        'attention.self.value.bias',
        'attention.output.dense.weight',
        'attention.output.dense.bias',
        'attention.output.LayerNorm.weight',
        'attention.output.LayerNorm.bias',
        'intermediate.dense.weight',
        'intermediate.dense.bias',
        'output.dense.weight',
        'output.dense.bias',
        'output.LayerNorm.weight',
        'output.LayerNorm.bias',
      ].map((n) => `roberta.encoder.layer.${i}.${n}`);
    const hf = [
      'roberta.embeddings.word_embeddings.weight',
      'roberta.embeddings.position_embeddings.weight',
      'roberta.embeddings.token_type_embeddings.weight',
      'roberta.embeddings.LayerNorm.weight',
      'roberta.embeddings.LayerNorm.bias',
      ...layer(0),
      ...layer(1),
      'classifier.dense.weight',
      'classifier.dense.bias',
      'classifier.out_proj.weight',
      'classifier.out_proj.bias',
    ];
    const named = model.namedParameters();
    expect(named.map(([n]) => n)).toEqual(hf);
    // nameParameters() ran in the constructor
    expect(named.every(([n, p]) => p.name === n)).toBe(true);
    expect(Object.keys(model.stateDict())).toEqual(hf);
    const shapes = Object.fromEntries(named.map(([n, p]) => [n, p.shape]));
    expect(shapes['roberta.embeddings.word_embeddings.weight']).toEqual([12, 8]);
    expect(shapes['roberta.embeddings.position_embeddings.weight']).toEqual([10, 8]);
    expect(shapes['roberta.embeddings.token_type_embeddings.weight']).toEqual([1, 8]);
    expect(shapes['roberta.encoder.layer.1.intermediate.dense.weight']).toEqual([16, 8]);
    expect(shapes['roberta.encoder.layer.1.output.dense.weight']).toEqual([8, 16]);
    expect(shapes['classifier.out_proj.weight']).toEqual([3, 8]);
    expect(shapes['classifier.out_proj.bias']).toEqual([3]);
    expect(model.numParameters()).toBe(named.reduce((n, [, p]) => n + p.numel, 0));
  });

  test('init is HF _init_weights: N(0, initializerRange) weights, zero padding rows and biases, LayerNorm 1/0; seeded', () => {
    const cfg = tiny({ vocabSize: 200, hiddenSize: 32, numAttentionHeads: 4, intermediateSize: 64, numHiddenLayers: 1, initializerRange: 0.05, seed: 7 });
    const model = new RobertaForSequenceClassification(cfg);
    const std = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    const word = flat(model.getParameter('roberta.embeddings.word_embeddings.weight'));
    const padRow = word.slice(32, 64); // padTokenId 1
    expect(padRow.every((x) => x === 0)).toBe(true);
    expect(flat(model.getParameter('roberta.embeddings.position_embeddings.weight')).slice(32, 64).every((x) => x === 0)).toBe(true);
    expect(Math.abs(std([...word.slice(0, 32), ...word.slice(64)]) - 0.05)).toBeLessThan(0.004);
    // 64·32 + 32·64 + 4·32·32 weights: far from PyTorch's kaiming default (std ≈ 0.1 for fan-in 32)
    const linearW = model
      .namedParameters()
      .filter(([n]) => n.startsWith('roberta.encoder') && (n.endsWith('dense.weight') || /(query|key|value)\.weight$/.test(n)))
      .flatMap(([, p]) => flat(p));
    expect(linearW.length).toBe(4 * 32 * 32 + 2 * 64 * 32);
    expect(Math.abs(std(linearW) - 0.05)).toBeLessThan(0.002);
    for (const [n, p] of model.namedParameters()) {
      if (n.endsWith('.bias')) expect(flat(p).every((x) => x === 0)).toBe(true);
      if (n.endsWith('LayerNorm.weight')) expect(flat(p).every((x) => x === 1)).toBe(true);
    }
    // the same seed rebuilds the same weights; another seed does not
    const again = new RobertaForSequenceClassification(cfg);
    const other = new RobertaForSequenceClassification({ ...cfg, seed: 8 });
    expect(flat(again.getParameter('classifier.dense.weight'))).toEqual(flat(model.getParameter('classifier.dense.weight')));
    expect(flat(other.getParameter('classifier.dense.weight'))).not.toEqual(flat(model.getParameter('classifier.dense.weight')));
    // dtype from the config
    const f64 = new RobertaForSequenceClassification({ ...cfg, dtype: 'float64' });
    expect(f64.parameters().every((p) => p.dtype === 'float64')).toBe(true);
    expect(model.parameters().every((p) => p.dtype === 'float32')).toBe(true);
  });
});

describe('RobertaForSequenceClassification: forward', () => {
  test('position ids: cumsum(ids != pad) * mask + pad, for right, left and inner padding', () => {
    const input = ids([
      [0, 5, 6, 2, 1, 1],
      [0, 7, 2, 1, 1, 1],
      [1, 1, 0, 5, 6, 2],
      [0, 5, 1, 6, 2, 1],
    ]);
    expect(robertaPositionIds(input, 1).toArray()).toEqual([
      [2, 3, 4, 5, 1, 1],
      [2, 3, 4, 1, 1, 1],
      [1, 1, 2, 3, 4, 5],
      [2, 3, 1, 4, 5, 1],
    ]);
    // another pad id: real tokens count from pad + 1
    expect(robertaPositionIds(ids([[3, 0, 0, 3]]), 0).toArray()).toEqual([[1, 0, 0, 2]]);
    expect(robertaPositionIds(input, 1).dtype).toBe('int32');
  });

  test('logits equal a plain-JS reference forward (padded batch, attention mask, token types; float64)', () => {
    const model = new RobertaForSequenceClassification(tiny({ dtype: 'float64', typeVocabSize: 2, numLabels: 3 }));
    randomize(model, 3);
    model.eval();
    const rows = [
      [0, 5, 6, 7, 2],
      [0, 8, 2, 1, 1],
      [1, 1, 0, 9, 2],
    ];
    const mask = [
      [1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0],
      [0, 0, 1, 1, 1],
    ];
    const types = [
      [0, 0, 0, 1, 1],
      [0, 1, 1, 0, 0],
      [0, 0, 0, 1, 0],
    ];
    const { logits, loss } = model.forward(ids(rows), { attentionMask: tensor(mask, { dtype: 'int32' }), tokenTypeIds: ids(types) });
    expect(loss).toBeUndefined();
    expect(logits.shape).toEqual([3, 3]);
    const expected = referenceLogits(model, rows, mask, types);
    expectClose(flat(logits), expected.flat(), 1e-10);
    // a float mask works the same as an int32 one
    const again = model.forward(ids(rows), { attentionMask: tensor(mask, { dtype: 'float64' }), tokenTypeIds: ids(types) }).logits;
    expect(flat(again)).toEqual(flat(logits));
    // without a mask every token is attended to (HF does not infer the mask from padTokenId): row 1 changes
    const unmasked = flat(model.forward(ids(rows), { tokenTypeIds: ids(types) }).logits);
    expectClose(unmasked.slice(0, 3), flat(logits).slice(0, 3), 1e-12);
    expect(Math.abs(unmasked[3] - flat(logits)[3])).toBeGreaterThan(1e-6);
  });

  test('RobertaModel alone returns [B, S, hidden] hidden states, seeded like the classifier', () => {
    const base = new RobertaModel(tiny());
    const h = base.eval().forward(ids([[0, 5, 2]]));
    expect(h.shape).toEqual([1, 3, 8]);
    expect(base.namedParameters()[0][0]).toBe('embeddings.word_embeddings.weight');
    expect(base.getParameter('embeddings.word_embeddings.weight').name).toBe('embeddings.word_embeddings.weight');
  });

  test('padding invariance: a right-padded sequence with its mask gives the unpadded logits (eval)', () => {
    const model = new RobertaForSequenceClassification(tiny({ numLabels: 2 }));
    randomize(model, 4, 0.3);
    model.eval();
    const alone = model.forward(ids([[0, 5, 6, 7, 2]])).logits;
    const batch = model.forward(
      ids([
        [0, 5, 6, 7, 2, 1, 1, 1],
        [0, 9, 2, 1, 1, 1, 1, 1],
      ]),
      { attentionMask: tensor([[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]], { dtype: 'int32' }) },
    ).logits;
    const shortAlone = model.forward(ids([[0, 9, 2]])).logits;
    // float32: the masked keys add exact zeros; only summation order may differ
    expectClose(flat(batch).slice(0, 2), flat(alone), 1e-5);
    expectClose(flat(batch).slice(2, 4), flat(shortAlone), 1e-5);
    // and the logits are not trivially equal for different inputs
    expect(Math.abs(flat(alone)[0] - flat(shortAlone)[0])).toBeGreaterThan(1e-4);
  });

  test('eval() makes forward deterministic; train() with dropout changes it, seeded reproducibly', () => {
    const input = ids([
      [0, 5, 6, 2],
      [0, 7, 2, 1],
    ]);
    const model = new RobertaForSequenceClassification(tiny({ seed: 11 }));
    randomize(model, 5, 0.3);
    model.eval();
    const e1 = flat(model.forward(input).logits);
    const e2 = flat(model.forward(input).logits);
    expect(e1).toEqual(e2);
    model.train();
    const t1 = flat(model.forward(input).logits);
    const t2 = flat(model.forward(input).logits);
    expect(t1).not.toEqual(t2);
    expect(t1).not.toEqual(e1);
    model.eval();
    expect(flat(model.forward(input).logits)).toEqual(e1);
    // dropout masks come from the model's seeded generator: a twin model draws the same masks
    const twin = new RobertaForSequenceClassification(tiny({ seed: 11 }));
    randomize(twin, 5, 0.3);
    twin.train();
    expect(flat(twin.forward(input).logits)).toEqual(t1);
    // with every dropout probability 0, training mode is the eval forward
    const noDrop = new RobertaForSequenceClassification(tiny({ seed: 11, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 }));
    randomize(noDrop, 5, 0.3);
    expect(flat(noDrop.train().forward(input).logits)).toEqual(flat(noDrop.eval().forward(input).logits));
  });

  test('a state dict moves between two models (same names), giving the same logits', () => {
    const a = new RobertaForSequenceClassification(tiny({ seed: 1 }));
    randomize(a, 9, 0.3);
    const b = new RobertaForSequenceClassification(tiny({ seed: 2 }));
    const input = ids([[0, 5, 6, 2]]);
    expect(flat(b.eval().forward(input).logits)).not.toEqual(flat(a.eval().forward(input).logits));
    b.loadStateDict(a.stateDict());
    expect(flat(b.forward(input).logits)).toEqual(flat(a.forward(input).logits));
  });
});

describe('RobertaForSequenceClassification: gradients', () => {
  test('float64 gradcheck of the loss end to end w.r.t. several parameters (padded batch, dropout 0)', () => {
    const model = new RobertaForSequenceClassification(
      tiny({ dtype: 'float64', hiddenSize: 4, intermediateSize: 6, vocabSize: 8, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0, numLabels: 3 }),
    );
    randomize(model, 6, 0.5);
    const input = ids([
      [0, 5, 6, 2, 1],
      [0, 7, 2, 1, 1],
    ]);
    const attentionMask = tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], { dtype: 'int32' });
    const labels = tensor([2, 0], { dtype: 'int32' });
    const names = [
      'roberta.embeddings.word_embeddings.weight',
      'roberta.embeddings.LayerNorm.weight',
      'roberta.encoder.layer.0.attention.self.query.weight',
      'roberta.encoder.layer.1.intermediate.dense.bias',
      'classifier.dense.weight',
    ];
    const params = names.map((n) => model.getParameter(n));
    // gradcheck(fn, inputs) differentiates fn w.r.t. its inputs, but the model reads its own
    // parameter tensors. So the inputs ARE those parameters: the analytic pass calls fn with the
    // very same tensors (nothing to swap, the graph reaches them), while each finite-difference
    // evaluation passes fresh perturbed copies, which are swapped into the parameters' storage
    // with setData_ (layers keep their references to the parameter objects, so they read the new
    // values) and swapped back in `finally` (a functional_call, as torch.func does it).
    const fn = (...xs: Tensor[]) => {
      const originals = params.map((p) => p.detach());
      params.forEach((p, i) => {
        if (xs[i] !== p) p.setData_(xs[i]);
      });
      try {
        return model.forward(input, { attentionMask, labels }).loss as Tensor;
      } finally {
        params.forEach((p, i) => {
          if (xs[i] !== p) p.setData_(originals[i]);
        });
      }
    };
    const before = params.map((p) => flat(p));
    const result = gradcheck(fn, params);
    expect(result.ok).toBe(true);
    // the parameters are back to their values, and the analytic gradient is not trivially zero
    params.forEach((p, i) => expect(flat(p)).toEqual(before[i]));
    model.zeroGrad();
    (model.forward(input, { attentionMask, labels }).loss as Tensor).backward();
    const gWord = flat(model.getParameter(names[0]).grad as Tensor);
    expect(gWord.slice(4, 8).every((x) => x === 0)).toBe(true); // padding_idx row 1 gets no gradient
    expect(gWord.some((x) => Math.abs(x) > 1e-6)).toBe(true);
    expect(flat(model.getParameter(names[2]).grad as Tensor).some((x) => Math.abs(x) > 1e-6)).toBe(true);
  });
});

describe('RobertaForSequenceClassification: losses', () => {
  const input = ids([
    [0, 5, 6, 2],
    [0, 7, 2, 1],
    [0, 9, 8, 2],
  ]);
  const attentionMask = tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]], { dtype: 'int32' });

  test('int32 labels: cross-entropy from the logits by hand, -100 ignored', () => {
    const model = new RobertaForSequenceClassification(tiny({ dtype: 'float64', numLabels: 3 }));
    randomize(model, 7, 0.4);
    model.eval();
    const { logits, loss } = model.forward(input, { attentionMask, labels: tensor([2, -100, 0], { dtype: 'int32' }) });
    const L = logits.toArray() as number[][];
    const ce = (row: number[], y: number) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[y];
    expect((loss as Tensor).shape).toEqual([]);
    expectClose([(loss as Tensor).item()], [(ce(L[0], 2) + ce(L[2], 0)) / 2], 1e-12);
    const all = model.forward(input, { attentionMask, labels: tensor([[1], [1], [2]], { dtype: 'int32' }) });
    expectClose([(all.loss as Tensor).item()], [(ce(L[0], 1) + ce(L[1], 1) + ce(L[2], 2)) / 3], 1e-12);
  });

  test('numLabels 1: MSE regression from the logits by hand ([B] or [B, 1], float or int labels)', () => {
    const model = new RobertaForSequenceClassification(tiny({ dtype: 'float64', numLabels: 1 }));
    randomize(model, 8, 0.4);
    model.eval();
    const { logits, loss } = model.forward(input, { attentionMask, labels: tensor([0.5, -1, 2], { dtype: 'float64' }) });
    expect(logits.shape).toEqual([3, 1]);
    const z = flat(logits);
    const y = [0.5, -1, 2];
    const mse = z.reduce((s, v, i) => s + (v - y[i]) ** 2, 0) / 3;
    expectClose([(loss as Tensor).item()], [mse], 1e-12);
    expectClose([(model.forward(input, { attentionMask, labels: tensor([[0.5], [-1], [2]], { dtype: 'float32' }) }).loss as Tensor).item()], [mse], 1e-7);
    const yi = [1, 0, 2];
    const mseInt = z.reduce((s, v, i) => s + (v - yi[i]) ** 2, 0) / 3;
    expectClose([(model.forward(input, { attentionMask, labels: tensor(yi, { dtype: 'int32' }) }).loss as Tensor).item()], [mseInt], 1e-12);
  });

  test('floating labels with numLabels > 1: multi-label BCE-with-logits by hand; problemType overrides the inference', () => {
    const model = new RobertaForSequenceClassification(tiny({ dtype: 'float64', numLabels: 2 }));
    randomize(model, 10, 0.4);
    model.eval();
    const y = [
      [1, 0],
      [0, 0],
      [1, 1],
    ];
    const { logits, loss } = model.forward(input, { attentionMask, labels: tensor(y, { dtype: 'float64' }) });
    const z = logits.toArray() as number[][];
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    let bce = 0;
    z.forEach((row, i) => row.forEach((x, j) => (bce -= y[i][j] * Math.log(sig(x)) + (1 - y[i][j]) * Math.log(1 - sig(x)))));
    expectClose([(loss as Tensor).item()], [bce / 6], 1e-12);

    const reg = new RobertaForSequenceClassification(tiny({ dtype: 'float64', numLabels: 2, problemType: 'regression' }));
    randomize(reg, 10, 0.4);
    reg.eval();
    const out = reg.forward(input, { attentionMask, labels: tensor(y, { dtype: 'float64' }) });
    const zr = (out.logits.toArray() as number[][]).flat();
    expectClose([(out.loss as Tensor).item()], [zr.reduce((s, v, i) => s + (v - y.flat()[i]) ** 2, 0) / 6], 1e-12);
  });
});

describe('RobertaConfig', () => {
  const hfJson = {
    architectures: ['RobertaForSequenceClassification'],
    attention_probs_dropout_prob: 0.1,
    bos_token_id: 0,
    classifier_dropout: null,
    eos_token_id: 2,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    hidden_size: 768,
    id2label: { '0': 'negative', '1': 'neutral', '2': 'positive' },
    initializer_range: 0.02,
    intermediate_size: 3072,
    label2id: { negative: 0, neutral: 1, positive: 2 },
    layer_norm_eps: 1e-5,
    max_position_embeddings: 514,
    model_type: 'roberta',
    num_attention_heads: 12,
    num_hidden_layers: 12,
    pad_token_id: 1,
    position_embedding_type: 'absolute',
    problem_type: 'single_label_classification',
    torch_dtype: 'float32',
    transformers_version: '4.40.0',
    type_vocab_size: 1,
    use_cache: true,
    vocab_size: 50265,
  };

  test('robertaConfigFromHF maps snake_case keys, numLabels from id2label, HF class defaults for missing keys', () => {
    const c = robertaConfigFromHF(hfJson);
    expect(c).toEqual({
      vocabSize: 50265,
      hiddenSize: 768,
      numHiddenLayers: 12,
      numAttentionHeads: 12,
      intermediateSize: 3072,
      maxPositionEmbeddings: 514,
      hiddenAct: 'gelu',
      hiddenDropoutProb: 0.1,
      attentionProbsDropoutProb: 0.1,
      typeVocabSize: 1,
      initializerRange: 0.02,
      layerNormEps: 1e-5,
      padTokenId: 1,
      numLabels: 3,
      classifierDropout: null,
      problemType: 'single_label_classification',
      seed: undefined,
      dtype: 'float32',
    });
    // the text of config.json works too, and overrides win
    expect(robertaConfigFromHF(JSON.stringify(hfJson), { numLabels: 5, seed: 3 })).toMatchObject({ numLabels: 5, seed: 3 });
    // keys left out take HF RobertaConfig's defaults (type_vocab_size 2, layer_norm_eps 1e-12, num_labels 2)
    const sparse = robertaConfigFromHF({ vocab_size: 30, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16, max_position_embeddings: 20 });
    expect(sparse).toMatchObject({ typeVocabSize: 2, layerNormEps: 1e-12, numLabels: 2, padTokenId: 1, hiddenAct: 'gelu', hiddenDropoutProb: 0.1 });
    expect(robertaConfigFromHF({ ...hfJson, num_labels: 4 }).numLabels).toBe(4);
    // a model builds from it
    const model = new RobertaForSequenceClassification(robertaConfigFromHF({ ...hfJson, vocab_size: 20, hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 8, max_position_embeddings: 12 }, { seed: 1 }));
    expect(model.getParameter('classifier.out_proj.weight').shape).toEqual([3, 8]);
    expect(model.eval().forward(ids([[0, 4, 2]])).logits.shape).toEqual([1, 3]);
  });

  test('robertaConfigFromHF refuses other architectures and wrong types', () => {
    expect(() => robertaConfigFromHF({ ...hfJson, model_type: 'bert' })).toThrow(/model_type is 'bert'/);
    expect(() => robertaConfigFromHF({ ...hfJson, position_embedding_type: 'relative_key' })).toThrow(/position_embedding_type/);
    expect(() => robertaConfigFromHF({ ...hfJson, hidden_size: '768' })).toThrow(/hidden_size must be a number/);
    expect(() => robertaConfigFromHF({ ...hfJson, hidden_act: 'mish' })).toThrow(/hiddenAct 'mish' is not supported/);
    expect(() => robertaConfigFromHF('{ not json')).toThrow(ValueError);
  });

  test('bad configs are refused with the field named', () => {
    expect(() => new RobertaForSequenceClassification(tiny({ hiddenSize: 10, numAttentionHeads: 4 }))).toThrow(/hiddenSize 10 is not a multiple of numAttentionHeads 4/);
    expect(() => new RobertaForSequenceClassification(tiny({ numHiddenLayers: 0 }))).toThrow(/numHiddenLayers must be a positive integer/);
    expect(() => new RobertaForSequenceClassification(tiny({ vocabSize: 2.5 }))).toThrow(/vocabSize must be a positive integer/);
    expect(() => new RobertaForSequenceClassification(tiny({ hiddenDropoutProb: 1.5 }))).toThrow(/hiddenDropoutProb must be a probability/);
    expect(() => new RobertaForSequenceClassification(tiny({ padTokenId: 12 }))).toThrow(/padTokenId 12/);
    expect(() => new RobertaForSequenceClassification(tiny({ maxPositionEmbeddings: 2 }))).toThrow(/maxPositionEmbeddings 2 leaves no position/);
    expect(() => new RobertaForSequenceClassification(tiny({ numLabels: 0 }))).toThrow(/numLabels must be a positive integer/);
    expect(() => new RobertaForSequenceClassification(tiny({ dtype: 'int32' }))).toThrow(/dtype must be float64, float32, float16 or bfloat16/);
    expect(() => resolveRobertaConfig(tiny({ problemType: 'ranking' as never }))).toThrow(/problemType 'ranking'/);
  });
});

describe('RobertaForSequenceClassification: input errors', () => {
  const model = new RobertaForSequenceClassification(tiny());

  test('token ids out of range, wrong dtype or shape, too long for the position table', () => {
    expect(() => model.forward(ids([[0, 12, 2]]))).toThrow(/token id 12 at \[0, 1\] is out of range for vocabSize 12/);
    expect(() => model.forward(ids([[0, -1, 2]]))).toThrow(ValueError);
    expect(() => model.forward(tensor([[0, 5, 2]]))).toThrow(DTypeError);
    expect(() => model.forward(ids([[0, 5, 2]]).reshape([3]))).toThrow(ShapeError);
    // 8 real tokens need positions 2..9: fits 10 rows; 9 do not
    expect(model.forward(ids([[0, 3, 3, 3, 3, 3, 3, 2]])).logits.shape).toEqual([1, 2]);
    expect(() => model.forward(ids([[0, 3, 3, 3, 3, 3, 3, 3, 2]]))).toThrow(/maxPositionEmbeddings is 10: at most 8 tokens fit/);
  });

  test('masks, token types and labels that do not fit', () => {
    const x = ids([[0, 5, 2]]);
    expect(() => model.forward(x, { attentionMask: tensor([[1, 1]], { dtype: 'int32' }) })).toThrow(/attentionMask has shape \[1,2\]/);
    expect(() => model.forward(x, { tokenTypeIds: ids([[0, 1, 0]]) })).toThrow(/token type id 1 is out of range for typeVocabSize 1/);
    expect(() => model.forward(x, { tokenTypeIds: ids([[0, 0]]) })).toThrow(ShapeError);
    expect(() => model.forward(x, { labels: tensor([0, 1], { dtype: 'int32' }) })).toThrow(/labels of shape \[2\] do not fit a batch of 1/);
    expect(() => model.forward(x, { labels: tensor([[0.5, 0.5, 0]]) })).toThrow(/multi-label targets of shape \[1,3\]/);
    expect(() => model.forward(x, { labels: tensor([2], { dtype: 'int32' }) })).toThrow(/target value 2/);
  });
});
