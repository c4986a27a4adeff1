/**
 * Experiment 3, convergence on instruction tuning. The paper: BAdam converges close to Adam per
 * epoch and better than LoRA and LOMO. Here a small Llama is pretrained briefly on the embedded
 * instruction set (language modelling on whole examples; cached), then fine-tuned on an Alpaca
 * file (answers only) by BAdam, BAdam over SGD (the paper's ablation), Adam, LoRA and LOMO: the
 * same pretrained weights, the same batches (one seeded order per seed), several full
 * block-epochs, three seeds. Recorded: the loss at every step, the time it took, and the loss on
 * held-out examples at the end.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  Adam,
  Batcher,
  ByteTokenizer,
  LlamaForCausalLM,
  encodeDataset,
  generateInstructionDataset,
  loadAlpacaFile,
  loadSafetensorsFile,
  saveSafetensorsFile,
  tidy,
  type AlpacaExample,
  type LlamaConfig,
  type Tensor,
} from '../src';
import { buildMethod, type MethodName } from './methods';
import { evaluate } from '../cli/finetune/evaluate';

export const CONVERGENCE_METHODS: MethodName[] = ['badam', 'badam-sgd', 'adam', 'lora', 'lomo'];

/** Learning rates: one for the methods with Adam inside, one for the SGD ones (not tuned per method). */
export const LRS: Record<string, number> = { badam: 2e-3, adam: 2e-3, lora: 2e-3, 'badam-sgd': 5e-2, lomo: 5e-2 };

export const CONVERGENCE_MODEL: LlamaConfig = { vocabSize: 259, hiddenSize: 128, intermediateSize: 344, numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 128, seed: 0 };

export interface ConvergenceRun {
  method: MethodName;
  seed: number;
  /** Training loss of each step. */
  losses: number[];
  /** Seconds since the run started, after each step. */
  seconds: number[];
  heldOutLoss: number;
}

export interface Spread {
  mean: number;
  min: number;
  max: number;
}

export interface ConvergenceResult {
  model: LlamaConfig;
  data: { source: string; train: number; heldOut: number; maxLength: number; batchSize: number };
  pretrainSteps: number;
  steps: number;
  switchEvery: number;
  seeds: number[];
  lrs: Record<string, number>;
  runs: ConvergenceRun[];
  /** Per method: the mean training loss of the last tenth of the steps, the held-out loss, and the seconds, over the seeds. */
  summary: { method: MethodName; finalLoss: Spread; heldOut: Spread; seconds: Spread }[];
}

const spread = (xs: number[]): Spread => ({ mean: xs.reduce((a, b) => a + b, 0) / xs.length, min: Math.min(...xs), max: Math.max(...xs) });

/** The pretrained weights: language modelling on the embedded instructions with Adam, cached under `cacheDir`. */
async function pretrained(steps: number, batchSize: number, cacheDir: string, log: (line: string) => void): Promise<Record<string, Tensor>> {
  const file = join(cacheDir, `pretrained-h${CONVERGENCE_MODEL.hiddenSize}-l${CONVERGENCE_MODEL.numHiddenLayers}-s${steps}-b${batchSize}.safetensors`);
  if (existsSync(file)) return loadSafetensorsFile(file);
  const tokenizer = new ByteTokenizer();
  const texts = encodeDataset(generateInstructionDataset({ count: 1024, seed: 99 }), tokenizer, { maxLength: 96 }).examples.map((e) => ({ inputIds: e.inputIds, labels: e.inputIds }));
  const model = new LlamaForCausalLM(CONVERGENCE_MODEL);
  const opt = new Adam(model.parameters(), { lr: 3e-3 });
  const batcher = new Batcher(texts, { batchSize, shuffle: true, seed: 0, padId: tokenizer.padId });
  let step = 0;
  for (let epoch = 0; step < steps; epoch++) {
    for (const b of batcher.epochBatches(epoch)) {
      if (step++ >= steps) break;
      tidy(() => {
        opt.zeroGrad();
        (model.forward(b.inputIds, { labels: b.labels, attentionMask: b.attentionMask }).loss as Tensor).backward();
        opt.step();
      });
    }
  }
  opt.resetState();
  mkdirSync(cacheDir, { recursive: true });
  await saveSafetensorsFile(file, model.stateDict());
  log(`convergence: pretrained ${steps} steps, cached in ${file}`);
  return model.stateDict();
}

