/**
 * What activation checkpointing trades: the bytes a forward keeps for the backward against the
 * time of a training step's forward and backward, on the backward suite's Llama, with every
 * parameter trainable and with one BAdam block active (the middle one; the layers below it are
 * frozen, so they record nothing and never recompute). Each case runs plain and with
 * `gradientCheckpointingEnable()` in the same run, interleaved round by round; times are medians.
 *
 *   node scripts/run-ts.mjs bench/checkpoint.bench.ts      (about a minute on 2 cores)
 *   npm run bench -- --only checkpoint
 *
 * Bytes are memory.stats().savedForBackwardBytes right after the forward: the activations the
 * graph keeps, and with checkpointing the inputs each checkpointed layer keeps for its recomputation.
 */
import { LlamaForCausalLM, memory, tidy, type Tensor } from '../src';
import { BACKWARD_INPUT, BACKWARD_MODEL, isEntry, tokenIds } from './backward.bench';
import { median, timeRound, yieldToLoop } from './rounds';

export interface CheckpointCase {
  /** 'full' (every parameter trainable) or 'BAdam block k'. */
  name: string;
  savedBytesPlain: number;
  savedBytesCheckpointed: number;
  /** Median seconds of forward + backward. */
  stepSecondsPlain: number;
  stepSecondsCheckpointed: number;
}

export interface CheckpointBenchResult {
  cases: CheckpointCase[];
}

const ROUNDS = 7;

export async function runCheckpointBench(): Promise<CheckpointBenchResult> {
  const config = BACKWARD_MODEL;
  const { batch, seqLen } = BACKWARD_INPUT;
  const active = Math.floor(config.numHiddenLayers / 2);
  console.log(`Llama ${config.numHiddenLayers} layers, hidden ${config.hiddenSize}; batch ${batch} x seq ${seqLen}; BAdam case: block ${active} active`);
  const cases: CheckpointCase[] = [];
  for (const name of ['full', `BAdam block ${active}`]) {
    const plain = new LlamaForCausalLM(config);
    const checkpointed = new LlamaForCausalLM(config).gradientCheckpointingEnable();
    for (const model of [plain, checkpointed]) {
      if (name !== 'full') for (const [n, p] of model.namedParameters()) p.requiresGrad = n.startsWith(`model.layers.${active}.`);
    }
    const ids = tokenIds(batch, seqLen, config.vocabSize);
    const savedBytes = (model: LlamaForCausalLM) =>
      tidy(() => {
        model.forward(ids, { labels: ids });
        return memory.stats().savedForBackwardBytes;
      });
    const step = (model: LlamaForCausalLM) => () =>
      tidy(() => {
        const { loss } = model.forward(ids, { labels: ids });
        (loss as Tensor).backward();
        for (const p of model.parameters()) {
          p.grad?.dispose();
          p.grad = null;
        }
      });
    const rounds: [number[], number[]] = [[], []];
    step(plain)(); // warm-up: compile and allocate once
    step(checkpointed)();
    for (let r = 0; r < ROUNDS; r++) {
      rounds[0].push(timeRound(step(plain), 0.3));
      rounds[1].push(timeRound(step(checkpointed), 0.3));
      await yieldToLoop();
    }
    const row: CheckpointCase = {
      name,
      savedBytesPlain: savedBytes(plain),
      savedBytesCheckpointed: savedBytes(checkpointed),
      stepSecondsPlain: median(rounds[0]),
      stepSecondsCheckpointed: median(rounds[1]),
    };
    console.log(
      `${name}: saved ${(row.savedBytesPlain / 2 ** 20).toFixed(2)} -> ${(row.savedBytesCheckpointed / 2 ** 20).toFixed(2)} MiB, ` +
        `forward+backward ${(row.stepSecondsPlain * 1e3).toFixed(1)} -> ${(row.stepSecondsCheckpointed * 1e3).toFixed(1)} ms`,
    );
    cases.push(row);
    for (const model of [plain, checkpointed]) for (const p of model.parameters()) p.dispose();
  }
  return { cases };
}

export function checkpointMarkdown(result: CheckpointBenchResult): string {
  const mib = (b: number) => (b / 2 ** 20).toFixed(2);
  const ms = (s: number) => (s * 1e3).toFixed(1);
  return [
    '| case | saved MiB, plain | saved MiB, checkpointed | saved ratio | forward+backward ms, plain | checkpointed | time ratio |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...result.cases.map(
      (c) =>
        `| ${c.name} | ${mib(c.savedBytesPlain)} | ${mib(c.savedBytesCheckpointed)} | ${(c.savedBytesCheckpointed / c.savedBytesPlain).toFixed(3)} | ` +
        `${ms(c.stepSecondsPlain)} | ${ms(c.stepSecondsCheckpointed)} | ${(c.stepSecondsCheckpointed / c.stepSecondsPlain).toFixed(2)} |`,
    ),
  ].join('\n');
}

if (isEntry('checkpoint.bench')) {
  runCheckpointBench().then((r) => console.log(`\n${checkpointMarkdown(r)}`));
}
