/**
 * Inverted dropout: each element is kept with probability 1 − p and scaled by 1/(1 − p), so the
 * expected value is unchanged and evaluation needs no rescaling. The mask is drawn on the host
 * from a seeded Generator (the same seed gives the same mask on every backend) and uploaded
 * already scaled; the backward multiplies the gradient by that same scaled mask.
 */
import { kernels } from '../../kernels/registry';
import { ValueError } from '../../errors';
import { defaultGenerator, Generator } from '../../tensor/random';
import { Tensor } from '../../tensor/tensor';
import { noGrad } from '../grad-mode';
import { record } from '../node';
import { mul, requireFloating } from './elementwise';

export interface DropoutOptions {
  /** false (evaluation) returns the input unchanged; default true. */
  training?: boolean;
  /** Where the mask's random numbers come from (default: the default generator). */
  generator?: Generator;
}

/** torch.nn.functional.dropout: zeroes each element with probability p, scales the rest by 1/(1 − p). */
export function dropout(x: Tensor, p = 0.5, options: DropoutOptions = {}): Tensor {
  const op = 'dropout';
  if (!(x instanceof Tensor)) throw new ValueError(op, `expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
    throw new ValueError(op, `dropout probability p must be in [0, 1], got ${p}`);
  }
  const gen = options.generator ?? defaultGenerator;
  if (!(gen instanceof Generator)) throw new ValueError(op, 'options.generator must be a Generator');
  requireFloating(op, x);
  if (options.training === false || p === 0) return x;

  // mask in x's row-major order: 1/(1 − p) where kept (u >= p, probability 1 − p), 0 where dropped
  const scale = p === 1 ? 0 : 1 / (1 - p);
  const n = x.numel;
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = gen.random() >= p ? scale : 0;
  const mask = new Tensor(kernels().upload(x.dtype, values), x.shape);

  const out = noGrad(() => mul(x, mask));
  // d(x·m)/dx = m (the mask already carries the 1/(1 − p) scale)
  return record(op, [x], out, [mask], (g, [m]) => [mul(g, m)]);
}
