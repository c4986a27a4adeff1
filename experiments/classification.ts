/**
 * Experiment 4, classification. The paper: fine-tuning RoBERTa-large on SuperGLUE, BAdam narrows
 * the gap to Adam further than LoRA does. Here the RoBERTa-style encoder classifies sentence pairs
 * of a task this file generates (a miniature of SuperGLUE's entailment tasks, with the rule known):
 *
 *   premise:    the cat is red . the dog is big . the fox is sad .
 *   hypothesis: the dog is red .        -> 0, not entailed (red is the cat's)
 *   hypothesis: the dog is big .        -> 1, entailed
 *
 * A hypothesis is entailed when its animal has its attribute in the premise. The negatives are
 * half of them the hard kind, an attribute the premise gives to another animal, so that the words alone
 * do not decide: the model has to bind each attribute to its animal across the two sentences.
 *
 * As RoBERTa is pretrained before it is fine-tuned, the encoder is first pretrained as RoBERTa
 * is, on masked words (pretrainedEncoder), with Adam, on text of the same form whose hypotheses
 * are all true, so that a masked hypothesis word can be told from the premise; cached. Each
 * method then fine-tunes those weights, with a fresh classification head, on the task: Adam on
 * every parameter, BAdam (one encoder layer per block, ascending, the head trained with every
 * block: `activeModules: ['classifier.']`, as PEFT's modules_to_save) and LoRA (rank 8 on every
 * projection of the encoder, the head trained in full). Each method runs at the best of four
 * learning rates (one seed, chosen by the mean validation loss of the last four evaluations),
 * then over three seeds with that rate, on the same batches; accuracy and loss on the validation pairs are recorded along
 * the way, and on unseen test pairs at the end.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  Adam,
  BlockOptimizer,
  Generator,
  Linear,
  RobertaForSequenceClassification,
  RobertaModel,
  crossEntropy,
  applyLora,
  loadSafetensorsFile,
  noGrad,
  reshape,
  saveSafetensorsFile,
  tensor,
  tidy,
  type RobertaConfig,
  type Tensor,
} from '../src';

// ---- the task ----------------------------------------------------------------------------

const ANIMALS = ['cat', 'dog', 'bird', 'fox', 'horse', 'mouse', 'cow', 'duck'];
const ATTRIBUTES = ['red', 'blue', 'green', 'yellow', 'big', 'small', 'happy', 'sad'];
/** A word-level vocabulary: RoBERTa's special tokens at its ids (<s> 0, <pad> 1, </s> 2), <mask>, then the words. */
export const VOCAB = ['<s>', '<pad>', '</s>', '<mask>', 'the', 'is', '.', ...ANIMALS, ...ATTRIBUTES];
const MASK = 3;
/** What the cached encoder was pretrained on: bump it when the pretraining text or masking changes. */
const PRETRAINING = 'distinct-facts-masked-hypothesis';
/** The first id of a word (not a special token). */
const FIRST_WORD = 4;
const id = (word: string) => VOCAB.indexOf(word);
/** Facts in a premise. */
const FACTS = 3;
/** <s> premise </s> </s> hypothesis </s>, each fact and the hypothesis 5 words: every pair has this length. */
export const PAIR_LENGTH = 1 + 5 * FACTS + 2 + 5 + 1;

/**
 * 'binding': is the hypothesis' animal given its attribute in the premise (the task, labels half
 * 1); 'corpus': the pretraining text, every hypothesis one of the premise's facts (labels all 1).
 */
export type PairRule = 'binding' | 'corpus';

export interface PairSet {
  /** int32 [count, PAIR_LENGTH] token ids. */
  ids: Int32Array;
  /** 0 or 1 per pair. */
  labels: Int32Array;
  count: number;
}

const pick = <T>(g: Generator, xs: readonly T[]): T => xs[Math.floor(g.random() * xs.length)];
/** k distinct elements of xs, in random order. */
function distinct<T>(g: Generator, xs: readonly T[], k: number): T[] {
  const pool = [...xs];
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(g.random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, k);
}

