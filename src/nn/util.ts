import type { DType } from '../tensor/dtype';
import { zeros } from '../tensor/creation';
import type { Tensor } from '../tensor/tensor';

/** Storage for a parameter that an initialiser fills right after. */
export function empty(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return zeros(shape, { dtype });
}
