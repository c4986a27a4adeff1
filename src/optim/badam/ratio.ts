/**
 * BlockOptimizerRatio: the ratio variant of BAdam (the reference `badam` package's
 * `BlockOptimizerRatio`; LLaMA-Factory's `badam_mode: ratio`). Instead of one layer at a time,
 * every trainable parameter is trained on a sparse fraction of its entries, and the fraction
 * moves on every `switchEvery` steps:
 *
 * - Masks. For a parameter of n entries with ratio r, k = ceil(r·n) flat (row-major) indices are
 *   selected. `maskMode: 'adjacent'`: the contiguous, wrapping range [o, o+k) mod n.
 *   `maskMode: 'scatter'`: positions [o, o+k) mod n of a fixed seeded random permutation of
 *   0..n-1 (one per parameter, `Generator(paramSeed).permutation(n)`), sorted ascending: random
 *   indices drawn without replacement. In both modes the start o is 0 for the first mask and
 *   advances by k (mod n) at each switch, as the reference's `offset`, so every entry is
 *   selected once every ceil(n/k) switches. Parameters with fewer than `preserveThreshold`
 *   entries, and those whose ratio is 1, are updated densely (k = n).
 * - Update (Adam, PyTorch's bias correction, eps outside the square root, weight decay
 *   decoupled as in AdamW): the selected entries of the parameter and its gradient are gathered
 *   into k-vectors, the fused Adam kernel updates the k-vector with k-element moments, and the
 *   result is written back: for 'adjacent' by in-place strided assigns into at most two
 *   contiguous ranges (the wrap), for 'scatter' by `where(mask, scattered values, parameter)`
 *   built with index-add kernels. Unselected entries are never written, so they keep their bits.
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
 * Options, with the reference's names and defaults (LLaMA-Factory in brackets):
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
 * - the gradient stays dense until step() (the reference sparsifies it in a post-accumulate hook);
 * - stateDict() holds the schedule (global step, switch count, mask starts and seeds), so a resumed
 *   run equals an uninterrupted one bit for bit.
 *
 * The 'scatter' write-back touches every entry of the parameter (three dense temporaries of n
 * elements per parameter and step); an index-copy kernel would make it O(k).
 */
import { ValueError, fmtShape } from '../../errors';
import { Tensor } from '../../tensor/tensor';
import { Generator } from '../../tensor/random';
import { isFloating, type DType } from '../../tensor/dtype';
import type { BackendBuffer, View } from '../../kernels/backend';
import { backendByName } from '../../kernels/registry';
import { enableGrad, noGrad } from '../../autograd/grad-mode';
import { clearGrads, cloneOnto, stateDtype } from '../optimizer';
import { describe, gradProblem, isNoDecayParameter, namedParameterList, stateValueProblem } from '../util';
import { checkClaims, claimParameters } from '../ownership';

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
}

/** One parameter's mask, as events and masks() report it. */
export interface RatioMaskInfo {
  name: string;
  numel: number;
  /** Selected entries (numel when dense). */
  k: number;
  dense: boolean;
  /** Start of the selection: a flat index ('adjacent') or a position in the permutation ('scatter'). */
  offset: number;
}

/** Emitted at construction ('init') and at each mask switch ('switch'). */
export interface RatioMaskEvent {
  type: 'init' | 'switch';
  /** Optimizer steps taken so far. */
  step: number;
  /** Masks switched so far (0 for the first mask). */
  switchCount: number;
  maskMode: MaskMode;
  /** Entries selected over all trainable parameters, and their total. */
  selected: number;
  total: number;
  params: RatioMaskInfo[];
  /** 'init' only: parameters frozen by includeEmbedding / includeLmHead. */
  frozen?: string[];
}

