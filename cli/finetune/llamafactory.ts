/**
 * The same run as a LLaMA-Factory training YAML (`llamafactory-cli train run.yaml`), for a user who
 * moves from blockgrad on a laptop to PyTorch BAdam with DeepSpeed on GPUs. Printed by
 * `blockgrad finetune ... --print-llamafactory`. Each blockgrad option maps to its LLaMA-Factory
 * (or Hugging Face Trainer) argument; where the two differ in behaviour, a comment says how.
 */
import { basename } from 'node:path';
import type { FinetuneConfig, RunSettings } from './options';

type Value = string | number | boolean;

/** A YAML scalar: numbers and booleans as they are, strings quoted when YAML would misread them. */
function scalar(v: Value): string {
  if (typeof v !== 'string') return String(v);
  return /^[\w./,-]+$/.test(v) && !/^(true|false|null|yes|no|on|off|[-+]?[\d.]+(e[-+]?\d+)?)$/i.test(v) ? v : JSON.stringify(v);
}

/** The YAML text (with comments) of `config` run with `settings`. */
export function llamaFactoryYaml(config: FinetuneConfig, settings: Pick<RunSettings, 'out' | 'evalEvery' | 'saveEvery'>, totalSteps?: number): string {
  const lines: string[] = ['# LLaMA-Factory training arguments for the same run (llamafactory-cli train this.yaml)', '# made by blockgrad finetune --print-llamafactory'];
  const section = (title: string) => lines.push('', `### ${title}`);
  const put = (key: string, value: Value, comment?: string) => lines.push(`${key}: ${scalar(value)}${comment ? `  # ${comment}` : ''}`);
  const note = (text: string) => lines.push(`# ${text}`);

  section('model');
  if (config.model !== null) put('model_name_or_path', config.model);
  else {
    note(`blockgrad trained a fresh --preset ${config.preset} model with its byte tokenizer, which LLaMA-Factory cannot build:`);
    note('point model_name_or_path at a model directory (for example a blockgrad checkpoint-* of this run)');
    put('model_name_or_path', 'path/to/model');
  }

  section('method');
  put('stage', 'sft');
  put('do_train', true);
  if (config.optimizer === 'lora') {
    put('finetuning_type', 'lora');
    put('lora_rank', config.loraR);
    put('lora_alpha', config.loraAlpha);
    put('lora_dropout', 0);
    put('lora_target', config.loraTargets.join(','));
  } else {
    put('finetuning_type', 'full');
  }
  if (config.optimizer === 'badam') {
    put('use_badam', true);
    put('badam_mode', config.badamMode === 'block' ? 'layer' : 'ratio');
    put('badam_switch_interval', config.switchEvery, config.badamMode === 'ratio' ? "LLaMA-Factory does not pass it to the ratio optimizer, which switches masks every 100 steps" : undefined);
    if (config.badamMode === 'block') {
      put('badam_switch_mode', config.switchMode);
      if (config.startBlock !== null) put('badam_start_block', config.startBlock);
      if (config.includeEmbedding || config.includeLmHead) note('blockgrad --include-embedding / --include-lm-head have no LLaMA-Factory option: its layer partition has the decoder layers only');
    } else {
      put('badam_update_ratio', config.updateRatio);
      put('badam_mask_mode', config.maskMode);
    }
    put('badam_verbose', 1);
  }
  if (config.optimizer === 'lomo') note('--optimizer lomo is not translated: check whether your LLaMA-Factory version offers LOMO; as written, this trains all parameters with AdamW');
  if (config.optimizer === 'adam' && config.weightDecay > 0) note('blockgrad adam adds weight decay to the gradient (L2); the Trainer uses AdamW (decoupled decay)');
  if (config.gradientCheckpointing === false) put('disable_gradient_checkpointing', true, 'LLaMA-Factory checkpoints by default');
  note('deepspeed: examples/deepspeed/ds_z3_config.json  # to shard the model over several GPUs');

  section('dataset');
  const name = (file: string) => basename(file).replace(/\.json$/i, '').replace(/[^\w-]/g, '_');
  note('register each file in dataset_info.json of dataset_dir, Alpaca columns (the default):');
  for (const f of [...config.data, ...config.evalData]) note(`  "${name(f)}": { "file_name": "${f}" }`);
  put('dataset', config.data.map(name).join(','));
  if (config.evalData.length > 0) put('eval_dataset', config.evalData.map(name).join(','));
  put('template', 'alpaca', "blockgrad's prompt is the Alpaca template");
  put('cutoff_len', config.maxLength ?? 512, 'blockgrad keeps the end of a long prompt and the start of its answer; LLaMA-Factory cuts by its own rule');

  section('output');
  put('output_dir', settings.out ?? 'finetune-output');
  put('logging_steps', 1);
  if (settings.saveEvery > 0) put('save_steps', settings.saveEvery);
  put('plot_loss', true);

  section('train');
  put('per_device_train_batch_size', config.batchSize);
  put('gradient_accumulation_steps', config.gradAccum);
  put('learning_rate', config.lr);
  put('lr_scheduler_type', config.lrScheduler === 'constant' ? (config.warmupSteps > 0 ? 'constant_with_warmup' : 'constant') : config.lrScheduler);
  if (config.warmupSteps > 0) put('warmup_steps', config.warmupSteps);
  if (config.steps !== null) put('max_steps', config.steps);
  else put('num_train_epochs', config.epochs);
  if (config.weightDecay > 0) put('weight_decay', config.weightDecay);
  put('max_grad_norm', config.maxGradNorm ?? 0, config.maxGradNorm === null ? "0: no clipping, as blockgrad's default (the Trainer's default is 1.0)" : undefined);
  put('seed', config.seed);
  if (config.dtype === 'bfloat16') put('bf16', true);
  if (config.dtype === 'float16') put('fp16', true, 'float32 master weights for every parameter under the Trainer; blockgrad keeps float16 weights and masters for the active block only');

  if (config.valSplit > 0 || config.evalData.length > 0) {
    section('eval');
    if (config.valSplit > 0) put('val_size', config.valSplit, 'a different random split from blockgrad\'s seeded one');
    put('per_device_eval_batch_size', config.batchSize);
    if (settings.evalEvery === 0) {
      put('eval_strategy', 'no', 'blockgrad --eval-every 0 evaluates at the end only: run llamafactory-cli eval on the result');
    } else {
      put('eval_strategy', 'steps');
      const steps = config.steps ?? totalSteps;
      if (settings.evalEvery !== null) put('eval_steps', settings.evalEvery);
      else if (steps !== undefined && steps !== null) put('eval_steps', Math.max(1, Math.round(steps / 10)), 'about ten evaluations, as blockgrad');
      else note('eval_steps: blockgrad evaluates about ten times per run: set a tenth of the run\'s steps');
    }
  }
  return `${lines.join('\n')}\n`;
}
