/**
 * How an error message names a value it did not expect: `got 7`, `got 'F8'`, `got an
 * array of length 2`, `got a Tensor of shape [2, 3]`, `got a Uint8Array`. One wording for every
 * op, so that a user learns it once.
 */
import { fmtShape } from '../errors';

/** A short description of any value, for the "got ..." part of an error message. */
export function describe(x: unknown): string {
  if (x === null || x === undefined || typeof x === 'number' || typeof x === 'boolean') return String(x);
  if (typeof x === 'bigint') return `${x}n`;
  if (typeof x === 'string') return `'${x.length > 40 ? `${x.slice(0, 40)}...` : x}'`;
  if (typeof x === 'function') return 'a function';
  if (typeof x !== 'object') return typeof x; // symbol
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  // a Tensor, recognised by its fields: importing the class here would make a cycle (tensor/scope.ts uses this)
  const { shape, dtype } = x as { shape?: unknown; dtype?: unknown };
  if (Array.isArray(shape) && typeof dtype === 'string') return `a Tensor of shape ${fmtShape(shape as number[])}`;
  const kind = Object.getPrototypeOf(x)?.constructor?.name;
  return !kind || kind === 'Object' ? 'an object' : `${/^[AEIOU]/.test(kind) ? 'an' : 'a'} ${kind}`;
}
