/**
 * BlockOptimizerRatio's options (ratio.ts's file comment gives the reference's names and
 * defaults) and their checks, made before the model is touched: which parameters train, and the
 * fraction of each that a mask selects.
 */
import { ValueError, fmtShape } from '../../errors';
import type { Tensor } from '../../tensor/tensor';
import { isPlainObject } from '../../util/objects';
import { describe } from '../../util/describe';
import { lrProblem } from '../hyperparameters';
import type { OptionNames, SharedSettings } from './options';
import type { RatioMaskEvent } from './events';

export type MaskMode = 'adjacent' | 'scatter';

export interface BlockOptimizerRatioOptions {
  /** Learning rate. Default 1e-5 (the reference's). */
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** Decoupled (AdamW) weight decay on the selected entries (not of biases, norm weights, 1-D parameters). Default 0. */
  weightDecay?: number;
  /** Apply weight decay to biases, norm weights and 1-D parameters too. Default false. */
  decayAllParameters?: boolean;
  /** Fraction of every parameter's entries updated per mask, in (0, 1]. Default 0.1. */
  updateRatio?: number;
  /** Per-name ratios: a key matches a parameter name exactly or as a prefix; the longest key wins. */
  paramRatios?: Record<string, number>;
  /** 'adjacent' (default) or 'scatter'. */
  maskMode?: MaskMode;
  /** Optimizer steps per mask. Default 100. */
  switchEvery?: number;
  /** Parameters with fewer entries than this are updated densely. Default 100. */
  preserveThreshold?: number;
  /** Train parameters whose name contains 'embed'. Default false (they are frozen). */
  includeEmbedding?: boolean;
  /** Train parameters whose name contains 'lm_head'. Default false (they are frozen). */
  includeLmHead?: boolean;
  /** Seeds the per-parameter permutations of 'scatter' masks. Default 0. */
  seed?: number;
  /** 0 silent, 1 one line per mask (default), 2 also one line per parameter. */
  verbose?: 0 | 1 | 2;
  /** Receives every mask event (as well as the console lines that verbose asks for), as BlockOptimizer's log. */
  log?: (event: RatioMaskEvent) => void;
  /**
   * Parameter groups with their own hyperparameters, as LLaMA-Factory builds them (weights with
   * weight decay, biases and norms without): each group's lr, betas, eps and weightDecay replace
   * the options' for its parameters, and weight decay follows the groups instead of the
   * bias/norm rule. Every trainable parameter must be in one group; frozen ones are ignored.
   * `paramGroups` then has one entry per group, for schedulers.
   */
  groups?: RatioGroupInput[];
}

/** A group given in options.groups: tensors or namedParameters() pairs, and overrides. */
export interface RatioGroupInput {
  params: Iterable<Tensor> | Iterable<[string, Tensor]>;
  name?: string;
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** The option names, for checkSharedOptions. */
export const RATIO_OPTION_NAMES: OptionNames = {
  known: [
    'lr', 'betas', 'eps', 'weightDecay', 'updateRatio', 'paramRatios', 'maskMode', 'switchEvery',
    'preserveThreshold', 'includeEmbedding', 'includeLmHead', 'seed', 'verbose', 'log', 'decayAllParameters', 'groups',
  ] satisfies (keyof BlockOptimizerRatioOptions)[],
  /** The reference's and LLaMA-Factory's snake_case names, for a helpful error. */
  referenceNames: {
    update_ratio: 'updateRatio',
    badam_update_ratio: 'updateRatio',
    mask_mode: 'maskMode',
    badam_mask_mode: 'maskMode',
    switch_every: 'switchEvery',
    preserve_threshold: 'preserveThreshold',
    param_update_ratios: 'paramRatios',
    include_embedding: 'includeEmbedding',
    include_lm_head: 'includeLmHead',
    weight_decay: 'weightDecay',
    badam_verbose: 'verbose',
  } satisfies Record<string, keyof BlockOptimizerRatioOptions>,
  referenceHint: (ours) => ` (the reference's name; blockgrad calls it '${ours}')`,
};

/** The Adam hyperparameters of the one parameter group. */
export interface RatioHyper {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/** A problem with the Adam hyperparameters (at construction, at each step, in a state dict), or null. */
export function ratioHyperProblem(h: { lr: unknown; betas: unknown; eps: unknown; weightDecay: unknown }): string | null {
  const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  const lr = lrProblem(h.lr);
  if (lr) return lr;
  const b = h.betas;
  if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => typeof x === 'number' && x >= 0 && x < 1)) {
    return `invalid betas ${describe(b)}: expected [beta1, beta2] with 0 <= beta < 1`;
  }
  if (!num(h.eps) || !((h.eps as number) >= 0)) return `invalid eps ${describe(h.eps)}: expected a finite value >= 0`;
  if (!num(h.weightDecay) || !((h.weightDecay as number) >= 0)) return `invalid weightDecay ${describe(h.weightDecay)}: expected a finite value >= 0`;
  return null;
}

