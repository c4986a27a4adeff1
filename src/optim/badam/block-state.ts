/**
 * BlockOptimizer's state dict: the base optimizer's `{ state, paramGroups }` for the active block
 * plus `badam`: the partition, mode and K (checked on load), the active block, the block order of
 * the current epoch and the position in it, the step within the block, the global step, the
 * block-epoch, the Generator's state, the lrs, the active block's overrides, and the float32 masters by parameter name (they
 * carry precision that the float16 weights lost, so they cannot be rebuilt from them). This file
 * holds its types and the checks of its parts that are not the schedule's (schedule.ts) or the
 * base optimizer's (state-dict.ts).
 */
import { Tensor } from '../../tensor/tensor';
import { isFloating, isHalf } from '../../tensor/dtype';
import { sameShape } from '../../tensor/shape';
import type { GeneratorState } from '../../tensor/random';
import { hasOwn, isPlainObject } from '../../util/objects';
import type { OptimizerStateDict } from '../state-dict';
import { stateValueProblem } from '../state-tensors';
import { refuseLoad, type LoadProblems } from '../load-contract';
import { describe } from '../../util/describe';
import { lrProblem } from '../hyperparameters';
import type { SwitchMode } from './block-options';

/** The schedule and masters part of a BlockOptimizer state dict. */
export interface BlockScheduleState {
  format: 'blockgrad.badam.v1';
  /** The partition's prefixes, checked on load. */
  blocks: string[][];
  switchMode: SwitchMode;
  switchEvery: number;
  block: number;
  /** The block order of the current block-epoch and the active block's position in it. */
  order: number[];
  position: number;
  stepInBlock: number;
  globalStep: number;
  epoch: number;
  generator: GeneratorState;
  /** paramGroups[0]'s lr (every group's, in a state dict saved before lrs existed). */
  lr: number;
  /** Every paramGroups entry's lr (one per group of a grouped base). */
  lrs?: number[];
  /** The active block's blockHyperparams (lrScale and the replaced hyperparameters), checked on load. */
  overrides?: Record<string, unknown>;
  /** float32 masters of the active float16 parameters, by name. */
  masters: Record<string, Tensor>;
}

export interface BlockOptimizerStateDict extends OptimizerStateDict {
  badam: BlockScheduleState;
}

/**
 * The `badam` part of `sd`, once its outline is right: an object with `state`, `paramGroups`
 * and `badam`, in this format, saved with the same partition (`ours`, each block's prefixes).
 * Otherwise the state dict is refused at once: the rest of it describes another run.
 */
export function badamPart(op: string, sd: unknown, ours: readonly (readonly string[])[]): Record<string, unknown> {
  if (!isPlainObject(sd) || !isPlainObject(sd.badam) || !isPlainObject(sd.state) || !Array.isArray(sd.paramGroups)) {
    refuseLoad(op, 'expected { state, paramGroups, badam } as returned by BlockOptimizer.stateDict()');
  }
  const s = sd.badam;
  if (s.format !== 'blockgrad.badam.v1') refuseLoad(op, `unknown state format ${describe(s.format)} (expected 'blockgrad.badam.v1')`);
  const theirs = s.blocks;
  const samePartition =
    Array.isArray(theirs) &&
    theirs.length === ours.length &&
    theirs.every((b, i) => Array.isArray(b) && b.length === ours[i].length && b.every((p, j) => p === ours[i][j]));
  if (!samePartition) refuseLoad(op, `the state dict was saved with a different partition (${Array.isArray(theirs) ? theirs.length : '?'} blocks; this optimizer has ${ours.length})`);
  return s;
}

/**
 * Checks the saved masters of block `block`, whose trainable parameters are `params`: one live
 * floating tensor of the parameter's shape, with finite values (a NaN master becomes a NaN weight),
 * for each float16 parameter, and nothing else. Records the problems in `problems`.
 */
export function checkMasters(masters: unknown, params: [string, Tensor][], block: number, problems: LoadProblems): void {
  if (!isPlainObject(masters)) {
    problems.add('masters must be an object of tensors by parameter name');
    return;
  }
  const halfs = params.filter(([, p]) => isHalf(p.dtype));
  for (const [n, p] of halfs) {
    const m = hasOwn(masters, n) ? masters[n] : undefined; // own keys only
    if (!(m instanceof Tensor)) problems.add(`masters lacks '${n}' (a float16 parameter of block ${block})`);
    else if (m.isDisposed || m.buffer.released || !isFloating(m.dtype)) problems.add(`masters['${n}'] must be a live floating tensor`);
    else if (!sameShape(m.shape, p.shape)) problems.add(`masters['${n}'] has shape [${m.shape.join(',')}] but the parameter [${p.shape.join(',')}]`);
    else problems.add(stateValueProblem(`masters['${n}']`, m, false));
  }
  const halfNames = new Set(halfs.map(([n]) => n));
  for (const k of Object.keys(masters)) if (!halfNames.has(k)) problems.add(`masters['${k}'] is not a float16 parameter of block ${block}`);
}

/** The saved lrs, one per paramGroups entry (`n` of them); an older state dict's single lr serves every entry. */
export function savedLrs(s: Record<string, unknown>, n: number, problems: LoadProblems): number[] {
  if (s.lrs === undefined) {
    problems.add(lrProblem(s.lr));
    return new Array<number>(n).fill(s.lr as number);
  }
  if (!Array.isArray(s.lrs) || s.lrs.length !== n) {
    problems.add(`lrs must be ${n} learning rates (one per parameter group of the optimizer), got ${describe(s.lrs)}`);
    return [];
  }
  s.lrs.forEach((lr, i) => problems.add(lrProblem(lr) && `lrs[${i}]: ${lrProblem(lr)}`));
  return s.lrs as number[];
}

/** The saved run's overrides for block `block` must be this optimizer's (blockHyperparams is part of the configuration). */
export function checkOverrides(saved: unknown, ours: { lrScale: number; hyper: Record<string, unknown> }, block: number, problems: LoadProblems): void {
  const mine = JSON.stringify({ lrScale: ours.lrScale, ...ours.hyper });
  const theirs = saved === undefined ? JSON.stringify({ lrScale: 1 }) : JSON.stringify(saved);
  if (mine !== theirs) problems.add(`block ${block} was trained with blockHyperparams ${theirs} but this optimizer gives it ${mine}`);
}
