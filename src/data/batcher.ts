/**
 * Batching encoded examples: `collate` pads a list of variable-length sequences into int32
 * tensors [B, T], and `Batcher` / `batches` walk a dataset in (optionally shuffled) batches.
 *
 * Shuffling is seeded and per epoch: epoch e's order is a function of (seed, e) alone, drawn
 * from a Generator seeded with seed + e·2^32 (seed in the low 32 bits, the epoch in the high
 * bits), so the same seed gives the same orders, each epoch gets its own order, and a run that
 * resumes at epoch e (`setEpoch(e)`) sees exactly the order it would have seen.
 */
import '../kernels';
import { ValueError } from '../errors';
import { kernels } from '../kernels/registry';
import { Generator } from '../tensor/random';
import { Tensor } from '../tensor/tensor';
import { IGNORE_INDEX } from './alpaca';

/** What collate needs from an example: token ids and labels of the same length. */
export interface TokenizedExample {
  inputIds: readonly number[];
  labels: readonly number[];
}

export interface CollateOptions {
  /** Token id written into padded positions of inputIds (e.g. `tokenizer.padId`). */
  padId: number;
  /**
   * Pad every row to exactly this length (T = padTo). Default: the longest example. A longer
   * example is a ValueError; collate never truncates (encodeExample does, with maxLength).
   */
  padTo?: number;
  /** Where the padding goes: 'right' (default, training) or 'left' (batched generation). */
  padSide?: 'left' | 'right';
}

export interface CollatedBatch {
  /** [B, T] int32 token ids, padId on pads. */
  inputIds: Tensor;
  /** [B, T] int32 labels, -100 on pads (and wherever the example had -100). */
  labels: Tensor;
  /** [B, T] int32: 1 on real tokens, 0 on pads. */
  attentionMask: Tensor;
}

function collateImpl(op: string, examples: readonly TokenizedExample[], options: CollateOptions, names?: readonly number[]): CollatedBatch {
  const { padId, padTo, padSide = 'right' } = options ?? ({} as CollateOptions);
  if (!Array.isArray(examples) || examples.length === 0) {
    throw new ValueError(op, 'expected a non-empty array of { inputIds, labels } examples');
  }
  if (!Number.isInteger(padId) || Math.abs(padId) > 2 ** 31 - 1) throw new ValueError(op, `padId must be an int32 integer, got ${padId}`);
  if (padSide !== 'left' && padSide !== 'right') throw new ValueError(op, `padSide must be 'left' or 'right', got ${String(padSide)}`);
  if (padTo !== undefined && (!Number.isInteger(padTo) || padTo < 0)) throw new ValueError(op, `padTo must be a non-negative integer, got ${padTo}`);
  let longest = 0;
  examples.forEach((ex, b) => {
    const name = `example ${names ? names[b] : b}`;
    if (!ex || !Array.isArray(ex.inputIds) || !Array.isArray(ex.labels)) {
      throw new ValueError(op, `${name}: expected { inputIds: number[], labels: number[] }`);
    }
    if (ex.inputIds.length !== ex.labels.length) {
      throw new ValueError(op, `${name}: inputIds has ${ex.inputIds.length} tokens but labels has ${ex.labels.length}; they must match`);
    }
    for (let t = 0; t < ex.inputIds.length; t++) {
      if (!Number.isInteger(ex.inputIds[t]) || !Number.isInteger(ex.labels[t])) {
        throw new ValueError(op, `${name}: position ${t} holds a non-integer (inputIds ${ex.inputIds[t]}, labels ${ex.labels[t]})`);
      }
    }
    longest = Math.max(longest, ex.inputIds.length);
  });
  const T = padTo ?? longest;
  if (longest > T) {
    const b = examples.findIndex((ex) => ex.inputIds.length > T);
    throw new ValueError(op, `example ${names ? names[b] : b} has ${examples[b].inputIds.length} tokens, more than padTo = ${T}; truncate it first (encodeExample's maxLength)`);
  }
  const B = examples.length;
  const ids = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  const mask = new Int32Array(B * T);
  examples.forEach((ex, b) => {
    const n = ex.inputIds.length;
    const start = b * T + (padSide === 'left' ? T - n : 0);
    for (let t = 0; t < n; t++) {
      ids[start + t] = ex.inputIds[t];
      labels[start + t] = ex.labels[t];
      mask[start + t] = 1;
    }
  });
  const k = kernels();
  return {
    inputIds: new Tensor(k.upload('int32', ids), [B, T]),
    labels: new Tensor(k.upload('int32', labels), [B, T]),
    attentionMask: new Tensor(k.upload('int32', mask), [B, T]),
  };
}

/**
 * Pads examples into int32 tensors [B, T]: inputIds (padId on pads), labels (-100 on pads) and
 * attentionMask (1 on real tokens, 0 on pads). T is `padTo` or the longest example.
 */
export function collate(examples: readonly TokenizedExample[], options: CollateOptions): CollatedBatch {
  return collateImpl('collate', examples, options);
}

