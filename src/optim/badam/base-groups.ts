/**
 * BlockOptimizer's inner optimizer: reused for every block, or made by a factory per block, and
 * given the active block's parameters in groups.
 *
 * - A base optimizer built with several groups (as LLaMA-Factory builds AdamW: weights with weight
 *   decay, biases and norms without) is *grouped*: each parameter of the active block goes into a
 *   group with the hyperparameters of the group it was given in (its lr, weightDecay, betas, ...).
 *   The template of those groups is taken once, when the BlockOptimizer is built.
 * - Otherwise (one group: `new AdamW(model.parameters(), ...)`, or a factory's optimizer) the
 *   rules decide: parameters whose names end with `bias` or belong to a norm layer (`norm` in the
 *   name, any case) or are 1-D get weightDecay 0, the others the base's weightDecay
 *   (`decayAllParameters: true`: one group, everything decays). Optimizers without a weightDecay
 *   hyperparameter get one group.
 *
 * Per-block overrides (the `blockHyperparams` option) then replace hyperparameters in every group
 * of their block. A state dict's base state is checked in those groups before it is loaded.
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

/** The groups a grouped base optimizer was built with: each one's hyperparameters, and each parameter's group. */
export interface GroupTemplate {
  groups: { hyper: Record<string, unknown>; name?: string }[];
  groupOf: Map<Tensor, number>;
}

/** `opt`'s groups as a template, or null when it has one group (the rules decide then). */
export function groupTemplate(opt: Optimizer): GroupTemplate | null {
  if (opt.paramGroups.length <= 1) return null;
  const groupOf = new Map<Tensor, number>();
  const groups = opt.paramGroups.map((g, i) => {
    for (const p of g.params) groupOf.set(p, i);
    const { params: _params, paramNames: _names, name, ...hyper } = g;
    return { hyper: hyper as Record<string, unknown>, name };
  });
  return { groups, groupOf };
}

/** How the active block's parameters were grouped: for each base group, the template group it came from (0 when ungrouped). */
export type GroupSources = number[];

/**
 * Replaces opt's groups with the active block's (restoring them on error): by `template` when the
 * base is grouped, else the decay / no-decay split; `overrides` replace hyperparameters in every
 * group. Returns each new group's template group.
 */
export function setBlockGroups(
  opt: Optimizer,
  params: [string, Tensor][],
  decayAllParameters: boolean,
  template: GroupTemplate | null = null,
  overrides: Record<string, unknown> = {},
): GroupSources {
  const groups: ParamGroupInput[] = [];
  const sources: GroupSources = [];
  if (template) {
    const members = template.groups.map((): [string, Tensor][] => []);
    for (const [n, p] of params) members[template.groupOf.get(p) as number].push([n, p]); // every parameter has one (checked when built)
    members.forEach((m, i) => {
      if (m.length === 0) return;
      const { hyper, name } = template.groups[i];
      // a group without weight decay (biases and norms) keeps none, whatever the block's override
      const own = hyper.weightDecay === 0 ? { ...overrides, weightDecay: 0 } : overrides;
      groups.push({ ...hyper, ...own, params: m, name: name ?? `group_${i}` } as ParamGroupInput);
      sources.push(i);
    });
  } else {
    const hasDecay = hasOwn(opt.defaults, 'weightDecay');
    const decay: [string, Tensor][] = [];
    const noDecay: [string, Tensor][] = [];
    for (const [n, p] of params) (decayAllParameters || !hasDecay || !isNoDecayParameter(n, p) ? decay : noDecay).push([n, p]);
    if (decay.length) groups.push({ ...overrides, params: decay, name: 'decay' } as ParamGroupInput);
    if (noDecay.length) groups.push({ ...overrides, params: noDecay, weightDecay: 0, name: 'no_decay' } as ParamGroupInput);
    for (const _ of groups) sources.push(0);
  }
  const previous = opt.paramGroups;
  opt.paramGroups = [];
  try {
    for (const g of groups) opt.addParamGroup(g);
  } catch (e) {
    opt.paramGroups = previous;
    throw e;
  }
  return sources;
}

/** The base optimizer that a loaded state dict will train with, its state checked (see below). */
export interface BaseLoad {
  /** `base` itself, or the factory's new optimizer for the block. */
  next: Optimizer;
  /** Loads the checked state into `next` (only once nothing at all was found wrong). */
  commit(): void;
  /** Puts `next`'s groups back as they were (when the load is refused). */
  undo(): void;
  /** Each of `next`'s groups' template group. */
  sources: GroupSources;
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
  template: GroupTemplate | null = null,
  overrides: Record<string, unknown> = {},
): BaseLoad {
  const next = factory ? buildBase(factory, params.map(([, p]) => p)) : base;
  const previous = next.paramGroups;
  const innerProblems = new LoadProblems(problems.op);
  let commit = () => {};
  let sources: GroupSources = [];
  try {
    sources = setBlockGroups(next, params, decayAllParameters, template, overrides);
    commit = next.checkStateDict(inner, innerProblems);
  } catch (e) {
    innerProblems.add((e as Error).message);
  }
  if (!innerProblems.isEmpty) problems.add(`the base optimizer's state does not fit block ${block}: ${innerProblems.list.join('; ')}`);
  return { next, commit, undo: () => (next.paramGroups = previous), sources };
}
