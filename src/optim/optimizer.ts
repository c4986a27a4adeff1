/**
 * The optimizer base: parameter groups, per-parameter state, zeroGrad, step, state dicts.
 *
 * Semantics follow torch.optim.Optimizer:
 * - `paramGroups[i]` is `{ params, lr, ...hyperparameters }`; the constructor fills every group
 *   from the optimizer's defaults, and `step()` reads the hyperparameters from the groups each
 *   time, so schedulers (and wrappers such as BAdam) change `group.lr` and nothing else.
 * - `state` maps each parameter (the Tensor object itself) to its state record: tensors (moments,
 *   momentum buffers, tagged as 'optimizer' memory) and numbers (`step`). State is created lazily
 *   at a parameter's first update, so building an optimizer allocates nothing and is cheap.
 * - A parameter whose `.grad` is null is skipped. Parameters are written in place under noGrad:
 *   the Tensor objects keep their identity, so modules and wrappers keep valid references.
 * - `stateDict()` has PyTorch's layout: parameters are numbered by their position across the
 *   groups, `{ state: { 0: { step, exp_avg, ... } }, paramGroups: [{ lr, ..., params: [0, 1] }] }`.
 *   State keys keep PyTorch's snake_case names (`exp_avg`, `momentum_buffer`); hyperparameters use
 *   blockgrad's camelCase (`weightDecay`). `stateToJSON` / `stateFromJSON` turn a state dict into
 *   plain JSON and back.
 *
 * Differences from PyTorch, on purpose: duplicate parameters (within or across groups), unknown
 * hyperparameter keys (`weight_decay` for `weightDecay`) and an empty parameter list are errors;
 * loadStateDict checks everything before it changes anything; state for a float16 parameter is
 * kept in float32 (PyTorch keeps it in the parameter's dtype, where Adam's second moment
 * underflows).
 *
 * ## Hooks for wrappers (BAdam, mixed precision)
 * Each optimizer exposes its per-parameter update:
 *
 * - `initState(target, group)`: fresh state for a tensor shaped like `target` (zeros, float32 for
 *   float16 targets, on target's backend, tagged 'optimizer'); `{}` when the optimizer has none.
 * - `updateParameter(target, grad, state, group)`: one update of `target` in place (under noGrad),
 *   reading hyperparameters from `group` and advancing `state`. `target` need not be one of the
 *   optimizer's parameters: a wrapper holding a float32 master copy `m` of a float16 parameter `p`
 *   runs `opt.updateParameter(m, grad32, st, group)` and rounds `m` back into `p` with `copy_`.
 *   Storing `st` under `opt.state.set(p, st)` keeps it in the optimizer's stateDict.
 * - `resetState()`: drops (and disposes) all state, as BAdam does at each block switch.
 *
 * Subclasses pass their defaults to the constructor (through `withDefaults`, which rejects
 * unknown option names) and implement `validateHyper`, `stateSpec`, `requiredStateKeys`,
 * `initState` and `update`.
 */
import { DTypeError, ValueError, fmtShape } from '../errors';
import { Tensor } from '../tensor/tensor';
import { isFloating, type DType } from '../tensor/dtype';
import { sameShape } from '../tensor/shape';
import { backendByName } from '../kernels/registry';
import { enableGrad, noGrad } from '../autograd/grad-mode';
import { copy_ } from '../autograd/ops/inplace';
import { describe, gradProblem } from './util';

/**
 * Whether `obj` has `key` as its own property. `key in obj` would also find Object.prototype's
 * names (`toString`, `constructor`), so an option called `toString` would pass as known.
 */
const hasOwn = (obj: object, key: string): boolean => Object.prototype.hasOwnProperty.call(obj, key);

/** A value in a parameter's optimizer state: a tensor (moment, buffer) or a number (step). */
export type StateValue = Tensor | number;
/** One parameter's optimizer state, e.g. `{ step: 3, exp_avg: Tensor, exp_avg_sq: Tensor }`. */
export type ParamState = Record<string, StateValue>;

