/**
 * Helpers shared by the optimizers (src/optim and src/optim/badam): value descriptions for error
 * messages, the gradient check, and `Temporaries`, which disposes the intermediate tensors of an
 * update as soon as they are used.
 */
import { ValueError, fmtShape } from '../errors';
import { Tensor } from '../tensor/tensor';
import { scalarTensor } from '../tensor/creation';
import { isFloating, type DType } from '../tensor/dtype';
import { sameShape } from '../tensor/shape';
import { backendByName } from '../kernels/registry';

/** A short description of a value for an error message: `null`, `'text'`, `3`, `an array of length 2`, ... */
export function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  if (x instanceof Tensor) return `a Tensor of shape ${fmtShape(x.shape)}`;
  if (typeof x === 'number') return String(x);
  if (typeof x === 'string') return `'${x}'`;
  return typeof x;
}

/**
 * Why `g` cannot be the gradient of `p` (a problem naming the parameter), or null: it must be a
 * live floating Tensor shaped like `p`, on `p`'s backend, and `p` must be a live floating tensor.
 */
export function gradProblem(p: Tensor, g: unknown, label = p.name ? `'${p.name}'` : `of shape ${fmtShape(p.shape)}`): string | null {
  if (!(g instanceof Tensor)) return `the gradient of parameter ${label} is ${describe(g)}, not a Tensor`;
  if (p.isDisposed || p.buffer.released) return `parameter ${label} was disposed`;
  if (g.isDisposed || g.buffer.released) return `the gradient of parameter ${label} was disposed`;
  if (!isFloating(p.dtype) || !isFloating(g.dtype)) return `parameter ${label} (${p.dtype}) and its gradient (${g.dtype}) must be floating`;
  if (!sameShape(p.shape, g.shape)) return `the gradient of parameter ${label} has shape ${fmtShape(g.shape)}, expected ${fmtShape(p.shape)}`;
  if (p.backend !== g.backend) return `parameter ${label} is on ${p.backend} but its gradient is on ${g.backend}`;
  return null;
}

/**
 * The first value of a loaded state tensor that a healthy run cannot have, as a problem naming
 * `where`, the value and its index (null when all are fine): every value finite, and with
 * `nonNegative` also >= 0 (second moments are averages of squares). Reads `t` on the host, so
 * loadStateDict calls it, never a step.
 */
export function stateValueProblem(where: string, t: Tensor, nonNegative: boolean): string | null {
  const values = backendByName(t.backend).read(t);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v) && (!nonNegative || v >= 0)) continue;
    const rule = nonNegative ? 'finite and >= 0 (an average of squared gradients)' : 'finite';
    return `${where} holds ${v} at flat index ${i}, but every value must be ${rule}: the next step would write NaN into the weights; the state dict is corrupt`;
  }
  return null;
}

/** Biases, norm weights and 1-D parameters get no weight decay (unless decayAllParameters). */
export function isNoDecayParameter(name: string, p: Tensor): boolean {
  return name.endsWith('bias') || /norm/i.test(name) || p.ndim === 1;
}

/** Whether `x` is a `[name, Tensor]` pair. */
export function isNamedPair(x: unknown): x is [string, Tensor] {
  return Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && x[1] instanceof Tensor;
}

/**
 * The parameters an optimizer is built over, from a Module (its `namedParameters()`) or an
 * iterable of `[name, Tensor]` pairs, or, with `allowTensors`, of Tensors: the list, the names
 * (null for bare tensors), with a single Tensor, a non-iterable, an empty list, a mix of pairs
 * and tensors, and a tensor or name listed twice refused. Callers add their own per-parameter
 * checks (leaf, floating, disposed). `why` ends the error for items that are not pairs (what the
 * names are needed for).
 */
