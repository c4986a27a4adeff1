/**
 * Dynamic loss scaling for float16 training, as torch.amp.GradScaler. float16's smallest
 * subnormal is 6e-8: gradients below it become zero in a float16 backward and the weights they
 * belong to stop learning. The scaler multiplies the loss by `scale` (2^16 at first) before
 * backward, so the gradients are `scale` times larger and representable, then divides them by
 * `scale` again before the step, in float32 (a float16 gradient is replaced by a float32 one, so
 * the division cannot underflow; the masters of BlockOptimizer and MixedPrecisionOptimizer take
 * float32 gradients as they are). If any gradient is inf or NaN, the scale was too large: the step
 * is skipped and the scale halves. After `growthInterval` steps in a row without overflow it
 * doubles, to stay as large as the gradients allow.
 *
 * ```ts
 * const scaler = new GradScaler();
 * opt.zeroGrad();
 * scaler.scale(loss).backward();
 * scaler.unscale_(opt);           // optional: before clipping the true gradients
 * clipGradNorm(params, 1);
 * scaler.step(opt);               // opt.step(), unless a gradient overflowed
 * scaler.update();
 * ```
 *
 * bfloat16 has float32's exponent range, so a bfloat16 model needs no scaling. LOMO, which updates
 * inside backward, takes a scaler as its `lossScaler` option instead.
 */
import { ValueError } from '../errors';
import { Tensor } from '../tensor/tensor';
import { isHalf } from '../tensor/dtype';
import { noGrad } from '../autograd/grad-mode';
import { cast, mul } from '../autograd/ops/elementwise';
import { sum } from '../autograd/ops/reduce';
import { tidy } from '../tensor/scope';
import { describe } from '../util/describe';
import { isPlainObject } from '../util/objects';
import { BlockOptimizerRatio } from './badam/ratio';

export interface GradScalerOptions {
  /** The first scale (default 2^16, PyTorch's). */
  initScale?: number;
  /** The scale's factor after growthInterval steps without overflow (default 2). */
  growthFactor?: number;
  /** The scale's factor after an overflow (default 0.5). */
  backoffFactor?: number;
  /** Steps without overflow before the scale grows (default 2000). */
  growthInterval?: number;
  /** false: every method passes through (scale 1, no checks), so one loop serves both cases. */
  enabled?: boolean;
}

export interface GradScalerStateDict {
  scale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  growthTracker: number;
}

/** What the scaler steps: any optimizer with parameter groups (Optimizer, BlockOptimizer, MixedPrecisionOptimizer). */
export interface ScalableOptimizer {
  paramGroups: { params: Tensor[] }[];
  step(): unknown;
}

/** True when every element of `g` is finite: x·0 is 0 for finite x and NaN for inf or NaN, so the sum tells. */
export function allFinite(g: Tensor): boolean {
  return noGrad(() => tidy(() => Number.isFinite(sum(mul(g, 0)).item())));
}

export class GradScaler {
  readonly enabled: boolean;
  private scaleValue: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  private growthTracker = 0;
  /** Per optimizer unscaled since the last update(): whether one of its gradients overflowed. */
  private unscaled = new Map<ScalableOptimizer, boolean>();
  /** The optimizers step() was called for since the last update(). */
  private stepped = new Set<ScalableOptimizer>();
  /** An overflow reported by recordOverflow since the last update() (null: none reported). */
  private reported: boolean | null = null;
  /** Steps skipped since the scaler was made (restored with the state). */
  skippedSteps = 0;

