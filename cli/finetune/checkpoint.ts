/**
 * Checkpoints of a fine-tuning run. Each is a model directory that `fromPretrained` (and
 * transformers) loads as it is, plus what a resume needs to continue bit for bit:
 *
 *   checkpoint-000040/
 *     config.json, generation_config.json, model.safetensors   the model (LoRA: the base weights)
 *     tokenizer.json, tokenizer_config.json, ...               copied from the model directory
 *     adapter_model.safetensors, adapter_config.json           LoRA's adapters, in PEFT's layout
 *     optimizer.safetensors                                    every tensor of the optimizer state
 *     trainer_state.json                                       step, configuration, data fingerprint
 *                                                              and order, RNG, the optimizer's and
 *                                                              the schedule's state (tensors by name)
 *     metrics.jsonl                                            the run's metrics up to this step
 *
 * A checkpoint is written under a temporary name and renamed into place when complete, so an
 * interruption (or a failure) never leaves a half-written `checkpoint-*` behind.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  LlamaForCausalLM,
  Tensor,
  loadSafetensorsFile,
  noGrad,
  saveSafetensorsFile,
  stateFromJSON,
  stateToJSON,
  type GeneratorState,
  type JSONValue,
  type LoraHandle,
} from '../../src';
import { UsageError, type FinetuneConfig, type RunSettings } from './options';

export const STATE_FILE = 'trainer_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const ADAPTER_FILE = 'adapter_model.safetensors';
const ADAPTER_CONFIG_FILE = 'adapter_config.json';
/** PEFT names an adapter weight by the wrapped model's path: base_model.model.<the model's own name>. */
const PEFT_PREFIX = 'base_model.model.';
export const METRICS_FILE = 'metrics.jsonl';
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'tokenizer.model'];
const FORMAT = 'blockgrad-finetune';
const VERSION = 1;

/** trainer_state.json. */
export interface TrainerState {
  format: typeof FORMAT;
  version: number;
  /** Optimizer steps done. */
  step: number;
  totalSteps: number;
  config: FinetuneConfig;
  /** The run's settings, the defaults of a resumed run (its own flags win). */
  settings: Omit<RunSettings, 'resume' | 'printLlamaFactory'>;
  maxLength: number;
  /** sha256 of the data files (data.ts). */
  dataFingerprint: string;
  /** Where the data order stands: the next micro-batch, as an epoch of the seeded shuffle and a batch in it. */
  dataOrder: { seed: number; microBatch: number; epoch: number; batchInEpoch: number };
  /** The default generator's state (nothing in a Llama step draws from it today; saved so that nothing can drift). */
  generator: GeneratorState;
  /** The method's state dict, tensors replaced by `{ "$safetensors": name }` in optimizer.safetensors. */
  method: JSONValue;
  /** 'byte' or 'files' (the tokenizer files are in the checkpoint). */
  tokenizer: 'byte' | 'files';
}

export function checkpointName(step: number): string {
  return `checkpoint-${String(step).padStart(6, '0')}`;
}

