/**
 * An Optimizer's state: the per-parameter records, the check of one record, and the state dict in
 * PyTorch's layout with its save and checked load.
 *
 * `stateDict()` numbers parameters by their position across the groups,
 * `{ state: { 0: { step, exp_avg, ... } }, paramGroups: [{ lr, ..., params: [0, 1] }] }`.
 * State keys keep PyTorch's snake_case names (`exp_avg`, `momentum_buffer`); hyperparameters use
 * blockgrad's camelCase (`weightDecay`). `stateToJSON` / `stateFromJSON` (state-json.ts) turn a
 * state dict into plain JSON and back. Loading follows load-contract.ts: the number of groups and
 * their sizes, every hyperparameter's type and value, every state key, type and tensor shape are
 * checked first, and state tensors are copied in (cast to the state dtype for their parameter).
 */
import { fmtShape } from '../errors';
import { Tensor } from '../tensor/tensor';
import { isFloating } from '../tensor/dtype';
import { sameShape } from '../tensor/shape';
import { hasOwn, isPlainObject } from '../util/objects';
import { copyValue, hyperProblem, type Hyperparameters } from './hyperparameters';
import type { ParamGroup } from './param-groups';
import { cloneOnto, stateDtype } from './state-tensors';
import type { LoadProblems } from './load-contract';
import { describe } from '../util/describe';

/** A value in a parameter's optimizer state: a tensor (moment, buffer) or a number (step). */
export type StateValue = Tensor | number;
/** One parameter's optimizer state, e.g. `{ step: 3, exp_avg: Tensor, exp_avg_sq: Tensor }`. */
export type ParamState = Record<string, StateValue>;

/** A saved group: hyperparameters and the parameters' indices (plus their names, if known). */
export type SavedParamGroup = Record<string, unknown> & { params: number[]; paramNames?: string[] };

/** PyTorch's optimizer state dict layout. Tensors are the optimizer's own (see stateDict). */
export interface OptimizerStateDict {
  state: Record<number, ParamState>;
  paramGroups: SavedParamGroup[];
}

/** How a state key is checked on load: a tensor shaped like its parameter, or a count (integer >= 0). */
export type StateKind = 'tensor' | 'count';

/** What checking one state record needs from its optimizer. */
export interface StateRules<H extends Hyperparameters> {
  /** The state keys the optimizer stores and how they are checked. */
  spec: Record<string, StateKind>;
  /** The keys a non-empty state record must have under `group`'s hyperparameters. */
  requiredKeys(group: H): string[];
}

/** Problems with one state record for `param` under `group`'s hyperparameters. */
export function stateRecordProblems<H extends Hyperparameters>(rules: StateRules<H>, state: unknown, param: Tensor, group: H, where = 'state'): string[] {
  if (!isPlainObject(state)) return [`${where} must be an object, got ${describe(state)}`];
  const spec = rules.spec;
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
    for (const k of rules.requiredKeys(group)) if (!hasOwn(state, k)) out.push(`${where} lacks '${k}'`);
  }
  return out;
}

/**
 * `{ state, paramGroups }` in PyTorch's layout (parameters numbered across groups in order;
 * parameters without state are left out). Hyperparameters are copies; state tensors are detached
 * views sharing the optimizer's storage (see Optimizer.stateDict).
 */
