/**
 * LOMO (Lv et al. 2023, "Full Parameter Fine-tuning for Large Language Models with Limited
 * Resources"): SGD fused into the backward pass. Each trainable parameter gets a
 * post-accumulate-grad hook; when the engine has finished a parameter's gradient the hook
 *
 *   g = clipGradValue ? clamp(g, -v, v) : g                (the reference's order: value first,
 *   g = clipGradNorm  ? g · min(1, maxNorm / (‖G‖ + 1e-6)) : g      then the global norm)
 *   g = g + weightDecay · p                                (when weightDecay != 0)
 *   p = p - lr · g
 *
 * under noGrad, and frees the gradient at once (`p.grad = null` and the handle disposed), so at
 * most one parameter's gradient is alive at any moment of the backward, instead of all of them.
 * There is no optimizer state at all: memory is the weights plus one gradient plus activations.
 *
 * Why updating inside backward is safe: the engine runs a leaf's hooks only when every graph
 * node that consumes the leaf (and therefore every node that saved it, or a view of it, for its
 * own backward) has already run, so no later backward computation reads the updated weights.
 *
 * Usage:
 *   const lomo = new LOMO(model, { lr: 1e-2, clipGradNorm: 1 });
 *   for (...) { const loss = lossOf(model, batch); lomo.fusedBackward(loss); }
 *   lomo.dispose();                                  // removes the hooks
 *
 * Gradient-norm clipping needs the norm of the whole gradient before the first update, which a
 * single fused pass cannot know. As in the reference, `fusedBackward` then runs TWO backward
 * passes: the first (`retainGraph: true`) only adds up each gradient's squared norm and frees the
 * gradient (no update); the clip coefficient follows; the second pass updates with the clipped
 * gradients. The cost is one extra backward (about +100% backward time, i.e. ~2/3 more per step
 * when backward is twice the forward) and the graph's saved activations stay alive across both.
 * The norm is reduced exactly as clipGradNorm (src/optim/clip.ts) does (each gradient's norm,
 * then the norm of the norms, in parameter order), so LOMO with `clipGradNorm` equals
 * `clipGradNorm(params, maxNorm)` followed by `SGD.step()` bit for bit on float32/float64 models.
 * A non-finite gradient norm is an error raised before any parameter changes.
 *
 * Loss scaling (float16): with a `lossScaler` (GradScaler), fusedBackward scales the loss and
 * always runs the two passes: the first checks the scaled gradients (their norm, divided by the
 * scale, is the unscaled gradNorm), and if one overflowed nothing is updated (`skipped` is set
 * and the scaler backs off at its update()); otherwise the second pass unscales each gradient in
 * float32 before its update. A step is skipped whole, never half applied.
 *
 * Differences from the reference, on purpose:
 * - the hooks act only inside `fusedBackward`; a plain `loss.backward()` elsewhere (e.g. to
 *   inspect gradients) accumulates `.grad` as usual and changes no weight;
 * - a trainable parameter that already holds a gradient when `fusedBackward` starts is an error
 *   (LOMO updates from one backward's gradient; stale gradients would be silently added in);
 * - the reference's dynamic loss scaler skips the rest of a backward at the first overflowed
 *   gradient, after the earlier parameters were updated; here the check pass comes first, so an
 *   overflowed step changes nothing; float16 parameters are updated in float32 and rounded back
 *   once, as SGD does here;
 * - `weightDecay` (L2, added to the gradient as in SGD) is an addition.
 *
 * Memory accounting: `peakLiveGradBytes` is the largest value of memory.stats().byCategory.grads,
 * above its value when fusedBackward started, seen inside the hooks of the last fusedBackward (the
 * gradient being processed is counted). The engine hands a leaf the incoming gradient tensor
 * itself when nothing else holds it, so disposing p.grad in the hook releases its storage at once.
 * The update's intermediates (float32 casts, products, differences, scalar operands) are
 * disposed as soon as they are used, so a fused backward leaves no more garbage than a plain one.
 */
import { AutogradError, ValueError } from '../errors';
import { Tensor } from '../tensor/tensor';
import { memoryTracker } from '../kernels/memory';
import { noGrad } from '../autograd/grad-mode';
import { backward } from '../autograd/engine';
import { cast, clamp, mul } from '../autograd/ops/elementwise';
import { sum } from '../autograd/ops/reduce';
import { isPlainObject } from '../util/objects';
import { Temporaries } from './temporaries';
import { namedParameterList } from './parameters';
import { sgdUpdate } from './sgd';
import { lrProblem } from './hyperparameters';
import { LoadProblems, refuseLoad } from './load-contract';
import { checkClaims, claimParameters } from './ownership';
import { isHalf } from '../tensor/dtype';
import { GradScaler } from './grad-scaler';

