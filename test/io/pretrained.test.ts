/**
 * Hugging Face model directories: LlamaForCausalLM.savePretrained writes config.json,
 * generation_config.json and the weights (one file, or shards with their index), and
 * fromPretrained loads them back bit for bit in float32 and float16, tied or not. A directory made
 * by hand as transformers lays one out (its config.json with fields blockgrad ignores, two shards
 * and an index) loads too; a broken directory fails with an error that names the file or field.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlamaForCausalLM, SafetensorsError, ValueError, memory, nn, openSafetensors, saveSafetensors, tensor, type Tensor } from '../../src';
import { TINY_LLAMA } from '../helpers';

let root = '';
let count = 0;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'blockgrad-pretrained-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
const freshDir = (): string => join(root, `m${count++}`);

const config = { ...TINY_LLAMA, initializerRange: 0.2 };
const ids = tensor([[1, 5, 7, 3, 9]], { dtype: 'int32' });
const logitsOf = (m: LlamaForCausalLM) => Array.from(m.forward(ids).logits.toTypedArray() as ArrayLike<number>);
const json = (dir: string, file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
const editJson = (dir: string, file: string, edit: (j: Record<string, unknown>) => void) => {
  const j = json(dir, file);
  edit(j);
  writeFileSync(join(dir, file), JSON.stringify(j));
};

/** Every parameter of b has the bits of a's parameter of the same name (same dtype, shape and values). */
function expectSameWeights(a: { stateDict(): Record<string, Tensor> }, b: { stateDict(): Record<string, Tensor> }): void {
  const sa = a.stateDict();
  const sb = b.stateDict();
  expect(Object.keys(sb)).toEqual(Object.keys(sa));
  for (const [name, t] of Object.entries(sa)) {
    expect([name, sb[name].dtype, sb[name].shape]).toEqual([name, t.dtype, t.shape]);
    expect(Array.from(sb[name].toTypedArray() as ArrayLike<number>)).toEqual(Array.from(t.toTypedArray() as ArrayLike<number>));
  }
}

