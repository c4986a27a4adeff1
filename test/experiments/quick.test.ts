/**
 * `npm run experiments -- --quick`, in-process on the cpu backend into a scratch folder: every
 * experiment's results are complete (each method at each size), the measured memory is the
 * paper's accounting (float16 weights 2 bytes, float32 masters 4 and Adam's moments 8 per updated
 * parameter, exactly; gradients 4 per updated parameter plus at most one float16 gradient alive
 * for a moment), and the page and its figures are written, with verdicts that follow from the
 * numbers. The classification task's labels follow its rule.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runExperiments } from '../../experiments/main';
import { METHODS } from '../../experiments/methods';
import { PAIR_LENGTH, VOCAB, generatePairs } from '../../experiments/classification';
import { classificationVerdict } from '../../experiments/report';

let out: string;
let result: Awaited<ReturnType<typeof runExperiments>>;
beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'blockgrad-experiments-'));
  result = await runExperiments(['--quick', '--out', out], () => {});
}, 400_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

test('memory: every method at every size, and the accounting of the paper', () => {
  const memory = result.memory!;
  expect(memory.rows.map((r) => `${r.method}@${r.layers}`)).toEqual(memory.layers.flatMap((D) => METHODS.map((m) => `${m}@${D}`)));
  const largestFloat16Gradient = 2 * 259 * 64; // the embedding's or lm_head's
  for (const r of memory.rows) {
    // float16 weights; LoRA's adapters (its updated parameters) are float32 weights of their own
    expect(r.weights).toBe(r.method === 'lora' ? 2 * (r.parameters - r.active) + 4 * r.active : 2 * r.parameters);
    if (r.method === 'adam' || r.method === 'badam') {
      expect(r.master).toBe(4 * r.active);
      expect(r.optimizer).toBe(8 * r.active);
      expect(r.grads).toBeGreaterThanOrEqual(4 * r.active);
      expect(r.grads).toBeLessThanOrEqual(4 * r.active + largestFloat16Gradient);
      expect(Math.abs(r.modelStateBytes / (r.formula as number) - 1)).toBeLessThan(0.05);
    }
  }
  // BAdam's active block is one layer, whatever D: its extra bytes do not grow with the model
  const badam = memory.rows.filter((r) => r.method === 'badam');
  expect(new Set(badam.map((r) => r.master)).size).toBe(1);
  expect(memory.extrapolation.map((e) => e.parameters)).toEqual([6738415616, 8030261248]);
});

test('time: every method timed, and the page says what the numbers say', () => {
  const time = result.time!;
  expect(time.rows.map((r) => r.method)).toEqual([...METHODS]);
  for (const r of time.rows) for (const t of [r.forward, r.backward]) expect(t).toBeGreaterThan(0);
  const page = readFileSync(join(out, 'experiments.md'), 'utf8');
  expect(page).toContain(`took ${time.badamOverLora.toFixed(2)} of LoRA's`);
  // the verdict follows the claim's threshold ("about half": at most 0.6 of LoRA's and of LOMO's)
  const timeVerdict = /## 2\. Time[\s\S]*?\*\*Verdict: ([a-z ]+)\.\*\*/.exec(page)?.[1];
  expect(timeVerdict).toBe(time.badamOverLora <= 0.6 && time.badamOverLomo <= 0.6 ? 'confirmed' : 'not confirmed');
  expect(page).toMatch(/## 1\. Memory[\s\S]*\*\*Verdict: confirmed\.\*\*/);
  for (const f of ['memory.svg', 'time.svg', 'memory.json', 'time.json']) expect(existsSync(join(out, 'experiments', f))).toBe(true);
});

test('convergence: every method on every seed, from the same weights and batches', () => {
  const c = result.convergence!;
  expect(c.runs.map((r) => `${r.method}@${r.seed}`)).toEqual(c.seeds.flatMap((s) => ['badam', 'badam-sgd', 'adam', 'lora', 'lomo'].map((m) => `${m}@${s}`)));
  for (const r of c.runs) {
    expect(r.losses).toHaveLength(c.steps);
    expect(r.seconds).toHaveLength(c.steps);
    expect(Number.isFinite(r.heldOutLoss)).toBe(true);
  }
  // the same pretrained weights and the same first batch: every method's first loss is the same number
  const first = new Set(c.runs.filter((r) => r.seed === c.seeds[0]).map((r) => r.losses[0]));
  expect(first.size).toBe(1);
  expect(c.steps % (c.switchEvery * (c.model.numHiddenLayers as number))).toBe(0); // whole block-epochs
  for (const f of ['convergence-steps.svg', 'convergence-time.svg', 'convergence.json']) expect(existsSync(join(out, 'experiments', f))).toBe(true);
});

