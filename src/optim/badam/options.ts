/**
 * The option checks that both BAdam optimizers (BlockOptimizer and BlockOptimizerRatio) share:
 * the options object itself, unknown names (naming blockgrad's spelling of the reference
 * package's and LLaMA-Factory's snake_case names), verbose, log, seed and the boolean switches.
 * Each optimizer then checks its own options (block-options.ts, ratio-options.ts).
 */
import { ValueError } from '../../errors';
import { hasOwn, isPlainObject } from '../../util/objects';
import { describe } from '../../util/describe';
import type { Verbosity } from './events';

/** The options both optimizers have. */
export interface SharedOptions<E> {
  /** The embedding is trained (ratio) or is the first block of the inferred partition (block). */
  includeEmbedding?: boolean;
  /** The lm_head is trained (ratio) or is the last block of the inferred partition (block). */
  includeLmHead?: boolean;
  /** Apply weight decay to biases, norm weights and 1-D parameters too. */
  decayAllParameters?: boolean;
  /** Seeds the optimizer's Generator. Default 0. */
  seed?: number;
  verbose?: Verbosity;
  /** Receives every event. */
  log?: (event: E) => void;
}

/** What an optimizer's option names are, for the unknown-name check. */
export interface OptionNames {
  /** Every name the optimizer accepts, in the order the error lists them. */
  known: readonly string[];
  /** The reference's (and LLaMA-Factory's) snake_case names, by blockgrad's name for them. */
  referenceNames: Readonly<Record<string, string>>;
  /**
   * How the error points from a reference name to blockgrad's, after `unknown option 'name'`:
   * BlockOptimizer's `: blockgrad calls it 'x'` (quoted in docs/badam.md) and
   * BlockOptimizerRatio's ` (the reference's name; blockgrad calls it 'x')` (its tests') differ.
   */
  referenceHint(ours: string): string;
}

/** verbose, log and seed, checked, with their defaults. */
export interface SharedSettings<E> {
  verbose: Verbosity;
  log: ((event: E) => void) | undefined;
  seed: number;
}

/**
 * Checks what every BAdam optimizer's options have in common, throwing a ValueError naming `op`:
 * `options` must be an object whose names are all `names.known`, and verbose, log, seed and the
 * boolean switches must be well typed. Returns verbose, log and seed with their defaults.
 */
export function checkSharedOptions<E>(op: string, options: unknown, names: OptionNames): SharedSettings<E> {
  if (!isPlainObject(options)) throw new ValueError(op, `options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (names.known.includes(key)) continue;
    const ours = hasOwn(names.referenceNames, key) ? names.referenceNames[key] : undefined;
    throw new ValueError(op, `unknown option '${key}'${ours ? names.referenceHint(ours) : ''}; known: ${names.known.join(', ')}`);
  }
  const shared = options as SharedOptions<E>;
  const verbose = shared.verbose ?? 1;
  if (verbose !== 0 && verbose !== 1 && verbose !== 2) throw new ValueError(op, `verbose must be 0, 1 or 2, got ${describe(verbose)}`);
  if (shared.log !== undefined && typeof shared.log !== 'function') throw new ValueError(op, `log must be a function, got ${describe(shared.log)}`);
  const seed = shared.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new ValueError(op, `seed must be a finite number, got ${describe(seed)}`);
  for (const key of ['includeEmbedding', 'includeLmHead', 'decayAllParameters'] as const) {
    if (shared[key] !== undefined && typeof shared[key] !== 'boolean') throw new ValueError(op, `${key} must be a boolean, got ${describe(shared[key])}`);
  }
  return { verbose, log: shared.log, seed };
}
