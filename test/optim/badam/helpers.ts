/** Shared pieces of the BAdam tests: a small MLP with Hugging Face-like names, data, snapshots. */
import {
  Generator,
  LayerNorm,
  Linear,
  LlamaForCausalLM,
  Module,
  ModuleList,
  RobertaForSequenceClassification,
  Tensor,
  add,
  mseLoss,
  randn,
  tanh,
  tensor,
  reshape,
  type DType,
} from '../../../src';

/** x + tanh(mlp(norm(x))). */
export class TinyLayer extends Module {
  readonly mlp: Linear;
  readonly norm: LayerNorm;
  constructor(h: number, dtype: DType, generator: Generator) {
    super();
    this.mlp = this.registerModule('mlp', new Linear(h, h, { dtype, generator }));
    this.norm = this.registerModule('norm', new LayerNorm(h, 1e-5, { dtype }));
  }
  forward(x: Tensor): Tensor {
    return add(x, tanh(this.mlp.forward(this.norm.forward(x))));
  }
}

export class TinyInner extends Module {
  readonly embedProj: Linear;
  readonly layers: ModuleList<TinyLayer>;
  readonly norm: LayerNorm;
  constructor(inputs: number, h: number, depth: number, dtype: DType, generator: Generator) {
    super();
    this.embedProj = this.registerModule('embed_proj', new Linear(inputs, h, { dtype, generator }));
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: depth }, () => new TinyLayer(h, dtype, generator))));
    this.norm = this.registerModule('norm', new LayerNorm(h, 1e-5, { dtype }));
  }
}

/**
 * model.embed_proj.{weight,bias}, model.layers.{i}.mlp.{weight,bias}, model.layers.{i}.norm.{weight,bias},
 * model.norm.{weight,bias}, lm_head.{weight,bias}.
 */
export class TinyNet extends Module {
  readonly model: TinyInner;
  readonly lmHead: Linear;
  constructor(
    readonly options: { depth?: number; hidden?: number; inputs?: number; outputs?: number; dtype?: DType; seed?: number } = {},
  ) {
    super();
    const { depth = 4, hidden = 6, inputs = 3, outputs = 2, dtype = 'float64', seed = 0 } = options;
    const generator = new Generator(seed);
    this.model = this.registerModule('model', new TinyInner(inputs, hidden, depth, dtype, generator));
    this.lmHead = this.registerModule('lm_head', new Linear(hidden, outputs, { dtype, generator }));
    this.nameParameters();
  }
  forward(x: Tensor): Tensor {
    let h = this.model.embedProj.forward(x);
    for (const layer of this.model.layers) h = layer.forward(h);
    return this.lmHead.forward(this.model.norm.forward(h));
  }
  /** The loss on batch `step` (a deterministic function of step). */
  lossAt(step: number): Tensor {
    const { inputs = 3, outputs = 2, dtype = 'float64' } = this.options;
    const g = new Generator(1000 + step);
    const x = randn([5, inputs], { dtype, generator: g });
    const y = randn([5, outputs], { dtype, generator: g });
    return mseLoss(this.forward(x), y);
  }
}

/** Every parameter's values by name (fresh typed arrays). */
export function snapshot(model: Module): Map<string, number[]> {
  return new Map(model.namedParameters().map(([n, p]) => [n, Array.from(p.toTypedArray() as ArrayLike<number>)]));
}

/** Bit-for-bit equality of two arrays of numbers (NaN equals NaN, 0 differs from -0). */
export function sameBits(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

export function tinyLlama(layers = 4, seed = 0): LlamaForCausalLM {
  return new LlamaForCausalLM({
    vocabSize: 16,
    hiddenSize: 8,
    intermediateSize: 12,
    numHiddenLayers: layers,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    maxPositionEmbeddings: 32,
    initializerRange: 0.2,
    seed,
  });
}

export function tinyRoberta(layers = 3): RobertaForSequenceClassification {
  return new RobertaForSequenceClassification({
    vocabSize: 20,
    hiddenSize: 8,
    numHiddenLayers: layers,
    numAttentionHeads: 2,
    intermediateSize: 12,
    maxPositionEmbeddings: 16,
    numLabels: 3,
    seed: 0,
  });
}

/** int32 token ids [1, n]. */
export function ids(values: number[]): Tensor {
  return reshape(tensor(Int32Array.from(values), { dtype: 'int32' }), [1, values.length]);
}
