/**
 * BAdam's BlockOptimizer: block coordinate descent with a base optimizer (Adam) as the inner
 * solver. The model's parameters are partitioned into blocks (by default one per transformer
 * layer, see partition.ts); only the active block (plus `activeModules`) requires grad and is
 * updated; after `switchEvery` steps the next block takes over and the base optimizer's state is
 * dropped. On a float16 model the active block alone gets float32 master weights, float32
 * gradients and Adam's moments (master.ts), so memory is 2M + 16·M_active bytes instead of 18M.
 *
 * Options: block-options.ts has them with the reference `badam` package's and LLaMA-Factory's
 * names (and docs/badam.md).
 *
 * Schedule (schedule.ts). Every block gets exactly `switchEvery` = K optimizer steps, visited in
 * block-epochs in the order of `switchMode`; 'fixed' never switches, so its Adam state and masters
 * are never reset.
 *
 * When requiresGrad flips. The constructor activates the first block. `step()` updates the active
 * block and, when it was the block's K-th step, switches at its end: the next forward already
 * records only the new block (as the reference). A switch: requiresGrad_(true) on the new block
 * (and activeModules), false on every other parameter, whose gradient is freed (set to null and
 * disposed), so the engine prunes everything below the block; the old block's masters are
 * released and the new block's made from its float16 weights; the base optimizer's state is
 * reset (disposed) and its parameter groups replaced by the new block's.
 *
 * Base optimizer (base-groups.ts). An `Optimizer` instance is reused: at each switch its state is
 * reset and its `paramGroups` replaced by the active block's. A factory `(params) => Optimizer`
 * builds a fresh optimizer for every block instead. An instance built with several groups (decay
 * and no-decay, as LLaMA-Factory builds AdamW) keeps them: each parameter trains with its own
 * group's hyperparameters. Otherwise the groups are two, decay and no_decay (biases, norm
 * weights, 1-D parameters), with the base's `defaults`. `blockHyperparams` overrides them per block.
 *
 * Learning rate. `paramGroups` is `[{ lr, params }]` (params: the trainable parameters now), one
 * entry per group of a grouped base; each lr (times the block's lrScale) is copied into the base
 * optimizer's groups before each step, so a scheduler built on the BlockOptimizer
 * (`new LambdaLR(opt, ...)`) drives the inner lrs across switches. The initial lrs are the base
 * optimizer's.
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
 * State dict (block-state.ts): the base optimizer's state for the active block plus the schedule,
 * the lr and the float32 masters. Loading it (with the model's own state dict) continues the exact
 * trajectory of an uninterrupted run, and emits a `{ type: 'resume' }` event for the restored
 * block.
 */
import { ValueError } from '../../errors';
import type { Tensor } from '../../tensor/tensor';
import { enableGrad } from '../../autograd/grad-mode';
import { Optimizer } from '../optimizer';
import type { ParamState, SavedParamGroup } from '../state-dict';
import { clearGrads } from '../gradients';
import { namedParameterList } from '../parameters';
import { LoadProblems } from '../load-contract';
import { describe } from '../../util/describe';
import { checkClaims, claimParameters } from '../ownership';
import type { BlockInfo } from './partition';
import { ModelBlocks } from './model-blocks';
import { MasterWeights, stepOptions, type MasterStepOptions } from './master';
import { blockOverrides, blockSettings, type BaseOptimizerFactory, type BlockOptimizerOptions, type BlockOverrides, type SwitchMode } from './block-options';
import { BlockSchedule } from './schedule';
import { badamPart, checkMasters, checkOverrides, savedLrs, type BlockOptimizerStateDict } from './block-state';
import { lrProblem } from '../hyperparameters';
import { buildBase, groupTemplate, prepareBaseLoad, setBlockGroups, type GroupSources, type GroupTemplate } from './base-groups';
import { report, type BlockOptimizerEvent, type BlockSwitchEvent, type Verbosity } from './events';
import { isHalf } from '../../tensor/dtype';

export class BlockOptimizer {
  readonly switchEvery: number;
  readonly switchMode: SwitchMode;
  readonly verbose: Verbosity;
  readonly decayAllParameters: boolean;
  /**
   * What schedulers drive: the lr (copied into the base optimizer before each step) and the
   * trainable parameters now; one entry, or one per group of a grouped base optimizer.
   */
  readonly paramGroups: { lr: number; params: Tensor[]; name?: string }[];

