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
import { Temporaries, stateValueProblem } from './util';
import { cloneOnto, Optimizer, stateDtype, withDefaults, type ParamGroup, type ParamState, type ParamsInput, type StateKind } from './optimizer';

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
    if (!(h.lr >= 0) || !Number.isFinite(h.lr)) return `invalid learning rate ${h.lr}: expected a finite lr >= 0`;
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
    const dtype = stateDtype(p);
    // every intermediate is disposed right after use (the parameter, its gradient and the
    // momentum buffer are kept); LOMO's hook (lomo.ts) runs the same ops in the same order
    const t = new Temporaries([p, grad]);
    try {
      const x = t.own(cast(p, dtype));
      let g = t.own(cast(grad, dtype));
      if (maximize) g = t.swap(g, neg(g));
      if (weightDecay !== 0) {
        const decay = t.own(mul(x, t.scalar(weightDecay, dtype)));
        g = t.swap(g, add(g, decay));
        t.free(decay);
      }
      if (momentum !== 0) {
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
        if (nesterov) {
          const ahead = t.own(mul(buf, t.scalar(momentum, dtype)));
          g = t.swap(g, add(g, ahead));
          t.free(ahead);
        } else g = t.swap(g, buf);
      }
      const scaled = t.own(mul(g, t.scalar(lr, dtype)));
      const next = t.own(sub(x, scaled));
      t.free(scaled, g, x);
      copy_(p, next);
    } finally {
      t.freeAll();
    }
  }
}