test('classification: the generated pairs follow the rule, half of them entailed', () => {
  const set = generatePairs(2000, 5, 'binding');
  let positives = 0;
  for (let n = 0; n < set.count; n++) {
    const words = Array.from(set.ids.subarray(n * PAIR_LENGTH, (n + 1) * PAIR_LENGTH), (i) => VOCAB[i]);
    // <s> the A is X . (three facts) </s> </s> the B is Y . </s>
    expect([words[0], words[16], words[17], words[23]]).toEqual(['<s>', '</s>', '</s>', '</s>']);
    const facts = [0, 1, 2].map((f) => `${words[2 + 5 * f]} ${words[4 + 5 * f]}`);
    const claim = `${words[19]} ${words[21]}`;
    expect(set.labels[n]).toBe(Number(facts.includes(claim)));
    positives += set.labels[n];
  }
  expect(positives / set.count).toBeGreaterThan(0.45);
  expect(positives / set.count).toBeLessThan(0.55);
  // the swapped negatives (animal and attribute both in the premise, not as one fact) are a
  // quarter of the pairs: what makes 75% the best accuracy without binding
  let swapped = 0;
  for (let n = 0; n < set.count; n++) {
    const w = Array.from(set.ids.subarray(n * PAIR_LENGTH, (n + 1) * PAIR_LENGTH), (i) => VOCAB[i]);
    const animals = [2, 7, 12].map((i) => w[i]);
    const attributes = [4, 9, 14].map((i) => w[i]);
    expect(new Set(attributes).size).toBe(3);
    if (set.labels[n] === 0 && animals.includes(w[19]) && attributes.includes(w[21])) swapped++;
  }
  expect(swapped / set.count).toBeGreaterThan(0.22);
  expect(swapped / set.count).toBeLessThan(0.28);
  // the pretraining text: every hypothesis is a fact of its premise
  expect(Array.from(generatePairs(200, 6, 'corpus').labels).every((l) => l === 1)).toBe(true);
});

test('classification: every method on every seed, from the same encoder, with the verdict the numbers give', () => {
  const c = result.classification!;
  expect(c.runs.map((r) => `${r.method}@${r.seed}`)).toEqual(c.seeds.flatMap((s) => ['badam', 'adam', 'lora'].map((m) => `${m}@${s}`)));
  for (const r of c.runs) {
    expect(r.losses).toHaveLength(c.steps);
    expect(r.accuracy).toHaveLength(c.evalSteps.length);
    expect(r.validationLoss).toHaveLength(c.evalSteps.length);
    for (const a of [...r.accuracy, r.test.accuracy]) expect(a >= 0 && a <= 1).toBe(true);
  }
  // the same pretrained encoder and head seed, the same first batch: every method starts at one
  // validation accuracy and one first loss
  const first = c.runs.filter((r) => r.seed === c.seeds[0]);
  expect(new Set(first.map((r) => r.accuracy[0])).size).toBe(1);
  expect(new Set(first.map((r) => r.losses[0])).size).toBe(1);
  // BAdam updates one encoder layer and the head; LoRA its adapters and the head; Adam everything
  const trainable = Object.fromEntries(c.summary.map((s) => [s.method, s.trainable]));
  expect(trainable.badam).toBeLessThan(trainable.adam);
  expect(trainable.lora).toBeLessThan(trainable.adam);
  expect(c.steps % (c.switchEvery * c.model.numHiddenLayers)).toBe(0); // whole block-epochs
  const page = readFileSync(join(out, 'experiments.md'), 'utf8');
  expect(page).toContain(`**Verdict: ${classificationVerdict(c).verdict}.**`);
  for (const f of ['classification-accuracy.svg', 'classification-loss.svg', 'classification.json']) expect(existsSync(join(out, 'experiments', f))).toBe(true);
});

test('classification verdict: confirmed, not confirmed, or not distinguishable when the seeds spread more than the gaps differ', () => {
  const summary = (adam: number, badam: number, lora: number, spread: number) =>
    (['badam', 'adam', 'lora'] as const).map((method) => {
      const mean = { adam, badam, lora }[method];
      return { method, lr: 1e-3, accuracy: { mean, min: mean - spread / 2, max: mean + spread / 2 }, loss: { mean: 0, min: 0, max: 0 }, trainable: 1 };
    });
  // the verdict reads the summary and the seeds only
  const result = (s: ReturnType<typeof summary>, seeds = [0, 1, 2]) => ({ summary: s, seeds }) as unknown as Parameters<typeof classificationVerdict>[0];
  // BAdam 1 point below Adam, LoRA 5 below, seeds within 2: confirmed
  expect(classificationVerdict(result(summary(0.8, 0.79, 0.75, 0.02)))).toMatchObject({ verdict: 'confirmed' });
  // the other way round: not confirmed
  expect(classificationVerdict(result(summary(0.8, 0.75, 0.79, 0.02))).verdict).toBe('not confirmed');
  // the same gaps with seeds spread over 10 points: cannot tell
  expect(classificationVerdict(result(summary(0.8, 0.79, 0.75, 0.1))).verdict).toBe('not distinguishable at this scale');
  // BAdam above Adam still counts as a smaller gap
  expect(classificationVerdict(result(summary(0.8, 0.82, 0.75, 0.02))).verdict).toBe('confirmed');
  // one seed: no spread to weigh against
  expect(classificationVerdict(result(summary(0.8, 0.79, 0.75, 0), [0])).verdict).toBe('not distinguishable at this scale');
});
