/**
 * gpu backend buffers. The data lives in a `Slot` (a texture on the GL modes) that the buffer
 * and a table keyed by ledger id both point to: the table lets `release(ledger)` free the texture
 * when a tensor is garbage-collected (finalizers hold ledgers, never buffers), and in-place kernels
 * (assign, adamUpdate) swap the slot's data so that every view of the buffer sees the new values.
 *
 * Every dtype is stored as float32 values on the device: float16 values are rounded to float16
 * when written (so they are exactly what a float16 buffer holds), int32 values are whole numbers
 * (exact up to 2^24). Memory accounting counts the dtype's own size per element, as on cpu, so
 * the BAdam memory figures read the same on both backends.
 */
import type { BufferLedger } from '../backend';
import { LedgerBuffer } from '../ledger-buffer';
import { isHalf, type DType } from '../../tensor/dtype';
import { BackendError } from '../../errors';
import { halfCodec } from '../../tensor/half';
import { MAX_ELEMENTS, type DeviceData, type GpuRuntime } from './runtime';

export interface Slot {
  data: DeviceData;
  readonly runtime: GpuRuntime;
  /**
   * The values of an int32 buffer uploaded from the host (or copied from such a buffer), kept
   * until an in-place write replaces them. Ops validate index tensors (token ids, labels) by reading them; with this copy those
   * reads need no readback from the device. Index tensors are small; float buffers keep none.
   */
  host?: Float32Array;
}

/** Device data (in its slot) plus its ledger. */
export class GpuBuffer extends LedgerBuffer {
  constructor(
    ledger: BufferLedger,
    dtype: DType,
    readonly length: number,
    readonly slot: Slot,
  ) {
    super(ledger, dtype);
  }
}

/**
 * Values as a float32 array holding exactly what `dtype` stores (the 16-bit floats rounded, int32 truncated).
 * int32 values are kept as float32, exact only up to 2^24: larger ones are refused rather than
 * silently changed.
 */
export function hostStore(dtype: DType, values: ArrayLike<number>): Float32Array {
  if (isHalf(dtype)) {
    const codec = halfCodec(dtype);
    return codec.decode(codec.encode(values));
  }
  if (dtype === 'int32') {
    const ints = Int32Array.from(values);
    for (let i = 0; i < ints.length; i++) {
      if (Math.abs(ints[i]) > MAX_ELEMENTS) {
        throw new BackendError(
          'gpu',
          `int32 value ${ints[i]} is beyond ±2^24, the largest whole numbers the gpu backend's float32 storage holds exactly; ` +
            'use the cpu backend for larger integers',
        );
      }
    }
    return Float32Array.from(ints);
  }
  return Float32Array.from(values);
}

export function float64Error(): BackendError {
  return new BackendError(
    'gpu',
    "float64 tensors are not supported: gpu.js computes in float32 (precision 'single'); use dtype 'float32' " +
      "(or 'float16'), or the cpu backend for float64",
  );
}
