/**
 * BAdam's BlockOptimizer: block coordinate descent with a base optimizer (Adam) as the inner
 * solver. The model's parameters are partitioned into blocks (by default one per transformer
 * layer, see partition.ts); only the active block (plus `activeModules`) requires grad and is
 * updated; after `switchEvery` steps the next block takes over and the base optimizer's state is
 * dropped. On a float16 model the active block alone gets float32 master weights, float32
 * gradients and Adam's moments (master.ts), so memory is 2M + 16·M_active bytes instead of 18M.
 *
 * Options, with the reference `badam` package's and LLaMA-Factory's names (docs/badam.md):
 *
 * | blockgrad          | badam.BlockOptimizer  | LLaMA-Factory          | default       |
 * | switchEvery        | switch_block_every    | badam_switch_interval  | 50            |
 * | switchMode         | switch_mode           | badam_switch_mode      | 'descending'  |
 * | startBlock         | start_block           | badam_start_block      | first of the order |
 * | activeModules      | active_modules        | -                      | []            |
 * | includeEmbedding   | include_embedding     | -                      | false         |
 * | includeLmHead      | include_lm_head       | -                      | false         |
 * | blockPrefixList    | block_prefix_list     | - (inferred)           | inferred      |
 * | verbose            | verbose               | badam_verbose          | 1             |
 * | log                | log_fn                | -                      | none          |
 * | seed               | - (global torch RNG)  | - (training seed)      | 0             |
 * | decayAllParameters | -                     | -                      | false         |
 *
 * Schedule. Every block gets exactly `switchEvery` = K optimizer steps, the first one included
 * (the reference gives the first block K-1). Blocks are visited in block-epochs, every block once
 * per epoch: 'ascending' (startBlock, startBlock+1, ..., wrapping), 'descending' (startBlock,
 * startBlock-1, ..., wrapping; default start: the last block), 'random' (a fresh permutation
 * drawn from a Generator seeded with `seed` each epoch; with startBlock the first epoch starts
 * with that block and the rest follow in a seeded permutation), 'fixed' (startBlock, default 0,
 * forever: no switch ever happens, so its Adam state and masters are never reset).
 *
 * When requiresGrad flips. The constructor activates the first block. `step()` updates the active
 * block and, when it was the block's K-th step, switches at its end: the next forward already
 * records only the new block (as the reference). A switch: requiresGrad_(true) on the new block
 * (and activeModules), false on every other parameter, whose gradient is freed (set to null and
 * disposed), so the engine prunes everything below the block; the old block's masters are
 * released and the new block's made from its float16 weights; the base optimizer's state is
 * reset (disposed) and its parameter groups replaced by the new block's.
 *
 * Base optimizer. An `Optimizer` instance is reused: at each switch its state is reset and its
 * `paramGroups` replaced (its constructor hyperparameters, `defaults`, fill the new groups). A
 * factory `(params) => Optimizer` builds a fresh optimizer for every block instead. Either way
 * the groups are two: parameters whose names end with `bias` or belong to a norm layer (`norm`
 * in the name, any case) or are 1-D get weightDecay 0, the others the base's weightDecay
 * (`decayAllParameters: true`: one group, everything decays). Optimizers without a weightDecay
 * hyperparameter get one group.
 *
 * Learning rate. `paramGroups` is `[{ lr, params }]` (params: the trainable parameters now); its
 * lr is copied into every group of the base optimizer before each step, so a scheduler built on
 * the BlockOptimizer (`new LambdaLR(opt, ...)`) drives the inner lr across switches. The initial
 * lr is the base optimizer's.
 *
 * Mixed precision. Parameters stored in float16 are trained through float32 masters (master.ts):
 * the step consumes their float16 gradients. A model with no float16 trainable parameter works
 * as well, with a one-time warning (unless verbose is 0) that BAdam's memory saving assumes a
 * float16 model.
 *
 * A switch is atomic: the next block's inner optimizer and groups are built first; if that throws
 * (a failing factory), nothing else has changed and the old block stays active (the next step
 * retries). `release()` frees the masters and the inner optimizer's state at once.
 *
 * One model, one BlockOptimizer: a second one built on the same parameters (or a LOMO, or a
 * BlockOptimizerRatio) supersedes this one, whose next step() then throws instead of silently
 * updating nothing under the other's requiresGrad flags (ownership.ts).
 *
 * State dict: the base optimizer's `{ state, paramGroups }` for the active block plus `badam`:
 * the partition, mode and K (checked on load), the active block, the block order of the current
 * epoch and the position in it, the step within the block, the global step, the block-epoch, the
 * Generator's state, the lr, and the float32 masters by parameter name (they carry precision
 * that the float16 weights lost, so they cannot be rebuilt from them). Loading it (with the
 * model's own state dict) continues the exact trajectory of an uninterrupted run, and emits a
 * `{ type: 'resume' }` event for the restored block.
 */
