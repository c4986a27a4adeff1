/**
 * The analytic FLOP model of bench/flops.ts (used by `npm run bench` to predict the BAdam backward
 * cost) against the matmul FLOPs the kernels actually count, on a small Llama: the full backward,
 * the backward with each block active (flags set by BlockOptimizer itself), and the variants the
 * formula distinguishes (a frozen input norm, LoRA, grouped-query attention). No timing.
 */
import { Adam, BlockOptimizer, LlamaForCausalLM, applyLora, profile, reshape, tensor, type LlamaConfig, type Tensor } from '../../src';
import {
  blockBackwardFlops,
  designRatio,
  fullBackwardFlops,
  llamaFlopDims,
  llamaForwardFlops,
  loraBackwardFlops,
  meanBlockBackwardFlops,
  type LlamaFlopDims,
} from '../../bench/flops';

const CONFIG: LlamaConfig = { vocabSize: 259, hiddenSize: 32, intermediateSize: 88, numHiddenLayers: 8, numAttentionHeads: 4, seed: 3 };
const INPUT = { batch: 2, seqLen: 16 };

const dimsOf = (c: LlamaConfig, input = INPUT): LlamaFlopDims => llamaFlopDims(c, input);

function ids(c: LlamaConfig, input = INPUT): Tensor {
  const n = input.batch * input.seqLen;
  return reshape(tensor(Int32Array.from({ length: n }, (_, i) => (i * 31 + 5) % c.vocabSize), { dtype: 'int32' }), [input.batch, input.seqLen]);
}

/** Matmul FLOPs of one forward and of the backward that follows, with the model's flags as they are. */
function measureFlops(model: LlamaForCausalLM, tokens: Tensor): { forward: number; backward: number } {
  const { result: out, report: fwd } = profile(() => model.forward(tokens, { labels: tokens }));
  const { report: bwd } = profile(() => (out.loss as Tensor).backward());
  model.zeroGrad();
  return { forward: fwd.matmulFlops, backward: bwd.matmulFlops };
}

const relErr = (measured: number, predicted: number) => Math.abs(measured - predicted) / predicted;

describe('backward FLOPs of a Llama under BAdam: measured against bench/flops.ts', () => {
  const D = CONFIG.numHiddenLayers;
  const dims = dimsOf(CONFIG);
  const model = new LlamaForCausalLM(CONFIG);
  const tokens = ids(CONFIG);

  model.requiresGrad_(true);
  const full = measureFlops(model, tokens);
  const blocks = Array.from({ length: D }, (_, i) => {
    const opt = new BlockOptimizer(model, new Adam(model.parameters()), { verbose: 0, switchMode: 'fixed', startBlock: i });
    const names = opt.trainableParameters().map(([n]) => n);
    return { names, ...measureFlops(model, tokens) };
  });

  test('BlockOptimizer makes exactly model.layers.{i}. trainable', () => {
    blocks.forEach((b, i) => {
      expect(b.names.length).toBe(9); // 7 linears + 2 norms
      for (const n of b.names) expect(n.startsWith(`model.layers.${i}.`)).toBe(true);
    });
  });

  test('the forward costs D·F_layer + F_head', () => {
    const f = llamaForwardFlops(dims);
    expect(f.total).toBe(D * (f.linears + f.attention) + f.head);
    expect(full.forward).toBe(f.total);
    // the forward's matmuls do not depend on which parameters are trainable
    for (const b of blocks) expect(b.forward).toBe(f.total);
  });

  test('(c) the full backward costs 2x the forward, within 5% (exactly, in fact)', () => {
    const predicted = fullBackwardFlops(dims);
    expect(predicted).toBe(2 * llamaForwardFlops(dims).total);
    expect(relErr(full.backward, predicted)).toBeLessThan(0.05);
    expect(full.backward).toBe(predicted);
  });

  test('(a) the mean BAdam backward over the D blocks is within 5% of the prediction', () => {
    const mean = blocks.reduce((s, b) => s + b.backward, 0) / D;
    const predicted = meanBlockBackwardFlops(dims);
    expect(relErr(mean, predicted)).toBeLessThan(0.05);
    // and the per-block formula is exact, block by block
    blocks.forEach((b, i) => expect([i, b.backward]).toEqual([i, blockBackwardFlops(dims, i)]));
    // the ratio to the full backward is well above the coarse (D+1)/(4D) estimate (docs/design.md) for this model
    expect(mean / full.backward).toBeGreaterThan(designRatio(D));
  });

  test('(b) higher blocks are cheaper: block i+1 costs less than block i', () => {
    for (let i = 1; i < D; i++) expect(blocks[i].backward).toBeLessThan(blocks[i - 1].backward);
    // by exactly one layer's dX work (F_lin + 2·F_attn) per step
    const f = llamaForwardFlops(dims);
    for (let i = 1; i < D; i++) expect(blocks[i - 1].backward - blocks[i].backward).toBe(f.linears + 2 * f.attention);
  });

  test('with block i\'s input norm frozen, q/k/v skip their input gradient (2·F_layer − F_qkv for the block)', () => {
    const i = 3;
    model.requiresGrad_(false);
    for (const [n, p] of model.namedParameters()) {
      if (n.startsWith(`model.layers.${i}.`) && !n.includes('input_layernorm')) p.requiresGrad_(true);
    }
    const frozenNorm = measureFlops(model, tokens).backward;
    expect(frozenNorm).toBe(blockBackwardFlops(dims, i, { inputNormTrainable: false }));
    expect(blocks[i].backward - frozenNorm).toBe(llamaForwardFlops(dims).qkv);
  });

  test('LoRA on q_proj and v_proj: frozen base, adapters trainable', () => {
    const lora = new LlamaForCausalLM(CONFIG);
    applyLora(lora, { targetModules: ['q_proj', 'v_proj'], r: 4, seed: 1 });
    const measured = measureFlops(lora, tokens).backward;
    expect(measured).toBe(loraBackwardFlops(dims, { r: 4, targets: ['q_proj', 'v_proj'] }));
  });

  test('grouped-query attention and other sizes: the formulas still match', () => {
    const gqa: LlamaConfig = { vocabSize: 61, hiddenSize: 48, intermediateSize: 64, numHiddenLayers: 3, numAttentionHeads: 6, numKeyValueHeads: 2, seed: 4 };
    const input = { batch: 1, seqLen: 9 };
    const d = dimsOf(gqa, input);
    const m = new LlamaForCausalLM(gqa);
    const t = ids(gqa, input);
    m.requiresGrad_(true);
    expect(measureFlops(m, t).backward).toBe(fullBackwardFlops(d));
    for (let i = 0; i < 3; i++) {
      new BlockOptimizer(m, new Adam(m.parameters()), { verbose: 0, switchMode: 'fixed', startBlock: i });
      expect([i, measureFlops(m, t).backward]).toEqual([i, blockBackwardFlops(d, i)]);
    }
    const v = new LlamaForCausalLM(gqa);
    applyLora(v, { targetModules: ['v_proj'], r: 2, seed: 1 });
    expect(measureFlops(v, t).backward).toBe(loraBackwardFlops(d, { r: 2, targets: ['v_proj'] }));
  });

  test('the formulas reject what they do not model', () => {
    expect(() => blockBackwardFlops(dims, D)).toThrow(RangeError);
    expect(() => loraBackwardFlops(dims, { r: 4, targets: ['o_proj'] })).toThrow(RangeError);
  });
});
