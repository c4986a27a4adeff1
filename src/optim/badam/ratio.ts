/**
 * BlockOptimizerRatio: the ratio variant of BAdam (the reference `badam` package's
 * `BlockOptimizerRatio`; LLaMA-Factory's `badam_mode: ratio`). Instead of one layer at a time,
 * every trainable parameter is trained on a sparse fraction of its entries, and the fraction
 * moves on every `switchEvery` steps:
 *
 * - Masks (ratio-masks.ts). For a parameter of n entries with ratio r, k = ceil(r·n) flat
 *   (row-major) indices are selected. `maskMode: 'adjacent'`: the contiguous, wrapping range
 *   [o, o+k) mod n. `maskMode: 'scatter'`: positions [o, o+k) mod n of a fixed seeded random
 *   permutation of 0..n-1 (one per parameter, `Generator(paramSeed).permutation(n)`), sorted
 *   ascending: random indices drawn without replacement. In both modes the start o is 0 for the
 *   first mask and advances by k (mod n) at each switch, as the reference's `offset`, so every
 *   entry is selected once every ceil(n/k) switches. Parameters with fewer than
 *   `preserveThreshold` entries, and those whose ratio is 1, are updated densely (k = n).
 * - Update (ratio-update.ts; Adam, PyTorch's bias correction, eps outside the square root,
 *   weight decay decoupled as in AdamW): the selected entries of the parameter and its gradient
 *   are gathered into k-vectors, the fused Adam kernel updates the k-vector with k-element
 *   moments, and the result is written back: for 'adjacent' by in-place strided assigns into at
 *   most two contiguous ranges (the wrap), for 'scatter' by `where(mask, scattered values,
 *   parameter)` built with index-add kernels. Unselected entries are never written, so they keep
 *   their bits.
 * - State: the Adam moments are k floats each (float32 for float16 parameters, else the
 *   parameter's dtype), allocated at the first step of a mask period and dropped at each switch,
 *   as the reference resets its state: optimizer memory is 2·k·4 bytes per float32 parameter.
 *   The 'scatter' mask is also held, as k int32 indices tagged 'other' (not counted as optimizer
 *   state); 'adjacent' holds no index.
 * - Masters (float16 parameters): a float32 copy of the k selected entries, made at the first
 *   step of a mask period from the float16 values, updated by Adam and rounded (to nearest even)
 *   back into the float16 entries after every step, and released at each switch: 4·k bytes
 *   tagged 'master'. Without it an Adam step below half a float16 ulp (lr 1e-5 on weights near
 *   1) would be lost at every step, and the entries would never move. float32 and float64
 *   parameters are updated in place and need none.
 * - Weight decay spares biases, norm weights and 1-D parameters, as BlockOptimizer's groups do
 *   (`isNoDecayParameter`); `decayAllParameters: true` decays everything.
 *
 * Options (ratio-options.ts), with the reference's names and defaults (LLaMA-Factory in brackets):
 *   updateRatio (update_ratio, 0.1) [badam_update_ratio, default 0.05]
 *   maskMode (mask_mode, 'adjacent') [badam_mask_mode]
 *   switchEvery (switch_every, 100; LLaMA-Factory does not pass it in ratio mode, so 100)
 *   preserveThreshold (preserve_threshold, 100)
 *   paramRatios (param_update_ratios: per-name overrides)
 *   includeEmbedding (include_embedding, false) [LLaMA-Factory passes false]
 *   includeLmHead (include_lm_head, false)
 *   lr (1e-5), betas ([0.9, 0.999]), eps (1e-8), verbose (1)
 *   weightDecay (0; the reference's sparse Adam has none), decayAllParameters (false), seed (0),
 *   log (a callback for events)
 *
 * Differences from the reference, on purpose:
 * - k = ceil(r·n) (the reference takes int(r·n), which is 0 for small r·n); a tiny relative
 *   tolerance keeps r·n that is an integer up to rounding (0.7·10) from being rounded up;
 * - masks are kept per parameter (the reference caches them by shape, so same-shape parameters
 *   share the first one's scatter mask) and drawn from blockgrad's own generators (the reference
 *   reseeds torch's global RNG);
 * - parameters below preserveThreshold really are updated densely (in the reference the dense
 *   gradient is masked again right after);
 * - the embedding and lm_head parameters frozen by default are every parameter whose name
 *   contains 'embed' (or 'lm_head'), not only the first one; they get requiresGrad false, so
 *   the engine prunes them;
 * - `paramRatios` keys match a name exactly or as a prefix (the longest key wins) and must each
 *   match a trainable parameter; the reference matches substrings;
 * - as in the reference, a post-accumulate hook keeps only the selected entries of each masked
 *   parameter's gradient (ratio-grads.ts), packed as a k-vector rather than a sparse tensor, and
 *   frees the dense gradient as soon as the backward has completed it;
 * - stateDict() (ratio-state.ts) holds the schedule (global step, switch count, mask starts and seeds), so a resumed
 *   run equals an uninterrupted one bit for bit.
 *
 * The 'scatter' write-back touches every entry of the parameter (three dense temporaries of n
 * elements per parameter and step); an index-copy kernel would make it O(k).
 */
