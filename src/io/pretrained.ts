/**
 * Hugging Face model directories: `config.json`, the weights as one `model.safetensors` or as
 * shards `model-00001-of-00003.safetensors` ... listed by `model.safetensors.index.json` (its
 * `weight_map` names each tensor's shard, its `metadata.total_size` the bytes of all tensors),
 * and `generation_config.json`. This file reads and writes the directory; the models turn
 * config.json into their config (LlamaForCausalLM.fromPretrained / savePretrained).
 *
 * Every file is written atomically (a temporary file renamed over the target), and a save
 * removes the weights of the other layout (a stale index beside a new single file, or the
 * reverse), so that a directory never holds two disagreeing sets of weights.
 */
import { ValueError } from '../errors';
import { itemSize, type DType } from '../tensor/dtype';
import { Tensor } from '../tensor/tensor';
import { isPlainObject } from '../util/objects';
import { SafetensorsError, setOwn } from './safetensors/format';
import { nodeFs, writeFileAtomically } from './safetensors/file';
import { hasFile, join, readJsonFile } from './directory';
import { openSafetensors, saveSafetensors } from './safetensors';

export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
export const CONFIG_FILE = 'config.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';
/** Hugging Face's default max_shard_size ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5 * 10 ** 9;

/**
 * The dtype to build a model in from config.json's torch_dtype (undefined when it has none).
 * bfloat16 checkpoints load as float32, since blockgrad has no bfloat16 dtype yet; a torch_dtype
 * blockgrad does not load is a ValueError naming it.
 */
export function dtypeFromTorch(op: string, dir: string, json: Record<string, unknown>): DType | undefined {
  const fromTorch: Record<string, DType> = { float64: 'float64', float32: 'float32', float16: 'float16', bfloat16: 'float32' };
  const torchDtype = json.torch_dtype;
  if (torchDtype === undefined || torchDtype === null) return undefined;
  if (typeof torchDtype !== 'string' || !Object.prototype.hasOwnProperty.call(fromTorch, torchDtype)) {
    throw new ValueError(op, `${dir}/${CONFIG_FILE}: torch_dtype ${JSON.stringify(torchDtype)} is not one blockgrad loads (float64, float32, float16, bfloat16)`);
  }
  return fromTorch[torchDtype];
}

/**
 * Every tensor of the directory's weights, by name: from the shards the index lists (each shard
 * opened once, its tensors read one at a time) or from model.safetensors. Throws a
 * SafetensorsError naming the file for a missing shard, a tensor missing from its shard, or a
 * shard name that leaves the directory; on any error the tensors read so far are disposed.
 */
export function readPretrainedWeights(op: string, dir: string): Record<string, Tensor> {
  const shards = new Map<string, string[]>(); // shard file -> tensor names, in index order
  if (hasFile(op, dir, WEIGHTS_INDEX_FILE)) {
    const index = readJsonFile(op, dir, WEIGHTS_INDEX_FILE);
    const map = index.weight_map;
    if (!isPlainObject(map)) throw new SafetensorsError(op, `${join(dir, WEIGHTS_INDEX_FILE)}: weight_map must be an object of tensor name -> shard file`);
    for (const [name, file] of Object.entries(map)) {
      if (typeof file !== 'string' || file === '' || /[\\/]/.test(file) || file === '.' || file === '..') {
        throw new SafetensorsError(op, `${join(dir, WEIGHTS_INDEX_FILE)}: the shard of ${JSON.stringify(name)} must be a file name in the directory, got ${JSON.stringify(file)}`);
      }
      const names = shards.get(file);
      if (names) names.push(name);
      else shards.set(file, [name]);
    }
  } else if (hasFile(op, dir, WEIGHTS_FILE)) {
    shards.set(WEIGHTS_FILE, []); // every tensor of the file
  } else {
    throw new SafetensorsError(op, `${dir} has neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX_FILE}: no weights to load`);
  }
  const tensors: Record<string, Tensor> = {};
  try {
    for (const [file, names] of shards) {
      if (!hasFile(op, dir, file)) throw new SafetensorsError(op, `${join(dir, file)}, a shard that ${WEIGHTS_INDEX_FILE} lists, does not exist`);
      const reader = openSafetensors(join(dir, file));
      try {
        const wanted = names.length > 0 ? names : reader.names;
        const missing = wanted.filter((n) => !reader.names.includes(n));
        if (missing.length > 0) {
          throw new SafetensorsError(op, `${join(dir, file)} lacks ${missing.map((n) => JSON.stringify(n)).join(', ')}, which ${WEIGHTS_INDEX_FILE} puts there`);
        }
        for (const name of wanted) setOwn(tensors, name, reader.load(name));
      } finally {
        reader.close();
      }
    }
  } catch (err) {
    for (const t of Object.values(tensors)) t.dispose();
    throw err;
  }
  return tensors;
}

