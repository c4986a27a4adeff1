/**
 * The int32 range check every path from a JavaScript number into int32 storage goes through
 * (tensor(), full(), arange(), randint(), a number operand of an int32 op, a cast of a floating
 * tensor, optimizer state read back from JSON). A typed array stores 3e9 as -1294967296 and NaN
 * as 0 without a word; PyTorch refuses such values ("value cannot be converted to type int32
 * without overflow"), and so does blockgrad, naming the value and where it is.
 *
 * PyTorch's rule, kept here: a value converts when lowest <= v <= max, so 2147483647.5 is refused
 * (it is above the largest int32) while 1.5 converts to 1 (truncation toward zero), and NaN and
 * ±Infinity are refused. Casting a floating tensor to int32 (`.to('int32')`) is undefined
 * behaviour for such values in PyTorch (x86 gives -2147483648); blockgrad refuses them too.
 */
import { ValueError } from '../errors';
import { backendByName } from '../kernels/registry';
import { isFloating } from './dtype';
import type { Tensor } from './tensor';

export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;

/** Where flat element `i` sits: `[1,2]` for a shape, else the flat index. */
function position(i: number, shape: readonly number[] | undefined): string {
  if (!shape || shape.length < 2) return `index ${i}`;
  const at = new Array<number>(shape.length);
  let rest = i;
  for (let d = shape.length - 1; d >= 0; d--) {
    at[d] = rest % shape[d];
    rest = Math.floor(rest / shape[d]);
  }
  return `index [${at.join(',')}]`;
}

/** The error for one value that int32 cannot hold. */
export function int32OverflowError(op: string, value: number, where: string): ValueError {
  return new ValueError(
    op,
    `value ${value} at ${where} cannot be converted to int32 without overflow: int32 holds whole numbers in ` +
      `[${INT32_MIN}, ${INT32_MAX}], and NaN and ±Infinity have no int32 value; keep the values in that range or use a floating dtype (float32, float64)`,
  );
}

/**
 * Throws a ValueError naming `op`, the first value outside int32's range (NaN included) and its
 * index (row-major, as a multi-index when `shape` has 2 or more dims; `of` says what holds the
 * values, e.g. a path in a state dict). One pass, no allocation.
 */
export function checkInt32Values(op: string, values: ArrayLike<number>, shape?: readonly number[], of?: string): void {
  if (values instanceof Int32Array) return;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // written so that NaN fails too (every comparison with NaN is false)
    if (!(v >= INT32_MIN && v <= INT32_MAX)) throw int32OverflowError(op, v, of ? `${position(i, shape)} of ${of}` : position(i, shape));
  }
}

/** One number bound for int32 storage (a fill value, an operand, a bound of randint). */
export function checkInt32Scalar(op: string, value: number, what = 'value'): void {
  if (!(value >= INT32_MIN && value <= INT32_MAX)) throw int32OverflowError(op, value, what);
}

/**
 * Before a floating tensor (or view) is cast to int32: reads its values on the host and checks
 * them. The read is the price of refusing NaN instead of storing 0; casts to int32 make indices
 * and labels, not hot-loop arithmetic.
 */
export function checkCastToInt32(op: string, t: Tensor): void {
  if (!isFloating(t.dtype) || t.numel === 0) return;
  checkInt32Values(op, backendByName(t.backend).read(t), t.shape);
}
