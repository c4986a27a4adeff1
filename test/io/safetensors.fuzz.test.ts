/**
 * Property-based fuzzing of the safetensors reader (fast-check, fixed seed, 300 runs): a valid
 * small file holding every dtype is mutated (truncated, bytes overwritten anywhere or in the data
 * section only, the header length changed, header entries edited: dtype, shape, data_offsets, names, metadata, fields removed or
 * added, the whole header replaced) and parsed. The reader must either return exactly what the
 * mutated bytes say, checked against an independent decoder written here with DataView, or throw
 * a SafetensorsError. Any other error type fails the property; parsing is linear in the file's
 * size, so a hang shows up as jest's timeout.
 */
import fc from 'fast-check';
import { getFloat16 } from '@petamoriken/float16';
import { SafetensorsError, parseSafetensors, saveSafetensors, tensor, type Tensor } from '../../src';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The valid starting point: F64, F32, I32, F16 and BF16 tensors and some metadata. */
function baseFile(): Uint8Array {
  return saveSafetensors(
    {
      f64: tensor([[1.5, -2.25]], { dtype: 'float64' }),
      f32: tensor([[0.1, 2, -3], [4, -0.5, 6]]),
      i32: tensor(Int32Array.of(7, -8, 2147483647)),
      f16: tensor([[0.5, -1], [65504, 1e-5]], { dtype: 'float16' }),
      bf16: tensor([1, -2.5, 3e38]),
      empty: tensor([], { dtype: 'float32' }),
    },
    { format: 'pt', note: 'fuzz' },
    { dtypes: { bf16: 'BF16' } },
  );
}

// ------------------------------------------------------------------ an independent reader

/** The header (or null when the bytes do not hold a JSON object where the header should be). */
function headerOf(bytes: Uint8Array): { header: Record<string, unknown>; dataStart: number } | null {
  if (bytes.length < 8) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (8 + n > bytes.length) return null;
  try {
    const header = JSON.parse(dec.decode(bytes.subarray(8, 8 + n)));
    return header !== null && typeof header === 'object' && !Array.isArray(header) ? { header, dataStart: 8 + n } : null;
  } catch {
    return null;
  }
}

/** One element at byte `at` of the file, as the dtype says, straight from the bytes. */
function elementAt(view: DataView, dtype: string, at: number): number {
  switch (dtype) {
    case 'F64':
      return view.getFloat64(at, true);
    case 'F32':
      return view.getFloat32(at, true);
    case 'I32':
      return view.getInt32(at, true);
    case 'F16':
      return getFloat16(view, at, true);
    case 'BF16': {
      const wide = new DataView(new ArrayBuffer(4));
      wide.setUint32(0, view.getUint16(at, true) << 16);
      return wide.getFloat32(0);
    }
    default:
      throw new Error(`the reader accepted dtype ${dtype}`);
  }
}

const SIZE: Record<string, number> = { F64: 8, F32: 4, I32: 4, F16: 2, BF16: 2 };
const DTYPE: Record<string, string> = { F64: 'float64', F32: 'float32', I32: 'int32', F16: 'float16', BF16: 'bfloat16' };

/** Checks a successful parse against the bytes: names, dtypes, shapes and every value (NaN as NaN). */
function checkAgainstBytes(bytes: Uint8Array, tensors: Record<string, Tensor>, metadata: Record<string, string>): void {
  const parsed = headerOf(bytes);
  if (!parsed) throw new Error('the reader accepted a file whose header is not a JSON object');
  const { header, dataStart } = parsed;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  expect(Object.keys(tensors)).toEqual(names);
  expect(metadata).toEqual((header.__metadata__ as Record<string, string> | null | undefined) ?? {});
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const name of names) {
    const { dtype, shape, data_offsets: [begin] } = header[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const t = tensors[name];
    expect([name, t.dtype, t.shape]).toEqual([name, DTYPE[dtype], shape]);
    const got = Array.from(t.toTypedArray() as ArrayLike<number>);
    got.forEach((v, i) => {
      const want = elementAt(view, dtype, dataStart + begin + i * SIZE[dtype]);
      if (!Object.is(v, want) && !(Number.isNaN(v) && Number.isNaN(want))) throw new Error(`${name}[${i}]: read ${v}, the bytes hold ${want}`);
    });
  }
}

// ------------------------------------------------------------------ mutations

/** The bytes with a new header (the data section kept); names such as "__proto__" stay plain keys. */
function withHeader(bytes: Uint8Array, dataStart: number, header: unknown): Uint8Array {
  const text = enc.encode(JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + (bytes.length - dataStart));
  new DataView(out.buffer).setUint32(0, text.length, true);
  out.set(text, 8);
  out.set(bytes.subarray(dataStart), 8 + text.length);
  return out;
}

