/**
 * The ratio mode's gradient memory. With 'adjacent' masks, each 2-D weight's mask lies in a few
 * whole rows, and linear's backward computes dW for those rows only (a row-gradient sink): the
 * packed gradient equals the selected entries of the dense gradient (float64, to 1e-12, a wrapped
 * mask and two accumulated backwards included), no dense gradient is ever made, the backward
 * does fewer matmul FLOPs, and memoryReport's gradient bytes are the selected fraction's (within
 * 10%, at ratio 0.05 on a float16 Llama). 'scatter' masks pack in the post-accumulate hook.
 */
import { BlockOptimizerRatio, LlamaForCausalLM, grad, measureTrainingMemory, profile, tensor, tidy, type Tensor } from '../../../src';

const CONFIG = { vocabSize: 50, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4, maxPositionEmbeddings: 32, seed: 4 };
const ids = (t: number) => tensor([Array.from({ length: 12 }, (_, i) => (i * 7 + t * 3) % 50)], { dtype: 'int32' });
const lossOf = (m: LlamaForCausalLM, t: number) => m.forward(ids(t), { labels: ids(t) }).loss as Tensor;

test("adjacent masks: the packed gradient is the dense gradient's selected entries, with no dense gradient made (float64)", () => {
  const model = new LlamaForCausalLM({ ...CONFIG, dtype: 'float64' });
  const twin = new LlamaForCausalLM({ ...CONFIG, dtype: 'float64' }); // the same weights, no optimizer: dense gradients
  twin.requiresGrad_(false);
  const opt = new BlockOptimizerRatio(model, { updateRatio: 0.3, switchEvery: 1, preserveThreshold: 0, verbose: 0 });
  const name = 'model.layers.1.mlp.up_proj.weight'; // [48, 32]: k = 461 of 1536
  // three switches move the mask to [1383, 1844) mod 1536: it wraps around the end
  for (let s = 0; s < 3; s++) {
    tidy(() => lossOf(model, 9).backward());
    opt.step();
  }
  syncWeights(model, twin);
  const mask = opt.masks().find((m) => m.name === name)!;
  expect(mask.offset + mask.k).toBeGreaterThan(mask.numel); // wrapped
  twin.getParameter(name).requiresGrad_(true);
  for (const t of [0, 1]) {
    tidy(() => lossOf(model, t).backward()); // two backwards: the packed gradients add up
    tidy(() => lossOf(twin, t).backward());
  }
  expect(model.getParameter(name).grad).toBeNull();
  const dense = Array.from(twin.getParameter(name).grad?.toTypedArray() as Float64Array);
  const expected = opt.maskIndices(name).map((i) => dense[i]);
  // the packed order is the mask's: from offset to the end, then from 0
  const order = [...opt.maskIndices(name).filter((i) => i >= mask.offset), ...opt.maskIndices(name).filter((i) => i < mask.offset)];
  const byIndex = new Map(opt.maskIndices(name).map((i, j) => [i, expected[j]]));
  const got = opt.gradientOf(name) as number[];
  expect(got).toHaveLength(mask.k);
  got.forEach((g, j) => expect(Math.abs(g - (byIndex.get(order[j]) as number))).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(g))));
});

/** Copies model's weights into twin (they drifted apart with the optimizer's steps). */
function syncWeights(model: LlamaForCausalLM, twin: LlamaForCausalLM): void {
  twin.loadStateDict(model.stateDict());
}

test('a wrapped mask whose two segments share a row adds each entry once (ratio 0.99)', () => {
  const model = new LlamaForCausalLM({ ...CONFIG, dtype: 'float64' });
  const twin = new LlamaForCausalLM({ ...CONFIG, dtype: 'float64' });
  twin.requiresGrad_(false);
  const opt = new BlockOptimizerRatio(model, { updateRatio: 0.99, switchEvery: 1, preserveThreshold: 0, verbose: 0 });
  tidy(() => lossOf(model, 1).backward());
  opt.step(); // the masks move on by k: they now wrap, both segments in the first row
  syncWeights(model, twin);
  const name = 'model.layers.0.mlp.up_proj.weight';
  twin.getParameter(name).requiresGrad_(true);
  tidy(() => lossOf(model, 2).backward());
  tidy(() => lossOf(twin, 2).backward());
  const mask = opt.masks().find((m) => m.name === name)!;
  const dense = Array.from(twin.getParameter(name).grad?.toTypedArray() as Float64Array);
  const idx = opt.maskIndices(name);
  const order = [...idx.filter((i) => i >= mask.offset), ...idx.filter((i) => i < mask.offset)];
  const got = opt.gradientOf(name) as number[];
  got.forEach((g, j) => expect(Math.abs(g - dense[order[j]])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(g))));
});

