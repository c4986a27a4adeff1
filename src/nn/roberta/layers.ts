/**
 * RoBERTa's modules below the model: the embeddings (word + position + token type, LayerNorm,
 * dropout) and the post-LN encoder layers (self-attention via the shared ../attention.ts,
 * residual dense + LayerNorm blocks, feed-forward). All are composed from differentiable ops,
 * so their backward comes from those ops.
 */
import type { Tensor } from '../../tensor/tensor';
import type { Generator } from '../../tensor/random';
import { add, gelu, relu, silu } from '../../autograd/ops/elementwise';
import { permute, reshape } from '../../autograd/ops/shape';
import { Module } from '../module';
import { Dropout, Embedding, LayerNorm, Linear, ModuleList } from '../layers';
import { scaledDotProductAttention } from '../attention';
import type { ResolvedRobertaConfig, RobertaActivation } from './config';

/**
 * A Linear of a RoBERTa model, as every module here builds one: in the config's dtype, its
 * initial weights drawn from the model's generator (so a seeded model is the same every time).
 * Most of the model's Linears map the hidden size to itself, hence the defaults.
 */
export function robertaLinear(
  config: ResolvedRobertaConfig,
  generator: Generator,
  inFeatures = config.hiddenSize,
  outFeatures = config.hiddenSize,
): Linear {
  return new Linear(inFeatures, outFeatures, { dtype: config.dtype, generator });
}

/** HF's ACT2FN for the activations RobertaConfig accepts. */
function activation(name: RobertaActivation): (x: Tensor) => Tensor {
  switch (name) {
    case 'gelu':
      return (x) => gelu(x);
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return (x) => gelu(x, { approximate: 'tanh' });
    case 'relu':
      return relu;
    case 'silu':
    case 'swish':
      return silu;
  }
}

export class RobertaEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly token_type_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(
    readonly config: ResolvedRobertaConfig,
    generator: Generator,
  ) {
    super();
    const { hiddenSize: h, dtype, padTokenId: pad } = config;
    this.word_embeddings = this.registerModule('word_embeddings', new Embedding(config.vocabSize, h, { dtype, generator, paddingIdx: pad }));
    this.position_embeddings = this.registerModule(
      'position_embeddings',
      new Embedding(config.maxPositionEmbeddings, h, { dtype, generator, paddingIdx: pad }),
    );
    this.token_type_embeddings = this.registerModule('token_type_embeddings', new Embedding(config.typeVocabSize, h, { dtype, generator }));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(h, config.layerNormEps, { dtype }));
    this.dropout = this.registerModule('dropout', new Dropout(config.hiddenDropoutProb, generator));
  }

  /** ids, token types and position ids are int32 [B, S], already checked; returns [B, S, hidden]. */
  forward(inputIds: Tensor, tokenTypeIds: Tensor, positionIds: Tensor): Tensor {
    const e = add(add(this.word_embeddings.forward(inputIds), this.token_type_embeddings.forward(tokenTypeIds)), this.position_embeddings.forward(positionIds));
    return this.dropout.forward(this.LayerNorm.forward(e));
  }
}

export class RobertaSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly dropout: Dropout;
  readonly numHeads: number;
  readonly headDim: number;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    this.numHeads = config.numAttentionHeads;
    this.headDim = config.hiddenSize / this.numHeads;
    this.query = this.registerModule('query', robertaLinear(config, generator));
    this.key = this.registerModule('key', robertaLinear(config, generator));
    this.value = this.registerModule('value', robertaLinear(config, generator));
    this.dropout = this.registerModule('dropout', new Dropout(config.attentionProbsDropoutProb, generator));
  }

  /** x [B, S, hidden]; keyPad [B, 1, 1, S] int32, nonzero at padded keys (or null). */
  forward(x: Tensor, keyPad: Tensor | null): Tensor {
    const [b, s] = x.shape;
    const heads = (t: Tensor) => permute(reshape(t, [b, s, this.numHeads, this.headDim]), [0, 2, 1, 3]); // [B, H, S, D]
    const q = heads(this.query.forward(x));
    const k = heads(this.key.forward(x));
    const v = heads(this.value.forward(x));
    // softmax(q·kᵀ / √D, masked)·v: padded keys get finfo.min, so softmax gives them weight 0;
    // dropout applies to the attention weights
    const context = scaledDotProductAttention(q, k, v, keyPad, { dropout: (probs) => this.dropout.forward(probs) }); // [B, H, S, D]
    return reshape(permute(context, [0, 2, 1, 3]), [b, s, this.numHeads * this.headDim]);
  }
}

/** dense -> dropout -> LayerNorm(h + residual): HF's RobertaSelfOutput and RobertaOutput. */
class DenseResidualNorm extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(inFeatures: number, config: ResolvedRobertaConfig, generator: Generator) {
    super();
    const { hiddenSize: h, dtype } = config;
    this.dense = this.registerModule('dense', robertaLinear(config, generator, inFeatures));
    this.LayerNorm = this.registerModule('LayerNorm', new LayerNorm(h, config.layerNormEps, { dtype }));
    this.dropout = this.registerModule('dropout', new Dropout(config.hiddenDropoutProb, generator));
  }

  forward(hidden: Tensor, residual: Tensor): Tensor {
    return this.LayerNorm.forward(add(this.dropout.forward(this.dense.forward(hidden)), residual));
  }
}

export class RobertaSelfOutput extends DenseResidualNorm {
  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super(config.hiddenSize, config, generator);
  }
}

export class RobertaOutput extends DenseResidualNorm {
  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super(config.intermediateSize, config, generator);
  }
}

export class RobertaAttention extends Module {
  readonly self: RobertaSelfAttention;
  readonly output: RobertaSelfOutput;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    this.self = this.registerModule('self', new RobertaSelfAttention(config, generator));
    this.output = this.registerModule('output', new RobertaSelfOutput(config, generator));
  }

  forward(x: Tensor, keyPad: Tensor | null): Tensor {
    return this.output.forward(this.self.forward(x, keyPad), x);
  }
}

export class RobertaIntermediate extends Module {
  readonly dense: Linear;
  private readonly act: (x: Tensor) => Tensor;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    this.dense = this.registerModule('dense', robertaLinear(config, generator, config.hiddenSize, config.intermediateSize));
    this.act = activation(config.hiddenAct);
  }

  forward(x: Tensor): Tensor {
    return this.act(this.dense.forward(x));
  }
}

export class RobertaLayer extends Module {
  readonly attention: RobertaAttention;
  readonly intermediate: RobertaIntermediate;
  readonly output: RobertaOutput;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    this.attention = this.registerModule('attention', new RobertaAttention(config, generator));
    this.intermediate = this.registerModule('intermediate', new RobertaIntermediate(config, generator));
    this.output = this.registerModule('output', new RobertaOutput(config, generator));
  }

  forward(x: Tensor, keyPad: Tensor | null): Tensor {
    const h = this.attention.forward(x, keyPad);
    return this.output.forward(this.intermediate.forward(h), h);
  }
}

export class RobertaEncoder extends Module {
  readonly layer: ModuleList<RobertaLayer>;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    this.layer = this.registerModule('layer', new ModuleList(Array.from({ length: config.numHiddenLayers }, () => new RobertaLayer(config, generator))));
  }

  forward(x: Tensor, keyPad: Tensor | null): Tensor {
    let h = x;
    for (const l of this.layer) h = l.forward(h, keyPad);
    return h;
  }
}