/** The one parameter group (schedulers set its lr). */
export interface RatioParamGroup {
  params: Tensor[];
  paramNames: string[];
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

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

interface Entry {
  name: string;
  param: Tensor;
  numel: number;
  k: number;
  dense: boolean;
  seed: number;
  offset: number;
  /** Whether weightDecay applies (false for biases, norm weights and 1-D parameters). */
  decay: boolean;
  /** 'scatter': the sorted int32 indices of the current mask. */
  indices: Tensor | null;
  step: number;
  expAvg: Tensor | null;
  expAvgSq: Tensor | null;
  /** float16 parameters: the float32 master of the k selected entries (made at a period's first step). */
  master: Tensor | null;
}

const OPTION_KEYS = [
  'lr', 'betas', 'eps', 'weightDecay', 'updateRatio', 'paramRatios', 'maskMode', 'switchEvery',
  'preserveThreshold', 'includeEmbedding', 'includeLmHead', 'seed', 'verbose', 'log', 'decayAllParameters',
];

/** The reference's and LLaMA-Factory's snake_case names, for a helpful error. */
const REFERENCE_NAMES: Record<string, string> = {
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
};

/** k = ceil(r·n), with r·n an integer up to rounding (0.7·10 = 7.000000000000001) kept as is. */
export function selectedCount(ratio: number, numel: number): number {
  return Math.min(numel, Math.max(1, Math.ceil(ratio * numel * (1 - 1e-12))));
}

/**
 * The flat indices of a mask, sorted: 'adjacent' [offset, offset+k) mod n; 'scatter' the
 * permutation `new Generator(seed).permutation(n)` at positions [offset, offset+k) mod n.
 */
export function ratioMaskIndices(mode: MaskMode, numel: number, k: number, offset: number, seed: number): Int32Array {
  const out = new Int32Array(k);
  if (mode === 'adjacent') {
    for (let j = 0; j < k; j++) out[j] = (offset + j) % numel;
  } else {
    const perm = new Generator(seed).permutation(numel);
    for (let j = 0; j < k; j++) out[j] = perm[(offset + j) % numel];
  }
  return out.sort();
}

function hyperProblem(h: { lr: unknown; betas: unknown; eps: unknown; weightDecay: unknown }): string | null {
  const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  if (!num(h.lr) || !((h.lr as number) >= 0)) return `invalid learning rate ${describe(h.lr)}: expected a finite lr >= 0`;
  const b = h.betas;
  if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => typeof x === 'number' && x >= 0 && x < 1)) {
    return `invalid betas ${describe(b)}: expected [beta1, beta2] with 0 <= beta < 1`;
  }
  if (!num(h.eps) || !((h.eps as number) >= 0)) return `invalid eps ${describe(h.eps)}: expected a finite value >= 0`;
  if (!num(h.weightDecay) || !((h.weightDecay as number) >= 0)) return `invalid weightDecay ${describe(h.weightDecay)}: expected a finite value >= 0`;
  return null;
}

/** A contiguous 1-D window [start, start+length) of a packed flat view. */
function window(v: View, start: number, length: number): View {
  return { buffer: v.buffer, shape: [length], strides: [1], offset: v.offset + start };
}

export class BlockOptimizerRatio {
  readonly paramGroups: [RatioParamGroup];
  readonly maskMode: MaskMode;
  readonly switchEvery: number;
  readonly updateRatio: number;
  readonly preserveThreshold: number;
  readonly seed: number;
  readonly decayAllParameters: boolean;
  /** Names of the parameters frozen at construction (embedding, lm_head). */
  readonly frozen: string[];
  verbose: 0 | 1 | 2;
  log: ((event: RatioMaskEvent) => void) | null;

  private readonly entries: Entry[] = [];
  private globalStep = 0;
  private switches = 0;

