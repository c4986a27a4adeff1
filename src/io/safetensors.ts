/**
 * safetensors read/write (https://huggingface.co/docs/safetensors), the format Hugging Face
 * checkpoints use.
 *
 * ## The format
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
 * | BF16 | float32 (load) | exact: bfloat16 is the top half of a float32 |
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
 *
 * ## Files
 *
 * `loadSafetensors` and `parseSafetensors` also take a file path, read synchronously with
 * Node's `fs`, which is looked up at run time (`process.getBuiltinModule`, else CommonJS
 * `require`) so this module bundles for browsers, where passing a path raises a
 * SafetensorsError that says to pass the bytes instead. `loadSafetensorsFile` and
 * `saveSafetensorsFile` are the asynchronous forms; saving writes a temporary file in the same
 * folder, flushes it and renames it over the target, so a failed save leaves no half-written
 * file (and leaves an existing file at that path untouched). A save killed midway (the process
 * gone, so nothing could clean up) leaves its temporary file; the next save to the same path
 * removes it.
 */
import type * as NodeFs from 'node:fs';
import { ValueError, fmtShape } from '../errors';
import { kernels } from '../kernels/registry';
import type { DType } from '../tensor/dtype';
import { decodeFloat16, encodeFloat16, float16ArrayToBits } from '../tensor/float16';
import { Tensor } from '../tensor/tensor';
import type { Float16Array } from '@petamoriken/float16';

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
const ITEM_SIZE: Record<SafetensorsDType, number> = { F64: 8, F32: 4, I32: 4, F16: 2, BF16: 2 };
const DEFAULT_TARGET: Record<DType, SafetensorsDType> = { float64: 'F64', float32: 'F32', float16: 'F16', int32: 'I32' };
/** Dtypes the spec defines that blockgrad does not read (for a clearer message). */
const KNOWN_UNSUPPORTED = new Set(['BOOL', 'U8', 'I8', 'I16', 'U16', 'U32', 'I64', 'U64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isSupported(x: unknown): x is SafetensorsDType {
  return typeof x === 'string' && (SUPPORTED as readonly string[]).includes(x);
}

/** Defines an own enumerable property (safe for names such as "__proto__"). */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function quote(name: string): string {
  return JSON.stringify(name);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return `the string ${JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}...` : x)}`;
  if (typeof x === 'object') return 'an object';
  return `${typeof x} ${String(x)}`;
}

/** Reverses each `size`-byte group in place (used only on big-endian hosts). */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Node's fs, found at run time so that browser bundles never reference it statically.
// ---------------------------------------------------------------------------------------------

type FsModule = typeof NodeFs;

function nodeFs(op: string): FsModule {
  const proc = typeof process !== 'undefined' ? (process as { getBuiltinModule?: (id: string) => unknown }) : undefined;
  const viaBuiltin = proc?.getBuiltinModule?.('node:fs') as FsModule | undefined;
  if (viaBuiltin) return viaBuiltin;
  // Node before 20.16 has no getBuiltinModule; CommonJS still has require.
  const req = typeof require === 'function' ? require : undefined;
  if (req) {
    try {
      return req('node:fs') as FsModule;
    } catch {
      // fall through
    }
  }
  throw new SafetensorsError(
    op,
    'reading or writing a file path needs Node.js (its fs module is not available here); in a browser, fetch the file and pass its bytes (a Uint8Array or ArrayBuffer) instead',
  );
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

interface Entry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/** A byte view over any accepted input, without copying. Works across realms (jest, iframes). */
function asBytes(op: string, input: unknown): Uint8Array {
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const tag = Object.prototype.toString.call(input);
  if (tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]') return new Uint8Array(input as ArrayBuffer);
  throw new SafetensorsError(op, `expected the file's bytes (a Uint8Array, Buffer or ArrayBuffer) or a file path, got ${describe(input)}`);
}

function readInput(op: string, input: unknown): Uint8Array {
  if (typeof input === 'string') return asBytes(op, nodeFs(op).readFileSync(input));
  return asBytes(op, input);
}

function checkUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Validates one header entry (not the coverage of the data section, which needs them all). */
function parseEntry(op: string, name: string, info: unknown, dataLength: number): Entry {
  const where = `tensor ${quote(name)}`;
  if (!isPlainObject(info)) {
    throw new SafetensorsError(op, `${where}: its header entry must be an object with dtype, shape and data_offsets, got ${describe(info)}`);
  }
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    if (!(field in info)) throw new SafetensorsError(op, `${where}: its header entry has no "${field}" field`);
  }
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== 'string') throw new SafetensorsError(op, `${where}: dtype must be a string, got ${describe(dtype)}`);
  if (!isSupported(dtype)) {
    const known = KNOWN_UNSUPPORTED.has(dtype) ? 'is not supported' : 'is not a safetensors dtype blockgrad knows';
    throw new SafetensorsError(op, `${where}: dtype ${quote(dtype)} ${known}; supported dtypes are ${SUPPORTED_TEXT}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => checkUint(d))) {
    throw new SafetensorsError(op, `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => checkUint(o))) {
    throw new SafetensorsError(op, `${where}: data_offsets must be [begin, end], two non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw new SafetensorsError(op, `${where}: data_offsets [${begin}, ${end}] begin after they end`);
  if (end > dataLength) {
    throw new SafetensorsError(op, `${where}: data_offsets [${begin}, ${end}] run past the end of the data section, which has ${dataLength} bytes (truncated file?)`);
  }
  let count = 1;
  for (const d of shape as number[]) count *= d;
  const size = ITEM_SIZE[dtype];
  const expected = count * size;
  if (!Number.isSafeInteger(expected) || expected !== end - begin) {
    throw new SafetensorsError(
      op,
      `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} shape ${fmtShape(shape as number[])} needs ${count} elements x ${size} bytes = ${expected} bytes`,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], begin, end };
}

/** The tensors must tile [0, dataLength) exactly: no overlap, no hole, nothing trailing. */
function checkCoverage(op: string, entries: Entry[], dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: Entry | null = null;
  for (const e of sorted) {
    if (e.begin < pos && prev) {
      throw new SafetensorsError(
        op,
        `tensors ${quote(prev.name)} (bytes [${prev.begin}, ${prev.end})) and ${quote(e.name)} (bytes [${e.begin}, ${e.end})) overlap; each byte of the data section must belong to one tensor`,
      );
    }
    if (e.begin > pos) {
      const after = prev ? `between ${quote(prev.name)} and ${quote(e.name)}` : `before ${quote(e.name)}`;
      throw new SafetensorsError(op, `bytes [${pos}, ${e.begin}) of the data section belong to no tensor (a hole ${after}); the tensors must cover the data section exactly`);
    }
    pos = e.end;
    prev = e;
  }
  if (pos < dataLength) {
    const after = prev ? `after ${quote(prev.name)}, the last tensor` : 'and the header lists no tensors';
    throw new SafetensorsError(op, `bytes [${pos}, ${dataLength}) of the data section belong to no tensor (${after}); the tensors must cover the data section exactly`);
  }
}

/** Copies a tensor's bytes out (so unaligned offsets work) and uploads them. */
function makeTensor(bytes: Uint8Array, dataStart: number, e: Entry): Tensor {
  const size = ITEM_SIZE[e.dtype];
  const raw = bytes.slice(dataStart + e.begin, dataStart + e.end); // fresh, aligned buffer
  if (!LITTLE_ENDIAN) swapBytes(raw, size);
  const n = raw.length / size;
  const k = kernels();
  let buf;
  switch (e.dtype) {
    case 'F64':
      buf = k.upload('float64', new Float64Array(raw.buffer, 0, n));
      break;
    case 'F32':
      buf = k.upload('float32', new Float32Array(raw.buffer, 0, n));
      break;
    case 'I32':
      buf = k.upload('int32', new Int32Array(raw.buffer, 0, n));
      break;
    case 'F16':
      buf = k.uploadFloat16Bits(new Uint16Array(raw.buffer, 0, n));
      break;
    case 'BF16': {
      // bfloat16 is the high half of a float32: shifting the bits up gives the value exactly.
      const hi = new Uint16Array(raw.buffer, 0, n);
      const wide = new Uint32Array(n);
      for (let i = 0; i < n; i++) wide[i] = hi[i] << 16;
      buf = k.upload('float32', new Float32Array(wide.buffer));
      break;
    }
  }
  return new Tensor(buf, e.shape);
}

function parse(op: string, input: unknown): SafetensorsFile {
  const bytes = readInput(op, input);
  if (bytes.length < 8) {
    throw new SafetensorsError(op, `the file is ${bytes.length} bytes, shorter than the 8-byte header length that starts every safetensors file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const headerLength = high * 2 ** 32 + low; // exact below 2^53; anything that large is rejected
  if (headerLength > SAFETENSORS_MAX_HEADER_SIZE) {
    throw new SafetensorsError(op, `the header length is ${headerLength} bytes, over the ${SAFETENSORS_MAX_HEADER_SIZE}-byte limit (corrupt file, or not a safetensors file)`);
  }
  if (8 + headerLength > bytes.length) {
    throw new SafetensorsError(op, `the header length ${headerLength} runs past the end of the file (${bytes.length} bytes, so at most ${bytes.length - 8} header bytes)`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw new SafetensorsError(op, 'the header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(op, `the header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) throw new SafetensorsError(op, `the header must be a JSON object, got ${describe(header)}`);

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (info === null) continue; // the reference reads null as "no metadata"
      if (!isPlainObject(info)) throw new SafetensorsError(op, `__metadata__ must be an object of strings, got ${describe(info)}`);
      for (const [key, value] of Object.entries(info)) {
        if (typeof value !== 'string') {
          throw new SafetensorsError(op, `__metadata__ value for key ${quote(key)} must be a string, got ${describe(value)}`);
        }
        setOwn(metadata, key, value);
      }
      continue;
    }
    entries.push(parseEntry(op, name, info, dataLength));
  }
  checkCoverage(op, entries, dataLength);

  const tensors: Record<string, Tensor> = {};
  for (const e of entries) setOwn(tensors, e.name, makeTensor(bytes, dataStart, e));
  return { tensors, metadata };
}

/**
 * Parses a safetensors file into tensors and the header's `__metadata__`.
 *
 * `bytes` is the file's contents (Uint8Array, Node Buffer, any typed array view, or ArrayBuffer;
 * offsets need not be aligned), or a file path, read synchronously in Node.js (throws a
 * SafetensorsError where Node's fs is unavailable, e.g. in a browser).
 * Tensors are fresh leaves (requiresGrad false, no name), in header order. BF16 loads as float32.
 * Throws a {@link SafetensorsError} naming the problem (and the tensor) for any malformed file.
 */
export function parseSafetensors(bytes: Uint8Array | ArrayBuffer | ArrayBufferView | string): SafetensorsFile {
  return parse('parseSafetensors', bytes);
}

/**
 * Loads the tensors of a safetensors file (see {@link parseSafetensors} for the metadata too).
 *
 * Synchronous. `bytes` is the file's contents (Uint8Array, Node Buffer, ArrayBuffer), or a file
 * path: a string is read with Node's `fs.readFileSync`, found at run time so this module still
 * bundles for browsers; there a path throws a SafetensorsError (fetch the bytes instead). Use
 * {@link loadSafetensorsFile} to read without blocking.
 */
export function loadSafetensors(bytes: Uint8Array | ArrayBuffer | ArrayBufferView | string): Record<string, Tensor> {
  return parse('loadSafetensors', bytes).tensors;
}

/** Reads a safetensors file asynchronously (Node.js only) and returns its tensors. */
export async function loadSafetensorsFile(path: string): Promise<Record<string, Tensor>> {
  const op = 'loadSafetensorsFile';
  if (typeof path !== 'string') throw new SafetensorsError(op, `expected a file path string, got ${describe(path)}`);
  const bytes = await nodeFs(op).promises.readFile(path);
  return parse(op, bytes).tensors;
}

// ---------------------------------------------------------------------------------------------
// Saving
// ---------------------------------------------------------------------------------------------

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 bits -> bfloat16 bits, round to nearest, ties to even; NaN stays a (quiet) NaN. */
export function float32BitsToBFloat16Bits(bits: number): number {
  const u = bits >>> 0;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x0040) & 0xffff;
  // Add just under half an ulp, plus one when the kept part is odd, so that a tie rounds to even.
  // A carry into the exponent is right (1.1111111|1... -> 10.0), and out of the largest finite
  // exponent it gives 0x7f80, Infinity.
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * A number -> bfloat16 bits, rounding once, to nearest, ties to even.
 *
 * Rounding a double to float32 and then to bfloat16 can round twice (1 + 2^-8 + 2^-30 becomes
 * the tie 1 + 2^-8 in float32, which then rounds down to 1 instead of up). So the first step
 * rounds to odd: an inexact float32 result is replaced by the float32 just toward zero from x,
 * with its last bit set. float32 keeps 16 more bits than bfloat16 (>= 2), so the sticky last bit
 * makes the second rounding exact.
 */
export function numberToBFloat16Bits(x: number): number {
  scratchF32[0] = x;
  let u = scratchU32[0];
  const f = scratchF32[0];
  if (f !== x && !Number.isNaN(x)) {
    if (Math.abs(f) > Math.abs(x)) u -= 1; // the float32 below |x| (f != 0 here); also Inf -> max finite
    u |= 1;
  }
  return float32BitsToBFloat16Bits(u);
}

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
    case 'BF16': {
      const n = numbers.length;
      const bits = new Uint16Array(n);
      if (numbers instanceof Float32Array) {
        const u32 = new Uint32Array(numbers.buffer, numbers.byteOffset, n);
        for (let i = 0; i < n; i++) bits[i] = float32BitsToBFloat16Bits(u32[i]);
      } else {
        for (let i = 0; i < n; i++) bits[i] = numberToBFloat16Bits(numbers[i]);
      }
      out = bits;
      break;
    }
  }
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  if (LITTLE_ENDIAN) return bytes;
  const copy = bytes.slice();
  swapBytes(copy, ITEM_SIZE[p.target]);
  return copy;
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
  return serialize('saveSafetensors', tensors, metadata, options);
}