/**
 * `count` sentence pairs from `seed`. Under 'binding' half are positive, and the negatives are
 * half an attribute of another animal of the premise, a quarter an attribute the premise does
 * not name, a quarter an animal it does not name; under 'corpus' every pair is positive.
 */
export function generatePairs(count: number, seed: number, rule: PairRule): PairSet {
  const g = new Generator(seed);
  const ids = new Int32Array(count * PAIR_LENGTH);
  const labels = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    const animals = distinct(g, ANIMALS, FACTS);
    // distinct attributes too: then a model that knows which attributes the premise names, but
    // not whose they are, predicts a masked hypothesis attribute 1 time in 3 (the baseline the
    // page measures pretraining against), and the swapped negatives are exactly half
    const attributes = distinct(g, ATTRIBUTES, FACTS);
    const positive = rule === 'corpus' || g.random() < 0.5;
    const f = Math.floor(g.random() * FACTS);
    let animal = animals[f];
    let attribute = attributes[f];
    const unnamed = ATTRIBUTES.filter((a) => !attributes.includes(a));
    if (!positive) {
      const kind = g.random();
      const others = attributes.filter((a) => a !== attributes[f]);
      if (kind < 0.5) attribute = pick(g, others);
      else if (kind < 0.75) attribute = pick(g, unnamed);
      else animal = pick(g, ANIMALS.filter((a) => !animals.includes(a)));
    }
    const words = ['<s>', ...animals.flatMap((a, i) => ['the', a, 'is', attributes[i], '.']), '</s>', '</s>', 'the', animal, 'is', attribute, '.', '</s>'];
    for (let i = 0; i < PAIR_LENGTH; i++) ids[n * PAIR_LENGTH + i] = id(words[i]);
    labels[n] = Number(animals.some((a, i) => a === animal && attributes[i] === attribute));
  }
  return { ids, labels, count };
}

/** The pairs `rows` of `set` as a batch: ids [B, PAIR_LENGTH] and labels [B]. */
function batchOf(set: PairSet, rows: readonly number[]): { ids: Tensor; labels: Tensor } {
  const ids = new Int32Array(rows.length * PAIR_LENGTH);
  rows.forEach((r, i) => ids.set(set.ids.subarray(r * PAIR_LENGTH, (r + 1) * PAIR_LENGTH), i * PAIR_LENGTH));
  return { ids: reshape(tensor(ids), [rows.length, PAIR_LENGTH]), labels: tensor(Int32Array.from(rows, (r) => set.labels[r])) };
}

/** A seeded permutation of 0..n-1. */
function permutation(n: number, seed: number): number[] {
  return distinct(new Generator(seed), Array.from({ length: n }, (_, i) => i), n);
}

// ---- the model and the methods -------------------------------------------------------------

export const CLASSIFICATION_MODEL: RobertaConfig = {
  vocabSize: VOCAB.length,
  hiddenSize: 64,
  numHiddenLayers: 4,
  numAttentionHeads: 4,
  intermediateSize: 256,
  maxPositionEmbeddings: PAIR_LENGTH + 2,
  hiddenDropoutProb: 0,
  attentionProbsDropoutProb: 0,
  numLabels: 2,
  seed: 0,
};

export const CLASSIFICATION_METHODS = ['badam', 'adam', 'lora'] as const;
export type ClassificationMethod = (typeof CLASSIFICATION_METHODS)[number];
export const LORA_ROBERTA_TARGETS = ['query', 'key', 'value', 'intermediate.dense', 'output.dense'];

interface Trainer {
  step(loss: Tensor): void;
  release(): void;
  /** Parameter elements updated in a step (BAdam: the active block and the head). */
  trainable(): number;
}

