/**
 * Module: registration rules, the tree walks (namedParameters, namedModules, buffers), shared
 * parameters and modules, state dicts (strict and non-strict loading, tied weights, all-or-
 * nothing writes), modes, freezing, parameter counts, dtype conversion and its memory accounting.
 */
import {
  Dropout,
  Embedding,
  Generator,
  LayerNorm,
  Linear,
  Module,
  SiLU,
  StateDictError,
  Tensor,
  ValueError,
  backward,
  linear,
  memory,
  mul,
  randn,
  silu,
  sum,
  tensor,
  zeros,
} from '../../src';
import { roundToFloat16 } from '../../src/tensor/float16';
import { flat } from '../helpers';

/** fc1 -> act -> fc2 -> norm, an int32 persistent buffer and a non-persistent float buffer. */
class Net extends Module {
  readonly fc1: Linear;
  readonly act: SiLU;
  readonly fc2: Linear;
  readonly norm: LayerNorm;
  readonly step: Tensor;
  readonly cache: Tensor;

  constructor(seed = 1) {
    super();
    const generator = new Generator(seed);
    this.fc1 = this.registerModule('fc1', new Linear(4, 5, { generator }));
    this.act = this.registerModule('act', new SiLU());
    this.fc2 = this.registerModule('fc2', new Linear(5, 3, { generator }));
    this.norm = this.registerModule('norm', new LayerNorm(3));
    this.step = this.registerBuffer('step', tensor([7], { dtype: 'int32' }));
    this.cache = this.registerBuffer('cache', tensor([0.1, 0.2]), { persistent: false });
  }

  forward(x: Tensor): Tensor {
    return this.norm.forward(this.fc2.forward(this.act.forward(this.fc1.forward(x))));
  }
}

/** An embedding whose matrix is also registered as the output head's weight (Llama's tie_word_embeddings). */
class TiedLM extends Module {
  readonly embed: Embedding;
  readonly head: Module;

  constructor(seed = 3) {
    super();
    this.embed = this.registerModule('embed', new Embedding(6, 4, { generator: new Generator(seed) }));
    this.head = this.registerModule('head', new Module());
    this.head.registerParameter('weight', this.embed.weight);
  }
}

/** Parameter (and buffer) values by name, to compare before and after. */
function snapshot(m: Module): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [n, p] of m.namedParameters()) out[n] = flat(p);
  for (const [n, b] of m.namedBuffers()) out[`buffer:${n}`] = flat(b);
  return out;
}

function expectThrowsStateDict(fn: () => unknown): StateDictError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StateDictError);
    return e as StateDictError;
  }
  throw new Error('expected a StateDictError');
}

// ------------------------------------------------------------------ registration

describe('registration', () => {
  test('dotted, empty and duplicate names are rejected across parameters, buffers and modules', () => {
    const m = new Module();
    expect(() => m.registerParameter('a.b', zeros([2]))).toThrow(ValueError);
    expect(() => m.registerBuffer('a.b', zeros([2]))).toThrow(ValueError);
    expect(() => m.registerModule('a.b', new Module())).toThrow(ValueError);
    expect(() => m.registerParameter('', zeros([2]))).toThrow(ValueError);
    m.registerParameter('w', zeros([2]));
    expect(() => m.registerParameter('w', zeros([2]))).toThrow(/already registered/);
    expect(() => m.registerBuffer('w', zeros([2]))).toThrow(ValueError);
    expect(() => m.registerModule('w', new Module())).toThrow(ValueError);
    m.registerModule('child', new Module());
    expect(() => m.registerParameter('child', zeros([2]))).toThrow(ValueError);
    m.registerBuffer('buf', zeros([2]));
    expect(() => m.registerModule('buf', new Module())).toThrow(ValueError);
    // a null parameter still takes its name
    m.registerParameter('maybe', null);
    expect(() => m.registerParameter('maybe', zeros([1]))).toThrow(ValueError);
    expect(m.namedParameters().map(([n]) => n)).toEqual(['w']);
  });

  test('non-modules and non-tensors are rejected', () => {
    const m = new Module();
    expect(() => m.registerModule('x', {} as Module)).toThrow(ValueError);
    expect(() => m.registerParameter('p', [1, 2] as unknown as Tensor)).toThrow(ValueError);
    expect(() => m.registerBuffer('b', 3 as unknown as Tensor)).toThrow(ValueError);
    const computed = mul(zeros([2], { requiresGrad: true }), 2);
    expect(() => m.registerParameter('c', computed)).toThrow(ValueError);
    expect(m.namedParameters()).toEqual([]);
  });

  test('registerParameter turns on requiresGrad for floating tensors and tags them as weights', () => {
    const m = new Module();
    const w = m.registerParameter('w', zeros([3]));
    const idx = m.registerParameter('idx', tensor([1, 2], { dtype: 'int32' }));
    expect(w.requiresGrad).toBe(true);
    expect(idx.requiresGrad).toBe(false);
    expect(w.buffer.category).toBe('weights');
    const b = m.registerBuffer('b', zeros([3]));
    expect(b.requiresGrad).toBe(false);
  });
});