/**
 * Hyperparameters: numbers, booleans, or fixed-length tuples of numbers (`betas`). Every
 * optimizer has `lr`.
 */
export interface Hyperparameters {
  lr: number;
}

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

/** A saved group: hyperparameters and the parameters' indices (plus their names, if known). */
export type SavedParamGroup = Record<string, unknown> & { params: number[]; paramNames?: string[] };

/** PyTorch's optimizer state dict layout. Tensors are the optimizer's own (see stateDict). */
export interface OptimizerStateDict {
  state: Record<number, ParamState>;
  paramGroups: SavedParamGroup[];
}

/** How a state key is checked on load: a tensor shaped like its parameter, or a count (integer >= 0). */
export type StateKind = 'tensor' | 'count';

/** The dtype optimizer state is kept in for a parameter: float32 for float16, else the parameter's own. */
export function stateDtype(param: Tensor): DType {
  return param.dtype === 'float16' ? 'float32' : param.dtype;
}

/** A fresh contiguous copy of `src` (from any backend) on `like`'s backend, as `dtype`. */
export function cloneOnto(src: Tensor, like: Tensor, dtype: DType): Tensor {
  const backend = backendByName(like.backend);
  const buf = src.backend === like.backend ? backend.copy(src, dtype) : backend.upload(dtype, backendByName(src.backend).read(src));
  return new Tensor(buf, src.shape);
}

/** A zero tensor shaped like `like`, in optimizer state's dtype for it, tagged 'optimizer'. */
export function zeroState(like: Tensor): Tensor {
  const dtype = stateDtype(like);
  return new Tensor(backendByName(like.backend).zeros(dtype, like.numel), like.shape).tagMemory('optimizer');
}


/**
 * Clears the gradients of `params` (the zeroGrad of every optimizer): with `setToNone`, `.grad`
 * becomes null and the gradient tensor is disposed (each tensor once, even if shared); otherwise
 * the gradient is zeroed in place (a gradient built with createGraph is first cut from its graph).
 */
export function clearGrads(params: Iterable<Tensor>, setToNone: boolean): void {
  for (const p of params) {
    const g = p.grad;
    if (g === null) continue;
    if (setToNone) {
      p.grad = null;
      g.dispose();
    } else {
      if (!g.isLeaf) p.grad = g.detach();
      const z = p.grad as Tensor;
      noGrad(() => copy_(z, 0));
    }
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Tensor);
}

/** Copies a hyperparameter value (tuples are copied so groups never share an array). */
function copyValue<T>(v: T): T {
  return (Array.isArray(v) ? [...v] : v) as T;
}

