/**
 * Checkpoints with Hugging Face names: a model's state dict saved as safetensors loads into a
 * fresh model (strictly), including a tied-embedding checkpoint that omits lm_head.weight, as
 * Hugging Face writes them.
 */
import { LlamaForCausalLM, loadSafetensors, saveSafetensors, tensor, type Tensor } from '../../src';
import { TINY_LLAMA as config } from '../helpers';
const ids = tensor([[1, 5, 7, 3, 9]], { dtype: 'int32' });
const logitsOf = (m: LlamaForCausalLM) => m.forward(ids).logits.toTypedArray();

test('a Llama checkpoint round-trips through safetensors bytes with Hugging Face names', () => {
  const source = new LlamaForCausalLM({ ...config, seed: 1 });
  const bytes = saveSafetensors(source.stateDict(), { format: 'pt' });
  const loaded = loadSafetensors(bytes);
  expect(Object.keys(loaded)).toContain('model.layers.1.self_attn.k_proj.weight');
  expect(loaded['model.layers.1.self_attn.k_proj.weight'].shape).toEqual([8, 16]); // 2 kv heads x 4

  const target = new LlamaForCausalLM({ ...config, seed: 2 });
  expect(logitsOf(target)).not.toEqual(logitsOf(source));
  target.loadStateDict(loaded);
  expect(logitsOf(target)).toEqual(logitsOf(source));
});

test('a tied checkpoint without lm_head.weight loads strictly, and float16 checkpoints load into float32 models', () => {
  const source = new LlamaForCausalLM({ ...config, seed: 3, tieWordEmbeddings: true });
  const sd: Record<string, Tensor> = { ...source.stateDict() };
  delete sd['lm_head.weight'];
  const target = new LlamaForCausalLM({ ...config, seed: 4, tieWordEmbeddings: true });
  target.loadStateDict(loadSafetensors(saveSafetensors(sd)));
  expect(logitsOf(target)).toEqual(logitsOf(source));

  const half = saveSafetensors(source.stateDict(), {}, { dtypes: Object.fromEntries(Object.keys(sd).map((k) => [k, 'F16'])) });
  const fromHalf = new LlamaForCausalLM({ ...config, seed: 5, tieWordEmbeddings: true });
  fromHalf.loadStateDict(loadSafetensors(half), { strict: false });
  expect(fromHalf.parameters().every((p) => p.dtype === 'float32')).toBe(true);
  const a = logitsOf(fromHalf);
  const b = logitsOf(source);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  expect(worst).toBeGreaterThan(0); // rounded to float16 on the way
  expect(worst).toBeLessThan(0.02);
});
