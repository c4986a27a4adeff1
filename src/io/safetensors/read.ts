/**
 * Reading safetensors: the header, validated whole before any tensor is allocated, then each
 * tensor from its byte range. The bytes come from the caller or, for a path, from file.ts by
 * byte ranges (the file is never in memory whole). `openSafetensors` reads the header only and
 * loads tensors when asked. The format and its dtypes: format.ts.
 */
import { fmtShape } from '../../errors';
import { kernels } from '../../kernels/registry';
import { Tensor } from '../../tensor/tensor';
import { isPlainObject } from '../../util/objects';
import { fileRanges, fileRangesAsync, memoryRanges, type RangeReader } from './file';
import { ITEM_SIZE, KNOWN_UNSUPPORTED, SafetensorsError, checkHeaderSize, checkSupported, quote, setOwn, swapToHostOrder, type SafetensorsDType, type SafetensorsFile } from './format';
import { describe } from '../../util/describe';

/** One tensor's header entry; begin and end count from the start of the data section. */
interface Entry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/** A validated header: where the data section starts, the metadata, the entries in header order. */
interface Header {
  dataStart: number;
  metadata: Record<string, string>;
  entries: Entry[];
}

/** A byte view over any accepted input, without copying. Works across realms (jest, iframes). */
function asBytes(op: string, input: unknown): Uint8Array {
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const tag = Object.prototype.toString.call(input);
  if (tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]') return new Uint8Array(input as ArrayBuffer);
  throw new SafetensorsError(op, `expected the file's bytes (a Uint8Array, Buffer or ArrayBuffer) or a file path, got ${describe(input)}`);
}

/** A range reader over a path (a file handle) or over bytes in memory. */
function openInput(op: string, input: unknown): RangeReader {
  return typeof input === 'string' ? fileRanges(op, input) : memoryRanges(op, asBytes(op, input));
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
  checkSupported(op, dtype, () => {
    const known = KNOWN_UNSUPPORTED.has(dtype) ? 'is not supported' : 'is not a safetensors dtype blockgrad knows';
    return `${where}: dtype ${quote(dtype)} ${known}`;
  });
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

/** The header's length from the file's first 8 bytes, checked against the file's size. */
function headerLengthOf(op: string, prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8) {
    throw new SafetensorsError(op, `the file is ${fileSize} bytes, shorter than the 8-byte header length that starts every safetensors file`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const headerLength = high * 2 ** 32 + low; // exact below 2^53; anything that large is rejected
  checkHeaderSize(op, headerLength, 'the header length is', '(corrupt file, or not a safetensors file)');
  if (8 + headerLength > fileSize) {
    throw new SafetensorsError(op, `the header length ${headerLength} runs past the end of the file (${fileSize} bytes, so at most ${fileSize - 8} header bytes)`);
  }
  return headerLength;
}

/** Validates the header (its JSON bytes, after the 8-byte prefix) and checks the entries tile the data. */
function parseHeader(op: string, headerBytes: Uint8Array, fileSize: number): Header {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
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

  const dataStart = 8 + headerBytes.length;
  const dataLength = fileSize - dataStart;
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
  return { dataStart, metadata, entries };
}

/** Reads and validates the header through a range reader. */
function readHeader(op: string, r: RangeReader): Header {
  const headerLength = headerLengthOf(op, r.read(0, Math.min(8, r.size)), r.size);
  return parseHeader(op, r.read(8, headerLength), r.size);
}

/** Uploads a tensor's bytes (`raw`: a fresh buffer of its own, so aligned; byte-swapped here on big-endian hosts). */
function makeTensor(raw: Uint8Array, e: Entry): Tensor {
  const size = ITEM_SIZE[e.dtype];
  swapToHostOrder(raw, size);
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
      buf = k.uploadHalfBits('float16', new Uint16Array(raw.buffer, 0, n));
      break;
    case 'BF16':
      buf = k.uploadHalfBits('bfloat16', new Uint16Array(raw.buffer, 0, n));
      break;
  }
  return new Tensor(buf, e.shape);
}

/** Frees the tensors a failed load made before it failed, then rethrows: a failed load leaves nothing allocated. */
function undoLoad(tensors: Record<string, Tensor>, err: unknown): never {
  for (const t of Object.values(tensors)) t.dispose();
  throw err;
}

function parse(op: string, input: unknown): SafetensorsFile {
  const r = openInput(op, input);
  const tensors: Record<string, Tensor> = {};
  try {
    const header = readHeader(op, r);
    for (const e of header.entries) setOwn(tensors, e.name, makeTensor(r.read(header.dataStart + e.begin, e.end - e.begin), e));
    return { tensors, metadata: header.metadata };
  } catch (err) {
    return undoLoad(tensors, err);
  } finally {
    r.close();
  }
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
  const r = await fileRangesAsync(op, path);
  const tensors: Record<string, Tensor> = {};
  try {
    const headerLength = headerLengthOf(op, await r.read(0, Math.min(8, r.size)), r.size);
    const header = parseHeader(op, await r.read(8, headerLength), r.size);
    for (const e of header.entries) setOwn(tensors, e.name, makeTensor(await r.read(header.dataStart + e.begin, e.end - e.begin), e));
    return tensors;
  } catch (err) {
    return undoLoad(tensors, err);
  } finally {
    await r.close();
  }
}

/** A safetensors file opened for reading one tensor at a time (see {@link openSafetensors}). */
export interface SafetensorsReader {
  /** The header's `__metadata__`. */
  readonly metadata: Record<string, string>;
  /** The tensors' names, in header order. */
  readonly names: readonly string[];
  /** A tensor's dtype (as stored) and shape, without reading its data. */
  info(name: string): { dtype: SafetensorsDType; shape: number[] };
  /** Reads and uploads one tensor: a fresh leaf each call (BF16 loads as float32). */
  load(name: string): Tensor;
  /** Closes the file (a no-op for bytes in memory); load() afterwards is an error. */
  close(): void;
}

/**
 * Opens a safetensors file and reads its header only (validated whole, as the loaders do);
 * tensors are read from their byte ranges when `load(name)` asks for them. For checkpoints
 * larger than memory allows at once, or than Node's 2 GiB buffer limit: take the tensors one at
 * a time, and close the reader when done. `input` is a file path (Node.js) or the file's bytes.
 */
export function openSafetensors(input: Uint8Array | ArrayBuffer | ArrayBufferView | string): SafetensorsReader {
  const op = 'openSafetensors';
  const r = openInput(op, input);
  let header: Header;
  try {
    header = readHeader(op, r);
  } catch (err) {
    r.close();
    throw err;
  }
  const byName = new Map(header.entries.map((e) => [e.name, e]));
  let closed = false;
  const entry = (name: string): Entry => {
    const e = byName.get(name);
    if (e === undefined) {
      const some = header.entries.slice(0, 5).map((x) => quote(x.name)).join(', ');
      throw new SafetensorsError(op, `the file has no tensor ${quote(String(name))}; it has ${header.entries.length} (${some}${header.entries.length > 5 ? ', ...' : ''}); see .names`);
    }
    return e;
  };
  return {
    metadata: header.metadata,
    names: header.entries.map((e) => e.name),
    info(name) {
      const e = entry(name);
      return { dtype: e.dtype, shape: [...e.shape] };
    },
    load(name) {
      const e = entry(name);
      if (closed) throw new SafetensorsError(op, `load(${quote(name)}) after close(): open the file again`);
      return makeTensor(r.read(header.dataStart + e.begin, e.end - e.begin), e);
    },
    close() {
      if (!closed) r.close();
      closed = true;
    },
  };
}