export interface LOMOOptions {
  /** Learning rate (finite, >= 0). */
  lr: number;
  /** Clip the global 2-norm of the gradient to this value (two backward passes). */
  clipGradNorm?: number;
  /** Clamp every gradient element into [-clipGradValue, clipGradValue]. */
  clipGradValue?: number;
  /** L2 weight decay added to the gradient (as SGD's weightDecay). Default 0. */
  weightDecay?: number;
  /**
   * Dynamic loss scaling for a float16 model (grad-scaler.ts): fusedBackward scales the loss, runs
   * a first backward that only checks the scaled gradients (two passes, as with clipGradNorm),
   * and updates nothing when one overflowed; otherwise it unscales each gradient in float32 in
   * the update pass. Call `lossScaler.update()` after each fusedBackward.
   */
  lossScaler?: GradScaler;
}

/** LOMO's one group, so that learning-rate schedulers (which set `paramGroups[i].lr`) work. */
export interface LOMOParamGroup {
  params: Tensor[];
  paramNames?: string[];
  lr: number;
  weightDecay: number;
}

const KNOWN_OPTIONS = ['lr', 'clipGradNorm', 'clipGradValue', 'weightDecay', 'lossScaler'];

type Phase = 'idle' | 'norm' | 'update';

export class LOMO {
  readonly paramGroups: [LOMOParamGroup];
  readonly clipGradNorm: number | null;
  readonly clipGradValue: number | null;
  readonly lossScaler: GradScaler | null;
  /** Whether the last fusedBackward skipped its update because a scaled gradient overflowed. */
  skipped = false;
  /** The global gradient 2-norm measured by the last fusedBackward with clipGradNorm or a lossScaler (else null). */
  gradNorm: number | null = null;
  /** The clip coefficient applied in the last fusedBackward (1 when no clipping happened). */
  clipCoef = 1;
  /** Peak bytes of live parameter gradients seen inside the hooks of the last fusedBackward. */
  peakLiveGradBytes = 0;
  /** How many parameters the last fusedBackward updated. */
  updatedCount = 0;

  private readonly params: Tensor[];
  private readonly index = new Map<Tensor, number>();
  private readonly removers: (() => void)[] = [];
  private phase: Phase = 'idle';
  private baselineGradBytes = 0;
  private sqNorms: (number | null)[] = [];
  private disposed = false;

  constructor(model: { namedParameters(): [string, Tensor][] } | Iterable<[string, Tensor]> | Iterable<Tensor>, options: LOMOOptions) {
    const op = 'LOMO';
    // LOMO updates the parameters that require grad; the frozen ones may be anything
    const { params, names } = namedParameterList(op, model, { allowTensors: true, trainable: 'requiresGrad' });
    if (options === null || typeof options !== 'object') throw new ValueError(op, 'options must be an object with at least { lr }');
    for (const k of Object.keys(options)) {
      if (!KNOWN_OPTIONS.includes(k)) throw new ValueError(op, `unknown option '${k}'; known: ${KNOWN_OPTIONS.join(', ')}`);
    }
    const lr = options.lr;
    const problem = lrProblem(lr);
    if (problem) throw new ValueError(op, problem);
    const wd = options.weightDecay ?? 0;
    if (typeof wd !== 'number' || !(wd >= 0) || !Number.isFinite(wd)) throw new ValueError(op, `invalid weightDecay ${wd}: expected a finite value >= 0`);
    const positive = (key: string, v: unknown): number | null => {
      if (v === undefined || v === null) return null;
      if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new ValueError(op, `invalid ${key} ${String(v)}: expected a finite number > 0 (or leave it out)`);
      return v;
    };
    this.clipGradNorm = positive('clipGradNorm', options.clipGradNorm);
    this.clipGradValue = positive('clipGradValue', options.clipGradValue);
    if (options.lossScaler !== undefined && !(options.lossScaler instanceof GradScaler)) {
      throw new ValueError(op, `lossScaler must be a GradScaler, got ${String(options.lossScaler)}`);
    }
    this.lossScaler = options.lossScaler?.enabled ? options.lossScaler : null;

    const trainable = params.map((p, i) => [p, names?.[i]] as const).filter(([p]) => p.requiresGrad);
    if (trainable.length === 0) {
      throw new ValueError(op, `none of the ${params.length} parameters requires grad: nothing to train (unfreeze some with requiresGrad_(true))`);
    }
    this.params = trainable.map(([p]) => p);
    const group: LOMOParamGroup = { params: [...this.params], lr, weightDecay: wd };
    if (names) group.paramNames = trainable.map(([, n]) => n as string);
    this.paramGroups = [group];
    this.params.forEach((p, i) => {
      this.index.set(p, i);
      this.removers.push(p.registerPostAccumulateGradHook((param) => this.hook(param)));
    });
    // LOMO frees the gradients inside backward: an older BlockOptimizer on these parameters would
    // get none, and one built later would flip their requiresGrad under the hooks (ownership.ts)
    claimParameters(this, 'LOMO', this.params, names ? trainable.map(([, n]) => n as string) : null);
  }