// ------------------------------------------------------------------ walking the tree

describe('tree walks', () => {
  /** root(p0, a(w, b, inner(x)), p1, c(y)) registered in that order */
  function tree() {
    const root = new Module();
    const p0 = root.registerParameter('p0', zeros([1]));
    const a = root.registerModule('a', new Module());
    const aw = a.registerParameter('w', zeros([2]));
    const inner = a.registerModule('inner', new Module());
    const ab = a.registerParameter('b', zeros([3]));
    const x = inner.registerParameter('x', zeros([4]));
    const p1 = root.registerParameter('p1', zeros([5]));
    const c = root.registerModule('c', new Module());
    const y = c.registerParameter('y', zeros([6]));
    return { root, a, inner, c, p0, p1, aw, ab, x, y };
  }

  test('namedParameters: each module own parameters in registration order, then its children depth first', () => {
    const { root, p0, p1, aw, ab, x, y } = tree();
    const named = root.namedParameters();
    // PyTorch's order: a module's own parameters, then each child's subtree (depth first)
    expect(named.map(([n]) => n)).toEqual(['p0', 'p1', 'a.w', 'a.b', 'a.inner.x', 'c.y']);
    expect(named.map(([, p]) => p)).toEqual([p0, p1, aw, ab, x, y]);
    expect(named[4][1]).toBe(x);
    expect(root.parameters()).toHaveLength(6);
    root.parameters().forEach((p, i) => expect(p).toBe(named[i][1]));
  });

  test('namedModules: the root as "" then every descendant depth first; namedChildren only direct', () => {
    const { root, a, inner, c } = tree();
    const mods = root.namedModules();
    expect(mods.map(([n]) => n)).toEqual(['', 'a', 'a.inner', 'c']);
    expect(mods.map(([, m]) => m)).toEqual([root, a, inner, c]);
    expect(mods[2][1]).toBe(inner);
    expect(root.modules()).toHaveLength(4);
    expect(root.namedChildren().map(([n]) => n)).toEqual(['a', 'c']);
    expect(root.namedModules('model').map(([n]) => n)).toEqual(['model', 'model.a', 'model.a.inner', 'model.c']);
  });

  test('a tensor registered twice in one module is listed once, under its first name', () => {
    const m = new Module();
    const t = zeros([3]);
    m.registerParameter('first', t);
    m.registerParameter('second', t);
    m.registerParameter('other', zeros([2]));
    expect(m.namedParameters().map(([n]) => n)).toEqual(['first', 'other']);
    expect(m.numParameters()).toBe(5);
    expect(m.getParameter('second')).toBe(t);
  });

  test('a submodule registered twice is walked once; a tied parameter counts once', () => {
    const root = new Module();
    const shared = new Linear(3, 2, { generator: new Generator(0) });
    root.registerModule('enc', shared);
    root.registerModule('dec', shared);
    expect(root.namedModules().map(([n]) => n)).toEqual(['', 'enc']);
    expect(root.namedParameters().map(([n]) => n)).toEqual(['enc.weight', 'enc.bias']);
    expect(root.numParameters()).toBe(8);
    expect(root.getSubmodule('dec')).toBe(shared);
    expect(root.getParameter('dec.weight')).toBe(shared.weight);

    const lm = new TiedLM();
    expect(lm.namedParameters().map(([n]) => n)).toEqual(['embed.weight']);
    expect(lm.parameters()).toEqual([lm.embed.weight]);
    expect(lm.numParameters()).toBe(24);
  });

  test('namedBuffers lists every buffer (persistent or not), a shared one once', () => {
    const net = new Net();
    expect(net.namedBuffers().map(([n]) => n)).toEqual(['step', 'cache']);
    const m = new Module();
    const b = zeros([2]);
    m.registerBuffer('x', b);
    m.registerBuffer('y', b);
    m.registerBuffer('none', null);
    expect(m.namedBuffers()).toEqual([['x', b]]);
  });

  test('getSubmodule and getParameter resolve dotted paths and name what is missing', () => {
    const { root, inner, x, aw } = tree();
    expect(root.getSubmodule('')).toBe(root);
    expect(root.getSubmodule('a.inner')).toBe(inner);
    expect(root.getParameter('a.inner.x')).toBe(x);
    expect(root.getParameter('a.w')).toBe(aw);
    expect(() => root.getSubmodule('a.nope')).toThrow(ValueError);
    expect(() => root.getSubmodule('a.nope')).toThrow(/no submodule 'nope'/);
    expect(() => root.getSubmodule('a.w')).toThrow(ValueError); // a parameter is not a submodule
    expect(() => root.getParameter('a.nope')).toThrow(ValueError);
    expect(() => root.getParameter('a.inner')).toThrow(ValueError); // a module is not a parameter
    expect(() => root.getParameter('zz.x')).toThrow(ValueError);
    const net = new Net();
    expect(() => net.getParameter('step')).toThrow(ValueError); // a buffer is not a parameter
    const m = new Module();
    m.registerParameter('gone', null);
    expect(() => m.getParameter('gone')).toThrow(ValueError);
  });

  test('nameParameters sets each tensor name to its dotted path (a tied one to its first name)', () => {
    const net = new Net();
    expect(net.nameParameters()).toBe(net);
    expect(net.fc1.weight.name).toBe('fc1.weight');
    expect(net.fc2.bias?.name).toBe('fc2.bias');
    expect(net.norm.weight?.name).toBe('norm.weight');
    expect(String(net.fc1.weight)).toContain('name=fc1.weight');
    const lm = new TiedLM().nameParameters();
    expect(lm.embed.weight.name).toBe('embed.weight');
  });

  test('apply visits every module once, pre-order', () => {
    const net = new Net();
    const seen: string[] = [];
    net.apply((m) => seen.push(m.constructor.name));
    expect(seen).toEqual(['Net', 'Linear', 'SiLU', 'Linear', 'LayerNorm']);
  });
});

