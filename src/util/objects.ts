/**
 * Checks on plain JavaScript objects shared by the parts that read user input and saved state
 * (optimizer options and state dicts, safetensors headers and options).
 */
import { Tensor } from '../tensor/tensor';

/**
 * Whether `x` is a record: an object that is neither null, an array nor a Tensor. A Tensor is an
 * object too, but never the options, group or state record that a caller meant to pass, so it
 * is refused here rather than read field by field.
 */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Tensor);
}

/**
 * Whether `obj` has `key` as its own property. `key in obj` would also find Object.prototype's
 * names (`toString`, `constructor`), so an option called `toString` would pass as known.
 */
export function hasOwn(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}
