import { DTypeError, Generator, ShapeError, Tensor, ValueError, gradcheck, manualSeed, nn, noGrad, randn, tensor } from '../../src';
import { expectClose, flat } from '../helpers';

const { LlamaForCausalLM, KVCache, Linear, TiedLinear, applyRotary, llamaConfigFromHF, resolveLlamaConfig, rotaryTables } = nn;
type Model = InstanceType<typeof LlamaForCausalLM>;

const i32 = (rows: number[][]) => tensor(rows, { dtype: 'int32' });
const f64 = (data: number[]) => tensor(data, { dtype: 'float64' });

/** The test model: hidden 16, 4 heads of 4, 2 key/value heads, intermediate 32, vocab 50. */
function small(overrides: Partial<nn.LlamaConfig> = {}): Model {
  return new LlamaForCausalLM({
    vocabSize: 50,
    hiddenSize: 16,
    intermediateSize: 32,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    maxPositionEmbeddings: 64,
    // a wider init than HF's 0.02 so that attention patterns and logits are far from uniform
    initializerRange: 0.3,
    dtype: 'float64',
    ...overrides,
  });
}

/** Random token ids [b, t] in [0, vocab). */
function randomIds(b: number, t: number, vocab: number, seed: number): number[][] {
  const g = new Generator(seed);
  return Array.from({ length: b }, () => Array.from({ length: t }, () => g.randint(0, vocab)));
}

/** Logits [b, t, V] as nested number arrays. */
const logitsOf = (m: Model, ids: number[][], options: nn.LlamaForwardOptions = {}) =>
  noGrad(() => m.forward(i32(ids), options).logits.toArray()) as number[][][];

const rowsClose = (a: number[][], b: number[][], tol: number) => expectClose(a.flat(), b.flat(), tol);

// ------------------------------------------------------------------ (1) names and shapes