import { ValueError } from '../../errors';
import type { Tensor } from '../../tensor/tensor';
import { Generator } from '../../tensor/random';
import type { DType } from '../../tensor/dtype';
import { enableGrad, noGrad } from '../../autograd/grad-mode';
import { clearGrads, gradProblem } from '../gradients';
import { isNoDecayParameter, namedParameterList } from '../parameters';
import { checkClaims, claimParameters, isSuperseded } from '../ownership';
import { checkSharedOptions } from './options';
import { RATIO_OPTION_NAMES, ratioHyperProblem, ratioSettings, type BlockOptimizerRatioOptions, type MaskMode } from './ratio-options';
import { buildMask, dropMoments, newMaskedParam, ratioMaskIndices, type MaskedParam } from './ratio-masks';
import { maskedAdamUpdate } from './ratio-update';
import { adjacentRowSink, dropPackedGradient, packGradient } from './ratio-grads';
import { setRowGradientSink } from '../../autograd/row-gradients';
import { checkRatioState, restoreParamState, saveRatioState, type BlockOptimizerRatioStateDict } from './ratio-state';
import { report, type RatioMaskEvent, type RatioMaskInfo, type Verbosity } from './events';

/** A parameter group (schedulers set its lr): one, or one per options.groups entry. */
export interface RatioParamGroup {
  params: Tensor[];
  paramNames: string[];
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  name?: string;
}

export class BlockOptimizerRatio {
  readonly paramGroups: RatioParamGroup[];
  readonly maskMode: MaskMode;
  readonly switchEvery: number;
  readonly updateRatio: number;
  readonly preserveThreshold: number;
  readonly seed: number;
  readonly decayAllParameters: boolean;
  /** Names of the parameters frozen at construction (embedding, lm_head). */
  readonly frozen: string[];
  verbose: Verbosity;
  log: ((event: RatioMaskEvent) => void) | null;

  private readonly entries: MaskedParam[] = [];
  private readonly removers: (() => void)[] = [];
  private disposed = false;
  private globalStep = 0;
  private switches = 0;