export async function runConvergence(options: { quick: boolean; data?: string; cacheDir: string }, log: (line: string) => void): Promise<ConvergenceResult> {
  const { quick } = options;
  const D = CONVERGENCE_MODEL.numHiddenLayers as number;
  const switchEvery = quick ? 2 : 25;
  const steps = D * switchEvery * (quick ? 1 : 3); // whole block-epochs
  const seeds = quick ? [0] : [0, 1, 2];
  const pretrainSteps = quick ? 10 : 400;
  // --quick (and the test suite, on the slow cpu backend): shorter sequences, smaller batches
  const maxLength = quick ? 48 : 128;
  const batchSize = quick ? 4 : 8;

  const tokenizer = new ByteTokenizer();
  const examples: AlpacaExample[] = options.data ? loadAlpacaFile(options.data) : generateInstructionDataset({ count: 600, seed: 1 });
  const encoded = encodeDataset(examples, tokenizer, { maxLength }).examples;
  const heldOutCount = Math.max(8, Math.round(encoded.length * 0.05));
  const heldOut = encoded.slice(0, heldOutCount);
  const train = encoded.slice(heldOutCount);
  const weights = await pretrained(pretrainSteps, quick ? 4 : 16, options.cacheDir, log);

  const runs: ConvergenceRun[] = [];
  for (const seed of seeds) {
    for (const method of CONVERGENCE_METHODS) {
      const model = new LlamaForCausalLM(CONVERGENCE_MODEL);
      model.loadStateDict(weights);
      model.train();
      const built = buildMethod(method, model, LRS[method], switchEvery);
      const batcher = new Batcher(train, { batchSize, shuffle: true, seed, padId: tokenizer.padId });
      const losses: number[] = [];
      const seconds: number[] = [];
      const t0 = performance.now();
      for (let epoch = 0; losses.length < steps; epoch++) {
        for (const b of batcher.epochBatches(epoch)) {
          if (losses.length >= steps) break;
          losses.push(
            tidy(() => {
              built.zeroGrad();
              const loss = model.forward(b.inputIds, { labels: b.labels, attentionMask: b.attentionMask }).loss as Tensor;
              const value = loss.item();
              built.backward(loss);
              built.update();
              return value;
            }),
          );
          seconds.push((performance.now() - t0) / 1000);
        }
      }
      const held = evaluate(model, heldOut, 8, tokenizer.padId);
      built.release();
      for (const p of model.parameters()) p.dispose();
      runs.push({ method, seed, losses, seconds, heldOutLoss: held });
      log(`convergence: ${method.padEnd(9)} seed ${seed}: loss ${losses[0].toFixed(3)} -> ${losses[losses.length - 1].toFixed(3)}, held-out ${held.toFixed(3)}, ${seconds[seconds.length - 1].toFixed(1)} s`);
    }
  }
  for (const t of Object.values(weights)) t.dispose();
  const tail = Math.max(1, Math.round(steps / 10));
  const summary = CONVERGENCE_METHODS.map((method) => {
    const mine = runs.filter((r) => r.method === method);
    return {
      method,
      finalLoss: spread(mine.map((r) => r.losses.slice(-tail).reduce((a, b) => a + b, 0) / tail)),
      heldOut: spread(mine.map((r) => r.heldOutLoss)),
      seconds: spread(mine.map((r) => r.seconds[r.seconds.length - 1])),
    };
  });
  return {
    model: CONVERGENCE_MODEL,
    data: { source: options.data ?? 'the embedded instruction set (600 generated examples)', train: train.length, heldOut: heldOut.length, maxLength, batchSize },
    pretrainSteps,
    steps,
    switchEvery,
    seeds,
    lrs: LRS,
    runs,
    summary,
  };
}