/** The options with their defaults, checked, applied to the model's parameters. */
export interface RatioSettings extends SharedSettings<RatioMaskEvent> {
  maskMode: MaskMode;
  switchEvery: number;
  updateRatio: number;
  preserveThreshold: number;
  decayAllParameters: boolean;
  hyper: RatioHyper;
  /** options.groups checked: each group's hyperparameters and name, and each trainable parameter's group (null: one group, the rules). */
  groups: { hyper: RatioHyper; name?: string }[] | null;
  groupOf: (name: string) => number;
  /** The parameters that train, in order: those that require grad, less the frozen ones. */
  trainable: [string, Tensor][];
  /** Names of the parameters frozen by includeEmbedding / includeLmHead. */
  frozen: string[];
  /** Each trainable parameter's ratio (its longest paramRatios key, or updateRatio). */
  ratioOf(name: string): number;
}

/**
 * Checks `options` against the model's `named` parameters (throwing a ValueError naming `op`);
 * `shared` are the options checkSharedOptions checked.
 */
export function ratioSettings(op: string, options: BlockOptimizerRatioOptions, named: [string, Tensor][], shared: SharedSettings<RatioMaskEvent>): RatioSettings {
  const maskMode = options.maskMode ?? 'adjacent';
  if (maskMode !== 'adjacent' && maskMode !== 'scatter') throw new ValueError(op, `unknown maskMode ${describe(maskMode)}: expected 'adjacent' or 'scatter'`);
  const switchEvery = options.switchEvery ?? 100;
  if (typeof switchEvery !== 'number' || !Number.isInteger(switchEvery) || switchEvery < 1) {
    throw new ValueError(op, `switchEvery must be an integer >= 1, got ${describe(switchEvery)}`);
  }
  const ratioProblem = (r: unknown) => (typeof r === 'number' && r > 0 && r <= 1 ? null : `must be in (0, 1], got ${describe(r)}`);
  const updateRatio = options.updateRatio ?? 0.1;
  const bad = ratioProblem(updateRatio);
  if (bad) throw new ValueError(op, `updateRatio ${bad}`);
  const preserveThreshold = options.preserveThreshold ?? 100;
  if (typeof preserveThreshold !== 'number' || !Number.isInteger(preserveThreshold) || preserveThreshold < 0) {
    throw new ValueError(op, `preserveThreshold must be an integer >= 0, got ${describe(preserveThreshold)}`);
  }
  const hyper: RatioHyper = {
    lr: options.lr ?? 1e-5,
    betas: (options.betas ? [...options.betas] : [0.9, 0.999]) as [number, number],
    eps: options.eps ?? 1e-8,
    weightDecay: options.weightDecay ?? 0,
  };
  const hp = ratioHyperProblem(hyper);
  if (hp) throw new ValueError(op, hp);

  // which parameters train
  const includeEmbedding = options.includeEmbedding ?? false;
  const includeLmHead = options.includeLmHead ?? false;
  const frozen: string[] = [];
  const trainable: [string, Tensor][] = [];
  for (const [name, p] of named) {
    if (!p.requiresGrad) continue;
    if ((!includeEmbedding && name.includes('embed')) || (!includeLmHead && name.includes('lm_head'))) {
      frozen.push(name);
      continue;
    }
    trainable.push([name, p]);
  }
  if (trainable.length === 0) {
    const why = frozen.length ? ` (${frozen.length} embedding/lm_head parameters are excluded: pass includeEmbedding / includeLmHead to train them)` : '';
    throw new ValueError(op, `no trainable parameter: none of the ${named.length} parameters requires grad${why}`);
  }
  for (const [name, p] of trainable) {
    if (!p.isContiguous()) {
      throw new ValueError(op, `parameter '${name}' of shape ${fmtShape(p.shape)} is not contiguous; masks index its flat storage: make it contiguous first`);
    }
  }

  // per-name ratios
  const overrides = options.paramRatios ?? {};
  if (!isPlainObject(overrides)) throw new ValueError(op, `paramRatios must be an object { name or prefix: ratio }, got ${describe(overrides)}`);
  const keys = Object.keys(overrides);
  for (const key of keys) {
    const problem = ratioProblem(overrides[key]);
    if (problem) throw new ValueError(op, `paramRatios['${key}'] ${problem}`);
    if (!trainable.some(([name]) => name.startsWith(key))) {
      throw new ValueError(op, `paramRatios key '${key}' matches no trainable parameter (names: ${trainable.slice(0, 6).map(([n]) => n).join(', ')}${trainable.length > 6 ? ', ...' : ''})`);
    }
  }
  const ratioOf = (name: string) => {
    const hits = keys.filter((key) => name.startsWith(key)).sort((a, b) => b.length - a.length);
    return hits.length ? overrides[hits[0]] : updateRatio;
  };

  const { groups, groupOf } = ratioGroups(op, options.groups, hyper, trainable);
  return {
    maskMode,
    switchEvery,
    updateRatio,
    preserveThreshold,
    ...shared,
    decayAllParameters: options.decayAllParameters ?? false,
    hyper,
    groups,
    groupOf,
    trainable,
    frozen,
    ratioOf,
  };
}

