/**
 * Writing safetensors: every argument validated before any bytes are produced, then the header
 * and each tensor's bytes in the target dtype. Saving to a path goes through file.ts.
 * The format and its dtypes: format.ts.
 */
import { fmtShape } from '../../errors';
import { encodeBFloat16 } from '../../tensor/bfloat16';
import type { DType } from '../../tensor/dtype';
import { decodeFloat16, encodeFloat16, float16ArrayToBits } from '../../tensor/float16';
import { Tensor } from '../../tensor/tensor';
import { hasOwn, isPlainObject } from '../../util/objects';
import type { Float16Array } from '@petamoriken/float16';
import { writeFileAtomically } from './file';
import { ITEM_SIZE, SafetensorsError, checkHeaderSize, checkSupported, quote, setOwn, swapToHostOrder, type SafetensorsDType, type SaveSafetensorsOptions } from './format';
import { describe } from '../../util/describe';

const DEFAULT_TARGET: Record<DType, SafetensorsDType> = { float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16', int32: 'I32' };

function checkWellFormed(op: string, what: string, s: string): void {
  if (/\p{Cs}/u.test(s)) throw new SafetensorsError(op, `${what} ${quote(s)} contains a lone UTF-16 surrogate, which UTF-8 JSON cannot hold`);
}

interface Planned {
  name: string;
  tensor: Tensor;
  target: SafetensorsDType;
  shape: number[];
  nbytes: number;
}

/** Compares two strings by their UTF-8 bytes (= code point order), like the reference's sort. */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const cx = x.value.codePointAt(0) as number;
    const cy = y.value.codePointAt(0) as number;
    if (cx !== cy) return cx - cy;
  }
}

/** The tensor's values in the target dtype's little-endian bytes. */
function encodeTensor(p: Planned): Uint8Array {
  const t = p.tensor;
  const values = t.toTypedArray(); // row-major, whatever the strides
  let out: Float64Array | Float32Array | Int32Array | Uint16Array;
  // float16 sources as their bits (the package's Float16Array is slow per element).
  const f16 = t.dtype === 'float16' ? float16ArrayToBits(values as Float16Array) : null;
  const numbers: ArrayLike<number> = f16 ? decodeFloat16(f16) : (values as Float64Array | Float32Array | Int32Array);
  switch (p.target) {
    case 'F64':
      out = values instanceof Float64Array ? values : Float64Array.from(numbers);
      break;
    case 'F32':
      out = values instanceof Float32Array ? values : Float32Array.from(numbers); // rounds to nearest even
      break;
    case 'I32':
      out = values as Int32Array;
      break;
    case 'F16':
      out = f16 ?? encodeFloat16(numbers);
      break;
    case 'BF16':
      out = encodeBFloat16(numbers);
      break;
  }
  // the values were encoded into a fresh array above, never the tensor's own storage: swapping in place is safe
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  swapToHostOrder(bytes, ITEM_SIZE[p.target]);
  return bytes;
}

/**
 * Serialises tensors (and optional string metadata) to safetensors bytes.
 *
 * Each tensor is stored in its own dtype (float64 F64, float32 F32, float16 F16 bit for bit,
 * int32 I32) unless `options.dtypes[name]` says otherwise: a float tensor may become F64, F32,
 * F16 or BF16 (rounded to nearest, ties to even), an int32 tensor only I32. Non-contiguous
 * tensors (views) are written in row-major order. Layout: the header JSON lists `__metadata__`
 * first (omitted when empty), then the tensors in data order, which is by item size (largest
 * first, so every tensor is aligned to its item size) then by name; it is padded with spaces to
 * a multiple of 8 bytes, as the reference implementation does.
 * Everything is validated before any bytes are produced; errors are {@link SafetensorsError}s.
 */
export function saveSafetensors(
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
  options: SaveSafetensorsOptions = {},
): Uint8Array {
  const plan = planFile('saveSafetensors', tensors, metadata, options);
  const out = new Uint8Array(plan.head.length + plan.dataBytes);
  let pos = 0;
  for (const chunk of chunks(plan)) {
    out.set(chunk, pos);
    pos += chunk.length;
  }
  return out;
}

/** A file laid out but not yet encoded: its head (length, header JSON, padding) and the tensors in data order. */
interface Plan {
  head: Uint8Array;
  planned: Planned[];
  dataBytes: number;
}