/** Checks `value` against the kind of the default `def`; returns a problem or null. */
function hyperProblem(key: string, value: unknown, def: unknown): string | null {
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

export abstract class Optimizer<H extends Hyperparameters = Hyperparameters> {
  /** The hyperparameters that groups without overrides get. */
  readonly defaults: Readonly<H>;
  paramGroups: ParamGroup<H>[] = [];
  /** Per-parameter state, keyed by the parameter tensor itself. */
  readonly state = new Map<Tensor, ParamState>();

  constructor(params: ParamsInput<H>, defaults: H) {
    const op = this.constructor.name;
    this.defaults = Object.freeze({ ...defaults });
    const problem = this.validateHyper(this.defaults);
    if (problem) throw new ValueError(op, problem);
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
    if (items.every(isGroup)) {
      for (const g of items) this.addParamGroup(g as ParamGroupInput<H>);
    } else if (items.some(isGroup)) {
      throw new ValueError(op, 'params mixes groups ({ params, ... }) with tensors: pass either a list of groups or a list of tensors');
    } else {
      this.addParamGroup({ params: items } as unknown as ParamGroupInput<H>);
    }
  }

  // ------------------------------------------------------------------ subclass interface

  /** A problem with a group's (or the defaults') hyperparameter values, or null. */
  protected abstract validateHyper(h: H): string | null;
  /** The state keys this optimizer stores and how loadStateDict checks them. */
  protected abstract stateSpec(): Record<string, StateKind>;
  /** The keys a non-empty state record must have under `group`'s hyperparameters. */
  protected abstract requiredStateKeys(group: H): string[];
  /**
   * Problems with the values in a loaded state record whose keys and shapes are fine (read on the
   * host, by loadStateDict only, never at a step): Adam's second moment must be finite and >= 0,
   * or the next step writes NaN into the weights. None by default.
   */
  protected stateValueProblems(state: ParamState, where: string): string[] {
    return [];
  }
  /** Fresh state for a tensor shaped like `target` (see the file comment). */
  abstract initState(target: Tensor, group: ParamGroup<H>): ParamState;
  /** The update itself; runs under noGrad with validated arguments. */
  protected abstract update(target: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<H>): void;

  // ------------------------------------------------------------------ groups

  /** Adds a group `{ params, ...overrides }`; missing hyperparameters come from the defaults. */
  addParamGroup(input: ParamGroupInput<H>): void {
    const op = `${this.constructor.name}.addParamGroup`;
    if (!isPlainObject(input) || !hasOwn(input, 'params')) throw new ValueError(op, `a group must be an object with params, got ${describe(input)}`);
    const raw = input.params as unknown;
    if (raw instanceof Tensor) throw new ValueError(op, 'group params must be a list of tensors, got a single Tensor: wrap it in [ ]');
    if (raw === null || typeof raw !== 'object' || typeof (raw as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new ValueError(op, `group params must be an iterable of tensors or [name, tensor] pairs, got ${describe(raw)}`);
    }
    const items = Array.from(raw as Iterable<unknown>);
    if (items.length === 0) throw new ValueError(op, 'a parameter group has an empty parameter list');
    const isPair = (x: unknown) => Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && x[1] instanceof Tensor;
    const named = items.every(isPair);
    if (!named && items.some(isPair)) throw new ValueError(op, 'group params mix tensors and [name, tensor] pairs');
    const params = named ? items.map((x) => (x as [string, Tensor])[1]) : (items as Tensor[]);
    const names = named ? items.map((x) => (x as [string, Tensor])[0]) : undefined;

    const existing = new Set(this.paramGroups.flatMap((g) => g.params));
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
    if (this.paramGroups.length > 0 && (this.paramGroups[0].paramNames !== undefined) !== named) {
      throw new ValueError(op, 'all parameter groups must be named (namedParameters() pairs) or all unnamed');
    }

    const defaults = this.defaults as unknown as Record<string, unknown>;
    const group: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(defaults)) group[k] = copyValue(v);
    for (const [k, v] of Object.entries(input)) {
      if (k === 'params') continue;
      if (k === 'name') {
        if (typeof v !== 'string') throw new ValueError(op, `group name must be a string, got ${describe(v)}`);
      } else if (!hasOwn(defaults, k)) {
        throw new ValueError(op, `unknown hyperparameter '${k}' for ${this.constructor.name}; known: ${Object.keys(defaults).join(', ')}`);
      } else {
        const problem = hyperProblem(k, v, defaults[k]);
        if (problem) throw new ValueError(op, problem);
      }
      group[k] = copyValue(v);
    }
    const problem = this.validateHyper(group as unknown as H);
    if (problem) throw new ValueError(op, problem);
    group.params = [...params];
    if (names) group.paramNames = names;
    this.paramGroups.push(group as unknown as ParamGroup<H>);
  }

  /** Every parameter, in group order. */
  parameters(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  // ------------------------------------------------------------------ gradients and steps

  /**
   * Clears gradients: sets `.grad` to null and disposes the gradient tensor (default), or with
   * `setToNone: false` zeroes it in place. Disposing frees the storage at once, so a synchronous
   * training loop does not keep every step's gradients alive until the garbage collector runs
   * (the engine gives every leaf a `.grad` tensor of its own). A gradient you want to keep past
   * zeroGrad() must be cloned first.
   */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    clearGrads(this.parameters(), options.setToNone ?? true);
  }

  /**
   * One optimization step over every parameter that has a gradient. `closure` (re-evaluates the
   * model and returns the loss) runs first with grad mode on; its result is returned. Everything
   * (hyperparameters, gradients' shapes, dtypes and backends) is checked before any parameter is
   * written, so a bad group or gradient leaves the model untouched.
   */
  step<L = unknown>(closure?: () => L): L | undefined {
    const loss = closure ? enableGrad(closure) : undefined;
    const op = `${this.constructor.name}.step`;
    this.checkGroups(op);
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        if (p.grad === null) continue;
        const bad = gradProblem(p, p.grad);
        if (bad) throw new ValueError(op, bad);
      }
    }
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          if (p.grad === null) continue;
          let state = this.state.get(p);
          if (state === undefined || Object.keys(state).length === 0) {
            state = this.initState(p, group);
            this.state.set(p, state);
          }
          this.update(p, p.grad, state, group);
        }
      }
    });
    return loss;
  }

  /**
   * The wrapper hook: one update of `target` (a parameter or a stand-in for it, e.g. a float32
   * master copy) with `grad`, reading hyperparameters from `group` and advancing `state` (from
   * `initState`, or `{}`, which is filled in place). Runs under noGrad; checks its arguments first
   * (the group's hyperparameters, the gradient and the state).
   */
  updateParameter(target: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<H>): void {
    const op = `${this.constructor.name}.updateParameter`;
    if (!(target instanceof Tensor) || !(grad instanceof Tensor)) throw new ValueError(op, 'target and grad must be Tensors');
    const problem = this.groupProblem(group) ?? this.updateProblem(target, grad, state, group);
    if (problem) throw new ValueError(op, problem);
    this.applyUpdate(target, grad, state, group);
  }

  /**
   * Checks every parameter group's hyperparameters, as `step()` does before it writes anything:
   * throws a ValueError naming `op` and the first bad group. Wrappers that consume gradients
   * before updating (MasterWeights.step) call it first, then `updateProblem` for each parameter,
   * and only then change anything.
   */
  checkGroups(op = `${this.constructor.name}.step`): void {
    for (const [gi, group] of this.paramGroups.entries()) {
      const problem = this.groupProblem(group);
      if (problem) throw new ValueError(op, `parameter group ${gi}: ${problem}`);
    }
  }

  /**
   * What is wrong with updating `target` with `grad` and `state` (a problem message, or null);
   * `group`'s hyperparameters are not checked here (see checkGroups).
   */
  updateProblem(target: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<H>): string | null {
    const problem = gradProblem(target, grad);
    if (problem) return problem;
    const stateProblems = this.stateProblems(state, target, group);
    return stateProblems.length ? stateProblems.join('; ') : null;
  }

  /**
   * `updateParameter` without any check, for wrappers that ran checkGroups() for this step and
   * updateProblem() for this parameter (MasterWeights.step). Runs under noGrad.
   * @internal
   */
  applyUpdate(target: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<H>): void {
    if (Object.keys(state).length === 0) Object.assign(state, this.initState(target, group)); // `{}` starts fresh
    noGrad(() => this.update(target, grad, state, group));
  }

  /** Drops every parameter's state (disposing its tensors): the next step starts fresh. */
  resetState(): void {
    for (const s of this.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    this.state.clear();
  }

  private groupProblem(group: ParamGroup<H>): string | null {
    const defaults = this.defaults as unknown as Record<string, unknown>;
    for (const k of Object.keys(defaults)) {
      const problem = hyperProblem(k, (group as unknown as Record<string, unknown>)[k], defaults[k]);
      if (problem) return problem;
    }
    return this.validateHyper(group);
  }

  /** Problems with one state record for `param` under `group`'s hyperparameters. */
  private stateProblems(state: unknown, param: Tensor, group: H, where = 'state'): string[] {
    if (!isPlainObject(state)) return [`${where} must be an object, got ${describe(state)}`];
    const spec = this.stateSpec();
    const out: string[] = [];
    for (const [k, v] of Object.entries(state)) {
      const kind = hasOwn(spec, k) ? spec[k] : undefined;
      if (kind === undefined) out.push(`${where} has unknown key '${k}' (known: ${Object.keys(spec).join(', ') || 'none'})`);
      else if (kind === 'count') {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) out.push(`${where}.${k} must be an integer >= 0, got ${describe(v)}`);
      } else if (!(v instanceof Tensor)) out.push(`${where}.${k} must be a Tensor, got ${describe(v)}`);
      else if (v.isDisposed || v.buffer.released) out.push(`${where}.${k} was disposed`);
      else if (!isFloating(v.dtype)) out.push(`${where}.${k} is ${v.dtype}, expected a floating tensor`);
      else if (!sameShape(v.shape, param.shape)) {
        out.push(`${where}.${k} has shape ${fmtShape(v.shape)} but its parameter has shape ${fmtShape(param.shape)}`);
      }
    }
    if (Object.keys(state).length > 0) {
      for (const k of this.requiredStateKeys(group)) if (!hasOwn(state, k)) out.push(`${where} lacks '${k}'`);
    }
    return out;
  }

  // ------------------------------------------------------------------ state dicts

  /**
   * `{ state, paramGroups }` in PyTorch's layout (parameters numbered across groups in order;
   * parameters without state are left out). Hyperparameters are copies; state tensors are
   * detached views sharing the optimizer's storage (as PyTorch returns references), so serialise
   * them (stateToJSON) or clone them before the next step if a snapshot is needed. The views keep
   * the storage alive even if resetState() disposes the optimizer's own handles.
   */
  stateDict(): OptimizerStateDict {
    const state: Record<number, ParamState> = {};
    let index = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const saved: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(g)) if (k !== 'params') saved[k] = copyValue(v);
      const ids: number[] = [];
      for (const p of g.params) {
        const s = this.state.get(p);
        if (s && Object.keys(s).length > 0) {
          const entry: ParamState = {};
          for (const [k, v] of Object.entries(s)) entry[k] = v instanceof Tensor ? v.detach() : v;
          state[index] = entry;
        }
        ids.push(index++);
      }
      saved.params = ids;
      return saved as SavedParamGroup;
    });
    return { state, paramGroups };
  }

  /**
   * Restores hyperparameters and state from `stateDict()` output (or its JSON round trip). The
   * number of groups and their sizes, every hyperparameter's type and value, every state key,
   * type and tensor shape are checked first; any problem throws one ValueError listing them all
   * and nothing changes. State tensors are copied in (cast to the state dtype for their parameter).
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const op = `${this.constructor.name}.loadStateDict`;
    if (!isPlainObject(sd) || !isPlainObject(sd.state) || !Array.isArray(sd.paramGroups)) {
      throw new ValueError(op, 'expected an object { state, paramGroups } as returned by stateDict(). Nothing was loaded');
    }
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new ValueError(op, `the state dict has ${sd.paramGroups.length} parameter groups but the optimizer has ${this.paramGroups.length}. Nothing was loaded`);
    }
    const defaults = this.defaults as unknown as Record<string, unknown>;
    const problems: string[] = [];
    const idToParam = new Map<string, { param: Tensor; group: number }>();
    const merged: Record<string, unknown>[] = [];
    sd.paramGroups.forEach((saved: unknown, gi) => {
      const current = this.paramGroups[gi] as unknown as Record<string, unknown> & ParamGroup<H>;
      const hyper: Record<string, unknown> = {};
      for (const k of Object.keys(defaults)) hyper[k] = current[k];
      merged.push(hyper);
      if (!isPlainObject(saved)) {
        problems.push(`group ${gi} is ${describe(saved)}, not an object`);
        return;
      }
      const ids = saved.params;
      if (!Array.isArray(ids)) problems.push(`group ${gi} has no params list`);
      else if (ids.length !== current.params.length) {
        problems.push(`group ${gi} has ${ids.length} parameters in the state dict but ${current.params.length} in the optimizer`);
      } else {
        ids.forEach((id, j) => {
          if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) problems.push(`group ${gi} params[${j}] is ${describe(id)}, not an index`);
          else if (idToParam.has(String(id))) problems.push(`parameter index ${id} appears twice`);
          else idToParam.set(String(id), { param: current.params[j], group: gi });
        });
      }
      for (const [k, v] of Object.entries(saved)) {
        if (k === 'params') continue;
        if (k === 'paramNames') {
          const ok = Array.isArray(v) && v.length === current.params.length && v.every((x) => typeof x === 'string');
          if (!ok) problems.push(`group ${gi} paramNames must be ${current.params.length} strings`);
          else if (current.paramNames && v.some((x, j) => x !== current.paramNames?.[j])) {
            const j = v.findIndex((x, i) => x !== current.paramNames?.[i]);
            problems.push(`group ${gi} parameter ${j} is '${v[j]}' in the state dict but '${current.paramNames[j]}' in the optimizer`);
          }
        } else if (k === 'name') {
          if (typeof v !== 'string') problems.push(`group ${gi} name must be a string, got ${describe(v)}`);
        } else if (!hasOwn(defaults, k)) {
          problems.push(`group ${gi} has unknown hyperparameter '${k}' (known: ${Object.keys(defaults).join(', ')})`);
        } else {
          const problem = hyperProblem(k, v, defaults[k]);
          if (problem) problems.push(`group ${gi}: ${problem}`);
          else hyper[k] = v;
        }
      }
      for (const k of Object.keys(defaults)) if (!hasOwn(saved, k)) problems.push(`group ${gi} lacks hyperparameter '${k}'`);
      const problem = this.validateHyper(hyper as unknown as H);
      if (problem) problems.push(`group ${gi}: ${problem}`);
    });
    for (const [id, entry] of Object.entries(sd.state)) {
      const target = idToParam.get(id);
      if (!target) {
        problems.push(`state ${id} belongs to no parameter of the saved groups`);
        continue;
      }
      const structural = this.stateProblems(entry, target.param, merged[target.group] as unknown as H, `state[${id}]`);
      problems.push(...structural);
      if (structural.length === 0) problems.push(...this.stateValueProblems(entry as ParamState, `state[${id}]`));
    }
    if (problems.length > 0) throw new ValueError(op, `${problems.join('; ')}. Nothing was loaded`);

    // everything checked: copy the state in, then the hyperparameters
    const fresh = new Map<Tensor, ParamState>();
    for (const [id, entry] of Object.entries(sd.state)) {
      if (Object.keys(entry as object).length === 0) continue; // no state: initialised at the next step
      const { param } = idToParam.get(id) as { param: Tensor };
      const copy: ParamState = {};
      for (const [k, v] of Object.entries(entry as ParamState)) {
        copy[k] = v instanceof Tensor ? cloneOnto(v, param, stateDtype(param)).tagMemory('optimizer') : v;
      }
      fresh.set(param, copy);
    }
    this.resetState();
    for (const [p, s] of fresh) this.state.set(p, s);
    sd.paramGroups.forEach((saved, gi) => {
      const current = this.paramGroups[gi] as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(merged[gi])) current[k] = copyValue(v);
      if (typeof saved.name === 'string') current.name = saved.name;
      if (current.paramNames === undefined && Array.isArray(saved.paramNames)) current.paramNames = [...saved.paramNames];
    });
  }
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
