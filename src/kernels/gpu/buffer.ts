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
import type { BackendBuffer, BufferLedger } from '../backend';
import type { MemoryCategory } from '../memory';
import type { DType } from '../../tensor/dtype';
import type { DeviceData, GpuRuntime } from './runtime';

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

export class GpuBuffer implements BackendBuffer {
  constructor(
    readonly ledger: BufferLedger,
    readonly dtype: DType,
    readonly length: number,
    readonly slot: Slot,
  ) {}
  get id() {
    return this.ledger.id;
  }
  get backend() {
    return this.ledger.backend;
  }
  get bytes() {
    return this.ledger.bytes;
  }
  get category() {
    return this.ledger.category;
  }
  set category(c: MemoryCategory) {
    this.ledger.category = c;
  }
  get refs() {
    return this.ledger.refs;
  }
  set refs(n: number) {
    this.ledger.refs = n;
  }
  get released() {
    return this.ledger.released;
  }
}