/** A copy of `obj` with `key` set as an own property (safe for "__proto__"). */
function setKey(obj: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

const dtypes = fc.constantFrom('F64', 'F32', 'I32', 'F16', 'BF16', 'U8', 'BOOL', 'I64', 'F8_E4M3', 'f32', '', 'F32 ');
const dims = fc.oneof(
  fc.array(fc.integer({ min: -2, max: 8 }), { maxLength: 4 }),
  fc.array(fc.constantFrom(0, 1, 2 ** 31, 2 ** 40, 2 ** 53, 1.5, -0, NaN), { maxLength: 3 }),
);
const offset = fc.oneof(fc.integer({ min: -8, max: 160 }), fc.constantFrom(2 ** 32, 2 ** 53, 1e300, 0.5));
const offsets = fc.oneof(fc.tuple(offset, offset), fc.array(offset, { maxLength: 3 }));

/** An edit of the header object: one field of one entry, an entry's name, the metadata, or all of it. */
const headerEdit = fc.oneof(
  fc.record({ field: fc.constant('dtype'), entry: fc.nat(), value: fc.oneof(dtypes, fc.jsonValue()) }),
  fc.record({ field: fc.constant('shape'), entry: fc.nat(), value: fc.oneof(dims, fc.jsonValue()) }),
  fc.record({ field: fc.constant('data_offsets'), entry: fc.nat(), value: fc.oneof(offsets, fc.jsonValue()) }),
  fc.record({ field: fc.constant('delete'), entry: fc.nat(), value: fc.constantFrom('dtype', 'shape', 'data_offsets') }),
  fc.record({ field: fc.constant('rename'), entry: fc.nat(), value: fc.oneof(fc.constantFrom('__metadata__', '__proto__', 'f32', ''), fc.string({ maxLength: 6 })) }),
  fc.record({ field: fc.constant('add'), entry: fc.nat(), value: fc.record({ dtype: dtypes, shape: dims, data_offsets: offsets }) }),
  fc.record({ field: fc.constant('metadata'), entry: fc.nat(), value: fc.jsonValue() }),
  fc.record({ field: fc.constant('replace'), entry: fc.nat(), value: fc.jsonValue() }),
);

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'bytes' | 'data'; writes: { at: number; value: number }[] }
  | { kind: 'length'; value: number }
  | { kind: 'header'; edit: { field: string; entry: number; value: unknown } };

const writes = fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('bytes' as const), writes }),
  // bytes of the data section only: the file stays valid, and its values must be read as changed
  { arbitrary: fc.record({ kind: fc.constant('data' as const), writes }), weight: 4 },
  fc.record({ kind: fc.constant('length' as const), value: fc.oneof(fc.nat({ max: 1000 }), fc.constantFrom(2 ** 31, 2 ** 32 - 1, 100_000_001)) }),
  { arbitrary: fc.record({ kind: fc.constant('header' as const), edit: headerEdit }), weight: 3 },
);

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  switch (m.kind) {
    case 'truncate':
      return bytes.slice(0, m.at % (bytes.length + 1));
    case 'bytes':
    case 'data': {
      const out = bytes.slice();
      const start = m.kind === 'data' ? (headerOf(bytes)?.dataStart ?? 0) : 0;
      for (const w of m.writes) if (out.length > start) out[start + (w.at % (out.length - start))] = w.value;
      return out;
    }
    case 'length': {
      const out = bytes.slice();
      if (out.length >= 8) new DataView(out.buffer).setUint32(0, m.value, true);
      return out;
    }
    case 'header': {
      const parsed = headerOf(bytes);
      if (!parsed) return bytes;
      const { header, dataStart } = parsed;
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      const { field, entry, value } = m.edit;
      const name = names.length ? names[entry % names.length] : 'x';
      const info = header[name] !== null && typeof header[name] === 'object' ? (header[name] as Record<string, unknown>) : {};
      switch (field) {
        case 'delete': {
          const { [value as string]: _, ...rest } = info;
          return withHeader(bytes, dataStart, setKey(header, name, rest));
        }
        case 'rename': {
          const { [name]: moved, ...rest } = header;
          return withHeader(bytes, dataStart, setKey(rest, String(value), moved));
        }
        case 'add':
          return withHeader(bytes, dataStart, setKey(header, `extra${entry % 3}`, value));
        case 'metadata':
          return withHeader(bytes, dataStart, setKey(header, '__metadata__', value));
        case 'replace':
          return withHeader(bytes, dataStart, value);
        default:
          return withHeader(bytes, dataStart, setKey(header, name, setKey(info, field, value)));
      }
    }
  }
}

// ------------------------------------------------------------------ the property

test('every mutation of a valid file loads what its bytes say or throws a SafetensorsError', () => {
  const base = baseFile();
  const { tensors, metadata } = parseSafetensors(base);
  checkAgainstBytes(base, tensors, metadata); // the oracle agrees with the reader on the valid file
  const outcomes = { loaded: 0, refused: 0 };
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
      const bytes = mutations.reduce(mutate, base);
      let result: ReturnType<typeof parseSafetensors>;
      try {
        result = parseSafetensors(bytes);
      } catch (err) {
        if (!(err instanceof SafetensorsError)) throw new Error(`not a SafetensorsError: ${String(err)}`);
        outcomes.refused++;
        return;
      }
      checkAgainstBytes(bytes, result.tensors, result.metadata);
      outcomes.loaded++;
    }),
    { seed: 16, numRuns: 300 },
  );
  // both outcomes are exercised (a fuzzer that only ever produced garbage would prove little)
  expect(outcomes.loaded).toBeGreaterThan(30);
  expect(outcomes.refused).toBeGreaterThan(100);
});