export function namedParameterList(
  op: string,
  model: unknown,
  options: { allowTensors?: boolean; why?: string } = {},
): { params: Tensor[]; names: string[] | null } {
  const { allowTensors = false, why = '' } = options;
  const accepted = allowTensors ? 'a model, its namedParameters() pairs or a list of tensors' : 'a model or its namedParameters() pairs';
  if (model instanceof Tensor) throw new ValueError(op, `got a single Tensor: pass ${accepted}`);
  let items: unknown[];
  if (model !== null && typeof model === 'object' && typeof (model as { namedParameters?: unknown }).namedParameters === 'function') {
    items = Array.from((model as { namedParameters(): Iterable<unknown> }).namedParameters());
  } else if (model !== null && typeof model === 'object' && typeof (model as Iterable<unknown>)[Symbol.iterator] === 'function') {
    items = Array.from(model as Iterable<unknown>);
  } else {
    throw new ValueError(op, `expected ${accepted}, got ${describe(model)}`);
  }
  if (items.length === 0) throw new ValueError(op, 'got an empty parameter list (the model has no parameters): nothing to train');
  const named = items.every(isNamedPair);
  if (!named) {
    const bad = items.findIndex((x) => !isNamedPair(x));
    if (!allowTensors) {
      throw new ValueError(op, `parameters must be [name, Tensor] pairs (model.namedParameters())${why}: item ${bad} is not a [name, Tensor] pair`);
    }
    if (!items.every((x) => x instanceof Tensor)) throw new ValueError(op, 'parameters must all be Tensors or all [name, Tensor] pairs');
  }
  const params = named ? items.map((x) => (x as [string, Tensor])[1]) : (items as Tensor[]);
  const names = named ? items.map((x) => (x as [string, Tensor])[0]) : null;
  const seenNames = new Set<string>();
  const seen = new Set<Tensor>();
  params.forEach((p, i) => {
    const name = names?.[i];
    if (name !== undefined) {
      if (seenNames.has(name)) throw new ValueError(op, `parameter name '${name}' appears twice`);
      seenNames.add(name);
    }
    if (seen.has(p)) throw new ValueError(op, `parameter ${name !== undefined ? `'${name}'` : `#${i}`} appears twice${name !== undefined ? ' (under another name too)' : ''}`);
    seen.add(p);
  });
  return { params, names };
}

/**
 * The intermediate tensors of one update, disposed as soon as they have been used, so that a
 * synchronous training loop leaves no garbage for the memory tracker to count (and no storage for
 * the garbage collector to find late). Tensors passed to the constructor (the parameter, its
 * gradient, state tensors) are never disposed, even when an op hands one back unchanged
 * (`cast(p, p.dtype)` returns `p`).
 *
 *   const t = new Temporaries([p, grad]);
 *   const x = t.own(cast(p, 'float32'));
 *   const step = t.own(mul(x, t.scalar(lr, x.dtype)));   // the scalar is a temporary too
 *   ...
 *   t.free(step);                                          // done with it
 *   t.freeAll();                                           // in a finally: whatever is left
 */
export class Temporaries {
  private readonly kept: Set<Tensor>;
  private readonly owned = new Set<Tensor>();

  constructor(kept: Iterable<Tensor>) {
    this.kept = new Set(kept);
  }

  /** Registers `t` as a temporary (unless it is kept) and returns it. */
  own<T extends Tensor>(t: T): T {
    if (!this.kept.has(t)) this.owned.add(t);
    return t;
  }

  /** Never disposes `t` (e.g. a state tensor that an expression may return). */
  keep(t: Tensor): void {
    this.kept.add(t);
    this.owned.delete(t);
  }

  /**
   * A 0-d tensor holding `value` in `dtype`, registered as a temporary: the operand an op would
   * make from the number itself (for a float32/float64 tensor operand, `mul(x, v)` and
   * `mul(x, t.scalar(v, x.dtype))` give the same bits).
   */
  scalar(value: number, dtype: DType): Tensor {
    return this.own(scalarTensor(value, dtype));
  }

  /** Disposes the given temporaries now (kept tensors and tensors not registered are left alone). */
  free(...ts: Tensor[]): void {
    for (const t of ts) {
      if (!this.owned.has(t)) continue;
      this.owned.delete(t);
      t.dispose();
    }
  }

  /** `next` replaces `prev` (a temporary that is freed): `g = t.swap(g, neg(g))`. */
  swap<T extends Tensor>(prev: Tensor, next: T): T {
    this.own(next);
    if (next !== prev) this.free(prev);
    return next;
  }

  /** Disposes every temporary still registered. */
  freeAll(): void {
    for (const t of this.owned) t.dispose();
    this.owned.clear();
  }
}