describe('LlamaForCausalLM parameters', () => {
  // transformers' LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32,
  // num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)).named_parameters()
  const layer = (i: number): [string, number[]][] => [
    [`model.layers.${i}.self_attn.q_proj.weight`, [16, 16]],
    [`model.layers.${i}.self_attn.k_proj.weight`, [8, 16]],
    [`model.layers.${i}.self_attn.v_proj.weight`, [8, 16]],
    [`model.layers.${i}.self_attn.o_proj.weight`, [16, 16]],
    [`model.layers.${i}.mlp.gate_proj.weight`, [32, 16]],
    [`model.layers.${i}.mlp.up_proj.weight`, [32, 16]],
    [`model.layers.${i}.mlp.down_proj.weight`, [16, 32]],
    [`model.layers.${i}.input_layernorm.weight`, [16]],
    [`model.layers.${i}.post_attention_layernorm.weight`, [16]],
  ];
  const hf: [string, number[]][] = [
    ['model.embed_tokens.weight', [50, 16]],
    ...layer(0),
    ...layer(1),
    ['model.norm.weight', [16]],
    ['lm_head.weight', [50, 16]],
  ];

  test('names, shapes and order are those of Hugging Face', () => {
    const m = small({ dtype: 'float32' });
    expect(m.namedParameters().map(([n, p]) => [n, [...p.shape]])).toEqual(hf);
    expect(Object.keys(m.stateDict())).toEqual(hf.map(([n]) => n)); // no rotary buffers in the state dict
    for (const [name, p] of m.namedParameters()) {
      expect(p.name).toBe(name);
      expect(p.requiresGrad).toBe(true);
      expect(p.dtype).toBe('float32');
    }
    expect(m.numParameters()).toBe(hf.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0));
    expect(m.lmHead).toBeInstanceOf(Linear);
    expect(m.model.layers.at(1).selfAttn.kProj.bias).toBeNull();
    expect(m.getSubmodule('model.layers.1.mlp')).toBe(m.model.layers.at(1).mlp);
  });

  test('tied embeddings: lm_head is the embedding tensor, listed once, in the state dict twice', () => {
    const m = small({ tieWordEmbeddings: true });
    const names = m.namedParameters().map(([n]) => n);
    expect(names).toEqual(hf.slice(0, -1).map(([n]) => n));
    expect(m.lmHead).toBeInstanceOf(TiedLinear);
    expect(m.lmHead.weight).toBe(m.model.embedTokens.weight);
    const sd = m.stateDict();
    expect(Object.keys(sd)).toEqual(hf.map(([n]) => n));
    expect(sd['lm_head.weight'].buffer).toBe(sd['model.embed_tokens.weight'].buffer);
    // loading a state dict with either key alone fills the shared tensor
    const other = small({ tieWordEmbeddings: true, seed: 9 });
    const { 'lm_head.weight': _dropped, ...withoutHead } = other.stateDict();
    m.loadStateDict(withoutHead);
    expect(flat(m.lmHead.weight)).toEqual(flat(other.model.embedTokens.weight));
    // the logits are hidden · embeddingᵀ
    const ids = [[1, 2, 3]];
    const h = noGrad(() => m.model.forward(i32(ids)).lastHiddenState.toArray()) as number[][][];
    const e = m.model.embedTokens.weight.toArray() as number[][];
    const expected = h[0].map((row) => e.map((er) => er.reduce((s, x, k) => s + x * row[k], 0)));
    rowsClose(logitsOf(m, ids)[0], expected, 1e-12);
  });

  test('initialisation: N(0, initializerRange) from config.seed, norms 1, the global generator untouched', () => {
    const probe = () => flat(randn([4]));
    manualSeed(5);
    const before = probe();
    manualSeed(5);
    const m = new LlamaForCausalLM({ vocabSize: 64, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 1, numAttentionHeads: 4 });
    expect(probe()).toEqual(before);
    const w = flat(m.model.layers.at(0).mlp.upProj.weight);
    const mu = w.reduce((s, x) => s + x, 0) / w.length;
    const sd = Math.sqrt(w.reduce((s, x) => s + (x - mu) ** 2, 0) / w.length);
    expect(Math.abs(mu)).toBeLessThan(0.002);
    expect(sd).toBeGreaterThan(0.019);
    expect(sd).toBeLessThan(0.021);
    expect(flat(m.model.norm.weight).every((x) => x === 1)).toBe(true);
    expect(flat(m.model.layers.at(0).inputLayernorm.weight).every((x) => x === 1)).toBe(true);
    const again = new LlamaForCausalLM({ ...m.config });
    expect(flat(again.lmHead.weight)).toEqual(flat(m.lmHead.weight));
    const reseeded = new LlamaForCausalLM({ ...m.config, seed: 1 });
    expect(flat(reseeded.lmHead.weight)).not.toEqual(flat(m.lmHead.weight));
  });

  test('only the active block gets gradients (BAdam-style freezing by name prefix)', () => {
    const m = small();
    m.requiresGrad_(false);
    for (const [name, p] of m.namedParameters()) if (name.startsWith('model.layers.1.')) p.requiresGrad_(true);
    const ids = randomIds(2, 5, 50, 3);
    const { loss } = m.forward(i32(ids), { labels: i32(ids) });
    (loss as Tensor).backward();
    for (const [name, p] of m.namedParameters()) {
      if (name.startsWith('model.layers.1.')) expect(p.grad).not.toBeNull();
      else expect(p.grad).toBeNull();
    }
  });
});

// ------------------------------------------------------------------ (2) causality

test('logits at position t do not depend on tokens after t', () => {
  const m = small();
  const a = [[5, 9, 13, 2, 40, 7]];
  const b = [[5, 9, 13, 31, 0, 49]];
  const la = logitsOf(m, a)[0];
  const lb = logitsOf(m, b)[0];
  rowsClose(lb.slice(0, 3), la.slice(0, 3), 1e-13);
  // and the later positions do change (the test could fail)
  expect(Math.max(...la[3].map((x, i) => Math.abs(x - lb[3][i])))).toBeGreaterThan(1e-3);
});

// ------------------------------------------------------------------ (3) key/value cache

