import { GELU, Generator, Linear, Module, ModuleList, Sequential, Tensor, ValueError, gradcheck, mul, nn, noGrad, profile, randn, sum, tensor } from '../../src';
import { expectClose, flat } from '../helpers';

const { applyLora, RobertaForSequenceClassification } = nn;

/** A decoder-ish block: two projections and an MLP, nested in a ModuleList under a head. */
class Block extends Module {
  readonly q_proj: Linear;
  readonly v_proj: Linear;
  readonly mlp: Sequential;

  constructor(dim: number, g: Generator, dtype: 'float32' | 'float64' = 'float64') {
    super();
    this.q_proj = this.registerModule('q_proj', new Linear(dim, dim, { generator: g, dtype }));
    this.v_proj = this.registerModule('v_proj', new Linear(dim, dim, { generator: g, dtype }));
    this.mlp = this.registerModule('mlp', new Sequential(new Linear(dim, 2 * dim, { generator: g, dtype }), new GELU(), new Linear(2 * dim, dim, { generator: g, dtype })));
  }

  forward(x: Tensor): Tensor {
    return this.mlp.forward(mul(this.q_proj.forward(x), this.v_proj.forward(x)));
  }
}

class Net extends Module {
  readonly layers: ModuleList<Block>;
  readonly head: Linear;

  constructor(seed = 0, dtype: 'float32' | 'float64' = 'float64') {
    super();
    const g = new Generator(seed);
    this.layers = this.registerModule('layers', new ModuleList([new Block(4, g, dtype), new Block(4, g, dtype)]));
    this.head = this.registerModule('head', new Linear(4, 2, { generator: g, dtype }));
    this.nameParameters();
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (const b of this.layers) h = b.forward(h);
    return this.head.forward(h);
  }
}

const input = (seed: number, shape = [3, 4]) => randn(shape, { dtype: 'float64', generator: new Generator(seed) });

/** Gives every lora_B (zero at init) random values, so that the adapters change the output. */
function randomizeB(handle: ReturnType<typeof applyLora>, seed: number): void {
  const g = new Generator(seed);
  noGrad(() => {
    for (const l of handle.layers) l.loraB.weight.copy_(mul(randn(l.loraB.weight.shape, { dtype: 'float64', generator: g }), 0.5));
  });
}

