/**
 * Scaled RoPE (config.json's rope_scaling, types "linear" and "llama3"): the frequencies, the
 * config round trip through Hugging Face's field names, and the model using them.
 */
import { LlamaForCausalLM, ValueError, llamaConfigFromHF, llamaConfigToHF, ropeInverseFrequencies, tensor, type LlamaConfig } from '../../src';

import { expectClose, expectError } from '../helpers';

const LLAMA3 = { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } as const;

describe('ropeInverseFrequencies', () => {
  test('plain and linear: θ^(−2j/D), and that divided by the factor', () => {
    expectClose(ropeInverseFrequencies(8, 10000), [1, 0.1, 0.01, 0.001]);
    expectClose(ropeInverseFrequencies(8, 10000, { ropeType: 'linear', factor: 4 }), [0.25, 0.025, 0.0025, 0.00025]);
  });

  test('llama3: high frequencies kept, low ones divided, the band between blended', () => {
    // θ = 500000, D = 8: f = 500000^(−j/4) = 1, 0.0376060, 0.00141421, 0.0000531830; wavelengths 2π/f =
    // 6.28, 167, 4443, 118144 against the band [8192/4, 8192/1] = [2048, 8192]:
    //   j = 0, 1 below the band: kept;
    //   j = 2 inside it: s = (8192/4442.88 − 1)/3 = 0.281284, f·((1 − s)/8 + s) = 0.000524846;
    //   j = 3 above it: f/8 = 0.00000664787.
    expectClose(ropeInverseFrequencies(8, 500000, LLAMA3), [1, 0.03760603093086393, 0.0005248461609929547, 6.647869871181236e-6], 1e-14);
  });
});

describe('rope_scaling in config.json', () => {
  const json = { vocab_size: 16, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, rope_theta: 500000 };
  const hfLlama3 = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };

  test('read into camelCase and written back in HF form; the pre-4.45 "type" key and "default" are read too', () => {
    const config = llamaConfigFromHF({ ...json, rope_scaling: hfLlama3 });
    expect(config.ropeScaling).toEqual(LLAMA3);
    expect(llamaConfigToHF(config).rope_scaling).toEqual(hfLlama3);
    expect(llamaConfigFromHF({ ...json, rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling).toEqual({ ropeType: 'linear', factor: 2 });
    expect(llamaConfigFromHF({ ...json, rope_scaling: { rope_type: 'default' } }).ropeScaling).toBeNull();
    expect(llamaConfigToHF(llamaConfigFromHF(json)).rope_scaling).toBeNull();
  });

  test('what it does not implement, or a bad field, is a ValueError naming it', () => {
    expectError(() => llamaConfigFromHF({ ...json, rope_scaling: { rope_type: 'yarn', factor: 4 } }), ValueError, 'llamaConfigFromHF', 'rope_scaling type "yarn" is not supported', '"linear" and "llama3"');
    expectError(() => llamaConfigFromHF({ ...json, rope_scaling: { ...hfLlama3, low_freq_factor: undefined } }), ValueError, 'llamaConfigFromHF', 'rope_scaling.low_freq_factor must be a finite positive number');
    expectError(() => llamaConfigFromHF({ ...json, rope_scaling: { ...hfLlama3, high_freq_factor: 1 } }), ValueError, 'llamaConfigFromHF', 'high_freq_factor (1) must be above low_freq_factor (1)');
    expectError(() => new LlamaForCausalLM({ ...llamaConfigFromHF(json), ropeScaling: { ropeType: 'linear', factor: 0 } }), ValueError, 'LlamaConfig', 'ropeScaling.factor must be a finite positive number, got 0');
  });
});

test('the model reads its positions through the scaling: linear factor 2 at positions 0, 2, 4, 6 is plain RoPE at 0, 1, 2, 3', () => {
  const config: LlamaConfig = { vocabSize: 16, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, dtype: 'float64', seed: 5 };
  const plain = new LlamaForCausalLM(config);
  const scaled = new LlamaForCausalLM({ ...config, ropeScaling: { ropeType: 'linear', factor: 2 } });
  const ids = tensor([[3, 1, 4, 1]], { dtype: 'int32' });
  const at = (model: LlamaForCausalLM, positions: number[]) =>
    Array.from(model.forward(ids, { positionIds: tensor([positions], { dtype: 'int32' }) }).logits.toTypedArray());
  // p·(f/2) and (p/2)·f are the same double when p is even: the logits agree to the bit
  expect(at(scaled, [0, 2, 4, 6])).toEqual(at(plain, [0, 1, 2, 3]));
  // and the scaling is not a no-op
  expect(at(scaled, [0, 1, 2, 3])).not.toEqual(at(plain, [0, 1, 2, 3]));
});