function buildTrainer(method: ClassificationMethod, model: RobertaForSequenceClassification, lr: number, switchEvery: number, seed: number): Trainer {
  const head = model.classifier.parameters();
  switch (method) {
    case 'adam': {
      const opt = new Adam(model.parameters(), { lr });
      return { step: (loss) => (opt.zeroGrad(), loss.backward(), opt.step()), release: () => opt.resetState(), trainable: () => model.numParameters() };
    }
    case 'badam': {
      const opt = new BlockOptimizer(model, new Adam(model.parameters(), { lr }), { switchMode: 'ascending', switchEvery, activeModules: ['classifier.'], verbose: 0 });
      return {
        step: (loss) => (opt.zeroGrad(), loss.backward(), opt.step()),
        release: () => opt.release(),
        trainable: () => opt.trainableParameters().reduce((n, [, p]) => n + p.numel, 0),
      };
    }
    case 'lora': {
      const lora = applyLora(model, { targetModules: LORA_ROBERTA_TARGETS, r: 8, alpha: 16, seed });
      for (const p of head) p.requiresGrad_(true); // PEFT's modules_to_save: the new head trains in full
      const params = [...lora.namedParameters().map(([, p]) => p), ...head];
      const opt = new Adam(params, { lr });
      return { step: (loss) => (opt.zeroGrad(), loss.backward(), opt.step()), release: () => opt.resetState(), trainable: () => params.reduce((n, p) => n + p.numel, 0) };
    }
  }
}

/** Accuracy and mean cross-entropy of `model` on `set`. */
export function evaluatePairs(model: RobertaForSequenceClassification, set: PairSet, batchSize = 256): { accuracy: number; loss: number } {
  model.eval();
  let correct = 0;
  let lossSum = 0;
  try {
    noGrad(() => {
      for (let start = 0; start < set.count; start += batchSize) {
        const rows = Array.from({ length: Math.min(batchSize, set.count - start) }, (_, i) => start + i);
        tidy(() => {
          const b = batchOf(set, rows);
          const { logits, loss } = model.forward(b.ids, { labels: b.labels });
          const l = logits.toTypedArray();
          rows.forEach((r, i) => (correct += Number((l[2 * i + 1] > l[2 * i] ? 1 : 0) === set.labels[r])));
          lossSum += (loss as Tensor).item() * rows.length;
        });
      }
    });
  } finally {
    model.train();
  }
  return { accuracy: correct / set.count, loss: lossSum / set.count };
}

/**
 * `steps` training steps over `count` examples, batches of `batchSize` rows from a per-epoch
 * seeded order: each step's loss from `lossOf(rows)`, its update from `update(loss)`, inside
 * tidy; `onStep` gets the step number and the loss after each.
 */
function train(
  count: number,
  steps: number,
  batchSize: number,
  seed: number,
  lossOf: (rows: number[]) => Tensor,
  update: (loss: Tensor) => void,
  onStep: (step: number, loss: number) => void,
): void {
  const perEpoch = Math.floor(count / batchSize);
  let order: number[] = [];
  for (let step = 0; step < steps; step++) {
    if (step % perEpoch === 0) order = permutation(count, seed * 1000 + step / perEpoch);
    const rows = order.slice((step % perEpoch) * batchSize, (step % perEpoch + 1) * batchSize);
    const loss = tidy(() => {
      const l = lossOf(rows);
      const value = l.item();
      update(l);
      return value;
    });
    onStep(step + 1, loss);
  }
}

/** The classification loss of `model` on `rows` of `set`. */
function pairLoss(model: RobertaForSequenceClassification, set: PairSet, rows: readonly number[]): Tensor {
  const b = batchOf(set, rows);
  return model.forward(b.ids, { labels: b.labels }).loss as Tensor;
}

// ---- the experiment ---------------------------------------------------------------------------

export interface ClassificationRun {
  method: ClassificationMethod;
  lr: number;
  seed: number;
  /** Training loss of each step. */
  losses: number[];
  /** Validation accuracy and loss at steps `evalSteps`. */
  accuracy: number[];
  validationLoss: number[];
  test: { accuracy: number; loss: number };
  seconds: number;
  trainable: number;
}

