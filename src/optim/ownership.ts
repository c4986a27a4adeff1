/**
 * Which optimizer controls a parameter's gradient. A BlockOptimizer sets requiresGrad on every
 * parameter of its model at each block switch, BlockOptimizerRatio freezes the embedding, LOMO
 * updates inside backward and frees the gradients there. Two of them on the same parameters
 * defeat each other without a word: a second BlockOptimizer flips the flags to its own block, and
 * the first then updates nothing (its block gets no gradient).
 *
 * So each of them claims its parameters when it is built, and the newest claim wins: a freshly
 * built optimizer is the one a program means to use (a resumed run builds a new BlockOptimizer on
 * the same model and loads the old one's state into it). An optimizer that lost a parameter to a
 * newer one is superseded for good: its next step() (or loadStateDict) throws, naming the
 * parameter, the newer optimizer and the remedy, where it would have silently updated nothing.
 * It can still give its stateDict() (to carry the run over) and release() its memory.
 *
 * Claims hold their owner weakly, so a dropped optimizer keeps nothing alive.
 */
import { ValueError } from '../errors';
import type { Tensor } from '../tensor/tensor';

interface Claim {
  owner: WeakRef<object>;
  /** The owner's class name, for messages. */
  kind: string;
}

const claims = new WeakMap<Tensor, Claim>();
/** Owners whose parameters a newer claim took: what took them, and the first parameter taken. */
const superseded = new WeakMap<object, { kind: string; label: string }>();

/** What each kind does to its parameters, which another optimizer on them would undo. */
const EFFECT: Record<string, string> = {
  BlockOptimizer: 'sets their requiresGrad at every block switch',
  BlockOptimizerRatio: 'updates them through its own masks',
  LOMO: 'updates them inside backward and frees their gradients there',
};

/**
 * Claims `params` for `owner`, a newly built optimizer of class `kind`. Every live optimizer that
 * held one of them is superseded: its next step throws.
 */
export function claimParameters(owner: object, kind: string, params: readonly Tensor[], names?: readonly string[] | null): void {
  const ref = new WeakRef(owner);
  params.forEach((p, i) => {
    const previous = claims.get(p)?.owner.deref();
    if (previous !== undefined && previous !== owner && !superseded.has(previous)) {
      const name = names?.[i] ?? p.name;
      superseded.set(previous, { kind, label: name !== undefined ? `'${name}'` : `#${i}` });
    }
    claims.set(p, { owner: ref, kind });
  });
}

/** Whether a newer optimizer has claimed one of `owner`'s parameters (for hooks, which must not throw). */
export function isSuperseded(owner: object): boolean {
  return superseded.has(owner);
}

/**
 * Before `owner` (of class `kind`) updates or reconfigures its parameters: throws a ValueError
 * naming `op` when a newer optimizer has claimed one of them.
 */
export function checkClaims(op: string, owner: object, kind: string): void {
  const lost = superseded.get(owner);
  if (!lost) return;
  throw new ValueError(
    op,
    `parameter ${lost.label} is now trained by a ${lost.kind} built later on the same parameters, which ${EFFECT[lost.kind] ?? 'controls their gradients'}: ` +
      `this ${kind} would silently update nothing. Train with the newer one (one of the same kind takes this run over with newer.loadStateDict(this.stateDict())); ` +
      'to train with two optimizers, give each its own parameters',
  );
}