  /** The learning rate (of the one parameter group). */
  get lr(): number {
    return this.paramGroups[0].lr;
  }
  set lr(value: number) {
    const problem = lrProblem(value);
    if (problem) throw new ValueError('LOMO.lr', problem);
    this.paramGroups[0].lr = value;
  }

  /** The trainable parameters LOMO updates, in order. */
  parameters(): Tensor[] {
    return [...this.params];
  }

  /**
   * Runs `loss.backward()` with every trainable parameter updated (and its gradient freed) as soon
   * as its gradient is complete. With `clipGradNorm`, runs a first norm-only backward
   * (retainGraph) and then the updating one: two backward passes. `retainGraph` keeps the graph
   * after the (last) pass.
   */
  fusedBackward(loss: Tensor, options: { retainGraph?: boolean } = {}): void {
    const op = 'LOMO.fusedBackward';
    if (this.disposed) throw new ValueError(op, 'this LOMO was disposed (its hooks are removed); build a new one');
    checkClaims(op, this, 'LOMO');
    if (!(loss instanceof Tensor)) throw new ValueError(op, `loss must be a Tensor, got ${loss === null ? 'null' : typeof loss}`);
    if (!loss.requiresGrad) throw new AutogradError(op, `the loss (${loss}) does not require grad: no trainable parameter contributed to it`);
    if (this.phase !== 'idle') throw new AutogradError(op, 'fusedBackward is already running (called from inside a hook?)');
    const group = this.paramGroups[0];
    const problem = lrProblem(group.lr);
    if (problem) throw new ValueError(op, problem);
    if (!(group.weightDecay >= 0) || !Number.isFinite(group.weightDecay)) throw new ValueError(op, `invalid weightDecay ${group.weightDecay}`);
    const stale = this.params.find((p) => p.grad !== null);
    if (stale) {
      const label = stale.name ? `'${stale.name}'` : `#${this.index.get(stale)}`;
      throw new ValueError(op, `parameter ${label} already has a gradient; LOMO updates from this backward's gradient only: clear it first (zeroGrad())`);
    }

    this.peakLiveGradBytes = 0;
    this.updatedCount = 0;
    this.clipCoef = 1;
    this.gradNorm = null;
    this.skipped = false;
    this.baselineGradBytes = memoryTracker.stats().byCategory.grads;
    const scaler = this.lossScaler;
    const target = scaler ? scaler.scale(loss) : loss;
    try {
      if (this.clipGradNorm !== null || scaler) {
        this.phase = 'norm';
        this.sqNorms = this.params.map(() => null);
        backward(target, null, { retainGraph: true });
        // the norm of the norms, in parameter order: exactly clipGradNorm's reduction
        const norms = this.sqNorms.filter((s): s is number => s !== null).map((s) => s ** (1 / 2));
        const total = norms.reduce((acc, n) => acc + n ** 2, 0) ** (1 / 2) / (scaler ? scaler.getScale() : 1);
        this.gradNorm = total;
        if (scaler) {
          // an overflowed scaled gradient: update nothing, and let the scaler back off
          scaler.recordOverflow(!Number.isFinite(total));
          if (!Number.isFinite(total)) {
            this.skipped = true; // the graph kept for the update pass goes with its tidy scope, as any unused graph
            return;
          }
        }
        if (!Number.isFinite(total)) {
          throw new ValueError(op, `the gradient norm is ${total}, so the gradients cannot be clipped; no parameter was changed (check the loss for NaN or overflow)`);
        }
        if (this.clipGradNorm !== null) {
          const coef = this.clipGradNorm / (total + 1e-6);
          this.clipCoef = coef < 1 ? coef : 1;
        }
      }
      this.phase = 'update';
      backward(target, null, { retainGraph: options.retainGraph ?? false });
    } finally {
      this.phase = 'idle';
      this.sqNorms = [];
      // an error inside a hook can leave a gradient behind: never leave stale ones
      for (const p of this.params) if (p.grad !== null) this.freeGrad(p);
    }
  }

