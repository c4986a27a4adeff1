/**
 * BlockOptimizer's schedule: which block trains, for how many steps, in which order. Every block
 * gets exactly `switchEvery` = K optimizer steps, the first one included (the reference gives the
 * first block K-1). Blocks are visited in block-epochs, every block once per epoch: 'ascending'
 * (startBlock, startBlock+1, ..., wrapping), 'descending' (startBlock, startBlock-1, ...,
 * wrapping; default start: the last block), 'random' (a fresh permutation drawn from a Generator
 * seeded with `seed` each epoch; with startBlock the first epoch starts with that block and the
 * rest follow in a seeded permutation), 'fixed' (startBlock, default 0, forever: no switch ever
 * happens).
 *
 * The schedule only counts and orders; BlockOptimizer makes a block trainable. A switch is two
 * steps so that it stays atomic: `next()` says where the schedule goes (drawing the next epoch's
 * permutation if it must), and once that block is active `moveTo()` goes there; if its
 * activation fails, `cancel()` puts the generator back and the schedule is as it was.
 */
import { Generator, type GeneratorState } from '../../tensor/random';
import { describe } from '../../util/describe';
import type { LoadProblems } from '../load-contract';
import type { SwitchMode } from './block-options';
import type { BlockScheduleState } from './block-state';

/** Where the schedule goes at the next switch (from `next()`). */
export interface NextBlock {
  block: number;
  epoch: number;
  order: number[];
  position: number;
  /** The generator before the next epoch's permutation was drawn. */
  generatorState: GeneratorState;
}

/** The schedule's part of a BlockOptimizer state dict. */
export type SavedSchedule = Pick<BlockScheduleState, 'switchMode' | 'switchEvery' | 'block' | 'order' | 'position' | 'stepInBlock' | 'globalStep' | 'epoch' | 'generator'>;

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

export class BlockSchedule {
  private readonly generator: Generator;
  private order: number[];
  private position = 0;
  /** Steps taken on the active block, steps in all, and the block-epoch. */
  private blockStep = 0;
  private steps = 0;
  private epochIndex = 0;

  /** `start`: the first block (checked by the caller); without it, the mode's own start. */
  constructor(
    readonly mode: SwitchMode,
    readonly switchEvery: number,
    readonly numBlocks: number,
    seed: number,
    start: number | undefined,
  ) {
    this.generator = new Generator(seed);
    this.order = this.firstOrder(start);
  }

  /** The active block. */
  get block(): number {
    return this.order[this.position];
  }

  /** The block order of the current block-epoch (a copy). */
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
  get epoch(): number {
    return this.epochIndex;
  }

  /** Counts one optimizer step; true when it was the active block's last (never in 'fixed' mode). */
  countStep(): boolean {
    this.blockStep++;
    this.steps++;
    return this.blockStep >= this.switchEvery && this.mode !== 'fixed';
  }

  /** Where the next switch goes. Only the generator moves (in random mode, at an epoch's end). */
  next(): NextBlock {
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
    return { block: order[position], epoch, order, position, generatorState };
  }

  /** Goes to `next` (its block is active now): the new block's first step comes next. */
  moveTo(next: NextBlock): void {
    this.order = next.order;
    this.position = next.position;
    this.epochIndex = next.epoch;
    this.blockStep = 0;
  }

  /** Forgets `next` (its block could not be activated): the generator goes back to where it was. */
  cancel(next: NextBlock): void {
    this.generator.setState(next.generatorState);
  }

  /** The schedule's part of a state dict. */
  save(): SavedSchedule {
    return {
      switchMode: this.mode,
      switchEvery: this.switchEvery,
      block: this.block,
      order: [...this.order],
      position: this.position,
      stepInBlock: this.blockStep,
      globalStep: this.steps,
      epoch: this.epochIndex,
      generator: this.generator.getState(),
    };
  }

  /**
   * Checks a saved schedule against this one, recording every problem in `problems`: the saved
   * `s` (from a state dict, so any value) must have this mode and K (if not, the rest is not
   * checked) and be a position this schedule can reach. Returns `saved`, `s` typed, when nothing
   * was wrong (else null), and `block`, the saved active block, whenever the order, position and
   * block agree (else null): enough to check that block's masters and base state.
   */
  check(s: Record<string, unknown>, problems: LoadProblems): { saved: SavedSchedule | null; block: number | null } {
    const before = problems.list.length;
    let block: number | null = null;
    if (s.switchMode !== this.mode) problems.add(`the state dict was saved with switchMode ${describe(s.switchMode)} but this optimizer uses '${this.mode}'`);
    if (s.switchEvery !== this.switchEvery) problems.add(`the state dict was saved with switchEvery ${describe(s.switchEvery)} but this optimizer uses ${this.switchEvery}`);
    if (problems.list.length > before) return { saved: null, block }; // a position in another schedule: nothing more to check
    const n = this.numBlocks;
    const order = s.order;
    if (!Array.isArray(order) || !order.every((b) => isInt(b) && b >= 0 && b < n)) {
      problems.add(`order must be a list of block indices in [0, ${n})`);
    } else if (order.length !== (this.mode === 'fixed' ? 1 : n) || new Set(order).size !== order.length) {
      problems.add(`order ${JSON.stringify(order)} is not a valid block order for '${this.mode}' mode over ${n} blocks`);
    } else {
      const position = s.position;
      if (!isInt(position) || position < 0 || position >= order.length) problems.add(`position ${describe(position)} is outside the order of ${order.length} blocks`);
      else if (s.block !== order[position]) problems.add(`block ${describe(s.block)} is not the block at position ${position} of the order (${order[position]})`);
      else block = order[position];
    }
    const stepInBlock = s.stepInBlock;
    const stepOk = isInt(stepInBlock) && stepInBlock >= 0 && (this.mode === 'fixed' || stepInBlock < this.switchEvery);
    if (!stepOk) problems.add(`stepInBlock ${describe(stepInBlock)} must be an integer in [0, ${this.switchEvery})`);
    const globalStep = s.globalStep;
    if (!isInt(globalStep) || (stepOk && globalStep < (stepInBlock as number))) problems.add(`globalStep ${describe(globalStep)} must be an integer >= stepInBlock`);
    const epoch = s.epoch;
    if (!isInt(epoch) || epoch < 0) problems.add(`epoch ${describe(epoch)} must be an integer >= 0`);
    try {
      new Generator(0).setState(s.generator as GeneratorState);
    } catch (e) {
      problems.add(`generator: ${(e as Error).message}`);
    }
    return { saved: problems.list.length === before ? (s as unknown as SavedSchedule) : null, block };
  }

  /** Takes the position of a saved schedule that `check` accepted. */
  restore(saved: SavedSchedule): void {
    this.order = [...saved.order];
    this.position = saved.position;
    this.blockStep = saved.stepInBlock;
    this.steps = saved.globalStep;
    this.epochIndex = saved.epoch;
    this.generator.setState(saved.generator);
  }

  private firstOrder(start: number | undefined): number[] {
    const n = this.numBlocks;
    const all = Array.from({ length: n }, (_, i) => i);
    switch (this.mode) {
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
    return this.mode === 'random' ? this.generator.permutation(this.numBlocks) : [...this.order];
  }
}