// ------------------------------------------------------------------ state dicts

describe('stateDict', () => {
  test('parameters and persistent buffers, non-persistent buffers left out', () => {
    const net = new Net();
    const sd = net.stateDict();
    // PyTorch's order: a module's own parameters, then its own buffers, then each child's subtree
    expect(Object.keys(sd)).toEqual(['step', 'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias', 'norm.weight', 'norm.bias']);
    expect(flat(sd['step'])).toEqual([7]);
    expect(sd['fc1.weight'].shape).toEqual([5, 4]);
    // detached, storage shared with the parameter
    expect(sd['fc1.weight']).not.toBe(net.fc1.weight);
    expect(sd['fc1.weight'].requiresGrad).toBe(false);
    expect(sd['fc1.weight'].buffer).toBe(net.fc1.weight.buffer);
  });

  test('a tied parameter appears under both names; a shared module under both prefixes (as PyTorch)', () => {
    const lm = new TiedLM();
    const sd = lm.stateDict();
    expect(Object.keys(sd)).toEqual(['embed.weight', 'head.weight']);
    expect(flat(sd['head.weight'])).toEqual(flat(lm.embed.weight));

    const root = new Module();
    const shared = new Linear(3, 2);
    root.registerModule('enc', shared);
    root.registerModule('dec', shared);
    expect(Object.keys(root.stateDict())).toEqual(['enc.weight', 'enc.bias', 'dec.weight', 'dec.bias']);
  });
});

