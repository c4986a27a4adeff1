/**
 * SGD with momentum, dampening, Nesterov momentum, L2 weight decay and maximize: PyTorch's
 * torch.optim.SGD algorithm, step for step. For each parameter p with gradient g:
 *
 *   g = maximize ? -g : g
 *   g = g + weightDecay·p                          (when weightDecay != 0)
 *   when momentum != 0:
 *     buf = g (a copy)                             on the first step: no dampening
 *     buf = momentum·buf + (1 - dampening)·g       afterwards
 *     g = nesterov ? g + momentum·buf : buf
 *   p = p - lr·g
 *
 * The update is composed from tensor ops and runs on any backend. float16 parameters are
 * computed in float32 (the momentum buffer is float32) and rounded back once.
 */
import { Tensor } from '../tensor/tensor';
import { add, cast, mul, neg, sub } from '../autograd/ops/elementwise';
import { copy_ } from '../autograd/ops/inplace';
import type { DType } from '../tensor/dtype';
import { Optimizer } from './optimizer';
import { lrProblem, withDefaults } from './hyperparameters';
import type { ParamGroup, ParamsInput } from './param-groups';
import type { ParamState, StateKind } from './state-dict';
import { cloneOnto, stateDtype, stateValueProblem } from './state-tensors';
import { Temporaries } from './temporaries';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export const SGD_DEFAULTS: Readonly<SGDOptions> = Object.freeze({
  lr: 1e-3,
  momentum: 0,
  dampening: 0,
  weightDecay: 0,
  nesterov: false,
  maximize: false,
});

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: ParamsInput<SGDOptions>, options: Partial<SGDOptions> = {}) {
    super(params, withDefaults('SGD', SGD_DEFAULTS, options));
  }

  protected validateHyper(h: SGDOptions): string | null {
    const lr = lrProblem(h.lr);
    if (lr) return lr;
    if (!(h.momentum >= 0) || !Number.isFinite(h.momentum)) return `invalid momentum ${h.momentum}: expected a finite value >= 0`;
    if (!Number.isFinite(h.dampening)) return `invalid dampening ${h.dampening}`;
    if (!(h.weightDecay >= 0) || !Number.isFinite(h.weightDecay)) return `invalid weightDecay ${h.weightDecay}: expected a finite value >= 0`;
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
      return `Nesterov momentum requires momentum > 0 and dampening 0 (got momentum ${h.momentum}, dampening ${h.dampening})`;
    }
    return null;
  }

  protected stateSpec(): Record<string, StateKind> {
    return { momentum_buffer: 'tensor' };
  }

  /** A momentum buffer is a running sum of gradients: finite in any run that has not diverged. */
  protected override stateValueProblems(state: ParamState, where: string): string[] {
    const buf = state.momentum_buffer;
    const problem = buf instanceof Tensor ? stateValueProblem(`${where}.momentum_buffer`, buf, false) : null;
    return problem ? [problem] : [];
  }

  /** A missing buffer is (re)initialised from the gradient at the next step, as in PyTorch. */
  protected requiredStateKeys(): string[] {
    return [];
  }

  /** SGD's state starts empty; the momentum buffer is created at the first step with momentum. */
  initState(): ParamState {
    return {};
  }

  protected update(p: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<SGDOptions>): void {
    const { lr, momentum, dampening, weightDecay, nesterov, maximize } = group;
    sgdUpdate(p, grad, lr, weightDecay, {
      beforeDecay: maximize ? negate : undefined,
      afterDecay: momentum !== 0 ? momentumStep(p, state, momentum, dampening, nesterov) : undefined,
    });
  }
}

const negate: GradientStep = (g, t) => t.swap(g, neg(g));

/**
 * SGD's momentum as a step of the gradient: the buffer starts as a copy of the gradient (no
 * dampening), then `buf = momentum·buf + (1 - dampening)·g`; the gradient becomes the buffer, or
 * with Nesterov `g + momentum·buf`. The buffer lives in `state` and is never a temporary.
 */
function momentumStep(p: Tensor, state: ParamState, momentum: number, dampening: number, nesterov: boolean): GradientStep {
  return (g, t, dtype) => {
    let buf = state.momentum_buffer as Tensor | undefined;
    if (buf === undefined) {
      buf = cloneOnto(g, p, dtype).tagMemory('optimizer');
      state.momentum_buffer = buf;
    } else {
      const kept = t.own(mul(buf, t.scalar(momentum, dtype)));
      const fresh = t.own(mul(g, t.scalar(1 - dampening, dtype)));
      const next = t.own(add(kept, fresh));
      t.free(kept, fresh);
      copy_(buf, next);
      t.free(next);
    }
    t.keep(buf);
    if (!nesterov) return t.swap(g, buf);
    const ahead = t.own(mul(buf, t.scalar(momentum, dtype)));
    const out = t.swap(g, add(g, ahead));
    t.free(ahead);
    return out;
  };
}

/** A step of the gradient inside `sgdUpdate`: returns the new gradient (`t.swap` frees the old one). */
export type GradientStep = (g: Tensor, t: Temporaries, dtype: DType) => Tensor;

/**
 * SGD's update of `p` in place, op for op: shared by SGD and LOMO's hook (lomo.ts), so that the
 * two agree bit for bit. The gradient is cast to the state dtype (float32 for float16 `p`), goes
 * through `beforeDecay` (SGD's maximize, LOMO's clipping), gets `weightDecay·p` added, goes
 * through `afterDecay` (SGD's momentum), and `p` becomes `p - lr·g`, rounded back once. Every
 * intermediate is disposed right after use (the parameter, its gradient and whatever a step
 * keeps, such as a momentum buffer, are not). The caller runs it under noGrad.
 */
export function sgdUpdate(p: Tensor, grad: Tensor, lr: number, weightDecay: number, steps: { beforeDecay?: GradientStep; afterDecay?: GradientStep } = {}): void {
  const dtype = stateDtype(p);
  const t = new Temporaries([p, grad]);
  try {
    const x = t.own(cast(p, dtype));
    let g = t.own(cast(grad, dtype));
    if (steps.beforeDecay) g = steps.beforeDecay(g, t, dtype);
    if (weightDecay !== 0) {
      const decay = t.own(mul(x, t.scalar(weightDecay, dtype)));
      g = t.swap(g, add(g, decay));
      t.free(decay);
    }
    if (steps.afterDecay) g = steps.afterDecay(g, t, dtype);
    const scaled = t.own(mul(g, t.scalar(lr, dtype)));
    const next = t.own(sub(x, scaled));
    t.free(scaled, g, x);
    copy_(p, next);
  } finally {
    t.freeAll();
  }
}