/** options.groups checked against the trainable parameters: each group's hyperparameters, and each parameter's group. */
function ratioGroups(op: string, input: unknown, base: RatioHyper, trainable: [string, Tensor][]): Pick<RatioSettings, 'groups' | 'groupOf'> {
  if (input === undefined) return { groups: null, groupOf: () => 0 };
  if (!Array.isArray(input) || input.length === 0) throw new ValueError(op, `groups must be a non-empty list of { params, lr?, betas?, eps?, weightDecay? }, got ${describe(input)}`);
  const nameOf = new Map(trainable.map(([n, p]) => [p, n]));
  const index = new Map<string, number>();
  const groups = input.map((g: unknown, i) => {
    if (!isPlainObject(g) || g.params === null || typeof g.params !== 'object' || typeof (g.params as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new ValueError(op, `groups[${i}] must be an object with params (tensors or [name, tensor] pairs), got ${describe(g)}`);
    }
    for (const key of Object.keys(g)) {
      if (!['params', 'name', 'lr', 'betas', 'eps', 'weightDecay'].includes(key)) throw new ValueError(op, `groups[${i}] has an unknown key '${key}'; known: params, name, lr, betas, eps, weightDecay`);
    }
    if (g.betas !== undefined && !Array.isArray(g.betas)) throw new ValueError(op, `groups[${i}].betas must be [beta1, beta2], got ${describe(g.betas)}`);
    if (g.name !== undefined && typeof g.name !== 'string') throw new ValueError(op, `groups[${i}].name must be a string, got ${describe(g.name)}`);
    const hyper: RatioHyper = {
      lr: (g.lr as number | undefined) ?? base.lr,
      betas: ((g.betas as [number, number] | undefined) ?? base.betas).slice() as [number, number],
      eps: (g.eps as number | undefined) ?? base.eps,
      weightDecay: (g.weightDecay as number | undefined) ?? base.weightDecay,
    };
    const problem = ratioHyperProblem(hyper);
    if (problem) throw new ValueError(op, `groups[${i}]: ${problem}`);
    for (const item of g.params as Iterable<unknown>) {
      const p = Array.isArray(item) ? item[1] : item;
      const name = nameOf.get(p as Tensor);
      if (name === undefined) continue; // frozen, or not a parameter of this model: not trained here
      if (index.has(name)) throw new ValueError(op, `'${name}' is in groups[${index.get(name)}] and groups[${i}]; put each parameter in one group`);
      index.set(name, i);
    }
    return { hyper, ...(typeof g.name === 'string' ? { name: g.name } : {}) };
  });
  const missing = trainable.find(([n]) => !index.has(n));
  if (missing) throw new ValueError(op, `the trainable parameter '${missing[0]}' is in none of the groups; put every trainable parameter in one`);
  return { groups, groupOf: (name) => index.get(name) as number };
}
