/**
 * Mixed precision for any optimizer: float32 master copies of float16 parameters.
 *
 * A float16 weight cannot take Adam's small updates (an update below half a float16 ulp is lost),
 * so the optimizer updates a float32 master copy and the float16 weight is the master rounded
 * (PyTorch AMP's and the BAdam reference's scheme). `MasterWeights.step(base)` first checks
 * every group's hyperparameters (`base.checkGroups`), every gradient and every state record, so
 * that a problem throws before anything changes; then, for each float16 parameter p with a
 * gradient, it:
 *
 *   1. casts p.grad to a float32 gradient (tagged 'grads') and frees the float16 one
 *      (p.grad = null, disposed): the gradient is consumed by the step;
 *   2. runs base's update on (master, grad32, state, group), with the state stored under
 *      `base.state.set(p, state)` so that it lands in `base.stateDict()` under p's index
 *      (`base.applyUpdate`: updateParameter without its checks, made once for the whole step);
 *   3. rounds the master into p (`copy_` under noGrad, round-to-nearest-even);
 *   4. after `onBeforeFree` (the one moment when weights, masters, moments and the float32
 *      gradients are all alive, e.g. for a memory measurement) disposes the float32 gradients.
 *
 * All gradients are cast before any update, so during the step the float32 gradients of all
 * parameters are alive together: the 4 bytes per parameter of the paper's accounting
 * (2 weights + 4 master + 4 gradient + 8 Adam moments = 18). Parameters of another dtype
 * (float32, float64) are updated in place with their own gradient, which is left in p.grad as
 * `Optimizer.step` leaves it. Everything is disposed explicitly, so `memory.stats()` is exact
 * without waiting for the garbage collector.
 *
 * `MixedPrecisionOptimizer(base)` applies this to every parameter of `base`: the
 * "mixed-precision Adam on a float16 model" baseline (18 bytes per parameter) that BAdam
 * (2 bytes per parameter plus 16 per active-block parameter) is compared against.
 */
import { ValueError, fmtShape } from '../../errors';
import { Tensor } from '../../tensor/tensor';
import { isFloating, isHalf } from '../../tensor/dtype';
import { sameShape } from '../../tensor/shape';
import { enableGrad, noGrad } from '../../autograd/grad-mode';
import { cast } from '../../autograd/ops/elementwise';
import { copy_ } from '../../autograd/ops/inplace';
import type { Optimizer } from '../optimizer';
import type { Hyperparameters } from '../hyperparameters';
import type { OptimizerStateDict } from '../state-dict';
import { cloneOnto, stateValueProblem } from '../state-tensors';
import { LoadProblems, refuseLoad } from '../load-contract';
import { isPlainObject } from '../../util/objects';

/** Options of a mixed-precision step. */
export interface MasterStepOptions<L = unknown> {
  /** Re-evaluates the model and returns the loss; runs first, with grad mode on. */
  closure?: () => L;
  /**
   * Called after every update, while the float32 gradients, the masters and the optimizer
   * state are all alive and before the float32 gradients are freed.
   */
  onBeforeFree?: () => void;
}

/** `step(closure)` or `step({ closure, onBeforeFree })`. */
export function stepOptions<L>(op: string, arg: (() => L) | MasterStepOptions<L> | undefined): MasterStepOptions<L> {
  if (arg === undefined) return {};
  if (typeof arg === 'function') return { closure: arg };
  if (arg === null || typeof arg !== 'object') throw new ValueError(op, 'expected a closure or { closure, onBeforeFree }');
  for (const [k, v] of Object.entries(arg)) {
    if (k !== 'closure' && k !== 'onBeforeFree') throw new ValueError(op, `unknown step option '${k}'; known: closure, onBeforeFree`);
    if (v !== undefined && typeof v !== 'function') throw new ValueError(op, `${k} must be a function`);
  }
  return arg;
}

/** float32 master copies of float16 parameters, and the mixed-precision step that uses them. */
export class MasterWeights {
  private readonly masters = new Map<Tensor, Tensor>();

