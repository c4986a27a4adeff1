/**
 * In-place writes. They are not recorded, so they are refused on tensors that take part in
 * autograd while grad mode is on (as PyTorch refuses in-place ops on leaves that require grad):
 * initialisation, loading weights and optimizer steps run them inside noGrad.
 */
import { kernels } from '../../kernels/registry';
import { AutogradError, ShapeError, ValueError, fmtShape } from '../../errors';
import { broadcastShapes, sameShape } from '../../tensor/shape';
import { Tensor } from '../../tensor/tensor';
import { scalarTensor } from '../../tensor/creation';
import { checkCastToInt32 } from '../../tensor/int32';
import { isGradEnabled } from '../grad-mode';
import { bumpVersion } from '../version';
import { broadcastView } from './elementwise';

/** Writes src (broadcast to dst's shape, cast to dst's dtype) into dst's storage; returns dst. */
export function copy_(dst: Tensor, src: Tensor | number): Tensor {
  if (!(dst instanceof Tensor)) {
    throw new ValueError('copy_', `the destination must be a Tensor, got ${dst === null ? 'null' : typeof dst}`);
  }
  if (!(src instanceof Tensor) && typeof src !== 'number') {
    throw new ValueError('copy_', `the source must be a Tensor or a number, got ${src === null ? 'null' : Array.isArray(src) ? 'an array (wrap it in tensor())' : typeof src}`);
  }
  if (dst.isDisposed || dst.buffer.released) throw new ValueError('copy_', `the destination ${dst} was disposed`);
  if (src instanceof Tensor) {
    if (src.isDisposed || src.buffer.released) throw new ValueError('copy_', `the source ${src} was disposed`);
    if (src.backend !== dst.backend) {
      throw new ValueError('copy_', `the source lives on backend ${src.backend} and the destination on ${dst.backend}; move one of them first`);
    }
  }
  if (isGradEnabled() && dst.requiresGrad) {
    throw new AutogradError(
      'copy_',
      `${dst} requires grad and cannot be modified in place while grad mode is on; run the update inside noGrad(() => ...)`,
    );
  }
  const source = src instanceof Tensor ? src : scalarTensor(src, dst.dtype, 'copy_');
  const shape = broadcastShapes('copy_', dst.shape, source.shape);
  if (!sameShape(shape, dst.shape)) {
    throw new ShapeError('copy_', `source of shape ${fmtShape(source.shape)} does not broadcast to the destination's shape ${fmtShape(dst.shape)}`);
  }
  if (dst.dtype === 'int32') checkCastToInt32('copy_', source); // NaN or 3e9 written into int32 storage
  try {
    bumpVersion(dst); // Note [Version counter]: nodes that saved dst must refuse their backward
    kernels().assign(dst, broadcastView(source, dst.shape));
  } finally {
    if (source !== src) source.dispose(); // the scalar made here
  }
  return dst;
}