describe('KV cache', () => {
  test('cached step-by-step forwards give the full forward logits', () => {
    const m = small();
    const ids = randomIds(2, 7, 50, 11);
    const full = logitsOf(m, ids);
    const pieces = [[0, 3], [3, 4], [4, 6], [6, 7]]; // a prompt of 3, one token, two tokens, one token
    let cache: nn.KVCache | undefined;
    const got: number[][][] = [[], []];
    for (const [s, e] of pieces) {
      const out = noGrad(() => m.forward(i32(ids.map((r) => r.slice(s, e))), { pastKeyValues: cache, useCache: true }));
      const prev = cache;
      cache = out.pastKeyValues as nn.KVCache;
      expect(cache).toBeInstanceOf(KVCache);
      expect(cache.length).toBe(e);
      if (prev) expect(prev.length).toBe(s); // the cache passed in is not modified
      const lg = out.logits.toArray() as number[][][];
      lg.forEach((row, b) => got[b].push(...row));
    }
    rowsClose(got[0], full[0], 1e-12);
    rowsClose(got[1], full[1], 1e-12);
    const kv = (cache as nn.KVCache).layers;
    expect(kv.length).toBe(2);
    expect(kv[1].key.shape).toEqual([2, 2, 7, 4]); // [B, Hkv, S, D]
    expect(kv[1].value.shape).toEqual([2, 2, 7, 4]);
  });

  test('the cache is detached while the current step still gets gradients', () => {
    const m = small();
    const { pastKeyValues } = m.forward(i32([[1, 2, 3]]), { useCache: true });
    const kv = (pastKeyValues as nn.KVCache).layers[0];
    expect(kv.key.requiresGrad).toBe(false);
    expect(kv.value.requiresGrad).toBe(false);
    const { loss } = m.forward(i32([[4, 5]]), { pastKeyValues, labels: i32([[4, 5]]) });
    (loss as Tensor).backward();
    expect(m.model.layers.at(0).selfAttn.qProj.weight.grad).not.toBeNull();
  });

  test('generate() with the cache gives the tokens of a greedy loop over the full sequence', () => {
    const m = small();
    const prompt = [[3, 17, 8]];
    const generated = flat(m.generate(i32(prompt), { maxNewTokens: 8, temperature: 0 }));
    const seq = [...prompt[0]];
    for (let i = 0; i < 8; i++) {
      const last = logitsOf(m, [seq])[0][seq.length - 1];
      seq.push(last.indexOf(Math.max(...last)));
    }
    expect(generated).toEqual(seq);
    // a batch generates each row as on its own
    const batch = m.generate(i32([prompt[0], [9, 9, 1]]), { maxNewTokens: 8, temperature: 0 });
    expect(batch.dtype).toBe('int32');
    expect(batch.shape).toEqual([2, 11]);
    expect((batch.toArray() as number[][])[0]).toEqual(seq);
    expect((batch.toArray() as number[][])[1]).toEqual(flat(m.generate(i32([[9, 9, 1]]), { maxNewTokens: 8, temperature: 0 })));
  });

  test('sampling: seeded, topK 1 is greedy, eosTokenId stops', () => {
    const m = small({ initializerRange: 0.05 }); // flatter distributions, so samples vary
    const prompt = i32([[1, 2]]);
    const s1 = flat(m.generate(prompt, { maxNewTokens: 12, seed: 7 }));
    const s2 = flat(m.generate(prompt, { maxNewTokens: 12, seed: 7 }));
    const s3 = flat(m.generate(prompt, { maxNewTokens: 12, seed: 8 }));
    expect(s1).toEqual(s2);
    expect(s1).not.toEqual(s3);
    const greedy = flat(m.generate(prompt, { maxNewTokens: 12, temperature: 0 }));
    expect(flat(m.generate(prompt, { maxNewTokens: 12, topK: 1, seed: 3 }))).toEqual(greedy);
    // stop at the first sampled token used as eos: the output ends with it
    const eos = s1[4];
    const stopped = flat(m.generate(prompt, { maxNewTokens: 12, seed: 7, eosTokenId: eos }));
    expect(stopped).toEqual(s1.slice(0, s1.indexOf(eos, 2) + 1));
    expect(flat(m.generate(prompt, { maxNewTokens: 0 }))).toEqual([1, 2]);
  });

  test('topK samples only among the k most likely tokens', () => {
    const m = small({ initializerRange: 0.05 });
    const last = logitsOf(m, [[1, 2]])[0][1];
    const top3 = [...last.keys()].sort((x, y) => last[y] - last[x]).slice(0, 3);
    const seen = new Set<number>();
    for (let seed = 0; seed < 40; seed++) seen.add(flat(m.generate(i32([[1, 2]]), { maxNewTokens: 1, topK: 3, temperature: 5, seed }))[2]);
    expect([...seen].every((t) => top3.includes(t))).toBe(true);
    expect(seen.size).toBe(3); // at temperature 5 all three come up in 40 draws
  });
});