export interface WritePretrainedOptions {
  /** Shards hold at most this many bytes of tensors (default HF's 5 GB); a larger tensor gets a shard of its own. */
  maxShardBytes?: number;
}

/**
 * Writes config.json, generation_config.json and the weights: one model.safetensors when they
 * fit in one shard, else shards and the index. Each safetensors file carries the metadata
 * `{"format": "pt"}` that transformers checks for.
 */
export async function writePretrained(
  op: string,
  dir: string,
  files: { config: Record<string, unknown>; generationConfig: Record<string, unknown>; weights: Record<string, Tensor> },
  options: WritePretrainedOptions = {},
): Promise<void> {
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(Number.isFinite(maxShardBytes) && maxShardBytes > 0)) {
    throw new ValueError(op, `maxShardBytes must be a positive number of bytes, got ${String(maxShardBytes)}`);
  }
  // cut the tensors into shards first, in state-dict order, so a bad option fails before any write
  const shards: Record<string, Tensor>[] = [];
  let current: Record<string, Tensor> = {};
  let currentBytes = 0;
  let totalBytes = 0;
  for (const [name, t] of Object.entries(files.weights)) {
    const bytes = t.numel * itemSize(t.dtype);
    if (currentBytes > 0 && currentBytes + bytes > maxShardBytes) {
      shards.push(current);
      current = {};
      currentBytes = 0;
    }
    setOwn(current, name, t);
    currentBytes += bytes;
    totalBytes += bytes;
  }
  shards.push(current);

  const fs = nodeFs(op);
  fs.mkdirSync(dir, { recursive: true });
  const json = (value: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
  await writeFileAtomically(op, join(dir, CONFIG_FILE), json(files.config));
  await writeFileAtomically(op, join(dir, GENERATION_CONFIG_FILE), json(files.generationConfig));
  const meta = { format: 'pt' };
  if (shards.length === 1) {
    await writeFileAtomically(op, join(dir, WEIGHTS_FILE), saveSafetensors(shards[0], meta));
    fs.rmSync(join(dir, WEIGHTS_INDEX_FILE), { force: true });
    return;
  }
  const pad = (i: number) => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards.length; i++) {
    const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    await writeFileAtomically(op, join(dir, file), saveSafetensors(shards[i], meta));
    for (const name of Object.keys(shards[i])) setOwn(weightMap, name, file);
  }
  await writeFileAtomically(op, join(dir, WEIGHTS_INDEX_FILE), json({ metadata: { total_size: totalBytes }, weight_map: weightMap }));
  fs.rmSync(join(dir, WEIGHTS_FILE), { force: true });
}

/** What fromPretrained / savePretrained need of a model (a Module has all four). */
export interface StateDictModel {
  stateDict(): Record<string, Tensor>;
  loadStateDict(stateDict: Record<string, Tensor>): unknown;
  parameters(): Tensor[];
  namedBuffers(): [string, Tensor][];
}

function checkDir(op: string, dir: unknown): asserts dir is string {
  if (typeof dir !== 'string' || dir === '') throw new ValueError(op, `expected a directory path, got ${JSON.stringify(dir)}`);
}

/**
 * Loads the directory's weights into `model` (freshly built from its config.json) strictly,
 * converting each tensor to the model's dtype; the tensors read are freed afterwards, and so is
 * the model's own storage when the weights do not fit it (a failed load leaves nothing allocated).
 */
export function loadPretrainedInto<M extends StateDictModel>(op: string, dir: string, build: () => M): M {
  checkDir(op, dir);
  const model = build();
  let weights: Record<string, Tensor> = {};
  try {
    weights = readPretrainedWeights(op, dir);
    model.loadStateDict(weights);
    return model;
  } catch (err) {
    // the model's own tensors: stateDict() would hand out new tensors on the same storage
    for (const t of model.parameters()) t.dispose();
    for (const [, t] of model.namedBuffers()) t.dispose();
    throw err;
  } finally {
    for (const t of Object.values(weights)) t.dispose();
  }
}

/**
 * Writes `model` as a model directory with this config.json; `omit` names state-dict entries
 * transformers leaves out (a tied lm_head.weight).
 */
export async function savePretrainedModel(
  op: string,
  dir: string,
  model: StateDictModel,
  config: Record<string, unknown>,
  options: WritePretrainedOptions = {},
  omit: readonly string[] = [],
): Promise<void> {
  checkDir(op, dir);
  const weights: Record<string, Tensor> = { ...model.stateDict() };
  for (const name of omit) delete weights[name];
  await writePretrained(op, dir, { config, generationConfig: { _from_model_config: true }, weights }, options);
}