export interface BatcherOptions extends CollateOptions {
  /** Examples per batch (a positive integer). */
  batchSize: number;
  /** Reshuffle every epoch (default false: dataset order). */
  shuffle?: boolean;
  /** Shuffle seed, an integer in [0, 2^32) (default 0). */
  seed?: number;
  /** Leave out the last, smaller batch of an epoch (default false). */
  dropLast?: boolean;
}

export interface Batch extends CollatedBatch {
  /** Dataset indices of the rows, in row order. */
  indices: number[];
  /** The epoch this batch belongs to. */
  epoch: number;
}

/**
 * Walks a dataset of tokenized examples in batches, one epoch per iteration:
 *
 * ```ts
 * const batcher = new Batcher(encoded, { batchSize: 8, shuffle: true, seed: 1, padId: tok.padId });
 * for (let epoch = 0; epoch < 3; epoch++) for (const batch of batcher) train(batch);
 * ```
 *
 * Each `for ... of` runs the current epoch and advances `epoch` by one (as soon as iteration
 * starts, so breaking out early still moves on). `epochBatches(e)` runs a given epoch without
 * touching the counter. Batches hold fresh tensors; dispose them when done if memory matters.
 */
export class Batcher<E extends TokenizedExample = TokenizedExample> implements Iterable<Batch> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  private readonly collateOptions: CollateOptions;
  private nextEpoch = 0;

  constructor(
    readonly dataset: readonly E[],
    options: BatcherOptions,
  ) {
    const op = 'Batcher';
    if (!Array.isArray(dataset)) throw new ValueError(op, 'dataset must be an array of { inputIds, labels } examples');
    const { batchSize, shuffle = false, seed = 0, dropLast = false, padId, padTo, padSide } = options ?? ({} as BatcherOptions);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new ValueError(op, `batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new ValueError(op, `seed must be an integer in [0, 2^32), got ${seed}`);
    if (!Number.isInteger(padId)) throw new ValueError(op, `padId must be an integer (e.g. tokenizer.padId), got ${padId}`);
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    this.collateOptions = { padId, padTo, padSide };
  }

  /** The epoch the next `for ... of` will run (starts at 0). */
  get epoch(): number {
    return this.nextEpoch;
  }

  /** Sets the epoch the next `for ... of` will run, e.g. when resuming a run. */
  setEpoch(epoch: number): void {
    checkEpoch('Batcher.setEpoch', epoch);
    this.nextEpoch = epoch;
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The dataset indices in the order epoch `epoch` visits them. */
  order(epoch: number = this.nextEpoch): number[] {
    checkEpoch('Batcher.order', epoch);
    const n = this.dataset.length;
    if (!this.shuffle) return Array.from({ length: n }, (_, i) => i);
    // seed in the low 32 bits, epoch in the high bits: distinct (seed, epoch) give distinct streams.
    return new Generator(this.seed + epoch * 2 ** 32).permutation(n);
  }

  /** The batches of one epoch, without changing `epoch`. */
  *epochBatches(epoch: number): IterableIterator<Batch> {
    const order = this.order(epoch);
    const B = this.batchSize;
    for (let start = 0; start < order.length; start += B) {
      const indices = order.slice(start, start + B);
      if (indices.length < B && this.dropLast) break;
      const rows = indices.map((i) => this.dataset[i]);
      yield { ...collateImpl('Batcher', rows, this.collateOptions, indices), indices, epoch };
    }
  }

  *[Symbol.iterator](): IterableIterator<Batch> {
    const epoch = this.nextEpoch++;
    yield* this.epochBatches(epoch);
  }
}

function checkEpoch(op: string, epoch: number): void {
  // 2^21 epochs keep seed + epoch·2^32 an exact integer.
  if (!Number.isInteger(epoch) || epoch < 0 || epoch >= 2 ** 21) throw new ValueError(op, `epoch must be an integer in [0, 2^21), got ${epoch}`);
}

export interface BatchesOptions extends BatcherOptions {
  /** How many epochs to run (default 1). */
  epochs?: number;
  /** The first epoch's number, which picks its shuffle (default 0). */
  startEpoch?: number;
}

/**
 * Yields collated batches for `epochs` epochs starting at `startEpoch`, reshuffling each epoch
 * when `shuffle` is set (same seed, same orders). See Batcher.
 */
export function batches<E extends TokenizedExample>(dataset: readonly E[], options: BatchesOptions): IterableIterator<Batch> {
  const { epochs = 1, startEpoch = 0 } = options ?? ({} as BatchesOptions);
  if (!Number.isInteger(epochs) || epochs < 0) throw new ValueError('batches', `epochs must be a non-negative integer, got ${epochs}`);
  checkEpoch('batches', startEpoch);
  checkEpoch('batches', startEpoch + Math.max(0, epochs - 1));
  const batcher = new Batcher(dataset, options); // validates now, not at the first next()
  return (function* () {
    for (let e = 0; e < epochs; e++) yield* batcher.epochBatches(startEpoch + e);
  })();
}