/** Validates everything and lays the file out (see saveSafetensors); encodes nothing yet. */
function planFile(
  op: string,
  tensors: Record<string, Tensor>,
  metadata: Record<string, string> | undefined,
  options: SaveSafetensorsOptions | undefined,
): Plan {
  if (!isPlainObject(tensors)) throw new SafetensorsError(op, `tensors must be an object mapping names to tensors, got ${describe(tensors)}`);
  if (metadata !== undefined && metadata !== null && !isPlainObject(metadata)) {
    throw new SafetensorsError(op, `metadata must be an object mapping strings to strings, got ${describe(metadata)}`);
  }
  const meta: [string, string][] = [];
  for (const [key, value] of Object.entries(metadata ?? {})) {
    if (typeof value !== 'string') {
      throw new SafetensorsError(op, `metadata value for key ${quote(key)} must be a string, got ${describe(value)} (use String() or JSON.stringify() first)`);
    }
    checkWellFormed(op, 'metadata key', key);
    checkWellFormed(op, `metadata value for key ${quote(key)}`, value);
    meta.push([key, value]);
  }
  const opts = options ?? {};
  if (!isPlainObject(opts)) throw new SafetensorsError(op, `options must be an object, got ${describe(opts)}`);
  const dtypes = opts.dtypes ?? {};
  if (!isPlainObject(dtypes)) throw new SafetensorsError(op, `options.dtypes must be an object mapping tensor names to dtypes, got ${describe(dtypes)}`);
  for (const [name, target] of Object.entries(dtypes)) {
    if (!hasOwn(tensors, name)) {
      throw new SafetensorsError(op, `options.dtypes names ${quote(name)}, which is not one of the tensors being saved`);
    }
    checkSupported(op, target, () => `options.dtypes[${quote(name)}] is ${describe(target)}`);
  }

  const planned: Planned[] = [];
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new SafetensorsError(op, 'a tensor cannot be named "__metadata__": the format reserves that key for metadata');
    checkWellFormed(op, 'tensor name', name);
    if (!(tensor instanceof Tensor)) throw new SafetensorsError(op, `tensor ${quote(name)}: expected a Tensor, got ${describe(tensor)}`);
    if (tensor.isDisposed || tensor.buffer.released) throw new SafetensorsError(op, `tensor ${quote(name)} (shape ${fmtShape(tensor.shape)}) was disposed`);
    const target = hasOwn(dtypes, name) ? (dtypes[name] as SafetensorsDType) : DEFAULT_TARGET[tensor.dtype];
    if ((tensor.dtype === 'int32') !== (target === 'I32')) {
      throw new SafetensorsError(
        op,
        tensor.dtype === 'int32'
          ? `tensor ${quote(name)} is int32 and can only be saved as I32, not ${target}; cast it first (.to('float32'))`
          : `tensor ${quote(name)} is ${tensor.dtype} and cannot be saved as I32 (that would truncate); cast it first (.to('int32'))`,
      );
    }
    const shape = [...tensor.shape];
    planned.push({ name, tensor, target, shape, nbytes: tensor.numel * ITEM_SIZE[target] });
  }
  planned.sort((a, b) => ITEM_SIZE[b.target] - ITEM_SIZE[a.target] || compareCodePoints(a.name, b.name));

  // The header: __metadata__ first, then each tensor in data order.
  const header: Record<string, unknown> = {};
  if (meta.length > 0) {
    const m: Record<string, string> = {};
    for (const [k, v] of meta) setOwn(m, k, v);
    setOwn(header, '__metadata__', m);
  }
  let offset = 0;
  for (const p of planned) {
    setOwn(header, p.name, { dtype: p.target, shape: p.shape, data_offsets: [offset, offset + p.nbytes] });
    offset += p.nbytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  checkHeaderSize(op, padded, 'the header would be', 'that readers enforce');

  // the 8-byte little-endian header length (a u64; the high word is 0 under the limit), the JSON, space padding
  const head = new Uint8Array(8 + padded);
  new DataView(head.buffer).setUint32(0, padded, true);
  head.set(json, 8);
  head.fill(0x20, 8 + json.length);
  return { head, planned, dataBytes: offset };
}

/** The file's bytes: its head, then each tensor's values in data order. */
function* chunks(plan: Plan): Generator<Uint8Array> {
  yield plan.head;
  for (const p of plan.planned) yield encodeTensor(p);
}

/**
 * Saves tensors to a safetensors file (Node.js only). Everything is validated and laid out
 * first; then the file is streamed to a temporary file beside `path`, one tensor at a time (so
 * memory holds one tensor's bytes, never the file's), flushed, and renamed over `path`, so a
 * failure at any point leaves no partial file (and an existing file at `path` unchanged).
 * Temporary files that earlier saves to `path` left when their process was killed are removed
 * first. Errors from the file system (missing folder, permissions) are Node's own.
 */
export async function saveSafetensorsFile(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
  options?: SaveSafetensorsOptions,
): Promise<void> {
  await streamSafetensorsFile('saveSafetensorsFile', path, tensors, metadata, options);
}

/** saveSafetensorsFile under another op name (savePretrained writes its shards with it). */
export async function streamSafetensorsFile(
  op: string,
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
  options?: SaveSafetensorsOptions,
): Promise<void> {
  if (typeof path !== 'string' || path === '') throw new SafetensorsError(op, `expected a file path string, got ${describe(path)}`);
  const plan = planFile(op, tensors, metadata, options);
  await writeFileAtomically(op, path, async (write) => {
    for (const chunk of chunks(plan)) await write(chunk);
  });
}