  constructor(model: { namedParameters(): [string, Tensor][] } | Iterable<[string, Tensor]>, options: BlockOptimizerRatioOptions = {}) {
    const op = 'BlockOptimizerRatio';
    const shared = checkSharedOptions<RatioMaskEvent>(op, options, RATIO_OPTION_NAMES);
    // names pick the masks, the overrides and the frozen embeddings; frozen parameters may be anything
    const { params, names } = namedParameterList(op, model, { why: ': names pick the masks, overrides and frozen embeddings', trainable: 'requiresGrad' });
    const named = params.map((p, i): [string, Tensor] => [(names as string[])[i], p]);
    const { trainable, frozen, hyper, ratioOf, groups, groupOf, ...settings } = ratioSettings(op, options, named, shared);
    const { maskMode, switchEvery, updateRatio, preserveThreshold, seed, verbose, decayAllParameters } = settings;

    // everything is valid: claim the trainable parameters (ownership.ts), change the model, build the masks
    claimParameters(this, 'BlockOptimizerRatio', trainable.map(([, p]) => p), trainable.map(([n]) => n));
    for (const name of frozen) named.find(([n]) => n === name)?.[1].requiresGrad_(false);
    const seeds = new Generator(seed);
    for (const [name, p] of trainable) {
      // with groups, each group's weightDecay decides (LLaMA-Factory's no-decay group has 0)
      const decay = groups !== null || decayAllParameters || !isNoDecayParameter(name, p);
      this.entries.push(newMaskedParam(name, p, ratioOf(name), preserveThreshold, seeds.nextUint32(), decay, groupOf(name)));
    }
    this.maskMode = maskMode;
    this.switchEvery = switchEvery;
    this.updateRatio = updateRatio;
    this.preserveThreshold = preserveThreshold;
    this.seed = seed;
    this.decayAllParameters = decayAllParameters;
    this.frozen = frozen;
    this.verbose = verbose;
    this.log = settings.log ?? null;
    const members = (i: number) => trainable.filter(([n]) => groupOf(n) === i);
    this.paramGroups = (groups ?? [{ hyper }]).map((g, i) => ({
      params: members(i).map(([, p]) => p),
      paramNames: members(i).map(([n]) => n),
      ...g.hyper,
      betas: [...g.hyper.betas] as [number, number],
      ...('name' in g && g.name !== undefined ? { name: g.name } : {}),
    }));
    for (const e of this.entries) buildMask(e, maskMode);
    for (const e of this.entries) {
      if (e.dense) continue;
      this.removers.push(e.param.registerPostAccumulateGradHook(() => this.onGradient(e)));
      const sink = maskMode === 'adjacent' ? adjacentRowSink(e, () => !isSuperseded(this)) : null;
      if (sink) setRowGradientSink(e.param, sink);
    }
    this.emit('init');
  }

  // ------------------------------------------------------------------ inspection

  /** Optimizer steps taken. */
  get stepCount(): number {
    return this.globalStep;
  }

  /** Mask switches so far (the current mask is number switchCount, from 0). */
  get switchCount(): number {
    return this.switches;
  }

  /** The trainable parameters, in order. */
  parameters(): Tensor[] {
    return this.entries.map((e) => e.param);
  }

  /** The current mask of every trainable parameter. */
  masks(): RatioMaskInfo[] {
    return this.entries.map((e) => ({ name: e.name, numel: e.numel, k: e.k, dense: e.dense, offset: e.offset }));
  }

  /** The sorted flat indices that the current mask selects in parameter `name`. */
  maskIndices(name: string): number[] {
    const e = this.entry('BlockOptimizerRatio.maskIndices', name);
    if (e.dense) return Array.from({ length: e.numel }, (_, i) => i);
    if (e.indices) return Array.from(e.indices.toTypedArray() as Int32Array);
    return Array.from(ratioMaskIndices(this.maskMode, e.numel, e.k, e.offset, e.seed)); // 'adjacent', or 'scatter' after release()
  }

  /**
   * Parameter `name`'s Adam state: its step in this mask period, the dtype of its moments, the
   * k-element moments and (float16 parameters) the float32 master of the selected entries, as
   * host copies (null before the period's first step, and master null for other dtypes).
   */
  paramState(name: string): { step: number; dtype: DType | null; exp_avg: number[] | null; exp_avg_sq: number[] | null; master: number[] | null } {
    const e = this.entry('BlockOptimizerRatio.paramState', name);
    const read = (t: Tensor | null) => (t === null ? null : Array.from(t.toTypedArray() as ArrayLike<number>));
    return { step: e.step, dtype: e.expAvg?.dtype ?? null, exp_avg: read(e.expAvg), exp_avg_sq: read(e.expAvgSq), master: read(e.master) };
  }

