/**
 * In-place writes. They are not recorded, so they are refused on tensors that take part in
 * autograd while grad mode is on (as PyTorch refuses in-place ops on leaves that require grad):
 * initialisation, loading weights and optimizer steps run them inside noGrad.
 */
import { kernels } from '../../kernels/registry';
import { AutogradError, ShapeError, fmtShape } from '../../errors';
import { broadcastShapes, sameShape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { scalarTensor } from '../../tensor/creation';
import { isGradEnabled } from '../grad-mode';
import { broadcastView } from './elementwise';

/** Writes src (broadcast to dst's shape, cast to dst's dtype) into dst's storage; returns dst. */
export function copy_(dst: Tensor, src: Tensor | number): Tensor {
  if (isGradEnabled() && dst.requiresGrad) {
    throw new AutogradError(
      'copy_',
      `${dst} requires grad and cannot be modified in place while grad mode is on; run the update inside noGrad(() => ...)`,
    );
  }
  const source = src instanceof Tensor ? src : scalarTensor(src, dst.dtype);
  const shape = broadcastShapes('copy_', dst.shape, source.shape);
  if (!sameShape(shape, dst.shape)) {
    throw new ShapeError('copy_', `source of shape ${fmtShape(source.shape)} does not broadcast to the destination's shape ${fmtShape(dst.shape)}`);
  }
  kernels().assign(dst, broadcastView(source, dst.shape));
  return dst;
}