import { ValueError } from '../../errors';
import { Tensor } from '../../tensor/tensor';
import { isFloating } from '../../tensor/dtype';
import { sameShape } from '../../tensor/shape';
import { Generator, type GeneratorState } from '../../tensor/random';
import { enableGrad } from '../../autograd/grad-mode';
import { Optimizer, clearGrads, type OptimizerStateDict, type ParamGroupInput, type SavedParamGroup, type ParamState } from '../optimizer';
import { inferBlocks, resolveActiveModules, resolvePartition, type BlockInfo } from './partition';
import { MasterWeights, stepOptions, type MasterStepOptions } from './master';
import { describe, isNoDecayParameter, namedParameterList, stateValueProblem } from '../util';
import { checkClaims, claimParameters } from '../ownership';

export type SwitchMode = 'ascending' | 'descending' | 'random' | 'fixed';
export const SWITCH_MODES: readonly SwitchMode[] = ['ascending', 'descending', 'random', 'fixed'];

/**
 * What `log` receives when a block becomes trainable:
 * - `type: 'switch'` at every switch, and at the activation of the first block (step 0) in the
 *   constructor;
 * - `type: 'resume'` at the end of `loadStateDict`, for the block the saved run was training. A
 *   resumed optimizer was built first, so its constructor already reported its own first block at
 *   step 0: the 'resume' event supersedes it (that block never trains unless it is the saved one).
 */
export interface BlockSwitchEvent {
  type: 'switch' | 'resume';
  /** The block now active. */
  block: number;
  /** Its prefixes. */
  prefixes: string[];
  /** Elements of everything trainable now: the block's parameters plus activeModules. */
  numParams: number;
  /** The names of everything trainable now (the block's, then activeModules' not in the block). */
  names: string[];
  /** Optimizer steps taken so far (0 for the first block; the saved global step at a resume). */
  step: number;
  /** The block-epoch (0-based) this block belongs to. */
  epoch: number;
  /** Steps already taken on this block: 0 at a switch, the saved step in the block at a resume. */
  stepInBlock: number;
}

/** The event `loadStateDict` emits. */
export type BlockResumeEvent = BlockSwitchEvent & { type: 'resume' };

/** Every event `log` receives (switches and resumes share one shape; `type` tells them apart). */
export type BlockOptimizerEvent = BlockSwitchEvent;

/** Builds the inner optimizer for a block's parameters (BlockOptimizer then sets its groups). */
export type BaseOptimizerFactory = (params: Tensor[]) => Optimizer;

export interface BlockOptimizerOptions {
  /** Optimizer steps per block, an integer >= 1 (reference: switch_block_every; LLaMA-Factory: badam_switch_interval). Default 50. */
  switchEvery?: number;
  /** Block order (reference: switch_mode; LLaMA-Factory: badam_switch_mode). Default 'descending'. */
  switchMode?: SwitchMode;
  /** The first block (reference: start_block; LLaMA-Factory: badam_start_block); valid with every mode. */
  startBlock?: number;
  /** Name prefixes trainable in every block (reference: active_modules). */
  activeModules?: string[];
  /** The embedding as the first block of the inferred partition (reference: include_embedding). */
  includeEmbedding?: boolean;
  /** Everything outside the layers and the embedding as the last block (reference: include_lm_head). */
  includeLmHead?: boolean;
  /** An explicit partition, a list of blocks each a list of name prefixes (reference: block_prefix_list). */
  blockPrefixList?: string[][];
  /** 0 silent, 1 one line per switch (and resume), 2 also the trainable names (reference: verbose; LLaMA-Factory: badam_verbose). Default 1. */
  verbose?: 0 | 1 | 2;
  /** Receives a structured event at every switch and at a resume (reference: log_fn). */
  log?: (event: BlockOptimizerEvent) => void;
  /** Seed of the Generator behind 'random' mode. Default 0. */
  seed?: number;
  /** Apply weight decay to biases and norm weights too. Default false. */
  decayAllParameters?: boolean;
}