describe('applyLora: matching, names, freezing', () => {
  test('PEFT matching (last component or dotted suffix), PEFT names, only the adapters train', () => {
    const net = new Net();
    const baseNames = net.namedParameters().map(([n]) => n);
    const lora = applyLora(net, { targetModules: ['q_proj', 'mlp.2'], r: 2, alpha: 4, seed: 1 });
    expect(lora.modules).toEqual(['layers.0.q_proj', 'layers.0.mlp.2', 'layers.1.q_proj', 'layers.1.mlp.2']);
    const names = net.namedParameters().map(([n]) => n);
    // the base names are unchanged (base checkpoints still load); each adapter follows its layer's own weight and bias
    expect(names.filter((n) => !n.includes('lora_'))).toEqual(baseNames);
    expect(names.slice(0, 4)).toEqual(['layers.0.q_proj.weight', 'layers.0.q_proj.bias', 'layers.0.q_proj.lora_A.weight', 'layers.0.q_proj.lora_B.weight']);
    const trainable = net.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n);
    expect(trainable).toEqual([
      'layers.0.q_proj.lora_A.weight',
      'layers.0.q_proj.lora_B.weight',
      'layers.0.mlp.2.lora_A.weight',
      'layers.0.mlp.2.lora_B.weight',
      'layers.1.q_proj.lora_A.weight',
      'layers.1.q_proj.lora_B.weight',
      'layers.1.mlp.2.lora_A.weight',
      'layers.1.mlp.2.lora_B.weight',
    ]);
    expect(lora.namedParameters().map(([n]) => n)).toEqual(trainable);
    // names were refreshed on the new tensors
    expect(net.getParameter('layers.1.mlp.2.lora_B.weight').name).toBe('layers.1.mlp.2.lora_B.weight');
    // shapes: A [r, in], B [out, r]
    expect(net.getParameter('layers.0.mlp.2.lora_A.weight').shape).toEqual([2, 8]);
    expect(net.getParameter('layers.0.mlp.2.lora_B.weight').shape).toEqual([4, 2]);
    expect(lora.numTrainable).toBe(2 * (2 * 4 + 4 * 2) + 2 * (2 * 8 + 4 * 2));
    expect(lora.layers.every((l) => l.scaling === 2)).toBe(true);
    // A ~ kaiming_uniform(a = √5): U(-1/√in, 1/√in), not zero; B = 0
    const a = flat(net.getParameter('layers.0.mlp.2.lora_A.weight'));
    expect(a.every((v) => Math.abs(v) <= 1 / Math.sqrt(8))).toBe(true);
    expect(a.some((v) => Math.abs(v) > 0.05)).toBe(true);
    expect(flat(net.getParameter('layers.0.mlp.2.lora_B.weight')).every((v) => v === 0)).toBe(true);
    // seeded: the same seed gives the same A
    const again = new Net();
    applyLora(again, { targetModules: ['q_proj', 'mlp.2'], r: 2, alpha: 4, seed: 1 });
    expect(flat(again.getParameter('layers.0.mlp.2.lora_A.weight'))).toEqual(a);
  });

  test('the full name matches exactly; a partial component does not', () => {
    const net = new Net();
    expect(applyLora(net, { targetModules: ['layers.1.v_proj', 'head'] }).modules).toEqual(['layers.1.v_proj', 'head']);
    expect(() => applyLora(new Net(), { targetModules: ['proj', 'uery'] })).toThrow(
      /no module matches targetModules \[proj, uery\]; the model's Linear layers include layers\.0\.q_proj, layers\.0\.v_proj, layers\.0\.mlp\.0/,
    );
  });

  test('errors leave the model unchanged: non-Linear match, second adapter, bad options', () => {
    const net = new Net();
    const before = net.namedParameters().map(([n, p]) => [n, p.requiresGrad]);
    expect(() => applyLora(net, { targetModules: ['mlp'] })).toThrow(/'layers\.0\.mlp' \(Sequential\) matches targetModules but is not a Linear/);
    expect(() => applyLora(net, { targetModules: [] })).toThrow(ValueError);
    expect(() => applyLora(net, { targetModules: ['q_proj'], r: 0 })).toThrow(/r must be a positive integer/);
    expect(() => applyLora(net, { targetModules: ['q_proj'], dropout: 1 })).toThrow(/dropout must be in \[0, 1\)/);
    expect(net.namedParameters().map(([n, p]) => [n, p.requiresGrad])).toEqual(before);
    applyLora(net, { targetModules: ['head'] });
    const after = net.namedParameters().map(([n]) => n);
    expect(() => applyLora(net, { targetModules: ['head'] })).toThrow(/'head' already has an adapter/);
    // LoRA's own A and B are never adapted themselves
    expect(() => applyLora(net, { targetModules: ['lora_A'] })).toThrow(/no module matches/);
    expect(net.namedParameters().map(([n]) => n)).toEqual(after);
  });

  test('RobertaForSequenceClassification with targetModules [query, value]', () => {
    const model = new RobertaForSequenceClassification({
      vocabSize: 12, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 16, maxPositionEmbeddings: 10, seed: 1,
    });
    model.eval();
    const ids = tensor([[0, 5, 6, 2], [0, 7, 2, 1]], { dtype: 'int32' });
    const attentionMask = tensor([[1, 1, 1, 1], [1, 1, 1, 0]], { dtype: 'int32' });
    const base = flat(model.forward(ids, { attentionMask }).logits);
    const lora = applyLora(model, { targetModules: ['query', 'value'], r: 4, alpha: 8, seed: 2 });
    expect(lora.modules).toEqual([0, 1].flatMap((i) => ['query', 'value'].map((m) => `roberta.encoder.layer.${i}.attention.self.${m}`)));
    const trainable = model.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n);
    expect(trainable).toEqual(lora.modules.flatMap((m) => [`${m}.lora_A.weight`, `${m}.lora_B.weight`]));
    expect(lora.numTrainable).toBe(4 * (4 * 8 + 8 * 4));
    // B = 0: the adapted model starts exactly at the base model
    const { logits, loss } = model.forward(ids, { attentionMask, labels: tensor([1, 0], { dtype: 'int32' }) });
    expect(flat(logits)).toEqual(base);
    (loss as Tensor).backward();
    for (const [n, p] of model.namedParameters()) {
      if (!n.includes('lora_')) expect(p.grad).toBeNull();
    }
    // at init dA = (α/r)·Bᵀ·g·xᵀ = 0 while dB = (α/r)·g·(A·x)ᵀ is not
    const l0 = lora.layers[0];
    expect(flat(l0.loraA.weight.grad as Tensor).every((v) => v === 0)).toBe(true);
    expect(flat(l0.loraB.weight.grad as Tensor).some((v) => Math.abs(v) > 1e-8)).toBe(true);
  });
});