  constructor(model: { namedParameters(): [string, Tensor][] } | Iterable<[string, Tensor]>, options: BlockOptimizerRatioOptions = {}) {
    const op = 'BlockOptimizerRatio';
    if (options === null || typeof options !== 'object') throw new ValueError(op, `options must be an object, got ${describe(options)}`);
    for (const key of Object.keys(options)) {
      if (OPTION_KEYS.includes(key)) continue;
      const ours = Object.prototype.hasOwnProperty.call(REFERENCE_NAMES, key) ? REFERENCE_NAMES[key] : undefined;
      const hint = ours ? ` (the reference's name; blockgrad calls it '${ours}')` : '';
      throw new ValueError(op, `unknown option '${key}'${hint}; known: ${OPTION_KEYS.join(', ')}`);
    }
    const named = namedParams(op, model);

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
    const seed = options.seed ?? 0;
    if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new ValueError(op, `seed must be a finite number, got ${describe(seed)}`);
    const verbose = options.verbose ?? 1;
    if (verbose !== 0 && verbose !== 1 && verbose !== 2) throw new ValueError(op, `verbose must be 0, 1 or 2, got ${describe(verbose)}`);
    if (options.log !== undefined && typeof options.log !== 'function') throw new ValueError(op, `log must be a function, got ${describe(options.log)}`);
    for (const key of ['includeEmbedding', 'includeLmHead', 'decayAllParameters'] as const) {
      if (options[key] !== undefined && typeof options[key] !== 'boolean') throw new ValueError(op, `${key} must be a boolean, got ${describe(options[key])}`);
    }
    const hyper = {
      lr: options.lr ?? 1e-5,
      betas: (options.betas ? [...options.betas] : [0.9, 0.999]) as [number, number],
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0,
    };
    const hp = hyperProblem(hyper);
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
    if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) {
      throw new ValueError(op, `paramRatios must be an object { name or prefix: ratio }, got ${describe(overrides)}`);
    }
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

    const decayAllParameters = options.decayAllParameters ?? false;

    // everything is valid: claim the trainable parameters (ownership.ts), change the model, build the masks
    claimParameters(this, 'BlockOptimizerRatio', trainable.map(([, p]) => p), trainable.map(([n]) => n));
    for (const name of frozen) named.find(([n]) => n === name)?.[1].requiresGrad_(false);
    const seeds = new Generator(seed);
    for (const [name, p] of trainable) {
      const numel = p.numel;
      const ratio = ratioOf(name);
      const dense = numel < preserveThreshold || ratio === 1 || selectedCount(ratio, numel) === numel;
      this.entries.push({
        name,
        param: p,
        numel,
        k: dense ? numel : selectedCount(ratio, numel),
        dense,
        seed: seeds.nextUint32(),
        offset: 0,
        decay: decayAllParameters || !isNoDecayParameter(name, p),
        indices: null,
        step: 0,
        expAvg: null,
        expAvgSq: null,
        master: null,
      });
    }
    this.maskMode = maskMode;
    this.switchEvery = switchEvery;
    this.updateRatio = updateRatio;
    this.preserveThreshold = preserveThreshold;
    this.seed = seed;
    this.decayAllParameters = decayAllParameters;
    this.frozen = frozen;
    this.verbose = verbose;
    this.log = options.log ?? null;
    this.paramGroups = [{ params: trainable.map(([, p]) => p), paramNames: trainable.map(([n]) => n), ...hyper }];
    for (const e of this.entries) this.buildMask(e);
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

  private entry(op: string, name: string): Entry {
    const e = this.entries.find((x) => x.name === name);
    if (!e) throw new ValueError(op, `no trainable parameter '${name}'${this.frozen.includes(name) ? ' (it is frozen)' : ''}`);
    return e;
  }

  // ------------------------------------------------------------------ training