/** The reference's snake_case names, for a helpful error when one is passed. */
const REFERENCE_NAMES: Record<string, keyof BlockOptimizerOptions> = {
  switch_block_every: 'switchEvery',
  badam_switch_interval: 'switchEvery',
  switch_mode: 'switchMode',
  badam_switch_mode: 'switchMode',
  start_block: 'startBlock',
  badam_start_block: 'startBlock',
  active_modules: 'activeModules',
  include_embedding: 'includeEmbedding',
  include_lm_head: 'includeLmHead',
  block_prefix_list: 'blockPrefixList',
  badam_verbose: 'verbose',
  log_fn: 'log',
};

const OPTION_NAMES: (keyof BlockOptimizerOptions)[] = [
  'switchEvery',
  'switchMode',
  'startBlock',
  'activeModules',
  'includeEmbedding',
  'includeLmHead',
  'blockPrefixList',
  'verbose',
  'log',
  'seed',
  'decayAllParameters',
];

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
  lr: number;
  /** float32 masters of the active float16 parameters, by name. */
  masters: Record<string, Tensor>;
}

export interface BlockOptimizerStateDict extends OptimizerStateDict {
  badam: BlockScheduleState;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

export { isNoDecayParameter };

export class BlockOptimizer {
  readonly switchEvery: number;
  readonly switchMode: SwitchMode;
  readonly verbose: 0 | 1 | 2;
  readonly decayAllParameters: boolean;
  /** What schedulers drive: the lr (copied into the base optimizer before each step) and the trainable parameters. */
  readonly paramGroups: [{ lr: number; params: Tensor[] }];

  private base: Optimizer;
  private readonly factory: BaseOptimizerFactory | null;
  private readonly named: [string, Tensor][];
  private readonly partition: BlockInfo[];
  private readonly activeNames: string[];
  private readonly activeNameSet: Set<string>;
  /** Each block's parameter names, as a Set (paramsOf runs at every switch). */
  private readonly blockNames: Set<string>[];
  private readonly masters = new MasterWeights();
  private readonly generator: Generator;
  private readonly log?: (event: BlockOptimizerEvent) => void;
  private order: number[];
  private position = 0;
  private blockStep = 0;
  private steps = 0;
  private epochIndex = 0;
  private trainable: [string, Tensor][] = [];

