/**
 * The parameters that an optimizer working by name is built over (BlockOptimizer,
 * BlockOptimizerRatio, LOMO): a Module or its `namedParameters()`, checked once for all of them,
 * and which of them get no weight decay.
 */
import { ValueError } from '../errors';
import { Tensor } from '../tensor/tensor';
import { isFloating } from '../tensor/dtype';
import { describe } from '../util/describe';

/** Whether `x` is a `[name, Tensor]` pair. */
export function isNamedPair(x: unknown): x is [string, Tensor] {
  return Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && x[1] instanceof Tensor;
}

/** Biases, norm weights and 1-D parameters get no weight decay (unless decayAllParameters). */
export function isNoDecayParameter(name: string, p: Tensor): boolean {
  return name.endsWith('bias') || /norm/i.test(name) || p.ndim === 1;
}

export interface NamedParameterListOptions {
  /** Bare Tensors are accepted too (their names are then null). Default false. */
  allowTensors?: boolean;
  /** Ends the error for items that are not pairs: what the names are needed for. */
  why?: string;
  /**
   * Which parameters the optimizer may train, and so must be floating leaves: 'all' (a
   * BlockOptimizer turns requiresGrad on for any block it activates) or 'requiresGrad' (the
   * others leave frozen parameters alone). Every parameter must be alive either way.
   */
  trainable: 'all' | 'requiresGrad';
}

/**
 * The parameters an optimizer is built over, from a Module (its `namedParameters()`) or an
 * iterable of `[name, Tensor]` pairs, or, with `allowTensors`, of Tensors: the list and the names
 * (null for bare tensors). Refused: a single Tensor, a non-iterable, an empty list, a mix of
 * pairs and tensors, a tensor or name listed twice, a disposed parameter, and a trainable one
 * (see `trainable`) that is not a floating leaf.
 */
export function namedParameterList(op: string, model: unknown, options: NamedParameterListOptions): { params: Tensor[]; names: string[] | null } {
  const { allowTensors = false, why = '', trainable } = options;
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
    const label = name !== undefined ? `'${name}'` : `#${i}`;
    if (p.isDisposed || p.buffer.released) throw new ValueError(op, `parameter ${label} was disposed`);
    if (trainable === 'requiresGrad' && !p.requiresGrad) return;
    if (!isFloating(p.dtype)) throw new ValueError(op, `parameter ${label} is ${p.dtype}: only floating tensors can be optimized`);
    if (!p.isLeaf) throw new ValueError(op, `parameter ${label} is not a leaf (it was computed by ${p.gradFn?.op ?? 'an op'}): optimize leaves, e.g. x.detach().requiresGrad_()`);
  });
  return { params, names };
}
