/**
 * Experiment 1, memory. The paper's accounting for a float16 model of M parameters in D blocks:
 * mixed-precision Adam keeps 2M (weights) + 4M (float32 masters) + 4M (float32 gradients) + 8M
 * (two float32 moments) = 18M bytes; BAdam keeps 2M + 16·M/D, the 16 bytes only for the active
 * block. Measured here with the memory tracker (measureTrainingMemory: peak bytes by category
 * over one training step) for every method on float16 Llama-style models of D = 4 to 32 layers,
 * against the formula with the active block's exact size (2M + 16·M_active), and the formula
 * extrapolated to the paper's two models.
 */
import { LlamaForCausalLM, measureTrainingMemory, tensor, tidy, type LlamaConfig, type Tensor, type TrainingMemory } from '../src';
import { METHODS, buildMethod, type MethodName } from './methods';

export interface MemoryRow extends TrainingMemory {
  method: MethodName;
  layers: number;
  /** Parameters updated in the measured step. */
  active: number;
  /** The paper's formula with the exact active size, where it has one: 18M (Adam), 2M + 16·M_active (BAdam). */
  formula: number | null;
}

export interface Extrapolation {
  model: string;
  parameters: number;
  layers: number;
  /** Parameters of one decoder layer (BAdam's block). */
  perLayer: number;
  adamBytes: number;
  badamBytes: number;
  /** The paper's measured GB (which include activations and buffers the formula leaves out). */
  paperAdamGB: string;
  paperBadamGB: string;
}

export interface MemoryResult {
  model: Omit<LlamaConfig, 'numHiddenLayers'>;
  input: { batch: number; seqLen: number };
  layers: number[];
  rows: MemoryRow[];
  extrapolation: Extrapolation[];
}

export const MEMORY_MODEL: Omit<LlamaConfig, 'numHiddenLayers'> = { vocabSize: 259, hiddenSize: 64, intermediateSize: 172, numAttentionHeads: 4, dtype: 'float16', seed: 0 };

/** Parameters of a Llama: per decoder layer, and in all (embedding and lm_head untied). */
export function llamaParameters(c: { vocab: number; hidden: number; intermediate: number; heads: number; kvHeads: number; layers: number }) {
  const kv = (c.hidden / c.heads) * c.kvHeads;
  const perLayer = 2 * c.hidden * c.hidden + 2 * c.hidden * kv + 3 * c.hidden * c.intermediate + 2 * c.hidden;
  return { perLayer, total: c.layers * perLayer + 2 * c.vocab * c.hidden + c.hidden };
}

function extrapolate(): Extrapolation[] {
  const models = [
    { model: 'Llama 2-7B', vocab: 32000, hidden: 4096, intermediate: 11008, heads: 32, kvHeads: 32, layers: 32, paperAdamGB: '122.8', paperBadamGB: '21.8' },
    { model: 'Llama 3-8B', vocab: 128256, hidden: 4096, intermediate: 14336, heads: 32, kvHeads: 8, layers: 32, paperAdamGB: '144+', paperBadamGB: '23.5' },
  ];
  return models.map((m) => {
    const { perLayer, total } = llamaParameters(m);
    return { model: m.model, parameters: total, layers: m.layers, perLayer, adamBytes: 18 * total, badamBytes: 2 * total + 16 * perLayer, paperAdamGB: m.paperAdamGB, paperBadamGB: m.paperBadamGB };
  });
}

export function runMemory(quick: boolean, log: (line: string) => void): MemoryResult {
  const layers = quick ? [4, 8] : [4, 8, 16, 32];
  const input = { batch: 2, seqLen: 32 };
  const ids = tensor([Array.from({ length: input.batch * input.seqLen }, (_, i) => (i * 37) % 259)], { dtype: 'int32' }).reshape([input.batch, input.seqLen]);
  const rows: MemoryRow[] = [];
  for (const D of layers) {
    for (const method of METHODS) {
      let active = 0;
      let release = () => {};
      let model: LlamaForCausalLM | null = null;
      const m = measureTrainingMemory(`${method} D=${D}`, () => {
        model = new LlamaForCausalLM({ ...MEMORY_MODEL, numHiddenLayers: D });
        const built = buildMethod(method, model);
        release = () => built.release();
        active = built.trainable();
        return {
          model,
          trainable: active,
          step: () =>
            tidy(() => {
              built.zeroGrad();
              built.backward(model!.forward(ids, { labels: ids }).loss as Tensor);
              built.update();
            }),
        };
      });
      release();
      for (const p of (model as unknown as LlamaForCausalLM).parameters()) p.dispose();
      const M = m.parameters;
      const formula = method === 'adam' ? 18 * M : method === 'badam' ? 2 * M + 16 * active : null;
      rows.push({ ...m, method, layers: D, active, formula });
      log(`memory: ${method.padEnd(11)} D=${String(D).padStart(2)}  ${(m.modelStateBytes / M).toFixed(2)} bytes/param${formula ? ` (formula ${(formula / M).toFixed(2)})` : ''}`);
    }
  }
  return { model: MEMORY_MODEL, input, layers, rows, extrapolation: extrapolate() };
}