export function saveStateDict<H extends Hyperparameters>(groups: readonly ParamGroup<H>[], states: ReadonlyMap<Tensor, ParamState>): OptimizerStateDict {
  const state: Record<number, ParamState> = {};
  let index = 0;
  const paramGroups = groups.map((g) => {
    const saved: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(g)) if (k !== 'params') saved[k] = copyValue(v);
    const ids: number[] = [];
    for (const p of g.params) {
      const s = states.get(p);
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

/** What loading a state dict needs from an Optimizer: its groups and state, and its checks. */
export interface LoadTarget<H extends Hyperparameters> extends StateRules<H> {
  defaults: Readonly<H>;
  groups: ParamGroup<H>[];
  state: Map<Tensor, ParamState>;
  /** A problem with a group's hyperparameter values, or null. */
  validateHyper(h: H): string | null;
  /** Problems with the values of a record whose keys and shapes are fine (read on the host). */
  stateValueProblems(state: ParamState, where: string): string[];
  /** Drops (and disposes) all state. */
  resetState(): void;
}

/**
 * Checks `sd` for the optimizer behind `target`, recording every problem in `problems`, and
 * returns the commit that loads it. Call the commit only when no problem at all was recorded
 * (here, or by a wrapper's own checks: MixedPrecisionOptimizer's masters, BlockOptimizer's
 * schedule), as load-contract.ts says.
 */
export function checkStateDict<H extends Hyperparameters>(target: LoadTarget<H>, sd: unknown, problems: LoadProblems): () => void {
  const nothing = () => {};
  if (!isPlainObject(sd) || !isPlainObject(sd.state) || !Array.isArray(sd.paramGroups)) {
    problems.add('expected an object { state, paramGroups } as returned by stateDict()');
    return nothing;
  }
  const savedGroups = sd.paramGroups as unknown[];
  const savedState = sd.state;
  if (savedGroups.length !== target.groups.length) {
    problems.add(`the state dict has ${savedGroups.length} parameter groups but the optimizer has ${target.groups.length}`);
    return nothing;
  }
  const defaults = target.defaults as unknown as Record<string, unknown>;
  const before = problems.list.length;
  const idToParam = new Map<string, { param: Tensor; group: number }>();
  const merged: Record<string, unknown>[] = [];
  savedGroups.forEach((saved, gi) => {
    const current = target.groups[gi] as unknown as Record<string, unknown> & ParamGroup<H>;
    const hyper: Record<string, unknown> = {};
    for (const k of Object.keys(defaults)) hyper[k] = current[k];
    merged.push(hyper);
    if (!isPlainObject(saved)) {
      problems.add(`group ${gi} is ${describe(saved)}, not an object`);
      return;
    }
    const ids = saved.params;
    if (!Array.isArray(ids)) problems.add(`group ${gi} has no params list`);
    else if (ids.length !== current.params.length) {
      problems.add(`group ${gi} has ${ids.length} parameters in the state dict but ${current.params.length} in the optimizer`);
    } else {
      ids.forEach((id, j) => {
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) problems.add(`group ${gi} params[${j}] is ${describe(id)}, not an index`);
        else if (idToParam.has(String(id))) problems.add(`parameter index ${id} appears twice`);
        else idToParam.set(String(id), { param: current.params[j], group: gi });
      });
    }
    for (const [k, v] of Object.entries(saved)) {
      if (k === 'params') continue;
      if (k === 'paramNames') {
        const ok = Array.isArray(v) && v.length === current.params.length && v.every((x) => typeof x === 'string');
        if (!ok) problems.add(`group ${gi} paramNames must be ${current.params.length} strings`);
        else if (current.paramNames && v.some((x, j) => x !== current.paramNames?.[j])) {
          const j = v.findIndex((x, i) => x !== current.paramNames?.[i]);
          problems.add(`group ${gi} parameter ${j} is '${v[j]}' in the state dict but '${current.paramNames[j]}' in the optimizer`);
        }
      } else if (k === 'name') {
        if (typeof v !== 'string') problems.add(`group ${gi} name must be a string, got ${describe(v)}`);
      } else if (!hasOwn(defaults, k)) {
        problems.add(`group ${gi} has unknown hyperparameter '${k}' (known: ${Object.keys(defaults).join(', ')})`);
      } else {
        const problem = hyperProblem(k, v, defaults[k]);
        if (problem) problems.add(`group ${gi}: ${problem}`);
        else hyper[k] = v;
      }
    }
    for (const k of Object.keys(defaults)) if (!hasOwn(saved, k)) problems.add(`group ${gi} lacks hyperparameter '${k}'`);
    const problem = target.validateHyper(hyper as unknown as H);
    if (problem) problems.add(`group ${gi}: ${problem}`);
  });
  for (const [id, entry] of Object.entries(savedState)) {
    const owner = idToParam.get(id);
    if (!owner) {
      problems.add(`state ${id} belongs to no parameter of the saved groups`);
      continue;
    }
    const structural = stateRecordProblems(target, entry, owner.param, merged[owner.group] as unknown as H, `state[${id}]`);
    problems.add(...structural);
    if (structural.length === 0) problems.add(...target.stateValueProblems(entry as ParamState, `state[${id}]`));
  }
  if (problems.list.length > before) return nothing;

  // everything checked: copy the state in, then the hyperparameters
  return () => {
    const fresh = new Map<Tensor, ParamState>();
    for (const [id, entry] of Object.entries(savedState)) {
      if (Object.keys(entry as object).length === 0) continue; // no state: initialised at the next step
      const { param } = idToParam.get(id) as { param: Tensor };
      const copy: ParamState = {};
      for (const [k, v] of Object.entries(entry as ParamState)) {
        copy[k] = v instanceof Tensor ? cloneOnto(v, param, stateDtype(param)).tagMemory('optimizer') : v;
      }
      fresh.set(param, copy);
    }
    target.resetState();
    for (const [p, s] of fresh) target.state.set(p, s);
    (savedGroups as SavedParamGroup[]).forEach((saved, gi) => {
      const current = target.groups[gi] as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(merged[gi])) current[k] = copyValue(v);
      if (typeof saved.name === 'string') current.name = saved.name;
      if (current.paramNames === undefined && Array.isArray(saved.paramNames)) current.paramNames = [...saved.paramNames];
    });
  };
}
