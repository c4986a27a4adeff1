/**
 * The safetensors format (https://huggingface.co/docs/safetensors), the one Hugging Face
 * checkpoints use: its layout, the dtypes blockgrad reads and writes, its error type, and the
 * helpers that reading (read.ts) and writing (write.ts) share.
 *
 * ## The layout
 *
 * ```
 *   8 bytes   N, a little-endian unsigned 64-bit integer: the header's length in bytes
 *   N bytes   the header: UTF-8 JSON, an object
 *               { "name": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] },
 *                 ...,
 *                 "__metadata__": { "key": "value" } }          (optional, string -> string)
 *             possibly padded at the end with spaces (0x20)
 *   rest      the data section: each tensor's bytes, little-endian, row-major (C order), at
 *             [begin, end) counted from the start of the data section
 * ```
 *
 * The tensors must cover the data section exactly: no overlaps, no holes, nothing after the last
 * one. The header is at most 100,000,000 bytes (the reference implementation's limit).
 *
 * ## dtypes
 *
 * | safetensors | blockgrad | notes |
 * | --- | --- | --- |
 * | F64 | float64 | |
 * | F32 | float32 | |
 * | F16 | float16 | raw bits kept: NaN payloads, -0, subnormals survive unchanged |
 * | I32 | int32 | |
 * | BF16 | float32 (load) | exact: bfloat16 is the top half of a float32 (src/tensor/bfloat16.ts) |
 *
 * Saving uses each tensor's own dtype unless `options.dtypes` names another one. A float tensor
 * may be saved as F64, F32, F16 or BF16 (values are rounded to nearest, ties to even, straight
 * from the stored value, so a float64 source is never rounded twice); an int32 tensor only as
 * I32, and a float tensor never as I32 (cast it first, so truncation is never silent).
 *
 * Other safetensors dtypes (BOOL, U8, I8, I16, U16, I64, U64, F8_*) are rejected on load with an
 * error that names the supported ones.
 *
 * ## Errors
 *
 * Every malformed file raises a {@link SafetensorsError} (a {@link ValueError}) whose message
 * names the problem and, where there is one, the tensor. Everything is validated before any
 * tensor is allocated, so a bad file never yields a partial result.
 */
import { ValueError } from '../../errors';
import type { DType } from '../../tensor/dtype';
import type { Tensor } from '../../tensor/tensor';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I32';

/** A parsed file: its tensors (in header order) and its `__metadata__` ({} when absent). */
export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

export interface SaveSafetensorsOptions {
  /** Per tensor name, the dtype to store it as (default: the tensor's own dtype). */
  dtypes?: Record<string, SafetensorsDType>;
}

/** A malformed safetensors file, or arguments that cannot be saved as one. */
export class SafetensorsError extends ValueError {}

/** The header size limit of the reference implementation (100 MB). */
export const SAFETENSORS_MAX_HEADER_SIZE = 100_000_000;

const SUPPORTED: readonly SafetensorsDType[] = ['F64', 'F32', 'F16', 'BF16', 'I32'];
const SUPPORTED_TEXT = 'F64, F32, F16, BF16 or I32';
export const ITEM_SIZE: Record<SafetensorsDType, number> = { F64: 8, F32: 4, I32: 4, F16: 2, BF16: 2 };
/** The dtype each file dtype loads as. */
export const DTYPE_OF: Record<SafetensorsDType, DType> = { F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I32: 'int32' };
/** Dtypes the spec defines that blockgrad does not read (for a clearer message). */
export const KNOWN_UNSUPPORTED = new Set(['BOOL', 'U8', 'I8', 'I16', 'U16', 'U32', 'I64', 'U64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isSupported(x: unknown): x is SafetensorsDType {
  return typeof x === 'string' && (SUPPORTED as readonly string[]).includes(x);
}

/**
 * Throws unless `dtype` is one blockgrad reads and writes. `problem` says what is wrong with it
 * (called only then, as the reader's wording needs a lookup); the message goes on to name the
 * supported dtypes, so a bad file and a bad `options.dtypes` end their errors the same way.
 */
export function checkSupported(op: string, dtype: unknown, problem: () => string): asserts dtype is SafetensorsDType {
  if (!isSupported(dtype)) throw new SafetensorsError(op, `${problem()}; supported dtypes are ${SUPPORTED_TEXT}`);
}

/**
 * Throws if a header of `size` bytes is over {@link SAFETENSORS_MAX_HEADER_SIZE}: readers refuse
 * one, so the writer must not make one. `subject` states the size as the caller sees it ("the
 * header length is"), `why` ends the message with what such a header means there.
 */
export function checkHeaderSize(op: string, size: number, subject: string, why: string): void {
  if (size > SAFETENSORS_MAX_HEADER_SIZE) throw new SafetensorsError(op, `${subject} ${size} bytes, over the ${SAFETENSORS_MAX_HEADER_SIZE}-byte limit ${why}`);
}

/** Defines an own enumerable property (safe for names such as "__proto__"). */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export function quote(name: string): string {
  return JSON.stringify(name);
}

/**
 * Converts between a file's byte order (safetensors stores little-endian values) and this host's,
 * for values of `size` bytes each, in place. Nothing to do on little-endian hosts, which is all
 * of today's; on a big-endian one each value's bytes are reversed.
 */
export function swapToHostOrder(bytes: Uint8Array, size: number): void {
  if (LITTLE_ENDIAN || size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}
