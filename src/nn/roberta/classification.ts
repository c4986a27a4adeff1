/**
 * RobertaForSequenceClassification: RobertaModel, the classification head on the first token,
 * and HF's problem-type losses (MSE regression, cross-entropy, multi-label BCE-with-logits).
 */
import { DTypeError, ShapeError, ValueError, fmtShape } from '../../errors';
import { isFloating, type DType } from '../../tensor/dtype';
import type { Generator } from '../../tensor/random';
import type { Tensor } from '../../tensor/tensor';
import { abs, add, cast, exp, log, mul, neg, relu, sub, tanh } from '../../autograd/ops/elementwise';
import { crossEntropy, mseLoss } from '../../autograd/ops/loss';
import { mean } from '../../autograd/ops/reduce';
import { reshape, select } from '../../autograd/ops/shape';
import { Dropout, Linear } from '../layers';
import { Module } from '../module';
import { resolveRobertaConfig, type ResolvedRobertaConfig, type RobertaConfig, type RobertaProblemType } from './config';
import { robertaLinear } from './layers';
import { RobertaModel, checkIds, initRobertaWeights, modelGenerator, type RobertaInputs } from './model';
import { loadPretrainedInto, savePretrainedModel, type WritePretrainedOptions } from '../../io/pretrained';
import { readRobertaConfig, robertaConfigToHF } from './pretrained';

/** HF's RobertaClassificationHead: first token -> dropout -> dense -> tanh -> dropout -> out_proj. */
export class RobertaClassificationHead extends Module {
  readonly dense: Linear;
  readonly dropout: Dropout;
  readonly out_proj: Linear;

  constructor(config: ResolvedRobertaConfig, generator: Generator) {
    super();
    this.dense = this.registerModule('dense', robertaLinear(config, generator));
    this.dropout = this.registerModule('dropout', new Dropout(config.classifierDropout ?? config.hiddenDropoutProb, generator));
    this.out_proj = this.registerModule('out_proj', robertaLinear(config, generator, config.hiddenSize, config.numLabels));
  }

  /** hidden [B, S, hidden] -> logits [B, numLabels]. */
  forward(hidden: Tensor): Tensor {
    const x = this.dropout.forward(select(hidden, 1, 0));
    return this.out_proj.forward(this.dropout.forward(tanh(this.dense.forward(x))));
  }
}

export interface SequenceClassifierOutput {
  /** [B, numLabels] */
  logits: Tensor;
  /** A 0-d loss, when labels were given. */
  loss?: Tensor;
}

/** Numerically stable mean BCE-with-logits: max(x, 0) − x·y + log(1 + e^(−|x|)). */
function bceWithLogits(x: Tensor, y: Tensor): Tensor {
  return mean(add(sub(relu(x), mul(x, y)), log(add(exp(neg(abs(x))), 1))));
}

/** HF's RobertaForSequenceClassification: `roberta` (no pooler) and `classifier`. */
export class RobertaForSequenceClassification extends Module {
  readonly config: ResolvedRobertaConfig;
  readonly roberta: RobertaModel;
  readonly classifier: RobertaClassificationHead;
  /** Initialisation and dropout masks draw from this (seeded by config.seed). */
  readonly generator: Generator;

  constructor(config: RobertaConfig) {
    super();
    this.config = resolveRobertaConfig(config);
    this.generator = modelGenerator(this.config);
    this.roberta = this.registerModule('roberta', new RobertaModel(this.config, this.generator));
    this.classifier = this.registerModule('classifier', new RobertaClassificationHead(this.config, this.generator));
    initRobertaWeights(this, this.config.initializerRange, this.generator);
    this.nameParameters();
  }

  /**
   * A classifier from a Hugging Face model directory: config.json (see robertaConfigFromHF; the
   * dtype is torch_dtype's unless `overrides` sets one) and the weights, one model.safetensors or
   * the shards its index lists, loaded strictly. Synchronous, Node.js only.
   */
  static fromPretrained(dir: string, overrides: Partial<RobertaConfig> = {}): RobertaForSequenceClassification {
    const op = 'RobertaForSequenceClassification.fromPretrained';
    return loadPretrainedInto(op, dir, () => new RobertaForSequenceClassification(readRobertaConfig(op, dir, overrides)));
  }

  /** Module.to, and the config's dtype with it (savePretrained's torch_dtype), as LlamaForCausalLM.to. */
  override to(dtype: DType): this {
    super.to(dtype);
    Object.assign(this.config, { dtype });
    return this;
  }