  /**
   * @param model a Module or its `namedParameters()`: the parameters to partition. Every one of
   *   them gets its requiresGrad set by the schedule (false outside the active block).
   * @param base an Optimizer to reuse for every block, or a factory building one per block.
   */
  constructor(model: { namedParameters(): [string, Tensor][] } | Iterable<[string, Tensor]>, base: Optimizer | BaseOptimizerFactory, options: BlockOptimizerOptions = {}) {
    const op = 'BlockOptimizer';
    this.named = namedParametersOf(op, model);
    if (!isObject(options as unknown)) throw new ValueError(op, `options must be an object, got ${describe(options)}`);
    for (const k of Object.keys(options)) {
      if ((OPTION_NAMES as string[]).includes(k)) continue;
      const ours = Object.prototype.hasOwnProperty.call(REFERENCE_NAMES, k) ? REFERENCE_NAMES[k] : undefined;
      throw new ValueError(op, ours ? `unknown option '${k}': blockgrad calls it '${ours}'` : `unknown option '${k}'; known: ${OPTION_NAMES.join(', ')}`);
    }

    const switchEvery = options.switchEvery ?? 50;
    if (!isInt(switchEvery) || switchEvery < 1) {
      throw new ValueError(op, `switchEvery must be an integer >= 1 (optimizer steps per block), got ${describe(switchEvery)}; for a block that never switches use switchMode 'fixed'`);
    }
    const switchMode = options.switchMode ?? 'descending';
    if (!SWITCH_MODES.includes(switchMode)) {
      throw new ValueError(op, `unknown switchMode ${describe(switchMode)}; expected one of ${SWITCH_MODES.map((m) => `'${m}'`).join(', ')}`);
    }
    const verbose = options.verbose ?? 1;
    if (verbose !== 0 && verbose !== 1 && verbose !== 2) throw new ValueError(op, `verbose must be 0, 1 or 2, got ${describe(verbose)}`);
    if (options.log !== undefined && typeof options.log !== 'function') throw new ValueError(op, `log must be a function, got ${describe(options.log)}`);
    const seed = options.seed ?? 0;
    if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new ValueError(op, `seed must be a finite number, got ${describe(seed)}`);
    for (const k of ['includeEmbedding', 'includeLmHead', 'decayAllParameters'] as const) {
      if (options[k] !== undefined && typeof options[k] !== 'boolean') throw new ValueError(op, `${k} must be a boolean, got ${describe(options[k])}`);
    }
    this.switchEvery = switchEvery;
    this.switchMode = switchMode;
    this.verbose = verbose;
    this.decayAllParameters = options.decayAllParameters ?? false;
    this.log = options.log;

    // the partition
    let prefixList: unknown = options.blockPrefixList;
    if (prefixList === undefined) {
      prefixList = inferBlocks(
        this.named.map(([n]) => n),
        { includeEmbedding: options.includeEmbedding, includeLmHead: options.includeLmHead },
      );
    } else if (options.includeEmbedding || options.includeLmHead) {
      throw new ValueError(op, 'includeEmbedding and includeLmHead shape the inferred partition; with blockPrefixList, list the embedding or head blocks in it yourself');
    }
    this.partition = resolvePartition(op, this.named, prefixList);
    this.activeNames = resolveActiveModules(op, this.named, options.activeModules);
    this.activeNameSet = new Set(this.activeNames);
    this.blockNames = this.partition.map((b) => new Set(b.names));
    const numBlocks = this.partition.length;
    const start = options.startBlock;
    if (start !== undefined && (!isInt(start) || start < 0 || start >= numBlocks)) {
      throw new ValueError(op, `startBlock must be an integer in [0, ${numBlocks - 1}] (the partition has ${numBlocks} blocks), got ${describe(start)}`);
    }

    // the base optimizer
    if (base instanceof Optimizer) this.factory = null;
    else if (typeof base === 'function') this.factory = base;
    else throw new ValueError(op, `base must be an Optimizer or a function (params) => Optimizer, got ${describe(base)}`);
    this.generator = new Generator(seed);
    this.order = this.firstOrder(start);

    // the first block's inner optimizer; an instance's current lr becomes the wrapper's lr
    this.base = this.factory ? this.build(this.paramsOf(this.order[0]).map(([, p]) => p)) : (base as Optimizer);
    const lr = this.base.paramGroups[0]?.lr ?? this.base.defaults.lr;
    this.paramGroups = [{ lr, params: [] }];
    this.warnIfNotHalf();
    this.activate(this.order[0], { prebuilt: this.factory ? this.base : undefined });
    // the flags are ours now: an older optimizer on these parameters is superseded (ownership.ts)
    claimParameters(this, 'BlockOptimizer', this.named.map(([, p]) => p), this.named.map(([n]) => n));
  }

  /** The one-time warning that BAdam's memory saving assumes a float16 model (verbose >= 1). */
  private warnIfNotHalf(): void {
    if (this.verbose === 0) return;
    const used = new Set([...this.partition.flatMap((b) => b.names), ...this.activeNames]);
    const notHalf = this.named.filter(([n, p]) => used.has(n) && p.dtype !== 'float16');
    if (notHalf.length > 0) {
      console.warn(
        `BlockOptimizer: ${notHalf.length} trainable parameters are not float16 (e.g. '${notHalf[0][0]}' is ${notHalf[0][1].dtype}): ` +
          'they are updated in place without master copies, and BAdam saves no memory over Adam on them. ' +
          "For the 2 + 16/D bytes per parameter, store the model in float16 (model.to('float16')).",
      );
    }
  }

  /** Throws if an optimizer built later took the model's parameters (its flags, not ours, hold now). */
  private checkOwnership(op: string): void {
    checkClaims(op, this, 'BlockOptimizer');
  }

  // ------------------------------------------------------------------ introspection

  /** The partition: each block's index, prefixes, parameter names and parameter count. */
  blocks(): BlockInfo[] {
    return this.partition.map((b) => ({ index: b.index, prefixes: [...b.prefixes], names: [...b.names], numParams: b.numParams }));
  }

