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
import { StateDictError, stateDictEntryProblem, stateDictKeys } from '../nn/module';
import { itemSize, type DType } from '../tensor/dtype';
import { Tensor } from '../tensor/tensor';
import { isPlainObject } from '../util/objects';
import { DTYPE_OF, SafetensorsError, setOwn, type SafetensorsDType } from './safetensors/format';
import { nodeFs, writeFileAtomically } from './safetensors/file';
import { hasFile, join, readJsonFile } from './directory';
import { openSafetensors, type SafetensorsReader } from './safetensors';
import { streamSafetensorsFile } from './safetensors/write';

export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
export const CONFIG_FILE = 'config.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';
/** Hugging Face's default max_shard_size ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5 * 10 ** 9;

/**
 * The dtype to build a model in from config.json's torch_dtype (undefined when it has none;
 * blockgrad's dtype names are torch's); a torch_dtype blockgrad does not load is a ValueError
 * naming it.
 */
export function dtypeFromTorch(op: string, dir: string, json: Record<string, unknown>): DType | undefined {
  const fromTorch: Record<string, DType> = { float64: 'float64', float32: 'float32', float16: 'float16', bfloat16: 'bfloat16' };
  const torchDtype = json.torch_dtype;
  if (torchDtype === undefined || torchDtype === null) return undefined;
  if (typeof torchDtype !== 'string' || !Object.prototype.hasOwnProperty.call(fromTorch, torchDtype)) {
    throw new ValueError(op, `${dir}/${CONFIG_FILE}: torch_dtype ${JSON.stringify(torchDtype)} is not one blockgrad loads (float64, float32, float16, bfloat16)`);
  }
  return fromTorch[torchDtype];
}

/** The weights of a model directory, opened: headers read, each tensor loaded on request. */
export interface PretrainedWeights {
  /** Every tensor name, in index (or file) order. */
  readonly names: readonly string[];
  /** A tensor's safetensors dtype and shape, from its file's header (nothing is read). */
  info(name: string): { dtype: SafetensorsDType; shape: number[] };
  /** Reads one tensor from its shard. */
  load(name: string): Tensor;
  /** Closes every shard. */
  close(): void;
}

/**
 * Opens the directory's weights: the shards the index lists (each opened once, its header read
 * and checked against the index) or model.safetensors. Nothing but the headers is read. Throws a
 * SafetensorsError naming the file for a missing shard, a tensor missing from its shard, or a shard
 * name that leaves the directory; on any error the shards opened so far are closed.
 */
export function openPretrainedWeights(op: string, dir: string): PretrainedWeights {
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
  const readers: SafetensorsReader[] = [];
  const shardOf = new Map<string, SafetensorsReader>();
  try {
    for (const [file, names] of shards) {
      if (!hasFile(op, dir, file)) throw new SafetensorsError(op, `${join(dir, file)}, a shard that ${WEIGHTS_INDEX_FILE} lists, does not exist`);
      const reader = openSafetensors(join(dir, file));
      readers.push(reader);
      const wanted = names.length > 0 ? names : reader.names;
      const missing = wanted.filter((n) => !reader.names.includes(n));
      if (missing.length > 0) {
        throw new SafetensorsError(op, `${join(dir, file)} lacks ${missing.map((n) => JSON.stringify(n)).join(', ')}, which ${WEIGHTS_INDEX_FILE} puts there`);
      }
      for (const name of wanted) shardOf.set(name, reader);
    }
  } catch (err) {
    for (const r of readers) r.close();
    throw err;
  }
  const reader = (name: string) => shardOf.get(name) ?? (readers[0] as SafetensorsReader); // an unknown name: the reader's own error
  return {
    names: [...shardOf.keys()],
    info: (name) => reader(name).info(name),
    load: (name) => reader(name).load(name),
    close: () => readers.forEach((r) => r.close()),
  };
}