export interface ClassificationResult {
  model: RobertaConfig;
  task: { train: number; validation: number; test: number; pairLength: number; pretraining: string; rule: PairRule };
  pretrain: { steps: number; accuracy: number };
  steps: number;
  batchSize: number;
  switchEvery: number;
  evalSteps: number[];
  /** Per method, the learning rates tried (seed `searchSeed`) and the mean validation loss and accuracy of each's last four evaluations. */
  search: { method: ClassificationMethod; lr: number; validationLoss: number; accuracy: number }[];
  searchSeed: number;
  seeds: number[];
  runs: ClassificationRun[];
  summary: { method: ClassificationMethod; lr: number; accuracy: { mean: number; min: number; max: number }; loss: { mean: number; min: number; max: number }; trainable: number }[];
}

const spread = (xs: number[]) => ({ mean: xs.reduce((a, b) => a + b, 0) / xs.length, min: Math.min(...xs), max: Math.max(...xs) });

/**
 * `rows` of `set` with RoBERTa's masking: each word (not a special token) is chosen with
 * probability 0.15, and a chosen word becomes <mask> (80%), a random word (10%) or stays (10%);
 * labels are the chosen words' ids, -100 elsewhere. One content word of the hypothesis is always
 * chosen too: RoBERTa's 15% alone gave the binding too little signal to learn in a few thousand
 * steps. `hypothesisOnly`: choose exactly the hypothesis' attribute (always masked), for
 * measuring what the encoder learned.
 */
function maskedBatch(set: PairSet, rows: readonly number[], g: Generator, hypothesisOnly = false): { ids: Tensor; labels: Tensor } {
  const ids = new Int32Array(rows.length * PAIR_LENGTH);
  const labels = new Int32Array(rows.length * PAIR_LENGTH).fill(-100);
  rows.forEach((r, i) => {
    // one content word of the hypothesis (its animal or its attribute) is always chosen
    const hypothesisWord = g.random() < 0.5 ? PAIR_LENGTH - 5 : PAIR_LENGTH - 3;
    for (let j = 0; j < PAIR_LENGTH; j++) {
      const k = i * PAIR_LENGTH + j;
      const word = set.ids[r * PAIR_LENGTH + j];
      ids[k] = word;
      const chosen = hypothesisOnly ? j === PAIR_LENGTH - 3 : (word >= FIRST_WORD && g.random() < 0.15) || j === hypothesisWord;
      if (!chosen) continue;
      labels[k] = word;
      const u = hypothesisOnly ? 0 : g.random();
      if (u < 0.8) ids[k] = MASK;
      else if (u < 0.9) ids[k] = FIRST_WORD + Math.floor(g.random() * (VOCAB.length - FIRST_WORD));
    }
  });
  return { ids: reshape(tensor(ids), [rows.length, PAIR_LENGTH]), labels: tensor(labels) };
}

/** The masked-word loss of `encoder` with `head` over the vocabulary. */
function maskedLoss(encoder: RobertaModel, head: Linear, b: { ids: Tensor; labels: Tensor }): Tensor {
  const logits = head.forward(encoder.forward(b.ids));
  return crossEntropy(reshape(logits, [b.labels.numel, VOCAB.length]), b.labels);
}

/**
 * The pretrained encoder, as RoBERTa is pretrained (masked words, maskedBatch) in miniature, with
 * Adam and a linear head over the vocabulary that is then dropped (as RoBERTa's lm_head is when it
 * is fine-tuned to classify); cached under `cacheDir`. Every hypothesis of the pretraining text
 * states one of its premise's facts, so a masked hypothesis word can be told from the premise.
 * Also returned: how often it then predicts a masked hypothesis attribute (chance: 1 in 8, or 1
 * in 3 for a model that only knows which attributes the premise names).
 */
