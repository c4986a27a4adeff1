/**
 * bfloat16 tensors: stored as the top 16 bits of a float32, rounded once to nearest even, on every
 * backend; promoted as PyTorch promotes; two bytes an element in the memory accounting; kept
 * bit for bit through safetensors and model directories; and trained by BAdam through float32
 * masters, as float16 is.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Adam,
  BlockOptimizer,
  LlamaForCausalLM,
  add,
  cast,
  loadSafetensors,
  matmul,
  memory,
  promoteTypes,
  saveSafetensors,
  setBackend,
  sum,
  tensor,
  type Tensor,
} from '../../src';
import { backendsUnderTest, requireHeadlessGlInCI } from '../backends/helpers';
import { TINY_LLAMA } from '../helpers';

const bitsOf = (t: Tensor): number[] => Array.from(new Uint32Array(Float32Array.from(t.toTypedArray() as ArrayLike<number>).buffer)).map((u) => u >>> 16);

test('promotion as in PyTorch: float16 with bfloat16 is float32; bfloat16 wins over int32, loses to float32', () => {
  expect(promoteTypes('float16', 'bfloat16')).toBe('float32');
  expect(promoteTypes('bfloat16', 'float16')).toBe('float32');
  expect(promoteTypes('bfloat16', 'int32')).toBe('bfloat16');
  expect(promoteTypes('bfloat16', 'float32')).toBe('float32');
  expect(promoteTypes('bfloat16', 'float64')).toBe('float64');
  expect(add(tensor([1], { dtype: 'bfloat16' }), 2.5).dtype).toBe('bfloat16');
});

requireHeadlessGlInCI();

describe.each(backendsUnderTest())('$label', ({ name, options }) => {
  beforeAll(() => setBackend(name, options));
  afterAll(() => setBackend('cpu'));

  test('values round once to nearest, ties to even, worked out by hand', () => {
    // 1 + 2^-8 is halfway between 1 (0x3f80, even) and 1 + 2^-7 (0x3f81): to even, 1
    // 1 + 3·2^-8 is halfway between 0x3f81 and 0x3f82 (even): 0x3f82
    // 1 + 2^-8 + 2^-20 is past halfway: 0x3f81; π: 0x4049 (3.140625)
    // 3.3961775292304957e38 is halfway from the largest (0x7f7f, odd) to 2^128: Infinity, 0x7f80
    const x = tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, Math.PI, -2, 3.3961775292304957e38], { dtype: 'bfloat16' });
    expect(x.dtype).toBe('bfloat16');
    expect(bitsOf(x)).toEqual([0x3f80, 0x3f82, 0x3f81, 0x4049, 0xc000, 0x7f80]);
  });

  test('ops compute in float32 and round their result once: sum, matmul, cast', () => {
    // summed in float32 then rounded once: 258, a bfloat16 value (its ulp at 256 is 2); summed in
    // bfloat16 step by step, 256 + 1 would round back to 256 (a tie, to even) twice
    const s = sum(tensor([256, 1, 1], { dtype: 'bfloat16' }));
    expect([s.dtype, s.item()]).toEqual(['bfloat16', 258]);
    // [1, 1] · [[1 + 2^-7], [2^-8]] = 1 + 2^-7 + 2^-8 = 1.01171875: a tie between 1 + 2^-7 (0x3f81, odd) and 1 + 2^-6 (0x3f82): 0x3f82
    const m = matmul(tensor([[1, 1]], { dtype: 'bfloat16' }), tensor([[1 + 2 ** -7], [2 ** -8]], { dtype: 'bfloat16' }));
    expect([m.dtype, ...bitsOf(m)]).toEqual(['bfloat16', 0x3f82]);
    const c = cast(tensor([1.5, -0.1], { dtype: 'float32' }), 'bfloat16');
    expect(bitsOf(c)).toEqual([0x3fc0, 0xbdcd]); // -0.1 = 0xbdcccccd as float32 -> 0xbdcd
  });
});

test('two bytes an element in the memory accounting', () => {
  const before = memory.stats().liveBytes;
  const x = tensor(new Array(1000).fill(1), { dtype: 'bfloat16' });
  expect(memory.stats().liveBytes - before).toBe(2000);
  x.dispose();
});

test('safetensors: a bfloat16 tensor saves as BF16 and loads back as bfloat16, bit for bit', () => {
  const x = tensor([1 + 2 ** -7, -3.140625, 1e-30, 65504, 3e38], { dtype: 'bfloat16' });
  const back = loadSafetensors(saveSafetensors({ x })).x;
  expect(back.dtype).toBe('bfloat16');
  expect(bitsOf(back)).toEqual(bitsOf(x));
});

test('a bfloat16 Llama: savePretrained writes torch_dtype bfloat16, fromPretrained loads it bit for bit', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'blockgrad-bf16-')), 'model');
  const model = new LlamaForCausalLM({ ...TINY_LLAMA, dtype: 'bfloat16', seed: 4 });
  expect(model.parameters().every((p) => p.dtype === 'bfloat16')).toBe(true);
  await model.savePretrained(dir, { maxShardBytes: 2000 }); // sharded
  const loaded = LlamaForCausalLM.fromPretrained(dir);
  expect(loaded.config.dtype).toBe('bfloat16');
  const names = model.namedParameters().map(([n]) => n);
  for (const n of names) expect(bitsOf(loaded.getParameter(n))).toEqual(bitsOf(model.getParameter(n)));
  const ids = tensor([[1, 2, 3, 4]], { dtype: 'int32' });
  expect(Array.from(loaded.forward(ids).logits.toTypedArray())).toEqual(Array.from(model.forward(ids).logits.toTypedArray()));
});

test('BAdam on a bfloat16 Llama: float32 masters for the active block only, and the loss falls', () => {
  const model = new LlamaForCausalLM({ ...TINY_LLAMA, dtype: 'bfloat16', seed: 5 });
  const opt = new BlockOptimizer(model, new Adam(model.parameters(), { lr: 1e-2 }), { switchEvery: 10, verbose: 0 });
  const ids = tensor([[1, 5, 9, 13, 17, 21, 25, 29]], { dtype: 'int32' });
  const losses: number[] = [];
  for (let step = 0; step < 10; step++) {
    const { loss } = model.forward(ids, { labels: ids });
    losses.push((loss as Tensor).item());
    opt.zeroGrad();
    (loss as Tensor).backward();
    opt.step();
  }
  const active = model.namedParameters().filter(([, p]) => p.requiresGrad);
  expect(active.length).toBeGreaterThan(0);
  for (const [, p] of active) expect(opt.masterOf(p)?.dtype).toBe('float32');
  for (const [, p] of model.namedParameters().filter(([, q]) => !q.requiresGrad)) expect(opt.masterOf(p)).toBeUndefined();
  expect(losses[9]).toBeLessThan(losses[0]);
});