/** Replaces every Tensor in a state dict by a reference into `tensors`. */
function splitTensors(value: unknown, tensors: Record<string, Tensor>): unknown {
  if (value instanceof Tensor) {
    const name = `t${Object.keys(tensors).length}`;
    tensors[name] = value;
    return { $safetensors: name };
  }
  if (Array.isArray(value)) return value.map((v) => splitTensors(v, tensors));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: splitTensors(v, tensors), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

/** The inverse of splitTensors. */
function joinTensors(value: unknown, tensors: Record<string, Tensor>): unknown {
  if (Array.isArray(value)) return value.map((v) => joinTensors(v, tensors));
  if (value !== null && typeof value === 'object') {
    const ref = (value as { $safetensors?: unknown }).$safetensors;
    if (typeof ref === 'string' && Object.keys(value).length === 1) {
      if (!Object.hasOwn(tensors, ref)) throw new UsageError(`the checkpoint's ${OPTIMIZER_FILE} has no tensor '${ref}' (the checkpoint is damaged)`);
      return tensors[ref];
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: joinTensors(v, tensors), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

export interface CheckpointContents {
  state: Omit<TrainerState, 'format' | 'version' | 'method' | 'tokenizer'>;
  model: LlamaForCausalLM;
  lora: LoraHandle | null;
  /** The method's stateDict (tensors included). */
  methodState: unknown;
  /** The model directory whose tokenizer files to copy, or 'byte'. */
  tokenizerSource: 'byte' | string;
  /** The metrics lines up to this step. */
  metrics: string;
}

/** Writes `<out>/checkpoint-<step>` atomically and returns its path. */
export async function saveCheckpoint(out: string, c: CheckpointContents): Promise<string> {
  const name = checkpointName(c.state.step);
  const final = join(out, name);
  const partial = join(out, `.${name}.partial`);
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });

  const adapters = c.lora ? c.lora.namedParameters() : [];
  await c.model.savePretrained(partial, { exclude: adapters.map(([name]) => name) });
  if (c.lora) {
    const byPeftName = Object.fromEntries(adapters.map(([name, p]) => [PEFT_PREFIX + name, p]));
    await saveSafetensorsFile(join(partial, ADAPTER_FILE), byPeftName, { format: 'pt' });
    const { loraR: r, loraAlpha: alpha, loraTargets } = c.state.config;
    const adapterConfig = { peft_type: 'LORA', task_type: 'CAUSAL_LM', r, lora_alpha: alpha, lora_dropout: 0, bias: 'none', target_modules: loraTargets, base_model_name_or_path: null };
    writeFileSync(join(partial, ADAPTER_CONFIG_FILE), `${JSON.stringify(adapterConfig, null, 2)}\n`);
  }
  if (c.tokenizerSource !== 'byte') {
    for (const file of TOKENIZER_FILES) if (existsSync(join(c.tokenizerSource, file))) copyFileSync(join(c.tokenizerSource, file), join(partial, file));
  }
  const tensors: Record<string, Tensor> = {};
  const method = stateToJSON(splitTensors(c.methodState, tensors));
  await saveSafetensorsFile(join(partial, OPTIMIZER_FILE), tensors);
  const state: TrainerState = { format: FORMAT, version: VERSION, ...c.state, method, tokenizer: c.tokenizerSource === 'byte' ? 'byte' : 'files' };
  writeFileSync(join(partial, STATE_FILE), `${JSON.stringify(state, null, 1)}\n`);
  writeFileSync(join(partial, METRICS_FILE), c.metrics);

  // into place: an older checkpoint of the same step (a rerun) is replaced only once this one is whole
  const old = join(out, `.${name}.old`);
  if (existsSync(final)) renameSync(final, old);
  renameSync(partial, final);
  rmSync(old, { recursive: true, force: true });
  return final;
}

/** `dir` itself when it is a checkpoint, else its newest `checkpoint-*`. */
export function findCheckpoint(dir: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--resume: no such directory '${dir}'`);
  if (existsSync(join(dir, STATE_FILE))) return dir;
  const step = (f: string) => Number(f.slice('checkpoint-'.length));
  const found = readdirSync(dir)
    .filter((f) => /^checkpoint-\d+$/.test(f) && existsSync(join(dir, f, STATE_FILE)))
    .sort((a, b) => step(a) - step(b)); // by step: past step 999,999 the names grow a digit
  if (found.length === 0) throw new UsageError(`--resume: '${dir}' is neither a checkpoint (no ${STATE_FILE}) nor a run directory with checkpoint-* folders`);
  return join(dir, found[found.length - 1]);
}

/** trainer_state.json of a checkpoint, checked for its format. */
export function readTrainerState(dir: string): TrainerState {
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as TrainerState;
  } catch (err) {
    throw new UsageError(`--resume: cannot read ${join(dir, STATE_FILE)}: ${(err as Error).message}`);
  }
  if (state?.format !== FORMAT) throw new UsageError(`--resume: ${join(dir, STATE_FILE)} is not a blockgrad finetune checkpoint`);
  if (state.version !== VERSION) throw new UsageError(`--resume: ${basename(dir)} has checkpoint format ${state.version}; this blockgrad reads format ${VERSION}`);
  return state;
}

/** The method's state dict of a checkpoint, tensors loaded; `dispose` frees them once the optimizer has copied them. */
export async function readMethodState(dir: string, state: TrainerState): Promise<{ value: unknown; dispose(): void }> {
  const tensors = await loadSafetensorsFile(join(dir, OPTIMIZER_FILE));
  const value = joinTensors(stateFromJSON(state.method), tensors);
  return { value, dispose: () => Object.values(tensors).forEach((t) => t.dispose()) };
}

/** Copies the checkpoint's adapters into the LoRA layers just applied to its base model. */
export async function loadAdapters(dir: string, lora: LoraHandle): Promise<void> {
  const saved = await loadSafetensorsFile(join(dir, ADAPTER_FILE));
  try {
    for (const [name, p] of lora.namedParameters()) {
      const t = saved[PEFT_PREFIX + name];
      if (!t || t.shape.join() !== p.shape.join()) throw new UsageError(`--resume: ${ADAPTER_FILE} has no adapter '${name}' of shape [${p.shape}] (was the run made with other --lora-* options?)`);
      noGrad(() => p.copy_(t)); // an in-place write into a leaf that requires grad: outside the graph
    }
  } finally {
    Object.values(saved).forEach((t) => t.dispose());
  }
}

/** The run's metrics up to the checkpoint (metrics.jsonl in the checkpoint). */
export function readCheckpointMetrics(dir: string): string {
  const file = join(dir, METRICS_FILE);
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}