  private base: Optimizer;
  private readonly factory: BaseOptimizerFactory | null;
  private readonly model: ModelBlocks;
  private readonly masters = new MasterWeights();
  private readonly schedule: BlockSchedule;
  private readonly log?: (event: BlockOptimizerEvent) => void;
  private trainable: [string, Tensor][] = [];
  /** A grouped base's groups (base-groups.ts), or null: the decay / no-decay rules. */
  private readonly template: GroupTemplate | null;
  /** Each block's blockHyperparams, checked when built. */
  private readonly overrides: BlockOverrides[];
  /** For each group of the base optimizer now, the entry of paramGroups whose lr it takes. */
  private sources: GroupSources = [];

  /**
   * @param model a Module or its `namedParameters()`: the parameters to partition. Every one of
   *   them gets its requiresGrad set by the schedule (false outside the active block).
   * @param base an Optimizer to reuse for every block, or a factory building one per block.
   */
  constructor(model: { namedParameters(): [string, Tensor][] } | Iterable<[string, Tensor]>, base: Optimizer | BaseOptimizerFactory, options: BlockOptimizerOptions = {}) {
    const op = 'BlockOptimizer';
    // every parameter may be trained: the schedule turns requiresGrad on for any block it activates
    const { params, names } = namedParameterList(op, model, { why: ' (names are what blocks are made of)', trainable: 'all' });
    const named = params.map((p, i): [string, Tensor] => [(names as string[])[i], p]);
    const settings = blockSettings(op, options);
    this.switchEvery = settings.switchEvery;
    this.switchMode = settings.switchMode;
    this.verbose = settings.verbose;
    this.decayAllParameters = settings.decayAllParameters;
    this.log = settings.log;

    this.model = new ModelBlocks(op, named, options);
    const numBlocks = this.model.count;
    const start = options.startBlock;
    if (start !== undefined && (typeof start !== 'number' || !Number.isInteger(start) || start < 0 || start >= numBlocks)) {
      throw new ValueError(op, `startBlock must be an integer in [0, ${numBlocks - 1}] (the partition has ${numBlocks} blocks), got ${describe(start)}`);
    }

    // the base optimizer
    if (base instanceof Optimizer) this.factory = null;
    else if (typeof base === 'function') this.factory = base;
    else throw new ValueError(op, `base must be an Optimizer or a function (params) => Optimizer, got ${describe(base)}`);
    this.schedule = new BlockSchedule(this.switchMode, this.switchEvery, numBlocks, settings.seed, start);

    // the first block's inner optimizer; an instance's current lr becomes the wrapper's lr
    const first = this.schedule.block;
    this.base = this.factory ? buildBase(this.factory, this.model.paramsOf(first).map(([, p]) => p)) : (base as Optimizer);
    this.template = this.factory ? null : groupTemplate(this.base);
    if (this.template) {
      const missing = this.model.used().find(([, p]) => !this.template?.groupOf.has(p));
      if (missing) throw new ValueError(op, `the base optimizer has parameter groups, but '${missing[0]}' is in none of them: put every parameter of the model in one group`);
      this.paramGroups = this.template.groups.map((g) => ({ lr: g.hyper.lr as number, params: [], ...(g.name !== undefined ? { name: g.name } : {}) }));
    } else {
      this.paramGroups = [{ lr: this.base.paramGroups[0]?.lr ?? this.base.defaults.lr, params: [] }];
    }
    this.overrides = this.model.partition.map((b) => blockOverrides(op, options.blockHyperparams, b.index, this.model.paramsOf(b.index).map(([n]) => n), this.base));
    this.warnIfNotHalf();
    this.activate(first, { prebuilt: this.factory ? this.base : undefined });
    // the flags are ours now: an older optimizer on these parameters is superseded (ownership.ts)
    claimParameters(this, 'BlockOptimizer', this.model.named.map(([, p]) => p), this.model.named.map(([n]) => n));
  }

