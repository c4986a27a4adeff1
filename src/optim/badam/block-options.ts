/**
 * BlockOptimizer's options and their checks, made before the model is touched. With the reference
 * `badam` package's and LLaMA-Factory's names (docs/badam.md):
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
 * | blockHyperparams   | -                     | -                      | none          |
 */
import { ValueError } from '../../errors';
import type { Tensor } from '../../tensor/tensor';
import type { Optimizer } from '../optimizer';
import { describe } from '../../util/describe';
import { hasOwn, isPlainObject } from '../../util/objects';
import { checkSharedOptions, type OptionNames, type SharedSettings } from './options';
import type { BlockOptimizerEvent } from './events';

export type SwitchMode = 'ascending' | 'descending' | 'random' | 'fixed';
export const SWITCH_MODES: readonly SwitchMode[] = ['ascending', 'descending', 'random', 'fixed'];

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
  /**
   * Per-block hyperparameters: called once per block when the optimizer is built, with the block's
   * index and parameter names; what it returns replaces those hyperparameters of the base optimizer
   * (weightDecay, betas, eps, ...) while that block is active, and `lrScale` multiplies the lr the
   * schedule gives it. undefined or {}: the base's own. Kept in the state dict and checked on load.
   */
  blockHyperparams?: (block: number, names: readonly string[]) => BlockHyperparams | undefined | null;
}

/** A block's overrides (see BlockOptimizerOptions.blockHyperparams). */
export type BlockHyperparams = { lrScale?: number } & Record<string, unknown>;

const NAMES: OptionNames = {
  known: [
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
    'blockHyperparams',
  ] satisfies (keyof BlockOptimizerOptions)[],
  /** The reference's snake_case names, for a helpful error when one is passed. */
  referenceNames: {
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
  } satisfies Record<string, keyof BlockOptimizerOptions>,
  referenceHint: (ours) => `: blockgrad calls it '${ours}'`,
};

/** The options with their defaults, checked (startBlock is checked against the partition later). */
export interface BlockSettings extends SharedSettings<BlockOptimizerEvent> {
  switchEvery: number;
  switchMode: SwitchMode;
  decayAllParameters: boolean;
}

/** Checks `options` (throwing a ValueError naming `op`) and fills in the defaults. */
export function blockSettings(op: string, options: BlockOptimizerOptions): BlockSettings {
  const shared = checkSharedOptions<BlockOptimizerEvent>(op, options, NAMES);
  const switchEvery = options.switchEvery ?? 50;
  if (typeof switchEvery !== 'number' || !Number.isInteger(switchEvery) || switchEvery < 1) {
    throw new ValueError(op, `switchEvery must be an integer >= 1 (optimizer steps per block), got ${describe(switchEvery)}; for a block that never switches use switchMode 'fixed'`);
  }
  const switchMode = options.switchMode ?? 'descending';
  if (!SWITCH_MODES.includes(switchMode)) {
    throw new ValueError(op, `unknown switchMode ${describe(switchMode)}; expected one of ${SWITCH_MODES.map((m) => `'${m}'`).join(', ')}`);
  }
  if (options.blockPrefixList !== undefined && (options.includeEmbedding || options.includeLmHead)) {
    throw new ValueError(op, 'includeEmbedding and includeLmHead shape the inferred partition; with blockPrefixList, list the embedding or head blocks in it yourself');
  }
  if (options.blockHyperparams !== undefined && typeof options.blockHyperparams !== 'function') {
    throw new ValueError(op, `blockHyperparams must be a function (block, names) => overrides, got ${describe(options.blockHyperparams)}`);
  }
  return { ...shared, switchEvery, switchMode, decayAllParameters: options.decayAllParameters ?? false };
}

/** A block's checked overrides: the factor on the scheduled lr, and the hyperparameters replaced. */
export interface BlockOverrides {
  lrScale: number;
  hyper: Record<string, unknown>;
}

/**
 * Block `block`'s overrides from `fn`, checked against the base optimizer: hyperparameters it has,
 * with values it accepts, no `lr` (the schedule owns it: scale it with lrScale), and an lrScale
 * that is a finite number >= 0.
 */
export function blockOverrides(op: string, fn: BlockOptimizerOptions['blockHyperparams'], block: number, names: readonly string[], base: Optimizer): BlockOverrides {
  const got = fn ? fn(block, names) : undefined;
  if (got === undefined || got === null) return { lrScale: 1, hyper: {} };
  const where = `blockHyperparams(${block})`;
  if (!isPlainObject(got)) throw new ValueError(op, `${where} must return an object of hyperparameters, got ${describe(got)}`);
  const { lrScale = 1, ...hyper } = got as BlockHyperparams;
  if (typeof lrScale !== 'number' || !Number.isFinite(lrScale) || lrScale < 0) throw new ValueError(op, `${where}.lrScale must be a finite number >= 0, got ${describe(lrScale)}`);
  const defaults = base.defaults as unknown as Record<string, unknown>;
  for (const k of Object.keys(hyper)) {
    if (k === 'lr') throw new ValueError(op, `${where} sets lr, which the schedule owns: return lrScale (a factor on the scheduled lr) instead`);
    if (!hasOwn(defaults, k)) throw new ValueError(op, `${where} sets '${k}', which the base optimizer does not have; its hyperparameters: ${Object.keys(defaults).join(', ')}`);
  }
  const problem = base.hyperparameterProblem(hyper);
  if (problem) throw new ValueError(op, `${where}: ${problem}`);
  return { lrScale, hyper };
}
