/**
 * Gradient accumulation on a 16-bit model (docs/badam.md, "Gradient accumulation"): float32
 * gradients of zeros on the active block make backward sum the micro-batches in float32, and the
 * step takes them as they are; without them the sum is rounded to the parameter's dtype each time.
 */
import { Adam, BlockOptimizer, LlamaForCausalLM, tensor, zeros, type Tensor } from '../../../src';
import { TINY_LLAMA } from '../../helpers';

const values = (t: Tensor | null) => Array.from((t?.toTypedArray() ?? []) as ArrayLike<number>);

test.each(['float16', 'bfloat16'] as const)('%s: float32 gradients sum the micro-batches in float32, and the step consumes them', (dtype) => {
  const model = new LlamaForCausalLM({ ...TINY_LLAMA, dtype, seed: 8 });
  const optimizer = new BlockOptimizer(model, new Adam(model.parameters(), { lr: 1e-2 }), { switchEvery: 5, verbose: 0 });
  const batches = [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [3, 1, 4, 1, 5, 9]].map((r) => tensor([r], { dtype: 'int32' }));
  const active = optimizer.trainableParameters().map(([, p]) => p);
  const backwardAll = () => {
    for (const ids of batches) (model.forward(ids, { labels: ids }).loss as Tensor).div(3).backward();
  };
  // each micro-batch's gradient alone, widened to float32 and summed here in float32
  const each = batches.map((ids) => {
    optimizer.zeroGrad();
    (model.forward(ids, { labels: ids }).loss as Tensor).div(3).backward();
    return active.map((p) => Float32Array.from(values(p.grad)));
  });
  const expected = active.map((_, k) => each.reduce((acc, g) => acc.map((v, i) => Math.fround(v + g[k][i])), new Float32Array(each[0][k].length)));
  // with float32 accumulators: the same sums, bit for bit
  optimizer.zeroGrad();
  for (const p of active) p.grad = zeros(p.shape, { dtype: 'float32' });
  backwardAll();
  active.forEach((p, k) => {
    expect(p.grad?.dtype).toBe('float32');
    expect(values(p.grad)).toEqual(Array.from(expected[k]));
  });
  // without them: a 16-bit running sum, which here differs from the float32 one
  const f32 = active.map((p) => values(p.grad));
  optimizer.zeroGrad();
  backwardAll();
  expect(active[0].grad?.dtype).toBe(dtype);
  expect(active.map((p) => values(p.grad))).not.toEqual(f32);
  // the step takes float32 gradients as they are and consumes them
  optimizer.zeroGrad();
  for (const p of active) p.grad = zeros(p.shape, { dtype: 'float32' });
  backwardAll();
  optimizer.step();
  expect(active.every((p) => p.grad === null)).toBe(true);
});
