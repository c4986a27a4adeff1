/**
 * Adam and AdamW: PyTorch's torch.optim.Adam / AdamW update, run by one fused backend kernel
 * (Backend.adamUpdate) per parameter. For each parameter p with gradient g, at step t (1-based):
 *
 *   g = maximize ? -g : g
 *   AdamW: p = p·(1 - lr·weightDecay)              Adam: g = g + weightDecay·p
 *   m = lerp(m, g, 1 - β1)                          (= β1·m + (1-β1)·g)
 *   v = β2·v + (1 - β2)·g²
 *   amsgrad: vmax = max(vmax, v), and vmax replaces v below
 *   denom = sqrt(v) / sqrt(1 - β2^t) + eps          (eps outside the square root)
 *   p = p - lr / (1 - β1^t) · m / denom
 *
 * State per parameter, with PyTorch's names: `step` (a number), `exp_avg`, `exp_avg_sq` and, with
 * amsgrad, `max_exp_avg_sq` (tensors, float32 for float16 parameters, else the parameter's dtype,
 * tagged 'optimizer'). The cpu kernel computes each element in float64 and rounds once on store.
 */
import { ValueError, fmtShape } from '../errors';
import { Tensor } from '../tensor/tensor';
import { backendByName } from '../kernels/registry';
import { bumpVersion } from '../autograd/version';
import { Optimizer } from './optimizer';
import { lrProblem, withDefaults } from './hyperparameters';
import type { ParamGroup, ParamsInput } from './param-groups';
import type { ParamState, StateKind } from './state-dict';
import { stateValueProblem, zeroState } from './state-tensors';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

export const ADAM_DEFAULTS: Readonly<AdamOptions> = Object.freeze({
  lr: 1e-3,
  betas: [0.9, 0.999] as [number, number],
  eps: 1e-8,
  weightDecay: 0,
  amsgrad: false,
  maximize: false,
});

/** A tensor the fused kernel can use as a moment buffer: dense, row-major, the whole buffer. */
function isDense(t: Tensor): boolean {
  return t.isContiguous() && t.offset === 0 && t.numel === t.buffer.length;
}

export class Adam extends Optimizer<AdamOptions> {
  constructor(params: ParamsInput<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super(params, withDefaults(new.target.name, new.target.baseDefaults(), options));
  }

  /** The defaults before options (AdamW overrides weightDecay). */
  protected static baseDefaults(): AdamOptions {
    return { ...ADAM_DEFAULTS, betas: [...ADAM_DEFAULTS.betas] };
  }

  /** true for AdamW: weight decay shrinks the weights instead of joining the gradient. */
  get decoupledWeightDecay(): boolean {
    return false;
  }

  protected validateHyper(h: AdamOptions): string | null {
    const [b1, b2] = h.betas;
    const lr = lrProblem(h.lr);
    if (lr) return lr;
    if (!(h.eps >= 0) || !Number.isFinite(h.eps)) return `invalid eps ${h.eps}: expected a finite value >= 0`;
    if (!(b1 >= 0 && b1 < 1)) return `invalid beta1 ${b1}: expected 0 <= betas[0] < 1`;
    if (!(b2 >= 0 && b2 < 1)) return `invalid beta2 ${b2}: expected 0 <= betas[1] < 1`;
    if (!(h.weightDecay >= 0) || !Number.isFinite(h.weightDecay)) return `invalid weightDecay ${h.weightDecay}: expected a finite value >= 0`;
    return null;
  }

  protected stateSpec(): Record<string, StateKind> {
    return { step: 'count', exp_avg: 'tensor', exp_avg_sq: 'tensor', max_exp_avg_sq: 'tensor' };
  }

  /**
   * Moments a run can have: exp_avg finite, exp_avg_sq and max_exp_avg_sq finite and >= 0. A
   * negative second moment would make the next step's sqrt NaN, and the weights with it.
   */
  protected override stateValueProblems(state: ParamState, where: string): string[] {
    const problems: (string | null)[] = [];
    for (const [key, nonNegative] of [['exp_avg', false], ['exp_avg_sq', true], ['max_exp_avg_sq', true]] as const) {
      const t = state[key];
      if (t instanceof Tensor) problems.push(stateValueProblem(`${where}.${key}`, t, nonNegative));
    }
    return problems.filter((p): p is string => p !== null);
  }

  protected requiredStateKeys(group: AdamOptions): string[] {
    return group.amsgrad ? ['step', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['step', 'exp_avg', 'exp_avg_sq'];
  }

  /** `{ step: 0, exp_avg: 0, exp_avg_sq: 0 }` (and `max_exp_avg_sq` with amsgrad), shaped like `target`. */
  initState(target: Tensor, group: ParamGroup<AdamOptions>): ParamState {
    const state: ParamState = { step: 0, exp_avg: zeroState(target), exp_avg_sq: zeroState(target) };
    if (group.amsgrad) state.max_exp_avg_sq = zeroState(target);
    return state;
  }

  protected update(p: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<AdamOptions>): void {
    const op = `${this.constructor.name}.step`;
    // amsgrad switched on after some steps (or state loaded without it): start the max at zero
    if (group.amsgrad && state.max_exp_avg_sq === undefined) state.max_exp_avg_sq = zeroState(p);
    const moments = [state.exp_avg, state.exp_avg_sq, group.amsgrad ? state.max_exp_avg_sq : null];
    for (const m of moments) {
      if (m === null) continue;
      if (!(m instanceof Tensor) || !isDense(m) || m.backend !== p.backend || m.numel !== p.numel) {
        throw new ValueError(op, `the moment buffers of a parameter of shape ${fmtShape(p.shape)} must be dense tensors of its size on its backend`);
      }
    }
    const [beta1, beta2] = group.betas;
    const step = (state.step as number) + 1;
    bumpVersion(p); // Note [Version counter]: a graph that saved p must refuse its backward
    backendByName(p.backend).adamUpdate(
      p,
      grad,
      (state.exp_avg as Tensor).buffer,
      (state.exp_avg_sq as Tensor).buffer,
      group.amsgrad ? (state.max_exp_avg_sq as Tensor).buffer : null,
      {
        lr: group.lr,
        beta1,
        beta2,
        eps: group.eps,
        weightDecay: group.weightDecay,
        decoupled: this.decoupledWeightDecay,
        step,
        maximize: group.maximize,
        amsgrad: group.amsgrad,
      },
    );
    state.step = step;
  }
}

/** AdamW: Adam with decoupled weight decay (p *= 1 - lr·weightDecay), default weightDecay 0.01. */
export class AdamW extends Adam {
  protected static override baseDefaults(): AdamOptions {
    return { ...ADAM_DEFAULTS, betas: [...ADAM_DEFAULTS.betas], weightDecay: 1e-2 };
  }

  override get decoupledWeightDecay(): boolean {
    return true;
  }
}
