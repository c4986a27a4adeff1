/**
 * `Temporaries`: the intermediate tensors of an optimizer's update, disposed as soon as they are
 * used (SGD, Adam, LOMO's hook).
 */
import { Tensor } from '../tensor/tensor';
import { scalarTensor } from '../tensor/creation';
import type { DType } from '../tensor/dtype';

/**
 * The intermediate tensors of one update, disposed as soon as they have been used, so that a
 * synchronous training loop leaves no garbage for the memory tracker to count (and no storage for
 * the garbage collector to find late). Tensors passed to the constructor (the parameter, its
 * gradient, state tensors) are never disposed, even when an op hands one back unchanged
 * (`cast(p, p.dtype)` returns `p`).
 *
 *   const t = new Temporaries([p, grad]);
 *   const x = t.own(cast(p, 'float32'));
 *   const step = t.own(mul(x, t.scalar(lr, x.dtype)));   // the scalar is a temporary too
 *   ...
 *   t.free(step);                                          // done with it
 *   t.freeAll();                                           // in a finally: whatever is left
 */
export class Temporaries {
  private readonly kept: Set<Tensor>;
  private readonly owned = new Set<Tensor>();

  constructor(kept: Iterable<Tensor>) {
    this.kept = new Set(kept);
  }

  /** Registers `t` as a temporary (unless it is kept) and returns it. */
  own<T extends Tensor>(t: T): T {
    if (!this.kept.has(t)) this.owned.add(t);
    return t;
  }

  /** Never disposes `t` (e.g. a state tensor that an expression may return). */
  keep(t: Tensor): void {
    this.kept.add(t);
    this.owned.delete(t);
  }

  /**
   * A 0-d tensor holding `value` in `dtype`, registered as a temporary: the operand an op would
   * make from the number itself (for a float32/float64 tensor operand, `mul(x, v)` and
   * `mul(x, t.scalar(v, x.dtype))` give the same bits).
   */
  scalar(value: number, dtype: DType): Tensor {
    return this.own(scalarTensor(value, dtype));
  }

  /** Disposes the given temporaries now (kept tensors and tensors not registered are left alone). */
  free(...ts: Tensor[]): void {
    for (const t of ts) {
      if (!this.owned.has(t)) continue;
      this.owned.delete(t);
      t.dispose();
    }
  }

  /** `next` replaces `prev` (a temporary that is freed): `g = t.swap(g, neg(g))`. */
  swap<T extends Tensor>(prev: Tensor, next: T): T {
    this.own(next);
    if (next !== prev) this.free(prev);
    return next;
  }

  /** Disposes every temporary still registered. */
  freeAll(): void {
    for (const t of this.owned) t.dispose();
    this.owned.clear();
  }
}