  /** The names of the parameters in no block and not in activeModules: frozen for the whole run. */
  frozenNames(): string[] {
    const used = new Set([...this.partition.flatMap((b) => b.names), ...this.activeNames]);
    return this.named.filter(([n]) => !used.has(n)).map(([n]) => n);
  }

  /** The active block's index. */
  get currentBlock(): number {
    return this.order[this.position];
  }

  /** The block order of the current block-epoch. */
  get blockOrder(): number[] {
    return [...this.order];
  }

  /** Steps taken on the active block so far (0..switchEvery-1, except in 'fixed' mode). */
  get stepInBlock(): number {
    return this.blockStep;
  }

  /** Optimizer steps taken in all. */
  get globalStep(): number {
    return this.steps;
  }

  /** The current block-epoch (0-based). */
  get blockEpoch(): number {
    return this.epochIndex;
  }

  /** The inner optimizer of the active block. */
  get baseOptimizer(): Optimizer {
    return this.base;
  }

  /** The trainable parameters now: the active block's and activeModules'. */
  trainableParameters(): [string, Tensor][] {
    return this.trainable.map(([n, p]) => [n, p]);
  }

  /** p's float32 master copy (only float16 parameters of the active block have one). */
  masterOf(p: Tensor): Tensor | undefined {
    return this.masters.masterOf(p);
  }

  // ------------------------------------------------------------------ training

  /**
   * One update of the active block (`step(closure)` or `step({ closure, onBeforeFree })`, see
   * MasterWeights.step), then, after the block's K-th step, the switch to the next block.
   */
  step<L = unknown>(arg?: (() => L) | MasterStepOptions<L>): L | undefined {
    const op = 'BlockOptimizer.step';
    const options = stepOptions(op, arg);
    this.checkOwnership(op); // superseded by a newer BlockOptimizer: an error, not a step that updates nothing
    const lr = this.paramGroups[0].lr;
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw new ValueError(op, `paramGroups[0].lr is ${describe(lr)}; expected a finite lr >= 0`);
    const loss = options.closure ? enableGrad(options.closure) : undefined;
    for (const g of this.base.paramGroups) g.lr = lr;
    this.masters.step(this.base, { onBeforeFree: options.onBeforeFree });
    this.blockStep++;
    this.steps++;
    if (this.blockStep >= this.switchEvery && this.switchMode !== 'fixed') this.advance();
    return loss;
  }

  /**
   * Clears the gradients of every model parameter: null, with the gradient tensor disposed (the
   * default), or with `setToNone: false` zeroed in place (see Optimizer.zeroGrad).
   */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    clearGrads(this.named.map(([, p]) => p), options.setToNone ?? true);
  }

  /**
   * Frees what the optimizer holds, at once: the active block's float32 masters ('master' bytes)
   * and the inner optimizer's state (Adam's moments, 'optimizer' bytes). Call it when training is
   * over (the model's weights and gradients are the model's to free). The schedule is kept, and
   * a later step() still works: it makes the masters again from the float16 weights and starts
   * Adam afresh, as a switch does.
   */
  release(): void {
    this.masters.release();
    this.base.resetState();
  }

  // ------------------------------------------------------------------ state dicts

  /**
   * The base optimizer's `{ state, paramGroups }` (tensors are detached views, as
   * Optimizer.stateDict) and the schedule and masters under `badam` (see the file comment).
   * Serialise it (stateToJSON) before the next step if a snapshot is needed.
   */
  stateDict(): BlockOptimizerStateDict {
    const masters: Record<string, Tensor> = {};
    for (const [n, p] of this.trainable) {
      const m = this.masters.masterOf(p);
      if (m) masters[n] = m.detach();
    }
    return {
      ...this.base.stateDict(),
      badam: {
        format: 'blockgrad.badam.v1',
        blocks: this.partition.map((b) => [...b.prefixes]),
        switchMode: this.switchMode,
        switchEvery: this.switchEvery,
        block: this.currentBlock,
        order: [...this.order],
        position: this.position,
        stepInBlock: this.blockStep,
        globalStep: this.steps,
        epoch: this.epochIndex,
        generator: this.generator.getState(),
        lr: this.paramGroups[0].lr,
        masters,
      },
    };
  }

