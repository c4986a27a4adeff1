/**
 * Learning-rate schedulers, as torch.optim.lr_scheduler: a scheduler reads each group's lr once
 * (the base lrs) and then sets `group.lr` at every `step()`. It touches nothing else, so it works
 * with any object that has `paramGroups: { lr }[]`: every optimizer here and wrappers (BAdam).
 *
 * As in PyTorch, constructing a scheduler performs step 0 (so the lr is already lrLambda(0)·base
 * before the first optimizer step), and the usual loop is `opt.step(); sched.step();`.
 * A scheduler's stateDict holds its counters; the lr values themselves travel in the optimizer's
 * stateDict, so restore both (PyTorch's convention).
 */
import { ValueError } from '../errors';
import { isPlainObject } from '../util/objects';
import { LoadProblems, refuseLoad } from './load-contract';

/** Anything with parameter groups that have a learning rate. */
export interface HasParamGroups {
  paramGroups: { lr: number }[];
}

export interface LRSchedulerStateDict {
  lastEpoch: number;
  baseLrs: number[];
  lastLr: number[];
  [key: string]: unknown;
}

export abstract class LRScheduler {
  readonly optimizer: HasParamGroups;
  /** Each group's lr when the scheduler was built. */
  baseLrs: number[];
  /** The number of step() calls so far (0 right after construction, PyTorch's last_epoch). */
  lastEpoch = -1;
  protected lastLr: number[] = [];

  constructor(optimizer: HasParamGroups) {
    const op = new.target.name;
    if (optimizer === null || typeof optimizer !== 'object' || !Array.isArray(optimizer.paramGroups)) {
      throw new ValueError(op, 'expected an optimizer (an object with paramGroups)');
    }
    this.optimizer = optimizer;
    this.baseLrs = optimizer.paramGroups.map((g, i) => {
      if (typeof g.lr !== 'number' || !Number.isFinite(g.lr)) throw new ValueError(op, `parameter group ${i} has lr ${g.lr}, not a finite number`);
      return g.lr;
    });
  }

  /** The lr of every group at `lastEpoch` (called by step after the counter moves). */
  protected abstract getLr(): number[];

  /** Subclasses call this at the end of their constructor: PyTorch's initial step to epoch 0. */
  protected initialStep(): void {
    this.step();
  }

  /** Advances one step and writes the new lr into every group. */
  step(): void {
    const op = `${this.constructor.name}.step`;
    const groups = this.optimizer.paramGroups;
    if (groups.length !== this.baseLrs.length) {
      throw new ValueError(op, `the optimizer has ${groups.length} parameter groups but the scheduler was built for ${this.baseLrs.length}; build a new scheduler after addParamGroup`);
    }
    this.lastEpoch++;
    const lrs = this.getLr();
    lrs.forEach((lr, i) => {
      if (typeof lr !== 'number' || !Number.isFinite(lr)) {
        this.lastEpoch--;
        throw new ValueError(op, `the schedule gave lr ${lr} for group ${i} at step ${this.lastEpoch + 1}; it must be a finite number`);
      }
    });
    lrs.forEach((lr, i) => (groups[i].lr = lr));
    this.lastLr = lrs;
  }

  /** The lrs the last step() set, one per group. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  stateDict(): LRSchedulerStateDict {
    return { lastEpoch: this.lastEpoch, baseLrs: [...this.baseLrs], lastLr: [...this.lastLr] };
  }

  /**
   * Restores the counters. Everything is checked first: a bad state dict throws one ValueError
   * listing every problem and changes nothing (load-contract.ts). Does not set group.lr.
   */
  loadStateDict(sd: LRSchedulerStateDict): void {
    const op = `${this.constructor.name}.loadStateDict`;
    if (!isPlainObject(sd)) refuseLoad(op, 'expected an object from stateDict()');
    const problems = new LoadProblems(op);
    if (typeof sd.lastEpoch !== 'number' || !Number.isInteger(sd.lastEpoch) || sd.lastEpoch < -1) {
      problems.add(`lastEpoch must be an integer >= -1, got ${String(sd.lastEpoch)}`);
    }
    const n = this.optimizer.paramGroups.length;
    for (const [what, x] of [['baseLrs', sd.baseLrs], ['lastLr', sd.lastLr]] as const) {
      if (!Array.isArray(x) || x.length !== n || !x.every((v) => typeof v === 'number' && Number.isFinite(v))) {
        problems.add(`${what} must be ${n} finite numbers (one per parameter group)`);
      }
    }
    problems.add(...this.extraStateProblems(sd));
    problems.throwIfAny();
    this.lastEpoch = sd.lastEpoch;
    this.baseLrs = [...sd.baseLrs];
    this.lastLr = [...sd.lastLr];
    this.loadExtraState(sd);
  }

  /** Subclasses with more state list its problems here (checked with the rest, load-contract.ts) ... */
  protected extraStateProblems(_sd: LRSchedulerStateDict): string[] {
    return [];
  }
  /** ... and load it here. */
  protected loadExtraState(_sd: LRSchedulerStateDict): void {}
}