function serialize(
  op: string,
  tensors: Record<string, Tensor>,
  metadata: Record<string, string> | undefined,
  options: SaveSafetensorsOptions | undefined,
): Uint8Array {
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
    if (!Object.prototype.hasOwnProperty.call(tensors, name)) {
      throw new SafetensorsError(op, `options.dtypes names ${quote(name)}, which is not one of the tensors being saved`);
    }
    if (!isSupported(target)) {
      throw new SafetensorsError(op, `options.dtypes[${quote(name)}] is ${describe(target)}; supported dtypes are ${SUPPORTED_TEXT}`);
    }
  }

  const planned: Planned[] = [];
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new SafetensorsError(op, 'a tensor cannot be named "__metadata__": the format reserves that key for metadata');
    checkWellFormed(op, 'tensor name', name);
    if (!(tensor instanceof Tensor)) throw new SafetensorsError(op, `tensor ${quote(name)}: expected a Tensor, got ${describe(tensor)}`);
    if (tensor.isDisposed || tensor.buffer.released) throw new SafetensorsError(op, `tensor ${quote(name)} (shape ${fmtShape(tensor.shape)}) was disposed`);
    const target = Object.prototype.hasOwnProperty.call(dtypes, name) ? (dtypes[name] as SafetensorsDType) : DEFAULT_TARGET[tensor.dtype];
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
  if (padded > SAFETENSORS_MAX_HEADER_SIZE) {
    throw new SafetensorsError(op, `the header would be ${padded} bytes, over the ${SAFETENSORS_MAX_HEADER_SIZE}-byte limit that readers enforce`);
  }

  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, padded, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let pos = 8 + padded;
  for (const p of planned) {
    const bytes = encodeTensor(p);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

/** Temporary files this process is writing now (a concurrent save to the same path keeps them). */
const writing = new Set<string>();

/** Whether process `pid` exists (EPERM: it does, but is not ours to signal). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/**
 * Removes what saves to `path` killed midway left: the temporary files `<path>.<pid>.<tag>.tmp`
 * whose process is gone (or is this one, but no save of ours is writing them). Best effort: a file
 * that cannot be listed or removed is left for a later save.
 */
async function removeStaleTemps(fs: FsModule['promises'], path: string): Promise<void> {
  const cut = Math.max(path.lastIndexOf('/'), process.platform === 'win32' ? path.lastIndexOf('\\') : -1);
  const folder = path.slice(0, cut + 1); // with its separator, '' for the current folder
  const name = path.slice(cut + 1);
  let entries: string[];
  try {
    entries = await fs.readdir(folder === '' ? '.' : folder);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(`${name}.`)) continue;
    const tag = /^(\d+)\.[0-9a-z]+\.tmp$/.exec(entry.slice(name.length + 1));
    if (!tag) continue;
    const pid = Number(tag[1]);
    const file = folder + entry;
    if (pid === process.pid ? writing.has(file) : processAlive(pid)) continue;
    await fs.rm(file, { force: true }).catch(() => undefined);
  }
}

/**
 * Saves tensors to a safetensors file (Node.js only). The bytes are built and validated first;
 * then they are written to a temporary file beside `path`, flushed, and renamed over `path`, so
 * a failure at any point leaves no partial file (and an existing file at `path` unchanged).
 * Temporary files that earlier saves to `path` left when their process was killed are removed
 * first. Errors from the file system (missing folder, permissions) are Node's own.
 */
export async function saveSafetensorsFile(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
  options?: SaveSafetensorsOptions,
): Promise<void> {
  const op = 'saveSafetensorsFile';
  if (typeof path !== 'string' || path === '') throw new SafetensorsError(op, `expected a file path string, got ${describe(path)}`);
  const bytes = serialize(op, tensors, metadata, options);
  const fs = nodeFs(op).promises;
  await removeStaleTemps(fs, path);
  const tmp = `${path}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`;
  writing.add(tmp);
  try {
    const handle = await fs.open(tmp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  } finally {
    writing.delete(tmp);
  }
}