describe('loadStateDict', () => {
  test('copies values into the same tensor objects, which keep requiresGrad and their memory category', () => {
    const net = new Net(1);
    const src = new Net(2);
    setStep(src, 11);
    const objects = net.parameters();
    const result = net.loadStateDict(src.stateDict());
    expect(result).toEqual({ missingKeys: [], unexpectedKeys: [] });
    net.parameters().forEach((p, i) => expect(p).toBe(objects[i]));
    expect(snapshot(net)['fc1.weight']).toEqual(flat(src.fc1.weight));
    expect(snapshot(net)['fc2.bias']).toEqual(flat(src.fc2.bias as Tensor));
    expect(flat(net.step)).toEqual([11]);
    expect(net.fc1.weight.requiresGrad).toBe(true);
    expect(net.fc1.weight.buffer.category).toBe('weights');
    // a copy, not an alias: changing the source afterwards leaves the model alone
    expect(net.fc1.weight.buffer).not.toBe(src.fc1.weight.buffer);
  });

  test('casts to the model dtype: a float64 state dict into a float32 model', () => {
    const net = new Net();
    const sd: Record<string, Tensor> = {};
    const g = new Generator(5);
    for (const [k, t] of Object.entries(net.stateDict())) {
      sd[k] = t.dtype === 'int32' ? t : randn(t.shape, { dtype: 'float64', generator: g });
    }
    net.loadStateDict(sd);
    expect(net.fc1.weight.dtype).toBe('float32');
    expect(flat(net.fc1.weight)).toEqual(flat(sd['fc1.weight']).map(Math.fround));
    expect(flat(net.norm.bias as Tensor)).toEqual(flat(sd['norm.bias']).map(Math.fround));
  });

  test('strict: every missing, unexpected and mismatched key in one error, and nothing is written', () => {
    const net = new Net(1);
    const before = snapshot(net);
    const good = new Net(2).stateDict();
    // good keys first, the bad ones after them
    const sd: Record<string, Tensor> = {
      'fc1.weight': good['fc1.weight'],
      'fc1.bias': good['fc1.bias'],
      'fc2.weight': good['fc2.weight'],
      'fc2.bias': zeros([4]), // wrong shape
      'norm.weight': good['norm.weight'],
      'norm.extra': zeros([3]), // unexpected
      step: good['step'],
      'head.bias': zeros([1]), // unexpected
      // norm.bias missing
    };
    const err = expectThrowsStateDict(() => net.loadStateDict(sd));
    expect(err.missingKeys).toEqual(['norm.bias']);
    expect(err.unexpectedKeys).toEqual(['norm.extra', 'head.bias']);
    expect(err.mismatches).toHaveLength(1);
    expect(err.mismatches[0]).toMatch(/fc2\.bias.*\[4\].*\[3\]/);
    expect(err.message).toMatch(/missing keys: norm\.bias/);
    expect(err.message).toMatch(/unexpected keys: norm\.extra, head\.bias/);
    expect(err.message).toMatch(/Nothing was loaded/);
    expect(snapshot(net)).toEqual(before);
  });

  test('strict: a missing key alone or an unexpected key alone fails and writes nothing', () => {
    const net = new Net(1);
    const before = snapshot(net);
    const good = new Net(2).stateDict();
    const missing = { ...good };
    delete missing['step'];
    let err = expectThrowsStateDict(() => net.loadStateDict(missing));
    expect(err.missingKeys).toEqual(['step']);
    expect(err.unexpectedKeys).toEqual([]);
    expect(snapshot(net)).toEqual(before);

    err = expectThrowsStateDict(() => net.loadStateDict({ ...good, zzz: zeros([1]) }));
    expect(err.unexpectedKeys).toEqual(['zzz']);
    expect(err.missingKeys).toEqual([]);
    expect(snapshot(net)).toEqual(before);
  });

  test('bad values after good ones (not a tensor, a disposed tensor, int into float) write nothing', () => {
    const net = new Net(1);
    const before = snapshot(net);
    const good = new Net(2).stateDict();
    const bads: [string, unknown][] = [
      ['norm.bias', 3],
      ['norm.bias', null],
      ['norm.bias', tensor([1, 2, 3], { dtype: 'int32' })],
      ['step', zeros([1])], // float into an int32 buffer
    ];
    const disposed = zeros([3]);
    disposed.dispose();
    bads.push(['norm.bias', disposed]);
    for (const [key, value] of bads) {
      const sd = { ...good, [key]: value as Tensor };
      const err = expectThrowsStateDict(() => net.loadStateDict(sd));
      expect(err.mismatches).toHaveLength(1);
      expect(err.mismatches[0]).toContain(key);
      expect(snapshot(net)).toEqual(before);
    }
  });

  test('keys that are Object.prototype names are unexpected, not silently accepted', () => {
    const net = new Net(1);
    const before = snapshot(net);
    const sd = { ...new Net(2).stateDict(), toString: zeros([1]), constructor: zeros([1]) } as Record<string, Tensor>;
    const err = expectThrowsStateDict(() => net.loadStateDict(sd));
    expect(err.unexpectedKeys.sort()).toEqual(['constructor', 'toString']);
    expect(snapshot(net)).toEqual(before);
    // and a model key is not "present" just because the object inherits something under that name
    const m = new Module();
    m.registerParameter('valueOf', zeros([1]));
    const e2 = expectThrowsStateDict(() => m.loadStateDict({}));
    expect(e2.missingKeys).toEqual(['valueOf']);
  });

  test('non-strict: loads what matches and returns the missing and unexpected keys', () => {
    const net = new Net(1);
    const src = new Net(2);
    const before = snapshot(net);
    const sd = { 'fc1.weight': src.stateDict()['fc1.weight'], bogus: zeros([2]) };
    const result = net.loadStateDict(sd, { strict: false });
    expect(result.missingKeys).toEqual(['step', 'fc1.bias', 'fc2.weight', 'fc2.bias', 'norm.weight', 'norm.bias']);
    expect(result.unexpectedKeys).toEqual(['bogus']);
    expect(flat(net.fc1.weight)).toEqual(flat(src.fc1.weight));
    expect(flat(net.fc1.bias as Tensor)).toEqual(before['fc1.bias']);
  });

  test('non-strict: a shape mismatch still fails, reports only mismatches, and writes nothing', () => {
    const net = new Net(1);
    const before = snapshot(net);
    const good = new Net(2).stateDict();
    const err = expectThrowsStateDict(() =>
      net.loadStateDict({ 'fc1.weight': good['fc1.weight'], 'fc2.weight': zeros([5, 3]), extra: zeros([1]) }, { strict: false }),
    );
    expect(err.mismatches).toHaveLength(1);
    expect(err.mismatches[0]).toContain('fc2.weight');
    expect(err.missingKeys).toEqual([]);
    expect(err.unexpectedKeys).toEqual([]);
    expect(snapshot(net)).toEqual(before);
  });

  test('a tied weight is satisfied by either of its names', () => {
    for (const key of ['embed.weight', 'head.weight']) {
      const lm = new TiedLM(3);
      const values = randn([6, 4], { generator: new Generator(9) });
      expect(lm.loadStateDict({ [key]: values })).toEqual({ missingKeys: [], unexpectedKeys: [] });
      expect(flat(lm.embed.weight)).toEqual(flat(values));
      expect(lm.head.getParameter('weight')).toBe(lm.embed.weight);
    }
    const lm = new TiedLM(3);
    const err = expectThrowsStateDict(() => lm.loadStateDict({}));
    expect(err.missingKeys).toEqual(['embed.weight', 'head.weight']);
    // a round trip through its own state dict
    const other = new TiedLM(4);
    other.loadStateDict(new TiedLM(3).stateDict());
    expect(flat(other.embed.weight)).toEqual(flat(new TiedLM(3).embed.weight));
  });

  test('a shared submodule is satisfied by either prefix', () => {
    const make = (seed: number) => {
      const root = new Module();
      const shared = new Linear(3, 2, { generator: new Generator(seed) });
      root.registerModule('enc', shared);
      root.registerModule('dec', shared);
      return { root, shared };
    };
    const src = make(2).shared;
    const { root, shared } = make(1);
    const result = root.loadStateDict({ 'dec.weight': src.weight.detach(), 'dec.bias': (src.bias as Tensor).detach() });
    expect(result.missingKeys).toEqual([]);
    expect(flat(shared.weight)).toEqual(flat(src.weight));
  });

  test('a round trip leaves the values equal and gradients still flow into the same objects', () => {
    const a = new Net(1);
    const b = new Net(2);
    b.loadStateDict(a.stateDict());
    const x = randn([2, 4], { generator: new Generator(3) });
    expect(flat(b.forward(x))).toEqual(flat(a.forward(x)));
    backward(sum(mul(b.forward(x), randn([2, 3], { generator: new Generator(4) }))));
    expect(b.fc1.weight.grad).not.toBeNull();
  });
});

