import {
  ValueError,
  Batcher,
  batches,
  collate,
  type TokenizedExample,
} from '../../src';
import { flat } from '../helpers';

const PAD = 256;
const exA: TokenizedExample = { inputIds: [1, 2, 3], labels: [-100, 2, 3] };
const exB: TokenizedExample = { inputIds: [4], labels: [4] };
const exC: TokenizedExample = { inputIds: [5, 6], labels: [-100, -100] };

describe('collate', () => {
  test('right padding: shapes, dtypes, values and masks', () => {
    const b = collate([exA, exB, exC], { padId: PAD });
    for (const t of [b.inputIds, b.labels, b.attentionMask]) {
      expect(t.shape).toEqual([3, 3]);
      expect(t.dtype).toBe('int32');
    }
    expect(flat(b.inputIds)).toEqual([1, 2, 3, 4, PAD, PAD, 5, 6, PAD]);
    expect(flat(b.labels)).toEqual([-100, 2, 3, 4, -100, -100, -100, -100, -100]);
    expect(flat(b.attentionMask)).toEqual([1, 1, 1, 1, 0, 0, 1, 1, 0]);
  });

  test('left padding', () => {
    const b = collate([exA, exB, exC], { padId: PAD, padSide: 'left' });
    expect(flat(b.inputIds)).toEqual([1, 2, 3, PAD, PAD, 4, PAD, 5, 6]);
    expect(flat(b.labels)).toEqual([-100, 2, 3, -100, -100, 4, -100, -100, -100]);
    expect(flat(b.attentionMask)).toEqual([1, 1, 1, 0, 0, 1, 0, 1, 1]);
  });

  test('padTo fixes T; a longer example is an error, never a silent cut', () => {
    const b = collate([exB, exC], { padId: 0, padTo: 4 });
    expect(b.inputIds.shape).toEqual([2, 4]);
    expect(flat(b.inputIds)).toEqual([4, 0, 0, 0, 5, 6, 0, 0]);
    expect(flat(b.attentionMask)).toEqual([1, 0, 0, 0, 1, 1, 0, 0]);
    expect(() => collate([exA, exB], { padId: 0, padTo: 2 })).toThrow(/example 0 has 3 tokens, more than padTo = 2/);
  });

  test('one example, no padding', () => {
    const b = collate([exA], { padId: PAD });
    expect(b.inputIds.shape).toEqual([1, 3]);
    expect(flat(b.attentionMask)).toEqual([1, 1, 1]);
  });

  test('invalid input', () => {
    expect(() => collate([], { padId: PAD })).toThrow(ValueError);
    expect(() => collate([{ inputIds: [1, 2], labels: [1] }], { padId: PAD })).toThrow(/inputIds has 2 tokens but labels has 1/);
    expect(() => collate([exA], { padId: 1.5 })).toThrow(ValueError);
    expect(() => collate([exA], { padId: PAD, padSide: 'middle' as 'left' })).toThrow(ValueError);
    expect(() => collate([exA, { inputIds: [1, 0.5], labels: [1, 1] }], { padId: PAD })).toThrow(/example 1: position 1/);
  });
});

/** Example i has length 1 + (i % 4) and tokens equal to i, so rows identify their source. */
const dataset: TokenizedExample[] = Array.from({ length: 23 }, (_, i) => {
  const ids = new Array(1 + (i % 4)).fill(i);
  return { inputIds: ids, labels: ids };
});