test('grad() and tensor hooks see the dense gradient: the sink takes only what backward() would accumulate', () => {
  const model = new LlamaForCausalLM({ ...CONFIG, dtype: 'float64' });
  const opt = new BlockOptimizerRatio(model, { updateRatio: 0.3, preserveThreshold: 0, verbose: 0 });
  const w = model.getParameter('model.layers.0.mlp.up_proj.weight');
  const [g] = tidy(() => grad(lossOf(model, 0), [w]));
  expect(g?.shape).toEqual([48, 32]);
  expect(opt.gradientOf('model.layers.0.mlp.up_proj.weight')).toBeNull(); // nothing packed
  const seen: number[][] = [];
  const remove = w.registerHook((gw) => void seen.push([...gw.shape]));
  tidy(() => lossOf(model, 0).backward());
  remove();
  expect(seen).toEqual([[48, 32]]); // the hook saw the dense gradient, which the packing hook then took
  expect(opt.gradientOf('model.layers.0.mlp.up_proj.weight')).toHaveLength(opt.masks().find((m) => m.name === 'model.layers.0.mlp.up_proj.weight')!.k);
});

test('dispose() gives the parameters back their dense gradients', () => {
  const model = new LlamaForCausalLM({ ...CONFIG, dtype: 'float32' });
  const opt = new BlockOptimizerRatio(model, { updateRatio: 0.3, preserveThreshold: 0, verbose: 0 });
  opt.dispose();
  tidy(() => lossOf(model, 0).backward());
  expect(model.getParameter('model.layers.0.mlp.up_proj.weight').grad?.shape).toEqual([48, 32]);
  expect(() => opt.step()).toThrow(/was disposed/);
});

test('adjacent masks cost fewer backward FLOPs than scatter masks, which need the dense weight gradient', () => {
  const flops = (maskMode: 'adjacent' | 'scatter') => {
    const model = new LlamaForCausalLM({ ...CONFIG, dtype: 'float32' });
    new BlockOptimizerRatio(model, { updateRatio: 0.05, maskMode, verbose: 0 });
    return tidy(() => {
      const loss = lossOf(model, 0);
      return profile(() => loss.backward()).report.matmulFlops;
    });
  };
  const adjacent = flops('adjacent');
  const scatter = flops('scatter');
  expect(adjacent).toBeLessThan(scatter * 0.8);
});

test('memoryReport at ratio 0.05 on a float16 Llama: gradient bytes within 10% of the selected entries (adjacent)', () => {
  for (const maskMode of ['adjacent', 'scatter'] as const) {
    let selectedBytes = 0;
    let largestWeightBytes = 0;
    const row = measureTrainingMemory(maskMode, () => {
      const model = new LlamaForCausalLM({ ...CONFIG, hiddenSize: 64, intermediateSize: 176, numHiddenLayers: 4, dtype: 'float16' });
      const opt = new BlockOptimizerRatio(model, { lr: 1e-3, updateRatio: 0.05, maskMode, verbose: 0 });
      selectedBytes = opt.masks().reduce((s, m) => s + 2 * m.k, 0);
      largestWeightBytes = Math.max(...opt.masks().map((m) => 2 * m.numel));
      return {
        model,
        trainable: opt.masks().reduce((s, m) => s + m.k, 0),
        step: () =>
          tidy(() => {
            opt.zeroGrad();
            lossOf(model, 0).backward();
            opt.step();
          }),
      };
    });
    if (maskMode === 'adjacent') expect(Math.abs(row.grads / selectedBytes - 1)).toBeLessThan(0.1);
    // scatter: the packed gradients and, for a moment, one parameter's dense gradient
    else expect(row.grads).toBeLessThanOrEqual(selectedBytes + largestWeightBytes);
  }
});
