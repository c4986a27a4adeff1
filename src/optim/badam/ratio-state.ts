/**
 * BlockOptimizerRatio's state dict: the schedule (global step, switch count, each mask's start and
 * seed), the hyperparameters, the k-element moments and the float16 parameters' k-element float32
 * masters, so a resumed run equals an uninterrupted one bit for bit. Its save, its check
 * (load-contract.ts) and the restore of one parameter.
 */
import { Tensor } from '../../tensor/tensor';
import { isFloating, isHalf } from '../../tensor/dtype';
import { hasOwn, isPlainObject } from '../../util/objects';
import { cloneOnto, stateDtype, stateValueProblem } from '../state-tensors';
import { LoadProblems, refuseLoad } from '../load-contract';
import { describe } from '../../util/describe';
import { buildMask, dropMoments, type MaskedParam } from './ratio-masks';
import { ratioHyperProblem, type MaskMode, type RatioHyper } from './ratio-options';

/**
 * One parameter's saved state. Moments (and, for a float16 parameter, the float32 master of the
 * selected entries) are k-vectors, absent before a mask period's first step.
 */
export interface RatioParamStateDict {
  numel: number;
  k: number;
  offset: number;
  seed: number;
  step: number;
  exp_avg?: Tensor;
  exp_avg_sq?: Tensor;
  master?: Tensor;
}

export interface BlockOptimizerRatioStateDict {
  kind: 'BlockOptimizerRatio';
  step: number;
  switchCount: number;
  maskMode: MaskMode;
  switchEvery: number;
  paramGroups: { lr: number; betas: [number, number]; eps: number; weightDecay: number; paramNames: string[] }[];
  state: Record<string, RatioParamStateDict>;
}

/** Whether `x` is an integer >= 0. */
const count = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;

/** Where the schedule of a BlockOptimizerRatio is, and how it is built. */
export interface RatioSchedule {
  step: number;
  switchCount: number;
  maskMode: MaskMode;
  switchEvery: number;
}

/** The state dict of `entries` (tensors are detached views of the optimizer's storage). */
export function saveRatioState(entries: readonly MaskedParam[], schedule: RatioSchedule, groups: readonly (RatioHyper & { paramNames: string[] })[]): BlockOptimizerRatioStateDict {
  const state: Record<string, RatioParamStateDict> = {};
  for (const e of entries) {
    const s: RatioParamStateDict = { numel: e.numel, k: e.k, offset: e.offset, seed: e.seed, step: e.step };
    if (e.expAvg && e.expAvgSq) {
      s.exp_avg = e.expAvg.detach();
      s.exp_avg_sq = e.expAvgSq.detach();
    }
    if (e.master) s.master = e.master.detach();
    state[e.name] = s;
  }
  return {
    kind: 'BlockOptimizerRatio',
    ...schedule,
    paramGroups: groups.map((g) => ({ lr: g.lr, betas: [...g.betas] as [number, number], eps: g.eps, weightDecay: g.weightDecay, paramNames: [...g.paramNames] })),
    state,
  };
}

/**
 * Checks `sd` for an optimizer over `entries` built with `maskMode` and `switchEvery`, and
 * returns it typed; any problem throws one ValueError naming `op` that lists them all.
 */
export function checkRatioState(
  op: string,
  sd: unknown,
  entries: readonly MaskedParam[],
  maskMode: MaskMode,
  switchEvery: number,
  groups: readonly { paramNames: readonly string[] }[],
): BlockOptimizerRatioStateDict {
  if (!isPlainObject(sd) || sd.kind !== 'BlockOptimizerRatio' || !isPlainObject(sd.state) || !Array.isArray(sd.paramGroups)) {
    refuseLoad(op, 'expected the object returned by BlockOptimizerRatio.stateDict()');
  }
  const problems = new LoadProblems(op);
  if (sd.maskMode !== maskMode) problems.add(`maskMode is ${describe(sd.maskMode)} in the state dict but '${maskMode}' here`);
  if (sd.switchEvery !== switchEvery) problems.add(`switchEvery is ${describe(sd.switchEvery)} in the state dict but ${switchEvery} here`);
  if (!count(sd.step)) problems.add(`step must be an integer >= 0, got ${describe(sd.step)}`);
  if (!count(sd.switchCount)) problems.add(`switchCount must be an integer >= 0, got ${describe(sd.switchCount)}`);
  else if (count(sd.step) && sd.switchCount !== Math.floor((sd.step as number) / switchEvery)) {
    problems.add(`switchCount ${sd.switchCount} does not match step ${sd.step} with switchEvery ${switchEvery}`);
  }
  if (sd.paramGroups.length !== groups.length) problems.add(`expected ${groups.length} parameter group(s), got ${describe(sd.paramGroups)}`);
  else {
    sd.paramGroups.forEach((g: unknown, i) => {
      if (!isPlainObject(g)) return problems.add(`paramGroups[${i}] must be an object, got ${describe(g)}`);
      const hp = ratioHyperProblem(g as { lr: unknown; betas: unknown; eps: unknown; weightDecay: unknown });
      if (hp) problems.add(`parameter group ${i}: ${hp}`);
      const names = g.paramNames;
      if (Array.isArray(names) && names.join('\n') !== groups[i].paramNames.join('\n')) problems.add(`parameter group ${i} holds other parameters in the state dict than here (were the groups built the same way?)`);
    });
  }
  const state = sd.state;
  const names = new Set(entries.map((e) => e.name));
  for (const name of Object.keys(state)) if (!names.has(name)) problems.add(`state for '${name}', which is not a trainable parameter here`);
  const switchCount = count(sd.switchCount) ? (sd.switchCount as number) : null;
  for (const e of entries) {
    const s = hasOwn(state, e.name) ? state[e.name] : undefined; // own keys only
    if (!isPlainObject(s)) problems.add(`no state for '${e.name}'`);
    else checkParamState(`state['${e.name}']`, s, e, maskMode, switchEvery, switchCount, problems);
  }
  problems.throwIfAny();
  return sd as unknown as BlockOptimizerRatioStateDict;
}