describe('applyLora: forward, merge, gradients', () => {
  test('the output equals the base output at init, then W x + b + (α/r)·B·A·x by hand', () => {
    const net = new Net();
    const x = input(1);
    const base = flat(net.forward(x));
    const lora = applyLora(net, { targetModules: ['q_proj', 'v_proj', 'mlp.0', 'mlp.2', 'head'], r: 3, alpha: 6, seed: 4 });
    expect(flat(net.forward(x))).toEqual(base);
    randomizeB(lora, 5);
    // one adapted Linear checked element by element
    const head = net.head;
    const h = input(2);
    const W = flat(head.weight);
    const b = flat(head.bias as Tensor);
    const A = flat(net.getParameter('head.lora_A.weight'));
    const B = flat(net.getParameter('head.lora_B.weight'));
    const hv = flat(h);
    const expected: number[] = [];
    for (let n = 0; n < 3; n++) {
      const xn = hv.slice(n * 4, n * 4 + 4);
      const ax = [0, 1, 2].map((k) => xn.reduce((s, v, i) => s + A[k * 4 + i] * v, 0));
      for (let o = 0; o < 2; o++) expected.push(b[o] + xn.reduce((s, v, i) => s + W[o * 4 + i] * v, 0) + 2 * ax.reduce((s, v, k) => s + B[o * 3 + k] * v, 0));
    }
    expectClose(flat(head.forward(h)), expected, 1e-12);
  });

  test('after a gradient step on A and B, merge() reproduces the adapter path and unmerge() restores W', () => {
    const net = new Net(3);
    const x = input(6);
    const lora = applyLora(net, { targetModules: ['q_proj', 'mlp.2', 'head'], r: 2, alpha: 3, seed: 7 });
    const weights = lora.layers.map((l) => flat(l.base.weight));
    // one manual SGD step on the adapters (from B = 0, so this moves B; a second step moves A too)
    for (let step = 0; step < 2; step++) {
      net.zeroGrad();
      sum(mul(net.forward(x), input(8, [3, 2]))).backward();
      noGrad(() => {
        for (const [, p] of lora.namedParameters()) p.copy_(p.sub(mul(p.grad as Tensor, 0.5)));
      });
    }
    expect(lora.layers.every((l) => flat(l.loraA.weight.grad as Tensor).some((v) => v !== 0))).toBe(true);
    const adapted = flat(net.forward(x));
    lora.merge();
    expect(lora.merged).toBe(true);
    expect(lora.layers.every((l) => l.base.adapter === null)).toBe(true);
    expect(flat(lora.layers[0].base.weight)).not.toEqual(weights[0]);
    // merged forward: no adapter work at all, same outputs
    const { result: merged, report } = profile(() => noGrad(() => net.forward(x)));
    expectClose(flat(merged), adapted, 1e-12);
    expect(report.kernels.matmul).toBe(2 * 4 + 1); // the 9 base Linears only
    expect(() => lora.merge()).toThrow(/already merged/);
    lora.unmerge();
    expect(lora.merged).toBe(false);
    lora.layers.forEach((l, i) => expectClose(flat(l.base.weight), weights[i], 1e-14));
    expectClose(flat(net.forward(x)), adapted, 1e-12);
    expect(() => lora.unmerge()).toThrow(/not merged/);
  });

  test('float64 gradcheck through a LoRA Linear, w.r.t. the input, A and B', () => {
    const seq = new Sequential(new Linear(5, 3, { dtype: 'float64', generator: new Generator(1) }));
    const lora = applyLora(seq, { targetModules: ['0'], r: 2, alpha: 3, seed: 2 });
    randomizeB(lora, 3);
    const { loraA, loraB } = lora.layers[0];
    const params = [loraA.weight, loraB.weight];
    // gradcheck(fn, inputs) differentiates w.r.t. its inputs, but the layer reads its own A and B.
    // So A and B themselves are inputs: the analytic pass gets those very tensors, and each
    // finite-difference evaluation gets perturbed copies, swapped into A's and B's storage with
    // setData_ (the layer keeps its references to the parameter objects) and swapped back after.
    const fn = (x: Tensor, a: Tensor, b: Tensor) => {
      const swaps = [a, b].map((t, i) => (t === params[i] ? null : params[i].detach()));
      swaps.forEach((orig, i) => orig && params[i].setData_([a, b][i]));
      try {
        return seq.forward(x);
      } finally {
        swaps.forEach((orig, i) => orig && params[i].setData_(orig));
      }
    };
    const x = randn([2, 4, 5], { dtype: 'float64', generator: new Generator(4), requiresGrad: true });
    expect(gradcheck(fn, [x, ...params]).ok).toBe(true);
  });

  test.each([
    ['float16', 5e-3],
    ['bfloat16', 4e-2], // 8 significant bits: merging rounds the weights once more
  ] as const)('a %s base gets float32 adapters; the layer output keeps its dtype (merged: within %s)', (dtype, tol) => {
    const seq = new Sequential(new Linear(4, 3, { dtype, generator: new Generator(1) }));
    const lora = applyLora(seq, { targetModules: ['0'], r: 2, seed: 1 });
    expect(lora.layers[0].loraA.weight.dtype).toBe('float32');
    randomizeB(lora, 2);
    const x = randn([2, 4], { dtype, generator: new Generator(3) });
    const y = seq.forward(x);
    expect(y.dtype).toBe(dtype);
    lora.merge();
    expect(seq.forward(x).dtype).toBe(dtype);
    expectClose(flat(seq.forward(x)), flat(y), tol);
  });

  test('adapter dropout: registered as lora_dropout, active in train mode only', () => {
    const net = new Net(1);
    const lora = applyLora(net, { targetModules: ['head'], dropout: 0.5, seed: 3 });
    expect(net.namedModules().map(([n]) => n)).toContain('head.lora_dropout');
    randomizeB(lora, 4);
    const x = input(9);
    const t1 = flat(net.train().forward(x));
    const t2 = flat(net.forward(x));
    expect(t1).not.toEqual(t2);
    const e = flat(net.eval().forward(x));
    expect(flat(net.forward(x))).toEqual(e);
    // eval output = W x + b + (α/r)·B·A·x with no dropout: merge gives it too
    lora.merge();
    expectClose(flat(net.forward(x)), e, 1e-12);
  });
});

