/**
 * A RoBERTa classifier's Hugging Face model directory (see io/pretrained.ts for the files): its
 * config.json written from a ResolvedRobertaConfig, with transformers' field names, and read
 * back with the dtype the weights are in. RobertaForSequenceClassification.fromPretrained and
 * savePretrained (classification.ts) use these.
 */
import { CONFIG_FILE, dtypeFromTorch } from '../../io/pretrained';
import { readJsonFile } from '../../io/directory';
import { robertaConfigFromHF, type ResolvedRobertaConfig, type RobertaConfig } from './config';

/**
 * config.json for this config, as transformers' RobertaConfig writes it for a
 * RobertaForSequenceClassification: the labels as id2label / label2id (LABEL_0, LABEL_1, ...),
 * absolute position embeddings, RoBERTa's bos/eos ids, torch_dtype from the model's dtype.
 */
export function robertaConfigToHF(config: ResolvedRobertaConfig): Record<string, unknown> {
  const labels = Array.from({ length: config.numLabels }, (_, i) => `LABEL_${i}`);
  return {
    architectures: ['RobertaForSequenceClassification'],
    model_type: 'roberta',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    intermediate_size: config.intermediateSize,
    hidden_act: config.hiddenAct,
    hidden_dropout_prob: config.hiddenDropoutProb,
    attention_probs_dropout_prob: config.attentionProbsDropoutProb,
    max_position_embeddings: config.maxPositionEmbeddings,
    type_vocab_size: config.typeVocabSize,
    initializer_range: config.initializerRange,
    layer_norm_eps: config.layerNormEps,
    pad_token_id: config.padTokenId,
    bos_token_id: 0,
    eos_token_id: 2,
    position_embedding_type: 'absolute',
    classifier_dropout: config.classifierDropout,
    ...(config.problemType ? { problem_type: config.problemType } : {}),
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
    torch_dtype: config.dtype, // blockgrad's dtype names are torch's
  };
}

/**
 * The config of the RoBERTa in `dir` (its config.json; see robertaConfigFromHF), built in the
 * dtype its torch_dtype names unless `overrides` sets one.
 */
export function readRobertaConfig(op: string, dir: string, overrides: Partial<RobertaConfig>): ResolvedRobertaConfig {
  const json = readJsonFile(op, dir, CONFIG_FILE);
  const dtype = dtypeFromTorch(op, dir, json);
  return robertaConfigFromHF(json, { ...(dtype ? { dtype } : {}), ...overrides });
}