/** lr = baseLr · lrLambda(step): one function for every group, or one per group. */
export class LambdaLR extends LRScheduler {
  private readonly lambdas: ((step: number) => number)[];

  constructor(optimizer: HasParamGroups, lrLambda: ((step: number) => number) | ((step: number) => number)[]) {
    super(optimizer);
    const n = this.baseLrs.length;
    if (Array.isArray(lrLambda)) {
      if (lrLambda.length !== n) throw new ValueError('LambdaLR', `expected ${n} lr lambdas (one per parameter group), got ${lrLambda.length}`);
      this.lambdas = [...lrLambda];
    } else this.lambdas = Array.from({ length: n }, () => lrLambda);
    if (!this.lambdas.every((f) => typeof f === 'function')) throw new ValueError('LambdaLR', 'lrLambda must be a function or a list of functions');
    this.initialStep();
  }

  protected getLr(): number[] {
    return this.baseLrs.map((base, i) => base * this.lambdas[i](this.lastEpoch));
  }
}

/** Multiplies each group's lr by gamma every stepSize steps (PyTorch's chainable form). */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;

  constructor(optimizer: HasParamGroups, stepSize: number, gamma = 0.1) {
    super(optimizer);
    if (!Number.isInteger(stepSize) || stepSize < 1) throw new ValueError('StepLR', `stepSize must be an integer >= 1, got ${stepSize}`);
    if (typeof gamma !== 'number' || !Number.isFinite(gamma)) throw new ValueError('StepLR', `gamma must be a finite number, got ${gamma}`);
    this.stepSize = stepSize;
    this.gamma = gamma;
    this.initialStep();
  }

  protected getLr(): number[] {
    const groups = this.optimizer.paramGroups;
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return groups.map((g) => g.lr);
    return groups.map((g) => g.lr * this.gamma);
  }

  override stateDict(): LRSchedulerStateDict {
    return { ...super.stateDict(), stepSize: this.stepSize, gamma: this.gamma };
  }

  protected override extraStateProblems(sd: LRSchedulerStateDict): string[] {
    const problems: string[] = [];
    if (sd.stepSize !== undefined && sd.stepSize !== this.stepSize) problems.push(`stepSize is ${String(sd.stepSize)} in the state dict but ${this.stepSize} here`);
    if (sd.gamma !== undefined && sd.gamma !== this.gamma) problems.push(`gamma is ${String(sd.gamma)} in the state dict but ${this.gamma} here`);
    return problems;
  }
}

function checkWarmup(op: string, warmupSteps: number, totalSteps: number): void {
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new ValueError(op, `warmupSteps must be an integer >= 0, got ${warmupSteps}`);
  if (!Number.isInteger(totalSteps) || totalSteps < warmupSteps) {
    throw new ValueError(op, `totalSteps must be an integer >= warmupSteps (${warmupSteps}), got ${totalSteps}`);
  }
}

/**
 * Hugging Face's get_linear_schedule_with_warmup: the lr rises linearly from 0 to the base lr
 * over warmupSteps, then falls linearly to 0 at totalSteps (and stays 0).
 */
export function linearWarmupLinearDecay(optimizer: HasParamGroups, warmupSteps: number, totalSteps: number): LambdaLR {
  checkWarmup('linearWarmupLinearDecay', warmupSteps, totalSteps);
  return new LambdaLR(optimizer, (step) => {
    if (step < warmupSteps) return step / Math.max(1, warmupSteps);
    return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
  });
}

export interface CosineScheduleOptions {
  /** The lr at the end of the decay, as a fraction of the base lr (HF's min_lr_rate); default 0. */
  minLrRatio?: number;
  /** Number of cosine waves over the decay; the default 0.5 goes from the base lr down once. */
  numCycles?: number;
}

/**
 * Hugging Face's get_cosine_schedule_with_warmup (and, with minLrRatio > 0,
 * get_cosine_with_min_lr_schedule_with_warmup): linear warmup from 0, then
 * factor = 0.5·(1 + cos(π·numCycles·2·progress)), rescaled to minLrRatio + (1 - minLrRatio)·factor.
 */
export function linearWarmupCosineDecay(
  optimizer: HasParamGroups,
  warmupSteps: number,
  totalSteps: number,
  options: CosineScheduleOptions = {},
): LambdaLR {
  const op = 'linearWarmupCosineDecay';
  checkWarmup(op, warmupSteps, totalSteps);
  const minLrRatio = options.minLrRatio ?? 0;
  const numCycles = options.numCycles ?? 0.5;
  if (!(minLrRatio >= 0 && minLrRatio <= 1)) throw new ValueError(op, `minLrRatio must be in [0, 1], got ${minLrRatio}`);
  if (!Number.isFinite(numCycles)) throw new ValueError(op, `numCycles must be a finite number, got ${numCycles}`);
  return new LambdaLR(optimizer, (step) => {
    if (step < warmupSteps) return step / Math.max(1, warmupSteps);
    const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
    const factor = 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress));
    return Math.max(0, factor * (1 - minLrRatio) + minLrRatio);
  });
}