  /** The one-time warning that BAdam's memory saving assumes a 16-bit (float16 or bfloat16) model (verbose >= 1). */
  private warnIfNotHalf(): void {
    if (this.verbose === 0) return;
    const notHalf = this.model.used().filter(([, p]) => !isHalf(p.dtype));
    if (notHalf.length > 0) {
      console.warn(
        `BlockOptimizer: ${notHalf.length} trainable parameters are not float16 or bfloat16 (e.g. '${notHalf[0][0]}' is ${notHalf[0][1].dtype}): ` +
          'they are updated in place without master copies, and BAdam saves no memory over Adam on them. ' +
          "For the 2 + 16/D bytes per parameter, store the model in float16 or bfloat16 (model.to('bfloat16')).",
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
    return this.model.partition.map((b) => ({ index: b.index, prefixes: [...b.prefixes], names: [...b.names], numParams: b.numParams }));
  }

  /** The names of the parameters in no block and not in activeModules: frozen for the whole run. */
  frozenNames(): string[] {
    return this.model.frozenNames();
  }

  /** The active block's index. */
  get currentBlock(): number {
    return this.schedule.block;
  }

  /** The block order of the current block-epoch. */
  get blockOrder(): number[] {
    return this.schedule.blockOrder;
  }

  /** Steps taken on the active block so far (0..switchEvery-1, except in 'fixed' mode). */
  get stepInBlock(): number {
    return this.schedule.stepInBlock;
  }

  /** Optimizer steps taken in all. */
  get globalStep(): number {
    return this.schedule.globalStep;
  }

  /** The current block-epoch (0-based). */
  get blockEpoch(): number {
    return this.schedule.epoch;
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
    this.paramGroups.forEach((g, i) => {
      if (lrProblem(g.lr)) throw new ValueError(op, `paramGroups[${i}].lr is ${describe(g.lr)}; expected a finite lr >= 0`);
    });
    const loss = options.closure ? enableGrad(options.closure) : undefined;
    this.copyLrs();
    this.masters.step(this.base, { onBeforeFree: options.onBeforeFree });
    if (this.schedule.countStep()) this.advance();
    return loss;
  }

  /**
   * Clears the gradients of every model parameter: null, with the gradient tensor disposed (the
   * default), or with `setToNone: false` zeroed in place (see Optimizer.zeroGrad).
   */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    clearGrads(this.model.named.map(([, p]) => p), options.setToNone ?? true);
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
   * Optimizer.stateDict) and the schedule and masters under `badam` (see block-state.ts).
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
        blocks: this.model.partition.map((b) => [...b.prefixes]),
        ...this.schedule.save(),
        lr: this.paramGroups[0].lr,
        lrs: this.paramGroups.map((g) => g.lr),
        overrides: { lrScale: this.overrides[this.schedule.block].lrScale, ...this.overrides[this.schedule.block].hyper },
        masters,
      },
    };
  }

  /**
   * Restores the schedule, the masters and the base optimizer's state from `stateDict()` output
   * (or its JSON round trip). Load the model's own state dict too. Everything is checked before
   * anything changes; a bad state dict throws one ValueError listing every problem and nothing is
   * loaded (load-contract.ts). On success a `{ type: 'resume', block, step, epoch, stepInBlock,
   * ... }` event goes to `log` (and a line to the console at verbose >= 1): the constructor's
   * step-0 event named its own first block, which the resumed run may never train.
   */
  loadStateDict(sd: BlockOptimizerStateDict): void {
    const op = 'BlockOptimizer.loadStateDict';
    this.checkOwnership(op);
    const s = badamPart(op, sd, this.model.partition.map((b) => b.prefixes));
    const problems: LoadProblems = new LoadProblems(op); // typed, so that refuse() narrows what it guards
    const { saved, block } = this.schedule.check(s, problems);
    const lrs = savedLrs(s, this.paramGroups.length, problems);
    if (block === null) problems.refuse(); // no block to check the masters and base state of
    const params = this.model.paramsOf(block);
    checkMasters(s.masters, params, block, problems);
    checkOverrides(s.overrides, this.overrides[block], block, problems);

    // the base optimizer's state, checked in groups for the saved block (put back if anything is wrong)
    const inner = { state: sd.state as Record<number, ParamState>, paramGroups: sd.paramGroups as SavedParamGroup[] };
    const baseLoad = prepareBaseLoad(this.base, this.factory, params, this.decayAllParameters, inner, block, problems, this.template, this.overrides[block].hyper);
    if (saved === null || !problems.isEmpty) {
      baseLoad.undo();
      problems.refuse();
    }

    // everything checked: commit
    baseLoad.commit();
    if (baseLoad.next !== this.base) this.base.resetState();
    this.base = baseLoad.next;
    this.sources = baseLoad.sources;
    this.masters.release();
    this.setTrainable(params);
    const masters = s.masters as Record<string, Tensor>;
    for (const [n, p] of params) if (isHalf(p.dtype)) this.masters.load(p, masters[n]);
    this.schedule.restore(saved);
    lrs.forEach((lr, i) => (this.paramGroups[i].lr = lr));
    this.copyLrs();
    this.announce('resume', block, params, this.schedule.epoch);
  }

  // ------------------------------------------------------------------ switching blocks

  /**
   * The switch to the next block of the schedule. The schedule (and its generator) moves only
   * once the next block is active: if its activation fails (a factory that throws), the schedule
   * is as it was and the old block stays active.
   */
  private advance(): void {
    const next = this.schedule.next();
    try {
      this.activate(next.block, { epoch: next.epoch });
    } catch (e) {
      this.schedule.cancel(next);
      throw e;
    }
    this.schedule.moveTo(next);
  }

  /** requiresGrad on `params` only (others' gradients freed), masters for them, the wrapper's params. */
  private setTrainable(params: [string, Tensor][]): void {
    const on = new Set(params.map(([, p]) => p));
    for (const [, p] of this.model.named) {
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
    const template = this.template;
    this.paramGroups.forEach((g, i) => (g.params = params.filter(([, p]) => !template || template.groupOf.get(p) === i).map(([, p]) => p)));
  }

  /** Each base group's lr: its paramGroups entry's, times block b's lrScale (b: the active block). */
  private copyLrs(b = this.schedule.block): void {
    const scale = this.overrides[b].lrScale;
    this.base.paramGroups.forEach((g, j) => (g.lr = this.paramGroups[this.sources[j]].lr * scale));
  }

  /**
   * Makes block b the active one (see the file comment). Everything that can fail comes first and
   * changes nothing the BlockOptimizer uses: the factory's optimizer for b (`prebuilt`: the
   * constructor's, already built) and its groups. Only then are requiresGrad flipped, the old
   * block's gradients, masters and moments freed and the new block's masters made.
   */
  private activate(b: number, options: { prebuilt?: Optimizer; epoch?: number } = {}): void {
    const params = this.model.paramsOf(b);
    // 1. the inner optimizer for b, with its groups (setBlockGroups restores an instance's groups on error)
    const next = this.factory ? (options.prebuilt ?? buildBase(this.factory, params.map(([, p]) => p))) : this.base;
    const sources = setBlockGroups(next, params, this.decayAllParameters, this.template, this.overrides[b].hyper);
    // 2. commit: the old block's moments freed, flags flipped (its gradients and masters freed)
    const old = this.base;
    old.resetState();
    if (next !== old) next.resetState(); // a factory's optimizer starts with no state
    this.base = next;
    this.sources = sources;
    this.setTrainable(params);
    this.copyLrs(b);
    this.masters.add(params.map(([, p]) => p));
    this.announce('switch', b, params, options.epoch ?? this.schedule.epoch);
  }

  private announce(type: 'switch' | 'resume', b: number, params: [string, Tensor][], epoch: number): void {
    const info = this.model.partition[b];
    const event: BlockSwitchEvent = {
      type,
      block: b,
      prefixes: [...info.prefixes],
      numParams: params.reduce((s, [, p]) => s + p.numel, 0),
      names: params.map(([n]) => n),
      step: this.schedule.globalStep,
      epoch,
      stepInBlock: type === 'resume' ? this.schedule.stepInBlock : 0,
    };
    const what = `block ${b} of ${this.model.count} [${info.prefixes.join(', ')}]${this.model.activeNames.length ? ' + activeModules' : ''}`;
    const summary = () =>
      type === 'resume'
        ? `BlockOptimizer: resumed at step ${event.step}: ${what} is trainable, ${event.numParams} parameters, ${event.stepInBlock} of its ${this.switchEvery} steps taken (block-epoch ${epoch})`
        : `BlockOptimizer: step ${event.step}: ${what} is trainable, ${event.numParams} parameters`;
    report(event, this.log, this.verbose, summary, () => event.names.map((n) => `  ${n}`));
  }
}