// ------------------------------------------------------------------ (4) gradcheck

describe('gradcheck of the causal-LM loss', () => {
  /**
   * gradcheck(fn, inputs) differentiates fn with respect to `inputs`, and for the numeric side
   * calls fn again with one input replaced by a fresh perturbed tensor. We pass the parameter
   * tensors themselves as the inputs, so the analytic pass differentiates the real model. The
   * closure then makes the model compute with whatever it was handed: a parameter given as a new
   * tensor has its storage pointed at that tensor (setData_, PyTorch's `param.data = x`), and a
   * parameter given as itself is pointed back at its original storage (an earlier numeric call
   * may have swapped it). Afterwards every parameter is restored.
   */
  function checkLoss(m: Model, names: string[], ids: number[][], labels: number[][]): void {
    const params = names.map((n) => m.getParameter(n));
    const original = params.map((p) => p.detach());
    const loss = (...ws: Tensor[]) => {
      ws.forEach((w, i) => params[i].setData_(w === params[i] ? original[i] : w));
      return m.forward(i32(ids), { labels: i32(labels) }).loss as Tensor;
    };
    try {
      expect(gradcheck(loss, params).ok).toBe(true);
    } finally {
      params.forEach((p, i) => p.setData_(original[i]));
    }
  }
  const tiny = (overrides: Partial<nn.LlamaConfig> = {}) =>
    new LlamaForCausalLM({
      vocabSize: 11,
      hiddenSize: 8,
      intermediateSize: 12,
      numHiddenLayers: 2,
      numAttentionHeads: 2,
      numKeyValueHeads: 1,
      initializerRange: 0.5,
      dtype: 'float64',
      seed: 4,
      ...overrides,
    });

  test('attention, MLP, norms, embedding and head (2 layers, GQA)', () => {
    const m = tiny();
    checkLoss(
      m,
      [
        'model.layers.0.self_attn.q_proj.weight',
        'model.layers.0.self_attn.k_proj.weight',
        'model.layers.0.self_attn.v_proj.weight',
        'model.layers.1.self_attn.o_proj.weight',
        'model.layers.1.mlp.gate_proj.weight',
        'model.layers.0.input_layernorm.weight',
        'model.layers.1.post_attention_layernorm.weight',
        'model.norm.weight',
        'model.embed_tokens.weight',
      ],
      [[3, 7, 1], [10, 0, 5]],
      [[3, 7, 1], [10, -100, 5]],
    );
  });

  test('tied embeddings get the gradient of both uses', () => {
    const m = tiny({ numHiddenLayers: 1, tieWordEmbeddings: true });
    checkLoss(m, ['model.embed_tokens.weight', 'model.layers.0.mlp.down_proj.weight'], [[2, 9, 4]], [[2, 9, 4]]);
  });
});

// ------------------------------------------------------------------ (5) rotary embeddings

describe('rotary embeddings', () => {
  const D = 8;
  const theta = 10000;
  /** Hand-rolled RoPE of one vector at position p in HF's layout (pairs j and j + D/2). */
  function rope(x: number[], p: number): number[] {
    const out = new Array<number>(D);
    for (let j = 0; j < D / 2; j++) {
      const angle = p / Math.pow(theta, (2 * j) / D);
      out[j] = x[j] * Math.cos(angle) - x[j + D / 2] * Math.sin(angle);
      out[j + D / 2] = x[j + D / 2] * Math.cos(angle) + x[j] * Math.sin(angle);
    }
    return out;
  }
  const g = new Generator(21);
  const vec = () => Array.from({ length: D }, () => g.normal());

  test('applyRotary matches the hand-rolled rotation', () => {
    const positions = [0, 1, 5, 17];
    const xs = positions.map(() => vec());
    // [B=1, H=1, T=4, D]
    const x = f64(xs.flat()).reshape([1, 1, 4, D]);
    const got = flat(applyRotary(x, rotaryTables(positions, D, theta, 'float64')));
    expectClose(got, positions.flatMap((p, i) => rope(xs[i], p)), 1e-14);
    // position 0 is the identity
    expectClose(got.slice(0, D), xs[0], 0);
  });

  test('q·k after rotation depends only on the relative position', () => {
    const q = vec();
    const k = vec();
    const score = (m: number, n: number) => {
      const tables = rotaryTables([m, n], D, theta, 'float64');
      const r = flat(applyRotary(f64([...q, ...k]).reshape([1, 1, 2, D]), tables));
      return r.slice(0, D).reduce((s, x, i) => s + x * r[D + i], 0);
    };
    expect(score(13, 10)).toBeCloseTo(score(5, 2), 12);
    expect(score(40, 37)).toBeCloseTo(score(5, 2), 12);
    expect(Math.abs(score(6, 2) - score(5, 2))).toBeGreaterThan(1e-3);
  });

  test('shifting every position by a constant leaves the logits unchanged', () => {
    const m = small();
    const ids = randomIds(2, 5, 50, 8);
    const shifted = i32(ids.map(() => [7, 8, 9, 10, 11]));
    rowsClose(logitsOf(m, ids, { positionIds: shifted }).flat(), logitsOf(m, ids).flat(), 1e-10);
  });
});