  /**
   * Writes this model as a Hugging Face model directory (config.json with id2label, torch_dtype;
   * generation_config.json; the weights, sharded past `maxShardBytes`), as
   * LlamaForCausalLM.savePretrained does.
   */
  savePretrained(dir: string, options: WritePretrainedOptions = {}): Promise<void> {
    return savePretrainedModel('RobertaForSequenceClassification.savePretrained', dir, this, robertaConfigToHF(this.config), options);
  }

  /**
   * int32 ids [B, S] -> logits [B, numLabels], and the loss when `labels` are given:
   *  - regression (numLabels 1, or problemType): MSE between logits and labels ([B] or [B, 1], cast to the logits' dtype);
   *  - single-label (int32 labels): cross-entropy with int32 class ids [B] (-100 ignored);
   *  - multi-label (floating labels, numLabels > 1): BCE-with-logits against [B, numLabels] targets.
   */
  forward(inputIds: Tensor, inputs: RobertaInputs & { labels?: Tensor } = {}): SequenceClassifierOutput {
    checkIds('RobertaForSequenceClassification.forward', inputIds, 'inputIds');
    const labels = inputs.labels;
    const problem = labels === undefined ? undefined : this.problemType(labels);
    if (labels !== undefined) this.checkLabels(problem as RobertaProblemType, labels, inputIds);
    const logits = this.classifier.forward(this.roberta.forward(inputIds, inputs));
    if (labels === undefined) return { logits };
    const b = logits.shape[0];
    let loss: Tensor;
    if (problem === 'regression') {
      const target = labels.dtype === logits.dtype ? labels : cast(labels, logits.dtype);
      loss = this.config.numLabels === 1 ? mseLoss(reshape(logits, [b]), reshape(target, [b])) : mseLoss(logits, target);
    } else if (problem === 'single_label_classification') {
      loss = crossEntropy(logits, reshape(labels, [b]));
    } else {
      loss = bceWithLogits(logits, labels.dtype === logits.dtype ? labels : cast(labels, logits.dtype));
    }
    return { logits, loss };
  }

  /** HF's inference: numLabels 1 -> regression; integer labels -> single-label; else multi-label. */
  private problemType(labels: Tensor): RobertaProblemType {
    if (this.config.problemType) return this.config.problemType;
    if (this.config.numLabels === 1) return 'regression';
    return labels.dtype === 'int32' ? 'single_label_classification' : 'multi_label_classification';
  }

  private checkLabels(problem: RobertaProblemType, labels: Tensor, inputIds: Tensor): void {
    const op = 'RobertaForSequenceClassification.forward';
    if (labels === null || typeof labels !== 'object' || !('shape' in labels)) throw new ValueError(op, 'labels must be a Tensor');
    const b = inputIds.ndim >= 1 ? inputIds.shape[0] : 0;
    const n = this.config.numLabels;
    if (problem === 'single_label_classification') {
      if (labels.dtype !== 'int32') {
        throw new DTypeError(op, `single-label classification needs int32 class ids, got ${labels.dtype} labels of shape ${fmtShape(labels.shape)}`);
      }
      if (labels.numel !== b || labels.ndim > 2) {
        throw new ShapeError(op, `labels of shape ${fmtShape(labels.shape)} do not fit a batch of ${b}: expected one class id per sequence, shape [${b}]`);
      }
    } else if (problem === 'regression') {
      const ok = n === 1 ? labels.numel === b && labels.ndim <= 2 : labels.ndim === 2 && labels.shape[0] === b && labels.shape[1] === n;
      if (!ok) {
        throw new ShapeError(op, `regression labels of shape ${fmtShape(labels.shape)} do not fit a batch of ${b} with numLabels ${n}: expected ${n === 1 ? `[${b}] or [${b}, 1]` : `[${b}, ${n}]`}`);
      }
    } else {
      if (!isFloating(labels.dtype)) throw new DTypeError(op, `multi-label classification needs floating 0/1 targets, got ${labels.dtype}`);
      if (labels.ndim !== 2 || labels.shape[0] !== b || labels.shape[1] !== n) {
        throw new ShapeError(op, `multi-label targets of shape ${fmtShape(labels.shape)} do not fit logits [${b}, ${n}]; expected [${b}, ${n}]`);
      }
    }
  }
}