test('savePretrained writes what transformers reads, and fromPretrained loads it back bit for bit (float32, one file)', async () => {
  const source = new LlamaForCausalLM({ ...config, seed: 1 });
  const dir = freshDir();
  await source.savePretrained(dir);
  expect(readdirSync(dir).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
  expect(json(dir, 'config.json')).toMatchObject({
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: 40,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 4,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    rope_scaling: null,
    hidden_act: 'silu',
  });
  const file = openSafetensors(join(dir, 'model.safetensors'));
  expect(file.metadata).toEqual({ format: 'pt' });
  expect(file.names).toContain('lm_head.weight');
  file.close();

  const loaded = LlamaForCausalLM.fromPretrained(dir);
  expect(loaded.config.dtype).toBe('float32');
  expectSameWeights(source, loaded);
  expect(logitsOf(loaded)).toEqual(logitsOf(source));
});

test('shards and their index when the weights pass maxShardBytes; float16 and tied embeddings round-trip', async () => {
  const source = new LlamaForCausalLM({ ...config, seed: 2, dtype: 'float16', tieWordEmbeddings: true });
  const dir = freshDir();
  await source.savePretrained(dir, { maxShardBytes: 3000 });
  const files = readdirSync(dir).sort();
  const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  expect(shards.length).toBeGreaterThan(2);
  expect(files).toEqual(['config.json', 'generation_config.json', ...shards, 'model.safetensors.index.json']);
  expect(shards[0]).toBe(`model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);

  const index = json(dir, 'model.safetensors.index.json') as { metadata: { total_size: number }; weight_map: Record<string, string> };
  const names = Object.keys(source.stateDict()).filter((n) => n !== 'lm_head.weight'); // tied: transformers omits it
  expect(Object.keys(index.weight_map).sort()).toEqual([...names].sort());
  expect(index.metadata.total_size).toBe(names.reduce((s, n) => s + 2 * source.stateDict()[n].numel, 0));
  for (const shard of shards) {
    const reader = openSafetensors(join(dir, shard));
    expect(reader.metadata).toEqual({ format: 'pt' });
    expect([...reader.names].sort()).toEqual(Object.keys(index.weight_map).filter((n) => index.weight_map[n] === shard).sort());
    expect(reader.info(reader.names[0]).dtype).toBe('F16');
    reader.close();
  }
  expect(json(dir, 'config.json')).toMatchObject({ torch_dtype: 'float16', tie_word_embeddings: true });

  const loaded = LlamaForCausalLM.fromPretrained(dir);
  expect(loaded.config.dtype).toBe('float16');
  expectSameWeights(source, loaded);
  expect(logitsOf(loaded)).toEqual(logitsOf(source));
  // overrides win over torch_dtype
  expect(LlamaForCausalLM.fromPretrained(dir, { dtype: 'float32' }).config.dtype).toBe('float32');
});

describe.each(['float32', 'float16', 'bfloat16'] as const)('%s', (dtype) => {
  test.each([
    ['one file', undefined],
    ['shards', 3000],
  ])('savePretrained then fromPretrained, as %s: the same dtype, every weight bit for bit, the same logits', async (_, maxShardBytes) => {
    const dir = freshDir();
    const source = new LlamaForCausalLM({ ...config, dtype, seed: 21 });
    await source.savePretrained(dir, maxShardBytes === undefined ? {} : { maxShardBytes });
    expect(readdirSync(dir).includes('model.safetensors.index.json')).toBe(maxShardBytes !== undefined);
    expect(json(dir, 'config.json').torch_dtype).toBe(dtype);
    const loaded = LlamaForCausalLM.fromPretrained(dir);
    expect(loaded.config.dtype).toBe(dtype);
    expectSameWeights(source, loaded);
    expect(logitsOf(loaded)).toEqual(logitsOf(source));
  });
});

test('a model converted with to() saves as its new dtype (torch_dtype follows the weights) and loads back in it', async () => {
  const dir = freshDir();
  const source = new LlamaForCausalLM({ ...config, seed: 22 }).to('bfloat16');
  expect(source.config.dtype).toBe('bfloat16');
  expect(source.model.config.dtype).toBe('bfloat16'); // the decoder's config is the same object
  await source.savePretrained(dir);
  expect(json(dir, 'config.json').torch_dtype).toBe('bfloat16');
  const loaded = LlamaForCausalLM.fromPretrained(dir);
  expect(loaded.config.dtype).toBe('bfloat16');
  expectSameWeights(source, loaded);
});

test('saving one layout over the other removes the other, so a directory never holds two sets of weights', async () => {
  const dir = freshDir();
  const a = new LlamaForCausalLM({ ...config, seed: 3 });
  await a.savePretrained(dir, { maxShardBytes: 3000 });
  const b = new LlamaForCausalLM({ ...config, seed: 4 });
  await b.savePretrained(dir);
  expect(readdirSync(dir)).not.toContain('model.safetensors.index.json');
  expectSameWeights(b, LlamaForCausalLM.fromPretrained(dir));
  await a.savePretrained(dir, { maxShardBytes: 3000 });
  expect(readdirSync(dir)).not.toContain('model.safetensors');
  expectSameWeights(a, LlamaForCausalLM.fromPretrained(dir));
});

test('a directory laid out by hand as transformers writes one (extra config fields, two shards, an index) loads', () => {
  const source = new LlamaForCausalLM({ ...config, rmsNormEps: 1e-6, ropeTheta: 10000, seed: 5 });
  const dir = freshDir();
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    _name_or_path: 'tiny-llama', architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0,
    bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 16, initializer_range: 0.02, intermediate_size: 32,
    max_position_embeddings: 32, mlp_bias: false, model_type: 'llama', num_attention_heads: 4, num_hidden_layers: 2,
    num_key_value_heads: 2, pretraining_tp: 1, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 10000.0,
    tie_word_embeddings: false, torch_dtype: 'float32', transformers_version: '4.46.0', use_cache: true, vocab_size: 40,
  }));
  const sd = source.stateDict();
  const names = Object.keys(sd);
  const half = Math.ceil(names.length / 2);
  const shard = (part: string[]): Record<string, Tensor> => Object.fromEntries(part.map((n) => [n, sd[n]]));
  writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), saveSafetensors(shard(names.slice(0, half)), { format: 'pt' }));
  writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), saveSafetensors(shard(names.slice(half)), { format: 'pt' }));
  const weightMap = Object.fromEntries(names.map((n, i) => [n, `model-0000${i < half ? 1 : 2}-of-00002.safetensors`]));
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  const loaded = LlamaForCausalLM.fromPretrained(dir);
  expect(loaded.config.rmsNormEps).toBe(1e-6);
  expectSameWeights(source, loaded);
  expect(logitsOf(loaded)).toEqual(logitsOf(source));
});

test('fromPretrained reads one tensor at a time: memory peaks at the model plus its largest tensor, not twice the model', async () => {
  const dir = freshDir();
  const source = new LlamaForCausalLM({ ...config, seed: 11 });
  await source.savePretrained(dir);
  const sizes = source.parameters().map((p) => p.numel * 4);
  const modelBytes = sizes.reduce((a, b) => a + b, 0);
  const largest = Math.max(...sizes);
  const before = memory.stats().liveBytes;
  memory.resetPeak();
  const loaded = LlamaForCausalLM.fromPretrained(dir);
  const peak = memory.stats().peakBytes - before;
  expect(peak).toBeLessThanOrEqual(modelBytes + largest);
  expect(logitsOf(loaded)).toEqual(logitsOf(source));
});

test('generation_config.json: written from generationConfig, read back, and generate() stops at its eos by default', async () => {
  const dir = freshDir();
  const source = new LlamaForCausalLM({ ...config, seed: 12 });
  source.generationConfig = { bosTokenId: 1, eosTokenId: [2, 3] };
  await source.savePretrained(dir);
  expect(json(dir, 'generation_config.json')).toEqual({ _from_model_config: true, bos_token_id: 1, eos_token_id: [2, 3] });
  const loaded = LlamaForCausalLM.fromPretrained(dir);
  expect(loaded.generationConfig).toEqual({ bosTokenId: 1, eosTokenId: [2, 3] });
  // greedy generation with the first token it produces made the eos: it stops there, as transformers does
  const prompt = tensor([[1, 5, 7]], { dtype: 'int32' });
  const free = Array.from(loaded.generate(prompt, { maxNewTokens: 4, temperature: 0, eosTokenId: [] }).toTypedArray());
  loaded.generationConfig = { eosTokenId: free[3] };
  expect(Array.from(loaded.generate(prompt, { maxNewTokens: 4, temperature: 0 }).toTypedArray())).toEqual(free.slice(0, 4));
  // without generation_config.json, config.json's ids serve (transformers derives them the same way)
  rmSync(join(dir, 'generation_config.json'));
  editJson(dir, 'config.json', (j) => Object.assign(j, { bos_token_id: 1, eos_token_id: 2 }));
  expect(LlamaForCausalLM.fromPretrained(dir).generationConfig).toEqual({ bosTokenId: 1, eosTokenId: 2 });
  editJson(dir, 'config.json', (j) => (j.eos_token_id = 999));
  expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/config\.json: eos_token_id must be a token id in \[0, \d+\) or a list of them, got 999/);
});

test('a RoBERTa classifier round-trips too: config.json as transformers writes it (id2label, torch_dtype), weights bit for bit', async () => {
  const { RobertaForSequenceClassification } = nn;
  const source = new RobertaForSequenceClassification({
    vocabSize: 30, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 16,
    maxPositionEmbeddings: 20, numLabels: 3, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0, dtype: 'float16', seed: 8,
  });
  const dir = freshDir();
  await source.savePretrained(dir, { maxShardBytes: 2000 });
  expect(json(dir, 'config.json')).toMatchObject({
    architectures: ['RobertaForSequenceClassification'],
    model_type: 'roberta',
    hidden_size: 8,
    id2label: { 0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2' },
    label2id: { LABEL_0: 0, LABEL_1: 1, LABEL_2: 2 },
    torch_dtype: 'float16',
  });
  expect(readdirSync(dir)).toContain('model.safetensors.index.json');
  const loaded = RobertaForSequenceClassification.fromPretrained(dir);
  expect(loaded.config).toEqual({ ...source.config, seed: loaded.config.seed });
  expectSameWeights(source, loaded);
  const input = tensor([[0, 5, 9, 2]], { dtype: 'int32' });
  expect(Array.from(loaded.forward(input).logits.toTypedArray() as ArrayLike<number>)).toEqual(
    Array.from(source.forward(input).logits.toTypedArray() as ArrayLike<number>),
  );
});

describe('a broken directory is an error that names the file or the field', () => {
  async function saved(): Promise<string> {
    const dir = freshDir();
    await new LlamaForCausalLM({ ...config, seed: 6 }).savePretrained(dir, { maxShardBytes: 3000 });
    return dir;
  }
  it('no config.json; another model_type; a torch_dtype blockgrad does not load', async () => {
    const empty = freshDir();
    mkdirSync(empty);
    expect(() => LlamaForCausalLM.fromPretrained(empty)).toThrow(ValueError);
    expect(() => LlamaForCausalLM.fromPretrained(empty)).toThrow(/config\.json/);
    const dir = await saved();
    editJson(dir, 'config.json', (j) => (j.model_type = 'gpt2'));
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/model_type "gpt2" is not a Llama/);
    editJson(dir, 'config.json', (j) => Object.assign(j, { model_type: 'llama', torch_dtype: 'int8' }));
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/torch_dtype "int8"/);
  });

  it('no weights; a shard name that leaves the directory; a missing shard; a tensor missing from its shard', async () => {
    const dir = await saved();
    editJson(dir, 'model.safetensors.index.json', (j) => {
      const map = j.weight_map as Record<string, string>;
      map['model.norm.weight'] = '../elsewhere.safetensors';
    });
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(SafetensorsError);
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/must be a file name in the directory, got "..\/elsewhere.safetensors"/);
    const first = readdirSync(dir).filter((f) => f.startsWith('model-')).sort()[0];
    editJson(dir, 'model.safetensors.index.json', (j) => {
      const map = j.weight_map as Record<string, string>;
      map['model.norm.weight'] = 'model-00009-of-00009.safetensors';
    });
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/model-00009-of-00009\.safetensors, a shard that model\.safetensors\.index\.json lists, does not exist/);
    editJson(dir, 'model.safetensors.index.json', (j) => {
      const map = j.weight_map as Record<string, string>;
      map['model.norm.weight'] = first;
      map['model.extra.weight'] = first;
    });
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/lacks "model\.norm\.weight", "model\.extra\.weight", which model\.safetensors\.index\.json puts there/);
    rmSync(join(dir, 'model.safetensors.index.json'));
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/has neither model\.safetensors nor model\.safetensors\.index\.json/);
  });

  it('weights that do not fit the config fail the load, and neither they nor the model built for them stay allocated', async () => {
    const dir = await saved();
    editJson(dir, 'config.json', (j) => (j.intermediate_size = 48));
    const before = memory.stats();
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/mlp/);
    const after = memory.stats();
    expect([after.liveBytes, after.liveBuffers]).toEqual([before.liveBytes, before.liveBuffers]);
  });

  it('maxShardBytes must be a positive number, checked before anything is written', async () => {
    const dir = freshDir();
    await expect(new LlamaForCausalLM({ ...config, seed: 7 }).savePretrained(dir, { maxShardBytes: 0 })).rejects.toThrow(/maxShardBytes must be a positive number/);
    expect(() => readdirSync(dir)).toThrow();
  });
});