// ------------------------------------------------------------------ (6) grouped-query attention

test('GQA equals multi-head attention with each key/value head repeated (HF repeat_kv order)', () => {
  const gqa = small(); // 4 query heads, 2 key/value heads: heads 0,1 read kv head 0; heads 2,3 kv head 1
  const mha = small({ numKeyValueHeads: 4, seed: 99 });
  const D = 4;
  const repeatRows = (w: Tensor, kvOf: (h: number) => number) => {
    const rows = w.toArray() as number[][];
    return tensor([0, 1, 2, 3].flatMap((h) => rows.slice(kvOf(h) * D, (kvOf(h) + 1) * D)), { dtype: 'float64' });
  };
  const load = (kvOf: (h: number) => number) => {
    const sd: Record<string, Tensor> = { ...gqa.stateDict() };
    for (const key of Object.keys(sd)) if (/\.(k|v)_proj\./.test(key)) sd[key] = repeatRows(sd[key], kvOf);
    mha.loadStateDict(sd);
  };
  const ids = randomIds(2, 6, 50, 5);
  load((h) => Math.floor(h / 2));
  rowsClose(logitsOf(mha, ids).flat(), logitsOf(gqa, ids).flat(), 1e-12);
  // the other order (h mod 2) is a different model
  load((h) => h % 2);
  const ref = logitsOf(gqa, ids).flat(2);
  const diff = Math.max(...logitsOf(mha, ids).flat(2).map((x, i) => Math.abs(x - ref[i])));
  expect(diff).toBeGreaterThan(1e-4);
});

// ------------------------------------------------------------------ (7) padding

describe('attentionMask', () => {
  const m = small();
  const a = [4, 8, 15, 16, 23];
  const b = [42, 7, 19];
  const PAD = 0;

  test('right padding: the real tokens get the logits of the unpadded run, and the loss ignores pads', () => {
    const ids = [a, [...b, PAD, PAD]];
    const lg = logitsOf(m, ids, { attentionMask: i32([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]) });
    rowsClose(lg[0], logitsOf(m, [a])[0], 1e-12);
    rowsClose(lg[1].slice(0, 3), logitsOf(m, [b])[0], 1e-12);
    const padded = noGrad(() => m.forward(i32([[...b, PAD, PAD]]), { attentionMask: i32([[1, 1, 1, 0, 0]]), labels: i32([[...b, -100, -100]]) }));
    const plain = noGrad(() => m.forward(i32([b]), { labels: i32([b]) }));
    expect((padded.loss as Tensor).item()).toBeCloseTo((plain.loss as Tensor).item(), 12);
  });

  test('left padding: the mask hides the pads, and positions may or may not count them', () => {
    const ids = [[PAD, PAD, ...b]];
    const mask = i32([[0, 0, 1, 1, 1]]);
    const expected = logitsOf(m, [b])[0];
    // HF's generate: position_ids = cumsum(mask) − 1 with padding positions set to 1, so the real
    // tokens sit at 0, 1, 2 as in the unpadded run
    const positions = i32([[1, 1, 0, 1, 2]]);
    rowsClose(logitsOf(m, ids, { attentionMask: mask, positionIds: positions })[0].slice(2), expected, 1e-12);
    // the default positions (0..T−1, as HF's forward) put them at 2, 3, 4; rotary attention sees
    // relative positions only, so with the pads masked the logits agree up to rounding
    rowsClose(logitsOf(m, ids, { attentionMask: mask })[0].slice(2), expected, 1e-10);
    // without the mask the real tokens attend to the pads
    const unmasked = logitsOf(m, ids, { positionIds: positions })[0].slice(2).flat();
    expect(Math.max(...unmasked.map((v, i) => Math.abs(v - expected.flat()[i])))).toBeGreaterThan(1e-4);
  });

  test('generate() on a left-padded batch gives each prompt its own continuation', () => {
    const prompts = i32([[PAD, PAD, ...b], a]);
    const mask = i32([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]);
    const out = m.generate(prompts, { maxNewTokens: 5, temperature: 0, attentionMask: mask }).toArray() as number[][];
    expect(out[0].slice(2)).toEqual(flat(m.generate(i32([b]), { maxNewTokens: 5, temperature: 0 })));
    expect(out[1]).toEqual(flat(m.generate(i32([a]), { maxNewTokens: 5, temperature: 0 })));
  });
});

