/**
 * LlamaModel, the decoder stack without the language-model head: embeddings, the decoder layers
 * with their rotary tables and causal/padding mask, the final norm, and the key/value cache it
 * returns for incremental decoding. Also the input-id check that LlamaForCausalLM.generate shares.
 */
import { DTypeError, ShapeError, ValueError, fmtShape } from '../../errors';
import type { DType } from '../../tensor/dtype';
import { Tensor } from '../../tensor/tensor';
import { tensor } from '../../tensor/creation';
import { reshape } from '../../autograd/ops/shape';
import { checkpoint } from '../../autograd/checkpoint';
import { Module } from '../module';
import { Embedding, ModuleList, RMSNorm } from '../layers';
import type { ResolvedLlamaConfig } from './config';
import { rotaryTables, type RotaryTables } from './rotary';
import { KVCache, checkCache, type LayerKV } from './kv-cache';
import { LlamaDecoderLayer, type LayerOptions } from './layers';

export interface LlamaModelOptions {
  /** [B, S] with S = cache length + T: 1 for real tokens, 0 for padding (masked as keys). */
  attentionMask?: Tensor;
  /** int32 [B, T] rotary positions; default cache length .. cache length + T − 1 for every row. */
  positionIds?: Tensor;
  /** Keys and values of earlier positions (from a previous forward with useCache). */
  pastKeyValues?: KVCache;
  /** Return the keys and values of all S + T positions (default: true when pastKeyValues is given). */
  useCache?: boolean;
}

/** The decoder stack without the language-model head: ids [B, T] -> hidden states [B, T, hidden]. */
export class LlamaModel extends Module {
  readonly embedTokens: Embedding;
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;
  /**
   * Run each decoder layer under checkpoint() while training without a cache: the backward
   * recomputes a layer's activations instead of keeping them (Hugging Face's gradient
   * checkpointing). Gradients are unchanged to the bit; memory falls, time rises by about a forward.
   */
  gradientCheckpointing = false;

  constructor(
    readonly config: ResolvedLlamaConfig,
    options: LayerOptions,
  ) {
    super();
    this.embedTokens = this.registerModule('embed_tokens', new Embedding(config.vocabSize, config.hiddenSize, options));
    this.layers = this.registerModule(
      'layers',
      new ModuleList(Array.from({ length: config.numHiddenLayers }, () => new LlamaDecoderLayer(config, options))),
    );
    this.norm = this.registerModule('norm', new RMSNorm(config.hiddenSize, config.rmsNormEps, options));
  }

  forward(inputIds: Tensor, options: LlamaModelOptions = {}): { lastHiddenState: Tensor; pastKeyValues?: KVCache } {
    const op = 'LlamaModel.forward';
    const cfg = this.config;
    checkInputIds(op, inputIds, cfg.vocabSize);
    const [b, t] = inputIds.shape;
    const past = options.pastKeyValues ?? null;
    const pastLen = past ? checkCache(op, past, cfg, b) : 0;
    const total = pastLen + t;
    if (total > cfg.maxPositionEmbeddings) {
      throw new ValueError(
        op,
        `${t} tokens after ${pastLen} cached positions make ${total} positions, more than maxPositionEmbeddings (${cfg.maxPositionEmbeddings}); shorten the input`,
      );
    }
    const dtype = this.embedTokens.weight.dtype;
    if (past && past.layers.length > 0 && past.layers[0].key.dtype !== dtype) {
      throw new DTypeError(op, `pastKeyValues are ${past.layers[0].key.dtype} but the model computes in ${dtype}; rebuild the cache after model.to()`);
    }
    const rope = this.rotary(op, options.positionIds, b, t, pastLen, dtype);
    const mask = causalMask(op, options.attentionMask, b, t, pastLen);
    const useCache = options.useCache ?? past !== null;

    let h = this.embedTokens.forward(inputIds);
    const cached: LayerKV[] = [];
    let i = 0;
    const recompute = this.gradientCheckpointing && this.training && !useCache;
    for (const layer of this.layers) {
      if (recompute) {
        // the tables and the mask are inputs too, so that they are kept for the recomputation
        const run = (x: Tensor, cos: Tensor, sin: Tensor, ...m: Tensor[]) => layer.forward(x, { cos, sin }, m[0] ?? null, null).output;
        h = checkpoint(run, h, rope.cos, rope.sin, ...(mask ? [mask] : []));
        continue;
      }
      const out = layer.forward(h, rope, mask, past ? past.layers[i] : null);
      if (useCache) cached.push({ key: out.key.detach(), value: out.value.detach() });
      h = out.output;
      i++;
    }
    const lastHiddenState = this.norm.forward(h);
    return useCache ? { lastHiddenState, pastKeyValues: new KVCache(cached) } : { lastHiddenState };
  }