/** Writes to an int32 buffer through the public load path. */
function setStep(net: Net, value: number): void {
  const sd = net.stateDict();
  net.loadStateDict({ ...sd, step: tensor([value], { dtype: 'int32' }) });
}

// ------------------------------------------------------------------ modes, freezing, counting

describe('modes and freezing', () => {
  test('train()/eval() set every module recursively, and Dropout follows', () => {
    const root = new Module();
    const block = root.registerModule('block', new Module());
    const drop = block.registerModule('drop', new Dropout(0.5, new Generator(0)));
    expect(root.training && block.training && drop.training).toBe(true);
    expect(root.eval()).toBe(root);
    expect([root.training, block.training, drop.training]).toEqual([false, false, false]);
    const x = randn([200], { generator: new Generator(1) });
    const y = drop.forward(x);
    expect(flat(y)).toEqual(flat(x));
    root.train();
    expect([root.training, block.training, drop.training]).toEqual([true, true, true]);
    const z = flat(drop.forward(x));
    const xs = flat(x);
    const zeroed = z.filter((v) => v === 0).length;
    expect(zeroed).toBeGreaterThan(60);
    expect(zeroed).toBeLessThan(140);
    z.forEach((v, i) => {
      if (v !== 0) expect(v).toBeCloseTo(2 * xs[i], 5);
    });
    root.train(false);
    expect(drop.training).toBe(false);
  });

  test('requiresGrad_ freezes and unfreezes every parameter; numParameters counts all or trainable', () => {
    const net = new Net();
    const total = 5 * 4 + 5 + 3 * 5 + 3 + 3 + 3;
    expect(net.numParameters()).toBe(total);
    expect(net.numParameters({ trainableOnly: true })).toBe(total);
    expect(net.requiresGrad_(false)).toBe(net);
    expect(net.parameters().every((p) => !p.requiresGrad)).toBe(true);
    expect(net.numParameters({ trainableOnly: true })).toBe(0);
    expect(net.numParameters()).toBe(total);
    net.fc2.requiresGrad_(true);
    expect(net.numParameters({ trainableOnly: true })).toBe(3 * 5 + 3);
    expect(net.fc1.weight.requiresGrad).toBe(false);
    net.requiresGrad_();
    expect(net.numParameters({ trainableOnly: true })).toBe(total);
    // int32 buffers are not parameters and are untouched
    expect(net.step.requiresGrad).toBe(false);
  });

  test('zeroGrad sets every .grad to null', () => {
    const net = new Net();
    const x = randn([3, 4], { generator: new Generator(2) });
    backward(sum(mul(net.forward(x), randn([3, 3], { generator: new Generator(5) }))));
    expect(net.parameters().every((p) => p.grad !== null)).toBe(true);
    net.zeroGrad();
    expect(net.parameters().every((p) => p.grad === null)).toBe(true);
  });

  test('toString shows the tree with parameter shapes', () => {
    expect(new Net().toString()).toBe(
      ['Net', '  (fc1): Linear weight[5,4] bias[5]', '  (act): SiLU', '  (fc2): Linear weight[3,5] bias[3]', '  (norm): LayerNorm weight[3] bias[3]'].join('\n'),
    );
    expect(new Module().toString()).toBe('Module');
  });
});

