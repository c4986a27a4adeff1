/**
 * End to end: a 2-layer Llama (hidden size 64) trained with Adam on the embedded instruction
 * dataset through the real pipeline (tokenizer, Alpaca prompt masking, batcher) must lower its
 * loss clearly within a hundred steps.
 */
import { Adam, Batcher, ByteTokenizer, LlamaForCausalLM, encodeDataset, generateInstructionDataset } from '../../src';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('a 2-layer Llama learns the embedded instruction set', () => {
  const tokenizer = new ByteTokenizer();
  const examples = generateInstructionDataset({ count: 256, seed: 1 });
  // maxLength 48 keeps the instruction and the answer and cuts the long Alpaca preamble (left)
  const { examples: encoded } = encodeDataset(examples, tokenizer, { maxLength: 48 });
  expect(encoded.length).toBe(256);

  const model = new LlamaForCausalLM({
    vocabSize: tokenizer.vocabSize,
    hiddenSize: 64,
    intermediateSize: 128,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    maxPositionEmbeddings: 64,
    seed: 0,
  });
  const optimizer = new Adam(model.parameters(), { lr: 3e-3 });
  const batcher = new Batcher(encoded, { batchSize: 8, shuffle: true, seed: 0, padId: tokenizer.padId });

  const losses: number[] = [];
  while (losses.length < 100) {
    for (const batch of batcher) {
      const { loss } = model.forward(batch.inputIds, { labels: batch.labels, attentionMask: batch.attentionMask });
      optimizer.zeroGrad();
      loss!.backward();
      optimizer.step();
      losses.push(loss!.item());
      if (losses.length === 100) break;
    }
  }
  // an untrained model is close to uniform over the vocabulary: loss ≈ ln(vocab size)
  expect(Math.abs(losses[0] - Math.log(tokenizer.vocabSize))).toBeLessThan(0.3);
  const first = mean(losses.slice(0, 10));
  const last = mean(losses.slice(-10));
  expect(last).toBeLessThan(0.55 * first);
  expect(last).toBeLessThan(2.5);
  expect(losses.every(Number.isFinite)).toBe(true);
});
