/**
 * State dicts to plain JSON and back. An optimizer's or scheduler's stateDict() holds numbers,
 * booleans, strings, arrays, objects and Tensors; `stateToJSON` replaces every Tensor by
 * `{ "$tensor": { dtype, shape, data } }` (data row-major; NaN, ±Infinity and -0 written as the
 * strings 'NaN', 'Infinity', '-Infinity' and '-0') so that `JSON.stringify` keeps every value
 * exactly, and `stateFromJSON` rebuilds the tensors. A number outside a tensor that JSON cannot
 * hold is written `{ "$number": 'NaN' | 'Infinity' | '-Infinity' | '-0' }`. Float values
 * round-trip bit for bit (JSON numbers print as the shortest exact decimal; NaN payloads aside).
 *
 * Keys are copied as own data properties, never assigned: `out["__proto__"] = x` would set the
 * object's prototype instead (JSON.parse itself makes "__proto__" an ordinary key), and a state
 * dict could then answer for keys it does not have. int32 tensors refuse values int32 cannot
 * hold (3e9, NaN), which a typed array would wrap or zero without a word.
 */
import { ValueError } from '../errors';
import { Tensor } from '../tensor/tensor';
import { isDType } from '../tensor/dtype';
import { checkInt32Values } from '../tensor/int32';
import { numel } from '../tensor/shape';
import { backendByName, kernels } from '../kernels/registry';

export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

/** Defines `key` as an own enumerable data property (safe for "__proto__"). */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A number as JSON keeps it: itself, or a string for NaN, ±Infinity and -0 (JSON prints -0 as 0). */
const encodeNumber = (x: number): number | string => (Object.is(x, -0) ? '-0' : Number.isFinite(x) ? x : String(x));

function decodeNumber(x: unknown, where: string): number {
  if (typeof x === 'number') return x;
  if (x === '-0') return -0;
  if (x === 'NaN') return NaN;
  if (x === 'Infinity') return Infinity;
  if (x === '-Infinity') return -Infinity;
  throw new ValueError('stateFromJSON', `${where}: expected a number, got ${JSON.stringify(x)}`);
}

/** A JSON-ready copy of `value` with tensors as `{ $tensor: { dtype, shape, data } }`. */
export function stateToJSON(value: unknown): JSONValue {
  if (value instanceof Tensor) {
    const data = Array.from(backendByName(value.backend).read(value), encodeNumber);
    return { $tensor: { dtype: value.dtype, shape: [...value.shape], data } };
  }
  if (typeof value === 'number') {
    const encoded = encodeNumber(value);
    return typeof encoded === 'number' ? encoded : { $number: encoded };
  }
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(stateToJSON);
  if (typeof value === 'object') {
    const out: { [key: string]: JSONValue } = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) setOwn(out, k, stateToJSON(v));
    return out;
  }
  throw new ValueError('stateToJSON', `cannot serialise a ${typeof value}`);
}

/** The inverse of stateToJSON (accepts the parsed JSON); tensors are made on the active backend. */
export function stateFromJSON<T = any>(json: unknown): T {
  return fromJSON(json, '') as T;
}

function fromJSON(json: unknown, where: string): unknown {
  if (Array.isArray(json)) return json.map((x, i) => fromJSON(x, `${where}[${i}]`));
  if (json === null || typeof json !== 'object') return json;
  const obj = json as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1 && keys[0] === '$number') return decodeNumber(obj.$number, where);
  if (keys.length === 1 && keys[0] === '$tensor') {
    const t = obj.$tensor as { dtype?: unknown; shape?: unknown; data?: unknown } | null;
    if (t === null || typeof t !== 'object' || !isDType(t.dtype) || !Array.isArray(t.shape) || !Array.isArray(t.data)) {
      throw new ValueError('stateFromJSON', `${where || 'the value'}: a $tensor needs dtype, shape and data`);
    }
    const shape = t.shape as number[];
    if (!shape.every((d) => Number.isInteger(d) && d >= 0) || numel(shape) !== t.data.length) {
      throw new ValueError('stateFromJSON', `${where || 'the value'}: shape [${shape.join(',')}] does not match ${t.data.length} values`);
    }
    const values = (t.data as unknown[]).map((x, i) => decodeNumber(x, `${where}.data[${i}]`));
    if (t.dtype === 'int32') checkInt32Values('stateFromJSON', values, shape, `the int32 $tensor at ${where || 'the top level'}`);
    return new Tensor(kernels().upload(t.dtype, values), shape);
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) setOwn(out, k, fromJSON(obj[k], where ? `${where}.${k}` : k));
  return out;
}