  /**
   * Clears every trainable parameter's gradient: null, with the gradient tensor disposed (the
   * default), or with `setToNone: false` zeroed in place (see Optimizer.zeroGrad).
   */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    clearGrads(this.entries.map((e) => e.param), options.setToNone ?? true);
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
    const loss = closure ? enableGrad(closure) : undefined;
    const group = this.paramGroups[0];
    const problem = hyperProblem(group);
    if (problem) throw new ValueError(op, problem);
    for (const e of this.entries) {
      const p = e.param;
      const g = p.grad;
      if (g === null) continue;
      const bad = gradProblem(p, g, `'${e.name}'`);
      if (bad) throw new ValueError(op, bad);
      if (!p.isContiguous()) throw new ValueError(op, `parameter '${e.name}' is no longer contiguous; masks index its flat storage`);
    }
    noGrad(() => {
      for (const e of this.entries) if (e.param.grad !== null) this.update(e, e.param.grad, group);
    });
    this.globalStep++;
    if (this.globalStep % this.switchEvery === 0) this.switchMasks();
    return loss;
  }

  private update(e: Entry, grad: Tensor, group: RatioParamGroup): void {
    const p = e.param;
    const backend = backendByName(p.backend);
    if (e.expAvg === null || e.expAvgSq === null) {
      const dtype = stateDtype(p);
      e.expAvg = new Tensor(backend.zeros(dtype, e.k), [e.k]).tagMemory('optimizer');
      e.expAvgSq = new Tensor(backend.zeros(dtype, e.k), [e.k]).tagMemory('optimizer');
    }
    if (!e.dense && this.maskMode === 'scatter' && e.indices === null) this.buildMask(e); // after release()
    const step = e.step + 1;
    const h = {
      lr: group.lr,
      beta1: group.betas[0],
      beta2: group.betas[1],
      eps: group.eps,
      weightDecay: e.decay ? group.weightDecay : 0,
      decoupled: true,
      step,
      maximize: false,
      amsgrad: false,
    };
    const half = p.dtype === 'float16';
    if (e.dense && !half) {
      backend.adamUpdate(p, grad, e.expAvg.buffer, e.expAvgSq.buffer, null, h);
      e.step = step;
      return;
    }
    const n = e.numel;
    const temps: BackendBuffer[] = [];
    const keep = <B extends BackendBuffer>(b: B): B => (temps.push(b), b);
    const packed = (b: BackendBuffer): View => ({ buffer: b, shape: [e.k], strides: [1], offset: 0 });
    try {
      const pFlat: View = { buffer: p.buffer, shape: [n], strides: [1], offset: p.offset };
      let gFlat: View = { buffer: grad.buffer, shape: [n], strides: [1], offset: grad.offset };
      if (!grad.isContiguous()) gFlat = { ...gFlat, buffer: keep(backend.copy(grad, grad.dtype)), offset: 0 };
      const gk = e.dense ? gFlat : packed(this.gather(e, gFlat, keep));
      // the k-vector Adam updates: the float32 master (float16 parameters; made from the float16
      // values at the period's first step) or a packed copy of the selected entries
      let target: View;
      if (half) {
        if (e.master === null) {
          const values = e.dense ? backend.copy(pFlat, 'float32') : backend.copy(packed(this.gather(e, pFlat, keep)), 'float32');
          e.master = new Tensor(values, [e.k]).tagMemory('master');
        }
        target = packed(e.master.buffer);
      } else {
        target = packed(this.gather(e, pFlat, keep));
      }
      backend.adamUpdate(target, gk, e.expAvg.buffer, e.expAvgSq.buffer, null, h);
      if (e.dense) {
        backend.assign(pFlat, target); // float16: the master rounded to nearest even
      } else if (this.maskMode === 'adjacent') {
        // at most two contiguous ranges: [offset, n) and [0, rest); assign rounds a master
        const n1 = Math.min(e.k, n - e.offset);
        backend.assign(window(pFlat, e.offset, n1), window(target, 0, n1));
        if (n1 < e.k) backend.assign(window(pFlat, 0, e.k - n1), window(target, n1, e.k - n1));
      } else {
        // p = where(mask, values scattered at the indices, p): the selected entries get the new
        // values exactly (a master rounded to the parameter's dtype first), the others are the
        // parameter's own (no arithmetic touches them)
        const values = half ? keep(backend.copy(target, p.dtype)) : target.buffer;
        const idx = (e.indices as Tensor).buffer;
        const mask = keep(backend.indexAdd(keep(backend.full(p.dtype, e.k, 1)), idx, 1, n, 1));
        const scattered = keep(backend.indexAdd(values, idx, 1, n, 1));
        const flat = (b: BackendBuffer): View => ({ buffer: b, shape: [n], strides: [1], offset: 0 });
        const merged = keep(backend.where(flat(mask), flat(scattered), pFlat, p.dtype));
        backend.assign(pFlat, flat(merged));
      }
      e.step = step;
    } finally {
      for (const b of temps) if (!b.released) backend.release(b);
    }
  }

  /** The selected entries of a flat view as a fresh packed k-vector. */
  private gather(e: Entry, flat: View, keep: (b: BackendBuffer) => BackendBuffer): BackendBuffer {
    const backend = backendByName(e.param.backend);
    const dtype = flat.buffer.dtype;
    if (this.maskMode === 'adjacent') {
      const n1 = Math.min(e.k, e.numel - e.offset);
      if (n1 === e.k) return keep(backend.copy(window(flat, e.offset, e.k), dtype));
      const out = keep(backend.zeros(dtype, e.k));
      const outView: View = { buffer: out, shape: [e.k], strides: [1], offset: 0 };
      backend.assign(window(outView, 0, n1), window(flat, e.offset, n1));
      backend.assign(window(outView, n1, e.k - n1), window(flat, 0, e.k - n1));
      return out;
    }
    // indexSelect reads a packed buffer (its elements from element 0)
    const packed = flat.offset === 0 && flat.buffer.length === e.numel ? flat.buffer : keep(backend.copy(flat, dtype));
    return keep(backend.indexSelect(packed, (e.indices as Tensor).buffer, 1, e.numel, 1));
  }

  /** Moves every mask on by k and drops the moments (the reference's _reset_state_dict). */
  private switchMasks(): void {
    for (const e of this.entries) {
      this.dropMoments(e);
      if (!e.dense) e.offset = (e.offset + e.k) % e.numel;
      this.buildMask(e);
    }
    this.switches++;
    this.emit('switch');
  }

  /** Frees the moments and the master (the next step starts a fresh Adam on the mask). */
  private dropMoments(e: Entry): void {
    e.expAvg?.dispose();
    e.expAvgSq?.dispose();
    e.master?.dispose();
    e.expAvg = null;
    e.expAvgSq = null;
    e.master = null;
    e.step = 0;
  }

  /**
   * Frees everything the optimizer holds, at once: the moments ('optimizer' bytes), the float32
   * masters ('master') and the 'scatter' index tensors ('other'). Call it when training is over.
   * The schedule (step, switch count, mask positions) is kept; a later step() still works,
   * starting a fresh Adam (and fresh masters from the float16 weights) on the current masks.
   */
  release(): void {
    for (const e of this.entries) {
      this.dropMoments(e);
      e.indices?.dispose();
      e.indices = null;
    }
  }

  /** 'scatter': (re)builds the index tensor of the current mask; 'adjacent' needs none. */
  private buildMask(e: Entry): void {
    e.indices?.dispose();
    e.indices = null;
    if (e.dense || this.maskMode !== 'scatter') return;
    const idx = ratioMaskIndices('scatter', e.numel, e.k, e.offset, e.seed);
    e.indices = new Tensor(backendByName(e.param.backend).upload('int32', idx), [e.k]).tagMemory('other');
  }

  private emit(type: 'init' | 'switch'): void {
    const params = this.masks();
    const selected = params.reduce((s, m) => s + m.k, 0);
    const total = params.reduce((s, m) => s + m.numel, 0);
    const event: RatioMaskEvent = { type, step: this.globalStep, switchCount: this.switches, maskMode: this.maskMode, selected, total, params };
    if (type === 'init') event.frozen = [...this.frozen];
    this.log?.(event);
    if (this.verbose === 0) return;
    const pct = ((100 * selected) / total).toFixed(2);
    const head = type === 'init' ? 'first mask' : `mask ${this.switches} at step ${this.globalStep}`;
    console.log(`BlockOptimizerRatio: ${head} (${this.maskMode}): ${selected} of ${total} entries (${pct}%) in ${params.length} parameters`);
    if (this.verbose >= 2) {
      for (const m of params) console.log(`  ${m.name}: ${m.dense ? `dense, ${m.numel}` : `${m.k} of ${m.numel} from ${m.offset}`}`);
      if (type === 'init' && this.frozen.length) console.log(`  frozen: ${this.frozen.join(', ')}`);
    }
  }

  // ------------------------------------------------------------------ state dicts

  /**
   * The schedule (step, switch count, each mask's start and seed), the hyperparameters, the
   * k-element moments and the float16 parameters' k-element float32 masters (detached views of
   * the optimizer's storage; serialise them with stateToJSON or clone them before the next step
   * for a snapshot).
   */
  stateDict(): BlockOptimizerRatioStateDict {
    const group = this.paramGroups[0];
    const state: Record<string, RatioParamStateDict> = {};
    for (const e of this.entries) {
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
      step: this.globalStep,
      switchCount: this.switches,
      maskMode: this.maskMode,
      switchEvery: this.switchEvery,
      paramGroups: [{ lr: group.lr, betas: [...group.betas] as [number, number], eps: group.eps, weightDecay: group.weightDecay, paramNames: [...group.paramNames] }],
      state,
    };
  }

  /**
   * Restores a stateDict() (or its stateToJSON/stateFromJSON round trip) into an optimizer built
   * with the same options over the same parameters. Everything is checked first; a problem throws
   * one ValueError listing them all, and nothing changes.
   */
  loadStateDict(sd: BlockOptimizerRatioStateDict): void {
    const op = 'BlockOptimizerRatio.loadStateDict';
    const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Tensor);
    if (!isObj(sd) || sd.kind !== 'BlockOptimizerRatio' || !isObj(sd.state) || !Array.isArray(sd.paramGroups)) {
      throw new ValueError(op, 'expected the object returned by BlockOptimizerRatio.stateDict(). Nothing was loaded');
    }
    const problems: string[] = [];
    const count = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 0;
    if (sd.maskMode !== this.maskMode) problems.push(`maskMode is ${describe(sd.maskMode)} in the state dict but '${this.maskMode}' here`);
    if (sd.switchEvery !== this.switchEvery) problems.push(`switchEvery is ${describe(sd.switchEvery)} in the state dict but ${this.switchEvery} here`);
    if (!count(sd.step)) problems.push(`step must be an integer >= 0, got ${describe(sd.step)}`);
    if (!count(sd.switchCount)) problems.push(`switchCount must be an integer >= 0, got ${describe(sd.switchCount)}`);
    else if (count(sd.step) && sd.switchCount !== Math.floor(sd.step / this.switchEvery)) {
      problems.push(`switchCount ${sd.switchCount} does not match step ${sd.step} with switchEvery ${this.switchEvery}`);
    }
    const g = sd.paramGroups[0] as unknown;
    if (sd.paramGroups.length !== 1 || !isObj(g)) problems.push(`expected one parameter group, got ${describe(sd.paramGroups)}`);
    else {
      const hp = hyperProblem(g as { lr: unknown; betas: unknown; eps: unknown; weightDecay: unknown });
      if (hp) problems.push(`parameter group: ${hp}`);
    }
    const names = new Set(this.entries.map((e) => e.name));
    for (const name of Object.keys(sd.state)) if (!names.has(name)) problems.push(`state for '${name}', which is not a trainable parameter here`);
    for (const e of this.entries) {
      const s = Object.prototype.hasOwnProperty.call(sd.state, e.name) ? (sd.state[e.name] as unknown) : undefined; // own keys only
      if (!isObj(s)) {
        problems.push(`no state for '${e.name}'`);
        continue;
      }
      const where = `state['${e.name}']`;
      if (s.numel !== e.numel) problems.push(`${where}.numel is ${describe(s.numel)} but the parameter has ${e.numel} entries`);
      if (s.k !== e.k) problems.push(`${where}.k is ${describe(s.k)} but the mask here selects ${e.k} entries (same updateRatio, paramRatios and preserveThreshold?)`);
      if (count(sd.switchCount) && s.offset !== (e.dense ? 0 : (e.k * (sd.switchCount as number)) % e.numel)) {
        problems.push(`${where}.offset ${describe(s.offset)} does not match switch ${sd.switchCount as number}`);
      }
      if (this.maskMode === 'scatter' && !e.dense && s.seed !== e.seed) problems.push(`${where}.seed differs: build the optimizer with the same seed`);
      if (!count(s.step) || (s.step as number) > this.switchEvery) problems.push(`${where}.step must be an integer in [0, ${this.switchEvery}], got ${describe(s.step)}`);
      const moments = [s.exp_avg, s.exp_avg_sq];
      if (moments.some((m) => m !== undefined)) {
        if (moments.some((m) => !(m instanceof Tensor))) problems.push(`${where} must have both exp_avg and exp_avg_sq as Tensors, or neither`);
        for (const m of moments) {
          if (!(m instanceof Tensor)) continue;
          if (m.isDisposed || m.buffer.released) problems.push(`${where} holds a disposed moment`);
          else if (!isFloating(m.dtype)) problems.push(`${where} holds a ${m.dtype} moment, expected floating`);
          else if (m.numel !== e.k) problems.push(`${where} holds a moment of ${m.numel} entries, expected k = ${e.k}`);
          else {
            const bad = stateValueProblem(m === s.exp_avg ? `${where}.exp_avg` : `${where}.exp_avg_sq`, m, m === s.exp_avg_sq);
            if (bad) problems.push(bad);
          }
        }
      }
      const master = s.master;
      if (master !== undefined) {
        if (e.param.dtype !== 'float16') problems.push(`${where}.master is given but '${e.name}' is ${e.param.dtype}: only float16 parameters have masters`);
        else if (!(master instanceof Tensor) || master.isDisposed || master.buffer.released || !isFloating(master.dtype)) {
          problems.push(`${where}.master must be a live floating Tensor`);
        } else if (master.numel !== e.k) problems.push(`${where}.master has ${master.numel} entries, expected k = ${e.k}`);
        else {
          const bad = stateValueProblem(`${where}.master`, master, false);
          if (bad) problems.push(bad);
        }
      }
    }
    if (problems.length) throw new ValueError(op, `${problems.join('; ')}. Nothing was loaded`);

    const switchCount = sd.switchCount;
    for (const e of this.entries) {
      const s = sd.state[e.name];
      this.dropMoments(e);
      e.offset = s.offset;
      e.step = s.step;
      if (s.exp_avg && s.exp_avg_sq) {
        const dtype = stateDtype(e.param);
        e.expAvg = cloneOnto(s.exp_avg, e.param, dtype).tagMemory('optimizer');
        e.expAvgSq = cloneOnto(s.exp_avg_sq, e.param, dtype).tagMemory('optimizer');
      }
      // a float16 parameter's master (a state dict without one: made from the weights at the next step)
      if (s.master) e.master = cloneOnto(s.master, e.param, 'float32').tagMemory('master');
      this.buildMask(e);
    }
    this.globalStep = sd.step;
    this.switches = switchCount;
    const saved = sd.paramGroups[0];
    const group = this.paramGroups[0];
    group.lr = saved.lr;
    group.betas = [saved.betas[0], saved.betas[1]];
    group.eps = saved.eps;
    group.weightDecay = saved.weightDecay;
  }
}

/** namedParameters() pairs from a Module or an iterable of pairs, checked. */
function namedParams(op: string, model: unknown): [string, Tensor][] {
  const { params, names } = namedParameterList(op, model, { why: ': names pick the masks, overrides and frozen embeddings' });
  return params.map((p, i) => {
    const name = (names as string[])[i];
    if (p.isDisposed || p.buffer.released) throw new ValueError(op, `parameter '${name}' was disposed`);
    if (p.requiresGrad && !isFloating(p.dtype)) throw new ValueError(op, `parameter '${name}' is ${p.dtype}: only floating tensors can be optimized`);
    if (p.requiresGrad && !p.isLeaf) throw new ValueError(op, `parameter '${name}' is not a leaf`);
    return [name, p];
  });
}
