/**
 * BlockOptimizer's inner optimizer: reused for every block, or made by a factory per block, and
 * given the active block's parameters in two groups: parameters whose names end with `bias` or
 * belong to a norm layer (`norm` in the name, any case) or are 1-D get weightDecay 0, the others
 * the base's weightDecay (`decayAllParameters: true`: one group, everything decays). Optimizers
 * without a weightDecay hyperparameter get one group. A state dict's base state is checked in
 * those groups before it is loaded.
 */
import { ValueError } from '../../errors';
import type { Tensor } from '../../tensor/tensor';
import { Optimizer } from '../optimizer';
import type { ParamGroupInput } from '../param-groups';
import type { OptimizerStateDict } from '../state-dict';
import { LoadProblems } from '../load-contract';
import { isNoDecayParameter } from '../parameters';
import { describe } from '../../util/describe';
import { hasOwn } from '../../util/objects';
import type { BaseOptimizerFactory } from './block-options';

/** The factory's optimizer for a block's parameters, checked to be an Optimizer. */
export function buildBase(factory: BaseOptimizerFactory, params: Tensor[]): Optimizer {
  const made = factory(params);
  if (!(made instanceof Optimizer)) throw new ValueError('BlockOptimizer', `the base optimizer factory returned ${describe(made)}, not an Optimizer`);
  return made;
}

/** Replaces opt's groups with the decay / no-decay split of `params` (restoring them on error). */
export function setBlockGroups(opt: Optimizer, params: [string, Tensor][], decayAllParameters: boolean): void {
  const hasDecay = hasOwn(opt.defaults, 'weightDecay');
  const decay: [string, Tensor][] = [];
  const noDecay: [string, Tensor][] = [];
  for (const [n, p] of params) (decayAllParameters || !hasDecay || !isNoDecayParameter(n, p) ? decay : noDecay).push([n, p]);
  const groups: ParamGroupInput[] = [];
  if (decay.length) groups.push({ params: decay, name: 'decay' });
  if (noDecay.length) groups.push({ params: noDecay, weightDecay: 0, name: 'no_decay' } as ParamGroupInput);
  const previous = opt.paramGroups;
  opt.paramGroups = [];
  try {
    for (const g of groups) opt.addParamGroup(g);
  } catch (e) {
    opt.paramGroups = previous;
    throw e;
  }
}

/** The base optimizer that a loaded state dict will train with, its state checked (see below). */
export interface BaseLoad {
  /** `base` itself, or the factory's new optimizer for the block. */
  next: Optimizer;
  /** Loads the checked state into `next` (only once nothing at all was found wrong). */
  commit(): void;
  /** Puts `next`'s groups back as they were (when the load is refused). */
  undo(): void;
}

/**
 * For BlockOptimizer.loadStateDict: the base optimizer for block `block` (a factory's new one, or
 * the reused `base`) with its groups set for the block's `params`, and the saved `inner` state
 * checked against them. Any problem is recorded in `problems` as one, naming the block.
 */
export function prepareBaseLoad(
  base: Optimizer,
  factory: BaseOptimizerFactory | null,
  params: [string, Tensor][],
  decayAllParameters: boolean,
  inner: OptimizerStateDict,
  block: number,
  problems: LoadProblems,
): BaseLoad {
  const next = factory ? buildBase(factory, params.map(([, p]) => p)) : base;
  const previous = next.paramGroups;
  const innerProblems = new LoadProblems(problems.op);
  let commit = () => {};
  try {
    setBlockGroups(next, params, decayAllParameters);
    commit = next.checkStateDict(inner, innerProblems);
  } catch (e) {
    innerProblems.add((e as Error).message);
  }
  if (!innerProblems.isEmpty) problems.add(`the base optimizer's state does not fit block ${block}: ${innerProblems.list.join('; ')}`);
  return { next, commit, undo: () => (next.paramGroups = previous) };
}
