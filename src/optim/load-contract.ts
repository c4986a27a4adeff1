/**
 * The one loadStateDict contract of every optimizer and scheduler in blockgrad (Optimizer and its
 * subclasses, MixedPrecisionOptimizer, BlockOptimizer, BlockOptimizerRatio, LOMO, LRScheduler):
 *
 * 1. Everything in the state dict is checked before anything changes, and every problem found is
 *    collected. A check that needs a value already found bad is skipped (an order that is not a
 *    list has no position to check), so each problem is reported once, at its cause.
 * 2. If there is any problem, ONE ValueError is thrown, naming `<Class>.loadStateDict`, listing the
 *    problems separated by '; ' and ending in 'Nothing was loaded'. The optimizer is then exactly
 *    as it was: its groups, state tensors, schedule, masters and requiresGrad flags.
 * 3. Otherwise the state is committed, by code that can no longer fail on the state dict's content.
 *
 * A state dict whose outline is wrong (not an object, a missing part, the wrong number of groups)
 * is refused with that one problem, since nothing inside it can be checked. Problems that are not
 * about the state dict (an optimizer superseded by a newer one, ownership.ts) keep their own error.
 */
import { ValueError } from '../errors';

/** The problems found in a state dict, collected before anything is loaded (see the file comment). */
export class LoadProblems {
  private readonly found: string[] = [];

  /** @param op the refusing call, `<Class>.loadStateDict`. */
  constructor(readonly op: string) {}

  /** Records problems; null, undefined and '' stand for none. */
  add(...problems: (string | null | undefined)[]): void {
    for (const p of problems) if (p) this.found.push(p);
  }

  /** The problems recorded so far. */
  get list(): readonly string[] {
    return this.found;
  }

  get isEmpty(): boolean {
    return this.found.length === 0;
  }

  /** Throws the contract's one ValueError when any problem was recorded. */
  throwIfAny(): void {
    if (this.found.length > 0) this.refuse();
  }

  /** Throws the contract's one ValueError with the problems recorded (there must be some). */
  refuse(): never {
    refuseLoad(this.op, this.found.join('; '));
  }
}

/** Refuses a state dict with the contract's ValueError (`problem` may list several, joined by '; '). */
export function refuseLoad(op: string, problem: string): never {
  throw new ValueError(op, `${problem}. Nothing was loaded`);
}