export interface WritePretrainedOptions {
  /** Shards hold at most this many bytes of tensors (default HF's 5 GB); a larger tensor gets a shard of its own. */
  maxShardBytes?: number;
  /**
   * State-dict entries to leave out, e.g. LoRA adapters kept in a file of their own, so that the
   * directory holds the base model that fromPretrained and transformers expect.
   */
  exclude?: readonly string[];
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
    await streamSafetensorsFile(op, join(dir, WEIGHTS_FILE), shards[0], meta);
    fs.rmSync(join(dir, WEIGHTS_INDEX_FILE), { force: true });
    return;
  }
  const pad = (i: number) => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards.length; i++) {
    const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    await streamSafetensorsFile(op, join(dir, file), shards[i], meta);
    for (const name of Object.keys(shards[i])) setOwn(weightMap, name, file);
  }
  await writeFileAtomically(op, join(dir, WEIGHTS_INDEX_FILE), json({ metadata: { total_size: totalBytes }, weight_map: weightMap }));
  fs.rmSync(join(dir, WEIGHTS_FILE), { force: true });
}

/** What fromPretrained / savePretrained need of a model (a Module has all four). */
export interface StateDictModel {
  stateDict(): Record<string, Tensor>;
  loadStateDict(stateDict: Record<string, Tensor>, options?: { strict?: boolean }): unknown;
  parameters(): Tensor[];
  namedBuffers(): [string, Tensor][];
}

function checkDir(op: string, dir: unknown): asserts dir is string {
  if (typeof dir !== 'string' || dir === '') throw new ValueError(op, `expected a directory path, got ${JSON.stringify(dir)}`);
}

/**
 * Loads the directory's weights into `model` (freshly built from its config.json) strictly,
 * one tensor at a time: every name, shape and kind is checked against the model from the
 * headers first (a StateDictError listing every problem, as loadStateDict gives), then each
 * tensor is read, copied into the model (converted to its dtype) and freed before the next, so
 * that memory peaks at the model plus its largest tensor. A failed load frees the model's own
 * storage too, leaving nothing allocated.
 */
export function loadPretrainedInto<M extends StateDictModel>(op: string, dir: string, build: () => M): M {
  checkDir(op, dir);
  const model = build();
  let weights: PretrainedWeights | null = null;
  try {
    weights = openPretrainedWeights(op, dir);
    checkAgainstModel(weights, model);
    for (const name of weights.names) {
      const t = weights.load(name);
      try {
        model.loadStateDict({ [name]: t }, { strict: false });
      } finally {
        t.dispose();
      }
    }
    return model;
  } catch (err) {
    // the model's own tensors: stateDict() would hand out new tensors on the same storage
    for (const t of model.parameters()) t.dispose();
    for (const [, t] of model.namedBuffers()) t.dispose();
    throw err;
  } finally {
    weights?.close();
  }
}

/**
 * What a strict loadStateDict would refuse, found from the headers (with loadStateDict's own
 * checks and messages): names the model lacks, model entries no file provides, and shapes or
 * kinds (integer against floating) that differ.
 */
function checkAgainstModel(weights: PretrainedWeights, model: StateDictModel): void {
  const own = new Map(Object.entries(model.stateDict()));
  const { missingKeys, unexpectedKeys } = stateDictKeys(own, weights.names);
  const mismatches: string[] = [];
  for (const name of weights.names) {
    const target = own.get(name);
    const { dtype, shape } = weights.info(name);
    const problem = target ? stateDictEntryProblem(name, shape, DTYPE_OF[dtype], target) : null;
    if (problem !== null) mismatches.push(problem);
  }
  for (const t of own.values()) t.dispose(); // aliases: the model's storage stays
  if (missingKeys.length > 0 || unexpectedKeys.length > 0 || mismatches.length > 0) throw new StateDictError(missingKeys, unexpectedKeys, mismatches);
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
  generationConfig: Record<string, unknown> = { _from_model_config: true },
): Promise<void> {
  checkDir(op, dir);
  const weights: Record<string, Tensor> = { ...model.stateDict() };
  for (const name of [...omit, ...(options.exclude ?? [])]) delete weights[name];
  await writePretrained(op, dir, { config, generationConfig, weights }, options);
}

