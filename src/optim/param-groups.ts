/**
 * Parameter groups: what an optimizer's constructor and addParamGroup accept, and the checked
 * group they make (`{ params, paramNames?, name?, ...hyperparameters }`, the hyperparameters
 * filled from the optimizer's defaults).
 */
import { DTypeError, ValueError } from '../errors';
import { Tensor } from '../tensor/tensor';
import { isFloating } from '../tensor/dtype';
import { hasOwn, isPlainObject } from '../util/objects';
import { copyValue, hyperProblem, type Hyperparameters } from './hyperparameters';
import { describe } from '../util/describe';
import { isNamedPair } from './parameters';

/** A parameter group: the parameters and the hyperparameters that update them. */
export type ParamGroup<H extends Hyperparameters = Hyperparameters> = H & {
  params: Tensor[];
  /** The dotted names, when the group was built from `namedParameters()` pairs. */
  paramNames?: string[];
  /** An optional label, e.g. 'no_decay'. */
  name?: string;
};

/** `model.namedParameters()`. */
export type NamedParams = [string, Tensor][];

/** What a group passed to a constructor or to addParamGroup looks like: params plus overrides. */
export type ParamGroupInput<H extends Hyperparameters = Hyperparameters> = Partial<H> & {
  params: Iterable<Tensor> | Iterable<[string, Tensor]>;
  name?: string;
};

/** Parameters as a list, as `namedParameters()` pairs, or as a list of groups. */
export type ParamsInput<H extends Hyperparameters = Hyperparameters> =
  | Iterable<Tensor>
  | Iterable<[string, Tensor]>
  | Iterable<ParamGroupInput<H>>;

/**
 * The groups that an optimizer's `params` stand for: the list of groups itself, or one group of
 * all the parameters (tensors or `[name, tensor]` pairs). `op` is the optimizer's name.
 */
export function groupInputs<H extends Hyperparameters>(op: string, params: ParamsInput<H>): ParamGroupInput<H>[] {
  if (params instanceof Tensor) {
    throw new ValueError(op, 'params must be a list of tensors, namedParameters() pairs or groups, got a single Tensor: wrap it in [ ]');
  }
  if (isPlainObject(params) && typeof (params as { parameters?: unknown }).parameters === 'function') {
    throw new ValueError(op, 'got a Module: pass model.parameters() or model.namedParameters()');
  }
  if (params === null || typeof params !== 'object' || typeof (params as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new ValueError(op, `params must be an iterable of tensors, [name, tensor] pairs or groups, got ${describe(params)}`);
  }
  const items = Array.from(params as Iterable<unknown>);
  if (items.length === 0) throw new ValueError(op, 'got an empty parameter list');
  const isGroup = (x: unknown) => isPlainObject(x) && hasOwn(x, 'params');
  if (items.every(isGroup)) return items as ParamGroupInput<H>[];
  if (items.some(isGroup)) {
    throw new ValueError(op, 'params mixes groups ({ params, ... }) with tensors: pass either a list of groups or a list of tensors');
  }
  return [{ params: items } as unknown as ParamGroupInput<H>];
}

/**
 * The group that `input` (`{ params, ...overrides }`) makes in an optimizer of class `kind` whose
 * groups are `groups`: missing hyperparameters come from `defaults`. Throws a ValueError (or a
 * DTypeError) naming `op` for a parameter that is not a live floating leaf or is already in a
 * group, an unknown or ill-typed hyperparameter, or values that `validateHyper` refuses.
 */
export function makeParamGroup<H extends Hyperparameters>(
  op: string,
  kind: string,
  defaults: Readonly<H>,
  input: ParamGroupInput<H>,
  groups: readonly ParamGroup<H>[],
  validateHyper: (h: H) => string | null,
): ParamGroup<H> {
  if (!isPlainObject(input) || !hasOwn(input, 'params')) throw new ValueError(op, `a group must be an object with params, got ${describe(input)}`);
  const raw = input.params as unknown;
  if (raw instanceof Tensor) throw new ValueError(op, 'group params must be a list of tensors, got a single Tensor: wrap it in [ ]');
  if (raw === null || typeof raw !== 'object' || typeof (raw as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new ValueError(op, `group params must be an iterable of tensors or [name, tensor] pairs, got ${describe(raw)}`);
  }
  const items = Array.from(raw as Iterable<unknown>);
  if (items.length === 0) throw new ValueError(op, 'a parameter group has an empty parameter list');
  const named = items.every(isNamedPair);
  if (!named && items.some(isNamedPair)) throw new ValueError(op, 'group params mix tensors and [name, tensor] pairs');
  const params = named ? items.map((x) => (x as [string, Tensor])[1]) : (items as Tensor[]);
  const names = named ? items.map((x) => (x as [string, Tensor])[0]) : undefined;

  const existing = new Set(groups.flatMap((g) => g.params));
  const seen = new Set<Tensor>();
  params.forEach((p, i) => {
    const label = names ? `'${names[i]}'` : p.name ? `'${p.name}'` : `#${i}`;
    if (!(p instanceof Tensor)) throw new ValueError(op, `parameter ${label} is ${describe(p)}, not a Tensor`);
    if (p.isDisposed || p.buffer.released) throw new ValueError(op, `parameter ${label} was disposed`);
    if (!isFloating(p.dtype)) throw new DTypeError(op, `parameter ${label} is ${p.dtype}: only floating tensors can be optimized`);
    if (!p.isLeaf) throw new ValueError(op, `parameter ${label} is not a leaf (it was computed by ${p.gradFn?.op ?? 'an op'}): optimize leaves, e.g. x.detach().requiresGrad_()`);
    if (seen.has(p)) throw new ValueError(op, `parameter ${label} appears twice in the group`);
    if (existing.has(p)) throw new ValueError(op, `parameter ${label} is already in another parameter group: a parameter may belong to one group only`);
    seen.add(p);
  });
  if (groups.length > 0 && (groups[0].paramNames !== undefined) !== named) {
    throw new ValueError(op, 'all parameter groups must be named (namedParameters() pairs) or all unnamed');
  }

  const known = defaults as unknown as Record<string, unknown>;
  const group: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(known)) group[k] = copyValue(v);
  for (const [k, v] of Object.entries(input)) {
    if (k === 'params') continue;
    if (k === 'name') {
      if (typeof v !== 'string') throw new ValueError(op, `group name must be a string, got ${describe(v)}`);
    } else if (!hasOwn(known, k)) {
      throw new ValueError(op, `unknown hyperparameter '${k}' for ${kind}; known: ${Object.keys(known).join(', ')}`);
    } else {
      const problem = hyperProblem(k, v, known[k]);
      if (problem) throw new ValueError(op, problem);
    }
    group[k] = copyValue(v);
  }
  const problem = validateHyper(group as unknown as H);
  if (problem) throw new ValueError(op, problem);
  group.params = [...params];
  if (names) group.paramNames = names;
  return group as unknown as ParamGroup<H>;
}