  /** Sets every trainable parameter's `.grad` to null (LOMO keeps none between steps anyway). */
  zeroGrad(): void {
    for (const p of this.params) if (p.grad !== null) this.freeGrad(p);
  }

  /** Removes the hooks; the parameters keep their values. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const remove of this.removers) remove();
    this.removers.length = 0;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** The lr and counters; LOMO has no other state. */
  stateDict(): { paramGroups: { lr: number; weightDecay: number }[] } {
    return { paramGroups: [{ lr: this.paramGroups[0].lr, weightDecay: this.paramGroups[0].weightDecay }] };
  }

  /** Restores the lr and weightDecay; everything is checked first (load-contract.ts). */
  loadStateDict(sd: { paramGroups: { lr: number; weightDecay: number }[] }): void {
    const op = 'LOMO.loadStateDict';
    const g = sd?.paramGroups?.[0];
    if (!Array.isArray(sd?.paramGroups) || sd.paramGroups.length !== 1 || !isPlainObject(g)) {
      refuseLoad(op, 'expected { paramGroups: [{ lr, weightDecay }] } as returned by stateDict()');
    }
    const problems = new LoadProblems(op);
    problems.add(lrProblem(g.lr));
    if (typeof g.weightDecay !== 'number' || !(g.weightDecay >= 0) || !Number.isFinite(g.weightDecay)) {
      problems.add(`invalid weightDecay ${String(g.weightDecay)}`);
    }
    problems.throwIfAny();
    this.paramGroups[0].lr = g.lr;
    this.paramGroups[0].weightDecay = g.weightDecay;
  }

  // ------------------------------------------------------------------ the hook

  private hook(p: Tensor): void {
    if (this.phase === 'idle' || p.grad === null) return; // a plain backward: leave .grad alone
    const live = memoryTracker.stats().byCategory.grads - this.baselineGradBytes;
    if (live > this.peakLiveGradBytes) this.peakLiveGradBytes = live;
    const i = this.index.get(p) as number;
    const grad = p.grad;
    if (this.phase === 'norm') {
      // clipGradNorm's per-gradient norm: float16 widened to float32, sum of squares
      const s = noGrad(() => {
        const t = new Temporaries([grad]);
        try {
          const w = t.own(isHalf(grad.dtype) ? cast(grad, 'float32') : grad);
          const sq = t.own(mul(w, w));
          t.free(w);
          return t.own(sum(sq)).item();
        } finally {
          t.freeAll();
        }
      });
      this.sqNorms[i] = (this.sqNorms[i] ?? 0) + s;
      this.freeGrad(p);
      return;
    }
    const group = this.paramGroups[0];
    const { lr, weightDecay } = group;
    const clipValue = this.clipGradValue;
    const coef = this.clipCoef;
    const unscale = this.lossScaler ? 1 / this.lossScaler.getScale() : 1;
    // SGD's update (sgd.ts), op for op, so the results agree bit for bit, with LOMO's clipping as
    // the step before weight decay (the reference's order: value first, then the global norm)
    noGrad(() =>
      sgdUpdate(p, grad, lr, weightDecay, {
        beforeDecay: (g, t, dtype) => {
          if (unscale !== 1) g = t.swap(g, mul(g, t.scalar(unscale, dtype))); // in the state dtype: float32 for a float16 model
          if (clipValue !== null) g = t.swap(g, clamp(g, -clipValue, clipValue));
          if (coef < 1) g = t.swap(g, mul(g, t.scalar(coef, dtype)));
          return g;
        },
      }),
    );
    this.updatedCount++;
    this.freeGrad(p);
  }

  /** Takes the gradient off `p` and releases its storage. */
  private freeGrad(p: Tensor): void {
    p.grad?.dispose();
    p.grad = null;
  }
}
