/** Value descriptions for the optimizers' error messages (src/optim and src/optim/badam). */
import { fmtShape } from '../errors';
import { Tensor } from '../tensor/tensor';

/** A short description of a value for an error message: `null`, `'text'`, `3`, `an array of length 2`, ... */
export function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  if (x instanceof Tensor) return `a Tensor of shape ${fmtShape(x.shape)}`;
  if (typeof x === 'number') return String(x);
  if (typeof x === 'string') return `'${x}'`;
  return typeof x;
}
