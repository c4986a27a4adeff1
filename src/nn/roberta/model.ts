/**
 * RobertaModel (HF's, without the pooler): the input checks, RoBERTa's position ids, HF's weight
 * initialisation and the seeded generator that initialisation and dropout share.
 */
import { DTypeError, ShapeError, ValueError, fmtShape } from '../../errors';
import { defaultGenerator, Generator } from '../../tensor/random';
import { tensor, zeros } from '../../tensor/creation';
import type { Tensor } from '../../tensor/tensor';
import { noGrad } from '../../autograd/grad-mode';
import { eq } from '../../autograd/ops/elementwise';
import { copy_ } from '../../autograd/ops/inplace';
import { reshape, select } from '../../autograd/ops/shape';
import * as init from '../init';
import { Embedding, LayerNorm, Linear } from '../layers';
import { Module } from '../module';
import { resolveRobertaConfig, type ResolvedRobertaConfig, type RobertaConfig } from './config';
import { RobertaEmbeddings, RobertaEncoder } from './layers';

/** Checks that `t` is an int32 Tensor; `what` names the argument in the error. */
export function checkIds(op: string, t: unknown, what: string): asserts t is Tensor {
  if (t === null || typeof t !== 'object' || !('dtype' in t)) throw new ValueError(op, `${what} must be a Tensor`);
  const x = t as Tensor;
  if (x.dtype !== 'int32') {
    throw new DTypeError(op, `${what} must be an int32 tensor of shape [batch, seq], got ${x.dtype} of shape ${fmtShape(x.shape)}; cast it with .to('int32')`);
  }
}

/**
 * RoBERTa's position ids for int32 ids [B, S] (HF's create_position_ids_from_input_ids):
 * cumsum(ids != pad, dim 1) * (ids != pad) + pad. Real tokens are numbered pad + 1, pad + 2, ...
 * in order (padding in between is skipped); padding tokens get `pad`. Computed on the host,
 * since the ids are already there and nothing here is differentiable.
 */
export function robertaPositionIds(inputIds: Tensor, padTokenId: number): Tensor {
  const op = 'robertaPositionIds';
  checkIds(op, inputIds, 'inputIds');
  if (inputIds.ndim !== 2) throw new ShapeError(op, `inputIds must be [batch, seq], got shape ${fmtShape(inputIds.shape)}`);
  const [b, s] = inputIds.shape;
  const ids = inputIds.toTypedArray() as Int32Array;
  const out = new Int32Array(b * s);
  for (let i = 0; i < b; i++) {
    let count = 0;
    for (let j = 0; j < s; j++) {
      const real = ids[i * s + j] !== padTokenId;
      if (real) count++;
      out[i * s + j] = real ? count + padTokenId : padTokenId;
    }
  }
  return reshape(tensor(out), [b, s]);
}

export interface RobertaInputs {
  /** [B, S], 1 (or any nonzero) for real tokens, 0 for padding; default: attend to every token. */
  attentionMask?: Tensor;
  /** int32 [B, S] in [0, typeVocabSize); default zeros. */
  tokenTypeIds?: Tensor;
}

/** Applies HF's _init_weights to every Linear, Embedding and LayerNorm below `root`. */
export function initRobertaWeights(root: Module, std: number, generator: Generator): void {
  noGrad(() => {
    for (const m of root.modules()) {
      if (m instanceof Linear) {
        init.normal_(m.weight, 0, std, generator);
        if (m.bias) init.zeros_(m.bias);
      } else if (m instanceof Embedding) {
        init.normal_(m.weight, 0, std, generator);
        if (m.paddingIdx !== undefined) {
          const row = select(m.weight, 0, m.paddingIdx);
          copy_(row, 0);
          row.dispose(); // release the view's hold on the weight storage now
        }
      } else if (m instanceof LayerNorm) {
        if (m.weight) init.ones_(m.weight);
        if (m.bias) init.zeros_(m.bias);
      }
    }
  });
}

/** The generator a model draws from: seeded by config.seed, else the default one. */
export function modelGenerator(config: ResolvedRobertaConfig): Generator {
  return config.seed === undefined ? defaultGenerator : new Generator(config.seed);
}

