/**
 * BAdam's partition: the blocks inferred from Llama's and RoBERTa's Hugging Face names (exact
 * prefixes and parameter counts computed from the configs), generic containers, explicit lists
 * and their validation.
 */
import { Adam, BlockOptimizer, LlamaForCausalLM, ValueError, inferBlocks, findLayerContainer } from '../../../src';
import { TinyNet, tinyLlama, tinyRoberta } from './helpers';

const quiet = { verbose: 0 as const };

describe('inferBlocks on LlamaForCausalLM', () => {
  const model = tinyLlama(4);
  const names = model.namedParameters().map(([n]) => n);
  // hidden 8, intermediate 12, vocab 16, 2 heads of 4, 1 key/value head
  const h = 8, inter = 12, vocab = 16, kv = 4;
  const layer = h * h + 2 * h * kv + h * h + 3 * h * inter + 2 * h;
  const layers = [0, 1, 2, 3].map((i) => [`model.layers.${i}.`]);

  test('one block per decoder layer, ascending', () => {
    expect(inferBlocks(names)).toEqual(layers);
    const opt = new BlockOptimizer(model, new Adam(model.parameters()), quiet);
    const blocks = opt.blocks();
    expect(blocks.map((b) => b.prefixes)).toEqual(layers);
    expect(blocks.map((b) => b.index)).toEqual([0, 1, 2, 3]);
    expect(blocks.map((b) => b.numParams)).toEqual([layer, layer, layer, layer]);
    expect(blocks[2].names).toEqual([
      'model.layers.2.self_attn.q_proj.weight',
      'model.layers.2.self_attn.k_proj.weight',
      'model.layers.2.self_attn.v_proj.weight',
      'model.layers.2.self_attn.o_proj.weight',
      'model.layers.2.mlp.gate_proj.weight',
      'model.layers.2.mlp.up_proj.weight',
      'model.layers.2.mlp.down_proj.weight',
      'model.layers.2.input_layernorm.weight',
      'model.layers.2.post_attention_layernorm.weight',
    ]);
    // the embedding, the final norm and lm_head are in no block: frozen for the whole run
    expect(opt.frozenNames()).toEqual(['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']);
    for (const n of opt.frozenNames()) expect(model.getParameter(n).requiresGrad).toBe(false);
  });

  test('with the embedding (first block) and lm_head plus the final norm (last block)', () => {
    expect(inferBlocks(names, { includeEmbedding: true })).toEqual([['model.embed_tokens.'], ...layers]);
    expect(inferBlocks(names, { includeLmHead: true })).toEqual([...layers, ['model.norm.', 'lm_head.']]);
    const opt = new BlockOptimizer(model, new Adam(model.parameters()), { ...quiet, includeEmbedding: true, includeLmHead: true });
    const blocks = opt.blocks();
    expect(blocks.map((b) => b.prefixes)).toEqual([['model.embed_tokens.'], ...layers, ['model.norm.', 'lm_head.']]);
    expect(blocks.map((b) => b.numParams)).toEqual([vocab * h, layer, layer, layer, layer, h + vocab * h]);
    expect(blocks[5].names).toEqual(['model.norm.weight', 'lm_head.weight']);
    expect(opt.frozenNames()).toEqual([]);
    expect(blocks.reduce((s, b) => s + b.numParams, 0)).toBe(model.numParameters());
  });

  test('tied embeddings: lm_head is the embedding, listed once', () => {
    const tied = new LlamaForCausalLM({
      vocabSize: 16, hiddenSize: 8, intermediateSize: 12, numHiddenLayers: 2, numAttentionHeads: 2, tieWordEmbeddings: true,
    });
    const n = tied.namedParameters().map(([x]) => x);
    expect(inferBlocks(n, { includeEmbedding: true, includeLmHead: true })).toEqual([
      ['model.embed_tokens.'], ['model.layers.0.'], ['model.layers.1.'], ['model.norm.'],
    ]);
  });
});

describe('inferBlocks on RobertaForSequenceClassification', () => {
  const model = tinyRoberta(3);
  const names = model.namedParameters().map(([n]) => n);
  const h = 8, inter = 12, vocab = 20, pos = 16, labels = 3;
  const layer = 4 * (h * h + h) + (h * inter + inter) + (inter * h + h) + 2 * 2 * h;
  const embeddings = vocab * h + pos * h + 1 * h + 2 * h;
  const head = h * h + h + h * labels + labels;

  test('roberta.encoder.layer.{i}., the embeddings block and the classifier in the last block', () => {
    const layers = [0, 1, 2].map((i) => [`roberta.encoder.layer.${i}.`]);
    expect(inferBlocks(names)).toEqual(layers);
    const opt = new BlockOptimizer(model, new Adam(model.parameters()), { ...quiet, includeEmbedding: true, includeLmHead: true });
    const blocks = opt.blocks();
    expect(blocks.map((b) => b.prefixes)).toEqual([['roberta.embeddings.'], ...layers, ['classifier.']]);
    expect(blocks.map((b) => b.numParams)).toEqual([embeddings, layer, layer, layer, head]);
    expect(blocks[0].names).toContain('roberta.embeddings.LayerNorm.weight');
    expect(blocks[4].names).toEqual(['classifier.dense.weight', 'classifier.dense.bias', 'classifier.out_proj.weight', 'classifier.out_proj.bias']);
    expect(blocks.reduce((s, b) => s + b.numParams, 0)).toBe(model.numParameters());
  });
});