  /** Makes masters for the float16 parameters among `params` (others need none). */
  constructor(params: Iterable<Tensor> = []) {
    this.add(params);
  }

  /** Adds a master for every float16 parameter in `params` that has none (a float32 copy, tagged 'master'). */
  add(params: Iterable<Tensor>): void {
    noGrad(() => {
      for (const p of params) {
        if (!isHalf(p.dtype) || this.masters.has(p)) continue;
        this.masters.set(p, cast(p, 'float32').tagMemory('master'));
      }
    });
  }

  /** Replaces (or creates) p's master with a float32 copy of `values` (e.g. from a state dict). */
  load(p: Tensor, values: Tensor): void {
    if (!sameShape(p.shape, values.shape)) {
      throw new ValueError('MasterWeights.load', `a master of shape ${fmtShape(values.shape)} for a parameter of shape ${fmtShape(p.shape)}`);
    }
    const copy = cloneOnto(values, p, 'float32').tagMemory('master');
    this.masters.get(p)?.dispose();
    this.masters.set(p, copy);
  }

  /** p's float32 master, or undefined (p is not float16, or not held here). */
  masterOf(p: Tensor): Tensor | undefined {
    return this.masters.get(p);
  }

  /** The parameters that have a master. */
  parameters(): Tensor[] {
    return [...this.masters.keys()];
  }

  /** Number of masters. */
  get size(): number {
    return this.masters.size;
  }

  /** Disposes the masters of `params` (default: all); their 'master' bytes drop at once. */
  release(params?: Iterable<Tensor>): void {
    const which = params === undefined ? [...this.masters.keys()] : [...params];
    for (const p of which) {
      const m = this.masters.get(p);
      if (!m) continue;
      m.dispose();
      this.masters.delete(p);
    }
  }

  /**
   * One update of every parameter of `base` that has a gradient (see the file comment).
   * Everything is checked before anything changes: every group's hyperparameters
   * (`base.checkGroups`), every gradient and every state record. A bad group or gradient throws
   * with the model, the gradients and the state untouched.
   */
  step<H extends Hyperparameters>(base: Optimizer<H>, options: Pick<MasterStepOptions, 'onBeforeFree'> = {}): void {
    const op = 'MasterWeights.step';
    type Group = (typeof base.paramGroups)[number];
    // 0. checks, before any gradient is consumed
    base.checkGroups(op);
    const todo: { p: Tensor; group: Group; grad: Tensor }[] = [];
    for (const group of base.paramGroups) {
      for (const p of group.params) {
        const g = p.grad;
        if (g === null) continue;
        // the master (float16 parameters) has p's shape and backend: checking p checks it
        const problem = base.updateProblem(p, g, base.state.get(p) ?? {}, group);
        if (problem) throw new ValueError(op, problem);
        todo.push({ p, group, grad: g });
      }
    }
    const work: { p: Tensor; group: Group; target: Tensor; grad: Tensor; owned: boolean }[] = [];
    // 1. float32 gradients (the float16 ones are consumed)
    noGrad(() => {
      for (const { p, group, grad: g } of todo) {
        if (!isHalf(p.dtype)) {
          work.push({ p, group, target: p, grad: g, owned: false });
          continue;
        }
        if (!this.masters.has(p)) this.add([p]);
        const g32 = g.dtype === 'float32' ? g : cast(g, 'float32');
        g32.tagMemory('grads');
        p.grad = null;
        if (g32 !== g) g.dispose();
        work.push({ p, group, target: this.masters.get(p) as Tensor, grad: g32, owned: true });
      }
    });
    try {
      // 2. updates (arguments checked above), 3. masters rounded into the float16 weights
      for (const { p, group, target, grad } of work) {
        let state = base.state.get(p);
        if (state === undefined) base.state.set(p, (state = {}));
        base.applyUpdate(target, grad, state, group);
        if (target !== p) noGrad(() => copy_(p, target));
      }
      options.onBeforeFree?.();
    } finally {
      // 4. the float32 gradients
      for (const w of work) if (w.owned) w.grad.dispose();
    }
  }
}