export async function pretrainedEncoder(steps: number, batchSize: number, cacheDir: string, log: (line: string) => void): Promise<{ weights: Record<string, Tensor>; accuracy: number }> {
  const c = CLASSIFICATION_MODEL;
  // the name changes with what the weights depend on (PRETRAINING names the text and masking)
  const file = join(cacheDir, `roberta-pairs-${PRETRAINING}-v${VOCAB.length}-h${c.hiddenSize}-l${c.numHiddenLayers}-s${steps}-b${batchSize}.safetensors`);
  const encoder = new RobertaModel(c);
  const head = new Linear(c.hiddenSize, VOCAB.length, { generator: new Generator(7) });
  head.nameParameters();
  const g = new Generator(3);
  if (existsSync(file)) {
    const saved = await loadSafetensorsFile(file);
    encoder.loadStateDict(Object.fromEntries(Object.entries(saved).filter(([k]) => !k.startsWith('lm_head.'))));
    head.loadStateDict(Object.fromEntries(Object.entries(saved).filter(([k]) => k.startsWith('lm_head.')).map(([k, t]) => [k.slice('lm_head.'.length), t])));
    for (const t of Object.values(saved)) t.dispose(); // loadStateDict copied them
  } else {
    const corpus = generatePairs(16384, 1, 'corpus');
    const opt = new Adam([...encoder.parameters(), ...head.parameters()], { lr: 1e-3 });
    let recent = 0;
    const lossOf = (rows: number[]) => maskedLoss(encoder, head, maskedBatch(corpus, rows, g));
    const update = (loss: Tensor) => (opt.zeroGrad(), loss.backward(), opt.step());
    // seed 0: the corpus order of epoch e is permutation(count, e)
    train(corpus.count, steps, batchSize, 0, lossOf, update, (step, loss) => {
      recent += loss;
      if (step % 250 === 0) {
        log(`classification: pretraining step ${step}: masked-word loss ${(recent / 250).toFixed(3)}`);
        recent = 0;
      }
    });
    opt.resetState();
    mkdirSync(cacheDir, { recursive: true });
    await saveSafetensorsFile(file, { ...encoder.stateDict(), ...Object.fromEntries(Object.entries(head.stateDict()).map(([k, t]) => [`lm_head.${k}`, t])) });
    log(`classification: pretrained ${steps} steps, cached in ${file}`);
  }
  // how often the masked hypothesis attribute of unseen pretraining text is predicted
  const held = generatePairs(512, 2, 'corpus');
  const accuracy = noGrad(() =>
    tidy(() => {
      const rows = Array.from({ length: held.count }, (_, i) => i);
      const b = maskedBatch(held, rows, g, true);
      const logits = head.forward(encoder.forward(b.ids)).toTypedArray();
      const labels = b.labels.toTypedArray();
      let right = 0;
      for (let k = 0; k < labels.length; k++) {
        if (labels[k] < 0) continue;
        const row = logits.subarray(k * VOCAB.length, (k + 1) * VOCAB.length);
        let best = 0;
        for (let v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
        right += Number(best === labels[k]);
      }
      return right / held.count;
    }),
  );
  for (const p of head.parameters()) p.dispose();
  const weights: Record<string, Tensor> = {};
  for (const [name, p] of encoder.namedParameters()) weights[`roberta.${name}`] = p;
  return { weights, accuracy };
}

export async function runClassification(options: { quick: boolean; cacheDir: string }, log: (line: string) => void): Promise<ClassificationResult> {
  const { quick } = options;
  const D = CLASSIFICATION_MODEL.numHiddenLayers;
  const switchEvery = quick ? 5 : 50;
  const steps = D * switchEvery * (quick ? 1 : 3); // whole block-epochs
  const batchSize = quick ? 16 : 32;
  const evalEvery = quick ? 10 : 25;
  const evalSteps = Array.from({ length: steps / evalEvery + 1 }, (_, i) => i * evalEvery);
  const seeds = quick ? [0] : [0, 1, 2];
  const searchSeed = 100;
  const lrGrid = quick ? [1e-3] : [1e-4, 3e-4, 1e-3, 3e-3];
  const pretrainSteps = quick ? 20 : 3000;

  const trainSet = generatePairs(quick ? 512 : 4096, 10, 'binding');
  const validation = generatePairs(quick ? 128 : 512, 11, 'binding');
  const test = generatePairs(quick ? 128 : 2048, 12, 'binding');
  const encoder = await pretrainedEncoder(pretrainSteps, quick ? 8 : 32, options.cacheDir, log);
  log(`classification: the pretrained encoder predicts ${(100 * encoder.accuracy).toFixed(1)}% of masked hypothesis attributes`);

  const runOne = (method: ClassificationMethod, lr: number, seed: number): ClassificationRun => {
    // the head is fresh for each seed (its seed is the run's); the encoder is the pretrained one
    const model = new RobertaForSequenceClassification({ ...CLASSIFICATION_MODEL, seed: 1000 + seed });
    const loaded = model.loadStateDict(encoder.weights, { strict: false });
    if (loaded.unexpectedKeys.length > 0 || loaded.missingKeys.some((k) => !k.startsWith('classifier.'))) throw new Error(`classification: the pretrained encoder does not fit the model (${[...loaded.missingKeys, ...loaded.unexpectedKeys].join(', ')})`);
    model.train();
    const trainer = buildTrainer(method, model, lr, switchEvery, seed);
    const losses: number[] = [];
    const accuracy: number[] = [];
    const validationLoss: number[] = [];
    const record = () => {
      const v = evaluatePairs(model, validation);
      accuracy.push(v.accuracy);
      validationLoss.push(v.loss);
    };
    record();
    const t0 = performance.now();
    let evalMs = 0;
    train(trainSet.count, steps, batchSize, seed, (rows) => pairLoss(model, trainSet, rows), (l) => trainer.step(l), (step, loss) => {
      losses.push(loss);
      if (step % evalEvery === 0) {
        const e0 = performance.now();
        record();
        evalMs += performance.now() - e0;
      }
    });
    const seconds = (performance.now() - t0 - evalMs) / 1000;
    const result = { method, lr, seed, losses, accuracy, validationLoss, test: evaluatePairs(model, test), seconds, trainable: trainer.trainable() };
    trainer.release();
    for (const p of model.parameters()) p.dispose();
    log(`classification: ${method.padEnd(5)} lr ${lr} seed ${seed}: loss ${losses[0].toFixed(3)} -> ${losses[losses.length - 1].toFixed(3)}, validation ${(100 * accuracy[accuracy.length - 1]).toFixed(1)}%, test ${(100 * result.test.accuracy).toFixed(1)}%, ${seconds.toFixed(1)} s`);
    return result;
  };

  const search: ClassificationResult['search'] = [];
  const chosen = new Map<ClassificationMethod, number>();
  for (const method of CLASSIFICATION_METHODS) {
    for (const lr of lrGrid) {
      const r = lrGrid.length > 1 ? runOne(method, lr, searchSeed) : null;
      // the mean of the last four evaluations: one evaluation moves by several points
      const tail = (xs: number[]) => xs.slice(-4).reduce((a, b) => a + b, 0) / Math.min(4, xs.length);
      if (r) search.push({ method, lr, validationLoss: tail(r.validationLoss), accuracy: tail(r.accuracy) });
    }
    const mine = search.filter((s) => s.method === method);
    chosen.set(method, mine.length > 0 ? mine.reduce((a, b) => (b.validationLoss < a.validationLoss ? b : a)).lr : lrGrid[0]);
  }
  const runs: ClassificationRun[] = [];
  for (const seed of seeds) for (const method of CLASSIFICATION_METHODS) runs.push(runOne(method, chosen.get(method) as number, seed));
  for (const t of Object.values(encoder.weights)) t.dispose();

  const summary = CLASSIFICATION_METHODS.map((method) => {
    const mine = runs.filter((r) => r.method === method);
    return { method, lr: chosen.get(method) as number, accuracy: spread(mine.map((r) => r.test.accuracy)), loss: spread(mine.map((r) => r.test.loss)), trainable: mine[0].trainable };
  });
  return {
    model: CLASSIFICATION_MODEL,
    task: { train: trainSet.count, validation: validation.count, test: test.count, pairLength: PAIR_LENGTH, pretraining: 'masked words', rule: 'binding' },
    pretrain: { steps: pretrainSteps, accuracy: encoder.accuracy },
    steps,
    batchSize,
    switchEvery,
    evalSteps,
    search,
    searchSeed,
    seeds,
    runs,
    summary,
  };
}
