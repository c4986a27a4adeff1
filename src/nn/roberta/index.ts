/**
 * RoBERTa for sequence classification, with Hugging Face's module tree and parameter names
 * (`roberta.encoder.layer.3.attention.self.query.weight`), so a checkpoint's state dict loads
 * unchanged and BAdam can partition the model by `roberta.encoder.layer.{i}.`.
 *
 * Semantics follow transformers' RobertaForSequenceClassification (eager attention):
 *  - embeddings: word + absolute position + token type, then LayerNorm and dropout. Position ids
 *    are `cumsum(input != pad) * (input != pad) + pad`: real tokens count from pad + 1, padding
 *    tokens get position `pad`, whose embedding row (like the word embedding's pad row) is a
 *    padding_idx row: zero at init and never updated.
 *  - encoder layers are post-LN: h = LN(x + dropout(dense(attn(x)))), out = LN(h + dropout(dense(act(dense(h))))).
 *  - the attention mask [B, S] (1 real, 0 padding) masks padded *keys*: their scores are set to
 *    the dtype's most negative finite value before the softmax (HF adds that value; the result
 *    is the same, and a row whose keys are all masked gets HF's uniform weights, not NaN).
 *    With no mask every token is attended to, as in HF (the mask is not inferred from padTokenId).
 *  - the head reads the first token (<s>): dropout -> dense -> tanh -> dropout -> out_proj.
 *    There is no pooler, as in HF's RobertaForSequenceClassification.
 *  - the loss follows HF's problem_type: numLabels 1 -> MSE regression; int32 labels ->
 *    cross-entropy; floating labels with numLabels > 1 -> multi-label BCE-with-logits.
 *
 * Initialisation is HF's `_init_weights`: Linear and Embedding weights N(0, initializerRange),
 * padding rows zero, biases 0, LayerNorm weight 1 and bias 0. It draws from a Generator seeded
 * by `config.seed` (the default generator when no seed is given); the same Generator then feeds
 * the dropout masks, so a seeded model trains reproducibly.
 *
 * The files, one concern each:
 *   config.ts          RobertaConfig, its defaults and checks, and the reader of HF's config.json
 *   layers.ts          embeddings and the encoder layers (attention via the shared ../attention.ts)
 *   model.ts           RobertaModel: input checks, position ids, initialisation, the generator
 *   classification.ts  RobertaForSequenceClassification: the head and the problem-type losses,
 *                      fromPretrained / savePretrained (Hugging Face model directories)
 *   pretrained.ts      config.json written from a config and read back, with torch_dtype
 */
export {
  resolveRobertaConfig,
  robertaConfigFromHF,
  type ResolvedRobertaConfig,
  type RobertaActivation,
  type RobertaConfig,
  type RobertaProblemType,
} from './config';
export {
  RobertaAttention,
  RobertaEmbeddings,
  RobertaEncoder,
  RobertaIntermediate,
  RobertaLayer,
  RobertaOutput,
  RobertaSelfAttention,
  RobertaSelfOutput,
} from './layers';
export { RobertaModel, robertaPositionIds, type RobertaInputs } from './model';
export { RobertaClassificationHead, RobertaForSequenceClassification, type SequenceClassifierOutput } from './classification';
export { robertaConfigToHF } from './pretrained';