/** `MixedPrecisionOptimizer.stateDict()`: the base's state dict plus the masters by parameter index. */
export interface MixedPrecisionStateDict extends OptimizerStateDict {
  masters: Record<number, Tensor>;
}

/**
 * Mixed-precision training with any optimizer: float32 masters for every float16 parameter of
 * `base` (made at construction), updated by `base`'s rule and rounded into the weights at each
 * step. Its `paramGroups` are the base's, so schedulers drive it directly.
 */
export class MixedPrecisionOptimizer<H extends Hyperparameters = Hyperparameters> {
  readonly masters: MasterWeights;

  constructor(readonly base: Optimizer<H>) {
    if (base === null || typeof base !== 'object' || typeof (base as Optimizer<H>).updateParameter !== 'function') {
      throw new ValueError('MixedPrecisionOptimizer', 'expected an Optimizer (e.g. new Adam(model.parameters()))');
    }
    this.masters = new MasterWeights(base.parameters());
  }

  get paramGroups(): Optimizer<H>['paramGroups'] {
    return this.base.paramGroups;
  }

  /** One mixed-precision step; `step(closure)` or `step({ closure, onBeforeFree })`. */
  step<L = unknown>(arg?: (() => L) | MasterStepOptions<L>): L | undefined {
    const options = stepOptions('MixedPrecisionOptimizer.step', arg);
    const loss = options.closure ? enableGrad(options.closure) : undefined;
    this.masters.step(this.base, options);
    return loss;
  }

  /** Clears the gradients of the base's parameters (see Optimizer.zeroGrad). */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    this.base.zeroGrad(options);
  }

  /** The base's state dict and the masters (detached views, like the state tensors). */
  stateDict(): MixedPrecisionStateDict {
    const masters: Record<number, Tensor> = {};
    this.base.parameters().forEach((p, i) => {
      const m = this.masters.masterOf(p);
      if (m) masters[i] = m.detach();
    });
    return { ...this.base.stateDict(), masters };
  }

  /**
   * Restores the base's state and the masters. The masters and the base's state dict are checked
   * first, together: any problem throws one ValueError listing them all and nothing changes
   * (load-contract.ts).
   */
  loadStateDict(sd: MixedPrecisionStateDict): void {
    const op = 'MixedPrecisionOptimizer.loadStateDict';
    if (!isPlainObject(sd) || !isPlainObject(sd.masters)) refuseLoad(op, 'expected { state, paramGroups, masters } from stateDict()');
    const params = this.base.parameters();
    const problems = new LoadProblems(op);
    const halfs = params.map((p, i) => [i, p] as const).filter(([, p]) => isHalf(p.dtype));
    for (const [i, p] of halfs) {
      const m: unknown = sd.masters[i];
      if (!(m instanceof Tensor)) problems.add(`masters[${i}] is missing`);
      else if (m.isDisposed || m.buffer.released || !isFloating(m.dtype)) problems.add(`masters[${i}] must be a live floating Tensor`);
      else if (!sameShape(m.shape, p.shape)) problems.add(`masters[${i}] has shape ${fmtShape(m.shape)} but its parameter ${fmtShape(p.shape)}`);
      else problems.add(stateValueProblem(`masters[${i}]`, m, false)); // a NaN master becomes a NaN weight
    }
    const expected = new Set(halfs.map(([i]) => String(i)));
    for (const k of Object.keys(sd.masters)) if (!expected.has(k)) problems.add(`masters[${k}] belongs to no float16 or bfloat16 parameter`);
    const commitBase = this.base.checkStateDict({ state: sd.state, paramGroups: sd.paramGroups }, problems);
    problems.throwIfAny();
    commitBase();
    for (const [i, p] of halfs) this.masters.load(p, sd.masters[i]);
  }

  /** Frees the masters and the base's state. */
  release(): void {
    this.masters.release();
    this.base.resetState();
  }
}