  /**
   * Parameter `name`'s gradient as step() will use it: the packed selected entries of a masked
   * parameter (in mask order), or the dense gradient of a dense one; a host copy, null when none.
   */
  gradientOf(name: string): number[] | null {
    const e = this.entry('BlockOptimizerRatio.gradientOf', name);
    const g = e.dense ? e.param.grad : e.grad;
    return g === null ? null : Array.from(g.toTypedArray() as ArrayLike<number>);
  }

  /** The post-accumulate hook: keep the selected entries only (unless a newer optimizer owns the parameter now). */
  private onGradient(e: MaskedParam): void {
    if (isSuperseded(this)) return;
    packGradient(e, this.maskMode);
  }

  private entry(op: string, name: string): MaskedParam {
    const e = this.entries.find((x) => x.name === name);
    if (!e) throw new ValueError(op, `no trainable parameter '${name}'${this.frozen.includes(name) ? ' (it is frozen)' : ''}`);
    return e;
  }

  // ------------------------------------------------------------------ training

  /**
   * Clears every trainable parameter's gradient: null, with the gradient tensor disposed (the
   * default), or with `setToNone: false` zeroed in place (see Optimizer.zeroGrad). The packed
   * gradients of masked parameters are always dropped (step() drops them too, once used).
   */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    clearGrads(this.entries.map((e) => e.param), options.setToNone ?? true);
    for (const e of this.entries) dropPackedGradient(e);
  }

  /**
   * One step: every trainable parameter with a gradient gets the Adam update on its selected
   * entries; after every `switchEvery`-th step the masks move on and the moments are dropped.
   * Everything is checked before any parameter is written.
   */
  step<L = unknown>(closure?: () => L): L | undefined {
    const op = 'BlockOptimizerRatio.step';
    // an optimizer built later on these parameters: an error, not a step on flags it set (ownership.ts)
    checkClaims(op, this, 'BlockOptimizerRatio');
    if (this.disposed) throw new ValueError(op, 'this BlockOptimizerRatio was disposed (its gradient hooks are removed); build a new one');
    const loss = closure ? enableGrad(closure) : undefined;
    this.paramGroups.forEach((group, i) => {
      const problem = ratioHyperProblem(group);
      if (problem) throw new ValueError(op, this.paramGroups.length > 1 ? `paramGroups[${i}]: ${problem}` : problem);
    });
    for (const e of this.entries) {
      const p = e.param;
      if (!p.isContiguous()) throw new ValueError(op, `parameter '${e.name}' is no longer contiguous; masks index its flat storage`);
      // a dense gradient left on a masked parameter (its hook had not run: a superseded run, a gradient set by hand) is packed now
      if (!e.dense && p.grad !== null) {
        const bad = gradProblem(p, p.grad, `'${e.name}'`);
        if (bad) throw new ValueError(op, bad);
        packGradient(e, this.maskMode);
      }
      const g = e.dense ? p.grad : e.grad;
      if (g === null) continue;
      const bad = e.dense ? gradProblem(p, g, `'${e.name}'`) : g.isDisposed ? `the packed gradient of '${e.name}' was disposed` : null;
      if (bad) throw new ValueError(op, bad);
    }
    noGrad(() => {
      for (const e of this.entries) {
        const g = e.dense ? e.param.grad : e.grad;
        if (g !== null) maskedAdamUpdate(e, g, this.paramGroups[e.group], this.maskMode, !e.dense);
        dropPackedGradient(e); // used: the next backward packs afresh
      }
    });
    this.globalStep++;
    if (this.globalStep % this.switchEvery === 0) this.switchMasks();
    return loss;
  }

  /** Moves every mask on by k and drops the moments (the reference's _reset_state_dict). */
  private switchMasks(): void {
    for (const e of this.entries) {
      dropMoments(e);
      dropPackedGradient(e); // the old mask's entries
      if (!e.dense) e.offset = (e.offset + e.k) % e.numel;
      buildMask(e, this.maskMode);
    }
    this.switches++;
    this.emit('switch');
  }

  /**
   * Frees everything the optimizer holds, at once: the moments ('optimizer' bytes), the float32
   * masters ('master') and the 'scatter' index tensors ('other'). Call it when training is over.
   * The schedule (step, switch count, mask positions) is kept; a later step() still works,
   * starting a fresh Adam (and fresh masters from the float16 weights) on the current masks.
   */
  release(): void {
    for (const e of this.entries) {
      dropMoments(e);
      dropPackedGradient(e);
      e.indices?.dispose();
      e.indices = null;
    }
  }

  /**
   * Removes the gradient hooks and row-gradient sinks from the parameters (after release(), or
   * when another optimizer is to train them): their gradients are ordinary dense `.grad`s again.
   * The optimizer cannot step afterwards. Idempotent.
   */
  dispose(): void {
    this.release();
    for (const remove of this.removers) remove();
    this.removers.length = 0;
    for (const e of this.entries) setRowGradientSink(e.param, null);
    this.disposed = true;
  }

  private emit(type: 'init' | 'switch'): void {
    const params = this.masks();
    const selected = params.reduce((s, m) => s + m.k, 0);
    const total = params.reduce((s, m) => s + m.numel, 0);
    const event: RatioMaskEvent = { type, step: this.globalStep, switchCount: this.switches, maskMode: this.maskMode, selected, total, params };
    if (type === 'init') event.frozen = [...this.frozen];
    const summary = () => {
      const pct = ((100 * selected) / total).toFixed(2);
      const head = type === 'init' ? 'first mask' : `mask ${this.switches} at step ${this.globalStep}`;
      return `BlockOptimizerRatio: ${head} (${this.maskMode}): ${selected} of ${total} entries (${pct}%) in ${params.length} parameters`;
    };
    const details = () => [
      ...params.map((m) => `  ${m.name}: ${m.dense ? `dense, ${m.numel}` : `${m.k} of ${m.numel} from ${m.offset}`}`),
      ...(type === 'init' && this.frozen.length ? [`  frozen: ${this.frozen.join(', ')}`] : []),
    ];
    report(event, this.log, this.verbose, summary, details);
  }

  // ------------------------------------------------------------------ state dicts

  /**
   * The schedule (step, switch count, each mask's start and seed), the hyperparameters, the
   * k-element moments and the float16 parameters' k-element float32 masters (detached views of
   * the optimizer's storage; serialise them with stateToJSON or clone them before the next step
   * for a snapshot).
   */
  stateDict(): BlockOptimizerRatioStateDict {
    const schedule = { step: this.globalStep, switchCount: this.switches, maskMode: this.maskMode, switchEvery: this.switchEvery };
    return saveRatioState(this.entries, schedule, this.paramGroups);
  }

  /**
   * Restores a stateDict() (or its stateToJSON/stateFromJSON round trip) into an optimizer built
   * with the same options over the same parameters. Everything is checked first; a problem throws
   * one ValueError listing them all, and nothing changes (load-contract.ts).
   */
  loadStateDict(sd: BlockOptimizerRatioStateDict): void {
    const checked = checkRatioState('BlockOptimizerRatio.loadStateDict', sd, this.entries, this.maskMode, this.switchEvery, this.paramGroups);
    for (const e of this.entries) {
      dropPackedGradient(e); // an earlier backward's entries belong to the mask before the load
      restoreParamState(e, checked.state[e.name], this.maskMode);
    }
    this.globalStep = checked.step;
    this.switches = checked.switchCount;
    checked.paramGroups.forEach((saved, i) => {
      const group = this.paramGroups[i];
      group.lr = saved.lr;
      group.betas = [saved.betas[0], saved.betas[1]];
      group.eps = saved.eps;
      group.weightDecay = saved.weightDecay;
    });
  }
}