describe('applyLora: the cheap backward', () => {
  /** Linear(6,5) -> GELU -> Linear(5,4), both adapted, input without grad; the matmul launches of one backward. */
  function backwardMatmuls(unfreezeBase: boolean) {
    const g = new Generator(5);
    const seq = new Sequential(new Linear(6, 5, { generator: g }), new GELU(), new Linear(5, 4, { generator: g }));
    seq.nameParameters();
    const lora = applyLora(seq, { targetModules: ['0', '2'], r: 2, alpha: 4, seed: 6 });
    if (unfreezeBase) for (const l of lora.layers) l.base.weight.requiresGrad_(true);
    const x = randn([3, 6], { generator: g });
    const loss = sum(seq.forward(x));
    const { report } = profile(() => loss.backward());
    return { seq, lora, report };
  }

  test('no weight-gradient matmul for the frozen base W; base weights keep grad null', () => {
    const { seq, lora, report } = backwardMatmuls(false);
    // layer 2: dx through its base W (1), B: dB and dh (2), A: dA and dx (2); layer 0's base linear
    // (input and W without grad) recorded nothing; its B: dB and dh (2), A: dA only (1). 8 in all.
    expect(report.kernels.matmul).toBe(8);
    for (const l of lora.layers) {
      expect(l.base.weight.grad).toBeNull();
      expect(l.base.bias?.grad ?? null).toBeNull();
      expect(l.loraA.weight.grad).not.toBeNull();
      expect(l.loraB.weight.grad).not.toBeNull();
    }
    // no backward node computed a gradient for a base weight
    const baseWeights = new Set(['0.weight', '2.weight']);
    for (const node of report.backwardNodes) {
      node.inputNames.forEach((n, i) => {
        if (n && baseWeights.has(n)) expect(node.computed[i]).toBe(false);
      });
    }
    expect(report.backwardNodes.some((n) => n.op === 'linear' && n.inputNames[1] === '2.weight')).toBe(true);
    expect(seq.getParameter('2.weight').requiresGrad).toBe(false);
    // the same model with its base weights trainable runs the two dW matmuls LoRA avoids
    const full = backwardMatmuls(true);
    expect(full.report.kernels.matmul).toBe(10);
    expect(full.lora.layers.every((l) => l.base.weight.grad !== null)).toBe(true);
  });
});