  constructor(options: GradScalerOptions = {}) {
    const op = 'GradScaler';
    if (!isPlainObject(options)) throw new ValueError(op, `options must be an object, got ${describe(options)}`);
    const { initScale = 2 ** 16, growthFactor = 2, backoffFactor = 0.5, growthInterval = 2000, enabled = true } = options;
    const positive = (name: string, v: unknown) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ValueError(op, `${name} must be a finite number > 0, got ${describe(v)}`);
    };
    positive('initScale', initScale);
    if (typeof growthFactor !== 'number' || !(growthFactor > 1) || !Number.isFinite(growthFactor)) throw new ValueError(op, `growthFactor must be a finite number > 1, got ${describe(growthFactor)}`);
    if (typeof backoffFactor !== 'number' || !(backoffFactor > 0 && backoffFactor < 1)) throw new ValueError(op, `backoffFactor must be in (0, 1), got ${describe(backoffFactor)}`);
    if (typeof growthInterval !== 'number' || !Number.isInteger(growthInterval) || growthInterval < 1) throw new ValueError(op, `growthInterval must be an integer >= 1, got ${describe(growthInterval)}`);
    if (typeof enabled !== 'boolean') throw new ValueError(op, `enabled must be a boolean, got ${describe(enabled)}`);
    this.enabled = enabled;
    this.scaleValue = initScale as number;
    this.growthFactor = growthFactor;
    this.backoffFactor = backoffFactor;
    this.growthInterval = growthInterval as number;
  }

  /** The current scale (1 when disabled). */
  getScale(): number {
    return this.enabled ? this.scaleValue : 1;
  }

  /** loss · scale, to call backward on. */
  scale(loss: Tensor): Tensor {
    if (!(loss instanceof Tensor)) throw new ValueError('GradScaler.scale', `expected the loss Tensor, got ${describe(loss)}`);
    return this.enabled ? mul(loss, this.scaleValue) : loss;
  }

  /**
   * Divides the gradients of `optimizer`'s parameters by the scale (a float16 gradient becomes a
   * float32 one) and records whether any was inf or NaN. Once per optimizer between update()s.
   */
  unscale_(optimizer: ScalableOptimizer): void {
    const op = 'GradScaler.unscale_';
    if (!this.enabled) return;
    if (this.unscaled.has(optimizer)) throw new ValueError(op, 'unscale_ was already called for this optimizer since the last update(): call update() after each step');
    if (optimizer instanceof BlockOptimizerRatio) {
      throw new ValueError(op, "BlockOptimizerRatio keeps packed gradients of its selected entries, which the scaler cannot reach: train a ratio-mode model in bfloat16 (no scaling needed) or float32");
    }
    const inverse = 1 / this.scaleValue;
    let overflow = false;
    for (const group of optimizer.paramGroups) {
      for (const p of group.params) {
        const g = p.grad;
        if (g === null) continue;
        if (!allFinite(g)) overflow = true;
        const unscaled = noGrad(() => tidy(() => mul(isHalf(g.dtype) ? cast(g, 'float32') : g, inverse))).tagMemory('grads');
        p.grad = unscaled;
        g.dispose();
      }
    }
    this.unscaled.set(optimizer, overflow);
  }

  /**
   * Unscales (unless unscale_ did), then `optimizer.step()` unless a gradient overflowed.
   * Returns true when the step ran. Call update() next.
   */
  step(optimizer: ScalableOptimizer): boolean {
    if (!this.enabled) {
      optimizer.step();
      return true;
    }
    if (this.stepped.has(optimizer)) {
      throw new ValueError('GradScaler.step', 'step() was already called for this optimizer since the last update(): call update() after each step (its gradients would be used still scaled)');
    }
    this.stepped.add(optimizer);
    if (!this.unscaled.has(optimizer)) this.unscale_(optimizer);
    if (this.unscaled.get(optimizer)) {
      this.skippedSteps++;
      return false;
    }
    optimizer.step();
    return true;
  }

  /** Whether the gradients seen since the last update() overflowed (null: none were seen). */
  foundInf(): boolean | null {
    if (this.unscaled.size === 0 && this.reported === null) return null;
    return this.reported === true || [...this.unscaled.values()].some((x) => x);
  }

  /** Records whether a step that unscaled its gradients itself (LOMO's fused backward) overflowed and was skipped. */
  recordOverflow(overflow: boolean): void {
    if (!this.enabled) return;
    if (overflow) this.skippedSteps++;
    this.reported = (this.reported ?? false) || overflow;
  }

  /** Halves the scale after an overflow; doubles it after growthInterval clean steps. */
  update(): void {
    if (!this.enabled) return;
    const found = this.foundInf();
    this.unscaled.clear();
    this.stepped.clear();
    this.reported = null;
    if (found === null) return;
    if (found) {
      this.scaleValue *= this.backoffFactor;
      this.growthTracker = 0;
      return;
    }
    this.growthTracker++;
    if (this.growthTracker === this.growthInterval) {
      this.scaleValue *= this.growthFactor;
      this.growthTracker = 0;
    }
  }

  stateDict(): GradScalerStateDict & { skippedSteps: number } {
    return { scale: this.scaleValue, growthFactor: this.growthFactor, backoffFactor: this.backoffFactor, growthInterval: this.growthInterval, growthTracker: this.growthTracker, skippedSteps: this.skippedSteps };
  }

  loadStateDict(sd: GradScalerStateDict & { skippedSteps?: number }): void {
    const op = 'GradScaler.loadStateDict';
    if (!isPlainObject(sd)) throw new ValueError(op, `expected the object returned by stateDict(), got ${describe(sd)}`);
    const problems: string[] = [];
    if (typeof sd.scale !== 'number' || !Number.isFinite(sd.scale) || sd.scale <= 0) problems.push(`scale must be a finite number > 0, got ${describe(sd.scale)}`);
    if (!Number.isInteger(sd.growthTracker) || sd.growthTracker < 0) problems.push(`growthTracker must be an integer >= 0, got ${describe(sd.growthTracker)}`);
    if (sd.skippedSteps !== undefined && (!Number.isInteger(sd.skippedSteps) || sd.skippedSteps < 0)) problems.push(`skippedSteps must be an integer >= 0, got ${describe(sd.skippedSteps)}`);
    for (const k of ['growthFactor', 'backoffFactor', 'growthInterval'] as const) {
      if (sd[k] !== this[k]) problems.push(`${k} is ${describe(sd[k])} in the state dict but ${this[k]} here`);
    }
    if (problems.length) throw new ValueError(op, problems.join('; '));
    this.scaleValue = sd.scale;
    this.growthTracker = sd.growthTracker;
    this.skippedSteps = sd.skippedSteps ?? 0;
    this.unscaled.clear();
    this.stepped.clear();
    this.reported = null;
  }
}
