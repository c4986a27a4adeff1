/**
 * Hyperparameters: numbers, booleans, or fixed-length tuples of numbers (`betas`), each checked
 * against the kind of its default. Used when an optimizer is built (`withDefaults`), when a
 * group is added or stepped, and when a state dict is loaded.
 */
import { ValueError } from '../errors';
import { hasOwn, isPlainObject } from '../util/objects';
import { describe } from '../util/describe';

/**
 * Hyperparameters: numbers, booleans, or fixed-length tuples of numbers (`betas`). Every
 * optimizer has `lr`.
 */
export interface Hyperparameters {
  lr: number;
}

/** What is wrong with a learning rate (not a finite number >= 0), or null: every optimizer's one check. */
export function lrProblem(lr: unknown): string | null {
  return typeof lr === 'number' && Number.isFinite(lr) && lr >= 0 ? null : `invalid learning rate ${describe(lr)}: expected a finite lr >= 0`;
}

/** Copies a hyperparameter value (tuples are copied so groups never share an array). */
export function copyValue<T>(v: T): T {
  return (Array.isArray(v) ? [...v] : v) as T;
}

/** Checks `value` against the kind of the default `def`; returns a problem or null. */
export function hyperProblem(key: string, value: unknown, def: unknown): string | null {
  if (typeof def === 'number') {
    return typeof value === 'number' && !Number.isNaN(value) ? null : `${key} must be a number, got ${describe(value)}`;
  }
  if (typeof def === 'boolean') return typeof value === 'boolean' ? null : `${key} must be a boolean, got ${describe(value)}`;
  if (Array.isArray(def)) {
    const ok = Array.isArray(value) && value.length === def.length && value.every((x) => typeof x === 'number' && !Number.isNaN(x));
    return ok ? null : `${key} must be an array of ${def.length} numbers, got ${describe(value)}`;
  }
  return null;
}

/** Fills defaults from `options`, rejecting unknown keys (e.g. snake_case `weight_decay`). */
export function withDefaults<H extends Hyperparameters>(op: string, base: H, options: Partial<H> | undefined): H {
  const out = { ...base } as Record<string, unknown>;
  if (options === undefined || options === null) return out as H;
  if (!isPlainObject(options)) throw new ValueError(op, `options must be an object, got ${describe(options)}`);
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    if (!hasOwn(base, k)) throw new ValueError(op, `unknown option '${k}'; known: ${Object.keys(base).join(', ')}`);
    const problem = hyperProblem(k, v, (base as Record<string, unknown>)[k]);
    if (problem) throw new ValueError(op, problem);
    out[k] = copyValue(v);
  }
  return out as H;
}