/** Problems with one parameter's saved state `s` (saved at `switchCount`, when that is known). */
function checkParamState(where: string, s: Record<string, unknown>, e: MaskedParam, maskMode: MaskMode, switchEvery: number, switchCount: number | null, problems: LoadProblems): void {
  if (s.numel !== e.numel) problems.add(`${where}.numel is ${describe(s.numel)} but the parameter has ${e.numel} entries`);
  if (s.k !== e.k) problems.add(`${where}.k is ${describe(s.k)} but the mask here selects ${e.k} entries (same updateRatio, paramRatios and preserveThreshold?)`);
  if (switchCount !== null && s.offset !== (e.dense ? 0 : (e.k * switchCount) % e.numel)) {
    problems.add(`${where}.offset ${describe(s.offset)} does not match switch ${switchCount}`);
  }
  if (maskMode === 'scatter' && !e.dense && s.seed !== e.seed) problems.add(`${where}.seed differs: build the optimizer with the same seed`);
  if (!count(s.step) || (s.step as number) > switchEvery) problems.add(`${where}.step must be an integer in [0, ${switchEvery}], got ${describe(s.step)}`);
  const moments = [s.exp_avg, s.exp_avg_sq];
  if (moments.some((m) => m !== undefined)) {
    if (moments.some((m) => !(m instanceof Tensor))) problems.add(`${where} must have both exp_avg and exp_avg_sq as Tensors, or neither`);
    for (const m of moments) {
      if (!(m instanceof Tensor)) continue;
      if (m.isDisposed || m.buffer.released) problems.add(`${where} holds a disposed moment`);
      else if (!isFloating(m.dtype)) problems.add(`${where} holds a ${m.dtype} moment, expected floating`);
      else if (m.numel !== e.k) problems.add(`${where} holds a moment of ${m.numel} entries, expected k = ${e.k}`);
      else problems.add(stateValueProblem(m === s.exp_avg ? `${where}.exp_avg` : `${where}.exp_avg_sq`, m, m === s.exp_avg_sq));
    }
  }
  const master = s.master;
  if (master !== undefined) {
    if (!isHalf(e.param.dtype)) problems.add(`${where}.master is given but '${e.name}' is ${e.param.dtype}: only float16 and bfloat16 parameters have masters`);
    else if (!(master instanceof Tensor) || master.isDisposed || master.buffer.released || !isFloating(master.dtype)) {
      problems.add(`${where}.master must be a live floating Tensor`);
    } else if (master.numel !== e.k) problems.add(`${where}.master has ${master.numel} entries, expected k = ${e.k}`);
    else problems.add(stateValueProblem(`${where}.master`, master, false));
  }
}

/** Puts a checked saved state `s` into `e`: its mask position, step, moments and master. */
export function restoreParamState(e: MaskedParam, s: RatioParamStateDict, maskMode: MaskMode): void {
  dropMoments(e);
  e.offset = s.offset;
  e.step = s.step;
  if (s.exp_avg && s.exp_avg_sq) {
    const dtype = stateDtype(e.param);
    e.expAvg = cloneOnto(s.exp_avg, e.param, dtype).tagMemory('optimizer');
    e.expAvgSq = cloneOnto(s.exp_avg_sq, e.param, dtype).tagMemory('optimizer');
  }
  // a float16 parameter's master (a state dict without one: made from the weights at the next step)
  if (s.master) e.master = cloneOnto(s.master, e.param, 'float32').tagMemory('master');
  buildMask(e, maskMode);
}
