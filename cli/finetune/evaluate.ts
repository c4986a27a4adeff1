/**
 * The evaluation loss of a causal LM on held-out examples: the mean cross-entropy over every
 * answer token of the set (batches weighted by their token counts, so that the result does not
 * depend on how the examples fall into batches), without gradients, in eval mode. Used by
 * `blockgrad finetune` and by the convergence experiment.
 */
import { IGNORE_INDEX, collate, noGrad, tidy, type EncodedExample, type LlamaForCausalLM, type Tensor } from '../../src';

/** Answer tokens that count in the loss (labels are compared with the logits one position earlier). */
export function lossTokens(example: EncodedExample): number {
  let n = 0;
  for (let t = 1; t < example.labels.length; t++) if (example.labels[t] !== IGNORE_INDEX) n++;
  return n;
}

/** The token-weighted mean loss over `examples` (NaN when none has an answer token); the model is left in train mode. */
export function evaluate(model: LlamaForCausalLM, examples: readonly EncodedExample[], batchSize: number, padId: number): number {
  model.eval();
  let sum = 0;
  let count = 0;
  try {
    noGrad(() => {
      for (let start = 0; start < examples.length; start += batchSize) {
        const rows = examples.slice(start, start + batchSize);
        const n = rows.reduce((k, r) => k + lossTokens(r), 0);
        if (n === 0) continue;
        sum += tidy(() => {
          const b = collate(rows, { padId });
          const { loss } = model.forward(b.inputIds, { labels: b.labels, attentionMask: b.attentionMask });
          return (loss as Tensor).item() * n;
        });
        count += n;
      }
    });
  } finally {
    model.train();
  }
  return count > 0 ? sum / count : NaN;
}