  /**
   * Restores the schedule, the masters and the base optimizer's state from `stateDict()` output
   * (or its JSON round trip). Load the model's own state dict too. Everything is checked before
   * anything changes; a bad state dict throws one ValueError and nothing is loaded. On success a
   * `{ type: 'resume', block, step, epoch, stepInBlock, ... }` event goes to `log` (and a line to
   * the console at verbose >= 1): the constructor's step-0 event named its own first block, which
   * the resumed run may never train.
   */
  loadStateDict(sd: BlockOptimizerStateDict): void {
    const op = 'BlockOptimizer.loadStateDict';
    const fail: (msg: string) => never = (msg) => {
      throw new ValueError(op, `${msg}. Nothing was loaded`);
    };
    this.checkOwnership(op);
    if (!isObject(sd) || !isObject(sd.badam) || !isObject(sd.state) || !Array.isArray(sd.paramGroups)) {
      fail('expected { state, paramGroups, badam } as returned by BlockOptimizer.stateDict()');
    }
    const s = sd.badam as unknown as Record<string, unknown>;
    if (s.format !== 'blockgrad.badam.v1') fail(`unknown state format ${describe(s.format)} (expected 'blockgrad.badam.v1')`);
    const ours = this.partition.map((b) => b.prefixes);
    const theirs = s.blocks;
    const samePartition =
      Array.isArray(theirs) &&
      theirs.length === ours.length &&
      theirs.every((b, i) => Array.isArray(b) && b.length === ours[i].length && b.every((p, j) => p === ours[i][j]));
    if (!samePartition) fail(`the state dict was saved with a different partition (${Array.isArray(theirs) ? theirs.length : '?'} blocks; this optimizer has ${ours.length})`);
    if (s.switchMode !== this.switchMode) fail(`the state dict was saved with switchMode ${describe(s.switchMode)} but this optimizer uses '${this.switchMode}'`);
    if (s.switchEvery !== this.switchEvery) fail(`the state dict was saved with switchEvery ${describe(s.switchEvery)} but this optimizer uses ${this.switchEvery}`);
    const numBlocks = ours.length;
    const order = s.order;
    if (!Array.isArray(order) || !order.every((b) => isInt(b) && b >= 0 && b < numBlocks)) fail(`order must be a list of block indices in [0, ${numBlocks})`);
    const ord = order as number[];
    const expectedLength = this.switchMode === 'fixed' ? 1 : numBlocks;
    if (ord.length !== expectedLength || new Set(ord).size !== ord.length) {
      fail(`order ${JSON.stringify(ord)} is not a valid block order for '${this.switchMode}' mode over ${numBlocks} blocks`);
    }
    const position = s.position;
    if (!isInt(position) || position < 0 || position >= ord.length) fail(`position ${describe(position)} is outside the order of ${ord.length} blocks`);
    const block = s.block;
    if (block !== ord[position as number]) fail(`block ${describe(block)} is not the block at position ${position} of the order (${ord[position as number]})`);
    const stepInBlock = s.stepInBlock;
    if (!isInt(stepInBlock) || stepInBlock < 0 || (this.switchMode !== 'fixed' && stepInBlock >= this.switchEvery)) {
      fail(`stepInBlock ${describe(stepInBlock)} must be an integer in [0, ${this.switchEvery})`);
    }
    const globalStep = s.globalStep;
    if (!isInt(globalStep) || globalStep < (stepInBlock as number)) fail(`globalStep ${describe(globalStep)} must be an integer >= stepInBlock`);
    const epoch = s.epoch;
    if (!isInt(epoch) || epoch < 0) fail(`epoch ${describe(epoch)} must be an integer >= 0`);
    const lr = s.lr;
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) fail(`lr ${describe(lr)} must be a finite number >= 0`);
    const generator = new Generator(0);
    try {
      generator.setState(s.generator as GeneratorState);
    } catch (e) {
      fail(`generator: ${(e as Error).message}`);
    }
    const masters = s.masters;
    if (!isObject(masters)) fail('masters must be an object of tensors by parameter name');
    const params = this.paramsOf(block as number);
    const halfs = params.filter(([, p]) => p.dtype === 'float16');
    for (const [n, p] of halfs) {
      const m = Object.prototype.hasOwnProperty.call(masters, n) ? (masters as Record<string, unknown>)[n] : undefined; // own keys only
      if (!(m instanceof Tensor)) fail(`masters lacks '${n}' (a float16 parameter of block ${block})`);
      const t = m as Tensor;
      if (t.isDisposed || t.buffer.released || !isFloating(t.dtype)) fail(`masters['${n}'] must be a live floating tensor`);
      if (!sameShape(t.shape, p.shape)) fail(`masters['${n}'] has shape [${t.shape.join(',')}] but the parameter [${p.shape.join(',')}]`);
      const bad = stateValueProblem(`masters['${n}']`, t, false); // a NaN master becomes a NaN weight
      if (bad) fail(bad);
    }
    const halfNames = new Set(halfs.map(([n]) => n));
    for (const k of Object.keys(masters as object)) if (!halfNames.has(k)) fail(`masters['${k}'] is not a float16 parameter of block ${block}`);

