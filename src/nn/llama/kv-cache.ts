/**
 * The key/value cache that incremental decoding reuses: each decoder layer's keys and values
 * for the positions seen so far, and the check that a cache fits the model and the batch.
 */
import { ShapeError, ValueError, fmtShape } from '../../errors';
import type { Tensor } from '../../tensor/tensor';
import type { ResolvedLlamaConfig } from './config';

/** One layer's cached keys and values, [B, numKeyValueHeads, S, headDim], after RoPE, detached. */
export interface LayerKV {
  key: Tensor;
  value: Tensor;
}

/**
 * The keys and values of every decoder layer for the S positions seen so far. Forward never
 * modifies a cache it is given: it returns a new one holding S + T positions, so a prefix cache
 * can be reused for several continuations.
 */
export class KVCache {
  constructor(readonly layers: readonly LayerKV[]) {}

  /** Number of cached positions S (0 for an empty cache). */
  get length(): number {
    return this.layers.length === 0 ? 0 : this.layers[0].key.shape[2];
  }

  /** Releases the cached tensors' storage now instead of at garbage collection. */
  dispose(): void {
    for (const { key, value } of this.layers) {
      key.dispose();
      value.dispose();
    }
  }
}

/** Validates a cache against the config and batch; returns its length. */
export function checkCache(op: string, cache: KVCache, cfg: ResolvedLlamaConfig, batch: number): number {
  if (!(cache instanceof KVCache)) throw new ValueError(op, 'pastKeyValues must be a KVCache returned by an earlier forward with useCache');
  if (cache.layers.length === 0) return 0;
  if (cache.layers.length !== cfg.numHiddenLayers) {
    throw new ValueError(op, `pastKeyValues has ${cache.layers.length} layers but the model has ${cfg.numHiddenLayers}`);
  }
  const s = cache.length;
  const expected = [batch, cfg.numKeyValueHeads, s, cfg.headDim];
  cache.layers.forEach(({ key, value }, i) => {
    for (const [what, x] of [['key', key], ['value', value]] as const) {
      if (x.ndim !== 4 || x.shape.some((d, j) => d !== expected[j])) {
        throw new ShapeError(op, `pastKeyValues layer ${i} ${what} has shape ${fmtShape(x.shape)}, expected ${fmtShape(expected)} [batch, kvHeads, cached, headDim]`);
      }
    }
  });
  return s;
}