// ------------------------------------------------------------------ (8) config from HF

describe('llamaConfigFromHF', () => {
  const json = {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: 64,
    initializer_range: 0.02,
    intermediate_size: 172,
    max_position_embeddings: 512,
    model_type: 'llama',
    num_attention_heads: 8,
    num_hidden_layers: 3,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 500000,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    use_cache: true,
    vocab_size: 320,
  };

  test('maps snake_case keys, fills defaults, ignores unknown keys', () => {
    expect(llamaConfigFromHF(json)).toEqual({
      vocabSize: 320,
      hiddenSize: 64,
      intermediateSize: 172,
      numHiddenLayers: 3,
      numAttentionHeads: 8,
      numKeyValueHeads: 2,
      headDim: 8,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling: null,
      maxPositionEmbeddings: 512,
      tieWordEmbeddings: true,
      initializerRange: 0.02,
      dtype: 'float32',
      seed: 0,
    });
    const minimal = llamaConfigFromHF(
      { vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: null, head_dim: 6 },
      { dtype: 'float64', seed: 3 },
    );
    expect(minimal).toMatchObject({ numKeyValueHeads: 2, headDim: 6, rmsNormEps: 1e-6, ropeTheta: 10000, tieWordEmbeddings: false, dtype: 'float64', seed: 3 });
    // an explicit head_dim decouples the projections from hidden_size, as in HF
    const m = new LlamaForCausalLM(minimal);
    expect(m.getParameter('model.layers.0.self_attn.q_proj.weight').shape).toEqual([12, 8]);
    expect(m.getParameter('model.layers.0.self_attn.o_proj.weight').shape).toEqual([8, 12]);
    expect(m.forward(i32([[1, 2, 3]])).logits.shape).toEqual([1, 3, 10]);
  });

  test('refuses what it cannot represent, naming the key', () => {
    expect(() => llamaConfigFromHF({ ...json, hidden_size: '64' })).toThrow(/hidden_size must be a number/);
    expect(() => llamaConfigFromHF({ ...json, tie_word_embeddings: 1 })).toThrow(/tie_word_embeddings must be a boolean/);
    expect(() => llamaConfigFromHF({ ...json, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toThrow(/rope_scaling/);
    expect(() => llamaConfigFromHF({ ...json, mlp_bias: true })).toThrow(/mlp_bias/);
    expect(() => llamaConfigFromHF({ ...json, hidden_act: 'gelu' })).toThrow(/hidden_act/);
    expect(() => llamaConfigFromHF({ ...json, num_attention_heads: 6 })).toThrow(ValueError);
  });
});

// ------------------------------------------------------------------ (9) errors

describe('errors', () => {
  const base = { vocabSize: 50, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 2, numAttentionHeads: 4 };

  test('bad configs name the field', () => {
    const bad: [Partial<nn.LlamaConfig>, RegExp][] = [
      [{ hiddenSize: 18 }, /hiddenSize \(18\) must be divisible by numAttentionHeads \(4\)/],
      [{ numKeyValueHeads: 3 }, /numAttentionHeads \(4\) must be divisible by numKeyValueHeads \(3\)/],
      [{ numHiddenLayers: 0 }, /numHiddenLayers must be a positive integer/],
      [{ vocabSize: 2.5 }, /vocabSize must be a positive integer/],
      [{ headDim: 5 }, /headDim must be a positive even integer/],
      [{ rmsNormEps: -1 }, /rmsNormEps/],
      [{ ropeTheta: 0 }, /ropeTheta/],
      [{ maxPositionEmbeddings: 0 }, /maxPositionEmbeddings/],
      [{ dtype: 'int32' }, /dtype/],
    ];
    for (const [patch, message] of bad) {
      expect(() => resolveLlamaConfig({ ...base, ...patch })).toThrow(message);
      expect(() => new LlamaForCausalLM({ ...base, ...patch })).toThrow(ValueError);
    }
  });

  test('bad inputs are refused before any work', () => {
    const m = small({ maxPositionEmbeddings: 8 });
    expect(() => m.forward(i32([[1, 50, 2]]))).toThrow(/token id 50 at \[0,1\] is out of range for vocabSize 50/);
    expect(() => m.forward(i32([[1, -1]]))).toThrow(ValueError);
    expect(() => m.forward(tensor([[1, 2]]))).toThrow(DTypeError);
    expect(() => m.forward(tensor([1, 2], { dtype: 'int32' }))).toThrow(/unsqueeze\(0\)/);
    expect(() => m.forward(i32([[1, 2, 3, 4, 5, 6, 7, 8, 9]]))).toThrow(/9 positions, more than maxPositionEmbeddings \(8\)/);
    const { pastKeyValues } = m.forward(i32([[1, 2, 3, 4, 5]]), { useCache: true });
    expect(() => m.forward(i32([[1, 2, 3, 4]]), { pastKeyValues })).toThrow(/5 cached positions make 9 positions/);
    expect(() => m.forward(i32([[1], [2]]), { pastKeyValues })).toThrow(ShapeError); // batch 2 against a batch-1 cache
    expect(() => m.forward(i32([[1, 2]]), { attentionMask: i32([[1, 1, 1]]) })).toThrow(/attentionMask must have shape \[1,2\]/);
    expect(() => m.forward(i32([[1, 2]]), { labels: i32([[1, 2, 3]]) })).toThrow(ShapeError);
    expect(() => m.forward(i32([[1, 2]]), { labels: tensor([[1, 2]]) })).toThrow(DTypeError);
    expect(() => m.forward(i32([[1, 2]]), { labels: i32([[1, 60]]) })).toThrow(/out of range/);
    expect(() => m.forward(i32([[1]]), { labels: i32([[1]]) })).toThrow(/at least 2 positions/);
    expect(() => m.generate(i32([[1, 2, 3]]), { maxNewTokens: 6 })).toThrow(/exceeds maxPositionEmbeddings \(8\)/);
    expect(() => m.generate(i32([[1]]), { maxNewTokens: 2, temperature: -1 })).toThrow(/temperature/);
    expect(() => m.generate(i32([[1]]), { maxNewTokens: 2, topK: 0 })).toThrow(/topK/);
    expect(() => m.generate(i32([[1]]), { maxNewTokens: 2, eosTokenId: 50 })).toThrow(/eosTokenId/);
  });
});

// ------------------------------------------------------------------ (10) float16

test("to('float16') gives finite logits close to float32", () => {
  const m = small({ dtype: 'float32', initializerRange: 0.1 });
  const ids = randomIds(2, 6, 50, 13);
  const labels = i32(ids);
  const ref = logitsOf(m, ids).flat(2);
  const refLoss = (noGrad(() => m.forward(i32(ids), { labels }).loss) as Tensor).item();
  m.to('float16');
  const out = noGrad(() => m.forward(i32(ids), { labels }));
  expect(out.logits.dtype).toBe('float16');
  expect((out.loss as Tensor).dtype).toBe('float32');
  const half = flat(out.logits);
  expect(half.every(Number.isFinite)).toBe(true);
  const scale = Math.max(...ref.map(Math.abs));
  expect(scale).toBeGreaterThan(0.05);
  expectClose(half, ref, 0.02);
  expect((out.loss as Tensor).item()).toBeCloseTo(refLoss, 2);
  // generation runs in float16 too, the cache in float16
  const gen = m.generate(i32([ids[0]]), { maxNewTokens: 3, temperature: 0 });
  expect(gen.shape).toEqual([1, 9]);
  // a cache from the float16 model is float16
  const { pastKeyValues } = m.forward(i32([[1, 2]]), { useCache: true });
  expect((pastKeyValues as nn.KVCache).layers[0].key.dtype).toBe('float16');
});