  private rotary(op: string, positionIds: Tensor | undefined, b: number, t: number, pastLen: number, dtype: DType): RotaryTables {
    const { headDim, ropeTheta, ropeScaling } = this.config;
    if (positionIds === undefined) {
      return rotaryTables(Array.from({ length: t }, (_, i) => pastLen + i), headDim, ropeTheta, dtype, [t], ropeScaling);
    }
    if (!(positionIds instanceof Tensor) || positionIds.dtype !== 'int32' || positionIds.ndim !== 2 || positionIds.shape[0] !== b || positionIds.shape[1] !== t) {
      const got = positionIds instanceof Tensor ? `${positionIds.dtype} of shape ${fmtShape(positionIds.shape)}` : typeof positionIds;
      throw new ValueError(op, `positionIds must be an int32 tensor of shape [${b},${t}] (the input ids' shape), got ${got}`);
    }
    const positions = positionIds.toTypedArray() as Int32Array;
    const bad = positions.findIndex((p) => p < 0);
    if (bad >= 0) throw new ValueError(op, `positionIds must be non-negative, got ${positions[bad]} at flat index ${bad}`);
    return rotaryTables(positions, headDim, ropeTheta, dtype, [b, 1, t], ropeScaling);
  }
}

/** Checks that `ids` is a non-empty int32 [batch, seq] tensor of token ids in [0, vocabSize). */
export function checkInputIds(op: string, ids: Tensor, vocabSize: number): void {
  if (!(ids instanceof Tensor)) throw new ValueError(op, `inputIds must be a Tensor, got ${ids === null ? 'null' : typeof ids}`);
  if (ids.dtype !== 'int32') {
    throw new DTypeError(op, `inputIds must be int32 token ids, got ${ids.dtype} of shape ${fmtShape(ids.shape)}; cast with .to('int32')`);
  }
  if (ids.ndim !== 2 || ids.shape[0] === 0 || ids.shape[1] === 0) {
    throw new ShapeError(op, `inputIds must be a non-empty [batch, seq] tensor, got shape ${fmtShape(ids.shape)}${ids.ndim === 1 ? '; add a batch dim with unsqueeze(0)' : ''}`);
  }
  const values = ids.toTypedArray() as Int32Array;
  const t = ids.shape[1];
  for (let i = 0; i < values.length; i++) {
    if (values[i] < 0 || values[i] >= vocabSize) {
      throw new ValueError(op, `token id ${values[i]} at [${Math.floor(i / t)},${i % t}] is out of range for vocabSize ${vocabSize}; ids must be in [0, ${vocabSize})`);
    }
  }
}

/**
 * The attention mask as int32 [B or 1, 1, T, S] (nonzero = hidden), or null when nothing is
 * hidden (one new token and no padding). Query i sits at position pastLen + i and may see keys
 * 0..pastLen + i; keys whose attentionMask entry is 0 are hidden from every query.
 */
function causalMask(op: string, attentionMask: Tensor | undefined, b: number, t: number, pastLen: number): Tensor | null {
  const s = pastLen + t;
  let pad: ArrayLike<number> | null = null;
  if (attentionMask !== undefined) {
    if (!(attentionMask instanceof Tensor) || attentionMask.ndim !== 2 || attentionMask.shape[0] !== b || attentionMask.shape[1] !== s) {
      const got = attentionMask instanceof Tensor ? fmtShape(attentionMask.shape) : typeof attentionMask;
      throw new ShapeError(op, `attentionMask must have shape [${b},${s}] ([batch, cached + new positions]), got ${got}`);
    }
    pad = attentionMask.toTypedArray();
    let any = false;
    for (let i = 0; i < pad.length && !any; i++) any = pad[i] === 0;
    if (!any) pad = null; // all real: the causal part alone
  }
  if (t === 1 && pad === null) return null;
  const rows = pad ? b : 1;
  const m = new Int32Array(rows * t * s);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < t; i++) {
      for (let j = 0; j < s; j++) {
        m[(r * t + i) * s + j] = j > pastLen + i || (pad !== null && pad[r * s + j] === 0) ? 1 : 0;
      }
    }
  }
  return reshape(tensor(m, { dtype: 'int32' }), [rows, 1, t, s]);
}
