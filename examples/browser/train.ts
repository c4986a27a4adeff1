/**
 * The browser example's training run, without the page: a tiny Llama-style model over the byte
 * tokenizer's ids, trained with BAdam (`BlockOptimizer`, Adam inside) on a short embedded text.
 * The page (main.ts) runs it on the gpu or the wasm backend and draws it; test/browser/browser.test.ts runs
 * the same steps on the cpu backend in Node and compares the losses the browser reported.
 * Deterministic: the model is seeded and the batches are fixed.
 */
import { Adam, BlockOptimizer, ByteTokenizer, LlamaForCausalLM, tensor, tidy } from '../../src';

// Small enough to finish in seconds under software WebGL, large enough to show the loss fall.
export const TEXT =
  'the cat sat on the mat and the dog sat on the log. ' +
  'the cat saw the dog and the dog saw the cat. ' +
  'a cat on a mat is a happy cat; a dog on a log is a happy dog. ';
export const SEQ_LEN = 48;
export const BATCH = 2;
export const SWITCH_EVERY = 5;
export const LR = 1e-2;
export const DEFAULT_STEPS = 40;

export interface StepResult {
  step: number;
  loss: number;
  /** The prefixes of the block this step trained, joined with ', '. */
  block: string;
}

/** The block names of the partition, in block order (for a legend). */
export interface Run {
  blockNames: string[];
  steps: Generator<StepResult, void, void>;
}

/**
 * Builds the model and optimizer on the active backend; `steps` yields after each optimizer
 * step, so a caller can draw, or give the browser a frame, between steps.
 */
export function tinyLlamaRun(steps: number): Run {
  const tokenizer = new ByteTokenizer();
  const ids = tokenizer.encode(TEXT);
  // overlapping windows of SEQ_LEN tokens; step s takes windows 2s and 2s+1 (cyclically)
  const windows: number[][] = [];
  for (let start = 0; start + SEQ_LEN <= ids.length; start += SEQ_LEN / 2) windows.push(ids.slice(start, start + SEQ_LEN));

  const model = new LlamaForCausalLM({
    vocabSize: tokenizer.vocabSize,
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 2,
    numAttentionHeads: 2,
    seed: 0,
  });
  // Four blocks, visited top down: the head (with the final norm), layer 1, layer 0, the
  // embedding. With the embedding and head frozen (BAdam's default) a model this small, trained
  // from scratch, would learn little in 40 steps.
  const opt = new BlockOptimizer(model, new Adam(model.parameters(), { lr: LR }), {
    switchEvery: SWITCH_EVERY,
    switchMode: 'descending',
    includeEmbedding: true,
    includeLmHead: true,
    verbose: 0,
  });
  const blockNames = opt.blocks().map((b) => b.prefixes.join(', '));

  function* run(): Generator<StepResult, void, void> {
    for (let step = 0; step < steps; step++) {
      const batch = Array.from({ length: BATCH }, (_, k) => windows[(step * BATCH + k) % windows.length]);
      // read before opt.step(), which switches to the next block after the K-th step
      const block = blockNames[opt.currentBlock];
      // tidy releases everything the step made (wasm and GPU memory have no garbage collector)
      const value = tidy(() => {
        const inputIds = tensor(batch, { dtype: 'int32' });
        opt.zeroGrad();
        const { loss } = model.forward(inputIds, { labels: inputIds });
        loss!.backward();
        opt.step();
        return loss!.item();
      });
      yield { step, loss: value, block };
    }
  }
  return { blockNames, steps: run() };
}
