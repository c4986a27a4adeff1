/**
 * The memory table of BAdam's argument, measured on one float16 Llama and one batch: mixed
 * precision Adam holds 2 + 4 + 4 + 8 = 18 bytes per parameter, BAdam 2 bytes per parameter plus
 * 16 per active-block parameter, LOMO only one parameter's gradient at a time, LoRA state for its
 * adapters only.
 */
import {
  Adam,
  BlockOptimizer,
  LOMO,
  LlamaForCausalLM,
  MixedPrecisionOptimizer,
  applyLora,
  measureTrainingMemory,
  memoryReport,
  tensor,
} from '../../src';

const config = {
  vocabSize: 64,
  hiddenSize: 32,
  intermediateSize: 64,
  numHiddenLayers: 4,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 64,
  seed: 1,
};
const ids = tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]], { dtype: 'int32' });
const build = () => new LlamaForCausalLM(config).to('float16');
const lossOf = (m: LlamaForCausalLM) => m.forward(ids, { labels: ids }).loss!;
/** The largest parameter (lm_head / embedding, 64 x 32) in float16 and float32 bytes. */
const LARGEST = 64 * 32;

test('Adam, BAdam, LOMO and LoRA on the same float16 model and batch', () => {
  const adam = measureTrainingMemory('Adam, mixed precision', () => {
    const model = build();
    const opt = new MixedPrecisionOptimizer(new Adam(model.parameters(), { lr: 1e-3 }));
    return { model, step: () => (opt.zeroGrad(), lossOf(model).backward(), opt.step()) };
  });
  let active = 0;
  const badam = measureTrainingMemory('BAdam, block 2', () => {
    const model = build();
    const opt = new BlockOptimizer(model, new Adam(model.parameters(), { lr: 1e-3 }), {
      verbose: 0,
      switchMode: 'ascending',
      startBlock: 2,
      switchEvery: 10,
    });
    active = opt.blocks()[2].numParams;
    return { model, trainable: active, step: () => (opt.zeroGrad(), lossOf(model).backward(), opt.step()) };
  });
  const lomo = measureTrainingMemory('LOMO', () => {
    const model = build();
    const opt = new LOMO(model, { lr: 1e-3 });
    return { model, step: () => opt.fusedBackward(lossOf(model)) };
  });
  const lora = measureTrainingMemory('LoRA r=4 + Adam', () => {
    const model = build();
    applyLora(model, { targetModules: ['q_proj', 'v_proj'], r: 4, alpha: 8 });
    const opt = new Adam(model.parameters().filter((p) => p.requiresGrad), { lr: 1e-3 });
    return { model, step: () => (opt.zeroGrad(), lossOf(model).backward(), opt.step()) };
  });

  const M = adam.parameters;
  // mixed-precision Adam: float16 weights, float32 masters, float32 gradients, two float32 moments
  expect(adam.weights).toBe(2 * M);
  expect(adam.master).toBe(4 * M);
  expect(adam.optimizer).toBe(8 * M);
  // float32 gradients for everything, plus at most one float16 gradient being converted
  expect(adam.grads).toBeGreaterThanOrEqual(4 * M);
  expect(adam.grads).toBeLessThanOrEqual(4 * M + 2 * LARGEST);

  // BAdam: the extra 16 bytes only for the active block
  expect(badam.parameters).toBe(M);
  expect(badam.weights).toBe(2 * M);
  expect(badam.master).toBe(4 * active);
  expect(badam.optimizer).toBe(8 * active);
  expect(badam.grads).toBeGreaterThanOrEqual(4 * active);
  expect(badam.grads).toBeLessThanOrEqual(4 * active + 2 * LARGEST);
  expect(badam.modelStateBytes).toBeLessThan(0.45 * adam.modelStateBytes);
  // and layers 0-1 saved nothing for backward (mechanism 1), so fewer activations are kept
  expect(badam.savedActivations).toBeLessThan(0.6 * adam.savedActivations);

  // LOMO: no optimizer state, no masters, and at most one parameter's float16 gradient alive
  expect(lomo.optimizer).toBe(0);
  expect(lomo.master).toBe(0);
  expect(lomo.grads).toBeLessThanOrEqual(2 * LARGEST);
  expect(lomo.grads).toBeGreaterThan(0);

  // LoRA: float32 adapters only are trained
  const adapters = lora.parameters - M;
  expect(lora.trainable).toBe(adapters);
  expect(lora.optimizer).toBe(8 * adapters);
  expect(lora.grads).toBe(4 * adapters);
  expect(lora.weights).toBe(2 * M + 4 * adapters);

  const table = memoryReport([adam, badam, lomo, lora]);
  expect(table.split('\n')).toHaveLength(6);
  expect(table).toContain('| BAdam, block 2 | ' + M + ' | ' + active + ' |');
});

test('a run of several steps reports one step of gradients: zeroGrad() frees the previous ones', () => {
  // plain float32 Adam keeps its gradients after step(); the next zeroGrad() must dispose them,
  // or (no finalizer runs in a synchronous run) N steps would report N times the gradients
  for (const steps of [1, 3]) {
    const r = measureTrainingMemory(`Adam float32, ${steps} steps`, () => {
      const model = new LlamaForCausalLM(config);
      const opt = new Adam(model.parameters(), { lr: 1e-3 });
      return { model, step: () => (opt.zeroGrad(), lossOf(model).backward(), opt.step()) };
    }, { steps });
    expect([steps, r.grads]).toEqual([steps, 4 * r.parameters]);
    expect(r.optimizer).toBe(8 * r.parameters);
  }
});