    // the base optimizer's state, loaded into groups for the saved block (atomic: on failure the
    // previous groups come back and nothing else has changed)
    const inner = { state: sd.state as Record<number, ParamState>, paramGroups: sd.paramGroups as SavedParamGroup[] };
    let next: Optimizer;
    if (this.factory) {
      next = this.build(params.map(([, p]) => p));
      try {
        this.setGroups(next, params);
        next.loadStateDict(inner);
      } catch (e) {
        next.resetState();
        fail(`the base optimizer's state does not fit block ${block}: ${(e as Error).message}`);
      }
      this.base.resetState();
    } else {
      next = this.base;
      const previous = next.paramGroups;
      try {
        this.setGroups(next, params);
        next.loadStateDict(inner);
      } catch (e) {
        next.paramGroups = previous;
        fail(`the base optimizer's state does not fit block ${block}: ${(e as Error).message}`);
      }
    }

    // everything checked: commit
    this.base = next;
    this.masters.release();
    this.setTrainable(params);
    for (const [n, p] of halfs) this.masters.load(p, (masters as Record<string, Tensor>)[n]);
    this.order = [...ord];
    this.position = position as number;
    this.blockStep = stepInBlock as number;
    this.steps = globalStep as number;
    this.epochIndex = epoch as number;
    this.generator.setState(generator.getState());
    this.paramGroups[0].lr = lr as number;
    for (const g of this.base.paramGroups) g.lr = lr as number;
    this.announce('resume', block as number, params, this.epochIndex);
  }

  // ------------------------------------------------------------------ the schedule

  private firstOrder(start: number | undefined): number[] {
    const n = this.partition.length;
    const all = Array.from({ length: n }, (_, i) => i);
    switch (this.switchMode) {
      case 'ascending': {
        const s = start ?? 0;
        return all.map((i) => (s + i) % n);
      }
      case 'descending': {
        const s = start ?? n - 1;
        return all.map((i) => (((s - i) % n) + n) % n);
      }
      case 'random': {
        if (start === undefined) return this.generator.permutation(n);
        const rest = all.filter((i) => i !== start);
        return [start, ...this.generator.permutation(n - 1).map((i) => rest[i])];
      }
      case 'fixed':
        return [start ?? 0];
    }
  }

  /** The order of the next block-epoch: a fresh permutation in random mode, else the same cycle. */
  private nextOrder(): number[] {
    return this.switchMode === 'random' ? this.generator.permutation(this.partition.length) : [...this.order];
  }

  /**
   * The switch to the next block of the schedule. The position, step in block, order, epoch and
   * generator change only once the next block is active: if its activation fails (a factory
   * that throws), the schedule and the generator are as they were and the old block stays active.
   */
  private advance(): void {
    const generatorState = this.generator.getState();
    let position = this.position + 1;
    let order = this.order;
    let epoch = this.epochIndex;
    if (position >= order.length) {
      epoch++;
      try {
        order = this.nextOrder();
      } catch (e) {
        this.generator.setState(generatorState);
        throw e;
      }
      position = 0;
    }
    try {
      this.activate(order[position], { epoch });
    } catch (e) {
      this.generator.setState(generatorState);
      throw e;
    }
    this.order = order;
    this.position = position;
    this.epochIndex = epoch;
    this.blockStep = 0;
  }

  /** The trainable [name, param] pairs of block b: its parameters, then activeModules' others. */
  private paramsOf(b: number): [string, Tensor][] {
    const inBlock = this.blockNames[b];
    const first = this.named.filter(([n]) => inBlock.has(n));
    const extra = this.named.filter(([n]) => this.activeNameSet.has(n) && !inBlock.has(n));
    return [...first, ...extra];
  }

  private build(params: Tensor[]): Optimizer {
    const made = (this.factory as BaseOptimizerFactory)(params);
    if (!(made instanceof Optimizer)) throw new ValueError('BlockOptimizer', `the base optimizer factory returned ${describe(made)}, not an Optimizer`);
    return made;
  }

  /** Replaces opt's groups with the decay / no-decay split of `params` (restoring them on error). */
  private setGroups(opt: Optimizer, params: [string, Tensor][]): void {
    const hasDecay = Object.prototype.hasOwnProperty.call(opt.defaults, 'weightDecay');
    const decay: [string, Tensor][] = [];
    const noDecay: [string, Tensor][] = [];
    for (const [n, p] of params) (this.decayAllParameters || !hasDecay || !isNoDecayParameter(n, p) ? decay : noDecay).push([n, p]);
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

  /** requiresGrad on `params` only (others' gradients freed), masters for them, the wrapper's params. */
  private setTrainable(params: [string, Tensor][]): void {
    const on = new Set(params.map(([, p]) => p));
    for (const [, p] of this.named) {
      if (on.has(p)) continue;
      p.requiresGrad_(false);
      const g = p.grad;
      if (g !== null) {
        p.grad = null;
        g.dispose();
      }
    }
    for (const [, p] of params) p.requiresGrad_(true);
    this.masters.release(this.masters.parameters().filter((p) => !on.has(p)));
    this.trainable = params;
    this.paramGroups[0].params = params.map(([, p]) => p);
  }

  /**
   * Makes block b the active one (see the file comment). Everything that can fail comes first and
   * changes nothing the BlockOptimizer uses: the factory's optimizer for b (`prebuilt`: the
   * constructor's, already built) and its groups. Only then are requiresGrad flipped, the old
   * block's gradients, masters and moments freed and the new block's masters made.
   */
  private activate(b: number, options: { prebuilt?: Optimizer; epoch?: number } = {}): void {
    const params = this.paramsOf(b);
    // 1. the inner optimizer for b, with its groups (setGroups restores an instance's groups on error)
    const next = this.factory ? (options.prebuilt ?? this.build(params.map(([, p]) => p))) : this.base;
    this.setGroups(next, params);
    // 2. commit: the old block's moments freed, flags flipped (its gradients and masters freed)
    const old = this.base;
    old.resetState();
    if (next !== old) next.resetState(); // a factory's optimizer starts with no state
    this.base = next;
    this.setTrainable(params);
    for (const g of this.base.paramGroups) g.lr = this.paramGroups[0].lr;
    this.masters.add(params.map(([, p]) => p));
    this.announce('switch', b, params, options.epoch ?? this.epochIndex);
  }

  private announce(type: 'switch' | 'resume', b: number, params: [string, Tensor][], epoch: number): void {
    const info = this.partition[b];
    const event: BlockSwitchEvent = {
      type,
      block: b,
      prefixes: [...info.prefixes],
      numParams: params.reduce((s, [, p]) => s + p.numel, 0),
      names: params.map(([n]) => n),
      step: this.steps,
      epoch,
      stepInBlock: type === 'resume' ? this.blockStep : 0,
    };
    if (this.verbose >= 1) {
      const extra = this.activeNames.length ? ` + activeModules` : '';
      const what = `block ${b} of ${this.partition.length} [${info.prefixes.join(', ')}]${extra}`;
      console.log(
        type === 'resume'
          ? `BlockOptimizer: resumed at step ${event.step}: ${what} is trainable, ${event.numParams} parameters, ${event.stepInBlock} of its ${this.switchEvery} steps taken (block-epoch ${epoch})`
          : `BlockOptimizer: step ${event.step}: ${what} is trainable, ${event.numParams} parameters`,
      );
      if (this.verbose >= 2) for (const n of event.names) console.log(`  ${n}`);
    }
    this.log?.(event);
  }
}

/** [name, tensor] pairs from a Module or from namedParameters(), checked. */
function namedParametersOf(op: string, model: unknown): [string, Tensor][] {
  const { params, names } = namedParameterList(op, model, { why: ' (names are what blocks are made of)' });
  return params.map((p, i) => {
    const n = (names as string[])[i];
    if (!p.isLeaf) throw new ValueError(op, `parameter '${n}' is not a leaf`);
    if (!isFloating(p.dtype)) throw new ValueError(op, `parameter '${n}' is ${p.dtype}: only floating parameters can be trained`);
    return [n, p];
  });
}
