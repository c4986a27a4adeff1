/**
 * The gradients a backward has in flight, and which of them the engine may free and when.
 * engine.ts decides what runs; this class holds the gradient each target is waiting for and
 * frees the temporaries as soon as they are consumed (see Note [Gradient ownership]).
 */
import type { Tensor } from '../tensor/tensor';
import { enableGrad, noGrad } from './grad-mode';
import { add } from './ops/elementwise';
import type { Target } from './target-paths';

// Note [Gradient ownership]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// A gradient the engine made (a root's ones, what a backward returned, a sum of two of those) is
// the engine's to free, and it frees it the moment it is consumed rather than at the end of the
// caller's tidy scope: a backward then reuses the same few blocks, still in cache, instead of
// touching fresh memory for every temporary (test/memory/backward-temporaries.test.ts).
// A gradient is consumed when it was summed into another (accumulateInto), passed through a
// node's backward, cast to its input's dtype, or added into a leaf's existing .grad.
// It is never freed when
//  - it has *escaped*: someone besides the engine can see its storage. The caller passed it in
//    (a root's gradient), a hook saw it, retainGrad() or a leaf's .grad holds it, or grad()
//    returns it. An escaped buffer is also never taken over as a leaf's .grad.
//  - it is still *pending* for a target: one tensor can wait in several targets' slots (add's
//    backward returns g for both inputs), so each slot that holds it counts, and it is freed
//    only once no slot does.
//  - the backward is recorded (createGraph): the gradients are part of a graph the caller keeps.
export class GradientBuffers {
  /** The gradient accumulated so far for each target that has not run yet. */
  private readonly pending = new Map<Target, Tensor>();
  /** How many pending slots (or sends not yet accumulated) hold each tensor object. */
  private readonly pendingCount = new Map<Tensor, number>();
  /** Buffers that someone besides the engine can see. */
  private readonly escaped: Set<unknown>;

  constructor(
    callerGrads: readonly Tensor[],
    private readonly createGraph: boolean,
  ) {
    this.escaped = new Set<unknown>(callerGrads.map((g) => g.buffer));
  }

  /** Adds `g` to what `target` has received (summing with an earlier gradient, which is consumed). */
  accumulateInto(target: Target, g: Tensor): void {
    const prev = this.pending.get(target);
    this.setPending(target, prev ? this.withMode(() => add(prev, g)) : g);
    if (prev) {
      this.releaseConsumed(prev);
      this.releaseConsumed(g);
    }
  }

  /** The complete gradient of a target whose turn came (null if none arrived); its slot is emptied. */
  take(target: Target): Tensor | null {
    const g = this.pending.get(target) ?? null;
    this.setPending(target, null);
    return g;
  }

  /**
   * Accumulates what a node's backward returned (`returned[i]` for the input edge `edges[i]`,
   * null where nothing is sent) into the inputs' slots, `check` first checking and casting each,
   * and frees the incoming gradient `incoming` unless it was passed on as is.
   */
  send(incoming: Tensor, returned: readonly (Tensor | null)[], edges: readonly (Target | null)[], check: (i: number, g: Tensor) => Tensor): void {
    // One tensor can be the gradient of several inputs (add returns g twice): count each use as
    // pending until it is accumulated, so that the first accumulation does not free it.
    const uses = edges.map((e, i) => (e !== null ? returned[i] : null));
    for (const gi of uses) if (gi) this.pendingCount.set(gi, (this.pendingCount.get(gi) ?? 0) + 1);
    edges.forEach((e, i) => {
      const gi = uses[i];
      if (!gi || e === null) return;
      this.pendingCount.set(gi, (this.pendingCount.get(gi) ?? 1) - 1);
      const checked = check(i, gi);
      this.accumulateInto(e, checked);
      // a gradient cast to its input's dtype leaves the uncast one behind
      if (checked !== gi && gi !== incoming) this.releaseConsumed(gi);
    });
    if (!returned.includes(incoming)) this.releaseConsumed(incoming);
  }

  /** Records that someone besides the engine can now see `g`'s storage: the engine will not free it. */
  markEscaped(g: Tensor): void {
    this.escaped.add(g.buffer);
  }

  /**
   * Whether a leaf's .grad may be `g` itself rather than a copy: nothing else can see it or its
   * storage, so that whoever frees leaf.grad (LOMO does, in its hook) frees the storage at once.
   */
  canTakeOver(g: Tensor): boolean {
    return g.buffer.refs === 1 && g.isContiguous() && g.offset === 0 && g.numel === g.buffer.length &&
      !this.escaped.has(g.buffer) && !this.stillPending(g);
  }

  /** Frees a gradient the engine made and has consumed, unless Note [Gradient ownership] keeps it. */
  releaseConsumed(t: Tensor): void {
    if (!this.createGraph && !this.escaped.has(t.buffer) && !this.stillPending(t)) t.dispose();
  }

  private stillPending(g: Tensor): boolean {
    return (this.pendingCount.get(g) ?? 0) > 0;
  }

  private setPending(target: Target, g: Tensor | null): void {
    const prev = this.pending.get(target);
    if (prev) this.pendingCount.set(prev, (this.pendingCount.get(prev) ?? 1) - 1);
    if (g) {
      this.pending.set(target, g);
      this.pendingCount.set(g, (this.pendingCount.get(g) ?? 0) + 1);
    } else this.pending.delete(target);
  }

  private withMode<T>(fn: () => T): T {
    return this.createGraph ? enableGrad(fn) : noGrad(fn);
  }
}