describe('Batcher', () => {
  test('unshuffled: dataset order, last batch smaller, rows match their indices', () => {
    const batcher = new Batcher(dataset, { batchSize: 5, padId: PAD });
    expect(batcher.length).toBe(5);
    const got = [...batcher];
    expect(got.map((b) => b.indices)).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [15, 16, 17, 18, 19], [20, 21, 22]]);
    expect(got.every((b) => b.epoch === 0)).toBe(true);
    const last = got[4];
    expect(last.inputIds.shape).toEqual([3, 3]); // lengths 1, 2, 3
    expect(flat(last.inputIds)).toEqual([20, PAD, PAD, 21, 21, PAD, 22, 22, 22]);
    expect(flat(last.labels)).toEqual([20, -100, -100, 21, 21, -100, 22, 22, 22]);
    expect(batcher.epoch).toBe(1);
  });

  test('dropLast', () => {
    const batcher = new Batcher(dataset, { batchSize: 5, padId: PAD, dropLast: true });
    expect(batcher.length).toBe(4);
    const got = [...batcher];
    expect(got.length).toBe(4);
    expect(got.every((b) => b.indices.length === 5)).toBe(true);
  });

  test('shuffle: every example once per epoch, same seed same order, new order each epoch', () => {
    const opts = { batchSize: 4, padId: PAD, shuffle: true, seed: 42 };
    const a = new Batcher(dataset, opts);
    const b = new Batcher(dataset, opts);
    const epochsA = [0, 1, 2].map(() => [...a].flatMap((batch) => batch.indices));
    const epochsB = [0, 1, 2].map(() => [...b].flatMap((batch) => batch.indices));
    expect(epochsA).toEqual(epochsB);
    for (const order of epochsA) expect([...order].sort((x, y) => x - y)).toEqual(dataset.map((_, i) => i));
    expect(epochsA[0]).not.toEqual(epochsA[1]);
    expect(epochsA[1]).not.toEqual(epochsA[2]);
    expect(epochsA[0]).not.toEqual(dataset.map((_, i) => i));
    // a different seed gives a different order
    expect(new Batcher(dataset, { ...opts, seed: 43 }).order(0)).not.toEqual(epochsA[0]);
    // the order of an epoch depends on (seed, epoch) only: resuming reproduces it
    const resumed = new Batcher(dataset, opts);
    resumed.setEpoch(2);
    expect([...resumed].flatMap((batch) => batch.indices)).toEqual(epochsA[2]);
    expect(resumed.order(1)).toEqual(epochsA[1]);
    // rows carry the right examples
    const first = [...new Batcher(dataset, opts).epochBatches(0)][0];
    const ids = flat(first.inputIds);
    const T = first.inputIds.shape[1];
    first.indices.forEach((src, r) => expect(ids[r * T]).toBe(src));
  });

  test('batches(): several epochs, reshuffled each epoch, deterministic', () => {
    const opts = { batchSize: 10, padId: PAD, shuffle: true, seed: 7, epochs: 3 };
    const run = () => [...batches(dataset, opts)].map((b) => ({ epoch: b.epoch, indices: b.indices }));
    const r1 = run();
    expect(r1).toEqual(run());
    expect(r1.map((b) => b.epoch)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
    const perEpoch = [0, 1, 2].map((e) => r1.filter((b) => b.epoch === e).flatMap((b) => b.indices));
    expect(perEpoch[0]).not.toEqual(perEpoch[1]);
    expect(perEpoch[1]).toEqual(new Batcher(dataset, opts).order(1));
    const fromTwo = [...batches(dataset, { ...opts, epochs: 1, startEpoch: 2 })].flatMap((b) => b.indices);
    expect(fromTwo).toEqual(perEpoch[2]);
  });

  test('padTo and left padding pass through', () => {
    const [b] = [...batches(dataset.slice(0, 2), { batchSize: 2, padId: 0, padTo: 4, padSide: 'left' })];
    expect(flat(b.inputIds)).toEqual([0, 0, 0, 0, 0, 0, 1, 1]);
    expect(flat(b.attentionMask)).toEqual([0, 0, 0, 1, 0, 0, 1, 1]);
  });

  test('errors name the dataset index; bad options', () => {
    const broken = [...dataset.slice(0, 3), { inputIds: [1, 2], labels: [1] }];
    expect(() => [...new Batcher(broken, { batchSize: 2, padId: PAD })]).toThrow(/Batcher: example 3:/);
    expect(() => new Batcher(dataset, { batchSize: 0, padId: PAD })).toThrow(ValueError);
    expect(() => new Batcher(dataset, { batchSize: 2, padId: PAD, seed: -1 })).toThrow(ValueError);
    expect(() => new Batcher(dataset, { batchSize: 2, padId: undefined as unknown as number })).toThrow(ValueError);
    expect(() => batches(dataset, { batchSize: 2, padId: PAD, epochs: -1 })).toThrow(ValueError);
    expect(() => new Batcher(dataset, { batchSize: 2, padId: PAD }).setEpoch(-1)).toThrow(ValueError);
  });

  test('empty dataset yields nothing', () => {
    expect([...new Batcher([], { batchSize: 3, padId: PAD })]).toEqual([]);
  });
});