describe('inferBlocks on other layouts', () => {
  test('a root ModuleList, nested numbered containers, and the largest container winning', () => {
    expect(inferBlocks(['0.weight', '0.bias', '1.weight', 'head.weight'], { includeLmHead: true })).toEqual([['0.'], ['1.'], ['head.']]);
    // experts inside a layer do not make blocks of their own: the outermost integer counts
    expect(inferBlocks(['m.layers.0.experts.0.w', 'm.layers.0.experts.1.w', 'm.layers.0.experts.2.w', 'm.layers.1.experts.0.w'])).toEqual([
      ['m.layers.0.'],
      ['m.layers.1.'],
    ]);
    // encoder.block has 3 elements, decoder.block 2: the encoder wins, the decoder joins the rest
    const names = ['encoder.block.0.w', 'encoder.block.1.w', 'encoder.block.2.w', 'decoder.block.0.w', 'decoder.block.1.w', 'shared.weight'];
    expect(findLayerContainer(names)).toEqual({ path: 'encoder.block', indices: [0, 1, 2] });
    expect(inferBlocks(names, { includeLmHead: true })).toEqual([['encoder.block.0.'], ['encoder.block.1.'], ['encoder.block.2.'], ['decoder.', 'shared.']]);
    // indices sort numerically, not as strings
    const many = Array.from({ length: 12 }, (_, i) => `model.layers.${11 - i}.w`);
    expect(inferBlocks(many).map((b) => b[0])).toEqual(Array.from({ length: 12 }, (_, i) => `model.layers.${i}.`));
  });

  test('no numbered container is a clear error', () => {
    expect(() => inferBlocks(['a.weight', 'b.weight'])).toThrow(/no numbered layer container.*blockPrefixList/);
  });
});

describe('explicit partitions and their validation', () => {
  test('blockPrefixList overrides inference; several prefixes per block', () => {
    const net = new TinyNet({ depth: 4 });
    const opt = new BlockOptimizer(net, new Adam(net.parameters()), {
      ...quiet,
      blockPrefixList: [['model.layers.0.', 'model.layers.1.'], ['model.layers.2.mlp.'], ['lm_head.', 'model.norm.']],
    });
    const blocks = opt.blocks();
    expect(blocks.map((b) => b.names)).toEqual([
      ['model.layers.0.mlp.weight', 'model.layers.0.mlp.bias', 'model.layers.0.norm.weight', 'model.layers.0.norm.bias',
        'model.layers.1.mlp.weight', 'model.layers.1.mlp.bias', 'model.layers.1.norm.weight', 'model.layers.1.norm.bias'],
      ['model.layers.2.mlp.weight', 'model.layers.2.mlp.bias'],
      ['model.norm.weight', 'model.norm.bias', 'lm_head.weight', 'lm_head.bias'],
    ]);
    expect(blocks.map((b) => b.numParams)).toEqual([2 * (36 + 6 + 12), 42, 12 + 12 + 2]);
    expect(opt.frozenNames()).toEqual([
      'model.embed_proj.weight', 'model.embed_proj.bias', 'model.layers.2.norm.weight', 'model.layers.2.norm.bias',
      'model.layers.3.mlp.weight', 'model.layers.3.mlp.bias', 'model.layers.3.norm.weight', 'model.layers.3.norm.bias',
    ]);
  });

  test('an empty block, a prefix matching nothing, an overlap: ValueErrors naming them', () => {
    const net = new TinyNet({ depth: 3 });
    const make = (blockPrefixList: unknown, extra: object = {}) => () =>
      new BlockOptimizer(net, new Adam(net.parameters()), { ...quiet, blockPrefixList: blockPrefixList as string[][], ...extra });
    expect(make([['model.layers.0.'], []])).toThrow(ValueError);
    expect(make([['model.layers.0.'], []])).toThrow(/block 1 is empty/);
    expect(make([])).toThrow(/no blocks/);
    expect(make([['model.layers.0.'], ['model.layers.7.']])).toThrow(/block 1: prefix 'model.layers.7.' matches no parameter/);
    // a substring that is not a prefix gets a hint
    expect(make([['layers.1.']])).toThrow(/matches no parameter; prefixes match the start of a name: did you mean 'model.layers.1.'\?/);
    expect(make([['model.layers.'], ['model.layers.1.mlp.']])).toThrow(
      /parameter 'model.layers.1.mlp.weight' is claimed by block 0 \(prefix 'model.layers.'\) and block 1 \(prefix 'model.layers.1.mlp.'\)/,
    );
    expect(make(['model.layers.0.'])).toThrow(/block 0 must be a list of name prefixes/);
    expect(make([['model.layers.0.', '']])).toThrow(/block 0 prefix 1 must be a non-empty string/);
    expect(make([['model.layers.0.']], { activeModules: ['nothing.'] })).toThrow(/activeModules: prefix 'nothing.' matches no parameter/);
    expect(make([['model.layers.0.']], { includeEmbedding: true })).toThrow(/with blockPrefixList, list the embedding/);
    // a failed construction changed nothing
    for (const p of net.parameters()) expect(p.requiresGrad).toBe(true);
  });
});