/** HF's RobertaModel without the pooler: embeddings and encoder, returning the last hidden state. */
export class RobertaModel extends Module {
  readonly config: ResolvedRobertaConfig;
  readonly embeddings: RobertaEmbeddings;
  readonly encoder: RobertaEncoder;

  /** `generator` is for a parent model that shares its own; standalone, config.seed decides. */
  constructor(config: RobertaConfig, generator?: Generator) {
    super();
    this.config = resolveRobertaConfig(config);
    const owned = generator === undefined;
    const gen = generator ?? modelGenerator(this.config);
    this.embeddings = this.registerModule('embeddings', new RobertaEmbeddings(this.config, gen));
    this.encoder = this.registerModule('encoder', new RobertaEncoder(this.config, gen));
    if (owned) {
      initRobertaWeights(this, this.config.initializerRange, gen);
      this.nameParameters();
    }
  }

  /** int32 ids [B, S] -> hidden states [B, S, hidden]. Every input is checked before any kernel runs. */
  forward(inputIds: Tensor, inputs: RobertaInputs = {}): Tensor {
    const op = 'RobertaModel.forward';
    const c = this.config;
    checkIds(op, inputIds, 'inputIds');
    if (inputIds.ndim !== 2) {
      throw new ShapeError(op, `inputIds must be [batch, seq], got shape ${fmtShape(inputIds.shape)}; add a batch dim with unsqueeze(ids, 0)`);
    }
    const [b, s] = inputIds.shape;
    const ids = inputIds.toTypedArray() as Int32Array;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= c.vocabSize) {
        throw new ValueError(op, `token id ${ids[i]} at [${Math.floor(i / s)}, ${i % s}] is out of range for vocabSize ${c.vocabSize}; ids must be in [0, ${c.vocabSize})`);
      }
    }
    const positionIds = robertaPositionIds(inputIds, c.padTokenId);
    const positions = positionIds.toTypedArray() as Int32Array;
    let maxPos = 0;
    for (let i = 0; i < positions.length; i++) maxPos = Math.max(maxPos, positions[i]);
    if (maxPos >= c.maxPositionEmbeddings) {
      throw new ValueError(
        op,
        `a row has ${maxPos - c.padTokenId} non-padding tokens, so its last position id is padTokenId + ${maxPos - c.padTokenId} = ${maxPos}, ` +
          `but maxPositionEmbeddings is ${c.maxPositionEmbeddings}: at most ${c.maxPositionEmbeddings - c.padTokenId - 1} tokens fit; truncate the input`,
      );
    }
    let tokenTypeIds = inputs.tokenTypeIds;
    if (tokenTypeIds === undefined) {
      tokenTypeIds = zeros([b, s], { dtype: 'int32' });
    } else {
      checkIds(op, tokenTypeIds, 'tokenTypeIds');
      if (tokenTypeIds.ndim !== 2 || tokenTypeIds.shape[0] !== b || tokenTypeIds.shape[1] !== s) {
        throw new ShapeError(op, `tokenTypeIds has shape ${fmtShape(tokenTypeIds.shape)} but inputIds ${fmtShape(inputIds.shape)}; they must be equal`);
      }
      const tt = tokenTypeIds.toTypedArray() as Int32Array;
      for (let i = 0; i < tt.length; i++) {
        if (tt[i] < 0 || tt[i] >= c.typeVocabSize) {
          throw new ValueError(op, `token type id ${tt[i]} is out of range for typeVocabSize ${c.typeVocabSize}; ids must be in [0, ${c.typeVocabSize})`);
        }
      }
    }
    let keyPad: Tensor | null = null;
    const mask = inputs.attentionMask;
    if (mask !== undefined) {
      if (mask === null || typeof mask !== 'object' || !('shape' in mask)) throw new ValueError(op, 'attentionMask must be a Tensor');
      if (mask.ndim !== 2 || mask.shape[0] !== b || mask.shape[1] !== s) {
        throw new ShapeError(op, `attentionMask has shape ${fmtShape(mask.shape)} but inputIds ${fmtShape(inputIds.shape)}; it must be [batch, seq] (1 real, 0 padding)`);
      }
      keyPad = reshape(eq(mask, 0), [b, 1, 1, s]);
    }
    const h = this.embeddings.forward(inputIds, tokenTypeIds, positionIds);
    return this.encoder.forward(h, keyPad);
  }
}
