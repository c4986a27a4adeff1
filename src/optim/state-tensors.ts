/**
 * The tensors of optimizer state (moments, momentum buffers, masters): the dtype they are kept in,
 * how they are made and copied in from a state dict, and the value check a loaded one must pass.
 */
import { Tensor } from '../tensor/tensor';
import type { DType } from '../tensor/dtype';
import { isHalf } from '../tensor/dtype';
import { backendByName } from '../kernels/registry';

/** The dtype optimizer state is kept in for a parameter: float32 for float16, else the parameter's own. */
export function stateDtype(param: Tensor): DType {
  return isHalf(param.dtype) ? 'float32' : param.dtype;
}

/** A fresh contiguous copy of `src` (from any backend) on `like`'s backend, as `dtype`. */
export function cloneOnto(src: Tensor, like: Tensor, dtype: DType): Tensor {
  const backend = backendByName(like.backend);
  const buf = src.backend === like.backend ? backend.copy(src, dtype) : backend.upload(dtype, backendByName(src.backend).read(src));
  return new Tensor(buf, src.shape);
}

/** A zero tensor shaped like `like`, in optimizer state's dtype for it, tagged 'optimizer'. */
export function zeroState(like: Tensor): Tensor {
  const dtype = stateDtype(like);
  return new Tensor(backendByName(like.backend).zeros(dtype, like.numel), like.shape).tagMemory('optimizer');
}

/**
 * The first value of a loaded state tensor that a healthy run cannot have, as a problem naming
 * `where`, the value and its index (null when all are fine): every value finite, and with
 * `nonNegative` also >= 0 (second moments are averages of squares). Reads `t` on the host, so
 * loadStateDict calls it, never a step.
 */
export function stateValueProblem(where: string, t: Tensor, nonNegative: boolean): string | null {
  const values = backendByName(t.backend).read(t);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v) && (!nonNegative || v >= 0)) continue;
    const rule = nonNegative ? 'finite and >= 0 (an average of squared gradients)' : 'finite';
    return `${where} holds ${v} at flat index ${i}, but every value must be ${rule}: the next step would write NaN into the weights; the state dict is corrupt`;
  }
  return null;
}
