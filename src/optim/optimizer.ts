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
 * - `stateDict()` has PyTorch's layout (state-dict.ts): parameters are numbered by their position
 *   across the groups, `{ state: { 0: { step, exp_avg, ... } }, paramGroups: [{ lr, ..., params: [0, 1] }] }`.
 *   State keys keep PyTorch's snake_case names (`exp_avg`, `momentum_buffer`); hyperparameters use
 *   blockgrad's camelCase (`weightDecay`). `stateToJSON` / `stateFromJSON` turn a state dict into
 *   plain JSON and back.
 *
 * Differences from PyTorch, on purpose: duplicate parameters (within or across groups), unknown
 * hyperparameter keys (`weight_decay` for `weightDecay`) and an empty parameter list are errors;
 * loadStateDict checks everything before it changes anything (load-contract.ts); state for a
 * float16 parameter is kept in float32 (PyTorch keeps it in the parameter's dtype, where Adam's
 * second moment underflows).
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
import { ValueError } from '../errors';
import { Tensor } from '../tensor/tensor';
import { enableGrad, noGrad } from '../autograd/grad-mode';
import { hyperProblem, type Hyperparameters } from './hyperparameters';
import { groupInputs, makeParamGroup, type ParamGroup, type ParamGroupInput, type ParamsInput } from './param-groups';
import { checkStateDict, saveStateDict, stateRecordProblems, type LoadTarget, type OptimizerStateDict, type ParamState, type StateKind, type StateRules } from './state-dict';
import { LoadProblems } from './load-contract';
import { clearGrads, gradProblem } from './gradients';

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
    for (const g of groupInputs(op, params)) this.addParamGroup(g);
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
    const kind = this.constructor.name;
    this.paramGroups.push(makeParamGroup(`${kind}.addParamGroup`, kind, this.defaults, input, this.paramGroups, (h) => this.validateHyper(h)));
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
    const stateProblems = stateRecordProblems(this.stateRules(), state, target, group);
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

  /**
   * What is wrong with these hyperparameters (the defaults fill the rest), or null: for wrappers
   * that check overrides before they use them (BlockOptimizer's blockHyperparams).
   * @internal
   */
  hyperparameterProblem(overrides: Readonly<Record<string, unknown>>): string | null {
    return this.groupProblem({ ...this.defaults, ...overrides, params: [] } as ParamGroup<H>);
  }

  private groupProblem(group: ParamGroup<H>): string | null {
    const defaults = this.defaults as unknown as Record<string, unknown>;
    for (const k of Object.keys(defaults)) {
      const problem = hyperProblem(k, (group as unknown as Record<string, unknown>)[k], defaults[k]);
      if (problem) return problem;
    }
    return this.validateHyper(group);
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
    return saveStateDict(this.paramGroups, this.state);
  }

  /**
   * Restores hyperparameters and state from `stateDict()` output (or its JSON round trip). The
   * number of groups and their sizes, every hyperparameter's type and value, every state key,
   * type and tensor shape are checked first; any problem throws one ValueError listing them all
   * and nothing changes (load-contract.ts). State tensors are copied in (cast to the state dtype
   * for their parameter).
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const problems = new LoadProblems(`${this.constructor.name}.loadStateDict`);
    const commit = this.checkStateDict(sd, problems);
    problems.throwIfAny();
    commit();
  }

  /**
   * loadStateDict's checks, for wrappers that check more of their own before anything is loaded
   * (MixedPrecisionOptimizer, BlockOptimizer): records every problem with `sd` in `problems` and
   * returns the commit, to be called only if no problem at all was recorded.
   * @internal
   */
  checkStateDict(sd: OptimizerStateDict, problems: LoadProblems): () => void {
    return checkStateDict(this.loadTarget(), sd, problems);
  }

  /** The state keys and the keys a record must have, made once: updateProblem runs per parameter per step. */
  private rules: StateRules<H> | null = null;
  private stateRules(): StateRules<H> {
    this.rules ??= { spec: this.stateSpec(), requiredKeys: (group) => this.requiredStateKeys(group) };
    return this.rules;
  }

  /** This optimizer as state-dict.ts sees it (its protected checks included). */
  private loadTarget(): LoadTarget<H> {
    return {
      ...this.stateRules(),
      defaults: this.defaults,
      groups: this.paramGroups,
      state: this.state,
      validateHyper: (h) => this.validateHyper(h),
      stateValueProblems: (state, where) => this.stateValueProblems(state, where),
      resetState: () => this.resetState(),
    };
  }
}
