/**
 * The standard layers. Parameter names and default initialisations match PyTorch's, so a
 * state dict moves between the two.
 */
import { ValueError } from '../errors';
import type { DType } from '../tensor/dtype';
import { empty } from './util';
import type { Generator } from '../tensor/random';
import type { Tensor } from '../tensor/tensor';
import { add, gelu, silu } from '../autograd/ops/elementwise';
import { linear } from '../autograd/ops/matmul';
import { embedding } from '../autograd/ops/indexing';
import { layerNorm, rmsNorm } from '../autograd/ops/norm';
import { dropout } from '../autograd/ops/dropout';
import { noGrad } from '../autograd/grad-mode';
import { copy_ } from '../autograd/ops/inplace';
import { narrow } from '../autograd/ops/shape';
import * as init from './init';
import { Module } from './module';

export interface LayerOptions {
  dtype?: DType;
  generator?: Generator;
}

/** y = x·Wᵀ + b, W of shape [out, in]; both initialised U(-1/√in, 1/√in) as in PyTorch. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LayerOptions & { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', empty([outFeatures, inFeatures], options.dtype));
    this.bias = this.registerParameter('bias', options.bias === false ? null : empty([outFeatures], options.dtype));
    // kaiming_uniform(a=√5) gives bound = 1/√fan_in, PyTorch's Linear.reset_parameters
    init.kaimingUniform_(this.weight, { a: Math.sqrt(5), generator: options.generator });
    if (this.bias) {
      const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
      init.uniform_(this.bias, -bound, bound, options.generator);
    }
  }

  /**
   * An optional extra path whose output is added to the layer's: when set, forward returns
   * linear(x, W, b) + adapter(x). LoRA (src/nn/lora.ts) installs its low-rank update B·A·x here;
   * null, the default, leaves Linear exactly PyTorch's.
   */
  adapter: ((x: Tensor) => Tensor) | null = null;

  forward(x: Tensor): Tensor {
    const y = linear(x, this.weight, this.bias);
    return this.adapter ? add(y, this.adapter(x)) : y;
  }
}

/** A lookup table of `numEmbeddings` vectors, initialised N(0, 1), the paddingIdx row zeroed. */
export class Embedding extends Module {
  readonly weight: Tensor;
  readonly paddingIdx: number | undefined;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: LayerOptions & { paddingIdx?: number } = {},
  ) {
    super();
    const pad = options.paddingIdx;
    if (pad !== undefined && (!Number.isInteger(pad) || pad >= numEmbeddings || pad < -numEmbeddings)) {
      throw new ValueError('Embedding', `paddingIdx ${pad} must be an integer in [-${numEmbeddings}, ${numEmbeddings})`);
    }
    this.paddingIdx = options.paddingIdx === undefined ? undefined : (options.paddingIdx + numEmbeddings) % numEmbeddings;
    this.weight = this.registerParameter('weight', empty([numEmbeddings, embeddingDim], options.dtype));
    init.normal_(this.weight, 0, 1, options.generator);
    if (this.paddingIdx !== undefined) {
      // one view, disposed at once: a view left for the garbage collector would keep the
      // weight storage alive after to(dtype) replaces it (and the bytes counted as weights)
      const row = noGrad(() => narrow(this.weight, 0, this.paddingIdx as number, 1));
      noGrad(() => copy_(row, 0));
      row.dispose();
    }
  }

  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight, { paddingIdx: this.paddingIdx });
  }
}

/** Layer normalisation over the trailing `normalizedShape` dims, weight 1 and bias 0. */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(
    normalizedShape: number | readonly number[],
    readonly eps = 1e-5,
    options: { elementwiseAffine?: boolean; bias?: boolean; dtype?: DType } = {},
  ) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    const affine = options.elementwiseAffine ?? true;
    this.weight = this.registerParameter('weight', affine ? init.ones_(empty(this.normalizedShape, options.dtype)) : null);
    this.bias = this.registerParameter(
      'bias',
      affine && options.bias !== false ? init.zeros_(empty(this.normalizedShape, options.dtype)) : null,
    );
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

/** Root-mean-square normalisation (Llama's RMSNorm), weight initialised to 1. */
export class RMSNorm extends Module {
  readonly weight: Tensor;

  constructor(
    readonly hiddenSize: number,
    readonly eps = 1e-6,
    options: { dtype?: DType } = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', init.ones_(empty([hiddenSize], options.dtype)));
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, [this.hiddenSize], this.weight, this.eps);
  }
}

/** Inverted dropout while training, identity in eval mode. */
export class Dropout extends Module {
  constructor(
    readonly p = 0.5,
    readonly generator?: Generator,
  ) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ValueError('Dropout', `p must be in [0, 1], got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, generator: this.generator });
  }
}

export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }

  forward(x: Tensor): Tensor {
    return gelu(x, { approximate: this.approximate });
  }
}

/** A module with a one-tensor forward, the kind Sequential can chain. */
export interface TensorModule extends Module {
  forward(x: Tensor): Tensor;
}

/** Children named '0', '1', ... applied in order. */
export class Sequential extends Module {
  private readonly layers: TensorModule[];

  constructor(...layers: TensorModule[]) {
    super();
    this.layers = layers.map((m, i) => this.registerModule(String(i), m));
  }

  forward(x: Tensor): Tensor {
    return this.layers.reduce((h, m) => m.forward(h), x);
  }

  get length(): number {
    return this.layers.length;
  }

  /** The i-th layer; negative indices count from the end. */
  at(i: number): TensorModule {
    const m = Number.isInteger(i) ? this.layers[i < 0 ? i + this.layers.length : i] : undefined;
    if (!m) throw new ValueError('Sequential', `index ${i} is out of range for ${this.layers.length} layers`);
    return m;
  }

  [Symbol.iterator](): Iterator<TensorModule> {
    return this.layers[Symbol.iterator]();
  }
}

/** A list of modules registered as '0', '1', ... (e.g. a model's decoder layers). */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  push(m: M): this {
    this.items.push(this.registerModule(String(this.items.length), m));
    return this;
  }

  at(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (!m) throw new ValueError('ModuleList', `index ${i} is out of range for a list of ${this.items.length}`);
    return m;
  }

  get length(): number {
    return this.items.length;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