// ------------------------------------------------------------------ dtype conversion

describe('to(dtype)', () => {
  class Model extends Module {
    readonly lin: Linear;
    readonly emb: Embedding;
    readonly norm: LayerNorm;
    constructor() {
      super();
      const generator = new Generator(11);
      this.lin = this.registerModule('lin', new Linear(16, 8, { generator }));
      this.emb = this.registerModule('emb', new Embedding(10, 16, { generator, paddingIdx: 0 }));
      this.norm = this.registerModule('norm', new LayerNorm(8));
      this.registerBuffer('ids', tensor([1, 2], { dtype: 'int32' }));
      this.registerBuffer('table', tensor([0.1, 1 / 3, 1e-6]));
    }
  }

  test('float32 -> float16 -> float32: identity kept, values rounded to half, weights bytes halve then double', () => {
    const m = new Model();
    const params = m.parameters();
    const names = m.namedParameters().map(([n]) => n);
    const values = params.map(flat);
    const table = m.getSubmodule('').namedBuffers().find(([n]) => n === 'table')?.[1] as Tensor;
    const tableValues = flat(table);
    const n = m.numParameters();
    expect(n).toBe(16 * 8 + 8 + 10 * 16 + 8 + 8);
    params.forEach((p) => (p.grad = zeros(p.shape)));
    m.nameParameters();

    const w0 = memory.stats().byCategory.weights;
    expect(m.to('float16')).toBe(m);
    const w1 = memory.stats().byCategory.weights;
    expect(w0 - w1).toBe(n * 2);

    const after = m.parameters();
    after.forEach((p, i) => {
      expect(p).toBe(params[i]);
      expect(p.dtype).toBe('float16');
      expect(p.requiresGrad).toBe(true);
      expect(p.isLeaf).toBe(true);
      expect(p.grad).toBeNull();
      expect(p.name).toBe(names[i]);
      expect(p.buffer.category).toBe('weights');
      expect(flat(p)).toEqual(values[i].map(roundToFloat16));
    });
    expect(m.lin.weight).toBe(params[0]);
    expect(table.dtype).toBe('float16');
    expect(flat(table)).toEqual(tableValues.map(roundToFloat16));
    expect(m.namedBuffers()[0][1].dtype).toBe('int32');

    m.to('float32');
    const w2 = memory.stats().byCategory.weights;
    expect(w2 - w1).toBe(n * 2);
    expect(w2).toBe(w0);
    m.parameters().forEach((p, i) => {
      expect(p).toBe(params[i]);
      expect(p.dtype).toBe('float32');
      expect(p.buffer.category).toBe('weights');
      expect(flat(p)).toEqual(values[i].map(roundToFloat16)); // float16 values are exact in float32
    });
  });

  test('a converted model still computes and trains: forward in float16 matches the rounded weights', () => {
    const lin = new Linear(3, 2, { generator: new Generator(4) }).to('float16');
    const x = tensor([[0.5, -1, 2]], { dtype: 'float16' });
    const y = lin.forward(x);
    expect(y.dtype).toBe('float16');
    const ref = linear(x, lin.weight.detach(), (lin.bias as Tensor).detach());
    expect(flat(y)).toEqual(flat(ref));
    backward(sum(y));
    expect(lin.weight.grad?.dtype).toBe('float16');
  });

  test('to(float64) then float32 round-trips exactly; an integer dtype is refused', () => {
    const net = new Net();
    const before = snapshot(net);
    net.to('float64');
    expect(net.fc1.weight.dtype).toBe('float64');
    expect(net.step.dtype).toBe('int32');
    net.to('float32');
    expect(snapshot(net)).toEqual(before);
    expect(() => net.to('int32')).toThrow(ValueError);
  });

  test('a tied parameter is converted once and stays tied', () => {
    const lm = new TiedLM();
    lm.to('float16');
    expect(lm.head.getParameter('weight')).toBe(lm.embed.weight);
    expect(lm.embed.weight.dtype).toBe('float16');
    expect(silu(lm.embed.weight).dtype).toBe('float16');
  });
});
