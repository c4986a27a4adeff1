/**
 * What the BAdam optimizers tell their user: the events `log` receives (BlockOptimizer's block
 * switches and resumes, BlockOptimizerRatio's masks) and, by `verbose`, the console lines.
 */
import type { MaskMode } from './ratio-options';

/** 0 silent, 1 one line per event, 2 also one line per parameter. */
export type Verbosity = 0 | 1 | 2;

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

/**
 * Tells the user about `event`, as both BAdam optimizers do: the console gets `summary()` at
 * verbose >= 1 and each line of `details()` at verbose 2, then `log` receives the event.
 */
export function report<E>(event: E, log: ((event: E) => void) | null | undefined, verbose: Verbosity, summary: () => string, details: () => string[]): void {
  if (verbose >= 1) {
    console.log(summary());
    if (verbose >= 2) for (const line of details()) console.log(line);
  }
  log?.(event);
}
